//! A generic RESP2/RESP3 value type with a parser and an encoder.
//!
//! The server's hot path never builds [`Frame`]s: requests go through
//! [`crate::RequestParser`] and replies through [`crate::ReplyWriter`].
//! Frames exist for the other side of the wire (clients, test harnesses,
//! scripting), where convenience matters more than speed.

use std::fmt;

use crate::reply::format_i64;

/// Deepest aggregate nesting [`parse_frame`] accepts. Parsing itself uses no
/// recursion, but dropping, encoding and displaying a frame do, so hostile
/// input must not be able to build an arbitrarily deep tree.
pub const MAX_DEPTH: usize = 1000;

/// Aggregates announce their size before their elements arrive; reserving
/// more than this up front would let a tiny hostile header allocate a lot.
const MAX_PREALLOC: usize = 1024;

/// One RESP value.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A simple string `+...`.
    Simple(Vec<u8>),
    /// An error `-...` (or a RESP3 blob error `!`), without the dash.
    Error(Vec<u8>),
    /// An integer `:...`.
    Integer(i64),
    /// A bulk string `$...`.
    Bulk(Vec<u8>),
    /// A null: RESP2 `$-1` or RESP3 `_`.
    Null,
    /// A RESP2 null array `*-1`.
    NullArray,
    /// An array `*...`.
    Array(Vec<Frame>),
    /// A RESP3 map `%...`, pairs in wire order.
    Map(Vec<(Frame, Frame)>),
    /// A RESP3 set `~...`, elements in wire order.
    Set(Vec<Frame>),
    /// A RESP3 double `,...`, kept as the text that was sent so nothing is
    /// lost to rounding when comparing with Redis.
    Double(Vec<u8>),
    /// A RESP3 boolean `#t` / `#f`.
    Boolean(bool),
    /// A RESP3 big number `(...`, as its digits.
    BigNumber(Vec<u8>),
    /// A RESP3 verbatim string `=...`, split into its three-byte format
    /// (such as `txt`) and the text after the colon.
    Verbatim {
        /// The format tag, e.g. `*b"txt"` or `*b"mkd"`.
        format: [u8; 3],
        /// The text itself.
        text: Vec<u8>,
    },
    /// A RESP3 push `>...`.
    Push(Vec<Frame>),
    /// A RESP3 attribute `|...` together with the value it annotates, which
    /// follows it on the wire.
    WithAttribute(Vec<(Frame, Frame)>, Box<Frame>),
}

/// Why bytes are not a valid RESP value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The first byte names no RESP type.
    UnknownType(u8),
    /// A length or count is not an integer, or is negative where that has
    /// no meaning.
    InvalidLength,
    /// An integer reply is not a valid 64-bit integer.
    InvalidInteger,
    /// A boolean is neither `t` nor `f`.
    InvalidBoolean,
    /// A `_` null carries data.
    InvalidNull,
    /// A verbatim string is shorter than its `xxx:` prefix or lacks the colon.
    InvalidVerbatim,
    /// A line or payload is not terminated by `\r\n`.
    MissingCrlf,
    /// Aggregates are nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::UnknownType(b) => {
                write!(f, "unknown RESP type byte {}", repr_byte(*b))
            }
            FrameError::InvalidLength => f.write_str("invalid length"),
            FrameError::InvalidInteger => f.write_str("invalid integer"),
            FrameError::InvalidBoolean => f.write_str("invalid boolean"),
            FrameError::InvalidNull => f.write_str("invalid null"),
            FrameError::InvalidVerbatim => f.write_str("invalid verbatim string"),
            FrameError::MissingCrlf => f.write_str("missing CRLF terminator"),
            FrameError::TooDeep => write!(f, "aggregates nested deeper than {MAX_DEPTH}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Parses one value from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a value, and otherwise
/// the value with the number of bytes it used. Parsing restarts from the
/// beginning on every call, which is fine for clients and tests but not
/// meant for multi-megabyte values trickling in.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let mut cursor = Cursor { buf, pos: 0 };
    match cursor.value()? {
        Some(frame) => Ok(Some((frame, cursor.pos))),
        None => Ok(None),
    }
}

