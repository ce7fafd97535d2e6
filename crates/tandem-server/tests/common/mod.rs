//! Helpers shared by the integration tests of `tandem-server`.
#![allow(dead_code)]

pub mod dataset;
pub mod jobqueue;

use testkit::{RedisProcess, TandemProcess};

/// The binary under test.
pub const TANDEM_BIN: &str = env!("CARGO_BIN_EXE_tandem-server");

/// Flags given to both servers of a differential pair so their configurations match where it
/// shows in replies (both defaults today, spelled out so a changed default shows up here).
pub const COMMON_FLAGS: &[&str] = &["--databases", "16", "--timeout", "0", "--maxclients", "10000", "--hz", "10"];

/// Starts `tandem-server` with `args` on a free port.
pub fn tandem(args: &[&str]) -> TandemProcess {
    TandemProcess::spawn_bin(TANDEM_BIN, args)
}

/// Starts Debian's `redis-server` with `args` on a free port (panics if it is not installed).
pub fn redis(args: &[&str]) -> RedisProcess {
    RedisProcess::spawn(args)
}

/// Flags given to redis-server only, for behaviour that Tandem has without a setting.
/// `DEBUG` is refused by Redis 7 unless enabled; Tandem always allows it.
pub const REDIS_ONLY_FLAGS: &[&str] = &["--enable-debug-command", "yes"];

/// Starts a Tandem and a Redis with [`COMMON_FLAGS`], in parallel.
pub fn pair() -> (TandemProcess, RedisProcess) {
    std::thread::scope(|s| {
        let t = s.spawn(|| tandem(COMMON_FLAGS));
        let r = redis(&[COMMON_FLAGS, REDIS_ONLY_FLAGS].concat());
        (t.join().expect("starting tandem-server"), r)
    })
}
