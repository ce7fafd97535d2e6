//! Pipelined request parsing: RESP multibulk and the inline (telnet) form.
//!
//! The parser mirrors Redis 7.0's `processMultibulkBuffer` and
//! `processInlineBuffer` byte for byte, including their quirks, because
//! clients and test suites depend on which inputs are accepted, which are
//! waited on, and which error text is sent back.
//!
//! Quirks kept on purpose (all checked against a real Redis 7.0.15):
//!
//! * Line ends are found by searching for `\r` (multibulk) or `\n` (inline)
//!   with C's `strchr`, which stops at a NUL byte. A NUL before the line end
//!   therefore makes Redis wait for more input until the line is longer than
//!   the inline limit, and then fail with the "too big" error. This parser
//!   does the same.
//! * The byte after the `\r` of a `*` or `$` line is not checked to be `\n`,
//!   and the two bytes after a bulk payload are skipped without being checked.
//! * The "too big ... count string" and "too big inline request" errors are
//!   raised only when no line end exists at all in the buffered bytes and
//!   more than `max_inline_len` bytes are waiting; a line end far away instead
//!   leads to an "invalid ... length" error.

use std::fmt;

/// Number of arguments above which a client that has not authenticated is
/// refused (Redis hard-codes 10).
const UNAUTHENTICATED_MAX_ARGS: i64 = 10;

/// Bulk length above which a client that has not authenticated is refused
/// (Redis hard-codes 16384).
const UNAUTHENTICATED_MAX_BULK: i64 = 16384;

/// Strings of this many bytes or more are never valid integers for Redis'
/// `string2ll` (its `LONG_STR_SIZE`), so longer count lines fail early.
const LONG_STR_SIZE: usize = 21;

/// The span vector is shrunk back when a huge request left it bigger than
/// this many entries, so an idle connection does not pin that memory.
const SPANS_KEEP_CAPACITY: usize = 4096;

/// The inline scratch buffer is shrunk back above this many bytes for the
/// same reason.
const SCRATCH_KEEP_CAPACITY: usize = 16 * 1024;

/// Size limits applied while parsing, matching the Redis configuration
/// values of the same meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted bulk argument (`proto-max-bulk-len`, default 512 MiB).
    pub max_bulk_len: usize,
    /// Largest accepted multibulk argument count. Redis 7.0 refuses counts
    /// above `INT_MAX`, which is the default here.
    pub max_multibulk_len: usize,
    /// How many bytes may wait without a line end before the request is
    /// refused as too big (Redis' `PROTO_INLINE_MAX_SIZE`, 64 KiB). It also
    /// bounds the `*` and `$` header lines, as in Redis.
    pub max_inline_len: usize,
    /// Whether the client still has to authenticate, which tightens the
    /// argument count to 10 and bulk lengths to 16384 bytes.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
            unauthenticated: false,
        }
    }
}

/// A protocol violation. The connection should get `-ERR <message>` and be
/// closed, as Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// No `\r` after a `*` line and more than `max_inline_len` bytes waiting.
    TooBigMultibulkCount,
    /// The `*` count is not an integer or is above `max_multibulk_len`.
    InvalidMultibulkLength,
    /// More than 10 arguments from a client that has not authenticated.
    UnauthenticatedMultibulkLength,
    /// No `\r` after a `$` line and more than `max_inline_len` bytes waiting.
    TooBigBulkCount,
    /// A bulk header did not start with `$`; holds the byte that was found.
    ExpectedDollar(u8),
    /// The `$` length is not an integer, is negative or is above
    /// `max_bulk_len`.
    InvalidBulkLength,
    /// A bulk longer than 16384 bytes from a client that has not
    /// authenticated.
    UnauthenticatedBulkLength,
    /// No newline within `max_inline_len` bytes of an inline request.
    TooBigInlineRequest,
    /// An inline request has an unterminated quote or a closing quote that
    /// is not followed by a space.
    UnbalancedQuotes,
}

impl ProtocolError {
    /// The exact error text Redis sends after `-ERR `, as bytes.
    ///
    /// Bytes are needed because the unexpected byte in
    /// [`ProtocolError::ExpectedDollar`] is sent raw and need not be UTF-8.
    /// A `\r` or `\n` there is replaced by a space, as Redis'
    /// `addReplyErrorFormat` does, so the reply stays well formed.
    pub fn message_bytes(&self) -> Vec<u8> {
        match *self {
            ProtocolError::ExpectedDollar(b) => {
                let b = if b == b'\r' || b == b'\n' { b' ' } else { b };
                let mut v = b"Protocol error: expected '$', got '".to_vec();
                v.push(b);
                v.push(b'\'');
                v
            }
            _ => self.static_text().as_bytes().to_vec(),
        }
    }

    /// The error text as a string; a non-UTF-8 byte in
    /// [`ProtocolError::ExpectedDollar`] becomes U+FFFD, so prefer
    /// [`ProtocolError::message_bytes`] when writing the reply.
    pub fn message(&self) -> String {
        String::from_utf8_lossy(&self.message_bytes()).into_owned()
    }

