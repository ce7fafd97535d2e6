//! The keyspace: shards of databases of keys.
//!
//! A key's 64-bit hash picks its shard (top bits) and its bucket inside the shard's dicts (low
//! bits). Each shard holds all databases for its part of the hash space, so a command that
//! names one key locks one shard whichever database it touches (`MOVE` and `COPY ... DB` too),
//! and `SWAPDB` swaps per shard. Lock order: shards in ascending index; a command locks all its
//! shards before touching any of them, and never waits for anything while holding them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::dict::{Dict, KeyHasher};
use crate::limits::{Limits, SharedLimits};
use crate::sync::{Mutex, MutexGuard};
use crate::value::Value;

/// A key's value with its access time, as a database hands it back when the key is removed.
/// (Inside the dict the access time is the key's stamp, beside the key, not beside the value:
/// see `small::KeyBytes`.)
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
    /// Key to value; each key's stamp is its access time (`lru_clock`).
    pub main: Dict<Value>,
    /// Key to absolute expiry time in Unix milliseconds.
    pub expires: Dict<i64>,
    /// The hashes that have fields with a time to live, by their earliest field expiry.
    pub hash_fields: HashFieldExpiries,
}

impl Db {
    fn new(hasher: &KeyHasher) -> Db {
        Db {
            main: Dict::new(hasher.clone()),
            expires: Dict::new(hasher.clone()),
            hash_fields: HashFieldExpiries::new(hasher),
        }
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

    /// The value under a key, ignoring expiry.
    #[inline]
    pub fn value(&self, hash: u64, key: &[u8]) -> Option<&Value> {
        self.main.get(hash, key)
    }

    /// The value under a key for modification, ignoring expiry; sets the key's access time
    /// to `touch` when given.
    #[inline]
    pub fn value_mut(&mut self, hash: u64, key: &[u8], touch: Option<u32>) -> Option<&mut Value> {
        self.main.get_mut_stamped(hash, key, touch)
    }

    /// The access time (`lru_clock`) of a key.
    #[inline]
    pub fn lru_of(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.main.stamp(hash, key)
    }

    /// Stores a value, replacing any previous one, and clears any time to live (what Redis's
    /// `setKey` does without `KEEPTTL`). Returns true if the key was new.
    pub fn set(&mut self, hash: u64, key: &[u8], value: Value, lru: u32) -> bool {
        if !self.expires.is_empty() {
            self.expires.remove(hash, key);
        }
        self.set_keep_ttl(hash, key, value, lru)
    }

    /// Stores a value, keeping the key's time to live. Returns true if the key was new.
    pub fn set_keep_ttl(&mut self, hash: u64, key: &[u8], value: Value, lru: u32) -> bool {
        let fields_due = match &value {
            Value::Hash(h) => h.min_field_expire(),
            _ => None,
        };
        if fields_due.is_some() || !self.hash_fields.is_empty() {
            self.hash_fields.set(hash, key, fields_due);
        }
        self.main.insert_stamped(hash, key, value, lru).is_none()
    }

    /// Removes a key and its time to live.
    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let removed = self.main.remove_stamped(hash, key).map(|(value, lru)| Entry { value, lru });
        if removed.is_some() && !self.expires.is_empty() {
            self.expires.remove(hash, key);
        }
        if removed.is_some() && !self.hash_fields.is_empty() {
            self.hash_fields.set(hash, key, None);
        }
        removed
    }

    /// Removes the fields of the hash under `key` whose time has run out at `now_ms`,
    /// deleting the key when none is left; the fields removed, earliest first.
    pub fn remove_expired_fields(&mut self, hash: u64, key: &[u8], now_ms: i64) -> Vec<Box<[u8]>> {
        let (gone, empty) = match self.main.get_mut(hash, key) {
            Some(Value::Hash(h)) => {
                let gone = h.remove_expired(now_ms);
                (gone, h.is_empty())
            }
            _ => (Vec::new(), false),
        };
        if empty {
            self.remove(hash, key);
        } else {
            self.note_field_expiry(hash, key);
        }
        gone
    }

    /// Records the earliest field expiry of the hash under `key` after its fields' times to
    /// live changed in place (`HEXPIRE` & co.), so the expiry cycle finds it.
    pub fn note_field_expiry(&mut self, hash: u64, key: &[u8]) {
        let due = match self.main.get(hash, key) {
            Some(Value::Hash(h)) => h.min_field_expire(),
            _ => None,
        };
        self.hash_fields.set(hash, key, due);
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
        self.hash_fields.clear();
    }
}

