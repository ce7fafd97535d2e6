//! Hash field expiration (Redis 7.4's `HEXPIRE` family, `HTTL` family and `HPERSIST`; Redis
//! 8.0's `HGETDEL`, `HGETEX` and `HSETEX`), in `t_hash.c` with the other hash commands.
//!
//! A field's expiry is an absolute Unix time in milliseconds, decided by the command's time
//! like a key's. Fields whose time has run out are removed when a command looks the hash up
//! (`Store::get_hash`, logged as `HDEL`) or by the expiry cycle; so the commands here never
//! see one. Every change is logged in absolute form: `HPEXPIREAT` for the relative commands,
//! `HSETEX ... PXAT` for `HSETEX EX`, `HDEL` for fields a time in the past removed, so
//! replaying the log (or applying it on another node) gives the same hash at any later time.

use crate::args::{self, is};
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::family::lists::reply_elem;
use crate::table::{bind, Binding, LockMode::Keys};

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("hexpire", hexpire, Keys),
    bind("hpexpire", hpexpire, Keys),
    bind("hexpireat", hexpireat, Keys),
    bind("hpexpireat", hpexpireat, Keys),
    bind("httl", httl, Keys),
    bind("hpttl", hpttl, Keys),
    bind("hexpiretime", hexpiretime, Keys),
    bind("hpexpiretime", hpexpiretime, Keys),
    bind("hpersist", hpersist, Keys),
    bind("hgetdel", hgetdel, Keys),
    bind("hgetex", hgetex, Keys),
    bind("hsetex", hsetex, Keys),
];

/// The latest field expiry Redis accepts (`HFE_MAX_ABS_TIME_MSEC`, 2^46 - 1 ms: its expiry
/// buckets keep 48 bits and reserve two).
pub const MAX_FIELD_EXPIRE_MS: i64 = (1 << 46) - 1;

/// Reply for a field that does not exist (or a hash that does not).
const NO_FIELD: i64 = -2;

const FIELDS_MISSING: &str = "Mandatory argument FIELDS is missing or not at the right position";
const NUMFIELDS_MISMATCH: &str = "The `numfields` parameter must match the number of arguments";
/// The `numfields` error of the `HEXPIRE` family.
const NUMFIELDS_EXPIRE: &str = "Parameter `numFields` should be greater than 0";
/// The `numfields` error of `HTTL`, `HPERSIST`, `HGETDEL` and `HGETEX`.
const NUMFIELDS_POSITIVE: &str = "Number of fields must be a positive integer";

/// The command's name as Redis names it in errors (lower case).
fn name_of(argv: &[&[u8]]) -> String {
    String::from_utf8_lossy(argv[0]).to_lowercase()
}

/// A time argument in seconds or milliseconds, relative to `base` (the command's time, or 0
/// for the `AT` forms), as an absolute time in milliseconds (Redis's `parseExpireTime`).
fn parse_time(arg: &[u8], seconds: bool, base: i64, argv: &[&[u8]]) -> Result<i64, CmdError> {
    let v = args::int(arg)?;
    if v < 0 {
        return Err(CmdError::err("invalid expire time, must be >= 0"));
    }
    let v = if seconds {
        if v > MAX_FIELD_EXPIRE_MS / 1000 {
            return Err(CmdError::InvalidExpire(name_of(argv)));
        }
        v * 1000
    } else {
        v
    };
    if v > MAX_FIELD_EXPIRE_MS - base {
        return Err(CmdError::InvalidExpire(name_of(argv)));
    }
    Ok(v + base)
}

/// `FIELDS numfields field ...` starting at `argv[at]`: the fields. `bad_count` is the
/// command's error for a `numfields` that is not a positive integer.
fn fields_arg<'a, 'b>(argv: &'b [&'a [u8]], at: usize, bad_count: &str) -> Result<&'b [&'a [u8]], CmdError> {
    if argv.get(at).is_none_or(|a| !is(a, "FIELDS")) {
        return Err(CmdError::err(FIELDS_MISSING));
    }
    let n =
        argv.get(at + 1).and_then(|a| args::int(a).ok()).filter(|&n| n >= 1).ok_or_else(|| CmdError::err(bad_count))?;
    let given = &argv[at + 2..];
    if n as u64 != given.len() as u64 {
        return Err(CmdError::err(NUMFIELDS_MISMATCH));
    }
    Ok(given)
}

