#!/usr/bin/env bash
# Side-by-side benchmark of transactions: each of CLIENTS clients sends MULTI, SIZE SETs and
# EXEC in one write and waits for the replies (crates/testkit/src/bin/tandem-load.rs), for
# SECONDS, against tandem-server and redis-server in turn; prints transactions per second and
# round-trip p50/p99 (ms), each the median of ROUNDS alternating runs, and the ratio.
#
#   bench/transactions.sh                 # 10 SETs per transaction, 50 clients, 5 s x 3 rounds
#   SIZE=100 CLIENTS=10 bench/transactions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-10}
CLIENTS=${CLIENTS:-50}
SECONDS_EACH=${SECONDS_EACH:-5}
ROUNDS=${ROUNDS:-3}

# shellcheck source=bench/pair.sh
. bench/pair.sh
cargo build --release -q -p testkit --bin tandem-load
LOAD=target/release/tandem-load

start
echo "machine: $(nproc) cores; redis $(redis-server --version | awk '{print $3}'); MULTI + $SIZE x SET + EXEC, $CLIENTS clients"
t_tps=(); r_tps=(); t50=(); r50=(); t99=(); r99=()
for round in $(seq "$ROUNDS"); do
  order=("$TP" "$RP"); [ $((round % 2)) -eq 0 ] && order=("$RP" "$TP")
  for port in "${order[@]}"; do
    line=$("$LOAD" --port "$port" --clients "$CLIENTS" --seconds "$SECONDS_EACH" multi "$SIZE")
    tps=$(sed -E 's/.*tps=([0-9.]+).*/\1/' <<<"$line"); p50=$(sed -E 's/.*p50=([0-9.]+).*/\1/' <<<"$line"); p99=$(sed -E 's/.*p99=([0-9.]+).*/\1/' <<<"$line")
    if [ "$port" = "$TP" ]; then t_tps+=("$tps"); t50+=("$p50"); t99+=("$p99"); else r_tps+=("$tps"); r50+=("$p50"); r99+=("$p99"); fi
  done
done
stop
tt=$(median "${t_tps[@]}"); rt=$(median "${r_tps[@]}")
printf "%-10s | %10s %10s %6s | %8s %8s | %8s %8s\n" test "tandem tps" "redis tps" ratio "t p50" "r p50" "t p99" "r p99"
printf "%-10s | %10.0f %10.0f %6s | %8s %8s | %8s %8s\n" "multi-$SIZE" "$tt" "$rt" "$(python3 -c "print(f'{$tt/$rt:.2f}x')")" \
  "$(median "${t50[@]}")" "$(median "${r50[@]}")" "$(median "${t99[@]}")" "$(median "${r99[@]}")"
