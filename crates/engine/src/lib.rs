//! Tandem's keyspace engine: databases split into shards of keys, the values stored under
//! them and their compact encodings, the expiry index and the active expiry step, the dataset
//! digest, and the RDB value serialization shared by `DUMP`/`RESTORE` and persistence.
//!
//! Main types: [`Keyspace`] (shards behind locks), [`Db`] (one database's share of a shard),
//! [`Value`], [`Env`] (time and randomness handed in from outside).
//!
//! This crate must not know about sockets, clocks, threads or Raft: time comes only from
//! [`Env`], and the caller decides where keys are locked and what gets logged.

pub mod blocked;
pub mod dict;
pub mod digest;
pub mod env;
pub mod expire;
pub mod glob;
pub mod hash;
pub mod intset;
pub mod keyspace;
pub mod limits;
pub mod list;
pub mod listpack;
pub mod num;
pub mod ostree;
pub mod rdb;
pub mod set;
pub mod small;
pub mod sync;
pub mod tracked;
pub mod value;
pub mod watched;
pub mod zset;

pub use env::{Env, Rng};
pub use keyspace::{Db, Entry, Fetch, Keyspace, Shard};
pub use limits::Limits;
pub use value::{Str, Value, ValueType};
pub use {hash::Hash, list::List, set::Set, zset::ZSet};
