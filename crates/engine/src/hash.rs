//! The hash type: a listpack of field/value pairs while small, a hash table when large.
//!
//! As in Redis (`t_hash.c`), a hash is a listpack (`OBJECT ENCODING` "listpack") until it has
//! more than `hash-max-listpack-entries` fields or a field or value longer than
//! `hash-max-listpack-value` bytes; then it becomes a hash table ("hashtable") for good. The
//! listpack keeps insertion order, which `HGETALL` shows; the table's order is its own.
//!
//! Fields may have their own time to live (`HEXPIRE` & co., Redis 7.4). A hash with such
//! fields is [`Hash::Volatile`]: its fields in one of the two encodings above, plus each
//! volatile field's expiry, also kept in expiry order so the fields due at a time are found
//! without a walk and always in the same order (what is removed, and logged as `HDEL`, must
//! not depend on a table's layout). A hash stays volatile once it has been, as Redis's
//! `listpackex` stays; `OBJECT ENCODING` says `listpackex` or `hashtable`. The hash itself
//! never looks at a clock: expired fields are visible here until the caller removes them
//! ([`Hash::remove_expired`]) or asks for a copy without them ([`Hash::without_expired`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::dict::{collection_hasher, Dict};
use crate::limits::Limits;
use crate::listpack::{Listpack, LpValue};
use crate::small::SmallBytes;

/// A hash value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hash {
    /// Field, value, field, value, ...
    Pack(Listpack),
    /// Field to value.
    Table(Box<Dict<SmallBytes>>),
    /// Fields that may have their own time to live.
    Volatile(Box<VolatileHash>),
}

/// A hash whose fields may have times to live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolatileHash {
    /// The fields and values: [`Hash::Pack`] or [`Hash::Table`], never volatile itself.
    fields: Hash,
    /// Field to expiry (Unix milliseconds), for the fields that have one.
    when: BTreeMap<Box<[u8]>, i64>,
    /// The same pairs in expiry order (ties by field).
    due: BTreeSet<(i64, Box<[u8]>)>,
}

