//! `SORT` and `SORT_RO` (`sort.c`): the elements of a list, set or sorted set, ordered by
//! their own value or by values found in other keys (`BY`), with `LIMIT`, `GET` and `STORE`.
//!
//! `BY` and `GET` patterns name arbitrary keys, so these commands lock every shard. Sorting
//! is deterministic as in Redis: equal numeric scores fall back to comparing the elements,
//! and a set is sorted alphabetically when the result is stored even under a constant `BY`
//! (its own order is not the same on every node).

use crate::args::{self, is};
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::table::{bind, Binding, LockMode::All};
use engine::list::End;
use engine::{num, List, Value};
use std::cmp::Ordering;

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[bind("sort", sort, All), bind("sort_ro", sort_ro, All)];

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]`
fn sort(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, argv, false)
}

/// `SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]`
fn sort_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, argv, true)
}

/// The value to sort an element by.
enum Weight {
    /// Numeric: the element's (or the `BY` value's) number; 0 when the `BY` key is missing.
    Score(f64),
    /// Alphabetic by a `BY` value (None: the key is missing, which sorts first).
    Text(Option<Vec<u8>>),
    /// Alphabetic by the element itself.
    Own,
}

/// C `strcoll` in the "C" locale: bytes compared up to the first NUL.
fn coll(a: &[u8], b: &[u8]) -> Ordering {
    let cut = |s: &[u8]| -> usize { s.iter().position(|&c| c == 0).unwrap_or(s.len()) };
    a[..cut(a)].cmp(&b[..cut(b)])
}

/// `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is replaced by the
/// element and the key read as a string, or, with `->field` after the `*`, as a hash field.
/// None when the pattern has no `*`, the key is missing or of another type.
fn by_pattern(ctx: &mut Ctx, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    // Redis reads the pattern as a C string.
    let pattern = &pattern[..pattern.iter().position(|&c| c == 0).unwrap_or(pattern.len())];
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after.windows(2).position(|w| w == b"->").filter(|&i| i + 2 < after.len());
    let (post, field) = match arrow {
        Some(i) => (&after[..i], Some(&after[i + 2..])),
        None => (after, None),
    };
    let key = [&pattern[..star], elem, post].concat();
    let now = ctx.now_ms();
    let e = ctx.store.lookup_read(&key)?;
    match (field, &*e) {
        (None, Value::Str(s)) => Some(s.to_vec()),
        // A field whose time has run out is missing (left for the expiry cycle to remove:
        // SORT_RO may not write).
        (Some(f), Value::Hash(h)) if h.field_expire(f).is_none_or(|t| t > now) => h.get(f).map(|v| v.to_vec()),
        _ => None,
    }
}

