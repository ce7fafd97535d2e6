//! The string family: `GET`, `SET` and the rest of Redis's string group (`t_string.c`).

use crate::args::{self, is};
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::notify;
use crate::table::{bind, Binding, LockMode::Keys};
use engine::num;
use engine::value::EMBSTR_MAX;
use engine::{Str, Value};

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("get", get, Keys),
    bind("set", set, Keys),
    bind("append", append, Keys),
    bind("decr", decr, Keys),
    bind("decrby", decrby, Keys),
    bind("getdel", getdel, Keys),
    bind("getex", getex, Keys),
    bind("getrange", getrange, Keys),
    bind("substr", getrange, Keys),
    bind("getset", getset, Keys),
    bind("incr", incr, Keys),
    bind("incrby", incrby, Keys),
    bind("incrbyfloat", incrbyfloat, Keys),
    bind("lcs", lcs, Keys),
    bind("mget", mget, Keys),
    bind("mset", mset, Keys),
    bind("msetnx", msetnx, Keys),
    bind("psetex", psetex, Keys),
    bind("setex", setex, Keys),
    bind("setnx", setnx, Keys),
    bind("setrange", setrange, Keys),
    bind("strlen", strlen, Keys),
];

/// Writes a string value as a bulk reply.
#[inline]
pub(crate) fn reply_str(ctx_out: &mut protocol::ReplyWriter, s: &Str) {
    match s {
        Str::Int(i) => ctx_out.bulk_int(*i),
        Str::Emb(b) => ctx_out.bulk(b),
        Str::Raw(v) => ctx_out.bulk(v),
    }
}

