//! A chained hash table with incremental rehashing, shaped like Redis's `dict`.
//!
//! Why hand-written: the keyspace needs three things that general-purpose tables do not give
//! together. Growth must never stop the world (a plain open-addressing table was measured
//! stalling one insert for 603 ms at 14.7M entries), so the table moves a few buckets per
//! operation from the old array to the new one. `SCAN` needs a cursor that visits every element
//! present for the whole scan at least once even while the table grows or shrinks, which the
//! reverse-binary bucket cursor gives on power-of-two bucket arrays. Eviction, active expiry and
//! `RANDOMKEY` need a random element in O(1) expected time, which needs bucket access.
//!
//! The caller computes the 64-bit hash once (the keyspace also uses its top bits to pick a
//! shard); the table uses the low bits. Rehashing recomputes hashes with the same hasher.

use std::hash::BuildHasher;

use crate::small::KeyBytes;

/// The hasher every dict of a keyspace shares: foldhash with a per-process random seed.
#[derive(Clone)]
pub struct KeyHasher(foldhash::fast::FixedState);

impl KeyHasher {
    /// A hasher with the given seed.
    pub fn with_seed(seed: u64) -> Self {
        KeyHasher(foldhash::fast::FixedState::with_seed(seed))
    }

    /// Hashes a key.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.0.hash_one(key)
    }
}

/// The hasher of the hash tables inside values (large hashes, sets, sorted sets). Its seed is
/// fixed, unlike the keyspace's: which element a random pick of a write (`SPOP`) takes must
/// follow from the value's contents alone, so that every node of a cluster applying the same
/// command with the same seed takes the same one (see `set::Set::pick_stable`).
pub fn collection_hasher() -> KeyHasher {
    KeyHasher::with_seed(0x7a4d_e3c1_9b2f_5e17)
}

/// A chain link. The key is a [`KeyBytes`]: short keys (the common case) are stored inside the
/// node, so a lookup reads one allocation instead of following a second pointer to the key; on
/// a large keyspace that pointer was a cache miss per lookup (15% of a SET-heavy profile). The
/// key also carries the entry's stamp (see the `*_stamped` methods).
struct Node<V> {
    next: Option<Box<Node<V>>>,
    key: KeyBytes,
    value: V,
}

struct Table<V> {
    buckets: Vec<Option<Box<Node<V>>>>,
    used: usize,
}

impl<V> Table<V> {
    fn empty() -> Self {
        Table { buckets: Vec::new(), used: 0 }
    }

    fn with_size(size: usize) -> Self {
        let mut buckets = Vec::with_capacity(size);
        buckets.resize_with(size, || None);
        Table { buckets, used: 0 }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// See [`Dict::successor`]: the node with the smallest `reverse(hash) - r` (wrapping)
    /// and that distance.
    fn successor(&self, r: u64, hasher: &KeyHasher) -> Option<(u64, &Node<V>)> {
        let size = self.buckets.len();
        let bits = size.trailing_zeros();
        // The bucket of reversed-hash prefix `q` (the top `bits` bits).
        let bucket_of = |q: usize| if bits == 0 { 0 } else { q.reverse_bits() >> (usize::BITS - bits) };
        let start = if bits == 0 { 0 } else { (r >> (64 - bits)) as usize };
        let best_in = |b: usize, keep: &dyn Fn(u64) -> bool| {
            let mut best: Option<(u64, &Node<V>)> = None;
            let mut cur = self.buckets[b].as_deref();
            while let Some(n) = cur {
                let o = hasher.hash(&n.key).reverse_bits();
                let d = o.wrapping_sub(r);
                if keep(o) && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, n));
                }
                cur = n.next.as_deref();
            }
            best
        };
        // Keys of the starting prefix at or after `r`, then the following prefixes, then
        // round to the starting prefix's keys before `r`.
        if let Some(found) = best_in(bucket_of(start), &|o| o >= r) {
            return Some(found);
        }
        for i in 1..size {
            if let Some(found) = best_in(bucket_of((start + i) % size), &|_| true) {
                return Some(found);
            }
        }
        best_in(bucket_of(start), &|o| o < r)
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<&Node<V>> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut cur = self.buckets[hash as usize & self.mask()].as_deref();
        while let Some(node) = cur {
            if &*node.key == key {
                return Some(node);
            }
            cur = node.next.as_deref();
        }
        None
    }

    fn find_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut Node<V>> {
        if self.buckets.is_empty() {
            return None;
        }
        let idx = hash as usize & self.mask();
        let mut cur = self.buckets[idx].as_deref_mut();
        while let Some(node) = cur {
            if &*node.key == key {
                return Some(node);
            }
            cur = node.next.as_deref_mut();
        }
        None
    }

    fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Box<Node<V>>> {
        if self.buckets.is_empty() {
            return None;
        }
        let idx = hash as usize & self.mask();
        let mut link = &mut self.buckets[idx];
        loop {
            match link {
                None => return None,
                Some(node) if &*node.key == key => {
                    let mut node = link.take().expect("matched Some");
                    *link = node.next.take();
                    self.used -= 1;
                    return Some(node);
                }
                Some(node) => link = &mut node.next,
            }
        }
    }
}

