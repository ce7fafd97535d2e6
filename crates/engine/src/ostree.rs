//! An order-statistic B+tree: a sorted set of keys that also answers "how many keys come
//! before this one" (rank) and "which key is at position i" in O(log n). It is the ordered
//! half of a large sorted set (keys are `(score, member)`; a hash table beside it maps members
//! to scores), where Redis uses a skiplist with spans.
//!
//! Why hand-written: no crate offers rank and select at the speed a sorted set needs (see
//! `shared/CRATES.md` §9: a skiplist crate took 3.5–5.5 µs per insert, indexset 0.84 µs per
//! rank). A B+tree keeps 64 keys per leaf contiguously, so a lookup touches a few cache lines
//! per level, and each inner node keeps, per child, the child's largest key and its number of
//! keys: routing compares with the largest keys, rank and select add up the counts.
//!
//! Every node but the root holds between half and all of its capacity, so the height stays
//! logarithmic whatever the order of inserts and removals.

use std::cmp::Ordering;

/// Most keys in a leaf, and most children of an inner node.
const CAP: usize = 64;
/// Fewest keys in a leaf (or children of an inner node) other than the root.
const MIN: usize = CAP / 2;

/// A sorted set of distinct keys with rank and select.
#[derive(Clone, Debug)]
pub struct OsTree<K> {
    root: Node<K>,
}

#[derive(Clone, Debug)]
enum Node<K> {
    Leaf(Vec<K>),
    Inner(Box<Inner<K>>),
}

/// An inner node: per child, its largest key and how many keys it holds.
#[derive(Clone, Debug)]
struct Inner<K> {
    maxes: Vec<K>,
    counts: Vec<usize>,
    children: Vec<Node<K>>,
}

impl<K> Inner<K> {
    fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

impl<K: Ord + Clone> Node<K> {
    fn len(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(n) => n.total(),
        }
    }

