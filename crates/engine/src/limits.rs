//! The size thresholds at which collections change encoding, as Redis's configs name them.
//!
//! The engine reads no configuration: the command layer hands these in from the server's
//! settings. Encodings are invisible to a command's effect on the data (only `OBJECT
//! ENCODING`, memory and speed see them), so nodes configured differently still agree.

/// Encoding thresholds (Redis's defaults in [`Limits::default`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `list-max-listpack-size`: negative = bytes per node (-1 4 KiB ... -5 64 KiB), positive
    /// = elements per node.
    pub list_max_listpack_size: i64,
    /// `hash-max-listpack-entries`
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value`
    pub hash_max_listpack_value: usize,
    /// `set-max-intset-entries`
    pub set_max_intset_entries: usize,
    /// `set-max-listpack-entries`
    pub set_max_listpack_entries: usize,
    /// `set-max-listpack-value`
    pub set_max_listpack_value: usize,
    /// `zset-max-listpack-entries`
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value`
    pub zset_max_listpack_value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            list_max_listpack_size: -2,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

/// A list node's byte limits for negative `list-max-listpack-size` values.
const NODE_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

/// With a count limit, a node still never grows past this many bytes.
const SIZE_SAFETY_LIMIT: usize = 8192;

impl Limits {
    /// A list node's limits: (bytes, elements), one of them unlimited (Redis's
    /// `quicklistNodeLimit`).
    pub fn list_node(&self) -> (usize, usize) {
        let fill = self.list_max_listpack_size;
        if fill >= 0 {
            (usize::MAX, if fill == 0 { 1 } else { fill as usize })
        } else {
            let level = ((-fill - 1) as usize).min(NODE_BYTES.len() - 1);
            (NODE_BYTES[level], usize::MAX)
        }
    }

    /// True if a list node of `bytes` bytes and `count` elements is over the limit
    /// (`quicklistNodeExceedsLimit`).
    pub fn list_node_exceeds(&self, bytes: usize, count: usize) -> bool {
        let (size, max_count) = self.list_node();
        if size != usize::MAX {
            bytes > size
        } else {
            bytes > SIZE_SAFETY_LIMIT || count > max_count
        }
    }
}

/// Limits shared by every thread, changed by `CONFIG SET` while commands run. Each field is
/// its own atomic: a command that reads a mix of old and new values during a change still gets
/// valid thresholds, and encodings never affect data.
#[derive(Debug)]
pub struct SharedLimits([AtomicI64; 8]);

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

impl Default for SharedLimits {
    fn default() -> Self {
        let s = SharedLimits(Default::default());
        s.set(Limits::default());
        s
    }
}

impl SharedLimits {
    /// The current limits.
    #[inline]
    pub fn get(&self) -> Limits {
        let v = |i: usize| self.0[i].load(Relaxed);
        let u = |i: usize| v(i).max(0) as usize;
        Limits {
            list_max_listpack_size: v(0),
            hash_max_listpack_entries: u(1),
            hash_max_listpack_value: u(2),
            set_max_intset_entries: u(3),
            set_max_listpack_entries: u(4),
            set_max_listpack_value: u(5),
            zset_max_listpack_entries: u(6),
            zset_max_listpack_value: u(7),
        }
    }

    /// Replaces the limits.
    pub fn set(&self, l: Limits) {
        let vals = [
            l.list_max_listpack_size,
            l.hash_max_listpack_entries as i64,
            l.hash_max_listpack_value as i64,
            l.set_max_intset_entries as i64,
            l.set_max_listpack_entries as i64,
            l.set_max_listpack_value as i64,
            l.zset_max_listpack_entries as i64,
            l.zset_max_listpack_value as i64,
        ];
        for (a, v) in self.0.iter().zip(vals) {
            a.store(v, Relaxed);
        }
    }
}
