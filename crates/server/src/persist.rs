//! RDB persistence as the server runs it: `SAVE`, `BGSAVE`, save points, the save on shutdown,
//! loading at start-up (answering `-LOADING` meanwhile), `DEBUG RELOAD`, `FLUSHALL`'s save,
//! `-MISCONF` after a failed background save, and the `INFO persistence` fields.
//!
//! A save never forks and never stops the server: `persistence::snapshot` takes a
//! point-in-time cut of the keyspace and writes it shard by shard while commands go on. Only one
//! save runs at a time, as in Redis.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use commands::stats::Gate;
use engine::Shard;
use persistence::snapshot::{self, SnapshotOptions};

use crate::connection::unix_ms;
use crate::Shared;

/// Seconds to wait before retrying a failed automatic save (Redis's CONFIG_BGSAVE_RETRY_DELAY).
const BGSAVE_RETRY_DELAY_MS: i64 = 5_000;

/// Persistence state shared by every connection.
#[derive(Debug)]
pub struct Persist {
    /// A save (of any kind) is running.
    pub busy: AtomicBool,
    /// `BGSAVE SCHEDULE` came while an AOF rewrite ran; the cron starts it later.
    pub bgsave_scheduled: AtomicBool,
    /// The running save is a background one.
    bgsave_running: AtomicBool,
    bgsave_started_ms: AtomicI64,
    /// Bumped by `FLUSHALL`: a save that started before it is abandoned (Redis kills its child).
    generation: AtomicU64,
    /// Held while a finished snapshot is checked against `generation` and renamed into place.
    file_lock: parking_lot::Mutex<()>,
    last_save_s: AtomicI64,
    /// `Stats::dirty` as it was at the cut of the last successful save.
    dirty_at_save: AtomicU64,
    last_bgsave_ok: AtomicBool,
    last_bgsave_secs: AtomicI64,
    last_bgsave_try_ms: AtomicI64,
    saves: AtomicU64,
    loading_started_s: AtomicI64,
    loading_total_bytes: AtomicU64,
    last_load_keys: AtomicU64,
    last_load_expired: AtomicU64,
}

impl Persist {
    /// State of a server that has not saved yet (`LASTSAVE` starts at start-up time).
    pub fn new(now_ms: i64) -> Persist {
        Persist {
            busy: AtomicBool::new(false),
            bgsave_scheduled: AtomicBool::new(false),
            bgsave_running: AtomicBool::new(false),
            bgsave_started_ms: AtomicI64::new(0),
            generation: AtomicU64::new(0),
            file_lock: parking_lot::Mutex::new(()),
            last_save_s: AtomicI64::new(now_ms / 1000),
            dirty_at_save: AtomicU64::new(0),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            last_bgsave_try_ms: AtomicI64::new(0),
            saves: AtomicU64::new(0),
            loading_started_s: AtomicI64::new(0),
            loading_total_bytes: AtomicU64::new(0),
            last_load_keys: AtomicU64::new(0),
            last_load_expired: AtomicU64::new(0),
        }
    }

    /// Unix seconds of the last successful save.
    pub fn last_save(&self) -> i64 {
        self.last_save_s.load(Ordering::Relaxed)
    }
}

/// Why a save did not happen.
#[derive(Debug)]
pub enum SaveError {
    /// Another save is running.
    Busy,
    /// `FLUSHALL` ran meanwhile; the snapshot was discarded.
    Abandoned,
    /// The file could not be written.
    Io(std::io::Error),
}

impl Shared {
    /// `dir`/`dbfilename`.
    pub fn rdb_path(&self) -> PathBuf {
        PathBuf::from(self.config.get("dir")).join(self.config.get("dbfilename"))
    }

    pub(crate) fn snapshot_options(&self) -> SnapshotOptions {
        SnapshotOptions {
            compress: self.config.get_bool("rdbcompression"),
            checksum: self.config.get_bool("rdbchecksum"),
            redis_ver: commands::family::server::REDIS_VERSION.to_string(),
            ctime_secs: unix_ms() / 1000,
            used_mem: crate::memory::allocated().unwrap_or(0),
            aof_base: false,
            format: snapshot::Format::Rdb,
            cpu_share: 1.0,
            activity: snapshot::Activity::default(),
            held_limit: usize::MAX,
        }
    }

