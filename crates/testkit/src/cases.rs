//! The `.cases` file format of the differential tests, and reply comparison.
//!
//! ```text
//! # comment line (also: blank lines)
//! SET foo bar          a command (split like redis-cli); replies must be equal frames
//! ~TTL foo             integers/doubles may differ by 2, or by 1% of the larger value
//! ?OBJECT IDLETIME k   only the reply type is compared
//! *KEYS *              arrays, sets and maps compared as multisets (order-insensitive)
//! **COMMAND INFO X     like `*`, at every nesting level (for replies built from hash tables)
//! !DEBUG SLEEP 0       sent to both, reply read and ignored
//! -CLIENT REPLY OFF    sent to both, no reply is read (the command must not answer)
//! >SET foo bar         on the case's second connection (opened on first use, same
//!                      protocol), before any mode prefix: `>!GET foo`
//! ^                    nothing sent: one more frame is read (a published message, the
//!                      second reply of `SUBSCRIBE a b`) and compared exactly; `>^` on the
//!                      second connection
//! @resp3               directive: this case runs only under RESP3 (or @resp2)
//! ---                  ends a case
//! ```

use crate::split::split_line;
use protocol::Frame;

/// How the replies to one line are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Equal frames.
    Exact,
    /// `~`: numbers within tolerance (see [`numbers_close`]), everything else equal.
    Tolerant,
    /// `?`: same kind of frame only.
    TypeOnly,
    /// `*`: aggregates compared as multisets.
    Unordered,
    /// `**`: aggregates compared as multisets at every nesting level.
    DeepUnordered,
    /// `!`: reply read, not compared.
    Ignore,
    /// `-`: no reply expected, none read.
    NoReply,
    /// `^`: nothing sent, one frame read and compared exactly.
    Receive,
}

impl Mode {
    /// The prefix character that selects this mode (empty for [`Mode::Exact`]).
    pub fn prefix(self) -> &'static str {
        match self {
            Mode::Exact => "",
            Mode::Tolerant => "~",
            Mode::TypeOnly => "?",
            Mode::Unordered => "*",
            Mode::DeepUnordered => "**",
            Mode::Ignore => "!",
            Mode::NoReply => "-",
            Mode::Receive => "^",
        }
    }
}

/// One command line of a case.
#[derive(Clone, Debug)]
pub struct CaseLine {
    /// 1-based line number in the file.
    pub line_no: usize,
    /// The comparison mode.
    pub mode: Mode,
    /// Which of the case's connections runs it (0, or 1 for a `>` line).
    pub conn: usize,
    /// The command as written (without the mode prefix).
    pub text: String,
    /// The arguments.
    pub args: Vec<Vec<u8>>,
}

/// A case: commands run in order on fresh connections after `FLUSHALL`.
#[derive(Clone, Debug)]
pub struct Case {
    /// Line number of the first command.
    pub line_no: usize,
    /// The commands.
    pub lines: Vec<CaseLine>,
    /// `Some(2)` or `Some(3)` when restricted by `@resp2` / `@resp3`.
    pub only_resp: Option<u8>,
}

/// Parses a case file. Errors name the line.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut cur = Case { line_no: 0, lines: Vec::new(), only_resp: None };
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "---" {
            if !cur.lines.is_empty() {
                cases.push(std::mem::replace(&mut cur, Case { line_no: 0, lines: Vec::new(), only_resp: None }));
            } else {
                cur.only_resp = None;
            }
            continue;
        }
        if let Some(d) = line.strip_prefix('@') {
            cur.only_resp = match d.trim() {
                "resp2" => Some(2),
                "resp3" => Some(3),
                other => return Err(format!("line {line_no}: unknown directive @{other}")),
            };
            continue;
        }
        let (conn, line) = match line.strip_prefix('>') {
            Some(rest) if !rest.trim_start().is_empty() => (1, rest.trim_start()),
            Some(_) => return Err(format!("line {line_no}: no command after '>'")),
            None => (0, line),
        };
        if line == "^" {
            if cur.lines.is_empty() {
                cur.line_no = line_no;
            }
            cur.lines.push(CaseLine { line_no, mode: Mode::Receive, conn, text: String::new(), args: Vec::new() });
            continue;
        }
        let (mode, rest) = match line.as_bytes()[0] {
            b'*' if line.starts_with("**") => (Mode::DeepUnordered, &line[2..]),
            b'~' => (Mode::Tolerant, &line[1..]),
            b'?' => (Mode::TypeOnly, &line[1..]),
            b'*' => (Mode::Unordered, &line[1..]),
            b'!' => (Mode::Ignore, &line[1..]),
            b'-' => (Mode::NoReply, &line[1..]),
            _ => (Mode::Exact, line),
        };
        let rest = rest.trim_start();
        let args = split_line(rest).map_err(|e| format!("line {line_no}: {e}"))?;
        if args.is_empty() {
            return Err(format!("line {line_no}: no command after the mode prefix"));
        }
        if cur.lines.is_empty() {
            cur.line_no = line_no;
        }
        cur.lines.push(CaseLine { line_no, mode, conn, text: rest.to_string(), args });
    }
    if !cur.lines.is_empty() {
        cases.push(cur);
    }
    Ok(cases)
}

