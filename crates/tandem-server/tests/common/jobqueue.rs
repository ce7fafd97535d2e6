//! The job-queue check: rq, a real job-queue library from PyPI, runs jobs through the server
//! (`tests/jobqueue/rq_check.py` says what it checks).
//!
//! rq is pinned to 1.11.1, the last release that needs neither streams (rq 1.12+ keeps job
//! results in a stream, `XADD`) nor scripts on its job path; Tandem has neither yet.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::python;
use testkit::run_to_exit;

/// Pinned so every run tests the same client code.
const REQUIREMENTS: &[&str] = &["rq==1.11.1", "redis==5.0.8", "click==8.1.7"];

/// The venv with rq, built on first use under cargo's target directory. It needs PyPI, so a
/// test that runs in a network namespace calls this before entering it.
pub fn rq_venv() -> PathBuf {
    python::venv(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python"), "rq-1.11.1", REQUIREMENTS)
}

/// Runs `jobs` jobs with `workers` competing workers spread over `urls` and panics with the
/// checker's findings (and the workers' log) unless every job completed exactly once.
pub fn rq_check(venv: &Path, jobs: usize, workers: usize, urls: &[String]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jobqueue");
    let log = testkit::temp_dir("rq-workers").join("workers.log");
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(dir.join("rq_check.py")).arg(jobs.to_string()).arg(workers.to_string()).args(urls);
    cmd.env("RQ_WORKER_LOG", &log);
    let out = run_to_exit(&mut cmd, Duration::from_secs(900));
    let tail = |s: &str| s.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    let workers_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "rq check failed ({}):\n{}\n{}\nlast lines of the workers' log ({}):\n{}",
        out.status,
        out.stdout,
        out.stderr,
        log.display(),
        tail(&workers_log)
    );
    assert!(out.stdout.contains("completed exactly once"), "{}", out.stdout);
    println!("{}", out.stdout);
    let _ = std::fs::remove_dir_all(log.parent().unwrap());
}
