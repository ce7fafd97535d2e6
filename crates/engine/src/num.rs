//! Number parsing and formatting with Redis's exact acceptance rules and output forms.
//!
//! Which strings count as integers or floats is visible to clients (`INCR` on `"01"` fails,
//! `INCRBYFLOAT` on `"0x10"` works), so each function here mirrors one Redis helper:
//! [`parse_i64`] is `string2ll`, [`parse_f64`] is `string2d`, [`incr_by_float`] is the
//! `long double` arithmetic of `INCRBYFLOAT`/`HINCRBYFLOAT` with `ld2string(LD_STR_HUMAN)`.
//! The float paths that need the C library (`strtod`, `strtold`, `long double`) call into the
//! tiny C file `csrc/ldouble.c`; the integer paths and common decimal floats stay in Rust and
//! never allocate.

use std::fmt;
use std::os::raw::{c_char, c_int};

/// Longest input (exclusive) Redis accepts as a long double, and the size of the buffer it
/// formats long doubles into (`MAX_LONG_DOUBLE_CHARS`).
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Longest string (exclusive) `string2ll` will even look at (`LONG_STR_SIZE`): 20 digits plus
/// a sign is the most a 64-bit integer needs.
const LONG_STR_SIZE: usize = 21;

unsafe extern "C" {
    fn tandem_strtod(s: *const c_char, len: usize, out: *mut f64) -> c_int;
    fn tandem_strtod_bound(s: *const c_char, len: usize, reject_erange: c_int, out: *mut f64) -> c_int;
    fn tandem_ld_valid(s: *const c_char, len: usize) -> c_int;
    fn tandem_timeout_ms(s: *const c_char, len: usize, out: *mut i64) -> c_int;
    fn tandem_ld_add(
        a: *const c_char,
        alen: usize,
        b: *const c_char,
        blen: usize,
        out: *mut c_char,
        outcap: usize,
        outlen: *mut usize,
    ) -> c_int;
}

