#!/usr/bin/env bash
# User-space instructions per request, tandem-server vs redis-server, counted by
# valgrind --tool=callgrind (repeatable, unlike timings on a shared machine). Each figure is
# (Ir after N2 requests - Ir after N1 requests) / (N2 - N1), so start-up cost cancels out.
# Tandem runs with one worker thread, like Redis's single thread. Syscalls are not counted
# (both servers make the same ones: one read and one write per client per batch).
#
#   bench/instructions.sh                 # set get incr mset at -P 16, set get at -P 1
#   SPECS="rpush:16 hset:1" bench/instructions.sh   # other tests and depths
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind" >&2; exit 1; }
cargo build --release -q -p tandem-server
TANDEM=$PWD/target/release/tandem-server
N1=${N1:-10000}
N2=${N2:-60000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')

count() { # server n test P
  rm -f "$WORK"/cg.*
  if [ "$1" = tandem ]; then
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" "$TANDEM" --port "$port" --worker-threads 1 >/dev/null 2>&1 &
  else
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" redis-server --port "$port" --save '' --dir "$WORK" >/dev/null 2>&1 &
  fi
  for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  redis-benchmark -p "$port" -c 50 -n "$2" -t "$3" -P "$4" -q >/dev/null 2>&1
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait
  grep -h '^summary:' "$WORK"/cg.* | awk '{s += $2} END {print s}'
}

printf "%-10s | %10s %10s %6s\n" "test" tandem redis ratio
for spec in ${SPECS:-set:16 get:16 incr:16 mset:16 set:1 get:1}; do
  set -- ${spec/:/ }
  declare -A r
  for s in tandem redis; do
    a=$(count $s "$N1" "$1" "$2"); b=$(count $s "$N2" "$1" "$2")
    r[$s]=$(( (b - a) / (N2 - N1) ))
  done
  printf "%-10s | %10s %10s %5.2fx\n" "$1 P$2" "${r[tandem]}" "${r[redis]}" "$(python3 -c "print(${r[tandem]}/${r[redis]})")"
done