/// `GET key`
fn get(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    match ctx.store.get_str(argv[1])? {
        Some(s) => reply_str(ctx.out, s),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Expiry options of `SET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No option.
    None,
    /// Absolute Unix milliseconds (from EX, PX, EXAT or PXAT).
    At(i64),
    /// `KEEPTTL`
    Keep,
}

/// Reads an expiry option word: its name, its unit in milliseconds, and whether it is an
/// absolute time (`EX`, `PX`, `EXAT`, `PXAT`, as `SET` and `GETEX` take them).
fn expiry_option(arg: &[u8]) -> Option<(&'static str, i64, bool)> {
    ["EX", "PX", "EXAT", "PXAT"]
        .into_iter()
        .find(|w| is(arg, w))
        .map(|w| (w, if w.starts_with('E') { 1000 } else { 1 }, w.ends_with("AT")))
}

/// Converts a relative or absolute expiry argument to absolute milliseconds, with Redis's
/// checks: the value must be positive and the result must not overflow.
pub(crate) fn expiry_ms(ctx: &Ctx, unit_ms: i64, absolute: bool, arg: &[u8], cmd: &str) -> Result<i64, CmdError> {
    expiry_at(ctx.now_ms(), unit_ms, absolute, arg, cmd)
}

/// [`expiry_ms`] with the command's time passed in (for callers holding a key borrow).
fn expiry_at(now_ms: i64, unit_ms: i64, absolute: bool, arg: &[u8], cmd: &str) -> Result<i64, CmdError> {
    let v = args::int(arg)?;
    if v <= 0 {
        return Err(CmdError::InvalidExpire(cmd.to_string()));
    }
    let ms = v.checked_mul(unit_ms).ok_or_else(|| CmdError::InvalidExpire(cmd.to_string()))?;
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(now_ms).ok_or_else(|| CmdError::InvalidExpire(cmd.to_string()))
    }
}

/// Sets the expiry of a key the command has just stored, without counting a second change
/// (Redis counts `SET ... EX` and `SETEX` as one change).
fn set_expire_same_change(ctx: &mut Ctx, key: &[u8], when_ms: i64) {
    let db = ctx.store.db;
    ctx.store.set_expire_unchanged_in(db, key, when_ms);
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ts-ms | KEEPTTL]`
fn set(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, val) = (argv[1], argv[2]);
    let mut nx = false;
    let mut xx = false;
    let mut get = false;
    let mut keepttl = false;
    // Which of EX/PX/EXAT/PXAT was given; repeating the same one is allowed, as in Redis.
    let mut expiry_word: Option<&str> = None;
    let mut expiry_arg: Option<(i64, bool, &[u8])> = None;
    let mut i = 3;
    while i < argv.len() {
        let a = argv[i];
        let next = argv.get(i + 1);
        let word = expiry_option(a);
        if is(a, "NX") && !xx {
            nx = true;
        } else if is(a, "XX") && !nx {
            xx = true;
        } else if is(a, "GET") {
            get = true;
        } else if is(a, "KEEPTTL") && expiry_word.is_none() {
            keepttl = true;
        } else if let (Some((w, unit, absolute)), Some(next)) = (word, next) {
            if keepttl || expiry_word.is_some_and(|e| e != w) {
                return Err(CmdError::Syntax);
            }
            expiry_word = Some(w);
            expiry_arg = Some((unit, absolute, next));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let mut expiry = if keepttl { Expiry::Keep } else { Expiry::None };
    if let Some((unit, absolute, arg)) = expiry_arg {
        expiry = Expiry::At(expiry_ms(ctx, unit, absolute, arg, "set")?);
    }
    // With GET the old value must be a string, checked before anything changes.
    let old: Option<Option<Vec<u8>>> =
        if get { Some(ctx.store.get_str_for_write(key)?.map(|s| s.to_vec())) } else { None };
    let exists = match &old {
        Some(o) => o.is_some(),
        None => (nx || xx) && ctx.store.exists(key),
    };
    if (nx && exists) || (xx && !exists) {
        match old {
            Some(Some(v)) => ctx.out.bulk(&v),
            _ => ctx.out.null(),
        }
        return Ok(());
    }
    let keep = expiry == Expiry::Keep;
    ctx.store.set(key, Value::Str(Str::from_bytes(val)), keep);
    ctx.store.notify(notify::STRING, "set", key);
    if let Expiry::At(when) = expiry {
        set_expire_same_change(ctx, key, when);
        ctx.store.notify(notify::GENERIC, "expire", key);
        if when <= ctx.now_ms() {
            // Already in the past: Redis stores then deletes, logging a DEL.
            ctx.store.delete(key);
            ctx.propagate_as(|| vec![b"DEL".to_vec(), key.to_vec()]);
        } else {
            ctx.propagate_as(|| {
                vec![b"SET".to_vec(), key.to_vec(), val.to_vec(), b"PXAT".to_vec(), args::int_bytes(when)]
            });
        }
    } else {
        // NX/XX/GET have done their job; the effect is a plain SET (KEEPTTL kept).
        ctx.propagate_as(|| {
            let mut eff = vec![b"SET".to_vec(), key.to_vec(), val.to_vec()];
            if keep {
                eff.push(b"KEEPTTL".to_vec());
            }
            eff
        });
    }
    match old {
        Some(Some(v)) => ctx.out.bulk(&v),
        Some(None) => ctx.out.null(),
        None => ctx.out.ok(),
    }
    Ok(())
}

/// `SETNX key value`: 1 if the key was set, 0 if it existed.
fn setnx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, val) = (argv[1], argv[2]);
    if ctx.store.exists(key) {
        ctx.out.int(0);
        return Ok(());
    }
    ctx.store.set(key, Value::Str(Str::from_bytes(val)), false);
    ctx.store.notify(notify::STRING, "set", key);
    ctx.out.int(1);
    Ok(())
}

/// `SETEX key seconds value` and `PSETEX key milliseconds value`, logged as `SET ... PXAT`.
fn set_with_ttl(ctx: &mut Ctx, argv: &[&[u8]], unit_ms: i64, cmd: &str) -> CmdResult {
    let (key, val) = (argv[1], argv[3]);
    let when = expiry_ms(ctx, unit_ms, false, argv[2], cmd)?;
    ctx.store.set(key, Value::Str(Str::from_bytes(val)), false);
    ctx.store.notify(notify::STRING, "set", key);
    set_expire_same_change(ctx, key, when);
    ctx.store.notify(notify::GENERIC, "expire", key);
    ctx.propagate_as(|| vec![b"SET".to_vec(), key.to_vec(), val.to_vec(), b"PXAT".to_vec(), args::int_bytes(when)]);
    ctx.out.ok();
    Ok(())
}

/// `SETEX key seconds value`
fn setex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    set_with_ttl(ctx, argv, 1000, "setex")
}

/// `PSETEX key milliseconds value`
fn psetex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    set_with_ttl(ctx, argv, 1, "psetex")
}

/// `GETSET key value`: the old value (or nil); logged as `SET key value`.
fn getset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, val) = (argv[1], argv[2]);
    match ctx.store.get_str(key)? {
        Some(s) => reply_str(ctx.out, s),
        None => ctx.out.null(),
    }
    ctx.store.set(key, Value::Str(Str::from_bytes(val)), false);
    ctx.store.notify(notify::STRING, "set", key);
    ctx.propagate_as(|| vec![b"SET".to_vec(), key.to_vec(), val.to_vec()]);
    Ok(())
}

/// `GETDEL key`: the value (or nil), then the key is deleted; logged as `DEL key`.
fn getdel(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    match ctx.store.get_str(key)? {
        Some(s) => reply_str(ctx.out, s),
        None => {
            ctx.out.null();
            return Ok(());
        }
    }
    if ctx.store.delete(key) {
        ctx.store.notify(notify::GENERIC, "del", key);
        ctx.propagate_as(|| vec![b"DEL".to_vec(), key.to_vec()]);
    }
    Ok(())
}