/// The hashes of a database share that have fields with a time to live, each under the
/// earliest such expiry: by key, and in time order so the expiry cycle takes the due ones
/// first (Redis keeps them in `ebuckets` for the same reason).
pub struct HashFieldExpiries {
    by_key: Dict<i64>,
    order: std::collections::BTreeSet<(i64, Box<[u8]>)>,
}

impl HashFieldExpiries {
    fn new(hasher: &KeyHasher) -> HashFieldExpiries {
        HashFieldExpiries { by_key: Dict::new(hasher.clone()), order: Default::default() }
    }

    /// True if no hash has a volatile field.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Records `key`'s earliest field expiry (`None`: it has none, or is gone).
    pub fn set(&mut self, hash: u64, key: &[u8], due: Option<i64>) {
        let old = match due {
            Some(t) => self.by_key.insert(hash, key, t),
            None => self.by_key.remove(hash, key),
        };
        if old == due {
            return;
        }
        if let Some(t) = old {
            self.order.remove(&(t, Box::from(key)));
        }
        if let Some(t) = due {
            self.order.insert((t, Box::from(key)));
        }
    }

    /// Up to `limit` keys whose earliest field expiry is at or before `now_ms`, earliest first.
    pub fn due(&self, now_ms: i64, limit: usize) -> Vec<Box<[u8]>> {
        self.order.iter().take_while(|(t, _)| *t <= now_ms).take(limit).map(|(_, k)| k.clone()).collect()
    }

    /// The earliest field expiry recorded for `key`.
    pub fn get(&self, hash: u64, key: &[u8]) -> Option<i64> {
        self.by_key.get(hash, key).copied()
    }

    fn clear(&mut self) {
        self.by_key.clear();
        self.order.clear();
    }
}

/// One lockable part of the keyspace: every database's keys whose hash falls in this shard.
pub struct Shard {
    /// One entry per database.
    pub dbs: Box<[Db]>,
    /// A snapshot this shard still owes its contents to (see [`Keyspace::begin_snapshot`]).
    pending: Option<Arc<dyn Capture>>,
    /// Keys changed since that snapshot's cut, per database, as they were at the cut (`None`:
    /// the key did not exist), unless the snapshot already has them.
    saved: Option<Box<[SavedKeys]>>,
    /// Roughly the bytes `saved` holds; also counted in the keyspace-wide `held` total.
    saved_bytes: usize,
    /// The keyspace's total of `saved_bytes` over all shards (see [`Keyspace::snapshot_held_bytes`]).
    held: Arc<AtomicUsize>,
    /// Clients blocked on keys of this shard (`BLPOP` and friends), by database and key.
    pub blocked: crate::blocked::BlockedKeys,
    /// Keys of this shard clients `WATCH`, by database and key.
    pub watched: crate::watched::WatchedKeys,
    /// Keys of this shard clients may have cached (`CLIENT TRACKING`), by key over every
    /// database.
    pub tracked: crate::tracked::TrackedKeys,
    /// How far the snapshot's walk over this shard has come, when it goes in steps.
    walk: Option<Box<Walk>>,
    /// This shard's index in the keyspace.
    index: usize,
}

/// Keys' states at a snapshot's cut: value and expiry, or `None` if the key did not exist. A
/// [`Dict`] because the caller has the key's hash already and short keys need no allocation of
/// their own: this is the memory a snapshot costs under a write load.
type SavedKeys = Dict<Option<(Value, Option<i64>)>>;

/// Bytes a saved key costs beyond its key and value bytes (node, bucket, allocator rounding;
/// measured with bench/bgsave.sh), for [`Keyspace::snapshot_held_bytes`].
const SAVED_KEY_OVERHEAD: usize = 112;

/// One empty dict per database, hashing as the databases do (so a key's hash works in both).
fn dicts_like<V>(dbs: &[Db]) -> Box<[Dict<V>]> {
    dbs.iter().map(|d| Dict::new(d.main.hasher().clone())).collect()
}

/// A snapshot's walk over one shard, done in steps with the lock released in between.
///
/// Between steps commands change the shard: keys the walk has not reached yet are kept at their
/// cut-time state by [`Shard::before_write`], keys it has handed over are remembered here so
/// that a later change needs no saving, and the dict may resize. The walk follows a
/// reverse-binary scan cursor, which reaches every key present throughout; `emitted` also drops
/// the repeats a shrinking table can cause. So every key comes exactly once.
struct Walk {
    db: usize,
    cursor: u64,
    emitted: Box<[Dict<()>]>,
}

