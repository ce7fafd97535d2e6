//! The keyspace: shards of databases of keys.
//!
//! A key's 64-bit hash picks its shard (top bits) and its bucket inside the shard's dicts (low
//! bits). Each shard holds all databases for its part of the hash space, so a command that
//! names one key locks one shard whichever database it touches (`MOVE` and `COPY ... DB` too),
//! and `SWAPDB` swaps per shard. Lock order: shards in ascending index; a command locks all its
//! shards before touching any of them, and never waits for anything while holding them.

use crate::dict::{Dict, KeyHasher};
use crate::sync::{Mutex, MutexGuard};
use crate::value::Value;

/// What a key maps to: the value and its access metadata.
#[derive(Debug)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Last access time in seconds (for `OBJECT IDLETIME` and LRU eviction).
    pub lru: u32,
}

/// One database's share of one shard: the keys and, as in Redis, a second dict of the keys
/// that have a time to live, so that expiry can sample volatile keys only.
pub struct Db {
    /// Key to entry.
    pub main: Dict<Entry>,
    /// Key to absolute expiry time in Unix milliseconds.
    pub expires: Dict<i64>,
}

impl Db {
    fn new(hasher: &KeyHasher) -> Db {
        Db { main: Dict::new(hasher.clone()), expires: Dict::new(hasher.clone()) }
    }

    /// An empty database share hashing like `other` (to swap in when flushing).
    pub fn new_like(other: &Db) -> Db {
        Db::new(other.main.hasher())
    }

    /// Number of keys (including logically expired ones not yet removed).
    pub fn len(&self) -> usize {
        self.main.len()
    }

    /// True when the database share holds no keys.
    pub fn is_empty(&self) -> bool {
        self.main.is_empty()
    }

    /// The expiry time of a key, if it has one.
    #[inline]
    pub fn expire_of(&self, hash: u64, key: &[u8]) -> Option<i64> {
        if self.expires.is_empty() {
            return None;
        }
        self.expires.get(hash, key).copied()
    }

    /// True if the key exists and its time to live has run out at `now_ms`.
    #[inline]
    pub fn is_expired(&self, hash: u64, key: &[u8], now_ms: i64) -> bool {
        matches!(self.expire_of(hash, key), Some(when) if when <= now_ms)
    }

    /// The entry under a key, ignoring expiry.
    #[inline]
    pub fn entry(&self, hash: u64, key: &[u8]) -> Option<&Entry> {
        self.main.get(hash, key)
    }

    /// The entry under a key for modification, ignoring expiry.
    #[inline]
    pub fn entry_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut Entry> {
        self.main.get_mut(hash, key)
    }

    /// Stores a value, replacing any previous one, and clears any time to live (what Redis's
    /// `setKey` does without `KEEPTTL`). Returns true if the key was new.
    pub fn set(&mut self, hash: u64, key: &[u8], value: Value, lru: u32) -> bool {
        if !self.expires.is_empty() {
            self.expires.remove(hash, key);
        }
        self.main.insert(hash, key, Entry { value, lru }).is_none()
    }

    /// Stores a value, keeping the key's time to live. Returns true if the key was new.
    pub fn set_keep_ttl(&mut self, hash: u64, key: &[u8], value: Value, lru: u32) -> bool {
        self.main.insert(hash, key, Entry { value, lru }).is_none()
    }

    /// Removes a key and its time to live.
    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let removed = self.main.remove(hash, key);
        if removed.is_some() && !self.expires.is_empty() {
            self.expires.remove(hash, key);
        }
        removed
    }

    /// Sets the absolute expiry of an existing key.
    pub fn set_expire(&mut self, hash: u64, key: &[u8], when_ms: i64) {
        debug_assert!(self.main.get(hash, key).is_some(), "expire on a missing key");
        self.expires.insert(hash, key, when_ms);
    }

    /// Removes the time to live of a key; true if it had one.
    pub fn persist(&mut self, hash: u64, key: &[u8]) -> bool {
        !self.expires.is_empty() && self.expires.remove(hash, key).is_some()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.main.clear();
        self.expires.clear();
    }
}

/// One lockable part of the keyspace: every database's keys whose hash falls in this shard.
pub struct Shard {
    /// One entry per database.
    pub dbs: Box<[Db]>,
}

/// The whole keyspace: `databases` databases split over a power-of-two number of shards.
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    shard_bits: u32,
    hasher: KeyHasher,
    databases: usize,
}

impl Keyspace {
    /// A keyspace of `databases` databases over `shards` shards (rounded up to a power of
    /// two), hashing keys with `seed`.
    pub fn new(databases: usize, shards: usize, seed: u64) -> Keyspace {
        let shards = shards.max(1).next_power_of_two();
        let hasher = KeyHasher::with_seed(seed);
        let shard_vec = (0..shards)
            .map(|_| Mutex::new(Shard { dbs: (0..databases).map(|_| Db::new(&hasher)).collect() }))
            .collect();
        Keyspace { shards: shard_vec, shard_bits: shards.trailing_zeros(), hasher, databases }
    }

    /// Number of databases.
    pub fn databases(&self) -> usize {
        self.databases
    }

    /// Number of shards.
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// Bits of a scan cursor used for the shard index.
    pub fn shard_bits(&self) -> u32 {
        self.shard_bits
    }

    /// The hash of a key.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash(key)
    }

    /// The shard a hash belongs to.
    #[inline]
    pub fn shard_of(&self, hash: u64) -> usize {
        if self.shard_bits == 0 {
            0
        } else {
            (hash >> (64 - self.shard_bits)) as usize
        }
    }

    /// Locks one shard. Callers that lock several must go in ascending index order.
    #[inline]
    pub fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard].lock()
    }

    /// Locks every shard in order.
    pub fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        self.shards.iter().map(|s| s.lock()).collect()
    }
}

/// Seconds clock used for LRU metadata, from the environment's milliseconds.
#[inline]
pub fn lru_clock(now_ms: i64) -> u32 {
    (now_ms / 1000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Str;

    #[test]
    fn set_get_expire_remove() {
        let ks = Keyspace::new(16, 8, 1);
        let key = b"k";
        let h = ks.hash(key);
        let mut shard = ks.lock(ks.shard_of(h));
        let db = &mut shard.dbs[3];
        assert!(db.set(h, key, Value::Str(Str::from_bytes(b"v")), 0));
        db.set_expire(h, key, 1000);
        assert!(!db.is_expired(h, key, 999));
        assert!(db.is_expired(h, key, 1000));
        // SET without KEEPTTL clears the time to live.
        assert!(!db.set(h, key, Value::Str(Str::from_bytes(b"w")), 0));
        assert_eq!(db.expire_of(h, key), None);
        assert!(db.remove(h, key).is_some());
        assert!(db.is_empty());
    }

    #[test]
    fn shards_are_spread() {
        let ks = Keyspace::new(1, 16, 9);
        let mut counts = [0usize; 16];
        for i in 0..16_000 {
            counts[ks.shard_of(ks.hash(format!("k{i}").as_bytes()))] += 1;
        }
        assert!(counts.iter().all(|&c| c > 700 && c < 1300), "{counts:?}");
    }
}
