//! RDB primitives: type and opcode numbers, the variable-length length encoding, and the
//! string encoding (raw, small integers, LZF), with a bounds-checked [`Reader`].
//!
//! Everything here follows Redis's `rdb.c` byte for byte (`rdbSaveLen`, `rdbSaveRawString`,
//! `rdbTryIntegerEncoding`, `rdbLoadLen`, `rdbGenericLoadStringObject`), because `DUMP`
//! output is compared by clients and `RESTORE` must accept what real Redis produces.
//! The reader treats its input as hostile: every read is bounds-checked and no length field
//! can make it allocate more than the remaining input could describe.

use std::fmt;

use super::lzf;
use crate::num::{format_i64, parse_i64};

/// Value type: string.
pub const RDB_TYPE_STRING: u8 = 0;
/// Value type: list as a linked list of strings (pre-3.2).
pub const RDB_TYPE_LIST: u8 = 1;
/// Value type: set as a plain sequence of strings.
pub const RDB_TYPE_SET: u8 = 2;
/// Value type: sorted set with scores as decimal strings (pre-RDB 8).
pub const RDB_TYPE_ZSET: u8 = 3;
/// Value type: hash as field/value string pairs.
pub const RDB_TYPE_HASH: u8 = 4;
/// Value type: sorted set with binary double scores.
pub const RDB_TYPE_ZSET_2: u8 = 5;
/// Value type: module value from a pre-GA module API (always rejected by Redis 7).
pub const RDB_TYPE_MODULE_PRE_GA: u8 = 6;
/// Value type: module value.
pub const RDB_TYPE_MODULE_2: u8 = 7;
/// Value type: hash as a zipmap blob (pre-2.6).
pub const RDB_TYPE_HASH_ZIPMAP: u8 = 9;
/// Value type: list as a ziplist blob.
pub const RDB_TYPE_LIST_ZIPLIST: u8 = 10;
/// Value type: set as an intset blob.
pub const RDB_TYPE_SET_INTSET: u8 = 11;
/// Value type: sorted set as a ziplist blob.
pub const RDB_TYPE_ZSET_ZIPLIST: u8 = 12;
/// Value type: hash as a ziplist blob.
pub const RDB_TYPE_HASH_ZIPLIST: u8 = 13;
/// Value type: list as a quicklist of ziplists.
pub const RDB_TYPE_LIST_QUICKLIST: u8 = 14;
/// Value type: stream as listpacks (RDB 9).
pub const RDB_TYPE_STREAM_LISTPACKS: u8 = 15;
/// Value type: hash as a listpack blob.
pub const RDB_TYPE_HASH_LISTPACK: u8 = 16;
/// Value type: sorted set as a listpack blob.
pub const RDB_TYPE_ZSET_LISTPACK: u8 = 17;
/// Value type: list as a quicklist of listpacks (Redis 7.0).
pub const RDB_TYPE_LIST_QUICKLIST_2: u8 = 18;
/// Value type: stream with consumer-group lag metadata (Redis 7.0).
pub const RDB_TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// Value type: set as a listpack blob (Redis 7.2).
pub const RDB_TYPE_SET_LISTPACK: u8 = 20;
/// Value type: stream with per-consumer active time (Redis 7.2).
pub const RDB_TYPE_STREAM_LISTPACKS_3: u8 = 21;
/// A hash with field expiries, as Redis 7.4's release candidates wrote it (loaded only).
pub const RDB_TYPE_HASH_METADATA_PRE_GA: u8 = 22;
/// A listpack hash with field expiries, as Redis 7.4's release candidates wrote it (loaded only).
pub const RDB_TYPE_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
/// A hash table hash with field expiries (Redis 7.4): the earliest expiry, then per field its
/// expiry relative to that, the field and the value.
pub const RDB_TYPE_HASH_METADATA: u8 = 24;
/// A listpack hash with field expiries (Redis 7.4): the earliest expiry, then a listpack of
/// field, value, expiry triplets.
pub const RDB_TYPE_HASH_LISTPACK_EX: u8 = 25;

