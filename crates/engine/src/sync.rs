//! All synchronisation primitives of the keyspace come from here, so that shard locking can be
//! swapped for a model-checked implementation in one place.

pub use parking_lot::{Mutex, MutexGuard};