    /// Text of the variants that carry no data.
    fn static_text(&self) -> &'static str {
        match self {
            ProtocolError::TooBigMultibulkCount => "Protocol error: too big mbulk count string",
            ProtocolError::InvalidMultibulkLength => "Protocol error: invalid multibulk length",
            ProtocolError::UnauthenticatedMultibulkLength => "Protocol error: unauthenticated multibulk length",
            ProtocolError::TooBigBulkCount => "Protocol error: too big bulk count string",
            ProtocolError::ExpectedDollar(_) => "Protocol error: expected '$'",
            ProtocolError::InvalidBulkLength => "Protocol error: invalid bulk length",
            ProtocolError::UnauthenticatedBulkLength => "Protocol error: unauthenticated bulk length",
            ProtocolError::TooBigInlineRequest => "Protocol error: too big inline request",
            ProtocolError::UnbalancedQuotes => "Protocol error: unbalanced quotes in request",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ProtocolError {}

/// Where the parser stands inside the request at the front of the buffer.
/// Every offset is relative to the start of that request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No byte of the current request has been looked at.
    Start,
    /// Inside an inline request; `[0, scanned)` holds no `\n`.
    Inline { scanned: usize },
    /// Inside the `*<n>` line; `[0, scanned)` holds no `\r`.
    Count { scanned: usize },
    /// Reading bulks: `remaining` are still missing, the next one starts at
    /// `pos`. With `bulk_len` set, its header was read and only the payload
    /// is missing; otherwise `[pos, scanned)` holds no `\r`.
    Bulks { remaining: u64, pos: usize, bulk_len: Option<usize>, scanned: usize },
}

impl State {
    /// How many bytes of the request this state has already looked at.
    fn examined(&self) -> usize {
        match *self {
            State::Start => 0,
            State::Inline { scanned } | State::Count { scanned } => scanned,
            State::Bulks { pos, scanned, .. } => pos.max(scanned),
        }
    }
}

/// Result of searching for a line end the way C's `strchr` does.
enum Scan {
    /// The wanted byte is at this offset.
    Found(usize),
    /// A NUL byte at this offset hides everything after it.
    Nul(usize),
    /// Neither the byte nor a NUL occurs.
    Missing,
}

/// Finds `target` in `buf[from..]`, stopping at a NUL as `strchr` does.
#[inline]
fn scan(buf: &[u8], from: usize, target: u8) -> Scan {
    match buf[from..].iter().position(|&b| b == target || b == 0) {
        Some(i) if buf[from + i] == target => Scan::Found(from + i),
        Some(i) => Scan::Nul(from + i),
        None => Scan::Missing,
    }
}

/// Parses a decimal integer exactly as Redis' `string2ll` does: no sign
/// other than a leading `-`, no leading zeros, no spaces, no `-0`, and
/// fewer than 21 bytes.
#[inline]
pub(crate) fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if v > i64::MIN.unsigned_abs() {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// C's `isspace` in the "C" locale, which is what `sdssplitargs` uses to
/// skip blanks and to accept what follows a closing quote.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Value of a hexadecimal digit, if it is one.
#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline line into arguments exactly like Redis' `sdssplitargs`,
/// appending the unescaped bytes to `scratch` and their spans to `spans`.
///
/// The line never contains a NUL (the newline search stops at one), so the
/// end of the slice plays the role of C's terminating NUL.
fn split_inline(line: &[u8], scratch: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>) -> Result<(), ProtocolError> {
    // Reading past the end yields 0, which is what the C code sees at the
    // string terminator; this keeps the look-ahead checks identical.
    let at = |i: usize| -> u8 { line.get(i).copied().unwrap_or(0) };
    let mut p = 0usize;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(());
        }
        let start = scratch.len();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = at(p);
            let mut done = false;
            if in_double {
                if c == b'\\' && at(p + 1) == b'x' {
                    if let (Some(hi), Some(lo)) = (hex_value(at(p + 2)), hex_value(at(p + 3))) {
                        scratch.push(hi * 16 + lo);
                        p += 3;
                    } else {
                        // Not a valid \xHH: the backslash escapes the 'x'.
                        p += 1;
                        scratch.push(b'x');
                    }
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    scratch.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    scratch.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    scratch.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    scratch.push(c);
                }
            } else {
                // Only these end an unquoted token; \v and \f do not, even
                // though they are skipped as leading blanks.
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => scratch.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
            if done {
                break;
            }
        }
        spans.push((start, scratch.len() - start));
    }
}

