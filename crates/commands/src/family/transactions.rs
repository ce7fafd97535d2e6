//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH` (Redis's `multi.c`).
//!
//! `MULTI` makes the session queue commands (`exec::execute` does the queueing, so a command
//! refused there dooms the transaction: `EXECABORT`). `EXEC` locks the shards of every key its
//! commands and the watched keys name, at once and in ascending order, and runs the commands
//! one after another under that one hold, at one time, never blocking: no other client's
//! command touching those keys can run in between, on any thread. The few commands that take
//! shard locks themselves (`INFO`, `SCAN`, `CONFIG SET`...) run after the others, once the
//! hold is released, their replies in their places; they are the one departure from Redis's
//! order. In a cluster only writes, reads and a few answering commands may be queued.
//!
//! `WATCH` enters the client in the watch tables of its keys' shards (`engine::watched`); a
//! change of a watched key marks the client's transaction dirty and its `EXEC` replies with a
//! null array. In a cluster every write is applied through the log on every node, so the
//! decision must be the same on every node: there `WATCH` also records the key's version (a
//! digest of value and time to live), the `EXEC` goes through the log as
//! `TANDEM WATCHED db key version ...`, `MULTI`, the commands, `EXEC`, and every node compares
//! the versions when it applies it. The watching node's own flag goes first: a change it has
//! applied since `WATCH` fails the `EXEC` there without going through the log, which also
//! catches what versions cannot see (the same value written again, a change and back); only
//! such a write still in flight when the `EXEC` is sent is judged by the versions alone.

use crate::ctx::{Ctx, Locks};
use crate::errors::{CmdError, CmdResult};
use crate::exec::run_queued;
use crate::keys::key_positions;
use crate::session::{Session, WatchedKey};
use crate::table::{bind, Binding, Command, LockMode};
use engine::watched::WatchedKeys;
use engine::{Db, Keyspace};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The family's bindings.
pub static BINDINGS: &[Binding] = &[
    bind("multi", multi, LockMode::None),
    bind("exec", exec, LockMode::Transaction),
    bind("discard", discard, LockMode::None),
    bind("watch", watch, LockMode::Keys),
    bind("unwatch", unwatch, LockMode::None),
    bind("tandem|watched", watched, LockMode::Keys),
];

/// True for the commands that run at once inside `MULTI` instead of being queued (read
/// from `Command::runs_in_multi`).
pub(crate) fn runs_in_multi(name: &str) -> bool {
    matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Commands that lock no shard (`LockMode::None`) and take no shard lock of their own either:
/// they run inside a transaction's hold. Any other such command (`INFO`, `SCAN`, `BGSAVE`,
/// ...) locks shards itself, so `EXEC` runs it once its hold is released, after the others.
const LOCK_FREE: &[&str] = &[
    "monitor",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "publish",
    "spublish",
    "pubsub|channels",
    "pubsub|shardchannels",
    "pubsub|numsub",
    "pubsub|shardnumsub",
    "pubsub|numpat",
    "pubsub|help",
    "ping",
    "echo",
    "select",
    "time",
    "lastsave",
    "role",
    "wait",
    "auth",
    "hello",
    "client|id",
    "client|setname",
    "client|getname",
    "client|list",
    "client|info",
    "client|kill",
    "client|pause",
    "client|unpause",
    "client|unblock",
    "client|reply",
    "client|no-evict",
    "client|no-touch",
    "client|setinfo",
    "client|help",
    "client|tracking",
    "client|caching",
    "client|getredir",
    "client|trackinginfo",
    "config|get",
    "config|resetstat",
    "config|help",
    "command",
    "command|count",
    "command|info",
    "command|docs",
    "command|list",
    "command|getkeys",
    "command|getkeysandflags",
    "command|help",
    "tandem|consistency",
    "tandem|help",
    // Inside EXEC the watched keys are already forgotten: nothing to lock.
    "unwatch",
];

/// True if a queued command takes shard locks of its own: `EXEC` runs it after releasing its
/// hold (a shard mutex is not re-entrant), its reply kept in its place.
/// (Read from `Command::takes_own_locks`.)
pub(crate) fn takes_own_locks(lock: LockMode, name: &str) -> bool {
    lock == LockMode::None && !LOCK_FREE.contains(&name)
}

/// The locks `EXEC` runs under (`LockMode::Transaction`): the shards of every key the queued
/// commands name (all of them if one needs all, or names keys its key spec cannot find) and
/// of the watched keys, taken at once. None when there is no transaction to run.
pub fn hold<'a>(ks: &'a Keyspace, session: &Session) -> Locks<'a> {
    let Some(multi) = session.multi.as_ref().filter(|m| !m.aborted) else { return Locks::none() };
    let mut hashes: Vec<u64> = session.watched.iter().map(|w| ks.hash(&w.key)).collect();
    for (cmd, argv) in multi.commands() {
        match cmd.lock {
            LockMode::All => return Locks::all(ks),
            LockMode::Keys => match key_positions(&cmd.spec, &argv) {
                Ok(pos) => hashes.extend(pos.iter().map(|(i, _)| ks.hash(argv[*i]))),
                Err(_) => return Locks::all(ks),
            },
            LockMode::None | LockMode::Transaction => {}
        }
    }
    Locks::for_hashes(ks, hashes.into_iter())
}

