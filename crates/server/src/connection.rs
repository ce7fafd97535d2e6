//! One client connection: read bytes, parse every complete request in the buffer, execute
//! each through `commands::execute`, and write all their replies with one write per batch
//! (pipelining). Per-connection state lives in a `commands::Session`; what other clients may
//! see is published to the registry after each command.

use crate::aof::Fsync;
use crate::clients::{Client, Snapshot};
use crate::Shared;
use commands::blocking::{BlockKind, Waiter, Wake};
use commands::exec::{execute, ExecOptions, Status};
use commands::pubsub::{Kind, Mailbox};
use commands::session::{ReadConsistency, ReplyMode};
use commands::stats::LocalStats;
use commands::table::Command;
use commands::{Effects, Session};
use engine::list::End;
use engine::{Env, Rng};
use protocol::{Limits, ReplyWriter, RequestParser, Resp};
use smallvec::SmallVec;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Flush the output buffer once it grows past this, even in the middle of a pipeline.
const OUTPUT_FLUSH_THRESHOLD: usize = 64 * 1024;

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Serves one accepted connection until it closes.
pub async fn serve(shared: Arc<Shared>, mut stream: TcpStream, addr: SocketAddr, laddr: SocketAddr, fd: i64) {
    let id = shared.clients.next_id();
    let now = unix_ms();
    let client = Arc::new(Client {
        id,
        addr,
        laddr,
        fd,
        created_ms: now,
        last_ms: (now as u64).into(),
        snapshot: parking_lot::Mutex::new(Snapshot {
            flags: "N".into(),
            resp: 2,
            redir: -1,
            cmd: "NULL",
            ..Snapshot::default()
        }),
        killed: false.into(),
        kill_notify: commands::signal::Signal::new(),
        mailbox: Default::default(),
    });
    shared.clients.add(client.clone());
    let authenticated = shared.config.requirepass.read().is_none();
    let mut session = Session::new(client.id, authenticated);
    let overflowed = client.clone();
    session.mailbox =
        Some(Arc::new(Mailbox::new(id, shared.output_limits.clone(), Box::new(move || overflowed.kill()))));
    let mailbox = session.mailbox.clone().expect("just made");
    let _ = client.mailbox.set(mailbox);
    let _ = run(&shared, &client, &mut stream, &mut session).await;
    shared.tracking.disable(id);
    if let Some(why) = session.mailbox.as_ref().and_then(|m| m.closed_why()) {
        tracing::warn!("Client id={id} addr={addr} ({why}) closed for overcoming of output buffer limits.");
    }
    commands::family::transactions::unwatch_all(&shared.ks, &mut session);
    if let Some(subs) = session.subs.as_deref_mut() {
        shared.pubsub.unsubscribe_all(subs, session.mailbox.as_ref(), id);
    }
    if session.monitor {
        shared.monitors.remove(id);
    }
    let _ = stream.shutdown().await;
    shared.clients.remove(id);
}

