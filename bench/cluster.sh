#!/usr/bin/env bash
# A 3-node Tandem cluster vs single-node Tandem, side by side on this machine: SET throughput
# and latency at -P 1 and -P 16, and GET at each read-consistency level. The load goes to a
# follower (a client's local sidecar is usually not the leader) unless TARGET=leader.
#
#   bench/cluster.sh               # N=200000 per run, 3 rounds, medians
#   N=50000 ROUNDS=1 bench/cluster.sh
#
# Everything runs inside a network namespace of its own (root needed), so no cluster traffic
# touches the host's interfaces (shared/CLUSTER-TESTING.md's safety rule).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TANDEM_BENCH_NETNS:-}" ]; then
  command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing: apt-get install -y redis-tools" >&2; exit 1; }
  cargo build --release -q -p tandem-server
  ns="tandem-bench-$$"
  ip netns add "$ns"
  trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
  TANDEM_BENCH_NETNS=$ns ip netns exec "$ns" "$0" "$@"
  exit
fi
[ -n "$(ip netns identify $$)" ] || { echo "refusing to run outside a namespace" >&2; exit 1; }
ip link set lo up

N=${N:-200000}
CLIENTS=${CLIENTS:-50}
ROUNDS=${ROUNDS:-3}
TARGET=${TARGET:-follower}
TANDEM=target/release/tandem-server
WORK=$(mktemp -d)
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

SEEDS=127.0.0.1:17011,127.0.0.1:17012,127.0.0.1:17013
mkdir -p "$WORK/single"
"$TANDEM" --port 6401 --dir "$WORK/single" >"$WORK/single.log" 2>&1 & PIDS+=($!)
for i in 1 2 3; do
  mkdir -p "$WORK/n$i"
  "$TANDEM" --port "701$i" --bind 127.0.0.1 --dir "$WORK/n$i" --cluster-seeds "$SEEDS" \
    --cluster-bootstrap-expect 3 >"$WORK/n$i.log" 2>&1 & PIDS+=($!)
done
field() { redis-cli -p "$1" info cluster | tr -d '\r' | awk -F: -v f="$2" '$1==f{print $2}'; }
leader=""
for _ in $(seq 200); do
  for i in 1 2 3; do
    [ "$(field "701$i" cluster_role 2>/dev/null)" = leader ] && leader=$i
  done
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader elected" >&2; tail "$WORK"/n*.log >&2; exit 1; }
target=$leader
[ "$TARGET" = follower ] && target=$(( leader % 3 + 1 ))
CP="701$target"

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "3 nodes and the load generator share these cores; load on node $target ($TARGET), leader is node $leader"
echo
printf "%-24s %-3s | %10s %10s %6s | %7s %7s | %7s %7s\n" test P "cluster" "single" ratio "c p50" "s p50" "c p99" "s p99"
bench1() { redis-benchmark -p "$1" -c "$CLIENTS" -n "$N" -P "$2" -t "$3" -r 1000000 --csv | tail -1 | tr -d '"'; }
median() { python3 -c "import sys,statistics;print(round(statistics.median(float(x) for x in sys.argv[1:]), 3))" "$@"; }
row() { # label P test
  local crps=() srps=() c50=() s50=() c99=() s99=()
  for _ in $(seq "$ROUNDS"); do
    IFS=, read -r _ a _ _ b _ c _ <<<"$(bench1 "$CP" "$2" "$3")"; crps+=("$a"); c50+=("$b"); c99+=("$c")
    IFS=, read -r _ a _ _ b _ c _ <<<"$(bench1 6401 "$2" "$3")"; srps+=("$a"); s50+=("$b"); s99+=("$c")
  done
  local cr sr
  cr=$(median "${crps[@]}"); sr=$(median "${srps[@]}")
  printf "%-24s %-3s | %10.0f %10.0f %6s | %7s %7s | %7s %7s\n" "$1" "$2" "$cr" "$sr" \
    "$(python3 -c "print(f'{$cr/$sr:.2f}x')")" "$(median "${c50[@]}")" "$(median "${s50[@]}")" \
    "$(median "${c99[@]}")" "$(median "${s99[@]}")"
}
for P in 1 16; do
  row set "$P" set
  for level in linearizable session stale; do
    redis-cli -p "$CP" config set read-consistency "$level" >/dev/null
    row "get ($level)" "$P" get
  done
done
