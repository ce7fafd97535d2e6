//! The set type: an intset while every member is an integer, a listpack while small, a hash
//! table beyond (Redis 7.2's `t_set.c` encodings and conversions).
//!
//! Random picks come in two kinds. Reads (`SRANDMEMBER`) may take whatever is cheapest. A
//! write that removes a random member (`SPOP`) runs on every node of a cluster from the same
//! log entry and seed, so its choice must follow from the set's contents alone, whatever the
//! encoding or the table's history on that node: [`Set::pick_stable`] takes the member whose
//! bit-reversed hash comes first at or after a random point (see `Dict::successor`).

use crate::dict::{collection_hasher, Dict, KeyHasher};
use crate::intset::Intset;
use crate::limits::Limits;
use crate::listpack::{Listpack, LpValue};
use crate::num;
use crate::Rng;

/// A set value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Set {
    /// Sorted integers.
    Ints(Intset),
    /// Members in insertion order.
    Pack(Listpack),
    /// Members as keys.
    Table(Box<Dict<()>>),
}

impl Default for Set {
    fn default() -> Self {
        Set::Ints(Intset::new())
    }
}

/// A member as an integer if it is a canonical one.
#[inline]
fn as_int(m: &[u8]) -> Option<i64> {
    if m.len() <= 20 {
        num::parse_i64(m)
    } else {
        None
    }
}

/// Digits of an integer (for the listpack size estimate of an intset's members).
fn digits(v: i64) -> usize {
    crate::value::itoa_buf(v).len()
}

/// The order a stable pick uses.
#[inline]
fn order(h: &KeyHasher, m: &[u8]) -> u64 {
    h.hash(m).reverse_bits()
}

impl Set {
    /// An empty set in the encoding Redis would pick for a first member `first` and about
    /// `size_hint` members (`setTypeCreate`).
    pub fn new_for(first: &[u8], size_hint: usize, limits: &Limits) -> Set {
        if as_int(first).is_some() && size_hint <= limits.set_max_intset_entries {
            Set::Ints(Intset::new())
        } else if size_hint <= limits.set_max_listpack_entries {
            Set::Pack(Listpack::new())
        } else {
            Set::Table(Box::new(Dict::new(collection_hasher())))
        }
    }

    /// Converts to a table before adding about `size_hint` members that would exceed the
    /// current encoding's limit anyway (`setTypeMaybeConvert`).
    pub fn maybe_convert(&mut self, size_hint: usize, limits: &Limits) {
        let over = match self {
            Set::Ints(_) => size_hint > limits.set_max_intset_entries,
            Set::Pack(_) => size_hint > limits.set_max_listpack_entries,
            Set::Table(_) => false,
        };
        if over {
            self.convert_to_table();
        }
    }

