//! The server's side of the cluster (`cluster` crate): its configuration from `cluster-*`
//! settings, applying committed writes through `commands::execute` (the [`Machine`]), and the
//! decision which commands go through the log.
//!
//! In a cluster, a client's write is not executed where it arrives: it becomes a log entry
//! (`db`, argv, the node's `now`, a seed), and every node executes it when the entry commits;
//! the client gets the reply of that execution. Reads run locally and never expire keys: only
//! applied entries change the dataset, so nodes with different clocks agree on it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use cluster::types::SnapshotJob;
use cluster::{Cluster, ClusterConfig, Machine, Replies, Request};
use commands::exec::{execute, ExecOptions};
use commands::host::Host;
use commands::stats::LocalStats;
use commands::{Effects, Session};
use engine::{Env, Rng};
use persistence::snapshot;
use protocol::{ReplyWriter, Resp};

use crate::Shared;

/// Applies committed entries to this node's keyspace.
struct Applier {
    shared: Weak<Shared>,
}

impl Machine for Applier {
    fn apply(&self, now_ms: i64, req: &Request, replies: bool, quiet: bool) -> Replies {
        let Some(shared) = self.shared.upgrade() else { return Replies::default() };
        // On the node the client is connected to, the commands run as that client's, for
        // client-side caching: its `NOLOOP` holds, its reads inside `EXEC` are remembered.
        let origin = req
            .origin()
            .filter(|o| shared.cluster().is_some_and(|c| c.node_id() == o.node) && o.boot == shared.boot_id());
        let mut session = Session::new(origin.map_or(0, |o| o.client), true);
        if let Some(o) = origin {
            session.tracking = shared.tracking.tracker(o.client);
            session.caching = o.caching;
        }
        session.db = req.db() as usize;
        let resp = if req.resp() == 3 { Resp::V3 } else { Resp::V2 };
        session.resp = resp;
        let mut effects = Effects::default();
        let mut local = LocalStats::default();
        // Replay mode: the command was checked (authentication, gates) where it arrived.
        let opts = ExecOptions { may_expire: true, replay: true, quiet };
        // All the replies in one buffer; on a node no client waits on, one reply at a time.
        let mut out = ReplyWriter::new(resp);
        let mut ends = Vec::with_capacity(if replies { req.len() } else { 0 });
        let mut argv: Vec<&[u8]> = Vec::new();
        for c in req.commands() {
            let mut env = Env { now_ms, rng: Rng::new(c.seed) };
            argv.clear();
            argv.extend(c.argv());
            execute(&shared.ks, &*shared, &mut session, &mut env, &argv, &mut out, &mut effects, &mut local, opts);
            if replies {
                ends.push(out.buf.len() as u64);
            } else {
                out.buf.clear();
            }
        }
        local.flush(&shared.stats);
        // The client's own invalidations: to its mailbox, as everyone else's (its reply comes
        // from the node that proposed the entry, the leader, so they cannot be placed after it
        // here; its connection writes mail after the replies it has received).
        if let Some(o) = origin.filter(|_| !session.after_reply.is_empty()) {
            if let Some(mailbox) = shared.client_mailbox(o.client) {
                mailbox.deliver(crate::connection::unix_ms(), |w| w.buf.extend_from_slice(&session.after_reply));
            }
        }
        if !replies {
            out.buf = Vec::new();
        }
        Replies::new(out.buf, ends)
    }

    fn prefetch(&self, reqs: &[&Request], what: cluster::Fetch) {
        if let Some(shared) = self.shared.upgrade() {
            let what = match what {
                cluster::Fetch::Slots => engine::Fetch::Slots,
                cluster::Fetch::Entries => engine::Fetch::Entries,
                cluster::Fetch::Chains => engine::Fetch::Chains,
            };
            prefetch_keys(&shared, reqs, what);
        }
    }

    fn begin_snapshot(&self, path: &Path) -> std::io::Result<SnapshotJob> {
        let shared = self.shared.upgrade().ok_or_else(|| std::io::Error::other("shutting down"))?;
        // Paced like BGSAVE: the walk rests while clients are being served.
        let opts = shared.background_snapshot_options();
        let snap = snapshot::RdbSnapshot::create(&snapshot::temp_path_for(path), &opts)?;
        shared.ks.begin_snapshot(snap.clone(), || ());
        let path = path.to_path_buf();
        Ok(Box::new(move || {
            snap.complete(&shared.ks);
            snap.finish()?.commit(&path)?;
            Ok(())
        }))
    }

