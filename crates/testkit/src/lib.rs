//! Test harness for Tandem: real server processes, a blocking RESP client and the case-file
//! format of the differential tests.
//!
//! * [`TandemProcess`] and [`RedisProcess`] start `tandem-server` or Debian's `redis-server` on a
//!   free loopback port with a private temporary directory, wait until it answers `PING`, and
//!   kill it on drop. Their output goes to `stdout.log` / `stderr.log` in that directory, which
//!   is kept (and its path printed) when the test panics.
//! * [`RawClient`] speaks RESP over a plain `std::net::TcpStream` and hands back
//!   [`protocol::Frame`]s, so tests see exactly what went over the wire.
//! * [`python::venv`] builds a Python venv with pinned PyPI packages, for tests that drive a
//!   real client library (a job queue) against the server.
//! * [`split_line`] splits a command line the way `redis-cli` does.
//! * [`cases`] parses the `diff/*.cases` files and compares replies under the case modes
//!   (exact, numeric tolerance, type only, unordered).
//!
//! Integration tests of the `tandem-server` package pass the binary's path with
//! `env!("CARGO_BIN_EXE_tandem-server")`; [`tandem_bin`] finds it otherwise.

pub mod cases;
pub mod client;
pub mod process;
pub mod python;
pub mod split;

pub use cases::{parse_cases, replies_match, Case, CaseLine, Mode};
pub use client::{encode_command, RawClient, ReadError};
pub use process::{
    free_port, redis_bin, run_to_exit, tandem_bin, temp_dir, tool_bin, Finished, RedisProcess, ServerProcess,
    TandemProcess,
};
pub use protocol::Frame;
pub use split::split_line;

/// Signal numbers for [`ServerProcess::signal`].
pub mod signal {
    /// Polite termination.
    pub const SIGTERM: i32 = libc::SIGTERM;
    /// Interrupt (Ctrl-C).
    pub const SIGINT: i32 = libc::SIGINT;
    /// Immediate death.
    pub const SIGKILL: i32 = libc::SIGKILL;
    /// Freeze.
    pub const SIGSTOP: i32 = libc::SIGSTOP;
    /// Thaw.
    pub const SIGCONT: i32 = libc::SIGCONT;
}

/// Shorthand for a bulk-string frame.
pub fn bulk(s: impl AsRef<[u8]>) -> Frame {
    Frame::Bulk(s.as_ref().to_vec())
}

/// Shorthand for a simple-string frame.
pub fn simple(s: impl AsRef<[u8]>) -> Frame {
    Frame::Simple(s.as_ref().to_vec())
}

/// Shorthand for an error frame (text without the leading dash).
pub fn error(s: impl AsRef<[u8]>) -> Frame {
    Frame::Error(s.as_ref().to_vec())
}
