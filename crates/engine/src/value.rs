//! Values stored under keys, and their encodings.
//!
//! Each type lives in its own variant; later types (lists, hashes, sets, sorted sets, streams)
//! add variants here and files beside this one. Encodings follow Redis's names so that
//! `OBJECT ENCODING` reports what a Redis user expects.

use crate::hash::Hash;
use crate::list::List;
use crate::num;
use crate::set::Set;
use crate::small::SmallBytes;
use crate::zset::ZSet;

/// The longest string Redis stores as `embstr` (one allocation with its object header).
pub const EMBSTR_MAX: usize = 44;

/// A string value in one of Redis's three encodings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Str {
    /// A canonical decimal integer kept as a number (`int`).
    Int(i64),
    /// A short string that has not been modified in place (`embstr`); up to 22 bytes it needs
    /// no allocation of its own.
    Emb(SmallBytes),
    /// A string that is long or was modified in place (`raw`).
    Raw(Vec<u8>),
}

impl Str {
    /// Stores bytes as `SET` does: integer-like strings become `int`, short ones `embstr`.
    pub fn from_bytes(b: &[u8]) -> Str {
        if b.len() <= 20 {
            if let Some(i) = num::parse_i64(b) {
                return Str::Int(i);
            }
        }
        if b.len() <= EMBSTR_MAX {
            Str::Emb(b.into())
        } else {
            Str::Raw(b.to_vec())
        }
    }

    /// Stores an owned buffer, avoiding a copy for long strings.
    pub fn from_vec(v: Vec<u8>) -> Str {
        if v.len() <= EMBSTR_MAX {
            Str::from_bytes(&v)
        } else {
            Str::Raw(v)
        }
    }

    /// The string's bytes (integers are formatted).
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Str::Int(i) => i.to_string().into_bytes(),
            Str::Emb(b) => b.to_vec(),
            Str::Raw(v) => v.clone(),
        }
    }

    /// Calls `f` with the string's bytes without allocating.
    #[inline]
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Str::Int(i) => {
                let mut buf = itoa_buf(*i);
                f(buf.as_slice())
            }
            Str::Emb(b) => f(b),
            Str::Raw(v) => f(v),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Str::Int(i) => itoa_buf(*i).len(),
            Str::Emb(b) => b.len(),
            Str::Raw(v) => v.len(),
        }
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Turns the value into a mutable `raw` buffer (what Redis's `dbUnshareStringValue` does
    /// before `APPEND`, `SETRANGE` and `SETBIT`).
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, Str::Raw(_)) {
            *self = Str::Raw(self.to_vec());
        }
        match self {
            Str::Raw(v) => v,
            _ => unreachable!("just converted to raw"),
        }
    }

    /// Redis's encoding name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Str::Int(_) => "int",
            Str::Emb(_) => "embstr",
            Str::Raw(_) => "raw",
        }
    }
}

/// A small stack buffer holding a formatted integer.
pub struct ItoaBuf {
    buf: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    /// The formatted digits.
    pub fn as_slice(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        20 - self.start
    }

    /// Never true: an integer has at least one digit.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Formats an integer into a stack buffer (the same digits as [`num::format_i64`]).
pub fn itoa_buf(v: i64) -> ItoaBuf {
    let mut buf = [0u8; 20];
    let start = num::format_i64_into(v, &mut buf);
    ItoaBuf { buf, start }
}

/// A value of any type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string (also holds bitmaps and, later, HyperLogLogs).
    Str(Str),
    /// A list.
    List(List),
    /// A hash.
    Hash(Hash),
    /// A set.
    Set(Set),
    /// A sorted set.
    ZSet(ZSet),
}

/// The type of a value, as `TYPE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// `string`
    String,
    /// `list`
    List,
    /// `set`
    Set,
    /// `zset`
    ZSet,
    /// `hash`
    Hash,
    /// `stream`
    Stream,
}

impl ValueType {
    /// The name `TYPE` replies with.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Hash => "hash",
            ValueType::Stream => "stream",
        }
    }

    /// Parses a type name as `SCAN ... TYPE` accepts it (case-insensitive).
    pub fn from_name(name: &[u8]) -> Option<ValueType> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_slice() {
            b"string" => ValueType::String,
            b"list" => ValueType::List,
            b"set" => ValueType::Set,
            b"zset" => ValueType::ZSet,
            b"hash" => ValueType::Hash,
            b"stream" => ValueType::Stream,
            _ => return None,
        })
    }
}

impl Value {
    /// Roughly the bytes of data the value holds (for memory accounting of copies).
    pub fn approx_bytes(&self) -> usize {
        match self {
            Value::Str(Str::Int(_)) => 8,
            Value::Str(Str::Emb(b)) => b.len(),
            Value::Str(Str::Raw(v)) => v.len(),
            Value::List(l) => l.allocated(),
            Value::Hash(h) => h.allocated(),
            Value::Set(s) => s.allocated(),
            Value::ZSet(z) => z.allocated(),
        }
    }

    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
        }
    }

    /// Redis's encoding name for `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
        }
    }

    /// True for a list, hash, set or sorted set without elements (which must not stay under a key).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&Str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string inside, mutably, if this is a string.
    pub fn as_str_mut(&mut self) -> Option<&mut Str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_short_strings_do_not_widen_values() {
        // A string value stays one word of tag plus its 24-byte payload.
        assert_eq!(std::mem::size_of::<Str>(), 32);
        assert_eq!(std::mem::size_of::<Value>(), 32);
        // Collections fit the same footprint (their variants share the tag's room).
        assert_eq!(std::mem::size_of::<crate::Set>(), 24);
        assert_eq!(std::mem::size_of::<crate::List>(), 24);
        assert_eq!(std::mem::size_of::<crate::Hash>(), 24);
        assert_eq!(std::mem::size_of::<crate::ZSet>(), 24);
    }

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(Str::from_bytes(b"12345").encoding(), "int");
        assert_eq!(Str::from_bytes(b"-9223372036854775808").encoding(), "int");
        assert_eq!(Str::from_bytes(b"9223372036854775808").encoding(), "embstr");
        assert_eq!(Str::from_bytes(b"012").encoding(), "embstr");
        assert_eq!(Str::from_bytes(b" 1").encoding(), "embstr");
        assert_eq!(Str::from_bytes(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(Str::from_bytes(&[b'a'; 45]).encoding(), "raw");
        let mut s = Str::from_bytes(b"5");
        s.make_raw().push(b'0');
        assert_eq!(s, Str::Raw(b"50".to_vec()));
    }

    #[test]
    fn integers_format_back_exactly() {
        for v in [0i64, -1, 10, i64::MIN, i64::MAX] {
            assert_eq!(Str::Int(v).to_vec(), v.to_string().into_bytes());
            assert_eq!(Str::Int(v).len(), v.to_string().len());
        }
    }
}
