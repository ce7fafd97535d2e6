//! Small typed readers for command arguments, each mapping bad input to Redis's error.

use crate::errors::CmdError;
use engine::num;

/// Parses a signed 64-bit integer (`ERR value is not an integer or out of range`).
#[inline]
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    num::parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses a double (`ERR value is not a valid float`).
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    num::parse_f64(arg).ok_or(CmdError::NotFloat)
}

/// True if `arg` equals `word`, ignoring ASCII case.
#[inline]
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Upper-cased copy of an argument, for matching option words.
pub fn upper(arg: &[u8]) -> Vec<u8> {
    arg.to_ascii_uppercase()
}

/// Owned copy of every argument (for rewritten effects).
pub fn owned(argv: &[&[u8]]) -> Vec<Vec<u8>> {
    argv.iter().map(|a| a.to_vec()).collect()
}

/// Decimal bytes of an integer.
pub fn int_bytes(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Redis's range normalisation (`GETRANGE`, `BITCOUNT`, `BITPOS`, later `LRANGE`-likes): negative indexes count from the
/// end of a `len`-unit string, then both ends are clamped into it. `None` for an empty range.
pub fn normalize_range(mut start: i64, mut end: i64, len: i64) -> Option<(u64, u64)> {
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    (start <= end).then_some((start as u64, end as u64))
}
