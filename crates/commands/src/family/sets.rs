//! The set family (`t_set.c`): membership, random members, and set algebra.
//!
//! `SPOP` picks with [`engine::Set::pick_stable`], so that the same command applied on every
//! node of a cluster removes the same members; it is logged as the `SREM` (or `DEL`) of what
//! it removed, as Redis propagates it. Reads that pick at random (`SRANDMEMBER`) take the
//! cheapest pick.

use crate::args::is;
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::family::hashes::{reply_empty_scan, reply_too_big, scan_loop, scan_opts};
use crate::family::lists::{range_arg, reply_elem};
use crate::table::{bind, Binding, LockMode::Keys};
use engine::glob::glob_match;
use engine::{Limits, Set, Value};
use protocol::ReplyWriter;

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("sadd", sadd, Keys),
    bind("srem", srem, Keys),
    bind("smove", smove, Keys),
    bind("sismember", sismember, Keys),
    bind("smismember", smismember, Keys),
    bind("scard", scard, Keys),
    bind("smembers", smembers, Keys),
    bind("spop", spop, Keys),
    bind("srandmember", srandmember, Keys),
    bind("sinter", sinter, Keys),
    bind("sintercard", sintercard, Keys),
    bind("sinterstore", sinterstore, Keys),
    bind("sunion", sunion, Keys),
    bind("sunionstore", sunionstore, Keys),
    bind("sdiff", sdiff, Keys),
    bind("sdiffstore", sdiffstore, Keys),
    bind("sscan", sscan, Keys),
];

/// `SADD key member [member ...]`
fn sadd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let limits = ctx.store.limits();
    let (key, members) = (argv[1], &argv[2..]);
    let set = ctx.store.set_or_create(key, || Set::new_for(members[0], members.len(), &limits))?;
    set.maybe_convert(members.len(), &limits);
    let added = members.iter().filter(|m| set.add(m, &limits)).count();
    ctx.store.dirty += added as u64;
    if added > 0 {
        ctx.store.notify(crate::notify::SET, "sadd", key);
    }
    ctx.out.int(added as i64);
    Ok(())
}

