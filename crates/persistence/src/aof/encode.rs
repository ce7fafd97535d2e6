//! Writing commands the way Redis appends them to an AOF.
//!
//! Every command is a RESP multibulk of bulk strings, whatever the client sent (inline or
//! multibulk, any case). A `SELECT` precedes a command whenever its database differs from the
//! one the file last selected; a new file (a fresh incr file, a rewritten base) starts with no
//! database selected, so its first command is preceded by a `SELECT`.

use engine::num::{format_i64, format_i64_into};

/// Appends `argv` as a RESP multibulk: `*<argc>\r\n` then `$<len>\r\n<arg>\r\n` per argument
/// (the request encoding lives in `protocol`; this name says what the AOF uses it for).
pub fn append_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    protocol::encode_multibulk(out, argv);
}

/// Appends `SELECT <db>` as Redis writes it.
pub fn append_select(out: &mut Vec<u8>, db: usize) {
    let mut digits = [0u8; 20];
    let start = format_i64_into(db as i64, &mut digits);
    append_command(out, &[b"SELECT".as_slice(), &digits[start..]]);
}

/// Appends the timestamp annotation `#TS:<unix seconds>\r\n` that Redis writes with
/// `aof-timestamp-enabled` (readers skip it; `redis-check-aof --truncate-to-timestamp` uses it).
pub fn append_timestamp(out: &mut Vec<u8>, unix_secs: i64) {
    out.extend_from_slice(b"#TS:");
    format_i64(unix_secs, out);
    out.extend_from_slice(b"\r\n");
}

/// Appends commands to one AOF file, remembering which database the file has selected so that
/// `SELECT` is written only when it changes, and (if used) the last timestamp annotation.
#[derive(Clone, Debug, Default)]
pub struct Encoder {
    /// The database the file has selected; `None` at the start of a file.
    db: Option<usize>,
    /// The last `#TS` written; annotations are only written when the second changes.
    last_timestamp: Option<i64>,
}

impl Encoder {
    /// An encoder for a new file: no database selected yet, no timestamp written.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// The database the file has selected, if any.
    pub fn selected_db(&self) -> Option<usize> {
        self.db
    }

    /// Forgets the selected database, so the next command writes a `SELECT` again. Redis does
    /// this whenever it starts a new incr file and when a rewrite completes.
    pub fn reset_db(&mut self) {
        self.db = None;
    }

    /// Appends a command that runs in database `db`, preceded by `SELECT db` if the file has
    /// another database (or none) selected.
    pub fn append<A: AsRef<[u8]>>(&mut self, out: &mut Vec<u8>, db: usize, argv: &[A]) {
        if self.db != Some(db) {
            append_select(out, db);
            self.db = Some(db);
        }
        append_command(out, argv);
    }

    /// Appends a command that belongs to no database (Redis passes `dictid -1` for these, e.g.
    /// `FUNCTION LOAD`): no `SELECT` is written and the selection is kept.
    pub fn append_global<A: AsRef<[u8]>>(&mut self, out: &mut Vec<u8>, argv: &[A]) {
        append_command(out, argv);
    }

    /// Appends a `#TS` annotation if `unix_secs` is later than the last one written, as Redis
    /// does before a command when `aof-timestamp-enabled` is on.
    pub fn timestamp(&mut self, out: &mut Vec<u8>, unix_secs: i64) {
        if self.last_timestamp.is_none_or(|last| unix_secs > last) {
            append_timestamp(out, unix_secs);
            self.last_timestamp = Some(unix_secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_only_on_change() {
        let mut out = Vec::new();
        let mut enc = Encoder::new();
        enc.append(&mut out, 0, &["SET", "a", "1"]);
        enc.append(&mut out, 0, &["DEL", "a"]);
        enc.append(&mut out, 12, &["SET", "b", ""]);
        enc.append_global(&mut out, &["FUNCTION", "FLUSH"]);
        enc.reset_db();
        enc.append(&mut out, 12, &["INCR", "c"]);
        let expected = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
                        *2\r\n$3\r\nDEL\r\n$1\r\na\r\n*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n\
                        *3\r\n$3\r\nSET\r\n$1\r\nb\r\n$0\r\n\r\n*2\r\n$8\r\nFUNCTION\r\n$5\r\nFLUSH\r\n\
                        *2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n";
        assert_eq!(String::from_utf8_lossy(&out), expected);
        assert_eq!(enc.selected_db(), Some(12));
    }

    #[test]
    fn timestamps_only_when_the_second_changes() {
        let mut out = Vec::new();
        let mut enc = Encoder::new();
        enc.timestamp(&mut out, 1700000000);
        enc.timestamp(&mut out, 1700000000);
        enc.timestamp(&mut out, 1699999999);
        enc.timestamp(&mut out, 1700000001);
        assert_eq!(out, b"#TS:1700000000\r\n#TS:1700000001\r\n");
    }
}
