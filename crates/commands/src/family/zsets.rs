//! The sorted-set family (`t_zset.c`): scores, ranks, ranges by rank, score and member, pops,
//! set algebra over sorted sets and sets.
//!
//! Every range form is turned into a window of ranks first ([`Window`]): a score or
//! lexicographic bound becomes a rank through [`engine::ZSet::rank_range`], and `LIMIT`,
//! `REV` and negative indexes only move the window. The reply or stored result then walks
//! that window, so each form costs O(log n + m) on a large set.
//!
//! Pops are deterministic (the lowest or highest scores), so they are logged as they are;
//! the blocking pops are logged as the `ZPOPMIN`/`ZPOPMAX` they performed, as Redis
//! propagates them.

use crate::args::{self, is};
use crate::blocking::BlockKind;
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::family::hashes::{reply_empty_scan, reply_pair_scan, reply_too_big, scan_loop, scan_opts};
use crate::family::lists::{parse_mpop, range_arg, reply_elem, timeout_arg};
use crate::table::{bind, Binding, LockMode::Keys};
use engine::listpack::LpValue;
use engine::{num, Limits, Value, ZSet};
use protocol::ReplyWriter;
use std::collections::HashMap;

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("zadd", zadd, Keys),
    bind("zincrby", zincrby, Keys),
    bind("zcard", zcard, Keys),
    bind("zscore", zscore, Keys),
    bind("zmscore", zmscore, Keys),
    bind("zrank", zrank, Keys),
    bind("zrevrank", zrevrank, Keys),
    bind("zcount", zcount, Keys),
    bind("zlexcount", zlexcount, Keys),
    bind("zrem", zrem, Keys),
    bind("zremrangebyrank", zremrangebyrank, Keys),
    bind("zremrangebyscore", zremrangebyscore, Keys),
    bind("zremrangebylex", zremrangebylex, Keys),
    bind("zrange", zrange, Keys),
    bind("zrangestore", zrangestore, Keys),
    bind("zrevrange", zrevrange, Keys),
    bind("zrangebyscore", zrangebyscore, Keys),
    bind("zrevrangebyscore", zrevrangebyscore, Keys),
    bind("zrangebylex", zrangebylex, Keys),
    bind("zrevrangebylex", zrevrangebylex, Keys),
    bind("zpopmin", zpopmin, Keys),
    bind("zpopmax", zpopmax, Keys),
    bind("zmpop", zmpop, Keys),
    bind("bzpopmin", bzpopmin, Keys),
    bind("bzpopmax", bzpopmax, Keys),
    bind("bzmpop", bzmpop, Keys),
    bind("zunion", zunion, Keys),
    bind("zinter", zinter, Keys),
    bind("zdiff", zdiff, Keys),
    bind("zunionstore", zunionstore, Keys),
    bind("zinterstore", zinterstore, Keys),
    bind("zdiffstore", zdiffstore, Keys),
    bind("zintercard", zintercard, Keys),
    bind("zrandmember", zrandmember, Keys),
    bind("zscan", zscan, Keys),
];

// --- ZADD / ZINCRBY ---------------------------------------------------------------------------

/// The flags of `ZADD` (`ZADD_IN_*`).
#[derive(Clone, Copy, Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What adding one member did (`ZADD_OUT_*`).
enum Outcome {
    /// New member.
    Added(f64),
    /// Score changed.
    Updated(f64),
    /// Member there, score kept (or an increment that changed nothing).
    Same(f64),
    /// Skipped by NX/XX/GT/LT.
    Nop,
}

/// `zsetAdd`: adds or updates one member as the flags say. `Err` when an increment makes the
/// score NaN.
fn add_one(z: &mut ZSet, member: &[u8], score: f64, f: AddFlags, limits: &Limits) -> Result<Outcome, CmdError> {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok(Outcome::Nop);
            }
            let mut score = score;
            if f.incr {
                score += cur;
                if score.is_nan() {
                    return Err(CmdError::err("resulting score is not a number (NaN)"));
                }
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return Ok(Outcome::Nop);
            }
            if score != cur {
                z.insert(member, score, limits);
                Ok(Outcome::Updated(score))
            } else {
                Ok(Outcome::Same(score))
            }
        }
        None if !f.xx => {
            z.insert(member, score, limits);
            Ok(Outcome::Added(score))
        }
        None => Ok(Outcome::Nop),
    }
}