    /// Number of members.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Set::Ints(s) => s.len(),
            Set::Pack(lp) => lp.len(),
            Set::Table(d) => d.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's encoding name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Pack(_) => "listpack",
            Set::Table(_) => "hashtable",
        }
    }

    /// True if `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => as_int(m).is_some_and(|v| s.contains(v)),
            Set::Pack(lp) => lp.find(m, 1).is_some(),
            Set::Table(d) => d.get(d.hasher().hash(m), m).is_some(),
        }
    }

    fn convert_to_table(&mut self) {
        let mut d = Dict::new(collection_hasher());
        self.for_each(|m| {
            m.with_bytes(|b| {
                let h = d.hasher().hash(b);
                d.insert_new(h, b, ());
            })
        });
        *self = Set::Table(Box::new(d));
    }

    /// Adds a member; true if it was new (`setTypeAdd`, with its conversions).
    pub fn add(&mut self, m: &[u8], limits: &Limits) -> bool {
        match self {
            Set::Ints(s) => {
                if let Some(v) = as_int(m) {
                    if !s.insert(v) {
                        return false;
                    }
                    if s.len() > limits.set_max_intset_entries {
                        self.convert_to_table();
                    }
                    return true;
                }
                // A non-integer: a listpack if the members so far and this one fit it.
                let widest = s.min_max().map_or(0, |(lo, hi)| digits(lo).max(digits(hi)));
                if s.len() < limits.set_max_listpack_entries
                    && m.len() <= limits.set_max_listpack_value
                    && widest <= limits.set_max_listpack_value
                {
                    let mut lp = Listpack::new();
                    for v in s.iter() {
                        lp.push_back_int(v);
                    }
                    lp.push_back(m);
                    *self = Set::Pack(lp);
                } else {
                    self.convert_to_table();
                    self.add(m, limits);
                }
                true
            }
            Set::Pack(lp) => {
                if lp.find(m, 1).is_some() {
                    return false;
                }
                if lp.len() < limits.set_max_listpack_entries && m.len() <= limits.set_max_listpack_value {
                    lp.push_back(m);
                } else {
                    self.convert_to_table();
                    self.add(m, limits);
                }
                true
            }
            Set::Table(d) => {
                let h = d.hasher().hash(m);
                if d.get(h, m).is_some() {
                    return false;
                }
                d.insert_new(h, m, ());
                true
            }
        }
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => as_int(m).is_some_and(|v| s.remove(v)),
            Set::Pack(lp) => match lp.find(m, 1) {
                Some(p) => {
                    lp.delete(p);
                    true
                }
                None => false,
            },
            Set::Table(d) => {
                let removed = d.remove(d.hasher().hash(m), m).is_some();
                if removed {
                    d.shrink_if_needed();
                }
                removed
            }
        }
    }

    /// Calls `f` with every member (intset: ascending; listpack: insertion order).
    pub fn for_each(&self, mut f: impl FnMut(LpValue<'_>)) {
        match self {
            Set::Ints(s) => s.iter().for_each(|v| f(LpValue::Int(v))),
            Set::Pack(lp) => lp.iter().for_each(f),
            Set::Table(d) => d.for_each(|k, _| f(LpValue::Str(k))),
        }
    }

    /// Every member, copied.
    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m| out.push(m.to_vec()));
        out
    }

    /// The member a write's random pick takes for the random point `r`: the same on every
    /// node holding the same members, whatever their encoding or history.
    pub fn pick_stable(&mut self, r: u64) -> Option<Vec<u8>> {
        if let Set::Table(d) = self {
            return d.successor(r).map(|(k, _)| k.to_vec());
        }
        let h = collection_hasher();
        let mut best: Option<(u64, Vec<u8>)> = None;
        self.for_each(|m| {
            m.with_bytes(|b| {
                let d = order(&h, b).wrapping_sub(r);
                if best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                    best = Some((d, b.to_vec()));
                }
            })
        });
        best.map(|(_, m)| m)
    }

    /// A random member for a read (cheapest pick for the encoding).
    pub fn pick_fast(&self, rng: &mut Rng) -> Option<Vec<u8>> {
        match self {
            Set::Ints(s) => (!s.is_empty()).then(|| s.get(rng.below(s.len() as u64) as usize).to_string().into_bytes()),
            Set::Pack(lp) => {
                let n = lp.len();
                (n > 0).then(|| lp.get(lp.seek(rng.below(n as u64) as i64).expect("in range")).to_vec())
            }
            Set::Table(d) => d.random_entry(|| rng.next_u64()).map(|(k, _)| k.to_vec()),
        }
    }

    /// One `SSCAN` step: small encodings return everything and cursor 0.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(LpValue<'_>)) -> u64 {
        match self {
            Set::Table(d) => d.scan(cursor, |k, _| f(LpValue::Str(k))),
            _ => {
                self.for_each(f);
                0
            }
        }
    }

    /// Bytes held (for memory accounting).
    pub fn allocated(&self) -> usize {
        match self {
            Set::Ints(s) => s.allocated(),
            Set::Pack(lp) => lp.allocated(),
            Set::Table(d) => d.len() * 32 + d.buckets() * 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn build(members: &[Vec<u8>], limits: &Limits) -> Set {
        let mut s = Set::new_for(&members[0], 1, limits);
        for m in members {
            s.add(m, limits);
        }
        s
    }

    #[test]
    fn encodings_convert_as_in_redis_7_2() {
        let limits = Limits { set_max_intset_entries: 4, set_max_listpack_entries: 6, ..Limits::default() };
        let mut s = Set::new_for(b"1", 1, &limits);
        for v in ["1", "2", "3", "4"] {
            assert!(s.add(v.as_bytes(), &limits));
        }
        assert_eq!(s.encoding(), "intset");
        assert!(!s.add(b"4", &limits));
        // A non-integer member while small: a listpack keeping the integers.
        s.add(b"x", &limits);
        assert_eq!(s.encoding(), "listpack");
        s.add(b"y", &limits);
        assert_eq!(s.encoding(), "listpack");
        s.add(b"z", &limits);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 7);
        // Too many integers: straight to a table.
        let mut i = Set::new_for(b"1", 1, &limits);
        for v in 0..5 {
            i.add(v.to_string().as_bytes(), &limits);
        }
        assert_eq!(i.encoding(), "hashtable");
        // A long member: a table.
        let mut l = Set::new_for(b"a", 1, &limits);
        l.add(&[b'a'; 65], &limits);
        assert_eq!(l.encoding(), "hashtable");
    }

    /// A table that grew to 2000 members and lost most, and one built from the survivors in
    /// reverse order (as a node loading a snapshot would), pick the same members.
    #[test]
    fn big_tables_grown_and_shrunk_or_built_fresh_pick_alike() {
        let l = Limits::default();
        let mut a = Set::new_for(b"m0", 500, &l);
        for i in 0..2000 {
            a.add(format!("m{i}").as_bytes(), &l);
        }
        for i in 0..2000 {
            if i % 4 != 0 {
                a.remove(format!("m{i}").as_bytes());
            }
        }
        let mut b = Set::new_for(b"m0", 500, &l);
        for i in (0..2000).rev().filter(|i| i % 4 == 0) {
            b.add(format!("m{i}").as_bytes(), &l);
        }
        assert_eq!(a.len(), b.len());
        let mut rng = crate::Rng::new(9);
        for _ in 0..1000 {
            let r = rng.next_u64();
            assert_eq!(a.pick_stable(r), b.pick_stable(r));
        }
    }

    proptest! {
        #[test]
        fn stable_picks_agree_across_encodings(
            members in proptest::collection::btree_set("[a-c]{1,3}|-?[0-9]{1,5}", 1..60),
            r in any::<u64>(),
        ) {
            let members: Vec<Vec<u8>> = members.into_iter().map(String::into_bytes).collect();
            let mut reversed = members.clone();
            reversed.reverse();
            let mut small = build(&members, &Limits::default());
            let mut table = build(&reversed, &Limits { set_max_intset_entries: 0, set_max_listpack_entries: 0, ..Limits::default() });
            prop_assert_eq!(table.encoding(), "hashtable");
            prop_assert_eq!(small.pick_stable(r), table.pick_stable(r));
            let want: BTreeSet<Vec<u8>> = members.iter().cloned().collect();
            prop_assert_eq!(small.members().into_iter().collect::<BTreeSet<_>>(), want.clone());
            prop_assert_eq!(table.members().into_iter().collect::<BTreeSet<_>>(), want);
        }
    }
}