/// Whether two replies match under `mode`. ([`Mode::Ignore`] and [`Mode::NoReply`] always
/// match.)
pub fn replies_match(mode: Mode, a: &Frame, b: &Frame) -> bool {
    match mode {
        Mode::Exact | Mode::Receive => a == b,
        Mode::Tolerant => tolerant_eq(a, b),
        Mode::TypeOnly => kind(a) == kind(b),
        Mode::Unordered => unordered_eq(a, b),
        Mode::DeepUnordered => canonical(a) == canonical(b),
        Mode::Ignore | Mode::NoReply => true,
    }
}

/// `|a - b| <= 2`, or within 1% of the larger magnitude.
pub fn numbers_close(a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    diff <= 2.0 || diff <= 0.01 * a.abs().max(b.abs())
}

/// A number a frame carries, for tolerant comparison.
fn number(f: &Frame) -> Option<f64> {
    let text = match f {
        Frame::Integer(i) => return Some(*i as f64),
        Frame::Double(t) | Frame::Bulk(t) | Frame::BigNumber(t) => t,
        _ => return None,
    };
    std::str::from_utf8(text).ok()?.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn tolerant_eq(a: &Frame, b: &Frame) -> bool {
    if kind(a) != kind(b) {
        return false;
    }
    match (a, b) {
        (Frame::Array(x), Frame::Array(y)) | (Frame::Set(x), Frame::Set(y)) | (Frame::Push(x), Frame::Push(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| tolerant_eq(p, q))
        }
        (Frame::Map(x), Frame::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k1, v1), (k2, v2))| k1 == k2 && tolerant_eq(v1, v2))
        }
        _ if a == b => true,
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => numbers_close(x, y),
            _ => false,
        },
    }
}

fn sorted_encodings(items: &[Frame]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = items.iter().map(Frame::to_bytes).collect();
    v.sort();
    v
}

fn unordered_eq(a: &Frame, b: &Frame) -> bool {
    match (a, b) {
        (Frame::Array(x), Frame::Array(y)) | (Frame::Set(x), Frame::Set(y)) | (Frame::Push(x), Frame::Push(y)) => {
            sorted_encodings(x) == sorted_encodings(y)
        }
        (Frame::Map(x), Frame::Map(y)) => {
            let enc = |pairs: &[(Frame, Frame)]| {
                let mut v: Vec<(Vec<u8>, Vec<u8>)> = pairs.iter().map(|(k, v)| (k.to_bytes(), v.to_bytes())).collect();
                v.sort();
                v
            };
            enc(x) == enc(y)
        }
        _ => a == b,
    }
}

/// `f` with the elements of every aggregate, at every level, in sorted order.
fn canonical(f: &Frame) -> Frame {
    let sort = |items: &[Frame]| {
        let mut v: Vec<Frame> = items.iter().map(canonical).collect();
        v.sort_by_cached_key(Frame::to_bytes);
        v
    };
    match f {
        Frame::Array(items) => Frame::Array(sort(items)),
        Frame::Set(items) => Frame::Set(sort(items)),
        Frame::Push(items) => Frame::Push(sort(items)),
        Frame::Map(pairs) => {
            let mut v: Vec<(Frame, Frame)> = pairs.iter().map(|(k, v)| (canonical(k), canonical(v))).collect();
            v.sort_by_cached_key(|(k, v)| (k.to_bytes(), v.to_bytes()));
            Frame::Map(v)
        }
        Frame::WithAttribute(attrs, v) => Frame::WithAttribute(attrs.clone(), Box::new(canonical(v))),
        other => other.clone(),
    }
}

