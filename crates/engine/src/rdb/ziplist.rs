//! Redis's ziplist, read-only: the form small lists, hashes and sorted sets took in RDB files
//! and `DUMP` payloads before Redis 7.0 (`RDB_TYPE_LIST_ZIPLIST`, `RDB_TYPE_HASH_ZIPLIST`,
//! `RDB_TYPE_ZSET_ZIPLIST` and the nodes of `RDB_TYPE_LIST_QUICKLIST`).
//!
//! Tandem never keeps a ziplist: Redis 7 converts them to listpacks while loading, and so do
//! we, by walking a [`Ziplist`] once and handing its elements on.
//!
//! Layout: `<zlbytes u32> <zltail u32> <zllen u16> <entry>... <0xFF>`, header little-endian.
//! `zltail` is the offset of the last entry; `zllen` the entry count, or 65535 meaning "count
//! them" (Redis stops updating it there, so a saturated count may exceed the real one). An
//! entry is `<prevlen> <encoding> <data>`: `prevlen` is the previous entry's total length, in
//! one byte below 254 or as 0xFE and a little-endian `u32` (Redis may keep that wide form for
//! a small length, so both are accepted). Encodings, by their first byte:
//!
//! | first byte  | entry                                                    |
//! |-------------|----------------------------------------------------------|
//! | `00pppppp`  | string of up to 63 bytes                                 |
//! | `01pppppp`  | string, 14-bit big-endian length (with the next byte)    |
//! | `10000000`  | string, 32-bit big-endian length in the next four bytes  |
//! | `0xC0`      | `i16`, little-endian, as every integer below             |
//! | `0xD0`      | `i32`                                                    |
//! | `0xE0`      | `i64`                                                    |
//! | `0xF0`      | 24-bit signed                                            |
//! | `0xFE`      | `i8`                                                     |
//! | `0xF1..0xFD`| 0 to 12, no data (the low four bits minus one)           |
//!
//! The input is hostile: [`Ziplist::parse`] checks everything Redis's deep integrity check
//! does (byte total, terminator, every entry inside the buffer, each `prevlen` equal to the
//! previous entry's length, `zltail` on the last entry, the count) and reads nothing out of
//! bounds, allocates nothing, and never panics. It is stricter than Redis in two places that
//! no Redis writer produces: a 32-bit string header must be exactly `0x80` (Redis ignores
//! the low six bits), and an empty ziplist's `zltail` must point at its terminator.

use std::fmt;

use crate::listpack::LpValue;

/// Bytes before the first entry.
const HEADER: usize = 10;
/// The terminator, which no entry can start with.
const END: u8 = 0xFF;
/// A `prevlen` first byte saying a 4-byte length follows.
const BIG_PREVLEN: u8 = 0xFE;
/// A `zllen` that says nothing about the count.
const COUNT_UNKNOWN: u16 = u16::MAX;

/// Why a buffer is not a ziplist. Offsets are from the start of the ziplist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZiplistError {
    /// Shorter than a header and a terminator.
    TooShort,
    /// `zlbytes` is not the buffer's length.
    BadTotal,
    /// The last byte is not the terminator, or a terminator byte sits where an entry should.
    BadEnd,
    /// The entry at `at` does not fit before the terminator.
    Truncated {
        /// Where the entry starts.
        at: usize,
    },
    /// The entry at `at` has an encoding byte that is none of the defined ones.
    BadEncoding {
        /// Where the entry starts.
        at: usize,
    },
    /// The entry at `at` gives a `prevlen` other than the previous entry's length.
    BadPrevLen {
        /// Where the entry starts.
        at: usize,
    },
    /// `zltail` is not the offset of the last entry.
    BadTail,
    /// `zllen` is neither the entry count nor 65535.
    BadCount,
}

