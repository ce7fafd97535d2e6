//! The sorted-set type: a listpack of member/score pairs while small, a hash table plus an
//! order-statistic tree when large (Redis 7.2's `t_zset.c` encodings and conversions).
//!
//! Both encodings keep members ordered by score, then by member bytes. The listpack
//! (`OBJECT ENCODING` "listpack") holds `member, score, member, score, ...` in that order, with
//! scores written as Redis writes them (integers as integer entries, so a dump loads in
//! redis-server unchanged). The large form ("skiplist", Redis's name for it) maps members to
//! scores in a [`Dict`] and keeps `(score, member)` keys in an [`OsTree`], which answers rank
//! and "first key past a bound" in O(log n) where Redis walks a skiplist with spans.
//!
//! Every range query is expressed by rank: a score or lexicographic bound becomes the number
//! of elements before it ([`ZSet::rank_range`]), and ranges are walked by rank
//! ([`ZSet::walk`]). The command layer needs nothing else to serve `ZRANGE` in all its forms.

use crate::dict::{collection_hasher, Dict};
use crate::limits::Limits;
use crate::listpack::{Listpack, LpValue, Needle};
use crate::ostree::{OsTree, ScoreKey};
use std::cmp::Ordering;

/// A sorted-set value.
#[derive(Clone, Debug)]
pub enum ZSet {
    /// `member, score, ...` ordered by score then member.
    Pack(Listpack),
    /// Member to score, and the ordered keys.
    Skip(Box<Skip>),
}

/// The large encoding: a dict for lookups by member, a tree for order.
#[derive(Clone, Debug)]
pub struct Skip {
    dict: Dict<f64>,
    tree: OsTree<ScoreKey>,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        if self.len() != other.len() {
            return false;
        }
        let (mut a, mut b) = (Vec::with_capacity(self.len()), Vec::with_capacity(other.len()));
        self.for_each(|m, s| a.push((m.to_vec(), s.to_bits())));
        other.for_each(|m, s| b.push((m.to_vec(), s.to_bits())));
        a == b
    }
}

impl Eq for ZSet {}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Pack(Listpack::new())
    }
}

/// A score read back from a listpack entry. Strings are what Redis or Tandem wrote: a
/// decimal, exponent form or `inf`/`-inf` (validated when loaded).
#[inline]
fn pack_score(v: LpValue<'_>) -> f64 {
    match v {
        LpValue::Int(i) => i as f64,
        LpValue::Str(s) => std::str::from_utf8(s).ok().and_then(|t| t.parse().ok()).unwrap_or(0.0),
    }
}

/// A score as Redis 7.0's `d2string` formats it (what `ZSCAN` replies for a large set):
/// `-0` kept, integers strictly between -(2^52 - 1) and 2^52 as integers, `inf`/`-inf`, and
/// otherwise `%.17g` (which reads back to the same double).
pub fn score_string(score: f64) -> Vec<u8> {
    const MIN: f64 = -4_503_599_627_370_495.0;
    const MAX: f64 = 4_503_599_627_370_496.0;
    if score.is_infinite() {
        return if score > 0.0 { b"inf".to_vec() } else { b"-inf".to_vec() };
    }
    if score == 0.0 {
        return if score.is_sign_negative() { b"-0".to_vec() } else { b"0".to_vec() };
    }
    if score > MIN && score < MAX && score.fract() == 0.0 {
        return (score as i64).to_string().into_bytes();
    }
    crate::num::format_g17(score)
}

/// The score as an integer when Redis's `double2ll` takes it (integral, within half the
/// `i64` range; `-0` gives 0).
fn score_as_int(score: f64) -> Option<i64> {
    const HALF: f64 = (i64::MAX / 2) as f64;
    if !(-HALF..=HALF).contains(&score) {
        return None;
    }
    let i = score as i64;
    (i as f64 == score).then_some(i)
}

/// Writes a score into a listpack at `p` as Redis 7.0's `zzlInsertAt` does: an integer entry
/// when `double2ll` takes it (so `-0` is stored as 0), else the `d2string` text.
fn write_score(lp: &mut Listpack, p: usize, score: f64) {
    match score_as_int(score) {
        Some(i) => lp.insert_int_at(p, i),
        None => lp.insert_at(p, &score_string(score)),
    };
}