/// Keys a snapshot's walk visits per step (one shard lock hold): short enough that a command
/// waiting for the shard waits tens of microseconds, not the time to copy a whole shard.
pub const SNAPSHOT_STEP_KEYS: usize = 512;

impl Shard {
    /// Must be called before any change to `key` of database `db` made through a lock taken
    /// with [`Keyspace::lock_deferred`]: if a snapshot still owes this shard, the key's state
    /// at the cut is kept for it (once per key), so the change can go ahead at once.
    #[inline]
    pub fn before_write(&mut self, db: usize, hash: u64, key: &[u8]) {
        if self.pending.is_some() {
            self.save_at_cut(db, hash, key);
        }
    }

    /// Before database `db` is emptied or swapped with database `other`: the transactions
    /// watching a key of `db` that exists here (or in `other`) fail, as in Redis (a watched
    /// key that exists in neither is not changed by it).
    pub fn touch_watched_in(&mut self, db: usize, other: Option<usize>) {
        if self.watched.is_empty() {
            return;
        }
        for key in self.watched.keys_of(db) {
            let h = self.dbs[db].main.hasher().hash(&key);
            let exists =
                self.dbs[db].value(h, &key).is_some() || other.is_some_and(|o| self.dbs[o].value(h, &key).is_some());
            if exists {
                self.watched.touch(db, &key, crate::watched::Change::Modified);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn save_at_cut(&mut self, db: usize, hash: u64, key: &[u8]) {
        let dbs = &self.dbs;
        let saved = self.saved.get_or_insert_with(|| dicts_like(dbs));
        if saved[db].get(hash, key).is_some()
            || self.walk.as_ref().is_some_and(|w| w.emitted[db].get(hash, key).is_some())
        {
            return;
        }
        let d = &self.dbs[db];
        let state = d.value(hash, key).map(|v| (v.clone(), d.expire_of(hash, key)));
        let bytes = key.len() + state.as_ref().map_or(0, |(v, _)| v.approx_bytes()) + SAVED_KEY_OVERHEAD;
        saved[db].insert_new(hash, key, state);
        self.saved_bytes += bytes;
        self.held.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Hands the shard to the snapshot that still owes it, now: before changes that
    /// [`Shard::before_write`] does not describe (whole databases, raw access).
    #[inline]
    pub fn capture_now(&mut self) {
        if self.pending.is_some() {
            self.capture_step(None);
        }
    }

    /// Hands the pending snapshot up to `budget` more keys of this shard (every remaining key
    /// if `None`). Returns true when the shard owes nothing any more.
    fn capture_step(&mut self, budget: Option<usize>) -> bool {
        let Some(capture) = self.pending.clone() else {
            return true;
        };
        let dbs = &self.dbs;
        let walk = self.walk.get_or_insert_with(|| Box::new(Walk { db: 0, cursor: 0, emitted: dicts_like(dbs) }));
        let mut part =
            CutPart { dbs: &self.dbs, saved: self.saved.as_deref(), walk, budget, walked: false, done: false };
        capture.capture(self.index, &mut part);
        assert!(part.walked, "a Capture must take its part");
        let done = part.done;
        if done {
            self.pending = None;
            self.saved = None;
            self.walk = None;
            self.held.fetch_sub(std::mem::take(&mut self.saved_bytes), Ordering::Relaxed);
        }
        done
    }

    /// Empties every database of the shard, first handing a pending snapshot what it owes.
    pub fn clear_all(&mut self) {
        self.capture_now();
        for db in self.dbs.iter_mut() {
            db.clear();
        }
    }

    /// Every key of the shard as it is now, with its expiry: `f(db, key, value, expiry)`. For a
    /// shard no snapshot is waiting for (a pending one sees keys through [`CutPart`]).
    pub fn for_each_key(&self, mut f: impl FnMut(usize, &[u8], &Value, Option<i64>)) {
        debug_assert!(self.pending.is_none(), "a pending snapshot must be served first");
        for (d, db) in self.dbs.iter().enumerate() {
            let hasher = db.main.hasher();
            let volatile = !db.expires.is_empty();
            db.main.for_each(|key, value| {
                let expire = if volatile { db.expire_of(hasher.hash(key), key) } else { None };
                f(d, key, value, expire);
            });
        }
    }
}

/// What a [`Capture`] receives: the next part of a shard as it was at the cut.
pub struct CutPart<'a> {
    dbs: &'a [Db],
    saved: Option<&'a [SavedKeys]>,
    walk: &'a mut Walk,
    budget: Option<usize>,
    walked: bool,
    done: bool,
}

impl CutPart<'_> {
    /// Calls `f(db, key, value, expiry)` for the keys of this part, each as it was at the cut.
    /// Over all parts of a shard, each key that existed at the cut comes exactly once.
    pub fn for_each(&mut self, mut f: impl FnMut(usize, &[u8], &Value, Option<i64>)) {
        self.walked = true;
        if self.done {
            return;
        }
        let in_steps = self.budget.is_some();
        let mut left = self.budget.unwrap_or(usize::MAX);
        let walk = &mut *self.walk;
        while walk.db < self.dbs.len() {
            let d = walk.db;
            let db = &self.dbs[d];
            let saved = self.saved.map(|s| &s[d]).filter(|m| !m.is_empty());
            let emitted = &mut walk.emitted[d];
            let hasher = db.main.hasher();
            let volatile = !db.expires.is_empty();
            // The buckets some steps ahead load while this one is visited (`None`: the
            // prefetching reached the end of the table).
            let mut ahead = Some(walk.cursor);
            let fetch = |ahead: Option<u64>| ahead.map(|c| db.main.prefetch_scan(c)).filter(|c| *c != 0);
            for _ in 0..crate::dict::PREFETCH_AHEAD {
                ahead = fetch(ahead);
            }
            loop {
                ahead = fetch(ahead);
                walk.cursor = db.main.scan(walk.cursor, |key, value| {
                    left = left.saturating_sub(1);
                    let needs_hash = saved.is_some() || in_steps || !emitted.is_empty() || volatile;
                    let hash = if needs_hash { hasher.hash(key) } else { 0 };
                    if saved.is_some_and(|m| m.get(hash, key).is_some()) {
                        return; // changed since the cut: its saved state comes below
                    }
                    if in_steps {
                        if emitted.insert(hash, key, ()).is_some() {
                            return;
                        }
                    } else if !emitted.is_empty() && emitted.get(hash, key).is_some() {
                        return;
                    }
                    let expire = if volatile { db.expire_of(hash, key) } else { None };
                    f(d, key, value, expire);
                });
                if walk.cursor == 0 {
                    walk.db += 1;
                    break;
                }
                if left == 0 {
                    return;
                }
            }
        }
        for (d, keys) in self.saved.into_iter().flatten().enumerate() {
            keys.for_each(|key, state| {
                if let Some((value, expire)) = state {
                    f(d, key, value, *expire);
                }
            });
        }
        self.done = true;
    }
}

/// Receives shards for a point-in-time snapshot (an RDB file, later a Raft snapshot).
///
/// Fork-less snapshots work like this: [`Keyspace::begin_snapshot`] marks every shard as owing
/// its contents to the snapshot, atomically (all shard locks held). From then on a shard is
/// handed over as it was at the cut: by the snapshot's own walk, a few hundred keys per lock
/// hold ([`Keyspace::complete_snapshot`]), or all at once to anyone who locks it with
/// [`Keyspace::lock`] (raw access). Commands that lock with [`Keyspace::lock_deferred`] only keep
/// the cut-time state of each key they change ([`Shard::before_write`]) and go on; the walk
/// hands over those saved states instead of the changed keys. Memory overhead is the keys
/// changed during the snapshot plus what the capture buffers; a command waits at most for one
/// step of the walk.
pub trait Capture: Send + Sync {
    /// Takes the next part of shard number `index`: must call [`CutPart::for_each`]. Called with
    /// that shard locked (and possibly other shards of the same command too): it must not lock
    /// shards itself.
    fn capture(&self, index: usize, part: &mut CutPart<'_>);
}

/// The whole keyspace: `databases` databases split over a power-of-two number of shards.
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    /// Bytes the shards hold for the snapshot in progress (their `saved_bytes`).
    held: Arc<AtomicUsize>,
    shard_bits: u32,
    hasher: KeyHasher,
    databases: usize,
    limits: Arc<SharedLimits>,
}

/// What [`Keyspace::prefetch`] asks the CPU to load for each key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// The bucket slots a lookup reads first.
    Slots,
    /// The entries those slots point to. Reading a slot that has not arrived waits for it,
    /// so this comes some work after [`Fetch::Slots`] of the same keys.
    Entries,
    /// The next entry of a chain whose first does not hold the key (reads the first, so
    /// some work after [`Fetch::Entries`]).
    Chains,
}

impl Keyspace {
    /// A keyspace of `databases` databases over `shards` shards (rounded up to a power of
    /// two), hashing keys with `seed`.
    pub fn new(databases: usize, shards: usize, seed: u64) -> Keyspace {
        let shards = shards.max(1).next_power_of_two();
        let hasher = KeyHasher::with_seed(seed);
        let held = Arc::new(AtomicUsize::new(0));
        let shard_vec = (0..shards)
            .enumerate()
            .map(|(index, _)| {
                Mutex::new(Shard {
                    dbs: (0..databases).map(|_| Db::new(&hasher)).collect(),
                    pending: None,
                    saved: None,
                    saved_bytes: 0,
                    held: held.clone(),
                    blocked: Default::default(),
                    watched: Default::default(),
                    tracked: Default::default(),
                    walk: None,
                    index,
                })
            })
            .collect();
        Keyspace {
            shards: shard_vec,
            held,
            shard_bits: shards.trailing_zeros(),
            hasher,
            databases,
            limits: Arc::new(SharedLimits::default()),
        }
    }