impl ZiplistError {
    /// What is wrong, in words (for [`super::RdbError::BadValue`]).
    pub fn what(&self) -> &'static str {
        match self {
            ZiplistError::TooShort => "ziplist shorter than its header",
            ZiplistError::BadTotal => "ziplist whose byte total is not its length",
            ZiplistError::BadEnd => "ziplist without its terminator at the end",
            ZiplistError::Truncated { .. } => "ziplist entry that runs past the end",
            ZiplistError::BadEncoding { .. } => "ziplist entry encoding",
            ZiplistError::BadPrevLen { .. } => "ziplist entry whose prevlen is not the previous entry's length",
            ZiplistError::BadTail => "ziplist tail offset",
            ZiplistError::BadCount => "ziplist entry count",
        }
    }
}

impl fmt::Display for ZiplistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZiplistError::Truncated { at } | ZiplistError::BadEncoding { at } | ZiplistError::BadPrevLen { at } => {
                write!(f, "bad {} at offset {at}", self.what())
            }
            _ => write!(f, "bad {}", self.what()),
        }
    }
}

impl std::error::Error for ZiplistError {}

/// A validated ziplist, borrowed from the bytes it was parsed from.
#[derive(Clone, Copy, Debug)]
pub struct Ziplist<'a> {
    buf: &'a [u8],
    len: usize,
}

/// One decoded entry.
struct Entry<'a> {
    /// The `prevlen` field's value.
    prevlen: usize,
    value: LpValue<'a>,
    /// The whole entry's length, `prevlen` field included (what the next entry's `prevlen`
    /// must say).
    len: usize,
}

/// Sign-extends little-endian bytes (at most eight) to an `i64`.
fn signed_le(b: &[u8]) -> i64 {
    let raw = b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let shift = 64 - 8 * b.len() as u32;
    ((raw << shift) as i64) >> shift
}

/// Decodes the entry at `p` of `body`, the ziplist up to (not including) its terminator, so
/// that every bounds check also keeps the entry off the terminator.
fn entry<'a>(body: &'a [u8], p: usize) -> Result<Entry<'a>, ZiplistError> {
    let truncated = ZiplistError::Truncated { at: p };
    let take = |from: usize, n: usize| from.checked_add(n).and_then(|to| body.get(from..to)).ok_or(truncated);
    let (prevlen, head) = match *body.get(p).ok_or(truncated)? {
        BIG_PREVLEN => {
            let b = take(p + 1, 4)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, p + 5)
        }
        b => (usize::from(b), p + 1),
    };
    let enc = *body.get(head).ok_or(truncated)?;
    // A string entry whose `n` bytes start at `data`, and an integer entry of `width` bytes.
    let string = |data: usize, n: usize| -> Result<Entry<'a>, ZiplistError> {
        let s = take(data, n)?;
        Ok(Entry { prevlen, value: LpValue::Str(s), len: data + n - p })
    };
    let int = |width: usize| -> Result<Entry<'a>, ZiplistError> {
        let v = signed_le(take(head + 1, width)?);
        Ok(Entry { prevlen, value: LpValue::Int(v), len: head + 1 + width - p })
    };
    match enc {
        0x00..=0x3F => string(head + 1, usize::from(enc)),
        0x40..=0x7F => {
            let low = take(head + 1, 1)?[0];
            string(head + 2, (usize::from(enc & 0x3F) << 8) | usize::from(low))
        }
        0x80 => {
            let b = take(head + 1, 4)?;
            string(head + 5, u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        }
        0xC0 => int(2),
        0xD0 => int(4),
        0xE0 => int(8),
        0xF0 => int(3),
        0xFE => int(1),
        0xF1..=0xFD => Ok(Entry { prevlen, value: LpValue::Int(i64::from(enc & 0x0F) - 1), len: head + 1 - p }),
        _ => Err(ZiplistError::BadEncoding { at: p }),
    }
}