async fn run(
    shared: &Arc<Shared>,
    client: &Arc<Client>,
    stream: &mut TcpStream,
    session: &mut Session,
) -> std::io::Result<()> {
    let mut parser = RequestParser::new();
    let mut out = ReplyWriter::new(Resp::V2);
    let mut rbuf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut start = 0usize;
    let mut effects = Effects::default();
    let mut local = LocalStats::default();
    // The command whose duration is still open, and when it started.
    let mut timing: Option<(&'static Command, Instant)> = None;
    let mut rng = Rng::new(client.id ^ (unix_ms() as u64).rotate_left(32));
    // In a cluster: writes gathered for the next log entry, and the index of the last one.
    let mut batch = WriteBatch::default();
    let stats = &shared.stats;
    let mailbox = session.mailbox.clone().expect("a connection's session has a mailbox");
    let sink = Sink { client, mailbox: &mailbox };
    loop {
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(16 * 1024);
        }
        // Subscribers and monitors only listen: the idle timeout does not apply (as in Redis).
        let timeout_s =
            if session.subscribed() || session.monitor { 0 } else { shared.config.timeout.load(Ordering::Relaxed) };
        let read = async {
            if timeout_s > 0 {
                match tokio::time::timeout(Duration::from_secs(timeout_s), stream.read_buf(&mut rbuf)).await {
                    Ok(r) => r,
                    Err(_) => Ok(0),
                }
            } else {
                stream.read_buf(&mut rbuf).await
            }
        };
        // In this order, without drawing a random branch order: input is the common case, and
        // a kill or mail arriving meanwhile is not missed (`killed` is checked after every
        // read, and mail goes out after every command).
        let woke = tokio::select! {
            biased;
            r = read => Woke::Read(r?),
            _ = client.kill_notify.notified() => return Ok(()),
            _ = mailbox.notify.notified() => Woke::Mail,
        };
        let n = match woke {
            Woke::Read(n) => n,
            Woke::Mail => {
                // Messages for an idle client: out at once.
                if mailbox.is_closed() || client.killed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                mailbox.drain_into(&mut out.buf);
                write_out(shared, stream, &mut out, &mut effects, &mut batch, &sink, false).await?;
                continue;
            }
        };
        if n == 0 || client.killed.load(Ordering::Relaxed) {
            return Ok(());
        }
        shared.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
        let limits = Limits {
            max_bulk_len: shared.config.max_bulk_len.load(Ordering::Relaxed) as usize,
            unauthenticated: !session.authenticated,
            ..Limits::default()
        };
        let mut close = false;
        // A linearizable read's index, shared by the reads of this batch: every request in
        // the buffer arrived before it was asked for.
        let mut read_index: Option<u64> = None;
        let anchor = Instant::now();
        let anchor_ms = unix_ms();
        let signals = commands::signal::given_here();
        loop {
            if client.killed.load(Ordering::Relaxed) || mailbox.is_closed() {
                // Killed (or closed for its output buffer): the rest of its pipeline never runs.
                return Ok(());
            }
            let buf = &rbuf[start..];
            let consumed = match parser.parse(buf, &limits) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    // The writes before the bad request reply first.
                    if !batch.is_empty() {
                        batch.flush(shared, &mut out).await;
                    }
                    // Redis echoes offending bytes raw (`expected '$', got 'X'`), so use bytes.
                    let mut text = b"ERR ".to_vec();
                    text.extend_from_slice(&e.message_bytes());
                    out.error(&text);
                    close = true;
                    break;
                }
            };
            let argv_p = parser.argv(buf);
            if argv_p.is_empty() {
                start += consumed;
                continue;
            }
            let argv: SmallVec<[&[u8]; 8]> = argv_p.iter().collect();
            if shared.pause.is_active() {
                // Paused clients wait before running anything the pause covers; flush what
                // earlier commands produced first so their clients are not held too.
                let queued = session.multi.as_ref().map(|m| m.queued_flags()).unwrap_or_default();
                let covered = shared.pause.covers(&argv, queued);
                if covered {
                    settle(&mut local, &mut timing, Instant::now());
                    write_out(shared, stream, &mut out, &mut effects, &mut batch, &sink, false).await?;
                    // (The arguments still borrow the input buffer: no reading meanwhile.)
                    delivering(shared, stream, &sink, None, shared.pause.wait()).await?;
                }
            }
            if session.reply_mode == ReplyMode::SkipNext {
                session.reply_mode = ReplyMode::Skip;
            }
            // One monotonic clock read per command serves both the command's time (anchored
            // to the wall clock once per batch) and its duration for INFO commandstats.
            let t0 = Instant::now();
            // This read also ends the previous command's timing (its duration then includes
            // parsing this request, a few tens of nanoseconds).
            settle(&mut local, &mut timing, t0);
            let now = anchor_ms + t0.duration_since(anchor).as_millis() as i64;
            let seed = rng.next_u64();
            let cluster = shared.cluster();
            let route = match cluster {
                Some(c) => route(c, session, &argv),
                None => Route::Here,
            };
            // (A closed gate may refuse a write for the log here.)
            let gated = matches!(route, Route::Log(_) | Route::Block(..) | Route::Exec(_))
                && stats.gates.load(Ordering::Relaxed) != 0;
            if (gated || !matches!(route, Route::Log(_))) && !batch.is_empty() {
                // Anything else runs after the writes before it have applied.
                batch.flush(shared, &mut out).await;
            }
            // Where this command's reply starts (`CLIENT REPLY` may drop it).
            let mark = out.len();
            // (`execute` lowers it to what arrived before the command released its locks.)
            session.mail_mark = usize::MAX;
            // Set when the command blocked the client (waited on once the input buffer is free).
            let mut block: Option<BlockOn> = None;
            // The log's commands apply as replays, past the gates: a write refused here
            // (`-MISCONF` after a failed save) is refused before it is sent.
            let route = if gated
                && commands::exec::refused_by_gate(&shared.ks, &**shared, session, &argv, &mut out, &mut local)
            {
                Route::Refused
            } else {
                route
            };
            match route {
                Route::Refused => {}
                Route::Log(cluster) => {
                    // A write in a cluster: through the log, replying with what applying it
                    // gave. A pipeline's consecutive writes go as one entry.
                    let keep = !matches!(session.reply_mode, ReplyMode::Off | ReplyMode::Skip);
                    if !shared.monitors.is_empty() {
                        // Applied through the log as a replay, which monitors do not see:
                        // shown here, when it is sent.
                        use commands::Host as _;
                        if let Some(line) = shared.feed_monitors(session, &argv) {
                            out.raw(&line);
                        }
                    }
                    batch.push(shared, cluster, session, &argv, seed, keep);
                    if batch.is_full() {
                        batch.flush(shared, &mut out).await;
                    }
                }
                Route::Block(cluster, cmd) => block = Some(BlockOn::Cluster(cluster, cmd)),
                Route::Exec(cluster) => {
                    exec_in_cluster(shared, cluster, session, seed, &mut out, &mut local, &mut batch.written).await;
                    timing = commands::exec::resolve(&argv).ok().map(|c| (c, t0));
                }
                Route::Read(cluster) => {
                    let level = session.read_consistency.unwrap_or_else(|| shared.config.read_consistency());
                    match read_fence(cluster, level, &mut read_index, batch.written).await {
                        Ok(()) => {
                            // At the log's time, not this node's: nodes with skewed clocks agree
                            // on what has expired.
                            let now = cluster.clock_ms();
                            let (ran, _) =
                                run_here(shared, session, &argv, now, seed, &mut out, &mut effects, &mut local);
                            if let Some(cmd) = ran {
                                timing = Some((cmd, t0));
                            }
                        }
                        Err(e) => out.error(e.reply_text().as_bytes()),
                    }
                }
                Route::Here => {
                    let (ran, waiter) = run_here(shared, session, &argv, now, seed, &mut out, &mut effects, &mut local);
                    if let Some(cmd) = ran {
                        timing = Some((cmd, t0));
                    }
                    if let Some(w) = waiter {
                        block = Some(BlockOn::Here(w, argv.iter().map(|a| a.to_vec()).collect()));
                    }
                }
            }
            // (Kept for a blocked command, whose reply comes later: `SKIP` covers it too.)
            let reply_dropped = matches!(session.reply_mode, ReplyMode::Off | ReplyMode::Skip);
            match session.reply_mode {
                ReplyMode::Off => out.buf.truncate(mark),
                ReplyMode::Skip => {
                    out.buf.truncate(mark);
                    session.reply_mode = ReplyMode::On;
                }
                _ => {}
            }
            // Messages that arrived before this command released its locks (its own `PUBLISH`
            // to a channel it subscribes to, a keyspace event it caused) go before its reply,
            // as in Redis; later ones after it (`Session::mail_mark`).
            let reply_len = out.len() - mark;
            let mail_before = mailbox.splice_into(&mut out.buf, mark, session.mail_mark);
            if !session.after_reply.is_empty() {
                // Out of band: written whatever the reply mode.
                out.buf.append(&mut session.after_reply);
            }
            session.command_done(argv[0]);
            if mailbox.resp() != session.resp {
                mailbox.set_resp(session.resp);
            }
            start += consumed;
            // The arguments borrow the input buffer, which a blocked wait reads more into.
            drop(argv);
            if let Some(on) = block {
                // Earlier replies go out first; the rest of the input waits, as in Redis.
                settle(&mut local, &mut timing, Instant::now());
                local.flush(stats);
                write_out(shared, stream, &mut out, &mut effects, &mut batch, &sink, false).await?;
                client.publish(session, unix_ms(), rbuf.len() - start);
                client.set_flags("b");
                let mut wait = Blocked { shared, sink: &sink, stream: &mut *stream, rbuf: &mut rbuf };
                let reply = match on {
                    BlockOn::Here(w, argv) => wait.wait(w, &argv, session, &mut effects, &mut local, &mut rng).await,
                    BlockOn::Cluster(cluster, cmd) => {
                        wait.in_cluster(cluster, cmd, session, &mut batch.written, &mut rng).await
                    }
                };
                client.set_flags("N");
                // Mail waiting now (the serving command's keyspace events and invalidations,
                // published before it woke this client) goes before the reply, as in Redis.
                mailbox.drain_into(&mut out.buf);
                match reply {
                    Some(bytes) if !reply_dropped => out.buf.extend_from_slice(&bytes),
                    Some(_) => {}
                    None => return Ok(()),
                }
                // A command run again after a poke may have invalidated keys this client
                // tracks: after its reply, as for any command.
                out.buf.append(&mut session.after_reply);
            }
            if session.close_after_reply {
                close = true;
                break;
            }
            if let Some(ms) = session.wait_ms.take() {
                // WAIT for replicas that do not exist: its reply is held until the timeout
                // (for ever with 0), while earlier replies, and messages meanwhile, go out.
                let at = mark + mail_before;
                let held: Vec<u8> = out.buf.drain(at..at + reply_len).collect();
                settle(&mut local, &mut timing, Instant::now());
                local.flush(stats);
                write_out(shared, stream, &mut out, &mut effects, &mut batch, &sink, false).await?;
                // Input meanwhile is kept for after; a closed socket ends the connection.
                if ms == 0 {
                    delivering(shared, stream, &sink, Some(&mut rbuf), std::future::pending::<()>()).await?;
                } else {
                    let timeout = tokio::time::sleep(Duration::from_millis(ms as u64));
                    delivering(shared, stream, &sink, Some(&mut rbuf), timeout).await?;
                }
                // Mail that came with the timeout goes first, as it arrived before the reply.
                mailbox.drain_into(&mut out.buf);
                out.buf.extend_from_slice(&held);
            }
            if out.len() >= OUTPUT_FLUSH_THRESHOLD {
                settle(&mut local, &mut timing, Instant::now());
                write_out(shared, stream, &mut out, &mut effects, &mut batch, &sink, false).await?;
            }
        }
        if start == rbuf.len() {
            rbuf.clear();
            start = 0;
        } else if start > 0 && (start > rbuf.len() / 2 || rbuf.len() - start < 1024) {
            rbuf.drain(..start);
            start = 0;
        }
        settle(&mut local, &mut timing, Instant::now());
        local.flush(stats);
        client.publish(session, unix_ms(), rbuf.len() - start);
        // The replies wait for the end of the turn (`crate::turn`) unless these commands woke
        // other connections (messages to subscribers, keyspace events, invalidations): those
        // write in this turn anyway, and this client gets its reply before they get theirs, as
        // Redis writes a publisher's reply first. (Held until after its subscribers' messages,
        // a closed-loop publisher published less, and each message cost more: PUBLISH to 100
        // subscribers fell from 4.4M to 3.0M messages delivered per second.)
        let at_turn_end = commands::signal::given_here() == signals;
        write_out(shared, stream, &mut out, &mut effects, &mut batch, &sink, at_turn_end).await?;
        if close {
            return Ok(());
        }
    }
}