/// `ZADD` and `ZINCRBY` (`zaddGenericCommand`): `argv[first..]` are score/member pairs.
fn zadd_generic(ctx: &mut Ctx, key: &[u8], pairs: &[&[u8]], f: AddFlags) -> CmdResult {
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::err("XX and NX options at the same time are not compatible"));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::err("GT, LT, and/or NX options at the same time are not compatible"));
    }
    let elements = pairs.len() / 2;
    if f.incr && elements > 1 {
        return Err(CmdError::err("INCR option supports a single increment-element pair"));
    }
    let scores = pairs.chunks_exact(2).map(|p| args::float(p[0])).collect::<Result<Vec<f64>, _>>()?;
    let limits = ctx.store.limits();
    let exists = ctx.store.get_zset_for_write(key)?.is_some();
    let (mut added, mut updated, mut last) = (0u64, 0u64, None);
    if exists || !f.xx {
        let max_len = pairs.chunks_exact(2).map(|p| p[1].len()).max().unwrap_or(0);
        let z = ctx.store.zset_or_create(key, || ZSet::new_for(elements, max_len, &limits))?;
        if exists {
            z.maybe_convert(elements, &limits);
        }
        for (p, &score) in pairs.chunks_exact(2).zip(&scores) {
            match add_one(z, p[1], score, f, &limits)? {
                Outcome::Added(s) => {
                    added += 1;
                    last = Some(s);
                }
                Outcome::Updated(s) => {
                    updated += 1;
                    last = Some(s);
                }
                Outcome::Same(s) => last = Some(s),
                Outcome::Nop => {}
            }
        }
        ctx.store.dirty += added + updated;
        if added + updated > 0 {
            ctx.store.notify(crate::notify::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
        }
    }
    if f.incr {
        match last {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    } else {
        ctx.out.int((if f.ch { added + updated } else { added }) as i64);
    }
    Ok(())
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
fn zadd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        if is(a, "NX") {
            f.nx = true;
        } else if is(a, "XX") {
            f.xx = true;
        } else if is(a, "GT") {
            f.gt = true;
        } else if is(a, "LT") {
            f.lt = true;
        } else if is(a, "CH") {
            f.ch = true;
        } else if is(a, "INCR") {
            f.incr = true;
        } else {
            break;
        }
        i += 1;
    }
    zadd_generic(ctx, argv[1], &argv[i..], f)
}

/// `ZINCRBY key increment member`
fn zincrby(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, argv[1], &argv[2..], AddFlags { incr: true, ..AddFlags::default() })
}

// --- Single-member reads ----------------------------------------------------------------------

/// `ZCARD key`
fn zcard(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n = ctx.store.get_zset(argv[1])?.map_or(0, |z| z.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// `ZSCORE key member`
fn zscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    match ctx.store.get_zset(argv[1])?.and_then(|z| z.score(argv[2])) {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

/// `ZMSCORE key member [member ...]`
fn zmscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let z = ctx.store.get_zset(argv[1])?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.as_ref().and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// `ZRANK`/`ZREVRANK key member [WITHSCORE]`
fn rank_generic(ctx: &mut Ctx, argv: &[&[u8]], rev: bool) -> CmdResult {
    if argv.len() > 4 {
        return Err(CmdError::WrongArity(String::from_utf8_lossy(argv[0]).to_lowercase()));
    }
    let with_score = match argv.get(3) {
        Some(a) if is(a, "WITHSCORE") => true,
        Some(_) => return Err(CmdError::Syntax),
        None => false,
    };
    let found = match ctx.store.get_zset(argv[1])? {
        Some(z) => z.rank(argv[2]).map(|(r, s)| (if rev { z.len() - 1 - r } else { r }, s)),
        None => None,
    };
    match found {
        Some((rank, score)) => {
            if with_score {
                ctx.out.array(2);
            }
            ctx.out.int(rank as i64);
            if with_score {
                ctx.out.double(score);
            }
        }
        None if with_score => ctx.out.null_array(),
        None => ctx.out.null(),
    }
    Ok(())
}

/// `ZRANK key member [WITHSCORE]`
fn zrank(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, argv, false)
}

/// `ZREVRANK key member [WITHSCORE]`
fn zrevrank(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, argv, true)
}

// --- Ranges -----------------------------------------------------------------------------------

/// A score interval (`zrangespec`).
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    /// Parses `min max` as `zslParseRange` ("(" makes a bound exclusive).
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
        let bound = |b: &[u8]| -> Option<(f64, bool)> {
            match b.strip_prefix(b"(") {
                Some(rest) => num::parse_score_bound(rest).map(|v| (v, true)),
                None => num::parse_score_bound(b).map(|v| (v, false)),
            }
        };
        match (bound(min), bound(max)) {
            (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange { min, minex, max, maxex }),
            _ => Err(CmdError::err("min or max is not a float")),
        }
    }

    /// The ranks of the members inside the interval.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let r = *self;
        z.rank_range(
            move |_, s| if r.minex { s <= r.min } else { s < r.min },
            move |_, s| if r.maxex { s < r.max } else { s <= r.max },
        )
    }
}

