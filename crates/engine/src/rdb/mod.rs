//! Low-level RDB serialization shared by `DUMP`/`RESTORE` now and RDB files later.
//!
//! * [`encoding`]: type/opcode numbers, lengths, strings, and the bounds-checked [`Reader`].
//! * [`lzf`]: the LZF codec Redis uses for long strings.
//! * [`crc64`]: Redis's CRC-64 for payload trailers and file checksums.
//! * [`payload`]: the `DUMP` payload trailer (RDB version + CRC-64).
//! * [`ziplist`]: the pre-7.0 encoding of small lists and hashes, read while loading.
//! * [`zipmap`]: the pre-2.6 encoding of small hashes, read while loading.
//! * `legacy`: decoding of the list and hash types older Redis versions wrote.
//!
//! Values are written straight from [`Value`] (collections in the forms Redis 7.0 writes, so
//! redis-server loads them) and decoded, from every list and hash type Redis 7.x loads, into
//! [`RdbValue`], which [`RdbValue::into_value`] turns into a value encoded as the caller's
//! [`Limits`] say.

pub mod crc64;
pub mod encoding;
mod legacy;
pub mod lzf;
pub mod payload;
pub mod ziplist;
pub mod zipmap;

use crate::hash::Hash;
use crate::limits::Limits;
use crate::list::List;
use crate::listpack::{Listpack, LpValue};
use crate::set::Set;
use crate::value::{Str, Value};
use crate::zset::ZSet;
use std::fmt;

pub use encoding::{Len, RdbError, Reader};
pub use payload::PayloadError;

/// A value as decoded from RDB bytes, before the keyspace picks its encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    /// A string value (`RDB_TYPE_STRING`).
    String(Vec<u8>),
    /// A list as listpack nodes (none empty).
    List(Vec<Listpack>),
    /// A hash as field/value pairs (no field twice).
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// A hash whose fields may have expiries (Unix milliseconds): field, value, expiry (no
    /// field twice). `listpack` says it was a listpack (`listpackex` again when small).
    VolatileHash {
        /// Field, value and expiry of each field.
        fields: Vec<(Vec<u8>, Vec<u8>, Option<i64>)>,
        /// Written as a listpack.
        listpack: bool,
    },
    /// A set's members (none twice).
    Set(Vec<Vec<u8>>),
    /// A sorted set's members and scores (no member twice, no NaN).
    ZSet(Vec<(Vec<u8>, f64)>),
}

impl RdbValue {
    /// The value, encoded as `limits` say.
    pub fn into_value(self, limits: &Limits) -> Value {
        match self {
            RdbValue::String(s) => Value::Str(Str::from_vec(s)),
            RdbValue::List(nodes) => Value::List(List::from_nodes(nodes, limits)),
            RdbValue::Hash(pairs) => {
                let mut h = Hash::new();
                h.reserve_for(pairs.len(), limits);
                for (f, v) in &pairs {
                    h.set(f, v, limits);
                }
                Value::Hash(h)
            }
            RdbValue::VolatileHash { fields, listpack } => {
                // Fields already past their time are loaded too: the caller's expiry removes
                // them (and logs it), so every node that loads the same data holds the same.
                let mut h = Hash::new();
                h.reserve_for(fields.len(), limits);
                if !listpack {
                    h.convert_to_table();
                }
                h.make_volatile();
                for (f, v, when) in &fields {
                    h.set(f, v, limits);
                    if let Some(t) = when {
                        h.set_field_expire(f, *t);
                    }
                }
                Value::Hash(h)
            }
            RdbValue::Set(members) => {
                let mut s = Set::new_for(&members[0], members.len(), limits);
                for m in &members {
                    s.add(m, limits);
                }
                Value::Set(s)
            }
            RdbValue::ZSet(pairs) => {
                // The encoding Redis picks for the loaded size (`rdbLoadObject` converts both
                // ways).
                let max_len = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
                let mut z = ZSet::new_for(pairs.len(), max_len, limits);
                for (m, score) in &pairs {
                    z.insert(m, *score, limits);
                }
                Value::ZSet(z)
            }
        }
    }
}

/// Quicklist node containers (`QUICKLIST_NODE_CONTAINER_*`).
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// The RDB type byte Redis 7.0 writes for a value in this encoding (7.4's types for hashes
/// with field expiries, which older versions cannot load anyway).
pub fn object_type(v: &Value) -> u8 {
    match v {
        Value::Str(_) => encoding::RDB_TYPE_STRING,
        Value::List(_) => encoding::RDB_TYPE_LIST_QUICKLIST_2,
        Value::Hash(h) if h.volatile_fields() > 0 => match h.encoding() {
            "listpackex" => encoding::RDB_TYPE_HASH_LISTPACK_EX,
            _ => encoding::RDB_TYPE_HASH_METADATA,
        },
        // A hash that had field expiries and has none left is written as a plain one, which
        // every version loads.
        Value::Hash(h) if h.encoding() == "hashtable" => encoding::RDB_TYPE_HASH,
        Value::Hash(_) => encoding::RDB_TYPE_HASH_LISTPACK,
        Value::Set(Set::Ints(_)) => encoding::RDB_TYPE_SET_INTSET,
        // Redis 7.2 writes listpack sets as type 20, which 7.0 cannot load: the plain form.
        Value::Set(_) => encoding::RDB_TYPE_SET,
        Value::ZSet(ZSet::Pack(_)) => encoding::RDB_TYPE_ZSET_LISTPACK,
        Value::ZSet(ZSet::Skip(_)) => encoding::RDB_TYPE_ZSET_2,
    }
}

