//! LZF compression in the exact format (and, for the compressor, the exact choices) of
//! liblzf 3.6 as built into Redis, which compresses long strings in RDB files and `DUMP`
//! payloads with it.
//!
//! The format is a sequence of instructions:
//!
//! * `000LLLLL` followed by `L + 1` literal bytes (1..=32);
//! * `LLLooooo oooooooo`: copy `L + 2` bytes (L = 1..=6) from `o + 1` bytes back;
//! * `111ooooo LLLLLLLL oooooooo`: copy `L + 9` bytes from `o + 1` bytes back.
//!
//! The compressor mirrors liblzf's `VERY_FAST` mode with a 2^16-entry hash table, including
//! its conservative output-space checks, so for the same input and output budget it produces
//! the same bytes as Redis (and gives up in the same cases). One deliberate difference:
//! liblzf leaves its hash table uninitialized, so in rare cases Redis may find an extra match
//! through a stale slot; we start from an empty table, which only ever yields output that
//! Redis decodes just the same.

/// log2 of the hash table size liblzf is configured with (`HLOG`).
const HLOG: u32 = 16;
/// Number of hash table slots.
const HSIZE: usize = 1 << HLOG;
/// Longest literal run one instruction can carry.
const MAX_LIT: usize = 1 << 5;
/// Farthest back a reference can point (offset field is 13 bits, plus one).
const MAX_OFF: usize = 1 << 13;
/// Longest back reference (3-byte form: 7 + 255 + 2), in bytes.
const MAX_REF: usize = (1 << 8) + (1 << 3);
/// Most output bytes a single input byte can produce: a 3-byte back reference expands to at
/// most 264 bytes. Used to reject impossible declared lengths before allocating.
const MAX_EXPANSION: usize = 88;

/// liblzf's `VERY_FAST` hash of the three bytes whose value is packed into the low 24 bits
/// of `h` (higher bits may hold older bytes; they cancel out under the mask).
#[inline]
fn hash_index(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) & (HSIZE as u32 - 1)) as usize
}

/// Compresses `input` with LZF, returning `None` when it is empty, when `out_cap` is zero, or
/// when the output would not fit in `out_cap` bytes by liblzf's (slightly conservative)
/// accounting.
///
/// Redis calls this with `out_cap = input.len() - 4`, storing the string uncompressed when
/// compression does not save at least four bytes.
pub fn compress(input: &[u8], out_cap: usize) -> Option<Vec<u8>> {
    // The 256 KiB hash table is kept per thread and handed back all zero: allocating and
    // zeroing it per call made saving 1M short values take seconds (a snapshot compresses
    // every string longer than 20 bytes). Zeroing matches liblzf with INIT_HTAB, whose output
    // Redis's DUMP payloads are compared with.
    thread_local! {
        static HTAB: std::cell::RefCell<Vec<u32>> = std::cell::RefCell::new(vec![0u32; HSIZE]);
    }
    HTAB.with(|t| {
        let mut htab = t.borrow_mut();
        let out = compress_with(input, out_cap, &mut htab);
        if input.len() > HSIZE / 8 {
            htab.fill(0);
        } else {
            // Every slot written is the hash of some three input bytes (the index depends only
            // on the low 24 bits of the rolling value), so clearing those restores all zeros.
            for w in input.windows(3) {
                let v = (u32::from(w[0]) << 16) | (u32::from(w[1]) << 8) | u32::from(w[2]);
                htab[hash_index(v)] = 0;
            }
        }
        // Checked in this crate's unit tests only: scanning 256 KiB per call made a debug
        // server's snapshots crawl.
        if cfg!(test) {
            assert!(htab.iter().all(|&x| x == 0), "hash table must be handed back clean");
        }
        out
    })
}

