//! Redis's listpack: a sequence of strings and integers stored back to back in one buffer.
//!
//! Why hand-written, and why Redis's exact bytes: small lists, hashes, sets and sorted sets are
//! most keys of a typical dataset, and one contiguous buffer per value (instead of a node per
//! element) is what keeps their memory at or below Redis's. Using the very format Redis uses
//! means an RDB or `DUMP` of a small collection is this buffer copied out, and a listpack read
//! from a Redis dump is adopted after validation, with no conversion either way.
//!
//! Layout (little-endian): `<total-bytes u32> <count u16> <entry>... <0xFF>`. Each entry is
//! `<encoding+data> <backlen>`, where `backlen` is the length of `encoding+data` written so it
//! can be read backwards (7 bits per byte; every byte but the first written has its high bit
//! set). Strings that are canonical integers (`string2ll`) are stored as integers in the
//! smallest of the 7-bit unsigned, 13/16/24/32/64-bit signed forms. The count saturates at
//! 65535 ("unknown"), after which the length is found by walking.
//!
//! A `Listpack` is always well formed: buffers from outside go through [`Listpack::from_vec`],
//! which validates every entry, so the accessors may index without re-checking.

use crate::num;

const HEADER: usize = 6;
const EOF: u8 = 0xFF;
const COUNT_UNKNOWN: u16 = u16::MAX;

/// One element as stored: an integer or a byte string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpValue<'a> {
    /// Stored in one of the integer encodings.
    Int(i64),
    /// Stored as a string.
    Str(&'a [u8]),
}

impl LpValue<'_> {
    /// The element's bytes (integers formatted as Redis formats them).
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            LpValue::Int(i) => i.to_string().into_bytes(),
            LpValue::Str(s) => s.to_vec(),
        }
    }

    /// Calls `f` with the element's bytes without allocating.
    #[inline]
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            LpValue::Int(i) => {
                let mut buf = crate::value::itoa_buf(*i);
                f(buf.as_slice())
            }
            LpValue::Str(s) => f(s),
        }
    }

    /// Length of the element's bytes.
    pub fn len(&self) -> usize {
        match self {
            LpValue::Int(i) => crate::value::itoa_buf(*i).len(),
            LpValue::Str(s) => s.len(),
        }
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element as an integer if it is one (stored as such, or a string that parses
    /// strictly, which a listpack never holds as a string but a validated foreign one may).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            LpValue::Int(i) => Some(*i),
            LpValue::Str(s) => num::parse_i64(s),
        }
    }
}

/// A string searched for among elements: parsed once as an integer, so that elements stored
/// as integers compare without formatting each one (`lpFind`'s approach).
#[derive(Clone, Copy, Debug)]
pub struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    /// A needle for `s`.
    pub fn new(s: &'a [u8]) -> Needle<'a> {
        Needle { bytes: s, int: if s.len() <= 20 { num::parse_i64(s) } else { None } }
    }

    /// True if `v` equals the needle byte for byte.
    #[inline]
    pub fn matches(&self, v: LpValue<'_>) -> bool {
        match v {
            LpValue::Str(s) => s == self.bytes,
            LpValue::Int(i) => self.int == Some(i),
        }
    }
}

/// Why a buffer is not a listpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid;

/// A listpack buffer (always well formed).
#[derive(Clone, PartialEq, Eq)]
pub struct Listpack {
    buf: Vec<u8>,
}

impl std::fmt::Debug for Listpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Default for Listpack {
    fn default() -> Self {
        Listpack::new()
    }
}

/// Bytes the backlen of an entry of `l` bytes takes.
#[inline]
fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Reads a backlen that ends just before `end`: the entry length and the backlen's size.
fn read_backlen(buf: &[u8], end: usize) -> Option<(usize, usize)> {
    let mut val = 0usize;
    let mut shift = 0;
    let mut p = end;
    loop {
        if p == 0 || shift > 28 {
            return None;
        }
        p -= 1;
        let b = buf[p];
        val |= usize::from(b & 127) << shift;
        if b & 128 == 0 {
            return Some((val, end - p));
        }
        shift += 7;
    }
}