fn sort_generic(ctx: &mut Ctx, argv: &[&[u8]], readonly: bool) -> CmdResult {
    let (mut desc, mut alpha, mut dontsort) = (false, false, false);
    let (mut limit_start, mut limit_count) = (0i64, -1i64);
    let mut store: Option<&[u8]> = None;
    let mut by: Option<&[u8]> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = argv[j];
        if is(a, "ASC") {
            desc = false;
        } else if is(a, "DESC") {
            desc = true;
        } else if is(a, "ALPHA") {
            alpha = true;
        } else if is(a, "LIMIT") && left >= 2 {
            limit_start = args::int(argv[j + 1])?;
            limit_count = args::int(argv[j + 2])?;
            j += 2;
        } else if !readonly && is(a, "STORE") && left >= 1 {
            store = Some(argv[j + 1]);
            j += 1;
        } else if is(a, "BY") && left >= 1 {
            by = Some(argv[j + 1]);
            // A pattern without '*' names no per-element key: nothing to sort by.
            dontsort = !argv[j + 1].contains(&b'*');
            j += 1;
        } else if is(a, "GET") && left >= 1 {
            gets.push(argv[j + 1]);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let key = argv[1];
    // The elements, each with whether it is stored as an integer.
    let mut elems: Vec<Vec<u8>> = Vec::new();
    let mut is_set = false;
    match ctx.store.lookup_read(key).map(|e| &*e) {
        None => {}
        Some(Value::List(l)) => elems.extend(l.iter().map(|v| v.to_vec())),
        Some(Value::Set(s)) => {
            is_set = true;
            s.for_each(|m| elems.push(m.to_vec()));
        }
        Some(Value::ZSet(z)) => z.for_each(|m, _| elems.push(m.to_vec())),
        Some(_) => return Err(CmdError::WrongType),
    }
    // A set's own order differs between nodes and encodings: sort it when the result is
    // stored.
    if dontsort && is_set && store.is_some() {
        dontsort = false;
        alpha = true;
        by = None;
    }
    // LIMIT, clamped as Redis clamps it.
    let len = elems.len() as i64;
    let start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 { len - 1 } else { start + count - 1 };
    let start = if start >= len {
        end = len - 2;
        len - 1
    } else {
        start
    };
    if end >= len {
        end = len - 1;
    }
    if dontsort && desc && !is_set {
        // Lists and sorted sets keep their own order, reversed by DESC.
        elems.reverse();
    }
    if !dontsort {
        let mut weights = Vec::with_capacity(elems.len());
        let mut bad = false;
        for e in &elems {
            let w = match by {
                Some(p) => by_pattern(ctx, p, e),
                None => None,
            };
            weights.push(match (alpha, by.is_some()) {
                (true, true) => Weight::Text(w),
                (true, false) => Weight::Own,
                (false, true) => match w {
                    Some(v) => Weight::Score(num::parse_sort_score(&v).unwrap_or_else(|| {
                        bad = true;
                        0.0
                    })),
                    None => Weight::Score(0.0),
                },
                (false, false) => Weight::Score(num::parse_sort_score(e).unwrap_or_else(|| {
                    bad = true;
                    0.0
                })),
            });
        }
        if bad {
            return Err(CmdError::err("One or more scores can't be converted into double"));
        }
        let stored = store.is_some();
        let mut order: Vec<usize> = (0..elems.len()).collect();
        order.sort_by(|&x, &y| {
            let cmp = match (&weights[x], &weights[y]) {
                (Weight::Score(a), Weight::Score(b)) => {
                    a.partial_cmp(b).unwrap_or(Ordering::Equal).then_with(|| elems[x].cmp(&elems[y]))
                }
                (Weight::Text(a), Weight::Text(b)) => match (a, b) {
                    (Some(a), Some(b)) if stored => a.cmp(b),
                    (Some(a), Some(b)) => coll(a, b),
                    (a, b) => a.is_some().cmp(&b.is_some()),
                },
                _ if stored => elems[x].cmp(&elems[y]),
                _ => coll(&elems[x], &elems[y]),
            };
            if desc {
                cmp.reverse()
            } else {
                cmp
            }
        });
        let mut slots: Vec<Option<Vec<u8>>> = elems.into_iter().map(Some).collect();
        elems = order.into_iter().map(|i| slots[i].take().expect("each index once")).collect();
    }
    let picked: &[Vec<u8>] = if end >= start { &elems[start as usize..=end as usize] } else { &[] };
    // The output: the elements, or per element one value per GET pattern.
    let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(picked.len() * gets.len().max(1));
    for e in picked {
        if gets.is_empty() {
            out.push(Some(e.clone()));
        }
        for g in &gets {
            out.push(by_pattern(ctx, g, e));
        }
    }
    match store {
        None => {
            ctx.out.array(out.len());
            for v in &out {
                match v {
                    Some(v) => ctx.out.bulk(v),
                    None => ctx.out.null(),
                }
            }
        }
        Some(dst) => {
            let n = out.len();
            if n > 0 {
                let limits = ctx.store.limits();
                let mut list = List::new();
                for v in &out {
                    list.push(End::Tail, v.as_deref().unwrap_or(b""), &limits);
                }
                // Overwrites in place: `new` (from the store) only if `dst` did not exist.
                ctx.store.set(dst, Value::List(list), false);
                ctx.store.dirty += n as u64 - 1;
                // Class `l` in Redis, not generic.
                ctx.store.notify(crate::notify::LIST, "sortstore", dst);
            } else if ctx.store.delete(dst) {
                ctx.store.notify(crate::notify::GENERIC, "del", dst);
            }
            ctx.out.int(n as i64);
        }
    }
    Ok(())
}
