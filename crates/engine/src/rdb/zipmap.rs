//! Redis's zipmap, read-only: the form small hashes took in RDB files before Redis 2.6
//! (`RDB_TYPE_HASH_ZIPMAP`). Redis 7 still loads it, converting to a listpack; we walk a
//! [`Zipmap`] once and hand its field/value pairs on.
//!
//! Layout: `<zmlen> (<len> key <len> <free> value <free bytes>)... <0xFF>`. `zmlen` is the
//! pair count, or 254 meaning "count them" (Redis stops updating it there, so it may stay 254
//! after pairs are deleted again). A `<len>` is one byte below 254, or 254 followed by a
//! little-endian `u32`; 255 is the terminator and only valid where a key would start.
//! `<free>` is one byte: unused bytes after the value, left by an in-place update.
//!
//! The input is hostile: [`Zipmap::parse`] checks what Redis's deep integrity check does (the
//! terminator last, every pair inside the buffer, the count) and reads nothing out of bounds,
//! allocates nothing, and never panics. An empty zipmap is well formed here; Redis's check
//! refuses it, and so does our RDB layer, as it refuses every empty collection. We also
//! refuse a length written in the 5-byte form when it fits in one byte, and 255 as a value
//! length: Redis's writer never produces them and Redis's own iterator would misread the pair
//! (it sizes a length from its value, not from its first byte), so such a zipmap cannot have
//! come from Redis intact.

use std::fmt;

/// The terminator, which no key can start with.
const END: u8 = 0xFF;
/// A length byte saying a 4-byte length follows; also the first "count them" `zmlen`.
const BIG_LEN: u8 = 254;

/// Why a buffer is not a zipmap. Offsets are from the start of the zipmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZipmapError {
    /// Shorter than a count and a terminator.
    TooShort,
    /// The last byte is not the terminator, or a terminator byte sits where a pair should.
    BadEnd,
    /// The pair at `at` does not fit before the terminator.
    Truncated {
        /// Where the pair starts.
        at: usize,
    },
    /// The length at `at` is 255 or a 5-byte form of a length below 254.
    BadLength {
        /// Where the length starts.
        at: usize,
    },
    /// `zmlen` is neither the pair count nor 254.
    BadCount,
}

impl ZipmapError {
    /// What is wrong, in words (for [`super::RdbError::BadValue`]).
    pub fn what(&self) -> &'static str {
        match self {
            ZipmapError::TooShort => "zipmap shorter than its header",
            ZipmapError::BadEnd => "zipmap without its terminator at the end",
            ZipmapError::Truncated { .. } => "zipmap pair that runs past the end",
            ZipmapError::BadLength { .. } => "zipmap length encoding",
            ZipmapError::BadCount => "zipmap pair count",
        }
    }
}

impl fmt::Display for ZipmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZipmapError::Truncated { at } | ZipmapError::BadLength { at } => {
                write!(f, "bad {} at offset {at}", self.what())
            }
            _ => write!(f, "bad {}", self.what()),
        }
    }
}

impl std::error::Error for ZipmapError {}

/// A validated zipmap, borrowed from the bytes it was parsed from.
#[derive(Clone, Copy, Debug)]
pub struct Zipmap<'a> {
    buf: &'a [u8],
    len: usize,
}

/// One decoded pair and the offset just past it (and its free bytes).
struct Pair<'a> {
    field: &'a [u8],
    value: &'a [u8],
    next: usize,
}

/// Decodes the pair at `p` of `body`, the zipmap up to (not including) its terminator, so
/// every bounds check also keeps the pair off the terminator.
fn pair(body: &[u8], p: usize) -> Result<Pair<'_>, ZipmapError> {
    let truncated = ZipmapError::Truncated { at: p };
    let take = |from: usize, n: usize| from.checked_add(n).and_then(|to| body.get(from..to)).ok_or(truncated);
    // A length at `at`: its value and where the bytes after it start.
    let length = |at: usize| -> Result<(usize, usize), ZipmapError> {
        match *body.get(at).ok_or(truncated)? {
            b if b < BIG_LEN => Ok((usize::from(b), at + 1)),
            BIG_LEN => {
                let b = take(at + 1, 4)?;
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if n < u32::from(BIG_LEN) {
                    return Err(ZipmapError::BadLength { at });
                }
                Ok((n as usize, at + 5))
            }
            _ => Err(ZipmapError::BadLength { at }),
        }
    };
    let (klen, k) = length(p)?;
    let field = take(k, klen)?;
    let (vlen, v) = length(k + klen)?;
    let free = usize::from(*body.get(v).ok_or(truncated)?);
    let value = take(v + 1, vlen)?;
    // The free bytes must also lie before the terminator.
    take(v + 1 + vlen, free)?;
    Ok(Pair { field, value, next: v + 1 + vlen + free })
}