/// Compares a pack element (member bytes) with `member`.
#[inline]
fn cmp_member(v: LpValue<'_>, member: &[u8]) -> Ordering {
    v.with_bytes(|b| b.cmp(member))
}

/// `(score, member)` order of a pack pair against the given pair.
#[inline]
fn cmp_pair(s: f64, m: LpValue<'_>, score: f64, member: &[u8]) -> Ordering {
    match s.partial_cmp(&score) {
        Some(Ordering::Equal) | None => cmp_member(m, member),
        Some(o) => o,
    }
}

impl ZSet {
    /// An empty sorted set in the encoding Redis picks for about `size_hint` members, the
    /// longest `max_len` bytes (`zsetTypeCreate`).
    pub fn new_for(size_hint: usize, max_len: usize, limits: &Limits) -> ZSet {
        if size_hint <= limits.zset_max_listpack_entries && max_len <= limits.zset_max_listpack_value {
            ZSet::Pack(Listpack::new())
        } else {
            ZSet::Skip(Box::new(Skip { dict: Dict::new(collection_hasher()), tree: OsTree::new() }))
        }
    }

    /// Converts a listpack before about `size_hint` members are added that would take it past
    /// `zset-max-listpack-entries` anyway (`zsetTypeMaybeConvert`).
    pub fn maybe_convert(&mut self, size_hint: usize, limits: &Limits) {
        if matches!(self, ZSet::Pack(_)) && size_hint > limits.zset_max_listpack_entries {
            self.convert_to_skip();
        }
    }

    /// Makes this the large encoding.
    pub fn convert_to_skip(&mut self) {
        let ZSet::Pack(lp) = self else { return };
        let mut skip = Skip { dict: Dict::new(collection_hasher()), tree: OsTree::new() };
        let mut it = lp.iter();
        while let (Some(m), Some(s)) = (it.next(), it.next()) {
            let score = pack_score(s);
            m.with_bytes(|m| skip.insert_new(m, score));
        }
        *self = ZSet::Skip(Box::new(skip));
    }