/// Which aggregate a [`Pending`] entry is collecting.
enum Kind {
    Array,
    Set,
    Push,
    Map,
    /// Collecting the key/value pairs of an attribute.
    Attribute,
    /// The pairs are complete; waiting for the value they annotate.
    Annotated(Vec<(Frame, Frame)>),
}

/// An aggregate whose elements are still being parsed.
struct Pending {
    kind: Kind,
    items: Vec<Frame>,
    remaining: usize,
}

/// What one step of the parser produced.
enum Item {
    /// A complete value.
    Value(Frame),
    /// An aggregate header announcing `n` elements (pairs count twice).
    Open(Kind, usize),
}

/// Turns `[k1, v1, k2, v2, ...]` into pairs.
fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// Propagates "incomplete" out of a function returning
/// `Result<Option<_>, _>`.
macro_rules! ready {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

/// Reading position inside the buffer being parsed.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Parses a whole value with an explicit stack instead of recursion,
    /// so deep nesting cannot overflow the thread's stack.
    fn value(&mut self) -> Result<Option<Frame>, FrameError> {
        let mut stack: Vec<Pending> = Vec::new();
        loop {
            let mut value = match ready!(self.item()) {
                Item::Value(v) => v,
                Item::Open(kind, remaining) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(FrameError::TooDeep);
                    }
                    stack.push(Pending { kind, items: Vec::with_capacity(remaining.min(MAX_PREALLOC)), remaining });
                    continue;
                }
            };
            // Fold the finished value into its parents, closing every
            // aggregate it completes.
            loop {
                let Some(top) = stack.last_mut() else {
                    return Ok(Some(value));
                };
                top.items.push(value);
                top.remaining -= 1;
                if top.remaining > 0 {
                    break;
                }
                let Some(done) = stack.pop() else {
                    unreachable!("the stack top was just borrowed");
                };
                value = match done.kind {
                    Kind::Array => Frame::Array(done.items),
                    Kind::Set => Frame::Set(done.items),
                    Kind::Push => Frame::Push(done.items),
                    Kind::Map => Frame::Map(pairs(done.items)),
                    Kind::Attribute => {
                        // The pairs are in; the annotated value comes next.
                        stack.push(Pending {
                            kind: Kind::Annotated(pairs(done.items)),
                            items: Vec::with_capacity(1),
                            remaining: 1,
                        });
                        break;
                    }
                    Kind::Annotated(attrs) => {
                        let mut items = done.items;
                        let Some(inner) = items.pop() else {
                            unreachable!("an annotated value was just pushed");
                        };
                        Frame::WithAttribute(attrs, Box::new(inner))
                    }
                };
            }
        }
    }

    /// Parses one scalar, or the header of one aggregate. Empty aggregates
    /// come back as values so the caller only opens aggregates that will
    /// receive elements.
    fn item(&mut self) -> Result<Option<Item>, FrameError> {
        let Some(&kind) = self.buf.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        self.item_body(kind)
    }

    /// [`Cursor::item`] after the type byte.
    fn item_body(&mut self, kind: u8) -> Result<Option<Item>, FrameError> {
        let frame = match kind {
            b'+' => Frame::Simple(ready!(self.line()).to_vec()),
            b'-' => Frame::Error(ready!(self.line()).to_vec()),
            b':' => Frame::Integer(parse_int(ready!(self.line())).ok_or(FrameError::InvalidInteger)?),
            b'$' => match ready!(self.length()) {
                None => Frame::Null,
                Some(len) => Frame::Bulk(ready!(self.blob(len)).to_vec()),
            },
            b'!' => {
                let len = ready!(self.count());
                Frame::Error(ready!(self.blob(len)).to_vec())
            }
            b'=' => {
                let len = ready!(self.count());
                let data = ready!(self.blob(len));
                if data.len() < 4 || data[3] != b':' {
                    return Err(FrameError::InvalidVerbatim);
                }
                Frame::Verbatim { format: [data[0], data[1], data[2]], text: data[4..].to_vec() }
            }
            b'_' => {
                if !ready!(self.line()).is_empty() {
                    return Err(FrameError::InvalidNull);
                }
                Frame::Null
            }
            b',' => Frame::Double(ready!(self.line()).to_vec()),
            b'(' => Frame::BigNumber(ready!(self.line()).to_vec()),
            b'#' => match ready!(self.line()) {
                b"t" => Frame::Boolean(true),
                b"f" => Frame::Boolean(false),
                _ => return Err(FrameError::InvalidBoolean),
            },
            b'*' => match ready!(self.length()) {
                None => Frame::NullArray,
                Some(0) => Frame::Array(Vec::new()),
                Some(n) => return Ok(Some(Item::Open(Kind::Array, n))),
            },
            b'~' => match ready!(self.count()) {
                0 => Frame::Set(Vec::new()),
                n => return Ok(Some(Item::Open(Kind::Set, n))),
            },
            b'>' => match ready!(self.count()) {
                0 => Frame::Push(Vec::new()),
                n => return Ok(Some(Item::Open(Kind::Push, n))),
            },
            b'%' => match ready!(self.count()) {
                0 => Frame::Map(Vec::new()),
                n => {
                    let n = n.checked_mul(2).ok_or(FrameError::InvalidLength)?;
                    return Ok(Some(Item::Open(Kind::Map, n)));
                }
            },
            b'|' => {
                return match ready!(self.count()) {
                    // No pairs: only the annotated value remains to be read.
                    0 => Ok(Some(Item::Open(Kind::Annotated(Vec::new()), 1))),
                    n => {
                        let n = n.checked_mul(2).ok_or(FrameError::InvalidLength)?;
                        Ok(Some(Item::Open(Kind::Attribute, n)))
                    }
                };
            }
            other => return Err(FrameError::UnknownType(other)),
        };
        Ok(Some(Item::Value(frame)))
    }

    /// Reads up to the next `\r\n` and returns the bytes before it.
    fn line(&mut self) -> Result<Option<&'a [u8]>, FrameError> {
        let rest = &self.buf[self.pos..];
        let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
            return Ok(None);
        };
        match rest.get(cr + 1) {
            None => Ok(None),
            Some(b'\n') => {
                self.pos += cr + 2;
                Ok(Some(&rest[..cr]))
            }
            Some(_) => Err(FrameError::MissingCrlf),
        }
    }

    /// Reads a length line that may be `-1` for null (`$` and `*`), giving
    /// `Some(None)` then.
    fn length(&mut self) -> Result<Option<Option<usize>>, FrameError> {
        let n = parse_int(ready!(self.line())).ok_or(FrameError::InvalidLength)?;
        if n == -1 {
            return Ok(Some(None));
        }
        let n = usize::try_from(n).map_err(|_| FrameError::InvalidLength)?;
        Ok(Some(Some(n)))
    }

    /// Reads a length line that must not be negative.
    fn count(&mut self) -> Result<Option<usize>, FrameError> {
        let n = parse_int(ready!(self.line())).ok_or(FrameError::InvalidLength)?;
        let n = usize::try_from(n).map_err(|_| FrameError::InvalidLength)?;
        Ok(Some(n))
    }

    /// Reads a `len`-byte payload and its `\r\n`.
    fn blob(&mut self, len: usize) -> Result<Option<&'a [u8]>, FrameError> {
        let rest = &self.buf[self.pos..];
        let Some(total) = len.checked_add(2) else {
            return Err(FrameError::InvalidLength);
        };
        if rest.len() < total {
            return Ok(None);
        }
        if &rest[len..total] != b"\r\n" {
            return Err(FrameError::MissingCrlf);
        }
        self.pos += total;
        Ok(Some(&rest[..len]))
    }
}

