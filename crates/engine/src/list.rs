//! The list type: one listpack while small, a quicklist (a deque of listpack nodes) when large.
//!
//! Encodings and conversions follow Redis 7.2 (`t_list.c`, `quicklist.c`): a list starts as
//! one listpack (`OBJECT ENCODING` "listpack") and becomes a quicklist once an insertion would
//! take it past `list-max-listpack-size`; a quicklist whose single node falls under half the
//! limit becomes a listpack again. Quicklist nodes fill up to the same limit, so a long list of
//! small items costs a few bytes per item. Compression of inner nodes (`list-compress-depth`)
//! is not done.
//!
//! Positions inside the list are `(node, offset)` pairs; a listpack-encoded list has the one
//! node 0. Operations that walk (`LRANGE`, `LPOS`, `LREM`, `LINSERT`) move along positions.

use crate::limits::Limits;
use crate::listpack::{Listpack, LpValue};
use std::collections::VecDeque;

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (`LEFT`, index 0).
    Head,
    /// The tail (`RIGHT`, index -1).
    Tail,
}

/// A list value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum List {
    /// One listpack.
    Pack(Listpack),
    /// A deque of listpack nodes.
    Quick(Box<Quick>),
}

/// The large encoding: nodes in order and the total count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quick {
    nodes: VecDeque<Listpack>,
    len: usize,
}

/// A position: node index and the element's offset in that node.
pub type Pos = (usize, usize);

/// What Redis adds to an element's length when estimating a node's growth.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;

impl Default for List {
    fn default() -> Self {
        List::new()
    }
}

impl List {
    /// An empty list (listpack-encoded).
    pub fn new() -> List {
        List::Pack(Listpack::new())
    }

    /// A list of the given nodes as a quicklist (empty nodes dropped), or as a listpack when
    /// it has one node within the limits; for loading RDB quicklists.
    pub fn from_nodes(nodes: Vec<Listpack>, limits: &Limits) -> List {
        let nodes: VecDeque<Listpack> = nodes.into_iter().filter(|n| !n.is_empty()).collect();
        let len = nodes.iter().map(Listpack::len).sum();
        let mut l = List::Quick(Box::new(Quick { nodes, len }));
        l.shrink_check(limits);
        l
    }