/// Appends a value's serialized form (what follows the type byte, and the key in a file).
pub fn write_object(out: &mut Vec<u8>, v: &Value, compress: bool) {
    let string = |out: &mut Vec<u8>, e: LpValue<'_>| e.with_bytes(|b| encoding::write_string(out, b, compress));
    match v {
        Value::Str(s) => s.with_bytes(|b| encoding::write_string(out, b, compress)),
        Value::List(l) => {
            // A listpack-encoded list is written as a quicklist of one node, as Redis 7.2
            // does, so that 7.0 loads it.
            encoding::write_len(out, l.nodes().count() as u64);
            for node in l.nodes() {
                encoding::write_len(out, CONTAINER_PACKED);
                encoding::write_string(out, node.as_bytes(), compress);
            }
        }
        Value::Hash(h) => write_hash(out, h, object_type(v), compress),
        Value::Set(Set::Ints(s)) => encoding::write_string(out, s.as_bytes(), compress),
        Value::Set(s) => {
            encoding::write_len(out, s.len() as u64);
            s.for_each(|m| string(out, m));
        }
        Value::ZSet(ZSet::Pack(lp)) => encoding::write_string(out, lp.as_bytes(), compress),
        Value::ZSet(z) => {
            // Greatest first, as Redis writes them: each insert on loading lands at the front.
            encoding::write_len(out, z.len() as u64);
            z.walk(0, usize::MAX, true, |m, score| {
                string(out, m);
                encoding::write_f64_le(out, score);
                true
            });
        }
    }
}

/// Writes a hash as RDB type `t` (see [`object_type`]).
fn write_hash(out: &mut Vec<u8>, h: &Hash, t: u8, compress: bool) {
    let string = |out: &mut Vec<u8>, e: LpValue<'_>| e.with_bytes(|b| encoding::write_string(out, b, compress));
    match t {
        encoding::RDB_TYPE_HASH_LISTPACK => match h {
            Hash::Pack(lp) => encoding::write_string(out, lp.as_bytes(), compress),
            _ => {
                let mut lp = Listpack::new();
                h.for_each(|f, v| {
                    f.with_bytes(|b| lp.push_back(b));
                    v.with_bytes(|b| lp.push_back(b));
                });
                encoding::write_string(out, lp.as_bytes(), compress);
            }
        },
        encoding::RDB_TYPE_HASH => {
            encoding::write_len(out, h.len() as u64);
            h.for_each(|f, v| {
                string(out, f);
                string(out, v);
            });
        }
        encoding::RDB_TYPE_HASH_LISTPACK_EX => {
            // Triplets in expiry order, fields without one last (0), as Redis keeps them:
            // it reads a `listpackex`'s earliest expiry off its front.
            let min = h.min_field_expire().unwrap_or(0);
            encoding::write_u64_le(out, min as u64);
            let mut lp = Listpack::new();
            h.for_each_field_expire(|f, at| {
                lp.push_back(f);
                lp.push_back(&h.get(f).expect("a volatile field exists").to_vec());
                lp.push_back(at.to_string().as_bytes());
            });
            h.for_each(|f, v| {
                if f.with_bytes(|b| h.field_expire(b)).is_none() {
                    f.with_bytes(|b| lp.push_back(b));
                    v.with_bytes(|b| lp.push_back(b));
                    lp.push_back(b"0");
                }
            });
            encoding::write_string(out, lp.as_bytes(), compress);
        }
        encoding::RDB_TYPE_HASH_METADATA => {
            let min = h.min_field_expire().expect("written only with field expiries");
            encoding::write_u64_le(out, min as u64);
            encoding::write_len(out, h.len() as u64);
            h.for_each(|f, v| {
                let ttl = f.with_bytes(|b| h.field_expire(b)).map_or(0, |at| (at - min + 1) as u64);
                encoding::write_len(out, ttl);
                string(out, f);
                string(out, v);
            });
        }
        _ => unreachable!("not a hash type: {t}"),
    }
}

/// Builds the `DUMP` payload of any value.
pub fn dump_object(v: &Value) -> Vec<u8> {
    let mut body = Vec::new();
    encoding::write_u8(&mut body, object_type(v));
    write_object(&mut body, v, true);
    payload::wrap(body)
}

/// Builds the complete `DUMP` payload for a string value: type 0, the string in Redis's
/// chosen encoding (integer, LZF when long and compressible, else raw), version and CRC.
pub fn dump_string(value: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(value.len() + 16);
    encoding::write_u8(&mut body, encoding::RDB_TYPE_STRING);
    encoding::write_string(&mut body, value, true);
    payload::wrap(body)
}

/// Decodes the value that follows an already-read type byte (`rdbLoadObject`), failing with
/// [`RdbError::UnknownType`] for bytes that are no RDB type and
/// [`RdbError::UnsupportedType`] for real types this build cannot load yet.
pub fn decode_value(type_byte: u8, r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    match type_byte {
        encoding::RDB_TYPE_STRING => Ok(RdbValue::String(r.read_string()?)),
        encoding::RDB_TYPE_LIST_QUICKLIST_2 => read_quicklist2(r),
        encoding::RDB_TYPE_HASH_LISTPACK => read_hash_listpack(r),
        encoding::RDB_TYPE_HASH => read_hash(r),
        encoding::RDB_TYPE_HASH_METADATA => read_hash_metadata(r, true),
        encoding::RDB_TYPE_HASH_METADATA_PRE_GA => read_hash_metadata(r, false),
        encoding::RDB_TYPE_HASH_LISTPACK_EX => {
            r.read_u64_le()?; // the earliest expiry, found again from the triplets
            read_hash_listpack_ex(r)
        }
        encoding::RDB_TYPE_HASH_LISTPACK_EX_PRE_GA => read_hash_listpack_ex(r),
        encoding::RDB_TYPE_LIST => legacy::read_list(r),
        encoding::RDB_TYPE_LIST_ZIPLIST => legacy::read_list_ziplist(r),
        encoding::RDB_TYPE_LIST_QUICKLIST => legacy::read_quicklist(r),
        encoding::RDB_TYPE_HASH_ZIPLIST => legacy::read_hash_ziplist(r),
        encoding::RDB_TYPE_HASH_ZIPMAP => legacy::read_hash_zipmap(r),
        encoding::RDB_TYPE_SET => read_set(r),
        encoding::RDB_TYPE_SET_INTSET => read_intset(r),
        encoding::RDB_TYPE_SET_LISTPACK => read_set_listpack(r),
        encoding::RDB_TYPE_ZSET => read_zset(r, false),
        encoding::RDB_TYPE_ZSET_2 => read_zset(r, true),
        encoding::RDB_TYPE_ZSET_LISTPACK => read_zset_listpack(r),
        encoding::RDB_TYPE_ZSET_ZIPLIST => legacy::read_zset_ziplist(r),
        t if encoding::is_object_type(t) => Err(RdbError::UnsupportedType { offset, type_byte }),
        _ => Err(RdbError::UnknownType { offset, type_byte }),
    }
}

