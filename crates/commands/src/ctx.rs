//! The context a command handler runs in: the locked part of the keyspace, the reply writer,
//! the session, the host and the environment.
//!
//! [`Store`] is the only way handlers touch keys. It hides expired keys from every command
//! (removing them and recording a `DEL` effect where this node may delete), counts hits and
//! misses, refreshes access times, and counts changes so that the executor knows whether the
//! command must be logged.

use crate::effects::Effects;
use crate::errors::CmdError;
use crate::host::Host;
use crate::session::Session;
use crate::stats::LocalStats;
use engine::keyspace::lru_clock;
use engine::sync::MutexGuard;
use engine::{Db, Entry, Hash, Keyspace, Limits, List, Rng, Set, Shard, Str, Value, ZSet};
use protocol::ReplyWriter;
use smallvec::SmallVec;

/// Typed lookups (`get_list`/`get_list_for_write`/`list_or_create`, ...): the value if the
/// key holds that type, `None` if missing (or a new one), `WRONGTYPE` otherwise.
macro_rules! typed_access {
    ($read:ident, $write:ident, $create:ident, $variant:ident, $ty:ty, $name:literal) => {
        #[doc = concat!("The ", $name, " under a key for a read; `WRONGTYPE` for other types.")]
        pub fn $read(&mut self, key: &[u8]) -> Result<Option<&mut $ty>, CmdError> {
            match self.lookup_read(key) {
                None => Ok(None),
                Some(value) => match value {
                    Value::$variant(v) => Ok(Some(v)),
                    _ => Err(CmdError::WrongType),
                },
            }
        }

        #[doc = concat!("The ", $name, " under a key for a write; `WRONGTYPE` for other types.")]
        pub fn $write(&mut self, key: &[u8]) -> Result<Option<&mut $ty>, CmdError> {
            match self.lookup_write(key) {
                None => Ok(None),
                Some(value) => match value {
                    Value::$variant(v) => Ok(Some(v)),
                    _ => Err(CmdError::WrongType),
                },
            }
        }

        #[doc = concat!("The ", $name, " under a key for a write, stored new from `make` if missing (the")]
        /// new empty value counts as no change: the command counts what it adds); `WRONGTYPE`
        /// for other types.
        pub fn $create(&mut self, key: &[u8], make: impl FnOnce() -> $ty) -> Result<&mut $ty, CmdError> {
            if self.$write(key)?.is_none() {
                let dirty = self.dirty;
                self.set(key, Value::$variant(make()), false);
                self.dirty = dirty;
            }
            Ok(self.$write(key)?.expect("just stored"))
        }
    };
}

/// Shards locked for one command, in ascending order.
pub struct Locks<'a> {
    guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
    all: Vec<MutexGuard<'a, Shard>>,
}

