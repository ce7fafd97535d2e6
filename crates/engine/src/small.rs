//! Short byte strings stored inline.
//!
//! Keys and short string values are mostly a few dozen bytes. Keeping them inside the structure
//! that owns them (the dict node, the value) saves an allocation per key or value and, more
//! importantly on a large keyspace, the cache miss of following a pointer to them. The type is
//! 24 bytes, the same footprint in allocator terms as the boxed slice plus its separate
//! allocation it replaces.

use std::fmt;

/// Bytes up to this length are stored inline.
pub const INLINE_MAX: usize = 22;

/// An immutable byte string, inline when short.
#[derive(Clone)]
pub struct SmallBytes(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE_MAX] },
    Heap(Box<[u8]>),
}

impl SmallBytes {
    /// Copies `bytes`, inline when they fit.
    #[inline]
    pub fn new(bytes: &[u8]) -> SmallBytes {
        if bytes.len() <= INLINE_MAX {
            let mut buf = [0u8; INLINE_MAX];
            buf[..bytes.len()].copy_from_slice(bytes);
            SmallBytes(Repr::Inline { len: bytes.len() as u8, buf })
        } else {
            SmallBytes(Repr::Heap(bytes.into()))
        }
    }

    /// True when the bytes live inline (no allocation of their own).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl std::ops::Deref for SmallBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(b: &[u8]) -> Self {
        SmallBytes::new(b)
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SmallBytes {}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

/// Key bytes stored inline up to this length ([`KeyBytes`]).
pub const KEY_INLINE_MAX: usize = 18;

/// A dict key: like [`SmallBytes`], plus four bytes of per-entry metadata (the *stamp*) the
/// dict's user may keep beside the key, in the same 24 bytes. The keyspace keeps a key's access
/// clock there, which lets its dict node (next link, key, 32-byte value) fill a 64-byte
/// allocator class exactly; with the clock beside the value it took 72 bytes, which the
/// allocator rounds up to 80. The price is four bytes of inline capacity.
#[derive(Clone)]
pub struct KeyBytes(KeyRepr);

// The stamp is a byte array, not a `u32`: with only byte-aligned fields the inline variant is
// 23 bytes and the tag fits beside it, and the heap variant's stamp sits in the padding before
// its pointer, so the type stays at 24 bytes (a test checks).
#[derive(Clone)]
enum KeyRepr {
    Inline { len: u8, stamp: [u8; 4], buf: [u8; KEY_INLINE_MAX] },
    Heap { stamp: [u8; 4], bytes: Box<[u8]> },
}

impl KeyBytes {
    /// Copies `bytes` (inline when they fit) with `stamp`.
    #[inline]
    pub fn new(bytes: &[u8], stamp: u32) -> KeyBytes {
        let stamp = stamp.to_ne_bytes();
        if bytes.len() <= KEY_INLINE_MAX {
            let mut buf = [0u8; KEY_INLINE_MAX];
            buf[..bytes.len()].copy_from_slice(bytes);
            KeyBytes(KeyRepr::Inline { len: bytes.len() as u8, stamp, buf })
        } else {
            KeyBytes(KeyRepr::Heap { stamp, bytes: bytes.into() })
        }
    }

    /// The metadata kept beside the key.
    #[inline]
    pub fn stamp(&self) -> u32 {
        match &self.0 {
            KeyRepr::Inline { stamp, .. } | KeyRepr::Heap { stamp, .. } => u32::from_ne_bytes(*stamp),
        }
    }

    /// Replaces the metadata kept beside the key.
    #[inline]
    pub fn set_stamp(&mut self, value: u32) {
        match &mut self.0 {
            KeyRepr::Inline { stamp, .. } | KeyRepr::Heap { stamp, .. } => *stamp = value.to_ne_bytes(),
        }
    }

    /// True when the bytes live inline (no allocation of their own).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, KeyRepr::Inline { .. })
    }
}

impl std::ops::Deref for KeyBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            KeyRepr::Inline { len, buf, .. } => &buf[..*len as usize],
            KeyRepr::Heap { bytes, .. } => bytes,
        }
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}", String::from_utf8_lossy(self), self.stamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_when_short_and_same_bytes_always() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        for len in [0, 1, INLINE_MAX, INLINE_MAX + 1, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let s = SmallBytes::new(&bytes);
            assert_eq!(&*s, &bytes[..]);
            assert_eq!(s.is_inline(), len <= INLINE_MAX);
            assert_eq!(s.clone(), s);
        }
    }

    #[test]
    fn keys_keep_their_stamp_in_the_same_24_bytes() {
        assert_eq!(std::mem::size_of::<KeyBytes>(), 24);
        for len in [0, 1, KEY_INLINE_MAX, KEY_INLINE_MAX + 1, 300] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut k = KeyBytes::new(&bytes, 0xdead_beef);
            assert_eq!(&*k, &bytes[..]);
            assert_eq!(k.is_inline(), len <= KEY_INLINE_MAX);
            assert_eq!(k.stamp(), 0xdead_beef);
            k.set_stamp(7);
            assert_eq!((k.stamp(), &*k), (7, &bytes[..]));
            assert_eq!(k.clone().stamp(), 7);
        }
    }
}
