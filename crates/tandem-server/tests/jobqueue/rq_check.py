"""Runs a few thousand jobs of rq, a real job-queue library, through the server with several
competing workers, and checks that every job completed exactly once.

Usage: rq_check.py JOBS WORKERS URL [URL ...]
Jobs are enqueued and checked through the first URL; worker i talks to URL i mod n (so in a
cluster the workers sit on different nodes). Exits non-zero with the problems found."""
import os
import signal
import subprocess
import sys
import time

from redis import Redis
from rq import Queue, Retry
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

jobs, workers, urls = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
here = os.path.dirname(os.path.abspath(__file__))
conn = Redis.from_url(urls[0])
conn.flushall()
q = Queue("check", connection=conn)

# Workers start first and wait in BLPOP on the empty queue, so jobs reach them through
# blocking pops woken by the enqueuer's pushes (burst workers would only poll with LPOP).
# Each runs in its own process group, so that whatever happens here none outlives the check.
env = dict(os.environ, PYTHONPATH=here)
rq_bin = os.path.join(os.path.dirname(sys.executable), "rq")
log = open(os.environ.get("RQ_WORKER_LOG", os.devnull), "w")
procs = []


def stop_workers():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    # A warm shutdown lets a running job finish; whatever is left after that is killed.
    deadline = time.time() + 30
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


# Limits well inside the Rust side's 900 s, so that a failure is reported, not killed.
started_at = time.time()
try:
    for w in range(workers):
        procs.append(subprocess.Popen(
            [rq_bin, "worker", "--quiet", "--worker-class", "rq.worker.SimpleWorker",
             "--url", urls[w % len(urls)], "check"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
    deadline = time.time() + 60
    while len(q.connection.smembers("rq:workers")) < workers:
        if time.time() > deadline:
            sys.exit("the workers did not register")
        time.sleep(0.1)

    ids = []
    dependents = []
    t0 = time.time()
    for i in range(jobs):
        job = q.enqueue("jobs.work", i, retry=Retry(max=2), result_ttl=3600)
        ids.append(job.id)
        # Every 50th job gets a dependent, released through rq's WATCH/MULTI dependency path.
        if i % 50 == 7:
            dependents.append(q.enqueue("jobs.after", i, depends_on=job, result_ttl=3600).id)
    print(f"enqueued {len(ids)} jobs + {len(dependents)} dependents in {time.time() - t0:.1f}s", flush=True)

    finished = FinishedJobRegistry(queue=q)
    failed = FailedJobRegistry(queue=q)
    started = StartedJobRegistry(queue=q)
    total = jobs + len(dependents)
    deadline = started_at + 700
    while finished.count + failed.count < total or len(q) or started.count:
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    print(f"{workers} workers done {finished.count} jobs in {time.time() - t0:.1f}s", flush=True)
    for p in procs:
        if p.poll() is not None:
            print(f"a worker exited early with {p.returncode}")
finally:
    stop_workers()

errors = []
done = {int(k): int(v) for k, v in conn.hgetall("jq:done").items()}
attempts = {int(k): int(v) for k, v in conn.hgetall("jq:attempts").items()}
after = {int(k): int(v) for k, v in conn.hgetall("jq:after").items()}
for i in range(jobs):
    if done.get(i) != 1:
        errors.append(f"job {i} completed {done.get(i, 0)} times")
    want = 2 if i % 10 == 0 else 1
    if attempts.get(i) != want:
        errors.append(f"job {i} ran {attempts.get(i, 0)} times, expected {want}")
want_after = {i for i in range(jobs) if i % 50 == 7}
if set(after) != want_after or any(v != 1 for v in after.values()):
    errors.append(f"dependents ran {after}, expected each of {sorted(want_after)} once")
early = conn.lrange("jq:early", 0, -1)
if early:
    errors.append(f"dependents ran before their parent: {early}")
if finished.count != total:
    errors.append(f"finished registry holds {finished.count}, expected {total}")
if failed.count != 0:
    errors.append(f"failed registry holds {failed.count}")
if len(q) != 0:
    errors.append(f"queue still holds {len(q)} jobs")
for jid in ids[:: max(1, jobs // 100)] + dependents:
    job = q.fetch_job(jid)
    if job is None or job.get_status() != "finished":
        errors.append(f"job {jid} status {job and job.get_status()}")
    elif job.result not in (-job.args[0], 2 * job.args[0]):
        errors.append(f"job {jid} result {job.result!r} for args {job.args}")
for e in errors[:20]:
    print(e)
if errors:
    sys.exit(f"{len(errors)} errors")
print(f"every one of {total} jobs completed exactly once")