/// In a cluster a transaction goes through the log and runs on every node, so it may hold
/// only commands that belong there: writes, reads, and a few that only answer.
pub fn queueable_in_cluster(cmd: &Command) -> bool {
    use crate::spec::Flags;
    cmd.spec.flags.has(Flags::WRITE)
        || cmd.spec.flags.has(Flags::READONLY)
        || matches!(cmd.spec.name.as_str(), "ping" | "echo" | "select" | "time")
}

/// `MULTI`
fn multi(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    if ctx.session.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.session.multi = Some(ctx.session.spare_multi.take().unwrap_or_default());
    ctx.out.ok();
    Ok(())
}

/// `DISCARD`
fn discard(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    if ctx.session.multi.take().is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    unwatch_all(ctx.store.ks, ctx.session);
    ctx.out.ok();
    Ok(())
}

/// `EXEC`, under the hold `execute` took for it ([`hold`]).
fn exec(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let Some(multi) = ctx.session.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    if multi.aborted {
        unwatch_all(ctx.store.ks, ctx.session);
        return Err(CmdError::ExecAbort);
    }
    // The watched keys are checked under the hold, so they cannot change before the commands
    // run.
    let changed = watch_failed(ctx);
    unwatch_locked(&mut ctx.store.locks, ctx.store.ks, ctx.session);
    if changed {
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(multi.len());
    let first_effect = ctx.store.effects.list.len();
    let may_block = std::mem::replace(&mut ctx.may_block, false);
    // A client's transaction (not a replayed one) shows each command to `MONITOR` as it runs.
    let monitored = may_block && ctx.host.monitors().is_some_and(|m| !m.is_empty());
    for (cmd, argv) in multi.commands() {
        if cmd.takes_own_locks {
            ctx.deferred.push((ctx.out.len(), argv.iter().map(|a| a.to_vec()).collect()));
        } else {
            run_queued(ctx, &argv, cmd);
            if monitored && crate::exec::shown_to_monitors(cmd) {
                // (A monitoring client's own transaction: its lines are not sent to it.)
                ctx.host.feed_monitors(ctx.session, &argv);
            }
        }
    }
    ctx.may_block = may_block;
    ctx.session.spare_multi = multi.recycle();
    // Logged as one transaction when it wrote more than once, as Redis propagates it; the
    // transaction's own entry is nothing beyond its commands'.
    let effects = &mut *ctx.store.effects;
    if effects.enabled && effects.list.len() > first_effect + 1 {
        let now = ctx.store.now_ms;
        let first_db = effects.list[first_effect].db;
        let last_db = effects.list.last().expect("non-empty").db;
        effects
            .list
            .insert(first_effect, crate::effects::Effect { db: first_db, now_ms: now, argv: vec![b"MULTI".to_vec()] });
        effects.push(last_db, now, vec![b"EXEC".to_vec()]);
    }
    ctx.rewrite = Some(Vec::new());
    Ok(())
}

/// True if the transaction must not run: a watched key changed since `WATCH` (the flag), or
/// one that was alive then has expired since.
fn watch_failed(ctx: &mut Ctx) -> bool {
    if ctx.session.watch_dirty.as_ref().is_some_and(|d| d.load(Ordering::Relaxed)) {
        return true;
    }
    let now = ctx.store.now_ms;
    let ks = ctx.store.ks;
    ctx.session.watched.iter().any(|w| {
        let h = ks.hash(&w.key);
        let d = &ctx.store.locks.shard_ref(ks.shard_of(h)).dbs[w.db];
        !w.expired && d.value(h, &w.key).is_some() && d.is_expired(h, &w.key, now)
    })
}

/// `WATCH key [key ...]`
fn watch(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if ctx.session.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    let ks = ctx.store.ks;
    let db = ctx.store.db;
    let now = ctx.store.now_ms;
    let id = ctx.session.id;
    let in_cluster = ctx.host.in_cluster();
    let dirty = ctx.session.watch_dirty.get_or_insert_with(|| Arc::new(AtomicBool::new(false))).clone();
    for key in &argv[1..] {
        if ctx.session.watched.iter().any(|w| w.db == db && w.key == *key) {
            continue;
        }
        let h = ks.hash(key);
        let shard = ctx.store.locks.shard_deferred(ks.shard_of(h));
        let d = &shard.dbs[db];
        let expired = d.value(h, key).is_some() && d.is_expired(h, key, now);
        let version = in_cluster.then(|| version(d, h, key, now));
        shard.watched.add(db, key, id, &dirty, expired);
        ctx.session.watched.push(WatchedKey { db, key: key.to_vec(), expired, version });
    }
    ctx.out.ok();
    Ok(())
}

/// `UNWATCH`
fn unwatch(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    unwatch_all(ctx.store.ks, ctx.session);
    ctx.out.ok();
    Ok(())
}

/// A key's version for a cluster's `WATCH`: the digest of its value and its expiry, or `-`
/// when it does not exist (or has expired). Every node computes the same for the same data.
fn version(d: &Db, h: u64, key: &[u8], now: i64) -> Vec<u8> {
    if d.value(h, key).is_none() || d.is_expired(h, key, now) {
        return b"-".to_vec();
    }
    let mut v = engine::digest::to_hex(&engine::digest::value_digest(d, h, key)).into_bytes();
    if let Some(when) = d.expire_of(h, key) {
        v.extend_from_slice(format!(":{when}").as_bytes());
    }
    v
}

/// `TANDEM WATCHED db key version [db key version ...]`: the first command of a cluster's
/// transaction that watched keys. Marks the session's transaction dirty if any key's version
/// differs from the one its client saw at `WATCH` time (see the module comment).
fn watched(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() < 5 || !(argv.len() - 2).is_multiple_of(3) {
        return Err(CmdError::Syntax);
    }
    let ks = ctx.store.ks;
    let now = ctx.store.now_ms;
    let mut changed = false;
    for t in argv[2..].chunks(3) {
        let db = engine::num::parse_i64(t[0]).filter(|d| *d >= 0 && (*d as usize) < ks.databases());
        let Some(db) = db else { return Err(CmdError::DbIndexOutOfRange) };
        let h = ks.hash(t[1]);
        let d = &ctx.store.locks.shard_ref(ks.shard_of(h)).dbs[db as usize];
        changed |= version(d, h, t[1], now) != t[2];
    }
    if changed {
        ctx.session.watch_dirty.get_or_insert_with(|| Arc::new(AtomicBool::new(false))).store(true, Ordering::Relaxed);
    }
    ctx.out.int(changed as i64);
    Ok(())
}

/// The `TANDEM WATCHED` command that checks `session`'s watched keys in a cluster's
/// transaction, if it watches any.
pub fn watched_check(session: &Session) -> Option<Vec<Vec<u8>>> {
    if session.watched.is_empty() {
        return None;
    }
    let mut argv = vec![b"TANDEM".to_vec(), b"WATCHED".to_vec()];
    for w in &session.watched {
        argv.push(w.db.to_string().into_bytes());
        argv.push(w.key.clone());
        argv.push(w.version.clone().unwrap_or_else(|| b"-".to_vec()));
    }
    Some(argv)
}

/// Forgets every key `session` watches, locking each key's shard in turn (a caller holding
/// no shard lock: `UNWATCH`, `DISCARD`, `RESET`, a closing connection).
pub fn unwatch_all(ks: &Keyspace, session: &mut Session) {
    for w in session.watched.drain(..) {
        ks.lock_deferred(ks.shard_of(ks.hash(&w.key))).watched.remove(w.db, &w.key, session.id);
    }
    session.watch_dirty = None;
}

/// [`unwatch_all`] for a caller that holds the shards of the watched keys.
fn unwatch_locked(locks: &mut Locks, ks: &Keyspace, session: &mut Session) {
    for w in session.watched.drain(..) {
        let table: &mut WatchedKeys = &mut locks.shard_deferred(ks.shard_of(ks.hash(&w.key))).watched;
        table.remove(w.db, &w.key, session.id);
    }
    session.watch_dirty = None;
}
