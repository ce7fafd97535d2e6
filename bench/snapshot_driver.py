"""Background-save driver for bench/bgsave.sh, over one connection (no process spawned while a
latency run is measured: spawning redis-cli every few milliseconds moved p99 more than BGSAVE).

  snapshot_driver.py PORT PID MODE PEAKFILE
MODE idle: poll INFO persistence as the save mode does, start no save (the baseline).
MODE save: keep BGSAVE running back to back.
MODE save-mem: as save, and write the peak proportional set size (kB) of PID and its children
(Redis's fork child) to PEAKFILE. Reading smaps walks page tables, which itself disturbs the
server, so memory is sampled in its own run, never during a latency measurement.
Runs until SIGTERM.
"""
import os
import signal
import socket
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
port, pid, mode, peak_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
sock = socket.create_connection(("127.0.0.1", port))
reader = sock.makefile("rb")


def command(*args):
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    line = reader.readline()
    if line[:1] == b"$":
        return reader.read(int(line[1:]) + 2)[:-2]
    return line.strip()


def pss_kb(p):
    try:
        with open("/proc/%d/smaps_rollup" % p) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(p):
    kids = []
    try:
        for task in os.listdir("/proc/%d/task" % p):
            with open("/proc/%d/task/%s/children" % (p, task)) as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


peak = 0
while True:
    if mode != "idle":
        command(b"BGSAVE")
    while True:
        time.sleep(0.1 if mode != "save-mem" else 0.02)
        if mode == "save-mem":
            peak = max(peak, pss_kb(pid) + sum(pss_kb(c) for c in children(pid)))
            with open(peak_file + ".tmp", "w") as f:
                f.write(str(peak))
            os.replace(peak_file + ".tmp", peak_file)  # never leave it half-written when killed
        if b"rdb_bgsave_in_progress:1" not in command(b"INFO", b"persistence"):
            break
