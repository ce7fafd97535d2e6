//! Redis 7's multi-part append-only file, as files on disk: no threads, no fsync policy, no
//! server.
//!
//! Redis 7 keeps its AOF in a directory (`appenddirname`) holding a *manifest*
//! (`<appendfilename>.manifest`) that lists one *base* file (a snapshot: an RDB file, or
//! commands when `aof-use-rdb-preamble` is off), the *incr* files of commands logged since, in
//! order, and *history* files a rewrite made obsolete and that wait to be deleted.
//!
//! * [`manifest`]: the [`Manifest`] model, its parser with Redis's rules and error texts, its
//!   exact text form, the file-name scheme, and the transitions Redis performs on it (open a new
//!   incr file, install a rewritten base, retire files to history, delete history).
//! * [`reader`]: reads a command stream (`*N\r\n$len\r\narg\r\n...`) and tells a truncated tail
//!   (the caller may cut it off, `aof-load-truncated`) from corruption.
//! * [`encode`]: appends commands in that format, with the `SELECT`s Redis writes when the
//!   database changes.
//!
//! Loading a directory goes: [`manifest::load`], then for each of
//! [`Manifest::files_to_load`]: an empty file is skipped; a file for which [`is_rdb`] holds is
//! an RDB snapshot (loaded by [`crate::rdb_file`]); otherwise its commands are read with a
//! [`Reader`]. Only the last file may be truncated: Redis refuses to load a truncated file
//! followed by another.

pub mod encode;
pub mod manifest;
pub mod reader;

pub use encode::{append_command, append_select, append_timestamp, Encoder};
pub use manifest::{AofFile, BaseFormat, FileKind, Manifest, ManifestError, ManifestErrorKind};
pub use reader::{read_commands, Command, Problem, ReadError, Reader};

/// Whether an AOF file is (or starts with) an RDB snapshot: an RDB base file, or an old
/// single-file AOF with an RDB preamble. Redis decides by the first five bytes alone, as here.
pub fn is_rdb(data: &[u8]) -> bool {
    data.starts_with(b"REDIS")
}
