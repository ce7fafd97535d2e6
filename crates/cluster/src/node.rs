//! A running node: the Raft instance on its own runtime, the cluster port, formation, writes
//! (proposed here or forwarded to the leader) and status for `INFO`.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, ServerState, SnapshotPolicy};
use tokio::net::{TcpListener, TcpStream};

use crate::clock::LogClock;
use crate::discovery::Discovery;
use crate::forward::{self, Outcome};
use crate::net::{self, CallError, Hello, Network, Peers, ReadIndexReply, Rpc, WriteReply};
use crate::read::{Gate, ReadError};
use crate::store::{LogStore, StateMachine};
use crate::types::{Batch, Machine, NodeId, Raft, Replies, Request};

/// How a node is configured (from `cluster-*` settings).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This node's id (`cluster-node-id`, or random).
    pub node_id: NodeId,
    /// Address the cluster port listens on.
    pub bind: SocketAddr,
    /// Address other nodes reach this one at (`cluster-announce-ip`:`cluster-port`).
    pub announce: String,
    /// Source address for outgoing cluster connections.
    pub bind_ip: Option<IpAddr>,
    /// `cluster-seeds`: cluster addresses of other nodes.
    pub seeds: Vec<String>,
    /// `cluster-discovery`: `dns:NAME[:port]` to look more seeds up by (empty: none).
    pub discovery: String,
    /// `cluster-discovery-resolver`: the name server for it (`ip[:port]`; empty: the system's).
    pub discovery_resolver: String,
    /// `cluster-bootstrap-expect`: nodes that must have met before a cluster is initialised.
    pub bootstrap_expect: usize,
    /// `cluster-voters`: how many members vote.
    pub voters: usize,
    /// How long a write may wait for its outcome before it is reported as unknown.
    pub write_timeout: Duration,
    /// The node's state directory (snapshots; the log and vote when durable).
    pub dir: PathBuf,
    /// Keep the log and vote on disk (`appendonly yes`), and resume from them at start.
    pub durable: bool,
    /// A snapshot is taken once the log holds this many entries since the last one, or as
    /// many as the dataset has keys if that is more (so a snapshot's cost stays in proportion
    /// to the log it replaces).
    pub snapshot_entries: u64,
    /// `cluster-node-timeout`: a member that has not answered the leader for this long is
    /// removed (and replaced by a learner, if there is one).
    pub node_timeout: Duration,
}

/// Why a write got no reply from applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// Not applied, for certain: no leader with a quorum could take it.
    NoQuorum(String),
    /// Proposed or sent, but its outcome is unknown.
    Unknown(String),
}

impl WriteError {
    /// The error reply text (without the leading `-`).
    pub fn reply_text(&self) -> String {
        match self {
            WriteError::NoQuorum(why) => format!("CLUSTERDOWN No quorum, the write was not applied ({why})"),
            WriteError::Unknown(why) => {
                format!("TIMEOUT The write's outcome is unknown, it may or may not have been applied ({why})")
            }
        }
    }
}

/// A running cluster node.
pub struct Cluster {
    pub(crate) cfg: ClusterConfig,
    pub(crate) raft: Raft,
    pub(crate) peers: Arc<Peers>,
    reads: Gate,
    installed: Arc<std::sync::atomic::AtomicU64>,
    clock: Arc<LogClock>,
    discovery: Option<Discovery>,
    forwards: forward::Queue,
    /// Set once this node has left the cluster on purpose: it must not join again by itself.
    pub(crate) left: std::sync::atomic::AtomicBool,
    /// True while this node, leading, hands leadership over (see [`crate::transfer`]): new
    /// proposals and read rounds wait for the outcome.
    pub(crate) transferring: tokio::sync::watch::Sender<bool>,
    /// Until when this node does not stand for election, at a leader's request during a
    /// transfer (see [`crate::transfer`]).
    pub(crate) hold_until: parking_lot::Mutex<Option<std::time::Instant>>,
    /// When this node last accepted a leader's AppendEntries (or started).
    pub(crate) leader_heard: parking_lot::Mutex<std::time::Instant>,
    /// The term this node leads in and since when (first seen by a proposal).
    leading_since: parking_lot::Mutex<Option<(u64, std::time::Instant)>>,
    /// Where the entries committed before this process learned the commit index end.
    backlog: Arc<crate::store::Backlog>,
    /// The Raft log (a handle on the one openraft writes), for purging by size.
    log: LogStore,
    pub(crate) rt: tokio::runtime::Runtime,
}

