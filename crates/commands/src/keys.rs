//! Key extraction from key specs: one generic walker over (index | keyword) × (range | keynum),
//! used for shard locking, `COMMAND GETKEYS` and, later, cluster routing.

use crate::spec::{BeginSearch, CommandSpec, FindKeys};
use smallvec::SmallVec;

/// Argument positions of keys.
pub type KeyPositions = SmallVec<[usize; 4]>;

/// Why keys could not be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeysError {
    /// A key spec is `unknown`: only the command itself knows its keys.
    Unknown,
    /// The arguments do not fit the spec (e.g. a bad `numkeys`).
    Invalid,
}

/// Positions of every key named by `argv` according to the spec's key specs (with the
/// spec's flags, for `GETKEYSANDFLAGS`).
pub fn key_positions(spec: &CommandSpec, argv: &[&[u8]]) -> Result<SmallVec<[(usize, usize); 4]>, KeysError> {
    let argc = argv.len();
    let mut out: SmallVec<[(usize, usize); 4]> = SmallVec::new();
    for (si, ks) in spec.key_specs.iter().enumerate() {
        let start = match &ks.begin {
            BeginSearch::Index(pos) => *pos,
            BeginSearch::Keyword { keyword, startfrom } => {
                let found = if *startfrom >= 0 {
                    (*startfrom as usize..argc).find(|&i| argv[i].eq_ignore_ascii_case(keyword.as_bytes()))
                } else {
                    let from = argc as i64 + startfrom;
                    if from < 1 {
                        None
                    } else {
                        (1..=from as usize).rev().find(|&i| argv[i].eq_ignore_ascii_case(keyword.as_bytes()))
                    }
                };
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            BeginSearch::Unknown => return Err(KeysError::Unknown),
        };
        if start >= argc {
            continue;
        }
        match &ks.find {
            FindKeys::Range { lastkey, step, limit } => {
                let step = (*step).max(1);
                let last = if *lastkey >= 0 {
                    start + *lastkey as usize
                } else if *lastkey == -1 && *limit > 1 {
                    start + ((argc - start) / limit).saturating_sub(1)
                } else {
                    let l = argc as i64 + lastkey;
                    if l < start as i64 {
                        continue;
                    }
                    l as usize
                };
                if last >= argc {
                    return Err(KeysError::Invalid);
                }
                let mut i = start;
                while i <= last {
                    out.push((i, si));
                    i += step;
                }
            }
            FindKeys::Keynum { keynumidx, firstkey, step } => {
                let idx = start + keynumidx;
                let n = argv.get(idx).and_then(|b| engine::num::parse_i64(b)).ok_or(KeysError::Invalid)?;
                if n < 0 {
                    return Err(KeysError::Invalid);
                }
                let first = start + firstkey;
                let step = (*step).max(1);
                let n = n as usize;
                if n > 0 && first + (n - 1) * step >= argc {
                    return Err(KeysError::Invalid);
                }
                for k in 0..n {
                    out.push((first + k * step, si));
                }
            }
            FindKeys::Unknown => return Err(KeysError::Unknown),
        }
    }
    Ok(out)
}
