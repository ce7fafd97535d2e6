//! The active expiry cycle's sampling step, as in Redis's `activeExpireCycle`: pick random
//! keys among those with a time to live and remove the ones that have run out. The server
//! decides how often and for how long to run it; the keys removed are reported so the caller
//! can log them as `DEL` (followers never expire keys on their own).

use crate::env::Rng;
use crate::keyspace::Db;

/// Keys Redis samples per database per loop (`ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const KEYS_PER_LOOP: usize = 20;

/// Outcome of one sampling round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sampled {
    /// Keys looked at.
    pub sampled: usize,
    /// Keys removed because their time had run out.
    pub expired: usize,
}

/// Samples up to `samples` volatile keys of `db` and removes those expired at `now_ms`,
/// calling `on_expired` with each removed key.
pub fn sample_and_expire(
    db: &mut Db,
    now_ms: i64,
    rng: &mut Rng,
    samples: usize,
    mut on_expired: impl FnMut(&[u8]),
) -> Sampled {
    let mut doomed: Vec<Box<[u8]>> = Vec::new();
    let mut out = sample_expired(db, now_ms, rng, samples, &mut doomed);
    out.expired = 0;
    for key in doomed {
        let h = db.main.hasher().hash(&key);
        if db.remove(h, &key).is_some() {
            out.expired += 1;
            on_expired(&key);
        }
    }
    out
}

/// Samples up to `samples` volatile keys of `db` and adds those expired at `now_ms` to
/// `expired` (each once), leaving the database as it is: a cluster's leader collects them
/// this way and has the log remove them on every node. `Sampled::expired` counts the keys
/// added.
pub fn sample_expired(db: &Db, now_ms: i64, rng: &mut Rng, samples: usize, expired: &mut Vec<Box<[u8]>>) -> Sampled {
    let mut out = Sampled::default();
    let n = samples.min(db.expires.len());
    for _ in 0..n {
        let Some((key, when)) = db.expires.random_entry(|| rng.next_u64()) else {
            break;
        };
        out.sampled += 1;
        if *when <= now_ms && !expired.iter().any(|k| **k == *key) {
            expired.push(key.into());
            out.expired += 1;
        }
    }
    out
}

/// What the field expiry step did to one key.
pub enum Reaped<'a> {
    /// The key itself had expired and was removed.
    Key,
    /// These fields of the hash had expired and were removed, earliest first (the key too
    /// if none is left).
    Fields(&'a [Box<[u8]>]),
}

/// Takes up to `max_keys` hashes of `db` whose earliest field expiry is due at `now_ms`,
/// earliest first, and removes their expired fields, calling `on_reaped` for each (a hash
/// whose key has itself expired is removed whole). Returns the number of hashes visited.
pub fn expire_hash_fields(
    db: &mut Db,
    now_ms: i64,
    max_keys: usize,
    mut on_reaped: impl FnMut(&[u8], Reaped<'_>),
) -> usize {
    let due = db.hash_fields.due(now_ms, max_keys);
    for key in &due {
        let h = db.main.hasher().hash(key);
        if db.is_expired(h, key, now_ms) {
            db.remove(h, key);
            on_reaped(key, Reaped::Key);
            continue;
        }
        let gone = db.remove_expired_fields(h, key, now_ms);
        if !gone.is_empty() {
            on_reaped(key, Reaped::Fields(&gone));
        }
    }
    due.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Keyspace;
    use crate::value::{Str, Value};

    #[test]
    fn removes_only_expired_keys() {
        let ks = Keyspace::new(1, 1, 3);
        let mut shard = ks.lock(0);
        let db = &mut shard.dbs[0];
        for i in 0..100 {
            let k = format!("k{i}");
            let h = ks.hash(k.as_bytes());
            db.set(h, k.as_bytes(), Value::Str(Str::from_bytes(b"v")), 0);
            db.set_expire(h, k.as_bytes(), if i < 50 { 10 } else { 1000 });
        }
        let mut rng = Rng::new(5);
        let mut removed = Vec::new();
        for _ in 0..200 {
            sample_and_expire(db, 500, &mut rng, KEYS_PER_LOOP, |k| removed.push(k.to_vec()));
        }
        assert_eq!(removed.len(), 50);
        assert_eq!(db.len(), 50);
        assert_eq!(db.expires.len(), 50);
    }

    #[test]
    fn sampling_alone_finds_expired_keys_and_removes_none() {
        let ks = Keyspace::new(1, 1, 3);
        let mut shard = ks.lock(0);
        let db = &mut shard.dbs[0];
        for i in 0..40 {
            let k = format!("k{i}");
            let h = ks.hash(k.as_bytes());
            db.set(h, k.as_bytes(), Value::Str(Str::from_bytes(b"v")), 0);
            db.set_expire(h, k.as_bytes(), if i % 2 == 0 { 10 } else { 1000 });
        }
        let mut rng = Rng::new(9);
        let mut found = Vec::new();
        for _ in 0..100 {
            sample_expired(db, 500, &mut rng, KEYS_PER_LOOP, &mut found);
        }
        found.sort();
        let mut want: Vec<Box<[u8]>> = (0..40).step_by(2).map(|i| format!("k{i}").into_bytes().into()).collect();
        want.sort();
        assert_eq!(found, want);
        assert_eq!(db.len(), 40);
    }
}
