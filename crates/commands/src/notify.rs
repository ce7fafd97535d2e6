//! Keyspace notifications (`notify-keyspace-events`, Redis's `notify.c`): the class bits,
//! the setting's letters, and publishing a command's events.
//!
//! Handlers and [`crate::ctx::Store`] record events as they happen (`Store::notify`); the
//! executor publishes them at the end of the command, in order, still under the command's
//! shard locks, so two commands on one key publish in the order they ran. With the setting
//! empty (the default) recording costs one branch.

use crate::host::Host;

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (`DEL`, `EXPIRE`, `RENAME`, ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: keys expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: keys evicted.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: lookups of missing keys.
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events.
pub const MODULE: u32 = 1 << 13;
/// `n`: keys added to a database.
pub const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses the setting's letters; None for any other byte (Redis rejects the whole value).
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.bytes() {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The setting as `CONFIG GET` shows it: `A` for every class of `A`, else the class letters,
/// then `K`, `E`, `m`. (As in Redis 7, `n` is not shown next to `A` though it stays on.)
pub fn render_flags(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The error text (after `CONFIG SET failed ... - `) for letters that are not classes.
pub const BAD_FLAGS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// One event a command caused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Its class bit.
    pub class: u32,
    /// Its name (`set`, `lpush`, `expired`, ...).
    pub name: &'static str,
    /// The key's database.
    pub db: usize,
    /// The key.
    pub key: Vec<u8>,
}

/// True if events of `class` are published under `flags`.
#[inline]
pub fn wanted(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

/// Appends an event to `events` if its class is published under `flags`.
#[inline]
pub fn record(events: &mut Vec<Event>, flags: u32, class: u32, name: &'static str, db: usize, key: &[u8]) {
    if wanted(flags, class) {
        events.push(Event { class, name, db, key: key.to_vec() });
    }
}

/// Publishes events: on the keyspace channel first, then the keyevent channel.
pub fn publish(host: &dyn Host, flags: u32, events: &[Event], now_ms: i64) {
    let ps = host.pubsub();
    if !ps.has_subscribers() {
        return;
    }
    let mut channel = Vec::new();
    for e in events {
        if flags & KEYSPACE != 0 {
            channel.clear();
            channel.extend_from_slice(format!("__keyspace@{}__:", e.db).as_bytes());
            channel.extend_from_slice(&e.key);
            ps.publish(&channel, e.name.as_bytes(), now_ms);
        }
        if flags & KEYEVENT != 0 {
            channel.clear();
            channel.extend_from_slice(format!("__keyevent@{}__:{}", e.db, e.name).as_bytes());
            ps.publish(&channel, &e.key, now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_parse_and_render_as_redis_does() {
        for (given, shown) in [
            ("", ""),
            ("KEA", "AKE"),
            ("Ex", "xE"),
            ("KEg$", "g$KE"),
            ("AKEm", "AKEm"),
            ("nKE", "nKE"),
            ("AKEn", "AKE"),
            ("g$lshzxetd", "A"),
            ("g$lshzxet", "g$lshzxet"),
        ] {
            assert_eq!(render_flags(parse_flags(given).unwrap()), shown, "{given}");
        }
        assert!(parse_flags("KE ").is_none());
        assert!(parse_flags("Ko").is_none());
        assert!(wanted(parse_flags("K$").unwrap(), STRING));
        assert!(!wanted(parse_flags("A").unwrap(), STRING));
        assert!(!wanted(parse_flags("KE").unwrap(), STRING));
    }
}