/// The `NX|XX|GT|LT` condition of the `HEXPIRE` family.
#[derive(Clone, Copy)]
enum Cond {
    Nx,
    Xx,
    Gt,
    Lt,
}

impl Cond {
    fn parse(arg: &[u8]) -> Option<Cond> {
        [("NX", Cond::Nx), ("XX", Cond::Xx), ("GT", Cond::Gt), ("LT", Cond::Lt)]
            .into_iter()
            .find(|(w, _)| is(arg, w))
            .map(|(_, c)| c)
    }

    /// True if a field whose expiry is `prev` may get `new`. A field without one counts as
    /// expiring never: `LT` holds for it, `GT` does not.
    fn holds(self, prev: Option<i64>, new: i64) -> bool {
        match self {
            Cond::Nx => prev.is_none(),
            Cond::Xx => prev.is_some(),
            Cond::Gt => prev.is_some_and(|p| new > p),
            Cond::Lt => prev.is_none_or(|p| new < p),
        }
    }
}

/// Logs `HDEL key field...` for fields a time in the past removed.
fn propagate_hdel(ctx: &mut Ctx, key: &[u8], fields: &[&[u8]]) {
    if !fields.is_empty() {
        ctx.propagate_as(|| {
            let mut argv = vec![b"HDEL".to_vec(), key.to_vec()];
            argv.extend(fields.iter().map(|f| f.to_vec()));
            argv
        });
    }
}

/// The `HEXPIRE` family: `seconds` says the unit, `absolute` whether the time is a Unix
/// time (else relative to the command's time).
fn expire_generic(ctx: &mut Ctx, argv: &[&[u8]], seconds: bool, absolute: bool) -> CmdResult {
    let key = argv[1];
    // The type is checked before the arguments, as in Redis.
    let exists = ctx.store.get_hash_for_write(key)?.is_some();
    let now = ctx.now_ms();
    let when = parse_time(argv[2], seconds, if absolute { 0 } else { now }, argv)?;
    let cond = Cond::parse(argv[3]);
    let fields = fields_arg(argv, if cond.is_some() { 4 } else { 3 }, NUMFIELDS_EXPIRE)?;
    if !exists {
        ctx.out.array(fields.len());
        fields.iter().for_each(|_| ctx.out.int(NO_FIELD));
        return Ok(());
    }
    let h = ctx.store.get_hash_for_write(key)?.expect("checked above");
    // Like Redis's `hashTypeSetExInit`: the hash becomes `listpackex` even if nothing changes.
    h.make_volatile();
    let mut replies = Vec::with_capacity(fields.len());
    let (mut updated, mut deleted) = (Vec::new(), Vec::new());
    for &f in fields {
        let reply = if !h.contains(f) {
            NO_FIELD
        } else if !cond.is_none_or(|c| c.holds(h.field_expire(f), when)) {
            0
        } else if when <= now {
            h.remove(f);
            deleted.push(f);
            2
        } else {
            h.set_field_expire(f, when);
            updated.push(f);
            1
        };
        replies.push(reply);
    }
    ctx.store.dirty += (updated.len() + deleted.len()) as u64;
    if !updated.is_empty() || !deleted.is_empty() {
        // One event: `hdel` if a time in the past removed any field, else `hexpire`.
        let event = if deleted.is_empty() { "hexpire" } else { "hdel" };
        ctx.store.notify(crate::notify::HASH, event, key);
        ctx.store.note_field_expiry(key);
        ctx.store.delete_if_empty(key);
    }
    propagate_hdel(ctx, key, &deleted);
    if !updated.is_empty() {
        ctx.propagate_as(|| {
            let mut out = vec![b"HPEXPIREAT".to_vec(), key.to_vec(), when.to_string().into_bytes()];
            if cond.is_some() {
                out.push(argv[3].to_vec());
            }
            out.push(b"FIELDS".to_vec());
            out.push(updated.len().to_string().into_bytes());
            out.extend(updated.iter().map(|f| f.to_vec()));
            out
        });
    }
    ctx.out.array(replies.len());
    replies.into_iter().for_each(|r| ctx.out.int(r));
    Ok(())
}