impl<'a> Locks<'a> {
    /// No shard locked.
    pub fn none() -> Locks<'a> {
        Locks { guards: SmallVec::new(), all: Vec::new() }
    }

    /// Locks the shards of the given hashes, in ascending shard order.
    pub fn for_hashes(ks: &'a Keyspace, hashes: impl Iterator<Item = u64>) -> Locks<'a> {
        let mut idx: SmallVec<[usize; 4]> = hashes.map(|h| ks.shard_of(h)).collect();
        idx.sort_unstable();
        idx.dedup();
        // Deferred: a pending snapshot is served key by key through `Store` (see
        // `Shard::before_write`) instead of capturing the whole shard first.
        let guards = idx.into_iter().map(|i| (i, ks.lock_deferred(i))).collect();
        Locks { guards, all: Vec::new() }
    }

    /// Locks the one shard of a hash.
    #[inline]
    pub fn one(ks: &'a Keyspace, hash: u64) -> Locks<'a> {
        let i = ks.shard_of(hash);
        let mut guards = SmallVec::new();
        guards.push((i, ks.lock_deferred(i)));
        Locks { guards, all: Vec::new() }
    }

    /// Locks every shard.
    pub fn all(ks: &'a Keyspace) -> Locks<'a> {
        Locks { guards: SmallVec::new(), all: ks.lock_all() }
    }

    /// True if every shard is locked.
    pub fn is_all(&self) -> bool {
        !self.all.is_empty()
    }

    /// The locked shard with index `i` for any use: a snapshot still owed this shard is given it
    /// first. Panics if the command did not lock it, which is a bug in the command's key spec
    /// or lock mode.
    #[inline]
    pub fn shard(&mut self, i: usize) -> &mut Shard {
        let s = self.shard_deferred(i);
        s.capture_now();
        s
    }

    /// The locked shard with index `i`, leaving a pending snapshot to [`Shard::before_write`].
    #[inline]
    pub(crate) fn shard_deferred(&mut self, i: usize) -> &mut Shard {
        if !self.all.is_empty() {
            return &mut self.all[i];
        }
        for (idx, g) in self.guards.iter_mut() {
            if *idx == i {
                return g;
            }
        }
        panic!("shard {i} touched without being locked");
    }

    /// True if shard `i` is locked.
    pub(crate) fn holds(&self, i: usize) -> bool {
        !self.all.is_empty() || self.guards.iter().any(|(idx, _)| *idx == i)
    }

    /// Every locked shard, leaving a pending snapshot to [`Shard::before_write`] (for state
    /// no snapshot holds).
    pub(crate) fn shards_deferred(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        let all = self.all.iter_mut().map(|g| &mut **g);
        all.chain(self.guards.iter_mut().map(|(_, g)| &mut **g))
    }

    /// Adds shard `i` to the locked ones if another thread does not hold it (see
    /// [`Keyspace::try_lock_deferred`]); true if it is locked now.
    pub(crate) fn try_add(&mut self, ks: &'a Keyspace, i: usize) -> bool {
        if !self.all.is_empty() || self.guards.iter().any(|(idx, _)| *idx == i) {
            return true;
        }
        match ks.try_lock_deferred(i) {
            Some(g) => {
                self.guards.push((i, g));
                true
            }
            None => false,
        }
    }

    /// The locked shard with index `i`, for reading only (a pending snapshot is not served).
    pub(crate) fn shard_ref(&self, i: usize) -> &Shard {
        if !self.all.is_empty() {
            return &self.all[i];
        }
        match self.guards.iter().find(|(idx, _)| *idx == i) {
            Some((_, g)) => g,
            None => panic!("shard {i} touched without being locked"),
        }
    }

    /// Every locked shard, for reading only: a pending snapshot is not served (commands that
    /// read the whole keyspace, such as `DBSIZE` or `KEYS`, must not make it copy everything).
    pub fn shards_read(&self) -> impl Iterator<Item = &Shard> + use<'_, 'a> {
        let all = self.all.iter().map(|g| &**g);
        all.chain(self.guards.iter().map(|(_, g)| &**g))
    }

    /// Every locked shard, for any use (see [`Locks::shard`]).
    pub fn shards(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        let all = self.all.iter_mut().map(|g| &mut **g);
        all.chain(self.guards.iter_mut().map(|(_, g)| &mut **g)).map(served)
    }
}

/// A shard handed out for any use, after serving a pending snapshot.
fn served(s: &mut Shard) -> &mut Shard {
    s.capture_now();
    s
}

/// Key access for one command.
pub struct Store<'a> {
    /// The keyspace.
    pub ks: &'a Keyspace,
    /// The shards this command holds.
    pub locks: Locks<'a>,
    /// The selected database.
    pub db: usize,
    /// The command's time.
    pub now_ms: i64,
    /// Where effects go.
    pub effects: &'a mut Effects,
    /// Counters of this connection.
    pub stats: &'a mut LocalStats,
    /// Reads leave access times alone (`CLIENT NO-TOUCH`).
    pub no_touch: bool,
    /// When false (a follower serving a local read) expired keys are hidden but not removed.
    pub may_expire: bool,
    /// Number of changes made so far.
    pub dirty: u64,
    /// Keys (database, key) that received a list while clients wait on them: the executor
    /// serves those clients before the command releases its locks (`blocking::serve_ready`).
    pub ready: Vec<(usize, Vec<u8>)>,
    /// A hash shown without its expired fields when they may not be removed (see
    /// [`Store::get_hash`]).
    pub hidden_hash: Option<Hash>,
    /// Watched keys (database, key) this command went to change: if it changed anything,
    /// their watchers' transactions fail ([`Store::signal_watchers`]).
    pub touched: Vec<(usize, Vec<u8>)>,
    /// `notify-keyspace-events` when the command began (class bits; 0 = off).
    pub notify_flags: u32,
    /// Messages are not delivered (`ExecOptions::quiet`): `PUBLISH` reaches no subscriber.
    pub quiet: bool,
    /// Keyspace events this command caused, published when it ends.
    pub events: Vec<crate::notify::Event>,
    /// Client-side caching: the registry, for its counts.
    pub tracking: &'a crate::tracking::Tracking,
    /// Some client tracks in `BCAST` mode (read under the command's locks): every key the
    /// command changes is collected.
    pub bcast: bool,
    /// Keys this command went to change that someone tracks (or all, with `bcast`): if it
    /// changed anything, their readers are told ([`Store::signal_watchers`]).
    pub tracked: Vec<Vec<u8>>,
    /// Changed keys with the clients that had read them, for `execute` to invalidate.
    pub invalidated: Vec<(Vec<u8>, Vec<u64>)>,
    /// A flush emptied databases: every tracking client is told.
    pub flushed: bool,
}

impl<'a> Store<'a> {
    /// Records a keyspace event of `key` in database `db` (if its class is published).
    #[inline]
    pub fn notify_in(&mut self, class: u32, name: &'static str, db: usize, key: &[u8]) {
        crate::notify::record(&mut self.events, self.notify_flags, class, name, db, key);
    }

    /// Records a keyspace event of `key` in the selected database.
    #[inline]
    pub fn notify(&mut self, class: u32, name: &'static str, key: &[u8]) {
        self.notify_in(class, name, self.db, key)
    }

    /// The database share holding `key` in database `db`, and the key's hash, for any change
    /// (a snapshot still owed the shard is given it first).
    #[inline]
    pub fn db_for(&mut self, db: usize, key: &[u8]) -> (&mut Db, u64) {
        let h = self.ks.hash(key);
        let s = self.ks.shard_of(h);
        (&mut self.locks.shard(s).dbs[db], h)
    }

    /// The database share holding `key`, for reading.
    #[inline]
    pub fn db_for_read(&mut self, db: usize, key: &[u8]) -> (&Db, u64) {
        let (d, h) = self.db_deferred(db, key);
        (d, h)
    }

    /// The database share holding `key` without capturing a pending snapshot: for reads.
    #[inline]
    fn db_deferred(&mut self, db: usize, key: &[u8]) -> (&mut Db, u64) {
        let h = self.ks.hash(key);
        let s = self.ks.shard_of(h);
        (&mut self.locks.shard_deferred(s).dbs[db], h)
    }

    /// The database share holding `key`, about to change `key` only: its state at a pending
    /// snapshot's cut is kept first (`Shard::before_write`; a key that turns out absent is
    /// kept as absent, which the capture treats like not kept at all).
    #[inline]
    fn db_to_change(&mut self, db: usize, key: &[u8]) -> (&mut Db, u64) {
        let (shard, h) = self.shard_to_change(db, key);
        (&mut shard.dbs[db], h)
    }

    /// [`Store::db_to_change`], giving the whole shard (its blocked clients too).
    #[inline]
    fn shard_to_change(&mut self, db: usize, key: &[u8]) -> (&mut Shard, u64) {
        let h = self.ks.hash(key);
        let shard = self.locks.shard_deferred(self.ks.shard_of(h));
        shard.before_write(db, h, key);
        if !shard.watched.is_empty()
            && shard.watched.has(db, key)
            && !self.touched.iter().any(|(d, k)| *d == db && k == key)
        {
            self.touched.push((db, key.to_vec()));
        }
        if (self.bcast || (!shard.tracked.is_empty() && shard.tracked.contains(key)))
            && !self.tracked.iter().any(|k| k == key)
        {
            self.tracked.push(key.to_vec());
        }
        (shard, h)
    }

    /// `key` changed (or went away) now: its readers are to be told.
    fn invalidate_now(&mut self, key: &[u8]) {
        let s = self.ks.shard_of(self.ks.hash(key));
        let table = &mut self.locks.shard_deferred(s).tracked;
        if !self.bcast && table.is_empty() {
            return;
        }
        let ids = self.tracking.take(table, key);
        if self.bcast || !ids.is_empty() {
            self.invalidated.push((key.to_vec(), ids));
        }
    }

    /// After a command: if it changed the dataset, the transactions watching the keys it
    /// went to change fail (Redis's `signalModifiedKey`); a command that changed nothing
    /// (`SADD` of a member already there) leaves them be.
    pub fn signal_watchers(&mut self, changed: bool) {
        if !self.tracked.is_empty() {
            let keys = std::mem::take(&mut self.tracked);
            if changed {
                keys.iter().for_each(|k| self.invalidate_now(k));
            }
        }
        if self.touched.is_empty() {
            return;
        }
        for (db, key) in std::mem::take(&mut self.touched) {
            if changed {
                let s = self.ks.shard_of(self.ks.hash(&key));
                self.locks.shard_deferred(s).watched.touch(db, &key, engine::watched::Change::Modified);
            }
        }
    }

    /// Removes `key` of database `db` if its time has run out; true if it is (logically) gone.
    fn expire_if_needed(&mut self, db: usize, key: &[u8]) -> bool {
        let now = self.now_ms;
        let may_expire = self.may_expire;
        let (d, h) = self.db_deferred(db, key);
        if !d.is_expired(h, key, now) {
            return false;
        }
        if may_expire {
            let shard = self.locks.shard_deferred(self.ks.shard_of(h));
            shard.before_write(db, h, key);
            shard.dbs[db].remove(h, key);
            if !shard.watched.is_empty() {
                shard.watched.touch(db, key, engine::watched::Change::ExpiredRemoved);
            }
            self.invalidate_now(key);
            self.stats.expired_keys += 1;
            self.effects.push(db, now, vec![b"DEL".to_vec(), key.to_vec()]);
            self.notify_in(crate::notify::EXPIRED, "expired", db, key);
        }
        true
    }

    /// Looks a key up in database `db` for a read: expired keys are absent; hits and misses
    /// are counted; the access time is refreshed unless `no_touch`.
    pub fn lookup_read_in(&mut self, db: usize, key: &[u8]) -> Option<&mut Value> {
        if self.expire_if_needed(db, key) {
            self.stats.keyspace_misses += 1;
            self.notify_in(crate::notify::KEY_MISS, "keymiss", db, key);
            return None;
        }
        let (flags, events) = (self.notify_flags, &mut self.events);
        let lru = lru_clock(self.now_ms);
        let touch = !self.no_touch;
        // Reads only refresh the access time, which snapshots do not keep: no capture.
        let h = self.ks.hash(key);
        let shard = self.locks.shard_deferred(self.ks.shard_of(h));
        match shard.dbs[db].value_mut(h, key, touch.then_some(lru)) {
            Some(v) => {
                self.stats.keyspace_hits += 1;
                Some(v)
            }
            None => {
                self.stats.keyspace_misses += 1;
                // (Not `notify_in`: the shard borrowed above is still borrowed from `self`.)
                crate::notify::record(events, flags, crate::notify::KEY_MISS, "keymiss", db, key);
                None
            }
        }
    }

    /// Looks a key up in the selected database for a read.
    #[inline]
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.lookup_read_in(self.db, key)
    }

    /// Looks a key up in database `db` for a write: expired keys are absent; no stats.
    pub fn lookup_write_in(&mut self, db: usize, key: &[u8]) -> Option<&mut Value> {
        if self.expire_if_needed(db, key) {
            return None;
        }
        let lru = lru_clock(self.now_ms);
        let (d, h) = self.db_to_change(db, key);
        d.value_mut(h, key, Some(lru))
    }

    /// Looks a key up in the selected database for a write.
    #[inline]
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.lookup_write_in(self.db, key)
    }

    /// Removes `key` of the selected database if its time has run out at the command's time
    /// (when this execution may expire keys); true if it had.
    pub fn reap(&mut self, key: &[u8]) -> bool {
        if self.expire_if_needed(self.db, key) || self.expire_fields_in(self.db, key) > 0 {
            return true;
        }
        // Nothing was due: make sure the expiry index does not name the key too early, or the
        // leader would collect it again and again (the same on every node: index only, which
        // no snapshot holds, so none is served first).
        let (d, h) = self.db_deferred(self.db, key);
        if d.hash_fields.get(h, key).is_some() {
            d.note_field_expiry(h, key);
        }
        false
    }

    /// True if the key exists (not expired) in database `db`, without touching it.
    pub fn exists_in(&mut self, db: usize, key: &[u8]) -> bool {
        if self.expire_if_needed(db, key) {
            return false;
        }
        let (d, h) = self.db_deferred(db, key);
        d.value(h, key).is_some()
    }

    /// The access time (`lru_clock`) of a key of the selected database, without touching it.
    pub fn lru_of(&mut self, key: &[u8]) -> Option<u32> {
        let (d, h) = self.db_deferred(self.db, key);
        d.lru_of(h, key)
    }

    /// Sets the access time of an existing key of the selected database (`RESTORE ...
    /// IDLETIME`); no change is counted, as for any access.
    pub fn set_lru(&mut self, key: &[u8], lru: u32) {
        let (d, h) = self.db_to_change(self.db, key);
        d.value_mut(h, key, Some(lru));
    }

    /// True if the key exists in the selected database, without touching it.
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.exists_in(self.db, key)
    }

    /// The string under a key for a read; `WRONGTYPE` for other types.
    pub fn get_str(&mut self, key: &[u8]) -> Result<Option<&mut Str>, CmdError> {
        match self.lookup_read(key) {
            None => Ok(None),
            Some(value) => match value {
                Value::Str(s) => Ok(Some(s)),
                _ => Err(CmdError::WrongType),
            },
        }
    }

    /// The string under a key for a write; `WRONGTYPE` for other types.
    pub fn get_str_for_write(&mut self, key: &[u8]) -> Result<Option<&mut Str>, CmdError> {
        match self.lookup_write(key) {
            None => Ok(None),
            Some(value) => match value {
                Value::Str(s) => Ok(Some(s)),
                _ => Err(CmdError::WrongType),
            },
        }
    }

    typed_access!(get_list, get_list_for_write, list_or_create, List, List, "list");
    /// The hash under a key for a read; `WRONGTYPE` for other types. Fields whose time has
    /// run out are removed first (logged as `HDEL`; the key goes with its last field) or, on
    /// a node that may not remove them, hidden behind a copy.
    pub fn get_hash(&mut self, key: &[u8]) -> Result<Option<&mut Hash>, CmdError> {
        if self.hides_expired_fields(self.db, key) {
            let copy = match self.peek(key) {
                Some(Value::Hash(h)) => h.without_expired(self.now_ms),
                _ => unreachable!("checked just above"),
            };
            self.lookup_read(key);
            if copy.is_empty() {
                return Ok(None);
            }
            return Ok(Some(self.hidden_hash.insert(copy)));
        }
        match self.lookup_read(key) {
            None => Ok(None),
            Some(e) => match e {
                Value::Hash(h) => Ok(Some(h)),
                _ => Err(CmdError::WrongType),
            },
        }
    }

    /// The hash under a key for a write; `WRONGTYPE` for other types. Fields whose time has
    /// run out are removed first, logged as `HDEL` (the key goes with its last field).
    pub fn get_hash_for_write(&mut self, key: &[u8]) -> Result<Option<&mut Hash>, CmdError> {
        self.expire_fields_in(self.db, key);
        match self.lookup_write(key) {
            None => Ok(None),
            Some(e) => match e {
                Value::Hash(h) => Ok(Some(h)),
                _ => Err(CmdError::WrongType),
            },
        }
    }

    /// The hash under a key for a write, stored new from `make` if missing (the new empty
    /// value counts as no change: the command counts what it adds); `WRONGTYPE` for other
    /// types.
    pub fn hash_or_create(&mut self, key: &[u8], make: impl FnOnce() -> Hash) -> Result<&mut Hash, CmdError> {
        if self.get_hash_for_write(key)?.is_none() {
            let dirty = self.dirty;
            self.set(key, Value::Hash(make()), false);
            self.dirty = dirty;
        }
        Ok(self.get_hash_for_write(key)?.expect("just stored"))
    }

    /// True if the hash under `key` may have fields whose time has run out: its database's
    /// index of volatile hashes says so (it never names a time later than a hash's earliest
    /// field expiry). Most databases have no volatile hash at all, and then this costs no
    /// lookup: hash commands pay nothing for field expiry they do not use.
    #[inline]
    fn fields_maybe_due(&mut self, db: usize, key: &[u8]) -> bool {
        if self.locks.shards_read().all(|s| s.dbs[db].hash_fields.is_empty()) {
            return false;
        }
        let now = self.now_ms;
        let (d, h) = self.db_deferred(db, key);
        d.hash_fields.get(h, key).is_some_and(|t| t <= now)
    }

    /// True if the hash under `key` (not itself expired) has fields whose time has run out
    /// and this execution may not remove them; removes them (see
    /// [`Store::expire_fields_in`]) when it may.
    fn hides_expired_fields(&mut self, db: usize, key: &[u8]) -> bool {
        if !self.fields_maybe_due(db, key) {
            return false;
        }
        let now = self.now_ms;
        match self.peek_in(db, key) {
            Some(Value::Hash(h)) if h.has_expired_fields(now) => {}
            _ => return false,
        }
        if !self.may_expire {
            return true;
        }
        self.expire_fields_in(db, key);
        false
    }

    /// Removes the fields of the hash under `key` in database `db` whose time has run out,
    /// logging them as one `HDEL` (which on replay also removes a key left empty); the
    /// number removed. Writes always do this, whatever `may_expire` says: a write on a copy
    /// would be lost, and a write's own effect is logged in order after the `HDEL`.
    pub fn expire_fields_in(&mut self, db: usize, key: &[u8]) -> usize {
        if !self.fields_maybe_due(db, key) {
            return 0;
        }
        let now = self.now_ms;
        match self.peek_in(db, key) {
            Some(Value::Hash(h)) if h.has_expired_fields(now) => {}
            _ => return 0,
        }
        let (shard, h) = self.shard_to_change(db, key);
        let gone = shard.dbs[db].remove_expired_fields(h, key, now);
        // The hash changed whatever the command goes on to do (Redis's lazy field expiry
        // signals the key even under a read): transactions watching it fail, its readers hear.
        if !shard.watched.is_empty() {
            shard.watched.touch(db, key, engine::watched::Change::Modified);
        }
        self.invalidate_now(key);
        self.stats.expired_subkeys += gone.len() as u64;
        let mut argv = Vec::with_capacity(gone.len() + 2);
        argv.push(b"HDEL".to_vec());
        argv.push(key.to_vec());
        argv.extend(gone.iter().map(|f| f.to_vec()));
        let n = gone.len();
        self.effects.push(db, now, argv);
        self.notify_in(crate::notify::HASH, "hexpired", db, key);
        if self.peek_in(db, key).is_none() {
            self.notify_in(crate::notify::GENERIC, "del", db, key);
        }
        n
    }

    /// Records the earliest field expiry of the hash under `key` after a command changed
    /// its fields' times to live, for the expiry cycle.
    pub fn note_field_expiry(&mut self, key: &[u8]) {
        // The index only: no snapshot holds it.
        let (d, h) = self.db_deferred(self.db, key);
        d.note_field_expiry(h, key);
    }
    typed_access!(get_set, get_set_for_write, set_or_create, Set, Set, "set");
    typed_access!(get_zset, get_zset_for_write, zset_or_create, ZSet, ZSet, "sorted set");

    /// Deletes `key` if it holds a collection that has become empty (Redis never keeps one).
    pub fn delete_if_empty(&mut self, key: &[u8]) {
        if self.lookup_write(key).is_some_and(|e| e.is_empty_collection()) {
            self.delete(key);
            self.notify(crate::notify::GENERIC, "del", key);
        }
    }

    /// A key's value in the selected database, for reading several at once (set algebra):
    /// hidden if expired, but no removal, no counters, no access time. Look each key up with
    /// a typed lookup first, which does those and checks the type.
    pub fn peek(&self, key: &[u8]) -> Option<&Value> {
        self.peek_in(self.db, key)
    }

    /// [`Store::peek`] in database `db`.
    pub fn peek_in(&self, db: usize, key: &[u8]) -> Option<&Value> {
        let h = self.ks.hash(key);
        let d = &self.locks.shard_ref(self.ks.shard_of(h)).dbs[db];
        if d.is_expired(h, key, self.now_ms) {
            return None;
        }
        d.value(h, key)
    }

    /// The encoding thresholds of collections.
    #[inline]
    pub fn limits(&self) -> Limits {
        self.ks.limits()
    }

    /// Stores a value in database `db`, clearing any time to live unless `keep_ttl`. Counts
    /// one change. Returns true if the key was new.
    pub fn set_in(&mut self, db: usize, key: &[u8], value: Value, keep_ttl: bool) -> bool {
        // A key whose time ran out is removed first (`expired`), so the value arrives `new`,
        // as Redis's `setKey` looks the key up for a write.
        self.expire_if_needed(db, key);
        let lru = lru_clock(self.now_ms);
        self.dirty += 1;
        let (shard, h) = self.shard_to_change(db, key);
        // A list or sorted set arriving under a key clients wait on: they are served after
        // this command.
        let waited =
            !shard.blocked.is_empty() && matches!(value, Value::List(_) | Value::ZSet(_)) && shard.blocked.has(db, key);
        let d = &mut shard.dbs[db];
        let new = if keep_ttl { d.set_keep_ttl(h, key, value, lru) } else { d.set(h, key, value, lru) };
        if waited {
            self.ready.push((db, key.to_vec()));
        }
        if new {
            self.notify_in(crate::notify::NEW, "new", db, key);
        }
        new
    }

    /// Stores a value in the selected database (see [`Store::set_in`]).
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool) -> bool {
        self.set_in(self.db, key, value, keep_ttl)
    }

    /// Deletes a key of database `db`; true if it existed (expired keys do not count).
    pub fn delete_in(&mut self, db: usize, key: &[u8]) -> bool {
        if self.expire_if_needed(db, key) {
            return false;
        }
        // Only a key that was there counts as touched (`DEL a b` with b absent leaves b's
        // watchers be, as in Redis).
        let h = self.ks.hash(key);
        let shard = self.locks.shard_deferred(self.ks.shard_of(h));
        shard.before_write(db, h, key);
        let removed = shard.dbs[db].remove(h, key).is_some();
        if removed {
            self.dirty += 1;
            if !shard.watched.is_empty() {
                shard.watched.touch(db, key, engine::watched::Change::Modified);
            }
            self.invalidate_now(key);
        }
        removed
    }

    /// Deletes a key of the selected database.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        self.delete_in(self.db, key)
    }

    /// Removes and returns an entry and its expiry from database `db` (for `RENAME`, `MOVE`).
    pub fn take_in(&mut self, db: usize, key: &[u8]) -> Option<(Entry, Option<i64>)> {
        if self.expire_if_needed(db, key) {
            return None;
        }
        let (d, h) = self.db_to_change(db, key);
        let when = d.expire_of(h, key);
        let e = d.remove(h, key)?;
        self.dirty += 1;
        Some((e, when))
    }

    /// The absolute expiry of an existing key of database `db`.
    pub fn expire_of_in(&mut self, db: usize, key: &[u8]) -> Option<i64> {
        let (d, h) = self.db_deferred(db, key);
        d.expire_of(h, key)
    }

    /// The absolute expiry of an existing key of the selected database.
    pub fn expire_of(&mut self, key: &[u8]) -> Option<i64> {
        self.expire_of_in(self.db, key)
    }

    /// Sets the absolute expiry of an existing key of database `db`; counts one change.
    pub fn set_expire_in(&mut self, db: usize, key: &[u8], when_ms: i64) {
        self.dirty += 1;
        self.set_expire_unchanged_in(db, key, when_ms);
    }

    /// Sets the absolute expiry of an existing key without counting a change (for commands
    /// that count the store and the expiry as one, `SET ... EX`).
    pub fn set_expire_unchanged_in(&mut self, db: usize, key: &[u8], when_ms: i64) {
        let (d, h) = self.db_to_change(db, key);
        d.set_expire(h, key, when_ms);
    }

    /// Sets the absolute expiry of an existing key of the selected database.
    pub fn set_expire(&mut self, key: &[u8], when_ms: i64) {
        self.set_expire_in(self.db, key, when_ms)
    }

    /// Removes a key's time to live; true (and one change) if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        let db = self.db;
        let (d, h) = self.db_to_change(db, key);
        let had = d.persist(h, key);
        if had {
            self.dirty += 1;
        }
        had
    }
}

