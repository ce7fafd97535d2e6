//! Blocking commands (`BLPOP`, `BRPOP`, `BRPOPLPUSH`, `BLMOVE`, `BLMPOP`, `BZPOPMIN`,
//! `BZPOPMAX`, `BZMPOP`): who waits for what,
//! and serving them when a key they wait on receives a value.
//!
//! A blocked client is a [`Waiter`] in the server-wide [`Waiters`] registry, and its id sits in
//! the queue of every key it waits on, in that key's shard (`engine::blocked`). A command
//! blocks under its own shard locks, right after finding every key empty, so no push can slip
//! in between. A command that stores a list under a key someone waits on records the key as
//! *ready* (`Store::set_in`); before that command releases its locks, the executor serves the
//! key's waiters first come, first served ([`serve_ready`]): it pops for them as Redis serves
//! blocked clients before any other command sees the key, logs each served pop right after
//! the push, and hands each waiter its reply, which its own connection then sends.
//!
//! Two cases wake the waiter's connection instead (a *poke*), and it runs its command again
//! itself, keeping its place in the queues: a `BLMOVE` whose destination lies in a shard the
//! pushing command could not take without waiting, and every waiter in a cluster, where a
//! node may not pop on its own (every node must apply the same changes): there the waiting
//! connection proposes its command again through the log.

use crate::ctx::Ctx;
use engine::list::End;
use engine::Keyspace;
use parking_lot::Mutex;
use protocol::Resp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// What a blocked command does once a key it waits on holds a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// `BLPOP` / `BRPOP`: one element from that end.
    Pop(End),
    /// `BLMPOP`: up to `count` elements from that end.
    Mpop {
        /// Which end.
        end: End,
        /// How many at most.
        count: usize,
    },
    /// `BLMOVE` / `BRPOPLPUSH`: one element moved to `dst`.
    Move {
        /// The destination list.
        dst: Vec<u8>,
        /// Where it leaves the source.
        from: End,
        /// Where it enters the destination.
        to: End,
        /// Logged as `RPOPLPUSH` (else `LMOVE`).
        rpoplpush: bool,
    },
    /// `BZPOPMIN` / `BZPOPMAX` (no count) and `BZMPOP` (a count): the lowest or highest
    /// scores.
    ZPop {
        /// Highest scores (`MAX`).
        max: bool,
        /// `BZMPOP`'s count.
        count: Option<usize>,
    },
}

impl BlockKind {
    /// The type of value that serves this command: a sorted set for the `BZ` pops, else a
    /// list. A key that receives the other type leaves the client waiting.
    pub fn wants(&self) -> engine::ValueType {
        match self {
            BlockKind::ZPop { .. } => engine::ValueType::ZSet,
            _ => engine::ValueType::List,
        }
    }

    /// Runs the command for a waiter now that `key` holds the value it wants, replying in
    /// `ctx` as the command would have had the value been there when it ran.
    fn serve(&self, ctx: &mut Ctx, key: &[u8]) -> crate::errors::CmdResult {
        match self {
            BlockKind::ZPop { max, count } => crate::family::zsets::serve_blocked(ctx, key, *max, *count),
            _ => crate::family::lists::serve_blocked(ctx, key, self),
        }
    }

    /// The reply of this command when it cannot block (inside `MULTI`, in a script, applied
    /// from a log) and nothing was there: a null bulk for the moves, a null array otherwise.
    pub fn reply_unblocked_empty(&self, out: &mut protocol::ReplyWriter) {
        match self {
            BlockKind::Move { .. } => out.null(),
            _ => out.null_array(),
        }
    }
}

/// How a waiter ended up.
#[derive(Debug)]
enum State {
    /// Blocked.
    Waiting,
    /// A command is popping for it right now; its reply follows.
    Claimed,
    /// Served: the reply bytes and the log position its pop was written at.
    Served(Vec<u8>, u64),
    /// Its time ran out.
    TimedOut,
    /// `CLIENT UNBLOCK` (`true`: with the `UNBLOCKED` error).
    Unblocked(bool),
    /// Its connection went away.
    Cancelled,
}

/// Why a waiting connection woke.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// Still blocked (a spurious notification).
    Waiting,
    /// A pop ran for it: send this reply once the log is written up to the position.
    Served(Vec<u8>, u64),
    /// Timed out.
    TimedOut,
    /// `CLIENT UNBLOCK`; `true` with the error.
    Unblocked(bool),
    /// A key it waits on received a value it must fetch itself (see the module comment).
    Poked,
}

