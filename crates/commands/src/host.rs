//! What commands need from the server around them (configuration, clients, INFO, shutdown),
//! as a trait so that `commands` knows no sockets and tests can run it in-process.

use crate::session::Session;
use crate::stats::Stats;
use engine::Shard;

/// Filters of `CLIENT KILL`.
#[derive(Clone, Debug, Default)]
pub struct KillFilter {
    /// `ID`
    pub id: Option<u64>,
    /// `ADDR` (ip:port) or the old single-argument form.
    pub addr: Option<String>,
    /// `LADDR`
    pub laddr: Option<String>,
    /// `TYPE` (normal, master, replica, pubsub).
    pub client_type: Option<String>,
    /// `USER`
    pub user: Option<String>,
    /// `SKIPME` (default yes).
    pub skip_me: bool,
    /// `MAXAGE` seconds.
    pub max_age: Option<i64>,
}

/// A cluster member as `TANDEM MEMBERS` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterMember {
    /// Node id.
    pub id: u64,
    /// Cluster address.
    pub addr: String,
    /// Votes (else a learner).
    pub voter: bool,
    /// Leads the cluster.
    pub leader: bool,
    /// Last log index replicated to it (known on the leader only).
    pub matched: Option<u64>,
    /// Milliseconds since it last answered this node.
    pub last_contact_ms: Option<u64>,
}

/// The error of cluster commands on a node that is not in a cluster.
pub const NOT_IN_CLUSTER: &str = "ERR This instance is not part of a Tandem cluster";

/// Services of the hosting server.
pub trait Host: Send + Sync {
    /// Shared counters.
    fn stats(&self) -> &Stats;
    /// The clients blocked by `BLPOP` and friends.
    fn waiters(&self) -> &crate::blocking::Waiters;
    /// The pub/sub subscribers.
    fn pubsub(&self) -> &crate::pubsub::PubSub;
    /// Client-side caching: who tracks what.
    fn tracking(&self) -> &crate::tracking::Tracking;
    /// The mailbox of connected client `id` (a `CLIENT TRACKING REDIRECT` target).
    fn client_mailbox(&self, _id: u64) -> Option<std::sync::Arc<crate::pubsub::Mailbox>> {
        None
    }
    /// The configured password (`requirepass`), if any.
    fn requirepass(&self) -> Option<Vec<u8>>;
    /// `proto-max-bulk-len`: the longest string a command may build.
    fn max_bulk_len(&self) -> u64;
    /// True if the eviction policy is an LFU one (`OBJECT FREQ` needs it).
    fn lfu_policy(&self) -> bool;
    /// `CONFIG GET` for one glob pattern: matching (name, value) pairs.
    fn config_get(&self, pattern: &[u8]) -> Vec<(String, String)>;
    /// `CONFIG SET` of several pairs, all or nothing; the error is the complete reply text.
    fn config_set(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), String>;
    /// `CONFIG RESETSTAT`.
    fn config_resetstat(&self);
    /// `CONFIG REWRITE`; the error is the complete reply text.
    fn config_rewrite(&self) -> Result<(), String>;
    /// The text of `INFO` for the requested sections (lower-case; empty = default).
    fn info(&self, sections: &[String], me: &Session) -> String;
    /// `CLIENT LIST` lines (all clients, or the given ids, or one type).
    fn client_list(&self, me: &Session, ids: Option<&[u64]>, client_type: Option<&str>) -> String;
    /// `CLIENT INFO` line of the calling client.
    fn client_info(&self, me: &Session) -> String;
    /// `CLIENT KILL`: number of clients closed.
    fn client_kill(&self, me: &Session, filter: &KillFilter) -> usize;
    /// `CLIENT PAUSE` until the given absolute time; `write_only` for `WRITE` mode.
    fn client_pause(&self, until_ms: i64, write_only: bool);
    /// `CLIENT UNPAUSE`.
    fn client_unpause(&self);
    /// `SHUTDOWN`: `save` = Some(true) SAVE, Some(false) NOSAVE, None default. The error is the
    /// complete reply text; on success the process exits soon after.
    fn shutdown(&self, save: Option<bool>, now: bool, force: bool, abort: bool) -> Result<(), String>;
    /// Turns the active expiry cycle on or off (`DEBUG SET-ACTIVE-EXPIRE`).
    fn set_active_expire(&self, on: bool);
    /// Unix time in microseconds (for `TIME`, which is not a write and may read the clock).
    fn unix_time_us(&self) -> i64;
    /// The `read-consistency` setting.
    fn read_consistency(&self) -> crate::session::ReadConsistency {
        crate::session::ReadConsistency::Linearizable
    }
    /// The `MONITOR`ing clients (None: this host has none).
    fn monitors(&self) -> Option<&crate::monitor::Monitors> {
        None
    }
    /// Shows a command that ran to the monitoring clients (callers check that some exist).
    /// A monitoring client's own command is not sent to it: its line is returned, to follow
    /// the command's reply.
    fn feed_monitors(&self, _session: &Session, _argv: &[&[u8]]) -> Option<Vec<u8>> {
        None
    }
    /// `notify-keyspace-events` as class bits (`crate::notify`); 0 = off.
    fn notify_flags(&self) -> u32 {
        0
    }
    /// True if this server is a cluster node (its writes go through the log).
    fn in_cluster(&self) -> bool {
        false
    }
    /// `TANDEM MEMBERS`: the cluster's members as this node knows them (None: no cluster).
    fn cluster_members(&self) -> Option<Vec<ClusterMember>> {
        None
    }
    /// `TANDEM REMOVE id` (`Some`) or `TANDEM LEAVE` (`None`: this node): waits for the
    /// leader to commit the change. The error is the complete reply text.
    fn cluster_remove(&self, _id: Option<u64>) -> Result<(), String> {
        Err(NOT_IN_CLUSTER.into())
    }
    /// `TANDEM TRANSFER [id]`: hands the leadership over; the new leader's id. The error is
    /// the complete reply text.
    fn cluster_transfer(&self, _to: Option<u64>) -> Result<u64, String> {
        Err(NOT_IN_CLUSTER.into())
    }