/// One end of a lexicographic interval (`zslParseLexRangeItem`).
#[derive(Clone, Copy)]
enum LexItem<'a> {
    /// `-`: below every member.
    Least,
    /// `+`: above every member.
    Greatest,
    /// `[member`
    Incl(&'a [u8]),
    /// `(member`
    Excl(&'a [u8]),
}

impl<'a> LexItem<'a> {
    fn parse(b: &'a [u8]) -> Option<LexItem<'a>> {
        // Redis reads a C string: "+" or "-" must end there (a NUL byte ends it too).
        let alone = |rest: &[u8]| rest.first().is_none_or(|&c| c == 0);
        match b.first()? {
            b'+' if alone(&b[1..]) => Some(LexItem::Greatest),
            b'-' if alone(&b[1..]) => Some(LexItem::Least),
            b'[' => Some(LexItem::Incl(&b[1..])),
            b'(' => Some(LexItem::Excl(&b[1..])),
            _ => None,
        }
    }
}

/// A lexicographic interval (`zlexrangespec`).
#[derive(Clone, Copy)]
struct LexRange<'a> {
    min: LexItem<'a>,
    max: LexItem<'a>,
}

impl<'a> LexRange<'a> {
    fn parse(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, CmdError> {
        match (LexItem::parse(min), LexItem::parse(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(CmdError::err("min or max not valid string range item")),
        }
    }

    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let (min, max) = (self.min, self.max);
        z.rank_range(
            move |m, _| match min {
                LexItem::Least => false,
                LexItem::Greatest => true,
                LexItem::Incl(x) => m < x,
                LexItem::Excl(x) => m <= x,
            },
            move |m, _| match max {
                LexItem::Least => false,
                LexItem::Greatest => true,
                LexItem::Incl(x) => m <= x,
                LexItem::Excl(x) => m < x,
            },
        )
    }
}

/// Ranks `lo..=hi` of a set, walked upwards or (`rev`) downwards; empty when `count` is 0.
#[derive(Clone, Copy)]
struct Window {
    lo: usize,
    count: usize,
    rev: bool,
}

impl Window {
    const EMPTY: Window = Window { lo: 0, count: 0, rev: false };

    /// A rank range as `ZRANGE start stop` takes it (negative from the end), reversed for
    /// `REV`/`ZREVRANGE` (rank 0 is then the highest score).
    fn by_rank(start: i64, end: i64, len: usize, rev: bool) -> Window {
        let llen = len as i64;
        let mut start = if start < 0 { llen + start } else { start };
        let mut end = if end < 0 { llen + end } else { end };
        if start < 0 {
            start = 0;
        }
        if start > end || start >= llen {
            return Window::EMPTY;
        }
        if end >= llen {
            end = llen - 1;
        }
        let count = (end - start + 1) as usize;
        let lo = if rev { (llen - 1 - end) as usize } else { start as usize };
        Window { lo, count, rev }
    }

    /// The in-range ranks `first..end` after skipping `offset` and taking at most `limit`
    /// (negative: all) from the low end, or from the high end when `rev`. A negative offset
    /// selects nothing, as in Redis.
    fn by_bounds((first, end): (usize, usize), offset: i64, limit: i64, rev: bool) -> Window {
        let n = end - first;
        if offset < 0 || offset as u64 >= n as u64 {
            return Window::EMPTY;
        }
        let skip = offset as usize;
        let count = if limit < 0 { n - skip } else { (limit as u64).min((n - skip) as u64) as usize };
        let lo = if rev { end - skip - count } else { first + skip };
        Window { lo, count, rev }
    }

    /// Calls `f` with each member and score of the window, in reply order.
    fn walk(&self, z: &ZSet, mut f: impl FnMut(LpValue<'_>, f64)) {
        if self.count == 0 {
            return;
        }
        z.walk(self.lo, self.lo + self.count - 1, self.rev, |m, s| {
            f(m, s);
            true
        });
    }
}

/// Writes a window's members (and scores: flat pairs in RESP2, a pair per member in RESP3).
fn reply_window(out: &mut ReplyWriter, z: &ZSet, w: Window, with_scores: bool) {
    let pairs = with_scores && out.resp3();
    out.array(if with_scores && !pairs { w.count * 2 } else { w.count });
    w.walk(z, |m, s| {
        if pairs {
            out.array(2);
        }
        reply_elem(out, m);
        if with_scores {
            out.double(s);
        }
    });
}

/// Writes owned member/score pairs as a range reply.
fn reply_pairs(out: &mut ReplyWriter, items: &[(Vec<u8>, f64)], with_scores: bool) {
    let pairs = with_scores && out.resp3();
    out.array(if with_scores && !pairs { items.len() * 2 } else { items.len() });
    for (m, s) in items {
        if pairs {
            out.array(2);
        }
        out.bulk(m);
        if with_scores {
            out.double(*s);
        }
    }
}

/// How a range command reads its bounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeBy {
    /// Not fixed by the command: `ZRANGE`/`ZRANGESTORE` options choose.
    Auto,
    Rank,
    Score,
    Lex,
}

/// Direction fixed by the command, or chosen by `REV`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Auto,
    Forward,
    Reverse,
}

/// The parsed bounds of a range.
enum Bounds<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// `zrangeGenericCommand`: `argv[at]` is the source key, then min and max, then options;
/// replies, or stores the result at `dst`.
fn range_generic(ctx: &mut Ctx, argv: &[&[u8]], at: usize, dst: Option<&[u8]>, by: RangeBy, dir: Dir) -> CmdResult {
    let (key, mut min, mut max) = (argv[at], argv[at + 1], argv[at + 2]);
    let (mut by, mut dir) = (by, dir);
    let (mut with_scores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = at + 3;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = argv[j];
        if dst.is_none() && is(a, "WITHSCORES") {
            with_scores = true;
        } else if is(a, "LIMIT") && left >= 2 {
            offset = args::int(argv[j + 1])?;
            limit = args::int(argv[j + 2])?;
            j += 2;
        } else if dir == Dir::Auto && is(a, "REV") {
            dir = Dir::Reverse;
        } else if by == RangeBy::Auto && is(a, "BYLEX") {
            by = RangeBy::Lex;
        } else if by == RangeBy::Auto && is(a, "BYSCORE") {
            by = RangeBy::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = dir == Dir::Reverse;
    if by == RangeBy::Auto {
        by = RangeBy::Rank;
    }
    if limit != -1 && by == RangeBy::Rank {
        return Err(CmdError::err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if with_scores && by == RangeBy::Lex {
        return Err(CmdError::err("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    if rev && by != RangeBy::Rank {
        // The range is given as max, min.
        std::mem::swap(&mut min, &mut max);
    }
    let bounds = match by {
        RangeBy::Score => Bounds::Score(ScoreRange::parse(min, max)?),
        RangeBy::Lex => Bounds::Lex(LexRange::parse(min, max)?),
        _ => Bounds::Rank(args::int(min)?, args::int(max)?),
    };
    let window = |z: &ZSet| match &bounds {
        Bounds::Rank(s, e) => Window::by_rank(*s, *e, z.len(), rev),
        Bounds::Score(r) => Window::by_bounds(r.ranks(z), offset, limit, rev),
        Bounds::Lex(r) => Window::by_bounds(r.ranks(z), offset, limit, rev),
    };
    let Some(dst) = dst else {
        match ctx.store.get_zset(key)? {
            Some(z) => reply_window(ctx.out, z, window(z), with_scores),
            None => ctx.out.array(0),
        }
        return Ok(());
    };
    let limits = ctx.store.limits();
    let result = match ctx.store.get_zset(key)? {
        Some(z) => {
            let w = window(z);
            let mut items = Vec::with_capacity(w.count);
            w.walk(z, |m, s| items.push((m.to_vec(), s)));
            build(&items, &limits)
        }
        None => None,
    };
    store_result(ctx, dst, result, "zrangestore");
    Ok(())
}

/// A sorted set of `items` (distinct members) in the encoding Redis gives a new result.
fn build(items: &[(Vec<u8>, f64)], limits: &Limits) -> Option<ZSet> {
    if items.is_empty() {
        return None;
    }
    let max_len = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = ZSet::new_for(items.len(), max_len, limits);
    for (m, s) in items {
        z.insert(m, *s, limits);
    }
    Some(z)
}

/// Stores a result at `dst` (an empty one deletes it) and replies with its size. `event` is
/// the command's keyspace event, recorded for a stored result (`del` for a deleted `dst`).
fn store_result(ctx: &mut Ctx, dst: &[u8], result: Option<ZSet>, event: &'static str) {
    match result {
        Some(z) => {
            let n = z.len();
            ctx.store.set(dst, Value::ZSet(z), false);
            ctx.store.notify(crate::notify::ZSET, event, dst);
            ctx.out.int(n as i64);
        }
        None => {
            if ctx.store.delete(dst) {
                ctx.store.notify(crate::notify::GENERIC, "del", dst);
            }
            ctx.out.int(0);
        }
    }
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
fn zrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, 1, None, RangeBy::Auto, Dir::Auto)
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`
fn zrangestore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, 2, Some(argv[1]), RangeBy::Auto, Dir::Auto)
}

/// `ZREVRANGE key start stop [WITHSCORES]`
fn zrevrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, 1, None, RangeBy::Rank, Dir::Reverse)
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
fn zrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, 1, None, RangeBy::Score, Dir::Forward)
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
fn zrevrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, 1, None, RangeBy::Score, Dir::Reverse)
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`
fn zrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, 1, None, RangeBy::Lex, Dir::Forward)
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
fn zrevrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, 1, None, RangeBy::Lex, Dir::Reverse)
}

/// `ZCOUNT key min max`
fn zcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let range = ScoreRange::parse(argv[2], argv[3])?;
    let n = ctx.store.get_zset(argv[1])?.map_or(0, |z| {
        let (first, end) = range.ranks(z);
        end - first
    });
    ctx.out.int(n as i64);
    Ok(())
}

/// `ZLEXCOUNT key min max`
fn zlexcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let range = LexRange::parse(argv[2], argv[3])?;
    let n = ctx.store.get_zset(argv[1])?.map_or(0, |z| {
        let (first, end) = range.ranks(z);
        end - first
    });
    ctx.out.int(n as i64);
    Ok(())
}

// --- Removal ----------------------------------------------------------------------------------

/// `ZREM key member [member ...]`
fn zrem(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let Some(z) = ctx.store.get_zset_for_write(key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut removed = 0u64;
    for m in &argv[2..] {
        if z.remove(m).is_some() {
            removed += 1;
            if z.is_empty() {
                break;
            }
        }
    }
    ctx.store.dirty += removed;
    if removed > 0 {
        ctx.store.notify(crate::notify::ZSET, "zrem", key);
    }
    ctx.store.delete_if_empty(key);
    ctx.out.int(removed as i64);
    Ok(())
}

/// `ZREMRANGEBY{RANK,SCORE,LEX}` once the range is parsed: removes the window's members;
/// `event` is the command's keyspace event (recorded if something was removed).
fn remove_range(ctx: &mut Ctx, key: &[u8], event: &'static str, window: impl FnOnce(&ZSet) -> Window) -> CmdResult {
    let Some(z) = ctx.store.get_zset_for_write(key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let w = window(z);
    let n = if w.count == 0 { 0 } else { z.remove_range(w.lo, w.lo + w.count - 1) };
    ctx.store.dirty += n as u64;
    if n > 0 {
        ctx.store.notify(crate::notify::ZSET, event, key);
    }
    ctx.store.delete_if_empty(key);
    ctx.out.int(n as i64);
    Ok(())
}

/// `ZREMRANGEBYRANK key start stop`
fn zremrangebyrank(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (start, end) = (args::int(argv[2])?, args::int(argv[3])?);
    remove_range(ctx, argv[1], "zremrangebyrank", |z| Window::by_rank(start, end, z.len(), false))
}

/// `ZREMRANGEBYSCORE key min max`
fn zremrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let range = ScoreRange::parse(argv[2], argv[3])?;
    remove_range(ctx, argv[1], "zremrangebyscore", |z| Window::by_bounds(range.ranks(z), 0, -1, false))
}

/// `ZREMRANGEBYLEX key min max`
fn zremrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let range = LexRange::parse(argv[2], argv[3])?;
    remove_range(ctx, argv[1], "zremrangebylex", |z| Window::by_bounds(range.ranks(z), 0, -1, false))
}

// --- Pops -------------------------------------------------------------------------------------

/// How a pop shapes its reply (`genericZpopCommand`'s `use_nested_array` and
/// `reply_nil_when_empty`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PopReply {
    /// `ZPOPMIN`/`ZPOPMAX`: member, score, ... (pairs in RESP3 when a count was given).
    Plain { nested: bool },
    /// `BZPOPMIN`/`BZPOPMAX`: key, member, score.
    Keyed,
    /// `ZMPOP`/`BZMPOP`: key, then [member, score] pairs.
    Multi,
}

/// Pops up to `count` members of the lowest (`max` false) or highest scores from `key`,
/// which must hold a sorted set, writing the reply.
fn pop_from(ctx: &mut Ctx, key: &[u8], max: bool, count: usize, shape: PopReply) -> Result<usize, CmdError> {
    let z = ctx.store.get_zset_for_write(key)?.expect("the caller found the sorted set");
    let n = count.min(z.len());
    let out = &mut *ctx.out;
    match shape {
        PopReply::Plain { nested: true } => out.array(n),
        PopReply::Plain { nested: false } => out.array(n * 2),
        PopReply::Keyed => {
            out.array(n * 2 + 1);
            out.bulk(key);
        }
        PopReply::Multi => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
    }
    let nested = matches!(shape, PopReply::Plain { nested: true } | PopReply::Multi);
    let w = if max { Window { lo: z.len() - n, count: n, rev: true } } else { Window { lo: 0, count: n, rev: false } };
    w.walk(z, |m, s| {
        if nested {
            out.array(2);
        }
        reply_elem(out, m);
        out.double(s);
    });
    z.remove_range(w.lo, w.lo + n - 1);
    ctx.store.dirty += n as u64;
    if n > 0 {
        ctx.store.notify(crate::notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    }
    ctx.store.delete_if_empty(key);
    Ok(n)
}

/// The first key of `keys` holding a sorted set (a missing key is skipped; another type
/// fails with `WRONGTYPE`).
fn first_zset<'k>(ctx: &mut Ctx, keys: &[&'k [u8]]) -> Result<Option<&'k [u8]>, CmdError> {
    for &k in keys {
        if ctx.store.get_zset_for_write(k)?.is_some() {
            return Ok(Some(k));
        }
    }
    Ok(None)
}

