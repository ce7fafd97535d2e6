//! Persistence in Redis's own formats, so that data moves both ways between Tandem and Redis.
//!
//! * [`rdb_file`]: the RDB file format (header, aux fields, databases, expiry records, values,
//!   EOF and CRC-64): a streaming loader that reports every item to a visitor, and the writer
//!   pieces a snapshot is assembled from.
//! * [`snapshot`]: fork-less point-in-time snapshots written shard by shard as RDB files.
//! * [`load`]: an RDB file into the keyspace.
//! * [`aof`]: Redis 7's multi-part append-only file: the manifest, reading command streams
//!   (with truncated-tail detection), and encoding logged effects.
//!
//! This crate knows files, not sockets: the server decides when to save and what to reply.

pub mod aof;
pub mod load;
pub mod rdb_file;
pub mod snapshot;
