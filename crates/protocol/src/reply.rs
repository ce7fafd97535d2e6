//! Reply encoding straight into a connection's output buffer.
//!
//! Each method appends one RESP element. Aggregates are written as a header
//! ([`ReplyWriter::array`], [`ReplyWriter::map`], ...) followed by their
//! elements, so no intermediate reply tree is built. RESP3-only types fall
//! back to the RESP2 shape Redis 7.0 uses for them.

/// The protocol version a client negotiated with `HELLO`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Resp {
    /// RESP2, the default for new connections.
    V2,
    /// RESP3, selected with `HELLO 3`.
    V3,
}

/// Two ASCII digits for every value below 100, so integers are formatted two
/// digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Formats `v` into the tail of a stack buffer and returns the used part,
/// so callers can learn the length before copying.
#[inline]
fn u64_digits(mut v: u64, tmp: &mut [u8; 20]) -> &[u8] {
    let mut i = tmp.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        tmp[i] = b'0' + v as u8;
    }
    &tmp[i..]
}

/// Appends the decimal form of `v` (as C's `%lld` prints it) without
/// allocating anything but the output growth.
#[inline]
pub fn format_i64(v: i64, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    let mut tmp = [0u8; 20];
    out.extend_from_slice(u64_digits(v.unsigned_abs(), &mut tmp));
}

/// Appends the decimal form of `v`.
#[inline]
pub fn format_u64(v: u64, out: &mut Vec<u8>) {
    let mut tmp = [0u8; 20];
    out.extend_from_slice(u64_digits(v, &mut tmp));
}

/// Appends `d` formatted by C's `printf("%.17g")`, which is what Redis 7.0
/// uses for doubles (`inf`, `-inf`, `nan` and `-nan` included).
///
/// This calls the C library's `snprintf` so the text matches Redis exactly,
/// including the exponent form (`1e+21`). The process must use the "C"
/// numeric locale (the default unless something calls `setlocale`),
/// otherwise the decimal point could become a comma.
pub fn format_double_g17(d: f64, out: &mut Vec<u8>) {
    let mut tmp = [0u8; G17_BUF];
    let n = g17(d, &mut tmp);
    out.extend_from_slice(&tmp[..n]);
}

/// "%.17g" needs at most 24 bytes ("-1.2345678901234567e-308") plus the
/// terminating NUL, so this size never truncates.
const G17_BUF: usize = 32;

/// Formats `d` with "%.17g" into `tmp` and returns the text length.
#[inline]
fn g17(d: f64, tmp: &mut [u8; G17_BUF]) -> usize {
    // Integral values below 10^15 print as their digits under "%.17g" (no exponent, no
    // point): format those as integers, which costs a fraction of `snprintf` (sorted-set
    // scores are mostly such). -0 keeps its sign through `snprintf`.
    if d.fract() == 0.0 && d.abs() < 1e15 && !(d == 0.0 && d.is_sign_negative()) {
        let v = d as i64;
        let mut digits = [0u8; 20];
        let text = u64_digits(v.unsigned_abs(), &mut digits);
        let sign = usize::from(v < 0);
        tmp[0] = b'-';
        tmp[sign..sign + text.len()].copy_from_slice(text);
        return sign + text.len();
    }
    // SAFETY: the buffer is valid for `tmp.len()` bytes, the format string
    // is NUL-terminated and consumes exactly one double argument.
    let n = unsafe { libc::snprintf(tmp.as_mut_ptr().cast::<libc::c_char>(), tmp.len(), c"%.17g".as_ptr(), d) };
    // A negative result cannot happen for this format; clamping keeps the
    // slice in bounds regardless.
    usize::try_from(n).unwrap_or(0).min(tmp.len() - 1)
}

/// Appends `s` with every `\r` and `\n` turned into a space, so text from
/// users cannot break the framing of a one-line reply.
#[inline]
fn push_line_text(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(s.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.extend_from_slice(s);
    }
}

/// Encodes replies for one connection into `buf`.
#[derive(Clone, Debug)]
pub struct ReplyWriter {
    /// The encoded bytes not yet handed to the socket.
    pub buf: Vec<u8>,
    /// The protocol the client speaks; it decides how RESP3 types are sent.
    pub resp: Resp,
}

impl ReplyWriter {
    /// Creates a writer with an empty buffer.
    pub fn new(resp: Resp) -> Self {
        ReplyWriter { buf: Vec::new(), resp }
    }

