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

/// The flags of the keys a key spec found, for these actual arguments. Specs marked
/// `VARIABLE_FLAGS` depend on the arguments (Redis's `setGetKeys`, `bitfieldGetKeys`).
pub fn key_flags(spec: &CommandSpec, spec_index: usize, argv: &[&[u8]]) -> Vec<String> {
    let ks = &spec.key_specs[spec_index];
    let owned = |f: &[&str]| f.iter().map(|s| s.to_string()).collect();
    if !ks.flags.iter().any(|f| f == "VARIABLE_FLAGS") {
        return ks.flags.clone();
    }
    match spec.name.as_str() {
        "set" => {
            if argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"GET")) {
                owned(&["RW", "ACCESS", "UPDATE"])
            } else {
                owned(&["OW", "UPDATE"])
            }
        }
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < argv.len() {
                let rem = argv.len() - i - 1;
                let a = argv[i];
                if a.eq_ignore_ascii_case(b"GET") && rem >= 2 {
                    i += 3;
                } else if (a.eq_ignore_ascii_case(b"SET") || a.eq_ignore_ascii_case(b"INCRBY")) && rem >= 3 {
                    readonly = false;
                    break;
                } else if a.eq_ignore_ascii_case(b"OVERFLOW") && rem >= 1 {
                    i += 2;
                } else {
                    // A syntax error: safer to assume a write.
                    readonly = false;
                    break;
                }
            }
            if readonly {
                owned(&["RO", "ACCESS"])
            } else {
                owned(&["RW", "ACCESS", "UPDATE"])
            }
        }
        _ => ks.flags.iter().filter(|f| *f != "VARIABLE_FLAGS").cloned().collect(),
    }
}