/// `GETEX key [EX s | PX ms | EXAT ts | PXAT ts-ms | PERSIST]`
fn getex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    // Options as Redis's parser takes them: a later EX/PX/EXAT/PXAT must be the same word as
    // an earlier one (the last value wins), and PERSIST excludes all four.
    let mut word: Option<&str> = None;
    let mut expiry_arg: Option<(i64, bool, &[u8])> = None;
    let mut persist = false;
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        let next = argv.get(i + 1);
        let w = expiry_option(a);
        if is(a, "PERSIST") && word.is_none() {
            persist = true;
        } else if let (Some((w, unit, absolute)), Some(next), false) = (w, next, persist) {
            if word.is_some_and(|e| e != w) {
                return Err(CmdError::Syntax);
            }
            word = Some(w);
            expiry_arg = Some((unit, absolute, next));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let now = ctx.now_ms();
    // The key is looked up (and its type checked) before the time is validated.
    let Some(s) = ctx.store.get_str(key)? else {
        ctx.out.null();
        return Ok(());
    };
    let when = match expiry_arg {
        Some((unit, absolute, arg)) => Some((expiry_at(now, unit, absolute, arg, "getex")?, absolute)),
        None => None,
    };
    reply_str(ctx.out, s);
    match when {
        Some((when, true)) if when <= now => {
            // An absolute time already past deletes the key.
            ctx.store.delete(key);
            ctx.store.notify(notify::GENERIC, "del", key);
            ctx.propagate_as(|| vec![b"DEL".to_vec(), key.to_vec()]);
        }
        Some((when, _)) => {
            ctx.store.set_expire(key, when);
            ctx.store.notify(notify::GENERIC, "expire", key);
            ctx.propagate_as(|| vec![b"PEXPIREAT".to_vec(), key.to_vec(), args::int_bytes(when)]);
        }
        None if persist && ctx.store.persist(key) => {
            ctx.store.notify(notify::GENERIC, "persist", key);
            ctx.propagate_as(|| vec![b"PERSIST".to_vec(), key.to_vec()]);
        }
        None => {}
    }
    Ok(())
}

/// `GETRANGE key start end` (and its old name `SUBSTR`).
fn getrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let start = args::int(argv[2])?;
    let end = args::int(argv[3])?;
    let Some(s) = ctx.store.get_str(argv[1])? else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let out = &mut *ctx.out;
    s.with_bytes(|b| {
        // Both ends negative and reversed is empty before any clamping, as in Redis.
        let range =
            if start < 0 && end < 0 && start > end { None } else { args::normalize_range(start, end, b.len() as i64) };
        match range {
            Some((start, end)) => out.bulk(&b[start as usize..=end as usize]),
            None => out.bulk(b""),
        }
    });
    Ok(())
}

/// `SETRANGE key offset value`: the length of the string after the write.
fn setrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, val) = (argv[1], argv[3]);
    let offset = args::int(argv[2])?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let max = ctx.host.max_bulk_len();
    // Checked before anything is allocated: the offset comes from the client.
    let fits = || match (offset as u64).checked_add(val.len() as u64) {
        Some(total) if total <= max => Ok(total as usize),
        _ => Err(CmdError::StringTooLong),
    };
    match ctx.store.get_str_for_write(key)? {
        None => {
            if val.is_empty() {
                ctx.out.int(0);
                return Ok(());
            }
            let total = fits()?;
            let mut v = vec![0u8; total];
            v[offset as usize..].copy_from_slice(val);
            ctx.store.set(key, Value::Str(Str::Raw(v)), false);
            ctx.store.notify(notify::STRING, "setrange", key);
            ctx.out.int(total as i64);
        }
        Some(s) => {
            if val.is_empty() {
                ctx.out.int(s.len() as i64);
                return Ok(());
            }
            let total = fits()?;
            let v = s.make_raw();
            if v.len() < total {
                v.resize(total, 0);
            }
            v[offset as usize..total].copy_from_slice(val);
            let len = v.len();
            ctx.store.dirty += 1;
            ctx.store.notify(notify::STRING, "setrange", key);
            ctx.out.int(len as i64);
        }
    }
    Ok(())
}

/// `APPEND key value`: the length of the string after the append.
fn append(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, val) = (argv[1], argv[2]);
    let max = ctx.host.max_bulk_len();
    match ctx.store.get_str_for_write(key)? {
        None => {
            ctx.store.set(key, Value::Str(Str::from_bytes(val)), false);
            ctx.store.notify(notify::STRING, "append", key);
            ctx.out.int(val.len() as i64);
        }
        Some(s) => {
            let total = s.len() as u64 + val.len() as u64;
            if total > max {
                return Err(CmdError::StringTooLong);
            }
            // Even an empty append turns the value into a `raw` string, as in Redis.
            let v = s.make_raw();
            v.extend_from_slice(val);
            let len = v.len();
            ctx.store.dirty += 1;
            ctx.store.notify(notify::STRING, "append", key);
            ctx.out.int(len as i64);
        }
    }
    Ok(())
}