/// Where a command runs in a cluster.
enum Route<'a> {
    /// A write: through the log, applied on every node.
    Log(&'a Arc<cluster::Cluster>),
    /// A blocking command (`BLPOP` ...): through the log, again each time a key it waits on
    /// receives a value on this node, until it gets one (see [`Blocked::in_cluster`]).
    Block(&'a Arc<cluster::Cluster>, Vec<Vec<u8>>),
    /// A read: here, once this node is as up to date as the read's consistency asks.
    Read(&'a Arc<cluster::Cluster>),
    /// `EXEC` of a transaction: its commands through the log as one entry (see
    /// [`exec_in_cluster`]).
    Exec(&'a Arc<cluster::Cluster>),
    /// Anything else (and everything outside a cluster): here, now.
    Here,
    /// A command for the log that a closed gate refused here (its error written).
    Refused,
}

/// Routes a command: writes that pass the checks a node can make alone (known command,
/// arity, authentication) go through the log; anything failing them runs here and gets its
/// error here. (`run` checks the gates, `-MISCONF`, before sending a write to the log.)
fn route<'a>(cluster: &'a Arc<cluster::Cluster>, session: &Session, argv: &[&[u8]]) -> Route<'a> {
    use commands::spec::Flags;
    let Ok(cmd) = commands::exec::resolve(argv) else { return Route::Here };
    if !session.authenticated || session.monitor || (session.resp == Resp::V2 && session.subscribed()) {
        // Refused here by `execute` (a monitor may not touch keys; a subscribed RESP2
        // connection takes only the pub/sub commands), or answered here (PING, SUBSCRIBE).
        return Route::Here;
    }
    if let Some(multi) = &session.multi {
        // Queued here; the transaction goes through the log whole at EXEC (one that is
        // doomed already fails here).
        if cmd.spec.name == "exec" && !multi.aborted {
            return Route::Exec(cluster);
        }
        return Route::Here;
    }
    if cmd.spec.name == "watch" {
        // A read: the keys' versions are taken once the node is up to date.
        return Route::Read(cluster);
    }
    if cmd.spec.flags.has(Flags::BLOCKING) && cmd.spec.flags.has(Flags::WRITE) {
        return Route::Block(cluster, argv.iter().map(|a| a.to_vec()).collect());
    }
    // Writes, and messages: a `PUBLISH` applied on every node reaches every node's
    // subscribers, in the log's order.
    if cmd.spec.flags.has(Flags::WRITE) || matches!(cmd.spec.name.as_str(), "publish" | "spublish") {
        return Route::Log(cluster);
    }
    if cmd.spec.flags.has(Flags::READONLY) {
        return Route::Read(cluster);
    }
    Route::Here
}

/// Most writes one log entry carries.
const MAX_BATCH: usize = 1024;

/// A connection's consecutive writes, waiting to go through the log as one entry: a pipeline
/// of N writes costs one round through Raft instead of N. They are sent before anything else
/// of the connection runs and before its replies are written, so replies keep their order.
#[derive(Default)]
struct WriteBatch {
    /// The writes, encoded as they go through the log (none when the batch is empty).
    req: Option<cluster::RequestBuilder>,
    /// Per command: whether its reply is sent (`CLIENT REPLY OFF|SKIP` drop it).
    keep: Vec<bool>,
    /// The channels of the `PUBLISH`es (and whether shard channels) among the commands, by
    /// position: their replies count this node's subscribers, not the leader's.
    publishes: Vec<(usize, Kind, Vec<u8>)>,
    /// The log index of the connection's last applied write (its reads wait for it).
    written: u64,
}

impl WriteBatch {
    #[inline]
    fn is_empty(&self) -> bool {
        self.req.is_none()
    }

    fn is_full(&self) -> bool {
        self.keep.len() >= MAX_BATCH
    }

    /// Adds a write (the session's database and protocol are those of the whole batch: the
    /// commands that change them are not writes, so they flush it first).
    fn push(
        &mut self,
        shared: &Shared,
        cluster: &cluster::Cluster,
        session: &Session,
        argv: &[&[u8]],
        seed: u64,
        keep: bool,
    ) {
        let n = self.keep.len();
        // Writes only: `CLIENT CACHING` matters for reads.
        let req = self.req.get_or_insert_with(|| request_of(shared, cluster, session, false));
        req.push(argv, seed);
        if argv.len() == 3 {
            let name = argv[0];
            let kind = if name.eq_ignore_ascii_case(b"publish") {
                Some(Kind::Channel)
            } else if name.eq_ignore_ascii_case(b"spublish") {
                Some(Kind::Shard)
            } else {
                None
            };
            if let Some(kind) = kind {
                self.publishes.push((n, kind, argv[1].to_vec()));
            }
        }
        self.keep.push(keep);
    }

    /// Sends the batch as one entry and appends the replies kept; every command gets the error
    /// if the entry could not be applied (or its outcome is unknown). (Callers check
    /// `is_empty` first: outside a cluster this is never called.)
    async fn flush(&mut self, shared: &Shared, out: &mut ReplyWriter) {
        let Some(cluster) = shared.cluster() else { return };
        let Some(req) = self.req.take() else { return };
        let req = req.finish();
        let keep = std::mem::take(&mut self.keep);
        let mut publishes = std::mem::take(&mut self.publishes).into_iter().peekable();
        match cluster.write(req).await {
            Ok((replies, index)) => {
                for (i, (reply, keep)) in replies.iter().zip(&keep).enumerate() {
                    let publish = publishes.next_if(|(at, ..)| *at == i);
                    if !*keep {
                        continue;
                    }
                    match publish {
                        // The leader's reply counted the leader's subscribers; Redis Cluster
                        // counts those of the node the publisher is connected to.
                        Some((_, kind, channel)) if reply.first() == Some(&b':') => {
                            out.int(shared.pubsub.receivers(kind, &channel) as i64)
                        }
                        _ => out.buf.extend_from_slice(reply),
                    }
                }
                self.written = self.written.max(index);
            }
            Err(e) => {
                let text = e.reply_text();
                for _ in keep.iter().filter(|k| **k) {
                    out.error(text.as_bytes());
                }
            }
        }
    }
}

/// A request for the client's writes through the log: in its database and protocol, sent as
/// its own (`caching`: its `CLIENT CACHING` in effect).
fn request_of(
    shared: &Shared,
    cluster: &cluster::Cluster,
    session: &Session,
    caching: bool,
) -> cluster::RequestBuilder {
    let resp = if session.resp == Resp::V3 { 3 } else { 2 };
    cluster::Request::builder(session.db as u32, resp, Some(shared.origin(cluster, session.id, caching)))
}

/// `EXEC` in a cluster: the queued commands go through the log as one entry — `TANDEM
/// WATCHED` with the watched keys' versions if any, `MULTI`, the commands, `EXEC` — which every
/// node applies in one piece (`commands::family::transactions`); the client gets the `EXEC`
/// reply. A `SELECT` inside it takes effect on this connection too, as in Redis.
async fn exec_in_cluster(
    shared: &Arc<Shared>,
    cluster: &Arc<cluster::Cluster>,
    session: &mut Session,
    seed: u64,
    out: &mut ReplyWriter,
    local: &mut LocalStats,
    written: &mut u64,
) {
    use commands::family::transactions::{unwatch_all, watched_check};
    let multi = session.multi.take().expect("routed as EXEC inside MULTI");
    if session.watch_dirty.as_ref().is_some_and(|d| d.load(Ordering::Relaxed)) {
        // A watched key was modified by an entry this node applied after `WATCH` (by any
        // client, through any node): that entry precedes this `EXEC` in the log, so the
        // transaction fails, as in Redis, even if the key holds what it held then (the same
        // value written again, or changed and changed back), which the versions compared in
        // the log cannot tell.
        unwatch_all(&shared.ks, session);
        out.null_array();
        // (Counted here, as nothing applies it.)
        local.total_commands += 1;
        return;
    }
    let mut req = request_of(shared, cluster, session, session.caching);
    if let Some(check) = watched_check(session) {
        req.push(&check, seed);
    }
    req.push(&[b"MULTI"], seed);
    let mut selects = Vec::new();
    for (_, argv) in multi.commands() {
        if argv.len() == 2 && argv[0].eq_ignore_ascii_case(b"select") {
            selects.push(argv[1].to_vec());
        }
        req.push(&argv, seed);
    }
    req.push(&[b"EXEC"], seed);
    unwatch_all(&shared.ks, session);
    let req = req.finish();
    match cluster.write(req).await {
        Ok((replies, index)) => {
            *written = (*written).max(index);
            let reply = replies.last().unwrap_or_default();
            // Only a transaction that ran (an array, not a null one) moved the connection.
            let ran = reply.starts_with(b"*") && !reply.starts_with(b"*-1");
            out.buf.extend_from_slice(reply);
            for db in selects.into_iter().filter(|_| ran) {
                if let Some(db) =
                    engine::num::parse_i64(&db).filter(|d| *d >= 0 && (*d as usize) < shared.ks.databases())
                {
                    session.db = db as usize;
                }
            }
        }
        Err(e) => out.error(e.reply_text().as_bytes()),
    }
}

/// Waits until this node may serve a read at `level`: linearizable = applied up to a read
/// index confirmed by the leader after the read arrived (one per batch, `batch_index`), and
/// up to this connection's own writes; session = up to its own writes; stale = at once.
async fn read_fence(
    cluster: &Arc<cluster::Cluster>,
    level: ReadConsistency,
    batch_index: &mut Option<u64>,
    written: u64,
) -> Result<(), cluster::ReadError> {
    let need = match level {
        ReadConsistency::Stale => return Ok(()),
        ReadConsistency::Session => written,
        ReadConsistency::Linearizable => {
            let index = match *batch_index {
                Some(i) => i,
                None => *batch_index.insert(cluster.read_index().await?),
            };
            index.max(written)
        }
    };
    cluster.applied_at_least(need).await
}

/// Executes a command on this node's dataset; returns the command to time, if it ran, and
/// the waiter if it blocked the client.
#[allow(clippy::too_many_arguments)]
#[inline]
fn run_here(
    shared: &Arc<Shared>,
    session: &mut Session,
    argv: &[&[u8]],
    now: i64,
    seed: u64,
    out: &mut ReplyWriter,
    effects: &mut Effects,
    local: &mut LocalStats,
) -> (Option<&'static Command>, Option<Arc<Waiter>>) {
    let mut env = Env { now_ms: now, rng: Rng::new(seed) };
    // In a cluster only applied entries change the dataset: reads hide expired keys without
    // removing them.
    let opts = ExecOptions { may_expire: shared.cluster().is_none(), ..ExecOptions::default() };
    let outcome = execute(&shared.ks, &**shared, session, &mut env, argv, out, effects, local, opts);
    // Queued commands are counted when EXEC runs them.
    (outcome.command.filter(|_| matches!(outcome.status, Status::Ok | Status::Failed)), outcome.blocked)
}

/// What a blocked client waits on.
enum BlockOn<'a> {
    /// Its waiter on this server, and its command's arguments (to run again if poked).
    Here(Arc<Waiter>, Vec<Vec<u8>>),
    /// A blocking command in a cluster (see [`Blocked::in_cluster`]).
    Cluster(&'a Arc<cluster::Cluster>, Vec<Vec<u8>>),
}

/// A connection whose client is blocked (`BLPOP` and friends), waiting for its reply.
struct Blocked<'a> {
    shared: &'a Arc<Shared>,
    sink: &'a Sink<'a>,
    stream: &'a mut TcpStream,
    rbuf: &'a mut Vec<u8>,
}