/// One entry's encoding, built on the stack around a borrowed payload: inserting an element
/// writes it straight into the listpack's buffer, with no temporary allocation.
struct Encoded<'a> {
    /// The encoding byte(s), then an integer's data.
    head: [u8; 9],
    head_len: u8,
    /// A string's bytes (empty for integers).
    payload: &'a [u8],
    backlen: [u8; 5],
    backlen_len: u8,
}

impl<'a> Encoded<'a> {
    /// The encoding of a string element (as an integer when it is a canonical one).
    #[inline]
    fn elem(s: &'a [u8]) -> Encoded<'a> {
        if s.len() <= 20 {
            if let Some(v) = num::parse_i64(s) {
                return Encoded::int(v);
            }
        }
        let n = s.len();
        let mut head = [0u8; 9];
        let head_len = if n < 64 {
            head[0] = 0x80 | n as u8;
            1
        } else if n < 4096 {
            head[0] = 0xE0 | (n >> 8) as u8;
            head[1] = n as u8;
            2
        } else {
            head[0] = 0xF0;
            head[1..5].copy_from_slice(&(n as u32).to_le_bytes());
            5
        };
        Encoded::finish(head, head_len, s)
    }

    /// The encoding of an integer in the smallest form.
    #[inline]
    fn int(v: i64) -> Encoded<'static> {
        let mut head = [0u8; 9];
        let head_len = if (0..=127).contains(&v) {
            head[0] = v as u8;
            1
        } else if (-4096..=4095).contains(&v) {
            let uv = (v as u64) & 0x1FFF;
            head[0] = 0xC0 | (uv >> 8) as u8;
            head[1] = uv as u8;
            2
        } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
            head[0] = 0xF1;
            head[1..3].copy_from_slice(&(v as i16).to_le_bytes());
            3
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            head[0] = 0xF2;
            head[1..4].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
            4
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            head[0] = 0xF3;
            head[1..5].copy_from_slice(&(v as i32).to_le_bytes());
            5
        } else {
            head[0] = 0xF4;
            head[1..9].copy_from_slice(&v.to_le_bytes());
            9
        };
        Encoded::finish(head, head_len, &[])
    }

    /// Adds the backlen of `encoding+data`. The first byte written holds the highest bits and
    /// has its high bit clear; the others carry the continuation bit, so reading backwards
    /// from the last byte stops at the first.
    #[inline]
    fn finish(head: [u8; 9], head_len: usize, payload: &'a [u8]) -> Encoded<'a> {
        let l = head_len + payload.len();
        let n = backlen_size(l);
        let mut backlen = [0u8; 5];
        for (j, i) in (0..n).rev().enumerate() {
            let part = ((l >> (7 * i)) & 127) as u8;
            backlen[j] = if i == n - 1 { part } else { part | 128 };
        }
        Encoded { head, head_len: head_len as u8, payload, backlen, backlen_len: n as u8 }
    }

    /// Bytes of the whole entry, backlen included.
    #[inline]
    fn len(&self) -> usize {
        usize::from(self.head_len) + self.payload.len() + usize::from(self.backlen_len)
    }

    /// Writes the entry into `out`, which is exactly [`Encoded::len`] bytes.
    #[inline]
    fn write(&self, out: &mut [u8]) {
        let h = usize::from(self.head_len);
        let p = h + self.payload.len();
        out[..h].copy_from_slice(&self.head[..h]);
        out[h..p].copy_from_slice(self.payload);
        out[p..].copy_from_slice(&self.backlen[..usize::from(self.backlen_len)]);
    }
}

/// The size the allocator really hands out for a request of `n` bytes (jemalloc's size
/// classes: multiples of 16 up to 128, then four classes per doubling). Growing a buffer to its
/// class costs no memory the allocator would not spend anyway, and saves a `realloc` on each
/// of the next few inserts (Redis's `lpInsert` checks `lp_malloc_size` for the same reason).
#[inline]
fn size_class(n: usize) -> usize {
    if n <= 16 {
        return n.next_power_of_two().max(8);
    }
    let lg = usize::BITS - 1 - (n - 1).leading_zeros();
    let step = (1usize << (lg - 2)).max(16);
    n.div_ceil(step) * step
}

