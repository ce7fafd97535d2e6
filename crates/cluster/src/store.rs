//! The Raft log and the state machine adapter.
//!
//! The log is in memory, and with `appendonly yes` on disk too ([`crate::disk`]); without it
//! data lives as long as a quorum of nodes lives. The state machine applies `Normal` entries
//! through the server's [`Machine`], i.e. the same `commands::execute` path a client's command
//! takes; its snapshots are RDB images written by the server's fork-less snapshot walk, after which
//! openraft purges the log they cover.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, LogState, RaftLogReader, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, Vote,
};
use tokio::sync::Mutex;

use crate::disk;
use crate::types::{Fetch, Machine, NodeId, Request, Response, TypeConfig};

#[derive(Default)]
struct LogInner {
    last_purged: Option<LogId<NodeId>>,
    log: BTreeMap<u64, Entry<TypeConfig>>,
    committed: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

impl LogInner {
    /// The log file's contents for this state (see [`crate::disk`]).
    fn file_image(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(p) = self.last_purged {
            disk::encode_purged(p, &mut out);
        }
        for e in self.log.values() {
            disk::encode_entry(e, &mut out);
        }
        out
    }
}

/// Where a durable log lives.
struct Disk {
    dir: PathBuf,
    writer: disk::Writer,
}

/// The Raft log and vote: in memory, and with `appendonly yes` also on disk (entries are
/// reported flushed only once synced; the vote is saved before it counts). Entries are read
/// from memory; snapshots keep the log short.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
    disk: Option<Arc<Disk>>,
}

impl LogStore {
    /// A log kept in memory only: it lives as long as the process.
    pub fn in_memory() -> LogStore {
        LogStore { inner: Arc::default(), disk: None }
    }