/// A listpack string, validated.
fn read_listpack(r: &mut Reader<'_>) -> Result<Listpack, RdbError> {
    let offset = r.position();
    Listpack::from_vec(r.read_string()?).map_err(|_| RdbError::BadValue { offset, what: "listpack" })
}

/// A count of items, refusing counts the remaining input cannot hold (each item takes at
/// least one byte), so a forged count cannot make the loader reserve memory it never fills.
fn read_count(r: &mut Reader<'_>) -> Result<usize, RdbError> {
    let offset = r.position();
    let n = r.read_len_plain()?;
    if n > r.remaining() as u64 {
        return Err(RdbError::BadValue { offset, what: "element count" });
    }
    Ok(n as usize)
}

/// `RDB_TYPE_LIST_QUICKLIST_2`: nodes, each a plain element or a listpack.
fn read_quicklist2(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let n = read_count(r)?;
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.position();
        match r.read_len_plain()? {
            CONTAINER_PLAIN => {
                let e = r.read_string()?;
                // Redis refuses a node of zero bytes (a packed one fails as a listpack).
                if e.is_empty() {
                    return Err(RdbError::BadValue { offset: at, what: "quicklist node of zero bytes" });
                }
                nodes.push(Listpack::from_elems([e.as_slice()]));
            }
            CONTAINER_PACKED => {
                let lp = read_listpack(r)?;
                // Redis skips empty nodes.
                if !lp.is_empty() {
                    nodes.push(lp);
                }
            }
            _ => return Err(RdbError::BadValue { offset: at, what: "quicklist container" }),
        }
    }
    if nodes.is_empty() {
        return Err(RdbError::BadValue { offset, what: "empty list" });
    }
    Ok(RdbValue::List(nodes))
}

/// Refuses a collection whose elements (fields, members) name one twice (`duplicate` says
/// what) or that has none (`empty`), as Redis refuses to load either.
fn check_distinct<'a>(
    names: impl ExactSizeIterator<Item = &'a [u8]>,
    offset: usize,
    duplicate: &'static str,
    empty: &'static str,
) -> Result<(), RdbError> {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    let mut n = 0;
    for name in names {
        if !seen.insert(name) {
            return Err(RdbError::BadValue { offset, what: duplicate });
        }
        n += 1;
    }
    if n == 0 {
        return Err(RdbError::BadValue { offset, what: empty });
    }
    Ok(())
}

/// Checks that no field of `pairs` appears twice.
fn unique_fields(pairs: Vec<(Vec<u8>, Vec<u8>)>, offset: usize) -> Result<RdbValue, RdbError> {
    check_distinct(pairs.iter().map(|(f, _)| f.as_slice()), offset, "hash with a duplicate field", "empty hash")?;
    Ok(RdbValue::Hash(pairs))
}

/// `RDB_TYPE_HASH_LISTPACK`: field, value, ... in one listpack.
fn read_hash_listpack(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let lp = read_listpack(r)?;
    if lp.len() % 2 != 0 {
        return Err(RdbError::BadValue { offset, what: "hash listpack with an odd count" });
    }
    let mut pairs = Vec::with_capacity(lp.len() / 2);
    let mut it = lp.iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        pairs.push((f.to_vec(), v.to_vec()));
    }
    unique_fields(pairs, offset)
}

/// `RDB_TYPE_HASH`: a count, then field and value strings.
fn read_hash(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let n = read_count(r)?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let f = r.read_string()?;
        let v = r.read_string()?;
        pairs.push((f, v));
    }
    unique_fields(pairs, offset)
}

/// The latest field expiry Redis stores (`EB_EXPIRE_TIME_MAX`, 2^48 - 1 ms).
const MAX_FIELD_EXPIRY: u64 = (1 << 48) - 1;

/// Checks a volatile hash's fields: not empty, no field twice.
fn unique_volatile_fields(
    fields: Vec<(Vec<u8>, Vec<u8>, Option<i64>)>,
    listpack: bool,
    offset: usize,
) -> Result<RdbValue, RdbError> {
    check_distinct(fields.iter().map(|(f, _, _)| f.as_slice()), offset, "hash with a duplicate field", "empty hash")?;
    Ok(RdbValue::VolatileHash { fields, listpack })
}

/// `RDB_TYPE_HASH_METADATA` (`relative`: each expiry counted from the earliest, which comes
/// first; 0 = none) and its pre-GA form (absolute expiries, no header).
fn read_hash_metadata(r: &mut Reader<'_>, relative: bool) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let min = if relative { r.read_u64_le()? } else { 0 };
    let n = read_count(r)?;
    let mut fields = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.position();
        let ttl = r.read_len_plain()?;
        let when = match ttl {
            0 => None,
            t if relative => Some(t.checked_add(min).map(|w| w - 1)),
            t => Some(Some(t)),
        };
        let when = match when {
            None => None,
            Some(Some(w)) if w <= MAX_FIELD_EXPIRY => Some(w as i64),
            Some(_) => return Err(RdbError::BadValue { offset: at, what: "field expiry" }),
        };
        let f = r.read_string()?;
        let v = r.read_string()?;
        fields.push((f, v, when));
    }
    unique_volatile_fields(fields, false, offset)
}