    /// Number of members.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            ZSet::Pack(lp) => lp.len() / 2,
            ZSet::Skip(s) => s.tree.len(),
        }
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's encoding name.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Pack(_) => "listpack",
            ZSet::Skip(_) => "skiplist",
        }
    }

    /// The score of `member`.
    #[inline]
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Pack(lp) => {
                let p = lp.find(member, 2)?;
                Some(pack_score(lp.get(lp.next(p)?)))
            }
            ZSet::Skip(s) => s.score(member),
        }
    }

    /// Sets the score of `member`, adding it if new; returns the old score (`None` if it was
    /// new). A listpack converts first when the new member is longer than
    /// `zset-max-listpack-value` or would take it past `zset-max-listpack-entries`
    /// (`zsetAdd`). `score` must not be NaN.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &Limits) -> Option<f64> {
        debug_assert!(!score.is_nan());
        if let ZSet::Pack(lp) = self {
            if let Some(p) = lp.find(member, 2) {
                let sp = lp.next(p).expect("a member is followed by its score");
                let old = pack_score(lp.get(sp));
                if old != score || old.is_sign_negative() != score.is_sign_negative() {
                    lp.delete_n(p, 2);
                    pack_insert(lp, member, score);
                }
                return Some(old);
            }
            if lp.len() / 2 + 1 > limits.zset_max_listpack_entries || member.len() > limits.zset_max_listpack_value {
                self.convert_to_skip();
            } else {
                pack_insert(lp, member, score);
                return None;
            }
        }
        let ZSet::Skip(s) = self else { unreachable!("converted above") };
        s.insert(member, score)
    }

    /// Removes `member`; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Pack(lp) => {
                let p = lp.find(member, 2)?;
                let score = pack_score(lp.get(lp.next(p)?));
                lp.delete_n(p, 2);
                Some(score)
            }
            ZSet::Skip(s) => {
                let h = s.dict.hasher().hash(member);
                let score = s.dict.remove(h, member)?;
                s.dict.shrink_if_needed();
                s.tree.remove(&ScoreKey::new(score, member));
                Some(score)
            }
        }
    }

    /// The 0-based rank of `member` in ascending order, with its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match self {
            ZSet::Pack(lp) => {
                let needle = Needle::new(member);
                let mut it = lp.iter();
                let mut i = 0;
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if needle.matches(m) {
                        return Some((i, pack_score(s)));
                    }
                    i += 1;
                }
                None
            }
            ZSet::Skip(s) => {
                let score = s.score(member)?;
                Some((s.tree.rank(&ScoreKey::new(score, member)).expect("dict and tree agree"), score))
            }
        }
    }

    /// Calls `f` with the members at ranks `start..=end` (clamped) and their scores, in
    /// order, or from `end` down to `start` when `rev`, until `f` returns false.
    pub fn walk(&self, start: usize, end: usize, rev: bool, mut f: impl FnMut(LpValue<'_>, f64) -> bool) {
        let len = self.len();
        if start > end || start >= len {
            return;
        }
        let end = end.min(len - 1);
        match self {
            ZSet::Pack(lp) => {
                if rev {
                    // Pairs back to front: the score comes first.
                    let mut p = lp.seek(2 * end as i64 + 1);
                    for _ in start..=end {
                        let Some(sp) = p else { return };
                        let mp = lp.prev(sp).expect("a score follows its member");
                        if !f(lp.get(mp), pack_score(lp.get(sp))) {
                            return;
                        }
                        p = lp.prev(mp);
                    }
                } else {
                    let mut p = lp.seek(2 * start as i64);
                    for _ in start..=end {
                        let Some(mp) = p else { return };
                        let sp = lp.next(mp).expect("a member is followed by its score");
                        if !f(lp.get(mp), pack_score(lp.get(sp))) {
                            return;
                        }
                        p = lp.next(sp);
                    }
                }
            }
            ZSet::Skip(s) => s.tree.walk(start, end, rev, |k| f(LpValue::Str(&k.member), k.score)),
        }
    }

    /// The member at `rank` and its score.
    pub fn get(&self, rank: usize) -> Option<(Vec<u8>, f64)> {
        let mut out = None;
        self.walk(rank, rank, false, |m, s| {
            out = Some((m.to_vec(), s));
            false
        });
        out
    }

    /// Every member and score in order.
    pub fn for_each(&self, mut f: impl FnMut(LpValue<'_>, f64)) {
        self.walk(0, usize::MAX, false, |m, s| {
            f(m, s);
            true
        });
    }

    /// Removes the members at ranks `start..=end` (clamped); how many were removed.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let len = self.len();
        if start > end || start >= len {
            return 0;
        }
        let end = end.min(len - 1);
        let n = end - start + 1;
        match self {
            ZSet::Pack(lp) => {
                let p = lp.seek(2 * start as i64).expect("in range");
                lp.delete_n(p, 2 * n);
            }
            ZSet::Skip(s) => {
                let mut keys = Vec::with_capacity(n);
                s.tree.walk(start, end, false, |k| {
                    keys.push(k.clone());
                    true
                });
                for k in &keys {
                    let h = s.dict.hasher().hash(&k.member);
                    s.dict.remove(h, &k.member);
                    s.tree.remove(k);
                }
                s.dict.shrink_if_needed();
            }
        }
        n
    }

    /// One `ZSCAN` step, giving each member with its score as text: a listpack returns
    /// everything and cursor 0, its scores as stored; a table its scores as [`score_string`].
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(LpValue<'_>, LpValue<'_>)) -> u64 {
        match self {
            ZSet::Pack(lp) => {
                let mut it = lp.iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    f(m, s);
                }
                0
            }
            ZSet::Skip(s) => s.dict.scan(cursor, |m, sc| f(LpValue::Str(m), LpValue::Str(&score_string(*sc)))),
        }
    }

    /// The ranks `first..end` of a range: `first` counts the members before the first one
    /// for which `below_min` is false, `end` extends it while `within_max` holds. Scores are
    /// ordered so both hold for a prefix; for lexicographic bounds on members of different
    /// scores (which Redis leaves undefined) a listpack is walked from `first`, as Redis
    /// walks it.
    pub fn rank_range(
        &self,
        below_min: impl Fn(&[u8], f64) -> bool,
        within_max: impl Fn(&[u8], f64) -> bool,
    ) -> (usize, usize) {
        match self {
            ZSet::Pack(lp) => {
                let mut it = lp.iter();
                let (mut first, mut end) = (0, 0);
                let mut seeking = true;
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    let score = pack_score(s);
                    if seeking {
                        if m.with_bytes(|m| below_min(m, score)) {
                            first += 1;
                            continue;
                        }
                        seeking = false;
                        end = first;
                    }
                    if !m.with_bytes(|m| within_max(m, score)) {
                        break;
                    }
                    end += 1;
                }
                (first, end.max(first))
            }
            ZSet::Skip(s) => {
                let first = s.tree.count_while(|k| below_min(&k.member, k.score));
                let end = s.tree.count_while(|k| within_max(&k.member, k.score));
                (first, end.max(first))
            }
        }
    }

    /// Bytes held (for memory accounting).
    pub fn allocated(&self) -> usize {
        match self {
            ZSet::Pack(lp) => lp.allocated(),
            ZSet::Skip(s) => s.dict.len() * 48 + s.dict.buckets() * 8 + s.tree.len() * 44,
        }
    }

    /// Checks that the encodings agree with each other and are ordered (tests, loading).
    #[doc(hidden)]
    pub fn check(&self) {
        let mut prev: Option<(Vec<u8>, f64)> = None;
        self.for_each(|m, s| {
            let m = m.to_vec();
            assert!(!s.is_nan());
            if let Some((pm, ps)) = &prev {
                assert_eq!(cmp_pair(*ps, LpValue::Str(pm), s, &m), Ordering::Less, "members in order");
            }
            prev = Some((m, s));
        });
        if let ZSet::Skip(s) = self {
            s.tree.check();
            assert_eq!(s.dict.len(), s.tree.len());
            s.tree.for_each(|k| assert_eq!(s.score(&k.member).map(f64::to_bits), Some(k.score.to_bits())));
        }
    }
}

