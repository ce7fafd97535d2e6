//! Python virtual environments for tests that drive real client libraries from PyPI (a job
//! queue, say) against the server.
//!
//! A venv is built once per requirement list and reused by later runs: `pip` needs the
//! package registry, so a test that runs inside a network namespace must call [`venv`] before
//! it enters one. A failed install is a test failure, never a skip.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file inside a venv naming the requirements it was built with.
const MARKER: &str = "tandem-requirements.txt";

/// Returns the directory of a venv under `root` holding exactly `requirements` (pinned
/// `name==version` strings), creating it with `python3 -m venv` and `pip install` if it
/// does not exist yet. Safe to call from parallel tests and processes: builders take turns
/// on a lock file, and a venv is used only once its marker says it is complete.
pub fn venv(root: &Path, name: &str, requirements: &[&str]) -> PathBuf {
    fs::create_dir_all(root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
    let dir = root.join(name);
    // The venv links to the interpreter it was built with: a different (or vanished) python3
    // means building it again.
    let interpreter = Command::new("python3")
        .args(["-c", "import os, sys; print(sys.version); print(os.path.realpath(sys.executable))"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| panic!("python3: {e} (the job-queue check needs python3 with venv)"));
    let want = format!("{}\n{interpreter}", requirements.join("\n"));
    let lock = File::create(root.join(format!("{name}.lock"))).expect("venv lock file");
    // SAFETY: flock on a descriptor we own; it is released when `lock` is closed.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "locking the venv lock file");
    let runs = || Command::new(dir.join("bin/python")).args(["-c", "pass"]).status().is_ok_and(|s| s.success());
    if fs::read_to_string(dir.join(MARKER)).ok().as_deref() == Some(want.as_str()) && runs() {
        return dir;
    }
    // A venv's scripts name its own path, so it is built in place (under the lock), not
    // built elsewhere and renamed.
    let _ = fs::remove_dir_all(&dir);
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir), "python3 -m venv (install python3-venv)");
    run(
        Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "--no-input"])
            .args(requirements),
        "pip install (needs the PyPI registry)",
    );
    fs::write(dir.join(MARKER), &want).expect("writing the venv marker");
    drop(lock);
    dir
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
