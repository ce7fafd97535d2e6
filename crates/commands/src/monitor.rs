//! `MONITOR`: every command the server runs, as one line per command to every monitoring
//! client, in Redis's format: `+<seconds>.<micros> [<db> <addr>] "arg" "arg" ...`.
//!
//! As in Redis 7, a command is shown once it has run (so a command that failed while running
//! is shown, one refused before running is not), with the database selected after it, and
//! never an administrative command (`MONITOR` itself, `CONFIG`, `DEBUG` ...). `AUTH` and
//! `HELLO ... AUTH` passwords are shown as `(redacted)`.

use crate::pubsub::Mailbox;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The monitoring clients.
#[derive(Default)]
pub struct Monitors {
    list: RwLock<Vec<Arc<Mailbox>>>,
    count: AtomicUsize,
}

impl Monitors {
    /// True when nobody monitors (one atomic load per command).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Adds a monitoring client.
    pub fn add(&self, m: Arc<Mailbox>) {
        let mut list = self.list.write();
        list.push(m);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Removes client `id` (`RESET`, disconnect).
    pub fn remove(&self, id: u64) {
        let mut list = self.list.write();
        list.retain(|m| m.id != id);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Sends one command's line to every monitor but client `from`; returns the line if
    /// `from` monitors too (it goes after the command's reply, as in Redis).
    pub fn feed(&self, unix_us: i64, db: usize, addr: &str, argv: &[&[u8]], now_ms: i64, from: u64) -> Option<Vec<u8>> {
        let line = line(unix_us, db, addr, argv);
        let mut own = false;
        for m in self.list.read().iter() {
            if m.id == from {
                own = true;
            } else {
                m.deliver(now_ms, |w| w.raw(&line));
            }
        }
        own.then_some(line)
    }
}

/// One command's line, `\r\n` included.
pub fn line(unix_us: i64, db: usize, addr: &str, argv: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("+{}.{:06} [{db} {addr}]", unix_us / 1_000_000, unix_us % 1_000_000).into_bytes();
    let redact_from = redacted_from(argv);
    for (i, a) in argv.iter().enumerate() {
        out.push(b' ');
        if redact_from.as_ref().is_some_and(|r| r.contains(&i)) {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(a, &mut out);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The arguments shown as `(redacted)`: `AUTH`'s (when its arity is right) and the user
/// and password after `HELLO ... AUTH`.
fn redacted_from(argv: &[&[u8]]) -> Option<std::ops::Range<usize>> {
    let name = argv.first()?;
    if name.eq_ignore_ascii_case(b"auth") && (2..=3).contains(&argv.len()) {
        return Some(1..argv.len());
    }
    if name.eq_ignore_ascii_case(b"hello") {
        let at = argv.iter().position(|a| a.eq_ignore_ascii_case(b"auth"))?;
        return Some(at + 1..(at + 3).min(argv.len()));
    }
    None
}

/// Redis's `sdscatrepr`: a double-quoted string with `\n \r \t \a \b \" \\` escaped and other
/// unprintable bytes as `\xhh`.
fn quote(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_redis_lines() {
        let l = line(1_339_518_083_107_412, 0, "127.0.0.1:60866", &[b"keys", b"*"]);
        assert_eq!(l, b"+1339518083.107412 [0 127.0.0.1:60866] \"keys\" \"*\"\r\n");
        let l = line(5_000_001, 3, "a:1", &[b"set", b"k\"\\", b"\x00\n\xff\x07"]);
        assert_eq!(l, b"+5.000001 [3 a:1] \"set\" \"k\\\"\\\\\" \"\\x00\\n\\xff\\a\"\r\n");
        let l = line(0, 0, "a:1", &[b"AUTH", b"user", b"pw"]);
        assert_eq!(l, b"+0.000000 [0 a:1] \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n");
        let l = line(0, 0, "a:1", &[b"hello", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]);
        assert_eq!(
            l,
            b"+0.000000 [0 a:1] \"hello\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"SETNAME\" \"n\"\r\n"
        );
    }
}