    /// A list of the given elements, encoded as `limits` say.
    pub fn from_elems<'a>(elems: impl IntoIterator<Item = &'a [u8]>, limits: &Limits) -> List {
        let mut l = List::new();
        for e in elems {
            l.grow_check(e.len(), 1, limits);
            l.push(End::Tail, e, limits);
        }
        l
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            List::Pack(lp) => lp.len(),
            List::Quick(q) => q.len,
        }
    }

    /// True when empty (an empty list is never stored under a key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's encoding name.
    pub fn encoding(&self) -> &'static str {
        match self {
            List::Pack(_) => "listpack",
            List::Quick(_) => "quicklist",
        }
    }

    /// The nodes (one for a listpack).
    pub fn nodes(&self) -> impl DoubleEndedIterator<Item = &Listpack> + '_ {
        let (one, many) = match self {
            List::Pack(lp) => (Some(lp), None),
            List::Quick(q) => (None, Some(q.nodes.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Bytes held by the nodes (for memory accounting).
    pub fn allocated(&self) -> usize {
        match self {
            List::Pack(lp) => lp.allocated(),
            List::Quick(q) => q.nodes.iter().map(Listpack::allocated).sum::<usize>() + q.nodes.capacity() * 24,
        }
    }

    fn node_count(&self) -> usize {
        match self {
            List::Pack(_) => 1,
            List::Quick(q) => q.nodes.len(),
        }
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Listpack {
        match self {
            List::Pack(lp) => lp,
            List::Quick(q) => &q.nodes[i],
        }
    }

    fn node_mut(&mut self, i: usize) -> &mut Listpack {
        match self {
            List::Pack(lp) => lp,
            List::Quick(q) => &mut q.nodes[i],
        }
    }

    fn add_len(&mut self, delta: isize) {
        if let List::Quick(q) = self {
            q.len = (q.len as isize + delta) as usize;
        }
    }

    /// Converts a listpack that would exceed the node limit after adding `add_count` elements
    /// of `add_bytes` bytes in all (`listTypeTryConvertListpack`). Call before inserting.
    pub fn grow_check(&mut self, add_bytes: usize, add_count: usize, limits: &Limits) {
        if let List::Pack(lp) = self {
            if limits.list_node_exceeds(lp.bytes() + add_bytes, lp.len() + add_count) {
                let lp = std::mem::take(lp);
                let len = lp.len();
                let mut nodes = VecDeque::new();
                if len > 0 {
                    nodes.push_back(lp);
                }
                *self = List::Quick(Box::new(Quick { nodes, len }));
            }
        }
    }

    /// Turns a quicklist of one node within half the node limit back into a listpack
    /// (`listTypeTryConvertQuicklist`). Call after removing elements.
    pub fn shrink_check(&mut self, limits: &Limits) {
        let List::Quick(q) = self else { return };
        if q.nodes.len() > 1 {
            return;
        }
        let (size, count) = limits.list_node();
        let (size, count) = if size != usize::MAX { (size / 2, count) } else { (size, count / 2) };
        let (bytes, n) = q.nodes.front().map(|n| (n.bytes(), n.len())).unwrap_or((0, 0));
        if bytes > size || n > count {
            return;
        }
        let lp = q.nodes.pop_front().unwrap_or_default();
        *self = List::Pack(lp);
    }

    /// Adds an element at one end.
    pub fn push(&mut self, end: End, v: &[u8], limits: &Limits) {
        match self {
            List::Pack(lp) => match end {
                End::Head => lp.push_front(v),
                End::Tail => lp.push_back(v),
            },
            List::Quick(q) => {
                let node = match end {
                    End::Head => q.nodes.front_mut(),
                    End::Tail => q.nodes.back_mut(),
                };
                let fits = node.as_ref().is_some_and(|n| {
                    !limits.list_node_exceeds(n.bytes() + v.len() + SIZE_ESTIMATE_OVERHEAD, n.len() + 1)
                });
                match (node, fits, end) {
                    (Some(n), true, End::Head) => n.push_front(v),
                    (Some(n), true, End::Tail) => n.push_back(v),
                    (_, _, End::Head) => q.nodes.push_front(Listpack::from_elems([v])),
                    (_, _, End::Tail) => q.nodes.push_back(Listpack::from_elems([v])),
                }
                q.len += 1;
            }
        }
    }

    /// Removes an element from one end.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        match self {
            List::Pack(lp) => match end {
                End::Head => lp.pop_front(),
                End::Tail => lp.pop_back(),
            },
            List::Quick(q) => {
                let (v, empty) = {
                    let n = match end {
                        End::Head => q.nodes.front_mut()?,
                        End::Tail => q.nodes.back_mut()?,
                    };
                    let v = match end {
                        End::Head => n.pop_front(),
                        End::Tail => n.pop_back(),
                    };
                    (v, n.is_empty())
                };
                if empty {
                    match end {
                        End::Head => q.nodes.pop_front(),
                        End::Tail => q.nodes.pop_back(),
                    };
                }
                q.len -= 1;
                v
            }
        }
    }

    /// Position of the element at `index` (negative: from the tail), if in range.
    pub fn locate(&self, index: i64) -> Option<Pos> {
        let len = self.len() as i64;
        let i = if index < 0 { len + index } else { index };
        if i < 0 || i >= len {
            return None;
        }
        let mut i = i as usize;
        if i < self.len() / 2 || self.node_count() == 1 {
            for (ni, n) in self.nodes().enumerate() {
                let nl = n.len();
                if i < nl {
                    return n.seek(i as i64).map(|p| (ni, p));
                }
                i -= nl;
            }
            None
        } else {
            let mut back = self.len() - 1 - i;
            let count = self.node_count();
            for (k, n) in self.nodes().rev().enumerate() {
                let nl = n.len();
                if back < nl {
                    return n.seek(-(back as i64) - 1).map(|p| (count - 1 - k, p));
                }
                back -= nl;
            }
            None
        }
    }

    /// The element at a position.
    #[inline]
    pub fn at(&self, pos: Pos) -> LpValue<'_> {
        self.node(pos.0).get(pos.1)
    }

    /// The position after `pos`.
    #[inline]
    pub fn next_pos(&self, pos: Pos) -> Option<Pos> {
        if let Some(p) = self.node(pos.0).next(pos.1) {
            return Some((pos.0, p));
        }
        (pos.0 + 1..self.node_count()).find_map(|i| self.node(i).first().map(|p| (i, p)))
    }

    /// The position before `pos`.
    #[inline]
    pub fn prev_pos(&self, pos: Pos) -> Option<Pos> {
        if let Some(p) = self.node(pos.0).prev(pos.1) {
            return Some((pos.0, p));
        }
        (0..pos.0).rev().find_map(|i| self.node(i).last().map(|p| (i, p)))
    }

    /// The first element's position.
    pub fn first_pos(&self) -> Option<Pos> {
        self.locate(0)
    }

    /// The last element's position.
    pub fn last_pos(&self) -> Option<Pos> {
        self.locate(-1)
    }

    /// Elements from `pos` on, forwards or backwards.
    pub fn walk(&self, pos: Option<Pos>, forward: bool) -> Walk<'_> {
        Walk { list: self, pos, forward }
    }

    /// Every element, head to tail.
    pub fn iter(&self) -> impl Iterator<Item = LpValue<'_>> + '_ {
        self.nodes().flat_map(|n| n.iter())
    }

    /// Replaces the element at `index`; false if out of range. Call `grow_check` first.
    pub fn set(&mut self, index: i64, v: &[u8], limits: &Limits) -> bool {
        let Some((ni, p)) = self.locate(index) else { return false };
        self.node_mut(ni).replace(p, v);
        self.split_if_needed(ni, limits);
        true
    }

    /// Inserts `v` before (or after) the element at `pos`. Call `grow_check` first.
    pub fn insert(&mut self, pos: Pos, after: bool, v: &[u8], limits: &Limits) {
        let (ni, p) = pos;
        let node = self.node_mut(ni);
        let at = if after { node.next(p).unwrap_or_else(|| node.end()) } else { p };
        node.insert_at(at, v);
        self.add_len(1);
        self.split_if_needed(ni, limits);
    }

    /// Splits quicklist node `ni` in halves while it is over the limit.
    fn split_if_needed(&mut self, ni: usize, limits: &Limits) {
        let List::Quick(q) = self else { return };
        let n = &mut q.nodes[ni];
        if n.len() < 2 || !limits.list_node_exceeds(n.bytes(), n.len()) {
            return;
        }
        let tail = n.split_off(n.len() / 2);
        q.nodes.insert(ni + 1, tail);
        self.split_if_needed(ni + 1, limits);
        self.split_if_needed(ni, limits);
    }

    /// Deletes the element at `pos`; returns the position of the element that followed.
    pub fn delete_at(&mut self, pos: Pos) -> Option<Pos> {
        let (ni, p) = pos;
        let next = self.node_mut(ni).delete(p);
        self.add_len(-1);
        if let List::Quick(q) = self {
            if q.nodes[ni].is_empty() {
                q.nodes.remove(ni);
                return (ni..q.nodes.len()).find_map(|i| q.nodes[i].first().map(|p| (i, p)));
            }
        }
        match next {
            Some(p) => Some((ni, p)),
            None => (ni + 1..self.node_count()).find_map(|i| self.node(i).first().map(|p| (i, p))),
        }
    }

    /// Deletes `count` elements starting at index `start` (both in range).
    pub fn delete_range(&mut self, start: usize, count: usize) {
        if count == 0 {
            return;
        }
        match self {
            List::Pack(lp) => {
                if let Some(p) = lp.seek(start as i64) {
                    lp.delete_n(p, count);
                }
            }
            List::Quick(q) => {
                let mut skip = start;
                let mut left = count;
                let mut i = 0;
                while left > 0 && i < q.nodes.len() {
                    let nl = q.nodes[i].len();
                    if skip >= nl {
                        skip -= nl;
                        i += 1;
                        continue;
                    }
                    let take = left.min(nl - skip);
                    if skip == 0 && take == nl {
                        q.nodes.remove(i);
                    } else {
                        let n = &mut q.nodes[i];
                        if let Some(p) = n.seek(skip as i64) {
                            n.delete_n(p, take);
                        }
                        i += 1;
                    }
                    q.len -= take;
                    left -= take;
                    skip = 0;
                }
            }
        }
    }
}