/// `ZPOPMIN`/`ZPOPMAX key [count]`
fn zpop(ctx: &mut Ctx, argv: &[&[u8]], max: bool) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match argv.get(2) {
        // `getPositiveLongFromObjectOrReply`: one message for both bad forms.
        Some(a) => match args::int(a) {
            Ok(c) if c >= 0 => Some(c as usize),
            _ => return Err(CmdError::err("value is out of range, must be positive")),
        },
        None => None,
    };
    let Some(key) = first_zset(ctx, &argv[1..2])? else {
        ctx.out.array(0);
        return Ok(());
    };
    if count == Some(0) {
        ctx.out.array(0);
        return Ok(());
    }
    let nested = count.is_some() && ctx.out.resp3();
    pop_from(ctx, key, max, count.unwrap_or(1), PopReply::Plain { nested })?;
    Ok(())
}

/// `ZPOPMIN key [count]`
fn zpopmin(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    zpop(ctx, argv, false)
}

/// `ZPOPMAX key [count]`
fn zpopmax(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    zpop(ctx, argv, true)
}

/// `MIN` or `MAX`.
fn min_max_arg(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "MIN") {
        Ok(false)
    } else if is(arg, "MAX") {
        Ok(true)
    } else {
        Err(CmdError::Syntax)
    }
}

