//! Which clients wait on which keys of one shard (Redis's `db->blocking_keys`): per database
//! and key, the ids of the clients blocked on it, in the order they blocked. It lives in the
//! shard, under the shard's lock, so that a command creating a key learns whether anyone
//! waits for it without taking another lock. What a client waits for (the command, its
//! connection) is kept by `commands::blocking`; this holds only ids.

use std::collections::{HashMap, VecDeque};

/// The queues of one key: per database, the ids of the clients waiting, first come first.
type Queues = Vec<(usize, VecDeque<u64>)>;

/// Clients blocked on keys of one shard: per key, per database, the queue of client ids.
/// Keyed by the key bytes alone so lookups borrow the caller's key instead of copying it.
#[derive(Default, Debug)]
pub struct BlockedKeys {
    map: HashMap<Box<[u8]>, Queues>,
}

impl BlockedKeys {
    /// True if nobody waits on any key of this shard (the common case, checked first).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn queue(&self, db: usize, key: &[u8]) -> Option<&VecDeque<u64>> {
        self.map.get(key)?.iter().find(|(d, _)| *d == db).map(|(_, q)| q)
    }

    /// True if some client waits on `key` of database `db`.
    pub fn has(&self, db: usize, key: &[u8]) -> bool {
        self.queue(db, key).is_some()
    }

    /// Adds `client` at the back of `key`'s queue (once). True if the key had no waiter before.
    pub fn add(&mut self, db: usize, key: &[u8], client: u64) -> bool {
        if !self.map.contains_key(key) {
            self.map.insert(Box::from(key), Vec::new());
        }
        let dbs = self.map.get_mut(key).expect("just ensured");
        let at = match dbs.iter().position(|(d, _)| *d == db) {
            Some(at) => at,
            None => {
                dbs.push((db, VecDeque::new()));
                dbs.len() - 1
            }
        };
        let queue = &mut dbs[at].1;
        if !queue.contains(&client) {
            queue.push_back(client);
        }
        queue.len() == 1
    }

    /// Removes `client` from `key`'s queue. True if the key has no waiter left (and was
    /// waited on before).
    pub fn remove(&mut self, db: usize, key: &[u8], client: u64) -> bool {
        let Some(dbs) = self.map.get_mut(key) else { return false };
        let Some(at) = dbs.iter().position(|(d, _)| *d == db) else { return false };
        let queue = &mut dbs[at].1;
        queue.retain(|c| *c != client);
        if !queue.is_empty() {
            return false;
        }
        dbs.swap_remove(at);
        if dbs.is_empty() {
            self.map.remove(key);
        }
        true
    }

    /// The clients waiting on `key`, first come first.
    pub fn waiters(&self, db: usize, key: &[u8]) -> Vec<u64> {
        self.queue(db, key).map(|q| q.iter().copied().collect()).unwrap_or_default()
    }

    /// Every key of database `db` someone waits on (for `SWAPDB`, which makes them ready if
    /// the swapped-in database holds them).
    pub fn keys_of(&self, db: usize) -> Vec<Box<[u8]>> {
        self.map.iter().filter(|(_, dbs)| dbs.iter().any(|(d, _)| *d == db)).map(|(k, _)| k.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_keep_arrival_order_and_empty_out() {
        let mut b = BlockedKeys::default();
        assert!(b.is_empty());
        assert!(b.add(0, b"k", 7));
        assert!(!b.add(0, b"k", 3));
        assert!(!b.add(0, b"k", 7), "a client is queued once");
        assert!(b.add(1, b"k", 9), "databases are apart");
        assert_eq!(b.waiters(0, b"k"), vec![7, 3]);
        assert!(b.has(0, b"k") && !b.has(0, b"x") && !b.has(2, b"k"));
        assert!(!b.remove(0, b"k", 7));
        assert_eq!(b.waiters(0, b"k"), vec![3]);
        assert!(b.remove(0, b"k", 3));
        assert!(!b.remove(0, b"k", 3), "already gone");
        assert_eq!(b.keys_of(1), vec![Box::from(&b"k"[..])]);
        assert!(b.remove(1, b"k", 9));
        assert!(b.is_empty());
    }
}