    /// The encoding thresholds of collections (Redis's `*-max-listpack-*` configs).
    #[inline]
    pub fn limits(&self) -> Limits {
        self.limits.get()
    }

    /// Makes the keyspace read its thresholds from `limits`, which the configuration keeps
    /// up to date.
    pub fn use_limits(&mut self, limits: Arc<SharedLimits>) {
        self.limits = limits;
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

    /// Locks one shard. Callers that lock several must go in ascending index order. If a
    /// snapshot is waiting for this shard, the shard is captured first (see [`Capture`]).
    #[inline]
    pub fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        let mut guard = self.shards[shard].lock();
        guard.capture_now();
        guard
    }

    /// Locks one shard without capturing it for a pending snapshot: the caller promises to call
    /// [`Shard::before_write`] before every change of a key, or [`Shard::capture_now`] before
    /// any other change (commands do so through their `Store`).
    #[inline]
    pub fn lock_deferred(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard].lock()
    }

    /// [`Keyspace::lock_deferred`] without waiting: `None` if another thread holds the shard.
    /// The way to take a shard out of ascending order while holding others (serving a
    /// blocked `BLMOVE` whose destination lies in a shard the pushing command did not lock;
    /// [`Keyspace::prefetch`] does the same): a lock that never waits cannot deadlock.
    #[inline]
    pub fn try_lock_deferred(&self, shard: usize) -> Option<MutexGuard<'_, Shard>> {
        self.shards[shard].try_lock()
    }

    /// Asks the CPU to start loading what looking up `keys` (database, key) will read, so
    /// that commands about to run (a cluster node applying an entry of pipelined writes) do
    /// not each wait for memory twice in turn on a large keyspace: a lookup reads the bucket
    /// slot, then the entry it points to (and a third of the time the next one). A caller
    /// asks for each [`Fetch`] step of a key in turn, with some work between steps so that
    /// the lines one step reads have arrived by then (see [`Dict::prefetch_entry`]). Only a
    /// hint: shards another thread holds are skipped, and it never waits for a lock (nor
    /// could it deadlock, whatever the caller holds).
    pub fn prefetch(&self, keys: &[(usize, &[u8])], what: Fetch) {
        // Consecutive keys of one shard (all of them with `keyspace-shards 1`) share a guard.
        let mut held: Option<(usize, MutexGuard<'_, Shard>)> = None;
        for &(db, key) in keys {
            let hash = self.hash(key);
            let shard = self.shard_of(hash);
            if held.as_ref().is_none_or(|(s, _)| *s != shard) {
                held = None;
                match self.shards[shard].try_lock() {
                    Some(g) => held = Some((shard, g)),
                    None => continue,
                }
            }
            if let Some(d) = held.as_ref().and_then(|(_, g)| g.dbs.get(db)) {
                match what {
                    Fetch::Slots => d.main.prefetch_bucket(hash),
                    Fetch::Entries => d.main.prefetch_entry(hash),
                    Fetch::Chains => d.main.prefetch_chain(hash, key),
                }
            }
        }
    }

    /// Locks every shard in order, without capturing them for a pending snapshot (as
    /// [`Keyspace::lock_deferred`]): readers of the whole keyspace must not make a snapshot copy
    /// it all at once; a caller that changes a shard calls [`Shard::capture_now`] first.
    pub fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        (0..self.shards.len()).map(|i| self.lock_deferred(i)).collect()
    }

    /// Keys in every database (logically expired ones not yet removed included), one shard
    /// lock at a time.
    pub fn total_keys(&self) -> u64 {
        (0..self.shards.len()).map(|i| self.lock_deferred(i).dbs.iter().map(|d| d.len() as u64).sum::<u64>()).sum()
    }

    /// Starts a point-in-time snapshot that `capture` receives shard by shard. `at_cut` runs while
    /// every shard is locked, at the snapshot's instant: the place to note what the snapshot
    /// contains (e.g. switch the AOF to a new file). Any snapshot still in progress is completed
    /// first. Call [`Keyspace::complete_snapshot`] to capture the shards nobody touched.
    pub fn begin_snapshot<R>(&self, capture: Arc<dyn Capture>, at_cut: impl FnOnce() -> R) -> R {
        let mut guards = self.lock_all();
        for g in guards.iter_mut() {
            g.capture_now();
            g.pending = Some(capture.clone());
        }
        at_cut()
    }

    /// Roughly the bytes held, over all shards, for keys changed since the cut of the snapshot
    /// in progress (their cut-time states, kept until the walk reaches their shard).
    pub fn snapshot_held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Captures every shard still owed to the current snapshot, [`SNAPSHOT_STEP_KEYS`] keys per
    /// shard lock hold; `between` runs after each step with no lock held (to finish a capture's
    /// work there).
    pub fn complete_snapshot(&self, mut between: impl FnMut()) {
        for i in 0..self.shards.len() {
            loop {
                let done = self.lock_deferred(i).capture_step(Some(SNAPSHOT_STEP_KEYS));
                between();
                if done {
                    break;
                }
            }
        }
    }
}