/// The pop a blocking command performed, logged as Redis propagates it.
fn log_pop(ctx: &mut Ctx, key: &[u8], max: bool, count: Option<usize>) {
    let cmd: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
    ctx.propagate_as(|| {
        let mut v = vec![cmd.to_vec(), key.to_vec()];
        if let Some(c) = count {
            v.push(args::int_bytes(c as i64));
        }
        v
    });
}

/// Pops for `ZMPOP`/`BZMPOP` from the first sorted set of `keys`; false (nothing written) if
/// there is none.
fn mpop_reply(ctx: &mut Ctx, keys: &[&[u8]], max: bool, count: usize) -> Result<bool, CmdError> {
    let Some(key) = first_zset(ctx, keys)? else { return Ok(false) };
    let n = pop_from(ctx, key, max, count, PopReply::Multi)?;
    log_pop(ctx, key, max, Some(n));
    Ok(true)
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`
fn zmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let a = parse_mpop(argv, 1, min_max_arg)?;
    if !mpop_reply(ctx, a.keys, a.side, a.count)? {
        ctx.out.null_array();
    }
    Ok(())
}

/// `BZPOPMIN`/`BZPOPMAX` once `key` holds a sorted set: `[key, member, score]`.
fn bzpop_reply(ctx: &mut Ctx, key: &[u8], max: bool) -> CmdResult {
    pop_from(ctx, key, max, 1, PopReply::Keyed)?;
    log_pop(ctx, key, max, None);
    Ok(())
}

/// `BZPOPMIN`/`BZPOPMAX key [key ...] timeout`
fn bzpop(ctx: &mut Ctx, argv: &[&[u8]], max: bool) -> CmdResult {
    let deadline = timeout_arg(ctx, argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    match first_zset(ctx, keys)? {
        Some(key) => bzpop_reply(ctx, key, max),
        None => {
            ctx.block(keys, BlockKind::ZPop { max, count: None }, deadline);
            Ok(())
        }
    }
}

/// `BZPOPMIN key [key ...] timeout`
fn bzpopmin(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bzpop(ctx, argv, false)
}

/// `BZPOPMAX key [key ...] timeout`
fn bzpopmax(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bzpop(ctx, argv, true)
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`
fn bzmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let a = parse_mpop(argv, 2, min_max_arg)?;
    let deadline = timeout_arg(ctx, argv[1])?;
    if !mpop_reply(ctx, a.keys, a.side, a.count)? {
        ctx.block(a.keys, BlockKind::ZPop { max: a.side, count: Some(a.count) }, deadline);
    }
    Ok(())
}