/// Smallest table size; Redis uses 4 as well.
const INITIAL_SIZE: usize = 4;
/// How many empty buckets one rehash step may visit before giving up, as in Redis.
const EMPTY_VISITS_PER_STEP: usize = 10;

/// A map from byte-string keys to `V` with incremental rehashing.
pub struct Dict<V> {
    hasher: KeyHasher,
    tables: [Table<V>; 2],
    /// Next bucket of `tables[0]` to move while rehashing; `None` when not rehashing.
    rehash_idx: Option<usize>,
}

impl<V> Dict<V> {
    /// An empty dict that hashes with `hasher` (the same hasher the caller hashes keys with).
    pub fn new(hasher: KeyHasher) -> Self {
        Dict { hasher, tables: [Table::empty(), Table::empty()], rehash_idx: None }
    }

    /// The hasher of this dict.
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.tables[0].used + self.tables[1].used
    }

    /// True when there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total number of buckets (both tables while rehashing).
    pub fn buckets(&self) -> usize {
        self.tables[0].buckets.len() + self.tables[1].buckets.len()
    }

    /// True while an incremental rehash is in progress.
    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    /// The node of a key, in whichever table holds it.
    #[inline]
    fn node(&self, hash: u64, key: &[u8]) -> Option<&Node<V>> {
        if self.is_empty() {
            return None;
        }
        match self.tables[0].find(hash, key) {
            Some(n) => Some(n),
            None if self.rehash_idx.is_some() => self.tables[1].find(hash, key),
            None => None,
        }
    }

    /// Every node, table by table, bucket by bucket.
    fn nodes(&self) -> impl Iterator<Item = &Node<V>> {
        self.tables
            .iter()
            .flat_map(|t| t.buckets.iter())
            .flat_map(|b| std::iter::successors(b.as_deref(), |n| n.next.as_deref()))
    }

    /// Looks a key up.
    #[inline]
    pub fn get(&self, hash: u64, key: &[u8]) -> Option<&V> {
        self.node(hash, key).map(|n| &n.value)
    }

    /// Looks a key up for modification. Performs one rehash step, as Redis does on lookups.
    #[inline]
    pub fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut V> {
        self.get_mut_stamped(hash, key, None)
    }

    /// The stamp kept beside a key (zero unless set).
    pub fn stamp(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.node(hash, key).map(|n| n.key.stamp())
    }

    /// Looks a key up for modification and, if found, sets its stamp to `stamp` (when given).
    pub fn get_mut_stamped(&mut self, hash: u64, key: &[u8], stamp: Option<u32>) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let t = if self.tables[0].find(hash, key).is_some() {
            0
        } else if self.rehash_idx.is_some() {
            1
        } else {
            return None;
        };
        let n = self.tables[t].find_mut(hash, key)?;
        if let Some(s) = stamp {
            n.key.set_stamp(s);
        }
        Some(&mut n.value)
    }

    /// Inserts or replaces; returns the previous value. The key's stamp becomes 0 (dicts that
    /// keep stamps, the keyspace's, use [`Dict::insert_stamped`]).
    pub fn insert(&mut self, hash: u64, key: &[u8], value: V) -> Option<V> {
        self.insert_stamped(hash, key, value, 0)
    }

    /// Inserts or replaces, setting the key's stamp; returns the previous value.
    pub fn insert_stamped(&mut self, hash: u64, key: &[u8], value: V, stamp: u32) -> Option<V> {
        if let Some(slot) = self.get_mut_stamped(hash, key, Some(stamp)) {
            return Some(std::mem::replace(slot, value));
        }
        self.insert_new_stamped(hash, key, value, stamp);
        None
    }

    /// Inserts a key known to be absent (the caller just looked it up).
    pub fn insert_new(&mut self, hash: u64, key: &[u8], value: V) {
        self.insert_new_stamped(hash, key, value, 0)
    }

    /// Inserts a key known to be absent, with a stamp.
    pub fn insert_new_stamped(&mut self, hash: u64, key: &[u8], value: V, stamp: u32) {
        let key = KeyBytes::new(key, stamp);
        self.expand_if_needed();
        self.rehash_step();
        let t = if self.rehash_idx.is_some() { 1 } else { 0 };
        let table = &mut self.tables[t];
        let idx = hash as usize & table.mask();
        let next = table.buckets[idx].take();
        table.buckets[idx] = Some(Box::new(Node { next, key, value }));
        table.used += 1;
    }

    /// Removes a key, returning its value.
    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<V> {
        self.remove_stamped(hash, key).map(|(v, _)| v)
    }

    /// Removes a key, returning its value and stamp.
    pub fn remove_stamped(&mut self, hash: u64, key: &[u8]) -> Option<(V, u32)> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let node = match self.tables[0].remove(hash, key) {
            Some(n) => Some(n),
            None if self.rehash_idx.is_some() => self.tables[1].remove(hash, key),
            None => None,
        };
        node.map(|n| (n.value, n.key.stamp()))
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        // Drop chains iteratively so that very long chains cannot overflow the stack.
        for t in self.tables.iter_mut() {
            for b in t.buckets.iter_mut() {
                let mut cur = b.take();
                while let Some(mut n) = cur {
                    cur = n.next.take();
                }
            }
        }
        self.tables = [Table::empty(), Table::empty()];
        self.rehash_idx = None;
    }

    fn expand_if_needed(&mut self) {
        if self.rehash_idx.is_some() {
            return;
        }
        let t0 = &self.tables[0];
        if t0.buckets.is_empty() {
            self.tables[0] = Table::with_size(INITIAL_SIZE);
            return;
        }
        if t0.used >= t0.buckets.len() {
            let size = (t0.used + 1).next_power_of_two();
            self.start_resize(size);
        }
    }

    /// Shrinks the table when it is less than 10% full, as Redis's cron does.
    pub fn shrink_if_needed(&mut self) {
        if self.rehash_idx.is_some() {
            return;
        }
        let t0 = &self.tables[0];
        let size = t0.buckets.len();
        if size > INITIAL_SIZE && t0.used * 100 / size < 10 {
            let target = t0.used.max(INITIAL_SIZE).next_power_of_two();
            if target < size {
                self.start_resize(target);
            }
        }
    }

    fn start_resize(&mut self, size: usize) {
        self.tables[1] = Table::with_size(size);
        self.rehash_idx = Some(0);
    }

    /// Moves up to one non-empty bucket to the new table.
    #[inline]
    fn rehash_step(&mut self) {
        if self.rehash_idx.is_some() {
            self.rehash(1);
        }
    }

    /// Performs up to `n` bucket moves; returns true if rehashing is still in progress.
    pub fn rehash(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_idx else {
            return false;
        };
        let mut empty_visits = n * EMPTY_VISITS_PER_STEP;
        let mut moves = n;
        while moves > 0 && self.tables[0].used > 0 {
            moves -= 1;
            while self.tables[0].buckets[idx].is_none() {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_idx = Some(idx);
                    return true;
                }
            }
            let mut cur = self.tables[0].buckets[idx].take();
            while let Some(mut node) = cur {
                cur = node.next.take();
                let h = self.hasher.hash(&node.key);
                let t1 = &mut self.tables[1];
                let j = h as usize & t1.mask();
                node.next = t1.buckets[j].take();
                t1.buckets[j] = Some(node);
                t1.used += 1;
                self.tables[0].used -= 1;
            }
            idx += 1;
        }
        if self.tables[0].used == 0 {
            self.tables[0] = std::mem::replace(&mut self.tables[1], Table::empty());
            self.rehash_idx = None;
            return false;
        }
        self.rehash_idx = Some(idx);
        true
    }

    /// Visits every entry (no order guarantee).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &V)) {
        for t in &self.tables {
            for (i, b) in t.buckets.iter().enumerate() {
                if let Some(Some(ahead)) = t.buckets.get(i + PREFETCH_AHEAD) {
                    prefetch(&**ahead);
                }
                let mut cur = b.as_deref();
                while let Some(n) = cur {
                    f(&n.key, &n.value);
                    cur = n.next.as_deref();
                }
            }
        }
    }

    /// Visits every entry mutably.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&[u8], &mut V)) {
        for t in &mut self.tables {
            for b in &mut t.buckets {
                let mut cur = b.as_deref_mut();
                while let Some(n) = cur {
                    f(&n.key, &mut n.value);
                    cur = n.next.as_deref_mut();
                }
            }
        }
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut V) -> bool) {
        for t in &mut self.tables {
            let mut removed = 0;
            for b in &mut t.buckets {
                let mut link = b;
                loop {
                    let drop_it = match link {
                        None => break,
                        Some(node) => !keep(&node.key, &mut node.value),
                    };
                    if drop_it {
                        let mut node = link.take().expect("checked Some");
                        *link = node.next.take();
                        removed += 1;
                    } else {
                        link = &mut link.as_mut().expect("checked Some").next;
                    }
                }
            }
            t.used -= removed;
        }
    }

    /// Picks a random entry, using `rand` as the source of randomness. The pick is not uniform
    /// (entries in short chains are favoured), exactly like Redis's `dictGetRandomKey` without
    /// the fair variant; callers use it for sampling.
    pub fn random_entry(&self, mut rand: impl FnMut() -> u64) -> Option<(&[u8], &V)> {
        if self.is_empty() {
            return None;
        }
        let head = loop {
            let pick = if let Some(idx) = self.rehash_idx {
                // Buckets below idx of table 0 are empty: pick from the rest of both tables.
                let s0 = self.tables[0].buckets.len();
                let s1 = self.tables[1].buckets.len();
                let span = (s0 + s1 - idx) as u64;
                let i = idx + (rand() % span) as usize;
                if i >= s0 {
                    self.tables[1].buckets[i - s0].as_deref()
                } else {
                    self.tables[0].buckets[i].as_deref()
                }
            } else {
                let t = &self.tables[0];
                t.buckets[rand() as usize & t.mask()].as_deref()
            };
            if let Some(n) = pick {
                break n;
            }
        };
        let mut chain_len = 0u64;
        let mut cur = Some(head);
        while let Some(n) = cur {
            chain_len += 1;
            cur = n.next.as_deref();
        }
        let mut k = rand() % chain_len;
        let mut node = head;
        while k > 0 {
            node = node.next.as_deref().expect("within chain length");
            k -= 1;
        }
        Some((&node.key, &node.value))
    }

    /// The entry that comes first at or after `r` (going round) in the order of
    /// `hash.reverse_bits()`: the choice depends only on the keys present, the hasher and `r`,
    /// never on the table's size or history, which is what a random pick of a write needs to
    /// be the same on every node (`SPOP`). Buckets visited in reverse-binary order hold keys in
    /// increasing order of their reversed hashes, so the search looks at O(1) buckets on
    /// average. A rehash in progress is finished first: the old table empties in index order,
    /// which in reversed order leaves holes everywhere, and searching it near the end of a
    /// rehash would walk most of it (measured: 100 ms pops on a 200,000-member set).
    pub fn successor(&mut self, r: u64) -> Option<(&[u8], &V)> {
        while self.rehash(1024) {}
        let mut best: Option<(u64, &Node<V>)> = None;
        for t in &self.tables {
            if t.used == 0 {
                continue;
            }
            if let Some((d, n)) = t.successor(r, &self.hasher) {
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, n));
                }
            }
        }
        best.map(|(_, n)| (&*n.key, &n.value))
    }

    /// Asks the CPU to start loading the first entries of the buckets a scan at `cursor`
    /// visits, and returns the cursor that scan would return (0: the end). A walk over a large
    /// table stalls on every entry it reaches (a cache and TLB miss each: 91% of a snapshot
    /// walk's time); issued some steps ahead, those loads overlap instead.
    #[inline]
    pub fn prefetch_scan(&self, cursor: u64) -> u64 {
        self.scan_buckets(cursor, |t, idx| {
            if let Some(n) = t.buckets[idx].as_deref() {
                prefetch(n);
            }
        })
    }

    /// Asks the CPU to start loading the bucket slots a lookup of `hash` reads (the first
    /// step; [`Dict::prefetch_entry`] and [`Dict::prefetch_chain`] follow).
    #[inline]
    pub fn prefetch_bucket(&self, hash: u64) {
        for t in self.live_tables() {
            prefetch(&t.buckets[hash as usize & t.mask()]);
        }
    }

    /// Asks the CPU to start loading the first entry of the buckets a lookup of `hash` walks.
    /// On a large keyspace a lookup misses the cache twice, on the bucket slot and on the
    /// entry (a third of a cluster node's time applying pipelined `SET`s). A caller with a
    /// stream of keys calls [`Dict::prefetch_bucket`] some work ahead of a lookup and this
    /// nearer to it: this reads the slot, which waits unless it has arrived, and the misses
    /// of many keys overlap instead of following one another.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        for t in self.live_tables() {
            if let Some(n) = t.buckets[hash as usize & t.mask()].as_deref() {
                prefetch(n);
                if std::mem::size_of::<Node<V>>() > 64 {
                    // A node larger than a line may span more (the keyspace's is 64 bytes,
                    // one line in its allocator size class; a larger one gets its second).
                    prefetch_raw((n as *const Node<V>).cast::<u8>().wrapping_add(64));
                }
            }
        }
    }

    /// Asks the CPU to start loading the entry after the first of the buckets a lookup of
    /// `key` walks, when the first does not hold `key`: at a load factor near one, as Redis's
    /// tables run, a third of the keys found are not first in their chain. It reads the first
    /// entry, so it comes some work after [`Dict::prefetch_entry`]. (Rarely a key lies further
    /// down; that one is left to miss.)
    #[inline]
    pub fn prefetch_chain(&self, hash: u64, key: &[u8]) {
        for t in self.live_tables() {
            if let Some(n) = t.buckets[hash as usize & t.mask()].as_deref() {
                if &*n.key != key {
                    if let Some(next) = n.next.as_deref() {
                        prefetch(next);
                    }
                }
            }
        }
    }

    /// The tables a lookup may read: the first, and the second while rehashing.
    #[inline]
    fn live_tables(&self) -> impl Iterator<Item = &Table<V>> {
        let n = if self.rehash_idx.is_some() { 2 } else { 1 };
        self.tables[..n].iter().filter(|t| !t.buckets.is_empty())
    }

    /// One step of a reverse-binary cursor scan (the `SCAN` guarantee: every element present
    /// from start to end of a full scan is returned at least once, even across resizes).
    /// Returns the next cursor; 0 means the scan is complete.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &V)) -> u64 {
        self.scan_buckets(cursor, |t, idx| {
            let mut cur = t.buckets[idx].as_deref();
            while let Some(n) = cur {
                f(&n.key, &n.value);
                cur = n.next.as_deref();
            }
        })
    }

    /// The buckets one scan step from `cursor` covers, given to `visit` (table, index), and
    /// the next cursor: [`Dict::scan`] reads them, [`Dict::prefetch_scan`] only asks for them.
    #[inline]
    fn scan_buckets(&self, cursor: u64, mut visit: impl FnMut(&Table<V>, usize)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut v = cursor;
        if self.rehash_idx.is_none() {
            let t = &self.tables[0];
            let m0 = t.mask() as u64;
            visit(t, (v & m0) as usize);
            v |= !m0;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            let (small, large) = if self.tables[0].buckets.len() <= self.tables[1].buckets.len() {
                (&self.tables[0], &self.tables[1])
            } else {
                (&self.tables[1], &self.tables[0])
            };
            let m0 = small.mask() as u64;
            let m1 = large.mask() as u64;
            visit(small, (v & m0) as usize);
            // Visit every bucket of the larger table that expands the small table's bucket.
            loop {
                visit(large, (v & m1) as usize);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }
}

impl<V: Clone> Clone for Dict<V> {
    /// A copy with the same hasher and stamps (entries re-inserted; bucket layout may differ).
    fn clone(&self) -> Self {
        let mut d = Dict::new(self.hasher.clone());
        for n in self.nodes() {
            let h = d.hasher.hash(&n.key);
            d.insert_new_stamped(h, &n.key, n.value.clone(), n.key.stamp());
        }
        d
    }
}

impl<V: PartialEq> PartialEq for Dict<V> {
    /// Same keys with equal values.
    fn eq(&self, other: &Self) -> bool {
        if self.len() != other.len() {
            return false;
        }
        let mut same = true;
        self.for_each(|k, v| {
            if same {
                let h = other.hasher.hash(k);
                same = other.get(h, k) == Some(v);
            }
        });
        same
    }
}

impl<V: Eq> Eq for Dict<V> {}

impl<V> std::fmt::Debug for Dict<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dict({} entries)", self.len())
    }
}