fn compress_with(input: &[u8], out_cap: usize, htab: &mut [u32]) -> Option<Vec<u8>> {
    let in_len = input.len();
    // Hash slots hold 32-bit positions; Redis strings are far below that limit anyway.
    if in_len == 0 || out_cap == 0 || u32::try_from(in_len).is_err() {
        return None;
    }
    let out_end = out_cap;
    // The logical budget is `out_cap`, but nothing is ever written past the worst-case size
    // (all literals plus one header per 32 and one reserved run header), so a smaller
    // physical buffer suffices when the caller is generous.
    let physical = out_cap.min(in_len + in_len / MAX_LIT + 2);
    let mut out = vec![0u8; physical];
    // Slot value 0 doubles as "empty": position 0 is never used as a reference anyway.

    let mut ip = 0usize;
    let mut op = 1usize; // out[0] is reserved for the first literal run's header.
    let mut lit = 0usize;
    let mut hval: u32 = if in_len >= 2 { (u32::from(input[0]) << 8) | u32::from(input[1]) } else { 0 };

    while ip + 2 < in_len {
        hval = (hval << 8) | u32::from(input[ip + 2]);
        let slot = &mut htab[hash_index(hval)];
        let r = *slot as usize;
        *slot = ip as u32;

        let is_match = r > 0
            && r < ip
            && ip - r - 1 < MAX_OFF
            && input[r + 2] == input[ip + 2]
            && input[r] == input[ip]
            && input[r + 1] == input[ip + 1];
        if is_match {
            let off = ip - r - 1;
            let maxlen = (in_len - ip - 2).min(MAX_REF);

            // liblzf's two-step space check: fail only if, even after dropping an empty
            // pending run header, the reference and a new header might not fit.
            if op + 4 >= out_end && op - usize::from(lit == 0) + 4 >= out_end {
                return None;
            }
            // Close the pending literal run, or drop its header slot if it is empty.
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            if lit == 0 {
                op -= 1;
            }

            // Measure the match exactly as liblzf does: its unrolled fast path checks 16 more
            // bytes before honouring `maxlen`, which can lengthen a match near the end of the
            // input; the result must be reproduced byte for byte.
            let mut len = 2usize;
            let mut mismatch = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        mismatch = true;
                        break;
                    }
                }
            }
            if !mismatch {
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }

            len -= 2; // Now the encoded length: bytes copied minus two.
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1; // Reserve the next run header.
            ip += len + 1;

            if ip + 2 >= in_len {
                break;
            }
            // VERY_FAST mode re-hashes only the last two positions inside the match.
            ip -= 2;
            hval = (u32::from(input[ip]) << 8) | u32::from(input[ip + 1]);
            hval = (hval << 8) | u32::from(input[ip + 2]);
            htab[hash_index(hval)] = ip as u32;
            ip += 1;
            hval = (hval << 8) | u32::from(input[ip + 2]);
            htab[hash_index(hval)] = ip as u32;
            ip += 1;
        } else {
            if op >= out_end {
                return None;
            }
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
    }

    // At most two input bytes remain, needing at most three output bytes.
    if op + 3 > out_end {
        return None;
    }
    while ip < in_len {
        lit += 1;
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    if lit == 0 {
        op -= 1;
    }
    out.truncate(op);
    Some(out)
}

