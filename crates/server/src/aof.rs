//! The append-only file as the server runs it: the log of effects, its files in Redis 7's
//! multi-part layout, the fsync policies with group commit, rewrites, and replay at start-up.
//!
//! # The log
//!
//! Every command's effects are encoded into the *sequencer* while the command still holds its
//! shard locks (`Host::log_effects`), so the log's order is the order in which commands touched
//! their keys. A position in the log is the count of bytes ever appended (across files). After
//! a batch of requests a connection writes everything pending to the kernel itself (one
//! `write` covers every connection's commands so far, as Redis's `beforeSleep` does) and, under
//! `appendfsync always`, makes its position durable before any reply of the batch leaves: the
//! first connection to get there runs `fdatasync` itself, in its own thread as Redis's event
//! loop does (a hand-off to another thread and back cost 16% of throughput at `-P 1`), and
//! every connection that arrives while that sync is in flight waits for it and, if its bytes
//! came too late for it, leads the next one: one `fdatasync` covers every write that arrived
//! meanwhile (group commit). Under `everysec` the fsync thread syncs once a second; under `no`
//! never.
//!
//! # Rewrites
//!
//! A rewrite is a fork-less snapshot (`persistence::snapshot`) written as the next base file.
//! Before it starts, a new incr file is created and listed in the manifest; at the snapshot's
//! cut (under every shard lock) the sequencer records the position from which bytes go to the
//! new incr file, so the new base plus the new incr file are exactly the dataset. When the base
//! is complete the manifest lists it and the new incr file only, and the old files are deleted.
//! Switching the AOF on at run time is the same operation with logging starting at the cut.
//!
//! # Failures
//!
//! A failed write (disk full, EIO) keeps the unwritten bytes (a partial write is cut off the
//! file again) and retries every second; meanwhile writes and `PING` get
//! `-MISCONF Errors writing to the AOF file: ...`, and under `always` no reply waits on bytes
//! that are not durable. A failed fsync under `always` ends the process as Redis does: the
//! kernel may have dropped the pages, so acknowledging later writes would be a lie.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::effects::Effect;
use commands::exec::{execute, ExecOptions};
use commands::stats::{Gate, LocalStats};
use commands::{Effects, Session};
use engine::{Env, Rng};
use parking_lot::Mutex;
use persistence::aof::manifest::{self, BaseFormat, Manifest};
use persistence::aof::{Encoder, ReadError, Reader};
use persistence::snapshot::{Format, RdbSnapshot, SnapshotOptions};
use protocol::{ReplyWriter, Resp};

use crate::connection::unix_ms;
use crate::Shared;

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fsync {
    /// Every write is durable before its reply.
    Always = 0,
    /// Synced once a second.
    Everysec = 1,
    /// Left to the kernel.
    No = 2,
}

impl Fsync {
    fn parse(s: &str) -> Fsync {
        match s {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::Everysec,
        }
    }

    fn from_u8(v: u8) -> Fsync {
        match v {
            0 => Fsync::Always,
            2 => Fsync::No,
            _ => Fsync::Everysec,
        }
    }
}

/// Encoded effects not yet written, in log order. A leaf lock taken under shard locks.
#[derive(Default)]
struct Sequencer {
    buf: Vec<u8>,
    /// Log position of `buf[0]`.
    start: u64,
    enc: Encoder,
    /// A rewrite's cut: bytes from this position on belong to the next incr file.
    switch_at: Option<u64>,
}

/// The open incr files. Taken by whoever writes pending bytes out, never under shard locks.
#[derive(Default)]
struct Files {
    /// The incr file being appended to.
    current: Option<Arc<File>>,
    /// Its length, to cut a partial write off again.
    current_len: u64,
    /// The incr file a rewrite in progress switches to at its cut.
    next: Option<Arc<File>>,
    /// Bytes taken from the sequencer and not yet written (only non-empty after a failure).
    carry: Vec<u8>,
    /// Log position of `carry[0]`.
    carry_start: u64,
    /// The pending switch, once taken from the sequencer.
    switch_at: Option<u64>,
}

/// What the directory holds. Taken by start, stop and rewrites only.
struct Dir {
    manifest: Manifest,
}