/// `HEXPIRE key seconds [NX|XX|GT|LT] FIELDS numfields field ...`
fn hexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, true, false)
}

/// `HPEXPIRE key milliseconds [NX|XX|GT|LT] FIELDS numfields field ...`
fn hpexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, false, false)
}

/// `HEXPIREAT key unix-time-seconds [NX|XX|GT|LT] FIELDS numfields field ...`
fn hexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, true, true)
}

/// `HPEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT] FIELDS numfields field ...`
fn hpexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, false, true)
}

/// What the `HTTL` family reports.
#[derive(Clone, Copy)]
enum TtlKind {
    Ttl,
    Pttl,
    ExpireTime,
    PexpireTime,
}

/// The `HTTL` family: per field -2 (no such field), -1 (no time to live) or the time.
fn ttl_generic(ctx: &mut Ctx, argv: &[&[u8]], kind: TtlKind) -> CmdResult {
    let now = ctx.now_ms();
    let h = ctx.store.get_hash(argv[1])?;
    let fields = fields_arg(argv, 2, NUMFIELDS_POSITIVE)?;
    ctx.out.array(fields.len());
    for f in fields {
        let reply = match h.as_ref() {
            Some(h) if h.contains(f) => match h.field_expire(f) {
                None => -1,
                // Rounded up, as Redis does (`HEXPIRETIME` too).
                Some(at) => match kind {
                    TtlKind::Ttl => (at - now + 999) / 1000,
                    TtlKind::Pttl => at - now,
                    TtlKind::ExpireTime => (at + 999) / 1000,
                    TtlKind::PexpireTime => at,
                },
            },
            _ => NO_FIELD,
        };
        ctx.out.int(reply);
    }
    Ok(())
}

/// `HTTL key FIELDS numfields field ...`
fn httl(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv, TtlKind::Ttl)
}

/// `HPTTL key FIELDS numfields field ...`
fn hpttl(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv, TtlKind::Pttl)
}

/// `HEXPIRETIME key FIELDS numfields field ...`
fn hexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv, TtlKind::ExpireTime)
}

/// `HPEXPIRETIME key FIELDS numfields field ...`
fn hpexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv, TtlKind::PexpireTime)
}

/// `HPERSIST key FIELDS numfields field ...`: per field -2 (no such field), -1 (no time to
/// live) or 1 (removed). Logged as it is when it changed something.
fn hpersist(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let mut h = ctx.store.get_hash_for_write(key)?;
    let fields = fields_arg(argv, 2, NUMFIELDS_POSITIVE)?;
    let mut replies = Vec::with_capacity(fields.len());
    let mut changed = 0;
    for f in fields {
        replies.push(match h.as_deref_mut() {
            Some(h) if h.contains(f) => {
                if h.persist_field(f) {
                    changed += 1;
                    1
                } else {
                    -1
                }
            }
            _ => NO_FIELD,
        });
    }
    if changed > 0 {
        ctx.store.dirty += changed;
        ctx.store.note_field_expiry(key);
        ctx.store.notify(crate::notify::HASH, "hpersist", key);
    }
    ctx.out.array(replies.len());
    replies.into_iter().for_each(|r| ctx.out.int(r));
    Ok(())
}

/// `HGETDEL key FIELDS numfields field ...`: the values (nil for missing fields), removed.
/// Logged as `HDEL` of the fields given.
fn hgetdel(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let h = ctx.store.get_hash_for_write(key)?;
    let fields = fields_arg(argv, 2, NUMFIELDS_POSITIVE)?;
    ctx.out.array(fields.len());
    let Some(h) = h else {
        fields.iter().for_each(|_| ctx.out.null());
        return Ok(());
    };
    let mut deleted = 0;
    for f in fields {
        match h.get(f) {
            Some(v) => {
                reply_elem(ctx.out, v);
                h.remove(f);
                deleted += 1;
            }
            None => ctx.out.null(),
        }
    }
    if deleted > 0 {
        ctx.store.dirty += deleted;
        ctx.store.note_field_expiry(key);
        ctx.store.notify(crate::notify::HASH, "hdel", key);
        ctx.store.delete_if_empty(key);
        propagate_hdel(ctx, key, fields);
    }
    Ok(())
}