    /// The durable log in `dir`, with what an earlier run left there.
    pub fn open(dir: &std::path::Path) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("log");
        let loaded = disk::load(&path)?;
        // A vote committed for this node would make openraft resume as leader at once, in the
        // same term and without a new no-op entry: its read index would then be only what it
        // knows to be committed (nothing, after a restart), and linearizable reads could see
        // old data. Loaded as not committed, the vote still binds this node for its term, and
        // the node stands for election in the next one like any other.
        let vote = disk::read_vote(dir)?.map(|mut v| {
            v.committed = false;
            v
        });
        let mut inner = LogInner { vote, ..LogInner::default() };
        for r in loaded.records {
            match r {
                disk::Record::Purged(id) => inner.last_purged = Some(id),
                disk::Record::Entry(e) => {
                    inner.log.insert(e.log_id.index, e);
                }
            }
        }
        tracing::info!(
            "raft log: {} entries after {:?}, vote {:?}",
            inner.log.len(),
            inner.last_purged.map(|l| l.index),
            inner.vote
        );
        let writer = disk::Writer::start(path)?;
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
            disk: Some(Arc::new(Disk { dir: dir.to_path_buf(), writer })),
        })
    }

    /// After a snapshot covering the log up to `upto`: the last index to purge so that, of
    /// the entries the snapshot covers, the log keeps only the latest ones holding at most
    /// `keep_writes` writes and `keep_bytes` bytes (a follower a little behind catches up
    /// from those instead of a whole image). None: keep them all. Counted in writes and
    /// bytes: openraft's own rule keeps a number of entries, and one entry is a whole batch.
    pub async fn purge_point(&self, upto: u64, keep_writes: u64, keep_bytes: u64) -> Option<u64> {
        let inner = self.inner.lock().await;
        let (mut writes, mut bytes) = (0, 0);
        for (index, e) in inner.log.range(..=upto).rev() {
            let (w, b) = entry_size(&e.payload);
            writes += w;
            bytes += b;
            if writes > keep_writes || bytes > keep_bytes {
                return Some(*index);
            }
        }
        None
    }

    /// Rewrites the log file from memory (after a purge or truncation), if durable.
    async fn rewrite(&self, image: Vec<u8>) -> Result<(), StorageError<NodeId>> {
        if let Some(d) = &self.disk {
            d.writer.rewrite(image).await.map_err(|e| StorageIOError::write_logs(&e))?;
        }
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let inner = self.inner.lock().await;
        Ok(inner.log.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.inner.lock().await;
        let last = inner.log.values().next_back().map(|e| e.log_id).or(inner.last_purged);
        Ok(LogState { last_purged_log_id: inner.last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        if let Some(d) = &self.disk {
            // Small and rare (elections): synced here, before the vote can be counted.
            tokio::task::block_in_place(|| disk::save_vote(&d.dir, vote))
                .map_err(|e| StorageIOError::write_vote(&e))?;
        }
        self.inner.lock().await.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().await.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        self.inner.lock().await.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().await.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.inner.lock().await;
        match &self.disk {
            None => {
                for e in entries {
                    inner.log.insert(e.log_id.index, e);
                }
                callback.log_io_completed(Ok(()));
            }
            Some(d) => {
                let mut bytes = Vec::new();
                for e in entries {
                    disk::encode_entry(&e, &mut bytes);
                    inner.log.insert(e.log_id.index, e);
                }
                // Reported flushed by the writer thread once synced.
                d.writer.append(bytes, callback);
            }
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let image = {
            let mut inner = self.inner.lock().await;
            inner.log.split_off(&log_id.index);
            self.disk.as_ref().map(|_| inner.file_image())
        };
        match image {
            Some(image) => self.rewrite(image).await,
            None => Ok(()),
        }
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let image = {
            let mut inner = self.inner.lock().await;
            inner.last_purged = Some(log_id);
            let keep = inner.log.split_off(&(log_id.index + 1));
            inner.log = keep;
            self.disk.as_ref().map(|_| inner.file_image())
        };
        match image {
            Some(image) => self.rewrite(image).await,
            None => Ok(()),
        }
    }
}

/// The state machine: the server's dataset, reached through [`Machine`], and its snapshots:
/// RDB images in the node's state directory, each `snap-<id>.rdb` with its Raft metadata in
/// `snap-<id>.json` (written after the image, so a snapshot with metadata is complete).
#[derive(Clone)]
pub struct StateMachine {
    machine: Arc<dyn Machine>,
    /// This node: the replies of entries it proposed are kept, for the clients waiting.
    me: NodeId,
    state: Arc<Mutex<Applied>>,
    dir: PathBuf,
    current: Arc<Mutex<Option<SnapshotMeta<NodeId, BasicNode>>>>,
    /// Snapshots received from the leader and installed (for `INFO cluster`).
    pub installed: Arc<std::sync::atomic::AtomicU64>,
    /// The time of the entries applied here.
    pub clock: Arc<crate::clock::LogClock>,
    /// How much the applied entries carried, for `snapshot_when_due`.
    pub growth: Arc<Growth>,
    /// Which applied entries are this process's backlog, applied without their messages
    /// (see [`Backlog`]).
    pub backlog: Arc<Backlog>,
}

/// Where the backlog of this process ends: the entries the cluster had committed before this
/// node first learned its commit index, which it applies after a restart (its log since its
/// snapshot) or when it joins (the leader's log since the leader's snapshot). Their messages —
/// `PUBLISH`, keyspace events — went to the subscribers of the time when they were written; a
/// subscriber that connects meanwhile must not receive them (again), as a Redis subscriber
/// never receives what was published before it subscribed. Entries applied while the end is
/// unknown are backlog too. The end is learned from the first AppendEntries whose commit index
/// is of the leader's own term (before a new leader commits its first entry, it sends the
/// commit index it restarted with, its snapshot's, which says nothing of what its predecessors
/// committed), or, on a node that leads, from its own first entry of a term begun in this
/// process. Entries committed after that are delivered, late if the node is far behind.
/// (Client-side caching invalidations are sent for every entry: they keep caches right.)
pub struct Backlog {
    end: std::sync::atomic::AtomicU64,
    /// The last term in the log when the process started: a leader's first entry (a blank
    /// one) of a later term was appended by this process.
    boot_term: std::sync::atomic::AtomicU64,
}

impl Default for Backlog {
    fn default() -> Self {
        Backlog { end: std::sync::atomic::AtomicU64::new(Backlog::UNKNOWN), boot_term: Default::default() }
    }
}

impl Backlog {
    const UNKNOWN: u64 = u64::MAX;

    /// Records the first end learned (later ones are ignored).
    pub fn learned(&self, index: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let _ = self.end.compare_exchange(Backlog::UNKNOWN, index, Relaxed, Relaxed);
    }

    /// Whether the entry at `index` is backlog.
    pub fn holds(&self, index: u64) -> bool {
        let end = self.end.load(std::sync::atomic::Ordering::Relaxed);
        end == Backlog::UNKNOWN || index <= end
    }

    /// Records the last term of the log the process started with.
    pub fn set_boot_term(&self, term: u64) {
        self.boot_term.store(term, std::sync::atomic::Ordering::Relaxed);
    }

    fn boot_term(&self) -> u64 {
        self.boot_term.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Writes and bytes applied since the process started: how much the log has grown. One entry
/// carries a whole batch of writes, so its length in entries says little about its size.
#[derive(Default)]
pub struct Growth {
    writes: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl Growth {
    /// Counts an applied entry.
    fn add(&self, payload: &EntryPayload<TypeConfig>) {
        use std::sync::atomic::Ordering::Relaxed;
        let (writes, bytes) = entry_size(payload);
        self.writes.fetch_add(writes, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    /// (writes, bytes) so far.
    pub fn total(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.writes.load(Relaxed), self.bytes.load(Relaxed))
    }
}

/// The writes an entry carries and the bytes they take in the log, roughly (a blank or
/// membership entry counts as one write).
fn entry_size(payload: &EntryPayload<TypeConfig>) -> (u64, u64) {
    let EntryPayload::Normal(batch) = payload else { return (1, REQUEST_OVERHEAD) };
    let (mut writes, mut bytes) = (0, 0);
    for p in &batch.parts {
        writes += p.len() as u64;
        bytes += REQUEST_OVERHEAD + p.as_bytes().len() as u64;
    }
    (writes, bytes)
}

/// What a request takes in the log beyond its encoding (its allocation and the entry's
/// vector), roughly.
const REQUEST_OVERHEAD: u64 = 64;

#[derive(Default)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

impl StateMachine {
    /// A state machine applying through `machine`, keeping snapshots in `dir` (created).
    pub fn new(machine: Arc<dyn Machine>, dir: PathBuf, me: NodeId) -> std::io::Result<StateMachine> {
        std::fs::create_dir_all(&dir)?;
        Ok(StateMachine {
            machine,
            me,
            state: Arc::new(Mutex::new(Applied::default())),
            dir,
            current: Arc::new(Mutex::new(None)),
            installed: Arc::default(),
            clock: Arc::default(),
            growth: Arc::default(),
            backlog: Arc::default(),
        })
    }

    /// Loads the newest complete snapshot in the directory (a restart with durable state):
    /// the dataset becomes its image, and applying resumes after its index.
    pub async fn restore(&self) -> std::io::Result<()> {
        let mut newest: Option<SnapshotMeta<NodeId, BasicNode>> = None;
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("snap-") && name.ends_with(".json")) {
                continue;
            }
            let Ok(meta) = serde_json::from_slice::<SnapshotMeta<NodeId, BasicNode>>(&std::fs::read(e.path())?) else {
                continue;
            };
            if newest.as_ref().is_none_or(|n| meta.last_log_id > n.last_log_id) {
                newest = Some(meta);
            }
        }
        let Some(meta) = newest else { return Ok(()) };
        let image = std::fs::read(self.image_path(&meta.snapshot_id))?;
        self.machine.install_snapshot(&image).map_err(std::io::Error::other)?;
        tracing::info!("restored cluster snapshot {} ({} bytes)", meta.snapshot_id, image.len());
        let mut s = self.state.lock().await;
        s.last_applied = meta.last_log_id;
        s.membership = meta.last_membership.clone();
        *self.current.lock().await = Some(meta);
        Ok(())
    }

    fn image_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("snap-{id}.rdb"))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("snap-{id}.json"))
    }

    /// Records `meta` as the current snapshot (its image is in place): writes the metadata
    /// file, then removes older snapshots. A build that finishes after a newer snapshot was
    /// installed is dropped instead: the current snapshot never goes back.
    async fn make_current(&self, meta: SnapshotMeta<NodeId, BasicNode>) -> Result<(), StorageError<NodeId>> {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.last_log_id > meta.last_log_id) {
            let _ = std::fs::remove_file(self.image_path(&meta.snapshot_id));
            return Ok(());
        }
        let json = serde_json::to_vec(&meta).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let path = self.meta_path(&meta.snapshot_id);
        let dir = self.dir.clone();
        let keep = meta.snapshot_id.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            write_synced(&path, &json)?;
            remove_other_snapshots(&dir, &keep);
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(None, &std::io::Error::other(e)))?
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *current = Some(meta);
        Ok(())
    }
}

