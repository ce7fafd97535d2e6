#!/usr/bin/env bash
# Memory of collections, tandem-server vs Debian's redis-server, each dataset loaded through
# `redis-cli --pipe` into a fresh pair of servers. Prints used_memory and RSS above each
# server's empty baseline, and the ratios:
#
#   hashes   100,000 hashes of 10 small fields
#   sets     100,000 sets of 5 short strings
#   intsets  100,000 sets of 5 integers
#   zset     one sorted set of 1,000,000 members (random integer scores)
#   list     one list of 10,000,000 small integers
#
#   bench/collections_memory.sh               # every dataset
#   SETS="zset list" bench/collections_memory.sh
#   SETTLE=0 bench/collections_memory.sh      # read memory at once (RSS is noisier)
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=${SETS:-hashes sets intsets zset list}
# Seconds to wait before each reading (see below).
SETTLE=${SETTLE:-12}

# shellcheck source=bench/pair.sh
. bench/pair.sh

# Writes the RESP commands of one dataset to stdout.
generate() {
  python3 - "$1" <<'PY'
import random, sys
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
rnd = random.Random(7)
kind = sys.argv[1]
if kind == "hashes":
    for i in range(100_000):
        args = []
        for f in range(10):
            args += [b"field%d" % f, b"value-%d" % rnd.randrange(1_000_000)]
        cmd(b"HSET", b"hash:%06d" % i, *args)
elif kind == "sets":
    for i in range(100_000):
        cmd(b"SADD", b"set:%06d" % i, *[b"member-%d" % rnd.randrange(1_000_000) for _ in range(5)])
elif kind == "intsets":
    for i in range(100_000):
        cmd(b"SADD", b"iset:%06d" % i, *[rnd.randrange(1_000_000) for _ in range(5)])
elif kind == "zset":
    for start in range(0, 1_000_000, 1000):
        args = []
        for i in range(start, start + 1000):
            args += [rnd.randrange(100_000_000), b"member:%07d" % i]
        cmd(b"ZADD", b"zset", *args)
elif kind == "list":
    for start in range(0, 10_000_000, 1000):
        cmd(b"RPUSH", b"list", *[rnd.randrange(100_000) for _ in range(1000)])
PY
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "redis: $(redis-server --version | awk '{print $3}')  tandem: $($TANDEM --version | awk '{print $3}')"
echo
printf "%-8s | %12s %12s %6s | %12s %12s %6s\n" dataset "t used" "r used" ratio "t rss" "r rss" ratio
for set in $SETS; do
  generate "$set" >"$WORK/load.resp"
  start
  # Both allocators return freed pages some seconds after the fact (Redis's jemalloc from a
  # background thread): RSS read at once varied by 10% between identical Redis runs.
  sleep "$SETTLE"
  tu0=$(mem "$TP" used_memory); ru0=$(mem "$RP" used_memory)
  tr0=$(mem "$TP" used_memory_rss); rr0=$(mem "$RP" used_memory_rss)
  for p in "$TP" "$RP"; do redis-cli -p "$p" --pipe <"$WORK/load.resp" >/dev/null; done
  sleep "$SETTLE"
  [ "$(redis-cli -p "$TP" dbsize)" = "$(redis-cli -p "$RP" dbsize)" ] || { echo "$set: key counts differ" >&2; exit 1; }
  tu=$(( $(mem "$TP" used_memory) - tu0 )); ru=$(( $(mem "$RP" used_memory) - ru0 ))
  tr=$(( $(mem "$TP" used_memory_rss) - tr0 )); rr=$(( $(mem "$RP" used_memory_rss) - rr0 ))
  printf "%-8s | %12s %12s %5.2fx | %12s %12s %5.2fx\n" "$set" "$tu" "$ru" "$(python3 -c "print($tu/$ru)")" \
    "$tr" "$rr" "$(python3 -c "print($tr/$rr)")"
  stop
done
