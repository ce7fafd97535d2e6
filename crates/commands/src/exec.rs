//! The one execution path: name lookup, the checks the table can answer (existence, arity,
//! authentication), shard locking, the handler, and effects. Client connections, AOF replay,
//! Raft apply and scripts all come through [`execute`].

use crate::ctx::{Ctx, Locks, Store};
use crate::effects::Effects;
use crate::errors::CmdError;
use crate::host::Host;
use crate::keys::key_positions;
use crate::session::Session;
use crate::stats::{LocalStats, Stats};
use crate::table::{Command, LockMode};
use engine::{Env, Keyspace};
use protocol::ReplyWriter;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It ran and replied normally.
    Ok,
    /// It ran and replied with an error.
    Failed,
    /// It was refused before running.
    Rejected,
    /// It was queued in a transaction (`MULTI`), to run at `EXEC`.
    Queued,
}

/// What the caller learns about an execution.
pub struct Outcome {
    /// The command that ran or was refused (None for unknown commands).
    pub command: Option<&'static Command>,
    /// How it ended.
    pub status: Status,
    /// True if it changed the dataset.
    pub dirty: bool,
    /// Set if the command blocked its client: the connection waits on it for the reply.
    pub blocked: Option<std::sync::Arc<crate::blocking::Waiter>>,
}

/// Options of an execution that differ between callers.
#[derive(Clone, Copy, Debug)]
pub struct ExecOptions {
    /// When false, expired keys are hidden but not removed (a follower's local read).
    pub may_expire: bool,
    /// Replaying a log (AOF at start-up, or a cluster's committed entries): no
    /// authentication, no gates (they were checked where the command arrived: at start-up the
    /// server is `-LOADING` for everyone else; a cluster node checks its clients' writes before
    /// sending them to the log), and no blocking (a blocking command replies as if it had
    /// timed out at once).
    pub replay: bool,
    /// Messages are not delivered: neither `PUBLISH` nor keyspace events reach subscribers (a
    /// cluster node applying its backlog, `cluster::store::Backlog`, whose messages went out
    /// when the entries were written).
    pub quiet: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions { may_expire: true, replay: false, quiet: false }
    }
}

fn reject(
    session: &mut Session,
    out: &mut ReplyWriter,
    stats: &Stats,
    local: &mut LocalStats,
    e: CmdError,
    command: Option<&'static Command>,
) -> Outcome {
    if let Some(c) = command {
        local.rejected(c);
    }
    // A command refused while a transaction is being queued dooms it (`EXECABORT`).
    if let Some(m) = session.multi.as_mut() {
        m.aborted = true;
    }
    let text = e.to_bytes();
    stats.record_error(&text);
    out.error(&text);
    Outcome { command, status: Status::Rejected, dirty: false, blocked: None }
}

/// Resolves a request to its command (or subcommand) and checks arity, writing the error
/// Redis writes when that fails.
pub fn resolve(argv: &[&[u8]]) -> Result<&'static Command, (CmdError, Option<&'static Command>)> {
    let Some(cmd) = crate::table::lookup(argv[0]) else {
        return Err((
            CmdError::UnknownCommand { name: argv[0].to_vec(), args: argv[1..].iter().map(|a| a.to_vec()).collect() },
            None,
        ));
    };
    let cmd = if cmd.subcommands.is_empty() {
        cmd
    } else {
        if argv.len() < 2 {
            return Err((CmdError::WrongArity(cmd.spec.name.clone()), Some(cmd)));
        }
        match cmd.subcommand(argv[1]) {
            Some(sub) => sub,
            None => {
                return Err((
                    CmdError::UnknownSubcommand { sub: argv[1].to_vec(), cmd: cmd.spec.name.to_ascii_uppercase() },
                    Some(cmd),
                ))
            }
        }
    };
    let arity = cmd.spec.arity;
    let argc = argv.len() as i64;
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err((CmdError::WrongArity(cmd.spec.name.clone()), Some(cmd)));
    }
    Ok(cmd)
}