/// The AOF state shared by every connection.
pub struct Aof {
    /// Effects are being logged. Changed only under every shard lock.
    on: AtomicBool,
    fsync: AtomicU8,
    seq: Mutex<Sequencer>,
    files: Mutex<Files>,
    dir: Mutex<Dir>,
    /// Log position written to the kernel.
    written: AtomicU64,
    /// Log position known durable; connections under `always` wait on it. Every sync, even one
    /// that found nothing to do, notifies it, so that waiters look again.
    synced: tokio::sync::watch::Sender<u64>,
    /// An `fdatasync` is in flight (only one runs at a time; see [`Aof::lead_sync`]).
    syncing: AtomicBool,
    /// The last write or fsync error, as `strerror` prints it.
    write_error: Mutex<Option<String>>,
    /// Set when the last write failed; cleared by a successful one.
    write_failed: AtomicBool,
    /// A rewrite (or the start of the AOF) is running.
    pub rewrite_running: AtomicBool,
    /// `BGREWRITEAOF` came while another save ran; the cron starts it later.
    pub rewrite_scheduled: AtomicBool,
    rewrite_started_ms: AtomicI64,
    last_rewrite_secs: AtomicI64,
    last_rewrite_ok: AtomicBool,
    rewrites: AtomicU64,
    rewrite_failures: AtomicU64,
    /// Bytes of the base and incr files listed in the manifest.
    current_size: AtomicU64,
    /// `current_size` after the last rewrite or load (auto-rewrite measures growth from it).
    base_size: AtomicU64,
    /// Set by `stop` so that a rewrite that started while the AOF was on does not install a
    /// manifest whose incr file is no longer written.
    epoch: AtomicU64,
    fsync_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Aof {
    /// The state of a server whose AOF is off.
    pub fn new() -> Aof {
        Aof {
            on: AtomicBool::new(false),
            fsync: AtomicU8::new(Fsync::Everysec as u8),
            seq: Mutex::new(Sequencer::default()),
            files: Mutex::new(Files::default()),
            dir: Mutex::new(Dir { manifest: Manifest::new() }),
            written: AtomicU64::new(0),
            synced: tokio::sync::watch::Sender::new(0),
            syncing: AtomicBool::new(false),
            write_error: Mutex::new(None),
            write_failed: AtomicBool::new(false),
            rewrite_running: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            rewrite_started_ms: AtomicI64::new(0),
            last_rewrite_secs: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            rewrite_failures: AtomicU64::new(0),
            current_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            fsync_thread: Mutex::new(None),
        }
    }

    /// Whether effects are being logged.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// The fsync policy in force.
    pub fn policy(&self) -> Fsync {
        Fsync::from_u8(self.fsync.load(Ordering::Relaxed))
    }

    /// Appends one command's effects; the caller holds the command's shard locks. Returns the
    /// log position after them.
    pub fn append(&self, effects: &[Effect]) -> u64 {
        let mut s = self.seq.lock();
        let Sequencer { buf, enc, .. } = &mut *s;
        for e in effects {
            enc.append(buf, e.db, &e.argv);
        }
        s.start + s.buf.len() as u64
    }

    /// Appends one command given as slices (active expiry's `DEL`s); same contract as
    /// [`Aof::append`].
    pub fn append_one(&self, db: usize, argv: &[&[u8]]) -> u64 {
        let mut s = self.seq.lock();
        let Sequencer { buf, enc, .. } = &mut *s;
        enc.append(buf, db, argv);
        s.start + s.buf.len() as u64
    }

    /// A receiver of the durable position, for connections waiting under `always`.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.synced.subscribe()
    }

    /// The log position written to the kernel.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// The text after `MISCONF Errors writing to the AOF file: `.
    pub fn error_text(&self) -> String {
        self.write_error.lock().clone().unwrap_or_default()
    }

