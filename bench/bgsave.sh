#!/usr/bin/env bash
# Snapshot cost, side by side: tandem-server (fork-less BGSAVE) vs redis-server (fork + COW).
#  1. Load KEYS keys (16-byte keys, 32-byte values) into each server.
#  2. p99 of a SET/GET load (redis-benchmark, -P 1, random keys over the dataset) while idle,
#     then while BGSAVE runs back to back for the whole run; ROUNDS alternating pairs, medians.
#     bench/snapshot_driver.py drives both phases the same way over one connection.
#  3. Peak memory during BGSAVE under the same load, against before it: proportional set size
#     (PSS) of the server plus, for Redis, its fork child, so pages the two share count once.
#  4. Start-up load time of the saved 1M-key RDB: Redis's file loaded by both servers.
#
#   bench/bgsave.sh              # KEYS=1000000
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
N=${N:-300000}
ROUNDS=${ROUNDS:-3}
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server redis-tools" >&2; exit 1; }
cargo build --release -q -p tandem-server
TANDEM=$PWD/target/release/tandem-server

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
TP=$(free_port); RP=$(free_port)
WORK=$(mktemp -d); mkdir -p "$WORK/t" "$WORK/r"
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_ping() { for _ in $(seq 600); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done; return 1; }

"$TANDEM" --port "$TP" --dir "$WORK/t" ${TANDEM_ARGS:-} >"$WORK/t/log" 2>&1 & TPID=$!; PIDS+=("$TPID")
redis-server --port "$RP" --save '' --appendonly no --dir "$WORK/r" >"$WORK/r/log" 2>&1 & RPID=$!; PIDS+=("$RPID")
wait_ping "$TP"; wait_ping "$RP"

python3 - "$KEYS" >"$WORK/load.resp" <<'PY'
import sys
n = int(sys.argv[1]); out = sys.stdout.buffer; val = b"v" * 32
for i in range(n):
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\n" + b"key:%012d" % i + b"\r\n$32\r\n" + val + b"\r\n")
PY
for p in "$TP" "$RP"; do redis-cli -p "$p" --pipe <"$WORK/load.resp" >/dev/null; done

pss_kb() { awk '/^Pss:/{r=$2} END{print r+0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
bench() { redis-benchmark -p "$1" -c 50 -n "$N" -P 1 -t set,get -r "$KEYS" -d 32 --csv | tail -2 | tr -d '"' | awk -F, '{print $1, $7}'; }
in_progress() { redis-cli -p "$1" info persistence | tr -d '\r' | awk -F: '$1=="rdb_bgsave_in_progress"{print $2}'; }
# Runs the load with the driver in MODE alongside; prints "SET p99 GET p99".
phase() {
  local port=$1 pid=$2 mode=$3 out
  python3 bench/snapshot_driver.py "$port" "$pid" "$mode" "$WORK/peak" & local drv=$!
  out=$(bench "$port" | awk '{printf "%s ", $2}')
  kill "$drv"; wait "$drv" 2>/dev/null || true
  while [ "$(in_progress "$port")" = 1 ]; do sleep 0.05; done
  echo "$out"
}
median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

echo "p99 of SET/GET (ms, median of $ROUNDS rounds; idle and during-BGSAVE runs alternate):"
printf "%-8s | %-20s | %-20s | %-9s | %6s | %s\n" server "idle p99 SET/GET" "BGSAVE p99 SET/GET" "ratio" "saves" "peak/base PSS"
for which in tandem redis; do
  if [ $which = tandem ]; then port=$TP; pid=$TPID; else port=$RP; pid=$RPID; fi
  : >"$WORK/idle"; : >"$WORK/busy"
  for _ in $(seq "$ROUNDS"); do
    phase "$port" "$pid" idle >>"$WORK/idle"
    phase "$port" "$pid" save >>"$WORK/busy"
  done
  is=$(awk '{print $1}' "$WORK/idle" | median); ig=$(awk '{print $2}' "$WORK/idle" | median)
  bs=$(awk '{print $1}' "$WORK/busy" | median); bg=$(awk '{print $2}' "$WORK/busy" | median)
  saves=$(redis-cli -p "$port" info persistence | tr -d '\r' | awk -F: '$1=="rdb_saves"{print $2}')
  # Memory in a run of its own (sampling smaps disturbs latency).
  base=$(pss_kb "$pid")
  phase "$port" "$pid" save-mem >/dev/null
  peak=$(cat "$WORK/peak")
  printf "%-8s | %-20s | %-20s | %-9s | %6s | %.2fx (%s / %s MB)\n" $which "$is / $ig" "$bs / $bg" \
    "$(python3 -c "print('%.1f/%.1f' % ($bs/$is, $bg/$ig))")" "$saves" \
    "$(python3 -c "print($peak/$base)")" $((peak / 1024)) $((base / 1024))
done

# Start-up load time of the same file (Redis's dump of the dataset) in both servers.
redis-cli -p "$RP" save >/dev/null
kill "$TPID" "$RPID"; wait "$TPID" "$RPID" 2>/dev/null || true
cp "$WORK/r/dump.rdb" "$WORK/t/dump.rdb"
echo
echo "start-up load of a ${KEYS}-key RDB ($(du -h "$WORK/r/dump.rdb" | cut -f1)):"
for which in tandem redis; do
  port=$(free_port); start=$(date +%s.%N)
  if [ $which = tandem ]; then
    "$TANDEM" --port "$port" --dir "$WORK/t" >"$WORK/t/log2" 2>&1 & pid=$!
  else
    redis-server --port "$port" --save '' --appendonly no --dir "$WORK/r" >"$WORK/r/log2" 2>&1 & pid=$!
  fi
  PIDS+=("$pid")
  until [ "$(redis-cli -p "$port" dbsize 2>/dev/null)" = "$KEYS" ]; do sleep 0.01; done
  printf "  %-8s %.2f s\n" $which "$(python3 -c "print($(date +%s.%N) - $start)")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