/// `RDB_TYPE_HASH_LISTPACK_EX` after its header, and the pre-GA form: field, value, expiry
/// (0 = none) triplets in one listpack.
fn read_hash_listpack_ex(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let lp = read_listpack(r)?;
    if lp.len() % 3 != 0 {
        return Err(RdbError::BadValue { offset, what: "hash listpack with a count not of triplets" });
    }
    let mut fields = Vec::with_capacity(lp.len() / 3);
    let mut it = lp.iter();
    while let (Some(f), Some(v), Some(t)) = (it.next(), it.next(), it.next()) {
        let when = match t.as_int() {
            Some(0) => None,
            Some(w) if (1..=MAX_FIELD_EXPIRY as i64).contains(&w) => Some(w),
            _ => return Err(RdbError::BadValue { offset, what: "field expiry" }),
        };
        fields.push((f.to_vec(), v.to_vec(), when));
    }
    unique_volatile_fields(fields, true, offset)
}

/// Checks that no member appears twice and the set is not empty.
fn unique_members(members: Vec<Vec<u8>>, offset: usize) -> Result<RdbValue, RdbError> {
    check_distinct(members.iter().map(Vec::as_slice), offset, "set with a duplicate member", "empty set")?;
    Ok(RdbValue::Set(members))
}

/// `RDB_TYPE_SET`: a count, then member strings.
fn read_set(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let n = read_count(r)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        members.push(r.read_string()?);
    }
    unique_members(members, offset)
}

/// `RDB_TYPE_SET_INTSET`: an intset string.
fn read_intset(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let s =
        crate::intset::Intset::from_vec(r.read_string()?).map_err(|_| RdbError::BadValue { offset, what: "intset" })?;
    unique_members(s.iter().map(|v| v.to_string().into_bytes()).collect(), offset)
}

/// `RDB_TYPE_SET_LISTPACK` (Redis 7.2): members in one listpack.
fn read_set_listpack(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let lp = read_listpack(r)?;
    unique_members(lp.iter().map(|m| m.to_vec()).collect(), offset)
}

/// Checks a sorted set's pairs: not empty, no member twice, no NaN score.
fn unique_scored(pairs: Vec<(Vec<u8>, f64)>, offset: usize) -> Result<RdbValue, RdbError> {
    check_distinct(
        pairs.iter().map(|(m, _)| m.as_slice()),
        offset,
        "sorted set with a duplicate member",
        "empty sorted set",
    )?;
    if pairs.iter().any(|(_, s)| s.is_nan()) {
        return Err(RdbError::BadValue { offset, what: "sorted set with a NaN score" });
    }
    Ok(RdbValue::ZSet(pairs))
}

/// A score stored as text (`RDB_TYPE_ZSET`, `rdbLoadDoubleValue`): a length byte, where 253,
/// 254 and 255 stand for NaN, +inf and -inf, then that many bytes of decimal text.
fn read_text_score(r: &mut Reader<'_>) -> Result<f64, RdbError> {
    let offset = r.position();
    match r.read_u8()? {
        253 => Ok(f64::NAN),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        n => {
            let text = r.read_bytes(u64::from(n))?;
            crate::num::parse_f64(text).ok_or(RdbError::BadValue { offset, what: "score" })
        }
    }
}

/// `RDB_TYPE_ZSET` (text scores) and `RDB_TYPE_ZSET_2` (binary scores): a count, then member
/// and score pairs.
fn read_zset(r: &mut Reader<'_>, binary: bool) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let n = read_count(r)?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let m = r.read_string()?;
        let score = if binary { r.read_f64_le()? } else { read_text_score(r)? };
        pairs.push((m, score));
    }
    unique_scored(pairs, offset)
}

/// A score entry of a listpack or ziplist: an integer, or text that parses as a double.
pub(super) fn entry_score(v: LpValue<'_>, offset: usize) -> Result<f64, RdbError> {
    match v {
        LpValue::Int(i) => Ok(i as f64),
        LpValue::Str(s) => crate::num::parse_f64(s).ok_or(RdbError::BadValue { offset, what: "score" }),
    }
}

/// Member/score pairs of a listpack or ziplist's entries.
pub(super) fn scored_pairs<'a>(
    mut it: impl Iterator<Item = LpValue<'a>>,
    count: usize,
    offset: usize,
) -> Result<RdbValue, RdbError> {
    if !count.is_multiple_of(2) {
        return Err(RdbError::BadValue { offset, what: "sorted set with an odd count" });
    }
    let mut pairs = Vec::with_capacity(count / 2);
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        pairs.push((m.to_vec(), entry_score(s, offset)?));
    }
    unique_scored(pairs, offset)
}

/// `RDB_TYPE_ZSET_LISTPACK`: member, score, ... in one listpack.
fn read_zset_listpack(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let offset = r.position();
    let lp = read_listpack(r)?;
    scored_pairs(lp.iter(), lp.len(), offset)
}

/// Reads a type byte and the value after it.
pub fn read_value(r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let type_byte = r.read_u8()?;
    decode_value(type_byte, r)
}

/// Why `RESTORE` refused a payload; the two variants map to Redis's two error replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// Bad trailer: reply `ERR DUMP payload version or checksum are wrong`.
    Payload(PayloadError),
    /// Trailer fine but the value does not decode: reply `ERR Bad data format`.
    BadData(RdbError),
}

impl RestoreError {
    /// Returns the error text Redis replies with (without the `ERR ` prefix).
    pub fn message(&self) -> &'static str {
        match self {
            RestoreError::Payload(_) => "DUMP payload version or checksum are wrong",
            RestoreError::BadData(_) => "Bad data format",
        }
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Payload(e) => write!(f, "{}: {e}", self.message()),
            RestoreError::BadData(e) => write!(f, "{}: {e}", self.message()),
        }
    }
}