    /// Writes every pending byte to the kernel (any thread; never under shard locks). Errors
    /// are recorded (and close the `-MISCONF` gate) rather than returned: the bytes stay
    /// pending and are retried.
    pub fn write_pending(&self, shared: &Shared) {
        let mut f = self.files.lock();
        {
            let mut s = self.seq.lock();
            if !s.buf.is_empty() {
                let n = s.buf.len() as u64;
                if f.carry.is_empty() {
                    f.carry_start = s.start;
                    std::mem::swap(&mut f.carry, &mut s.buf);
                } else {
                    f.carry.extend_from_slice(&s.buf);
                    s.buf.clear();
                }
                s.start += n;
            }
            if let Some(at) = s.switch_at.take() {
                f.switch_at = Some(at);
            }
        }
        let before = self.written.load(Ordering::Acquire);
        let result = write_files(&mut f, &self.written);
        let after = self.written.load(Ordering::Acquire);
        self.current_size.fetch_add(after - before, Ordering::Relaxed);
        match result {
            Ok(()) => {
                if self.write_failed.swap(false, Ordering::Relaxed) {
                    tracing::warn!("AOF write error looks solved, Redis can write again.");
                    *self.write_error.lock() = None;
                    shared.stats.set_gate(Gate::AofError, false);
                }
            }
            Err(e) => {
                if !self.write_failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!("Error writing to the AOF file: {e}");
                }
                *self.write_error.lock() = Some(strerror(&e));
                shared.stats.set_gate(Gate::AofError, true);
            }
        }
    }

    /// Syncs what is written so far, in the calling thread, unless a sync is in flight already
    /// (then returns false at once: the caller waits for that one's notification and tries
    /// again). A failed fsync under `always` ends the process, as in Redis; under the other
    /// policies it closes the `-MISCONF` gate.
    pub fn lead_sync(&self, shared: &Shared) -> bool {
        if self.syncing.swap(true, Ordering::Acquire) {
            return false;
        }
        let (file, target) = {
            let f = self.files.lock();
            (f.current.clone(), self.written.load(Ordering::Acquire))
        };
        let mut durable = *self.synced.borrow();
        if let Some(file) = file.filter(|_| target > durable) {
            match file.sync_data() {
                Ok(()) => durable = target,
                Err(e) if self.policy() == Fsync::Always => {
                    tracing::error!(
                        "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {e}. Exiting..."
                    );
                    std::process::exit(1);
                }
                Err(e) => {
                    tracing::warn!("Fsync of the AOF file failed: {e}");
                    *self.write_error.lock() = Some(strerror(&e));
                    self.write_failed.store(true, Ordering::Relaxed);
                    shared.stats.set_gate(Gate::AofError, true);
                }
            }
        }
        self.syncing.store(false, Ordering::Release);
        self.synced.send_modify(|d| *d = (*d).max(durable));
        true
    }

    /// One pass of the fsync thread: write what is pending (bytes a failed write left, or that
    /// no connection wrote), then sync it if the policy asks. Under `always` connections sync
    /// themselves; this is the safety net for bytes nobody waits on.
    fn fsync_step(&self, shared: &Shared, due: bool) {
        self.write_pending(shared);
        if self.policy() == Fsync::No || !due || self.written() <= *self.synced.borrow() {
            return;
        }
        self.lead_sync(shared);
    }

    /// Makes everything logged so far durable (shutdown, `appendonly no`).
    fn sync_all(&self, shared: &Shared) -> io::Result<()> {
        self.write_pending(shared);
        let f = self.files.lock();
        if !f.carry.is_empty() {
            return Err(io::Error::other(self.error_text()));
        }
        if let Some(file) = &f.current {
            file.sync_data()?;
        }
        self.synced.send_replace(self.written.load(Ordering::Acquire));
        Ok(())
    }
}

impl Default for Aof {
    fn default() -> Self {
        Aof::new()
    }
}

/// Writes `f.carry` to the incr files, switching files at a rewrite's cut.
fn write_files(f: &mut Files, written: &AtomicU64) -> io::Result<()> {
    loop {
        let end = f.carry_start + f.carry.len() as u64;
        let upto = match f.switch_at {
            Some(at) if at <= end => (at - f.carry_start) as usize,
            _ => f.carry.len(),
        };
        if upto > 0 {
            let Some(file) = f.current.clone() else {
                // Logging was switched off: nothing is written any more.
                f.carry.clear();
                f.carry_start = end;
                return Ok(());
            };
            let (done, result) = write_some(&file, &f.carry[..upto]);
            if let Err(e) = result {
                // Cut a partial command off the file again so the retry appends whole
                // commands; if even that fails, the partial bytes count as written (Redis
                // does the same) so the file stays a valid stream.
                let kept = if done > 0 && file.set_len(f.current_len).is_err() { done } else { 0 };
                f.current_len += kept as u64;
                f.carry.drain(..kept);
                f.carry_start += kept as u64;
                written.store(f.carry_start, Ordering::Release);
                return Err(e);
            }
            f.current_len += upto as u64;
            f.carry.drain(..upto);
            f.carry_start += upto as u64;
            written.store(f.carry_start, Ordering::Release);
        }
        match f.switch_at {
            Some(at) if at == f.carry_start => {
                // Everything before the cut is in the old file: make it durable before
                // anything of the new file can be acknowledged as durable.
                if let Some(old) = &f.current {
                    old.sync_data()?;
                }
                if let Some(next) = f.next.take() {
                    f.current = Some(next);
                    f.current_len = 0;
                }
                f.switch_at = None;
            }
            _ => return Ok(()),
        }
    }
}

