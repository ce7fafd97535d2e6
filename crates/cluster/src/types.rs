//! What the Raft log holds, and openraft's type configuration.

use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// A node's identity in the cluster.
pub type NodeId = u64;

/// A log entry's payload: the writes of one or more connections, one [`Request`] each, in the
/// order the leader took them; they apply one after the other. One entry per batch, not per
/// connection: openraft's costs per entry (log slot, replication bookkeeping, apply call,
/// responder) are paid once for every write a batch carries.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The connections' writes.
    pub parts: Vec<Request>,
}

/// One connection's consecutive write commands (one, or a pipeline's run of them), each with
/// its execution environment exactly as the node that received it would have run it (see the
/// determinism contract in DESIGN.md §3). They apply in order, one after the other, as they
/// would have on one server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The database the client had selected.
    pub db: u32,
    /// The protocol (2 or 3) the replies are encoded in, for the receiving client.
    pub resp: u8,
    /// The commands.
    pub commands: Vec<Command>,
    /// The node and client that sent them (absent for the server's own entries).
    #[serde(default)]
    pub origin: Option<Origin>,
}

/// Who sent a [`Request`]. On the node the client is connected to, the applied commands are
/// that client's: client-side caching honours its `NOLOOP` and remembers the keys read inside
/// its `EXEC` (client ids are per node, so other nodes ignore the client).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The node's id.
    pub node: u64,
    /// The node's process (its `run_id`): client ids start again in a restarted process, and
    /// entries of the earlier one may still be applied after the restart.
    pub boot: u64,
    /// The client's id on that node.
    pub client: u64,
    /// The client's `CLIENT CACHING yes|no` in effect for these commands.
    pub caching: bool,
}

/// One write command of a [`Request`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The command and its arguments.
    #[serde(with = "byte_strings")]
    pub argv: Vec<Vec<u8>>,
    /// The command's time: the leader's clock when it proposed the entry (see
    /// [`crate::clock`]), carried so every node applies it at the same time.
    pub now_ms: i64,
    /// Seed of the command's random choices.
    pub seed: u64,
}

/// What applying an entry produced: for each part of its [`Batch`], the encoded reply of each
/// command, for the client that sent it (none for entries no client waits for).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Never sent anywhere (forwarded writes' replies travel in `net::WriteReply`); openraft
    /// only asks that the type be serialisable.
    #[serde(skip)]
    pub parts: Vec<Vec<Vec<u8>>>,
}

/// A list of byte strings serialised as binary strings (MessagePack `bin`), not as lists of
/// numbers; formats without binary strings (the JSON log file) still read and write lists.
pub mod byte_strings {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serialises each element as bytes.
    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<&serde_bytes::Bytes> = v.iter().map(|b| serde_bytes::Bytes::new(b)).collect();
        bytes.serialize(s)
    }

    /// Reads elements written by [`serialize`] (or as lists of numbers).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<serde_bytes::ByteBuf> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|b| b.into_vec()).collect())
    }
}

openraft::declare_raft_types!(
    /// Tandem's openraft type configuration.
    pub TypeConfig:
        D = Batch,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// Writes a snapshot begun by [`Machine::begin_snapshot`]; blocking, run on any thread.
pub type SnapshotJob = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

/// What the cluster needs from the server: applying committed writes through the engine, and
/// snapshots of the dataset as RDB images.
pub trait Machine: Send + Sync + 'static {
    /// Applies one committed entry's commands in order and returns their encoded replies.
    /// Must be deterministic: the same request on the same dataset gives the same dataset and
    /// replies on every node.
    fn apply(&self, req: &Request) -> Vec<Vec<u8>>;

    /// Cuts a point-in-time image of the dataset now (no entry is being applied) to be
    /// written as an RDB file at `path` by the returned job, while applies go on.
    fn begin_snapshot(&self, path: &std::path::Path) -> std::io::Result<SnapshotJob>;

    /// Replaces the whole dataset with an RDB image made by [`Machine::begin_snapshot`]
    /// (on this node or another).
    fn install_snapshot(&self, image: &[u8]) -> Result<(), String>;

    /// Keys in the dataset (how much a snapshot costs, against how long the log has grown).
    fn keys(&self) -> u64;

    /// Bytes the process has allocated (`used_memory`): the log may grow as large as the
    /// rest before a snapshot compacts it.
    fn used_memory(&self) -> u64;
}
