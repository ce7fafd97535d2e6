#!/usr/bin/env bash
# Side-by-side benchmark of pub/sub fan-out and client-side caching
# (crates/testkit/src/bin/tandem-load.rs), against tandem-server and redis-server in turn;
# each figure the median of ROUNDS alternating runs of SECONDS_EACH seconds:
#   publish-N    PUBLISHERS clients pipelining 16 PUBLISHes each to one channel with N
#                subscribers: messages delivered per second (counted by the subscribers)
#   get-track-X  CLIENTS RESP3 clients pipelining 16 GETs of random keys out of 100000, with
#                CLIENT TRACKING on or off, while another client SETs a random key every ms
#
#   bench/pubsub.sh
#   ROUNDS=5 SECONDS_EACH=5 bench/pubsub.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PUBLISHERS=${PUBLISHERS:-4}
CLIENTS=${CLIENTS:-8}
SECONDS_EACH=${SECONDS_EACH:-3}
ROUNDS=${ROUNDS:-3}

# shellcheck source=bench/pair.sh
. bench/pair.sh
cargo build --release -q -p testkit --bin tandem-load
LOAD=target/release/tandem-load

field() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }

start
echo "machine: $(nproc) cores; redis $(redis-server --version | awk '{print $3}'); $PUBLISHERS publishers, $CLIENTS GET clients"
printf "%-14s | %12s %12s %6s | %8s %8s\n" test tandem redis ratio "t p99" "r p99"
run() { # name metric args...
  local name=$1 metric=$2; shift 2
  local t=() r=() t99=() r99=()
  for round in $(seq "$ROUNDS"); do
    order=("$TP" "$RP"); [ $((round % 2)) -eq 0 ] && order=("$RP" "$TP")
    for port in "${order[@]}"; do
      line=$("$LOAD" --port "$port" --seconds "$SECONDS_EACH" "$@")
      if [ "$port" = "$TP" ]; then t+=("$(field "$metric" "$line")"); t99+=("$(field p99 "$line")")
      else r+=("$(field "$metric" "$line")"); r99+=("$(field p99 "$line")"); fi
    done
  done
  local tm rm; tm=$(median "${t[@]}"); rm=$(median "${r[@]}")
  printf "%-14s | %12.0f %12.0f %6s | %8s %8s\n" "$name" "$tm" "$rm" "$(python3 -c "print(f'{$tm/$rm:.2f}x')")" \
    "$(median "${t99[@]}")" "$(median "${r99[@]}")"
}
for n in 1 10 100; do run "publish-$n" delivered --clients "$PUBLISHERS" publish "$n"; done
run get-track-off ops --clients "$CLIENTS" get 100000 off
run get-track-on ops --clients "$CLIENTS" get 100000 on
stop
