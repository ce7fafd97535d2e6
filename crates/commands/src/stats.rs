//! Server-wide counters that commands update (`INFO stats`).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Counters shared by every connection.
#[derive(Debug, Default)]
pub struct Stats {
    /// Successful key lookups on reads.
    pub keyspace_hits: AtomicU64,
    /// Failed key lookups on reads.
    pub keyspace_misses: AtomicU64,
    /// Keys removed because their time to live ran out.
    pub expired_keys: AtomicU64,
    /// Hash fields removed because their time to live ran out (Redis 7.4's `expired_subkeys`).
    pub expired_subkeys: AtomicU64,
    /// Changes to the dataset (Redis's `server.dirty`).
    pub dirty: AtomicU64,
    /// Commands processed.
    pub total_commands: AtomicU64,
    /// Error replies sent.
    pub error_replies: AtomicU64,
    /// Error replies by their first word (`ERR`, `WRONGTYPE`, ...), for `INFO errorstats`.
    pub errors_by_code: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Server states that refuse commands (see [`Gate`]), as bits. Kept here because every
    /// command already reaches `Stats`; one relaxed load per command when nothing is set.
    pub gates: AtomicU8,
}

/// A server state in which commands are refused before they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Gate {
    /// A dataset is loading: commands without the `loading` flag get `-LOADING`.
    Loading = 1,
    /// The last background save failed and `stop-writes-on-bgsave-error` is on: writes (and
    /// `PING`, as in Redis) get `-MISCONF`.
    Misconf = 2,
    /// Writing or syncing the AOF failed: writes (and `PING`) get `-MISCONF` naming the error
    /// until a write succeeds again.
    AofError = 4,
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

    /// Opens or closes a gate.
    pub fn set_gate(&self, gate: Gate, closed: bool) {
        if closed {
            self.gates.fetch_or(gate as u8, Ordering::SeqCst);
        } else {
            self.gates.fetch_and(!(gate as u8), Ordering::SeqCst);
        }
    }

    /// True if the gate is closed.
    pub fn gate(&self, gate: Gate) -> bool {
        self.gates.load(Ordering::Relaxed) & gate as u8 != 0
    }
}

/// Counters of one connection, added up without atomics on the hot path and flushed into the
/// shared [`Stats`] once per batch of pipelined commands (and before any command that reads
/// them), so worker threads do not bounce shared cache lines for every command.
#[derive(Default)]
pub struct LocalStats {
    /// See [`Stats::keyspace_hits`].
    pub keyspace_hits: u64,
    /// See [`Stats::keyspace_misses`].
    pub keyspace_misses: u64,
    /// See [`Stats::expired_keys`].
    pub expired_keys: u64,
    /// See [`Stats::expired_subkeys`].
    pub expired_subkeys: u64,
    /// See [`Stats::dirty`].
    pub dirty: u64,
    /// See [`Stats::total_commands`].
    pub total_commands: u64,
    /// Per command: calls, microseconds, rejected, failed.
    commands: Vec<(&'static crate::table::Command, [u64; 4])>,
}

impl LocalStats {
    fn slot(&mut self, cmd: &'static crate::table::Command) -> &mut [u64; 4] {
        let i = match self.commands.iter().position(|(c, _)| std::ptr::eq(*c, cmd)) {
            Some(i) => i,
            None => {
                self.commands.push((cmd, [0; 4]));
                self.commands.len() - 1
            }
        };
        &mut self.commands[i].1
    }

    /// Counts a completed call and its duration.
    pub fn call(&mut self, cmd: &'static crate::table::Command, usec: u64) {
        let s = self.slot(cmd);
        s[0] += 1;
        s[1] += usec;
    }

    /// Counts a refused call.
    pub fn rejected(&mut self, cmd: &'static crate::table::Command) {
        self.slot(cmd)[2] += 1;
    }

    /// Counts a call that replied with an error.
    pub fn failed(&mut self, cmd: &'static crate::table::Command) {
        self.slot(cmd)[3] += 1;
    }

    /// Adds everything to the shared counters and starts from zero.
    pub fn flush(&mut self, shared: &Stats) {
        for (counter, v) in [
            (&shared.keyspace_hits, &mut self.keyspace_hits),
            (&shared.keyspace_misses, &mut self.keyspace_misses),
            (&shared.expired_keys, &mut self.expired_keys),
            (&shared.expired_subkeys, &mut self.expired_subkeys),
            (&shared.dirty, &mut self.dirty),
            (&shared.total_commands, &mut self.total_commands),
        ] {
            if *v > 0 {
                Stats::add(counter, *v);
                *v = 0;
            }
        }
        for (cmd, [calls, usec, rejected, failed]) in self.commands.drain(..) {
            let st = &cmd.stats;
            for (counter, v) in
                [(&st.calls, calls), (&st.usec, usec), (&st.rejected_calls, rejected), (&st.failed_calls, failed)]
            {
                if v > 0 {
                    Stats::add(counter, v);
                }
            }
        }
    }
}