/// One blocked client.
#[derive(Debug)]
pub struct Waiter {
    /// The client's id.
    pub id: u64,
    /// The database of its keys.
    pub db: usize,
    /// The protocol of its connection (its reply is encoded in it).
    pub resp: Resp,
    /// The keys it waits on, each once.
    pub keys: Vec<Vec<u8>>,
    /// What it does when served.
    pub kind: BlockKind,
    /// When it times out (Unix ms; 0 = never).
    pub deadline_ms: i64,
    /// Woken to run its command again rather than served in place (a cluster node).
    pub poke_only: bool,
    state: Mutex<State>,
    poked: AtomicBool,
    /// Its command has run and found nothing to take, so it counts as blocked (`INFO
    /// blocked_clients`). A cluster node registers a waiter before the command's first run
    /// through the log, so as to miss no entry, and sets this once that run comes back empty.
    found_nothing: AtomicBool,
    /// Signalled on every change of state and on pokes.
    pub notify: Notify,
}

impl Waiter {
    /// A new waiter on `keys` (duplicates are dropped).
    pub fn new(
        id: u64,
        db: usize,
        resp: Resp,
        keys: &[&[u8]],
        kind: BlockKind,
        deadline_ms: i64,
        poke_only: bool,
    ) -> Waiter {
        let mut unique: Vec<Vec<u8>> = Vec::with_capacity(keys.len());
        for k in keys {
            if !unique.iter().any(|u| u == k) {
                unique.push(k.to_vec());
            }
        }
        Waiter {
            id,
            db,
            resp,
            keys: unique,
            kind,
            deadline_ms,
            poke_only,
            state: Mutex::new(State::Waiting),
            poked: AtomicBool::new(false),
            found_nothing: AtomicBool::new(!poke_only),
            notify: Notify::new(),
        }
    }

    /// Takes the waiter for serving; false if it no longer waits.
    fn claim(&self) -> bool {
        let mut s = self.state.lock();
        if matches!(*s, State::Waiting) {
            *s = State::Claimed;
            return true;
        }
        false
    }

    /// Hands over the reply of a claimed waiter.
    fn served(&self, reply: Vec<u8>, log_pos: u64) {
        *self.state.lock() = State::Served(reply, log_pos);
        self.notify.notify_one();
    }

    /// Records that the command ran and found nothing (see `found_nothing`).
    pub fn found_nothing(&self) {
        self.found_nothing.store(true, Ordering::Release);
    }

    /// True once its command has found nothing: the client is blocked.
    fn is_blocked(&self) -> bool {
        self.found_nothing.load(Ordering::Acquire)
    }