/// Most input a blocked client may queue before the server stops reading from it.
const BLOCKED_INPUT_LIMIT: usize = 64 << 20;

impl Blocked<'_> {
    /// Waits until the client is served, times out, is unblocked or goes away (`None`), and
    /// returns its reply. Input that arrives meanwhile is kept for after (and a closed socket
    /// ends the wait). The waiter is out of every queue when this returns.
    async fn wait(
        &mut self,
        mut w: Arc<Waiter>,
        argv: &[Vec<u8>],
        session: &mut Session,
        effects: &mut Effects,
        local: &mut LocalStats,
        rng: &mut Rng,
    ) -> Option<Vec<u8>> {
        let shared = self.shared;
        // A client that runs its command again keeps its first deadline.
        let deadline = w.deadline_ms;
        let mut reading = true;
        let reply = loop {
            match w.take() {
                Wake::Served(reply, pos) => {
                    effects.logged_upto = effects.logged_upto.max(pos);
                    break Some(reply);
                }
                Wake::TimedOut | Wake::Unblocked(false) => {
                    let mut out = ReplyWriter::new(session.resp);
                    out.null_array();
                    break Some(out.buf);
                }
                Wake::Unblocked(true) => {
                    let mut out = ReplyWriter::new(session.resp);
                    out.error(commands::CmdError::Unblocked.to_string().as_bytes());
                    break Some(out.buf);
                }
                Wake::Poked => {
                    // A key it waits on holds a value the pushing command could not hand over:
                    // run the command again (it keeps its place in the queues if it blocks).
                    let args: SmallVec<[&[u8]; 8]> = argv.iter().map(|a| a.as_slice()).collect();
                    let mut out = ReplyWriter::new(session.resp);
                    let (_, again) =
                        run_here(shared, session, &args, unix_ms(), rng.next_u64(), &mut out, effects, local);
                    match again {
                        Some(next) => {
                            w = next;
                            continue;
                        }
                        None => break Some(out.buf),
                    }
                }
                Wake::Waiting => {}
            }
            if !self.pause(&w, deadline, &mut reading).await {
                break None;
            }
        };
        shared.waiters.remove(&shared.ks, session.id);
        reply
    }

    /// Waits for something to happen to `w`: a notification, its deadline (which times it
    /// out unless a pop has claimed it), input (kept for later), or the client going away
    /// (false, the wait cancelled).
    async fn pause(&mut self, w: &Waiter, deadline: i64, reading: &mut bool) -> bool {
        let left = (deadline != 0 && !w.is_claimed()).then(|| (deadline - unix_ms()).max(0) as u64);
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16 * 1024);
        }
        tokio::select! {
            _ = w.notify.notified() => true,
            _ = tokio::time::sleep(Duration::from_millis(left.unwrap_or(0))), if left.is_some() => {
                w.time_out();
                true
            }
            r = self.stream.read_buf(self.rbuf), if *reading => match r {
                Ok(0) | Err(_) => {
                    w.cancel();
                    false
                }
                Ok(n) => {
                    self.shared.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    *reading = self.rbuf.len() < BLOCKED_INPUT_LIMIT;
                    true
                }
            },
            _ = self.sink.client.kill_notify.notified() => {
                w.cancel();
                false
            }
            // Messages and invalidations go out while the client waits, as in Redis (its
            // reply, not yet made, follows them).
            _ = self.sink.mailbox.notify.notified() => {
                if send_mail(self.shared, self.stream, self.sink).await.is_err() {
                    w.cancel();
                    return false;
                }
                true
            }
        }
    }

    /// A blocking command in a cluster. A node may not pop on its own, so the command goes
    /// through the log, where every node applies it without blocking; if it found nothing,
    /// the client waits here, registered on its keys so that an entry applied on this node
    /// that fills one pokes it, and proposes the command again — until it gets a value, times
    /// out, is unblocked or goes away. Waiters on different nodes race through the log;
    /// waiters on one node propose in the order they were poked.
    async fn in_cluster(
        &mut self,
        cluster: &Arc<cluster::Cluster>,
        cmd: Vec<Vec<u8>>,
        session: &Session,
        written: &mut u64,
        rng: &mut Rng,
    ) -> Option<Vec<u8>> {
        let shared = self.shared;
        let argv: SmallVec<[&[u8]; 8]> = cmd.iter().map(|a| a.as_slice()).collect();
        let Ok(spec) = commands::exec::resolve(&argv) else { return None };
        let keys: Vec<&[u8]> = match commands::keys::key_positions(&spec.spec, &argv) {
            Ok(pos) => pos.iter().map(|(i, _)| argv[*i]).collect(),
            Err(_) => Vec::new(),
        };
        // BLMPOP and BZMPOP have their timeout first, the others last. A bad one fails the
        // first proposal.
        let name = spec.spec.name.as_str();
        let timeout_arg = if matches!(name, "blmpop" | "bzmpop") { argv[1] } else { argv[argv.len() - 1] };
        let deadline = engine::num::timeout_deadline_ms(timeout_arg, unix_ms()).unwrap_or(0);
        // Only the reply shape and the type of value awaited matter here.
        let kind = match name {
            "blmove" | "brpoplpush" => {
                BlockKind::Move { dst: Vec::new(), from: End::Head, to: End::Head, rpoplpush: false }
            }
            "bzpopmin" | "bzpopmax" | "bzmpop" => BlockKind::ZPop { max: false, count: None },
            _ => BlockKind::Pop(End::Head),
        };
        // What the command answers when applied with nothing to take.
        let mut empty = ReplyWriter::new(session.resp);
        kind.reply_unblocked_empty(&mut empty);
        let w = Arc::new(Waiter::new(session.id, session.db, session.resp, &keys, kind, deadline, true));
        shared.waiters.add(&shared.ks, &w);
        let mut reading = true;
        let reply = 'outer: loop {
            let mut req = request_of(shared, cluster, session, false);
            req.push(&cmd, rng.next_u64());
            let req = req.finish();
            match cluster.write(req).await {
                Ok((replies, index)) => {
                    *written = (*written).max(index);
                    match replies.iter().next() {
                        Some(r) if r != empty.buf => break Some(r.to_vec()),
                        _ => w.found_nothing(),
                    }
                }
                Err(e) => {
                    let mut out = ReplyWriter::new(session.resp);
                    out.error(e.reply_text().as_bytes());
                    break Some(out.buf);
                }
            }
            loop {
                match w.take() {
                    Wake::Poked => continue 'outer,
                    Wake::TimedOut | Wake::Unblocked(false) => {
                        let mut out = ReplyWriter::new(session.resp);
                        out.null_array();
                        break 'outer Some(out.buf);
                    }
                    Wake::Unblocked(true) => {
                        let mut out = ReplyWriter::new(session.resp);
                        out.error(commands::CmdError::Unblocked.to_string().as_bytes());
                        break 'outer Some(out.buf);
                    }
                    Wake::Served(..) | Wake::Waiting => {}
                }
                if !self.pause(&w, deadline, &mut reading).await {
                    break 'outer None;
                }
            }
        };
        shared.waiters.remove(&shared.ks, session.id);
        reply
    }
}