/// File opcode: a function library (Redis 7.0).
pub const RDB_OPCODE_FUNCTION2: u8 = 245;
/// File opcode: a function library in the format of Redis 7.0's release candidates (always
/// rejected by Redis 7.0 and later).
pub const RDB_OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// File opcode: auxiliary module data.
pub const RDB_OPCODE_MODULE_AUX: u8 = 247;
/// File opcode: LRU idle time of the next key.
pub const RDB_OPCODE_IDLE: u8 = 248;
/// File opcode: LFU frequency of the next key.
pub const RDB_OPCODE_FREQ: u8 = 249;
/// File opcode: auxiliary field (name/value strings).
pub const RDB_OPCODE_AUX: u8 = 250;
/// File opcode: hash table size hints for the current database.
pub const RDB_OPCODE_RESIZEDB: u8 = 251;
/// File opcode: expire time of the next key in milliseconds.
pub const RDB_OPCODE_EXPIRETIME_MS: u8 = 252;
/// File opcode: expire time of the next key in seconds (old format).
pub const RDB_OPCODE_EXPIRETIME: u8 = 253;
/// File opcode: switch to another database.
pub const RDB_OPCODE_SELECTDB: u8 = 254;
/// File opcode: end of file (followed by the checksum).
pub const RDB_OPCODE_EOF: u8 = 255;

/// Length prefix kind (top two bits): 6-bit length in the same byte.
pub const RDB_6BITLEN: u8 = 0;
/// Length prefix kind (top two bits): 14-bit length, high bits here, low byte next.
pub const RDB_14BITLEN: u8 = 1;
/// Length prefix byte: a 32-bit big-endian length follows.
pub const RDB_32BITLEN: u8 = 0x80;
/// Length prefix byte: a 64-bit big-endian length follows.
pub const RDB_64BITLEN: u8 = 0x81;
/// Length prefix kind (top two bits): not a length but a special string encoding.
pub const RDB_ENCVAL: u8 = 3;

/// Special string encoding: 8-bit signed integer.
pub const RDB_ENC_INT8: u8 = 0;
/// Special string encoding: 16-bit little-endian signed integer.
pub const RDB_ENC_INT16: u8 = 1;
/// Special string encoding: 32-bit little-endian signed integer.
pub const RDB_ENC_INT32: u8 = 2;
/// Special string encoding: LZF-compressed string.
pub const RDB_ENC_LZF: u8 = 3;

/// Reports whether `t` is a value type byte Redis recognises (`rdbIsObjectType`), whether or
/// not this build can load it yet.
pub fn is_object_type(t: u8) -> bool {
    t <= RDB_TYPE_MODULE_2 || (RDB_TYPE_HASH_ZIPMAP..=RDB_TYPE_HASH_LISTPACK_EX).contains(&t)
}

/// Names the data type a value type byte stands for (`"string"`, `"list"`, ... as `TYPE`
/// replies), or `None` when `t` is not a value type (see [`is_object_type`]).
pub fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        RDB_TYPE_STRING => "string",
        RDB_TYPE_LIST | RDB_TYPE_LIST_ZIPLIST | RDB_TYPE_LIST_QUICKLIST | RDB_TYPE_LIST_QUICKLIST_2 => "list",
        RDB_TYPE_SET | RDB_TYPE_SET_INTSET | RDB_TYPE_SET_LISTPACK => "set",
        RDB_TYPE_ZSET | RDB_TYPE_ZSET_2 | RDB_TYPE_ZSET_ZIPLIST | RDB_TYPE_ZSET_LISTPACK => "zset",
        RDB_TYPE_HASH
        | RDB_TYPE_HASH_ZIPMAP
        | RDB_TYPE_HASH_ZIPLIST
        | RDB_TYPE_HASH_LISTPACK
        | RDB_TYPE_HASH_METADATA_PRE_GA
        | RDB_TYPE_HASH_LISTPACK_EX_PRE_GA
        | RDB_TYPE_HASH_METADATA
        | RDB_TYPE_HASH_LISTPACK_EX => "hash",
        RDB_TYPE_STREAM_LISTPACKS | RDB_TYPE_STREAM_LISTPACKS_2 | RDB_TYPE_STREAM_LISTPACKS_3 => "stream",
        RDB_TYPE_MODULE_PRE_GA | RDB_TYPE_MODULE_2 => "module",
        _ => return None,
    })
}

