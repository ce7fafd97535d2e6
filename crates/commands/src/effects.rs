//! Effects: the normalised write commands a command execution produced, which persistence
//! (AOF) and replication (Raft) log instead of the original request.
//!
//! Relative times are made absolute (`EXPIRE k 10` → `PEXPIREAT k <abs>`), keys removed by
//! expiry appear as `DEL`, and commands that changed nothing produce nothing, as in Redis's
//! propagation.

/// One logged write: a database, the time it ran at, and an argument vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Database the command runs in.
    pub db: usize,
    /// The execution time of the command that produced it (replays run at this time).
    pub now_ms: i64,
    /// The normalised command.
    pub argv: Vec<Vec<u8>>,
}

/// Effects collected while executing commands.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    /// When false nothing is recorded (nobody consumes effects), saving the copies.
    pub enabled: bool,
    /// Recorded effects, in order.
    pub list: Vec<Effect>,
    /// The end position in the server's log (`Host::log_effects`) of the last effect this
    /// recorder handed to it: the caller must see the log durable up to here before replying.
    pub logged_upto: u64,
}

impl Effects {
    /// A recorder that keeps effects.
    pub fn recording() -> Effects {
        Effects { enabled: true, list: Vec::new(), logged_upto: 0 }
    }

    /// Records an effect if recording is enabled.
    pub fn push(&mut self, db: usize, now_ms: i64, argv: Vec<Vec<u8>>) {
        if self.enabled {
            self.list.push(Effect { db, now_ms, argv });
        }
    }
}
