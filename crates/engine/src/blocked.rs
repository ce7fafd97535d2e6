//! Which clients wait on which keys of one shard (Redis's `db->blocking_keys`): per database
//! and key, the ids of the clients blocked on it, in the order they blocked. It lives in the
//! shard, under the shard's lock, so that a command creating a key learns whether anyone
//! waits for it without taking another lock. What a client waits for (the command, its
//! connection) is kept by `commands::blocking`; this holds only ids.

use std::collections::{HashMap, VecDeque};

/// Clients blocked on keys of one shard.
#[derive(Default, Debug)]
pub struct BlockedKeys {
    map: HashMap<(usize, Box<[u8]>), VecDeque<u64>>,
}

impl BlockedKeys {
    /// True if nobody waits on any key of this shard (the common case, checked first).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True if some client waits on `key` of database `db`.
    pub fn has(&self, db: usize, key: &[u8]) -> bool {
        !self.map.is_empty() && self.map.contains_key(&(db, Box::from(key)))
    }

    /// Adds `client` at the back of `key`'s queue (once). True if the key had no waiter before.
    pub fn add(&mut self, db: usize, key: &[u8], client: u64) -> bool {
        let queue = self.map.entry((db, Box::from(key))).or_default();
        if !queue.contains(&client) {
            queue.push_back(client);
        }
        queue.len() == 1
    }

    /// Removes `client` from `key`'s queue. True if the key has no waiter left (and was
    /// waited on before).
    pub fn remove(&mut self, db: usize, key: &[u8], client: u64) -> bool {
        let k = (db, Box::from(key));
        let Some(queue) = self.map.get_mut(&k) else { return false };
        queue.retain(|c| *c != client);
        if queue.is_empty() {
            self.map.remove(&k);
            return true;
        }
        false
    }

    /// The clients waiting on `key`, first come first.
    pub fn waiters(&self, db: usize, key: &[u8]) -> Vec<u64> {
        if self.map.is_empty() {
            return Vec::new();
        }
        self.map.get(&(db, Box::from(key))).map(|q| q.iter().copied().collect()).unwrap_or_default()
    }

    /// Every key of database `db` someone waits on (for `SWAPDB`, which makes them ready if
    /// the swapped-in database holds them).
    pub fn keys_of(&self, db: usize) -> Vec<Box<[u8]>> {
        self.map.keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
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
