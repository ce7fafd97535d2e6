//! Which clients may hold which keys of one shard in their client-side cache (`CLIENT
//! TRACKING`, Redis's `TrackingTable`). It lives in the shard, under the shard's lock, so a
//! read registers its keys and a write learns whom to invalidate without another lock.
//!
//! As in Redis the table is keyed by the key's name alone, over every database: a client
//! that read `k` in database 0 is told when `k` changes in any database. Entries name client
//! ids, never sessions: a client that turned tracking off or went away is skipped when its
//! entries fire, not searched for here.

use std::collections::HashMap;

/// Tracked keys of one shard: per key, the ids of the clients that read it since it last
/// changed, each once.
#[derive(Default, Debug)]
pub struct TrackedKeys {
    map: HashMap<Box<[u8]>, Vec<u64>>,
    /// (key, client) pairs held.
    items: usize,
}

impl TrackedKeys {
    /// True if no key of this shard is tracked (the common case, checked first).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True if some client tracks `key`.
    #[inline]
    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// Remembers that `client` read `key`; returns (the key is new to the table, the pair is
    /// new), for the keyspace-wide counts.
    pub fn add(&mut self, key: &[u8], client: u64) -> (bool, bool) {
        match self.map.get_mut(key) {
            Some(ids) if ids.contains(&client) => (false, false),
            Some(ids) => {
                ids.push(client);
                self.items += 1;
                (false, true)
            }
            None => {
                self.map.insert(Box::from(key), vec![client]);
                self.items += 1;
                (true, true)
            }
        }
    }

    /// Forgets `key`, returning the clients that tracked it (they are told it changed and
    /// must read it again to be told of the next change).
    pub fn take(&mut self, key: &[u8]) -> Option<Vec<u64>> {
        let ids = self.map.remove(key)?;
        self.items -= ids.len();
        Some(ids)
    }

    /// Some tracked key (for `tracking-table-max-keys`, which forgets keys to stay under it).
    pub fn any_key(&self) -> Option<Box<[u8]>> {
        self.map.keys().next().cloned()
    }

    /// Forgets everything (a flush invalidates every client at once); returns the (keys,
    /// pairs) dropped.
    pub fn clear(&mut self) -> (usize, usize) {
        let counts = (self.map.len(), self.items);
        self.map = HashMap::new();
        self.items = 0;
        counts
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// (key, client) pairs held.
    pub fn items(&self) -> usize {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_fires_once_for_each_reader_then_is_forgotten() {
        let mut t = TrackedKeys::default();
        assert!(t.is_empty());
        assert_eq!(t.add(b"k", 1), (true, true));
        assert_eq!(t.add(b"k", 1), (false, false));
        assert_eq!(t.add(b"k", 2), (false, true));
        assert_eq!(t.add(b"j", 2), (true, true));
        assert_eq!((t.len(), t.items()), (2, 3));
        assert!(t.contains(b"k") && !t.contains(b"x"));
        assert_eq!(t.take(b"k"), Some(vec![1, 2]));
        assert_eq!(t.take(b"k"), None);
        assert_eq!((t.len(), t.items()), (1, 1));
        assert_eq!(t.any_key().as_deref(), Some(&b"j"[..]));
        assert_eq!(t.clear(), (1, 1));
        assert!(t.is_empty() && t.items() == 0);
    }
}