/// What `HGETEX` does to the fields it returns.
#[derive(Clone, Copy)]
enum GetExOp {
    Keep,
    Persist,
    ExpireAt(i64),
}

/// `HGETEX key [EX seconds|PX ms|EXAT unix-time|PXAT unix-time-ms|PERSIST] FIELDS
/// numfields field ...`: the values, and the existing fields' times to live changed.
fn hgetex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let exists = ctx.store.get_hash_for_write(key)?.is_some();
    let now = ctx.now_ms();
    // The option is only looked for right after the key; its time is read before FIELDS.
    let (op, at) = match [("EX", true, false), ("PX", false, false), ("EXAT", true, true), ("PXAT", false, true)]
        .into_iter()
        .find(|(w, _, _)| is(argv[2], w))
    {
        Some((_, seconds, absolute)) => {
            let base = if absolute { 0 } else { now };
            (GetExOp::ExpireAt(parse_time(argv[3], seconds, base, argv)?), 4)
        }
        None if is(argv[2], "PERSIST") => (GetExOp::Persist, 3),
        None => (GetExOp::Keep, 2),
    };
    let fields = fields_arg(argv, at, NUMFIELDS_POSITIVE)?;
    ctx.out.array(fields.len());
    if !exists {
        fields.iter().for_each(|_| ctx.out.null());
        return Ok(());
    }
    let h = ctx.store.get_hash_for_write(key)?.expect("checked above");
    if !matches!(op, GetExOp::Keep) {
        h.make_volatile();
    }
    let (mut updated, mut deleted) = (0u64, Vec::new());
    for &f in fields {
        let Some(v) = h.get(f) else {
            ctx.out.null();
            continue;
        };
        reply_elem(ctx.out, v);
        match op {
            GetExOp::Keep => {}
            GetExOp::Persist => updated += u64::from(h.persist_field(f)),
            GetExOp::ExpireAt(when) if when <= now => {
                h.remove(f);
                deleted.push(f);
            }
            GetExOp::ExpireAt(when) => {
                h.set_field_expire(f, when);
                updated += 1;
            }
        }
    }
    ctx.store.dirty += updated + deleted.len() as u64;
    if updated > 0 || !deleted.is_empty() {
        // `hpersist`/`hexpire` for updated fields, else `hdel` for fields a time in the past
        // removed.
        let event = match op {
            _ if updated == 0 => "hdel",
            GetExOp::Persist => "hpersist",
            _ => "hexpire",
        };
        ctx.store.notify(crate::notify::HASH, event, key);
        ctx.store.note_field_expiry(key);
        ctx.store.delete_if_empty(key);
    }
    propagate_hdel(ctx, key, &deleted);
    if updated > 0 {
        ctx.propagate_as(|| {
            let mut out = match op {
                GetExOp::Persist => vec![b"HPERSIST".to_vec(), key.to_vec()],
                GetExOp::ExpireAt(when) => {
                    vec![b"HPEXPIREAT".to_vec(), key.to_vec(), when.to_string().into_bytes()]
                }
                GetExOp::Keep => unreachable!("nothing updated"),
            };
            out.push(b"FIELDS".to_vec());
            out.push(fields.len().to_string().into_bytes());
            out.extend(fields.iter().map(|f| f.to_vec()));
            out
        });
    }
    Ok(())
}

/// The time to live `HSETEX` gives the fields it sets.
#[derive(Clone, Copy, PartialEq)]
enum SetExTtl {
    /// None: any old one is cleared, as `HSET` does.
    Clear,
    Keep,
    At(i64),
}

