//! Memory figures for `INFO memory`, from jemalloc's statistics when jemalloc is the global
//! allocator (the `tandem-server` binary installs it). Reading them needs an epoch refresh,
//! which is cheap at `INFO` rates.

use tikv_jemalloc_ctl::{epoch, stats};

/// Bytes allocated by the program, when the allocator can tell.
pub fn allocated() -> Option<u64> {
    epoch::advance().ok()?;
    let a = stats::allocated::read().ok()? as u64;
    // A process that does not use jemalloc as its allocator (unit tests) reports almost
    // nothing here; fall back to RSS then.
    (a > 0).then_some(a)
}

/// `used_memory`: the allocator's count, or the resident set size when it cannot tell.
pub fn used() -> u64 {
    allocated().unwrap_or_else(crate::info::rss_bytes)
}

/// The allocator's name for `mem_allocator`.
pub fn allocator_name() -> &'static str {
    "jemalloc-5.3.0"
}
