//! Tandem's replication: every node runs an openraft instance; a log entry is a write command
//! with its execution environment, and every node applies committed entries through the same
//! engine path as a single server (the server implements [`Machine`]).
//!
//! Modules: [`types`] (what the log holds and openraft's type configuration), [`store`] (the
//! Raft log and the state machine adapter), [`disk`] (the durable log file and vote), [`net`] (the cluster port: Raft RPCs, forwarded
//! writes, formation handshakes), [`node`] (a running node: formation, writes, reads, status),
//! [`forward`] (writes a follower forwards to the leader, batched), [`discovery`] (seeds from DNS: SRV or A/AAAA records), [`membership`] (removing unreachable members, promoting learners, leaving, rejoining),
//! [`read`] (batched ReadIndex for linearizable reads), [`transfer`] (handing leadership to another voter), [`clock`] (the time carried in the log).
//!
//! This crate must not know how values are stored: it sees commands and reply bytes only.

pub mod clock;
pub mod discovery;
pub mod disk;
pub mod forward;
pub mod membership;
pub mod net;
pub mod node;
pub mod read;
pub mod store;
pub mod transfer;
pub mod types;

pub use membership::MemberStatus;
pub use node::{Cluster, ClusterConfig, WriteError};
pub use read::ReadError;
pub use types::{CommandRef, Fetch, Machine, Origin, Replies, Request, RequestBuilder};
