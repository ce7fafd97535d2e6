//! The cluster's clock: the time carried in the log. The leader stamps every write entry with
//! its time, every node applies it at that time, and every node reads at the time of the last
//! entry it applied plus the (monotonic) time since. So nodes whose wall clocks disagree still
//! agree on what has expired, and a node's own clock only matters while it leads.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock in Unix milliseconds.
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// No entry applied yet.
const UNSET: i64 = i64::MIN;

/// The time of the log as this node has seen it. Read for every cluster read, so it is one
/// atomic: the log's time minus this process's monotonic clock at the latest entry applied.
/// Keeping the largest such offset is what "never goes back" means.
pub struct LogClock {
    start: Instant,
    offset: AtomicI64,
}

impl Default for LogClock {
    fn default() -> Self {
        LogClock { start: Instant::now(), offset: AtomicI64::new(UNSET) }
    }
}

impl LogClock {
    fn mono_ms(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }

    /// Records that an entry stamped `ms` was applied now. The clock never goes back: an entry
    /// stamped earlier than the current reading leaves it as it is.
    pub fn observe(&self, ms: i64) {
        self.offset.fetch_max(ms - self.mono_ms(), Ordering::Relaxed);
    }

    /// The log's time now: the last entry's time plus the time since it applied; the wall
    /// clock until an entry has applied.
    pub fn now_ms(&self) -> i64 {
        match self.offset.load(Ordering::Relaxed) {
            UNSET => wall_ms(),
            offset => self.mono_ms() + offset,
        }
    }

    /// The time a leader stamps on an entry: its wall clock, but never before the log's time
    /// (a leader whose clock is behind its predecessor's carries the log's time on instead).
    pub fn stamp_ms(&self) -> i64 {
        wall_ms().max(self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_log_not_the_wall_clock() {
        let c = LogClock::default();
        let wall = wall_ms();
        assert!((c.now_ms() - wall).abs() < 1000);
        // An entry from a leader three days behind: reads follow it.
        let behind = wall - 3 * 86_400_000;
        c.observe(behind);
        assert!((c.now_ms() - behind).abs() < 1000);
        // Stamps never go back before the log's time; a wall clock ahead of it wins.
        assert!(c.stamp_ms() >= wall);
        let ahead = wall + 3 * 86_400_000;
        c.observe(ahead);
        assert!(c.stamp_ms() >= ahead);
        // An older entry applied later does not turn the clock back.
        c.observe(behind);
        assert!(c.now_ms() >= ahead);
    }
}
