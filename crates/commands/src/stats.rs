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
    /// Error replies sent.
    pub error_replies: AtomicU64,
    /// Error replies by their first word (`ERR`, `WRONGTYPE`, ...), for `INFO errorstats`.
    pub errors_by_code: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Stats {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one error reply with this text (its first word is the error code).
    pub fn record_error(&self, text: &[u8]) {
        Stats::add(&self.error_replies, 1);
        let code = text.split(|&c| c == b' ').next().unwrap_or(b"ERR");
        let code = String::from_utf8_lossy(&code[..code.len().min(128)]).into_owned();
        *self.errors_by_code.lock().entry(code).or_insert(0) += 1;
    }

    /// Reads a counter.
    #[inline]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