    /// Wakes the connection to run its command again.
    pub fn poke(&self) {
        self.poked.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Ends the wait because its time ran out: false if a pop has it already (its reply
    /// follows; the connection keeps waiting for it).
    pub fn time_out(&self) -> bool {
        self.end_with(State::TimedOut)
    }

    /// Ends the wait for `CLIENT UNBLOCK`; false if it was not waiting.
    pub fn unblock(&self, error: bool) -> bool {
        let done = self.end_with(State::Unblocked(error));
        if done {
            self.notify.notify_one();
        }
        done
    }

    /// Ends the wait because the connection is going away: false if a pop has it already
    /// (the popped value is lost with the connection, as in Redis).
    pub fn cancel(&self) -> bool {
        self.end_with(State::Cancelled)
    }

    fn end_with(&self, end: State) -> bool {
        let mut s = self.state.lock();
        if matches!(*s, State::Waiting) {
            *s = end;
            return true;
        }
        false
    }

    /// What woke the connection (or `Waiting`): a final outcome is taken (the waiter then
    /// stays `Cancelled`); a poke is cleared.
    pub fn take(&self) -> Wake {
        let mut s = self.state.lock();
        match std::mem::replace(&mut *s, State::Cancelled) {
            State::Served(reply, pos) => Wake::Served(reply, pos),
            State::TimedOut => Wake::TimedOut,
            State::Unblocked(e) => Wake::Unblocked(e),
            other => {
                *s = other;
                if matches!(*s, State::Waiting) && self.poked.swap(false, Ordering::AcqRel) {
                    return Wake::Poked;
                }
                Wake::Waiting
            }
        }
    }

    /// True while a pop has claimed it (its time must not run out now).
    pub fn is_claimed(&self) -> bool {
        matches!(*self.state.lock(), State::Claimed)
    }
}

/// Every blocked client of the server, by client id.
#[derive(Default, Debug)]
pub struct Waiters {
    map: Mutex<HashMap<u64, Arc<Waiter>>>,
    /// Keys with at least one waiter (`total_blocking_keys`).
    keys: AtomicUsize,
}

impl Waiters {
    /// The waiter of a client, if it is blocked.
    pub fn get(&self, id: u64) -> Option<Arc<Waiter>> {
        self.map.lock().get(&id).cloned()
    }

    /// Pokes every waiter: the dataset was replaced wholesale (a cluster node installing a
    /// snapshot), so any key may hold a list now.
    pub fn poke_all(&self) {
        for w in self.map.lock().values() {
            w.poke();
        }
    }

    /// Number of blocked clients (`blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.map.lock().values().filter(|w| w.is_blocked()).count()
    }

    /// Number of blocked clients whose wait has a deadline (`clients_in_timeout_table`).
    pub fn with_timeout(&self) -> usize {
        self.map.lock().values().filter(|w| w.is_blocked() && w.deadline_ms != 0).count()
    }

    /// Number of keys clients are blocked on (`total_blocking_keys`).
    pub fn blocking_keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// Enters `w` in the registry and in the queue of each of its keys, whose shards the
    /// command blocking under its own locks holds in `store`.
    pub(crate) fn add_locked(&self, store: &mut crate::ctx::Store, w: &Arc<Waiter>) {
        for key in &w.keys {
            let shard = store.ks.shard_of(store.ks.hash(key));
            if store.locks.shard_deferred(shard).blocked.add(w.db, key, w.id) {
                self.keys.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.map.lock().insert(w.id, w.clone());
    }

    /// Enters `w` in the registry and in its keys' queues, locking each key's shard in turn
    /// (a cluster node's connection, which holds no lock).
    pub fn add(&self, ks: &Keyspace, w: &Arc<Waiter>) {
        for key in &w.keys {
            let mut s = ks.lock_deferred(ks.shard_of(ks.hash(key)));
            if s.blocked.add(w.db, key, w.id) {
                self.keys.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.map.lock().insert(w.id, w.clone());
    }

    /// Takes client `id` out of the registry and out of its keys' queues, locking each key's
    /// shard in turn (the waiting connection, once its wait is over, holding no lock).
    pub fn remove(&self, ks: &Keyspace, id: u64) {
        let Some(w) = self.map.lock().remove(&id) else { return };
        for key in &w.keys {
            let mut s = ks.lock_deferred(ks.shard_of(ks.hash(key)));
            if s.blocked.remove(w.db, key, w.id) {
                self.keys.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// A waiter served by a command, waiting for the command's log position.
pub(crate) type Served = (Arc<Waiter>, Vec<u8>);

/// Serves the clients blocked on the keys the command made ready (`ctx.store.ready`), first
/// come first served per key, while the command still holds its shard locks. `ctx` is the
/// command's context with a spare reply writer and session in which each waiter's pop runs.
/// Returns the waiters served, whose replies go out once the pops are logged.
pub(crate) fn serve_ready(ctx: &mut Ctx) -> Vec<Served> {
    let mut served = Vec::new();
    let waiters = ctx.host.waiters();
    let mut i = 0;
    while i < ctx.store.ready.len() {
        let (db, key) = ctx.store.ready[i].clone();
        i += 1;
        let ks = ctx.store.ks;
        let shard = ks.shard_of(ks.hash(&key));
        for id in ctx.store.locks.shard_ref(shard).blocked.waiters(db, &key) {
            let Some(have) = ctx.store.peek_in(db, &key).map(|v| v.value_type()) else {
                // Emptied (and deleted) by the waiters before: the rest wait on.
                break;
            };
            let Some(w) = waiters.get(id) else { continue };
            if w.kind.wants() != have {
                // A list waiter on a key that now holds a sorted set, or the reverse.
                continue;
            }
            if w.poke_only {
                w.poke();
                continue;
            }
            if let BlockKind::Move { dst, .. } = &w.kind {
                if !ctx.store.locks.try_add(ks, ks.shard_of(ks.hash(dst))) {
                    // Taking that shard could wait (and deadlock): let the client run its
                    // BLMOVE itself.
                    w.poke();
                    continue;
                }
            }
            if !w.claim() {
                continue;
            }
            ctx.out.clear();
            ctx.out.resp = w.resp;
            ctx.session.id = w.id;
            ctx.session.db = w.db;
            ctx.session.resp = w.resp;
            ctx.store.db = w.db;
            ctx.rewrite = None;
            if let Err(e) = w.kind.serve(ctx, &key) {
                let text = e.to_bytes();
                ctx.host.stats().record_error(&text);
                ctx.out.error(&text);
            }
            if let Some(cmds) = ctx.rewrite.take() {
                if ctx.store.effects.enabled {
                    for c in cmds {
                        ctx.store.effects.push(w.db, ctx.store.now_ms, c);
                    }
                }
            }
            if ctx.store.locks.shard(shard).blocked.remove(db, &key, w.id) {
                waiters.keys.fetch_sub(1, Ordering::Relaxed);
            }
            served.push((w, std::mem::take(&mut ctx.out.buf)));
        }
    }
    served
}

/// Hands the served waiters their replies once their pops are logged up to `log_pos`.
pub(crate) fn deliver(served: Vec<Served>, log_pos: u64) {
    for (w, reply) in served {
        w.served(reply, log_pos);
    }
}