/// Parses a canonical base-10 `i64` exactly as Redis's `string2ll`: an optional `-`, then
/// either `0` alone or a non-zero digit followed by digits; no `+`, no spaces, no leading
/// zeros, no `-0`, nothing longer than 20 bytes, and nothing that overflows.
///
/// Because only canonical forms pass, a parsed value always formats back to the same bytes,
/// which is what lets Redis store such strings as integers.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() >= LONG_STR_SIZE {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        // The magnitude of i64::MIN is one more than i64::MAX.
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Two-digit lookup table: formatting two digits per division halves the divisions.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends the decimal form of `v` to `out` (Redis's `ll2string`), without allocating beyond
/// growing `out`.
pub fn format_i64(v: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let start = format_i64_into(v, &mut buf);
    out.extend_from_slice(&buf[start..]);
}

/// Writes the decimal form of `v` at the end of `buf` and returns where it starts (20 bytes
/// hold any i64, sign included).
pub fn format_i64_into(v: i64, buf: &mut [u8; 20]) -> usize {
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    i
}

/// Reports whether `b` is a plain decimal `-?[0-9]+(\.[0-9]+)?` short enough that Rust's
/// correctly rounded parser must agree with glibc's (also correctly rounded) `strtod`, and
/// that cannot overflow or underflow, so the C call can be skipped.
fn is_simple_decimal(b: &[u8]) -> bool {
    if b.is_empty() || b.len() > 64 {
        return false;
    }
    let body = b.strip_prefix(b"-").unwrap_or(b);
    let (int_part, frac_part) = match body.iter().position(|&c| c == b'.') {
        Some(dot) => (&body[..dot], Some(&body[dot + 1..])),
        None => (body, None),
    };
    !int_part.is_empty()
        && int_part.iter().all(u8::is_ascii_digit)
        && frac_part.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// Formats a double as C's `printf("%.17g")` (what Redis 7.0 prints scores with, and mixes
/// into `DEBUG DIGEST`).
pub fn format_g17(d: f64) -> Vec<u8> {
    let mut tmp = [0u8; 32];
    // SAFETY: the buffer is valid for its length, the format is NUL-terminated and takes one
    // double; "%.17g" needs at most 25 bytes, so it never truncates.
    let n = unsafe { libc::snprintf(tmp.as_mut_ptr().cast::<c_char>(), tmp.len(), c"%.17g".as_ptr(), d) };
    tmp[..usize::try_from(n).unwrap_or(0).min(tmp.len() - 1)].to_vec()
}

/// Parses a float exactly as Redis's `string2d` (used by `getDoubleFromObject`, scores,
/// `INCRBYFLOAT`-style arguments parsed as doubles): the C library's `strtod` must consume the
/// whole input; leading whitespace, NaN, overflow to infinity and underflow to zero are
/// rejected, while `inf`, `-inf`, `+1`, `.5`, `1e3` and hex floats such as `0x1p3` are
/// accepted.
pub fn parse_f64(b: &[u8]) -> Option<f64> {
    if is_simple_decimal(b) {
        // The grammar check guarantees ASCII, so this cannot fail.
        return std::str::from_utf8(b).ok()?.parse().ok();
    }
    if b.is_empty() {
        return None;
    }
    let mut out = 0.0f64;
    // SAFETY: the pointer and length describe the live slice `b`; the C side only reads
    // `len` bytes from it and writes one f64 through `out`, which points to a local.
    let ok = unsafe { tandem_strtod(b.as_ptr().cast(), b.len(), &mut out) };
    (ok != 0).then_some(out)
}

/// Parses a score bound of `ZRANGEBYSCORE` and friends (after any `(`) as Redis's
/// `zslParseRange` does: C `strtod` up to the first NUL byte must consume it all, and NaN is
/// refused; unlike [`parse_f64`], leading whitespace, the empty string (0) and overflow to
/// infinity are accepted.
pub fn parse_score_bound(b: &[u8]) -> Option<f64> {
    if is_simple_decimal(b) {
        return std::str::from_utf8(b).ok()?.parse().ok();
    }
    let mut out = 0.0f64;
    // SAFETY: the pointer and length describe the live slice `b`; the C side reads `len`
    // bytes and writes one f64 through `out`, which points to a local.
    let ok = unsafe { tandem_strtod_bound(b.as_ptr().cast(), b.len(), 0, &mut out) };
    (ok != 0).then_some(out)
}

/// Parses an element or `BY` value as `SORT` does: like [`parse_score_bound`], but a value out
/// of range (overflow or underflow, `errno == ERANGE`) is refused.
pub fn parse_sort_score(b: &[u8]) -> Option<f64> {
    if is_simple_decimal(b) {
        return std::str::from_utf8(b).ok()?.parse().ok();
    }
    let mut out = 0.0f64;
    // SAFETY: as in `parse_score_bound`.
    let ok = unsafe { tandem_strtod_bound(b.as_ptr().cast(), b.len(), 1, &mut out) };
    (ok != 0).then_some(out)
}

/// Reports whether Redis would accept `b` as a `long double` (`string2ld`): like
/// [`parse_f64`] but in extended precision and refusing inputs of
/// [`MAX_LONG_DOUBLE_CHARS`] bytes or more.
///
/// `HINCRBYFLOAT` validates its increment before looking at the field, so it needs this to
/// report the right error first.
pub fn parse_long_double_ok(b: &[u8]) -> bool {
    if b.is_empty() || b.len() >= MAX_LONG_DOUBLE_CHARS {
        return false;
    }
    // SAFETY: the pointer and length describe the live slice `b`, which the C side only reads.
    unsafe { tandem_ld_valid(b.as_ptr().cast(), b.len()) != 0 }
}

/// Why a blocking command's timeout was refused (Redis's texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutError {
    /// `timeout is not a float or out of range`
    NotFloat,
    /// `timeout is negative`
    Negative,
    /// `timeout is out of range`
    OutOfRange,
}

/// A blocking command's timeout in seconds (`BLPOP ... 0.5`) as an absolute Unix time in
/// milliseconds from `now_ms`, or 0 for "forever", as Redis 7.2's `getTimeoutFromObjectOrReply`
/// computes it: the seconds are read as a long double and rounded *up* to whole milliseconds
/// (so `0.0001` waits one millisecond, and `-0.0001` rounds to 0, forever).
pub fn timeout_deadline_ms(b: &[u8], now_ms: i64) -> Result<i64, TimeoutError> {
    if b.is_empty() || b.len() >= MAX_LONG_DOUBLE_CHARS {
        return Err(TimeoutError::NotFloat);
    }
    let mut ms = 0i64;
    // SAFETY: the pointer and length describe the live slice `b`, which the C side only reads;
    // it writes one i64 through `ms`, a local.
    let verdict = unsafe { tandem_timeout_ms(b.as_ptr().cast(), b.len(), &mut ms) };
    match verdict {
        0 => Err(TimeoutError::NotFloat),
        2 => Err(TimeoutError::OutOfRange),
        _ if ms < 0 => Err(TimeoutError::Negative),
        _ if ms == 0 => Ok(0),
        _ => ms.checked_add(now_ms).ok_or(TimeoutError::OutOfRange),
    }
}

/// Why [`incr_by_float`] refused to produce a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatError {
    /// The current value or the increment is not a valid float
    /// (`ERR value is not a valid float`).
    NotFloat,
    /// The sum is NaN or infinite (`ERR increment would produce NaN or Infinity`).
    NanOrInf,
}

