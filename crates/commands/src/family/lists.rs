//! The list family (`t_list.c`): pushes and pops at both ends, ranges, positions, moves.
//!
//! Argument checks run in Redis's order (some before the key is looked up, some after), since
//! which error a client sees for bad input depends on it. A list that becomes empty is
//! deleted. Encodings convert as Redis 7.2 converts them: before an insertion would overflow a
//! listpack, and after removals leave a quicklist small (see `engine::list`).

use crate::args::{self, is};
use crate::blocking::BlockKind;
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::table::{bind, Binding, LockMode::Keys};
use engine::list::{End, List};
use engine::listpack::{LpValue, Needle};
use protocol::ReplyWriter;

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("lpush", lpush, Keys),
    bind("rpush", rpush, Keys),
    bind("lpushx", lpushx, Keys),
    bind("rpushx", rpushx, Keys),
    bind("linsert", linsert, Keys),
    bind("llen", llen, Keys),
    bind("lindex", lindex, Keys),
    bind("lset", lset, Keys),
    bind("lpop", lpop, Keys),
    bind("rpop", rpop, Keys),
    bind("lrange", lrange, Keys),
    bind("ltrim", ltrim, Keys),
    bind("lrem", lrem, Keys),
    bind("lpos", lpos, Keys),
    bind("lmove", lmove, Keys),
    bind("rpoplpush", rpoplpush, Keys),
    bind("lmpop", lmpop, Keys),
    bind("blpop", blpop, Keys),
    bind("brpop", brpop, Keys),
    bind("blmove", blmove, Keys),
    bind("brpoplpush", brpoplpush, Keys),
    bind("blmpop", blmpop, Keys),
];

/// Writes one element as a bulk reply.
#[inline]
pub(crate) fn reply_elem(out: &mut ReplyWriter, v: LpValue<'_>) {
    match v {
        LpValue::Int(i) => out.bulk_int(i),
        LpValue::Str(s) => out.bulk(s),
    }
}

/// `LEFT` or `RIGHT` (`getListPositionFromObjectOrReply`).
fn end_arg(arg: &[u8]) -> Result<End, CmdError> {
    if is(arg, "LEFT") {
        Ok(End::Head)
    } else if is(arg, "RIGHT") {
        Ok(End::Tail)
    } else {
        Err(CmdError::Syntax)
    }
}

/// An integer in `min..=max`, with Redis's message for values outside it (or a caller's
/// message for both bad forms, as `getRangeLongFromObjectOrReply` does).
pub(crate) fn range_arg(arg: &[u8], min: i64, max: i64, msg: Option<&str>) -> Result<i64, CmdError> {
    let bad = || match msg {
        Some(m) => CmdError::err(m),
        None => CmdError::err(format!("value is out of range, value must between {min} and {max}")),
    };
    let v = match args::int(arg) {
        Ok(v) => v,
        Err(e) => return Err(msg.map(CmdError::err).unwrap_or(e)),
    };
    if v < min || v > max {
        return Err(bad());
    }
    Ok(v)
}

/// The keyspace event of a push at `end` (`lpush`/`rpush`).
fn push_event(end: End) -> &'static str {
    if end == End::Head {
        "lpush"
    } else {
        "rpush"
    }
}

/// The keyspace event of a pop at `end` (`lpop`/`rpop`).
fn pop_event(end: End) -> &'static str {
    if end == End::Head {
        "lpop"
    } else {
        "rpop"
    }
}

/// After elements left the list at `key` from `end` (Redis's `listElementsRemoved`): the
/// `lpop`/`rpop` event, then [`after_removal`] (`del` if that emptied it).
fn after_pop(ctx: &mut Ctx, key: &[u8], end: End) {
    ctx.store.notify(crate::notify::LIST, pop_event(end), key);
    after_removal(ctx, key);
}

/// Deletes `key` if its list is now empty, else lets a quicklist shrink back to a listpack.
fn after_removal(ctx: &mut Ctx, key: &[u8]) {
    let limits = ctx.store.limits();
    if let Ok(Some(l)) = ctx.store.get_list_for_write(key) {
        l.shrink_check(&limits);
    }
    ctx.store.delete_if_empty(key);
}

