//! Reading the commands of an AOF file (or of the tail after an RDB preamble).
//!
//! The format is what Redis appends: each command a RESP multibulk of bulk strings
//! (`*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument, `argc >= 1`), and between commands
//! annotation lines starting with `#` (Redis 7 writes `#TS:<unix time>\r\n` with
//! `aof-timestamp-enabled`), which are skipped.
//!
//! When the data stops early, the [`Reader`] says where the valid part ends, following Redis's
//! loader: after the last complete command, or before a `MULTI` whose `EXEC` never came (Redis
//! reverts such a transaction). With `aof-load-truncated yes` Redis cuts the file there and
//! goes on; otherwise it refuses to start. Anything that cannot be the beginning of a valid
//! file is corruption instead, which Redis never repairs by itself.
//!
//! Like Redis's loader (and unlike `redis-check-aof`), the valid part ends after the last
//! complete command, so annotations between it and a cut-off command are cut off too.
//!
//! Deliberate differences from Redis's loader, which parses with `atoi`/`strtol` and skips the
//! two bytes after an argument unchecked:
//!
//! * every line must be exactly a prefix, decimal digits and `\r\n`, and every argument must be
//!   followed by `\r\n` (the rules `redis-check-aof` applies), so a damaged length is caught
//!   where it is rather than commands later;
//! * an annotation line cut off by the end of the data is a truncated tail, where Redis would
//!   skip it and later append a command to the unterminated line;
//! * a cut inside a command inside an open `MULTI` is valid up to before the `MULTI` (as
//!   `redis-check-aof` says), where Redis first cuts after the last whole command and reverts
//!   the transaction only when it next starts.

use std::fmt;

/// One command read from the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// The arguments, borrowed from the data.
    pub argv: Vec<&'a [u8]>,
    /// Offset of the command's `*`.
    pub start: usize,
    /// Offset just past the command's last `\r\n`.
    pub end: usize,
}

/// What is wrong at the offset a [`ReadError::Corrupt`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A command must start with `*` (or be an annotation starting with `#`), an argument
    /// with `$`.
    Prefix {
        /// The byte required there.
        expected: u8,
        /// The byte found.
        found: u8,
    },
    /// The argument count after `*` is not a positive decimal number.
    MultibulkLength,
    /// The length after `$` is not a decimal number.
    BulkLength,
    /// A length line or an argument is not followed by `\r\n`.
    Newline {
        /// The two bytes found instead.
        found: [u8; 2],
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Problem::Prefix { expected, found } => {
                write!(f, "Expected prefix '{}', got: '{}'", expected as char, found.escape_ascii())
            }
            Problem::MultibulkLength => f.write_str("invalid multibulk length"),
            Problem::BulkLength => f.write_str("invalid bulk length"),
            // redis-check-aof's wording.
            Problem::Newline { found } => write!(f, "Expected \\r\\n, got: {:02x}{:02x}", found[0], found[1]),
        }
    }
}

/// Why the data does not end cleanly after its last command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The data ends inside a command (or annotation line), or inside a `MULTI` that has no
    /// `EXEC`. Everything up to `valid_up_to` is whole; Redis with `aof-load-truncated yes`
    /// truncates the file there (only if it is the last file of the manifest).
    Truncated {
        /// End of the last complete command before the cut, or before the open `MULTI` (the
        /// end of the command preceding it); the reader's starting offset if there is none.
        valid_up_to: usize,
        /// Whether the cut falls inside a `MULTI` without `EXEC`: the commands after the
        /// `MULTI` that were read must not be applied.
        open_multi: bool,
    },
    /// Bytes that no valid file contains.
    Corrupt {
        /// Offset of the first offending byte.
        offset: usize,
        /// Where the valid part ends, as for [`ReadError::Truncated`].
        valid_up_to: usize,
        /// What is wrong there.
        problem: Problem,
    },
}

impl ReadError {
    /// Where the valid part of the data ends.
    pub fn valid_up_to(&self) -> usize {
        match *self {
            ReadError::Truncated { valid_up_to, .. } | ReadError::Corrupt { valid_up_to, .. } => valid_up_to,
        }
    }

    /// Whether this is a truncated tail (which `aof-load-truncated` may cut off) rather than
    /// corruption.
    pub fn is_truncated(&self) -> bool {
        matches!(self, ReadError::Truncated { .. })
    }

