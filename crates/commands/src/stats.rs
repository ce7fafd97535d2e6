//! Server-wide counters that commands update (`INFO stats`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every connection.
#[derive(Debug, Default)]
pub struct Stats {
    /// Successful key lookups on reads.
    pub keyspace_hits: AtomicU64,
    /// Failed key lookups on reads.
    pub keyspace_misses: AtomicU64,
    /// Keys removed because their time to live ran out.
    pub expired_keys: AtomicU64,
    /// Changes to the dataset (Redis's `server.dirty`).
    pub dirty: AtomicU64,
    /// Commands processed.
    pub total_commands: AtomicU64,
}

impl Stats {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    #[inline]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
