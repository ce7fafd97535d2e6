//! The server family: `INFO`, `CONFIG`, `DEBUG`, `SHUTDOWN`, `TIME`, `DBSIZE`, `FLUSHDB`,
//! `FLUSHALL`, `SWAPDB`, `WAIT`, `COMMAND`, `SAVE`/`BGSAVE`/`LASTSAVE`, and the reset commands
//! clients send on connect (`FUNCTION FLUSH`, `SCRIPT FLUSH`) answered as an empty Redis would.

use crate::args::{self, is};
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::keys::{key_positions, KeysError};
use crate::spec::{BeginSearch, CommandSpec, FindKeys, Flags, ACL_CATEGORIES};
use crate::table::{bind, table, Binding, Command, LockMode};
use engine::digest;
use protocol::ReplyWriter;

/// The Redis version reported to clients that gate features on it.
pub const REDIS_VERSION: &str = "7.2.4";

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("time", time, LockMode::None),
    bind("monitor", monitor, LockMode::None),
    bind("info", info, LockMode::None),
    bind("config|get", config_get, LockMode::None),
    bind("config|set", config_set, LockMode::None),
    bind("config|resetstat", config_resetstat, LockMode::None),
    bind("config|rewrite", config_rewrite, LockMode::None),
    bind("config|help", config_help, LockMode::None),
    bind("debug", debug, LockMode::All),
    bind("shutdown", shutdown, LockMode::None),
    bind("dbsize", dbsize, LockMode::All),
    bind("flushdb", flushdb, LockMode::All),
    bind("flushall", flushall, LockMode::All),
    bind("save", save, LockMode::None),
    bind("bgsave", bgsave, LockMode::None),
    bind("bgrewriteaof", bgrewriteaof, LockMode::None),
    bind("lastsave", lastsave, LockMode::None),
    bind("role", role, LockMode::None),
    bind("swapdb", swapdb, LockMode::All),
    bind("wait", wait, LockMode::None),
    bind("command", command, LockMode::None),
    bind("command|count", command_count, LockMode::None),
    bind("command|info", command_info, LockMode::None),
    bind("command|docs", command_docs, LockMode::None),
    bind("command|list", command_list, LockMode::None),
    bind("command|getkeys", command_getkeys, LockMode::None),
    bind("command|getkeysandflags", command_getkeysandflags, LockMode::None),
    bind("command|help", command_help, LockMode::None),
    bind("function|flush", function_flush, LockMode::None),
    bind("script|flush", script_flush, LockMode::None),
];

/// Writes a `HELP` reply in Redis's shape.
pub fn help_reply(ctx: &mut Ctx, cmd: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").as_bytes());
    for l in lines {
        ctx.out.simple(l.as_bytes());
    }
    ctx.out.simple(b"HELP");
    ctx.out.simple(b"    Prints this help.");
}

/// `MONITOR`: from now on this client sees every command the server runs (see
/// [`crate::monitor`]). A second `MONITOR` gets no reply at all, as in Redis.
fn monitor(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    if !ctx.may_block {
        // Inside `EXEC`.
        return Err(CmdError::err("MONITOR isn't allowed for DENY BLOCKING client"));
    }
    if ctx.session.monitor {
        return Ok(());
    }
    let (Some(monitors), Some(mailbox)) = (ctx.host.monitors(), ctx.session.mailbox.clone()) else {
        return Err(CmdError::err("MONITOR is not available here"));
    };
    monitors.add(mailbox);
    ctx.session.monitor = true;
    ctx.out.ok();
    Ok(())
}

/// `TIME`
fn time(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let us = ctx.host.unix_time_us();
    ctx.out.array(2);
    ctx.out.bulk_int(us / 1_000_000);
    ctx.out.bulk_int(us % 1_000_000);
    Ok(())
}

