//! The registry of connected clients, for `CLIENT LIST/INFO/KILL`, `INFO clients` and
//! `maxclients`. Each connection publishes a small snapshot of its state after every command;
//! kills are delivered through a notifier the connection waits on.

use commands::host::KillFilter;
use commands::Session;
use parking_lot::Mutex;
use protocol::Resp;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What `CLIENT LIST` shows of a connection, refreshed by the connection itself.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Connection name.
    pub name: String,
    /// Selected database.
    pub db: usize,
    /// Last command (a name from the command table).
    pub cmd: &'static str,
    /// Protocol version.
    pub resp: u8,
    /// Library name.
    pub lib_name: String,
    /// Library version.
    pub lib_ver: String,
    /// Bytes waiting in the query buffer.
    pub qbuf: usize,
    /// Output buffer length.
    pub omem: usize,
    /// Flags (`N` normal).
    pub flags: String,
    /// Commands queued in a transaction (-1 outside `MULTI`).
    pub multi: i64,
    /// Channels, patterns and shard channels subscribed to.
    pub subs: (usize, usize, usize),
    /// `CLIENT TRACKING`'s redirect (-1: not tracking, 0: none).
    pub redir: i64,
}

/// One connected client.
pub struct Client {
    /// Client id.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// File descriptor number (for `fd=`).
    pub fd: i64,
    /// Connection time, Unix ms.
    pub created_ms: i64,
    /// Last interaction, Unix ms.
    pub last_ms: AtomicU64,
    /// Published state.
    pub snapshot: Mutex<Snapshot>,
    /// Set when the client must close.
    pub killed: AtomicBool,
    /// Wakes the connection when killed.
    pub kill_notify: commands::signal::Signal,
    /// Where messages for it wait (set once its session exists): pub/sub and invalidations
    /// redirected to it.
    pub mailbox: std::sync::OnceLock<Arc<commands::pubsub::Mailbox>>,
}

/// Whether two names are equal, without a call for the empty ones.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

impl Client {
    /// Publishes the session's state after a command.
    pub fn publish(&self, s: &Session, now_ms: i64, qbuf: usize) {
        self.last_ms.store(now_ms as u64, Ordering::Relaxed);
        let mut snap = self.snapshot.lock();
        // (Called after every batch: the names are compared without calling `memcmp` when
        // they are empty, as they usually are; that call was 2% of an `LPOP -P 16` profile.)
        snap.db = s.db;
        snap.cmd = s.last_cmd;
        if !same(snap.name.as_bytes(), &s.name) {
            snap.name = String::from_utf8_lossy(&s.name).into_owned();
        }
        snap.resp = if s.resp == Resp::V3 { 3 } else { 2 };
        if !same(snap.lib_name.as_bytes(), &s.lib_name) {
            snap.lib_name = String::from_utf8_lossy(&s.lib_name).into_owned();
        }
        if !same(snap.lib_ver.as_bytes(), &s.lib_ver) {
            snap.lib_ver = String::from_utf8_lossy(&s.lib_ver).into_owned();
        }
        snap.qbuf = qbuf;
        snap.multi = s.multi.as_ref().map_or(-1, |m| m.len() as i64);
        snap.subs = s.subs.as_ref().map_or((0, 0, 0), |s| (s.channels.len(), s.patterns.len(), s.shard.len()));
        // Redis's letters in its order: monitor, pub/sub, transaction, tracking, broken
        // redirect, broadcast tracking (`b` for blocked is set apart).
        let mut buf = [0u8; 8];
        let mut n = 0;
        let mut flag = |on: bool, c: u8| {
            if on {
                buf[n] = c;
                n += 1;
            }
        };
        flag(s.monitor, b'O');
        flag(s.subscribed(), b'P');
        flag(s.multi.is_some(), b'x');
        if let Some(t) = s.tracking.as_deref() {
            flag(true, b't');
            flag(t.broken.load(Ordering::Relaxed), b'R');
            flag(t.bcast, b'B');
        }
        if n == 0 {
            buf[0] = b'N';
            n = 1;
        }
        let flags = std::str::from_utf8(&buf[..n]).unwrap_or("N");
        if !same(snap.flags.as_bytes(), flags.as_bytes()) && snap.flags != "b" {
            snap.flags = flags.into();
        }
        snap.redir = s.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
    }

    /// Sets the flags `CLIENT LIST` shows (`b` while blocked, `N` otherwise).
    pub fn set_flags(&self, flags: &str) {
        let mut snap = self.snapshot.lock();
        if snap.flags != flags {
            snap.flags = flags.into();
        }
    }

    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.kill_notify.notify();
    }

    /// The `CLIENT LIST` line (without trailing newline).
    pub fn line(&self, now_ms: i64) -> String {
        let s = self.snapshot.lock().clone();
        let age = (now_ms - self.created_ms).max(0) / 1000;
        let idle = (now_ms - self.last_ms.load(Ordering::Relaxed) as i64).max(0) / 1000;
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem=0 events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
            self.id, self.addr, self.laddr, self.fd, s.name, age, idle, s.flags, s.db, s.subs.0, s.subs.1, s.subs.2, s.multi, s.qbuf, s.omem, s.cmd, s.redir, s.resp, s.lib_name, s.lib_ver
        )
    }
}

/// All connected clients.
#[derive(Default)]
pub struct Clients {
    map: Mutex<BTreeMap<u64, Arc<Client>>>,
    next_id: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections refused because of `maxclients`.
    pub rejected_connections: AtomicU64,
}

impl Clients {
    /// A new client id (ids start at 1 and only grow).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a client.
    pub fn add(&self, c: Arc<Client>) {
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        self.map.lock().insert(c.id, c);
    }

    /// Unregisters a client.
    pub fn remove(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when nobody is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A client by id.
    pub fn get(&self, id: u64) -> Option<Arc<Client>> {
        self.map.lock().get(&id).cloned()
    }

    /// Every client, by id.
    pub fn all(&self) -> Vec<Arc<Client>> {
        self.map.lock().values().filter(|c| !c.killed.load(Ordering::Relaxed)).cloned().collect()
    }

    /// `CLIENT KILL` with filters; returns how many were killed.
    pub fn kill(&self, me: u64, f: &KillFilter, now_ms: i64) -> usize {
        let mut n = 0;
        for c in self.all() {
            if f.skip_me && c.id == me {
                continue;
            }
            // A killed client is gone as far as commands can tell, even before its task ends.
            if c.killed.load(Ordering::SeqCst) {
                continue;
            }
            if f.id.is_some_and(|id| id != c.id) {
                continue;
            }
            if f.addr.as_ref().is_some_and(|a| *a != c.addr.to_string()) {
                continue;
            }
            if f.laddr.as_ref().is_some_and(|a| *a != c.laddr.to_string()) {
                continue;
            }
            if let Some(t) = &f.client_type {
                let pubsub = c.snapshot.lock().subs != (0, 0, 0);
                if (t == "pubsub") != pubsub || !matches!(t.as_str(), "normal" | "pubsub") {
                    continue;
                }
            }
            if f.user.as_ref().is_some_and(|u| u != "default") {
                continue;
            }
            if f.max_age.is_some_and(|m| (now_ms - c.created_ms) / 1000 < m) {
                continue;
            }
            c.kill();
            n += 1;
        }
        n
    }
}
