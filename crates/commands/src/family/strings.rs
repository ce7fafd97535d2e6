//! The string family: `GET`, `SET` and the rest of Redis's string group.

use crate::args::{self, is};
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::table::{bind, Binding, LockMode::Keys};
use engine::{Str, Value};

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[bind("get", get, Keys), bind("set", set, Keys)];

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

/// Expiry options shared by `SET` and `GETEX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No option.
    None,
    /// Absolute Unix milliseconds (from EX, PX, EXAT or PXAT).
    At(i64),
    /// `KEEPTTL`
    Keep,
    /// `PERSIST` (GETEX only)
    Persist,
}

/// Converts a relative or absolute expiry argument to absolute milliseconds, with Redis's
/// checks: the value must be positive and the result must not overflow.
pub(crate) fn expiry_ms(ctx: &Ctx, unit_ms: i64, absolute: bool, arg: &[u8], cmd: &str) -> Result<i64, CmdError> {
    let v = args::int(arg)?;
    if v <= 0 {
        return Err(CmdError::InvalidExpire(cmd.to_string()));
    }
    let ms = v.checked_mul(unit_ms).ok_or_else(|| CmdError::InvalidExpire(cmd.to_string()))?;
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(ctx.now_ms()).ok_or_else(|| CmdError::InvalidExpire(cmd.to_string()))
    }
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
        let word = ["EX", "PX", "EXAT", "PXAT"].into_iter().find(|w| is(a, w));
        if is(a, "NX") && !xx {
            nx = true;
        } else if is(a, "XX") && !nx {
            xx = true;
        } else if is(a, "GET") {
            get = true;
        } else if is(a, "KEEPTTL") && expiry_word.is_none() {
            keepttl = true;
        } else if let (Some(w), Some(next)) = (word, next) {
            if keepttl || expiry_word.is_some_and(|e| e != w) {
                return Err(CmdError::Syntax);
            }
            expiry_word = Some(w);
            let unit = if w == "EX" || w == "EXAT" { 1000 } else { 1 };
            expiry_arg = Some((unit, w.ends_with("AT"), next));
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
    let old: Option<Option<Vec<u8>>> = if get {
        Some(ctx.store.get_str_for_write(key)?.map(|s| s.to_vec()))
    } else {
        None
    };
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
    if let Expiry::At(when) = expiry {
        ctx.store.set_expire(key, when);
        if when <= ctx.now_ms() {
            // Already in the past: Redis stores then deletes, logging a DEL.
            ctx.store.delete(key);
            ctx.propagate_as(vec![b"DEL".to_vec(), key.to_vec()]);
        } else {
            ctx.propagate_as(vec![b"SET".to_vec(), key.to_vec(), val.to_vec(), b"PXAT".to_vec(), args::int_bytes(when)]);
        }
    } else {
        // NX/XX/GET have done their job; the effect is a plain SET (KEEPTTL kept).
        let mut eff = vec![b"SET".to_vec(), key.to_vec(), val.to_vec()];
        if keep {
            eff.push(b"KEEPTTL".to_vec());
        }
        ctx.propagate_as(eff);
    }
    match old {
        Some(Some(v)) => ctx.out.bulk(&v),
        Some(None) => ctx.out.null(),
        None => ctx.out.ok(),
    }
    Ok(())
}
