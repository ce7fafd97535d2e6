//! The execution environment: the only source of time and randomness for a command.
//!
//! Invariant: nothing under `engine` or `commands` reads a clock or a global RNG. A write's
//! effect depends only on the keyspace, its arguments and this environment, so direct
//! execution, AOF replay and Raft apply on every node are the same computation.

/// Time and randomness handed to one command (or one script or `EXEC`), frozen for its run.
#[derive(Clone, Debug)]
pub struct Env {
    /// Milliseconds since the Unix epoch, as the node that accepted the command saw them.
    pub now_ms: i64,
    /// Deterministic random numbers seeded per command.
    pub rng: Rng,
}

impl Env {
    /// An environment at `now_ms` with random numbers from `seed`.
    pub fn new(now_ms: i64, seed: u64) -> Env {
        Env { now_ms, rng: Rng::new(seed) }
    }
}

/// A small, fast, seedable generator (SplitMix64). Not cryptographic; it only has to be
/// reproducible from its seed on every node.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Rng::new(43);
        assert_ne!(Rng::new(42).next_u64(), c.next_u64());
        for _ in 0..1000 {
            assert!(a.below(7) < 7);
        }
    }
}