/// Closes the open command timing at `now`.
#[inline]
fn settle(local: &mut LocalStats, timing: &mut Option<(&'static Command, Instant)>, now: Instant) {
    if let Some((cmd, t0)) = timing.take() {
        local.call(cmd, now.duration_since(t0).as_micros() as u64);
    }
}

/// Writes the replies gathered so far: in a cluster after the batched writes have applied
/// (their replies come first); alone, once what their commands logged is as durable as
/// `appendfsync` promises: written to the kernel (every policy, as Redis writes before it
/// replies) and, under `always`, synced. `at_turn_end`: the replies of a whole batch wait
/// for the end of the thread's turn (`crate::turn`); messages to an idle client and replies
/// written early (a blocked command, `WAIT`, a pause, a large output) go at once.
async fn write_out(
    shared: &Shared,
    stream: &mut TcpStream,
    out: &mut ReplyWriter,
    effects: &mut Effects,
    batch: &mut WriteBatch,
    sink: &Sink<'_>,
    at_turn_end: bool,
) -> std::io::Result<()> {
    if !batch.is_empty() {
        batch.flush(shared, out).await;
    }
    if effects.logged_upto > 0 {
        durable(shared, std::mem::take(&mut effects.logged_upto)).await;
    }
    if at_turn_end && !out.is_empty() {
        // After the other connections of this thread that are ready have run (see `turn`).
        crate::turn::end_of_turn().await;
    } else {
        // A write that goes now, or nothing to write: the turn ends for the replies waiting.
        crate::turn::end();
    }
    if !out.is_empty() {
        send(shared, stream, &out.buf, sink).await?;
        out.clear();
    }
    Ok(())
}

/// Writes `bytes` (replies, or messages for a waiting client) to the socket.
async fn send(shared: &Shared, stream: &mut TcpStream, bytes: &[u8], sink: &Sink<'_>) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mailbox = sink.mailbox;
    // Replies count towards `client-output-buffer-limit` while they wait for the socket;
    // messages arriving meanwhile check the limit against them too.
    if !mailbox.check_replies(bytes.len(), unix_ms()) {
        return Err(std::io::Error::other("output buffer limit reached"));
    }
    mailbox.set_unsent(bytes.len());
    tokio::select! {
        // The write first: it usually completes at once, and the kill signal is then never
        // polled.
        biased;
        r = stream.write_all(bytes) => r?,
        // A client killed (or closed for its output buffer) while the socket is full.
        _ = sink.client.kill_notify.notified() => return Err(std::io::Error::other("client killed")),
    }
    mailbox.set_unsent(0);
    shared.net_output_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Sends what waits in the client's mailbox (to a client waiting for its reply).
async fn send_mail(shared: &Shared, stream: &mut TcpStream, sink: &Sink<'_>) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    sink.mailbox.drain_into(&mut bytes);
    // A write that goes now: the turn ends for the replies waiting (see `crate::turn`).
    crate::turn::end();
    send(shared, stream, &bytes, sink).await
}

/// Waits for `until` (a `WAIT` timeout, a `CLIENT PAUSE`) while sending the client's messages
/// as they arrive, as Redis writes to a waiting client. With `rbuf`, input arriving meanwhile
/// is kept for later (up to [`BLOCKED_INPUT_LIMIT`], after which reading stops) and a closed
/// socket seen meanwhile ends the wait with an error, as does the client being killed.
async fn delivering<F: std::future::Future>(
    shared: &Shared,
    stream: &mut TcpStream,
    sink: &Sink<'_>,
    mut rbuf: Option<&mut Vec<u8>>,
    until: F,
) -> std::io::Result<F::Output> {
    let mut until = std::pin::pin!(until);
    loop {
        let reading = rbuf.as_ref().is_some_and(|b| b.len() < BLOCKED_INPUT_LIMIT);
        if let Some(b) = rbuf.as_deref_mut() {
            if b.capacity() - b.len() < 4096 {
                b.reserve(16 * 1024);
            }
        }
        // (A disabled `select!` branch still builds its future: hence a read that may never be.)
        let read = async {
            match rbuf.as_deref_mut() {
                Some(b) if reading => stream.read_buf(b).await,
                _ => std::future::pending().await,
            }
        };
        let mail = tokio::select! {
            biased;
            v = &mut until => return Ok(v),
            _ = sink.client.kill_notify.notified() => return Err(std::io::Error::other("client killed")),
            _ = sink.mailbox.notify.notified() => true,
            r = read => match r? {
                0 => return Err(std::io::Error::other("client closed")),
                n => {
                    shared.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    false
                }
            },
        };
        if mail {
            send_mail(shared, stream, sink).await?;
        }
    }
}

/// What woke an idle connection.
enum Woke {
    /// Bytes from the client (0: closed).
    Read(usize),
    /// Messages in its mailbox.
    Mail,
}

/// Where a connection's output goes besides the socket: its client (killed while writing)
/// and its mailbox (the output-buffer limit).
struct Sink<'a> {
    client: &'a Client,
    mailbox: &'a Mailbox,
}

/// Returns once the log is written up to `pos` and, under `appendfsync always`, synced.
async fn durable(shared: &Shared, pos: u64) {
    let aof = &shared.aof;
    if aof.written() < pos {
        // Let the other connections of this thread that are ready run their commands first:
        // then one write(2) covers all of them, as Redis writes once per event-loop turn.
        tokio::task::yield_now().await;
        if aof.written() < pos {
            aof.write_pending(shared);
        }
    }
    if aof.policy() != Fsync::Always {
        return;
    }
    let mut rx = aof.subscribe();
    loop {
        if *rx.borrow_and_update() >= pos || !aof.is_on() {
            return;
        }
        // Our bytes are written (or a failed write is being retried): sync them here unless a
        // sync is in flight, whose end notifies `rx`.
        if aof.written() >= pos && aof.lead_sync(shared) {
            continue;
        }
        // The timeout re-checks `is_on` (switching the AOF off releases every waiter) and
        // retries after a failed write.
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        if aof.written() < pos {
            aof.write_pending(shared);
        }
    }
}
