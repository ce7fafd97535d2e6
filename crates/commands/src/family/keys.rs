//! The generic (keyspace) family, Redis's `db.c`, `expire.c` and parts of `object.c` and
//! `cluster.c`: `DEL`, `EXISTS`, `TYPE`, `RENAME`, `COPY`, `MOVE`, `OBJECT`, `DUMP`/`RESTORE`,
//! the expiry commands, `KEYS`, `RANDOMKEY` and `SCAN`.
//!
//! `SCAN` runs without the executor's locks: it locks one shard at a time. Its cursor is
//! `(dict_cursor << shard_bits) | shard`: shards are scanned in order, each with its dict's
//! reverse-binary cursor, so every key present for the whole scan is returned at least once
//! even while shards grow or shrink between calls.

use crate::args::{self, is};
use crate::ctx::{Ctx, Store};
use crate::errors::{CmdError, CmdResult};
use crate::notify;
use crate::table::{
    bind, Binding,
    LockMode::{All, Keys, None as Unlocked},
};
use engine::glob::glob_match;
use engine::keyspace::lru_clock;
use engine::rdb;
use engine::{Str, Value, ValueType};

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("del", del, Keys),
    bind("unlink", del, Keys),
    bind("exists", exists, Keys),
    bind("type", type_cmd, Keys),
    bind("rename", rename, Keys),
    bind("renamenx", renamenx, Keys),
    bind("copy", copy, Keys),
    bind("move", move_cmd, Keys),
    bind("touch", touch, Keys),
    bind("object|encoding", object_encoding, Keys),
    bind("object|freq", object_freq, Keys),
    bind("object|idletime", object_idletime, Keys),
    bind("object|refcount", object_refcount, Keys),
    bind("object|help", object_help, Unlocked),
    bind("dump", dump, Keys),
    bind("restore", restore, Keys),
    bind("expire", expire, Keys),
    bind("pexpire", pexpire, Keys),
    bind("expireat", expireat, Keys),
    bind("pexpireat", pexpireat, Keys),
    bind("persist", persist, Keys),
    bind("ttl", ttl, Keys),
    bind("pttl", pttl, Keys),
    bind("expiretime", expiretime, Keys),
    bind("pexpiretime", pexpiretime, Keys),
    bind("keys", keys, All),
    bind("randomkey", randomkey, All),
    bind("scan", scan, Unlocked),
];

/// Redis's 24-bit LRU clock mask (`LRU_CLOCK_MAX`).
const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

/// Integers Redis shares between keys (`OBJ_SHARED_INTEGERS`); `OBJECT REFCOUNT` reports
/// `OBJ_SHARED_REFCOUNT` for them.
const SHARED_INTEGERS: i64 = 10_000;

/// `OBJ_SHARED_REFCOUNT`.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// Looks a key of the selected database up for a read without refreshing its access time
/// (Redis's `LOOKUP_NOTOUCH`): expired keys are absent (and removed), hits and misses count.
fn peek<'s>(store: &'s mut Store, key: &[u8]) -> Option<&'s Value> {
    peek_notify(store, key, true)
}

/// [`peek`]; `keymiss` is published for a missing key unless `miss_event` is false (`OBJECT`, as
/// Redis's `LOOKUP_NONOTIFY`).
fn peek_notify<'s>(store: &'s mut Store, key: &[u8], miss_event: bool) -> Option<&'s Value> {
    let live = store.exists(key);
    if !live && miss_event {
        store.notify(notify::KEY_MISS, "keymiss", key);
    }
    if live {
        store.stats.keyspace_hits += 1;
    } else {
        store.stats.keyspace_misses += 1;
    }
    if !live {
        return None;
    }
    let db = store.db;
    let (d, h) = store.db_for_read(db, key);
    d.value(h, key)
}

/// Parses a database index as `getIntFromObjectOrReply` then `selectDb` do.
fn db_index(ctx: &Ctx, arg: &[u8]) -> Result<usize, CmdError> {
    let v = args::int(arg)?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(CmdError::OutOfRangeBetween(i32::MIN as i64, i32::MAX as i64));
    }
    if v < 0 || v as usize >= ctx.store.ks.databases() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    Ok(v as usize)
}