/// `INFO [section ...]`
fn info(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let sections: Vec<String> = argv[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let text = ctx.host.info(&sections, ctx.session);
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// `CONFIG GET parameter [parameter ...]`
fn config_get(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for p in &argv[2..] {
        // A name without glob characters is looked up directly and echoed as typed.
        let exact = !p.iter().any(|c| matches!(c, b'[' | b'*' | b'?'));
        for (k, v) in ctx.host.config_get(p) {
            let k = if exact { String::from_utf8_lossy(p).into_owned() } else { k };
            if !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(&k)) {
                pairs.push((k, v));
            }
        }
    }
    ctx.out.map(pairs.len());
    for (k, v) in pairs {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

/// `CONFIG SET parameter value [parameter value ...]`
fn config_set(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if !argv.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let pairs: Vec<(&[u8], &[u8])> = argv[2..].chunks(2).map(|c| (c[0], c[1])).collect();
    ctx.host.config_set(&pairs).map_err(CmdError::Other)?;
    ctx.out.ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.host.config_resetstat();
    for c in table().all() {
        reset_command_stats(c);
    }
    ctx.out.ok();
    Ok(())
}

fn reset_command_stats(c: &Command) {
    use std::sync::atomic::Ordering::Relaxed;
    c.stats.calls.store(0, Relaxed);
    c.stats.usec.store(0, Relaxed);
    c.stats.rejected_calls.store(0, Relaxed);
    c.stats.failed_calls.store(0, Relaxed);
    for s in c.subcommands.values() {
        reset_command_stats(s);
    }
}

fn config_rewrite(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.host.config_rewrite().map_err(CmdError::Other)?;
    ctx.out.ok();
    Ok(())
}

fn config_help(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    help_reply(ctx, "CONFIG", &["GET <pattern>", "SET <directive> <value>", "RESETSTAT", "REWRITE"]);
    Ok(())
}

/// `DEBUG SLEEP|DIGEST|DIGEST-VALUE|OBJECT|SET-ACTIVE-EXPIRE|HELP ...`
fn debug(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let sub = argv[1];
    if is(sub, "HELP") {
        help_reply(
            ctx,
            "DEBUG",
            &[
                "DIGEST",
                "DIGEST-VALUE <key> [<key> ...]",
                "OBJECT <key>",
                "SLEEP <seconds>",
                "JMAP",
                "RELOAD",
                "SET-ACTIVE-EXPIRE <0|1>",
            ],
        );
    } else if is(sub, "RELOAD") {
        // Redis's options (MERGE, NOFLUSH, NOSAVE) are not supported: plain save-flush-load.
        if argv.len() != 2 {
            return Err(CmdError::Syntax);
        }
        let tracking = ctx.store.tracking;
        let mut shards: Vec<&mut engine::Shard> = ctx.store.locks.shards().collect();
        // Emptied and loaded again: for client-side caching, a flush (told even if the
        // reload fails half-way, the dataset emptied).
        for s in shards.iter_mut() {
            tracking.clear(&mut s.tracked);
        }
        ctx.store.flushed = true;
        ctx.host.debug_reload(&mut shards).map_err(CmdError::Other)?;
        ctx.out.ok();
    } else if is(sub, "SLEEP") && argv.len() == 3 {
        let secs = args::float(argv[2])?;
        // Redis blocks the whole server; here the shards stay locked for the duration, which
        // blocks every command that touches keys, as the user asked.
        if secs > 0.0 {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
        }
        ctx.out.ok();
    } else if is(sub, "DIGEST") && argv.len() == 2 {
        let mut fin = [0u8; 20];
        let guards: Vec<&engine::Shard> = ctx.store.locks.shards_read().collect();
        digest_of(&guards, &mut fin);
        ctx.out.simple(digest::to_hex(&fin).as_bytes());
    } else if is(sub, "DIGEST-VALUE") {
        ctx.out.array(argv.len() - 2);
        for key in &argv[2..] {
            let db = ctx.store.db;
            let (d, h) = ctx.store.db_for_read(db, key);
            let dg = digest::value_digest(d, h, key);
            ctx.out.simple(digest::to_hex(&dg).as_bytes());
        }
    } else if is(sub, "OBJECT") && argv.len() == 3 {
        let key = argv[2];
        let now = ctx.now_ms();
        // Looked at, not accessed (Redis finds it in the dict directly): no access time,
        // no hit or miss counted.
        let Some(e) = ctx.store.peek(key) else {
            return Err(CmdError::NoSuchKey);
        };
        let enc = e.encoding();
        // The serialized length excludes the type byte and the DUMP trailer.
        let ser = engine::rdb::dump_object(e).len() - 11;
        let lru = ctx.store.lru_of(key).unwrap_or(0);
        let idle = (now / 1000) as u32 - lru.min((now / 1000) as u32);
        let text = format!(
            "Value at:0x0 refcount:1 encoding:{enc} serializedlength:{ser} lru:{} lru_seconds_idle:{idle}",
            lru & 0xFF_FFFF
        );
        ctx.out.simple(text.as_bytes());
    } else if is(sub, "SET-ACTIVE-EXPIRE") && argv.len() == 3 {
        ctx.host.set_active_expire(args::int(argv[2])? != 0);
        ctx.out.ok();
    } else if is(sub, "JMAP") {
        ctx.out.ok();
    } else {
        return Err(CmdError::UnknownSubcommand { sub: sub.to_vec(), cmd: "DEBUG".into() });
    }
    Ok(())
}

fn digest_of(shards: &[&engine::Shard], fin: &mut [u8; 20]) {
    let dbs = shards.first().map(|s| s.dbs.len()).unwrap_or(0);
    for db in 0..dbs {
        if shards.iter().all(|s| s.dbs[db].is_empty()) {
            continue;
        }
        digest::mix_db(fin, db);
        for s in shards {
            digest::xor_db_keys(fin, &s.dbs[db]);
        }
    }
}

/// `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]`
fn shutdown(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut save = None;
    let (mut now, mut force, mut abort) = (false, false, false);
    for a in &argv[1..] {
        if is(a, "NOSAVE") && save.is_none() {
            save = Some(false);
        } else if is(a, "SAVE") && save.is_none() {
            save = Some(true);
        } else if is(a, "NOW") {
            now = true;
        } else if is(a, "FORCE") {
            force = true;
        } else if is(a, "ABORT") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if abort && (save.is_some() || now || force) {
        return Err(CmdError::Syntax);
    }
    ctx.host.shutdown(save, now, force, abort).map_err(CmdError::Other)?;
    if abort {
        ctx.out.ok();
    } else {
        // The server closes the connection without replying, as Redis does on success.
        ctx.session.close_after_reply = true;
    }
    Ok(())
}

/// `DBSIZE`
fn dbsize(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let db = ctx.store.db;
    let n: usize = ctx.store.locks.shards_read().map(|s| s.dbs[db].len()).sum();
    ctx.out.int(n as i64);
    Ok(())
}

/// Parses the optional `ASYNC | SYNC` of the flush commands; true for ASYNC.
fn flush_mode(argv: &[&[u8]]) -> Result<bool, CmdError> {
    match argv.len() {
        1 => Ok(false),
        2 if is(argv[1], "ASYNC") => Ok(true),
        2 if is(argv[1], "SYNC") => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// Clears the given databases of every locked shard. Large datasets are freed on another
/// thread for ASYNC, so the shards are held only for the swap.
fn flush(ctx: &mut Ctx, dbs: std::ops::Range<usize>, asynchronous: bool) {
    let mut doomed: Vec<engine::Db> = Vec::new();
    let mut removed = 0;
    let tracking = ctx.store.tracking;
    // Every tracking client is told everything changed, and every tracked key forgotten
    // (keys are tracked by name alone, so even a `FLUSHDB` of another database does it).
    ctx.store.flushed = true;
    for s in ctx.store.locks.shards() {
        tracking.clear(&mut s.tracked);
        for db in dbs.clone() {
            s.touch_watched_in(db, None);
            removed += s.dbs[db].len();
            if asynchronous {
                let fresh = engine::Db::new_like(&s.dbs[db]);
                doomed.push(std::mem::replace(&mut s.dbs[db], fresh));
            } else {
                s.dbs[db].clear();
            }
        }
    }
    if !doomed.is_empty() {
        std::thread::spawn(move || drop(doomed));
    }
    // Flushes are always logged, even when nothing was removed, as in Redis.
    ctx.store.dirty += removed as u64 + 1;
}

/// `FLUSHDB [ASYNC | SYNC]`
fn flushdb(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let asynchronous = flush_mode(argv)?;
    let db = ctx.store.db;
    flush(ctx, db..db + 1, asynchronous);
    ctx.out.ok();
    Ok(())
}

/// `FLUSHALL [ASYNC | SYNC]`
fn flushall(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let asynchronous = flush_mode(argv)?;
    let n = ctx.store.ks.databases();
    flush(ctx, 0..n, asynchronous);
    let shards: Vec<&mut engine::Shard> = ctx.store.locks.shards().collect();
    ctx.host.flushed_all(&shards);
    ctx.out.ok();
    Ok(())
}

/// `SAVE`
fn save(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.host.save().map_err(CmdError::Other)?;
    ctx.out.ok();
    Ok(())
}

/// `BGSAVE [SCHEDULE]`
fn bgsave(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let schedule = match argv.len() {
        1 => false,
        2 if is(argv[1], "SCHEDULE") => true,
        _ => return Err(CmdError::Syntax),
    };
    let status = ctx.host.bgsave(schedule).map_err(CmdError::Other)?;
    ctx.out.simple(status.as_bytes());
    Ok(())
}

/// `BGREWRITEAOF`
fn bgrewriteaof(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let status = ctx.host.bgrewriteaof().map_err(CmdError::Other)?;
    ctx.out.simple(status.as_bytes());
    Ok(())
}

/// `LASTSAVE`
fn lastsave(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.host.lastsave());
    Ok(())
}

/// `ROLE`: always a master with no replicas. In a cluster every node takes writes (followers
/// forward them), so clients must treat every node as a master; Raft members are not Redis
/// replicas (`TANDEM MEMBERS` lists them). The offset is the last applied log index there.
fn role(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(ctx.host.repl_offset());
    ctx.out.array(0);
    Ok(())
}

/// `SWAPDB index1 index2`
fn swapdb(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let a = engine::num::parse_i64(argv[1]).ok_or_else(|| CmdError::err("invalid first DB index"))?;
    let b = engine::num::parse_i64(argv[2]).ok_or_else(|| CmdError::err("invalid second DB index"))?;
    let n = ctx.store.ks.databases() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CmdError::DbIndexOutOfRange);
    }
    if a != b {
        let mut waited = Vec::new();
        for s in ctx.store.locks.shards() {
            s.touch_watched_in(a as usize, Some(b as usize));
            s.touch_watched_in(b as usize, Some(a as usize));
            s.dbs.swap(a as usize, b as usize);
            // Blocked clients stay with their database number (as in Redis): a list or
            // sorted set that arrives under a key they wait on serves them.
            if !s.blocked.is_empty() {
                for db in [a as usize, b as usize] {
                    waited.extend(s.blocked.keys_of(db).into_iter().map(|k| (db, k.into_vec())));
                }
            }
        }
        for (db, key) in waited {
            if matches!(ctx.store.peek_in(db, &key), Some(engine::Value::List(_) | engine::Value::ZSet(_))) {
                ctx.store.ready.push((db, key));
            }
        }
    }
    ctx.store.dirty += 1;
    ctx.out.ok();
    Ok(())
}

/// `WAIT numreplicas timeout`: this node has no replicas, so the answer is 0; when replicas
/// are asked for, the server holds the reply until the timeout as Redis does.
fn wait(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let replicas = args::int(argv[1])?;
    let timeout =
        engine::num::parse_i64(argv[2]).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    // Inside a transaction WAIT answers at once, as in Redis.
    if replicas > 0 && ctx.may_block {
        ctx.session.wait_ms = Some(timeout);
    }
    ctx.out.int(0);
    Ok(())
}

fn acl_categories(acl: u32) -> Vec<&'static str> {
    ACL_CATEGORIES.iter().enumerate().filter(|(i, _)| acl & (1 << i) != 0).map(|(_, c)| *c).collect()
}

fn reply_key_spec_flags(out: &mut ReplyWriter, flags: &[String]) {
    out.set(flags.len());
    for f in flags {
        let name = match f.as_str() {
            "RO" | "RW" | "OW" | "RM" => f.clone(),
            other => other.to_ascii_lowercase(),
        };
        out.simple(name.as_bytes());
    }
}

/// One command's `COMMAND INFO` entry.
fn reply_command_info(out: &mut ReplyWriter, c: &Command) {
    let s = &c.spec;
    out.array(10);
    out.bulk(s.name.as_bytes());
    out.int(s.arity);
    let flags: Vec<&str> =
        Flags::ALL.iter().filter(|(f, _, r)| r.is_some() && s.flags.has(*f)).map(|(_, _, r)| r.unwrap()).collect();
    out.set(flags.len());
    for f in flags {
        out.simple(f.as_bytes());
    }
    out.int(s.legacy_range.0);
    out.int(s.legacy_range.1);
    out.int(s.legacy_range.2);
    let cats = acl_categories(s.acl);
    out.set(cats.len());
    for c in cats {
        out.simple(format!("@{c}").as_bytes());
    }
    out.set(s.tips.len());
    for t in &s.tips {
        out.bulk(t.as_bytes());
    }
    out.set(s.key_specs.len());
    for ks in &s.key_specs {
        out.map(3);
        out.bulk(b"flags");
        reply_key_spec_flags(out, &ks.flags);
        out.bulk(b"begin_search");
        out.map(2);
        out.bulk(b"type");
        match &ks.begin {
            BeginSearch::Index(pos) => {
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map(1);
                out.bulk(b"index");
                out.int(*pos as i64);
            }
            BeginSearch::Keyword { keyword, startfrom } => {
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map(2);
                out.bulk(b"keyword");
                out.bulk(keyword.as_bytes());
                out.bulk(b"startfrom");
                out.int(*startfrom);
            }
            BeginSearch::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
        out.bulk(b"find_keys");
        out.map(2);
        out.bulk(b"type");
        match &ks.find {
            FindKeys::Range { lastkey, step, limit } => {
                out.bulk(b"range");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"lastkey");
                out.int(*lastkey);
                out.bulk(b"keystep");
                out.int(*step as i64);
                out.bulk(b"limit");
                out.int(*limit as i64);
            }
            FindKeys::Keynum { keynumidx, firstkey, step } => {
                out.bulk(b"keynum");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"keynumidx");
                out.int(*keynumidx as i64);
                out.bulk(b"firstkey");
                out.int(*firstkey as i64);
                out.bulk(b"keystep");
                out.int(*step as i64);
            }
            FindKeys::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
    }
    let subs: Vec<&Command> = c.subcommands.values().filter(|s| s.handler.is_some()).collect();
    if c.subcommands.is_empty() {
        // Redis replies an empty set for commands without subcommands, an array otherwise.
        out.set(0);
    } else {
        out.array(subs.len());
    }
    for sub in subs {
        reply_command_info(out, sub);
    }
}

/// `COMMAND`: every implemented command.
fn command(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let cmds: Vec<&Command> = table().implemented().collect();
    ctx.out.array(cmds.len());
    for c in cmds {
        reply_command_info(ctx.out, c);
    }
    Ok(())
}

fn command_count(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.int(table().implemented().count() as i64);
    Ok(())
}

/// Finds a command or `container|sub` by the name given to `COMMAND INFO/DOCS`.
fn find_by_name(name: &[u8]) -> Option<&'static Command> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    match lower.split_once('|') {
        Some((c, s)) => crate::table::lookup(c.as_bytes())?.subcommand(s.as_bytes()),
        None => crate::table::lookup(lower.as_bytes()),
    }
}