    fn install_snapshot(&self, image: &[u8]) -> Result<(), String> {
        let shared = self.shared.upgrade().ok_or("shutting down")?;
        let mut guards = shared.ks.lock_all();
        for g in guards.iter_mut() {
            // (A snapshot in progress, BGSAVE, gets each shard as it was first.)
            g.clear_all();
            // The dataset is replaced: tracking clients hear of it as of a flush (as a Redis
            // replica's clients do after a full sync), even if the image fails to load.
            shared.tracking.clear(&mut g.tracked);
        }
        let mut unused = Vec::new();
        let mut me = commands::tracking::Me::nobody(&mut unused);
        shared.tracking.flushed(&*shared, &mut me, crate::connection::unix_ms());
        let mut shards: Vec<&mut engine::Shard> = guards.iter_mut().map(|g| &mut **g).collect();
        persistence::load::load_replica_image(&shared.ks, &mut shards, image, crate::connection::unix_ms())?;
        drop(shards);
        drop(guards);
        // Lists may have arrived under waited keys without a command storing them.
        shared.waiters.poke_all();
        Ok(())
    }

    fn keys(&self) -> u64 {
        self.shared.upgrade().map_or(0, |s| s.ks.total_keys())
    }

    fn used_memory(&self) -> u64 {
        crate::memory::used()
    }
}

/// Starts loading (one step of) the keyspace entries the commands of committed requests will
/// touch: a client's pipelined writes arrive as one request, the single writes of many clients
/// as many, and applied one by one each command waited for two or three cache misses in turn
/// on a large keyspace (see `Keyspace::prefetch`). Commands with one key at a fixed position only
/// (`SET`, `INCR`, `LPUSH`, `HSET`, ...), which is what pipelines mostly hold; a `SELECT`
/// inside a request only makes the later hints useless.
fn prefetch_keys(shared: &Shared, reqs: &[&Request], what: engine::Fetch) {
    /// Keys per call: a longer pipeline's later commands get no hint rather than push the
    /// earlier ones' lines out of the cache before they run. (The cluster's slot step hands
    /// over 48 commands and the rest of the last request at the start of an apply.)
    const MAX_KEYS: usize = 96;
    let mut keys: smallvec::SmallVec<[(usize, &[u8]); MAX_KEYS]> = smallvec::SmallVec::new();
    'requests: for req in reqs {
        let db = req.db() as usize;
        for c in req.commands() {
            if keys.len() == MAX_KEYS {
                break 'requests;
            }
            let mut args = c.argv();
            let pos = args.next().and_then(commands::table::lookup).and_then(|cmd| cmd.single_key);
            if let Some(key) = pos.filter(|&p| p > 0).and_then(|p| args.nth(p - 1)) {
                keys.push((db, key));
            }
        }
    }
    shared.ks.prefetch(&keys, what);
}

impl Shared {
    /// The origin a client's entries carry (see `cluster::Origin`).
    pub fn origin(&self, cluster: &Cluster, client: u64, caching: bool) -> cluster::Origin {
        cluster::Origin { node: cluster.node_id(), boot: self.boot_id(), client, caching }
    }

    /// This process among the node's incarnations: the start of its random `run_id`.
    fn boot_id(&self) -> u64 {
        self.run_id.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(0)
    }

    /// True when `cluster-*` settings ask for a cluster.
    pub fn cluster_configured(&self) -> bool {
        self.config.get_i64("cluster-bootstrap-expect") > 0
            || !self.config.get("cluster-seeds").trim().is_empty()
            || !self.config.get("cluster-discovery").trim().is_empty()
    }

