//! The hash family (`t_hash.c`): fields and values under one key.
//!
//! A hash that loses its last field is deleted. `HINCRBYFLOAT` is logged as the `HSET` of its
//! result (`HSETEX ... KEEPTTL` for a field with a time to live), as Redis propagates it, so
//! replay never depends on float formatting. Field expiry commands are in `hash_expire`.

use crate::args::{self, is};
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::family::lists::{range_arg, reply_elem};
use crate::table::{bind, Binding, LockMode::Keys};
use engine::glob::glob_match;
use engine::listpack::LpValue;
use engine::{num, Hash};

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("hset", hset, Keys),
    bind("hmset", hmset, Keys),
    bind("hsetnx", hsetnx, Keys),
    bind("hget", hget, Keys),
    bind("hmget", hmget, Keys),
    bind("hdel", hdel, Keys),
    bind("hlen", hlen, Keys),
    bind("hstrlen", hstrlen, Keys),
    bind("hexists", hexists, Keys),
    bind("hkeys", hkeys, Keys),
    bind("hvals", hvals, Keys),
    bind("hgetall", hgetall, Keys),
    bind("hincrby", hincrby, Keys),
    bind("hincrbyfloat", hincrbyfloat, Keys),
    bind("hrandfield", hrandfield, Keys),
    bind("hscan", hscan, Keys),
];

/// The hash at `key` for a write, created empty if missing (`hashTypeLookupWriteOrCreate`).
/// The caller must add a field before the command ends.
fn hash_or_create<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut Hash, CmdError> {
    ctx.store.hash_or_create(key, Hash::new)
}

/// Sets every field/value pair of `argv[2..]`; the number of new fields.
fn set_pairs(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<usize, CmdError> {
    if argv.len() % 2 == 1 {
        return Err(CmdError::WrongArity(String::from_utf8_lossy(argv[0]).to_lowercase()));
    }
    let limits = ctx.store.limits();
    let h = hash_or_create(ctx, argv[1])?;
    // A set clears a field's time to live: the hash's earliest may move.
    let volatile = h.volatile_fields() > 0;
    let created = argv[2..].chunks_exact(2).filter(|p| h.set(p[0], p[1], &limits)).count();
    ctx.store.dirty += (argv.len() as u64 - 2) / 2;
    if volatile {
        ctx.store.note_field_expiry(argv[1]);
    }
    // Always, even if no value changed.
    ctx.store.notify(crate::notify::HASH, "hset", argv[1]);
    Ok(created)
}

/// `HSET key field value [field value ...]`
fn hset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n = set_pairs(ctx, argv)?;
    ctx.out.int(n as i64);
    Ok(())
}

/// `HMSET key field value [field value ...]`
fn hmset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    set_pairs(ctx, argv)?;
    ctx.out.ok();
    Ok(())
}

/// `HSETNX key field value`
fn hsetnx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let limits = ctx.store.limits();
    let (key, field, value) = (argv[1], argv[2], argv[3]);
    if let Some(h) = ctx.store.get_hash_for_write(key)? {
        if h.contains(field) {
            ctx.out.int(0);
            return Ok(());
        }
    }
    hash_or_create(ctx, key)?.set(field, value, &limits);
    ctx.store.dirty += 1;
    // Redis names the event `hset`, not `hsetnx`.
    ctx.store.notify(crate::notify::HASH, "hset", key);
    ctx.out.int(1);
    Ok(())
}

