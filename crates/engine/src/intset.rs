//! Redis's intset: a sorted array of integers, all stored in the narrowest width (16, 32 or 64
//! bits) that fits the widest member, little-endian, behind an 8-byte header
//! (`<width u32> <count u32>`).
//!
//! Kept in Redis's exact bytes for the same reason as the listpack: a set of small integers is
//! common (ids, flags), costs 2 bytes per member here, and goes to RDB and `DUMP` as is.

/// Why a buffer is not an intset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid;

/// A sorted set of integers in Redis's intset layout (always well formed). A boxed slice, not
/// a `Vec`: two words instead of three, which lets a set value (intset, listpack or table) stay
/// as small as the other values; every change reallocates exactly, as Redis's does.
#[derive(Clone, PartialEq, Eq)]
pub struct Intset {
    buf: Box<[u8]>,
}

impl std::fmt::Debug for Intset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Default for Intset {
    fn default() -> Self {
        Intset::new()
    }
}

/// The width in bytes needed for `v`.
fn width_of(v: i64) -> usize {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

impl Intset {
    /// An empty intset (16-bit).
    pub fn new() -> Intset {
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(&2u32.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        Intset { buf: buf.into_boxed_slice() }
    }

    /// Adopts bytes from outside after checking the header, the length and that members are
    /// strictly ascending.
    pub fn from_vec(buf: Vec<u8>) -> Result<Intset, Invalid> {
        if buf.len() < 8 {
            return Err(Invalid);
        }
        let width = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
        let count = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
        if !matches!(width, 2 | 4 | 8) || count.checked_mul(width).and_then(|b| b.checked_add(8)) != Some(buf.len()) {
            return Err(Invalid);
        }
        let set = Intset { buf: buf.into_boxed_slice() };
        let mut prev: Option<i64> = None;
        for v in set.iter() {
            if prev.is_some_and(|p| p >= v) {
                return Err(Invalid);
            }
            prev = Some(v);
        }
        Ok(set)
    }

    /// The buffer, exactly as Redis holds it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    #[inline]
    fn width(&self) -> usize {
        u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize
    }

    /// Number of members.
    #[inline]
    pub fn len(&self) -> usize {
        u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The member at `i` (ascending order).
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        let w = self.width();
        let at = 8 + i * w;
        let b = &self.buf[at..at + w];
        match w {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_le_bytes(b.try_into().unwrap()),
        }
    }

    /// Members in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = i64> + ExactSizeIterator + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Where `v` is, or where it would go.
    fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// True if `v` is a member.
    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    fn set_len(&mut self, n: usize) {
        self.buf[4..8].copy_from_slice(&(n as u32).to_le_bytes());
    }

    fn write_at(&mut self, i: usize, v: i64) {
        let w = self.width();
        let at = 8 + i * w;
        self.buf[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
    }

    /// Rewrites every member at a wider width.
    fn upgrade(&mut self, width: usize) {
        let vals: Vec<i64> = self.iter().collect();
        let mut buf = Vec::with_capacity(8 + vals.len() * width);
        buf.extend_from_slice(&(width as u32).to_le_bytes());
        buf.extend_from_slice(&(vals.len() as u32).to_le_bytes());
        for v in vals {
            buf.extend_from_slice(&v.to_le_bytes()[..width]);
        }
        self.buf = buf.into_boxed_slice();
    }

    /// Replaces `at..at + remove` of the buffer with `insert` zero bytes.
    fn resize_at(&mut self, at: usize, remove: usize, insert: usize) {
        let mut buf = std::mem::take(&mut self.buf).into_vec();
        buf.splice(at..at + remove, std::iter::repeat_n(0u8, insert));
        self.buf = buf.into_boxed_slice();
    }

    /// Adds `v`; false if it was there.
    pub fn insert(&mut self, v: i64) -> bool {
        if width_of(v) > self.width() {
            self.upgrade(width_of(v));
        }
        let Err(at) = self.search(v) else { return false };
        let w = self.width();
        let n = self.len();
        self.resize_at(8 + at * w, 0, w);
        self.set_len(n + 1);
        self.write_at(at, v);
        true
    }

    /// Removes `v`; false if it was not there. The width never narrows, as in Redis.
    pub fn remove(&mut self, v: i64) -> bool {
        let Ok(at) = self.search(v) else { return false };
        let w = self.width();
        let n = self.len();
        self.resize_at(8 + at * w, w, 0);
        self.set_len(n - 1);
        true
    }

    /// The smallest and largest members.
    pub fn min_max(&self) -> Option<(i64, i64)> {
        (!self.is_empty()).then(|| (self.get(0), self.get(self.len() - 1)))
    }

    /// Capacity (for memory accounting).
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn bytes_match_redis() {
        // `SADD s 1 2 3` in redis-server 7.0: DUMP carries this intset.
        let mut s = Intset::new();
        for v in [3, 1, 2] {
            s.insert(v);
        }
        assert_eq!(s.as_bytes(), b"\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00");
        s.insert(70000);
        assert_eq!(&s.as_bytes()[..8], b"\x04\x00\x00\x00\x04\x00\x00\x00");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1, 2, 3, 70000]);
    }

    #[test]
    fn validation() {
        let mut s = Intset::new();
        s.insert(5);
        s.insert(-5);
        assert_eq!(Intset::from_vec(s.as_bytes().to_vec()), Ok(s.clone()));
        let mut unsorted = s.as_bytes().to_vec();
        unsorted.swap(8, 10);
        unsorted.swap(9, 11);
        assert!(Intset::from_vec(unsorted).is_err());
        assert!(Intset::from_vec(b"\x03\x00\x00\x00\x00\x00\x00\x00".to_vec()).is_err());
        assert!(Intset::from_vec(b"\x02\x00\x00\x00\x09\x00\x00\x00".to_vec()).is_err());
    }

    proptest! {
        #[test]
        fn behaves_like_a_sorted_set(ops in proptest::collection::vec((any::<bool>(), prop_oneof![-40i64..40, any::<i64>(), -70000i64..70000]), 0..80)) {
            let mut s = Intset::new();
            let mut m = BTreeSet::new();
            for (add, v) in ops {
                if add {
                    prop_assert_eq!(s.insert(v), m.insert(v));
                } else {
                    prop_assert_eq!(s.remove(v), m.remove(&v));
                }
                prop_assert_eq!(s.iter().collect::<Vec<_>>(), m.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(Intset::from_vec(s.as_bytes().to_vec()), Ok(s.clone()));
            }
        }

        #[test]
        fn random_buffers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(s) = Intset::from_vec(b) {
                prop_assert_eq!(s.iter().count(), s.len());
            }
        }
    }
}
