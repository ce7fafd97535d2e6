//! An in-process harness: run commands against a keyspace with a manual clock and get the
//! parsed reply, with no sockets. Used by table-driven tests and the determinism test.

use crate::effects::Effects;
use crate::exec::{execute, ExecOptions};
use crate::host::{Host, KillFilter};
use crate::session::Session;
use crate::stats::{LocalStats, Stats};
use engine::{Env, Keyspace};
use protocol::{parse_frame, Frame, ReplyWriter, Resp};

/// A host with fixed settings and no clients.
#[derive(Default)]
pub struct TestHost {
    /// Counters.
    pub stats: Stats,
    /// Blocked clients.
    pub waiters: crate::blocking::Waiters,
    /// Subscribers.
    pub pubsub: crate::pubsub::PubSub,
    /// Client-side caching (no client of this harness has a mailbox, so none tracks).
    pub tracking: crate::tracking::Tracking,
    /// `requirepass`.
    pub password: Option<Vec<u8>>,
}

impl Host for TestHost {
    fn stats(&self) -> &Stats {
        &self.stats
    }
    fn waiters(&self) -> &crate::blocking::Waiters {
        &self.waiters
    }
    fn pubsub(&self) -> &crate::pubsub::PubSub {
        &self.pubsub
    }
    fn tracking(&self) -> &crate::tracking::Tracking {
        &self.tracking
    }
    fn requirepass(&self) -> Option<Vec<u8>> {
        self.password.clone()
    }
    fn max_bulk_len(&self) -> u64 {
        512 << 20
    }
    fn lfu_policy(&self) -> bool {
        false
    }
    fn config_get(&self, _pattern: &[u8]) -> Vec<(String, String)> {
        Vec::new()
    }
    fn config_set(&self, _pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        Err("ERR CONFIG SET is not available in-process".into())
    }
    fn config_resetstat(&self) {}
    fn config_rewrite(&self) -> Result<(), String> {
        Err("ERR The server is running without a config file".into())
    }
    fn info(&self, _sections: &[String], _me: &Session) -> String {
        String::new()
    }
    fn client_list(&self, _me: &Session, _ids: Option<&[u64]>, _t: Option<&str>) -> String {
        String::new()
    }
    fn client_info(&self, _me: &Session) -> String {
        String::new()
    }
    fn client_kill(&self, _me: &Session, _f: &KillFilter) -> usize {
        0
    }
    fn client_pause(&self, _until_ms: i64, _write_only: bool) {}
    fn client_unpause(&self) {}
    fn shutdown(&self, _s: Option<bool>, _n: bool, _f: bool, _a: bool) -> Result<(), String> {
        Err("ERR not in-process".into())
    }
    fn set_active_expire(&self, _on: bool) {}
    fn unix_time_us(&self) -> i64 {
        0
    }
}

/// A keyspace, a session and a manual clock.
pub struct Harness {
    /// The keyspace.
    pub ks: Keyspace,
    /// The host.
    pub host: TestHost,
    /// The session.
    pub session: Session,
    /// Current time in Unix ms; advance it by hand.
    pub now_ms: i64,
    /// Seed of the next command.
    pub seed: u64,
    /// Effects of every command run so far.
    pub effects: Effects,
    /// Whether commands may remove what has expired (false: a cluster node's local read).
    pub may_expire: bool,
}

impl Harness {
    /// A fresh 16-database keyspace at time `now_ms`, recording effects.
    pub fn new(now_ms: i64) -> Harness {
        Harness {
            ks: Keyspace::new(16, 16, 42),
            host: TestHost::default(),
            session: Session::new(1, true),
            now_ms,
            seed: 1,
            effects: Effects::recording(),
            may_expire: true,
        }
    }

    /// Runs one command given as strings and returns its reply.
    pub fn run(&mut self, args: &[&str]) -> Frame {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.run_bytes(&argv)
    }

    /// Runs one command given as byte strings and returns its reply.
    pub fn run_bytes(&mut self, argv: &[&[u8]]) -> Frame {
        let mut out = ReplyWriter::new(self.session.resp);
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut env = Env::new(self.now_ms, self.seed);
        let mut local = LocalStats::default();
        execute(
            &self.ks,
            &self.host,
            &mut self.session,
            &mut env,
            argv,
            &mut out,
            &mut self.effects,
            &mut local,
            ExecOptions { may_expire: self.may_expire, ..ExecOptions::default() },
        );
        local.flush(&self.host.stats);
        if out.buf.is_empty() {
            return Frame::Null;
        }
        let (f, n) = parse_frame(&out.buf).expect("valid reply").expect("complete reply");
        assert_eq!(n, out.buf.len(), "one reply per command");
        f
    }

    /// Switches the session to RESP3.
    pub fn resp3(&mut self) {
        self.session.resp = Resp::V3;
    }
}

/// A status reply, for comparisons.
pub fn simple(s: &str) -> Frame {
    Frame::Simple(s.as_bytes().to_vec())
}

/// A bulk reply, for comparisons.
pub fn bulk(s: &str) -> Frame {
    Frame::Bulk(s.as_bytes().to_vec())
}

/// An error reply, for comparisons.
pub fn error(s: &str) -> Frame {
    Frame::Error(s.as_bytes().to_vec())
}