impl fmt::Display for FloatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FloatError::NotFloat => "value is not a valid float",
            FloatError::NanOrInf => "increment would produce NaN or Infinity",
        })
    }
}

impl std::error::Error for FloatError {}

/// Adds `incr` to `current` in C `long double` precision and returns the new value formatted
/// the way `INCRBYFLOAT`/`HINCRBYFLOAT` store it: `%.17Lf` with trailing zeros and a trailing
/// point removed, and `-0` written as `0` (so `10.5` + `0.1` is `10.6`, `5.0e3` + `2.0e2` is
/// `5200`).
///
/// A missing key or field counts as `b"0"`. Both operands must pass
/// [`parse_long_double_ok`]; finite results are always formattable because the longest one
/// (about 4950 bytes for values near the long double maximum) fits Redis's buffer.
pub fn incr_by_float(current: &[u8], incr: &[u8]) -> Result<Vec<u8>, FloatError> {
    if current.is_empty()
        || incr.is_empty()
        || current.len() >= MAX_LONG_DOUBLE_CHARS
        || incr.len() >= MAX_LONG_DOUBLE_CHARS
    {
        return Err(FloatError::NotFloat);
    }
    let mut buf = [0u8; MAX_LONG_DOUBLE_CHARS];
    let mut len = 0usize;
    // SAFETY: both inputs are live slices read only within their lengths; `buf` is a local
    // array of `buf.len()` bytes that the C side writes at most `outcap` bytes into, and
    // `len` is a local it writes once.
    let rc = unsafe {
        tandem_ld_add(
            current.as_ptr().cast(),
            current.len(),
            incr.as_ptr().cast(),
            incr.len(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut len,
        )
    };
    match rc {
        0 => Ok(buf[..len].to_vec()),
        2 => Err(FloatError::NanOrInf),
        // Code 3 (no room) cannot happen for finite long doubles; treat it like Redis, whose
        // caller would otherwise store an empty string, by refusing instead.
        3 => Err(FloatError::NanOrInf),
        _ => Err(FloatError::NotFloat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timeouts_round_up_to_milliseconds_as_redis_7_2() {
        use TimeoutError::*;
        let now = 1_700_000_000_000;
        let cases: &[(&str, Result<i64, TimeoutError>)] = &[
            ("0", Ok(0)),
            ("-0", Ok(0)),
            ("-0.0001", Ok(0)),
            ("0.0001", Ok(now + 1)),
            ("0.001", Ok(now + 1)),
            ("0.0011", Ok(now + 2)),
            ("1.5", Ok(now + 1500)),
            ("0x10", Ok(now + 16_000)),
            ("1e3", Ok(now + 1_000_000)),
            ("-1", Err(Negative)),
            ("-0.5", Err(Negative)),
            ("-inf", Err(Negative)),
            ("inf", Err(OutOfRange)),
            ("1e16", Err(OutOfRange)),
            ("9223372036854775", Err(OutOfRange)),
            ("x", Err(NotFloat)),
            ("", Err(NotFloat)),
            (" 1", Err(NotFloat)),
            ("1 ", Err(NotFloat)),
            ("nan", Err(NotFloat)),
            ("1.5.5", Err(NotFloat)),
        ];
        for (input, want) in cases {
            assert_eq!(timeout_deadline_ms(input.as_bytes(), now), *want, "{input}");
        }
    }

    #[test]
    fn parse_i64_table() {
        let ok: &[(&[u8], i64)] = &[
            (b"0", 0),
            (b"1", 1),
            (b"-1", -1),
            (b"99", 99),
            (b"-99", -99),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
        ];
        for &(s, v) in ok {
            assert_eq!(parse_i64(s), Some(v), "{:?}", s);
        }
        let bad: &[&[u8]] = &[
            b"",
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"00",
            b"1a",
            b"1.0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"99999999999999999999",
            b"-00000000000000000001",
            b"\xff",
        ];
        for s in bad {
            assert_eq!(parse_i64(s), None, "{:?}", s);
        }
    }

    #[test]
    fn format_i64_table() {
        for v in [0, 1, -1, 9, 10, 99, 100, -100, 12345, i64::MAX, i64::MIN] {
            let mut out = b"x".to_vec();
            format_i64(v, &mut out);
            assert_eq!(out, format!("x{v}").into_bytes());
        }
    }

    /// The accept/reject split matches redis-server 7.0.15 (`ZADD z <score> m`, which parses
    /// scores with `getDoubleFromObject`).
    #[test]
    fn parse_f64_table() {
        let ok: &[(&[u8], f64)] = &[
            (b"0", 0.0),
            (b"1.5", 1.5),
            (b"-2.25", -2.25),
            (b"1e3", 1000.0),
            (b"+1", 1.0),
            (b".5", 0.5),
            (b"1.", 1.0),
            (b"0x10", 16.0),
            (b"0x1p3", 8.0),
            (b"inf", f64::INFINITY),
            (b"-inf", f64::NEG_INFINITY),
            (b"+inf", f64::INFINITY),
            (b"Infinity", f64::INFINITY),
            (b"1e-310", 1e-310), // Subnormal: ERANGE but not zero, so accepted.
            (b"0e-400", 0.0),
            (b"1.7976931348623157e308", f64::MAX),
        ];
        for &(s, v) in ok {
            assert_eq!(parse_f64(s), Some(v), "{:?}", String::from_utf8_lossy(s));
        }
        assert!(parse_f64(b"-0").unwrap().is_sign_negative());
        let bad: &[&[u8]] = &[
            b"", b" 1", b"1 ", b"\t1", b"abc", b"1e", b"nan", b"NaN", b"-nan", b"1e400", b"-1e400", b"1e-400",
            b"1\x002", b"--1", b"1..2",
        ];
        for s in bad {
            assert_eq!(parse_f64(s), None, "{:?}", String::from_utf8_lossy(s));
        }
        let long = format!("{}.5", "1".repeat(300));
        assert_eq!(parse_f64(long.as_bytes()), Some(long.parse::<f64>().unwrap()));
    }

    /// Every expectation here was produced by redis-server 7.0.15 (`SET k a` then
    /// `INCRBYFLOAT k b`; `None` means the key did not exist, i.e. "0").
    #[test]
    fn incr_by_float_matches_redis() {
        let ok: &[(&str, &str, &str)] = &[
            ("10.5", "0.1", "10.6"),
            ("5.0e3", "2.0e2", "5200"),
            ("3", "-3", "0"),
            ("0", "1.5", "1.5"),
            ("-0", "-0", "0"),
            ("0", "-0", "0"),
            ("1e-20", "-2e-20", "0"),
            ("1.1", "2.2", "3.3"),
            ("0.1", "0.2", "0.3"),
            ("1e-4950", "0", "0"),
            ("0x10", "1", "17"),
            ("1", "+1", "2"),
            ("+1", ".5", "1.5"),
            ("1.", "1", "2"),
            ("9999999999999999999999", "1", "10000000000000000000000"),
            ("0.00000000000000000001", "0", "0"),
            ("1e-17", "0", "0.00000000000000001"),
            ("3.0000000000000000001", "0", "3"),
            ("-1.5", "1.5", "0"),
            ("7", "-8.5", "-1.5"),
            ("12345678901234567890.5", "0", "12345678901234567890"),
            ("5", "1e-310", "5"),
        ];
        for &(a, b, want) in ok {
            assert_eq!(incr_by_float(a.as_bytes(), b.as_bytes()).as_deref(), Ok(want.as_bytes()), "{a} + {b}");
        }

        // 1e308 + 1e308 does not overflow a long double: Redis stores all 309 digits.
        let big = incr_by_float(b"1e308", b"1e308").unwrap();
        assert_eq!(big.len(), 309);
        assert!(big.starts_with(b"199999999999999999993371759311"));
        assert!(big.ends_with(b"849020905456510092687857156096"));
        let huge = incr_by_float(b"1.18e4932", b"0").unwrap();
        assert_eq!(huge.len(), 4933);
        assert!(huge.starts_with(b"118000000000000000000065281291"));
        assert!(huge.ends_with(b"222606896512585853888628785152"));

        let nan_or_inf: &[(&str, &str)] = &[("1e4932", "1e4932"), ("inf", "1"), ("1", "-inf")];
        for &(a, b) in nan_or_inf {
            assert_eq!(incr_by_float(a.as_bytes(), b.as_bytes()), Err(FloatError::NanOrInf), "{a} + {b}");
        }

        let not_float: &[(&[u8], &[u8])] = &[
            (b"abc", b"1"),
            (b" 1", b"1"),
            (b"1", b" 1"),
            (b"1 ", b"1"),
            (b"1e-5000", b"0"),
            (b"nan", b"1"),
            (b"1e", b"1"),
            (b"", b"1"),
            (b"1\x002", b"1"),
        ];
        for &(a, b) in not_float {
            assert_eq!(incr_by_float(a, b), Err(FloatError::NotFloat), "{a:?} + {b:?}");
        }
    }

    /// Redis refuses long double inputs of 5120 bytes or more before parsing them.
    #[test]
    fn long_double_length_limit() {
        let just_fits = "0".repeat(MAX_LONG_DOUBLE_CHARS - 1);
        let too_long = "0".repeat(MAX_LONG_DOUBLE_CHARS);
        assert!(parse_long_double_ok(just_fits.as_bytes()));
        assert!(!parse_long_double_ok(too_long.as_bytes()));
        assert_eq!(incr_by_float(just_fits.as_bytes(), b"1").as_deref(), Ok(&b"1"[..]));
        assert_eq!(incr_by_float(too_long.as_bytes(), b"1"), Err(FloatError::NotFloat));
        // A 5119-digit number overflows the long double range instead.
        assert_eq!(incr_by_float("1".repeat(MAX_LONG_DOUBLE_CHARS - 1).as_bytes(), b"0"), Err(FloatError::NotFloat));
    }

    proptest! {
        #[test]
        fn i64_round_trips(v in any::<i64>()) {
            let mut out = Vec::new();
            format_i64(v, &mut out);
            prop_assert_eq!(parse_i64(&out), Some(v));
        }

        #[test]
        fn parse_i64_agrees_with_canonical_form(s in "-?[0-9]{0,21}") {
            let parsed = parse_i64(s.as_bytes());
            let canonical = s.parse::<i64>().ok().filter(|v| v.to_string() == s);
            prop_assert_eq!(parsed, canonical);
        }

        #[test]
        fn simple_decimals_agree_with_strtod(s in "-?[0-9]{1,20}(\\.[0-9]{1,20})?") {
            let fast = parse_f64(s.as_bytes());
            let mut slow = 0.0f64;
            // SAFETY: reads the live string within its length and writes one local f64.
            let ok = unsafe { tandem_strtod(s.as_ptr().cast(), s.len(), &mut slow) };
            prop_assert_eq!(ok, 1);
            prop_assert_eq!(fast.map(f64::to_bits), Some(slow.to_bits()));
        }

        #[test]
        fn parse_f64_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_f64(&b);
            let _ = parse_long_double_ok(&b);
        }
    }
}