impl Cluster {
    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.cfg.node_id
    }

    /// Starts the node: its runtime, the Raft instance, the cluster port and formation.
    pub fn start(cfg: ClusterConfig, machine: Arc<dyn Machine>) -> io::Result<Arc<Cluster>> {
        // Built on a thread of its own: the caller may be inside another runtime, where
        // `block_on` is not allowed.
        let setup = std::thread::spawn(move || Cluster::setup(cfg, machine));
        let node = setup.join().map_err(|_| io::Error::other("cluster set-up panicked"))??;
        Ok(node)
    }

    fn setup(cfg: ClusterConfig, machine: Arc<dyn Machine>) -> io::Result<Arc<Cluster>> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tandem-raft")
            .enable_all()
            .build()?;
        let raft_config = Config {
            cluster_name: "tandem".into(),
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            // Snapshots are triggered by `snapshot_when_due`, whose threshold follows the
            // dataset's size.
            snapshot_policy: SnapshotPolicy::Never,
            // The last chunk's timeout covers installing it (loading the RDB image).
            install_snapshot_timeout: 30_000,
            // Entries kept after a snapshot, so that a follower a little behind catches up from
            // the log rather than a whole image.
            max_in_snapshot_log_to_keep: cfg.snapshot_entries.min(1000),
            ..Default::default()
        }
        .validate()
        .map_err(io::Error::other)?;
        let listener = rt.block_on(TcpListener::bind(cfg.bind))?;
        let discovery = match cfg.discovery.as_str() {
            "" => None,
            spec => {
                let _in_rt = rt.enter();
                let resolver = Some(cfg.discovery_resolver.as_str()).filter(|r| !r.is_empty());
                Some(Discovery::new(spec, resolver, cfg.bind.port())?)
            }
        };
        let peers = Arc::new(Peers::new(cfg.bind_ip));
        let sm = StateMachine::new(machine.clone(), cfg.dir.clone(), cfg.node_id)?;
        let installed = sm.installed.clone();
        let clock = sm.clock.clone();
        let growth = sm.growth.clone();
        let backlog = sm.backlog.clone();
        let mut log = if cfg.durable {
            rt.block_on(sm.restore())?;
            LogStore::open(&cfg.dir)?
        } else {
            LogStore::in_memory()
        };
        {
            use openraft::storage::RaftLogStorage as _;
            let state = rt.block_on(log.get_log_state()).map_err(io::Error::other)?;
            backlog.set_boot_term(state.last_log_id.map_or(0, |l| l.leader_id.term));
        }
        let log_handle = log.clone();
        let raft = rt
            .block_on(Raft::new(cfg.node_id, Arc::new(raft_config), Network { peers: peers.clone() }, log, sm))
            .map_err(io::Error::other)?;
        let node = Arc::new(Cluster {
            cfg,
            raft,
            peers,
            reads: Gate::default(),
            installed,
            clock,
            discovery,
            forwards: forward::Queue::default(),
            left: Default::default(),
            transferring: tokio::sync::watch::Sender::new(false),
            hold_until: Default::default(),
            leading_since: Default::default(),
            leader_heard: parking_lot::Mutex::new(std::time::Instant::now()),
            backlog,
            log: log_handle,
            rt,
        });
        let n = node.clone();
        node.rt.spawn(async move { n.serve(listener).await });
        let n = node.clone();
        node.rt.spawn(async move { n.form().await });
        let n = node.clone();
        node.rt.spawn(async move { n.snapshot_when_due(machine, growth).await });
        let n = node.clone();
        node.rt.spawn(async move { n.tend().await });
        Ok(node)
    }

    /// Takes a snapshot (and so lets openraft purge the log) once the log since the last one
    /// is long enough: `snapshot_entries` writes, or [`SNAPSHOT_GROWTH`] times as many as the
    /// dataset had keys at the last snapshot if more (a snapshot costs about a write per key);
    /// or once its bytes reach the rest of the process's memory (at least
    /// [`LOG_BYTES_FLOOR`]), as Redis rewrites its AOF once it has doubled and holds 64 MiB.
    /// Counted in writes, not entries: an entry carries a whole batch, and a log counted in
    /// entries grew to many times the dataset under pipelined load.
    async fn snapshot_when_due(&self, machine: Arc<dyn Machine>, growth: Arc<crate::store::Growth>) {
        let mut since = growth.total();
        // (A restored snapshot is not news: the log replayed after it counts.)
        let mut snapshot = self.raft.metrics().borrow().snapshot;
        // The dataset's keys at the last snapshot (or at start).
        let mut base = machine.keys();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let m = self.raft.metrics().borrow().clone();
            if m.snapshot != snapshot {
                // A snapshot installed from the leader (or ours, finished): the log before it
                // is gone.
                snapshot = m.snapshot;
                since = growth.total();
                base = machine.keys();
            }
            let (writes, bytes) = growth.total();
            let (writes, bytes) = (writes - since.0, bytes - since.1);
            let due = writes >= self.cfg.snapshot_entries.max(base.saturating_mul(SNAPSHOT_GROWTH))
                || bytes >= LOG_BYTES_FLOOR.max(machine.used_memory().saturating_sub(bytes));
            if due {
                // The cut is made now: what is applied from here on stays in the log.
                since = growth.total();
                base = machine.keys();
                let last = m.snapshot.map(|l| l.index).unwrap_or(0);
                let _ = self.raft.trigger().snapshot().await;
                // Let it finish before looking again (a build in progress ignores triggers).
                let _ = self
                    .raft
                    .wait(Some(Duration::from_secs(600)))
                    .metrics(|m| m.snapshot.map(|l| l.index).unwrap_or(0) > last, "snapshot")
                    .await;
                snapshot = self.raft.metrics().borrow().snapshot;
                // openraft keeps a number of entries after a snapshot; entries being batches,
                // that could be most of the log. Keep a bounded number of writes and bytes.
                let keep_writes = self.cfg.snapshot_entries.min(1000);
                if let Some(upto) = snapshot {
                    if let Some(purge) = self.log.purge_point(upto.index, keep_writes, LOG_BYTES_KEPT).await {
                        let _ = self.raft.trigger().purge_log(purge).await;
                    }
                }
            }
        }
    }

    /// Where the leader is, as this node knows it (None: no leader known).
    pub(crate) fn leader(&self) -> Option<Leader> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Leader {
            return Some(Leader::Here);
        }
        let node = m.current_leader.and_then(|l| m.membership_config.membership().get_node(&l).cloned())?;
        Some(Leader::At(node.addr))
    }

    /// Where the leader is, waiting up to [`LEADER_WAIT`] for one if none is known (an
    /// election under way, or a leadership transfer): clients see a short delay instead of
    /// an error. A node cut off from the majority still refuses within a bounded time.
    async fn leader_soon(&self) -> Option<Leader> {
        if let Some(l) = self.leader() {
            return Some(l);
        }
        let _ = self.raft.wait(Some(LEADER_WAIT)).metrics(|m| m.current_leader.is_some(), "a leader").await;
        self.leader()
    }

    async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            tokio::spawn(async move { me.serve_conn(stream).await });
        }
    }

    async fn serve_conn(self: Arc<Self>, mut stream: TcpStream) {
        while let Ok(Some(frame)) = net::read_frame(&mut stream).await {
            let Ok(rpc) = net::decode::<Rpc>(&frame) else {
                tracing::warn!("cluster port: undecodable request, closing the connection");
                return;
            };
            let Some(answer) = self.handle(rpc).await else {
                // Raft traffic for another identity at this address: a node that restarted
                // without its state under a new id must not answer for the old one (it would
                // vote with a log it no longer has). To the sender the old node is gone.
                return;
            };
            if net::write_frame(&mut stream, &answer).await.is_err() {
                return;
            }
        }
    }

    async fn handle(&self, rpc: Rpc) -> Option<Vec<u8>> {
        let frame = |r: Result<Vec<u8>, rmp_serde::encode::Error>| Some(r.unwrap_or_default());
        let me = self.cfg.node_id;
        match rpc {
            Rpc::Append(to, _) | Rpc::Vote(to, _) | Rpc::Snapshot(to, _) if to != me => None,
            // A candidate that is not a voter here was removed (or never was one): its term
            // must not unseat a leader it no longer follows. To it, this node is unreachable.
            Rpc::Vote(_, r) if !self.is_voter(r.vote.leader_id().voted_for()) => None,
            Rpc::Append(_, r) => {
                // Before the entries it commits can apply; only a commit of the leader's own
                // term says what its predecessors committed (see `store::Backlog`).
                if let Some(c) = r.leader_commit.filter(|c| c.leader_id.term == r.vote.leader_id().term) {
                    self.backlog.learned(c.index);
                }
                let answer = self.raft.append_entries(r).await;
                if matches!(&answer, Ok(a) if !matches!(a, openraft::raft::AppendEntriesResponse::HigherVote(_))) {
                    *self.leader_heard.lock() = std::time::Instant::now();
                }
                frame(net::encode(&answer))
            }
            Rpc::Vote(_, r) => frame(net::encode(&self.raft.vote(r).await)),
            Rpc::Snapshot(_, r) => frame(net::encode(&self.raft.install_snapshot(r).await)),
            Rpc::WriteBatch(reqs, relayed) => {
                let replies: Vec<WriteReply> = match self.propose_many(reqs).await {
                    Ok(proposals) => proposals.into_iter().map(|p| reply_of_outcome(outcome_of_proposal(p))).collect(),
                    // Leadership moved on (a transfer) before anything was proposed: pass the
                    // batch on to the new leader, once.
                    Err(reqs) if !relayed => {
                        self.run_batch(reqs, true).await.into_iter().map(reply_of_outcome).collect()
                    }
                    Err(reqs) => reqs.iter().map(|_| WriteReply::Refused(MOVED.into())).collect(),
                };
                frame(net::encode(&replies))
            }
            Rpc::Hello(_) => frame(net::encode(&self.hello())),
            Rpc::Join(h) => frame(net::encode(&self.join(h).await)),
            Rpc::Remove(id) => {
                let answer = match self.leader() {
                    Some(Leader::Here) => self.remove_member(id).await,
                    _ => Err("the receiving node is not the leader".to_string()),
                };
                frame(net::encode(&answer))
            }
            Rpc::ReadIndex => {
                let reply = match self.leader_read_index().await {
                    Ok(Some(i)) => ReadIndexReply::Index(i),
                    Ok(None) => ReadIndexReply::Moved,
                    Err(e) => ReadIndexReply::Refused(e),
                };
                frame(net::encode(&reply))
            }
            Rpc::Transfer(to) => {
                let answer = match self.leader() {
                    Some(Leader::Here) => self.transfer_here(to).await,
                    _ => Err("the receiving node is not the leader".to_string()),
                };
                frame(net::encode(&answer))
            }
            Rpc::Hold(ms) => frame(net::encode(&self.hold(ms))),
        }
    }

    /// `cluster-seeds` and what `cluster-discovery` finds now.
    pub(crate) async fn seeds(&self) -> Vec<String> {
        let mut seeds = self.cfg.seeds.clone();
        if let Some(d) = &self.discovery {
            for a in d.addresses().await {
                if !seeds.contains(&a) {
                    seeds.push(a);
                }
            }
        }
        seeds
    }

    pub(crate) fn hello(&self) -> Hello {
        let members = self.raft.metrics().borrow().membership_config.membership().nodes().map(|(id, _)| *id).collect();
        Hello { id: self.cfg.node_id, addr: self.cfg.announce.clone(), initialized: self.initialized(), members }
    }

    /// True if `node` votes in this node's membership configuration, or this node has none
    /// yet (a cluster being formed: its first leader is elected by nodes not yet configured).
    fn is_voter(&self, node: Option<NodeId>) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        membership.nodes().next().is_none() || node.is_some_and(|n| membership.voter_ids().any(|v| v == n))
    }

    pub(crate) fn initialized(&self) -> bool {
        self.raft.metrics().borrow().membership_config.membership().nodes().next().is_some()
    }

    /// Adds a node that asked to join: as a learner, then as a voter while the cluster has
    /// fewer than `cluster-voters`. Only the leader can; others pass the request on to it.
    async fn join(&self, h: Hello) -> bool {
        let Some(leader) = self.leader() else { return false };
        if *self.transferring.borrow() {
            // Its replication would renew the leases a transfer waits out; the node retries.
            return false;
        }
        if let Leader::At(addr) = leader {
            return self.peers.call::<bool>(&addr, &Rpc::Join(h), Duration::from_secs(5)).await.unwrap_or(false);
        }
        let learner = self.raft.add_learner(h.id, BasicNode { addr: h.addr.clone() }, true);
        if !matches!(tokio::time::timeout(self.cfg.write_timeout, learner).await, Ok(Ok(_))) {
            return false;
        }
        let voters = self.raft.metrics().borrow().membership_config.membership().voter_ids().count();
        if voters < self.cfg.voters {
            let add = ChangeMembers::AddVoterIds([h.id].into_iter().collect());
            if self.change(add).await.is_err() {
                return false;
            }
        }
        tracing::info!("node {} ({}) joined the cluster", h.id, h.addr);
        true
    }

    /// Formation: until this node is in a cluster, greet every seed; join a cluster one of
    /// them is in, or, once `cluster-bootstrap-expect` nodes have met and every seed has
    /// answered, let the node with the smallest id initialise the cluster with all of them.
    /// Waiting for every seed means nodes that share a seed list share one view, so exactly
    /// one of them initialises.
    async fn form(self: Arc<Self>) {
        loop {
            if self.initialized() {
                return;
            }
            let mut known = BTreeMap::from([(self.cfg.node_id, self.cfg.announce.clone())]);
            let mut all_answered = true;
            let mut member_of_cluster = None;
            for seed in &self.seeds().await {
                if *seed == self.cfg.announce {
                    continue;
                }
                match self.peers.call::<Hello>(seed, &Rpc::Hello(self.hello()), Duration::from_millis(500)).await {
                    Ok(h) => {
                        if h.initialized {
                            member_of_cluster = Some(seed.clone());
                        }
                        known.insert(h.id, h.addr);
                    }
                    Err(_) => all_answered = false,
                }
            }
            if let Some(seed) = member_of_cluster {
                // The seed's leader decides (a seed that does not lead answers false; retry).
                let _ = self.peers.call::<bool>(&seed, &Rpc::Join(self.hello()), Duration::from_secs(5)).await;
            } else if all_answered
                && known.len() >= self.cfg.bootstrap_expect.max(1)
                && known.keys().next() == Some(&self.cfg.node_id)
            {
                // The first `cluster-voters` (by id) vote; the others join as learners.
                let members: BTreeMap<NodeId, BasicNode> =
                    known.into_iter().take(self.cfg.voters).map(|(id, addr)| (id, BasicNode { addr })).collect();
                tracing::info!("initialising the cluster with {} members", members.len());
                match self.raft.initialize(members).await {
                    Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => return,
                    Err(e) => tracing::warn!("cluster initialisation failed: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Runs one connection's writes through the log and returns their replies and the entry's
    /// log index, from any node: batched with other connections' writes (see
    /// [`crate::forward`]) and proposed here if this node leads, else forwarded to the leader.
    /// Callable from any runtime.
    pub async fn write(self: &Arc<Self>, req: Request) -> Result<(Replies, u64), WriteError> {
        // Every write waits in one queue, whether this node leads or not: a sender task takes
        // all that wait as one batch (one log entry, see `propose_many`), to propose here or to
        // send to the leader; with no leader known it waits for one (`run_batch`).
        let (rx, start) = self.forwards.enqueue(req);
        if start {
            let me = self.clone();
            self.rt.spawn(async move { me.send_forwards().await });
        }
        rx.await.unwrap_or_else(|_| Err(WriteError::Unknown("the forwarding task ended".into())))
    }

    /// Runs `work` on this node's runtime and waits for it on the calling thread, which cannot
    /// await (a command worker), for at most `limit`.
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        limit: Duration,
        what: &str,
        work: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv_timeout(limit).unwrap_or_else(|_| Err(format!("{what} did not complete in time")))
    }

    /// A sender task: forwards queued writes in batches until none wait.
    async fn send_forwards(&self) {
        while let Some(batch) = self.forwards.next_batch() {
            let (reqs, txs): (Vec<Request>, Vec<_>) = batch.into_iter().unzip();
            let outcomes = self.run_batch(reqs, false).await;
            for (tx, outcome) in txs.into_iter().zip(outcomes) {
                let _ = tx.send(outcome);
            }
        }
    }

    /// Runs a batch of writes where the leader is: proposed here, or sent to the leader as one
    /// `WriteBatch` (`relayed`: the receiver must not pass it on again). One outcome per
    /// request, in order.
    async fn run_batch(&self, mut reqs: Vec<Request>, mut relayed: bool) -> Vec<Outcome> {
        let n = reqs.len();
        let all = |e: WriteError| vec![Err(e); n];
        loop {
            let addr = match self.leader_soon().await {
                Some(Leader::Here) => match self.propose_many(reqs).await {
                    Ok(proposals) => return proposals.into_iter().map(outcome_of_proposal).collect(),
                    Err(back) if !relayed => {
                        // This node handed leadership over meanwhile: send them on, once.
                        reqs = back;
                        relayed = true;
                        continue;
                    }
                    Err(_) => return all(WriteError::NoQuorum(MOVED.into())),
                },
                Some(Leader::At(addr)) => addr,
                None => return all(WriteError::NoQuorum("no leader is known to this node".into())),
            };
            let rpc = Rpc::WriteBatch(reqs, relayed);
            return match self.peers.call::<Vec<WriteReply>>(&addr, &rpc, self.cfg.write_timeout).await {
                Ok(replies) if replies.len() == n => replies.into_iter().map(outcome_of_reply).collect(),
                Ok(_) => all(WriteError::Unknown("the leader answered for a different batch".into())),
                Err(CallError::Unreachable(e)) => all(WriteError::NoQuorum(format!("the leader is unreachable: {e}"))),
                Err(CallError::Lost(e)) => all(WriteError::Unknown(format!("no answer from the leader: {e}"))),
            };
        }
    }

    /// How long this node has led in `term` (as first seen by this function).
    fn leading_for(&self, term: u64) -> Duration {
        let mut since = self.leading_since.lock();
        match *since {
            Some((t, at)) if t == term => at.elapsed(),
            _ => {
                *since = Some((term, std::time::Instant::now()));
                Duration::ZERO
            }
        }
    }

    /// The cluster's time as this node knows it (see [`crate::clock`]): the time reads
    /// run at.
    pub fn clock_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// True if this node leads the cluster.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Proposes writes on this node if it leads, all as one entry (a [`Batch`]), stamped with
    /// the leader's time; one outcome per request, in order. Gives the
    /// requests back, unproposed, if this node does not lead (after a transfer in progress
    /// ends: it holds new proposals, see [`crate::transfer`]).
    async fn propose_many(&self, reqs: Vec<Request>) -> Result<Vec<Result<(Replies, u64), Proposal>>, Vec<Request>> {
        self.transfer_settled().await;
        let n = reqs.len();
        let caught_up = {
            // (Borrowed, not cloned: this runs for every write.)
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            if m.state == ServerState::Leader {
                // A leader that has not heard from a quorum lately is likely on the minority
                // side of a partition: refuse at once instead of waiting for a commit that
                // cannot come (nothing is proposed, so this is a definite failure).
                // (No acknowledgement yet: stale only if this node has led for that long; a
                // leader just elected takes writes before its first heartbeat round returns.)
                let stale = match m.millis_since_quorum_ack {
                    Some(ms) => ms > QUORUM_STALE.as_millis() as u64,
                    None => self.leading_for(m.current_term) > QUORUM_STALE,
                };
                let alone = m.membership_config.membership().voter_ids().count() <= 1;
                if stale && !alone {
                    let why = WriteError::NoQuorum("the leader has not reached a majority lately".into());
                    return Ok(vec![Err(Proposal::Failed(why)); n]);
                }
                m.last_applied.is_some_and(|l| l.leader_id.term == m.current_term)
            } else {
                return Err(reqs);
            }
        };
        if !caught_up {
            // A new leader stamps nothing before it has applied its predecessors' entries (up
            // to its own first entry), so that the log's time never goes back.
            let term = self.raft.metrics().borrow().current_term;
            let _ = self
                .raft
                .wait(Some(self.cfg.write_timeout))
                .metrics(|m| m.last_applied.is_some_and(|l| l.leader_id.term >= term), "applied own term")
                .await;
        }
        let now_ms = self.clock.stamp_ms();
        let unknown = |why: String| vec![Err(Proposal::Failed(WriteError::Unknown(why))); n];
        let rx = match self.raft.client_write_ff(Batch { now_ms, parts: reqs }).await {
            Ok(rx) => rx,
            Err(fatal) => return Ok(unknown(fatal.to_string())),
        };
        Ok(match tokio::time::timeout(self.cfg.write_timeout, rx).await {
            Ok(Ok(Ok(resp))) if resp.data.parts.len() == n => {
                let index = resp.log_id.index;
                resp.data.parts.into_iter().map(|replies| Ok((replies, index))).collect()
            }
            Ok(Ok(Ok(_))) => unknown("the entry applied with a different number of parts".into()),
            // Not proposed: this node stopped leading before it took the entry.
            Ok(Ok(Err(ClientWriteError::ForwardToLeader(_)))) => vec![Err(Proposal::NotLeader); n],
            Ok(Ok(Err(e))) => unknown(e.to_string()),
            Ok(Err(e)) => unknown(e.to_string()),
            Err(_) => unknown(format!("not committed within {} ms", self.cfg.write_timeout.as_millis())),
        })
    }

    /// The log index up to which this node must have applied for a read starting now to be
    /// linearizable (batched ReadIndex, see [`crate::read`]). Callable from any runtime.
    pub async fn read_index(self: &Arc<Self>) -> Result<u64, ReadError> {
        let (rx, start) = self.reads.enqueue();
        if start {
            let me = self.clone();
            self.rt.spawn(async move { me.serve_reads().await });
        }
        rx.await.unwrap_or_else(|_| Err(ReadError::NoQuorum("the read round was dropped".into())))
    }

    async fn serve_reads(&self) {
        while let Some(batch) = self.reads.next_batch() {
            let answer = self.confirm_read_index().await;
            for w in batch {
                let _ = w.send(answer.clone());
            }
        }
    }

    /// One round: here if this node leads, else asked of the leader; asked again (once) of
    /// the new leader if leadership moved on meanwhile.
    async fn confirm_read_index(&self) -> Result<u64, ReadError> {
        for _ in 0..2 {
            let addr = match self.leader_soon().await {
                Some(Leader::Here) => match self.leader_read_index().await {
                    Ok(Some(i)) => return Ok(i),
                    Ok(None) => continue,
                    Err(why) => return Err(ReadError::NoQuorum(why)),
                },
                Some(Leader::At(addr)) => addr,
                None => return Err(ReadError::NoQuorum("no leader is known to this node".into())),
            };
            match self.peers.call::<ReadIndexReply>(&addr, &Rpc::ReadIndex, self.cfg.write_timeout).await {
                Ok(ReadIndexReply::Index(i)) => return Ok(i),
                Ok(ReadIndexReply::Moved) => continue,
                Ok(ReadIndexReply::Refused(why)) => return Err(ReadError::NoQuorum(why)),
                Err(e) => return Err(ReadError::NoQuorum(format!("the leader did not answer: {e:?}"))),
            }
        }
        Err(ReadError::NoQuorum(MOVED.into()))
    }

    /// The read index, on the leader: leadership confirmed by a heartbeat round a majority
    /// answered; at least the leader's own no-op entry, so a new leader serves no read before
    /// its term's first entry commits. `None`: this node handed leadership over (a round's
    /// heartbeats would renew the leases a transfer waits out, so rounds wait for its end).
    async fn leader_read_index(&self) -> Result<Option<u64>, String> {
        self.transfer_settled().await;
        if !self.is_leader() {
            return Ok(None);
        }
        match self.raft.get_read_log_id().await {
            Ok((read, _)) => Ok(Some(read.map(|l| l.index).unwrap_or(0))),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Returns once this node has applied the log up to `index` (at once if it has), or
    /// after `cluster-write-timeout` with an error.
    pub async fn applied_at_least(&self, index: u64) -> Result<(), ReadError> {
        if self.applied_index() >= index {
            return Ok(());
        }
        self.raft
            .wait(Some(self.cfg.write_timeout))
            .applied_index_at_least(Some(index), "read")
            .await
            .map(|_| ())
            .map_err(|e| ReadError::Behind(e.to_string()))
    }

    /// The index of the last entry applied here.
    pub fn applied_index(&self) -> u64 {
        self.raft.metrics().borrow().last_applied.map(|l| l.index).unwrap_or(0)
    }

    /// Lines for `INFO cluster` (Tandem's own section).
    pub fn info(&self) -> String {
        let m = self.raft.metrics().borrow().clone();
        let role = role_name(m.state);
        let members = m.membership_config.membership();
        let voters: Vec<String> = members.voter_ids().map(|v| v.to_string()).collect();
        let nodes: Vec<String> = members.nodes().map(|(id, n)| format!("{id}@{}", n.addr)).collect();
        format!(
            "cluster_node_id:{}\r\ncluster_role:{role}\r\ncluster_leader:{}\r\ncluster_term:{}\r\ncluster_last_log_index:{}\r\ncluster_last_applied:{}\r\ncluster_snapshot_index:{}\r\ncluster_log_first_index:{}\r\ncluster_snapshots_installed:{}\r\ncluster_voters:{}\r\ncluster_membership_changing:{}\r\ncluster_members:{}\r\n",
            m.id,
            m.current_leader.map(|l| l.to_string()).unwrap_or_default(),
            m.current_term,
            m.last_log_index.unwrap_or(0),
            m.last_applied.map(|l| l.index).unwrap_or(0),
            m.snapshot.map(|l| l.index).unwrap_or(0),
            m.purged.map(|l| l.index + 1).unwrap_or(0),
            self.installed.load(std::sync::atomic::Ordering::Relaxed),
            voters.join(","),
            // A change between its two steps (joint consensus): `cluster_voters` lists the
            // old and new voters together, and a majority of each must answer until it ends.
            u8::from(members.get_joint_config().len() > 1),
            nodes.join(","),
        ) + &self.member_lines()
    }

    /// Lines for `INFO replication` in a cluster, after Redis's own (which say `role:master`:
    /// every node takes writes): where this node stands in Raft.
    pub fn replication_info(&self) -> String {
        let m = self.raft.metrics().borrow().clone();
        let role = role_name(m.state);
        let leader =
            m.current_leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| (l, n.addr.clone())));
        let last = m.last_log_index.unwrap_or(0);
        let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        // On the leader: how far the slowest member is behind its log.
        let max_lag = m.replication.as_ref().map_or(-1, |r| {
            r.values().map(|matched| last.saturating_sub(matched.map_or(0, |l| l.index)) as i64).max().unwrap_or(0)
        });
        format!(
            "raft_role:{role}\r\nraft_leader_id:{}\r\nraft_leader_addr:{}\r\nraft_term:{}\r\nraft_last_log_index:{last}\r\nraft_last_applied:{applied}\r\nraft_apply_lag:{}\r\nraft_max_member_lag:{max_lag}\r\n",
            leader.as_ref().map(|l| l.0.to_string()).unwrap_or_default(),
            leader.map(|l| l.1).unwrap_or_default(),
            m.current_term,
            last.saturating_sub(applied),
        )
    }

    /// One `memberN:` line per member, in the style of `INFO replication`'s `slaveN:` lines.
    fn member_lines(&self) -> String {
        let mut out = String::new();
        let last = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        for (i, m) in self.members().iter().enumerate() {
            let opt = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
            out += &format!(
                "member{i}:id={},addr={},role={},leader={},matched={},lag={},last_contact_ms={}\r\n",
                m.id,
                m.addr,
                if m.voter { "voter" } else { "learner" },
                m.leader as u8,
                opt(m.matched),
                m.matched.map_or(-1, |i| last.saturating_sub(i) as i64),
                opt(m.last_contact_ms),
            );
        }
        out
    }
}

/// Where the leader is.
pub(crate) enum Leader {
    /// This node.
    Here,
    /// Another node, at this cluster address.
    At(String),
}

/// A write's outcome as the cluster port carries it.
fn reply_of_outcome(o: Outcome) -> WriteReply {
    match o {
        Ok((bytes, index)) => WriteReply::Applied(bytes, index),
        Err(WriteError::NoQuorum(why)) => WriteReply::Refused(why),
        Err(WriteError::Unknown(why)) => WriteReply::Unknown(why),
    }
}

/// A write's outcome for the client, from the cluster port's answer.
fn outcome_of_reply(r: WriteReply) -> Outcome {
    match r {
        WriteReply::Applied(reply, index) => Ok((reply, index)),
        WriteReply::Refused(why) => Err(WriteError::NoQuorum(why)),
        WriteReply::Unknown(why) => Err(WriteError::Unknown(why)),
    }
}

/// A write's outcome for the client, from a proposal here.
fn outcome_of_proposal(p: Result<(Replies, u64), Proposal>) -> Outcome {
    match p {
        Ok(reply) => Ok(reply),
        Err(Proposal::Failed(e)) => Err(e),
        // Leadership moved between the look and the proposal: nothing was proposed.
        Err(Proposal::NotLeader) => Err(WriteError::NoQuorum(MOVED.into())),
    }
}

/// A Raft state's name in `INFO`.
fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

/// The log's size in bytes below which it is never compacted for its bytes alone.
const LOG_BYTES_FLOOR: u64 = 64 << 20;

/// The log since the last snapshot may hold this many writes per key the dataset had then
/// before the next one (unless `cluster-snapshot-entries` asks for more). At one write per key,
/// snapshots of a dataset of 100,000 keys overwritten at random took a fifth of every node's
/// time under `SET -P 16`; the log's memory stays bounded by the bytes rule.
const SNAPSHOT_GROWTH: u64 = 4;

/// At most this many bytes of entries a snapshot covers stay in the log after it.
const LOG_BYTES_KEPT: u64 = 16 << 20;

/// A leader that has had no acknowledgement from a majority for this long refuses writes.
const QUORUM_STALE: Duration = Duration::from_secs(2);

/// How long a write or read waits for a leader to be elected before it is refused.
const LEADER_WAIT: Duration = Duration::from_secs(2);

/// Why a write or read was refused when leadership moved under it.
const MOVED: &str = "leadership moved, retry";

/// Why a proposal on this node did not produce a reply.
#[derive(Clone)]
enum Proposal {
    /// This node does not lead (nothing was proposed).
    NotLeader,
    /// It failed here.
    Failed(WriteError),
}
