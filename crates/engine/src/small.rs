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
}