/// Writes `data` to `path` through a temporary file, synced and renamed into place.
pub fn write_synced(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Removes every snapshot file in `dir` but those of `keep`.
fn remove_other_snapshots(dir: &std::path::Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("snap-") else { continue };
        let id = rest.trim_end_matches(".rdb").trim_end_matches(".json").trim_end_matches(".tmp");
        if id != keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A snapshot being built: cut in `get_snapshot_builder` (between two applies), written here.
pub struct Builder {
    sm: StateMachine,
    meta: SnapshotMeta<NodeId, BasicNode>,
    // (A mutex only to make the builder `Sync`, as openraft requires.)
    job: std::sync::Mutex<Option<std::io::Result<crate::types::SnapshotJob>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let sig = Some(self.meta.signature());
        let job = self.job.lock().ok().and_then(|mut j| j.take());
        let job = job.unwrap_or_else(|| Err(std::io::Error::other("snapshot built twice")));
        let job = job.map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| StorageIOError::write_snapshot(sig.clone(), &std::io::Error::other(e)))?
            .map_err(|e| StorageIOError::write_snapshot(sig, &e))?;
        self.sm.make_current(self.meta.clone()).await?;
        tracing::info!("cluster snapshot {} written", self.meta.snapshot_id);
        // openraft 0.9 keeps only the metadata of a snapshot it asked to build (the image is
        // read from disk when a follower needs it), so the image is not read back here.
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(Cursor::new(Vec::new())) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let s = self.state.lock().await;
        Ok((s.last_applied, s.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut s = self.state.lock().await;
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        // The requests of all the entries, in order: the hints run ahead across entries (a
        // busy leader commits many at once, and at `-P 1` each holds only a few commands).
        let all: Vec<&Request> = entries
            .iter()
            .flat_map(|e| match &e.payload {
                EntryPayload::Normal(batch) => batch.parts.as_slice(),
                _ => &[],
            })
            .collect();
        let mut ahead = Prefetch::default();
        let mut out = Vec::with_capacity(entries.len());
        for entry in &entries {
            s.last_applied = Some(entry.log_id);
            let id = entry.log_id;
            if matches!(entry.payload, EntryPayload::Blank)
                && id.leader_id.node_id == self.me
                && id.leader_id.term > self.backlog.boot_term()
            {
                // This process's first entry as a leader: everything before it was committed
                // by earlier leaders (see `Backlog`).
                self.backlog.learned(id.index);
            }
            let quiet = self.backlog.holds(id.index);
            self.growth.add(&entry.payload);
            // One response per entry, in order, blank and membership entries included.
            out.push(match &entry.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Normal(batch) => {
                    // (A batch without commands says nothing of the time: its JSON form in the
                    // log file has no place for one.)
                    if batch.parts.iter().any(|p| !p.is_empty()) {
                        self.clock.observe(batch.now_ms);
                    }
                    // Only the node that proposed the entry has clients waiting for its replies.
                    let replies = entry.log_id.leader_id.node_id == self.me;
                    let apply = |p| {
                        ahead.before(&*self.machine, &all);
                        self.machine.apply(batch.now_ms, p, replies, quiet)
                    };
                    Response { parts: batch.parts.iter().map(apply).collect() }
                }
                EntryPayload::Membership(m) => {
                    s.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    Response::default()
                }
            });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Called by openraft's state machine task, which applies entries too: nothing is being
        // applied now, so the cut holds exactly the entries up to `last_applied`.
        let s = self.state.lock().await;
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (term, index) = s.last_applied.map(|l| (l.leader_id.term, l.index)).unwrap_or((0, 0));
        let id = format!("{term}-{index}-{}-{seq}", std::process::id());
        let meta = SnapshotMeta { last_log_id: s.last_applied, last_membership: s.membership.clone(), snapshot_id: id };
        let job = self.machine.begin_snapshot(&self.image_path(&meta.snapshot_id));
        Builder { sm: self.clone(), meta, job: std::sync::Mutex::new(Some(job)) }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let image = snapshot.into_inner();
        let sig = Some(meta.signature());
        let path = self.image_path(&meta.snapshot_id);
        let machine = self.machine.clone();
        // Loading a large image blocks: let the runtime's other tasks move to another thread.
        tokio::task::block_in_place(|| -> std::io::Result<()> {
            write_synced(&path, &image)?;
            machine.install_snapshot(&image).map_err(std::io::Error::other)
        })
        .map_err(|e| StorageIOError::write_snapshot(sig, &e))?;
        {
            let mut s = self.state.lock().await;
            s.last_applied = meta.last_log_id;
            s.membership = meta.last_membership.clone();
        }
        self.installed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!("installed cluster snapshot {} ({} bytes)", meta.snapshot_id, image.len());
        self.make_current(meta.clone()).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let Some(meta) = self.current.lock().await.clone() else { return Ok(None) };
        let path = self.image_path(&meta.snapshot_id);
        let image = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &std::io::Error::other(e)))?
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(image)) }))
    }
}

