//! The hash type: a listpack of field/value pairs while small, a hash table when large.
//!
//! As in Redis (`t_hash.c`), a hash is a listpack (`OBJECT ENCODING` "listpack") until it has
//! more than `hash-max-listpack-entries` fields or a field or value longer than
//! `hash-max-listpack-value` bytes; then it becomes a hash table ("hashtable") for good. The
//! listpack keeps insertion order, which `HGETALL` shows; the table's order is its own.

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
        }
    }

    /// True if the field exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to a hash table before `fields` fields are added that would take a listpack
    /// past `hash-max-listpack-entries` anyway (loading a hash of known size).
    pub fn reserve_for(&mut self, fields: usize, limits: &Limits) {
        if matches!(self, Hash::Pack(_)) && fields > limits.hash_max_listpack_entries {
            self.convert_to_table();
        }
    }

    /// Makes this a hash table.
    pub fn convert_to_table(&mut self) {
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

    /// Sets a field; true if it is new. As in Redis's `hashTypeSet`, a listpack converts
    /// first when the field or value is longer than `hash-max-listpack-value`, and afterwards
    /// when it holds more than `hash-max-listpack-entries` fields.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &Limits) -> bool {
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
        }
    }

    /// Bytes held (for memory accounting).
    pub fn allocated(&self) -> usize {
        match self {
            Hash::Pack(lp) => lp.allocated(),
            Hash::Table(d) => d.len() * 64 + d.buckets() * 8,
        }
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
}