/// `DEL key [key ...]` and `UNLINK key [key ...]` (values are small enough to free inline).
fn del(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut n = 0;
    for key in &argv[1..] {
        if ctx.store.delete(key) {
            ctx.store.notify(notify::GENERIC, "del", key);
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// `EXISTS key [key ...]`: repeated keys count each time.
fn exists(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut n = 0;
    for key in &argv[1..] {
        if peek(&mut ctx.store, key).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// `TYPE key`
fn type_cmd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let name = peek(&mut ctx.store, argv[1]).map_or("none", |v| v.value_type().name());
    ctx.out.simple(name.as_bytes());
    Ok(())
}

/// `TOUCH key [key ...]`: refreshes access times even for `CLIENT NO-TOUCH` clients.
fn touch(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let saved = ctx.store.no_touch;
    ctx.store.no_touch = false;
    let mut n = 0;
    for key in &argv[1..] {
        if ctx.store.lookup_read(key).is_some() {
            n += 1;
        }
    }
    ctx.store.no_touch = saved;
    ctx.out.int(n);
    Ok(())
}

/// `RENAME` and `RENAMENX`.
fn rename_generic(ctx: &mut Ctx, argv: &[&[u8]], nx: bool) -> CmdResult {
    let (src, dst) = (argv[1], argv[2]);
    if ctx.store.lookup_write(src).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        // Nothing to do (and nothing logged), but the key had to exist.
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    if ctx.store.lookup_write(dst).is_some() {
        if nx {
            ctx.out.int(0);
            return Ok(());
        }
        ctx.store.delete(dst);
    }
    let db = ctx.store.db;
    let (entry, when) = ctx.store.take_in(db, src).expect("source looked up above");
    ctx.store.set(dst, entry.value, false);
    if let Some(when) = when {
        ctx.store.set_expire(dst, when);
    }
    ctx.store.notify(notify::GENERIC, "rename_from", src);
    ctx.store.notify(notify::GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// `RENAME key newkey`
fn rename(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, argv, false)
}

/// `RENAMENX key newkey`
fn renamenx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, argv, true)
}

/// `COPY source destination [DB destination-db] [REPLACE]`
fn copy(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (src, dst) = (argv[1], argv[2]);
    let src_db = ctx.store.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < argv.len() {
        if is(argv[i], "REPLACE") {
            replace = true;
        } else if is(argv[i], "DB") && i + 1 < argv.len() {
            dst_db = db_index(ctx, argv[i + 1])?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if src_db == dst_db && src == dst {
        return Err(CmdError::SameObject);
    }
    let Some(e) = ctx.store.lookup_read(src) else {
        ctx.out.int(0);
        return Ok(());
    };
    let value = e.clone();
    let when = ctx.store.expire_of(src);
    if ctx.store.lookup_write_in(dst_db, dst).is_some() {
        if !replace {
            ctx.out.int(0);
            return Ok(());
        }
        ctx.store.delete_in(dst_db, dst);
    }
    ctx.store.set_in(dst_db, dst, value, false);
    if let Some(when) = when {
        ctx.store.set_expire_in(dst_db, dst, when);
    }
    ctx.store.notify_in(notify::GENERIC, "copy_to", dst_db, dst);
    ctx.out.int(1);
    Ok(())
}

/// `MOVE key db`
fn move_cmd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let src_db = ctx.store.db;
    let dst_db = db_index(ctx, argv[2])?;
    if src_db == dst_db {
        return Err(CmdError::SameObject);
    }
    if ctx.store.lookup_write(key).is_none() || ctx.store.lookup_write_in(dst_db, key).is_some() {
        ctx.out.int(0);
        return Ok(());
    }
    let (entry, when) = ctx.store.take_in(src_db, key).expect("key looked up above");
    ctx.store.set_in(dst_db, key, entry.value, false);
    if let Some(when) = when {
        ctx.store.set_expire_in(dst_db, key, when);
    }
    ctx.store.notify_in(notify::GENERIC, "move_from", src_db, key);
    ctx.store.notify_in(notify::GENERIC, "move_to", dst_db, key);
    ctx.out.int(1);
    Ok(())
}

/// `OBJECT ENCODING key`
fn object_encoding(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    match peek_notify(&mut ctx.store, argv[2], false) {
        Some(e) => {
            let enc = e.encoding();
            ctx.out.bulk(enc.as_bytes());
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// `OBJECT FREQ key`. Access frequencies are not tracked yet: under an LFU policy every key
/// reports 0.
fn object_freq(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if peek_notify(&mut ctx.store, argv[2], false).is_none() {
        ctx.out.null();
        return Ok(());
    }
    if !ctx.host.lfu_policy() {
        return Err(CmdError::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
             switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    ctx.out.int(0);
    Ok(())
}

/// Seconds since the access time `lru`, computed on Redis's wrapping 24-bit clock
/// (`estimateObjectIdleTime`).
fn idle_seconds(now_ms: i64, lru: u32) -> i64 {
    let clock = lru_clock(now_ms) & LRU_CLOCK_MAX;
    let o = lru & LRU_CLOCK_MAX;
    if clock >= o {
        (clock - o) as i64
    } else {
        (clock + (LRU_CLOCK_MAX - o)) as i64
    }
}

/// `OBJECT IDLETIME key`
fn object_idletime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms();
    if peek_notify(&mut ctx.store, argv[2], false).is_none() {
        ctx.out.null();
        return Ok(());
    }
    let lru = ctx.store.lru_of(argv[2]).unwrap_or(0);
    if ctx.host.lfu_policy() {
        return Err(CmdError::err(
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching \
             between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    ctx.out.int(idle_seconds(now, lru));
    Ok(())
}

/// True if Redis would share small integer values between keys: always, unless `maxmemory`
/// is set with an LRU or LFU policy (`MAXMEMORY_FLAG_NO_SHARED_INTEGERS`).
fn shared_integers(ctx: &Ctx) -> bool {
    let get = |name: &[u8]| ctx.host.config_get(name).into_iter().next().map(|(_, v)| v);
    let maxmemory_set = get(b"maxmemory").is_some_and(|v| v.trim() != "0");
    let lru_or_lfu = get(b"maxmemory-policy").is_some_and(|p| p.contains("lru") || p.contains("lfu"));
    !(maxmemory_set && lru_or_lfu)
}

/// `OBJECT REFCOUNT key`: values are never shared, except that Redis shares the integers
/// 0..9999 and reports `INT_MAX` for them.
fn object_refcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let small_int = match peek_notify(&mut ctx.store, argv[2], false) {
        None => {
            ctx.out.null();
            return Ok(());
        }
        Some(e) => matches!(*e, Value::Str(Str::Int(v)) if (0..SHARED_INTEGERS).contains(&v)),
    };
    let n = if small_int && shared_integers(ctx) { SHARED_REFCOUNT } else { 1 };
    ctx.out.int(n);
    Ok(())
}

/// `OBJECT HELP`
fn object_help(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    const LINES: &[&str] = &[
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
    ];
    crate::family::server::help_reply(ctx, "OBJECT", LINES);
    Ok(())
}

/// The `DUMP` payload of a value.
fn dump_value(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(s) => s.with_bytes(rdb::dump_string),
        _ => rdb::dump_object(v),
    }
}

/// `DUMP key`
fn dump(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    match ctx.store.lookup_read(argv[1]) {
        Some(e) => {
            let payload = dump_value(e);
            ctx.out.bulk(&payload);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// The access time `RESTORE ... IDLETIME idle` gives a key, computed as Redis's
/// `objectSetLRUOrLFU` does on its wrapping 24-bit clock, then widened to the full-seconds
/// clock (the latest time at or before now with the same low 24 bits), so that
/// `OBJECT IDLETIME` reports exactly what Redis reports.
fn lru_for_idle(now_ms: i64, idle: i64) -> u32 {
    let now_s = lru_clock(now_ms);
    let clock = (now_s & LRU_CLOCK_MAX) as i64;
    // Redis scales by the clock resolution (1000 ms) in 64-bit arithmetic, wrapping.
    let idle = idle.wrapping_mul(1000) / 1000;
    let mut abs = clock - idle;
    if abs < 0 {
        abs += LRU_CLOCK_MAX as i64;
    }
    let lru24 = (abs as u64 & LRU_CLOCK_MAX as u64) as u32;
    let back = now_s.wrapping_sub(lru24) & LRU_CLOCK_MAX;
    now_s.wrapping_sub(back)
}

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`
fn restore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let mut replace = false;
    let mut absttl = false;
    let mut idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let mut i = 4;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(argv[i], "REPLACE") {
            replace = true;
        } else if is(argv[i], "ABSTTL") {
            absttl = true;
        } else if is(argv[i], "IDLETIME") && more && freq.is_none() {
            let v = args::int(argv[i + 1])?;
            if v < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
            i += 1;
        } else if is(argv[i], "FREQ") && more && idle.is_none() {
            let v = args::int(argv[i + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if !replace && ctx.store.lookup_write(key).is_some() {
        return Err(CmdError::BusyKey);
    }
    let mut ttl = args::int(argv[2])?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    let value = rdb::restore_payload(argv[3]).map_err(|e| CmdError::err(e.message()))?;
    let deleted = replace && ctx.store.delete(key);
    let now = ctx.now_ms();
    if ttl != 0 && !absttl {
        // Redis adds without an overflow check; a wrapped time is in the past.
        ttl = ttl.wrapping_add(now);
    }
    if ttl != 0 && ttl <= now {
        // Already expired: nothing is created; a replaced key is gone and logged as DEL.
        if deleted {
            ctx.store.notify(notify::GENERIC, "del", key);
            ctx.propagate_as(|| vec![b"DEL".to_vec(), key.to_vec()]);
        }
        ctx.out.ok();
        return Ok(());
    }
    ctx.store.set(key, value.into_value(&ctx.store.ks.limits()), false);
    ctx.store.notify(notify::GENERIC, "restore", key);
    if ttl != 0 {
        ctx.store.set_expire(key, ttl);
        if !absttl {
            // Log the absolute time so that replay does not depend on when it runs.
            ctx.propagate_as(|| {
                let mut eff = args::owned(argv);
                eff[2] = args::int_bytes(ttl);
                eff.push(b"ABSTTL".to_vec());
                eff
            });
        }
    }
    // FREQ would set an LFU counter, which is not kept (see `OBJECT FREQ`); IDLETIME applies
    // under any non-LFU policy, as in Redis.
    if let Some(idle) = idle {
        if !ctx.host.lfu_policy() {
            let lru = lru_for_idle(now, idle);
            ctx.store.set_lru(key, lru);
        }
    }
    ctx.out.ok();
    Ok(())
}

/// Options of the expiry commands (`NX`, `XX`, `GT`, `LT`).
#[derive(Clone, Copy, Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Parses `NX | XX | GT | LT` as `parseExtendedExpireArgumentsOrReply` does.
fn expire_flags(opts: &[&[u8]]) -> Result<ExpireFlags, CmdError> {
    let mut f = ExpireFlags::default();
    for o in opts {
        if is(o, "NX") {
            f.nx = true;
        } else if is(o, "XX") {
            f.xx = true;
        } else if is(o, "GT") {
            f.gt = true;
        } else if is(o, "LT") {
            f.lt = true;
        } else {
            // Redis formats the option as a C string: it ends at the first NUL.
            let end = o.iter().position(|&b| b == 0).unwrap_or(o.len());
            return Err(CmdError::err(format!("Unsupported option {}", String::from_utf8_lossy(&o[..end]))));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(CmdError::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f.gt && f.lt {
        return Err(CmdError::err("GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

/// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (`expireGenericCommand`): `relative` adds
/// the command's time, `seconds` scales by 1000.
fn expire_generic(ctx: &mut Ctx, argv: &[&[u8]], relative: bool, seconds: bool, name: &str) -> CmdResult {
    let key = argv[1];
    let flags = expire_flags(&argv[3..])?;
    let mut when = args::int(argv[2])?;
    let invalid = || CmdError::InvalidExpire(name.to_string());
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    let base = if relative { ctx.now_ms() } else { 0 };
    if when > i64::MAX - base {
        return Err(invalid());
    }
    when += base;
    if ctx.store.lookup_write(key).is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let current = ctx.store.expire_of(key);
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|c| when <= c))
        || (flags.lt && current.is_some_and(|c| when >= c));
    if refused {
        ctx.out.int(0);
        return Ok(());
    }
    if when <= ctx.now_ms() {
        ctx.store.delete(key);
        ctx.store.notify(notify::GENERIC, "del", key);
        ctx.propagate_as(|| vec![b"DEL".to_vec(), key.to_vec()]);
    } else {
        ctx.store.set_expire(key, when);
        ctx.store.notify(notify::GENERIC, "expire", key);
        ctx.propagate_as(|| vec![b"PEXPIREAT".to_vec(), key.to_vec(), args::int_bytes(when)]);
    }
    ctx.out.int(1);
    Ok(())
}

/// `EXPIRE key seconds [NX | XX | GT | LT]`
fn expire(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, true, true, "expire")
}

/// `PEXPIRE key milliseconds [NX | XX | GT | LT]`
fn pexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, true, false, "pexpire")
}

/// `EXPIREAT key unix-time-seconds [NX | XX | GT | LT]`
fn expireat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, false, true, "expireat")
}

/// `PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]`
fn pexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, false, false, "pexpireat")
}

/// `PERSIST key`
fn persist(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let done = ctx.store.lookup_write(argv[1]).is_some() && ctx.store.persist(argv[1]);
    if done {
        ctx.store.notify(notify::GENERIC, "persist", argv[1]);
    }
    ctx.out.int(i64::from(done));
    Ok(())
}

/// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME` (`ttlGenericCommand`).
fn ttl_generic(ctx: &mut Ctx, key: &[u8], ms: bool, absolute: bool) -> CmdResult {
    if peek(&mut ctx.store, key).is_none() {
        ctx.out.int(-2);
        return Ok(());
    }
    let Some(when) = ctx.store.expire_of(key) else {
        ctx.out.int(-1);
        return Ok(());
    };
    let t = if absolute { when } else { when - ctx.now_ms() }.max(0);
    // Seconds round to nearest, computed without overflow as Redis's build does.
    let v = if ms { t } else { ((t as i128 + 500) / 1000) as i64 };
    ctx.out.int(v);
    Ok(())
}

/// `TTL key`
fn ttl(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], false, false)
}

/// `PTTL key`
fn pttl(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], true, false)
}

/// `EXPIRETIME key`
fn expiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], false, true)
}

/// `PEXPIRETIME key`
fn pexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], true, true)
}

/// `KEYS pattern`: logically expired keys are skipped, not removed (as in Redis 7.0-7.2).
fn keys(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let pattern = argv[1];
    let all = pattern == b"*";
    let db = ctx.store.db;
    let now = ctx.now_ms();
    let mut found: Vec<Vec<u8>> = Vec::new();
    for s in ctx.store.locks.shards_read() {
        let d = &s.dbs[db];
        let volatile = !d.expires.is_empty();
        d.main.for_each(|k, _| {
            if (all || glob_match(pattern, k, false)) && !(volatile && d.is_expired(d.main.hasher().hash(k), k, now)) {
                found.push(k.to_vec());
            }
        });
    }
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// Attempts `RANDOMKEY` makes before falling back to a full pass over the live keys.
const RANDOMKEY_TRIES: usize = 100;

/// `RANDOMKEY`: a random live key; expired keys it meets are removed (and logged as `DEL`)
/// as in Redis. The pick comes from the command's seeded generator only.
fn randomkey(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let db = ctx.store.db;
    let now = ctx.now_ms();
    let nshards = ctx.store.ks.num_shards();
    for _ in 0..RANDOMKEY_TRIES {
        let sizes: Vec<usize> = (0..nshards).map(|i| ctx.store.locks.shard(i).dbs[db].len()).collect();
        let total: usize = sizes.iter().sum();
        if total == 0 {
            ctx.out.null();
            return Ok(());
        }
        // A shard weighted by its size, then a random entry of it.
        let mut r = ctx.rng.below(total as u64) as usize;
        let mut shard = 0;
        while r >= sizes[shard] {
            r -= sizes[shard];
            shard += 1;
        }
        let rng = &mut *ctx.rng;
        let d = &ctx.store.locks.shard(shard).dbs[db];
        let (key, expired) = {
            let (k, _) = d.main.random_entry(|| rng.next_u64()).expect("shard is not empty");
            (k.to_vec(), d.is_expired(d.main.hasher().hash(k), k, now))
        };
        if !expired {
            ctx.out.bulk(&key);
            return Ok(());
        }
        // Removes the key (logging a DEL) where this node may expire keys.
        ctx.store.exists(&key);
    }
    // Mostly expired keys that may not be removed here: pick among the live ones.
    let mut live: Vec<Vec<u8>> = Vec::new();
    for s in ctx.store.locks.shards_read() {
        let d = &s.dbs[db];
        d.main.for_each(|k, _| {
            if !d.is_expired(d.main.hasher().hash(k), k, now) {
                live.push(k.to_vec());
            }
        });
    }
    if live.is_empty() {
        ctx.out.null();
    } else {
        let i = ctx.rng.below(live.len() as u64) as usize;
        ctx.out.bulk(&live[i]);
    }
    Ok(())
}

/// Parses a `SCAN` cursor as Redis's `parseScanCursorOrReply` (C `strtoul`, base 10): an
/// optional sign (a minus negates modulo 2^64), digits, nothing else; no leading space; the
/// empty string is cursor 0.
pub(crate) fn parse_cursor(b: &[u8]) -> Option<u64> {
    let Some(&first) = b.first() else {
        return Some(0);
    };
    if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let (neg, digits) = match first {
        b'+' => (false, &b[1..]),
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// One `SCAN` call over database `db` of `ks` from `cursor`: visits buckets until at least
/// `count` keys were seen (or `count * 10` bucket visits, or the end), locking one shard at a
/// time. Calls `emit` with every visited key that has not logically expired at `now_ms`.
/// Returns the next cursor (0 when the scan is complete).
pub fn scan_keyspace(
    ks: &engine::Keyspace,
    db: usize,
    cursor: u64,
    count: u64,
    now_ms: i64,
    mut emit: impl FnMut(&[u8], &Value),
) -> u64 {
    let nshards = ks.num_shards();
    let bits = ks.shard_bits();
    let mut shard = (cursor & (nshards as u64 - 1)) as usize;
    let mut dict_cursor = cursor >> bits;
    let mut visited: u64 = 0;
    let mut budget = count.saturating_mul(10);
    loop {
        {
            // Reading only: a pending snapshot need not be served.
            let guard = ks.lock_deferred(shard);
            let d = &guard.dbs[db];
            let volatile = !d.expires.is_empty();
            loop {
                if d.main.is_empty() {
                    dict_cursor = 0;
                    break;
                }
                dict_cursor = d.main.scan(dict_cursor, |k, e| {
                    visited += 1;
                    if !(volatile && d.is_expired(d.main.hasher().hash(k), k, now_ms)) {
                        emit(k, e);
                    }
                });
                budget = budget.saturating_sub(1);
                if dict_cursor == 0 || visited >= count || budget == 0 {
                    break;
                }
            }
        }
        if dict_cursor == 0 {
            shard += 1;
            if shard == nshards {
                return 0;
            }
        }
        if visited >= count || budget == 0 {
            return (dict_cursor << bits) | shard as u64;
        }
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
fn scan(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(argv[1]).ok_or(CmdError::InvalidCursor)?;
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(argv[i], "COUNT") && more {
            count = args::int(argv[i + 1])?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if is(argv[i], "MATCH") && more {
            pattern = Some(argv[i + 1]).filter(|p| *p != b"*");
        } else if is(argv[i], "TYPE") && more {
            type_name = Some(argv[i + 1]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    // An unknown type name matches nothing (Redis 7.0-7.2 do not reject it).
    let want: Option<Option<ValueType>> = type_name.map(ValueType::from_name);
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = scan_keyspace(ctx.store.ks, ctx.store.db, cursor, count as u64, ctx.now_ms(), |k, e| {
        if pattern.is_some_and(|p| !glob_match(p, k, false)) {
            return;
        }
        if want.is_some_and(|t| t != Some(e.value_type())) {
            return;
        }
        found.push(k.to_vec());
    });
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bulk, error, simple, Harness};
    use engine::Keyspace;
    use protocol::Frame;
    use std::collections::HashSet;

    fn int(v: i64) -> Frame {
        Frame::Integer(v)
    }

    /// The effects recorded since the last call, as strings.
    fn take_effects(h: &mut Harness) -> Vec<String> {
        h.effects
            .list
            .drain(..)
            .map(|e| e.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Runs a full `SCAN` through the command with `count`, calling `between` after each call.
    fn scan_all(h: &mut Harness, count: usize, mut between: impl FnMut(&mut Harness)) -> (HashSet<Vec<u8>>, usize) {
        let mut seen = HashSet::new();
        let mut cursor = b"0".to_vec();
        let mut calls = 0;
        let count = count.to_string();
        loop {
            let reply = h.run_bytes(&[b"SCAN", &cursor, b"COUNT", count.as_bytes()]);
            calls += 1;
            let Frame::Array(parts) = reply else { panic!("SCAN reply {reply:?}") };
            let (Frame::Bulk(next), Frame::Array(keys)) = (&parts[0], &parts[1]) else {
                panic!("SCAN reply {parts:?}")
            };
            for k in keys {
                let Frame::Bulk(k) = k else { panic!("key {k:?}") };
                seen.insert(k.clone());
            }
            between(h);
            if next == b"0" {
                return (seen, calls);
            }
            cursor = next.clone();
        }
    }

    #[test]
    fn scan_returns_every_key_while_the_keyspace_grows() {
        let mut h = Harness::new(1_700_000_000_000);
        for i in 0..300 {
            h.run(&["SET", &format!("orig:{i}"), "v"]);
        }
        let mut next = 0;
        let (seen, calls) = scan_all(&mut h, 10, |h| {
            // Grow the shards between calls (faster than the scan advances) so that the dicts
            // resize mid-scan.
            for _ in 0..15 {
                h.run(&["SET", &format!("new:{next}"), "v"]);
                next += 1;
            }
        });
        for i in 0..300 {
            assert!(seen.contains(format!("orig:{i}").as_bytes()), "orig:{i} missing after {calls} calls");
        }
        assert!(calls > 10, "COUNT 10 should need many calls, took {calls}");
    }

    #[test]
    fn scan_returns_every_stable_key_while_others_are_removed() {
        let mut h = Harness::new(1_700_000_000_000);
        for i in 0..2000 {
            h.run(&["SET", &format!("k:{i}"), "v"]);
        }
        let mut doomed = 100;
        let (seen, _) = scan_all(&mut h, 7, |h| {
            for _ in 0..80 {
                if doomed < 2000 {
                    h.run(&["DEL", &format!("k:{doomed}")]);
                    doomed += 1;
                }
            }
            for i in 0..h.ks.num_shards() {
                let mut s = h.ks.lock(i);
                s.dbs[0].main.shrink_if_needed();
            }
        });
        for i in 0..100 {
            assert!(seen.contains(format!("k:{i}").as_bytes()), "k:{i} missing");
        }
    }

    #[test]
    fn scan_guarantee_holds_with_concurrent_writers() {
        let ks = Keyspace::new(2, 8, 11);
        let put = |ks: &Keyspace, k: &str| {
            let h = ks.hash(k.as_bytes());
            let mut s = ks.lock(ks.shard_of(h));
            s.dbs[1].set(h, k.as_bytes(), Value::Str(Str::from_bytes(b"v")), 0);
        };
        for i in 0..5000 {
            put(&ks, &format!("base:{i}"));
        }
        let done = std::sync::atomic::AtomicBool::new(false);
        let seen = std::thread::scope(|s| {
            s.spawn(|| {
                let mut i = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) && i < 50_000 {
                    put(&ks, &format!("extra:{i}"));
                    i += 1;
                }
            });
            let mut seen: HashSet<Vec<u8>> = HashSet::new();
            let mut cursor = 0;
            loop {
                cursor = scan_keyspace(&ks, 1, cursor, 3, 0, |k, _| {
                    seen.insert(k.to_vec());
                });
                if cursor == 0 {
                    break;
                }
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            seen
        });
        for i in 0..5000 {
            assert!(seen.contains(format!("base:{i}").as_bytes()), "base:{i} missing");
        }
    }

    #[test]
    fn scan_cursor_encodes_the_shard_and_skips_expired_keys() {
        let mut h = Harness::new(1_000_000);
        h.run(&["SET", "live", "1"]);
        h.run(&["SET", "dead", "1", "PX", "10"]);
        h.now_ms += 100;
        let (seen, _) = scan_all(&mut h, 1, |_| {});
        assert_eq!(seen, HashSet::from([b"live".to_vec()]));
        // SCAN reads without removing: the expired key is still stored, and nothing is logged.
        let hd = h.ks.hash(b"dead");
        assert!(h.ks.lock(h.ks.shard_of(hd)).dbs[0].value(hd, b"dead").is_some());
        assert!(take_effects(&mut h).iter().all(|e| !e.starts_with("DEL")));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [&b" 0"[..], b"0 ", b"+", b"-", b"1.0", b"0x1", b"18446744073709551616"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
        assert_eq!(h.run(&["SCAN", "x"]), error("ERR invalid cursor"));
        assert_eq!(h.run(&["SCAN", "0", "COUNT", "0"]), error("ERR syntax error"));
    }

    #[test]
    fn expire_is_logged_as_absolute_time_or_del() {
        let mut h = Harness::new(1_000_000);
        h.run(&["SET", "k", "v"]);
        take_effects(&mut h);
        assert_eq!(h.run(&["EXPIRE", "k", "10"]), int(1));
        assert_eq!(take_effects(&mut h), ["PEXPIREAT k 1010000"]);
        assert_eq!(h.run(&["PEXPIRE", "k", "5", "LT"]), int(1));
        assert_eq!(take_effects(&mut h), ["PEXPIREAT k 1000005"]);
        assert_eq!(h.run(&["EXPIREAT", "k", "2000", "GT"]), int(1));
        assert_eq!(take_effects(&mut h), ["PEXPIREAT k 2000000"]);
        // Refused by a flag: nothing changes, nothing is logged.
        assert_eq!(h.run(&["EXPIRE", "k", "1", "GT"]), int(0));
        assert_eq!(h.run(&["PERSIST", "nokey"]), int(0));
        assert_eq!(take_effects(&mut h), Vec::<String>::new());
        assert_eq!(h.run(&["EXPIRE", "k", "-1"]), int(1));
        assert_eq!(take_effects(&mut h), ["DEL k"]);
        assert_eq!(h.run(&["EXISTS", "k"]), int(0));
    }

    #[test]
    fn ttl_commands_follow_the_clock() {
        let mut h = Harness::new(1_000_000);
        h.run(&["SET", "k", "v", "PX", "1500"]);
        assert_eq!(h.run(&["TTL", "k"]), int(2));
        assert_eq!(h.run(&["PTTL", "k"]), int(1500));
        assert_eq!(h.run(&["EXPIRETIME", "k"]), int(1002));
        assert_eq!(h.run(&["PEXPIRETIME", "k"]), int(1_001_500));
        h.now_ms += 1100;
        assert_eq!(h.run(&["TTL", "k"]), int(0));
        h.now_ms += 400;
        assert_eq!(h.run(&["TTL", "k"]), int(-2));
        assert_eq!(take_effects(&mut h).last().map(String::as_str), Some("DEL k"));
    }

    #[test]
    fn restore_logs_absolute_ttl() {
        let mut h = Harness::new(5_000);
        let payload = rdb::dump_string(b"hello");
        let run = |h: &mut Harness, extra: &[&[u8]]| {
            let mut argv: Vec<&[u8]> = vec![b"RESTORE", b"k", b"100", &payload];
            argv.extend_from_slice(extra);
            h.run_bytes(&argv)
        };
        assert_eq!(run(&mut h, &[]), simple("OK"));
        let eff = h.effects.list.drain(..).map(|e| e.argv).collect::<Vec<_>>();
        assert_eq!(
            eff,
            [vec![b"RESTORE".to_vec(), b"k".to_vec(), b"5100".to_vec(), payload.clone(), b"ABSTTL".to_vec()]]
        );
        assert_eq!(h.run(&["PTTL", "k"]), int(100));
        assert_eq!(run(&mut h, &[]), error("BUSYKEY Target key name already exists."));
        // An absolute time in the past with REPLACE removes the key and logs a DEL.
        let past: Vec<&[u8]> = vec![b"RESTORE", b"k", b"1", &payload, b"REPLACE", b"ABSTTL"];
        assert_eq!(h.run_bytes(&past), simple("OK"));
        assert_eq!(take_effects(&mut h), ["DEL k"]);
        assert_eq!(h.run(&["EXISTS", "k"]), int(0));
        // Without a key to replace nothing happens and nothing is logged.
        assert_eq!(h.run_bytes(&past), simple("OK"));
        assert_eq!(take_effects(&mut h), Vec::<String>::new());
        assert_eq!(h.run_bytes(&[b"DUMP", b"nokey"]), Frame::Null);
        let restored: Vec<&[u8]> = vec![b"RESTORE", b"j", b"0", &payload];
        h.run_bytes(&restored);
        assert_eq!(h.run(&["DUMP", "j"]), Frame::Bulk(payload.clone()));
        assert_eq!(h.run(&["GET", "j"]), bulk("hello"));
    }

    #[test]
    fn restore_idletime_matches_redis_24_bit_clock() {
        // Values observed on redis-server 7.0.15 with its LRU clock at 131440.
        let now_ms = (100i64 * (1 << 24) + 131_440) * 1000;
        for (idle, shown) in [
            (5, 5),
            (1_000_000, 1_000_000),
            (16_777_214, 16_777_214),
            (16_777_215, 0),
            (16_777_216, 1),
            (20_000_000, 3_222_784),
            (1_000_000_000, 10_144_256),
            (i64::MAX, 16_777_214),
        ] {
            assert_eq!(idle_seconds(now_ms, lru_for_idle(now_ms, idle)), shown, "IDLETIME {idle}");
        }
        let mut h = Harness::new(now_ms);
        let payload = rdb::dump_string(b"v");
        h.run_bytes(&[b"RESTORE", b"k", b"0", &payload, b"IDLETIME", b"50"]);
        assert_eq!(h.run(&["OBJECT", "IDLETIME", "k"]), int(50));
        h.now_ms += 3000;
        assert_eq!(h.run(&["OBJECT", "IDLETIME", "k"]), int(53));
        h.run(&["GET", "k"]);
        assert_eq!(h.run(&["OBJECT", "IDLETIME", "k"]), int(0));
    }

    #[test]
    fn rename_copy_move_keep_ttls_and_log_as_is() {
        let mut h = Harness::new(1_000_000);
        h.run(&["SET", "a", "1", "PX", "5000"]);
        take_effects(&mut h);
        assert_eq!(h.run(&["RENAME", "a", "a"]), simple("OK"));
        assert_eq!(take_effects(&mut h), Vec::<String>::new());
        assert_eq!(h.run(&["RENAME", "a", "b"]), simple("OK"));
        assert_eq!(take_effects(&mut h), ["RENAME a b"]);
        assert_eq!(h.run(&["PTTL", "b"]), int(5000));
        assert_eq!(h.run(&["COPY", "b", "c", "DB", "3"]), int(1));
        assert_eq!(h.run(&["MOVE", "b", "2"]), int(1));
        h.session.db = 3;
        assert_eq!(h.run(&["PTTL", "c"]), int(5000));
        h.session.db = 2;
        assert_eq!(h.run(&["PTTL", "b"]), int(5000));
        assert_eq!(take_effects(&mut h), ["COPY b c DB 3", "MOVE b 2"]);
    }

    #[test]
    fn randomkey_is_seeded_and_skips_expired_keys() {
        let mut h = Harness::new(1_000_000);
        assert_eq!(h.run(&["RANDOMKEY"]), Frame::Null);
        for i in 0..50 {
            h.run(&["SET", &format!("dead:{i}"), "v", "PX", "10"]);
        }
        h.run(&["SET", "live", "v"]);
        h.now_ms += 100;
        take_effects(&mut h);
        assert_eq!(h.run(&["RANDOMKEY"]), bulk("live"));
        // The expired keys it met were removed and logged.
        assert!(take_effects(&mut h).iter().all(|e| e.starts_with("DEL dead:")));
        let mut picks = HashSet::new();
        for i in 0..20 {
            h.run(&["SET", &format!("k{i}"), "v"]);
        }
        for _ in 0..200 {
            if let Frame::Bulk(k) = h.run(&["RANDOMKEY"]) {
                picks.insert(k);
            }
        }
        assert!(picks.len() > 15, "RANDOMKEY hit only {} keys", picks.len());
        // Same keyspace and seed: same answer.
        let seed = h.seed;
        let first = h.run(&["RANDOMKEY"]);
        h.seed = seed;
        assert_eq!(h.run(&["RANDOMKEY"]), first);
    }

    #[test]
    fn object_and_type_do_not_touch() {
        let mut h = Harness::new(1_000_000);
        h.run(&["SET", "k", "5"]);
        h.now_ms += 10_000;
        assert_eq!(h.run(&["TYPE", "k"]), simple("string"));
        assert_eq!(h.run(&["EXISTS", "k"]), int(1));
        assert_eq!(h.run(&["OBJECT", "ENCODING", "k"]), bulk("int"));
        assert_eq!(h.run(&["OBJECT", "REFCOUNT", "k"]), int(i32::MAX as i64));
        assert_eq!(h.run(&["TTL", "k"]), int(-1));
        assert_eq!(h.run(&["OBJECT", "IDLETIME", "k"]), int(10));
        assert_eq!(h.run(&["TOUCH", "k", "k", "x"]), int(2));
        assert_eq!(h.run(&["OBJECT", "IDLETIME", "k"]), int(0));
        assert!(matches!(h.run(&["OBJECT", "FREQ", "k"]), Frame::Error(_)));
        assert_eq!(h.run(&["OBJECT", "FREQ", "x"]), Frame::Null);
    }

    #[test]
    fn keys_matches_globs_and_hides_expired_keys() {
        let mut h = Harness::new(1_000_000);
        for k in ["a", "ab", "abc", "b", ""] {
            h.run(&["SET", k, "v"]);
        }
        h.run(&["SET", "ax", "v", "PX", "5"]);
        h.now_ms += 10;
        let sorted = |f: Frame| {
            let Frame::Array(v) = f else { panic!("{f:?}") };
            let mut v: Vec<Vec<u8>> =
                v.into_iter().map(|x| if let Frame::Bulk(b) = x { b } else { panic!() }).collect();
            v.sort();
            v
        };
        assert_eq!(sorted(h.run(&["KEYS", "*"])), [&b""[..], b"a", b"ab", b"abc", b"b"]);
        assert_eq!(sorted(h.run(&["KEYS", "a?"])), [b"ab"]);
        assert_eq!(sorted(h.run(&["KEYS", "[ab]"])), [b"a", b"b"]);
        assert_eq!(take_effects(&mut h).iter().filter(|e| e.starts_with("DEL")).count(), 0);
    }
}
