//! Loading an RDB file into the keyspace.

use std::path::Path;

use engine::keyspace::lru_clock;
use engine::{Keyspace, Shard, Value};

use crate::rdb_file::{self, Entry, LoadOptions, Visitor};

/// What a load found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Keys loaded.
    pub keys: u64,
    /// Keys skipped because their time to live had already run out (as a Redis primary does).
    pub expired_skipped: u64,
    /// Function libraries skipped (scripting does not exist yet).
    pub functions_skipped: u64,
    /// RDB format version of the file.
    pub version: u32,
    /// File size.
    pub bytes: u64,
    /// Bytes of the RDB image, through its checksum (an AOF with an RDB preamble continues
    /// with commands after it).
    pub rdb_bytes: u64,
}

/// Where loaded keys go: the keyspace (locking one shard per key), or shards the caller
/// already holds (`DEBUG RELOAD` runs with the whole keyspace locked).
enum Target<'a, 'b> {
    Keyspace,
    Locked(&'a mut [&'b mut Shard]),
}

struct Loader<'a, 'b> {
    ks: &'a Keyspace,
    target: Target<'a, 'b>,
    now_ms: i64,
    /// Keep keys whose time has passed (a replica's load: the source decides when they go).
    keep_expired: bool,
    db: usize,
    report: LoadReport,
}

impl Loader<'_, '_> {
    fn insert(&mut self, key: &[u8], value: Value, expire: Option<i64>, lru: u32) -> Result<(), String> {
        let h = self.ks.hash(key);
        let index = self.ks.shard_of(h);
        let mut guard;
        let shard: &mut Shard = match &mut self.target {
            Target::Keyspace => {
                guard = self.ks.lock(index);
                &mut guard
            }
            Target::Locked(shards) => shards[index],
        };
        let db = &mut shard.dbs[self.db];
        // A duplicate aborts the whole load, so overwriting before noticing is harmless and
        // saves a second lookup per key.
        if !db.set(h, key, value, lru) {
            return Err(format!("RDB has duplicated key '{}' in DB {}", String::from_utf8_lossy(key), self.db));
        }
        if let Some(t) = expire {
            db.set_expire(h, key, t);
        }
        Ok(())
    }
}

impl Visitor for Loader<'_, '_> {
    fn select_db(&mut self, db: u64) -> Result<(), String> {
        if db >= self.ks.databases() as u64 {
            return Err(format!(
                "FATAL: Data file was created with a Redis server configured to handle more than {} databases.",
                self.ks.databases()
            ));
        }
        self.db = db as usize;
        Ok(())
    }

    fn entry(&mut self, e: Entry) -> Result<(), String> {
        if !self.keep_expired && matches!(e.expire_at_ms, Some(t) if t < self.now_ms) {
            self.report.expired_skipped += 1;
            return Ok(());
        }
        let value = e.value.into_value(&self.ks.limits());
        let lru = lru_clock(self.now_ms).wrapping_sub(e.idle_secs.unwrap_or(0) as u32);
        self.insert(&e.key, value, e.expire_at_ms, lru)?;
        self.report.keys += 1;
        Ok(())
    }

    fn function(&mut self, _code: &[u8]) -> Result<(), String> {
        self.report.functions_skipped += 1;
        Ok(())
    }
}

fn run(loader: &mut Loader<'_, '_>, data: &[u8], verify_checksum: bool) -> Result<LoadReport, String> {
    let summary = rdb_file::load(data, &LoadOptions { verify_checksum }, loader).map_err(|e| e.to_string())?;
    let mut report = loader.report.clone();
    report.version = summary.version;
    report.bytes = data.len() as u64;
    report.rdb_bytes = summary.bytes;
    Ok(report)
}

/// Loads the RDB file at `path` into `ks` (expected to be empty), treating keys that expire
/// before `now_ms` as gone. The error names the file and the offset of the damage.
pub fn load_rdb(ks: &Keyspace, path: &Path, now_ms: i64, verify_checksum: bool) -> Result<LoadReport, String> {
    let data = std::fs::read(path).map_err(|e| format!("Error reading {}: {e}", path.display()))?;
    load_rdb_bytes(ks, &data, now_ms, verify_checksum).map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads RDB bytes (a whole file, or an AOF base) into `ks`, locking a shard per key.
pub fn load_rdb_bytes(ks: &Keyspace, data: &[u8], now_ms: i64, verify_checksum: bool) -> Result<LoadReport, String> {
    let mut loader =
        Loader { ks, target: Target::Keyspace, now_ms, keep_expired: false, db: 0, report: LoadReport::default() };
    run(&mut loader, data, verify_checksum)
}

/// Loads RDB bytes into every shard of `ks`, which the caller holds locked (`shards[i]` is
/// shard `i`).
pub fn load_rdb_into_shards(
    ks: &Keyspace,
    shards: &mut [&mut Shard],
    data: &[u8],
    now_ms: i64,
    verify_checksum: bool,
) -> Result<LoadReport, String> {
    let mut loader = Loader {
        ks,
        target: Target::Locked(shards),
        now_ms,
        keep_expired: false,
        db: 0,
        report: LoadReport::default(),
    };
    run(&mut loader, data, verify_checksum)
}

/// Loads another node's image into every shard of `ks` (held locked by the caller) as a Redis
/// replica loads its master's RDB: every key, those whose time has passed included, since in
/// a cluster only the log decides when a key goes.
pub fn load_replica_image(
    ks: &Keyspace,
    shards: &mut [&mut Shard],
    data: &[u8],
    now_ms: i64,
) -> Result<LoadReport, String> {
    let mut loader =
        Loader { ks, target: Target::Locked(shards), now_ms, keep_expired: true, db: 0, report: LoadReport::default() };
    run(&mut loader, data, true)
}
