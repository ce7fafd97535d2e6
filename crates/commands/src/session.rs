//! Per-connection state that commands read and change (selected database, protocol version,
//! name, authentication, reply mode). Plain data: the server owns the socket.

use crate::pubsub::{Mailbox, Subscriptions};
use crate::table::Command;
use protocol::Resp;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A transaction being queued (between `MULTI` and `EXEC`). The arguments of every queued
/// command sit in one buffer, so queueing allocates nothing per argument; each command is kept
/// with its table entry, resolved when it was queued.
#[derive(Clone, Default)]
pub struct Multi {
    /// Every argument's bytes, one after another.
    bytes: Vec<u8>,
    /// Every argument's end offset in `bytes`.
    ends: Vec<usize>,
    /// Per queued command: its table entry and the index in `ends` of its last argument + 1.
    commands: Vec<(&'static Command, usize)>,
    /// Set when a command was refused while queueing: `EXEC` replies `EXECABORT`.
    pub aborted: bool,
    /// The union of the queued commands' flags (Redis's `mstate.cmd_flags`): `EXEC` counts as
    /// a write, or as a command that may replicate, when one of them is.
    flags: crate::spec::Flags,
}

impl std::fmt::Debug for Multi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multi").field("queued", &self.len()).field("aborted", &self.aborted).finish()
    }
}

impl Multi {
    /// Queues a command.
    pub fn push(&mut self, cmd: &'static Command, argv: &[&[u8]]) {
        for a in argv {
            self.bytes.extend_from_slice(a);
            self.ends.push(self.bytes.len());
        }
        self.commands.push((cmd, self.ends.len()));
        self.flags = self.flags | cmd.spec.flags;
    }

    /// Empties it for the next transaction, keeping its buffers unless they grew large.
    pub fn recycle(mut self: Box<Self>) -> Option<Box<Self>> {
        if self.bytes.capacity() > 64 * 1024 || self.ends.capacity() > 4096 {
            return None;
        }
        self.bytes.clear();
        self.ends.clear();
        self.commands.clear();
        self.aborted = false;
        self.flags = crate::spec::Flags::default();
        Some(self)
    }

    /// The union of the queued commands' flags.
    pub fn queued_flags(&self) -> crate::spec::Flags {
        self.flags
    }

    /// Number of commands queued.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The queued commands with their arguments, in order.
    pub fn commands(&self) -> impl Iterator<Item = (&'static Command, smallvec::SmallVec<[&[u8]; 8]>)> + '_ {
        let mut first = 0;
        self.commands.iter().map(move |&(cmd, end)| {
            let argv = (first..end)
                .map(|i| {
                    let start = if i == 0 { 0 } else { self.ends[i - 1] };
                    &self.bytes[start..self.ends[i]]
                })
                .collect();
            first = end;
            (cmd, argv)
        })
    }
}

/// A key this client `WATCH`es.
#[derive(Clone, Debug)]
pub struct WatchedKey {
    /// Its database.
    pub db: usize,
    /// The key.
    pub key: Vec<u8>,
    /// The key was stored but its time had run out when watched (see
    /// `engine::watched::WatchedKeys::touch`).
    pub expired: bool,
    /// In a cluster: the key's version when watched (`commands::family::transactions`),
    /// which every node compares when it applies the `EXEC`.
    pub version: Option<Vec<u8>>,
}

/// `CLIENT REPLY` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent.
    On,
    /// No replies are sent.
    Off,
    /// The reply of the next command is dropped.
    SkipNext,
    /// The reply of the current command is dropped (set from `SkipNext` when it starts).
    Skip,
}

/// How up to date a read in a cluster must be (`read-consistency`, `TANDEM CONSISTENCY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Sees every write acknowledged before the read began, on any node (ReadIndex).
    Linearizable,
    /// Sees at least this connection's own writes.
    Session,
    /// Whatever this node has applied.
    Stale,
}

impl ReadConsistency {
    /// Every level, by name.
    pub const ALL: [(ReadConsistency, &'static str); 3] = [
        (ReadConsistency::Linearizable, "linearizable"),
        (ReadConsistency::Session, "session"),
        (ReadConsistency::Stale, "stale"),
    ];

    /// The level named `name` (any case).
    pub fn parse(name: &[u8]) -> Option<ReadConsistency> {
        Self::ALL.iter().find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(name)).map(|(l, _)| *l)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(l, _)| *l == self).map(|(_, n)| *n).unwrap_or("linearizable")
    }
}