/// `HGET key field`
fn hget(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    match ctx.store.get_hash(argv[1])?.and_then(|h| h.get(argv[2])) {
        Some(v) => reply_elem(ctx.out, v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// `HMGET key field [field ...]`
fn hmget(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let h = ctx.store.get_hash(argv[1])?;
    ctx.out.array(argv.len() - 2);
    for f in &argv[2..] {
        match h.as_ref().and_then(|h| h.get(f)) {
            Some(v) => reply_elem(ctx.out, v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// `HDEL key field [field ...]`
fn hdel(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let Some(h) = ctx.store.get_hash_for_write(key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let volatile = h.volatile_fields() > 0;
    let mut deleted = 0;
    for f in &argv[2..] {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    ctx.store.dirty += deleted;
    if volatile && deleted > 0 {
        ctx.store.note_field_expiry(key);
    }
    if deleted > 0 {
        ctx.store.notify(crate::notify::HASH, "hdel", key);
    }
    ctx.store.delete_if_empty(key);
    ctx.out.int(deleted as i64);
    Ok(())
}

/// `HLEN key`
fn hlen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n = ctx.store.get_hash(argv[1])?.map_or(0, |h| h.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// `HSTRLEN key field`
fn hstrlen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n = ctx.store.get_hash(argv[1])?.and_then(|h| h.get(argv[2])).map_or(0, |v| v.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// `HEXISTS key field`
fn hexists(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let found = ctx.store.get_hash(argv[1])?.is_some_and(|h| h.contains(argv[2]));
    ctx.out.int(i64::from(found));
    Ok(())
}

/// What `HKEYS`, `HVALS` and `HGETALL` return.
#[derive(Clone, Copy, PartialEq)]
enum Parts {
    Fields,
    Values,
    Both,
}

/// `HKEYS`/`HVALS`/`HGETALL`: an array (RESP3: a map for both parts).
fn get_all(ctx: &mut Ctx, key: &[u8], parts: Parts) -> CmdResult {
    let Some(h) = ctx.store.get_hash(key)? else {
        if parts == Parts::Both {
            ctx.out.map(0);
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    match parts {
        Parts::Both => ctx.out.map(h.len()),
        _ => ctx.out.array(h.len()),
    }
    let out = &mut *ctx.out;
    h.for_each(|f, v| {
        if parts != Parts::Values {
            reply_elem(out, f);
        }
        if parts != Parts::Fields {
            reply_elem(out, v);
        }
    });
    Ok(())
}

/// `HKEYS key`
fn hkeys(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    get_all(ctx, argv[1], Parts::Fields)
}

/// `HVALS key`
fn hvals(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    get_all(ctx, argv[1], Parts::Values)
}

/// `HGETALL key`
fn hgetall(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    get_all(ctx, argv[1], Parts::Both)
}

/// `HINCRBY key field increment`
fn hincrby(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let incr = args::int(argv[3])?;
    let limits = ctx.store.limits();
    let field = argv[2];
    let h = hash_or_create(ctx, argv[1])?;
    let current = match h.get(field) {
        Some(v) => v.as_int().ok_or_else(|| CmdError::err("hash value is not an integer"))?,
        None => 0,
    };
    let new = current.checked_add(incr).ok_or(CmdError::Overflow)?;
    // An increment keeps the field's time to live.
    h.set_keep_ttl(field, &args::int_bytes(new), &limits);
    ctx.store.dirty += 1;
    ctx.store.notify(crate::notify::HASH, "hincrby", argv[1]);
    ctx.out.int(new);
    Ok(())
}

/// `HINCRBYFLOAT key field increment`
fn hincrbyfloat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let incr = argv[3];
    if !num::parse_long_double_ok(incr) {
        return Err(CmdError::NotFloat);
    }
    if num::parse_f64(incr).is_some_and(f64::is_infinite) {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    let limits = ctx.store.limits();
    let field = argv[2];
    let h = hash_or_create(ctx, argv[1])?;
    let current = h.get(field).map_or_else(|| b"0".to_vec(), |v| v.to_vec());
    let new = match num::incr_by_float(&current, incr) {
        Ok(v) => v,
        Err(num::FloatError::NotFloat) => return Err(CmdError::err("hash value is not a float")),
        Err(num::FloatError::NanOrInf) => return Err(CmdError::NanOrInfinity),
    };
    h.set_keep_ttl(field, &new, &limits);
    let volatile = h.field_expire(field).is_some();
    ctx.store.dirty += 1;
    ctx.store.notify(crate::notify::HASH, "hincrbyfloat", argv[1]);
    ctx.out.bulk(&new);
    // A field with a time to live keeps it (`HSETEX ... KEEPTTL`, as Redis 8 logs it); else
    // plain `HSET`, which every Redis version replays.
    ctx.propagate_as(|| match volatile {
        true => vec![
            b"HSETEX".to_vec(),
            argv[1].to_vec(),
            b"KEEPTTL".to_vec(),
            b"FIELDS".to_vec(),
            b"1".to_vec(),
            field.to_vec(),
            new.clone(),
        ],
        false => vec![b"HSET".to_vec(), argv[1].to_vec(), field.to_vec(), new.clone()],
    });
    Ok(())
}

/// The most a reply of repeated random picks may take before the client is closed, as Redis
/// closes a client past its output buffer limit instead of growing without bound.
const PICKS_REPLY_LIMIT: usize = 512 << 20;

/// True (after dropping the partial reply and marking the connection to close) when the
/// reply begun at `start` has grown past [`PICKS_REPLY_LIMIT`].
pub(crate) fn reply_too_big(
    out: &mut protocol::ReplyWriter,
    session: &mut crate::session::Session,
    start: usize,
) -> bool {
    if out.buf.len() - start <= PICKS_REPLY_LIMIT {
        return false;
    }
    out.buf.truncate(start);
    session.close_after_reply = true;
    true
}

/// Writes one field (and its value) of an `HRANDFIELD` reply.
fn reply_pick(ctx: &mut Ctx, f: LpValue<'_>, v: LpValue<'_>, with_values: bool) {
    if with_values && ctx.out.resp3() {
        ctx.out.array(2);
    }
    reply_elem(ctx.out, f);
    if with_values {
        reply_elem(ctx.out, v);
    }
}

/// `HRANDFIELD key [count [WITHVALUES]]`
fn hrandfield(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut with_values = false;
    let count = match argv.get(2) {
        None => None,
        Some(a) => {
            let l = range_arg(a, -i64::MAX, i64::MAX, None)?;
            if argv.len() > 4 || (argv.len() == 4 && !is(argv[3], "WITHVALUES")) {
                return Err(CmdError::Syntax);
            }
            if argv.len() == 4 {
                with_values = true;
                if !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
                    return Err(CmdError::err("value is out of range"));
                }
            }
            Some(l)
        }
    };
    let Some(h) = ctx.store.get_hash(argv[1])? else {
        match count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let size = h.len();
    let rng = &mut *ctx.rng;
    let Some(l) = count else {
        let i = rng.below(size as u64) as usize;
        let (f, _) = h.pick(i, || rng.next_u64()).expect("stored hashes are not empty");
        reply_elem(ctx.out, f);
        return Ok(());
    };
    if l == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    let (count, unique) = (l.unsigned_abs() as usize, l > 0);
    if !unique || count == 1 {
        // Repetitions allowed: each pick on its own, written as it is made.
        let start = ctx.out.buf.len();
        ctx.out.array(if with_values && !ctx.out.resp3() { count * 2 } else { count });
        for n in 0..count {
            let i = rng.below(size as u64) as usize;
            let (f, v) = h.pick(i, || rng.next_u64()).expect("stored hashes are not empty");
            if with_values && ctx.out.resp3() {
                ctx.out.array(2);
            }
            reply_elem(ctx.out, f);
            if with_values {
                reply_elem(ctx.out, v);
            }
            if n % 1024 == 0 && reply_too_big(ctx.out, ctx.session, start) {
                return Ok(());
            }
        }
        return Ok(());
    }
    // Distinct fields, collected as owned pairs: the reply writer and the hash are borrowed
    // apart.
    let mut picks: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(size);
    h.for_each(|f, v| picks.push((f.to_vec(), v.to_vec())));
    if count < size {
        // A partial shuffle: the first `count` places get distinct random fields.
        for i in 0..count {
            let j = i + rng.below((size - i) as u64) as usize;
            picks.swap(i, j);
        }
        picks.truncate(count);
    }
    let n = picks.len();
    ctx.out.array(if with_values && !ctx.out.resp3() { n * 2 } else { n });
    for (f, v) in &picks {
        reply_pick(ctx, LpValue::Str(f), LpValue::Str(v), with_values);
    }
    Ok(())
}

/// The options of `HSCAN`/`SSCAN`/`ZSCAN` (`scanGenericCommand` on a value): `COUNT` and
/// `MATCH` (the last of each wins).
pub(crate) struct ScanOpts<'a> {
    /// Buckets to visit, roughly.
    pub count: usize,
    /// Only elements matching this glob (`None`: all).
    pub pattern: Option<&'a [u8]>,
}

/// Parses `[MATCH pattern] [COUNT count]` from `argv[3..]`.
pub(crate) fn scan_opts<'a>(argv: &[&'a [u8]]) -> Result<ScanOpts<'a>, CmdError> {
    let mut opts = ScanOpts { count: 10, pattern: None };
    let mut i = 3;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(argv[i], "COUNT") && more {
            let c = args::int(argv[i + 1])?;
            if c < 1 {
                return Err(CmdError::Syntax);
            }
            opts.count = c as usize;
        } else if is(argv[i], "MATCH") && more {
            opts.pattern = Some(argv[i + 1]).filter(|p| *p != b"*");
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(opts)
}

/// The reply of a scan of a missing key: cursor 0, nothing.
pub(crate) fn reply_empty_scan(out: &mut protocol::ReplyWriter) {
    out.array(2);
    out.bulk(b"0");
    out.array(0);
}

/// Runs `step` (one scan step from a cursor: the next cursor and how many elements are found
/// so far) until the scan ends, `count` elements are found, or `count * 10` steps passed, as
/// Redis's `scanGenericCommand` does; the cursor to return.
pub(crate) fn scan_loop(cursor: u64, count: usize, mut step: impl FnMut(u64) -> (u64, usize)) -> u64 {
    let mut next = cursor;
    let mut budget = count.saturating_mul(10);
    loop {
        let (n, found) = step(next);
        next = n;
        budget -= 1;
        if next == 0 || budget == 0 || found >= count {
            return next;
        }
    }
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`
fn hscan(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let cursor = crate::family::keys::parse_cursor(argv[2]).ok_or(CmdError::InvalidCursor)?;
    // The key is looked up before the options are read, as in Redis.
    let Some(h) = ctx.store.get_hash(argv[1])? else {
        reply_empty_scan(ctx.out);
        return Ok(());
    };
    let opts = scan_opts(argv)?;
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let next = scan_loop(cursor, opts.count, |c| {
        let n = h.scan(c, |f, v| found.push((f.to_vec(), v.to_vec())));
        (n, found.len())
    });
    reply_pair_scan(ctx.out, next, found, opts.pattern);
    Ok(())
}

/// The reply of one `HSCAN`/`ZSCAN` step: the cursor, then the pairs whose first element
/// matches `pattern` (filtered after the step, as Redis does).
pub(crate) fn reply_pair_scan(
    out: &mut protocol::ReplyWriter,
    next: u64,
    mut found: Vec<(Vec<u8>, Vec<u8>)>,
    pattern: Option<&[u8]>,
) {
    if let Some(p) = pattern {
        found.retain(|(f, _)| glob_match(p, f, false));
    }
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(found.len() * 2);
    for (f, v) in &found {
        out.bulk(f);
        out.bulk(v);
    }
}