/// Keeps [`Machine::prefetch`] ahead of the request being applied: each [`Fetch`] step of
/// the next requests up to its own number of windows of commands (the slots three, the
/// entries two, the chains one), so that each step's reads have mostly arrived before the
/// next step needs them (not at the start of an apply, whose first requests get every step
/// at once, nor inside a request longer than a window). A client's pipelined writes are
/// one request, the single writes of many clients as many; counting commands in whole
/// requests keeps the hints near without handing over all the requests at once. It runs over
/// the requests of one `apply` call (all its entries), applied one after another.
#[derive(Default)]
struct Prefetch {
    /// Requests applied so far (the next to apply).
    applied: usize,
    /// How far each step has gone, in [`Prefetch::STEPS`] order.
    steps: [Ahead; 3],
}

/// How far one step of [`Prefetch`] has gone.
#[derive(Default)]
struct Ahead {
    /// Requests handed to the machine so far.
    next: usize,
    /// Commands in those requests from the one being applied on.
    commands: usize,
}

impl Ahead {
    /// Moves on over the requests from `i` (which is about to apply) until they hold `window`
    /// commands, and returns the ones newly passed.
    fn advance(&mut self, reqs: &[&Request], i: usize, window: usize) -> std::ops::Range<usize> {
        // (After the call for `i - 1`, `next` is past it.)
        if i > 0 {
            self.commands -= reqs[i - 1].len();
        }
        let from = self.next;
        while self.next < reqs.len() && (self.next <= i || self.commands < window) {
            self.commands += reqs[self.next].len();
            self.next += 1;
        }
        from..self.next
    }
}

