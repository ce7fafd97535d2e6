//! Tandem's server: listeners, connections and per-client state, pipelining, the config
//! registry, the client registry, `INFO`, client pause, the active expiry cycle, shutdown.
//!
//! Main types: [`Shared`] (everything connections share; it is the `commands::Host`),
//! [`Server`] (start and run), [`config::Config`].
//!
//! This crate must not know how values are stored: it reaches keys only through
//! `commands::execute` and the engine's expiry step.

pub mod aof;
pub mod clients;
pub mod config;
pub mod connection;
pub mod expiry;
pub mod host;
pub mod info;
pub mod listener;
pub mod memory;
pub mod pause;
pub mod persist;
pub mod rates;
pub mod replication;
pub mod turn;

use clients::Clients;
use commands::Stats;
use config::Config;
use engine::Keyspace;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use tokio::sync::Notify;

/// State shared by every connection and background task.
pub struct Shared {
    /// The keyspace.
    pub ks: Keyspace,
    /// Configuration.
    pub config: Config,
    /// Connected clients.
    pub clients: Clients,
    /// Counters.
    pub stats: Stats,
    /// Clients blocked by `BLPOP` and friends.
    pub waiters: commands::blocking::Waiters,
    /// Pub/sub subscribers.
    pub pubsub: commands::pubsub::PubSub,
    /// `MONITOR`ing clients.
    pub monitors: commands::monitor::Monitors,
    /// Client-side caching (`CLIENT TRACKING`).
    pub tracking: commands::tracking::Tracking,
    /// `client-output-buffer-limit`, read by every client's mailbox.
    pub output_limits: Arc<commands::pubsub::OutputLimits>,
    /// Client pause state.
    pub pause: pause::Pause,
    /// Start time, Unix ms.
    pub start_ms: i64,
    /// 40-hex-digit run id.
    pub run_id: String,
    /// The port actually bound.
    pub port: AtomicU64,
    /// Path of the configuration file, if any.
    pub config_file: String,
    /// Bytes read from clients.
    pub net_input_bytes: Arc<AtomicU64>,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
    /// Set when shutdown was requested.
    pub shutting_down: AtomicBool,
    /// Wakes the main task for shutdown.
    pub shutdown_notify: Notify,
    /// Instantaneous rates for INFO.
    pub rates: rates::Rates,
    /// RDB persistence state.
    pub persist: persist::Persist,
    /// The append-only file.
    pub aof: aof::Aof,
    /// This node's Raft replication, when in a cluster (see `replication`).
    cluster: std::sync::OnceLock<Arc<cluster::Cluster>>,
    /// This value's own `Arc`, for work handed to other threads (background saves).
    me: std::sync::Weak<Shared>,
}

impl Shared {
    /// Shared state for a configuration.
    pub fn new(config: Config, config_file: String) -> Arc<Shared> {
        let databases = config.get_i64("databases") as usize;
        let shards = config.get_i64("keyspace-shards") as usize;
        let seed = random_seed();
        let run_id: String =
            (0..40).map(|i| format!("{:x}", (seed.rotate_left(i * 7) ^ (i as u64 * 0x9e37)) % 16)).collect();
        let mut ks = Keyspace::new(databases, shards, seed);
        ks.use_limits(config.limits.clone());
        let output_limits = config.output_limits.clone();
        let tracking = commands::tracking::Tracking::new(config.tracking_max_keys.clone());
        Arc::new_cyclic(|me| Shared {
            ks,
            config,
            clients: Clients::default(),
            stats: Stats::default(),
            waiters: Default::default(),
            pubsub: Default::default(),
            monitors: Default::default(),
            tracking,
            output_limits,
            pause: pause::Pause::default(),
            start_ms: connection::unix_ms(),
            run_id,
            port: AtomicU64::new(0),
            config_file,
            net_input_bytes: Arc::new(AtomicU64::new(0)),
            net_output_bytes: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            shutdown_notify: Notify::new(),
            rates: rates::Rates::default(),
            persist: persist::Persist::new(connection::unix_ms()),
            aof: aof::Aof::new(),
            cluster: std::sync::OnceLock::new(),
            me: me.clone(),
        })
    }

    /// This value's `Arc` (it always lives in one).
    pub fn arc(&self) -> Arc<Shared> {
        self.me.upgrade().expect("Shared lives in an Arc")
    }
}

/// A seed from the OS's randomness (hash seeds, run id); never used by commands.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

pub use listener::Server;