/// Parses a signed decimal integer as a client would: an optional sign and
/// at least one digit, with overflow detected.
fn parse_int(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        // Accumulating negatively reaches i64::MIN without overflowing.
        v = v.checked_mul(10)?;
        v = if negative { v.checked_sub(d)? } else { v.checked_add(d)? };
    }
    Some(v)
}

/// Appends `<prefix><n>\r\n`.
fn header(out: &mut Vec<u8>, prefix: u8, n: usize) {
    out.push(prefix);
    format_i64(n as i64, out);
    out.extend_from_slice(b"\r\n");
}

/// Appends `<prefix><text>\r\n`.
fn line_out(out: &mut Vec<u8>, prefix: u8, text: &[u8]) {
    out.push(prefix);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// Appends `<prefix><len>\r\n<data>\r\n`.
fn blob_out(out: &mut Vec<u8>, prefix: u8, data: &[u8]) {
    header(out, prefix, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends a byte the way redis-cli shows it inside quotes.
fn push_repr_byte(out: &mut String, b: u8) {
    match b {
        b'\\' => out.push_str("\\\\"),
        b'"' => out.push_str("\\\""),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x07 => out.push_str("\\a"),
        0x08 => out.push_str("\\b"),
        0x20..=0x7e => out.push(char::from(b)),
        _ => {
            use fmt::Write;
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// A byte rendered for an error message.
fn repr_byte(b: u8) -> String {
    let mut s = String::from("'");
    push_repr_byte(&mut s, b);
    s.push('\'');
    s
}

/// Appends `bytes` escaped, without quotes.
fn push_escaped(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        push_repr_byte(out, b);
    }
}

/// Appends `bytes` escaped and in double quotes, like redis-cli.
fn push_quoted(out: &mut String, bytes: &[u8]) {
    out.push('"');
    push_escaped(out, bytes);
    out.push('"');
}

impl Frame {
    /// Appends the RESP encoding of the frame.
    ///
    /// `Null` is written as `$-1` and `NullArray` as `*-1`, which both RESP2
    /// and RESP3 readers accept; the RESP3-only types use their RESP3 form.
    /// An `Error` containing `\r` or `\n` is written as a RESP3 blob error
    /// (`!`) since a simple error cannot carry them. A `Simple`, `Double` or
    /// `BigNumber` must not contain `\r` or `\n`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Simple(s) => line_out(out, b'+', s),
            Frame::Error(s) => {
                if s.iter().any(|&b| b == b'\r' || b == b'\n') {
                    blob_out(out, b'!', s);
                } else {
                    line_out(out, b'-', s);
                }
            }
            Frame::Integer(v) => {
                out.push(b':');
                format_i64(*v, out);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Bulk(b) => blob_out(out, b'$', b),
            Frame::Null => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => encode_seq(out, b'*', items),
            Frame::Set(items) => encode_seq(out, b'~', items),
            Frame::Push(items) => encode_seq(out, b'>', items),
            Frame::Map(pairs) => encode_pairs(out, b'%', pairs),
            Frame::Double(text) => line_out(out, b',', text),
            Frame::Boolean(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::BigNumber(digits) => line_out(out, b'(', digits),
            Frame::Verbatim { format, text } => {
                header(out, b'=', text.len() + 4);
                out.extend_from_slice(format);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Frame::WithAttribute(attrs, value) => {
                encode_pairs(out, b'|', attrs);
                value.encode(out);
            }
        }
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// A one-line rendering in the spirit of redis-cli, handy in test
    /// failure messages: bulk strings are quoted and escaped, simple strings
    /// are bare, aggregates are bracketed (`[..]` array, `~[..]` set,
    /// `>[..]` push, `{k: v}` map, `|{k: v}| value` attributes).
    pub fn to_display(&self) -> String {
        let mut out = String::new();
        self.display_into(&mut out);
        out
    }

    /// [`Frame::to_display`] into an existing string.
    fn display_into(&self, out: &mut String) {
        use fmt::Write;
        match self {
            Frame::Simple(s) => push_escaped(out, s),
            Frame::Error(s) => {
                out.push_str("(error) ");
                push_escaped(out, s);
            }
            Frame::Integer(v) => {
                let _ = write!(out, "(integer) {v}");
            }
            Frame::Bulk(b) => push_quoted(out, b),
            Frame::Null => out.push_str("(nil)"),
            Frame::NullArray => out.push_str("(nil array)"),
            Frame::Array(items) => display_seq(out, "[", items),
            Frame::Set(items) => display_seq(out, "~[", items),
            Frame::Push(items) => display_seq(out, ">[", items),
            Frame::Map(pairs) => display_pairs(out, "{", "}", pairs),
            Frame::Double(text) => {
                out.push_str("(double) ");
                push_escaped(out, text);
            }
            Frame::Boolean(b) => out.push_str(if *b { "(true)" } else { "(false)" }),
            Frame::BigNumber(digits) => {
                out.push_str("(big number) ");
                push_escaped(out, digits);
            }
            Frame::Verbatim { format, text } => {
                out.push_str("(verbatim ");
                push_escaped(out, format);
                out.push_str(") ");
                push_quoted(out, text);
            }
            Frame::WithAttribute(attrs, value) => {
                display_pairs(out, "|{", "}| ", attrs);
                value.display_into(out);
            }
        }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_display())
    }
}

/// Encodes an array-like aggregate.
fn encode_seq(out: &mut Vec<u8>, prefix: u8, items: &[Frame]) {
    header(out, prefix, items.len());
    for item in items {
        item.encode(out);
    }
}

/// Encodes a map-like aggregate.
fn encode_pairs(out: &mut Vec<u8>, prefix: u8, pairs: &[(Frame, Frame)]) {
    header(out, prefix, pairs.len());
    for (k, v) in pairs {
        k.encode(out);
        v.encode(out);
    }
}

/// Renders an array-like aggregate.
fn display_seq(out: &mut String, open: &str, items: &[Frame]) {
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item.display_into(out);
    }
    out.push(']');
}

/// Renders a map-like aggregate.
fn display_pairs(out: &mut String, open: &str, close: &str, pairs: &[(Frame, Frame)]) {
    out.push_str(open);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        k.display_into(out);
        out.push_str(": ");
        v.display_into(out);
    }
    out.push_str(close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(s.as_bytes().to_vec())
    }

    /// Parses exactly one complete frame that uses the whole input.
    #[track_caller]
    fn parse_one(input: &[u8]) -> Frame {
        let (frame, used) = parse_frame(input).unwrap().expect("complete frame");
        assert_eq!(used, input.len());
        frame
    }

    #[test]
    fn scalars() {
        let cases: Vec<(&[u8], Frame)> = vec![
            (b"+OK\r\n", Frame::Simple(b"OK".to_vec())),
            (b"-ERR bad\r\n", Frame::Error(b"ERR bad".to_vec())),
            (b"!5\r\nE\r\nx!\r\n", Frame::Error(b"E\r\nx!".to_vec())),
            (b":-12\r\n", Frame::Integer(-12)),
            (b":+7\r\n", Frame::Integer(7)),
            (b":-9223372036854775808\r\n", Frame::Integer(i64::MIN)),
            (b"$3\r\na\0b\r\n", Frame::Bulk(b"a\0b".to_vec())),
            (b"$0\r\n\r\n", Frame::Bulk(Vec::new())),
            (b"$-1\r\n", Frame::Null),
            (b"_\r\n", Frame::Null),
            (b"*-1\r\n", Frame::NullArray),
            (b",3.141\r\n", Frame::Double(b"3.141".to_vec())),
            (b",inf\r\n", Frame::Double(b"inf".to_vec())),
            (b"#t\r\n", Frame::Boolean(true)),
            (b"#f\r\n", Frame::Boolean(false)),
            (b"(123456789012345678901234567890\r\n", Frame::BigNumber(b"123456789012345678901234567890".to_vec())),
            (
                b"=29\r\ntxt:This is a verbatim\nstring\r\n",
                Frame::Verbatim { format: *b"txt", text: b"This is a verbatim\nstring".to_vec() },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_one(input), want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn aggregates_from_redis() {
        // Replies of DEBUG PROTOCOL attrib/map/set/push from Redis 7.0.15.
        assert_eq!(
            parse_one(
                b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n\
$39\r\nSome real reply following the attribute\r\n"
            ),
            Frame::WithAttribute(
                vec![(bulk("key-popularity"), Frame::Array(vec![bulk("key:123"), Frame::Integer(90)]))],
                Box::new(bulk("Some real reply following the attribute")),
            )
        );
        assert_eq!(
            parse_one(b"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n"),
            Frame::Map(vec![
                (Frame::Integer(0), Frame::Boolean(false)),
                (Frame::Integer(1), Frame::Boolean(true)),
                (Frame::Integer(2), Frame::Boolean(false)),
            ])
        );
        assert_eq!(
            parse_one(b"~3\r\n:0\r\n:1\r\n:2\r\n"),
            Frame::Set(vec![Frame::Integer(0), Frame::Integer(1), Frame::Integer(2)])
        );
        assert_eq!(
            parse_one(b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n"),
            Frame::Push(vec![bulk("server-cpu-usage"), Frame::Integer(42)])
        );
        assert_eq!(
            parse_one(b"*3\r\n*0\r\n%0\r\n*1\r\n~0\r\n"),
            Frame::Array(vec![Frame::Array(vec![]), Frame::Map(vec![]), Frame::Array(vec![Frame::Set(vec![])]),])
        );
        assert_eq!(parse_one(b"|0\r\n>0\r\n"), Frame::WithAttribute(vec![], Box::new(Frame::Push(vec![]))));
        // An attribute may annotate an element inside an aggregate.
        assert_eq!(
            parse_one(b"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n"),
            Frame::Array(vec![
                Frame::WithAttribute(
                    vec![(Frame::Simple(b"a".to_vec()), Frame::Simple(b"b".to_vec()))],
                    Box::new(Frame::Integer(1)),
                ),
                Frame::Integer(2),
            ])
        );
    }

    #[test]
    fn pipelined_frames_report_their_length() {
        let input = b"+OK\r\n:1\r\n";
        assert_eq!(parse_frame(input), Ok(Some((Frame::Simple(b"OK".to_vec()), 5))));
        assert_eq!(parse_frame(&input[5..]), Ok(Some((Frame::Integer(1), 4))));
    }

    #[test]
    fn incomplete_and_invalid() {
        for input in [
            &b""[..],
            b"+OK",
            b"+OK\r",
            b"$3\r\nab",
            b"$3\r\nabc\r",
            b"*2\r\n:1\r\n",
            b"%1\r\n:1\r\n",
            b"|1\r\n:1\r\n:2\r\n",
            b"*9999999999\r\n",
        ] {
            assert_eq!(parse_frame(input), Ok(None), "{}", String::from_utf8_lossy(input));
        }
        let cases: &[(&[u8], FrameError)] = &[
            (b"?x\r\n", FrameError::UnknownType(b'?')),
            (b"+OK\rx", FrameError::MissingCrlf),
            (b"$3\r\nabcde", FrameError::MissingCrlf),
            (b"$x\r\n", FrameError::InvalidLength),
            (b"$-2\r\n", FrameError::InvalidLength),
            (b"~-1\r\n", FrameError::InvalidLength),
            (b":1.5\r\n", FrameError::InvalidInteger),
            (b":9223372036854775808\r\n", FrameError::InvalidInteger),
            (b"#x\r\n", FrameError::InvalidBoolean),
            (b"_x\r\n", FrameError::InvalidNull),
            (b"=3\r\ntxt\r\n", FrameError::InvalidVerbatim),
            (b"=4\r\ntxt-\r\n", FrameError::InvalidVerbatim),
            (b"*1\r\n?\r\n", FrameError::UnknownType(b'?')),
        ];
        for (input, want) in cases {
            assert_eq!(parse_frame(input), Err(*want), "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(FrameError::UnknownType(0).to_string(), "unknown RESP type byte '\\x00'");
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |depth: usize| {
            let mut v = b"*1\r\n".repeat(depth);
            v.extend_from_slice(b":1\r\n");
            v
        };
        let ok = nested(MAX_DEPTH);
        let frame = parse_one(&ok);
        assert_eq!(frame.to_bytes(), ok);
        assert_eq!(parse_frame(&nested(MAX_DEPTH + 1)), Err(FrameError::TooDeep));
        // A hostile stream far deeper than the limit is refused quickly.
        assert_eq!(parse_frame(&b"*1\r\n".repeat(1_000_000)), Err(FrameError::TooDeep));
    }

    #[test]
    fn encode_special_cases() {
        assert_eq!(Frame::Null.to_bytes(), b"$-1\r\n");
        assert_eq!(Frame::NullArray.to_bytes(), b"*-1\r\n");
        assert_eq!(Frame::Error(b"ERR a\nb".to_vec()).to_bytes(), b"!7\r\nERR a\nb\r\n");
        assert_eq!(Frame::Map(vec![(bulk("k"), Frame::Boolean(true))]).to_bytes(), b"%1\r\n$1\r\nk\r\n#t\r\n");
    }

    #[test]
    fn display() {
        let frame = Frame::Array(vec![
            Frame::Simple(b"OK".to_vec()),
            Frame::Error(b"ERR x".to_vec()),
            Frame::Integer(3),
            bulk("a \"q\"\n\x01"),
            Frame::Null,
            Frame::NullArray,
            Frame::Map(vec![(bulk("k"), Frame::Double(b"1.5".to_vec()))]),
            Frame::Set(vec![Frame::Boolean(true)]),
            Frame::Push(vec![Frame::BigNumber(b"12".to_vec())]),
            Frame::Verbatim { format: *b"txt", text: b"hi".to_vec() },
            Frame::WithAttribute(vec![(bulk("a"), Frame::Integer(1))], Box::new(Frame::Boolean(false))),
        ]);
        assert_eq!(
            frame.to_display(),
            r#"[OK, (error) ERR x, (integer) 3, "a \"q\"\n\x01", (nil), (nil array), {"k": (double) 1.5}, ~[(true)], >[(big number) 12], (verbatim txt) "hi", |{"a": (integer) 1}| (false)]"#
        );
        assert_eq!(frame.to_string(), frame.to_display());
    }

    /// Text without CR or LF, for the line-based types.
    fn line_text() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..12)
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let leaf = prop_oneof![
            line_text().prop_map(Frame::Simple),
            prop::collection::vec(any::<u8>(), 0..12).prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Integer),
            prop::collection::vec(any::<u8>(), 0..12).prop_map(Frame::Bulk),
            Just(Frame::Null),
            Just(Frame::NullArray),
            line_text().prop_map(Frame::Double),
            any::<bool>().prop_map(Frame::Boolean),
            line_text().prop_map(Frame::BigNumber),
            (any::<[u8; 3]>(), prop::collection::vec(any::<u8>(), 0..12))
                .prop_map(|(format, text)| Frame::Verbatim { format, text }),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let pairs = prop::collection::vec((inner.clone(), inner.clone()), 0..4);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
                pairs.clone().prop_map(Frame::Map),
                (pairs, inner).prop_map(|(a, v)| Frame::WithAttribute(a, Box::new(v))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn encode_parse_round_trip(frame in arb_frame()) {
            let bytes = frame.to_bytes();
            prop_assert_eq!(parse_frame(&bytes), Ok(Some((frame.clone(), bytes.len()))));
            // Every strict prefix is merely incomplete.
            for cut in 0..bytes.len() {
                prop_assert_eq!(parse_frame(&bytes[..cut]), Ok(None));
            }
        }

        #[test]
        fn random_bytes_never_panic(input in prop::collection::vec(
            prop_oneof![
                3 => any::<u8>(),
                2 => prop::sample::select(b"+-:$*%~|>_,#(=!\r\n0123456789".to_vec()),
            ],
            0..200,
        )) {
            if let Ok(Some((_, used))) = parse_frame(&input) {
                prop_assert!(used <= input.len());
            }
        }
    }
}