/// The encoded size of `s` as an entry, backlen included.
pub fn entry_size(s: &[u8]) -> usize {
    Encoded::elem(s).len()
}

/// Decodes the entry at `p` (bounds-checked): its value and the length of `encoding+data`.
#[inline]
fn decode(buf: &[u8], p: usize) -> Option<(LpValue<'_>, usize)> {
    let b = *buf.get(p)?;
    let byte = |i: usize| buf.get(p + i).copied();
    let le = |n: usize| -> Option<u64> {
        let s = buf.get(p + 1..p + 1 + n)?;
        Some(s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let string = |head: usize, n: usize| -> Option<(LpValue<'_>, usize)> {
        let s = buf.get(p + head..(p + head).checked_add(n)?)?;
        Some((LpValue::Str(s), head + n))
    };
    if b & 0x80 == 0 {
        return Some((LpValue::Int(i64::from(b & 0x7F)), 1));
    }
    if b & 0xC0 == 0x80 {
        return string(1, usize::from(b & 0x3F));
    }
    if b & 0xE0 == 0xC0 {
        let uv = (u64::from(b & 0x1F) << 8) | u64::from(byte(1)?);
        let v = if uv >= 1 << 12 { uv as i64 - (1 << 13) } else { uv as i64 };
        return Some((LpValue::Int(v), 2));
    }
    if b & 0xF0 == 0xE0 {
        let n = (usize::from(b & 0x0F) << 8) | usize::from(byte(1)?);
        return string(2, n);
    }
    match b {
        0xF0 => string(5, le(4)? as usize),
        0xF1 => Some((LpValue::Int(le(2)? as u16 as i16 as i64), 3)),
        0xF2 => {
            let uv = le(3)? as i64;
            Some((LpValue::Int((uv << 40) >> 40), 4))
        }
        0xF3 => Some((LpValue::Int(le(4)? as u32 as i32 as i64), 5)),
        0xF4 => Some((LpValue::Int(le(8)? as i64), 9)),
        _ => None,
    }
}

impl Listpack {
    /// An empty listpack.
    pub fn new() -> Listpack {
        let mut buf = Vec::with_capacity(HEADER + 1);
        buf.extend_from_slice(&((HEADER + 1) as u32).to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.push(EOF);
        Listpack { buf }
    }

    /// A listpack of the given elements.
    pub fn from_elems<'a>(elems: impl IntoIterator<Item = &'a [u8]>) -> Listpack {
        let mut lp = Listpack::new();
        for e in elems {
            lp.push_back(e);
        }
        lp
    }

    /// Adopts a buffer from outside (an RDB file, a `RESTORE` payload) after checking every
    /// entry, the header's byte total and count, and the terminator.
    pub fn from_vec(buf: Vec<u8>) -> Result<Listpack, Invalid> {
        if buf.len() < HEADER + 1 {
            return Err(Invalid);
        }
        let total = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
        let count = u16::from_le_bytes(buf[4..6].try_into().unwrap());
        if total != buf.len() {
            return Err(Invalid);
        }
        let mut p = HEADER;
        let mut n = 0usize;
        loop {
            let b = *buf.get(p).ok_or(Invalid)?;
            if b == EOF {
                break;
            }
            let (_, l) = decode(&buf, p).ok_or(Invalid)?;
            let bl = backlen_size(l);
            let end = p.checked_add(l + bl).ok_or(Invalid)?;
            if end > buf.len() {
                return Err(Invalid);
            }
            match read_backlen(&buf, end) {
                Some((v, size)) if v == l && size == bl => {}
                _ => return Err(Invalid),
            }
            p = end;
            n += 1;
        }
        if p != buf.len() - 1 {
            return Err(Invalid);
        }
        if count != COUNT_UNKNOWN && usize::from(count) != n {
            return Err(Invalid);
        }
        if count == COUNT_UNKNOWN && n < usize::from(COUNT_UNKNOWN) {
            return Err(Invalid);
        }
        Ok(Listpack { buf })
    }

    /// The buffer, exactly as Redis would hold it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Total bytes (`lpBytes`).
    #[inline]
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        let c = u16::from_le_bytes([self.buf[4], self.buf[5]]);
        if c != COUNT_UNKNOWN {
            return usize::from(c);
        }
        self.iter().count()
    }

    /// True when there are no elements.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf[HEADER] == EOF
    }

    fn set_header(&mut self, count: usize) {
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let c = if count >= usize::from(COUNT_UNKNOWN) { COUNT_UNKNOWN } else { count as u16 };
        self.buf[4..6].copy_from_slice(&c.to_le_bytes());
    }

    /// Offset of the first element.
    #[inline]
    pub fn first(&self) -> Option<usize> {
        (self.buf[HEADER] != EOF).then_some(HEADER)
    }

    /// Offset of the last element.
    pub fn last(&self) -> Option<usize> {
        self.prev(self.buf.len() - 1)
    }

    /// Offset of the element after the one at `p`.
    #[inline]
    pub fn next(&self, p: usize) -> Option<usize> {
        let n = p + self.entry_len(p);
        (self.buf[n] != EOF).then_some(n)
    }

    /// Offset of the element before the one at `p` (`p` may be the terminator's offset).
    #[inline]
    pub fn prev(&self, p: usize) -> Option<usize> {
        if p <= HEADER {
            return None;
        }
        let (l, size) = read_backlen(&self.buf, p).expect("validated listpack");
        Some(p - size - l)
    }

    /// Length of the entry at `p`, backlen included.
    #[inline]
    fn entry_len(&self, p: usize) -> usize {
        let (_, l) = decode(&self.buf, p).expect("validated listpack");
        l + backlen_size(l)
    }

    /// The element at `p`.
    #[inline]
    pub fn get(&self, p: usize) -> LpValue<'_> {
        decode(&self.buf, p).expect("validated listpack").0
    }

    /// Offset of the element at `index` (negative: from the end), if in range.
    pub fn seek(&self, index: i64) -> Option<usize> {
        if index >= 0 {
            let mut p = self.first()?;
            for _ in 0..index {
                p = self.next(p)?;
            }
            Some(p)
        } else {
            let mut p = self.last()?;
            for _ in 0..(-(index + 1)) {
                p = self.prev(p)?;
            }
            Some(p)
        }
    }

    /// Elements front to back.
    pub fn iter(&self) -> Iter<'_> {
        Iter { lp: self, next: self.first() }
    }

    /// Elements back to front.
    pub fn iter_rev(&self) -> RevIter<'_> {
        RevIter { lp: self, next: self.last() }
    }

    /// Inserts `s` before the element at offset `p` (or at the end when `p` is the
    /// terminator's offset). Returns the new element's offset.
    pub fn insert_at(&mut self, p: usize, s: &[u8]) -> usize {
        self.splice(p, 0, &Encoded::elem(s), 1);
        p
    }

    /// Inserts an integer before the element at offset `p`.
    pub fn insert_int_at(&mut self, p: usize, v: i64) -> usize {
        self.splice(p, 0, &Encoded::int(v), 1);
        p
    }

    /// Replaces `removed_bytes` at `p` with `add` bytes, changing the count by `delta`;
    /// returns the room made for the caller to fill.
    fn splice_bytes(&mut self, p: usize, removed_bytes: usize, add: usize, delta: isize) -> &mut [u8] {
        let count = self.len() as isize;
        let old_len = self.buf.len();
        if add > removed_bytes {
            let need = old_len + add - removed_bytes;
            if need > self.buf.capacity() {
                // A listpack lives as long as its key: grow to what the allocator hands out
                // anyway, never by doubling.
                self.buf.reserve_exact(size_class(need) - old_len);
            }
            self.buf.resize(need, 0);
            self.buf.copy_within(p + removed_bytes..old_len, p + add);
        } else {
            self.buf.copy_within(p + removed_bytes..old_len, p + add);
            self.buf.truncate(old_len - (removed_bytes - add));
        }
        self.set_header((count + delta) as usize);
        &mut self.buf[p..p + add]
    }

    /// Replaces `removed_bytes` at `p` with the entry `enc`, changing the count by `delta`.
    #[inline]
    fn splice(&mut self, p: usize, removed_bytes: usize, enc: &Encoded<'_>, delta: isize) {
        let out = self.splice_bytes(p, removed_bytes, enc.len(), delta);
        enc.write(out);
    }

    /// Appends an element.
    pub fn push_back(&mut self, s: &[u8]) {
        let end = self.buf.len() - 1;
        self.insert_at(end, s);
    }

    /// Prepends an element.
    pub fn push_front(&mut self, s: &[u8]) {
        self.insert_at(HEADER, s);
    }

    /// Appends an integer element.
    pub fn push_back_int(&mut self, v: i64) {
        let end = self.buf.len() - 1;
        self.insert_int_at(end, v);
    }

    /// Offset of the terminator (insert there to append).
    pub fn end(&self) -> usize {
        self.buf.len() - 1
    }

    /// Replaces the element at `p` with `s`; returns `p` (the element stays there).
    pub fn replace(&mut self, p: usize, s: &[u8]) -> usize {
        let old = self.entry_len(p);
        self.splice(p, old, &Encoded::elem(s), 0);
        p
    }

    /// Deletes the element at `p`; returns the offset of the element that follows, if any.
    pub fn delete(&mut self, p: usize) -> Option<usize> {
        self.delete_n(p, 1)
    }

    /// Deletes `n` elements starting at `p` (fewer if the list ends first); returns the
    /// offset of the element that follows, if any.
    pub fn delete_n(&mut self, p: usize, n: usize) -> Option<usize> {
        let mut end = p;
        let mut k = 0;
        while k < n && self.buf[end] != EOF {
            end += self.entry_len(end);
            k += 1;
        }
        self.splice_bytes(p, end - p, 0, -(k as isize));
        self.shrink();
        (self.buf[p] != EOF).then_some(p)
    }

    /// Gives memory back after deletions left much of the buffer unused.
    fn shrink(&mut self) {
        if self.buf.capacity() > 64 && self.buf.capacity() > self.buf.len() * 2 {
            self.buf.shrink_to_fit();
        }
    }

    /// Removes and returns the first element.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let p = self.first()?;
        let v = self.get(p).to_vec();
        self.delete(p);
        Some(v)
    }

    /// Removes and returns the last element.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let p = self.last()?;
        let v = self.get(p).to_vec();
        self.delete(p);
        Some(v)
    }

    /// Offset of the first element equal to `s` at or after `p`, looking only at every
    /// `step`-th element (step 2 searches the fields of a field/value listpack).
    pub fn find_from(&self, mut p: Option<usize>, s: &[u8], step: usize) -> Option<usize> {
        let needle = Needle::new(s);
        while let Some(off) = p {
            if needle.matches(self.get(off)) {
                return Some(off);
            }
            p = self.next(off);
            for _ in 1..step {
                p = p.and_then(|q| self.next(q));
            }
        }
        None
    }

    /// Offset of the first element equal to `s`, looking at every `step`-th element.
    pub fn find(&self, s: &[u8], step: usize) -> Option<usize> {
        self.find_from(self.first(), s, step)
    }

    /// Capacity of the buffer (for memory accounting).
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// Moves the elements after index `at` into a new listpack (this one keeps `0..at`).
    pub fn split_off(&mut self, at: usize) -> Listpack {
        let Some(p) = self.seek(at as i64) else {
            return Listpack::new();
        };
        let n = self.len();
        let mut tail = Listpack::new();
        tail.buf.splice(HEADER..HEADER, self.buf[p..self.buf.len() - 1].iter().copied());
        tail.set_header(n - at);
        self.buf.drain(p..self.buf.len() - 1);
        self.set_header(at);
        self.shrink();
        tail
    }
}