/// Inserts a pair into a sorted listpack at its place (the member must not be there).
fn pack_insert(lp: &mut Listpack, member: &[u8], score: f64) {
    let mut p = lp.first();
    while let Some(mp) = p {
        let sp = lp.next(mp).expect("a member is followed by its score");
        if cmp_pair(pack_score(lp.get(sp)), lp.get(mp), score, member) == Ordering::Greater {
            break;
        }
        p = lp.next(sp);
    }
    let at = p.unwrap_or_else(|| lp.end());
    lp.insert_at(at, member);
    let sp = lp.next(at).unwrap_or_else(|| lp.end());
    write_score(lp, sp, score);
}

impl Skip {
    #[inline]
    fn score(&self, member: &[u8]) -> Option<f64> {
        let h = self.dict.hasher().hash(member);
        self.dict.get(h, member).copied()
    }

    fn insert_new(&mut self, member: &[u8], score: f64) {
        let h = self.dict.hasher().hash(member);
        self.dict.insert_new(h, member, score);
        self.tree.insert(ScoreKey::new(score, member));
    }

    fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let h = self.dict.hasher().hash(member);
        match self.dict.get_mut(h, member) {
            Some(old) => {
                let prev = *old;
                if prev.to_bits() != score.to_bits() {
                    *old = score;
                    self.tree.remove(&ScoreKey::new(prev, member));
                    self.tree.insert(ScoreKey::new(score, member));
                }
                Some(prev)
            }
            None => {
                self.dict.insert_new(h, member, score);
                self.tree.insert(ScoreKey::new(score, member));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn contents(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        let mut v = Vec::new();
        z.for_each(|m, s| v.push((m.to_vec(), s)));
        v
    }

    #[test]
    fn pack_keeps_order_and_converts_past_the_limits() {
        let limits = Limits { zset_max_listpack_entries: 4, ..Limits::default() };
        let mut z = ZSet::new_for(1, 1, &limits);
        assert_eq!(z.insert(b"b", 2.0, &limits), None);
        assert_eq!(z.insert(b"a", 2.0, &limits), None);
        assert_eq!(z.insert(b"c", -1.5, &limits), None);
        assert_eq!(z.insert(b"10", 1e300, &limits), None);
        assert_eq!(z.encoding(), "listpack");
        let got = contents(&z);
        assert_eq!(
            got,
            vec![(b"c".to_vec(), -1.5), (b"a".to_vec(), 2.0), (b"b".to_vec(), 2.0), (b"10".to_vec(), 1e300)]
        );
        assert_eq!(z.insert(b"b", 0.0, &limits), Some(2.0));
        assert_eq!(z.rank(b"b"), Some((1, 0.0)));
        assert_eq!(z.insert(b"d", f64::INFINITY, &limits), None);
        assert_eq!(z.encoding(), "skiplist");
        z.check();
        assert_eq!(z.rank(b"d"), Some((4, f64::INFINITY)));
        assert_eq!(z.remove(b"c"), Some(-1.5));
        assert_eq!(z.len(), 4);

        let mut long = ZSet::new_for(1, 1, &Limits::default());
        long.insert(&[b'm'; 64], 1.0, &Limits::default());
        assert_eq!(long.encoding(), "listpack");
        long.insert(&[b'n'; 65], 1.0, &Limits::default());
        assert_eq!(long.encoding(), "skiplist");
    }

    #[test]
    fn scores_are_written_as_redis_7_0_writes_them() {
        // A listpack stores -0 as the integer 0 (Redis 7.0's `d2string`); a table keeps it.
        let limits = Limits::default();
        let mut z = ZSet::default();
        z.insert(b"a", -0.0, &limits);
        assert!(z.score(b"a").unwrap().is_sign_positive());
        z.convert_to_skip();
        z.insert(b"b", -0.0, &limits);
        assert!(z.score(b"b").unwrap().is_sign_negative());
        assert_eq!(score_string(-0.0), b"-0");
        assert_eq!(score_as_int(-0.0), Some(0));
        assert_eq!(score_as_int(1e18), Some(1_000_000_000_000_000_000));
        assert_eq!(score_as_int(1e19), None);
        assert_eq!(score_as_int(0.5), None);
        assert_eq!(score_string(0.1), b"0.10000000000000001");
        assert_eq!(score_string(1.5), b"1.5");
        assert_eq!(score_string(-3.0), b"-3");
        assert_eq!(score_string(4503599627370496.0), b"4503599627370496");
        assert_eq!(score_string(4503599627370495.0), b"4503599627370495");
        assert_eq!(score_string(f64::NEG_INFINITY), b"-inf");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i8),
        Remove(u8),
        RemoveRange(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Insert(m, s)),
            2 => any::<u8>().prop_map(Op::Remove),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::RemoveRange(a % 40, b % 40)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Both encodings agree with a model at every step, across conversions.
        #[test]
        fn encodings_behave_alike(ops in proptest::collection::vec(op(), 1..400), limit in 0usize..40) {
            let limits = Limits { zset_max_listpack_entries: limit, ..Limits::default() };
            let mut z = ZSet::new_for(1, 1, &limits);
            let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(m, s) => {
                        let m = format!("m{}", m % 60).into_bytes();
                        let s = f64::from(s) / 4.0;
                        prop_assert_eq!(z.insert(&m, s, &limits), model.insert(m, s));
                    }
                    Op::Remove(m) => {
                        let m = if m % 3 == 0 { (m as i64 - 100).to_string().into_bytes() } else { format!("m{}", m % 60).into_bytes() };
                        prop_assert_eq!(z.remove(&m), model.remove(&m));
                    }
                    Op::RemoveRange(a, b) => {
                        let mut sorted: Vec<(f64, Vec<u8>)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
                        sorted.sort_by(|x, y| x.partial_cmp(y).unwrap());
                        let (a, b) = (a as usize, b as usize);
                        let gone: Vec<Vec<u8>> = if a <= b { sorted.iter().skip(a).take(b - a + 1).map(|x| x.1.clone()).collect() } else { Vec::new() };
                        prop_assert_eq!(z.remove_range(a, b), gone.len());
                        for m in gone { model.remove(&m); }
                    }
                }
            }
            z.check();
            let mut want: Vec<(f64, Vec<u8>)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
            want.sort_by(|x, y| x.partial_cmp(y).unwrap());
            let got: Vec<(f64, Vec<u8>)> = contents(&z).into_iter().map(|(m, s)| (s, m)).collect();
            prop_assert_eq!(&got, &want);
            for (i, (s, m)) in want.iter().enumerate() {
                prop_assert_eq!(z.rank(m), Some((i, *s)));
                prop_assert_eq!(z.rank_range(|mm, ss| (ss, mm) < (*s, m.as_slice()), |_, ss| ss <= *s).0, i);
            }
            let mut back = Vec::new();
            z.walk(0, usize::MAX, true, |m, _| { back.push(m.to_vec()); true });
            back.reverse();
            prop_assert_eq!(back, want.iter().map(|x| x.1.clone()).collect::<Vec<_>>());
        }
    }
}