/// The state of one client connection.
#[derive(Clone, Debug)]
pub struct Session {
    /// Unique, increasing client id.
    pub id: u64,
    /// Selected database.
    pub db: usize,
    /// Protocol version.
    pub resp: Resp,
    /// Connection name (`CLIENT SETNAME`).
    pub name: Vec<u8>,
    /// True once authenticated (or when no password is required).
    pub authenticated: bool,
    /// Reply mode.
    pub reply_mode: ReplyMode,
    /// `CLIENT NO-EVICT`.
    pub no_evict: bool,
    /// `CLIENT NO-TOUCH`: reads do not change a key's access time.
    pub no_touch: bool,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Vec<u8>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Vec<u8>,
    /// Set by `QUIT` (and protocol errors): close once the pending replies are written.
    pub close_after_reply: bool,
    /// Name of the last command run (for `CLIENT LIST`'s `cmd=`).
    pub last_cmd: &'static str,
    /// Set by `WAIT` asking for replicas: hold the reply this many milliseconds (0 = forever).
    pub wait_ms: Option<i64>,
    /// `TANDEM CONSISTENCY`: this connection's read level (None = the `read-consistency`
    /// setting).
    pub read_consistency: Option<ReadConsistency>,
    /// The transaction being queued, if `MULTI` was called.
    pub multi: Option<Box<Multi>>,
    /// The last transaction's buffers, emptied, for the next `MULTI` (no allocation per
    /// transaction).
    pub spare_multi: Option<Box<Multi>>,
    /// The keys `WATCH`ed, in order.
    pub watched: Vec<WatchedKey>,
    /// Set when a watched key changed (shared with the shards' watch tables): `EXEC` fails.
    /// Made by the first `WATCH`, dropped by `UNWATCH`, `EXEC` and `DISCARD`.
    pub watch_dirty: Option<Arc<AtomicBool>>,
    /// Where messages for this client wait (a connection's session has one; replay sessions
    /// do not, and cannot subscribe).
    pub mailbox: Option<Arc<Mailbox>>,
    /// Channels, patterns and shard channels subscribed to (None: never subscribed).
    pub subs: Option<Box<Subscriptions>>,
    /// `MONITOR`ing: sees every command; may not run commands that touch keys.
    pub monitor: bool,
    /// `CLIENT TRACKING ON`: how this client tracks (shared with the tracking registry).
    pub tracking: Option<Arc<crate::tracking::Tracker>>,
    /// `CLIENT CACHING yes|no` applies to the next command (or the next transaction).
    pub caching: bool,
    /// Bytes the connection writes after the current command's reply (invalidations of keys
    /// the client itself changed, as Redis sends them), whatever its reply mode.
    pub after_reply: Vec<u8>,
    /// Bytes of the mailbox that arrived before the last command released its locks: they
    /// go before its reply, the rest after (an invalidation sent after a read must follow
    /// the read's reply, or the client would cache a value already stale).
    pub mail_mark: usize,
}

impl Session {
    /// A fresh session; `authenticated` is true when no password is configured.
    pub fn new(id: u64, authenticated: bool) -> Session {
        Session {
            id,
            db: 0,
            resp: Resp::V2,
            name: Vec::new(),
            authenticated,
            reply_mode: ReplyMode::On,
            no_evict: false,
            no_touch: false,
            lib_name: Vec::new(),
            lib_ver: Vec::new(),
            close_after_reply: false,
            last_cmd: "NULL",
            wait_ms: None,
            read_consistency: None,
            multi: None,
            spare_multi: None,
            watched: Vec::new(),
            watch_dirty: None,
            mailbox: None,
            subs: None,
            monitor: false,
            tracking: None,
            caching: false,
            after_reply: Vec::new(),
            mail_mark: usize::MAX,
        }
    }

    /// After each command: `CLIENT CACHING` lasts for one command, or for a whole
    /// transaction, and `CLIENT` subcommands in between do not use it up (as in Redis).
    #[inline]
    pub fn command_done(&mut self, name: &[u8]) {
        if self.caching && self.multi.is_none() && !name.eq_ignore_ascii_case(b"client") {
            self.caching = false;
        }
    }

    /// Subscribed to anything: a RESP2 connection then only takes the pub/sub commands.
    #[inline]
    pub fn subscribed(&self) -> bool {
        self.subs.as_ref().is_some_and(|s| s.total() > 0)
    }
}