    /// Options for a snapshot nobody waits for: paced by `snapshot-cpu-percent` while clients
    /// send commands (bytes received is the sign of that), until the cut-time states it keeps
    /// for changed keys reach 1/32 of the memory in use (the save's memory overhead stays near
    /// 3%; past that it runs flat out and frees them sooner).
    pub(crate) fn background_snapshot_options(&self) -> SnapshotOptions {
        let input = self.net_input_bytes.clone();
        let opts = self.snapshot_options();
        SnapshotOptions {
            held_limit: (opts.used_mem as usize / 32).max(1 << 20),
            cpu_share: self.config.get_i64("snapshot-cpu-percent") as f64 / 100.0,
            activity: snapshot::Activity(Some(Arc::new(move || input.load(Ordering::Relaxed)))),
            ..opts
        }
    }

    /// True when writes must be refused with `-MISCONF`.
    fn misconf(&self) -> bool {
        self.config.get_bool("stop-writes-on-bgsave-error")
            && !self.config.save_points().is_empty()
            && !self.persist.last_bgsave_ok.load(Ordering::Relaxed)
    }

    /// Re-evaluates the `-MISCONF` gate (after a save or a configuration change).
    pub fn update_misconf_gate(&self) {
        self.stats.set_gate(Gate::Misconf, self.misconf());
    }

    /// Writes a snapshot to the RDB file from the calling thread while others keep serving.
    /// `background`: paced by `snapshot-cpu-percent` (nobody waits for it).
    fn save_inner(&self, background: bool) -> Result<snapshot::SaveStats, SaveError> {
        let p = &self.persist;
        let path = self.rdb_path();
        let mut cut = (0u64, 0u64);
        let opts = if background { self.background_snapshot_options() } else { self.snapshot_options() };
        let written = snapshot::save(&self.ks, &path, &opts, || {
            cut = (self.stats.dirty.load(Ordering::Relaxed), p.generation.load(Ordering::SeqCst));
        })
        .map_err(|e| self.save_failed(e))?;
        // Checked and renamed under the file lock, which FLUSHALL's save holds too: either this
        // file lands first and FLUSHALL's replaces it, or FLUSHALL ran after our cut and this
        // older image must not replace the empty one.
        let _file = p.file_lock.lock();
        if p.generation.load(Ordering::SeqCst) != cut.1 {
            return Err(SaveError::Abandoned);
        }
        let stats = written.commit(&path).map_err(|e| self.save_failed(e))?;
        self.record_save(cut.0);
        Ok(stats)
    }

    fn save_failed(&self, e: std::io::Error) -> SaveError {
        tracing::warn!(
            "Failed saving the DB to {} (in server root dir {}): {e}",
            self.rdb_path().display(),
            std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
        );
        SaveError::Io(e)
    }

    /// Notes a successful save of the dataset as it was when `dirty` changes had been made.
    fn record_save(&self, dirty: u64) {
        let p = &self.persist;
        p.dirty_at_save.store(dirty, Ordering::Relaxed);
        p.last_save_s.store(unix_ms() / 1000, Ordering::Relaxed);
        p.saves.fetch_add(1, Ordering::Relaxed);
    }

