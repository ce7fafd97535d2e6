#!/usr/bin/env bash
# Side-by-side benchmark: tandem-server vs Debian's redis-server on this machine.
# Prints throughput and latency (p50, p99) for set,get,incr,mset at pipeline depths 1 and 16,
# and memory after loading 1,000,000 keys (16-byte keys, 32-byte values), with ratios.
#
#   bench/compare.sh            # full run (-n 1000000)
#   N=200000 bench/compare.sh   # shorter run
#   BOTH_ARGS="--appendonly yes --appendfsync always" TESTS=set,incr bench/compare.sh
#                               # the same config for both servers (here: the AOF), each in its own dir
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-set,get,incr,mset}
KEYS=${KEYS:-1000000}

# shellcheck source=bench/pair.sh
. bench/pair.sh

start
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "redis: $(redis-server --version | awk '{print $3}')  tandem: $($TANDEM --version | awk '{print $3}')  both: ${BOTH_ARGS:-defaults}"
echo
printf "%-6s %-3s | %12s %12s %6s | %8s %8s | %8s %8s\n" test P "tandem rps" "redis rps" ratio "t p50" "r p50" "t p99" "r p99"
# Each figure is the median of ROUNDS runs, alternating servers and their order, because the two servers and
# the load generator share this machine's cores and single runs vary by ±15%.
ROUNDS=${ROUNDS:-4}
bench1() { redis-benchmark -p "$1" -c "$CLIENTS" -n "$N" -P "$2" -t "$3" -r 1000000 --csv | tail -1 | tr -d '"'; }
for P in 1 16; do
  for t in ${TESTS//,/ }; do
    trps=(); rrps=(); tp50=(); rp50=(); tp99=(); rp99=()
    for round in $(seq "$ROUNDS"); do
      # CSV columns (redis-benchmark 7): test, rps, avg, min, p50, p95, p99, max. The order
      # flips every round so that neither server always runs first.
      order=("$TP" "$RP"); [ $((round % 2)) -eq 0 ] && order=("$RP" "$TP")
      for port in "${order[@]}"; do
        IFS=, read -r _ a _ _ b _ c _ <<<"$(bench1 "$port" "$P" "$t")"
        if [ "$port" = "$TP" ]; then trps+=("$a"); tp50+=("$b"); tp99+=("$c"); else rrps+=("$a"); rp50+=("$b"); rp99+=("$c"); fi
      done
    done
    tr=$(median "${trps[@]}"); rr=$(median "${rrps[@]}")
    ratio=$(python3 -c "print(f'{$tr/$rr:.2f}')")
    printf "%-6s %-3s | %12.0f %12.0f %6s | %8s %8s | %8s %8s\n" "$t" "$P" "$tr" "$rr" "${ratio}x" \
      "$(median "${tp50[@]}")" "$(median "${rp50[@]}")" "$(median "${tp99[@]}")" "$(median "${rp99[@]}")"
  done
done
stop

# Memory: a fresh pair of servers, each loaded with the same KEYS keys through redis-cli --pipe.
start
python3 - "$KEYS" >"$WORK/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
val = b"v" * 32
for i in range(n):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\n" + k + b"\r\n$32\r\n" + val + b"\r\n")
PY
for p in "$TP" "$RP"; do
  redis-cli -p "$p" --pipe <"$WORK/load.resp" >/dev/null
done
echo
for p in "$TP" "$RP"; do [ "$(redis-cli -p "$p" dbsize)" = "$KEYS" ] || { echo "load failed on port $p" >&2; exit 1; }; done
tu=$(mem "$TP" used_memory); ru=$(mem "$RP" used_memory)
tr=$(mem "$TP" used_memory_rss); rr=$(mem "$RP" used_memory_rss)
printf "%-14s | %14s %14s %6s\n" "memory ($KEYS keys)" tandem redis ratio
printf "%-14s | %14s %14s %6s\n" used_memory "$tu" "$ru" "$(python3 -c "print(f'{$tu/$ru:.2f}x')")"
printf "%-14s | %14s %14s %6s\n" used_memory_rss "$tr" "$rr" "$(python3 -c "print(f'{$tr/$rr:.2f}x')")"
printf "%-14s | %14s %14s\n" "bytes/key (rss)" "$(( tr / KEYS ))" "$(( rr / KEYS ))"