/// `STRLEN key`
fn strlen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let len = ctx.store.get_str(argv[1])?.map_or(0, |s| s.len());
    ctx.out.int(len as i64);
    Ok(())
}

/// The integer a string holds, as `INCR` reads it (canonical decimal only).
fn str_to_i64(s: &Str) -> Option<i64> {
    match s {
        Str::Int(i) => Some(*i),
        Str::Emb(b) => num::parse_i64(b),
        Str::Raw(v) => num::parse_i64(v),
    }
}

/// Adds `by` to the integer under a key (missing keys count as 0), keeping its time to live.
fn incr_decr(ctx: &mut Ctx, key: &[u8], by: i64) -> CmdResult {
    match ctx.store.get_str_for_write(key)? {
        Some(s) => {
            let old = str_to_i64(s).ok_or(CmdError::NotInteger)?;
            let new = old.checked_add(by).ok_or(CmdError::Overflow)?;
            *s = Str::Int(new);
            ctx.store.dirty += 1;
            ctx.out.int(new);
        }
        None => {
            ctx.store.set(key, Value::Str(Str::Int(by)), false);
            ctx.out.int(by);
        }
    }
    // `INCR`, `DECR`, `INCRBY` and `DECRBY` all publish `incrby`, as in Redis.
    ctx.store.notify(notify::STRING, "incrby", key);
    Ok(())
}

/// `INCR key`
fn incr(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    incr_decr(ctx, argv[1], 1)
}

/// `DECR key`
fn decr(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    incr_decr(ctx, argv[1], -1)
}

/// `INCRBY key increment`
fn incrby(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let by = args::int(argv[2])?;
    incr_decr(ctx, argv[1], by)
}

/// `DECRBY key decrement`
fn decrby(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let by = args::int(argv[2])?;
    if by == i64::MIN {
        return Err(CmdError::err("decrement would overflow"));
    }
    incr_decr(ctx, argv[1], -by)
}

/// `INCRBYFLOAT key increment`: the new value; logged as `SET key <new> KEEPTTL` so that
/// replicas and AOF replays do not redo the float arithmetic.
fn incrbyfloat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, by) = (argv[1], argv[2]);
    let result = match ctx.store.get_str_for_write(key)? {
        Some(s) => s.with_bytes(|cur| num::incr_by_float(cur, by)),
        None => num::incr_by_float(b"0", by),
    };
    let new = result.map_err(|e| match e {
        num::FloatError::NotFloat => CmdError::NotFloat,
        num::FloatError::NanOrInf => CmdError::NanOrInfinity,
    })?;
    ctx.out.bulk(&new);
    // Redis builds the result as a plain string object: never `int`.
    let value = if new.len() <= EMBSTR_MAX { Str::Emb(new.as_slice().into()) } else { Str::Raw(new.clone()) };
    ctx.store.set(key, Value::Str(value), true);
    ctx.store.notify(notify::STRING, "incrbyfloat", key);
    ctx.propagate_as(|| vec![b"SET".to_vec(), key.to_vec(), new, b"KEEPTTL".to_vec()]);
    Ok(())
}

/// `MGET key [key ...]`: nil for missing keys and for keys of other types.
fn mget(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ctx.out.array(argv.len() - 1);
    for key in &argv[1..] {
        match ctx.store.lookup_read(key).map(|e| &*e) {
            Some(Value::Str(s)) => reply_str(ctx.out, s),
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

/// Stores every pair of `MSET`/`MSETNX`, clearing times to live.
fn set_pairs(ctx: &mut Ctx, argv: &[&[u8]]) {
    for pair in argv[1..].chunks_exact(2) {
        ctx.store.set(pair[0], Value::Str(Str::from_bytes(pair[1])), false);
        ctx.store.notify(notify::STRING, "set", pair[0]);
    }
}

/// `MSET key value [key value ...]`
fn mset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("mset".into()));
    }
    set_pairs(ctx, argv);
    ctx.out.ok();
    Ok(())
}

/// `MSETNX key value [key value ...]`: 1 if every key was set, 0 (and nothing set) if any
/// existed.
fn msetnx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("msetnx".into()));
    }
    for pair in argv[1..].chunks_exact(2) {
        if ctx.store.exists(pair[0]) {
            ctx.out.int(0);
            return Ok(());
        }
    }
    set_pairs(ctx, argv);
    ctx.out.int(1);
    Ok(())
}