/// Writes as much of `data` as possible: (bytes written, the error that stopped it).
fn write_some(mut file: &File, data: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => return (done, Err(io::Error::from(io::ErrorKind::WriteZero))),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// The C library's text for an I/O error (what Redis prints with `strerror`).
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Creates a new, empty incr file (a leftover of an abandoned attempt is replaced).
fn create_incr(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    open_append(path)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Why a rewrite did not complete.
#[derive(Debug)]
pub enum RewriteError {
    /// Another rewrite or save is running.
    Busy,
    /// The files could not be written.
    Io(io::Error),
}

impl From<io::Error> for RewriteError {
    fn from(e: io::Error) -> Self {
        RewriteError::Io(e)
    }
}

impl Shared {
    /// `dir`/`appenddirname`.
    pub fn aof_dir(&self) -> PathBuf {
        PathBuf::from(self.config.get("dir")).join(self.config.get("appenddirname"))
    }

    fn aof_name(&self) -> Vec<u8> {
        self.config.get("appendfilename").into_bytes()
    }

    fn base_format(&self) -> BaseFormat {
        if self.config.get_bool("aof-use-rdb-preamble") {
            BaseFormat::Rdb
        } else {
            BaseFormat::Aof
        }
    }

    /// Applies `appendfsync` (after start-up and every `CONFIG SET`).
    pub fn aof_config_changed(&self) {
        self.aof.fsync.store(Fsync::parse(&self.config.get("appendfsync")) as u8, Ordering::Relaxed);
    }

    fn aof_sizes_from_manifest(&self, m: &Manifest) {
        let dir = self.aof_dir();
        let total: u64 = m.files_to_load().map(|f| file_len(&f.path_in(&dir))).sum();
        self.aof.current_size.store(total, Ordering::Relaxed);
        self.aof.base_size.store(total, Ordering::Relaxed);
    }

    /// Flips logging on or off under every shard lock, so no command is half in.
    fn set_logging(&self, on: bool, at_cut: impl FnOnce(&mut Sequencer)) {
        let guards = self.ks.lock_all();
        {
            let mut s = self.aof.seq.lock();
            at_cut(&mut s);
        }
        self.aof.on.store(on, Ordering::Release);
        drop(guards);
    }

    /// Starts the fsync thread if it is not running.
    fn ensure_fsync_thread(&self) {
        let mut t = self.aof.fsync_thread.lock();
        if t.is_some() {
            return;
        }
        let me = self.arc();
        *t = std::thread::Builder::new()
            .name("tandem-aof-fsync".into())
            .spawn(move || fsync_loop(&me))
            .map_err(|e| tracing::warn!("Cannot start the AOF fsync thread: {e}"))
            .ok();
    }

    /// Loads the AOF directory at start-up (the dataset is empty; clients get `-LOADING`) and
    /// opens its last incr file for appending, or creates the directory with an empty base.
    /// Damage that Redis would refuse stops the process with its message.
    pub fn aof_load_and_open(&self) {
        let dir = self.aof_dir();
        let name = self.aof_name();
        let started = Instant::now();
        let manifest = match manifest::load(&dir, &name) {
            Ok(Some(m)) => Some(m),
            Ok(None) => self.upgrade_old_style_aof(&dir, &name),
            Err(e) => fatal(&format!("{e}")),
        };
        let Some(mut m) = manifest.filter(|m| !m.is_empty()) else {
            // A fresh start: write an empty base and incr 1, as Redis does.
            if let Err(e) = self.aof_start_inner(true) {
                fatal(&format!("Can't create the AOF files in {}: {e:?}", dir.display()));
            }
            return;
        };
        let keys = self.aof_replay(&dir, &m);
        tracing::info!("DB loaded from append only file: {:.3} seconds ({keys} keys)", started.elapsed().as_secs_f64());
        let had_incr = !m.incrs.is_empty();
        let incr = m.last_or_new_incr(&name).clone();
        let path = incr.path_in(&dir);
        let file = open_append(&path)
            .unwrap_or_else(|e| fatal(&format!("Can't open the append-only file {}: {e}", path.display())));
        if !had_incr {
            tracing::info!("Creating AOF incr file {} on server start", String::from_utf8_lossy(&incr.name));
            if let Err(e) = manifest::persist(&dir, &name, &m) {
                fatal(&format!("Can't persist the AOF manifest: {e}"));
            }
        }
        self.aof_sizes_from_manifest(&m);
        {
            let mut f = self.aof.files.lock();
            f.current_len = file_len(&path);
            f.current = Some(Arc::new(file));
        }
        self.aof.dir.lock().manifest = m;
        self.set_logging(true, |s| s.enc.reset_db());
        self.ensure_fsync_thread();
    }

    /// An old single-file AOF (`dir`/`appendfilename`) is moved into the directory as its base,
    /// as Redis 7 does on its first start.
    fn upgrade_old_style_aof(&self, dir: &Path, name: &[u8]) -> Option<Manifest> {
        let old = PathBuf::from(self.config.get("dir")).join(OsStr::from_bytes(name));
        if !old.is_file() {
            return None;
        }
        let m = Manifest::from_old_style(name);
        let moved = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::rename(&old, dir.join(OsStr::from_bytes(name))))
            .and_then(|_| manifest::persist(dir, name, &m));
        if let Err(e) = moved {
            fatal(&format!("Error moving the old AOF file {} into {}: {e}", old.display(), dir.display()));
        }
        tracing::info!("Successfully migrated an old-style AOF into the AOF directory");
        Some(m)
    }

    /// Replays every file of the manifest; returns the keys loaded.
    fn aof_replay(&self, dir: &Path, m: &Manifest) -> u64 {
        let files: Vec<_> = m.files_to_load().cloned().collect();
        let last = files.len().saturating_sub(1);
        for (i, file) in files.iter().enumerate() {
            let path = file.path_in(dir);
            let shown = String::from_utf8_lossy(&file.name).into_owned();
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) => fatal(&format!("Unable to open the AOF file {shown}: {e}")),
            };
            if data.is_empty() {
                continue;
            }
            let mut start = 0;
            if persistence::aof::is_rdb(&data) {
                tracing::info!("Reading RDB base file on AOF loading...");
                match persistence::load::load_rdb_bytes(&self.ks, &data, unix_ms(), true) {
                    Ok(r) => start = r.rdb_bytes as usize,
                    Err(e) => fatal(&format!("Bad file format reading the append only file {shown}: {e}")),
                }
            }
            if let Err(e) = self.replay_commands(&data, start) {
                if e.is_truncated() && i == last && self.config.get_bool("aof-load-truncated") {
                    let at = e.valid_up_to();
                    tracing::warn!("!!! Warning: short read while loading the AOF file {shown}!!!");
                    tracing::warn!("!!! Truncating the AOF {shown} at offset {at} !!!");
                    match OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(at as u64)) {
                        Ok(()) => tracing::warn!("AOF {shown} loaded anyway because aof-load-truncated is enabled"),
                        Err(err) => fatal(&format!("Error truncating the AOF file {shown}: {err}")),
                    }
                } else if e.is_truncated() && i != last {
                    fatal(&format!(
                        "Fatal error: the truncated file is not the last file ({e}). {}",
                        e.redis_message(&shown)
                    ));
                } else {
                    fatal(&format!("{} ({e})", e.redis_message(&shown)));
                }
            }
        }
        self.ks.total_keys()
    }

    /// Executes the commands of `data` from `start`, as a client would, holding `MULTI`
    /// bodies until their `EXEC` (a transaction the file cuts off is never applied).
    fn replay_commands(&self, data: &[u8], start: usize) -> Result<(), ReadError> {
        let mut session = Session::new(u64::MAX, true);
        let mut out = ReplyWriter::new(Resp::V2);
        let mut effects = Effects::default();
        let mut local = LocalStats::default();
        let mut rng = Rng::new(crate::random_seed());
        let mut reader = Reader::new(data, start);
        let mut multi: Option<Vec<Vec<&[u8]>>> = None;
        let opts = ExecOptions { may_expire: true, replay: true, quiet: false };
        let mut run = |argv: &[&[u8]]| {
            let mut env = Env { now_ms: unix_ms(), rng: Rng::new(rng.next_u64()) };
            let outcome =
                execute(&self.ks, self, &mut session, &mut env, argv, &mut out, &mut effects, &mut local, opts);
            if outcome.command.is_none() {
                fatal(&format!("Unknown command '{}' reading the append only file", String::from_utf8_lossy(argv[0])));
            }
            out.clear();
        };
        while let Some(cmd) = reader.next_command()? {
            let argv = cmd.argv;
            if argv[0].eq_ignore_ascii_case(b"MULTI") {
                multi = Some(Vec::new());
            } else if argv[0].eq_ignore_ascii_case(b"EXEC") {
                for c in multi.take().unwrap_or_default() {
                    run(&c);
                }
            } else if let Some(body) = multi.as_mut() {
                body.push(argv);
            } else {
                run(&argv);
            }
        }
        local.flush(&self.stats);
        Ok(())
    }

    /// `appendonly yes` at run time (and a fresh start): write the dataset as a new base while
    /// logging starts at the snapshot's cut into a new incr file.
    pub fn aof_start(&self) -> Result<(), RewriteError> {
        if self.aof.is_on() {
            return Ok(());
        }
        self.aof_start_inner(false)
    }

    /// [`Shared::aof_start`] on its own thread (`CONFIG SET appendonly yes` replies at once,
    /// as in Redis; the cron retries while another save runs).
    pub fn aof_start_in_background(&self) {
        let me = self.arc();
        std::thread::spawn(move || {
            if let Err(e) = me.aof_start() {
                tracing::warn!(
                    "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation: {e:?}"
                );
            }
        });
    }

    fn aof_start_inner(&self, at_startup: bool) -> Result<(), RewriteError> {
        let p = &self.persist;
        if p.busy.swap(true, Ordering::SeqCst) {
            return Err(RewriteError::Busy);
        }
        let result = self.rewrite_inner(true, at_startup);
        p.busy.store(false, Ordering::SeqCst);
        result
    }

    /// `appendonly no`: stop logging, make what was logged durable, close the file.
    pub fn aof_stop(&self) {
        if !self.aof.is_on() {
            return;
        }
        self.aof.epoch.fetch_add(1, Ordering::SeqCst);
        self.set_logging(false, |_| {});
        if let Err(e) = self.aof.sync_all(self) {
            tracing::warn!("Error syncing the AOF while switching it off: {e}");
        }
        let mut f = self.aof.files.lock();
        f.current = None;
        f.next = None;
        f.switch_at = None;
        f.carry.clear();
        self.aof.seq.lock().switch_at = None;
        drop(f);
        self.stats.set_gate(Gate::AofError, false);
        *self.aof.write_error.lock() = None;
        self.aof.write_failed.store(false, Ordering::Relaxed);
        tracing::info!("Background append only file rewriting stopped: AOF switched off");
    }

    /// The AOF's part of shutting down: everything logged is made durable.
    pub fn aof_before_exit(&self) {
        if self.aof.is_on() {
            tracing::info!("Calling fsync() on the AOF file.");
            if let Err(e) = self.aof.sync_all(self) {
                tracing::warn!("Error syncing the AOF before exiting: {e}");
            }
        }
    }

    /// `BGREWRITEAOF`: a rewrite on its own thread, or scheduled after a running save.
    pub fn start_aof_rewrite(self: &Arc<Self>) -> Result<&'static str, String> {
        if self.aof.rewrite_running.load(Ordering::SeqCst) {
            return Err("ERR Background append only file rewriting already in progress".into());
        }
        if self.persist.busy.swap(true, Ordering::SeqCst) {
            self.aof.rewrite_scheduled.store(true, Ordering::SeqCst);
            return Ok("Background append only file rewriting scheduled");
        }
        self.aof.rewrite_scheduled.store(false, Ordering::SeqCst);
        // Before the thread starts, so that a second BGREWRITEAOF sees it at once.
        self.aof.rewrite_running.store(true, Ordering::SeqCst);
        self.spawn_rewrite();
        Ok("Background append only file rewriting started")
    }

    /// Runs a rewrite on its own thread; the caller has set `persist.busy`.
    fn spawn_rewrite(self: &Arc<Self>) {
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("tandem-aof-rewrite".into()).spawn(move || {
            if let Err(e) = me.rewrite_inner(false, false) {
                tracing::warn!("Background AOF rewrite failed: {e:?}");
            }
            me.persist.busy.store(false, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            tracing::warn!("Can't start the AOF rewrite thread: {e}");
            self.aof.rewrite_running.store(false, Ordering::SeqCst);
            self.persist.busy.store(false, Ordering::SeqCst);
        }
    }

    /// Writes a new base from a snapshot and installs it. `start`: logging begins at the cut
    /// (switching the AOF on); otherwise, if logging is on, it moves to a new incr file at
    /// the cut.
    fn rewrite_inner(&self, start: bool, at_startup: bool) -> Result<(), RewriteError> {
        let a = &self.aof;
        a.rewrite_running.store(true, Ordering::SeqCst);
        a.rewrite_started_ms.store(unix_ms(), Ordering::Relaxed);
        let started = Instant::now();
        let result = self.rewrite_steps(start, at_startup);
        a.last_rewrite_secs.store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
        a.last_rewrite_ok.store(result.is_ok(), Ordering::Relaxed);
        if result.is_ok() {
            // The empty base of a fresh start is not a rewrite (Redis counts it neither).
            a.rewrites.fetch_add(u64::from(!at_startup), Ordering::Relaxed);
            a.rewrite_failures.store(0, Ordering::Relaxed);
            tracing::info!("Background AOF rewrite finished successfully");
        } else {
            a.rewrite_failures.fetch_add(1, Ordering::Relaxed);
        }
        a.rewrite_running.store(false, Ordering::SeqCst);
        result
    }

    fn rewrite_steps(&self, start: bool, at_startup: bool) -> Result<(), RewriteError> {
        let a = &self.aof;
        let dir = self.aof_dir();
        let name = self.aof_name();
        let format = self.base_format();
        std::fs::create_dir_all(&dir)?;
        let epoch = a.epoch.load(Ordering::SeqCst);
        let logging = start || a.is_on();
        // 1. A new incr file for what is logged after the cut. While the AOF is on it is
        //    listed at once (after the current one), so a crash during the rewrite loads the
        //    old base, the old incr files and this one.
        let mut incr_file = None;
        {
            let mut d = a.dir.lock();
            if !logging || start {
                // The AOF was off: what is on disk is the truth.
                d.manifest =
                    manifest::load(&dir, &name).map_err(|e| io::Error::other(e.to_string()))?.unwrap_or_default();
            }
            if logging {
                let mut m = d.manifest.clone();
                let incr = m.new_incr(&name).clone();
                let file = Arc::new(create_incr(&incr.path_in(&dir))?);
                let how = if at_startup { "on server start" } else { "on background rewrite" };
                tracing::info!("Creating AOF incr file {} {how}", String::from_utf8_lossy(&incr.name));
                if !start {
                    // Listed at once: the old files plus this one are the dataset from the cut on.
                    manifest::persist(&dir, &name, &m)?;
                }
                d.manifest = m;
                incr_file = Some(file);
            }
        }
        // 2. The snapshot; its cut is where the new incr file begins.
        let tmp = dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
        let opts = SnapshotOptions {
            aof_base: true,
            format: match format {
                BaseFormat::Rdb => Format::Rdb,
                BaseFormat::Aof => Format::Commands,
            },
            ..if at_startup { self.snapshot_options() } else { self.background_snapshot_options() }
        };
        let snap = RdbSnapshot::create(&tmp, &opts)?;
        if let Some(file) = &incr_file {
            let mut f = a.files.lock();
            if start {
                f.current = Some(file.clone());
                f.current_len = 0;
                f.carry.clear();
            } else {
                f.next = Some(file.clone());
            }
        }
        if start {
            self.ks.begin_snapshot(snap.clone(), || {
                // Under every shard lock: nothing is logged before this instant, everything after.
                let mut s = a.seq.lock();
                s.start += s.buf.len() as u64;
                s.buf.clear();
                s.enc.reset_db();
                s.switch_at = None;
                a.on.store(true, Ordering::Release);
            });
            self.ensure_fsync_thread();
        } else if logging {
            self.ks.begin_snapshot(snap.clone(), || {
                // Only if the AOF is still on (`appendonly no` may have come in between; the
                // epoch check below then leaves the manifest alone).
                if a.on.load(Ordering::Acquire) {
                    let mut s = a.seq.lock();
                    let end = s.start + s.buf.len() as u64;
                    s.switch_at = Some(end);
                    s.enc.reset_db();
                }
            });
        } else {
            self.ks.begin_snapshot(snap.clone(), || {});
        }
        snap.complete(&self.ks);
        let written = snap.finish();
        if logging && !start {
            // Let the switch happen now rather than with the next write.
            a.write_pending(self);
        }
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                if start {
                    self.abandon_start();
                }
                return Err(e.into());
            }
        };
        tracing::info!("Successfully created the temporary AOF base file {}", tmp.display());
        // 3. Install: the new base, the incr files it absorbed to history, then delete them.
        let mut d = a.dir.lock();
        if a.epoch.load(Ordering::SeqCst) != epoch && !start {
            // The AOF was switched off meanwhile: its manifest is no longer ours to change.
            return Ok(());
        }
        let mut m = d.manifest.clone();
        let base = m.complete_rewrite(&name, format, logging);
        let base_path = base.path_in(&dir);
        let result = written.commit(&base_path).and_then(|_| {
            let history = m.take_history();
            manifest::persist(&dir, &name, &m)?;
            for h in history {
                tracing::info!("Removing the history file {} in the background", String::from_utf8_lossy(&h.name));
                let _ = std::fs::remove_file(h.path_in(&dir));
            }
            Ok(())
        });
        if let Err(e) = result {
            drop(d);
            if start {
                self.abandon_start();
            }
            return Err(e.into());
        }
        tracing::info!("Successfully renamed the temporary AOF base file into {}", String::from_utf8_lossy(&base.name));
        self.aof_sizes_from_manifest(&m);
        d.manifest = m;
        Ok(())
    }

    /// A start whose base could not be written: logging stops again (the cron retries).
    fn abandon_start(&self) {
        self.set_logging(false, |s| {
            s.start += s.buf.len() as u64;
            s.buf.clear();
        });
        let mut f = self.aof.files.lock();
        f.current = None;
        f.carry.clear();
        drop(f);
        self.aof.dir.lock().manifest = Manifest::new();
    }

    /// Once a second: retry failed writes, start scheduled or automatic rewrites, follow
    /// `appendonly` changes.
    pub fn aof_cron(self: &Arc<Self>) {
        // In a cluster `appendonly` makes the Raft log durable instead (`server::replication`).
        let want = self.config.get_bool("appendonly") && !self.cluster_configured();
        let a = &self.aof;
        if want && !a.is_on() {
            if !self.persist.busy.load(Ordering::SeqCst) {
                let me = self.clone();
                std::thread::spawn(move || {
                    if let Err(e) = me.aof_start() {
                        tracing::warn!(
                            "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation: {e:?}"
                        );
                    }
                });
            }
            return;
        }
        if !want {
            return;
        }
        if a.write_failed.load(Ordering::Relaxed) {
            a.write_pending(self);
        }
        if a.rewrite_scheduled.load(Ordering::SeqCst) && !self.persist.busy.load(Ordering::SeqCst) {
            let _ = self.start_aof_rewrite();
            return;
        }
        let perc = self.config.get_i64("auto-aof-rewrite-percentage") as u64;
        let min = self.config.get_i64("auto-aof-rewrite-min-size") as u64;
        let size = a.current_size.load(Ordering::Relaxed);
        let base = a.base_size.load(Ordering::Relaxed).max(1);
        if perc > 0
            && size > min
            && (size - base.min(size)) * 100 / base >= perc
            && !self.persist.busy.load(Ordering::SeqCst)
        {
            tracing::info!("Starting automatic rewriting of AOF on {}% growth", (size - base.min(size)) * 100 / base);
            let _ = self.start_aof_rewrite();
        }
    }

    /// The AOF fields of `INFO persistence`.
    pub fn info_aof(&self, out: &mut String) {
        use std::fmt::Write as _;
        let a = &self.aof;
        let running = a.rewrite_running.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\n\
             aof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\n\
             aof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\n",
            a.is_on() as u8,
            running as u8,
            a.rewrite_scheduled.load(Ordering::Relaxed) as u8,
            a.last_rewrite_secs.load(Ordering::Relaxed),
            if running { (unix_ms() - a.rewrite_started_ms.load(Ordering::Relaxed)) / 1000 } else { -1 },
            if a.last_rewrite_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            a.rewrites.load(Ordering::Relaxed),
            a.rewrite_failures.load(Ordering::Relaxed),
            if a.write_failed.load(Ordering::Relaxed) { "err" } else { "ok" },
        );
        if a.is_on() {
            let pending = a.seq.lock().buf.len();
            let _ = write!(
                out,
                "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{pending}\r\n\
                 aof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
                a.current_size.load(Ordering::Relaxed),
                a.base_size.load(Ordering::Relaxed),
                a.rewrite_scheduled.load(Ordering::Relaxed) as u8,
            );
        }
    }
}

/// The fsync thread: every 100 ms it writes what is pending (retrying after a failed write)
/// and, under `everysec`, syncs once a second.
fn fsync_loop(shared: &Shared) {
    let a = &shared.aof;
    let mut last_sync = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if !a.is_on() {
            continue;
        }
        let due = match a.policy() {
            Fsync::Always => true,
            Fsync::Everysec => last_sync.elapsed() >= Duration::from_secs(1),
            Fsync::No => false,
        };
        a.fsync_step(shared, due);
        if due {
            last_sync = Instant::now();
        }
    }
}

/// Logs a start-up error the way Redis does and exits.
fn fatal(msg: &str) -> ! {
    tracing::error!("{msg}");
    std::process::exit(1);
}