    /// Keys in a leaf, children in an inner node: what the fill rules count.
    fn width(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(n) => n.children.len(),
        }
    }

    fn max(&self) -> Option<&K> {
        match self {
            Node::Leaf(v) => v.last(),
            Node::Inner(n) => n.maxes.last(),
        }
    }

    /// Inserts `k`; `Err(())` if present. A node grown past capacity splits and returns its
    /// upper half.
    fn insert(&mut self, k: K) -> Result<Option<Node<K>>, ()> {
        match self {
            Node::Leaf(v) => {
                let at = match v.binary_search(&k) {
                    Ok(_) => return Err(()),
                    Err(at) => at,
                };
                if v.len() == CAP {
                    // Split before inserting, so that no leaf ever holds more than CAP keys:
                    // a leaf's buffer then never grows past CAP keys (2 KiB for a sorted set,
                    // one allocator size class), where growing to CAP + 1 would double it.
                    let mut right = Vec::with_capacity(CAP);
                    right.extend(v.drain(MIN..));
                    if at <= MIN {
                        v.insert(at, k);
                    } else {
                        right.insert(at - MIN, k);
                    }
                    return Ok(Some(Node::Leaf(right)));
                }
                v.insert(at, k);
                Ok(None)
            }
            Node::Inner(n) => {
                // The first child whose largest key is not below `k`; past every child, the
                // last one (its largest key grows).
                let i = n.maxes.partition_point(|m| m < &k).min(n.children.len() - 1);
                let grows = n.maxes[i] < k;
                let kc = grows.then(|| k.clone());
                let split = n.children[i].insert(k)?;
                n.counts[i] += 1;
                if let Some(kc) = kc {
                    n.maxes[i] = kc;
                }
                if let Some(right) = split {
                    let left = &n.children[i];
                    n.counts[i] = left.len();
                    n.maxes[i] = left.max().expect("a split half is not empty").clone();
                    let (rmax, rlen) = (right.max().expect("not empty").clone(), right.len());
                    n.children.insert(i + 1, right);
                    n.maxes.insert(i + 1, rmax);
                    n.counts.insert(i + 1, rlen);
                    if n.children.len() > CAP {
                        let half = n.children.len() / 2;
                        let right = Inner {
                            maxes: n.maxes.split_off(half),
                            counts: n.counts.split_off(half),
                            children: n.children.split_off(half),
                        };
                        // The left half keeps the buffers that just grew past CAP: give the
                        // excess back (they grow to CAP again, not beyond, before the next split).
                        n.maxes.shrink_to(CAP);
                        n.counts.shrink_to(CAP);
                        n.children.shrink_to(CAP);
                        return Ok(Some(Node::Inner(Box::new(right))));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Removes the key equal to `k`; true if there was one. A child left below the minimum
    /// fill is merged with or refilled from a neighbour.
    fn remove(&mut self, k: &K) -> bool {
        match self {
            Node::Leaf(v) => match v.binary_search(k) {
                Ok(at) => {
                    v.remove(at);
                    true
                }
                Err(_) => false,
            },
            Node::Inner(n) => {
                let i = n.maxes.partition_point(|m| m < k);
                if i == n.children.len() || !n.children[i].remove(k) {
                    return false;
                }
                n.counts[i] -= 1;
                if n.children[i].width() < MIN {
                    n.rebalance(i);
                } else if &n.maxes[i] == k {
                    n.maxes[i] = n.children[i].max().expect("not empty").clone();
                }
                true
            }
        }
    }
}

impl<K: Ord + Clone> Inner<K> {
    /// Child `i` fell below the minimum fill: merge it with a neighbour if both fit in one
    /// node, else share their entries evenly. (The root alone may hold one child; the caller
    /// collapses it.)
    fn rebalance(&mut self, i: usize) {
        if self.children.len() == 1 {
            self.refresh(0);
            return;
        }
        let (l, r) = if i + 1 < self.children.len() { (i, i + 1) } else { (i - 1, i) };
        let (left, right) = self.children.split_at_mut(r);
        let (a, b) = (&mut left[l], &mut right[0]);
        match (a, b) {
            (Node::Leaf(a), Node::Leaf(b)) => {
                if a.len() + b.len() <= CAP {
                    a.append(b);
                } else {
                    let total = a.len() + b.len();
                    let want_left = total / 2;
                    if a.len() < want_left {
                        let take = want_left - a.len();
                        a.extend(b.drain(..take));
                    } else {
                        let give = a.len() - want_left;
                        let tail: Vec<K> = a.drain(a.len() - give..).collect();
                        b.splice(0..0, tail);
                    }
                }
            }
            (Node::Inner(a), Node::Inner(b)) => {
                if a.children.len() + b.children.len() <= CAP {
                    a.maxes.append(&mut b.maxes);
                    a.counts.append(&mut b.counts);
                    a.children.append(&mut b.children);
                } else {
                    let total = a.children.len() + b.children.len();
                    let want_left = total / 2;
                    if a.children.len() < want_left {
                        let take = want_left - a.children.len();
                        a.maxes.extend(b.maxes.drain(..take));
                        a.counts.extend(b.counts.drain(..take));
                        a.children.extend(b.children.drain(..take));
                    } else {
                        let give = a.children.len() - want_left;
                        let from = a.children.len() - give;
                        let m: Vec<K> = a.maxes.drain(from..).collect();
                        let c: Vec<usize> = a.counts.drain(from..).collect();
                        let ch: Vec<Node<K>> = a.children.drain(from..).collect();
                        b.maxes.splice(0..0, m);
                        b.counts.splice(0..0, c);
                        b.children.splice(0..0, ch);
                    }
                }
            }
            _ => unreachable!("siblings are at the same depth"),
        }
        if self.children[r].width() == 0 {
            self.children.remove(r);
            self.maxes.remove(r);
            self.counts.remove(r);
            self.refresh(l);
        } else {
            self.refresh(l);
            self.refresh(r);
        }
    }

    /// Recomputes child `i`'s largest key and count.
    fn refresh(&mut self, i: usize) {
        let c = &self.children[i];
        self.counts[i] = c.len();
        if let Some(m) = c.max() {
            self.maxes[i] = m.clone();
        }
    }
}

impl<K: Ord + Clone> Default for OsTree<K> {
    fn default() -> Self {
        OsTree { root: Node::Leaf(Vec::new()) }
    }
}

impl<K: Ord + Clone> OsTree<K> {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.root.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts `k`; false if an equal key is there already (it is kept).
    pub fn insert(&mut self, k: K) -> bool {
        match self.root.insert(k) {
            Err(()) => false,
            Ok(None) => true,
            Ok(Some(right)) => {
                let left = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
                let maxes = vec![left.max().expect("not empty").clone(), right.max().expect("not empty").clone()];
                let counts = vec![left.len(), right.len()];
                self.root = Node::Inner(Box::new(Inner { maxes, counts, children: vec![left, right] }));
                true
            }
        }
    }

    /// Removes the key equal to `k`; true if it was there.
    pub fn remove(&mut self, k: &K) -> bool {
        let removed = self.root.remove(k);
        // A root with one child hands the root over to it.
        while let Node::Inner(n) = &mut self.root {
            if n.children.len() != 1 {
                break;
            }
            let only = n.children.pop().expect("one child");
            self.root = only;
        }
        removed
    }

    /// The 0-based position of the key equal to `k`, if present.
    pub fn rank(&self, k: &K) -> Option<usize> {
        let mut node = &self.root;
        let mut before = 0;
        loop {
            match node {
                Node::Leaf(v) => return v.binary_search(k).ok().map(|i| before + i),
                Node::Inner(n) => {
                    let i = n.maxes.partition_point(|m| m < k);
                    if i == n.children.len() {
                        return None;
                    }
                    before += n.counts[..i].iter().sum::<usize>();
                    node = &n.children[i];
                }
            }
        }
    }

    /// How many keys satisfy `below`, which must hold for a prefix of the keys in order and
    /// for none after it (e.g. "score < 5"): the rank of the first key past a bound.
    pub fn count_while(&self, below: impl Fn(&K) -> bool) -> usize {
        let mut node = &self.root;
        let mut before = 0;
        loop {
            match node {
                Node::Leaf(v) => return before + v.partition_point(&below),
                Node::Inner(n) => {
                    let i = n.maxes.partition_point(&below);
                    before += n.counts[..i].iter().sum::<usize>();
                    if i == n.children.len() {
                        return before;
                    }
                    node = &n.children[i];
                }
            }
        }
    }

    /// The key at position `rank` (0-based).
    pub fn get(&self, rank: usize) -> Option<&K> {
        let mut node = &self.root;
        let mut rank = rank;
        loop {
            match node {
                Node::Leaf(v) => return v.get(rank),
                Node::Inner(n) => {
                    let mut i = 0;
                    while i < n.counts.len() && rank >= n.counts[i] {
                        rank -= n.counts[i];
                        i += 1;
                    }
                    node = n.children.get(i)?;
                }
            }
        }
    }

    /// Calls `f` on the keys at positions `start..=end` (clamped to the tree), in order, or
    /// from `end` down to `start` when `rev`, until `f` returns false.
    pub fn walk(&self, start: usize, end: usize, rev: bool, mut f: impl FnMut(&K) -> bool) {
        if self.is_empty() || start > end || start >= self.len() {
            return;
        }
        let end = end.min(self.len() - 1);
        walk_node(&self.root, start, end, rev, &mut f);
    }

    /// Every key in order.
    pub fn for_each(&self, mut f: impl FnMut(&K)) {
        self.walk(0, usize::MAX, false, |k| {
            f(k);
            true
        });
    }
}

impl<K: Ord + Clone + std::fmt::Debug> OsTree<K> {
    /// Checks the tree's invariants (tests).
    #[doc(hidden)]
    pub fn check(&self) {
        fn go<K: Ord + Clone + std::fmt::Debug>(n: &Node<K>, root: bool) -> usize {
            match n {
                Node::Leaf(v) => {
                    assert!(v.windows(2).all(|w| w[0] < w[1]), "leaf keys in order");
                    assert!(root || v.len() >= MIN, "leaf fill {}", v.len());
                    assert!(v.len() <= CAP);
                    // A leaf's buffer never grows past CAP keys (one allocator size class).
                    assert!(v.capacity() <= CAP, "leaf capacity {}", v.capacity());
                    v.len()
                }
                Node::Inner(inner) => {
                    assert!(inner.children.len() <= CAP);
                    assert!(if root { inner.children.len() >= 2 } else { inner.children.len() >= MIN });
                    assert_eq!(inner.maxes.len(), inner.children.len());
                    assert_eq!(inner.counts.len(), inner.children.len());
                    assert!(inner.maxes.windows(2).all(|w| w[0] < w[1]), "inner maxes in order");
                    let mut total = 0;
                    for (i, c) in inner.children.iter().enumerate() {
                        let len = go(c, false);
                        assert_eq!(inner.counts[i], len, "count of child {i}");
                        assert_eq!(Some(&inner.maxes[i]), c.max(), "max of child {i}");
                        total += len;
                    }
                    total
                }
            }
        }
        let _ = go::<K>(&self.root, true);
    }
}

fn walk_node<K>(node: &Node<K>, start: usize, end: usize, rev: bool, f: &mut dyn FnMut(&K) -> bool) -> bool {
    match node {
        Node::Leaf(v) => {
            let slice = &v[start..=end];
            if rev {
                slice.iter().rev().all(f)
            } else {
                slice.iter().all(f)
            }
        }
        Node::Inner(n) => {
            // Visit the children overlapping start..=end, each with the range relative to its
            // first position (no allocation: this runs for every pop and range read).
            let visit = |i: usize, first: usize, f: &mut dyn FnMut(&K) -> bool| {
                let last = first + n.counts[i]; // exclusive
                if n.counts[i] == 0 || last <= start || first > end {
                    return true;
                }
                walk_node(&n.children[i], start.max(first) - first, end.min(last - 1) - first, rev, f)
            };
            if rev {
                let mut last: usize = n.counts.iter().sum();
                for i in (0..n.children.len()).rev() {
                    let first = last - n.counts[i];
                    if first <= end && !visit(i, first, f) {
                        return false;
                    }
                    if first <= start {
                        break;
                    }
                    last = first;
                }
            } else {
                let mut first = 0;
                for i in 0..n.children.len() {
                    if first > end {
                        break;
                    }
                    if !visit(i, first, f) {
                        return false;
                    }
                    first += n.counts[i];
                }
            }
            true
        }
    }
}

/// A sorted set's key: a score (never NaN) and a member. Ordered by score, then by member
/// bytes, as Redis orders a sorted set; `-0` and `0` compare equal as scores, as in Redis.
#[derive(Clone, Debug)]
pub struct ScoreKey {
    /// The score.
    pub score: f64,
    /// The member.
    pub member: crate::small::SmallBytes,
}

impl ScoreKey {
    /// A key.
    pub fn new(score: f64, member: &[u8]) -> ScoreKey {
        debug_assert!(!score.is_nan());
        ScoreKey { score, member: crate::small::SmallBytes::new(member) }
    }
}

impl PartialEq for ScoreKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ScoreKey {}

impl PartialOrd for ScoreKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScoreKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match self.score.partial_cmp(&other.score) {
            Some(Ordering::Equal) | None => (*self.member).cmp(&*other.member),
            Some(o) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Compares every query with a `BTreeSet` holding the same keys.
    fn agree(t: &OsTree<u32>, o: &BTreeSet<u32>) {
        t.check();
        assert_eq!(t.len(), o.len());
        let all: Vec<u32> = o.iter().copied().collect();
        let mut walked = Vec::new();
        t.for_each(|k| walked.push(*k));
        assert_eq!(walked, all);
        for (i, k) in all.iter().enumerate().step_by(7) {
            assert_eq!(t.rank(k), Some(i));
            assert_eq!(t.get(i), Some(k));
        }
        assert_eq!(t.get(all.len()), None);
    }

    #[test]
    fn grows_and_shrinks_through_several_levels() {
        let mut t = OsTree::new();
        let mut o = BTreeSet::new();
        // i * P mod N with P prime to N visits every key of 0..N once, scattered.
        const N: u32 = 300_000;
        for i in 0..N {
            let k = ((i as u64 * 7919) % N as u64) as u32;
            assert_eq!(t.insert(k), o.insert(k));
        }
        agree(&t, &o);
        assert!(!t.insert(5), "duplicate");
        assert_eq!(t.count_while(|k| *k < 1000), 1000);
        assert_eq!(t.count_while(|_| true), N as usize);
        assert_eq!(t.count_while(|_| false), 0);
        let mut back = Vec::new();
        t.walk(10, 14, true, |k| {
            back.push(*k);
            true
        });
        assert_eq!(back, vec![14, 13, 12, 11, 10]);
        // Remove nine in ten, in another scattered order: nodes merge and refill.
        for i in 0..N {
            let k = ((i as u64 * 7927) % N as u64) as u32;
            if !k.is_multiple_of(10) {
                assert_eq!(t.remove(&k), o.remove(&k));
            }
        }
        agree(&t, &o);
        assert!(!t.remove(&1));
        for k in o.clone() {
            assert!(t.remove(&k));
        }
        t.check();
        assert!(t.is_empty());
        assert_eq!(t.rank(&0), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        Remove(u16),
        Walk(u16, u16, bool),
        Below(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u16>().prop_map(|k| Op::Insert(k % 5000)),
            3 => any::<u16>().prop_map(|k| Op::Remove(k % 5000)),
            1 => (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(a, b, r)| Op::Walk(a % 3000, b % 3000, r)),
            1 => any::<u16>().prop_map(|k| Op::Below(k % 5000)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn behaves_as_a_sorted_set(ops in proptest::collection::vec(op(), 1..3000)) {
            let mut t: OsTree<u32> = OsTree::new();
            let mut o = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(k) => prop_assert_eq!(t.insert(k as u32), o.insert(k as u32)),
                    Op::Remove(k) => prop_assert_eq!(t.remove(&(k as u32)), o.remove(&(k as u32))),
                    Op::Walk(a, b, rev) => {
                        let (a, b) = (a as usize, b as usize);
                        let mut got = Vec::new();
                        t.walk(a, b, rev, |k| { got.push(*k); got.len() < 50 });
                        let mut want: Vec<u32> = if a <= b { o.iter().copied().skip(a).take(b - a + 1).collect() } else { Vec::new() };
                        if rev { want.reverse(); }
                        want.truncate(50);
                        prop_assert_eq!(got, want);
                    }
                    Op::Below(k) => prop_assert_eq!(t.count_while(|x| *x < k as u32), o.range(..k as u32).count()),
                }
            }
            agree(&t, &o);
        }
    }

    #[test]
    fn score_keys_order_by_score_then_member_with_zeroes_equal() {
        let a = ScoreKey::new(1.0, b"b");
        let b = ScoreKey::new(1.0, b"c");
        let c = ScoreKey::new(2.0, b"a");
        assert!(a < b && b < c);
        assert_eq!(ScoreKey::new(-0.0, b"x"), ScoreKey::new(0.0, b"x"));
        assert!(ScoreKey::new(f64::NEG_INFINITY, b"z") < ScoreKey::new(-1e308, b"a"));
    }
}