/// Seconds clock used for LRU metadata, from the environment's milliseconds.
#[inline]
pub fn lru_clock(now_ms: i64) -> u32 {
    (now_ms / 1000) as u32
}

#[cfg(test)]
mod tests {

    #[test]
    fn hashes_with_field_times_are_indexed_by_their_earliest_while_they_exist() {
        use crate::hash::Hash;
        let ks = Keyspace::new(1, 1, 3);
        let mut shard = ks.lock(0);
        let db = &mut shard.dbs[0];
        let limits = Limits::default();
        let mut h = Hash::new();
        h.set(b"f", b"1", &limits);
        h.set(b"g", b"2", &limits);
        h.set_field_expire(b"f", 100);
        let (k, kh) = (b"h".as_slice(), ks.hash(b"h"));
        db.set(kh, k, Value::Hash(h.clone()), 0);
        assert_eq!(db.hash_fields.get(kh, k), Some(100));
        assert!(db.hash_fields.due(99, 10).is_empty());
        assert_eq!(db.hash_fields.due(100, 10).len(), 1);
        // An in-place change is noted; a replaced or removed key is forgotten.
        if let Some(Value::Hash(h)) = db.value_mut(kh, k, None) {
            h.set_field_expire(b"g", 50);
        }
        db.note_field_expiry(kh, k);
        assert_eq!(db.hash_fields.get(kh, k), Some(50));
        assert_eq!(db.remove_expired_fields(kh, k, 60).len(), 1);
        assert_eq!(db.hash_fields.get(kh, k), Some(100));
        assert_eq!(db.remove_expired_fields(kh, k, 100).len(), 1);
        assert!(db.value(kh, k).is_none(), "the last field took the key with it");
        assert!(db.hash_fields.is_empty());
        db.set(kh, k, Value::Hash(h.clone()), 0);
        db.set(kh, k, Value::Str(crate::value::Str::from_bytes(b"x")), 0);
        assert!(db.hash_fields.is_empty());
        db.set(kh, k, Value::Hash(h), 0);
        db.clear();
        assert!(db.hash_fields.is_empty() && db.hash_fields.due(i64::MAX, 10).is_empty());
    }
    use super::*;
    use crate::value::Str;

