//! The bitmaps family: `SETBIT`, `GETBIT`, `BITCOUNT`, `BITPOS`, `BITOP`, `BITFIELD` and
//! `BITFIELD_RO`, as in Redis's `bitops.c`.
//!
//! Bitmaps are strings. Bit 0 is the most significant bit of the first byte; bitfields are
//! big-endian runs of bits starting at any bit. Writes turn the string `raw` (modified in
//! place) and zero-pad it up to the highest bit written; reads treat the string as padded with
//! zeros on the right forever.
//!
//! Argument checks follow Redis 7.2 in order and in text, including its quirks: `BITCOUNT` and
//! `BITPOS` look the key up before parsing the range (a missing key answers `0` even for bad
//! ranges), and `BITFIELD ... SET` on an unsigned type treats a negative value as a huge
//! positive one (so `OVERFLOW SAT` saturates it to the maximum).

use crate::args::{self, is};
use crate::ctx::{Ctx, Store};
use crate::errors::{CmdError, CmdResult};
use crate::notify;
use crate::table::{bind, Binding, LockMode::Keys};
use engine::{num, Str, Value};

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("setbit", setbit, Keys),
    bind("getbit", getbit, Keys),
    bind("bitcount", bitcount, Keys),
    bind("bitpos", bitpos, Keys),
    bind("bitop", bitop, Keys),
    bind("bitfield", bitfield, Keys),
    bind("bitfield_ro", bitfield_ro, Keys),
];

// ---------------------------------------------------------------------------------------------
// Argument parsing.
// ---------------------------------------------------------------------------------------------

/// Parses a bit offset (Redis's `getBitOffsetFromArgument`). With `hash_bits` (BITFIELD), an
/// offset written `#N` means `N * bits`. The offset must be non-negative and address a byte
/// below `max_bulk_len` (`proto-max-bulk-len`, 512 MB by default, so bit 2^32-1 at most).
fn bit_offset(arg: &[u8], hash_bits: Option<u32>, max_bulk_len: u64) -> Result<u64, CmdError> {
    let (digits, mul) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], i64::from(bits)),
        _ => (arg, 1),
    };
    let v = num::parse_i64(digits).ok_or(CmdError::BitOffset)?;
    // Redis multiplies in a C `long long`; a product that overflows wraps (and is then
    // usually rejected as negative or too large).
    let v = v.wrapping_mul(mul);
    if v < 0 || (v as u64 >> 3) >= max_bulk_len {
        return Err(CmdError::BitOffset);
    }
    Ok(v as u64)
}

/// Parses a bitfield type `i1`..`i64` or `u1`..`u63`: (signed, bits).
fn bitfield_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(CmdError::BitfieldType),
    };
    // Redis reads the digits as a C string: they end at the first NUL byte.
    let rest = &arg[1..];
    let rest = &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())];
    let bits = num::parse_i64(rest).ok_or(CmdError::BitfieldType)?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(CmdError::BitfieldType);
    }
    Ok((signed, bits as u32))
}

/// `BIT` or `BYTE` (true for `BIT`); anything else is a syntax error.
fn range_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

// ---------------------------------------------------------------------------------------------
// Bit scanning: popcount and first-bit search over byte slices, a machine word at a time.
// ---------------------------------------------------------------------------------------------

/// Number of set bits in `b`.
pub fn popcount(b: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if b.len() >= 64 && std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports `popcnt`, checked just above.
            return unsafe { popcount_hw(b) };
        }
    }
    popcount_words(b)
}

/// [`popcount_words`] compiled with the `popcnt` instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn popcount_hw(b: &[u8]) -> u64 {
    popcount_words(b)
}

/// Popcount over 32-byte blocks with four independent accumulators, then the tail.
#[inline(always)]
fn popcount_words(b: &[u8]) -> u64 {
    let (blocks, tail) = b.as_chunks::<32>();
    let mut acc = [0u64; 4];
    for blk in blocks {
        let (words, _) = blk.as_chunks::<8>();
        for (a, w) in acc.iter_mut().zip(words) {
            *a += u64::from(u64::from_ne_bytes(*w).count_ones());
        }
    }
    let (words, bytes) = tail.as_chunks::<8>();
    let mut n = acc.iter().sum::<u64>();
    for w in words {
        n += u64::from(u64::from_ne_bytes(*w).count_ones());
    }
    for &x in bytes {
        n += u64::from(x.count_ones());
    }
    n
}

/// Index of the first byte of `b` that is not `skip`.
fn first_byte_not(b: &[u8], skip: u8) -> Option<usize> {
    let pattern = u64::from_ne_bytes([skip; 8]);
    let (words, _) = b.as_chunks::<8>();
    let mut i = 0;
    for w in words {
        if u64::from_ne_bytes(*w) != pattern {
            break;
        }
        i += 8;
    }
    b[i..].iter().position(|&x| x != skip).map(|p| p + i)
}

/// Mask of the bits `from..=to` of a byte, bit 0 being the most significant.
#[inline]
fn byte_mask(from: u64, to: u64) -> u8 {
    (0xffu8 >> from) & (0xffu8 << (7 - to))
}

/// Position (0 = most significant) of the first bit equal to `bit` among the bits of `byte`
/// selected by `mask`.
#[inline]
fn first_in_byte(byte: u8, mask: u8, bit: bool) -> Option<u64> {
    let x = if bit { byte } else { !byte } & mask;
    (x != 0).then(|| u64::from(x.leading_zeros()))
}

/// Number of set bits among bits `lo..=hi` of `b` (`hi < 8 * b.len()`).
pub fn count_range(b: &[u8], lo: u64, hi: u64) -> u64 {
    let (lb, hb) = ((lo >> 3) as usize, (hi >> 3) as usize);
    if lb == hb {
        return u64::from((b[lb] & byte_mask(lo & 7, hi & 7)).count_ones());
    }
    u64::from((b[lb] & byte_mask(lo & 7, 7)).count_ones())
        + popcount(&b[lb + 1..hb])
        + u64::from((b[hb] & byte_mask(0, hi & 7)).count_ones())
}