    /// Starts this node's part of the cluster, if configured.
    pub fn start_cluster(self: &Arc<Self>) -> std::io::Result<()> {
        if !self.cluster_configured() {
            return Ok(());
        }
        let port = self.port.load(std::sync::atomic::Ordering::Relaxed) as u16;
        let cport = match self.config.get_i64("cluster-port") {
            0 => {
                port.checked_add(10000).ok_or_else(|| std::io::Error::other("cluster-port: port + 10000 overflows"))?
            }
            p => p as u16,
        };
        let announce_ip: IpAddr = match self.config.get("cluster-announce-ip").as_str() {
            "" => self
                .config
                .get("bind")
                .split_whitespace()
                .find_map(|a| a.trim_start_matches('-').parse().ok())
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            ip => ip.parse().map_err(|_| std::io::Error::other(format!("cluster-announce-ip: bad address {ip}")))?,
        };
        let dir = PathBuf::from(self.config.get("dir")).join("raft");
        let durable = self.config.get_bool("appendonly");
        let node_id = node_identity(&dir, durable, &self.config.get("cluster-node-id"))?;
        let cfg = ClusterConfig {
            node_id,
            bind: SocketAddr::new(announce_ip, cport),
            announce: SocketAddr::new(announce_ip, cport).to_string(),
            bind_ip: Some(announce_ip),
            seeds: self
                .config
                .get("cluster-seeds")
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            discovery: self.config.get("cluster-discovery").trim().to_string(),
            discovery_resolver: self.config.get("cluster-discovery-resolver").trim().to_string(),
            bootstrap_expect: self.config.get_i64("cluster-bootstrap-expect").max(1) as usize,
            voters: self.config.get_i64("cluster-voters") as usize,
            write_timeout: Duration::from_millis(self.config.get_i64("cluster-write-timeout") as u64),
            dir,
            durable,
            snapshot_entries: self.config.get_i64("cluster-snapshot-entries") as u64,
            node_timeout: Duration::from_millis(self.config.get_i64("cluster-node-timeout") as u64),
        };
        tracing::info!("cluster node {} on {}", cfg.node_id, cfg.announce);
        let node = Cluster::start(cfg, Arc::new(Applier { shared: Arc::downgrade(self) }))?;
        let _ = self.cluster.set(node);
        Ok(())
    }

    /// Before a graceful stop (SIGTERM, `SHUTDOWN`): leave the cluster, so that the others
    /// replace this node at once instead of after `cluster-node-timeout`. Bounded by
    /// `cluster-write-timeout`; a node that cannot leave (no leader, the last voter) stops
    /// anyway and the others remove it later.
    pub async fn leave_cluster(&self) {
        let Some(c) = self.cluster() else { return };
        let limit = Duration::from_millis(self.config.get_i64("cluster-write-timeout") as u64);
        match tokio::time::timeout(limit, c.leave()).await {
            Ok(Ok(())) => tracing::warn!("left the cluster"),
            Ok(Err(e)) => tracing::warn!("could not leave the cluster: {e}"),
            Err(_) => tracing::warn!("could not leave the cluster in {} ms", limit.as_millis()),
        }
    }

    /// The running cluster node, if any.
    #[inline]
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }
}

/// This node's identity. With a durable log (`appendonly yes`) it is kept in `dir/node-id`
/// beside the log and vote it goes with: the first start takes `cluster-node-id` (or a random
/// one) and writes it; later starts read it. Without one, or when the state directory is gone,
/// the node starts afresh under a new random identity: it must never vote under an identity
/// whose log it lost (a configured `cluster-node-id` is then ignored, with a warning).
fn node_identity(dir: &Path, durable: bool, configured: &str) -> std::io::Result<u64> {
    let configured = match configured {
        "" => None,
        id => {
            Some(id.parse::<u64>().map_err(|_| std::io::Error::other(format!("cluster-node-id: not a number: {id}")))?)
        }
    };
    let path = dir.join("node-id");
    if durable {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let id =
                text.trim().parse().map_err(|_| std::io::Error::other(format!("{}: not an id", path.display())))?;
            if configured.is_some_and(|c| c != id) {
                tracing::warn!("cluster-node-id differs from the id kept in {}; keeping {id}", path.display());
            }
            return Ok(id);
        }
    }
    // No state to resume: whatever an earlier run left is of no use (and must not be mixed in).
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let id = match configured {
        Some(id) if durable => id,
        Some(_) => {
            tracing::warn!("cluster-node-id is ignored without appendonly: a node without a durable log takes a new identity each start");
            crate::random_seed() >> 1
        }
        None => crate::random_seed() >> 1,
    };
    if durable {
        std::fs::create_dir_all(dir)?;
        cluster::store::write_synced(&path, id.to_string().as_bytes())?;
    }
    Ok(id)
}