    #[test]
    fn prefetching_skips_held_shards_and_missing_databases_and_changes_nothing() {
        let ks = Keyspace::new(2, 4, 1);
        let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("key:{i}").into_bytes()).collect();
        for k in &keys {
            let h = ks.hash(k);
            ks.lock(ks.shard_of(h)).dbs[1].set(h, k, Value::Str(Str::from_bytes(k)), 0);
        }
        // Many keys, a database that does not exist, and a shard this very
        // thread holds (a lock that waited would never return).
        let mut batch: Vec<(usize, &[u8])> = keys.iter().map(|k| (1, k.as_slice())).collect();
        batch.push((7, b"key:1"));
        batch.push((0, b"absent"));
        let held = ks.lock(ks.shard_of(ks.hash(&keys[0])));
        for what in [Fetch::Slots, Fetch::Entries, Fetch::Chains] {
            ks.prefetch(&batch, what);
        }
        drop(held);
        for what in [Fetch::Slots, Fetch::Entries, Fetch::Chains] {
            ks.prefetch(&batch, what);
        }
        for k in &keys {
            let h = ks.hash(k);
            let shard = ks.lock(ks.shard_of(h));
            assert!(matches!(shard.dbs[1].value(h, k), Some(Value::Str(v)) if v.to_vec() == *k));
        }
        assert_eq!(ks.total_keys(), 50);
    }

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

    /// (db, key, value)
    type Item = (usize, Vec<u8>, Vec<u8>);

    /// Records every part each capture saw: shard index and its items.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<(usize, Vec<Item>)>>);

    impl Capture for Recorder {
        fn capture(&self, index: usize, part: &mut CutPart<'_>) {
            let mut items = Vec::new();
            part.for_each(|d, k, v, _| {
                let Value::Str(s) = v else { panic!("test stores strings only") };
                items.push((d, k.to_vec(), s.to_vec()));
            });
            self.0.lock().unwrap().push((index, items));
        }
    }

    impl Recorder {
        /// Shards that were handed over completely (several parts make one shard).
        fn shards(&self) -> Vec<usize> {
            let mut v: Vec<usize> = self.0.lock().unwrap().iter().map(|(i, _)| *i).collect();
            v.sort();
            v.dedup();
            v
        }

        /// Every item of every part, sorted (repeats kept, so a repeat shows).
        fn items(&self) -> Vec<Item> {
            let mut all: Vec<Item> = self.0.lock().unwrap().iter().flat_map(|(_, items)| items.clone()).collect();
            all.sort();
            all
        }

        fn parts(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    fn put(ks: &Keyspace, db: usize, key: &str, val: &str) {
        let h = ks.hash(key.as_bytes());
        let mut s = ks.lock(ks.shard_of(h));
        s.dbs[db].set(h, key.as_bytes(), Value::Str(Str::from_bytes(val.as_bytes())), 0);
    }

    #[test]
    fn snapshot_sees_the_cut_not_later_writes() {
        let ks = Keyspace::new(4, 8, 3);
        for i in 0..200 {
            put(&ks, i % 4, &format!("k{i}"), "old");
        }
        let rec = Arc::new(Recorder::default());
        let cut = ks.begin_snapshot(rec.clone(), || 42);
        assert_eq!(cut, 42);
        assert_eq!(rec.parts(), 0, "nothing is captured at the cut itself");
        // Writes after the cut, to keys in every shard: each shard is captured before it changes.
        for i in 0..200 {
            put(&ks, i % 4, &format!("k{i}"), "new");
            put(&ks, 0, &format!("extra{i}"), "new");
        }
        ks.complete_snapshot(|| ());
        assert_eq!(rec.shards(), (0..8).collect::<Vec<_>>(), "every shard");
        let mut want: Vec<_> = (0..200).map(|i| (i % 4, format!("k{i}").into_bytes(), b"old".to_vec())).collect();
        want.sort();
        assert_eq!(rec.items(), want);
        // The snapshot is over: locking no longer captures.
        let parts = rec.parts();
        put(&ks, 1, "after", "x");
        assert_eq!(rec.parts(), parts);
    }

    #[test]
    fn a_new_snapshot_completes_the_previous_one() {
        let ks = Keyspace::new(1, 4, 3);
        put(&ks, 0, "a", "1");
        let first = Arc::new(Recorder::default());
        let second = Arc::new(Recorder::default());
        ks.begin_snapshot(first.clone(), || ());
        ks.begin_snapshot(second.clone(), || ());
        assert_eq!(first.shards().len(), 4);
        assert_eq!(first.items(), vec![(0, b"a".to_vec(), b"1".to_vec())]);
        ks.complete_snapshot(|| ());
        assert_eq!(second.shards().len(), 4);
        assert_eq!(second.items(), vec![(0, b"a".to_vec(), b"1".to_vec())]);
    }

    #[test]
    fn readers_of_the_whole_keyspace_leave_a_snapshot_alone() {
        let ks = Keyspace::new(1, 4, 3);
        put(&ks, 0, "a", "1");
        let rec = Arc::new(Recorder::default());
        ks.begin_snapshot(rec.clone(), || ());
        let n: usize = ks.lock_all().iter().map(|s| s.dbs[0].len()).sum();
        assert_eq!(n, 1);
        assert_eq!(rec.parts(), 0, "lock_all must not capture (DBSIZE, KEYS, INFO during a save)");
        drop(ks.lock(0));
        assert_eq!(rec.shards(), vec![0], "raw access still captures");
        ks.complete_snapshot(|| ());
        assert_eq!(rec.items(), vec![(0, b"a".to_vec(), b"1".to_vec())]);
    }

    #[test]
    fn held_bytes_count_saved_states_until_their_shard_is_walked() {
        let ks = Keyspace::new(1, 4, 3);
        for i in 0..40 {
            put(&ks, 0, &format!("k{i}"), "0123456789");
        }
        let rec = Arc::new(Recorder::default());
        ks.begin_snapshot(rec.clone(), || ());
        assert_eq!(ks.snapshot_held_bytes(), 0);
        write(&ks, 0, b"k1", Some("x"));
        let one = ks.snapshot_held_bytes();
        assert!(one >= 2 + 10 + SAVED_KEY_OVERHEAD, "{one}");
        write(&ks, 0, b"k1", Some("y"));
        assert_eq!(ks.snapshot_held_bytes(), one, "a key's cut state is kept once");
        write(&ks, 0, b"new", Some("z"));
        assert!(ks.snapshot_held_bytes() > one, "an absent key's state counts too");
        ks.complete_snapshot(|| ());
        assert_eq!(ks.snapshot_held_bytes(), 0);
        assert_eq!(rec.items().len(), 40);
    }

    /// A change made the way commands make them: deferred lock, `before_write` first.
    fn write(ks: &Keyspace, db: usize, key: &[u8], val: Option<&str>) {
        let h = ks.hash(key);
        let mut s = ks.lock_deferred(ks.shard_of(h));
        s.before_write(db, h, key);
        match val {
            Some(v) => {
                s.dbs[db].set(h, key, Value::Str(Str::from_bytes(v.as_bytes())), 0);
            }
            None => {
                s.dbs[db].remove(h, key);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// The walk in steps, with sets, deletes, re-creations, table growth and shrinking in
        /// between steps, hands over exactly the cut-time keyspace, each key once.
        #[test]
        fn stepped_walk_is_exactly_the_cut(
            initial in 0usize..3000,
            ops in proptest::collection::vec((0u8..4, 0usize..4000, 1usize..2), 0..600),
            steps_between in 1usize..4,
        ) {
            let ks = Keyspace::new(2, 1, 5);
            let mut want = Vec::new();
            for i in 0..initial {
                let (db, key) = (i % 2, format!("k{i}"));
                put(&ks, db, &key, "cut");
                want.push((db, key.into_bytes(), b"cut".to_vec()));
            }
            want.sort();
            let rec = Arc::new(Recorder::default());
            ks.begin_snapshot(rec.clone(), || ());
            let mut ops = ops.into_iter();
            let mut done = false;
            while !done {
                done = ks.lock_deferred(0).capture_step(Some(SNAPSHOT_STEP_KEYS / 8));
                for (op, i, db) in ops.by_ref().take(steps_between * 40) {
                    let key = format!("k{i}");
                    match op {
                        0 => write(&ks, db % 2, key.as_bytes(), Some("new")),
                        1 => write(&ks, db % 2, key.as_bytes(), None),
                        2 => {
                            // Mass deletion then shrink: the table resizes under the walk.
                            for j in (i % 7..4000).step_by(7) {
                                write(&ks, 0, format!("k{j}").as_bytes(), None);
                            }
                            let mut s = ks.lock_deferred(0);
                            s.dbs[0].main.shrink_if_needed();
                            s.dbs[0].main.rehash(3);
                        }
                        _ => {
                            // Growth: many new keys.
                            for j in 0..200 {
                                write(&ks, 1, format!("n{i}-{j}").as_bytes(), Some("x"));
                            }
                        }
                    }
                }
            }
            proptest::prop_assert_eq!(rec.items(), want);
        }
    }
}