/// Position of the first bit equal to `bit` among bits `lo..=hi` of `b` (`hi < 8 * b.len()`).
pub fn find_bit(b: &[u8], lo: u64, hi: u64, bit: bool) -> Option<u64> {
    let (lb, hb) = ((lo >> 3) as usize, (hi >> 3) as usize);
    let at = |byte: usize, p: u64| byte as u64 * 8 + p;
    if lb == hb {
        return first_in_byte(b[lb], byte_mask(lo & 7, hi & 7), bit).map(|p| at(lb, p));
    }
    if let Some(p) = first_in_byte(b[lb], byte_mask(lo & 7, 7), bit) {
        return Some(at(lb, p));
    }
    let skip = if bit { 0x00 } else { 0xff };
    if let Some(i) = first_byte_not(&b[lb + 1..hb], skip) {
        let byte = lb + 1 + i;
        return first_in_byte(b[byte], 0xff, bit).map(|p| at(byte, p));
    }
    first_in_byte(b[hb], byte_mask(0, hi & 7), bit).map(|p| at(hb, p))
}

// ---------------------------------------------------------------------------------------------
// Bitfields: big-endian integers of 1 to 64 bits at any bit offset.
// ---------------------------------------------------------------------------------------------

/// All ones in the low `bits` bits.
#[inline]
fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The 9 bytes starting at byte `byte` as a 72-bit big-endian number (missing bytes are 0):
/// enough to hold any 64-bit field whatever its bit alignment.
#[inline]
fn window(buf: &[u8], byte: usize) -> u128 {
    let mut w = 0u128;
    for i in 0..9 {
        let x = byte.checked_add(i).and_then(|j| buf.get(j)).copied().unwrap_or(0);
        w = (w << 8) | u128::from(x);
    }
    w
}

/// Reads the unsigned `bits`-bit field at bit `offset`; bits past the end of `buf` read as 0.
pub fn get_unsigned(buf: &[u8], offset: u64, bits: u32) -> u64 {
    debug_assert!((1..=64).contains(&bits));
    let shift = 72 - (offset & 7) as u32 - bits;
    (window(buf, (offset >> 3) as usize) >> shift) as u64 & low_mask(bits)
}

/// Reads the two's complement `bits`-bit field at bit `offset`.
pub fn get_signed(buf: &[u8], offset: u64, bits: u32) -> i64 {
    sign_extend(get_unsigned(buf, offset, bits), bits)
}

/// Writes the low `bits` bits of `value` at bit `offset`; bytes past the end of `buf` are
/// left alone (callers grow `buf` first).
pub fn set_bits(buf: &mut [u8], offset: u64, bits: u32, value: u64) {
    debug_assert!((1..=64).contains(&bits));
    let byte = (offset >> 3) as usize;
    let shift = 72 - (offset & 7) as u32 - bits;
    let field = u128::from(low_mask(bits)) << shift;
    let w = (window(buf, byte) & !field) | (u128::from(value & low_mask(bits)) << shift);
    for i in 0..9 {
        if let Some(x) = byte.checked_add(i).and_then(|j| buf.get_mut(j)) {
            *x = (w >> (8 * (8 - i))) as u8;
        }
    }
}

/// Interprets the low `bits` bits of `v` as a two's complement number.
#[inline]
fn sign_extend(v: u64, bits: u32) -> i64 {
    let sh = 64 - bits;
    ((v << sh) as i64) >> sh
}

/// What `BITFIELD` does when a value does not fit its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Keep the low bits (two's complement wrap-around). The default.
    Wrap,
    /// Clamp to the type's minimum or maximum.
    Sat,
    /// Refuse: nothing is written and the reply entry is null.
    Fail,
}

/// The value an unsigned `bits`-bit field gets from `SET value`, or None under `FAIL`.
/// A negative value is taken as its 64-bit two's complement (a huge positive number), as in
/// Redis: `SAT` then gives the maximum and `WRAP` its low bits.
pub fn unsigned_set(value: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = low_mask(bits);
    let v = value as u64;
    if v <= max {
        return Some(v);
    }
    match ow {
        Overflow::Wrap => Some(v & max),
        Overflow::Sat => Some(max),
        Overflow::Fail => None,
    }
}

/// The value an unsigned `bits`-bit field holding `old` gets from `INCRBY incr`, or None
/// under `FAIL`.
pub fn unsigned_incr(old: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = low_mask(bits);
    let sum = i128::from(old) + i128::from(incr);
    if (0..=i128::from(max)).contains(&sum) {
        return Some(sum as u64);
    }
    match ow {
        Overflow::Wrap => Some(sum as u64 & max),
        Overflow::Sat => Some(if sum < 0 { 0 } else { max }),
        Overflow::Fail => None,
    }
}

/// The value a signed `bits`-bit field gets from `SET value`, or None under `FAIL`.
///
/// Redis decides the direction of an overflow by computing `max - value` in 64 bits, which
/// wraps for values within `2^63 - max` of `i64::MIN`: those count as overflowing upwards, so
/// `SAT` gives the maximum (`SET i8 0 -9223372036854775808` stores 127).
pub fn signed_set(value: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = (low_mask(bits) >> 1) as i64;
    let min = -max - 1;
    if (min..=max).contains(&value) {
        return Some(value);
    }
    match ow {
        Overflow::Wrap => Some(sign_extend(value as u64, bits)),
        Overflow::Sat => {
            let wraps = i128::from(max) - i128::from(value) > i128::from(i64::MAX);
            Some(if value > max || wraps { max } else { min })
        }
        Overflow::Fail => None,
    }
}

