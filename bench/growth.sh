#!/usr/bin/env bash
# Keyspace growth must never stall: load KEYS keys (default 10,000,000) with a pipelined
# writer while a probe client times single commands, for tandem-server and redis-server
# side by side. Prints the probe's p50 / p99 / p99.9 / max latency in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-10000000}
cargo build --release -q -p tandem-server
TANDEM=target/release/tandem-server
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cat >"$WORK/probe.py" <<'PY'
import socket, sys, time, threading
port, keys = int(sys.argv[1]), int(sys.argv[2])
def load():
    s = socket.create_connection(("127.0.0.1", port))
    val = b"v" * 32
    batch = 10000
    for start in range(0, keys, batch):
        buf = b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n%s\r\n" % (i, val) for i in range(start, min(keys, start + batch)))
        s.sendall(buf)
        need = (min(keys, start + batch) - start) * 5
        got = 0
        while got < need:
            got += len(s.recv(1 << 20))
    s.close()
t = threading.Thread(target=load)
t.start()
p = socket.create_connection(("127.0.0.1", port))
p.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
lat = []
while t.is_alive():
    t0 = time.perf_counter()
    p.sendall(b"*3\r\n$3\r\nSET\r\n$5\r\nprobe\r\n$1\r\nx\r\n")
    p.recv(64)
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.0005)
t.join()
lat.sort()
q = lambda f: lat[min(len(lat) - 1, int(len(lat) * f))]
print(f"{len(lat)} probes  p50 {q(0.5):.3f}  p99 {q(0.99):.3f}  p99.9 {q(0.999):.3f}  max {lat[-1]:.3f} ms")
PY

for name in tandem redis; do
  port=$(free_port)
  if [ $name = tandem ]; then "$TANDEM" --port "$port" >"$WORK/$name.log" 2>&1 & else redis-server --port "$port" --save '' --appendonly no --dir "$WORK" >"$WORK/$name.log" 2>&1 & fi
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  printf "%-7s loading %s keys: " $name "$KEYS"
  python3 "$WORK/probe.py" "$port" "$KEYS"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
done