    /// `SAVE` (and the save on shutdown): returns when the file is on disk.
    pub fn save_now(&self) -> Result<(), SaveError> {
        let p = &self.persist;
        while p.busy.swap(true, Ordering::SeqCst) {
            if p.bgsave_running.load(Ordering::SeqCst) {
                return Err(SaveError::Busy);
            }
            // An AOF rewrite holds the (single) snapshot: SAVE waits for it, as blocking as
            // Redis's SAVE is anyway.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let result = self.save_inner(false);
        p.busy.store(false, Ordering::SeqCst);
        let stats = result?;
        tracing::info!("DB saved on disk ({} keys, {} bytes)", stats.keys, stats.bytes);
        Ok(())
    }

    /// The save of `SHUTDOWN` and SIGTERM: `Some(true)` always (SAVE), `Some(false)` never
    /// (NOSAVE), `None` when save points are configured (as Redis). Waits for a background save
    /// in progress to finish first.
    pub fn save_before_exit(&self, save: Option<bool>) -> Result<(), SaveError> {
        self.aof_before_exit();
        let wanted = save.unwrap_or_else(|| !self.config.save_points().is_empty());
        if !wanted {
            return Ok(());
        }
        tracing::info!("Saving the final RDB snapshot before exiting.");
        loop {
            match self.save_now() {
                Err(SaveError::Busy) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(e) => {
                    tracing::warn!("Error trying to save the DB, can't exit.");
                    return Err(e);
                }
                Ok(()) => return Ok(()),
            }
        }
    }

    /// `BGSAVE`: starts a background save on its own thread.
    pub fn start_bgsave(self: &Arc<Self>) -> Result<(), SaveError> {
        let p = &self.persist;
        if p.busy.swap(true, Ordering::SeqCst) {
            return Err(SaveError::Busy);
        }
        p.bgsave_running.store(true, Ordering::SeqCst);
        p.bgsave_started_ms.store(unix_ms(), Ordering::Relaxed);
        p.last_bgsave_try_ms.store(unix_ms(), Ordering::Relaxed);
        tracing::info!("Background saving started");
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("tandem-bgsave".into()).spawn(move || {
            let started = Instant::now();
            let result = me.save_inner(true);
            let p = &me.persist;
            p.last_bgsave_secs.store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
            match result {
                Ok(stats) => {
                    p.last_bgsave_ok.store(true, Ordering::Relaxed);
                    tracing::info!(
                        "Background saving terminated with success ({} keys, {} bytes)",
                        stats.keys,
                        stats.bytes
                    );
                }
                Err(SaveError::Abandoned) => tracing::info!("Background saving abandoned: the dataset was flushed"),
                Err(_) => {
                    p.last_bgsave_ok.store(false, Ordering::Relaxed);
                    tracing::warn!("Background saving error");
                }
            }
            me.update_misconf_gate();
            p.bgsave_running.store(false, Ordering::SeqCst);
            p.busy.store(false, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            p.bgsave_running.store(false, Ordering::SeqCst);
            p.busy.store(false, Ordering::SeqCst);
            return Err(SaveError::Io(e));
        }
        Ok(())
    }

    /// Called once a second: starts a background save when a save point is reached.
    pub fn save_points_cron(self: &Arc<Self>) {
        let p = &self.persist;
        if p.busy.load(Ordering::Relaxed) {
            return;
        }
        let now = unix_ms();
        let changes = self.stats.dirty.load(Ordering::Relaxed).saturating_sub(p.dirty_at_save.load(Ordering::Relaxed));
        let since_save = now / 1000 - p.last_save();
        let may_retry = p.last_bgsave_ok.load(Ordering::Relaxed)
            || now - p.last_bgsave_try_ms.load(Ordering::Relaxed) > BGSAVE_RETRY_DELAY_MS;
        if p.bgsave_scheduled.swap(false, Ordering::SeqCst) {
            let _ = self.start_bgsave();
            return;
        }
        for (secs, min_changes) in self.config.save_points() {
            if changes >= min_changes && since_save >= secs as i64 && may_retry {
                tracing::info!("{min_changes} changes in {secs} seconds. Saving...");
                let _ = self.start_bgsave();
                return;
            }
        }
    }

    /// Saves `shards` (every shard, locked by the caller) synchronously: for the commands that
    /// hold the whole keyspace (`FLUSHALL`, `DEBUG RELOAD`), where a snapshot cut is not needed.
    fn save_locked(&self, shards: &[&mut Shard]) -> std::io::Result<()> {
        let path = self.rdb_path();
        let snap = snapshot::RdbSnapshot::create(&snapshot::temp_path_for(&path), &self.snapshot_options())?;
        for s in shards {
            snap.write_shard(s);
        }
        let written = snap.finish()?;
        let _file = self.persist.file_lock.lock();
        written.commit(&path)?;
        self.record_save(self.stats.dirty.load(Ordering::Relaxed));
        Ok(())
    }

    /// After `FLUSHALL`: abandon any running snapshot and, with save points, save the empty
    /// dataset so a restart does not bring the old keys back (as Redis does).
    pub fn after_flushall(&self, shards: &[&mut Shard]) {
        self.persist.generation.fetch_add(1, Ordering::SeqCst);
        if self.config.save_points().is_empty() {
            return;
        }
        if let Err(e) = self.save_locked(shards) {
            tracing::warn!("Saving the flushed dataset failed: {e}");
        }
    }

    /// `DEBUG RELOAD`: save, empty, load back.
    pub fn debug_reload(&self, shards: &mut [&mut Shard]) -> Result<(), String> {
        if self.persist.busy.load(Ordering::SeqCst) {
            return Err("ERR Background save already in progress".into());
        }
        self.save_locked(shards).map_err(|e| format!("ERR Error trying to save the DB: {e}"))?;
        for s in shards.iter_mut() {
            // As in Redis, emptying the dataset fails the transactions watching what it held.
            for db in 0..s.dbs.len() {
                s.touch_watched_in(db, None);
            }
            s.clear_all();
        }
        let data = std::fs::read(self.rdb_path()).map_err(|e| format!("ERR Error trying to load the RDB dump: {e}"))?;
        persistence::load::load_rdb_into_shards(
            &self.ks,
            shards,
            &data,
            unix_ms(),
            self.config.get_bool("rdbchecksum"),
        )
        .map_err(|e| {
            tracing::warn!("Error loading the RDB dump: {e}");
            "ERR Error trying to load the RDB dump, check server logs.".to_string()
        })?;
        Ok(())
    }

    /// Closes the `-LOADING` gate if there is an RDB file to load; true if there is.
    pub fn begin_loading(&self) -> bool {
        self.aof_config_changed();
        if self.cluster_configured() {
            // In a cluster the dataset is the Raft state (snapshot and log in `dir/raft`);
            // `appendonly yes` makes that durable instead of opening an AOF.
            return false;
        }
        let p = &self.persist;
        if self.config.get_bool("appendonly") {
            // The AOF directory is the dataset (Redis ignores the RDB file then); even an
            // empty one is created before clients may write.
            p.loading_started_s.store(unix_ms() / 1000, Ordering::Relaxed);
            self.stats.set_gate(Gate::Loading, true);
            return true;
        }
        let Ok(meta) = std::fs::metadata(self.rdb_path()) else {
            return false;
        };
        p.loading_started_s.store(unix_ms() / 1000, Ordering::Relaxed);
        p.loading_total_bytes.store(meta.len(), Ordering::Relaxed);
        self.stats.set_gate(Gate::Loading, true);
        true
    }

    /// Loads the RDB file after [`Shared::begin_loading`] (clients get `-LOADING` meanwhile).
    /// A damaged file stops the process with a message naming the file and the offset, as
    /// Redis does.
    pub fn load_at_startup(&self) {
        if self.config.get_bool("appendonly") {
            self.aof_load_and_open();
            self.stats.set_gate(Gate::Loading, false);
            return;
        }
        let path = self.rdb_path();
        let p = &self.persist;
        let started = Instant::now();
        let result = persistence::load::load_rdb(&self.ks, &path, unix_ms(), self.config.get_bool("rdbchecksum"));
        match result {
            Ok(report) => {
                p.last_load_keys.store(report.keys, Ordering::Relaxed);
                p.last_load_expired.store(report.expired_skipped, Ordering::Relaxed);
                if report.functions_skipped > 0 {
                    tracing::warn!(
                        "Skipped {} function libraries: scripting is not available yet",
                        report.functions_skipped
                    );
                }
                tracing::info!(
                    "DB loaded from disk: {:.3} seconds ({} keys, {} expired keys skipped)",
                    started.elapsed().as_secs_f64(),
                    report.keys,
                    report.expired_skipped
                );
            }
            Err(e) => {
                tracing::error!("Fatal error loading the DB: {e}. Exiting.");
                std::process::exit(1);
            }
        }
        self.stats.set_gate(Gate::Loading, false);
    }

    /// The `INFO persistence` section.
    pub fn info_persistence(&self, out: &mut String) {
        use std::fmt::Write;
        let p = &self.persist;
        let now = unix_ms();
        let bgsave = p.bgsave_running.load(Ordering::Relaxed);
        let loading = self.stats.gate(Gate::Loading);
        let changes = self.stats.dirty.load(Ordering::Relaxed).saturating_sub(p.dirty_at_save.load(Ordering::Relaxed));
        let _ = write!(out, "loading:{}\r\nasync_loading:0\r\n", loading as u8);
        if loading {
            let _ = write!(
                out,
                "loading_start_time:{}\r\nloading_total_bytes:{}\r\n",
                p.loading_started_s.load(Ordering::Relaxed),
                p.loading_total_bytes.load(Ordering::Relaxed)
            );
        }
        let _ = write!(
            out,
            "current_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\n\
             rdb_changes_since_last_save:{changes}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\n\
             rdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
            bgsave as u8,
            p.last_save(),
            if p.last_bgsave_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            p.last_bgsave_secs.load(Ordering::Relaxed),
            if bgsave { (now - p.bgsave_started_ms.load(Ordering::Relaxed)) / 1000 } else { -1 },
            p.saves.load(Ordering::Relaxed),
            p.last_load_expired.load(Ordering::Relaxed),
            p.last_load_keys.load(Ordering::Relaxed),
        );
        self.info_aof(out);
        out.push_str("module_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n");
    }
}

/// Once a second: save points and the `-MISCONF` gate.
pub async fn cron(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        if !shared.stats.gate(Gate::Loading) {
            shared.save_points_cron();
            shared.aof_cron();
        }
        shared.update_misconf_gate();
    }
}