/// Decompresses LZF data that must expand to exactly `expected_len` bytes, as Redis's
/// loader requires; any malformed, truncated or over-long stream yields `None`, and no input
/// can cause a panic or an allocation beyond what the input could legitimately produce.
///
/// Like Redis, an `expected_len` of zero accepts any input and yields an empty string:
/// liblzf reports both errors and empty output as length 0, and Redis only compares that
/// length with the declared one.
pub fn decompress(input: &[u8], expected_len: usize) -> Option<Vec<u8>> {
    if expected_len == 0 {
        return Some(Vec::new());
    }
    if input.is_empty() || expected_len > input.len().saturating_mul(MAX_EXPANSION) {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(expected_len);
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < (1 << 5) {
            let run = ctrl + 1;
            if out.len() + run > expected_len || ip + run > input.len() {
                return None;
            }
            out.extend_from_slice(&input[ip..ip + run]);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if ip >= input.len() {
                return None;
            }
            if len == 7 {
                len += usize::from(input[ip]);
                ip += 1;
                if ip >= input.len() {
                    return None;
                }
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(input[ip]) + 1;
            ip += 1;
            let copy = len + 2;
            if out.len() + copy > expected_len || back > out.len() {
                return None;
            }
            let start = out.len() - back;
            if back >= copy {
                out.extend_from_within(start..start + copy);
            } else {
                // Overlapping copy: each byte may be one this very copy just produced.
                for k in 0..copy {
                    let b = out[start + k];
                    out.push(b);
                }
            }
        }
    }
    (out.len() == expected_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(data: &[u8]) {
        if let Some(c) = compress(data, data.len() + data.len() / 16 + 64) {
            assert_eq!(decompress(&c, data.len()).as_deref(), Some(data));
        } else {
            assert!(data.is_empty());
        }
    }

    #[test]
    fn known_vectors() {
        // What redis-server 7.0.15 stores for "a" * 100 (LZF part of its DUMP payload).
        let a100 = b"\x01aa\xe0\x57\x00\x01aa";
        assert_eq!(compress(&[b'a'; 100], 96).as_deref(), Some(&a100[..]));
        assert_eq!(decompress(a100, 100).as_deref(), Some(&[b'a'; 100][..]));
        // Not compressible enough to save four bytes.
        assert_eq!(compress(b"abcdefghijklmnopqrstuvwxyz", 22), None);
        assert_eq!(compress(b"", 10), None);
        assert_eq!(compress(b"abc", 0), None);
    }

    #[test]
    fn decompress_rejects_garbage() {
        assert_eq!(decompress(b"", 1), None);
        assert_eq!(decompress(b"\x00a", 2), None); // Too short.
        assert_eq!(decompress(b"\x01a", 2), None); // Truncated literal.
        assert_eq!(decompress(b"\x20\x00", 3), None); // Reference before the start.
        assert_eq!(decompress(b"\x00a\x20", 3), None); // Truncated reference.
        assert_eq!(decompress(b"\x00a\xe0", 3), None);
        assert_eq!(decompress(b"\x00a\xe0\x05", 3), None);
        assert_eq!(decompress(b"\x00a\x20\x00", 3), None); // Output overflow.
        assert_eq!(decompress(b"\x00a\x20\x00", 5), None); // Output too short.
        assert_eq!(decompress(b"\x00a\x20\x00", 4).as_deref(), Some(&b"aaaa"[..]));
        assert_eq!(decompress(b"\x00a", usize::MAX), None);
        // Redis accepts anything when the declared length is zero.
        assert_eq!(decompress(b"\xff\xff", 0).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn round_trips() {
        round_trip(b"");
        round_trip(b"a");
        round_trip(b"ab");
        round_trip(b"abc");
        round_trip(&[0u8; 100_000]);
        let text: Vec<u8> = (0..50_000u32).map(|i| b"the quick brown fox "[(i % 20) as usize]).collect();
        round_trip(&text);
        let noise: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        round_trip(&noise);
    }

    proptest! {
        #[test]
        fn compress_then_decompress(data in proptest::collection::vec(0u8..4, 0..3000)) {
            round_trip(&data);
        }

        #[test]
        fn compress_with_any_budget_never_panics(
            data in proptest::collection::vec(0u8..3, 0..400),
            cap in 0usize..500,
        ) {
            if let Some(c) = compress(&data, cap) {
                prop_assert!(c.len() <= cap);
                prop_assert_eq!(decompress(&c, data.len()), Some(data.clone()));
            }
        }

        #[test]
        fn decompress_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            len in 0usize..2000,
        ) {
            if let Some(out) = decompress(&data, len) {
                prop_assert_eq!(out.len(), len);
            }
        }
    }
}