impl Prefetch {
    /// Commands a step keeps ahead of the one after it (and the last of the apply).
    const WINDOW: usize = 16;
    const STEPS: [Fetch; 3] = [Fetch::Slots, Fetch::Entries, Fetch::Chains];

    /// Called just before the next of `reqs` applies.
    fn before(&mut self, machine: &dyn Machine, reqs: &[&Request]) {
        let i = self.applied;
        self.applied += 1;
        for (n, (ahead, what)) in self.steps.iter_mut().zip(Self::STEPS).enumerate() {
            let new = ahead.advance(reqs, i, (Self::STEPS.len() - n) * Self::WINDOW);
            if !new.is_empty() {
                machine.prefetch(&reqs[new], what);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, RaftSnapshotBuilder};

    /// A dataset of one string: the image is the string itself.
    struct Text(std::sync::Mutex<String>);

    impl Machine for Text {
        fn apply(
            &self,
            _now_ms: i64,
            _req: &crate::types::Request,
            _replies: bool,
            _quiet: bool,
        ) -> crate::types::Replies {
            crate::types::Replies::default()
        }
        fn begin_snapshot(&self, path: &std::path::Path) -> std::io::Result<crate::types::SnapshotJob> {
            let (path, text) = (path.to_path_buf(), self.0.lock().unwrap().clone());
            Ok(Box::new(move || std::fs::write(path, text)))
        }
        fn install_snapshot(&self, image: &[u8]) -> Result<(), String> {
            *self.0.lock().unwrap() = String::from_utf8_lossy(image).into_owned();
            Ok(())
        }
        fn keys(&self) -> u64 {
            1
        }
        fn used_memory(&self) -> u64 {
            0
        }
    }

    /// Records which requests (by their first command's seed) it is asked to prefetch, and
    /// for which step.
    #[derive(Default)]
    struct Hints(std::sync::Mutex<Vec<(Fetch, u64)>>);

    impl Machine for Hints {
        fn apply(&self, _: i64, _: &Request, _: bool, _: bool) -> crate::types::Replies {
            crate::types::Replies::default()
        }
        fn prefetch(&self, reqs: &[&Request], what: Fetch) {
            self.0.lock().unwrap().extend(reqs.iter().map(|r| (what, r.commands().next().unwrap().seed)));
        }
        fn begin_snapshot(&self, _: &std::path::Path) -> std::io::Result<crate::types::SnapshotJob> {
            Err(std::io::Error::other("no snapshots"))
        }
        fn install_snapshot(&self, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
        fn keys(&self) -> u64 {
            0
        }
        fn used_memory(&self) -> u64 {
            0
        }
    }

    #[test]
    fn requests_are_prefetched_once_each_step_before_they_apply_and_a_window_ahead() {
        // Requests of 1, 20, 1, 1, 16, 40, 1, 30 and 1 commands, the first command's seed
        // naming it.
        let sizes = [1usize, 20, 1, 1, 16, 40, 1, 30, 1];
        let parts: Vec<Request> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let mut b = Request::builder(0, 2, None);
                for _ in 0..n {
                    b.push(&[&b"SET"[..], b"k", b"v"], i as u64);
                }
                b.finish()
            })
            .collect();
        let parts: Vec<&Request> = parts.iter().collect();
        let machine = Hints::default();
        let mut ahead = Prefetch::default();
        // The requests handed over for each step so far, in `Prefetch::STEPS` order.
        let mut seen: [Vec<u64>; 3] = Default::default();
        for i in 0..parts.len() {
            ahead.before(&machine, &parts);
            for (what, seed) in machine.0.lock().unwrap().drain(..) {
                let step = Prefetch::STEPS.iter().position(|s| *s == what).unwrap();
                if step > 0 {
                    assert!(seen[step - 1].contains(&seed), "request {seed}: {what:?} after the step before");
                }
                seen[step].push(seed);
            }
            // Each step handed over this request and the next ones until they hold its
            // windows of commands (or the entries end), and no more than that.
            let held = |to: usize| sizes[i..to].iter().sum::<usize>();
            for (step, seen) in seen.iter().enumerate() {
                let window = (3 - step) * Prefetch::WINDOW;
                assert!(seen.contains(&(i as u64)), "request {i} prefetched before it applies: {seen:?}");
                let next = seen.len();
                assert!(next == parts.len() || held(next) >= window, "{i}: {seen:?}");
                assert!(next == i + 1 || held(next - 1) < window, "{i}: {seen:?}");
            }
        }
        let all: Vec<u64> = (0..parts.len() as u64).collect();
        assert_eq!(seen, [all.clone(), all.clone(), all], "each once per step, in order");
    }

    /// Records hints and applies in the order they happen, by request seed.
    #[derive(Default)]
    struct Order(std::sync::Mutex<Vec<(Option<Fetch>, u64)>>);

    impl Machine for Order {
        fn apply(&self, _: i64, req: &Request, _: bool, _: bool) -> crate::types::Replies {
            self.0.lock().unwrap().push((None, req.commands().next().unwrap().seed));
            crate::types::Replies::default()
        }
        fn prefetch(&self, reqs: &[&Request], what: Fetch) {
            self.0.lock().unwrap().extend(reqs.iter().map(|r| (Some(what), r.commands().next().unwrap().seed)));
        }
        fn begin_snapshot(&self, _: &std::path::Path) -> std::io::Result<crate::types::SnapshotJob> {
            Err(std::io::Error::other("no snapshots"))
        }
        fn install_snapshot(&self, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
        fn keys(&self) -> u64 {
            0
        }
        fn used_memory(&self) -> u64 {
            0
        }
    }

    #[tokio::test]
    async fn an_apply_hints_its_requests_across_entries_each_before_it_applies() {
        let dir = std::env::temp_dir().join(format!("tandem-sm-hints-{}", std::process::id()));
        let machine = Arc::new(Order::default());
        let mut sm = StateMachine::new(machine.clone(), dir.clone(), 1).unwrap();
        // Entries of one single-command request each (as `-P 1` clients make them), with a
        // blank entry and an empty batch among them; request seeds count up across entries.
        let normal = |index: u64, seeds: std::ops::Range<u64>| {
            let parts = seeds
                .map(|seed| {
                    let mut b = Request::builder(0, 2, None);
                    b.push(&[&b"SET"[..], b"k", b"v"], seed);
                    b.finish()
                })
                .collect();
            let batch = crate::types::Batch { now_ms: 1, parts };
            Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Normal(batch) }
        };
        let entries =
            vec![normal(1, 0..1), blank(2), normal(3, 1..2), normal(4, 2..2), normal(5, 2..4), normal(6, 4..5)];
        let out = sm.apply(entries).await.unwrap();
        assert_eq!(out.len(), 6, "one response per entry");
        assert_eq!(out.iter().map(|r| r.parts.len()).collect::<Vec<_>>(), [1, 0, 1, 0, 2, 1]);
        let events = machine.0.lock().unwrap().clone();
        let at = |e: (Option<Fetch>, u64)| {
            events.iter().position(|x| *x == e).unwrap_or_else(|| panic!("{e:?}: {events:?}"))
        };
        for seed in 0..5 {
            let applied = at((None, seed));
            for what in Prefetch::STEPS {
                assert!(at((Some(what), seed)) < applied, "request {seed} {what:?} before it applies: {events:?}");
            }
            assert_eq!(events.iter().filter(|e| e.1 == seed).count(), 4, "three hints and one apply: {events:?}");
        }
        // The later entries' requests were hinted before the first entry's applied: the window
        // runs over the entries of the call, not afresh in each.
        for seed in 1..5 {
            assert!(at((Some(Fetch::Slots), seed)) < at((None, 0)), "{events:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn blank(i: u64) -> Entry<TypeConfig> {
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), i), payload: EntryPayload::Blank }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_build_finishing_after_a_newer_install_does_not_replace_it() {
        let dir = std::env::temp_dir().join(format!("tandem-sm-{}", std::process::id()));
        let machine = Arc::new(Text(std::sync::Mutex::new("old".into())));
        let mut sm = StateMachine::new(machine.clone(), dir.clone(), 1).unwrap();
        sm.apply((1..=5).map(blank)).await.unwrap();
        // Cut at index 5; meanwhile a snapshot at index 10 arrives from the leader.
        let mut builder = sm.get_snapshot_builder().await;
        let newer = SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), 10)),
            last_membership: StoredMembership::default(),
            snapshot_id: "newer".into(),
        };
        sm.install_snapshot(&newer, Box::new(Cursor::new(b"new".to_vec()))).await.unwrap();
        builder.build_snapshot().await.unwrap();
        let current = sm.get_current_snapshot().await.unwrap().expect("a current snapshot");
        assert_eq!(current.meta.snapshot_id, "newer");
        assert_eq!(current.snapshot.into_inner(), b"new");
        // And after a restart, the newer one is what comes back.
        let restarted = StateMachine::new(machine.clone(), dir.clone(), 1).unwrap();
        restarted.restore().await.unwrap();
        assert_eq!(*machine.0.lock().unwrap(), "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