    /// The message Redis logs when it refuses to load the AOF file `file` for this reason.
    pub fn redis_message(&self, file: &str) -> String {
        match self {
            ReadError::Truncated { .. } => format!(
                "Unexpected end of file reading the append only file {file}. You can: 1) Make a backup of your AOF \
                 file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the \
                 'aof-load-truncated' configuration option to yes and restart the server."
            ),
            ReadError::Corrupt { .. } => format!(
                "Bad file format reading the append only file {file}: make a backup of your AOF file, then use \
                 ./redis-check-aof --fix <filename.manifest>"
            ),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReadError::Truncated { valid_up_to, open_multi: false } => {
                write!(f, "Unexpected end of file reading the append only file (valid up to offset {valid_up_to})")
            }
            ReadError::Truncated { valid_up_to, open_multi: true } => write!(
                f,
                "Unexpected end of file reading the append only file: incomplete MULTI/EXEC transaction \
                 (valid up to offset {valid_up_to})"
            ),
            ReadError::Corrupt { offset, valid_up_to, problem } => write!(
                f,
                "Bad file format reading the append only file at offset {offset}: {problem} \
                 (valid up to offset {valid_up_to})"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// The outcome of one parsing step that can run out of data.
enum Step<T> {
    Done(T),
    /// The data ended first.
    Eof,
    /// Corruption at an offset.
    Bad(usize, Problem),
}

/// More digits than this cannot be a length Redis wrote (and would overflow on 32-bit).
const MAX_DIGITS: usize = 18;

/// Reads commands one by one from `data`, starting at an offset. Also an [`Iterator`] of
/// `Result<Command, ReadError>` that ends after the first error.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// End of the last complete command (or the starting offset).
    last_end: usize,
    /// `last_end` as it was before the open `MULTI`, if one is open.
    before_multi: Option<usize>,
    /// The final result, once reached; repeated on later calls.
    finished: Option<Result<(), ReadError>>,
    /// Whether the iterator has handed out the final error.
    reported: bool,
}

impl<'a> Reader<'a> {
    /// A reader of `data` from `offset` (0, or the end of an RDB preamble); offsets in results
    /// are offsets into `data`. An offset past the end is treated as the end.
    pub fn new(data: &'a [u8], offset: usize) -> Reader<'a> {
        let offset = offset.min(data.len());
        Reader { data, pos: offset, last_end: offset, before_multi: None, finished: None, reported: false }
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether a `MULTI` read so far has not met its `EXEC` yet.
    pub fn in_multi(&self) -> bool {
        self.before_multi.is_some()
    }

    /// The next command; `Ok(None)` when the data ends cleanly after a command (or is empty);
    /// an error when it ends early or is corrupt. After the end, the same result again.
    pub fn next_command(&mut self) -> Result<Option<Command<'a>>, ReadError> {
        if let Some(done) = self.finished {
            return done.map(|()| None);
        }
        match self.parse_command() {
            Step::Done(Some(cmd)) => {
                let name = cmd.argv[0];
                if name.eq_ignore_ascii_case(b"multi") {
                    // A nested MULTI is queued by Redis's loader, not started: keep the outer.
                    self.before_multi.get_or_insert(self.last_end);
                } else if name.eq_ignore_ascii_case(b"exec") {
                    self.before_multi = None;
                }
                self.last_end = cmd.end;
                Ok(Some(cmd))
            }
            Step::Done(None) => {
                let result = match self.before_multi {
                    Some(valid_up_to) => Err(ReadError::Truncated { valid_up_to, open_multi: true }),
                    None => Ok(()),
                };
                self.finish(result).map(|()| None)
            }
            Step::Eof => {
                let err = ReadError::Truncated { valid_up_to: self.valid_up_to(), open_multi: self.in_multi() };
                self.finish(Err(err)).map(|()| None)
            }
            Step::Bad(offset, problem) => {
                let err = ReadError::Corrupt { offset, valid_up_to: self.valid_up_to(), problem };
                self.finish(Err(err)).map(|()| None)
            }
        }
    }

    fn valid_up_to(&self) -> usize {
        self.before_multi.unwrap_or(self.last_end)
    }

    fn finish(&mut self, result: Result<(), ReadError>) -> Result<(), ReadError> {
        self.finished = Some(result);
        result
    }

    /// Skips annotations and parses one command; `Done(None)` at the end of the data.
    fn parse_command(&mut self) -> Step<Option<Command<'a>>> {
        let data = self.data;
        while data.get(self.pos) == Some(&b'#') {
            match data[self.pos..].iter().position(|&b| b == b'\n') {
                Some(nl) => self.pos += nl + 1,
                None => return Step::Eof,
            }
        }
        let start = self.pos;
        if start == data.len() {
            return Step::Done(None);
        }
        let (argc, mut pos) = match number_line(data, start, b'*', Problem::MultibulkLength) {
            Step::Done(v) => v,
            Step::Eof => return Step::Eof,
            Step::Bad(at, p) => return Step::Bad(at, p),
        };
        if argc == 0 {
            return Step::Bad(start + 1, Problem::MultibulkLength);
        }
        let mut argv = Vec::with_capacity(argc.min(64));
        for _ in 0..argc {
            let (len, at) = match number_line(data, pos, b'$', Problem::BulkLength) {
                Step::Done(v) => v,
                Step::Eof => return Step::Eof,
                Step::Bad(at, p) => return Step::Bad(at, p),
            };
            let Some(crlf) = at.checked_add(len).and_then(|end| data.get(end..end.checked_add(2)?)) else {
                return Step::Eof;
            };
            let end = at + len;
            if crlf != b"\r\n" {
                return Step::Bad(end, Problem::Newline { found: [crlf[0], crlf[1]] });
            }
            argv.push(&data[at..end]);
            pos = end + 2;
        }
        self.pos = pos;
        Step::Done(Some(Command { argv, start, end: pos }))
    }
}

/// Parses `<prefix><digits>\r\n` at `pos`; returns the number and the offset after the line.
fn number_line(data: &[u8], pos: usize, prefix: u8, bad_number: Problem) -> Step<(usize, usize)> {
    let Some(&first) = data.get(pos) else {
        return Step::Eof;
    };
    if first != prefix {
        return Step::Bad(pos, Problem::Prefix { expected: prefix, found: first });
    }
    let digits_at = pos + 1;
    let mut value = 0u64;
    let mut i = digits_at;
    loop {
        let Some(&c) = data.get(i) else {
            return Step::Eof;
        };
        if !c.is_ascii_digit() {
            break;
        }
        if i - digits_at == MAX_DIGITS {
            return Step::Bad(digits_at, bad_number);
        }
        value = value * 10 + u64::from(c - b'0');
        i += 1;
    }
    if i == digits_at || data[i] != b'\r' {
        return Step::Bad(if i == digits_at { digits_at } else { i }, bad_number);
    }
    match data.get(i + 1) {
        None => Step::Eof,
        // A length beyond the address space cannot be satisfied by the data: it runs out.
        Some(b'\n') => usize::try_from(value).map_or(Step::Eof, |v| Step::Done((v, i + 2))),
        Some(&c) => Step::Bad(i, Problem::Newline { found: [b'\r', c] }),
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Command<'a>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_command() {
            Ok(Some(cmd)) => Some(Ok(cmd)),
            Ok(None) => None,
            Err(_) if self.reported => None,
            Err(e) => {
                self.reported = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads every command of `data` from `offset`: the commands read, and how the data ended.
/// On a [`ReadError::Truncated`] with `open_multi`, the commands after the open `MULTI` are
/// among those returned; [`ReadError::valid_up_to`] says where to cut.
pub fn read_commands(data: &[u8], offset: usize) -> (Vec<Command<'_>>, Result<(), ReadError>) {
    let mut reader = Reader::new(data, offset);
    let mut commands = Vec::new();
    loop {
        match reader.next_command() {
            Ok(Some(cmd)) => commands.push(cmd),
            Ok(None) => return (commands, Ok(())),
            Err(e) => return (commands, Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(data: &[u8]) -> (Vec<Vec<String>>, Result<(), ReadError>) {
        let (cmds, end) = read_commands(data, 0);
        let argvs =
            cmds.iter().map(|c| c.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()).collect();
        (argvs, end)
    }

    #[test]
    fn commands_and_annotations() {
        let data = b"#TS:1\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n#x\n#y\r\n*1\r\n$4\r\nPING\r\n";
        let (cmds, end) = read_commands(data, 0);
        assert_eq!(end, Ok(()));
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].argv, [b"GET".as_slice(), b""]);
        assert_eq!((cmds[0].start, cmds[0].end), (7, 26));
        assert_eq!(cmds[1].start, 33);
        assert_eq!(cmds[1].end, data.len());
        assert_eq!(read_commands(b"", 0).1, Ok(()));
        // Starting after a preamble; an offset past the end reads nothing.
        assert_eq!(read_commands(b"junk*1\r\n$1\r\nX\r\n", 4).0.len(), 1);
        assert_eq!(read_commands(b"*1\r\n", 99).1, Ok(()));
    }

    #[test]
    fn truncation_points() {
        let one = b"*1\r\n$4\r\nPING\r\n";
        for cut in 1..one.len() {
            assert_eq!(
                read_commands(&one[..cut], 0).1,
                Err(ReadError::Truncated { valid_up_to: 0, open_multi: false }),
                "cut at {cut}"
            );
        }
        let mut two = one.to_vec();
        two.extend_from_slice(b"#TS:5");
        assert_eq!(read_commands(&two, 0).1, Err(ReadError::Truncated { valid_up_to: 14, open_multi: false }));
    }

    #[test]
    fn open_multi_reverts_to_before_it() {
        let data = b"*1\r\n$1\r\nA\r\n*1\r\n$5\r\nmulti\r\n*1\r\n$1\r\nB\r\n";
        let (cmds, end) = argvs(data);
        assert_eq!(cmds.len(), 3);
        assert_eq!(end, Err(ReadError::Truncated { valid_up_to: 11, open_multi: true }));
        let mut closed = data.to_vec();
        closed.extend_from_slice(b"*1\r\n$4\r\nExec\r\n");
        assert_eq!(argvs(&closed).1, Ok(()));
        // Cut inside a command inside the transaction: still before the MULTI.
        assert_eq!(argvs(&data[..data.len() - 3]).1, Err(ReadError::Truncated { valid_up_to: 11, open_multi: true }));
    }

    #[test]
    fn corruption() {
        let bad = |data: &[u8]| match read_commands(data, 0).1 {
            Err(ReadError::Corrupt { offset, valid_up_to, problem }) => (offset, valid_up_to, problem),
            other => panic!("{other:?} for {:?}", data.escape_ascii().to_string()),
        };
        assert_eq!(bad(b"SET a b\r\n"), (0, 0, Problem::Prefix { expected: b'*', found: b'S' }));
        assert_eq!(bad(b"*1\r\n$1\r\nA\r\n*0\r\n"), (12, 11, Problem::MultibulkLength));
        assert_eq!(bad(b"*-1\r\n").2, Problem::MultibulkLength);
        assert_eq!(bad(b"*1x\r\n"), (2, 0, Problem::MultibulkLength));
        assert_eq!(bad(b"*1\r\r"), (2, 0, Problem::Newline { found: *b"\r\r" }));
        assert_eq!(bad(b"*1\r\n+1\r\n"), (4, 0, Problem::Prefix { expected: b'$', found: b'+' }));
        assert_eq!(bad(b"*1\r\n$\r\n"), (5, 0, Problem::BulkLength));
        assert_eq!(bad(b"*1\r\n$1\r\nAB\r\n"), (9, 0, Problem::Newline { found: *b"B\r" }));
        assert_eq!(bad(b"*1\r\n$1234567890123456789\r\n").2, Problem::BulkLength);
        assert_eq!(
            bad(b"*1\r\n$1\r\nA\r\n*1\r\n$5\r\nMULTI\r\n!").1,
            11,
            "corruption inside a transaction is valid only up to the MULTI"
        );
    }

    #[test]
    fn iterator_ends_after_one_error() {
        let mut r = Reader::new(b"*1\r\n$1\r\nA\r\n*1\r\n", 0);
        assert!(matches!(r.next(), Some(Ok(_))));
        assert!(matches!(r.next(), Some(Err(ReadError::Truncated { valid_up_to: 11, .. }))));
        assert!(r.next().is_none());
        assert!(r.next_command().is_err(), "the final result is repeated");
        assert_eq!(Reader::new(b"", 0).count(), 0);
    }

    #[test]
    fn messages() {
        let e = ReadError::Corrupt { offset: 9, valid_up_to: 0, problem: Problem::Newline { found: *b"B\r" } };
        assert_eq!(
            e.to_string(),
            "Bad file format reading the append only file at offset 9: Expected \\r\\n, got: 420d (valid up to offset 0)"
        );
        assert!(e.redis_message("x.aof").starts_with("Bad file format reading the append only file x.aof: "));
        let t = ReadError::Truncated { valid_up_to: 3, open_multi: false };
        assert!(t.redis_message("x.aof").starts_with("Unexpected end of file reading the append only file x.aof. "));
        assert_eq!(Problem::Prefix { expected: b'*', found: 0 }.to_string(), "Expected prefix '*', got: '\\x00'");
    }
}