impl std::error::Error for RestoreError {}

/// Verifies and decodes a `DUMP` payload exactly as Redis 7's `RESTORE` does.
///
/// Faithful to Redis, decoding reads from the start of the whole payload, trailer included,
/// and ignores whatever is left over: a value whose declared length runs past the body
/// swallows trailer bytes instead of failing, and trailing garbage before the trailer is
/// accepted (both verified against redis-server 7.0.15).
pub fn restore_payload(payload: &[u8]) -> Result<RdbValue, RestoreError> {
    payload::verify(payload, true).map_err(RestoreError::Payload)?;
    let mut r = Reader::new(payload);
    read_value(&mut r).map_err(RestoreError::BadData)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `DUMP` payloads captured from redis-server 7.0.15 (`SET k <value>`, `DUMP k`).
    fn redis_vectors() -> Vec<(Vec<u8>, Vec<u8>)> {
        let x10000 = {
            let mut p = b"\x00\xc3@xg\x10\x01xx".to_vec();
            for _ in 0..37 {
                p.extend_from_slice(b"\xe0\xff\x00");
            }
            p.extend_from_slice(b"\xe0\xdb\x00\x01xx\x0a\x00m;7\xc6\xf6\xbc\xf4\xb6");
            p
        };
        let pattern = {
            let mut p = b"\x00\xc3A\x13C\x00".to_vec();
            for chunk in 0..8u8 {
                p.push(0x1f);
                p.extend(chunk * 32..=chunk * 32 + 31);
            }
            p.extend_from_slice(b"\x00\x00\xe0\xff\xff\xe1\xec\xff\x01\xfe\xff");
            p.extend_from_slice(b"\x0a\x00G$\x9f\xc6B8\xfc\x88");
            p
        };
        let all_bytes: Vec<u8> = (0..=255u8).cycle().take(768).collect();
        let text: &[u8] = &[
            &b"Lorem ipsum dolor sit amet, lorem ipsum dolor sit amet, "[..],
            &b"consectetur adipiscing elit lorem ipsum"[..],
        ]
        .concat();
        let text_dump: &[u8] = &[
            &b"\x00\xc3@D@_\x1bLorem ipsum dolor sit amet,  \x0d\xe0\x10\x1b"[..],
            &b"\x18consectetur adipiscing el =\xe0\x007\x01um"[..],
            &b"\x0a\x00\xc4\x1c\xef\x98`d\xbb\x0d"[..],
        ]
        .concat();
        let cases: Vec<(&[u8], &[u8])> = vec![
            (b"hello", b"\x00\x05hello\x0a\x00cr\xdfve4 \x0a"),
            (b"12345", b"\x00\xc190\x0a\x00\x9d\x94\xea'\x93\xfc\x08\xb9"),
            (b"-1", b"\x00\xc0\xff\x0a\x00\x0c\x93~$\x85\x08\x9d\xc5"),
            (b"-128", b"\x00\xc0\x80\x0a\x00\x99f2m/\x0c[\xd9"),
            (b"2147483647", b"\x00\xc2\xff\xff\xff\x7f\x0a\x00,t\xe5\x9e\xe0.\xad\xa1"),
            (b"12345678901234", b"\x00\x0e12345678901234\x0a\x00\xaf\xcb\x8c{v\xa0\x8bj"),
            (b"", b"\x00\x00\x0a\x00]\x9b\x5c@\x0f\x7f\xa2\xda"),
            (&[b'a'; 100], b"\x00\xc3\x09@d\x01aa\xe0W\x00\x01aa\x0a\x00\xe8\xa3\xb5\x07\xb0m\xf2q"),
            (b"abcabcabcabcabcabcabc", b"\x00\xc3\x0b\x15\x03abca\xe0\x06\x02\x01bc\x0a\x00\x02\x01q\x0c\x8e\xeb\xf9F"),
            (text, text_dump),
        ];
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = cases.into_iter().map(|(v, p)| (v.to_vec(), p.to_vec())).collect();
        out.push((vec![b'x'; 10_000], x10000));
        out.push((all_bytes, pattern));
        out
    }

    #[test]
    fn decodes_real_redis_dumps() {
        for (value, payload) in redis_vectors() {
            assert_eq!(
                restore_payload(&payload),
                Ok(RdbValue::String(value.clone())),
                "{:?}",
                String::from_utf8_lossy(&value[..value.len().min(20)])
            );
            let body = payload::unwrap(&payload).unwrap();
            let mut r = Reader::new(body);
            assert_eq!(read_value(&mut r), Ok(RdbValue::String(value)));
            assert!(r.is_at_end());
        }
    }

    #[test]
    fn dumps_byte_identical_to_redis() {
        for (value, payload) in redis_vectors() {
            assert_eq!(dump_string(&value), payload, "{:?}", String::from_utf8_lossy(&value[..value.len().min(20)]));
            assert_eq!(dump_object(&Value::Str(Str::from_vec(value))), payload);
        }
    }

    /// `DUMP` payloads of lists and hashes captured from redis-server 7.0.15, which writes only
    /// the current forms: quicklists of listpacks and listpack or plain hashes.
    #[test]
    fn decodes_real_redis_collection_dumps() {
        let lists = |v: &RdbValue| -> (Vec<usize>, Vec<Vec<u8>>) {
            let RdbValue::List(nodes) = v else { panic!("not a list: {v:?}") };
            (
                nodes.iter().map(Listpack::len).collect(),
                nodes.iter().flat_map(|n| n.iter().map(|e| e.to_vec())).collect(),
            )
        };
        let texts = |items: &[&[u8]]| -> Vec<Vec<u8>> { items.iter().map(|s| s.to_vec()).collect() };
        let pairs = |items: &[(&[u8], &[u8])]| -> Vec<(Vec<u8>, Vec<u8>)> {
            items.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()
        };

        // CONFIG SET list-max-listpack-size 4; RPUSH l1 a 1 -1 300 70000 "" hello 12345678901
        // -9223372036854775808 last: three nodes, integers in every listpack width.
        let l1 = b"\x12\x03\x02\x12\x12\x00\x00\x00\x04\x00\x81a\x02\x01\x01\xdf\xff\x02\xc1,\x02\xff\x02\x1f\x1f\
            \x00\x00\x00\x04\x00\xf2p\x11\x01\x04\x80\x01\x85hello\x06\xf45\x1c\xdc\xdf\x02\x00\x00\x00\x09\
            \xff\x02\x17\x17\x00\x00\x00\x02\x00\xf4\x00\x00\x00\x00\x00\x00\x00\x80\x09\x84last\x05\xff\x0a\
            \x00b\x14\xa1\xbe\xc0k\xf0V";
        let want: &[&[u8]] =
            &[b"a", b"1", b"-1", b"300", b"70000", b"", b"hello", b"12345678901", b"-9223372036854775808", b"last"];
        assert_eq!(lists(&restore_payload(l1).unwrap()), (vec![4, 4, 2], texts(want)));

        // Default node size; RPUSH l2 head 7 <10000 x> tail 8: the big element gets its own
        // packed node (plain nodes are only for elements of 1 GB), LZF-compressed in the dump.
        let l2 = b"\x12\x03\x02\x0f\x0f\x00\x00\x00\x02\x00\x84head\x05\x07\x01\xff\x02\xc3@\x83g\x1e\x07\x1e'\x00\
            \x00\x01\x00\xf0\x10\x20\x06\x00x\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\
            \xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\
            \xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\
            \xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\
            \xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\
            \xe0\xde\x00\x02N\x95\xff\x02\x0f\x0f\x00\x00\x00\x02\x00\x84tail\x05\x08\x01\xff\x0a\x00\x1eD\
            \x08\x13B2`\x1a";
        let big = vec![b'x'; 10000];
        let want: &[&[u8]] = &[b"head", b"7", &big, b"tail", b"8"];
        assert_eq!(lists(&restore_payload(l2).unwrap()), (vec![2, 1, 2], texts(want)));

        // list-max-listpack-size 4, list-compress-depth 1; twelve RPUSHes of
        // "compressible-compressible-compressible-<i>": every node LZF-compressed.
        let l3 = b"\x12\x03\x02\xc3,@\xaf\x13\xaf\x00\x00\x00\x04\x00\xa8compressible-\xe0\x11\x0c\x011)\xe0\x1f)\
            \x002\xe0\x20)\x003\xe0\x20)\x024)\xff\x02\xc3,@\xaf\x13\xaf\x00\x00\x00\x04\x00\xa8compressible\
            -\xe0\x11\x0c\x015)\xe0\x1f)\x006\xe0\x20)\x007\xe0\x20)\x028)\xff\x02\xc32@\xb2\x13\xb2\x00\x00\
            \x00\x04\x00\xa8compressible-\xe0\x11\x0c\x029)\xa9\xe0\x11\x1c\xe0\x04\x19\x0210*\xe0\x20*\x001\
            \xe0!*\x022*\xff\x0a\x00\xa2/\x9c\xaf\x92\x92\xc9\x9c";
        let want: Vec<Vec<u8>> =
            (1..=12).map(|i| format!("compressible-compressible-compressible-{i}").into_bytes()).collect();
        assert_eq!(lists(&restore_payload(l3).unwrap()), (vec![4, 4, 4], want));

        // HSET h1 f1 v1 f2 2 f3 -300 num 12345678901 "" empty: a listpack hash, which
        // re-dumps byte for byte.
        let h1 = b"\x1044\x00\x00\x00\x0a\x00\x82f1\x03\x82v1\x03\x82f2\x03\x02\x01\x82f3\x03\xde\xd4\x02\x83num\
            \x04\xf45\x1c\xdc\xdf\x02\x00\x00\x00\x09\x80\x01\x85empty\x06\xff\x0a\x00G\xfb\x1a%\xb7QR\xa3";
        let want = pairs(&[(b"f1", b"v1"), (b"f2", b"2"), (b"f3", b"-300"), (b"num", b"12345678901"), (b"", b"empty")]);
        let v = restore_payload(h1).unwrap();
        assert_eq!(v, RdbValue::Hash(want));
        assert_eq!(dump_object(&v.into_value(&Limits::default())), h1);

        // hash-max-listpack-entries 2; HSET h2 f1 v1 f2 2 f3 -300 1000 big "" empty: a plain
        // hash (RDB_TYPE_HASH), integer-encoded strings included, in hash-table order.
        let h2 = b"\x04\x05\x02f2\xc0\x02\xc1\xe8\x03\x03big\x02f3\xc1\xd4\xfe\x02f1\x02v1\x00\x05empty\x0a\x00F=\
            \xdc.'\x98L)";
        let want = pairs(&[(b"f2", b"2"), (b"1000", b"big"), (b"f3", b"-300"), (b"f1", b"v1"), (b"", b"empty")]);
        assert_eq!(restore_payload(h2), Ok(RdbValue::Hash(want)));

        // HSET h3 long <100 y>; HSET h3 short 1: a plain hash because of the long value,
        // which is LZF-compressed.
        let h3 = b"\x04\x02\x05short\xc0\x01\x04long\xc3\x09@d\x01yy\xe0W\x00\x01yy\x0a\x00\x95\x85*\x97\xde\xe5^\
            \x9d";
        let long = vec![b'y'; 100];
        assert_eq!(restore_payload(h3), Ok(RdbValue::Hash(pairs(&[(b"short", b"1"), (b"long", &long)]))));
    }

    /// Each case was fed to `RESTORE` on redis-server 7.0.15; the expected outcome is what it
    /// answered.
    #[test]
    fn restore_quirks_match_redis() {
        let wrap = |body: &[u8]| payload::wrap(body.to_vec());
        let string = |s: &[u8]| Ok(RdbValue::String(s.to_vec()));
        let bad_data = |r: Result<RdbValue, RestoreError>| matches!(r, Err(RestoreError::BadData(_)));
        // The value may run into the trailer ("hel" + version bytes) ...
        assert_eq!(restore_payload(&wrap(b"\x00\x05hel")), string(b"hel\x0a\x00"));
        // ... and bytes left over before the trailer are ignored.
        assert_eq!(restore_payload(&wrap(b"\x00\x05helloXYZ")), string(b"hello"));
        // Non-minimal length forms are fine.
        assert_eq!(restore_payload(&wrap(b"\x00\x80\x00\x00\x00\x05hello")), string(b"hello"));
        assert_eq!(restore_payload(&wrap(b"\x00\x81\x00\x00\x00\x00\x00\x00\x00\x05hello")), string(b"hello"));
        assert_eq!(restore_payload(&wrap(b"\x00\xc0\x80")), string(b"-128"));
        assert_eq!(restore_payload(&wrap(b"\x00\xc1\x00\x80")), string(b"-32768"));
        assert_eq!(restore_payload(&wrap(b"\x00\xc2\x00\x00\x00\x80")), string(b"-2147483648"));
        // LZF: the declared length must be met exactly, except that zero accepts anything.
        assert!(bad_data(restore_payload(&wrap(b"\x00\xc3\x02\x05\x00a"))));
        assert_eq!(restore_payload(&wrap(b"\x00\xc3\x02\x01\x00a")), string(b"a"));
        assert_eq!(restore_payload(&wrap(b"\x00\xc3\x02\x00\x00a")), string(b""));
        assert_eq!(restore_payload(&wrap(b"\x00\xc3\x00\x00")), string(b""));
        // Bad encodings, lengths and types.
        assert!(bad_data(restore_payload(&wrap(b"\x00\xc4"))));
        assert!(bad_data(restore_payload(&wrap(b"\x00\x82"))));
        assert!(bad_data(restore_payload(&wrap(b"\x08\x05hello"))));
        assert!(bad_data(restore_payload(&wrap(b"\x16\x05hello"))));
        assert!(bad_data(restore_payload(&wrap(b""))));
        // A quicklist node of zero bytes ("quicklist encoded_len is 0" in Redis's
        // corrupt-dump.tcl, payload as given there), plain or packed.
        assert!(bad_data(restore_payload(b"\x12\x01\x01\x00\x0a\x00\x8f\xc6\xc0\x57\x1c\x0a\xb3\x3c")));
        assert!(bad_data(restore_payload(&wrap(b"\x12\x01\x02\x00"))));
        assert_eq!(
            restore_payload(&wrap(b"\x12\x01\x01\x01a")),
            Ok(RdbValue::List(vec![Listpack::from_elems([&b"a"[..]])]))
        );
        // Trailer problems.
        assert_eq!(restore_payload(&[0u8; 9]), Err(RestoreError::Payload(PayloadError::TooShort)));
        let mut zero_crc = b"\x00\x05hello\x0a\x00".to_vec();
        zero_crc.extend_from_slice(&[0; 8]);
        assert_eq!(restore_payload(&zero_crc), Err(RestoreError::Payload(PayloadError::BadChecksum)));
        let mut v9 = b"\x00\x05hello\x09\x00".to_vec();
        let crc = crc64::crc64(0, &v9);
        v9.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore_payload(&v9), string(b"hello"));
    }

    #[test]
    fn unsupported_types_are_reported() {
        let mut r = Reader::new(b"\x05");
        assert_eq!(
            decode_value(encoding::RDB_TYPE_STREAM_LISTPACKS, &mut r),
            Err(RdbError::UnsupportedType { offset: 0, type_byte: 15 })
        );
        assert_eq!(decode_value(8, &mut r), Err(RdbError::UnknownType { offset: 0, type_byte: 8 }));
        assert_eq!(RestoreError::BadData(RdbError::BadLzf { offset: 3 }).message(), "Bad data format");
    }

    proptest! {
        #[test]
        fn dump_restore_round_trips(value in proptest::collection::vec(any::<u8>(), 0..600)) {
            let payload = dump_string(&value);
            prop_assert_eq!(restore_payload(&payload), Ok(RdbValue::String(value.clone())));
            let body = payload::unwrap(&payload).unwrap();
            let mut r = Reader::new(body);
            prop_assert_eq!(read_value(&mut r), Ok(RdbValue::String(value)));
            prop_assert!(r.is_at_end());
        }

        #[test]
        fn compressible_values_round_trip(
            seed in proptest::collection::vec(any::<u8>(), 1..8),
            repeats in 1usize..400,
        ) {
            let value: Vec<u8> = seed.iter().copied().cycle().take(seed.len() * repeats).collect();
            let payload = dump_string(&value);
            prop_assert_eq!(restore_payload(&payload), Ok(RdbValue::String(value)));
        }

        #[test]
        fn random_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = restore_payload(&bytes);
            let _ = read_value(&mut Reader::new(&bytes));
            // Also with a valid trailer, so decoding is actually reached.
            let _ = restore_payload(&payload::wrap(bytes));
        }

        #[test]
        fn mutated_payloads_never_panic(
            value in proptest::collection::vec(0u8..3, 0..300),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let payload = dump_string(&value);
            let mut body = payload[..payload.len() - payload::FOOTER_LEN].to_vec();
            for (at, byte) in flips {
                let i = at % body.len();
                body[i] = byte;
            }
            body.truncate(1 + cut % body.len());
            if let Ok(RdbValue::String(s)) = restore_payload(&payload::wrap(body)) {
                prop_assert!(s.len() <= 300 * 88);
            }
        }
    }

    /// A volatile hash's fields with their times, sorted, for comparisons.
    fn volatile_fields(v: &RdbValue) -> Vec<(Vec<u8>, Vec<u8>, Option<i64>)> {
        let RdbValue::VolatileHash { fields, .. } = v else { panic!("not a volatile hash: {v:?}") };
        let mut f = fields.clone();
        f.sort();
        f
    }

    #[test]
    fn hashes_with_field_times_follow_redis_7_4_layouts() {
        let limits = Limits::default();
        // Type 24 built by hand: earliest time (8 bytes LE), count, then per field its time
        // counted from the earliest plus one (0 = none), field, value.
        let mut b = vec![encoding::RDB_TYPE_HASH_METADATA];
        b.extend_from_slice(&1000u64.to_le_bytes());
        b.push(3);
        for (ttl, f, v) in [(1u8, "a", "1"), (0, "b", "2"), (6, "c", "3")] {
            b.push(ttl);
            b.push(f.len() as u8);
            b.extend_from_slice(f.as_bytes());
            b.push(v.len() as u8);
            b.extend_from_slice(v.as_bytes());
        }
        let want = vec![
            (b"a".to_vec(), b"1".to_vec(), Some(1000)),
            (b"b".to_vec(), b"2".to_vec(), None),
            (b"c".to_vec(), b"3".to_vec(), Some(1005)),
        ];
        let mut r = Reader::new(&b[1..]);
        let v = decode_value(b[0], &mut r).unwrap();
        assert!(r.is_at_end());
        assert_eq!(volatile_fields(&v), want);
        let value = v.into_value(&limits);
        assert_eq!(value.encoding(), "hashtable");
        // Written back as type 24, and read back the same.
        assert_eq!(object_type(&value), encoding::RDB_TYPE_HASH_METADATA);
        let mut out = Vec::new();
        write_object(&mut out, &value, false);
        assert_eq!(&out[..8], &1000u64.to_le_bytes());
        let again = decode_value(encoding::RDB_TYPE_HASH_METADATA, &mut Reader::new(&out)).unwrap();
        assert_eq!(volatile_fields(&again), want);

        // Type 25 built by hand: earliest time, then a listpack of triplets (0 = none).
        let lp = Listpack::from_elems(["b", "2", "0", "a", "1", "1000", "c", "3", "1005"].map(str::as_bytes));
        let mut b = 1000u64.to_le_bytes().to_vec();
        encoding::write_string(&mut b, lp.as_bytes(), false);
        let v = decode_value(encoding::RDB_TYPE_HASH_LISTPACK_EX, &mut Reader::new(&b)).unwrap();
        assert_eq!(volatile_fields(&v), want);
        let value = v.into_value(&limits);
        assert_eq!(value.encoding(), "listpackex");
        assert_eq!(object_type(&value), encoding::RDB_TYPE_HASH_LISTPACK_EX);
        // Written in expiry order with fields without a time last, as Redis keeps them.
        let mut out = Vec::new();
        write_object(&mut out, &value, false);
        assert_eq!(&out[..8], &1000u64.to_le_bytes());
        let mut r = Reader::new(&out[8..]);
        let written = Listpack::from_vec(r.read_string().unwrap()).unwrap();
        let elems: Vec<Vec<u8>> = written.iter().map(|e| e.to_vec()).collect();
        let want_elems: Vec<Vec<u8>> =
            ["a", "1", "1000", "c", "3", "1005", "b", "2", "0"].iter().map(|s| s.as_bytes().to_vec()).collect();
        assert_eq!(elems, want_elems);

        // The pre-GA forms: absolute times, no header.
        let mut pre = Vec::new();
        encoding::write_len(&mut pre, 1);
        encoding::write_len(&mut pre, 5000);
        encoding::write_string(&mut pre, b"a", false);
        encoding::write_string(&mut pre, b"1", false);
        let v = decode_value(encoding::RDB_TYPE_HASH_METADATA_PRE_GA, &mut Reader::new(&pre)).unwrap();
        assert_eq!(volatile_fields(&v), vec![(b"a".to_vec(), b"1".to_vec(), Some(5000))]);
        let mut pre = Vec::new();
        encoding::write_string(&mut pre, lp.as_bytes(), false);
        let v = decode_value(encoding::RDB_TYPE_HASH_LISTPACK_EX_PRE_GA, &mut Reader::new(&pre)).unwrap();
        assert_eq!(volatile_fields(&v), want);

        // Damage: a time past 2^48 - 1, a count not of triplets, a field twice.
        let mut bad = u64::MAX.to_le_bytes().to_vec();
        bad.extend_from_slice(&[1, 2, 1, b'a', 1, b'1']);
        assert!(decode_value(encoding::RDB_TYPE_HASH_METADATA, &mut Reader::new(&bad)).is_err());
        for elems in [vec!["a", "1"], vec!["a", "1", "0", "a", "2", "0"], vec!["a", "1", "281474976710656"]] {
            let lp = Listpack::from_elems(elems.iter().map(|s| s.as_bytes()));
            let mut b = 0u64.to_le_bytes().to_vec();
            encoding::write_string(&mut b, lp.as_bytes(), false);
            assert!(decode_value(encoding::RDB_TYPE_HASH_LISTPACK_EX, &mut Reader::new(&b)).is_err(), "{elems:?}");
        }
    }

    #[test]
    fn hashes_whose_fields_no_longer_expire_are_written_plain() {
        let limits = Limits::default();
        let mut h = Hash::new();
        h.set(b"a", b"1", &limits);
        h.set_field_expire(b"a", 10);
        h.persist_field(b"a");
        assert_eq!(h.encoding(), "listpackex");
        let v = Value::Hash(h);
        assert_eq!(object_type(&v), encoding::RDB_TYPE_HASH_LISTPACK);
        let mut out = Vec::new();
        write_object(&mut out, &v, false);
        let back = decode_value(encoding::RDB_TYPE_HASH_LISTPACK, &mut Reader::new(&out)).unwrap();
        assert_eq!(back, RdbValue::Hash(vec![(b"a".to_vec(), b"1".to_vec())]));
    }
}
