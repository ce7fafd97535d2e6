# Sourced by the side-by-side scripts: builds tandem-server, picks two free ports and a work
# directory (removed on exit), and defines
#   start  a fresh tandem-server and redis-server on $TP / $RP, waited for (BOTH_ARGS go to
#          both, TANDEM_ARGS to tandem-server only)
#   stop   both servers
#   mem PORT FIELD   one field of INFO memory
#   median X...      the median of its arguments
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server redis-tools" >&2; exit 1; }
cargo build --release -q -p tandem-server
TANDEM=${TANDEM:-target/release/tandem-server}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
TP=$(free_port); RP=$(free_port)
WORK=$(mktemp -d); mkdir -p "$WORK/t" "$WORK/r"
TPID=; RPID=
cleanup() { kill $TPID $RPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

start() {
  rm -rf "$WORK"/t/* "$WORK"/r/*
  # shellcheck disable=SC2086 # BOTH_ARGS and TANDEM_ARGS are word lists
  "$TANDEM" --port "$TP" --dir "$WORK/t" ${BOTH_ARGS:-} ${TANDEM_ARGS:-} >"$WORK/tandem.log" 2>&1 & TPID=$!
  # shellcheck disable=SC2086
  redis-server --port "$RP" --save '' --appendonly no --dir "$WORK/r" ${BOTH_ARGS:-} >"$WORK/redis.log" 2>&1 & RPID=$!
  for p in "$TP" "$RP"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
}
stop() { kill "$TPID" "$RPID" 2>/dev/null || true; wait "$TPID" "$RPID" 2>/dev/null || true; }
median() { python3 -c "import sys,statistics;print(round(statistics.median(float(x) for x in sys.argv[1:]), 3))" "$@"; }
mem() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1==f{print $2}'; }