/// One run of common bytes found by `LCS ... IDX`: inclusive ranges in each string.
struct LcsMatch {
    a: (u32, u32),
    b: (u32, u32),
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`
fn lcs(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Both keys are looked up before the options are parsed, as in Redis; missing keys are
    // empty strings, and other types get LCS's own error rather than WRONGTYPE.
    let mut wrong_type = false;
    let mut fetch = |ctx: &mut Ctx, key: &[u8]| -> Vec<u8> {
        match ctx.store.lookup_read(key).map(|e| &*e) {
            None => Vec::new(),
            Some(Value::Str(s)) => s.to_vec(),
            Some(_) => {
                wrong_type = true;
                Vec::new()
            }
        }
    };
    let a = fetch(ctx, argv[1]);
    let b = fetch(ctx, argv[2]);
    if wrong_type {
        return Err(CmdError::err("The specified keys must contain string values"));
    }
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut i = 3;
    while i < argv.len() {
        let opt = argv[i];
        if is(opt, "IDX") {
            getidx = true;
        } else if is(opt, "LEN") {
            getlen = true;
        } else if is(opt, "WITHMATCHLEN") {
            withmatchlen = true;
        } else if is(opt, "MINMATCHLEN") && i + 1 < argv.len() {
            minmatchlen = args::int(argv[i + 1])?.max(0);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if getidx && getlen {
        return Err(CmdError::err("If you want both the length and indexes, please just use IDX."));
    }
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return Err(CmdError::err("String too long for LCS"));
    }
    let (alen, blen) = (a.len(), b.len());
    // The table of LCS lengths of every pair of prefixes, bounded like Redis bounds it.
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let bytes = cells.checked_mul(4);
    if bytes.is_some_and(|n| n > ctx.host.max_bulk_len()) {
        return Err(CmdError::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let mut table: Vec<u32> = Vec::new();
    if bytes.is_none() || usize::try_from(cells).map_or(true, |n| table.try_reserve_exact(n).is_err()) {
        return Err(CmdError::err("Insufficient memory, failed allocating transient memory for LCS"));
    }
    let w = blen + 1;
    table.resize(cells as usize, 0);
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * w + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * w + j - 1] + 1
            } else {
                table[(i - 1) * w + j].max(table[i * w + j - 1])
            };
        }
    }
    let total = table[alen * w + blen];

    if getlen {
        ctx.out.int(i64::from(total));
        return Ok(());
    }

    // Walk back from the end, collecting the common bytes (backwards) and the runs.
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut matches: Vec<LcsMatch> = Vec::new();
    let mut cur: Option<LcsMatch> = None;
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            let (ai, bj) = ((i - 1) as u32, (j - 1) as u32);
            match &mut cur {
                None => cur = Some(LcsMatch { a: (ai, ai), b: (bj, bj) }),
                // A match right after a match always extends the current run backwards.
                Some(m) => {
                    m.a.0 = ai;
                    m.b.0 = bj;
                }
            }
            if ai == 0 || bj == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * w + j] > table[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = cur.is_some();
        }
        if emit {
            if let Some(m) = cur.take() {
                let len = i64::from(m.a.1 - m.a.0 + 1);
                if minmatchlen == 0 || len >= minmatchlen {
                    matches.push(m);
                }
            }
        }
    }

    if !getidx {
        ctx.out.bulk(&result);
        return Ok(());
    }
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"matches");
    out.array(matches.len());
    for m in &matches {
        out.array(if withmatchlen { 3 } else { 2 });
        out.array(2);
        out.int(i64::from(m.a.0));
        out.int(i64::from(m.a.1));
        out.array(2);
        out.int(i64::from(m.b.0));
        out.int(i64::from(m.b.1));
        if withmatchlen {
            out.int(i64::from(m.a.1 - m.a.0 + 1));
        }
    }
    out.bulk(b"len");
    out.int(i64::from(total));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::{bulk, error, simple, Harness};
    use proptest::prelude::*;
    use protocol::Frame;
    use std::sync::atomic::Ordering;

    const NOW: i64 = 1_700_000_000_000;

    fn int(v: i64) -> Frame {
        Frame::Integer(v)
    }

    fn logged(h: &Harness) -> Vec<String> {
        h.effects
            .list
            .iter()
            .map(|e| e.argv.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" "))
            .collect()
    }

    fn dirty(h: &Harness) -> u64 {
        h.host.stats.dirty.load(Ordering::Relaxed)
    }

    fn encoding(h: &mut Harness, key: &str) -> Frame {
        h.run(&["OBJECT", "ENCODING", key])
    }

    #[test]
    fn relative_expiries_are_logged_as_absolute_times() {
        let mut h = Harness::new(NOW);
        assert_eq!(h.run(&["SETEX", "a", "10", "v"]), simple("OK"));
        assert_eq!(h.run(&["PSETEX", "b", "1500", "12"]), simple("OK"));
        assert_eq!(h.run(&["SET", "c", "v"]), simple("OK"));
        assert_eq!(h.run(&["GETEX", "c"]), bulk("v"));
        assert_eq!(h.run(&["GETEX", "c", "EX", "5"]), bulk("v"));
        assert_eq!(h.run(&["GETEX", "c", "PX", "5"]), bulk("v"));
        assert_eq!(h.run(&["GETEX", "c", "PXAT", &(NOW + 9).to_string()]), bulk("v"));
        assert_eq!(h.run(&["GETEX", "c", "PERSIST"]), bulk("v"));
        // Nothing to persist: nothing logged.
        assert_eq!(h.run(&["GETEX", "c", "PERSIST"]), bulk("v"));
        assert_eq!(h.run(&["GETEX", "nokey", "EX", "5"]), Frame::Null);
        assert_eq!(
            logged(&h),
            [
                format!("SET a v PXAT {}", NOW + 10_000),
                format!("SET b 12 PXAT {}", NOW + 1_500),
                "SET c v".to_string(),
                format!("PEXPIREAT c {}", NOW + 5_000),
                format!("PEXPIREAT c {}", NOW + 5),
                format!("PEXPIREAT c {}", NOW + 9),
                "PERSIST c".to_string(),
            ]
        );
        assert_eq!(h.run(&["PTTL", "a"]), int(10_000));
        h.now_ms += 1_500;
        assert_eq!(h.run(&["GET", "b"]), Frame::Null);
        assert_eq!(h.run(&["GET", "a"]), bulk("v"));
    }

    #[test]
    fn getex_with_a_past_absolute_time_deletes() {
        let mut h = Harness::new(NOW);
        h.run(&["SET", "k", "v"]);
        assert_eq!(h.run(&["GETEX", "k", "EXAT", "1"]), bulk("v"));
        assert_eq!(h.run(&["EXISTS", "k"]), int(0));
        assert_eq!(logged(&h), ["SET k v", "DEL k"]);
        // The time is only checked when the key exists.
        assert_eq!(h.run(&["GETEX", "k", "EX", "0"]), Frame::Null);
        h.run(&["SET", "k", "v"]);
        assert_eq!(h.run(&["GETEX", "k", "EX", "0"]), error("ERR invalid expire time in 'getex' command"));
        assert_eq!(
            h.run(&["GETEX", "k", "EX", "9223372036854775"]),
            error("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(h.run(&["GETEX", "k", "EX", "1", "PX", "1"]), error("ERR syntax error"));
        assert_eq!(h.run(&["GETEX", "k", "PERSIST", "EX", "1"]), error("ERR syntax error"));
    }

    #[test]
    fn rewrites_of_getdel_getset_and_incrbyfloat() {
        let mut h = Harness::new(NOW);
        assert_eq!(h.run(&["GETDEL", "k"]), Frame::Null);
        assert_eq!(h.run(&["GETSET", "k", "1"]), Frame::Null);
        assert_eq!(h.run(&["GETSET", "k", "2"]), bulk("1"));
        assert_eq!(h.run(&["PEXPIRE", "k", "100000"]), int(1));
        assert_eq!(h.run(&["INCRBYFLOAT", "k", "0.5"]), bulk("2.5"));
        assert_eq!(h.run(&["PTTL", "k"]), int(100_000));
        assert_eq!(h.run(&["INCRBYFLOAT", "k", "x"]), error("ERR value is not a valid float"));
        assert_eq!(h.run(&["GETDEL", "k"]), bulk("2.5"));
        assert_eq!(
            logged(&h),
            [
                "SET k 1".to_string(),
                "SET k 2".to_string(),
                format!("PEXPIREAT k {}", NOW + 100_000),
                "SET k 2.5 KEEPTTL".to_string(),
                "DEL k".to_string(),
            ]
        );
    }

    #[test]
    fn writes_that_change_nothing_log_nothing() {
        let mut h = Harness::new(NOW);
        h.run(&["SET", "k", "v"]);
        let before = dirty(&h);
        assert_eq!(h.run(&["SETNX", "k", "w"]), int(0));
        assert_eq!(h.run(&["MSETNX", "x", "1", "k", "2"]), int(0));
        assert_eq!(h.run(&["SETRANGE", "k", "3", ""]), int(1));
        assert_eq!(h.run(&["SETRANGE", "missing", "3", ""]), int(0));
        assert_eq!(h.run(&["INCR", "k"]), error("ERR value is not an integer or out of range"));
        assert_eq!(h.run(&["APPEND", "k", "x".repeat(10).as_str()]), int(11));
        assert_eq!(h.run(&["EXISTS", "x", "missing"]), int(0));
        assert_eq!(logged(&h), ["SET k v", "APPEND k xxxxxxxxxx"]);
        assert_eq!(dirty(&h), before + 1);
    }

    #[test]
    fn dirty_counts_like_redis() {
        let mut h = Harness::new(NOW);
        let steps: &[(&[&str], u64)] = &[
            (&["SETEX", "a", "10", "v"], 1),
            (&["SET", "a", "v", "EX", "10"], 1),
            (&["MSET", "a", "1", "b", "2", "c", "3"], 3),
            (&["MSETNX", "d", "1", "e", "2"], 2),
            (&["INCR", "a"], 1),
            (&["INCRBYFLOAT", "a", "1"], 1),
            (&["SETRANGE", "a", "0", "x"], 1),
            (&["APPEND", "a", ""], 1),
            (&["GETEX", "a", "EX", "5"], 1),
            (&["GETEX", "a"], 0),
            (&["GETDEL", "a"], 1),
            (&["GETDEL", "a"], 0),
        ];
        for (args, n) in steps {
            let before = dirty(&h);
            h.run(args);
            assert_eq!(dirty(&h) - before, *n, "{args:?}");
        }
    }

    #[test]
    fn encodings_follow_redis() {
        let mut h = Harness::new(NOW);
        h.run(&["SET", "k", "1"]);
        h.run(&["INCRBYFLOAT", "k", "1"]);
        assert_eq!(encoding(&mut h, "k"), bulk("embstr"));
        h.run(&["INCR", "k"]);
        assert_eq!(encoding(&mut h, "k"), bulk("int"));
        h.run(&["INCRBYFLOAT", "big", "1e60"]);
        assert_eq!(encoding(&mut h, "big"), bulk("raw"));
        h.run(&["APPEND", "n", "12"]);
        assert_eq!(encoding(&mut h, "n"), bulk("int"));
        h.run(&["APPEND", "n", ""]);
        assert_eq!(encoding(&mut h, "n"), bulk("raw"));
        h.run(&["SETRANGE", "r", "0", "1"]);
        assert_eq!(encoding(&mut h, "r"), bulk("raw"));
        assert_eq!(h.run(&["INCR", "r"]), int(2));
        assert_eq!(encoding(&mut h, "r"), bulk("int"));
        h.run(&["MSET", "m1", "x", "m2", "-7"]);
        assert_eq!(encoding(&mut h, "m1"), bulk("embstr"));
        assert_eq!(encoding(&mut h, "m2"), bulk("int"));
    }

    #[test]
    fn integer_edges() {
        let mut h = Harness::new(NOW);
        h.run(&["SET", "k", "9223372036854775806"]);
        assert_eq!(h.run(&["INCR", "k"]), int(i64::MAX));
        assert_eq!(h.run(&["INCR", "k"]), error("ERR increment or decrement would overflow"));
        assert_eq!(h.run(&["DECRBY", "k", "-9223372036854775808"]), error("ERR decrement would overflow"));
        assert_eq!(h.run(&["INCRBY", "k", "-9223372036854775808"]), int(-1));
        assert_eq!(h.run(&["DECRBY", "x", "9223372036854775807"]), int(-i64::MAX));
        assert_eq!(h.run(&["DECR", "x"]), int(i64::MIN));
        assert_eq!(h.run(&["DECR", "x"]), error("ERR increment or decrement would overflow"));
        for bad in ["01", "-0", "+1", " 1", "1.0", ""] {
            h.run_bytes(&[b"SET", b"b", bad.as_bytes()]);
            assert_eq!(h.run(&["INCR", "b"]), error("ERR value is not an integer or out of range"), "{bad:?}");
        }
    }

    #[test]
    fn size_limits_are_checked_before_allocating() {
        let mut h = Harness::new(NOW);
        let too_long = error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        assert_eq!(h.run(&["SETRANGE", "k", "9223372036854775807", "x"]), too_long);
        assert_eq!(h.run(&["SETRANGE", "k", "536870912", "x"]), too_long);
        assert_eq!(h.run(&["SETRANGE", "k", "-1", "x"]), error("ERR offset is out of range"));
        h.run(&["SET", "k", "abc"]);
        assert_eq!(h.run(&["SETRANGE", "k", "9223372036854775807", "x"]), too_long);
        assert_eq!(h.run(&["SETRANGE", "k", "9223372036854775807", ""]), int(3));
        assert_eq!(h.run(&["SETRANGE", "k", "5", "de"]), int(7));
        assert_eq!(h.run(&["GET", "k"]), Frame::Bulk(b"abc\0\0de".to_vec()));
        assert_eq!(h.run(&["MSET", "a", "1", "b"]), error("ERR wrong number of arguments for 'mset' command"));
        assert_eq!(h.run(&["MSETNX", "a", "1", "b"]), error("ERR wrong number of arguments for 'msetnx' command"));
    }

    #[test]
    fn lcs_replies_in_both_protocols() {
        let mut h = Harness::new(NOW);
        h.run(&["MSET", "a", "ohmytext", "b", "mynewtext"]);
        assert_eq!(h.run(&["LCS", "a", "b"]), bulk("mytext"));
        assert_eq!(h.run(&["LCS", "a", "b", "LEN"]), int(6));
        let range = |x: i64, y: i64| Frame::Array(vec![int(x), int(y)]);
        let m1 = Frame::Array(vec![range(4, 7), range(5, 8), int(4)]);
        let m2 = Frame::Array(vec![range(2, 3), range(0, 1), int(2)]);
        let want = vec![bulk("matches"), Frame::Array(vec![m1.clone(), m2]), bulk("len"), int(6)];
        assert_eq!(h.run(&["LCS", "a", "b", "IDX", "WITHMATCHLEN"]), Frame::Array(want));
        h.resp3();
        assert_eq!(
            h.run(&["LCS", "a", "b", "IDX", "MINMATCHLEN", "3", "WITHMATCHLEN"]),
            Frame::Map(vec![(bulk("matches"), Frame::Array(vec![m1])), (bulk("len"), int(6))])
        );
        assert_eq!(
            h.run(&["LCS", "a", "b", "IDX", "LEN"]),
            error("ERR If you want both the length and indexes, please just use IDX.")
        );
        assert_eq!(h.run(&["LCS", "a", "b", "MINMATCHLEN"]), error("ERR syntax error"));
    }

    fn lcs_len(a: &[u8], b: &[u8]) -> usize {
        let mut prev = vec![0usize; b.len() + 1];
        for &x in a {
            let mut cur = vec![0usize; b.len() + 1];
            for (j, &y) in b.iter().enumerate() {
                cur[j + 1] = if x == y { prev[j] + 1 } else { prev[j + 1].max(cur[j]) };
            }
            prev = cur;
        }
        prev[b.len()]
    }

    proptest! {
        /// The string, the length and the ranges of LCS agree with each other and with an
        /// independent computation of the length.
        #[test]
        fn lcs_is_consistent(a in "[abc]{0,12}", b in "[abc]{0,12}") {
            let mut h = Harness::new(NOW);
            h.run(&["MSET", "a", &a, "b", &b]);
            let want = lcs_len(a.as_bytes(), b.as_bytes());
            prop_assert_eq!(h.run(&["LCS", "a", "b", "LEN"]), int(want as i64));
            let Frame::Bulk(s) = h.run(&["LCS", "a", "b"]) else { panic!("bulk expected") };
            prop_assert_eq!(s.len(), want);
            let Frame::Array(reply) = h.run(&["LCS", "a", "b", "IDX", "WITHMATCHLEN"]) else { panic!("array expected") };
            let Frame::Array(matches) = &reply[1] else { panic!("matches expected") };
            let mut joined = Vec::new();
            let mut last: Option<(i64, i64)> = None;
            for m in matches.iter().rev() {
                let Frame::Array(parts) = m else { panic!() };
                let bounds = |f: &Frame| match f {
                    Frame::Array(v) => match (&v[0], &v[1]) {
                        (Frame::Integer(x), Frame::Integer(y)) => (*x, *y),
                        _ => panic!(),
                    },
                    _ => panic!(),
                };
                let (a0, a1) = bounds(&parts[0]);
                let (b0, b1) = bounds(&parts[1]);
                prop_assert_eq!(&parts[2], &int(a1 - a0 + 1));
                prop_assert_eq!(&a.as_bytes()[a0 as usize..=a1 as usize], &b.as_bytes()[b0 as usize..=b1 as usize]);
                if let Some((pa, pb)) = last {
                    prop_assert!(a0 > pa && b0 > pb);
                }
                last = Some((a1, b1));
                joined.extend_from_slice(&a.as_bytes()[a0 as usize..=a1 as usize]);
            }
            prop_assert_eq!(joined, s);
        }

        /// GETRANGE agrees with a model of Redis's index arithmetic.
        #[test]
        fn getrange_model(s in "[a-z]{0,10}", start in -15i64..15, end in -15i64..15) {
            let mut h = Harness::new(NOW);
            h.run(&["SET", "k", &s]);
            let len = s.len() as i64;
            let want: &[u8] = if start < 0 && end < 0 && start > end {
                b""
            } else {
                let st = if start < 0 { (len + start).max(0) } else { start };
                let en = if end < 0 { (len + end).max(0) } else { end.min(len - 1) };
                if st > en || len == 0 { b"" } else { &s.as_bytes()[st as usize..=en as usize] }
            };
            prop_assert_eq!(h.run(&["GETRANGE", "k", &start.to_string(), &end.to_string()]), Frame::Bulk(want.to_vec()));
        }
    }
}