impl<'a> Ziplist<'a> {
    /// Validates `buf` as a whole ziplist.
    pub fn parse(buf: &'a [u8]) -> Result<Ziplist<'a>, ZiplistError> {
        if buf.len() < HEADER + 1 {
            return Err(ZiplistError::TooShort);
        }
        let u32_at = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        if usize::try_from(u32_at(0)).ok() != Some(buf.len()) {
            return Err(ZiplistError::BadTotal);
        }
        let tail = u32_at(4);
        let count = u16::from_le_bytes([buf[8], buf[9]]);
        let end = buf.len() - 1;
        if buf[end] != END {
            return Err(ZiplistError::BadEnd);
        }
        let body = &buf[..end];
        let (mut p, mut prev_len, mut last, mut n) = (HEADER, 0, HEADER, 0usize);
        // Entries end at or before `end`, so `p` stays in bounds.
        while buf[p] != END {
            let e = entry(body, p)?;
            if e.prevlen != prev_len {
                return Err(ZiplistError::BadPrevLen { at: p });
            }
            last = p;
            prev_len = e.len;
            p += e.len;
            n += 1;
        }
        if p != end {
            return Err(ZiplistError::BadEnd);
        }
        // With no entries, `last` is still the terminator's offset, where Redis points
        // `zltail` of an empty ziplist.
        if usize::try_from(tail).ok() != Some(last) {
            return Err(ZiplistError::BadTail);
        }
        if count != COUNT_UNKNOWN && usize::from(count) != n {
            return Err(ZiplistError::BadCount);
        }
        Ok(Ziplist { buf, len: n })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries, front to back.
    pub fn iter(&self) -> Iter<'a> {
        Iter { body: &self.buf[..self.buf.len() - 1], p: HEADER }
    }
}

/// Front-to-back iterator over a validated ziplist.
pub struct Iter<'a> {
    body: &'a [u8],
    p: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = LpValue<'a>;

    fn next(&mut self) -> Option<LpValue<'a>> {
        if self.p >= self.body.len() {
            return None;
        }
        // `parse` decoded every entry already, so this cannot fail; ending the walk is the
        // panic-free answer if it somehow did.
        let e = entry(self.body, self.p).ok()?;
        self.p += e.len;
        Some(e.value)
    }
}

/// A ziplist writer for tests, following the format above: it builds the vectors the
/// decoder is checked against, in every encoding, including forms Redis's writer picks only
/// in some states (a wide `prevlen` for a short entry, a wide header for a short string).
#[cfg(test)]
pub(crate) mod build {
    use crate::num;

