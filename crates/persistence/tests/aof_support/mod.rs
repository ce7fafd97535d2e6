//! Helpers shared by the `aof_*` tests: talking to redis-server about its AOF, and comparing
//! commands read from a file with expectations.

#![allow(dead_code)]

use persistence::aof::Command;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::{Frame, RawClient};

/// Wall-clock milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// One field of `INFO <section>`.
pub fn info_field(c: &mut RawClient, section: &str, field: &str) -> String {
    let Frame::Bulk(text) = c.send(&["INFO", section]) else { panic!("INFO {section}") };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{text}"))
}

/// Sends BGREWRITEAOF and waits until Redis has installed the new base (the rewrite counter
/// went up and nothing is in progress or scheduled).
pub fn bgrewriteaof(c: &mut RawClient) {
    let before: u64 = info_field(c, "persistence", "aof_rewrites").parse().unwrap();
    let reply = c.send(&["BGREWRITEAOF"]);
    assert!(matches!(reply, Frame::Simple(_)), "BGREWRITEAOF: {reply:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done: u64 = info_field(c, "persistence", "aof_rewrites").parse().unwrap();
        if done > before
            && info_field(c, "persistence", "aof_rewrite_in_progress") == "0"
            && info_field(c, "persistence", "aof_rewrite_scheduled") == "0"
        {
            assert_eq!(info_field(c, "persistence", "aof_last_bgrewrite_status"), "ok");
            return;
        }
        assert!(Instant::now() < deadline, "BGREWRITEAOF did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `path` no longer exists (Redis unlinks history files in a background thread).
pub fn wait_gone(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while path.exists() {
        assert!(Instant::now() < deadline, "{} was not deleted", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The arguments of commands as owned byte strings.
pub fn argvs(commands: &[Command<'_>]) -> Vec<Vec<Vec<u8>>> {
    commands.iter().map(|c| c.argv.iter().map(|a| a.to_vec()).collect()).collect()
}

/// An expected argument: exact bytes, or a millisecond time within a range.
#[derive(Clone, Debug)]
pub enum Arg {
    /// These bytes.
    Is(Vec<u8>),
    /// A decimal number in this inclusive range.
    Ms(u64, u64),
}

impl Arg {
    fn matches(&self, got: &[u8]) -> bool {
        match self {
            Arg::Is(b) => b == got,
            Arg::Ms(lo, hi) => {
                std::str::from_utf8(got).ok().and_then(|s| s.parse::<u64>().ok()).is_some_and(|v| *lo <= v && v <= *hi)
            }
        }
    }
}

/// An expected command from words (`"~"` is not special; use [`Arg::Ms`] through `cmd_ms`).
pub fn cmd(words: &[&[u8]]) -> Vec<Arg> {
    words.iter().map(|w| Arg::Is(w.to_vec())).collect()
}

/// Asserts that `got` is exactly the `expected` commands, in order.
#[track_caller]
pub fn assert_commands(got: &[Vec<Vec<u8>>], expected: &[Vec<Arg>]) {
    let show = |c: &Vec<Vec<u8>>| testkit::client::display_args(c);
    let show_expected = |e: &Vec<Arg>| {
        let words: Vec<String> = e
            .iter()
            .map(|a| match a {
                Arg::Is(b) => testkit::client::display_args(&[b]),
                Arg::Ms(lo, hi) => format!("<ms {lo}..={hi}>"),
            })
            .collect();
        words.join(" ")
    };
    let ok = got.len() == expected.len()
        && got.iter().zip(expected).all(|(g, e)| g.len() == e.len() && g.iter().zip(e).all(|(a, p)| p.matches(a)));
    assert!(
        ok,
        "commands differ\n--- got ---\n{}\n--- expected ---\n{}",
        got.iter().map(show).collect::<Vec<_>>().join("\n"),
        expected.iter().map(show_expected).collect::<Vec<_>>().join("\n")
    );
}

/// The path of a byte-string file name inside `dir`.
pub fn path_of(dir: &Path, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    dir.join(std::ffi::OsStr::from_bytes(name))
}

/// Runs redis-server on `dir` (its AOF directory `appendonlydir`) with `args`, expecting it to
/// exit during start-up; returns its log (stdout).
pub fn redis_fails_to_start(dir: &Path, args: &[&str]) -> String {
    let port = testkit::free_port().to_string();
    let mut p = Process::new(testkit::redis_bin());
    p.args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .args(args)
        .current_dir(dir);
    let done = testkit::run_to_exit(&mut p, Duration::from_secs(20));
    assert!(!done.status.success(), "redis-server was expected to refuse to start:\n{}", done.stdout);
    done.stdout
}

/// Runs `redis-check-aof` on `path`; returns (success, stdout).
pub fn check_aof(path: &Path) -> (bool, String) {
    let done =
        testkit::run_to_exit(Process::new(testkit::tool_bin("redis-check-aof")).arg(path), Duration::from_secs(20));
    (done.status.success(), done.stdout)
}
