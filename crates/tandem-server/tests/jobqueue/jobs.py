"""Job bodies for the job-queue check: each run records itself in the server it runs against."""
from rq import get_current_job


def work(i):
    job = get_current_job()
    conn = job.connection
    attempt = conn.hincrby("jq:attempts", str(i), 1)
    # Every tenth job fails on its first attempt, so rq's retry path (requeue) is exercised.
    if i % 10 == 0 and attempt == 1:
        raise RuntimeError(f"job {i} fails once on purpose")
    conn.hincrby("jq:done", str(i), 1)
    return i * 2


def after(i):
    job = get_current_job()
    conn = job.connection
    # A dependent job must only run after the job it depends on has finished.
    if conn.hget("jq:done", str(i)) is None:
        conn.rpush("jq:early", str(i))
    conn.hincrby("jq:after", str(i), 1)
    return -i