/// Pushes `elems` onto the list at `key` (created unless `only_existing`); the new length, or
/// 0 when the key is missing and `only_existing`.
fn push(ctx: &mut Ctx, key: &[u8], elems: &[&[u8]], end: End, only_existing: bool) -> Result<usize, CmdError> {
    let limits = ctx.store.limits();
    let bytes: usize = elems.iter().map(|e| e.len()).sum();
    if only_existing && ctx.store.get_list_for_write(key)?.is_none() {
        return Ok(0);
    }
    let list = ctx.store.list_or_create(key, List::new)?;
    list.grow_check(bytes, elems.len(), &limits);
    for e in elems {
        list.push(end, e, &limits);
    }
    let len = list.len();
    ctx.store.dirty += elems.len() as u64;
    // One event per command, however many elements (after `new` if the key was created).
    ctx.store.notify(crate::notify::LIST, push_event(end), key);
    Ok(len)
}

/// The push commands: `key element [element ...]`, replying the new length.
fn push_reply(ctx: &mut Ctx, argv: &[&[u8]], end: End, only_existing: bool) -> CmdResult {
    let n = push(ctx, argv[1], &argv[2..], end, only_existing)?;
    ctx.out.int(n as i64);
    Ok(())
}

/// `LPUSH key element [element ...]`
fn lpush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    push_reply(ctx, argv, End::Head, false)
}

/// `RPUSH key element [element ...]`
fn rpush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    push_reply(ctx, argv, End::Tail, false)
}

/// `LPUSHX key element [element ...]`
fn lpushx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    push_reply(ctx, argv, End::Head, true)
}

/// `RPUSHX key element [element ...]`
fn rpushx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    push_reply(ctx, argv, End::Tail, true)
}

/// `LINSERT key BEFORE|AFTER pivot element`: the new length, -1 without the pivot, 0 without
/// the key.
fn linsert(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let after = if is(argv[2], "AFTER") {
        true
    } else if is(argv[2], "BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (pivot, elem) = (argv[3], argv[4]);
    let limits = ctx.store.limits();
    let Some(list) = ctx.store.get_list_for_write(argv[1])? else {
        ctx.out.int(0);
        return Ok(());
    };
    // As in Redis, the list converts before the pivot is looked for, found or not.
    list.grow_check(elem.len(), 1, &limits);
    let pivot = Needle::new(pivot);
    let Some(pos) = list.walk(list.first_pos(), true).find(|(_, v)| pivot.matches(*v)).map(|(p, _)| p) else {
        ctx.out.int(-1);
        return Ok(());
    };
    list.insert(pos, after, elem, &limits);
    let len = list.len();
    ctx.store.dirty += 1;
    ctx.store.notify(crate::notify::LIST, "linsert", argv[1]);
    ctx.out.int(len as i64);
    Ok(())
}

/// `LLEN key`
fn llen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n = ctx.store.get_list(argv[1])?.map_or(0, |l| l.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// `LINDEX key index`
fn lindex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(list) = ctx.store.get_list(argv[1])? else {
        ctx.out.null();
        return Ok(());
    };
    let index = args::int(argv[2])?;
    match list.locate(index) {
        Some(pos) => reply_elem(ctx.out, list.at(pos)),
        None => ctx.out.null(),
    }
    Ok(())
}

/// `LSET key index element`
fn lset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let limits = ctx.store.limits();
    let Some(list) = ctx.store.get_list_for_write(argv[1])? else {
        return Err(CmdError::NoSuchKey);
    };
    let index = args::int(argv[2])?;
    if list.locate(index).is_none() {
        return Err(CmdError::OutOfRange);
    }
    list.grow_check(argv[3].len(), 1, &limits);
    list.set(index, argv[3], &limits);
    list.shrink_check(&limits);
    ctx.store.dirty += 1;
    ctx.store.notify(crate::notify::LIST, "lset", argv[1]);
    ctx.out.ok();
    Ok(())
}

/// `LPOP key [count]` / `RPOP key [count]`.
fn pop(ctx: &mut Ctx, argv: &[&[u8]], end: End) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::WrongArity(String::from_utf8_lossy(argv[0]).to_lowercase()));
    }
    let count = match argv.get(2) {
        Some(a) => Some(range_arg(a, 0, i64::MAX, Some("value is out of range, must be positive"))? as usize),
        None => None,
    };
    let key = argv[1];
    let Some(list) = ctx.store.get_list_for_write(key)? else {
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    match count {
        None => {
            let v = list.pop(end).expect("stored lists are not empty");
            ctx.out.bulk(&v);
            ctx.store.dirty += 1;
        }
        // Nothing popped: no event, and the list is left as it was.
        Some(0) => {
            ctx.out.array(0);
            return Ok(());
        }
        Some(n) => {
            let n = n.min(list.len());
            ctx.out.array(n);
            for _ in 0..n {
                let v = list.pop(end).expect("counted");
                ctx.out.bulk(&v);
            }
            ctx.store.dirty += 1;
        }
    }
    after_pop(ctx, key, end);
    Ok(())
}

