//! `CLIENT PAUSE`: holds commands until a deadline or `CLIENT UNPAUSE`, without polling.

use crate::connection::unix_ms;
use commands::spec::Flags;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Pause state shared by connections.
#[derive(Default)]
pub struct Pause {
    until_ms: AtomicI64,
    write_only: AtomicBool,
    changed: Notify,
}

impl Pause {
    /// Pauses until `until_ms`; `write_only` pauses only commands that may write.
    pub fn set(&self, until_ms: i64, write_only: bool) {
        self.write_only.store(write_only, Ordering::SeqCst);
        self.until_ms.store(until_ms, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Ends any pause.
    pub fn clear(&self) {
        self.until_ms.store(0, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// True while a pause is in force.
    #[inline]
    pub fn is_active(&self) -> bool {
        // The common case (never paused) must not read the clock.
        let until = self.until_ms.load(Ordering::Relaxed);
        until != 0 && until > unix_ms()
    }

    /// True if the pause holds this request (all commands, or writes in WRITE mode; `EXEC`
    /// counts as one when its transaction queued one: `queued`, the queued commands' flags).
    pub fn covers(&self, argv: &[&[u8]], queued: Flags) -> bool {
        let Ok(cmd) = commands::exec::resolve(argv) else {
            return false;
        };
        // Unpausing must always get through.
        if cmd.spec.name == "client|unpause" {
            return false;
        }
        if !self.write_only.load(Ordering::Relaxed) {
            return true;
        }
        cmd.spec.flags.has(Flags::WRITE)
            || cmd.spec.flags.has(Flags::MAY_REPLICATE)
            || (cmd.spec.name == "exec" && queued.has_any(Flags::WRITE | Flags::MAY_REPLICATE))
    }

    /// Waits until the pause ends (deadline or unpause).
    pub async fn wait(&self) {
        loop {
            // Made before the deadline is read: `notify_waiters` reaches a future made before
            // it, so an unpause between the read and the wait is not missed.
            let notified = self.changed.notified();
            let until = self.until_ms.load(Ordering::SeqCst);
            let now = unix_ms();
            if until <= now {
                return;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis((until - now) as u64)) => {}
            }
        }
    }
}