/// Appends one raw byte (type bytes, opcodes).
pub fn write_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

/// Appends `len` in the shortest RDB length form (`rdbSaveLen`): 1 byte below 64, 2 bytes
/// below 16384, else a marker byte and a 32- or 64-bit big-endian number.
pub fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push((RDB_6BITLEN << 6) | len as u8);
    } else if len < 1 << 14 {
        out.push((RDB_14BITLEN << 6) | (len >> 8) as u8);
        out.push(len as u8);
    } else if let Ok(len32) = u32::try_from(len) {
        out.push(RDB_32BITLEN);
        out.extend_from_slice(&len32.to_be_bytes());
    } else {
        out.push(RDB_64BITLEN);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Appends `v` in the smallest integer string encoding that holds it (`rdbEncodeInteger`)
/// and returns true, or appends nothing and returns false when it needs more than 32 bits.
pub fn write_encoded_int(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(v8) = i8::try_from(v) {
        out.push((RDB_ENCVAL << 6) | RDB_ENC_INT8);
        out.push(v8 as u8);
    } else if let Ok(v16) = i16::try_from(v) {
        out.push((RDB_ENCVAL << 6) | RDB_ENC_INT16);
        out.extend_from_slice(&v16.to_le_bytes());
    } else if let Ok(v32) = i32::try_from(v) {
        out.push((RDB_ENCVAL << 6) | RDB_ENC_INT32);
        out.extend_from_slice(&v32.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Appends an integer as an RDB string (`rdbSaveLongLongAsStringObject`): integer-encoded
/// when it fits 32 bits, else its decimal digits as a raw string.
pub fn write_i64_string(out: &mut Vec<u8>, v: i64) {
    if !write_encoded_int(out, v) {
        let mut digits = Vec::with_capacity(20);
        format_i64(v, &mut digits);
        write_len(out, digits.len() as u64);
        out.extend_from_slice(&digits);
    }
}

/// Appends `s` as an RDB string exactly as Redis's `rdbSaveRawString` chooses: strings of at
/// most 11 bytes that are canonical integers fitting 32 bits use an integer encoding; when
/// `compress` is set (Redis's `rdbcompression yes`, the default) strings longer than 20 bytes
/// are LZF-compressed if that saves at least 4 bytes; everything else is stored verbatim.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if write_encoded_int(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(packed) = lzf::compress(s, s.len() - 4) {
            out.push((RDB_ENCVAL << 6) | RDB_ENC_LZF);
            write_len(out, packed.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends a little-endian `u64` (millisecond expire times, module ids).
pub fn write_u64_le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a binary little-endian `f64` (`rdbSaveBinaryDoubleValue`: sorted set scores).
pub fn write_f64_le(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A decoded length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    /// An ordinary length or count.
    Plain(u64),
    /// A special string encoding marker (`RDB_ENC_*`) in place of a length.
    Encoded(u8),
}

/// Why RDB data could not be decoded. Each variant carries the byte offset (from the start
/// of the reader's buffer) of the item that failed, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdbError {
    /// The input ended while `needed` more bytes were expected at `offset`.
    UnexpectedEof {
        /// Where the short read started.
        offset: usize,
        /// How many bytes it wanted.
        needed: u64,
    },
    /// A length prefix byte that is none of the defined length forms.
    BadLength {
        /// Position of the prefix byte.
        offset: usize,
        /// The offending byte.
        byte: u8,
    },
    /// A special string encoding other than INT8/16/32 or LZF.
    BadStringEncoding {
        /// Position of the encoding byte.
        offset: usize,
        /// The unknown encoding number (low six bits).
        encoding: u8,
    },
    /// LZF data that does not expand to its declared length.
    BadLzf {
        /// Position of the LZF string's encoding byte.
        offset: usize,
    },
    /// A type byte that is not an RDB value type at all.
    UnknownType {
        /// Position just after the type byte, where the value would have started.
        offset: usize,
        /// The type byte.
        type_byte: u8,
    },
    /// A collection whose contents are malformed (a damaged listpack, a duplicate field, an
    /// empty collection, an impossible count).
    BadValue {
        /// Where the value (or the bad part of it) starts.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A valid RDB value type that this build cannot load yet.
    UnsupportedType {
        /// Position just after the type byte, where the value would have started.
        offset: usize,
        /// The type byte.
        type_byte: u8,
    },
}

impl RdbError {
    /// Returns the byte offset the error refers to.
    pub fn offset(&self) -> usize {
        match *self {
            RdbError::UnexpectedEof { offset, .. }
            | RdbError::BadLength { offset, .. }
            | RdbError::BadStringEncoding { offset, .. }
            | RdbError::BadLzf { offset }
            | RdbError::BadValue { offset, .. }
            | RdbError::UnknownType { offset, .. }
            | RdbError::UnsupportedType { offset, .. } => offset,
        }
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdbError::UnexpectedEof { offset, needed } => {
                write!(f, "unexpected end of RDB data at offset {offset} (needed {needed} bytes)")
            }
            RdbError::BadLength { offset, byte } => {
                write!(f, "unknown length encoding 0x{byte:02x} at offset {offset}")
            }
            RdbError::BadStringEncoding { offset, encoding } => {
                write!(f, "unknown RDB string encoding type {encoding} at offset {offset}")
            }
            RdbError::BadLzf { offset } => {
                write!(f, "invalid LZF compressed string at offset {offset}")
            }
            RdbError::BadValue { offset, what } => write!(f, "bad {what} at offset {offset}"),
            RdbError::UnknownType { offset, type_byte } => {
                write!(f, "unknown RDB value type {type_byte} before offset {offset}")
            }
            RdbError::UnsupportedType { offset, type_byte } => {
                write!(f, "RDB value type {type_byte} (before offset {offset}) is not supported yet")
            }
        }
    }
}

impl std::error::Error for RdbError {}

/// Shorthand for results of RDB decoding.
pub type Result<T> = std::result::Result<T, RdbError>;

/// A cursor over RDB bytes whose reads all check bounds and never allocate more than the
/// remaining input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` at its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Returns the offset of the next byte to be read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Returns how many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reports whether every byte has been consumed.
    pub fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Reads one byte.
    pub fn read_u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(RdbError::UnexpectedEof { offset: self.pos, needed: 1 })?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads the next `n` bytes as a slice of the input, failing (without allocating) if fewer
    /// remain. Takes a `u64` so on-disk lengths can be passed without a lossy cast.
    pub fn read_bytes(&mut self, n: u64) -> Result<&'a [u8]> {
        let eof = RdbError::UnexpectedEof { offset: self.pos, needed: n };
        let n = usize::try_from(n).map_err(|_| eof.clone())?;
        if n > self.remaining() {
            return Err(eof);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads exactly `N` bytes into an array.
    fn read_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.read_bytes(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads a length prefix (`rdbLoadLenByRef`), reporting special string encodings as
    /// [`Len::Encoded`].
    pub fn read_len(&mut self) -> Result<Len> {
        let offset = self.pos;
        let b = self.read_u8()?;
        match b >> 6 {
            RDB_6BITLEN => Ok(Len::Plain(u64::from(b & 0x3f))),
            RDB_14BITLEN => {
                let low = self.read_u8()?;
                Ok(Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(low)))
            }
            RDB_ENCVAL => Ok(Len::Encoded(b & 0x3f)),
            _ => match b {
                RDB_32BITLEN => Ok(Len::Plain(u64::from(u32::from_be_bytes(self.read_array()?)))),
                RDB_64BITLEN => Ok(Len::Plain(u64::from_be_bytes(self.read_array()?))),
                _ => Err(RdbError::BadLength { offset, byte: b }),
            },
        }
    }

    /// Reads a length where no string encoding is expected, as Redis's `rdbLoadLen(rdb,
    /// NULL)` does: an encoding marker is not an error there but yields its low six bits, and
    /// matching that keeps us accepting exactly what Redis accepts.
    pub fn read_len_plain(&mut self) -> Result<u64> {
        Ok(match self.read_len()? {
            Len::Plain(n) => n,
            Len::Encoded(e) => u64::from(e),
        })
    }

    /// Reads an RDB string in any of its encodings (raw, INT8/16/32 as decimal text, LZF),
    /// like `rdbGenericLoadStringObject`.
    pub fn read_string(&mut self) -> Result<Vec<u8>> {
        let offset = self.pos;
        match self.read_len()? {
            Len::Plain(n) => Ok(self.read_bytes(n)?.to_vec()),
            Len::Encoded(RDB_ENC_INT8) => {
                let v = self.read_u8()? as i8;
                Ok(decimal(i64::from(v)))
            }
            Len::Encoded(RDB_ENC_INT16) => {
                let v = i16::from_le_bytes(self.read_array()?);
                Ok(decimal(i64::from(v)))
            }
            Len::Encoded(RDB_ENC_INT32) => {
                let v = i32::from_le_bytes(self.read_array()?);
                Ok(decimal(i64::from(v)))
            }
            Len::Encoded(RDB_ENC_LZF) => {
                let clen = self.read_len_plain()?;
                let len = self.read_len_plain()?;
                let packed = self.read_bytes(clen)?;
                let len = usize::try_from(len).map_err(|_| RdbError::BadLzf { offset })?;
                lzf::decompress(packed, len).ok_or(RdbError::BadLzf { offset })
            }
            Len::Encoded(encoding) => Err(RdbError::BadStringEncoding { offset, encoding }),
        }
    }

    /// Reads a little-endian `u32` (second-resolution expire times).
    pub fn read_u32_le(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.read_array()?))
    }

    /// Reads a little-endian `u64` (millisecond expire times, module ids).
    pub fn read_u64_le(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.read_array()?))
    }

    /// Reads a binary little-endian `f64` (sorted set scores in `ZSET_2`).
    pub fn read_f64_le(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.read_array()?))
    }
}