/// `LPOP key [count]`
fn lpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    pop(ctx, argv, End::Head)
}

/// `RPOP key [count]`
fn rpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    pop(ctx, argv, End::Tail)
}

/// Redis's list range: negative indexes from the end, clamped; `None` when empty.
fn list_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut end = if end < 0 { end + len } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

/// Writes `count` elements from index `start` on as an array.
fn reply_range(out: &mut ReplyWriter, list: &List, start: usize, count: usize) {
    out.array(count);
    let from = list.locate(start as i64);
    for (_, v) in list.walk(from, true).take(count) {
        reply_elem(out, v);
    }
}

/// `LRANGE key start stop`
fn lrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let start = args::int(argv[2])?;
    let end = args::int(argv[3])?;
    let Some(list) = ctx.store.get_list(argv[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    match list_range(start, end, list.len()) {
        Some((s, e)) => reply_range(ctx.out, list, s, e - s + 1),
        None => ctx.out.array(0),
    }
    Ok(())
}

/// `LTRIM key start stop`
fn ltrim(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let start = args::int(argv[2])?;
    let end = args::int(argv[3])?;
    let key = argv[1];
    let Some(list) = ctx.store.get_list_for_write(key)? else {
        ctx.out.ok();
        return Ok(());
    };
    let len = list.len();
    let (left, right) = match list_range(start, end, len) {
        Some((s, e)) => (s, len - e - 1),
        None => (len, 0),
    };
    list.delete_range(0, left);
    let now = list.len();
    list.delete_range(now - right, right);
    ctx.store.dirty += (left + right) as u64;
    // `ltrim` whenever the key exists, even if nothing was trimmed; then `del` if emptied.
    ctx.store.notify(crate::notify::LIST, "ltrim", key);
    after_removal(ctx, key);
    ctx.out.ok();
    Ok(())
}

/// `LREM key count element`
fn lrem(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let count = args::int(argv[2])?;
    let (key, elem) = (argv[1], Needle::new(argv[3]));
    let Some(list) = ctx.store.get_list_for_write(key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let limit = count.unsigned_abs();
    let mut removed = 0u64;
    if count >= 0 {
        let mut pos = list.first_pos();
        while let Some(p) = pos {
            if limit != 0 && removed == limit {
                break;
            }
            if elem.matches(list.at(p)) {
                pos = list.delete_at(p);
                removed += 1;
            } else {
                pos = list.next_pos(p);
            }
        }
    } else {
        let mut pos = list.last_pos();
        while let Some(p) = pos {
            if removed == limit {
                break;
            }
            // Deleting moves what follows, never what precedes (a node emptied and dropped
            // holds nothing before `p`): the previous position stays valid.
            let prev = list.prev_pos(p);
            if elem.matches(list.at(p)) {
                list.delete_at(p);
                removed += 1;
            }
            pos = prev;
        }
    }
    ctx.store.dirty += removed;
    if removed > 0 {
        ctx.store.notify(crate::notify::LIST, "lrem", key);
        after_removal(ctx, key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
fn lpos(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut rank = 1i64;
    let mut count: Option<usize> = None;
    let mut maxlen = 0usize;
    let mut i = 3;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(argv[i], "RANK") && more {
            rank = range_arg(argv[i + 1], -i64::MAX, i64::MAX, None)?;
            if rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(argv[i], "COUNT") && more {
            count = Some(range_arg(argv[i + 1], 0, i64::MAX, Some("COUNT can't be negative"))? as usize);
        } else if is(argv[i], "MAXLEN") && more {
            maxlen = range_arg(argv[i + 1], 0, i64::MAX, Some("MAXLEN can't be negative"))? as usize;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let elem = Needle::new(argv[2]);
    let Some(list) = ctx.store.get_list(argv[1])? else {
        match count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let forward = rank > 0;
    let skip = rank.unsigned_abs() - 1;
    let len = list.len();
    let start = if forward { list.first_pos() } else { list.last_pos() };
    let limit = if maxlen == 0 { len } else { maxlen.min(len) };
    let mut found: Vec<usize> = Vec::new();
    let mut matches = 0u64;
    for (i, (_, v)) in list.walk(start, forward).take(limit).enumerate() {
        if !elem.matches(v) {
            continue;
        }
        matches += 1;
        if matches <= skip {
            continue;
        }
        found.push(if forward { i } else { len - 1 - i });
        let want = match count {
            None => 1,
            Some(0) => usize::MAX,
            Some(c) => c,
        };
        if found.len() >= want {
            break;
        }
    }
    match count {
        Some(_) => {
            ctx.out.array(found.len());
            for f in found {
                ctx.out.int(f as i64);
            }
        }
        None => match found.first() {
            Some(&f) => ctx.out.int(f as i64),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

/// Moves one element from the `from` end of `src` to the `to` end of `dst`; the element, or
/// `None` when `src` is missing.
fn move_one(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> Result<Option<Vec<u8>>, CmdError> {
    if ctx.store.get_list_for_write(src)?.is_none() {
        return Ok(None);
    }
    // The destination's type is checked before anything moves.
    if src != dst {
        ctx.store.get_list_for_write(dst)?;
    }
    let v = ctx.store.get_list_for_write(src)?.and_then(|l| l.pop(from)).expect("stored lists are not empty");
    // Events as Redis's `lmoveGenericCommand`: [`new`], `lpush`/`rpush` on the destination
    // (from `push`), then `lpop`/`rpop` on the source, then `del` if that emptied it (never
    // when rotating one list).
    push(ctx, dst, &[&v], to, false)?;
    ctx.store.notify(crate::notify::LIST, pop_event(from), src);
    if src != dst {
        after_removal(ctx, src);
    }
    Ok(Some(v))
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
fn lmove(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let from = end_arg(argv[3])?;
    let to = end_arg(argv[4])?;
    match move_one(ctx, argv[1], argv[2], from, to)? {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// A blocking command's timeout argument: the absolute deadline (0 = never).
pub(crate) fn timeout_arg(ctx: &Ctx, arg: &[u8]) -> Result<i64, CmdError> {
    engine::num::timeout_deadline_ms(arg, ctx.now_ms()).map_err(CmdError::Timeout)
}

/// Pops one element for `BLPOP`/`BRPOP` (run or served), replying `[key, element]`; logged as
/// `LPOP`/`RPOP`.
fn pop_one_reply(ctx: &mut Ctx, key: &[u8], end: End) -> CmdResult {
    let list = ctx.store.get_list_for_write(key)?.expect("the caller found the list");
    let v = list.pop(end).expect("stored lists are not empty");
    ctx.out.array(2);
    ctx.out.bulk(key);
    ctx.out.bulk(&v);
    ctx.store.dirty += 1;
    after_pop(ctx, key, end);
    let cmd: &[u8] = if end == End::Head { b"LPOP" } else { b"RPOP" };
    ctx.propagate_as(|| vec![cmd.to_vec(), key.to_vec()]);
    Ok(())
}

/// `BLPOP`/`BRPOP key [key ...] timeout`: the first non-empty list answers; else block.
fn blocking_pop(ctx: &mut Ctx, argv: &[&[u8]], end: End) -> CmdResult {
    let deadline = timeout_arg(ctx, argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    for &key in keys {
        if ctx.store.get_list_for_write(key)?.is_some() {
            return pop_one_reply(ctx, key, end);
        }
    }
    ctx.block(keys, BlockKind::Pop(end), deadline);
    Ok(())
}

/// `BLPOP key [key ...] timeout`
fn blpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, argv, End::Head)
}

/// `BRPOP key [key ...] timeout`
fn brpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, argv, End::Tail)
}

/// `BLMOVE`/`BRPOPLPUSH` once the source list has an element: `LMOVE`, logged as itself.
fn move_reply(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End, rpoplpush: bool) -> CmdResult {
    match move_one(ctx, src, dst, from, to)? {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    ctx.propagate_as(|| {
        if rpoplpush {
            vec![b"RPOPLPUSH".to_vec(), src.to_vec(), dst.to_vec()]
        } else {
            let name = |e: End| if e == End::Head { b"LEFT".to_vec() } else { b"RIGHT".to_vec() };
            vec![b"LMOVE".to_vec(), src.to_vec(), dst.to_vec(), name(from), name(to)]
        }
    });
    Ok(())
}

/// `BLMOVE`/`BRPOPLPUSH` after their own arguments are parsed.
fn blocking_move(ctx: &mut Ctx, argv: &[&[u8]], from: End, to: End, timeout: &[u8], rpoplpush: bool) -> CmdResult {
    let deadline = timeout_arg(ctx, timeout)?;
    let (src, dst) = (argv[1], argv[2]);
    if ctx.store.get_list_for_write(src)?.is_some() {
        return move_reply(ctx, src, dst, from, to, rpoplpush);
    }
    ctx.block(&[src], BlockKind::Move { dst: dst.to_vec(), from, to, rpoplpush }, deadline);
    Ok(())
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
fn blmove(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let from = end_arg(argv[3])?;
    let to = end_arg(argv[4])?;
    blocking_move(ctx, argv, from, to, argv[5], false)
}

/// `BRPOPLPUSH source destination timeout`
fn brpoplpush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    blocking_move(ctx, argv, End::Tail, End::Head, argv[3], true)
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn blmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let a = parse_mpop(argv, 2, end_arg)?;
    let deadline = timeout_arg(ctx, argv[1])?;
    if !mpop_reply(ctx, a.keys, a.side, a.count)? {
        ctx.block(a.keys, BlockKind::Mpop { end: a.side, count: a.count }, deadline);
    }
    Ok(())
}

/// Serves a client blocked on `key`, which now holds a list: its pop runs in `ctx` (its
/// database and protocol) and replies there, as the command would have had the list been
/// there when it ran.
pub(crate) fn serve_blocked(ctx: &mut Ctx, key: &[u8], kind: &BlockKind) -> CmdResult {
    match kind {
        BlockKind::Pop(end) => pop_one_reply(ctx, key, *end),
        BlockKind::Mpop { end, count } => mpop_reply(ctx, &[key], *end, *count).map(|_| ()),
        BlockKind::Move { dst, from, to, rpoplpush } => move_reply(ctx, key, dst, *from, *to, *rpoplpush),
        BlockKind::ZPop { .. } => unreachable!("sorted-set waiters are served by the zsets family"),
    }
}

/// `RPOPLPUSH source destination`
fn rpoplpush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    match move_one(ctx, argv[1], argv[2], End::Tail, End::Head)? {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// The parsed arguments of `LMPOP`/`BLMPOP` (side: `End`) and `ZMPOP`/`BZMPOP` (side: max)
/// after `numkeys`.
pub(crate) struct MpopArgs<'a, S> {
    /// The keys, in order.
    pub keys: &'a [&'a [u8]],
    /// Which end (`LEFT|RIGHT`, `MIN|MAX`).
    pub side: S,
    /// How many at most.
    pub count: usize,
}

/// Parses `numkeys key [key ...] <side> [COUNT count]` starting at `argv[at]`, the side word
/// read by `side`.
pub(crate) fn parse_mpop<'a, S>(
    argv: &'a [&'a [u8]],
    at: usize,
    side: fn(&[u8]) -> Result<S, CmdError>,
) -> Result<MpopArgs<'a, S>, CmdError> {
    let numkeys = range_arg(argv[at], 1, i64::MAX, Some("numkeys should be greater than 0"))? as usize;
    let where_at = at.saturating_add(numkeys).saturating_add(1);
    if where_at >= argv.len() {
        return Err(CmdError::Syntax);
    }
    let side = side(argv[where_at])?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < argv.len() {
        if count.is_none() && is(argv[i], "COUNT") && i + 1 < argv.len() {
            count = Some(range_arg(argv[i + 1], 1, i64::MAX, Some("count should be greater than 0"))? as usize);
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(MpopArgs { keys: &argv[at + 1..where_at], side, count: count.unwrap_or(1) })
}

/// Pops up to `count` elements from the first non-empty list of `keys`, replying
/// `[key, [elements]]`; false (nothing written) if every list is missing.
pub(crate) fn mpop_reply(ctx: &mut Ctx, keys: &[&[u8]], end: End, count: usize) -> Result<bool, CmdError> {
    for &key in keys {
        let Some(list) = ctx.store.get_list_for_write(key)? else { continue };
        let n = count.min(list.len());
        ctx.out.array(2);
        ctx.out.bulk(key);
        ctx.out.array(n);
        for _ in 0..n {
            let v = list.pop(end).expect("counted");
            ctx.out.bulk(&v);
        }
        ctx.store.dirty += 1;
        after_pop(ctx, key, end);
        // Logged as the pop it was, as Redis propagates it.
        let cmd: &[u8] = if end == End::Head { b"LPOP" } else { b"RPOP" };
        ctx.propagate_as(|| vec![cmd.to_vec(), key.to_vec(), args::int_bytes(n as i64)]);
        return Ok(true);
    }
    Ok(false)
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn lmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let a = parse_mpop(argv, 1, end_arg)?;
    if !mpop_reply(ctx, a.keys, a.side, a.count)? {
        ctx.out.null_array();
    }
    Ok(())
}