    /// `SAVE`: a snapshot written before replying. The error is the complete reply text.
    fn save(&self) -> Result<(), String> {
        Err(NO_PERSISTENCE.into())
    }
    /// `BGSAVE [SCHEDULE]`: the status reply text, or the complete error text.
    fn bgsave(&self, _schedule: bool) -> Result<&'static str, String> {
        Err(NO_PERSISTENCE.into())
    }
    /// The replication offset `ROLE` and `INFO replication` report: 0 alone; in a cluster the
    /// index of the last log entry applied here.
    fn repl_offset(&self) -> i64 {
        0
    }
    /// `LASTSAVE`: Unix seconds of the last successful save.
    fn lastsave(&self) -> i64 {
        0
    }
    /// Called by `FLUSHALL` with every shard still locked and empty: Redis then saves (an empty
    /// dataset) if save points are configured, and abandons any snapshot in progress.
    fn flushed_all(&self, _shards: &[&mut Shard]) {}
    /// Whether writes are being logged (AOF). Read by every command after it has locked its
    /// shards, so a log switched on under all shard locks misses no command.
    fn logging(&self) -> bool {
        false
    }
    /// Appends one command's effects to the log, in order with every other command's (the
    /// caller still holds the command's shard locks). Returns the log position after them.
    fn log_effects(&self, _effects: &[crate::effects::Effect]) -> u64 {
        0
    }
    /// Why the AOF cannot be written (the text after `MISCONF Errors writing to the AOF
    /// file: `), while the [`crate::stats::Gate::AofError`] gate is closed.
    fn aof_error(&self) -> String {
        String::new()
    }
    /// `BGREWRITEAOF`: the status reply text, or the complete error text.
    fn bgrewriteaof(&self) -> Result<&'static str, String> {
        Err(NO_PERSISTENCE.into())
    }
    /// `DEBUG RELOAD`: save the locked shards, empty them, load the file back into them.
    fn debug_reload(&self, _shards: &mut [&mut Shard]) -> Result<(), String> {
        Err(NO_PERSISTENCE.into())
    }
}

const NO_PERSISTENCE: &str = "ERR persistence is not available in this host";