impl<'a> Zipmap<'a> {
    /// Validates `buf` as a whole zipmap.
    pub fn parse(buf: &'a [u8]) -> Result<Zipmap<'a>, ZipmapError> {
        if buf.len() < 2 {
            return Err(ZipmapError::TooShort);
        }
        let end = buf.len() - 1;
        if buf[end] != END {
            return Err(ZipmapError::BadEnd);
        }
        let body = &buf[..end];
        let (mut p, mut n) = (1, 0usize);
        // Pairs end at or before `end`, so `p` stays in bounds.
        while buf[p] != END {
            p = pair(body, p)?.next;
            n += 1;
        }
        if p != end {
            return Err(ZipmapError::BadEnd);
        }
        if buf[0] != BIG_LEN && usize::from(buf[0]) != n {
            return Err(ZipmapError::BadCount);
        }
        Ok(Zipmap { buf, len: n })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The (field, value) pairs in stored order.
    pub fn iter(&self) -> Iter<'a> {
        Iter { body: &self.buf[..self.buf.len() - 1], p: 1 }
    }
}

/// Iterator over a validated zipmap's pairs.
pub struct Iter<'a> {
    body: &'a [u8],
    p: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.p >= self.body.len() {
            return None;
        }
        // `parse` decoded every pair already, so this cannot fail; ending the walk is the
        // panic-free answer if it somehow did.
        let e = pair(self.body, self.p).ok()?;
        self.p = e.next;
        Some((e.field, e.value))
    }
}

/// A zipmap writer for tests, following the format above.
#[cfg(test)]
pub(crate) mod build {
    fn write_len(out: &mut Vec<u8>, n: usize) {
        if n < 254 {
            out.push(n as u8);
        } else {
            out.push(254);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    }

    /// A zipmap of `(field, value, free)` triples; each value is followed by `free` unused
    /// bytes (filled with `'~'`), as an in-place update leaves them. The count saturates at
    /// 254 as Redis's writer lets it.
    pub fn encode_with<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V, u8)]) -> Vec<u8> {
        let mut out = vec![pairs.len().min(254) as u8];
        for (k, v, free) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            write_len(&mut out, k.len());
            out.extend_from_slice(k);
            write_len(&mut out, v.len());
            out.push(*free);
            out.extend_from_slice(v);
            out.extend(std::iter::repeat_n(b'~', usize::from(*free)));
        }
        out.push(0xFF);
        out
    }

    /// A zipmap of `pairs` with no free bytes.
    pub fn encode<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
        let triples: Vec<(&[u8], &[u8], u8)> = pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref(), 0)).collect();
        encode_with(&triples)
    }
}

#[cfg(test)]
mod tests {
    use super::build::{encode, encode_with};
    use super::*;
    use proptest::prelude::*;

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn decode(buf: &[u8]) -> Result<Pairs, ZipmapError> {
        Zipmap::parse(buf).map(|zm| zm.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect())
    }

    fn pairs(items: &[(&str, &str)]) -> Pairs {
        items.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    /// Zipmaps written by Redis: the example in Redis's `zipmap.c` header comment and the
    /// hash in `tests/assets/hash-zipmap.rdb` (the bytes as reproduced in apache/kvrocks
    /// `tests/cppunit/rdb_util.h`).
    #[test]
    fn decodes_zipmaps_written_by_redis() {
        let doc: &[u8] = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";
        assert_eq!(decode(doc).unwrap(), pairs(&[("foo", "bar"), ("hello", "world")]));
        assert_eq!(encode(&[("foo", "bar"), ("hello", "world")]), doc);

        let asset: &[u8] = b"\x02\x02f1\x02\x00v1\x02f2\x02\x00v2\xff";
        assert_eq!(decode(asset).unwrap(), pairs(&[("f1", "v1"), ("f2", "v2")]));
        assert_eq!(encode(&[("f1", "v1"), ("f2", "v2")]), asset);

        // `zipmapNew`: an empty zipmap is well formed (the RDB layer refuses the empty key).
        let empty = Zipmap::parse(b"\x00\xff").unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.iter().count(), 0);
    }