/// `HSETEX key [FNX|FXX] [EX seconds|PX ms|EXAT unix-time|PXAT unix-time-ms|KEEPTTL] FIELDS
/// numfields field value ...`: 1 if the fields were set, 0 if `FNX`/`FXX` did not hold.
fn hsetex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let arity = || CmdError::WrongArity(name_of(argv));
    let now = ctx.now_ms();
    // Every argument is read before the key is looked up, as in Redis.
    let (mut fnx, mut fxx, mut ttl) = (false, false, None);
    let mut pairs: Option<&[&[u8]]> = None;
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        if is(a, "FIELDS") {
            if i >= argv.len() - 3 {
                return Err(arity());
            }
            let n = args::int(argv[i + 1])
                .ok()
                .filter(|n| (1..=i64::from(i32::MAX)).contains(n))
                .ok_or_else(|| CmdError::err("invalid number of fields"))?;
            let rest = &argv[i + 2..];
            if rest.len() % 2 == 1 || rest.len() as i64 != 2 * n {
                return Err(arity());
            }
            pairs = Some(rest);
            break;
        } else if is(a, "FNX") || is(a, "FXX") {
            if fnx || fxx {
                return Err(CmdError::err("Only one of FXX or FNX arguments can be specified"));
            }
            fnx = is(a, "FNX");
            fxx = !fnx;
            i += 1;
        } else if let Some((_, seconds, absolute)) = [
            ("EX", true, false),
            ("PX", false, false),
            ("EXAT", true, true),
            ("PXAT", false, true),
            ("KEEPTTL", false, false),
        ]
        .into_iter()
        .find(|(w, _, _)| is(a, w))
        {
            if ttl.is_some() {
                return Err(CmdError::err("Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"));
            }
            if is(a, "KEEPTTL") {
                ttl = Some(SetExTtl::Keep);
                i += 1;
                continue;
            }
            let t = argv.get(i + 1).ok_or_else(|| CmdError::err("missing expire time"))?;
            ttl = Some(SetExTtl::At(parse_time(t, seconds, if absolute { 0 } else { now }, argv)?));
            i += 2;
        } else {
            return Err(CmdError::Other(format!("ERR unknown argument: {}", String::from_utf8_lossy(a))));
        }
    }
    let pairs = pairs.ok_or_else(arity)?;
    let ttl = ttl.unwrap_or(SetExTtl::Clear);
    let key = argv[1];
    let existing = ctx.store.get_hash_for_write(key)?;
    let holds = match existing {
        None => !fxx,
        Some(h) if fnx => pairs.chunks_exact(2).all(|p| !h.contains(p[0])),
        Some(h) if fxx => pairs.chunks_exact(2).all(|p| h.contains(p[0])),
        Some(_) => true,
    };
    if !holds {
        ctx.out.int(0);
        return Ok(());
    }
    let limits = ctx.store.limits();
    let h = ctx.store.hash_or_create(key, engine::Hash::new)?;
    let mut deleted: Vec<&[u8]> = Vec::new();
    for p in pairs.chunks_exact(2) {
        match ttl {
            SetExTtl::Clear => {
                h.set(p[0], p[1], &limits);
            }
            SetExTtl::Keep => {
                h.set_keep_ttl(p[0], p[1], &limits);
            }
            SetExTtl::At(when) if when <= now => {
                // Set and at once removed again.
                h.remove(p[0]);
                deleted.push(p[0]);
            }
            SetExTtl::At(when) => {
                h.set_keep_ttl(p[0], p[1], &limits);
                h.set_field_expire(p[0], when);
            }
        }
    }
    ctx.store.dirty += (pairs.len() / 2) as u64;
    ctx.store.note_field_expiry(key);
    // `hset`, then `hdel` if a time in the past removed the fields again or `hexpire` if
    // they got a time to live (`KEEPTTL` and no option: `hset` alone).
    ctx.store.notify(crate::notify::HASH, "hset", key);
    match ttl {
        _ if !deleted.is_empty() => ctx.store.notify(crate::notify::HASH, "hdel", key),
        SetExTtl::At(_) => ctx.store.notify(crate::notify::HASH, "hexpire", key),
        _ => {}
    }
    ctx.store.delete_if_empty(key);
    if !deleted.is_empty() {
        // Every field given was removed again: the `HDEL` says it all.
        propagate_hdel(ctx, key, &deleted);
    } else if let SetExTtl::At(when) = ttl {
        ctx.propagate_as(|| {
            let mut out = vec![b"HSETEX".to_vec(), key.to_vec()];
            if fnx || fxx {
                out.push(if fnx { b"FNX".to_vec() } else { b"FXX".to_vec() });
            }
            out.extend([b"PXAT".to_vec(), when.to_string().into_bytes(), b"FIELDS".to_vec()]);
            out.push((pairs.len() / 2).to_string().into_bytes());
            out.extend(pairs.iter().map(|a| a.to_vec()));
            out
        });
    }
    ctx.out.int(1);
    Ok(())
}
