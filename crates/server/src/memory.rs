//! Memory figures for `INFO memory`. Without an allocator that reports its totals, the
//! resident set size stands in for `used_memory`.

/// Bytes allocated by the program, when the allocator can tell.
pub fn allocated() -> Option<u64> {
    None
}

/// The allocator's name for `mem_allocator`.
pub fn allocator_name() -> &'static str {
    "libc"
}