/// `SREM key member [member ...]`
fn srem(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let Some(set) = ctx.store.get_set_for_write(key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut removed = 0;
    for m in &argv[2..] {
        if set.remove(m) {
            removed += 1;
            if set.is_empty() {
                break;
            }
        }
    }
    ctx.store.dirty += removed;
    if removed > 0 {
        ctx.store.notify(crate::notify::SET, "srem", key);
    }
    ctx.store.delete_if_empty(key);
    ctx.out.int(removed as i64);
    Ok(())
}

/// `SMOVE source destination member`
fn smove(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (src, dst, member) = (argv[1], argv[2], argv[3]);
    let limits = ctx.store.limits();
    // Both types are checked before anything moves; a missing source answers 0 first.
    let src_exists = ctx.store.lookup_write(src).is_some();
    if !src_exists {
        ctx.out.int(0);
        return Ok(());
    }
    ctx.store.get_set_for_write(src)?;
    let dst_exists = ctx.store.get_set_for_write(dst)?.is_some();
    if src == dst {
        let is_member = ctx.store.get_set(src)?.is_some_and(|s| s.contains(member));
        ctx.out.int(i64::from(is_member));
        return Ok(());
    }
    if !ctx.store.get_set_for_write(src)?.expect("checked").remove(member) {
        ctx.out.int(0);
        return Ok(());
    }
    ctx.store.dirty += 1;
    // Events as Redis's `smoveCommand`: `srem`, [`del`] on the source, [`new`] and `sadd`
    // (only if the destination did not have the member) on the destination.
    ctx.store.notify(crate::notify::SET, "srem", src);
    ctx.store.delete_if_empty(src);
    if !dst_exists {
        ctx.store.set(dst, Value::Set(Set::new_for(member, 1, &limits)), false);
    }
    if ctx.store.get_set_for_write(dst)?.expect("exists").add(member, &limits) {
        ctx.store.dirty += 1;
        ctx.store.notify(crate::notify::SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

/// `SISMEMBER key member`
fn sismember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let found = ctx.store.get_set(argv[1])?.is_some_and(|s| s.contains(argv[2]));
    ctx.out.int(i64::from(found));
    Ok(())
}

/// `SMISMEMBER key member [member ...]`
fn smismember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let set = ctx.store.get_set(argv[1])?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        let found = set.as_ref().is_some_and(|s| s.contains(m));
        ctx.out.int(i64::from(found));
    }
    Ok(())
}

/// `SCARD key`
fn scard(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n = ctx.store.get_set(argv[1])?.map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// Writes a set's members as a set reply.
fn reply_members(out: &mut ReplyWriter, set: &Set) {
    out.set(set.len());
    set.for_each(|m| reply_elem(out, m));
}

/// `SMEMBERS key`
fn smembers(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    match ctx.store.get_set(argv[1])? {
        Some(set) => reply_members(ctx.out, set),
        None => ctx.out.set(0),
    }
    Ok(())
}

/// `SPOP key [count]`
fn spop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match argv.get(2) {
        Some(a) => Some(range_arg(a, 0, i64::MAX, Some("value is out of range, must be positive"))? as usize),
        None => None,
    };
    let key = argv[1];
    let Some(set) = ctx.store.get_set_for_write(key)? else {
        match count {
            Some(_) => ctx.out.set(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let rng = &mut *ctx.rng;
    let Some(count) = count else {
        let m = set.pick_stable(rng.next_u64()).expect("stored sets are not empty");
        set.remove(&m);
        ctx.out.bulk(&m);
        ctx.store.dirty += 1;
        ctx.store.notify(crate::notify::SET, "spop", key);
        ctx.store.delete_if_empty(key);
        ctx.propagate_as(|| vec![b"SREM".to_vec(), key.to_vec(), m]);
        return Ok(());
    };
    if count == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    let all = count >= set.len();
    let popped: Vec<Vec<u8>> = if all {
        set.members()
    } else {
        (0..count)
            .map(|_| {
                let m = set.pick_stable(rng.next_u64()).expect("more members than picks");
                set.remove(&m);
                m
            })
            .collect()
    };
    ctx.out.set(popped.len());
    for m in &popped {
        ctx.out.bulk(m);
    }
    ctx.store.dirty += popped.len() as u64;
    // One `spop` however many members, then `del` if they were all of them.
    ctx.store.notify(crate::notify::SET, "spop", key);
    if all {
        if ctx.store.delete(key) {
            ctx.store.notify(crate::notify::GENERIC, "del", key);
        }
        ctx.propagate_as(|| vec![b"DEL".to_vec(), key.to_vec()]);
    } else {
        ctx.propagate_as(|| [vec![b"SREM".to_vec(), key.to_vec()], popped.clone()].concat());
    }
    Ok(())
}

/// `SRANDMEMBER key [count]`
fn srandmember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match argv.get(2) {
        Some(a) => Some(range_arg(a, -i64::MAX, i64::MAX, None)?),
        None => None,
    };
    let Some(set) = ctx.store.get_set(argv[1])? else {
        match count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let rng = &mut *ctx.rng;
    let Some(l) = count else {
        let m = set.pick_fast(rng).expect("stored sets are not empty");
        ctx.out.bulk(&m);
        return Ok(());
    };
    if l == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    let count = l.unsigned_abs() as usize;
    let picks: Vec<Vec<u8>> = if l < 0 || count == 1 {
        // Repetitions allowed: written as they are made.
        let start = ctx.out.buf.len();
        ctx.out.array(count);
        for n in 0..count {
            let m = set.pick_fast(rng).expect("not empty");
            ctx.out.bulk(&m);
            if n % 1024 == 0 && reply_too_big(ctx.out, ctx.session, start) {
                return Ok(());
            }
        }
        return Ok(());
    } else if count >= set.len() {
        set.members()
    } else {
        let mut all = set.members();
        for i in 0..count {
            let j = i + rng.below((all.len() - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(count);
        all
    };
    ctx.out.array(picks.len());
    for m in &picks {
        ctx.out.bulk(m);
    }
    Ok(())
}

/// The sets named by `keys` (None for missing keys), borrowed side by side. Each key is
/// first looked up on its own, which removes it if expired, counts the hit or miss and checks
/// its type (every key, even after a missing one, as Redis does).
fn load_sets<'c>(ctx: &'c mut Ctx, keys: &[&[u8]]) -> Result<Vec<Option<&'c Set>>, CmdError> {
    for k in keys {
        ctx.store.get_set(k)?;
    }
    let store = &ctx.store;
    Ok(keys
        .iter()
        .map(|k| match store.peek(k) {
            Some(Value::Set(s)) => Some(s),
            _ => None,
        })
        .collect())
}

/// The intersection of `sets` (a missing set makes it empty) in the smallest set's order,
/// stopping at `limit` members (0: no limit).
fn intersect(sets: &[Option<&Set>], limit: usize, limits: &Limits) -> Set {
    let mut out = Set::default();
    if sets.iter().any(Option::is_none) {
        return out;
    }
    let mut sets: Vec<&Set> = sets.iter().flatten().copied().collect();
    sets.sort_by_key(|s| s.len());
    sets[0].for_each(|m| {
        if limit != 0 && out.len() >= limit {
            return;
        }
        m.with_bytes(|b| {
            if sets[1..].iter().all(|s| s.contains(b)) {
                out.add(b, limits);
            }
        });
    });
    out
}

/// The union (`diff` false) or difference (the first set less the others) of `sets`.
fn union_or_diff(sets: &[Option<&Set>], diff: bool, limits: &Limits) -> Set {
    let mut out = Set::default();
    if diff {
        let Some(Some(first)) = sets.first() else { return out };
        first.for_each(|m| {
            m.with_bytes(|b| {
                if !sets[1..].iter().flatten().any(|s| s.contains(b)) {
                    out.add(b, limits);
                }
            })
        });
    } else {
        for s in sets.iter().flatten() {
            s.for_each(|m| {
                m.with_bytes(|b| out.add(b, limits));
            });
        }
    }
    out
}

/// Replies with `result` as a set reply, or stores it at `dst` (replacing whatever was there;
/// an empty result deletes it) and replies with its size. `event` is the store's keyspace
/// event (`sinterstore`, ...); an empty result gives `del` instead, if `dst` existed.
fn reply_or_store(ctx: &mut Ctx, result: Set, dst: Option<&[u8]>, event: &'static str) {
    let Some(dst) = dst else {
        reply_members(ctx.out, &result);
        return;
    };
    let n = result.len();
    if n == 0 {
        if ctx.store.delete(dst) {
            ctx.store.notify(crate::notify::GENERIC, "del", dst);
        }
    } else {
        // Overwrites in place: `new` (from the store) only if `dst` did not exist.
        ctx.store.set(dst, Value::Set(result), false);
        ctx.store.notify(crate::notify::SET, event, dst);
    }
    ctx.out.int(n as i64);
}

/// Which operation a set-algebra command runs.
#[derive(Clone, Copy)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// `SINTER`/`SUNION`/`SDIFF` over `keys`, replied or stored at `dst`.
fn algebra(ctx: &mut Ctx, op: Op, keys: &[&[u8]], dst: Option<&[u8]>) -> CmdResult {
    let limits = ctx.store.limits();
    let result = {
        let sets = load_sets(ctx, keys)?;
        match op {
            Op::Inter => intersect(&sets, 0, &limits),
            Op::Union => union_or_diff(&sets, false, &limits),
            Op::Diff => union_or_diff(&sets, true, &limits),
        }
    };
    let event = match op {
        Op::Inter => "sinterstore",
        Op::Union => "sunionstore",
        Op::Diff => "sdiffstore",
    };
    reply_or_store(ctx, result, dst, event);
    Ok(())
}

/// `SINTER key [key ...]`
fn sinter(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, Op::Inter, &argv[1..], None)
}

/// `SINTERSTORE destination key [key ...]`
fn sinterstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, Op::Inter, &argv[2..], Some(argv[1]))
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
fn sintercard(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let numkeys = range_arg(argv[1], 1, i64::MAX, Some("numkeys should be greater than 0"))? as usize;
    if numkeys > argv.len() - 2 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < argv.len() {
        if is(argv[i], "LIMIT") && i + 1 < argv.len() {
            limit = range_arg(argv[i + 1], 0, i64::MAX, Some("LIMIT can't be negative"))? as usize;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let limits = ctx.store.limits();
    let n = intersect(&load_sets(ctx, &argv[2..2 + numkeys])?, limit, &limits).len();
    ctx.out.int(n as i64);
    Ok(())
}

/// `SUNION key [key ...]`
fn sunion(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, Op::Union, &argv[1..], None)
}

/// `SUNIONSTORE destination key [key ...]`
fn sunionstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, Op::Union, &argv[2..], Some(argv[1]))
}

/// `SDIFF key [key ...]`
fn sdiff(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, Op::Diff, &argv[1..], None)
}

/// `SDIFFSTORE destination key [key ...]`
fn sdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, Op::Diff, &argv[2..], Some(argv[1]))
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`
fn sscan(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let cursor = crate::family::keys::parse_cursor(argv[2]).ok_or(CmdError::InvalidCursor)?;
    // The key is looked up before the options are read, as in Redis.
    let Some(set) = ctx.store.get_set(argv[1])? else {
        reply_empty_scan(ctx.out);
        return Ok(());
    };
    let opts = scan_opts(argv)?;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = scan_loop(cursor, opts.count, |c| {
        let n = set.scan(c, |m| found.push(m.to_vec()));
        (n, found.len())
    });
    if let Some(p) = opts.pattern {
        found.retain(|m| glob_match(p, m, false));
    }
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(found.len());
    for m in &found {
        ctx.out.bulk(m);
    }
    Ok(())
}