impl VolatileHash {
    fn clear_ttl(&mut self, field: &[u8]) -> bool {
        match self.when.remove(field) {
            Some(t) => {
                self.due.remove(&(t, Box::from(field)));
                true
            }
            None => false,
        }
    }
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl Hash {
    /// An empty hash (listpack-encoded).
    pub fn new() -> Hash {
        Hash::Pack(Listpack::new())
    }

    /// Number of fields.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Hash::Pack(lp) => lp.len() / 2,
            Hash::Table(d) => d.len(),
            Hash::Volatile(v) => v.fields.len(),
        }
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's encoding name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Pack(_) => "listpack",
            Hash::Table(_) => "hashtable",
            Hash::Volatile(v) => match v.fields {
                Hash::Pack(_) => "listpackex",
                _ => "hashtable",
            },
        }
    }

    /// The value of a field.
    #[inline]
    pub fn get(&self, field: &[u8]) -> Option<LpValue<'_>> {
        match self {
            Hash::Pack(lp) => {
                let p = lp.find(field, 2)?;
                lp.next(p).map(|v| lp.get(v))
            }
            Hash::Table(d) => {
                let h = d.hasher().hash(field);
                d.get(h, field).map(|v| LpValue::Str(v))
            }
            Hash::Volatile(v) => v.fields.get(field),
        }
    }

    /// True if the field exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to a hash table before `fields` fields are added that would take a listpack
    /// past `hash-max-listpack-entries` anyway (loading a hash of known size).
    pub fn reserve_for(&mut self, fields: usize, limits: &Limits) {
        if let Hash::Volatile(v) = self {
            return v.fields.reserve_for(fields, limits);
        }
        if matches!(self, Hash::Pack(_)) && fields > limits.hash_max_listpack_entries {
            self.convert_to_table();
        }
    }

    /// Makes this a hash table.
    pub fn convert_to_table(&mut self) {
        if let Hash::Volatile(v) = self {
            return v.fields.convert_to_table();
        }
        let Hash::Pack(lp) = self else { return };
        let mut d = Dict::new(collection_hasher());
        let mut it = lp.iter();
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            f.with_bytes(|f| {
                let h = d.hasher().hash(f);
                d.insert(h, f, v.with_bytes(SmallBytes::new));
            });
        }
        *self = Hash::Table(Box::new(d));
    }

    /// Sets a field, clearing any time to live it had (`HSET`); true if it is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &Limits) -> bool {
        if let Hash::Volatile(v) = self {
            v.clear_ttl(field);
        }
        self.set_keep_ttl(field, value, limits)
    }

    /// Sets a field, keeping its time to live (`HINCRBY`); true if it is new. As in Redis's
    /// `hashTypeSet`, a listpack converts first when the field or value is longer than
    /// `hash-max-listpack-value`, and afterwards when it holds more than
    /// `hash-max-listpack-entries` fields.
    pub fn set_keep_ttl(&mut self, field: &[u8], value: &[u8], limits: &Limits) -> bool {
        if let Hash::Volatile(v) = self {
            return v.fields.set_keep_ttl(field, value, limits);
        }
        if matches!(self, Hash::Pack(_))
            && (field.len() > limits.hash_max_listpack_value || value.len() > limits.hash_max_listpack_value)
        {
            self.convert_to_table();
        }
        match self {
            Hash::Pack(lp) => {
                let new = match lp.find(field, 2) {
                    Some(p) => {
                        let v = lp.next(p).expect("a field is followed by its value");
                        lp.replace(v, value);
                        false
                    }
                    None => {
                        lp.push_back(field);
                        lp.push_back(value);
                        true
                    }
                };
                // Checked on updates too: a lowered limit converts on the next write.
                if lp.len() / 2 > limits.hash_max_listpack_entries {
                    self.convert_to_table();
                }
                new
            }
            Hash::Table(d) => {
                let h = d.hasher().hash(field);
                d.insert(h, field, SmallBytes::new(value)).is_none()
            }
            Hash::Volatile(_) => unreachable!("handled above"),
        }
    }

    /// Removes a field; true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Pack(lp) => match lp.find(field, 2) {
                Some(p) => {
                    lp.delete_n(p, 2);
                    true
                }
                None => false,
            },
            Hash::Table(d) => {
                let h = d.hasher().hash(field);
                let removed = d.remove(h, field).is_some();
                if removed {
                    d.shrink_if_needed();
                }
                removed
            }
            Hash::Volatile(v) => {
                v.clear_ttl(field);
                v.fields.remove(field)
            }
        }
    }

    /// Calls `f` with every field and value (listpack: insertion order).
    pub fn for_each(&self, mut f: impl FnMut(LpValue<'_>, LpValue<'_>)) {
        match self {
            Hash::Pack(lp) => {
                let mut it = lp.iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    f(k, v);
                }
            }
            Hash::Table(d) => d.for_each(|k, v| f(LpValue::Str(k), LpValue::Str(v))),
            Hash::Volatile(v) => v.fields.for_each(f),
        }
    }

    /// The field/value pair at `index` in iteration order of a listpack; for a table, a random
    /// pair chosen with `rand`. For `HRANDFIELD`.
    pub fn pick(&self, index: usize, rand: impl FnMut() -> u64) -> Option<(LpValue<'_>, LpValue<'_>)> {
        match self {
            Hash::Pack(lp) => {
                let p = lp.seek((index % self.len().max(1) * 2) as i64)?;
                Some((lp.get(p), lp.get(lp.next(p)?)))
            }
            Hash::Table(d) => d.random_entry(rand).map(|(k, v)| (LpValue::Str(k), LpValue::Str(v))),
            Hash::Volatile(v) => v.fields.pick(index, rand),
        }
    }

    /// One `HSCAN` step: a listpack returns everything and cursor 0.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(LpValue<'_>, LpValue<'_>)) -> u64 {
        match self {
            Hash::Pack(_) => {
                self.for_each(f);
                0
            }
            Hash::Table(d) => d.scan(cursor, |k, v| f(LpValue::Str(k), LpValue::Str(v))),
            Hash::Volatile(v) => v.fields.scan(cursor, f),
        }
    }

    /// Bytes held (for memory accounting).
    pub fn allocated(&self) -> usize {
        match self {
            Hash::Pack(lp) => lp.allocated(),
            Hash::Table(d) => d.len() * 64 + d.buckets() * 8,
            Hash::Volatile(v) => {
                std::mem::size_of::<VolatileHash>()
                    + v.fields.allocated()
                    + v.when.keys().map(|f| 2 * (f.len() + 48)).sum::<usize>()
            }
        }
    }

    /// The expiry (Unix milliseconds) of a field, if it has one.
    pub fn field_expire(&self, field: &[u8]) -> Option<i64> {
        match self {
            Hash::Volatile(v) => v.when.get(field).copied(),
            _ => None,
        }
    }

    /// Makes this a hash whose fields may have times to live (`listpackex` for a listpack),
    /// as Redis does when a field-expiry command touches it.
    pub fn make_volatile(&mut self) {
        if !matches!(self, Hash::Volatile(_)) {
            let fields = std::mem::take(self);
            *self = Hash::Volatile(Box::new(VolatileHash { fields, when: BTreeMap::new(), due: BTreeSet::new() }));
        }
    }

    /// Gives an existing field a time to live (absolute, Unix milliseconds).
    pub fn set_field_expire(&mut self, field: &[u8], when_ms: i64) {
        debug_assert!(self.contains(field), "expiry for a missing field");
        self.make_volatile();
        let Hash::Volatile(v) = self else { unreachable!() };
        v.clear_ttl(field);
        v.when.insert(field.into(), when_ms);
        v.due.insert((when_ms, field.into()));
    }

    /// Removes a field's time to live; true if it had one.
    pub fn persist_field(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Volatile(v) => v.clear_ttl(field),
            _ => false,
        }
    }

    /// The earliest expiry among the fields, if any field has one.
    #[inline]
    pub fn min_field_expire(&self) -> Option<i64> {
        match self {
            Hash::Volatile(v) => v.due.first().map(|(t, _)| *t),
            _ => None,
        }
    }

    /// Number of fields with a time to live.
    pub fn volatile_fields(&self) -> usize {
        match self {
            Hash::Volatile(v) => v.when.len(),
            _ => 0,
        }
    }

    /// Calls `f` with each field that has a time to live and its expiry, earliest first.
    pub fn for_each_field_expire(&self, mut f: impl FnMut(&[u8], i64)) {
        if let Hash::Volatile(v) = self {
            for (t, field) in &v.due {
                f(field, *t);
            }
        }
    }

    /// True if some field's time has run out at `now_ms`.
    #[inline]
    pub fn has_expired_fields(&self, now_ms: i64) -> bool {
        self.min_field_expire().is_some_and(|t| t <= now_ms)
    }

    /// Removes the fields whose time has run out at `now_ms`, returning them earliest first
    /// (ties by field): the same on every node that holds the same hash.
    pub fn remove_expired(&mut self, now_ms: i64) -> Vec<Box<[u8]>> {
        let Hash::Volatile(v) = self else { return Vec::new() };
        let mut gone = Vec::new();
        while let Some((t, _)) = v.due.first() {
            if *t > now_ms {
                break;
            }
            let (_, field) = v.due.pop_first().expect("just seen");
            v.when.remove(&field);
            v.fields.remove(&field);
            gone.push(field);
        }
        gone
    }

    /// A copy without the fields whose time has run out at `now_ms` (what a read sees on a
    /// node that may not remove them itself).
    pub fn without_expired(&self, now_ms: i64) -> Hash {
        let mut copy = self.clone();
        copy.remove_expired(now_ms);
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn converts_past_the_limits_and_keeps_every_field() {
        let limits = Limits { hash_max_listpack_entries: 4, ..Limits::default() };
        let mut h = Hash::new();
        let mut m = BTreeMap::new();
        for i in 0..4 {
            let (f, v) = (format!("f{i}"), format!("{i}"));
            assert!(h.set(f.as_bytes(), v.as_bytes(), &limits));
            m.insert(f.into_bytes(), v.into_bytes());
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(!h.set(b"f1", b"x", &limits));
        m.insert(b"f1".to_vec(), b"x".to_vec());
        h.set(b"f9", b"9", &limits);
        m.insert(b"f9".to_vec(), b"9".to_vec());
        assert_eq!(h.encoding(), "hashtable");
        let mut got = BTreeMap::new();
        h.for_each(|k, v| {
            got.insert(k.to_vec(), v.to_vec());
        });
        assert_eq!(got, m);
        assert!(h.remove(b"f9"));
        assert!(!h.remove(b"f9"));
        assert_eq!(h.len(), 4);
        assert_eq!(h.encoding(), "hashtable", "a table never goes back");

        let mut long = Hash::new();
        long.set(b"f", &[b'v'; 64], &Limits::default());
        assert_eq!(long.encoding(), "listpack");
        long.set(b"f", &[b'v'; 65], &Limits::default());
        assert_eq!(long.encoding(), "hashtable");
        assert_eq!(long.get(b"f").unwrap().len(), 65);
    }

    #[test]
    fn integer_values_read_back_as_written() {
        let limits = Limits::default();
        let mut h = Hash::new();
        h.set(b"1", b"-5", &limits);
        h.set(b"a", b"007", &limits);
        assert_eq!(h.get(b"1").unwrap().to_vec(), b"-5");
        assert_eq!(h.get(b"a").unwrap().to_vec(), b"007");
        assert!(h.get(b"-5").is_none(), "values are not fields");
    }

    #[test]
    fn field_times_are_kept_in_order_and_removed_when_due() {
        let limits = Limits::default();
        let mut h = Hash::new();
        for f in ["a", "b", "c", "d"] {
            h.set(f.as_bytes(), b"v", &limits);
        }
        assert_eq!(h.min_field_expire(), None);
        h.set_field_expire(b"c", 30);
        h.set_field_expire(b"a", 10);
        h.set_field_expire(b"b", 10);
        assert_eq!(h.encoding(), "listpackex");
        assert_eq!(h.min_field_expire(), Some(10));
        h.set_field_expire(b"a", 40);
        assert_eq!(h.field_expire(b"a"), Some(40));
        assert_eq!(h.volatile_fields(), 3);
        // Copies hide, removal removes: earliest first, ties by field.
        let copy = h.without_expired(30);
        assert_eq!(copy.len(), 2);
        assert_eq!(h.len(), 4);
        assert!(h.has_expired_fields(10) && !h.has_expired_fields(9));
        let gone: Vec<Vec<u8>> = h.remove_expired(30).into_iter().map(|f| f.to_vec()).collect();
        assert_eq!(gone, vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(h.min_field_expire(), Some(40));
        // HSET clears a field's time, an increment's set keeps it, HDEL forgets it.
        h.set_keep_ttl(b"a", b"2", &limits);
        assert_eq!(h.field_expire(b"a"), Some(40));
        h.set(b"a", b"3", &limits);
        assert_eq!(h.field_expire(b"a"), None);
        h.set_field_expire(b"d", 50);
        assert!(h.remove(b"d"));
        assert_eq!(h.min_field_expire(), None);
        assert!(!h.persist_field(b"a"));
        // Still listpackex, as Redis keeps it; a conversion keeps the times.
        assert_eq!(h.encoding(), "listpackex");
        h.set_field_expire(b"a", 60);
        h.convert_to_table();
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.field_expire(b"a"), Some(60));
        assert!(h.persist_field(b"a"));
        assert_eq!(h.volatile_fields(), 0);
    }
}
