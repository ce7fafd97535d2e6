//! A real job-queue library runs thousands of jobs through one `tandem-server` and every job
//! completes exactly once (the cluster variant is in `cluster.rs`).

mod common;

use common::jobqueue::{rq_check, rq_venv};

#[test]
fn rq_runs_every_job_exactly_once_with_competing_workers() {
    let venv = rq_venv();
    let server = common::tandem(&[]);
    // Four workers blocked in BLPOP on the same queue while 3000 jobs (and 60 dependents,
    // and 300 retries) arrive: each job must reach exactly one of them.
    rq_check(&venv, 3000, 4, &[server.url()]);
}