/// `COMMAND INFO [command-name ...]`
fn command_info(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 {
        return command(ctx, argv);
    }
    ctx.out.array(argv.len() - 2);
    for name in &argv[2..] {
        match find_by_name(name) {
            Some(c) => reply_command_info(ctx.out, c),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn reply_arguments(out: &mut ReplyWriter, args: &serde_json::Value) {
    let list = args.as_array().map(|v| v.as_slice()).unwrap_or(&[]);
    out.array(list.len());
    for a in list {
        let mut fields: Vec<(&str, serde_json::Value)> = Vec::new();
        for f in ["name", "type", "display", "key_spec_index", "token", "since", "deprecated_since"] {
            if let Some(v) = a.get(f) {
                let name = if f == "display" { "display_text" } else { f };
                fields.push((name, v.clone()));
            }
        }
        let mut flags = Vec::new();
        for f in ["optional", "multiple", "multiple_token"] {
            if a.get(f).and_then(|v| v.as_bool()).unwrap_or(false) {
                flags.push(f);
            }
        }
        let nested = a.get("arguments");
        out.map(fields.len() + usize::from(!flags.is_empty()) + usize::from(nested.is_some()));
        for (k, v) in fields {
            out.bulk(k.as_bytes());
            match v {
                serde_json::Value::Number(n) => out.int(n.as_i64().unwrap_or(0)),
                serde_json::Value::String(s) => out.bulk(s.as_bytes()),
                other => out.bulk(other.to_string().as_bytes()),
            }
        }
        if !flags.is_empty() {
            out.bulk(b"flags");
            out.set(flags.len());
            for f in flags {
                out.simple(f.as_bytes());
            }
        }
        if let Some(n) = nested {
            out.bulk(b"arguments");
            reply_arguments(out, n);
        }
    }
}

/// One command's `COMMAND DOCS` map (our facts without prose: no summaries).
fn reply_command_docs(out: &mut ReplyWriter, c: &Command) {
    let s: &CommandSpec = &c.spec;
    let subs: Vec<&Command> = c.subcommands.values().filter(|s| s.handler.is_some()).collect();
    let has_args = s.arguments.as_array().is_some_and(|a| !a.is_empty());
    let n = 2
        + usize::from(s.complexity.is_some())
        + usize::from(!s.doc_flags.is_empty())
        + usize::from(s.deprecated_since.is_some())
        + usize::from(s.replaced_by.is_some())
        + usize::from(!s.history.is_empty())
        + usize::from(has_args)
        + usize::from(!subs.is_empty());
    out.map(n);
    out.bulk(b"since");
    out.bulk(s.since.as_bytes());
    out.bulk(b"group");
    out.bulk(s.group.as_bytes());
    if let Some(cx) = &s.complexity {
        out.bulk(b"complexity");
        out.bulk(cx.as_bytes());
    }
    if !s.doc_flags.is_empty() {
        out.bulk(b"doc_flags");
        out.set(s.doc_flags.len());
        for f in &s.doc_flags {
            out.simple(f.as_bytes());
        }
    }
    if let Some(d) = &s.deprecated_since {
        out.bulk(b"deprecated_since");
        out.bulk(d.as_bytes());
    }
    if let Some(r) = &s.replaced_by {
        out.bulk(b"replaced_by");
        out.bulk(r.as_bytes());
    }
    if !s.history.is_empty() {
        out.bulk(b"history");
        out.array(s.history.len());
        for h in &s.history {
            out.array(2);
            out.bulk(h.as_bytes());
            out.bulk(b"");
        }
    }
    if has_args {
        out.bulk(b"arguments");
        reply_arguments(out, &s.arguments);
    }
    if !subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(subs.len());
        for sub in subs {
            out.bulk(sub.spec.name.as_bytes());
            reply_command_docs(out, sub);
        }
    }
}

/// `COMMAND DOCS [command-name ...]`
fn command_docs(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let cmds: Vec<&Command> = if argv.len() == 2 {
        table().implemented().collect()
    } else {
        argv[2..].iter().filter_map(|n| find_by_name(n)).collect()
    };
    ctx.out.map(cmds.len());
    for c in cmds {
        ctx.out.bulk(c.spec.name.as_bytes());
        reply_command_docs(ctx.out, c);
    }
    Ok(())
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`
fn command_list(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    enum Filter<'a> {
        None,
        Module,
        AclCat(u32),
        Pattern(&'a [u8]),
    }
    let filter = match argv.len() {
        2 => Filter::None,
        5 if is(argv[2], "FILTERBY") => {
            if is(argv[3], "MODULE") {
                Filter::Module
            } else if is(argv[3], "ACLCAT") {
                let cat = String::from_utf8_lossy(argv[4]).to_ascii_lowercase();
                match ACL_CATEGORIES.iter().position(|c| *c == cat) {
                    Some(i) => Filter::AclCat(1 << i),
                    // An unknown category matches nothing, as in Redis.
                    None => Filter::AclCat(0),
                }
            } else if is(argv[3], "PATTERN") {
                Filter::Pattern(argv[4])
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let mut names: Vec<&str> = Vec::new();
    for c in table().implemented() {
        for cmd in std::iter::once(c).chain(c.subcommands.values().filter(|s| s.handler.is_some())) {
            let keep = match &filter {
                Filter::None => true,
                Filter::Module => false,
                Filter::AclCat(bit) => *bit != 0 && cmd.spec.acl & bit != 0,
                Filter::Pattern(p) => engine::glob::glob_match(p, cmd.spec.name.as_bytes(), true),
            };
            if keep {
                names.push(&cmd.spec.name);
            }
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

/// Resolves the command of `COMMAND GETKEYS` and finds its keys, with Redis's errors.
/// Key positions paired with the index of the key spec that found them.
type KeyHits = Vec<(usize, usize)>;

fn getkeys_of<'a>(argv: &'a [&'a [u8]]) -> Result<(&'static Command, KeyHits), CmdError> {
    let sub = &argv[2..];
    let cmd = match crate::exec::resolve(sub) {
        Ok(c) => c,
        Err((CmdError::WrongArity(_), _)) => {
            return Err(CmdError::err("Invalid number of arguments specified for command"))
        }
        Err(_) => return Err(CmdError::err("Invalid command specified")),
    };
    if cmd.spec.key_specs.is_empty() {
        return Err(CmdError::err("The command has no key arguments"));
    }
    match key_positions(&cmd.spec, sub) {
        Ok(p) if !p.is_empty() => Ok((cmd, p.into_iter().collect())),
        Ok(_) | Err(KeysError::Invalid) | Err(KeysError::Unknown) => {
            Err(CmdError::err("Invalid arguments specified for command"))
        }
    }
}

/// `COMMAND GETKEYS command [arg ...]`
fn command_getkeys(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (_, keys) = getkeys_of(argv)?;
    ctx.out.array(keys.len());
    for (i, _) in keys {
        ctx.out.bulk(argv[2 + i]);
    }
    Ok(())
}

/// `COMMAND GETKEYSANDFLAGS command [arg ...]`
fn command_getkeysandflags(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (cmd, keys) = getkeys_of(argv)?;
    ctx.out.array(keys.len());
    for (i, si) in keys {
        ctx.out.array(2);
        ctx.out.bulk(argv[2 + i]);
        let flags = crate::keys::key_flags(&cmd.spec, si, &argv[2..]);
        reply_key_spec_flags(ctx.out, &flags);
    }
    Ok(())
}

fn command_help(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    help_reply(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "COUNT",
            "DOCS [<command-name> ...]",
            "GETKEYS <full-command>",
            "GETKEYSANDFLAGS <full-command>",
            "INFO [<command-name> ...]",
            "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
        ],
    );
    Ok(())
}

/// `FUNCTION FLUSH [ASYNC | SYNC]`: there are no functions yet, so there is nothing to flush.
fn function_flush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::SubcommandSyntax { sub: argv[1].to_vec(), cmd: "FUNCTION".into() });
    }
    if argv.len() == 3 && !is(argv[2], "SYNC") && !is(argv[2], "ASYNC") {
        return Err(CmdError::err("FUNCTION FLUSH only supports SYNC|ASYNC option"));
    }
    ctx.out.ok();
    Ok(())
}

/// `SCRIPT FLUSH [ASYNC | SYNC]`: the script cache is empty until scripting exists.
fn script_flush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 || (argv.len() == 3 && !is(argv[2], "SYNC") && !is(argv[2], "ASYNC")) {
        // Redis's own wording ("support"), kept for compatibility.
        return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    ctx.out.ok();
    Ok(())
}
