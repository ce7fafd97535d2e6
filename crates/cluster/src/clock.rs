//! The cluster's clock: the time carried in the log. The leader stamps every write entry with
//! its time, every node applies it at that time, and every node reads at the time of the last
//! entry it applied plus the (monotonic) time since. So nodes whose wall clocks disagree still
//! agree on what has expired, and a node's own clock only matters while it leads.

use parking_lot::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock in Unix milliseconds.
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The time of the log as this node has seen it.
#[derive(Default)]
pub struct LogClock {
    /// The latest entry time applied here, and when (monotonic) it was applied.
    base: Mutex<Option<(i64, Instant)>>,
}

impl LogClock {
    /// Records that an entry stamped `ms` was applied now. The clock never goes back: an entry
    /// stamped earlier than the current reading leaves it as it is.
    pub fn observe(&self, ms: i64) {
        let now = Instant::now();
        let mut base = self.base.lock();
        let current = base.map(|(b, at)| b + now.duration_since(at).as_millis() as i64);
        if current.is_none_or(|c| ms > c) {
            *base = Some((ms, now));
        }
    }

    /// The log's time now: the last entry's time plus the time since it applied; the wall
    /// clock until an entry has applied.
    pub fn now_ms(&self) -> i64 {
        match *self.base.lock() {
            Some((ms, at)) => ms + at.elapsed().as_millis() as i64,
            None => wall_ms(),
        }
    }

    /// The time a leader stamps on an entry: its wall clock, but never before the log's time
    /// (a leader whose clock is behind its predecessor's carries the log's time on instead).
    pub fn stamp_ms(&self) -> i64 {
        let wall = wall_ms();
        match *self.base.lock() {
            Some((ms, at)) => wall.max(ms + at.elapsed().as_millis() as i64),
            None => wall,
        }
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