/// Serves a client blocked on `key`, which now holds a sorted set (see
/// `lists::serve_blocked`).
pub(crate) fn serve_blocked(ctx: &mut Ctx, key: &[u8], max: bool, count: Option<usize>) -> CmdResult {
    match count {
        None => bzpop_reply(ctx, key, max),
        Some(c) => mpop_reply(ctx, &[key], max, c).map(|_| ()),
    }
}

// --- Set algebra ------------------------------------------------------------------------------

/// How `ZUNION`/`ZINTER` combine the scores of a member found in several inputs.
#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// `zunionInterAggregate`: a sum of +inf and -inf counts as 0.
    fn apply(self, target: &mut f64, v: f64) {
        match self {
            Aggregate::Sum => {
                *target += v;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if v < *target {
                    *target = v;
                }
            }
            Aggregate::Max => {
                if v > *target {
                    *target = v;
                }
            }
        }
    }
}

/// One input: a sorted set, a set (every score 1), or a missing key; and its weight.
struct Source<'a> {
    value: Option<&'a Value>,
    weight: f64,
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self.value {
            Some(Value::ZSet(z)) => z.len(),
            Some(Value::Set(s)) => s.len(),
            _ => 0,
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self.value {
            Some(Value::ZSet(z)) => z.score(m),
            Some(Value::Set(s)) => s.contains(m).then_some(1.0),
            _ => None,
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self.value {
            Some(Value::ZSet(z)) => z.for_each(|m, s| m.with_bytes(|m| f(m, s))),
            Some(Value::Set(s)) => s.for_each(|m| m.with_bytes(|m| f(m, 1.0))),
            _ => {}
        }
    }

    /// A score scaled by the weight (NaN, from 0 times infinity, counts as 0).
    fn weighted(&self, s: f64) -> f64 {
        let v = self.weight * s;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// The options after the keys of a set-algebra command.
struct AlgebraOpts {
    weights: Option<Vec<f64>>,
    aggregate: Aggregate,
    with_scores: bool,
    limit: usize,
}

/// `zunionInterDiffGenericCommand`: parses `numkeys key [key ...] options` from
/// `argv[at]`, checks every key's type, computes the result; replies or stores it at `dst`,
/// or (`card_only`) replies with its size.
fn algebra(ctx: &mut Ctx, argv: &[&[u8]], at: usize, dst: Option<&[u8]>, op: Op, card_only: bool) -> CmdResult {
    let numkeys = args::int(argv[at])?;
    if numkeys < 1 {
        let name = String::from_utf8_lossy(argv[0]).to_lowercase();
        return Err(CmdError::err(format!("at least 1 input key is needed for '{name}' command")));
    }
    if numkeys as u64 > (argv.len() - at - 1) as u64 {
        return Err(CmdError::Syntax);
    }
    let n = numkeys as usize;
    let keys = &argv[at + 1..at + 1 + n];
    // Types first (each key looked up on its own: expiry, stats, `keymiss`), then the options.
    // Redis 7 reads the sources of the STORE forms as reads too.
    for &k in keys {
        let ok = match ctx.store.lookup_read(k) {
            None => true,
            Some(e) => matches!(*e, Value::ZSet(_) | Value::Set(_)),
        };
        if !ok {
            return Err(CmdError::WrongType);
        }
    }
    let mut opts = AlgebraOpts { weights: None, aggregate: Aggregate::Sum, with_scores: false, limit: 0 };
    let mut j = at + 1 + n;
    while j < argv.len() {
        let remaining = argv.len() - j;
        let a = argv[j];
        if op != Op::Diff && !card_only && remaining > n && is(a, "WEIGHTS") {
            let w = argv[j + 1..j + 1 + n]
                .iter()
                .map(|w| num::parse_f64(w).ok_or_else(|| CmdError::err("weight value is not a float")))
                .collect::<Result<Vec<f64>, _>>()?;
            opts.weights = Some(w);
            j += n + 1;
        } else if op != Op::Diff && !card_only && remaining >= 2 && is(a, "AGGREGATE") {
            let v = argv[j + 1];
            opts.aggregate = if is(v, "SUM") {
                Aggregate::Sum
            } else if is(v, "MIN") {
                Aggregate::Min
            } else if is(v, "MAX") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(a, "WITHSCORES") {
            opts.with_scores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(a, "LIMIT") {
            let l = args::int(argv[j + 1]).map_err(|_| CmdError::err("LIMIT can't be negative"))?;
            if l < 0 {
                return Err(CmdError::err("LIMIT can't be negative"));
            }
            opts.limit = l as usize;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let limits = ctx.store.limits();
    let items = {
        let store = &ctx.store;
        let sources: Vec<Source<'_>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Source { value: store.peek(k), weight: opts.weights.as_ref().map_or(1.0, |w| w[i]) })
            .collect();
        if card_only {
            let n = intersect(sources, opts.aggregate, opts.limit).len();
            ctx.out.int(n as i64);
            return Ok(());
        }
        let mut items = match op {
            Op::Union => union(sources, opts.aggregate),
            Op::Inter => intersect(sources, opts.aggregate, 0),
            Op::Diff => difference(&sources),
        };
        // Sorted-set order: score, then member (-0 and 0 are the same score).
        items.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
        items
    };
    match dst {
        Some(dst) => {
            let event = match op {
                Op::Union => "zunionstore",
                Op::Inter => "zinterstore",
                Op::Diff => "zdiffstore",
            };
            store_result(ctx, dst, build(&items, &limits), event)
        }
        None => reply_pairs(ctx.out, &items, opts.with_scores),
    }
    Ok(())
}

/// Inputs ordered by size, as Redis orders them before combining (sums are added in that
/// order).
fn by_size(mut sources: Vec<Source<'_>>) -> Vec<Source<'_>> {
    sources.sort_by_key(Source::len);
    sources
}

/// Members in every input, with aggregated weighted scores; at most `limit` (0: all).
fn intersect(sources: Vec<Source<'_>>, agg: Aggregate, limit: usize) -> Vec<(Vec<u8>, f64)> {
    let sources = by_size(sources);
    let mut out = Vec::new();
    if sources[0].len() == 0 {
        return out;
    }
    sources[0].for_each(|m, s| {
        if limit != 0 && out.len() >= limit {
            return;
        }
        let mut score = sources[0].weighted(s);
        for src in &sources[1..] {
            match src.score(m) {
                Some(v) => agg.apply(&mut score, src.weighted(v)),
                None => return,
            }
        }
        out.push((m.to_vec(), score));
    });
    out
}

/// Members in any input, with aggregated weighted scores.
fn union(sources: Vec<Source<'_>>, agg: Aggregate) -> Vec<(Vec<u8>, f64)> {
    let sources = by_size(sources);
    let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
    for src in &sources {
        src.for_each(|m, s| {
            let v = src.weighted(s);
            match acc.get_mut(m) {
                Some(t) => agg.apply(t, v),
                None => {
                    acc.insert(m.to_vec(), v);
                }
            }
        });
    }
    acc.into_iter().collect()
}

/// Members of the first input found in no other, with their scores.
fn difference(sources: &[Source<'_>]) -> Vec<(Vec<u8>, f64)> {
    let mut out = Vec::new();
    sources[0].for_each(|m, s| {
        if !sources[1..].iter().any(|o| o.score(m).is_some()) {
            out.push((m.to_vec(), s));
        }
    });
    out
}

/// `ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn zunion(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, argv, 1, None, Op::Union, false)
}

/// `ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn zinter(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, argv, 1, None, Op::Inter, false)
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
fn zdiff(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, argv, 1, None, Op::Diff, false)
}

/// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
fn zunionstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, argv, 2, Some(argv[1]), Op::Union, false)
}

/// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
fn zinterstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, argv, 2, Some(argv[1]), Op::Inter, false)
}

/// `ZDIFFSTORE destination numkeys key [key ...]`
fn zdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, argv, 2, Some(argv[1]), Op::Diff, false)
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
fn zintercard(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    algebra(ctx, argv, 1, None, Op::Inter, true)
}

// --- Random members and scans -----------------------------------------------------------------

/// `ZRANDMEMBER key [count [WITHSCORES]]`
fn zrandmember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let count = match argv.get(2) {
        Some(a) => Some(range_arg(a, -i64::MAX, i64::MAX, None)?),
        None => None,
    };
    let mut with_scores = false;
    if let Some(l) = count {
        if argv.len() > 4 || (argv.len() == 4 && !is(argv[3], "WITHSCORES")) {
            return Err(CmdError::Syntax);
        }
        if argv.len() == 4 {
            with_scores = true;
            if !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
                return Err(CmdError::err("value is out of range"));
            }
        }
    }
    let Some(z) = ctx.store.get_zset(argv[1])? else {
        match count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let rng = &mut *ctx.rng;
    let size = z.len();
    let Some(l) = count else {
        let (m, _) = z.get(rng.below(size as u64) as usize).expect("stored sorted sets are not empty");
        ctx.out.bulk(&m);
        return Ok(());
    };
    if l == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    let out = &mut *ctx.out;
    let pairs = with_scores && out.resp3();
    let header = |out: &mut ReplyWriter, n: usize| out.array(if with_scores && !pairs { n * 2 } else { n });
    let write = |out: &mut ReplyWriter, m: LpValue<'_>, s: f64| {
        if pairs {
            out.array(2);
        }
        reply_elem(out, m);
        if with_scores {
            out.double(s);
        }
    };
    let count = l.unsigned_abs() as usize;
    if l < 0 || count == 1 {
        // Repetitions allowed: each pick on its own, written as it is made.
        let start = out.buf.len();
        header(out, count);
        for n in 0..count {
            let r = rng.below(size as u64) as usize;
            z.walk(r, r, false, |m, s| {
                write(out, m, s);
                false
            });
            if n % 1024 == 0 && reply_too_big(out, ctx.session, start) {
                return Ok(());
            }
        }
        return Ok(());
    }
    if count >= size {
        // The whole set, in order.
        header(out, size);
        z.for_each(|m, s| write(out, m, s));
        return Ok(());
    }
    // Distinct ranks: Floyd's sampling, then written in rank order.
    let mut picked = std::collections::BTreeSet::new();
    for j in size - count..size {
        let t = rng.below(j as u64 + 1) as usize;
        if !picked.insert(t) {
            picked.insert(j);
        }
    }
    header(out, count);
    for r in picked {
        z.walk(r, r, false, |m, s| {
            write(out, m, s);
            false
        });
    }
    Ok(())
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`
fn zscan(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let cursor = crate::family::keys::parse_cursor(argv[2]).ok_or(CmdError::InvalidCursor)?;
    // The key is looked up before the options are read, as in Redis.
    let Some(z) = ctx.store.get_zset(argv[1])? else {
        reply_empty_scan(ctx.out);
        return Ok(());
    };
    let opts = scan_opts(argv)?;
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let next = scan_loop(cursor, opts.count, |c| {
        let n = z.scan(c, |m, s| found.push((m.to_vec(), s.to_vec())));
        (n, found.len())
    });
    reply_pair_scan(ctx.out, next, found, opts.pattern);
    Ok(())
}