/// Executes one command. The reply (or error) is appended to `out`; effects to `effects`.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    ks: &Keyspace,
    host: &dyn Host,
    session: &mut Session,
    env: &mut Env,
    argv: &[&[u8]],
    out: &mut ReplyWriter,
    effects: &mut Effects,
    local: &mut LocalStats,
    opts: ExecOptions,
) -> Outcome {
    debug_assert!(!argv.is_empty());
    local.total_commands += 1;
    let cmd = match resolve(argv) {
        Ok(c) => c,
        Err((e, c)) => return reject(session, out, host.stats(), local, e, c),
    };
    session.last_cmd = &cmd.spec.name;
    if !session.authenticated && !cmd.spec.flags.has(crate::spec::Flags::NO_AUTH) && !opts.replay {
        return reject(session, out, host.stats(), local, CmdError::NoAuth, Some(cmd));
    }
    if !opts.replay {
        if let Some(refused) = check_gates(ks, host, session, cmd, out, local) {
            return refused;
        }
    }
    if session.resp == protocol::Resp::V2
        && session.subscribed()
        && !crate::family::pubsub::allowed_when_subscribed(&cmd.spec.name)
    {
        let e = CmdError::err(format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            cmd.spec.name
        ));
        return reject(session, out, host.stats(), local, e, Some(cmd));
    }
    if session.monitor && {
        use crate::spec::Flags;
        let f = cmd.spec.flags;
        f.has(Flags::WRITE) || f.has(Flags::READONLY) || f.has(Flags::MAY_REPLICATE)
    } {
        let e = CmdError::err("Replica can't interact with the keyspace");
        return reject(session, out, host.stats(), local, e, Some(cmd));
    }
    if session.multi.is_some() && !cmd.runs_in_multi {
        // (`MULTI` and `WATCH`, flagged too, run and refuse themselves without dooming it.)
        if cmd.spec.flags.has(crate::spec::Flags::NO_MULTI) {
            return reject(session, out, host.stats(), local, CmdError::NotAllowedInMulti, Some(cmd));
        }
        if host.in_cluster() && !crate::family::transactions::queueable_in_cluster(cmd) {
            let e = CmdError::err(format!(
                "{} is not allowed in a transaction in a cluster",
                cmd.spec.name.to_ascii_uppercase().replace('|', " ")
            ));
            return reject(session, out, host.stats(), local, e, Some(cmd));
        }
        {
            let m = session.multi.as_mut().expect("checked");
            m.push(cmd, argv);
            out.simple(b"QUEUED");
            // Counted when EXEC runs it, as in Redis.
            local.total_commands -= 1;
            return Outcome { command: Some(cmd), status: Status::Queued, dirty: false, blocked: None };
        }
    }
    let handler = cmd.handler.expect("resolve returns implemented commands");
    if cmd.reads_stats {
        // INFO, CONFIG RESETSTAT and friends see every earlier command of this connection.
        local.flush(host.stats());
    }
    let locks = match cmd.lock {
        LockMode::None => Locks::none(),
        LockMode::Transaction => crate::family::transactions::hold(ks, session),
        LockMode::All => Locks::all(ks),
        LockMode::Keys if cmd.single_key.is_some_and(|p| p < argv.len()) => {
            let pos = cmd.single_key.expect("checked");
            Locks::one(ks, ks.hash(argv[pos]))
        }
        LockMode::Keys => match key_positions(&cmd.spec, argv) {
            Ok(pos) => Locks::for_hashes(ks, pos.iter().map(|(i, _)| ks.hash(argv[*i]))),
            // Arguments that do not fit the key spec: lock everything and let the handler
            // report the precise error.
            Err(_) => Locks::all(ks),
        },
    };
    let env_now = env.now_ms;
    // Read under the command's shard locks: a client that turned on BCAST tracking before
    // this command took them hears of its changes.
    let bcast = host.tracking().broadcasting();
    // Read under the command's shard locks: the log is switched on under all of them.
    let logging = host.logging();
    let recording = effects.enabled;
    effects.enabled |= logging;
    let first_effect = effects.list.len();
    // Where the pops of clients served by this command run (see `blocking::serve_ready`).
    let mut spare: Option<(ReplyWriter, Session)> = None;
    let mut ctx = Ctx {
        store: Store {
            ks,
            locks,
            db: session.db,
            now_ms: env.now_ms,
            effects,
            stats: local,
            no_touch: session.no_touch,
            may_expire: opts.may_expire,
            dirty: 0,
            ready: Vec::new(),
            hidden_hash: None,
            touched: Vec::new(),
            notify_flags: if opts.quiet { 0 } else { host.notify_flags() },
            quiet: opts.quiet,
            events: Vec::new(),
            tracking: host.tracking(),
            bcast,
            tracked: Vec::new(),
            invalidated: Vec::new(),
            flushed: false,
        },
        out,
        session,
        host,
        rng: &mut env.rng,
        rewrite: None,
        may_block: !opts.replay,
        blocked: None,
        deferred: Vec::new(),
    };
    let result = handler(&mut ctx, argv);
    let status = match result {
        Ok(()) => Status::Ok,
        Err(e) => {
            let text = e.to_bytes();
            host.stats().record_error(&text);
            ctx.out.error(&text);
            Status::Failed
        }
    };
    if ctx.session.tracking.is_some() {
        // Whatever the outcome (a miss, `WRONGTYPE`), as in Redis.
        remember_reads(&mut ctx, cmd, argv);
    }
    let dirty = ctx.store.dirty;
    if dirty > 0 {
        // Effects are recorded while the command still holds its shards, so that two commands
        // on the same key are logged in the order they ran (AOF and Raft depend on it).
        let db = ctx.store.db;
        record_effect(&mut ctx, db, env_now, argv);
    }
    let deferred = std::mem::take(&mut ctx.deferred);
    let blocked = ctx.blocked.take();
    let mut served = Vec::new();
    // The client's own session while `ctx` runs blocked clients' pops in another.
    let mut own: Option<&mut Session> = None;
    if !ctx.store.ready.is_empty() {
        // Clients blocked on keys this command filled are served now, under its locks, their
        // pops logged after it.
        let Ctx { store, host, rng, session, .. } = ctx;
        own = Some(session);
        let (out, session) = spare.insert((ReplyWriter::new(protocol::Resp::V2), Session::new(0, true)));
        ctx = Ctx {
            store,
            out,
            session,
            host,
            rng,
            rewrite: None,
            may_block: false,
            blocked: None,
            deferred: Vec::new(),
        };
        served = crate::blocking::serve_ready(&mut ctx);
    }
    // Still under the locks: a client that watched a key and sees this command's reply can
    // no longer run its transaction.
    ctx.store.signal_watchers(dirty > 0);
    let me: &mut Session = match own {
        Some(s) => s,
        None => &mut *ctx.session,
    };
    if !ctx.store.invalidated.is_empty() || ctx.store.flushed {
        // Under the locks: a client that reads a key again after this command hears of it
        // only after the change it read.
        send_invalidations(host, &mut ctx.store, me);
    }
    if !ctx.store.events.is_empty() {
        // Under the locks too: events of one key are published in the order of its commands.
        let events = std::mem::take(&mut ctx.store.events);
        // Delivery runs on the wall clock (output-buffer soft limits), not the command's time.
        crate::notify::publish(host, ctx.store.notify_flags, &events, host.unix_time_us() / 1000);
    }
    if logging {
        // Still under the shard locks, for the same reason. Effects of keys this command found
        // expired count even when the command itself changed nothing.
        let effects = &mut *ctx.store.effects;
        if effects.list.len() > first_effect {
            effects.logged_upto = host.log_effects(&effects.list[first_effect..]);
        }
        if !recording {
            effects.list.truncate(first_effect);
        }
    }
    if !served.is_empty() {
        crate::blocking::deliver(served, ctx.store.effects.logged_upto);
    }
    // Messages that reached the client before its command released its locks go before its
    // reply (those it caused itself among them); any later one goes after (see
    // `Session::mail_mark`).
    // (The lowest mark wins: an `EXEC`'s deferred commands run through here again after its
    // hold was released, and what arrived meanwhile must follow `EXEC`'s reply.)
    me.mail_mark = me.mail_mark.min(me.mailbox.as_ref().map_or(0, |m| m.len()));
    drop(ctx);
    effects.enabled = recording;
    local.dirty += dirty;
    if status == Status::Failed {
        local.failed(cmd);
    }
    if !opts.replay && host.monitors().is_some_and(|m| !m.is_empty()) && shown_to_monitors(cmd) {
        if let Some(line) = host.feed_monitors(session, argv) {
            out.raw(&line);
        }
    }
    if !deferred.is_empty() {
        run_deferred(ks, host, session, env, out, effects, local, opts, deferred);
    }
    Outcome { command: Some(cmd), status, dirty: dirty > 0, blocked }
}