    #[test]
    fn every_length_form_and_free_bytes() {
        let long_key = vec![b'k'; 254];
        let long_value = vec![b'v'; 70000];
        let items: Vec<(&[u8], &[u8], u8)> = vec![
            (b"", b"", 0),
            (b"f", b"1", 3),
            (&long_key, b"short", 0),
            (b"k2", &long_value, 4),
            (&[b'a'; 253], &[b'b'; 253], 255),
        ];
        let buf = encode_with(&items);
        let zm = Zipmap::parse(&buf).unwrap();
        assert_eq!(zm.len(), items.len());
        let got: Vec<(&[u8], &[u8])> = zm.iter().collect();
        let want: Vec<(&[u8], &[u8])> = items.iter().map(|&(k, v, _)| (k, v)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn count_of_254_means_unknown() {
        let many: Vec<(String, String)> = (0..300).map(|i| (format!("f{i}"), format!("v{i}"))).collect();
        let buf = encode(&many);
        assert_eq!(buf[0], 254);
        assert_eq!(Zipmap::parse(&buf).unwrap().len(), 300);
        // Redis leaves 254 in place when pairs are deleted again; 255 is no count at all.
        let mut few = encode(&[("a", "1")]);
        for zmlen in [254, 255] {
            few[0] = zmlen;
            let r = Zipmap::parse(&few).map(|z| z.len());
            assert_eq!(r, if zmlen == 254 { Ok(1) } else { Err(ZipmapError::BadCount) });
        }
    }

    #[test]
    fn damage_is_named() {
        // 0: count, 1: "f1" (3 bytes), 4: value length, 5: free, 6: "v1", 8: end.
        let good = encode(&[("f1", "v1")]);
        let with = |i: usize, b: u8| {
            let mut bad = good.clone();
            bad[i] = b;
            Zipmap::parse(&bad).err()
        };
        assert_eq!(Zipmap::parse(b"\x00").err(), Some(ZipmapError::TooShort));
        assert_eq!(with(0, 2), Some(ZipmapError::BadCount));
        assert_eq!(with(0, 0), Some(ZipmapError::BadCount));
        assert_eq!(with(8, b'x'), Some(ZipmapError::BadEnd));
        assert_eq!(with(1, 7), Some(ZipmapError::Truncated { at: 1 }));
        assert_eq!(with(4, 3), Some(ZipmapError::Truncated { at: 1 }));
        assert_eq!(with(5, 1), Some(ZipmapError::Truncated { at: 1 }));
        assert_eq!(with(4, 0xFF), Some(ZipmapError::BadLength { at: 4 }));
        assert_eq!(with(4, 0xFE), Some(ZipmapError::Truncated { at: 1 }));
        // A shorter value leaves a byte the walk reads as a bad next pair.
        assert!(with(4, 1).is_some());
        // A terminator byte where a pair should start, before the end.
        assert_eq!(Zipmap::parse(b"\x01\x02f1\x02\x00v1\xff\xff").err(), Some(ZipmapError::BadEnd));
        // The 5-byte form for a length that fits one byte.
        assert_eq!(
            Zipmap::parse(b"\x01\xfe\x02\x00\x00\x00f1\x02\x00v1\xff").err(),
            Some(ZipmapError::BadLength { at: 1 })
        );
        // Valkey's corrupt-dump.tcl "zipmap value length integer overflow": a value length of
        // 0xFFFFFFFF and one free byte, which wrap to zero in 32-bit arithmetic.
        assert_eq!(
            Zipmap::parse(b"\x01\x03foo\xfe\xff\xff\xff\xff\x01\xff").err(),
            Some(ZipmapError::Truncated { at: 1 })
        );
        // A huge 5-byte length must fail without reading or allocating it.
        assert_eq!(Zipmap::parse(b"\x01\xfe\xff\xff\xff\xffk\xff").err(), Some(ZipmapError::Truncated { at: 1 }));
        assert_eq!(Zipmap::parse(b"\x02\xff").err(), Some(ZipmapError::BadCount));
    }

    proptest! {
        #[test]
        fn pairs_round_trip(items in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..300), proptest::collection::vec(any::<u8>(), 0..300), 0u8..6),
            0..20,
        )) {
            let buf = encode_with(&items);
            let got = decode(&buf).unwrap();
            let want: Pairs = items.into_iter().map(|(k, v, _)| (k, v)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn random_buffers_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if b.len() >= 2 && b[0] % 2 == 0 {
                *b.last_mut().unwrap() = 0xFF;
            }
            if let Ok(zm) = Zipmap::parse(&b) {
                prop_assert_eq!(zm.iter().count(), zm.len());
            }
        }

        #[test]
        fn damaged_zipmaps_never_panic(
            items in proptest::collection::vec(("[a-z]{0,300}", "[a-z]{0,300}", 0u8..6), 1..6),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let mut buf = encode_with(&items);
            for (at, byte) in flips {
                let i = at % buf.len();
                buf[i] = byte;
            }
            if cut % 4 == 0 {
                buf.truncate(cut % buf.len());
            }
            if let Ok(zm) = Zipmap::parse(&buf) {
                prop_assert_eq!(zm.iter().count(), zm.len());
                prop_assert!(zm.iter().all(|(k, v)| k.len() + v.len() < buf.len()));
            }
        }
    }
}