impl<V> Drop for Dict<V> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// How many buckets (or scan steps) ahead a walk over a table prefetches: enough
/// loads in flight to cover a miss's latency, few enough to stay in cache until reached.
pub const PREFETCH_AHEAD: usize = 8;

/// A hint to load the cache line at `p` (no effect on other architectures).
#[inline(always)]
pub fn prefetch<T>(p: &T) {
    prefetch_raw((p as *const T).cast());
}

/// [`prefetch`] of any address, which need not be valid.
#[inline(always)]
pub fn prefetch_raw(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and changes no state, whatever the
    // address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn dict() -> Dict<u64> {
        Dict::new(KeyHasher::with_seed(7))
    }

    fn key(i: u64) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    #[test]
    fn stamps_follow_their_keys_through_rehashing_replacing_cloning_and_removal() {
        let mut d = dict();
        let long = |i: u64| format!("a-key-longer-than-eighteen-bytes:{i}").into_bytes();
        for i in 0..2000u64 {
            let k = if i % 2 == 0 { key(i) } else { long(i) };
            d.insert_new_stamped(d.hasher().hash(&k), &k, i, i as u32 * 3);
        }
        let stamp = |d: &Dict<u64>, k: &[u8]| d.stamp(d.hasher().hash(k), k);
        for i in (0..2000u64).step_by(7) {
            let k = if i % 2 == 0 { key(i) } else { long(i) };
            assert_eq!(stamp(&d, &k), Some(i as u32 * 3), "after growth, key {i}");
        }
        let c = d.clone();
        assert_eq!(stamp(&c, &long(1)), Some(3));
        let h = d.hasher().hash(&key(4));
        assert_eq!(d.get_mut_stamped(h, &key(4), None), Some(&mut 4));
        assert_eq!(stamp(&d, &key(4)), Some(12), "looking up without a stamp keeps it");
        assert_eq!(d.get_mut_stamped(h, &key(4), Some(99)), Some(&mut 4));
        assert_eq!(d.insert_stamped(h, &key(4), 40, 100), Some(4));
        assert_eq!(d.remove_stamped(h, &key(4)), Some((40, 100)));
        assert_eq!(stamp(&d, &key(4)), None);
    }

    #[test]
    fn successor_is_the_same_whatever_the_table_went_through() {
        let h = KeyHasher::with_seed(7);
        let brute = |keys: &HashSet<Vec<u8>>, r: u64| {
            keys.iter().min_by_key(|k| h.hash(k).reverse_bits().wrapping_sub(r)).cloned()
        };
        let mut rng = crate::Rng::new(3);
        let mut grown = dict();
        let mut keys = HashSet::new();
        for i in 0..3000u64 {
            grown.insert(h.hash(&key(i)), &key(i), i);
            keys.insert(key(i));
            // Checked while the table grows (a search first finishes a rehash in progress).
            if i % 97 == 0 {
                let r = rng.next_u64();
                assert_eq!(grown.successor(r).map(|(k, _)| k.to_vec()), brute(&keys, r));
            }
        }
        // Removals that leave the table sparse, and a table built in another order.
        for i in (0..3000u64).filter(|i| i % 5 != 0) {
            grown.remove(h.hash(&key(i)), &key(i));
            keys.remove(&key(i));
        }
        let mut fresh = dict();
        for i in (0..3000u64).rev().filter(|i| i % 5 == 0) {
            fresh.insert(h.hash(&key(i)), &key(i), i);
        }
        for _ in 0..200 {
            let r = rng.next_u64();
            let want = brute(&keys, r);
            assert_eq!(grown.successor(r).map(|(k, _)| k.to_vec()), want);
            assert_eq!(fresh.successor(r).map(|(k, _)| k.to_vec()), want);
        }
        for r in [0, u64::MAX] {
            assert_eq!(fresh.successor(r).map(|(k, _)| k.to_vec()), brute(&keys, r));
        }
        assert!(dict().successor(5).is_none());
    }

    #[test]
    fn insert_get_remove_through_growth_and_shrink() {
        let mut d = dict();
        let h = d.hasher().clone();
        for i in 0..10_000u64 {
            let k = key(i);
            assert_eq!(d.insert(h.hash(&k), &k, i), None);
        }
        assert_eq!(d.len(), 10_000);
        for i in 0..10_000u64 {
            let k = key(i);
            assert_eq!(d.get(h.hash(&k), &k), Some(&i));
        }
        for i in 0..9_990u64 {
            let k = key(i);
            assert_eq!(d.remove(h.hash(&k), &k), Some(i));
        }
        d.shrink_if_needed();
        while d.rehash(100) {}
        assert!(d.buckets() <= 32, "shrunk to {}", d.buckets());
        for i in 9_990..10_000u64 {
            let k = key(i);
            assert_eq!(d.get(h.hash(&k), &k), Some(&i));
        }
    }

    #[test]
    fn scan_returns_every_stable_key_while_growing() {
        let mut d = dict();
        let h = d.hasher().clone();
        for i in 0..500u64 {
            let k = key(i);
            d.insert(h.hash(&k), &k, i);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut next = 500u64;
        loop {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            // Grow the table between scan calls to exercise the cursor across resizes (bounded,
            // so that the scan can finish).
            for _ in 0..(if next < 20_000 { 40 } else { 0 }) {
                let k = key(next);
                d.insert(h.hash(&k), &k, next);
                next += 1;
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500u64 {
            assert!(seen.contains(&key(i)), "missing key {i}");
        }
    }

    #[test]
    fn scan_survives_shrinking() {
        let mut d = dict();
        let h = d.hasher().clone();
        for i in 0..4000u64 {
            let k = key(i);
            d.insert(h.hash(&k), &k, i);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut doomed = 100u64;
        loop {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            for _ in 0..60 {
                if doomed < 4000 {
                    let k = key(doomed);
                    d.remove(h.hash(&k), &k);
                    doomed += 1;
                }
            }
            d.shrink_if_needed();
            if cursor == 0 {
                break;
            }
        }
        for i in 0..100u64 {
            assert!(seen.contains(&key(i)), "missing key {i}");
        }
    }

    #[test]
    fn lookup_hints_stay_inside_the_tables_through_growth_rehash_and_shrink() {
        let mut d = dict();
        let h = d.hasher().clone();
        let hashes = [0, 1, 0x8000_0000_0000_0000, u64::MAX, 0x1234_5678_9abc_def0];
        let hint = |d: &Dict<u64>, i: u64| {
            for x in hashes.iter().copied().chain([h.hash(&key(i))]) {
                d.prefetch_bucket(x);
                d.prefetch_entry(x);
                d.prefetch_chain(x, &key(i));
            }
        };
        hint(&d, 0);
        let mut rehashing = 0;
        for i in 0..3000u64 {
            let k = key(i);
            d.insert(h.hash(&k), &k, i);
            rehashing += d.rehash_idx.is_some() as usize;
            hint(&d, i);
        }
        for i in 0..2990u64 {
            let k = key(i);
            d.remove(h.hash(&k), &k);
            if i % 50 == 0 {
                d.shrink_if_needed();
            }
            hint(&d, i);
        }
        assert!(rehashing > 0, "hinted while rehashing");
        for i in 2990..3000u64 {
            assert_eq!(d.get(h.hash(&key(i)), &key(i)), Some(&i), "hints change nothing");
        }
    }

    #[test]
    fn prefetch_scan_steps_as_scan_does_through_growth_rehash_and_shrink() {
        let mut d = dict();
        let h = d.hasher().clone();
        let check = |d: &Dict<u64>| {
            let mut c = 0;
            for _ in 0..200 {
                let next = d.prefetch_scan(c);
                assert_eq!(next, d.scan(c, |_, _| {}), "from cursor {c}, rehashing {}", d.rehash_idx.is_some());
                c = next;
                if c == 0 {
                    break;
                }
            }
        };
        check(&d);
        let (mut rehashing, mut total) = (0, 0);
        for i in 0..3000u64 {
            let k = key(i);
            d.insert(h.hash(&k), &k, i);
            if i % 7 == 0 {
                rehashing += d.rehash_idx.is_some() as usize;
                total += 1;
                check(&d);
            }
        }
        for i in 0..2990u64 {
            let k = key(i);
            d.remove(h.hash(&k), &k);
            if i % 50 == 0 {
                d.shrink_if_needed();
            }
            if i % 7 == 0 {
                rehashing += d.rehash_idx.is_some() as usize;
                total += 1;
                check(&d);
            }
        }
        assert!(rehashing > 0 && rehashing < total, "both states were checked: {rehashing} of {total}");
    }

    #[test]
    fn random_entry_reaches_all_entries() {
        let mut d = dict();
        let h = d.hasher().clone();
        for i in 0..50u64 {
            let k = key(i);
            d.insert(h.hash(&k), &k, i);
        }
        let mut state = 1u64;
        let mut rnd = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            state >> 11
        };
        let mut seen = HashSet::new();
        for _ in 0..5000 {
            let (_, v) = d.random_entry(&mut rnd).unwrap();
            seen.insert(*v);
        }
        assert_eq!(seen.len(), 50);
    }

    proptest::proptest! {
        #[test]
        fn behaves_like_a_hashmap(ops in proptest::collection::vec((0u8..3, 0u16..300), 0..2000)) {
            let mut d = dict();
            let h = d.hasher().clone();
            let mut m = HashMap::new();
            for (op, k) in ops {
                let kb = key(k as u64);
                let hash = h.hash(&kb);
                match op {
                    0 => proptest::prop_assert_eq!(d.insert(hash, &kb, k as u64), m.insert(kb.clone(), k as u64)),
                    1 => proptest::prop_assert_eq!(d.remove(hash, &kb), m.remove(&kb)),
                    _ => {
                        d.shrink_if_needed();
                        proptest::prop_assert_eq!(d.get(hash, &kb), m.get(&kb));
                    }
                }
                proptest::prop_assert_eq!(d.len(), m.len());
            }
            let mut all = HashMap::new();
            d.for_each(|k, v| { all.insert(k.to_vec(), *v); });
            proptest::prop_assert_eq!(all, m);
        }
    }
}