/// Formats an integer-encoded string back to the text it stands for.
fn decimal(v: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(11);
    format_i64(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_object_type_has_a_name() {
        for t in 0..=255u8 {
            assert_eq!(type_name(t).is_some(), is_object_type(t), "type byte {t}");
        }
        assert_eq!(type_name(RDB_TYPE_LIST_QUICKLIST_2), Some("list"));
        assert_eq!(type_name(RDB_TYPE_SET_LISTPACK), Some("set"));
    }

    #[test]
    fn length_forms() {
        let cases: &[(u64, &[u8])] = &[
            (0, b"\x00"),
            (63, b"\x3f"),
            (64, b"\x40\x40"),
            (16383, b"\x7f\xff"),
            (16384, b"\x80\x00\x00\x40\x00"),
            (u64::from(u32::MAX), b"\x80\xff\xff\xff\xff"),
            (1 << 32, b"\x81\x00\x00\x00\x01\x00\x00\x00\x00"),
        ];
        for &(len, bytes) in cases {
            let mut out = Vec::new();
            write_len(&mut out, len);
            assert_eq!(out, bytes, "{len}");
            let mut r = Reader::new(bytes);
            assert_eq!(r.read_len(), Ok(Len::Plain(len)));
            assert!(r.is_at_end());
        }
        let mut r = Reader::new(b"\x82");
        assert_eq!(r.read_len(), Err(RdbError::BadLength { offset: 0, byte: 0x82 }));
        assert_eq!(Reader::new(b"\xc3").read_len(), Ok(Len::Encoded(3)));
        assert_eq!(Reader::new(b"\xc5").read_len_plain(), Ok(5));
        assert!(matches!(Reader::new(b"\x80\x00").read_len(), Err(RdbError::UnexpectedEof { .. })));
    }

    #[test]
    fn string_encodings() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b"\x00"),
            (b"hello", b"\x05hello"),
            (b"0", b"\xc0\x00"),
            (b"-1", b"\xc0\xff"),
            (b"127", b"\xc0\x7f"),
            (b"128", b"\xc1\x80\x00"),
            (b"-128", b"\xc0\x80"),
            (b"-129", b"\xc1\x7f\xff"),
            (b"12345", b"\xc1\x39\x30"),
            (b"32768", b"\xc2\x00\x80\x00\x00"),
            (b"2147483647", b"\xc2\xff\xff\xff\x7f"),
            (b"-2147483648", b"\xc2\x00\x00\x00\x80"),
            (b"2147483648", b"\x0a2147483648"),
            (b"01", b"\x0201"),
            (b"+1", b"\x02+1"),
            (b"-0", b"\x02-0"),
            (b" 1", b"\x02 1"),
            // Compression is attempted only above 20 bytes.
            (b"aaaaaaaaaaaaaaaaaaaa", b"\x14aaaaaaaaaaaaaaaaaaaa"),
        ];
        for &(s, bytes) in cases {
            let mut out = Vec::new();
            write_string(&mut out, s, true);
            assert_eq!(out, bytes, "{:?}", String::from_utf8_lossy(s));
            let mut r = Reader::new(bytes);
            assert_eq!(r.read_string().as_deref(), Ok(s));
            assert!(r.is_at_end());
        }
        let mut out = Vec::new();
        write_string(&mut out, &[b'a'; 21], false);
        assert_eq!(out.len(), 22);
        let mut out = Vec::new();
        write_i64_string(&mut out, i64::MIN);
        assert_eq!(out, b"\x14-9223372036854775808");
        let mut out = Vec::new();
        write_i64_string(&mut out, -5);
        assert_eq!(out, b"\xc0\xfb");
    }

    #[test]
    fn string_errors() {
        assert_eq!(Reader::new(b"\xc4").read_string(), Err(RdbError::BadStringEncoding { offset: 0, encoding: 4 }));
        assert_eq!(Reader::new(b"\x05hel").read_string(), Err(RdbError::UnexpectedEof { offset: 1, needed: 5 }));
        assert_eq!(Reader::new(b"\xc3\x02\x05\x00a").read_string(), Err(RdbError::BadLzf { offset: 0 }));
        // A declared size far beyond the input must fail without allocating it.
        let hostile = b"\x81\xff\xff\xff\xff\xff\xff\xff\xff";
        assert!(matches!(Reader::new(hostile).read_string(), Err(RdbError::UnexpectedEof { .. })));
        let hostile_lzf = b"\xc3\x01\x81\x7f\xff\xff\xff\xff\xff\xff\xff\x00a";
        assert_eq!(Reader::new(hostile_lzf).read_string(), Err(RdbError::BadLzf { offset: 0 }));
    }

    #[test]
    fn fixed_width_reads() {
        let mut out = Vec::new();
        write_u64_le(&mut out, 0x0102_0304_0506_0708);
        write_f64_le(&mut out, 1.5);
        out.extend_from_slice(&7u32.to_le_bytes());
        let mut r = Reader::new(&out);
        assert_eq!(r.read_u64_le(), Ok(0x0102_0304_0506_0708));
        assert_eq!(r.read_f64_le(), Ok(1.5));
        assert_eq!(r.read_u32_le(), Ok(7));
        assert_eq!(r.read_u8(), Err(RdbError::UnexpectedEof { offset: 20, needed: 1 }));
    }

    proptest! {
        #[test]
        fn len_round_trips(len in any::<u64>()) {
            let mut out = Vec::new();
            write_len(&mut out, len);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.read_len(), Ok(Len::Plain(len)));
            prop_assert!(r.is_at_end());
        }

        #[test]
        fn string_round_trips(s in proptest::collection::vec(any::<u8>(), 0..300), compress in any::<bool>()) {
            let mut out = Vec::new();
            write_string(&mut out, &s, compress);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.read_string(), Ok(s));
            prop_assert!(r.is_at_end());
        }

        #[test]
        fn integer_strings_round_trip(v in any::<i64>()) {
            let text = v.to_string().into_bytes();
            let mut out = Vec::new();
            write_string(&mut out, &text, true);
            prop_assert_eq!(Reader::new(&out).read_string(), Ok(text));
        }

        #[test]
        fn reading_garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&b);
            while r.read_string().is_ok() && !r.is_at_end() {}
        }
    }
}