/// Everything a handler gets.
pub struct Ctx<'a> {
    /// Keys.
    pub store: Store<'a>,
    /// Where the reply goes.
    pub out: &'a mut ReplyWriter,
    /// The calling connection's state.
    pub session: &'a mut Session,
    /// The server around.
    pub host: &'a dyn Host,
    /// Randomness for this command.
    pub rng: &'a mut Rng,
    /// A rewritten form to log instead of the request (one or more commands).
    pub rewrite: Option<Vec<Vec<Vec<u8>>>>,
    /// The command may block its client (false inside `MULTI`, scripts and log replays).
    pub may_block: bool,
    /// Set by a command that blocked its client (see [`Ctx::block`]).
    pub blocked: Option<std::sync::Arc<crate::blocking::Waiter>>,
    /// Commands of a transaction that take shard locks themselves, with the offset in `out`
    /// where each one's reply goes: `execute` runs them once `EXEC`'s hold is released.
    pub deferred: Vec<(usize, Vec<Vec<u8>>)>,
}

impl Ctx<'_> {
    /// Logs `argv` instead of the request when the command changed something (Redis's
    /// `rewriteClientCommandVector`, e.g. `SET ... EX` → `SET ... PXAT`).
    /// The form is built only when something records effects, keeping the copies off the
    /// hot path otherwise.
    pub fn propagate_as(&mut self, argv: impl FnOnce() -> Vec<Vec<u8>>) {
        if self.store.effects.enabled {
            self.rewrite.get_or_insert_with(Vec::new).push(argv());
        }
    }

    /// The command's time in milliseconds.
    #[inline]
    pub fn now_ms(&self) -> i64 {
        self.store.now_ms
    }

    /// Blocks the client on `keys` (every one empty, checked under this command's locks) until
    /// one receives a value, `deadline_ms` (Unix ms; 0 = never) passes or `CLIENT UNBLOCK`;
    /// the connection sends the reply then. Where the command may not block it replies as
    /// if nothing came, at once.
    pub fn block(&mut self, keys: &[&[u8]], kind: crate::blocking::BlockKind, deadline_ms: i64) {
        if !self.may_block {
            kind.reply_unblocked_empty(self.out);
            return;
        }
        let w = std::sync::Arc::new(crate::blocking::Waiter::new(
            self.session.id,
            self.store.db,
            self.out.resp,
            keys,
            kind,
            deadline_ms,
            false,
        ));
        self.host.waiters().add_locked(&mut self.store, &w);
        self.blocked = Some(w);
    }
}