/// A walk along a list from a position.
pub struct Walk<'a> {
    list: &'a List,
    pos: Option<Pos>,
    forward: bool,
}

impl<'a> Iterator for Walk<'a> {
    type Item = (Pos, LpValue<'a>);
    #[inline]
    fn next(&mut self) -> Option<(Pos, LpValue<'a>)> {
        let pos = self.pos?;
        self.pos = if self.forward { self.list.next_pos(pos) } else { self.list.prev_pos(pos) };
        Some((pos, self.list.at(pos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn elems(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(|v| v.to_vec()).collect()
    }

    fn small_nodes() -> Limits {
        Limits { list_max_listpack_size: 4, ..Limits::default() }
    }

    #[test]
    fn converts_at_the_node_limit_and_back() {
        let limits = small_nodes();
        let mut l = List::new();
        for i in 0..4 {
            l.grow_check(1, 1, &limits);
            l.push(End::Tail, format!("{i}").as_bytes(), &limits);
        }
        assert_eq!(l.encoding(), "listpack");
        l.grow_check(1, 1, &limits);
        l.push(End::Tail, b"x", &limits);
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.nodes().count(), 2);
        for _ in 0..3 {
            l.pop(End::Head);
            l.shrink_check(&limits);
        }
        assert_eq!(l.encoding(), "quicklist", "one node, but more than half the limit");
        l.pop(End::Head);
        l.shrink_check(&limits);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(elems(&l), vec![b"x".to_vec()]);
    }

    #[test]
    fn byte_limits_fill_nodes() {
        let limits = Limits::default();
        let item = [b'a'; 10];
        let mut l = List::new();
        for _ in 0..10_000 {
            l.grow_check(item.len(), 1, &limits);
            l.push(End::Tail, &item, &limits);
        }
        assert_eq!(l.encoding(), "quicklist");
        // 8 KiB nodes of 12-byte entries: about 680 per node.
        let nodes = l.nodes().count();
        assert!((14..=16).contains(&nodes), "{nodes} nodes");
        assert!(l.nodes().all(|n| n.bytes() <= 8192));
    }

    proptest! {
        #[test]
        fn behaves_like_a_deque(
            fill in prop_oneof![Just(-1i64), Just(1), Just(3), Just(5)],
            ops in proptest::collection::vec((0u8..8, any::<u16>(), "[a-c]{0,3}|[0-9]{1,4}|y{90,200}"), 0..120),
        ) {
            let limits = Limits { list_max_listpack_size: fill, ..Limits::default() };
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for (op, at, s) in ops {
                let s = s.into_bytes();
                let idx = |n: usize| at as usize % n.max(1);
                match op {
                    0 | 1 => {
                        l.grow_check(s.len(), 1, &limits);
                        if op == 0 { l.push(End::Head, &s, &limits); m.push_front(s); }
                        else { l.push(End::Tail, &s, &limits); m.push_back(s); }
                    }
                    2 => {
                        prop_assert_eq!(l.pop(End::Head), m.pop_front());
                        l.shrink_check(&limits);
                    }
                    3 => {
                        prop_assert_eq!(l.pop(End::Tail), m.pop_back());
                        l.shrink_check(&limits);
                    }
                    4 if !m.is_empty() => {
                        let i = idx(m.len());
                        l.grow_check(s.len(), 1, &limits);
                        prop_assert!(l.set(i as i64, &s, &limits));
                        m[i] = s;
                    }
                    5 if !m.is_empty() => {
                        let i = idx(m.len());
                        let after = at % 2 == 0;
                        l.grow_check(s.len(), 1, &limits);
                        let pos = l.locate(i as i64).unwrap();
                        l.insert(pos, after, &s, &limits);
                        m.insert(if after { i + 1 } else { i }, s);
                    }
                    6 if !m.is_empty() => {
                        let i = idx(m.len());
                        let n = (at as usize / 5) % 4;
                        let n = n.min(m.len() - i);
                        l.delete_range(i, n);
                        m.drain(i..i + n);
                        l.shrink_check(&limits);
                    }
                    7 if !m.is_empty() => {
                        let i = idx(m.len());
                        let pos = l.locate(-(i as i64) - 1).unwrap();
                        prop_assert_eq!(l.at(pos).to_vec(), m[m.len() - 1 - i].clone());
                        let next = l.delete_at(pos);
                        m.remove(m.len() - 1 - i);
                        let want = m.get(m.len() - i).cloned();
                        prop_assert_eq!(next.map(|p| l.at(p).to_vec()), want);
                        l.shrink_check(&limits);
                    }
                    _ => {}
                }
                prop_assert_eq!(l.len(), m.len());
                prop_assert_eq!(elems(&l), m.iter().cloned().collect::<Vec<_>>());
                let back: Vec<Vec<u8>> = l.walk(l.last_pos(), false).map(|(_, v)| v.to_vec()).collect();
                prop_assert_eq!(back, m.iter().rev().cloned().collect::<Vec<_>>());
                if let List::Quick(q) = &l {
                    prop_assert!(q.nodes.iter().all(|n| !n.is_empty()));
                    prop_assert!(q.nodes.iter().all(|n| n.len() == 1 || !limits.list_node_exceeds(n.bytes(), n.len())));
                }
            }
        }
    }
}
