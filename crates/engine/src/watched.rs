//! Which clients `WATCH` which keys of one shard (Redis's `db->watched_keys`). It lives in the
//! shard, under the shard's lock, so that a command changing a key learns whether anyone
//! watches it without taking another lock. A watcher is the client's id and its
//! transaction's "dirty" flag, which a change of the key sets: `EXEC` then refuses to run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One client watching one key.
#[derive(Debug)]
struct Watcher {
    db: usize,
    client: u64,
    /// Set when the key changes: the client's `EXEC` fails.
    dirty: Arc<AtomicBool>,
    /// The key had already expired (but was still stored) when watched: its removal is then
    /// no change, as in Redis.
    expired: bool,
}

/// How a key changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Written, deleted, renamed, flushed...
    Modified,
    /// Removed because its time had run out.
    ExpiredRemoved,
}

/// Watched keys of one shard: per key, the watchers over every database. Keyed by the key
/// bytes alone so lookups borrow the caller's key.
#[derive(Default, Debug)]
pub struct WatchedKeys {
    map: HashMap<Box<[u8]>, Vec<Watcher>>,
}

impl WatchedKeys {
    /// True if nobody watches any key of this shard (the common case, checked first).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True if some client watches `key` of database `db`.
    pub fn has(&self, db: usize, key: &[u8]) -> bool {
        self.map.get(key).is_some_and(|ws| ws.iter().any(|w| w.db == db))
    }

    /// Adds `client` as a watcher of `key` (once); `expired` says the key is stored but its
    /// time has run out.
    pub fn add(&mut self, db: usize, key: &[u8], client: u64, dirty: &Arc<AtomicBool>, expired: bool) {
        let ws = match self.map.get_mut(key) {
            Some(ws) => ws,
            None => self.map.entry(Box::from(key)).or_default(),
        };
        if !ws.iter().any(|w| w.db == db && w.client == client) {
            ws.push(Watcher { db, client, dirty: dirty.clone(), expired });
        }
    }

    /// Removes `client`'s watch of `key`.
    pub fn remove(&mut self, db: usize, key: &[u8], client: u64) {
        let Some(ws) = self.map.get_mut(key) else { return };
        ws.retain(|w| !(w.db == db && w.client == client));
        if ws.is_empty() {
            self.map.remove(key);
        }
    }

    /// `key` of database `db` changed: its watchers' transactions fail. The removal of a key
    /// that had already expired when watched changes nothing for that watcher (it read the
    /// key as absent and it is absent), but a later change does.
    pub fn touch(&mut self, db: usize, key: &[u8], change: Change) {
        let Some(ws) = self.map.get_mut(key) else { return };
        for w in ws.iter_mut().filter(|w| w.db == db) {
            if w.expired && change == Change::ExpiredRemoved {
                w.expired = false;
            } else {
                w.dirty.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Every key of database `db` someone watches (flushes and `SWAPDB` touch those that
    /// exist).
    pub fn keys_of(&self, db: usize) -> Vec<Box<[u8]>> {
        self.map.iter().filter(|(_, ws)| ws.iter().any(|w| w.db == db)).map(|(k, _)| k.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_mark_the_watchers_of_that_key_and_database_only() {
        let mut w = WatchedKeys::default();
        let a = Arc::new(AtomicBool::new(false));
        let b = Arc::new(AtomicBool::new(false));
        assert!(w.is_empty());
        w.add(0, b"k", 1, &a, false);
        w.add(1, b"k", 2, &b, false);
        assert!(w.has(0, b"k") && w.has(1, b"k") && !w.has(2, b"k") && !w.has(0, b"x"));
        w.touch(0, b"x", Change::Modified);
        w.touch(0, b"k", Change::Modified);
        assert!(a.load(Ordering::Relaxed) && !b.load(Ordering::Relaxed));
        assert_eq!(w.keys_of(1), vec![Box::from(&b"k"[..])]);
        w.remove(0, b"k", 1);
        w.remove(1, b"k", 2);
        assert!(w.is_empty());
    }

    #[test]
    fn removing_a_key_expired_when_watched_is_no_change_but_what_follows_is() {
        let mut w = WatchedKeys::default();
        let a = Arc::new(AtomicBool::new(false));
        w.add(0, b"k", 1, &a, true);
        w.touch(0, b"k", Change::ExpiredRemoved);
        assert!(!a.load(Ordering::Relaxed));
        w.touch(0, b"k", Change::Modified);
        assert!(a.load(Ordering::Relaxed));
        let b = Arc::new(AtomicBool::new(false));
        w.add(0, b"j", 2, &b, false);
        w.touch(0, b"j", Change::ExpiredRemoved);
        assert!(b.load(Ordering::Relaxed), "a key alive when watched that expires is a change");
    }
}