    /// How one entry is written.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Enc {
        /// `00pppppp` header (at most 63 bytes).
        Str6(Vec<u8>),
        /// `01pppppp qqqqqqqq` header (at most 16383 bytes).
        Str14(Vec<u8>),
        /// `0x80` and a 4-byte length.
        Str32(Vec<u8>),
        /// 0xF1..0xFD: 0 to 12.
        Imm(u8),
        /// 0xFE
        I8(i8),
        /// 0xC0
        I16(i16),
        /// 0xF0 (value must fit 24 bits)
        I24(i32),
        /// 0xD0
        I32(i32),
        /// 0xE0
        I64(i64),
    }

    impl Enc {
        /// The encoding Redis's writer picks for `s`: strings of up to 31 bytes that are
        /// canonical integers become the smallest integer form, others the smallest header.
        pub fn smallest(s: &[u8]) -> Enc {
            if let Some(v) = (s.len() < 32).then(|| num::parse_i64(s)).flatten() {
                return match v {
                    0..=12 => Enc::Imm(v as u8),
                    _ if i8::try_from(v).is_ok() => Enc::I8(v as i8),
                    _ if i16::try_from(v).is_ok() => Enc::I16(v as i16),
                    _ if (-(1 << 23)..(1 << 23)).contains(&v) => Enc::I24(v as i32),
                    _ if i32::try_from(v).is_ok() => Enc::I32(v as i32),
                    _ => Enc::I64(v),
                };
            }
            match s.len() {
                0..=63 => Enc::Str6(s.to_vec()),
                64..=16383 => Enc::Str14(s.to_vec()),
                _ => Enc::Str32(s.to_vec()),
            }
        }

        /// The element's bytes as the decoder reports them.
        pub fn text(&self) -> Vec<u8> {
            match self {
                Enc::Str6(s) | Enc::Str14(s) | Enc::Str32(s) => s.clone(),
                Enc::Imm(v) => v.to_string().into_bytes(),
                Enc::I8(v) => v.to_string().into_bytes(),
                Enc::I16(v) => v.to_string().into_bytes(),
                Enc::I24(v) | Enc::I32(v) => v.to_string().into_bytes(),
                Enc::I64(v) => v.to_string().into_bytes(),
            }
        }

        fn write(&self, out: &mut Vec<u8>) {
            match self {
                Enc::Str6(s) => {
                    assert!(s.len() < 64);
                    out.push(s.len() as u8);
                    out.extend_from_slice(s);
                }
                Enc::Str14(s) => {
                    assert!(s.len() < 1 << 14);
                    out.extend_from_slice(&[0x40 | (s.len() >> 8) as u8, s.len() as u8]);
                    out.extend_from_slice(s);
                }
                Enc::Str32(s) => {
                    out.push(0x80);
                    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    out.extend_from_slice(s);
                }
                Enc::Imm(v) => {
                    assert!(*v <= 12);
                    out.push(0xF1 + v);
                }
                Enc::I8(v) => out.extend_from_slice(&[0xFE, *v as u8]),
                Enc::I16(v) => {
                    out.push(0xC0);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Enc::I24(v) => {
                    assert!((-(1 << 23)..(1 << 23)).contains(v));
                    out.push(0xF0);
                    out.extend_from_slice(&v.to_le_bytes()[..3]);
                }
                Enc::I32(v) => {
                    out.push(0xD0);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Enc::I64(v) => {
                    out.push(0xE0);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }

    /// A ziplist of entries written as given; `wide_prevlen` entries get the 5-byte
    /// `prevlen` form whatever their predecessor's length.
    pub fn encode_with(entries: &[(Enc, bool)]) -> Vec<u8> {
        let mut body = Vec::new();
        let (mut prev, mut tail) = (0usize, 10usize);
        for (enc, wide_prevlen) in entries {
            let start = body.len();
            tail = 10 + start;
            if prev < 254 && !wide_prevlen {
                body.push(prev as u8);
            } else {
                body.push(0xFE);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            enc.write(&mut body);
            prev = body.len() - start;
        }
        if entries.is_empty() {
            tail = 10;
        }
        let mut out = Vec::with_capacity(body.len() + 11);
        out.extend_from_slice(&((body.len() + 11) as u32).to_le_bytes());
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(entries.len().min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xFF);
        out
    }

    /// A ziplist of `elems` in the encodings Redis's writer picks.
    pub fn encode<T: AsRef<[u8]>>(elems: &[T]) -> Vec<u8> {
        let entries: Vec<(Enc, bool)> = elems.iter().map(|e| (Enc::smallest(e.as_ref()), false)).collect();
        encode_with(&entries)
    }
}

#[cfg(test)]
mod tests {
    use super::build::{encode, encode_with, Enc};
    use super::*;
    use proptest::prelude::*;

    fn texts(zl: &Ziplist<'_>) -> Vec<Vec<u8>> {
        zl.iter().map(|v| v.to_vec()).collect()
    }

    fn decode(buf: &[u8]) -> Result<Vec<Vec<u8>>, ZiplistError> {
        Ziplist::parse(buf).map(|zl| texts(&zl))
    }

    /// Ziplists from Redis's own test data (`tests/assets/*.rdb`; the bytes as reproduced in
    /// apache/kvrocks `tests/cppunit/rdb_util.h`) and from `tests/integration/corrupt-dump.tcl`.
    #[test]
    fn decodes_ziplists_written_by_redis() {
        // encodings.rdb (RDB 4), key "list_zipped": RPUSH 1 2 3 a b c 100000 6000000000,
        // written before immediate integers existed, so 1..3 are `i16`.
        let list_zipped: &[u8] = b"\x30\x00\x00\x00\x25\x00\x00\x00\x08\x00\x00\xc0\x01\x00\x04\xc0\x02\x00\x04\xc0\
            \x03\x00\x04\x01a\x03\x01b\x03\x01c\x03\xd0\xa0\x86\x01\x00\x06\xe0\x00\xbc\xa0\x65\x01\x00\x00\x00\xff";
        let want: Vec<&[u8]> = vec![b"1", b"2", b"3", b"a", b"b", b"c", b"100000", b"6000000000"];
        assert_eq!(decode(list_zipped).unwrap(), want);
        let entries: Vec<(Enc, bool)> = vec![
            (Enc::I16(1), false),
            (Enc::I16(2), false),
            (Enc::I16(3), false),
            (Enc::Str6(b"a".to_vec()), false),
            (Enc::Str6(b"b".to_vec()), false),
            (Enc::Str6(b"c".to_vec()), false),
            (Enc::I32(100000), false),
            (Enc::I64(6000000000), false),
        ];
        assert_eq!(encode_with(&entries), list_zipped);

        // hash-ziplist.rdb, key "hash": f1 v1 f2 v2.
        let hash: &[u8] = b"\x1b\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02f1\x04\x02v1\x04\x02f2\x04\x02v2\xff";
        assert_eq!(decode(hash).unwrap(), vec![b"f1", b"v1", b"f2", b"v2"]);
        assert_eq!(encode(&["f1", "v1", "f2", "v2"]), hash);

        // list-quicklist.rdb (Redis 4.0.9), the one node of key "list": 7, an immediate.
        let node: &[u8] = b"\x0d\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\xf8\xff";
        assert_eq!(decode(node).unwrap(), vec![b"7"]);
        assert_eq!(encode(&["7"]), node);

        // corrupt-dump.tcl, "fuzzer findings - hash crash", a valid hash: 0 0 1 _1 2 2.
        let fuzz: &[u8] =
            b"\x19\x00\x00\x00\x16\x00\x00\x00\x06\x00\x00\xf1\x02\xf1\x02\xf2\x02\x02_1\x04\xf3\x02\xf3\xff";
        assert_eq!(decode(fuzz).unwrap(), vec![&b"0"[..], b"0", b"1", b"_1", b"2", b"2"]);
        assert_eq!(encode(&["0", "0", "1", "_1", "2", "2"]), fuzz);

        // corrupt_empty_keys.rdb: an empty ziplist is a valid ziplist (the RDB layer refuses
        // the empty key).
        let empty = Ziplist::parse(b"\x0b\x00\x00\x00\x0a\x00\x00\x00\x00\x00\xff").unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.iter().count(), 0);
        assert_eq!(encode::<&[u8]>(&[]), b"\x0b\x00\x00\x00\x0a\x00\x00\x00\x00\x00\xff");
    }

    #[test]
    fn every_encoding_at_its_limits() {
        let s = |n: usize| vec![b'x'; n];
        let entries: Vec<Enc> = vec![
            Enc::Str6(vec![]),
            Enc::Str6(s(63)),
            Enc::Str14(s(64)),
            Enc::Str14(s(16383)),
            Enc::Str32(s(16384)),
            Enc::Str14(b"short".to_vec()),
            Enc::Str32(b"tiny".to_vec()),
            Enc::Str6(b"12".to_vec()),
            Enc::I8(i8::MIN),
            Enc::I8(i8::MAX),
            Enc::I16(i16::MIN),
            Enc::I16(i16::MAX),
            Enc::I24(-(1 << 23)),
            Enc::I24((1 << 23) - 1),
            Enc::I24(-1),
            Enc::I32(i32::MIN),
            Enc::I32(i32::MAX),
            Enc::I64(i64::MIN),
            Enc::I64(i64::MAX),
        ];
        let mut entries: Vec<(Enc, bool)> = entries.into_iter().map(|e| (e, false)).collect();
        entries.extend((0..=12).map(|v| (Enc::Imm(v), false)));
        // A wide prevlen holding a short length, on the first entry too.
        entries[0].1 = true;
        entries[8].1 = true;
        let buf = encode_with(&entries);
        let zl = Ziplist::parse(&buf).unwrap();
        assert_eq!(zl.len(), entries.len());
        let want: Vec<Vec<u8>> = entries.iter().map(|(e, _)| e.text()).collect();
        assert_eq!(texts(&zl), want);
        // Integers come back as integers, strings as strings.
        let kinds: Vec<bool> = zl.iter().map(|v| matches!(v, LpValue::Int(_))).collect();
        let want_kinds: Vec<bool> =
            entries.iter().map(|(e, _)| !matches!(e, Enc::Str6(_) | Enc::Str14(_) | Enc::Str32(_))).collect();
        assert_eq!(kinds, want_kinds);
        // The entry after a 16 KB one has a wide prevlen of its own accord.
        assert_eq!(buf[10 + 6 + 65 + 67 + 16386], 0xFE);
    }

    #[test]
    fn smallest_encodings_match_redis_choices() {
        let cases: &[(&[u8], Enc)] = &[
            (b"0", Enc::Imm(0)),
            (b"12", Enc::Imm(12)),
            (b"13", Enc::I8(13)),
            (b"-1", Enc::I8(-1)),
            (b"128", Enc::I16(128)),
            (b"32768", Enc::I24(32768)),
            (b"8388608", Enc::I32(8388608)),
            (b"2147483648", Enc::I64(2147483648)),
            (b"01", Enc::Str6(b"01".to_vec())),
            (b"+1", Enc::Str6(b"+1".to_vec())),
            (b"", Enc::Str6(vec![])),
        ];
        for (s, enc) in cases {
            assert_eq!(&Enc::smallest(s), enc, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn saturated_count_means_unknown() {
        let mut buf = encode(&["a", "b"]);
        buf[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(Ziplist::parse(&buf).unwrap().len(), 2);
        // Past 65535 entries the count stays saturated.
        for n in [65535usize, 65536] {
            let elems: Vec<&[u8]> = vec![b"a"; n];
            let buf = encode(&elems);
            assert_eq!(&buf[8..10], b"\xff\xff");
            let zl = Ziplist::parse(&buf).unwrap();
            assert_eq!((zl.len(), zl.iter().count()), (n, n));
        }
    }

    #[test]
    fn damage_is_named() {
        let good = encode(&["hello", "12", "world"]);
        assert!(Ziplist::parse(&good).is_ok());
        let with = |i: usize, b: u8| {
            let mut bad = good.clone();
            bad[i] = b;
            Ziplist::parse(&bad).err()
        };
        assert_eq!(Ziplist::parse(&good[..10]).err(), Some(ZiplistError::TooShort));
        assert_eq!(Ziplist::parse(b"").err(), Some(ZiplistError::TooShort));
        assert_eq!(with(0, good[0] + 1), Some(ZiplistError::BadTotal));
        assert_eq!(with(good.len() - 1, 0), Some(ZiplistError::BadEnd));
        assert_eq!(with(4, 11), Some(ZiplistError::BadTail));
        assert_eq!(with(8, 2), Some(ZiplistError::BadCount));
        // Entries: 10: "hello" (7 bytes), 17: 12 (2 bytes), 19: "world" (7 bytes), 26: end.
        assert_eq!(with(10, 1), Some(ZiplistError::BadPrevLen { at: 10 }));
        assert_eq!(with(17, 6), Some(ZiplistError::BadPrevLen { at: 17 }));
        assert_eq!(with(18, 0xC1), Some(ZiplistError::BadEncoding { at: 17 }));
        assert_eq!(with(18, 0xFF), Some(ZiplistError::BadEncoding { at: 17 }));
        assert_eq!(with(18, 0x81), Some(ZiplistError::BadEncoding { at: 17 }));
        assert_eq!(with(20, 6), Some(ZiplistError::Truncated { at: 19 }));
        assert_eq!(with(20, 0x80), Some(ZiplistError::Truncated { at: 19 }));
        // A shorter string leaves bytes the walk reads as a bad next entry.
        assert!(with(20, 4).is_some());
        // A terminator byte where an entry should start, before the end.
        let mut early = good.clone();
        early.insert(26, 0xFF);
        early[0] += 1;
        assert_eq!(Ziplist::parse(&early).err(), Some(ZiplistError::BadEnd));
        // An empty ziplist whose tail does not point at its terminator.
        assert_eq!(Ziplist::parse(b"\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff").err(), Some(ZiplistError::BadTail));
        // Wide prevlen or integer data cut by the terminator.
        assert_eq!(
            Ziplist::parse(b"\x0e\x00\x00\x00\x0a\x00\x00\x00\x01\x00\xfe\x00\x00\xff").err(),
            Some(ZiplistError::Truncated { at: 10 })
        );
        assert_eq!(
            Ziplist::parse(b"\x0e\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\xe0\x01\xff").err(),
            Some(ZiplistError::Truncated { at: 10 })
        );
        // A 32-bit string length near u32::MAX must fail without reading or allocating it.
        assert_eq!(
            Ziplist::parse(b"\x11\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\x80\xff\xff\xff\xff\xff").err(),
            Some(ZiplistError::Truncated { at: 10 })
        );
    }

    /// Ziplists that Redis's `tests/integration/corrupt-dump.tcl` feeds to `RESTORE` and
    /// expects refused (the ziplist part of each payload).
    #[test]
    fn refuses_redis_corrupt_dump_cases() {
        let cases: &[(&str, &[u8])] = &[
            ("#7445", b"\x1d\x00\x00\x00\x16\x00\x00\x00\x03\x00\x00\x04CCCC\x06\x04BBBB\x06\x3fAAAA\xff"),
            (
                "hash with valid zip list header, invalid entry len",
                b"\x1b\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02a\x00\x04\x02b\x00\x04\x14c\x00\x04\x02d\x00\xff",
            ),
            (
                "invalid zlbytes header",
                b"\x25\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02a\x00\x04\x02b\x00\x04\x02c\x00\x04\x02d\x00\xff",
            ),
            (
                "quicklist big ziplist prev len",
                b"\x13\x00\x00\x00\x0e\x00\x00\x00\x02\x00\x00\x02a\x00\x0e\x02b\x00\xff",
            ),
            (
                "quicklist small ziplist prev len",
                b"\x13\x00\x00\x00\x0e\x00\x00\x00\x02\x00\x00\x02a\x00\x02\x02b\x00\xff",
            ),
            (
                "quicklist ziplist wrong count",
                b"\x13\x00\x00\x00\x0e\x00\x00\x00\x03\x00\x00\x02a\x00\x04\x02b\x00\xff",
            ),
            ("NPD in quicklistIndex", b"\x13\x00\x00\x00\x10\x00\x00\x00\x03\x12\x00\xf3\x02\x02_1\x04\xf1\xff"),
            (
                "encoded entry header reach outside the allocation",
                b"\x19\x00\x00\x00\x16\x00\x00\x00\x06\x00\x00\xf1\x02\xf1\x02\xf2\x02\x02_1\x04\x99\x02\xf3\xff",
            ),
            (
                "invalid ziplist encoding",
                b"\x1b\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\x02_9\x04\xf9\x02\x86_7\x04\xf7\x02\x02_5\xff",
            ),
            (
                "valgrind ziplist prevlen reaches outside the ziplist",
                b"\x19\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\xf5\x02\x02_3\x04\xf3\x95\x02_1\x04\xf1\xff",
            ),
            (
                "valgrind ziplist prev too big",
                b"\x13\x00\x00\x00\x10\x00\x00\x00\x03\x00\x00\xf3\x02\x02_1\xc1\xf1\xff",
            ),
            (
                "quicklist ziplist tail followed by extra data which start with 0xff",
                b"\x11\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\xf6\xff\xb0\x6c\x9c\xff",
            ),
            (
                "invalid access in ziplist tail prevlen decoding",
                b"\x19\x00\x00\x00\x16\x00\x00\x00\x05\x00\x00\xf5\x02\x02_3\x04\xf3\x02\x02_1\xfe\xf1\xff",
            ),
        ];
        for (name, zl) in cases {
            assert!(Ziplist::parse(zl).is_err(), "{name}");
        }
    }

    fn any_enc() -> impl Strategy<Value = Enc> {
        let bytes = |max: usize| proptest::collection::vec(any::<u8>(), 0..max);
        prop_oneof![
            bytes(64).prop_map(Enc::Str6),
            bytes(300).prop_map(Enc::Str14),
            bytes(40).prop_map(Enc::Str32),
            (0u8..=12).prop_map(Enc::Imm),
            any::<i8>().prop_map(Enc::I8),
            any::<i16>().prop_map(Enc::I16),
            (-(1i32 << 23)..(1 << 23)).prop_map(Enc::I24),
            any::<i32>().prop_map(Enc::I32),
            any::<i64>().prop_map(Enc::I64),
        ]
    }

    proptest! {
        #[test]
        fn any_encodings_round_trip(entries in proptest::collection::vec((any_enc(), any::<bool>()), 0..40)) {
            let buf = encode_with(&entries);
            let zl = Ziplist::parse(&buf).unwrap();
            prop_assert_eq!(zl.len(), entries.len());
            let want: Vec<Vec<u8>> = entries.iter().map(|(e, _)| e.text()).collect();
            prop_assert_eq!(texts(&zl), want);
        }

        #[test]
        fn elements_round_trip(elems in proptest::collection::vec(
            "[0-9-]{0,20}|[a-z]{0,5}|x{60,70}|y{300,400}", 0..50)) {
            let buf = encode(&elems);
            let got = decode(&buf).unwrap();
            let want: Vec<Vec<u8>> = elems.into_iter().map(String::into_bytes).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn random_buffers_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..80), tail in any::<u8>()) {
            // Give most buffers a plausible header so the entry walk is reached.
            if b.len() >= 11 {
                let n = b.len() as u32;
                b[0..4].copy_from_slice(&n.to_le_bytes());
                b[4..8].copy_from_slice(&u32::from(tail).to_le_bytes());
                *b.last_mut().unwrap() = 0xFF;
            }
            if let Ok(zl) = Ziplist::parse(&b) {
                prop_assert_eq!(zl.iter().count(), zl.len());
            }
        }

        #[test]
        fn damaged_ziplists_never_panic(
            entries in proptest::collection::vec((any_enc(), any::<bool>()), 1..12),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let mut buf = encode_with(&entries);
            for (at, byte) in flips {
                let i = at % buf.len();
                buf[i] = byte;
            }
            if cut % 4 == 0 {
                buf.truncate(cut % buf.len());
            }
            if let Ok(zl) = Ziplist::parse(&buf) {
                prop_assert_eq!(zl.iter().count(), zl.len());
                prop_assert!(zl.iter().all(|v| v.len() <= buf.len().max(20)));
            }
        }
    }
}