/// The kind of a frame, for [`Mode::TypeOnly`].
pub fn kind(f: &Frame) -> &'static str {
    match f {
        Frame::Simple(_) => "simple string",
        Frame::Error(_) => "error",
        Frame::Integer(_) => "integer",
        Frame::Bulk(_) => "bulk string",
        Frame::Null => "null",
        Frame::NullArray => "null array",
        Frame::Array(_) => "array",
        Frame::Map(_) => "map",
        Frame::Set(_) => "set",
        Frame::Double(_) => "double",
        Frame::Boolean(_) => "boolean",
        Frame::BigNumber(_) => "big number",
        Frame::Verbatim { .. } => "verbatim string",
        Frame::Push(_) => "push",
        Frame::WithAttribute(..) => "attribute",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk;

    #[test]
    fn parse() {
        let text = "# c\n\nSET a b\n~TTL a\n---\n@resp3\n*KEYS \"*\"\n ?TIME\n!DEBUG SLEEP 0\n-CLIENT REPLY OFF\n**COMMAND\n---\n---\n";
        let cases = parse_cases(text).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].line_no, 3);
        assert_eq!(cases[0].lines[1].mode, Mode::Tolerant);
        assert_eq!(cases[0].lines[1].args, vec![b"TTL".to_vec(), b"a".to_vec()]);
        assert_eq!(cases[0].only_resp, None);
        assert_eq!(cases[1].only_resp, Some(3));
        let modes: Vec<Mode> = cases[1].lines.iter().map(|l| l.mode).collect();
        assert_eq!(modes, [Mode::Unordered, Mode::TypeOnly, Mode::Ignore, Mode::NoReply, Mode::DeepUnordered]);
        assert_eq!(cases[1].lines[0].args[1], b"*");
        assert_eq!(cases[1].lines[1].line_no, 8);
        assert!(parse_cases("ECHO \"x\n").unwrap_err().starts_with("line 1"));
        assert!(parse_cases("@resp4\n").is_err());
    }

    #[test]
    fn compare() {
        let i = Frame::Integer;
        assert!(replies_match(Mode::Exact, &i(1), &i(1)));
        assert!(!replies_match(Mode::Exact, &i(1), &i(2)));
        assert!(replies_match(Mode::Tolerant, &i(100), &i(98)));
        assert!(!replies_match(Mode::Tolerant, &i(100), &i(97)));
        assert!(replies_match(Mode::Tolerant, &i(100_000), &i(99_500)));
        assert!(!replies_match(Mode::Tolerant, &i(-1), &i(1000)));
        assert!(!replies_match(Mode::Tolerant, &i(1), &bulk("1")));
        assert!(replies_match(Mode::Tolerant, &Frame::Double(b"1.5".to_vec()), &Frame::Double(b"1.50001".to_vec())));
        assert!(replies_match(
            Mode::Tolerant,
            &Frame::Array(vec![i(5), bulk("x")]),
            &Frame::Array(vec![i(6), bulk("x")])
        ));
        assert!(!replies_match(
            Mode::Tolerant,
            &Frame::Array(vec![i(5), bulk("x")]),
            &Frame::Array(vec![i(6), bulk("y")])
        ));
        assert!(replies_match(Mode::TypeOnly, &i(1), &i(7)));
        assert!(!replies_match(Mode::TypeOnly, &i(1), &bulk("1")));
        let arr = |v: &[&str]| Frame::Array(v.iter().map(bulk).collect());
        assert!(replies_match(Mode::Unordered, &arr(&["a", "b", "a"]), &arr(&["a", "a", "b"])));
        assert!(!replies_match(Mode::Unordered, &arr(&["a", "b", "b"]), &arr(&["a", "a", "b"])));
        assert!(!replies_match(Mode::Unordered, &arr(&["a"]), &Frame::Set(vec![bulk("a")])));
        let map = |v: &[(&str, i64)]| Frame::Map(v.iter().map(|(k, n)| (bulk(k), i(*n))).collect());
        assert!(replies_match(Mode::Unordered, &map(&[("a", 1), ("b", 2)]), &map(&[("b", 2), ("a", 1)])));
        assert!(!replies_match(Mode::Unordered, &map(&[("a", 1), ("b", 2)]), &map(&[("b", 1), ("a", 2)])));
        assert!(replies_match(Mode::Ignore, &i(1), &Frame::Null));
        let nested = |a: &[&str], b: &[&str]| Frame::Array(vec![arr(a), arr(b)]);
        assert!(!replies_match(Mode::Unordered, &nested(&["a", "b"], &["c"]), &nested(&["b", "a"], &["c"])));
        assert!(replies_match(Mode::DeepUnordered, &nested(&["a", "b"], &["c"]), &nested(&["c"], &["b", "a"])));
        assert!(!replies_match(Mode::DeepUnordered, &nested(&["a", "b"], &["c"]), &nested(&["a"], &["b", "c"])));
    }
}