/// The value a signed `bits`-bit field holding `old` gets from `INCRBY incr`, or None under
/// `FAIL`.
pub fn signed_incr(old: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = (low_mask(bits) >> 1) as i64;
    let min = -max - 1;
    let sum = i128::from(old) + i128::from(incr);
    if (i128::from(min)..=i128::from(max)).contains(&sum) {
        return Some(sum as i64);
    }
    match ow {
        Overflow::Wrap => Some(sign_extend(sum as u64, bits)),
        Overflow::Sat => Some(if sum < 0 { min } else { max }),
        Overflow::Fail => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Key access.
// ---------------------------------------------------------------------------------------------

/// Runs `f` on the string under `key` as a mutable `raw` buffer at least `len` bytes long,
/// creating the key or zero-padding the string as needed (Redis's
/// `lookupStringForBitCommand`). `f` gets the buffer and whether it was created or grown,
/// and returns its result and how many changes it made.
///
/// Counts changes on the store: those `f` reports, and at least one if the key was created
/// or grown (Redis does not propagate a `BITFIELD` whose only writes failed even when it
/// created or grew the string; Tandem logs it so that replicas see the same keyspace).
fn with_bits_for_write<R>(
    store: &mut Store,
    key: &[u8],
    len: usize,
    f: impl FnOnce(&mut [u8], bool) -> (R, u64),
) -> Result<R, CmdError> {
    if let Some(s) = store.get_str_for_write(key)? {
        let buf = s.make_raw();
        let grown = buf.len() < len;
        if grown {
            buf.resize(len, 0);
        }
        let (r, changes) = f(buf, grown);
        store.dirty += changes.max(u64::from(grown));
        return Ok(r);
    }
    let mut buf = vec![0u8; len];
    let (r, changes) = f(&mut buf, true);
    // `set` counts one change.
    store.set(key, Value::Str(Str::Raw(buf)), false);
    store.dirty += changes.saturating_sub(1);
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Commands.
// ---------------------------------------------------------------------------------------------

/// `SETBIT key offset value`
fn setbit(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let offset = bit_offset(argv[2], None, ctx.host.max_bulk_len())?;
    let on = match num::parse_i64(argv[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => return Err(CmdError::BitValue),
    };
    let byte = (offset >> 3) as usize;
    let mask = 0x80u8 >> (offset & 7);
    let (old, changed) = with_bits_for_write(&mut ctx.store, argv[1], byte + 1, |buf, grown| {
        let old = buf[byte] & mask != 0;
        if on {
            buf[byte] |= mask;
        } else {
            buf[byte] &= !mask;
        }
        let changed = grown || old != on;
        ((old, changed), u64::from(changed))
    })?;
    if changed {
        ctx.store.notify(notify::STRING, "setbit", argv[1]);
    }
    ctx.out.int(i64::from(old));
    Ok(())
}

/// `GETBIT key offset`
fn getbit(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let offset = bit_offset(argv[2], None, ctx.host.max_bulk_len())?;
    let byte = (offset >> 3) as usize;
    let mask = 0x80u8 >> (offset & 7);
    let set = match ctx.store.get_str(argv[1])? {
        Some(s) => s.with_bytes(|b| b.get(byte).is_some_and(|&x| x & mask != 0)),
        None => false,
    };
    ctx.out.int(i64::from(set));
    Ok(())
}

/// `BITCOUNT key [start end [BYTE | BIT]]`
fn bitcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Redis 7 looks the key up first: a missing key answers 0 whatever the arguments.
    let Some(s) = ctx.store.get_str(argv[1])? else {
        ctx.out.int(0);
        return Ok(());
    };
    let n = s.with_bytes(|b| -> Result<u64, CmdError> {
        let len = b.len() as i64;
        let (lo, hi) = match argv.len() {
            2 => match len {
                0 => return Ok(0),
                _ => (0, len as u64 * 8 - 1),
            },
            4 | 5 => {
                let start = args::int(argv[2])?;
                let end = args::int(argv[3])?;
                if start < 0 && end < 0 && start > end {
                    return Ok(0);
                }
                let in_bits = match argv.get(4) {
                    Some(u) => range_unit(u)?,
                    None => false,
                };
                if in_bits {
                    match args::normalize_range(start, end, len * 8) {
                        Some(r) => r,
                        None => return Ok(0),
                    }
                } else {
                    match args::normalize_range(start, end, len) {
                        Some((s, e)) => (s * 8, e * 8 + 7),
                        None => return Ok(0),
                    }
                }
            }
            _ => return Err(CmdError::Syntax),
        };
        Ok(count_range(b, lo, hi))
    })?;
    ctx.out.int(n as i64);
    Ok(())
}

/// `BITPOS key bit [start [end [BYTE | BIT]]]`
fn bitpos(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let bit = match args::int(argv[2])? {
        0 => false,
        1 => true,
        _ => return Err(CmdError::BitArgument),
    };
    // A missing key is an infinite run of zeros (and Redis 7 answers before parsing the range).
    let Some(s) = ctx.store.get_str(argv[1])? else {
        ctx.out.int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let pos = s.with_bytes(|b| -> Result<i64, CmdError> {
        let len = b.len() as i64;
        let mut end_given = false;
        let range = match argv.len() {
            3 => args::normalize_range(0, len - 1, len).map(|(s, e)| (s * 8, e * 8 + 7)),
            4..=6 => {
                let start = args::int(argv[3])?;
                // The unit is checked before the end is parsed, as in Redis.
                let in_bits = match argv.get(5) {
                    Some(u) => range_unit(u)?,
                    None => false,
                };
                let end = match argv.get(4) {
                    Some(e) => {
                        end_given = true;
                        args::int(e)?
                    }
                    None => len - 1,
                };
                if in_bits {
                    args::normalize_range(start, end, len * 8)
                } else {
                    args::normalize_range(start, end, len).map(|(s, e)| (s * 8, e * 8 + 7))
                }
            }
            _ => return Err(CmdError::Syntax),
        };
        // An empty range holds neither a 0 nor a 1.
        let Some((lo, hi)) = range else { return Ok(-1) };
        Ok(match find_bit(b, lo, hi, bit) {
            Some(p) => p as i64,
            None if bit || end_given => -1,
            // Looking for a 0 up to the end of the string: the string is zero-padded, so the
            // first clear bit is the one just past the end.
            None => (hi + 1) as i64,
        })
    })?;
    ctx.out.int(pos);
    Ok(())
}

/// The operation of `BITOP`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// `BITOP AND | OR | XOR | NOT destkey key [key ...]`
fn bitop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let op = if is(argv[1], "and") {
        BitOp::And
    } else if is(argv[1], "or") {
        BitOp::Or
    } else if is(argv[1], "xor") {
        BitOp::Xor
    } else if is(argv[1], "not") {
        BitOp::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == BitOp::Not && argv.len() != 4 {
        return Err(CmdError::BitopNotSingleSource);
    }
    let dest = argv[2];
    // Fold the sources into `res` one at a time; a missing key is an empty string, and every
    // string is zero-padded to the longest.
    let mut res: Vec<u8> = Vec::new();
    for (j, key) in argv[3..].iter().enumerate() {
        let Some(s) = ctx.store.get_str(key)? else {
            if op == BitOp::And {
                res.fill(0);
            }
            continue;
        };
        s.with_bytes(|b| {
            if j == 0 {
                res.extend_from_slice(b);
                if op == BitOp::Not {
                    res.iter_mut().for_each(|x| *x = !*x);
                }
                return;
            }
            let n = res.len().min(b.len());
            match op {
                BitOp::And => {
                    res[..n].iter_mut().zip(&b[..n]).for_each(|(x, y)| *x &= y);
                    res[n..].fill(0);
                    res.resize(res.len().max(b.len()), 0);
                }
                BitOp::Or | BitOp::Xor => {
                    if op == BitOp::Or {
                        res[..n].iter_mut().zip(&b[..n]).for_each(|(x, y)| *x |= y);
                    } else {
                        res[..n].iter_mut().zip(&b[..n]).for_each(|(x, y)| *x ^= y);
                    }
                    res.extend_from_slice(&b[n..]);
                }
                BitOp::Not => unreachable!("NOT has a single source"),
            }
        });
    }
    let len = res.len();
    if len == 0 {
        // An empty result deletes the destination.
        if ctx.store.delete(dest) {
            ctx.store.notify(notify::GENERIC, "del", dest);
            ctx.propagate_as(|| vec![b"DEL".to_vec(), dest.to_vec()]);
        }
    } else {
        ctx.store.set(dest, Value::Str(Str::Raw(res)), false);
        ctx.store.notify(notify::STRING, "set", dest);
    }
    ctx.out.int(len as i64);
    Ok(())
}

/// One `BITFIELD` operation.
#[derive(Clone, Copy, Debug)]
struct FieldOp {
    kind: FieldOpKind,
    signed: bool,
    bits: u32,
    offset: u64,
    /// The `SET` value or the `INCRBY` increment.
    value: i64,
    overflow: Overflow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldOpKind {
    Get,
    Set,
    IncrBy,
}

/// `BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment |
/// OVERFLOW WRAP|SAT|FAIL] ...`
fn bitfield(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, argv, false)
}

/// `BITFIELD_RO key [GET type offset] ...`
fn bitfield_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, argv, true)
}

/// Parses every operation first (reporting the first bad argument), then runs them in order.
fn bitfield_generic(ctx: &mut Ctx, argv: &[&[u8]], read_only: bool) -> CmdResult {
    let max_bulk_len = ctx.host.max_bulk_len();
    let mut ops: Vec<FieldOp> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut writes = false;
    let mut highest_bit = 0u64;
    let mut j = 2;
    while j < argv.len() {
        let remaining = argv.len() - j - 1;
        let sub = argv[j];
        let kind = if is(sub, "get") && remaining >= 2 {
            FieldOpKind::Get
        } else if is(sub, "set") && remaining >= 3 {
            FieldOpKind::Set
        } else if is(sub, "incrby") && remaining >= 3 {
            FieldOpKind::IncrBy
        } else if is(sub, "overflow") && remaining >= 1 {
            let t = argv[j + 1];
            overflow = if is(t, "wrap") {
                Overflow::Wrap
            } else if is(t, "sat") {
                Overflow::Sat
            } else if is(t, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::BitfieldOverflowType);
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = bitfield_type(argv[j + 1])?;
        let offset = bit_offset(argv[j + 2], Some(bits), max_bulk_len)?;
        let mut value = 0;
        if kind != FieldOpKind::Get {
            writes = true;
            highest_bit = highest_bit.max(offset + u64::from(bits) - 1);
            value = args::int(argv[j + 3])?;
        }
        ops.push(FieldOp { kind, signed, bits, offset, value, overflow });
        j += if kind == FieldOpKind::Get { 3 } else { 4 };
    }

    if !writes {
        let s = ctx.store.get_str(argv[1])?;
        let out = &mut *ctx.out;
        out.array(ops.len());
        let mut get = |b: &[u8]| {
            for op in &ops {
                if op.signed {
                    out.int(get_signed(b, op.offset, op.bits));
                } else {
                    out.int(get_unsigned(b, op.offset, op.bits) as i64);
                }
            }
        };
        match s {
            Some(s) => s.with_bytes(get),
            None => get(&[]),
        }
        return Ok(());
    }
    if read_only {
        return Err(CmdError::BitfieldRoGetOnly);
    }

    let out = &mut *ctx.out;
    let len = (highest_bit >> 3) as usize + 1;
    // Redis publishes `setbit` when a write changed a value or created or grew the string
    // (not for writes `OVERFLOW FAIL` refused).
    let mut wrote = false;
    with_bits_for_write(&mut ctx.store, argv[1], len, |buf, grown| {
        out.array(ops.len());
        let mut changes = 0u64;
        for op in &ops {
            if op.kind == FieldOpKind::Get {
                if op.signed {
                    out.int(get_signed(buf, op.offset, op.bits));
                } else {
                    out.int(get_unsigned(buf, op.offset, op.bits) as i64);
                }
                continue;
            }
            let set = op.kind == FieldOpKind::Set;
            // (old, new, reply) as raw bits; None when FAIL refused the write.
            let result = if op.signed {
                let old = get_signed(buf, op.offset, op.bits);
                let new = if set {
                    signed_set(op.value, op.bits, op.overflow)
                } else {
                    signed_incr(old, op.value, op.bits, op.overflow)
                };
                new.map(|new| (old as u64, new as u64, if set { old } else { new }))
            } else {
                let old = get_unsigned(buf, op.offset, op.bits);
                let new = if set {
                    unsigned_set(op.value, op.bits, op.overflow)
                } else {
                    unsigned_incr(old, op.value, op.bits, op.overflow)
                };
                new.map(|new| (old, new, if set { old as i64 } else { new as i64 }))
            };
            match result {
                Some((old, new, reply)) => {
                    out.int(reply);
                    set_bits(buf, op.offset, op.bits, new);
                    if grown || old != new {
                        changes += 1;
                        wrote = true;
                    }
                }
                None => out.null(),
            }
        }
        ((), changes)
    })?;
    if wrote {
        ctx.store.notify(notify::STRING, "setbit", argv[1]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;
    use proptest::prelude::*;
    use protocol::Frame;

    // --- reference models -------------------------------------------------------------------

    /// Bit `i` of `b` (0 = MSB of the first byte), zero past the end.
    fn ref_bit(b: &[u8], i: u64) -> bool {
        b.get((i / 8) as usize).is_some_and(|x| x & (0x80 >> (i % 8)) != 0)
    }

    fn ref_get_unsigned(b: &[u8], offset: u64, bits: u32) -> u64 {
        (0..u64::from(bits)).fold(0, |v, i| (v << 1) | u64::from(ref_bit(b, offset + i)))
    }

    fn ref_set(b: &mut [u8], offset: u64, bits: u32, value: u64) {
        for i in 0..u64::from(bits) {
            let on = value >> (u64::from(bits) - 1 - i) & 1 == 1;
            let pos = offset + i;
            let m = 0x80u8 >> (pos % 8);
            let x = &mut b[(pos / 8) as usize];
            *x = if on { *x | m } else { *x & !m };
        }
    }

    /// Redis's `checkUnsignedBitfieldOverflow` logic, written with its C wrapping arithmetic.
    fn ref_unsigned(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
        let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let maxincr = max.wrapping_sub(value) as i64;
        let minincr = (value as i64).wrapping_neg();
        let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
        let over = if value > max || (incr > 0 && incr > maxincr) {
            Some(max)
        } else if incr < 0 && incr < minincr {
            Some(0)
        } else {
            None
        };
        match (over, ow) {
            (None, _) => Some(value.wrapping_add(incr as u64)),
            (Some(_), Overflow::Wrap) => Some(wrap()),
            (Some(lim), Overflow::Sat) => Some(lim),
            (Some(_), Overflow::Fail) => None,
        }
    }

    /// Redis's `checkSignedBitfieldOverflow` logic, written with its C wrapping arithmetic.
    fn ref_signed(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
        let max: i64 = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
        let min = -max - 1;
        let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
        let minincr = (min as u64).wrapping_sub(value as u64) as i64;
        let wrap = || {
            let mut c = (value as u64).wrapping_add(incr as u64);
            if bits < 64 {
                let mask = u64::MAX << bits;
                if c & (1u64 << (bits - 1)) != 0 {
                    c |= mask;
                } else {
                    c &= !mask;
                }
            }
            c as i64
        };
        let over = if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
            Some(max)
        } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
            Some(min)
        } else {
            None
        };
        match (over, ow) {
            (None, _) => Some(value.wrapping_add(incr)),
            (Some(_), Overflow::Wrap) => Some(wrap()),
            (Some(lim), Overflow::Sat) => Some(lim),
            (Some(_), Overflow::Fail) => None,
        }
    }

    fn overflow_mode() -> impl Strategy<Value = Overflow> {
        prop_oneof![Just(Overflow::Wrap), Just(Overflow::Sat), Just(Overflow::Fail)]
    }

    /// Integers that hit the edges of every width often.
    fn edgy_i64() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            (0u32..64, -2i64..=2).prop_map(|(s, d)| (1i64 << s).wrapping_add(d)),
            (0u32..64, -2i64..=2).prop_map(|(s, d)| (1i64 << s).wrapping_neg().wrapping_add(d)),
            Just(i64::MIN),
            Just(i64::MAX),
            -3i64..=3,
        ]
    }

    // --- unit tests of the helpers ----------------------------------------------------------

    #[test]
    fn unsigned_edges() {
        use Overflow::*;
        assert_eq!(unsigned_incr(255, 1, 8, Wrap), Some(0));
        assert_eq!(unsigned_incr(255, 1, 8, Sat), Some(255));
        assert_eq!(unsigned_incr(255, 1, 8, Fail), None);
        assert_eq!(unsigned_incr(0, -1, 8, Wrap), Some(255));
        assert_eq!(unsigned_incr(0, -1, 8, Sat), Some(0));
        assert_eq!(unsigned_incr(0, -1, 8, Fail), None);
        assert_eq!(unsigned_incr(1, i64::MIN, 63, Wrap), Some(1));
        assert_eq!(unsigned_incr(0, i64::MAX, 63, Sat), Some(low_mask(63)));
        assert_eq!(unsigned_incr(5, 10, 1, Wrap), Some(1));
        // SET of a negative value: a huge positive number to Redis.
        assert_eq!(unsigned_set(-1, 8, Wrap), Some(255));
        assert_eq!(unsigned_set(-1, 8, Sat), Some(255));
        assert_eq!(unsigned_set(-200, 8, Sat), Some(255));
        assert_eq!(unsigned_set(-200, 8, Fail), None);
        assert_eq!(unsigned_set(256, 8, Wrap), Some(0));
        assert_eq!(unsigned_set(255, 8, Fail), Some(255));
    }

    #[test]
    fn signed_edges() {
        use Overflow::*;
        assert_eq!(signed_incr(127, 1, 8, Wrap), Some(-128));
        assert_eq!(signed_incr(127, 1, 8, Sat), Some(127));
        assert_eq!(signed_incr(127, 1, 8, Fail), None);
        assert_eq!(signed_incr(-128, -1, 8, Wrap), Some(127));
        assert_eq!(signed_incr(-128, -1, 8, Sat), Some(-128));
        assert_eq!(signed_incr(i64::MAX, 1, 64, Wrap), Some(i64::MIN));
        assert_eq!(signed_incr(i64::MAX, 1, 64, Sat), Some(i64::MAX));
        assert_eq!(signed_incr(i64::MIN, -1, 64, Sat), Some(i64::MIN));
        assert_eq!(signed_incr(i64::MIN, i64::MIN, 64, Wrap), Some(0));
        assert_eq!(signed_incr(0, 1, 1, Wrap), Some(-1));
        assert_eq!(signed_incr(0, 1, 1, Sat), Some(0));
        assert_eq!(signed_incr(-1, -1, 1, Sat), Some(-1));
        assert_eq!(signed_set(200, 8, Wrap), Some(-56));
        assert_eq!(signed_set(-129, 8, Sat), Some(-128));
        assert_eq!(signed_set(-200, 8, Sat), Some(-128));
        assert_eq!(signed_set(i64::MIN, 64, Sat), Some(i64::MIN));
        // Redis's wrapped direction check (verified against redis-server).
        assert_eq!(signed_set(i64::MIN, 8, Sat), Some(127));
        assert_eq!(signed_set(i64::MIN + 127, 8, Sat), Some(127));
        assert_eq!(signed_set(i64::MIN + 128, 8, Sat), Some(-128));
        assert_eq!(signed_set(i64::MIN, 1, Sat), Some(0));
        assert_eq!(signed_set(i64::MIN + 1, 8, Wrap), Some(1));
    }

    #[test]
    fn fields_are_big_endian_from_the_msb() {
        // Redis's example: u5 = 23 at offset 7 in a zeroed bitmap → 00000001 01110000.
        let mut b = [0u8; 2];
        set_bits(&mut b, 7, 5, 23);
        assert_eq!(b, [0b0000_0001, 0b0111_0000]);
        assert_eq!(get_unsigned(&b, 7, 5), 23);
        assert_eq!(get_signed(&b, 7, 5), 23 - 32);
        // Reads past the end are zero.
        assert_eq!(get_unsigned(&b, 12, 64), 0);
        assert_eq!(get_unsigned(&[0xff], 0, 64), 0xff << 56);
        assert_eq!(get_signed(&[0xff; 9], 3, 64), -1);
    }

    #[test]
    fn bit_offsets() {
        let max = 512 << 20;
        assert_eq!(bit_offset(b"0", None, max), Ok(0));
        assert_eq!(bit_offset(b"4294967295", None, max), Ok(4294967295));
        assert_eq!(bit_offset(b"4294967296", None, max), Err(CmdError::BitOffset));
        assert_eq!(bit_offset(b"-1", None, max), Err(CmdError::BitOffset));
        assert_eq!(bit_offset(b"#1", None, max), Err(CmdError::BitOffset));
        assert_eq!(bit_offset(b"#3", Some(8), max), Ok(24));
        assert_eq!(bit_offset(b"#", Some(8), max), Err(CmdError::BitOffset));
        assert_eq!(bit_offset(b"#-1", Some(8), max), Err(CmdError::BitOffset));
        assert_eq!(bit_offset(b"#4611686018427387904", Some(2), max), Err(CmdError::BitOffset));
        assert_eq!(bit_offset(b"1", None, 1), Ok(1));
        assert_eq!(bit_offset(b"8", None, 1), Err(CmdError::BitOffset));
    }

    #[test]
    fn bitfield_types() {
        assert_eq!(bitfield_type(b"i64"), Ok((true, 64)));
        assert_eq!(bitfield_type(b"u63"), Ok((false, 63)));
        assert_eq!(bitfield_type(b"u1"), Ok((false, 1)));
        assert_eq!(bitfield_type(b"i8\0zz"), Ok((true, 8)));
        for bad in [&b"u64"[..], b"i65", b"i0", b"u", b"", b"I8", b"x8", b"i08", b"i-1", b"i 8"] {
            assert_eq!(bitfield_type(bad), Err(CmdError::BitfieldType), "{bad:?}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(args::normalize_range(0, -1, 5), Some((0, 4)));
        assert_eq!(args::normalize_range(-100, 100, 5), Some((0, 4)));
        assert_eq!(args::normalize_range(3, 1, 5), None);
        assert_eq!(args::normalize_range(0, -1, 0), None);
        assert_eq!(args::normalize_range(i64::MIN, i64::MAX, 5), Some((0, 4)));
        assert_eq!(args::normalize_range(-1, -1, 5), Some((4, 4)));
    }

    proptest! {
        #[test]
        fn get_matches_reference(buf in proptest::collection::vec(any::<u8>(), 0..24),
                                 offset in 0u64..200, bits in 1u32..=64) {
            prop_assert_eq!(get_unsigned(&buf, offset, bits), ref_get_unsigned(&buf, offset, bits));
            let s = get_signed(&buf, offset, bits);
            prop_assert_eq!(s as u64 & low_mask(bits), ref_get_unsigned(&buf, offset, bits));
            prop_assert!(bits == 64 || (s >= -(1i64 << (bits - 1)) && s < (1i64 << (bits - 1))));
        }

        #[test]
        fn set_matches_reference(mut buf in proptest::collection::vec(any::<u8>(), 17..24),
                                 offset in 0u64..72, bits in 1u32..=64, value in any::<u64>()) {
            let mut expect = buf.clone();
            ref_set(&mut expect, offset, bits, value);
            set_bits(&mut buf, offset, bits, value);
            prop_assert_eq!(&buf, &expect);
            prop_assert_eq!(get_unsigned(&buf, offset, bits), value & low_mask(bits));
        }

        #[test]
        fn unsigned_matches_redis(bits in 1u32..=63, old in any::<u64>(), incr in edgy_i64(),
                                  ow in overflow_mode()) {
            let old = old & low_mask(bits);
            prop_assert_eq!(unsigned_incr(old, incr, bits, ow), ref_unsigned(old, incr, bits, ow));
            prop_assert_eq!(unsigned_set(incr, bits, ow), ref_unsigned(incr as u64, 0, bits, ow));
        }

        #[test]
        fn signed_matches_redis(bits in 1u32..=64, old in edgy_i64(), incr in edgy_i64(),
                                ow in overflow_mode()) {
            let old = sign_extend(old as u64, bits);
            prop_assert_eq!(signed_incr(old, incr, bits, ow), ref_signed(old, incr, bits, ow));
            // SET: the value itself is checked (any i64, not yet fitted to the width).
            prop_assert_eq!(signed_set(incr, bits, ow), ref_signed(incr, 0, bits, ow));
        }

        #[test]
        fn count_and_find_match_reference(buf in proptest::collection::vec(
                                              prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 1..80),
                                          a in any::<u64>(), b in any::<u64>()) {
            let nbits = buf.len() as u64 * 8;
            let (lo, hi) = { let (x, y) = (a % nbits, b % nbits); (x.min(y), x.max(y)) };
            let count = (lo..=hi).filter(|&i| ref_bit(&buf, i)).count() as u64;
            prop_assert_eq!(count_range(&buf, lo, hi), count);
            prop_assert_eq!(popcount(&buf), (0..nbits).filter(|&i| ref_bit(&buf, i)).count() as u64);
            for bit in [false, true] {
                let expect = (lo..=hi).find(|&i| ref_bit(&buf, i) == bit);
                prop_assert_eq!(find_bit(&buf, lo, hi, bit), expect);
            }
        }
    }

    // --- commands, in process ---------------------------------------------------------------

    fn int(v: i64) -> Frame {
        Frame::Integer(v)
    }

    fn err(h: &mut Harness, args: &[&str]) -> String {
        match h.run(args) {
            Frame::Error(e) => String::from_utf8(e).unwrap(),
            f => panic!("{args:?}: expected an error, got {f:?}"),
        }
    }

    fn logged(h: &Harness) -> Vec<String> {
        h.effects
            .list
            .iter()
            .map(|e| e.argv.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn setbit_and_getbit() {
        let mut h = Harness::new(1_000);
        assert_eq!(h.run(&["SETBIT", "k", "7", "1"]), int(0));
        assert_eq!(h.run(&["GET", "k"]), Frame::Bulk(vec![1]));
        assert_eq!(h.run(&["SETBIT", "k", "7", "1"]), int(1));
        assert_eq!(h.run(&["GETBIT", "k", "7"]), int(1));
        assert_eq!(h.run(&["GETBIT", "k", "8"]), int(0));
        assert_eq!(h.run(&["GETBIT", "nokey", "8"]), int(0));
        // Unchanged bit on an unchanged length: nothing logged.
        assert_eq!(logged(&h), ["SETBIT k 7 1"]);
        assert_eq!(err(&mut h, &["SETBIT", "k", "-1", "1"]), "ERR bit offset is not an integer or out of range");
        assert_eq!(
            err(&mut h, &["SETBIT", "k", "4294967296", "1"]),
            "ERR bit offset is not an integer or out of range"
        );
        assert_eq!(err(&mut h, &["GETBIT", "k", "4294967296"]), "ERR bit offset is not an integer or out of range");
        assert_eq!(err(&mut h, &["SETBIT", "k", "1", "2"]), "ERR bit is not an integer or out of range");
        assert_eq!(err(&mut h, &["SETBIT", "k", "1", "x"]), "ERR bit is not an integer or out of range");
        // Integer-encoded strings are read as their digits.
        h.run(&["SET", "n", "1"]);
        assert_eq!(h.run(&["GETBIT", "n", "2"]), int(1));
        assert_eq!(h.run(&["SETBIT", "n", "7", "0"]), int(1));
        assert_eq!(h.run(&["GET", "n"]), Frame::Bulk(b"0".to_vec()));
        // Growing with a zero bit still changes the string.
        assert_eq!(h.run(&["SETBIT", "n", "23", "0"]), int(0));
        assert_eq!(h.run(&["STRLEN", "n"]), int(3));
        assert_eq!(logged(&h), ["SETBIT k 7 1", "SET n 1", "SETBIT n 7 0", "SETBIT n 23 0"]);
    }

    #[test]
    fn bitop_folds_and_deletes() {
        let mut h = Harness::new(1_000);
        h.run(&["SET", "a", "abc"]);
        h.run(&["SET", "b", "\x0f"]);
        assert_eq!(h.run(&["BITOP", "AND", "d", "a", "b"]), int(3));
        assert_eq!(h.run(&["GET", "d"]), Frame::Bulk(vec![b'a' & 0x0f, 0, 0]));
        assert_eq!(h.run(&["BITOP", "OR", "d", "b", "a"]), int(3));
        assert_eq!(h.run(&["GET", "d"]), Frame::Bulk(vec![b'a' | 0x0f, b'b', b'c']));
        assert_eq!(h.run(&["BITOP", "XOR", "d", "a", "a", "b"]), int(3));
        assert_eq!(h.run(&["GET", "d"]), Frame::Bulk(vec![0x0f, 0, 0]));
        assert_eq!(h.run(&["BITOP", "AND", "d", "a", "missing"]), int(3));
        assert_eq!(h.run(&["GET", "d"]), Frame::Bulk(vec![0, 0, 0]));
        assert_eq!(h.run(&["BITOP", "NOT", "d", "b"]), int(1));
        assert_eq!(h.run(&["GET", "d"]), Frame::Bulk(vec![0xf0]));
        h.effects.list.clear();
        assert_eq!(h.run(&["BITOP", "OR", "d", "x", "y"]), int(0));
        assert_eq!(h.run(&["GET", "d"]), Frame::Null);
        assert_eq!(logged(&h), ["DEL d"]);
        assert_eq!(h.run(&["BITOP", "OR", "d", "x", "y"]), int(0));
        assert_eq!(logged(&h), ["DEL d"]);
        assert_eq!(
            err(&mut h, &["BITOP", "NOT", "d", "a", "b"]),
            "ERR BITOP NOT must be called with a single source key."
        );
        assert_eq!(err(&mut h, &["BITOP", "NAND", "d", "a"]), "ERR syntax error");
    }

    #[test]
    fn bitfield_ops_and_logging() {
        let mut h = Harness::new(1_000);
        let arr = |v: Vec<Frame>| Frame::Array(v);
        assert_eq!(
            h.run(&["BITFIELD", "k", "SET", "u8", "#1", "255", "INCRBY", "u8", "8", "1", "GET", "u8", "8"]),
            arr(vec![int(0), int(0), int(0)])
        );
        assert_eq!(
            h.run(&[
                "BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "8", "-1", "OVERFLOW", "SAT", "INCRBY", "i4", "0",
                "100"
            ]),
            arr(vec![Frame::Null, int(7)])
        );
        assert_eq!(h.run(&["BITFIELD", "k", "GET", "i64", "0", "GET", "u63", "1"]), {
            let b = [0x70u8, 0x00];
            arr(vec![int(get_signed(&b, 0, 64)), int(get_unsigned(&b, 1, 63) as i64)])
        });
        let n = h.effects.list.len();
        // Only GETs, or writes that all fail on a long enough string: nothing logged.
        h.run(&["BITFIELD", "k", "GET", "u8", "0"]);
        h.run(&["BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u2", "0", "5"]);
        h.run(&["BITFIELD", "k", "SET", "u8", "8", "0"]);
        assert_eq!(h.effects.list.len(), n);
        assert_eq!(h.run(&["BITFIELD_RO", "k", "GET", "u4", "0"]), arr(vec![int(7)]));
        assert_eq!(h.run(&["BITFIELD", "k"]), arr(vec![]));
        assert_eq!(
            err(&mut h, &["BITFIELD_RO", "k", "SET", "u4", "0", "1"]),
            "ERR BITFIELD_RO only supports the GET subcommand"
        );
        assert_eq!(err(&mut h, &["BITFIELD", "k", "GET", "u64", "0"]), CmdError::BitfieldType.to_string());
        assert_eq!(err(&mut h, &["BITFIELD", "k", "OVERFLOW", "X"]), "ERR Invalid OVERFLOW type specified");
        assert_eq!(err(&mut h, &["BITFIELD", "k", "GET", "u8"]), "ERR syntax error");
        assert_eq!(
            err(&mut h, &["BITFIELD", "k", "SET", "u8", "0", "x"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn bitcount_and_bitpos() {
        let mut h = Harness::new(1_000);
        h.run_bytes(&[b"SET", b"k", b"\x00\xff\xf0"]);
        assert_eq!(h.run(&["BITCOUNT", "k"]), int(12));
        assert_eq!(h.run(&["BITCOUNT", "k", "1", "1"]), int(8));
        assert_eq!(h.run(&["BITCOUNT", "k", "5", "-3", "BIT"]), int(12));
        assert_eq!(h.run(&["BITCOUNT", "k", "-1", "-2", "nonsense"]), int(0));
        assert_eq!(h.run(&["BITCOUNT", "nokey", "0"]), int(0));
        assert_eq!(err(&mut h, &["BITCOUNT", "k", "0"]), "ERR syntax error");
        assert_eq!(err(&mut h, &["BITCOUNT", "k", "0", "1", "bits"]), "ERR syntax error");
        assert_eq!(h.run(&["BITPOS", "k", "1"]), int(8));
        assert_eq!(h.run(&["BITPOS", "k", "0", "1"]), int(20));
        assert_eq!(h.run(&["BITPOS", "k", "0", "1", "1"]), int(-1));
        assert_eq!(h.run(&["BITPOS", "k", "1", "17", "-1", "BIT"]), int(17));
        assert_eq!(h.run(&["BITPOS", "nokey", "0", "5", "x"]), int(0));
        assert_eq!(err(&mut h, &["BITPOS", "k", "2"]), "ERR The bit argument must be 1 or 0.");
        h.run_bytes(&[b"SET", b"ones", b"\xff\xff"]);
        assert_eq!(h.run(&["BITPOS", "ones", "0"]), int(16));
        assert_eq!(h.run(&["BITPOS", "ones", "0", "0", "-1"]), int(-1));
    }
}