/// Client-side caching: remembers the keys a read command named for the client running it
/// (`CLIENT TRACKING` in default mode, subject to `OPTIN`/`OPTOUT` and `CLIENT CACHING`).
fn remember_reads(ctx: &mut Ctx, cmd: &Command, argv: &[&[u8]]) {
    use crate::spec::Flags;
    let Some(t) = ctx.session.tracking.as_deref() else { return };
    let flags = cmd.spec.flags;
    if t.bcast || !flags.has(Flags::READONLY) || flags.has(Flags::PUBSUB) {
        return;
    }
    if (t.optin && !ctx.session.caching) || (t.optout && ctx.session.caching) {
        return;
    }
    let Ok(positions) = key_positions(&cmd.spec, argv) else { return };
    let id = ctx.session.id;
    let store = &mut ctx.store;
    let (ks, tracking) = (store.ks, store.tracking);
    for (i, _) in positions {
        let key = argv[i];
        let s = ks.shard_of(ks.hash(key));
        // Every read command naming keys locks them (`LockMode::Keys` or `All`).
        debug_assert!(store.locks.holds(s), "{} read a key it did not lock", cmd.spec.name);
        if store.locks.holds(s) {
            tracking.remember(&mut store.locks.shard_deferred(s).tracked, key, id);
        }
    }
    if tracking.over_limit() {
        // `tracking-table-max-keys`: forget keys of the shards held (their readers are told,
        // as if the keys had changed; broadcast clients are not, nothing changed) until under
        // the limit.
        let mut forgotten = Vec::new();
        for shard in store.locks.shards_deferred() {
            while tracking.over_limit() {
                let Some(key) = shard.tracked.any_key() else { break };
                let ids = tracking.take(&mut shard.tracked, &key);
                forgotten.push((key.into_vec(), ids));
            }
        }
        let now_ms = ctx.host.unix_time_us() / 1000;
        let mut me = crate::tracking::Me::of(ctx.session);
        tracking.invalidate(ctx.host, &forgotten, false, &mut me, now_ms);
    }
}