    /// Writes `<prefix><n>\r\n`, the header shared by aggregates and bulks.
    #[inline]
    fn header(&mut self, prefix: u8, n: usize) {
        self.buf.push(prefix);
        format_u64(n as u64, &mut self.buf);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// True when the client speaks RESP3 (some replies change shape, not only encoding).
    #[inline]
    pub fn resp3(&self) -> bool {
        self.resp == Resp::V3
    }

    /// `+OK`.
    #[inline]
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string `+s`; any `\r` or `\n` in `s` becomes a space.
    #[inline]
    pub fn simple(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        push_line_text(&mut self.buf, s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error `-s`, where `s` includes the code but not the dash, e.g.
    /// `b"ERR syntax error"`.
    ///
    /// Like Redis' `addReplyErrorFormat`, trailing `\r`/`\n` are dropped and
    /// the ones inside become spaces, so a message can never break the
    /// protocol.
    pub fn error(&mut self, s: &[u8]) {
        let end = s.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |i| i + 1);
        self.buf.push(b'-');
        push_line_text(&mut self.buf, &s[..end]);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer `:v`.
    #[inline]
    pub fn int(&mut self, v: i64) {
        self.buf.push(b':');
        format_i64(v, &mut self.buf);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string `$len\r\n<b>\r\n`.
    #[inline]
    pub fn bulk(&mut self, b: &[u8]) {
        self.buf.reserve(b.len() + 16);
        self.header(b'$', b.len());
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `v`.
    #[inline]
    pub fn bulk_int(&mut self, v: i64) {
        let mut tmp = [0u8; 20];
        let digits = u64_digits(v.unsigned_abs(), &mut tmp);
        let neg = usize::from(v < 0);
        self.header(b'$', digits.len() + neg);
        if v < 0 {
            self.buf.push(b'-');
        }
        self.buf.extend_from_slice(digits);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null(&mut self) {
        match self.resp {
            Resp::V2 => self.buf.extend_from_slice(b"$-1\r\n"),
            Resp::V3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null_array(&mut self) {
        match self.resp {
            Resp::V2 => self.buf.extend_from_slice(b"*-1\r\n"),
            Resp::V3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// An array header `*n`; the caller writes the `n` elements next.
    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n);
    }

    /// A map header: `%n` in RESP3, an array of `2n` flat elements in RESP2.
    /// The caller writes `n` key/value pairs next.
    #[inline]
    pub fn map(&mut self, n: usize) {
        match self.resp {
            Resp::V2 => self.header(b'*', n * 2),
            Resp::V3 => self.header(b'%', n),
        }
    }

    /// A set header: `~n` in RESP3, `*n` in RESP2.
    #[inline]
    pub fn set(&mut self, n: usize) {
        match self.resp {
            Resp::V2 => self.header(b'*', n),
            Resp::V3 => self.header(b'~', n),
        }
    }

    /// An out-of-band push header: `>n` in RESP3, `*n` in RESP2 (where
    /// Pub/Sub messages are plain arrays).
    #[inline]
    pub fn push(&mut self, n: usize) {
        match self.resp {
            Resp::V2 => self.header(b'*', n),
            Resp::V3 => self.header(b'>', n),
        }
    }

    /// An attribute header `|n` in RESP3, followed by `n` key/value pairs
    /// and then the reply they describe.
    ///
    /// RESP2 has no attributes, so nothing is written there: the caller must
    /// check [`ReplyWriter::resp`] and skip writing the pairs too, sending
    /// only the reply itself.
    #[inline]
    pub fn attribute(&mut self, n: usize) {
        if self.resp == Resp::V3 {
            self.header(b'|', n);
        }
    }

    /// A double, exactly as Redis 7.0's `addReplyDouble`: infinities are
    /// spelled `inf`/`-inf`, everything else (NaN included) is `%.17g`; RESP2
    /// sends it as a bulk string, RESP3 as `,<text>`.
    pub fn double(&mut self, d: f64) {
        if d.is_infinite() {
            let text: &[u8] = if d > 0.0 { b"inf" } else { b"-inf" };
            match self.resp {
                Resp::V2 => self.bulk(text),
                Resp::V3 => {
                    self.buf.push(b',');
                    self.buf.extend_from_slice(text);
                    self.buf.extend_from_slice(b"\r\n");
                }
            }
            return;
        }
        match self.resp {
            Resp::V2 => {
                // Formatting on the stack first gives the bulk length
                // without a temporary allocation.
                let mut tmp = [0u8; G17_BUF];
                let n = g17(d, &mut tmp);
                self.bulk(&tmp[..n]);
            }
            Resp::V3 => {
                self.buf.push(b',');
                format_double_g17(d, &mut self.buf);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    #[inline]
    pub fn boolean(&mut self, b: bool) {
        let bytes: &[u8] = match (self.resp, b) {
            (Resp::V2, true) => b":1\r\n",
            (Resp::V2, false) => b":0\r\n",
            (Resp::V3, true) => b"#t\r\n",
            (Resp::V3, false) => b"#f\r\n",
        };
        self.buf.extend_from_slice(bytes);
    }

    /// A big number `(digits` in RESP3, a bulk string in RESP2. The caller
    /// guarantees `digits` is a valid integer text.
    pub fn big_number(&mut self, digits: &[u8]) {
        match self.resp {
            Resp::V2 => self.bulk(digits),
            Resp::V3 => {
                self.buf.push(b'(');
                self.buf.extend_from_slice(digits);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A verbatim string `=len\r\nfmt:text\r\n` in RESP3 (e.g. format
    /// `b"txt"`), a bulk string of `text` in RESP2.
    pub fn verbatim(&mut self, format: &[u8; 3], text: &[u8]) {
        match self.resp {
            Resp::V2 => self.bulk(text),
            Resp::V3 => {
                self.buf.reserve(text.len() + 20);
                self.header(b'=', text.len() + 4);
                self.buf.extend_from_slice(format);
                self.buf.push(b':');
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Appends bytes that are already valid RESP for this client.
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Number of encoded bytes waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is waiting.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the encoded bytes, leaving an empty buffer behind.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Drops the encoded bytes but keeps the allocation for reuse.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs `f` on a fresh writer for each protocol and returns both outputs.
    fn both(f: impl Fn(&mut ReplyWriter)) -> (Vec<u8>, Vec<u8>) {
        let mut v2 = ReplyWriter::new(Resp::V2);
        let mut v3 = ReplyWriter::new(Resp::V3);
        f(&mut v2);
        f(&mut v3);
        (v2.take(), v3.take())
    }

    /// Asserts the RESP2 and RESP3 encodings of one call.
    #[track_caller]
    fn check(f: impl Fn(&mut ReplyWriter), v2: &[u8], v3: &[u8]) {
        let (got2, got3) = both(f);
        assert_eq!(String::from_utf8_lossy(&got2), String::from_utf8_lossy(v2), "RESP2");
        assert_eq!(String::from_utf8_lossy(&got3), String::from_utf8_lossy(v3), "RESP3");
    }

    #[test]
    fn scalars() {
        check(|w| w.ok(), b"+OK\r\n", b"+OK\r\n");
        check(|w| w.simple(b"PONG"), b"+PONG\r\n", b"+PONG\r\n");
        // Status text is mapped, not trimmed, as Redis does for Lua status
        // replies.
        check(|w| w.simple(b"my\r\nok\n"), b"+my  ok \r\n", b"+my  ok \r\n");
        check(|w| w.error(b"ERR syntax error"), b"-ERR syntax error\r\n", b"-ERR syntax error\r\n");
        check(|w| w.error(b"ERR my\r\nerr\n"), b"-ERR my  err\r\n", b"-ERR my  err\r\n");
        check(|w| w.error(b"ERR x\ny\r\n"), b"-ERR x y\r\n", b"-ERR x y\r\n");
        check(|w| w.int(0), b":0\r\n", b":0\r\n");
        check(|w| w.int(-42), b":-42\r\n", b":-42\r\n");
        check(|w| w.int(i64::MAX), b":9223372036854775807\r\n", b":9223372036854775807\r\n");
        check(|w| w.int(i64::MIN), b":-9223372036854775808\r\n", b":-9223372036854775808\r\n");
        check(|w| w.bulk(b"hello"), b"$5\r\nhello\r\n", b"$5\r\nhello\r\n");
        check(|w| w.bulk(b""), b"$0\r\n\r\n", b"$0\r\n\r\n");
        check(|w| w.bulk(b"a\r\nb"), b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n");
        check(|w| w.bulk_int(-1234), b"$5\r\n-1234\r\n", b"$5\r\n-1234\r\n");
        check(|w| w.bulk_int(7), b"$1\r\n7\r\n", b"$1\r\n7\r\n");
        check(|w| w.null(), b"$-1\r\n", b"_\r\n");
        check(|w| w.null_array(), b"*-1\r\n", b"_\r\n");
        check(|w| w.boolean(true), b":1\r\n", b"#t\r\n");
        check(|w| w.boolean(false), b":0\r\n", b"#f\r\n");
        check(
            |w| w.big_number(b"1234567999999999999999999999999999999"),
            b"$37\r\n1234567999999999999999999999999999999\r\n",
            b"(1234567999999999999999999999999999999\r\n",
        );
        check(
            |w| w.verbatim(b"txt", b"This is a verbatim\nstring"),
            b"$25\r\nThis is a verbatim\nstring\r\n",
            b"=29\r\ntxt:This is a verbatim\nstring\r\n",
        );
        check(|w| w.raw(b"+RAW\r\n"), b"+RAW\r\n", b"+RAW\r\n");
    }

    #[test]
    fn aggregates() {
        check(|w| w.array(3), b"*3\r\n", b"*3\r\n");
        check(|w| w.array(0), b"*0\r\n", b"*0\r\n");
        check(|w| w.map(3), b"*6\r\n", b"%3\r\n");
        check(|w| w.set(2), b"*2\r\n", b"~2\r\n");
        check(|w| w.push(3), b"*3\r\n", b">3\r\n");
        check(|w| w.attribute(1), b"", b"|1\r\n");
        // The reply of Redis' DEBUG PROTOCOL map, in both protocols.
        check(
            |w| {
                w.map(3);
                for i in 0..3 {
                    w.int(i);
                    w.boolean(i == 1);
                }
            },
            b"*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n",
            b"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n",
        );
    }

    #[test]
    fn doubles_match_redis_7_0() {
        // Texts taken from a real Redis 7.0.15 (ZSCORE in both protocols).
        let cases: &[(f64, &str)] = &[
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (1e21, "1e+21"),
            (100.0, "100"),
            (1e-7, "9.9999999999999995e-08"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (3.25, "3.25"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-2.5, "-2.5"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "4.9406564584124654e-324"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (f64::NAN, "nan"),
        ];
        for &(d, text) in cases {
            let mut out = Vec::new();
            format_double_g17(d, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), text);
            check(
                |w| w.double(d),
                format!("${}\r\n{text}\r\n", text.len()).as_bytes(),
                format!(",{text}\r\n").as_bytes(),
            );
        }
        check(|w| w.double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n");
        check(|w| w.double(f64::NEG_INFINITY), b"$4\r\n-inf\r\n", b",-inf\r\n");
    }

    #[test]
    fn buffer_management() {
        let mut w = ReplyWriter::new(Resp::V2);
        assert!(w.is_empty());
        w.ok();
        w.int(1);
        assert_eq!(w.len(), 9);
        let first = w.take();
        assert_eq!(first, b"+OK\r\n:1\r\n");
        assert!(w.is_empty());
        w.null();
        w.clear();
        assert_eq!(w.len(), 0);
    }

    /// `%.17g` written in Rust: round to 17 significant digits, then pick
    /// fixed or exponent notation and strip trailing zeros, as C specifies.
    fn g17_reference(d: f64) -> String {
        if d == 0.0 {
            return if d.is_sign_negative() { "-0".into() } else { "0".into() };
        }
        let sci = format!("{d:.16e}");
        let (mantissa, exp) = sci.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        let strip = |s: &str| -> String {
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s.to_string()
            }
        };
        if (-4..17).contains(&exp) {
            let decimals = (16 - exp) as usize;
            strip(&format!("{d:.decimals$}"))
        } else {
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{}e{sign}{:02}", strip(mantissa), exp.abs())
        }
    }

    proptest! {
        #[test]
        fn g17_agrees_with_reference(bits in any::<u64>()) {
            let d = f64::from_bits(bits);
            prop_assume!(d.is_finite());
            let mut out = Vec::new();
            format_double_g17(d, &mut out);
            prop_assert_eq!(String::from_utf8(out).unwrap(), g17_reference(d));
        }

        /// Integral doubles take the integer shortcut up to 10^15 and `snprintf` beyond;
        /// both print what "%.17g" prints.
        #[test]
        fn integral_doubles_agree_with_reference(v in -2_000_000_000_000_000i64..2_000_000_000_000_000, shift in 0u32..40) {
            for d in [v as f64, (v >> shift) as f64, -0.0, 1e15, -1e15, 999_999_999_999_999.0] {
                let mut out = Vec::new();
                format_double_g17(d, &mut out);
                prop_assert_eq!(String::from_utf8(out).unwrap(), g17_reference(d));
            }
        }

        #[test]
        fn integers_agree_with_std(v in any::<i64>()) {
            let mut out = Vec::new();
            format_i64(v, &mut out);
            prop_assert_eq!(out, v.to_string().into_bytes());
            let mut w = ReplyWriter::new(Resp::V3);
            w.bulk_int(v);
            let text = v.to_string();
            prop_assert_eq!(w.take(), format!("${}\r\n{text}\r\n", text.len()).into_bytes());
        }
    }
}