/// Front-to-back iterator.
pub struct Iter<'a> {
    lp: &'a Listpack,
    next: Option<usize>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = LpValue<'a>;
    #[inline]
    fn next(&mut self) -> Option<LpValue<'a>> {
        let p = self.next?;
        let (v, l) = decode(&self.lp.buf, p).expect("validated listpack");
        let n = p + l + backlen_size(l);
        self.next = (self.lp.buf[n] != EOF).then_some(n);
        Some(v)
    }
}

/// Back-to-front iterator.
pub struct RevIter<'a> {
    lp: &'a Listpack,
    next: Option<usize>,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = LpValue<'a>;
    fn next(&mut self) -> Option<LpValue<'a>> {
        let p = self.next?;
        self.next = self.lp.prev(p);
        Some(self.lp.get(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn size_classes_are_jemallocs() {
        let classes = [8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640];
        for n in 1..=640usize {
            let want = *classes.iter().find(|&&c| c >= n).unwrap();
            assert_eq!(size_class(n), want, "{n}");
        }
        for (n, want) in [(4097, 5120), (8192, 8192), (8193, 10240), (16385, 20480)] {
            assert_eq!(size_class(n), want, "{n}");
        }
    }

    #[test]
    fn growth_stays_within_the_size_class() {
        let mut lp = Listpack::new();
        for i in 0..500 {
            lp.push_back(format!("element-{i}").as_bytes());
            // Grown to the allocator's class for its size, not by doubling nor byte by byte.
            assert_eq!(lp.allocated(), size_class(lp.bytes()), "after {i}");
        }
    }

    fn elems(lp: &Listpack) -> Vec<Vec<u8>> {
        lp.iter().map(|v| v.to_vec()).collect()
    }

    #[test]
    fn bytes_match_redis() {
        // `RPUSH l a 1 -1 300 70000 "" <64 x>` in redis-server 7.0 stores this listpack
        // (taken from the quicklist node of its DUMP).
        let mut lp = Listpack::new();
        assert_eq!(lp.as_bytes(), b"\x07\x00\x00\x00\x00\x00\xff");
        lp.push_back(b"a");
        assert_eq!(lp.as_bytes(), b"\x0a\x00\x00\x00\x01\x00\x81a\x02\xff");
        let mut lp = Listpack::new();
        lp.push_back(b"1");
        lp.push_back(b"-1");
        lp.push_back(b"300");
        assert_eq!(&lp.as_bytes()[6..], b"\x01\x01\xdf\xff\x02\xc1\x2c\x02\xff");
        lp.push_back(b"70000");
        assert_eq!(&lp.as_bytes()[14..], b"\xf2\x70\x11\x01\x04\xff");
        lp.push_back(b"");
        assert_eq!(&lp.as_bytes()[19..], b"\x80\x01\xff");
    }

    #[test]
    fn integer_forms_round_trip_at_their_limits() {
        let vals = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            32768,
            8388607,
            -8388608,
            8388608,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ];
        let lp = Listpack::from_elems(
            vals.iter().map(|v| v.to_string().into_bytes()).collect::<Vec<_>>().iter().map(|v| v.as_slice()),
        );
        let got: Vec<i64> = lp.iter().map(|v| v.as_int().unwrap()).collect();
        assert_eq!(got, vals);
        assert!(lp.iter().all(|v| matches!(v, LpValue::Int(_))));
        assert_eq!(Listpack::from_vec(lp.as_bytes().to_vec()), Ok(lp));
    }

    #[test]
    fn non_canonical_numbers_stay_strings() {
        for s in [&b"012"[..], b"+1", b"-0", b" 1", b"1.0", b"99999999999999999999"] {
            let lp = Listpack::from_elems([s]);
            assert_eq!(lp.get(lp.first().unwrap()), LpValue::Str(s));
        }
    }

    #[test]
    fn long_strings_use_wider_headers() {
        for n in [63usize, 64, 4095, 4096, 20000] {
            let s = vec![b'x'; n];
            let lp = Listpack::from_elems([s.as_slice(), b"tail"]);
            assert_eq!(elems(&lp), vec![s.clone(), b"tail".to_vec()]);
            assert_eq!(lp.iter_rev().next().unwrap().to_vec(), b"tail");
            assert_eq!(lp.iter_rev().nth(1).unwrap().to_vec(), s);
            assert_eq!(entry_size(&s), lp.bytes() - 7 - entry_size(b"tail"));
        }
    }

    #[test]
    fn validation_rejects_damage() {
        let lp = Listpack::from_elems([&b"hello"[..], b"12", b"world"]);
        let good = lp.as_bytes().to_vec();
        assert!(Listpack::from_vec(good.clone()).is_ok());
        for i in 0..good.len() {
            for b in [0u8, 0x7f, 0x80, 0xff, good[i] ^ 1] {
                let mut bad = good.clone();
                bad[i] = b;
                if bad == good {
                    continue;
                }
                // Any accepted mutation must still decode consistently.
                if let Ok(l) = Listpack::from_vec(bad) {
                    assert_eq!(l.iter().count(), l.len());
                    assert_eq!(l.iter_rev().count(), l.len());
                }
            }
        }
        assert!(Listpack::from_vec(good[..good.len() - 1].to_vec()).is_err());
        assert!(Listpack::from_vec(vec![]).is_err());
    }

    proptest! {
        #[test]
        fn behaves_like_a_vec(ops in proptest::collection::vec((0u8..6, any::<u16>(), "[a-z0-9-]{0,5}|[0-9]{1,19}|x{60,70}"), 0..60)) {
            let mut lp = Listpack::new();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for (op, at, s) in ops {
                let s = s.into_bytes();
                match op {
                    0 => { lp.push_back(&s); model.push(s); }
                    1 => { lp.push_front(&s); model.insert(0, s); }
                    2 if !model.is_empty() => {
                        let i = at as usize % model.len();
                        let p = lp.seek(i as i64).unwrap();
                        lp.replace(p, &s);
                        model[i] = s;
                    }
                    3 if !model.is_empty() => {
                        let i = at as usize % model.len();
                        let n = (at as usize / 7) % 3 + 1;
                        let p = lp.seek(i as i64).unwrap();
                        lp.delete_n(p, n);
                        model.drain(i..(i + n).min(model.len()));
                    }
                    4 => {
                        let i = at as usize % (model.len() + 1);
                        let tail = lp.split_off(i);
                        let mtail = model.split_off(i);
                        prop_assert_eq!(elems(&tail), mtail.clone());
                        for e in tail.iter() {
                            lp.push_back(&e.to_vec());
                        }
                        model.extend(mtail);
                    }
                    5 if !model.is_empty() => {
                        let i = at as usize % model.len();
                        let p = lp.seek(-(i as i64) - 1).unwrap();
                        prop_assert_eq!(lp.get(p).to_vec(), model[model.len() - 1 - i].clone());
                        let found = lp.find(&model[i], 1).map(|p| lp.get(p).to_vec());
                        prop_assert_eq!(found, Some(model[i].clone()));
                    }
                    _ => {}
                }
                prop_assert_eq!(lp.len(), model.len());
                prop_assert_eq!(elems(&lp), model.clone());
                let mut rev: Vec<Vec<u8>> = lp.iter_rev().map(|v| v.to_vec()).collect();
                rev.reverse();
                prop_assert_eq!(rev, model.clone());
                prop_assert_eq!(Listpack::from_vec(lp.as_bytes().to_vec()), Ok(lp.clone()));
            }
        }

        #[test]
        fn random_buffers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut b = bytes;
            if b.len() >= 6 {
                let n = b.len() as u32;
                b[0..4].copy_from_slice(&n.to_le_bytes());
            }
            if let Ok(lp) = Listpack::from_vec(b) {
                prop_assert_eq!(lp.iter().count(), lp.len());
                prop_assert_eq!(lp.iter_rev().count(), lp.len());
            }
        }
    }
}