/// Sends the invalidations a command's changes and flushes caused (see `tracking`).
fn send_invalidations(host: &dyn Host, store: &mut Store, me: &mut Session) {
    let now_ms = host.unix_time_us() / 1000;
    let mut me = crate::tracking::Me::of(me);
    if std::mem::take(&mut store.flushed) {
        host.tracking().flushed(host, &mut me, now_ms);
    }
    let changed = std::mem::take(&mut store.invalidated);
    if !changed.is_empty() {
        host.tracking().invalidate(host, &changed, store.bcast, &mut me, now_ms);
    }
}

/// True for the commands `MONITOR` shows: all but the administrative ones (as in Redis).
pub(crate) fn shown_to_monitors(cmd: &Command) -> bool {
    use crate::spec::Flags;
    !cmd.spec.flags.has(Flags::ADMIN) && !cmd.spec.flags.has(Flags::SKIP_MONITOR)
}

/// Records the effect of a command that changed the dataset: the rewritten form its handler
/// gave (`Ctx::propagate_as`), or the request as is.
fn record_effect(ctx: &mut Ctx, db: usize, now_ms: i64, argv: &[&[u8]]) {
    if !ctx.store.effects.enabled {
        return;
    }
    match ctx.rewrite.take() {
        Some(cmds) => {
            for c in cmds {
                ctx.store.effects.push(db, now_ms, c);
            }
        }
        None => ctx.store.effects.push(db, now_ms, argv.iter().map(|a| a.to_vec()).collect()),
    }
}

/// Runs the commands of a transaction that take shard locks themselves (`INFO`, `SCAN`,
/// `CONFIG SET` ...: see `family::transactions`), after `EXEC` released its hold, each
/// through [`execute`], and puts their replies in their places in `EXEC`'s reply.
#[allow(clippy::too_many_arguments)]
fn run_deferred(
    ks: &Keyspace,
    host: &dyn Host,
    session: &mut Session,
    env: &mut Env,
    out: &mut ReplyWriter,
    effects: &mut Effects,
    local: &mut LocalStats,
    opts: ExecOptions,
    deferred: Vec<(usize, Vec<Vec<u8>>)>,
) {
    let mut replies = Vec::with_capacity(deferred.len());
    for (at, argv) in deferred {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
        let mut reply = ReplyWriter::new(out.resp);
        let t0 = std::time::Instant::now();
        let outcome = execute(ks, host, session, env, &argv, &mut reply, effects, local, opts);
        if let Some(cmd) = outcome.command {
            local.call(cmd, t0.elapsed().as_micros() as u64);
        }
        replies.push((at, reply.buf));
    }
    // From the last, so that the earlier places stay where they are.
    for (at, reply) in replies.into_iter().rev() {
        out.buf.splice(at..at, reply);
    }
}