/// Appends `argv` as a RESP multibulk request (`*<argc>\r\n` then `$<len>\r\n<arg>\r\n` per
/// argument): what clients send, and what Redis writes to its AOF for every logged command.
pub fn encode_multibulk<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    out.reserve(16 + argv.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.push(b'*');
    crate::reply::format_i64(argv.len() as i64, out);
    out.extend_from_slice(b"\r\n");
    for arg in argv {
        let arg = arg.as_ref();
        out.push(b'$');
        crate::reply::format_i64(arg.len() as i64, out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Splits a line into arguments exactly like Redis's `sdssplitargs`, the one splitter Redis
/// uses for inline commands, configuration files and `redis-cli` input: whitespace-separated
/// words, double quotes with `\n \r \t \b \a \\ \" \xHH` escapes, single quotes with `\'`.
/// A closing quote followed by anything but a space, or an unterminated quote, is an error.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut scratch = Vec::new();
    let mut spans = Vec::new();
    split_inline(line, &mut scratch, &mut spans)?;
    Ok(spans.iter().map(|&(start, len)| scratch[start..start + len].to_vec()).collect())
}

/// A resumable parser for the requests a client sends.
///
/// One parser belongs to one connection. It keeps its vectors between
/// requests, so steady-state parsing does not allocate, and it remembers how
/// far it got in an incomplete request so that data arriving in many small
/// reads is scanned only once.
#[derive(Debug)]
pub struct RequestParser {
    /// Argument spans: into the caller's buffer for multibulk requests, into
    /// `scratch` for inline ones.
    spans: Vec<(usize, usize)>,
    /// Unescaped inline arguments, back to back.
    scratch: Vec<u8>,
    /// Progress inside the current request.
    state: State,
    /// Whether the spans point into `scratch`.
    inline: bool,
    /// Whether the spans describe a complete request.
    complete: bool,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    /// Creates a parser with no partial request.
    pub fn new() -> Self {
        RequestParser { spans: Vec::new(), scratch: Vec::new(), state: State::Start, inline: false, complete: false }
    }

    /// Parses one request from the front of `buf`.
    ///
    /// * `Ok(None)`: more bytes are needed. Call again with the same buffer
    ///   start and more bytes appended; work already done is not repeated.
    /// * `Ok(Some(n))`: a request of `n` bytes was parsed; its arguments are
    ///   available through [`RequestParser::argv`] until the next call. With
    ///   zero arguments it is one Redis skips (an empty inline line, `*0`,
    ///   `*-1`): just consume the `n` bytes.
    /// * `Err(e)`: the client broke the protocol; reply `-ERR <e>` and close.
    ///   The parser is reset.
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, ProtocolError> {
        // Arguments of an earlier request must not be readable against a
        // buffer they no longer describe.
        self.complete = false;
        // A buffer shorter than what was already examined means the caller
        // dropped bytes without calling reset; starting over beats indexing
        // out of bounds.
        if buf.len() < self.state.examined() {
            self.reset();
        }
        let result = self.parse_inner(buf, limits);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// The body of [`RequestParser::parse`]; split out so errors can reset
    /// the state in one place.
    fn parse_inner(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, ProtocolError> {
        match self.state {
            State::Start => {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                self.begin_request();
                if first == b'*' {
                    self.parse_count(buf, limits, 1)
                } else {
                    self.inline = true;
                    self.parse_inline(buf, limits, 0)
                }
            }
            State::Inline { scanned } => self.parse_inline(buf, limits, scanned),
            State::Count { scanned } => self.parse_count(buf, limits, scanned),
            State::Bulks { remaining, pos, bulk_len, scanned } => {
                self.parse_bulks(buf, limits, remaining, pos, bulk_len, scanned)
            }
        }
    }

    /// Clears what the previous request left behind.
    #[inline]
    fn begin_request(&mut self) {
        self.complete = false;
        self.inline = false;
        if self.spans.capacity() > SPANS_KEEP_CAPACITY {
            self.spans = Vec::new();
        } else {
            self.spans.clear();
        }
    }

    /// Parses an inline request whose first `scanned` bytes hold no newline.
    fn parse_inline(&mut self, buf: &[u8], limits: &Limits, scanned: usize) -> Result<Option<usize>, ProtocolError> {
        let newline = match scan(buf, scanned, b'\n') {
            Scan::Found(i) => i,
            Scan::Nul(i) => return self.wait_inline(buf, limits, i),
            Scan::Missing => return self.wait_inline(buf, limits, buf.len()),
        };
        let end = if newline > 0 && buf[newline - 1] == b'\r' { newline - 1 } else { newline };
        if self.scratch.capacity() > SCRATCH_KEEP_CAPACITY {
            self.scratch = Vec::new();
        } else {
            self.scratch.clear();
        }
        split_inline(&buf[..end], &mut self.scratch, &mut self.spans)?;
        self.finish(newline + 1)
    }

    /// Handles an inline request with no newline yet.
    fn wait_inline(&mut self, buf: &[u8], limits: &Limits, scanned: usize) -> Result<Option<usize>, ProtocolError> {
        if buf.len() > limits.max_inline_len {
            return Err(ProtocolError::TooBigInlineRequest);
        }
        self.state = State::Inline { scanned };
        Ok(None)
    }

    /// Parses the `*<n>` line; `[1, scanned)` is known to hold no `\r`.
    fn parse_count(&mut self, buf: &[u8], limits: &Limits, scanned: usize) -> Result<Option<usize>, ProtocolError> {
        let cr = match scan(buf, scanned, b'\r') {
            Scan::Found(i) => i,
            Scan::Nul(i) => return self.wait_count(buf, limits, i),
            Scan::Missing => return self.wait_count(buf, limits, buf.len()),
        };
        // Redis wants one more byte after the '\r' but never checks it.
        if cr + 1 >= buf.len() {
            self.state = State::Count { scanned: cr };
            return Ok(None);
        }
        let count = match string2ll(&buf[1..cr]) {
            Some(n) if n <= 0 || (n as u64) <= limits.max_multibulk_len as u64 => n,
            _ => return Err(ProtocolError::InvalidMultibulkLength),
        };
        if limits.unauthenticated && count > UNAUTHENTICATED_MAX_ARGS {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        let pos = cr + 2;
        if count <= 0 {
            return self.finish(pos);
        }
        self.parse_bulks(buf, limits, count as u64, pos, None, pos)
    }

    /// Handles a `*` line with no `\r` yet.
    fn wait_count(&mut self, buf: &[u8], limits: &Limits, scanned: usize) -> Result<Option<usize>, ProtocolError> {
        if buf.len() > limits.max_inline_len {
            return Err(ProtocolError::TooBigMultibulkCount);
        }
        self.state = State::Count { scanned };
        Ok(None)
    }

    /// Reads bulk headers and payloads until the request is complete or the
    /// buffer runs out.
    fn parse_bulks(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        mut remaining: u64,
        mut pos: usize,
        mut bulk_len: Option<usize>,
        mut scanned: usize,
    ) -> Result<Option<usize>, ProtocolError> {
        while remaining > 0 {
            let len = match bulk_len {
                Some(len) => len,
                None => {
                    let cr = match scan(buf, scanned, b'\r') {
                        Scan::Found(i) => i,
                        other => {
                            if buf.len() - pos > limits.max_inline_len {
                                return Err(ProtocolError::TooBigBulkCount);
                            }
                            scanned = match other {
                                Scan::Nul(i) => i,
                                _ => buf.len(),
                            };
                            break;
                        }
                    };
                    if cr + 1 >= buf.len() {
                        scanned = cr;
                        break;
                    }
                    if buf[pos] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[pos]));
                    }
                    let len = match string2ll(&buf[pos + 1..cr]) {
                        Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_len as u64 => n,
                        _ => return Err(ProtocolError::InvalidBulkLength),
                    };
                    if limits.unauthenticated && len > UNAUTHENTICATED_MAX_BULK {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    pos = cr + 2;
                    // The length fits: it is at most max_bulk_len, a usize.
                    len as usize
                }
            };
            // The payload and the two bytes after it must all be present;
            // those two bytes are skipped unchecked, as Redis does.
            let available = buf.len() - pos;
            if available < 2 || available - 2 < len {
                bulk_len = Some(len);
                break;
            }
            self.spans.push((pos, len));
            pos += len + 2;
            remaining -= 1;
            bulk_len = None;
            scanned = pos;
        }
        if remaining == 0 {
            return self.finish(pos);
        }
        self.state = State::Bulks { remaining, pos, bulk_len, scanned };
        Ok(None)
    }

    /// Marks the current request complete after `consumed` bytes.
    #[inline]
    fn finish(&mut self, consumed: usize) -> Result<Option<usize>, ProtocolError> {
        self.state = State::Start;
        self.complete = true;
        Ok(Some(consumed))
    }

    /// The arguments of the request the last call to
    /// [`RequestParser::parse`] returned `Ok(Some(_))` for. `buf` must be the
    /// buffer given to that call. Empty when no request is complete.
    #[inline]
    pub fn argv<'a>(&'a self, buf: &'a [u8]) -> Argv<'a> {
        let spans: &[(usize, usize)] = if self.complete { &self.spans } else { &[] };
        let base = if self.inline { &self.scratch[..] } else { buf };
        Argv { base, spans }
    }

    /// Forgets any partial progress, for when the caller discarded its
    /// buffer.
    pub fn reset(&mut self) {
        self.state = State::Start;
        self.complete = false;
        self.inline = false;
        self.spans.clear();
    }
}

/// The arguments of one parsed request, borrowed from the caller's buffer or
/// from the parser.
#[derive(Clone, Copy)]
pub struct Argv<'a> {
    /// The bytes the spans index into.
    base: &'a [u8],
    /// `(start, len)` of each argument within `base`.
    spans: &'a [(usize, usize)],
}

impl<'a> Argv<'a> {
    /// Number of arguments.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no arguments (a request Redis skips).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`; panics when `i >= len()`, like slice indexing.
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (start, len) = self.spans[i];
        &self.base[start..start + len]
    }

    /// The arguments in order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let base = self.base;
        self.spans.iter().map(move |&(start, len)| &base[start..start + len])
    }

    /// Copies the arguments out, for tests and slow paths.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

impl fmt::Debug for Argv<'_> {
    // Showing the arguments rather than the raw spans makes test failures
    // readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|a| String::from_utf8_lossy(a))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// How parsing a whole input ended.
    #[derive(Debug, PartialEq)]
    enum End {
        /// Every byte was consumed.
        Done,
        /// Bytes are left over waiting for more input.
        Incomplete,
        /// The client broke the protocol.
        Err(ProtocolError),
    }

    /// Parses `input` as one buffer, returning every request's arguments
    /// (skipped requests as empty lists) and how it ended.
    fn parse_whole(input: &[u8], limits: &Limits) -> (Vec<Vec<Vec<u8>>>, End) {
        let mut parser = RequestParser::new();
        let mut out = Vec::new();
        let mut off = 0;
        loop {
            if off == input.len() {
                return (out, End::Done);
            }
            match parser.parse(&input[off..], limits) {
                Ok(Some(n)) => {
                    assert!(n > 0 && off + n <= input.len());
                    out.push(parser.argv(&input[off..]).to_vec());
                    off += n;
                }
                Ok(None) => return (out, End::Incomplete),
                Err(e) => return (out, End::Err(e)),
            }
        }
    }

    /// Feeds `input` in the given chunks the way a connection does: append,
    /// parse everything possible, drop what was consumed.
    fn parse_chunked(input: &[u8], cuts: &[usize], limits: &Limits) -> (Vec<Vec<Vec<u8>>>, End) {
        let mut parser = RequestParser::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < input.len()).collect();
        bounds.sort_unstable();
        bounds.push(input.len());
        let mut prev = 0;
        for &b in &bounds {
            pending.extend_from_slice(&input[prev..b]);
            prev = b;
            loop {
                match parser.parse(&pending, limits) {
                    Ok(Some(n)) => {
                        assert!(n > 0 && n <= pending.len());
                        out.push(parser.argv(&pending).to_vec());
                        pending.drain(..n);
                    }
                    Ok(None) => break,
                    Err(e) => return (out, End::Err(e)),
                }
            }
        }
        let end = if pending.is_empty() { End::Done } else { End::Incomplete };
        (out, end)
    }

    /// Encodes argument lists as multibulk requests.
    fn encode(cmds: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for cmd in cmds {
            out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
            for arg in cmd {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    fn args(list: &[&[u8]]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.to_vec()).collect()
    }

    fn unauth() -> Limits {
        Limits { unauthenticated: true, ..Limits::default() }
    }

    #[test]
    fn string2ll_matches_redis() {
        let cases: &[(&[u8], Option<i64>)] = &[
            (b"0", Some(0)),
            (b"1", Some(1)),
            (b"-1", Some(-1)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-9223372036854775809", None),
            (b"18446744073709551616", None),
            (b"", None),
            (b"-", None),
            (b"-0", None),
            (b"00", None),
            (b"01", None),
            (b"+1", None),
            (b" 1", None),
            (b"1 ", None),
            (b"1a", None),
            (b"000000000000000000001", None),
        ];
        for (input, want) in cases {
            assert_eq!(string2ll(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn table() {
        let d = Limits::default();
        let u = unauth();
        let big_count_ok = [b"*".as_slice(), &[b'1'; 65535]].concat();
        let big_count_err = [b"*".as_slice(), &[b'1'; 65536]].concat();
        let far_cr = [b"*".as_slice(), &[b'x'; 70000], b"\r\n"].concat();
        let big_bulk_ok = [b"*1\r\n".as_slice(), &[b'1'; 65536]].concat();
        let big_bulk_err = [b"*1\r\n".as_slice(), &[b'1'; 65537]].concat();
        let big_inline_ok = [b"PING".as_slice(), &[b'x'; 65532]].concat();
        let big_inline_err = [b"PING".as_slice(), &[b'x'; 65533]].concat();
        let nul_inline_err = [b"PING\0".as_slice(), &[b'x'; 70000], b"\r\n"].concat();
        let no_dollar_far = [b"*2\r\n$3\r\nGET\r\n".as_slice(), &[b'x'; 70000], b"\r\n"].concat();
        type Case<'a> = (&'a [u8], &'a Limits, Vec<Vec<Vec<u8>>>, End);
        let cases: Vec<Case> = vec![
            // Well-formed multibulk.
            (b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n", &d, vec![args(&[b"SET", b"a", b"b"])], End::Done),
            (
                b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
                &d,
                vec![args(&[b"PING"]), args(&[b"ECHO", b""])],
                End::Done,
            ),
            (b"*1\r\n$6\r\n\r\n\0x\r\n\r\n", &d, vec![args(&[b"\r\n\0x\r\n"])], End::Done),
            // Empty requests Redis skips.
            (b"*0\r\n", &d, vec![vec![]], End::Done),
            (b"*-1\r\n", &d, vec![vec![]], End::Done),
            (b"*-5\r\n*1\r\n$1\r\nx\r\n", &d, vec![vec![], args(&[b"x"])], End::Done),
            // The byte after '\r' and the two after a payload go unchecked.
            (b"*1\rX$4\r\nPING\r\n", &d, vec![args(&[b"PING"])], End::Done),
            (b"*1\r\n$4\rXPING\r\n", &d, vec![args(&[b"PING"])], End::Done),
            (b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", &d, vec![args(&[b"PING"]), args(&[b"PING"])], End::Done),
            // Incomplete input waits.
            (b"*", &d, vec![], End::Incomplete),
            (b"*1\r", &d, vec![], End::Incomplete),
            (b"*1\r\n$3\r", &d, vec![], End::Incomplete),
            (b"*1\r\n$4\r\nPING", &d, vec![], End::Incomplete),
            (b"*1\r\n$4\r\nPING\r", &d, vec![], End::Incomplete),
            (b"*2147483647\r\n", &d, vec![], End::Incomplete),
            (b"*1048577\r\n", &d, vec![], End::Incomplete),
            (b"*1\r\n$536870912\r\n", &d, vec![], End::Incomplete),
            // A NUL hides the line end from Redis' strchr.
            (b"PING\0\r\n", &d, vec![], End::Incomplete),
            (b"*1\0\r\n$4\r\nPING\r\n", &d, vec![], End::Incomplete),
            (b"*1\r\n$4\0\r\nPING\r\n", &d, vec![], End::Incomplete),
            (&nul_inline_err, &d, vec![], End::Err(ProtocolError::TooBigInlineRequest)),
            // Multibulk count errors.
            (b"*abc\r\n", &d, vec![], End::Err(ProtocolError::InvalidMultibulkLength)),
            (b"*+1\r\n", &d, vec![], End::Err(ProtocolError::InvalidMultibulkLength)),
            (b"*01\r\n", &d, vec![], End::Err(ProtocolError::InvalidMultibulkLength)),
            (b"*-0\r\n", &d, vec![], End::Err(ProtocolError::InvalidMultibulkLength)),
            (b"*\r\n", &d, vec![], End::Err(ProtocolError::InvalidMultibulkLength)),
            (b"*2147483648\r\n", &d, vec![], End::Err(ProtocolError::InvalidMultibulkLength)),
            (&far_cr, &d, vec![], End::Err(ProtocolError::InvalidMultibulkLength)),
            (&big_count_ok, &d, vec![], End::Incomplete),
            (&big_count_err, &d, vec![], End::Err(ProtocolError::TooBigMultibulkCount)),
            // Bulk header errors.
            (b"*1\r\n+PING\r\n", &d, vec![], End::Err(ProtocolError::ExpectedDollar(b'+'))),
            (b"*1\r\n\r\n", &d, vec![], End::Err(ProtocolError::ExpectedDollar(b'\r'))),
            (&no_dollar_far, &d, vec![], End::Err(ProtocolError::ExpectedDollar(b'x'))),
            (b"*1\r\n$-1\r\n", &d, vec![], End::Err(ProtocolError::InvalidBulkLength)),
            (b"*1\r\n$01\r\n", &d, vec![], End::Err(ProtocolError::InvalidBulkLength)),
            (b"*1\r\n$\r\n", &d, vec![], End::Err(ProtocolError::InvalidBulkLength)),
            (b"*1\r\n$+1\r\n", &d, vec![], End::Err(ProtocolError::InvalidBulkLength)),
            (b"*1\r\n$1 \r\n", &d, vec![], End::Err(ProtocolError::InvalidBulkLength)),
            (b"*1\r\n$536870913\r\n", &d, vec![], End::Err(ProtocolError::InvalidBulkLength)),
            (b"*3\r\n$1\r\nx\r\n$-1\r\n", &d, vec![], End::Err(ProtocolError::InvalidBulkLength)),
            (&big_bulk_ok, &d, vec![], End::Incomplete),
            (&big_bulk_err, &d, vec![], End::Err(ProtocolError::TooBigBulkCount)),
            // Limits before authentication, checked after the absolute ones.
            (b"*11\r\n", &u, vec![], End::Err(ProtocolError::UnauthenticatedMultibulkLength)),
            (b"*10\r\n", &u, vec![], End::Incomplete),
            (b"*2147483648\r\n", &u, vec![], End::Err(ProtocolError::InvalidMultibulkLength)),
            (b"*1\r\n$16385\r\n", &u, vec![], End::Err(ProtocolError::UnauthenticatedBulkLength)),
            (b"*1\r\n$16384\r\n", &u, vec![], End::Incomplete),
            (b"*1\r\n$536870913\r\n", &u, vec![], End::Err(ProtocolError::InvalidBulkLength)),
            // Inline requests.
            (b"PING\r\n", &d, vec![args(&[b"PING"])], End::Done),
            (b"PING\n", &d, vec![args(&[b"PING"])], End::Done),
            (b"PING", &d, vec![], End::Incomplete),
            (b"PING\r", &d, vec![], End::Incomplete),
            (b"\r\n\n   \r\nPING\r\n", &d, vec![vec![], vec![], vec![], args(&[b"PING"])], End::Done),
            (b"  SET  a\t b  \r\n", &d, vec![args(&[b"SET", b"a", b"b"])], End::Done),
            (b"ECHO a\rb\r\n", &d, vec![args(&[b"ECHO", b"a", b"b"])], End::Done),
            (b"\x0bx\r\n", &d, vec![args(&[b"x"])], End::Done),
            (b"x\x0by\x0cz\r\n", &d, vec![args(&[b"x\x0by\x0cz"])], End::Done),
            (b"ECHO \"a\\x41\\n\" 'b\\'c'\r\n", &d, vec![args(&[b"ECHO", b"aA\n", b"b'c"])], End::Done),
            (b"\"\\t\\r\\b\\a\\\\\\\"\\q\"\r\n", &d, vec![args(&[b"\t\r\x08\x07\\\"q"])], End::Done),
            (b"\"\\xff\\x0A\\xZZ\\x4\"\r\n", &d, vec![args(&[b"\xff\nxZZx4"])], End::Done),
            (b"'a\\nb\\\\x'\r\n", &d, vec![args(&[b"a\\nb\\\\x"])], End::Done),
            // The last backslash escapes the closing quote.
            (b"'a\\\\'\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (b"\"\" ''\r\n", &d, vec![args(&[b"", b""])], End::Done),
            (b"a\"b c\"\r\n", &d, vec![args(&[b"ab c"])], End::Done),
            (b"a'b c'd\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (b"\"x\"\x0by\r\n", &d, vec![args(&[b"x", b"y"])], End::Done),
            (b"ECHO \"a\"b\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (b"ECHO \"ab\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (b"ECHO 'ab\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (b"ECHO \"a\\\"\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (b"ECHO \"a\\\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (b"ECHO 'a\\'\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (b"ECHO \"a\"\"b\"\r\n", &d, vec![], End::Err(ProtocolError::UnbalancedQuotes)),
            (&big_inline_ok, &d, vec![], End::Incomplete),
            (&big_inline_err, &d, vec![], End::Err(ProtocolError::TooBigInlineRequest)),
            // Inline and multibulk mix in one pipeline.
            (
                b"PING\r\n*1\r\n$4\r\nPING\r\nGET k\n",
                &d,
                vec![args(&[b"PING"]), args(&[b"PING"]), args(&[b"GET", b"k"])],
                End::Done,
            ),
        ];
        for (input, limits, want_args, want_end) in cases {
            let got = parse_whole(input, limits);
            assert_eq!(
                got,
                (want_args, want_end),
                "input {:?}",
                String::from_utf8_lossy(&input[..input.len().min(60)])
            );
        }
    }

    #[test]
    fn error_texts() {
        let cases = [
            (ProtocolError::TooBigMultibulkCount, "Protocol error: too big mbulk count string"),
            (ProtocolError::InvalidMultibulkLength, "Protocol error: invalid multibulk length"),
            (ProtocolError::UnauthenticatedMultibulkLength, "Protocol error: unauthenticated multibulk length"),
            (ProtocolError::TooBigBulkCount, "Protocol error: too big bulk count string"),
            (ProtocolError::ExpectedDollar(b'+'), "Protocol error: expected '$', got '+'"),
            (ProtocolError::ExpectedDollar(b'\r'), "Protocol error: expected '$', got ' '"),
            (ProtocolError::ExpectedDollar(b'\n'), "Protocol error: expected '$', got ' '"),
            (ProtocolError::InvalidBulkLength, "Protocol error: invalid bulk length"),
            (ProtocolError::UnauthenticatedBulkLength, "Protocol error: unauthenticated bulk length"),
            (ProtocolError::TooBigInlineRequest, "Protocol error: too big inline request"),
            (ProtocolError::UnbalancedQuotes, "Protocol error: unbalanced quotes in request"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
            assert_eq!(err.message(), text);
            assert_eq!(err.message_bytes(), text.as_bytes());
        }
        // A non-UTF-8 byte is sent raw, as Redis' %c does.
        assert_eq!(ProtocolError::ExpectedDollar(0xff).message_bytes(), b"Protocol error: expected '$', got '\xff'");
    }

    #[test]
    fn every_split_point_gives_the_same_requests() {
        let pipeline: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n\
PING\r\n*0\r\n\r\nECHO \"a b\\x41\" 'c'\n*-1\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
        let d = Limits::default();
        let whole = parse_whole(pipeline, &d);
        assert_eq!(whole.1, End::Done);
        assert_eq!(whole.0.len(), 7);
        for cut in 0..=pipeline.len() {
            assert_eq!(parse_chunked(pipeline, &[cut], &d), whole, "cut at {cut}");
        }
        let every: Vec<usize> = (0..pipeline.len()).collect();
        assert_eq!(parse_chunked(pipeline, &every, &d), whole);
    }

    #[test]
    fn errors_are_found_at_every_split_point() {
        let input: &[u8] = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n:1\r\n";
        let d = Limits::default();
        let every: Vec<usize> = (0..input.len()).collect();
        let want = (vec![args(&[b"PING"])], End::Err(ProtocolError::ExpectedDollar(b':')));
        assert_eq!(parse_whole(input, &d), want);
        assert_eq!(parse_chunked(input, &every, &d), want);
    }

    #[test]
    fn large_bulk_in_many_reads() {
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let cmds = vec![vec![b"SET".to_vec(), b"k".to_vec(), payload]];
        let input = encode(&cmds);
        let cuts: Vec<usize> = (0..input.len()).step_by(1000).collect();
        assert_eq!(parse_chunked(&input, &cuts, &Limits::default()), (cmds, End::Done));
    }

    #[test]
    fn many_arguments_in_many_reads() {
        let cmd: Vec<Vec<u8>> = (0..5000).map(|i| format!("arg{i}").into_bytes()).collect();
        let cmds = vec![cmd];
        let input = encode(&cmds);
        let cuts: Vec<usize> = (0..input.len()).step_by(7).collect();
        assert_eq!(parse_chunked(&input, &cuts, &Limits::default()), (cmds.clone(), End::Done));
        // The oversized span vector is released by the next request.
        let mut parser = RequestParser::new();
        let d = Limits::default();
        assert_eq!(parser.parse(&input, &d), Ok(Some(input.len())));
        assert_eq!(parser.argv(&input).len(), 5000);
        assert_eq!(parser.parse(b"*0\r\n", &d), Ok(Some(4)));
        assert!(parser.spans.capacity() <= SPANS_KEEP_CAPACITY);
    }

    #[test]
    fn argv_accessors_and_reset() {
        let d = Limits::default();
        let mut parser = RequestParser::new();
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert_eq!(parser.parse(&buf[..10], &d), Ok(None));
        assert!(parser.argv(&buf[..10]).is_empty());
        assert_eq!(parser.parse(buf, &d), Ok(Some(buf.len())));
        let argv = parser.argv(buf);
        assert_eq!(argv.len(), 2);
        assert!(!argv.is_empty());
        assert_eq!(argv.get(0), b"GET");
        assert_eq!(argv.iter().collect::<Vec<_>>(), vec![&b"GET"[..], &b"k"[..]]);
        assert_eq!(format!("{argv:?}"), r#"["GET", "k"]"#);

        // After reset a new buffer starts from scratch.
        assert_eq!(parser.parse(b"*1\r\n$4\r\nPI", &d), Ok(None));
        parser.reset();
        assert_eq!(parser.parse(b"PING\r\n", &d), Ok(Some(6)));
        assert_eq!(parser.argv(b"PING\r\n").to_vec(), args(&[b"PING"]));

        // An error resets the parser too.
        assert_eq!(parser.parse(b"*x\r\n", &d), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parser.parse(b"*1\r\n$1\r\na\r\n", &d), Ok(Some(11)));
        assert_eq!(parser.parse(b"", &d), Ok(None));

        // A caller that shrinks its buffer without reset gets a fresh start
        // instead of a panic.
        assert_eq!(parser.parse(b"*2\r\n$3\r\nGET\r\n$1\r", &d), Ok(None));
        assert_eq!(parser.parse(b"PING\r\n", &d), Ok(Some(6)));
        assert_eq!(parser.argv(b"PING\r\n").to_vec(), args(&[b"PING"]));
        assert_eq!(parser.parse(b"", &d), Ok(None));
        assert!(parser.argv(b"").is_empty());
    }

    /// Quotes an argument for the inline form with `\xHH` escapes, which
    /// `sdssplitargs` must undo exactly.
    fn inline_quote(arg: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in arg {
            if b.is_ascii_alphanumeric() || b == b' ' {
                out.push(b);
            } else {
                out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            }
        }
        out.push(b'"');
        out
    }

    fn arb_cmds() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
        prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..6), 1..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn multibulk_round_trip(cmds in arb_cmds(), cuts in prop::collection::vec(0usize..400, 0..8)) {
            let input = encode(&cmds);
            prop_assert_eq!(parse_chunked(&input, &cuts, &Limits::default()), (cmds, End::Done));
        }

        #[test]
        fn inline_round_trip(cmds in arb_cmds(), cuts in prop::collection::vec(0usize..400, 0..8)) {
            let mut input = Vec::new();
            for cmd in &cmds {
                for (i, arg) in cmd.iter().enumerate() {
                    if i > 0 {
                        input.push(b' ');
                    }
                    input.extend_from_slice(&inline_quote(arg));
                }
                input.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(parse_chunked(&input, &cuts, &Limits::default()), (cmds, End::Done));
        }

        #[test]
        fn random_bytes_never_panic(
            input in prop::collection::vec(
                prop_oneof![
                    4 => any::<u8>(),
                    2 => Just(b'\r'),
                    2 => Just(b'\n'),
                    1 => Just(b'*'),
                    1 => Just(b'$'),
                    1 => Just(b'"'),
                    1 => Just(b'\''),
                    1 => Just(b'\\'),
                    1 => Just(0u8),
                    2 => b'0'..=b'9',
                ],
                0..300,
            ),
            cuts in prop::collection::vec(0usize..300, 0..6),
            max_inline in 4usize..80,
            max_bulk in 0usize..40,
            unauthenticated in any::<bool>(),
        ) {
            let limits = Limits {
                max_bulk_len: max_bulk,
                max_multibulk_len: 8,
                max_inline_len: max_inline,
                unauthenticated,
            };
            let _ = parse_whole(&input, &limits);
            let _ = parse_chunked(&input, &cuts, &limits);
        }

        #[test]
        fn mutated_pipelines_never_panic(
            cmds in arb_cmds(),
            edits in prop::collection::vec((0usize..400, any::<u8>(), 0u8..3), 1..6),
            cuts in prop::collection::vec(0usize..400, 0..6),
        ) {
            let mut input = encode(&cmds);
            for (at, byte, op) in edits {
                let at = at % (input.len() + 1);
                match op {
                    0 if at < input.len() => input[at] = byte,
                    1 => input.insert(at, byte),
                    _ if at < input.len() => { input.remove(at); }
                    _ => {}
                }
            }
            let limits = Limits::default();
            let whole = parse_whole(&input, &limits);
            let chunked = parse_chunked(&input, &cuts, &limits);
            // Small inputs never reach the size limits, which are the only
            // place where read boundaries can change Redis' answer.
            prop_assert_eq!(whole, chunked);
        }
    }
}