/// Refuses `cmd` if a closed gate (a failed background save or AOF write, loading) denies
/// it now, writing the refusal; `None` lets it run.
fn check_gates(
    ks: &Keyspace,
    host: &dyn Host,
    session: &mut Session,
    cmd: &'static Command,
    out: &mut ReplyWriter,
    local: &mut LocalStats,
) -> Option<Outcome> {
    let gates = host.stats().gates.load(std::sync::atomic::Ordering::Relaxed);
    if gates == 0 {
        return None;
    }
    if let Some(e) = gate_error(gates, cmd, host) {
        return Some(reject(session, out, host.stats(), local, e, Some(cmd)));
    }
    // `EXEC` of a transaction that writes is a write: refused as a whole, and the
    // transaction discarded (Redis's `execCommandAbort`).
    if cmd.spec.name == "exec"
        && session.multi.as_ref().is_some_and(|m| m.queued_flags().has(crate::spec::Flags::WRITE))
    {
        if let Some(e) = write_gate_error(gates, host) {
            session.multi = None;
            crate::family::transactions::unwatch_all(ks, session);
            let e = CmdError::ExecAbortBecause(Box::new(e));
            return Some(reject(session, out, host.stats(), local, e, Some(cmd)));
        }
    }
    None
}

/// For a command a cluster node sends through the log instead of running it with
/// [`execute`] (every node applies the log's commands as replays, which pass the gates): the
/// refusal `execute` would give it here first, as Redis gives it. Writes the error and returns
/// true if refused.
pub fn refused_by_gate(
    ks: &Keyspace,
    host: &dyn Host,
    session: &mut Session,
    argv: &[&[u8]],
    out: &mut ReplyWriter,
    local: &mut LocalStats,
) -> bool {
    if host.stats().gates.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return false;
    }
    let Ok(cmd) = resolve(argv) else { return false };
    if check_gates(ks, host, session, cmd, out, local).is_none() {
        return false;
    }
    local.total_commands += 1;
    true
}

/// The refusal a closed gate gives this command, in Redis's order (MISCONF before LOADING).
#[cold]
fn gate_error(gates: u8, cmd: &Command, host: &dyn Host) -> Option<CmdError> {
    use crate::stats::Gate;
    let flags = cmd.spec.flags;
    let denies_writes = flags.has(crate::spec::Flags::WRITE) || cmd.spec.name == "ping";
    if denies_writes {
        if let Some(e) = write_gate_error(gates, host) {
            return Some(e);
        }
    }
    if gates & Gate::Loading as u8 != 0 && !flags.has(crate::spec::Flags::LOADING) {
        return Some(CmdError::Loading);
    }
    None
}

/// Why writes are refused now, if they are (a failed background save, a failed AOF write).
fn write_gate_error(gates: u8, host: &dyn Host) -> Option<CmdError> {
    use crate::stats::Gate;
    if gates & Gate::Misconf as u8 != 0 {
        return Some(CmdError::Misconf);
    }
    if gates & Gate::AofError as u8 != 0 {
        return Some(CmdError::AofMisconf(host.aof_error()));
    }
    None
}

/// Runs one command of a transaction inside `EXEC`, in `EXEC`'s context: under the locks
/// `EXEC` took, at its time and with its randomness, never blocking. Its reply (or error) goes
/// to `ctx.out`, its effect (if it changed anything) to the effects in order.
pub(crate) fn run_queued(ctx: &mut Ctx, argv: &[&[u8]], cmd: &'static Command) {
    let host = ctx.host;
    ctx.store.stats.total_commands += 1;
    ctx.session.last_cmd = &cmd.spec.name;
    let handler = cmd.handler.expect("resolve returns implemented commands");
    // `SELECT` and `CLIENT NO-TOUCH` inside the transaction apply to the commands after them.
    ctx.store.db = ctx.session.db;
    ctx.store.no_touch = ctx.session.no_touch;
    let db = ctx.store.db;
    let dirty_before = ctx.store.dirty;
    let rewrite = ctx.rewrite.take();
    // Timed one by one, as Redis's `call()` times what `EXEC` runs (EXEC's own time covers
    // them all).
    let t0 = std::time::Instant::now();
    let result = handler(ctx, argv);
    let usec = t0.elapsed().as_micros() as u64;
    if ctx.session.tracking.is_some() {
        remember_reads(ctx, cmd, argv);
    }
    ctx.store.stats.call(cmd, usec);
    let changed = ctx.store.dirty > dirty_before;
    ctx.store.signal_watchers(changed);
    if let Err(e) = result {
        let text = e.to_bytes();
        host.stats().record_error(&text);
        ctx.out.error(&text);
        ctx.store.stats.failed(cmd);
    }
    if changed {
        let now = ctx.store.now_ms;
        record_effect(ctx, db, now, argv);
    }
    ctx.rewrite = rewrite;
}
