//! The manifest of a Redis 7 AOF directory: which files make up the AOF, in what order.
//!
//! A manifest is lines of key/value pairs, one file per line:
//!
//! ```text
//! file appendonly.aof.2.base.rdb seq 2 type b
//! file appendonly.aof.1.incr.aof seq 1 type h
//! file appendonly.aof.3.incr.aof seq 3 type i
//! ```
//!
//! `type` is `b` (base: the snapshot of the last rewrite, at most one), `i` (incr: commands
//! logged since, in increasing `seq`) or `h` (history: obsolete, to be deleted). Redis writes
//! the base first, then history, then incrs, and quotes a name as `redis-cli` would when it
//! contains spaces, quotes, backslashes or bytes that are not printable ASCII. Reading accepts
//! `#` comment lines, keys in any case, pairs in any order and unknown extra pairs (for forward
//! compatibility), like Redis 7.0's `aofLoadManifestFromFile`.
//!
//! File names are bytes, as Redis's are: `appendfilename` may be any byte string without `/`.

use protocol::split_args;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Lines longer than this (without their newline) are rejected, as Redis reads lines into a
/// buffer of this size.
const MAX_LINE: usize = 1024;

/// The kind of a file in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The snapshot of the last rewrite (`type b`).
    Base,
    /// Commands logged after the base (`type i`).
    Incr,
    /// A file a rewrite made obsolete, waiting to be deleted (`type h`).
    History,
}

impl FileKind {
    /// The letter the manifest uses.
    pub fn letter(self) -> u8 {
        match self {
            FileKind::Base => b'b',
            FileKind::Incr => b'i',
            FileKind::History => b'h',
        }
    }

    /// The kind a manifest letter names.
    pub fn from_letter(letter: u8) -> Option<FileKind> {
        match letter {
            b'b' => Some(FileKind::Base),
            b'i' => Some(FileKind::Incr),
            b'h' => Some(FileKind::History),
            _ => None,
        }
    }
}

/// The format of a new base file, which its name records: RDB with `aof-use-rdb-preamble yes`
/// (the default), commands otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseFormat {
    /// `<appendfilename>.<seq>.base.rdb`.
    Rdb,
    /// `<appendfilename>.<seq>.base.aof`.
    Aof,
}

/// One file listed in the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofFile {
    /// The file name inside the AOF directory (never a path).
    pub name: Vec<u8>,
    /// Its sequence number (base and incr files are numbered separately).
    pub seq: i64,
    /// Its kind.
    pub kind: FileKind,
}

impl AofFile {
    /// The file's path inside the AOF directory `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(OsStr::from_bytes(&self.name))
    }

    /// Appends the file's manifest line, as Redis formats it.
    fn write_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"file ");
        if needs_repr(&self.name) {
            repr(&self.name, out);
        } else {
            out.extend_from_slice(&self.name);
        }
        out.extend_from_slice(b" seq ");
        engine::num::format_i64(self.seq, out);
        out.extend_from_slice(b" type ");
        out.push(self.kind.letter());
        out.push(b'\n');
    }
}

/// The manifest: the files of an AOF directory and the sequence counters for new ones.
///
/// Load order is the base, then the incrs in order ([`Manifest::files_to_load`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base file, if any.
    pub base: Option<AofFile>,
    /// History files, in the order Redis lists them (most recently retired first).
    pub history: Vec<AofFile>,
    /// Incr files, oldest first; the last is the one being appended to.
    pub incrs: Vec<AofFile>,
    /// The sequence number of the current base (0 if there never was one); the next base gets
    /// the one after.
    pub base_seq: i64,
    /// The sequence number of the last incr file created (0 if none is listed); the next incr
    /// file gets the one after.
    pub incr_seq: i64,
}

impl Manifest {
    /// An empty manifest (a directory Redis has not written to yet).
    pub fn new() -> Manifest {
        Manifest::default()
    }

    /// The manifest Redis makes when it finds an old single-file AOF named `appendfilename`
    /// and moves it into the directory: that file as base number 1.
    pub fn from_old_style(appendfilename: &[u8]) -> Manifest {
        Manifest {
            base: Some(AofFile { name: appendfilename.to_vec(), seq: 1, kind: FileKind::Base }),
            base_seq: 1,
            ..Manifest::default()
        }
    }

    /// Whether no file is to be loaded (no base, no incr): Redis then starts empty.
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incrs.is_empty()
    }

    /// The files to load, in order: the base, then the incrs.
    pub fn files_to_load(&self) -> impl Iterator<Item = &AofFile> {
        self.base.iter().chain(&self.incrs)
    }

    /// The manifest's text exactly as Redis writes it: the base, then history, then incrs.
    pub fn to_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for file in self.base.iter().chain(&self.history).chain(&self.incrs) {
            file.write_line(&mut out);
        }
        out
    }

    /// Adds a new incr file (the next incr sequence number) and returns it. Redis does this
    /// when a rewrite starts, so that the commands logged meanwhile go to a file of their own.
    pub fn new_incr(&mut self, appendfilename: &[u8]) -> &AofFile {
        self.incr_seq += 1;
        let name = incr_file_name(appendfilename, self.incr_seq);
        self.incrs.push(AofFile { name, seq: self.incr_seq, kind: FileKind::Incr });
        &self.incrs[self.incrs.len() - 1]
    }

    /// The incr file to append to at start-up: the last one listed, or a new one if there is
    /// none. (If the manifest is empty Redis first writes an empty base, [`Manifest::new_base`].)
    pub fn last_or_new_incr(&mut self, appendfilename: &[u8]) -> &AofFile {
        if self.incrs.is_empty() {
            return self.new_incr(appendfilename);
        }
        &self.incrs[self.incrs.len() - 1]
    }

    /// Installs a new base file (the next base sequence number, named for `format`) and
    /// returns it; the previous base becomes the first history file.
    pub fn new_base(&mut self, appendfilename: &[u8], format: BaseFormat) -> &AofFile {
        if let Some(mut old) = self.base.take() {
            old.kind = FileKind::History;
            self.history.insert(0, old);
        }
        self.base_seq += 1;
        let name = base_file_name(appendfilename, self.base_seq, format);
        self.base.insert(AofFile { name, seq: self.base_seq, kind: FileKind::Base })
    }

    /// Moves the incr files a completed rewrite has absorbed to history: all of them, except
    /// the last when `keep_current` (the AOF is on and that file is being appended to). They
    /// go ahead of older history, oldest first, as in Redis.
    pub fn retire_rewritten_incrs(&mut self, keep_current: bool) {
        let retire = self.incrs.len().saturating_sub(usize::from(keep_current));
        let retired = self.incrs.drain(..retire).map(|f| AofFile { kind: FileKind::History, ..f });
        self.history.splice(0..0, retired);
    }

    /// The bookkeeping of a completed rewrite, in Redis's order: [`Manifest::new_base`], then
    /// [`Manifest::retire_rewritten_incrs`]. Returns the new base, which the rewritten data is
    /// to be renamed to before the manifest is persisted.
    pub fn complete_rewrite(&mut self, appendfilename: &[u8], format: BaseFormat, keep_current: bool) -> AofFile {
        let base = self.new_base(appendfilename, format).clone();
        self.retire_rewritten_incrs(keep_current);
        base
    }

    /// Removes the history files from the manifest and returns them: the files to delete once
    /// the manifest without them is persisted (Redis does so after every successful rewrite
    /// unless `aof-disable-auto-gc` is set).
    pub fn take_history(&mut self) -> Vec<AofFile> {
        std::mem::take(&mut self.history)
    }
}

/// `<appendfilename>.manifest`.
pub fn manifest_file_name(appendfilename: &[u8]) -> Vec<u8> {
    [appendfilename, b".manifest"].concat()
}

/// `temp-<appendfilename>.manifest`: where a new manifest is written before it is renamed over
/// the old one.
pub fn temp_manifest_file_name(appendfilename: &[u8]) -> Vec<u8> {
    [b"temp-".as_slice(), appendfilename, b".manifest"].concat()
}

/// `<appendfilename>.<seq>.base.rdb` or `.base.aof`.
pub fn base_file_name(appendfilename: &[u8], seq: i64, format: BaseFormat) -> Vec<u8> {
    let suffix: &[u8] = match format {
        BaseFormat::Rdb => b".base.rdb",
        BaseFormat::Aof => b".base.aof",
    };
    numbered(appendfilename, seq, suffix)
}

/// `<appendfilename>.<seq>.incr.aof`.
pub fn incr_file_name(appendfilename: &[u8], seq: i64) -> Vec<u8> {
    numbered(appendfilename, seq, b".incr.aof")
}

/// `temp-<appendfilename>.incr`: the incr file Redis writes to while `appendonly` is being
/// switched on (it waits for the first rewrite) and renames to the next incr name when that
/// rewrite completes.
pub fn temp_incr_file_name(appendfilename: &[u8]) -> Vec<u8> {
    [b"temp-".as_slice(), appendfilename, b".incr"].concat()
}

fn numbered(appendfilename: &[u8], seq: i64, suffix: &[u8]) -> Vec<u8> {
    let mut name = appendfilename.to_vec();
    name.push(b'.');
    engine::num::format_i64(seq, &mut name);
    name.extend_from_slice(suffix);
    name
}

/// What is wrong with a manifest; [`ManifestErrorKind::message`] is Redis's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestErrorKind {
    /// No line at all.
    Empty,
    /// A line of more than 1024 bytes, or a last line without a newline.
    TooLongLine,
    /// A blank line, unbalanced quotes, fewer than six words or an odd number of them, or a
    /// missing (or zero) `file`, `seq` or `type`.
    InvalidFormat,
    /// A file name containing `/` or `\`.
    NotBaseName,
    /// A second base file.
    DuplicateBase,
    /// An incr file whose `seq` is not greater than the previous incr's (or not positive).
    NonMonotonicSeq,
    /// A `type` other than `b`, `h` or `i`.
    UnknownType,
}

impl ManifestErrorKind {
    /// Redis's text for this error.
    pub fn message(self) -> &'static str {
        match self {
            ManifestErrorKind::Empty => "Found an empty AOF manifest",
            ManifestErrorKind::TooLongLine => "The AOF manifest file contains too long line",
            ManifestErrorKind::InvalidFormat => "Invalid AOF manifest file format",
            ManifestErrorKind::NotBaseName => "File can't be a path, just a filename",
            ManifestErrorKind::DuplicateBase => "Found duplicate base file information",
            ManifestErrorKind::NonMonotonicSeq => "Found a non-monotonic sequence number",
            ManifestErrorKind::UnknownType => "Unknown AOF file type",
        }
    }
}

/// A manifest Redis would refuse to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// What is wrong.
    pub kind: ManifestErrorKind,
    /// The 1-based number of the line being read (comment lines count; 0 for an empty file).
    pub line_no: usize,
    /// The offending line, trimmed, for errors found after the line was read whole (Redis
    /// shows it only then: not for [`ManifestErrorKind::Empty`] and
    /// [`ManifestErrorKind::TooLongLine`]).
    pub line: Option<Vec<u8>>,
}

impl ManifestError {
    /// The messages Redis logs before exiting, one per log call, in order.
    pub fn redis_report(&self) -> Vec<String> {
        let mut report = vec!["\n*** FATAL AOF MANIFEST FILE ERROR ***\n".to_string()];
        if let Some(line) = &self.line {
            report.push(format!("Reading the manifest file, at line {}\n", self.line_no));
            report.push(format!(">>> '{}'\n", String::from_utf8_lossy(line)));
        }
        report.push(format!("{}\n", self.kind.message()));
        report
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.message())?;
        match &self.line {
            Some(line) => write!(f, " (line {}: '{}')", self.line_no, line.escape_ascii()),
            None if self.line_no > 0 => write!(f, " (line {})", self.line_no),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ManifestError {}

/// Parses a manifest with the rules of Redis 7.0's `aofLoadManifestFromFile`.
///
/// Lines are read as Redis reads them with `fgets` into a 1025-byte buffer: a line is cut after
/// 1024 bytes (the rest is read as the next line), a chunk that starts with `#` is a comment,
/// and a NUL byte ends the text Redis looks at. `seq` is read like `atoll` (leading number,
/// the rest ignored); `type` is the value's first byte.
pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
    let mut manifest = Manifest::new();
    let mut rest = text;
    let mut line_no = 0;
    let mut max_incr_seq = 0;
    while !rest.is_empty() {
        let len = match rest[..rest.len().min(MAX_LINE)].iter().position(|&b| b == b'\n') {
            Some(nl) => nl + 1,
            None => rest.len().min(MAX_LINE),
        };
        let chunk = c_str(&rest[..len]);
        rest = &rest[len..];
        line_no += 1;
        if chunk.first() == Some(&b'#') {
            continue;
        }
        if !chunk.contains(&b'\n') {
            return Err(ManifestError { kind: ManifestErrorKind::TooLongLine, line_no, line: None });
        }
        let line = trim(chunk);
        let fail = |kind| Err(ManifestError { kind, line_no, line: Some(line.to_vec()) });
        let words = match split_args(line) {
            Ok(words) if !line.is_empty() && words.len() >= 6 && words.len() % 2 == 0 => words,
            _ => return fail(ManifestErrorKind::InvalidFormat),
        };
        let (mut name, mut seq, mut letter) = (None, 0, 0);
        for pair in words.chunks(2) {
            let (key, value) = (c_str(&pair[0]), c_str(&pair[1]));
            if key.eq_ignore_ascii_case(b"file") {
                if value.contains(&b'/') || value.contains(&b'\\') {
                    return fail(ManifestErrorKind::NotBaseName);
                }
                name = Some(value.to_vec());
            } else if key.eq_ignore_ascii_case(b"seq") {
                seq = atoll(value);
            } else if key.eq_ignore_ascii_case(b"type") {
                letter = value.first().copied().unwrap_or(0);
            }
        }
        let Some(name) = name.filter(|_| seq != 0 && letter != 0) else {
            return fail(ManifestErrorKind::InvalidFormat);
        };
        let Some(kind) = FileKind::from_letter(letter) else {
            return fail(ManifestErrorKind::UnknownType);
        };
        let file = AofFile { name, seq, kind };
        match kind {
            FileKind::Base => {
                if manifest.base.is_some() {
                    return fail(ManifestErrorKind::DuplicateBase);
                }
                manifest.base_seq = seq;
                manifest.base = Some(file);
            }
            FileKind::History => manifest.history.push(file),
            FileKind::Incr => {
                if seq <= max_incr_seq {
                    return fail(ManifestErrorKind::NonMonotonicSeq);
                }
                max_incr_seq = seq;
                manifest.incr_seq = seq;
                manifest.incrs.push(file);
            }
        }
    }
    if line_no == 0 {
        return Err(ManifestError { kind: ManifestErrorKind::Empty, line_no: 0, line: None });
    }
    Ok(manifest)
}

/// The bytes before the first NUL: what Redis's C string functions see.
fn c_str(bytes: &[u8]) -> &[u8] {
    bytes.iter().position(|&b| b == 0).map_or(bytes, |nul| &bytes[..nul])
}

/// `sdstrim(line, " \t\r\n")`.
fn trim(mut line: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    while line.first().is_some_and(blank) {
        line = &line[1..];
    }
    while line.last().is_some_and(blank) {
        line = &line[..line.len() - 1];
    }
    line
}

/// C's `atoll` (glibc: `strtoll` base 10, saturating): leading whitespace, an optional sign,
/// then as many digits as there are; 0 if none.
fn atoll(s: &[u8]) -> i64 {
    let mut i = s.iter().take_while(|&&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)).count();
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut magnitude: u64 = 0;
    for &c in s[i..].iter().take_while(|c| c.is_ascii_digit()) {
        magnitude = magnitude.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    if negative {
        if magnitude > i64::MAX as u64 {
            i64::MIN
        } else {
            -(magnitude as i64)
        }
    } else {
        i64::try_from(magnitude).unwrap_or(i64::MAX)
    }
}

/// `sdsneedsrepr`: whether a name must be quoted to survive `sdssplitargs`.
fn needs_repr(name: &[u8]) -> bool {
    name.iter().any(|&b| !(0x21..=0x7e).contains(&b) || b == b'\\' || b == b'"')
}

/// `sdscatrepr`: the name in double quotes with C-style escapes.
fn repr(name: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in name {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'x', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
        }
    }
    out.push(b'"');
}

/// Why [`load`] failed.
#[derive(Debug)]
pub enum LoadError {
    /// The manifest could not be read.
    Io(io::Error),
    /// The manifest is malformed.
    Parse(ManifestError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "Read AOF manifest failed: {e}"),
            LoadError::Parse(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads and parses `<appendfilename>.manifest` in the AOF directory `dir`, as Redis does at
/// start-up: `Ok(None)` if the directory or the manifest does not exist (a fresh start, or an
/// old single-file AOF to upgrade).
pub fn load(dir: &Path, appendfilename: &[u8]) -> Result<Option<Manifest>, LoadError> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let path = dir.join(OsStr::from_bytes(&manifest_file_name(appendfilename)));
    if !path.is_file() {
        return Ok(None);
    }
    let text = fs::read(&path).map_err(LoadError::Io)?;
    parse(&text).map(Some).map_err(LoadError::Parse)
}

/// Writes `manifest` as `<appendfilename>.manifest` in `dir` the way Redis does, so that a
/// crash leaves either the old or the new manifest: write `temp-<appendfilename>.manifest`,
/// sync it, rename it over the old one, sync the directory.
pub fn persist(dir: &Path, appendfilename: &[u8], manifest: &Manifest) -> io::Result<()> {
    let temp = dir.join(OsStr::from_bytes(&temp_manifest_file_name(appendfilename)));
    let path = dir.join(OsStr::from_bytes(&manifest_file_name(appendfilename)));
    let mut file = fs::File::create(&temp)?;
    file.write_all(&manifest.to_text())?;
    file.sync_data()?;
    drop(file);
    fs::rename(&temp, &path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(manifest_file_name(b"appendonly.aof"), b"appendonly.aof.manifest");
        assert_eq!(temp_manifest_file_name(b"appendonly.aof"), b"temp-appendonly.aof.manifest");
        assert_eq!(base_file_name(b"a", 3, BaseFormat::Rdb), b"a.3.base.rdb");
        assert_eq!(base_file_name(b"a", 3, BaseFormat::Aof), b"a.3.base.aof");
        assert_eq!(incr_file_name(b"a", 12), b"a.12.incr.aof");
        assert_eq!(temp_incr_file_name(b"a"), b"temp-a.incr");
    }

    #[test]
    fn quoting_round_trips() {
        let line = |name: &[u8]| {
            let mut m = Manifest::new();
            m.incrs.push(AofFile { name: name.to_vec(), seq: 1, kind: FileKind::Incr });
            m.to_text()
        };
        assert_eq!(line(b"a\\b"), b"file \"a\\\\b\" seq 1 type i\n".to_vec());
        let text = line(b"a b\"\n\r\t\x07\x08\x00\xff~!");
        assert_eq!(text, b"file \"a b\\\"\\n\\r\\t\\a\\b\\x00\\xff~!\" seq 1 type i\n".to_vec());
        // The NUL cuts the name when read back, as in Redis (sdsnew stops there).
        assert_eq!(parse(&text).unwrap().incrs[0].name, b"a b\"\n\r\t\x07\x08");
        assert_eq!(line(b"appendonly.aof.1.base.rdb"), b"file appendonly.aof.1.base.rdb seq 1 type i\n");
        // A name that is all NUL is empty yet present: Redis accepts the line, then fails to
        // open the file.
        assert_eq!(parse(b"file \"\\x00\" seq 1 type i\n").unwrap().incrs[0].name, b"");
    }

    #[test]
    fn atoll_like_c() {
        assert_eq!(atoll(b"12"), 12);
        assert_eq!(atoll(b" \t-7x"), -7);
        assert_eq!(atoll(b"+3"), 3);
        assert_eq!(atoll(b"x1"), 0);
        assert_eq!(atoll(b"99999999999999999999"), i64::MAX);
        assert_eq!(atoll(b"-99999999999999999999"), i64::MIN);
    }

    #[test]
    fn transitions() {
        let f = b"ao";
        let mut m = Manifest::new();
        m.new_base(f, BaseFormat::Rdb);
        assert_eq!(m.last_or_new_incr(f).name, b"ao.1.incr.aof");
        assert_eq!(m.last_or_new_incr(f).seq, 1, "the last incr is reused");
        // A rewrite: new incr when it starts, new base and history when it completes.
        m.new_incr(f);
        let base = m.complete_rewrite(f, BaseFormat::Aof, true);
        assert_eq!(base.name, b"ao.2.base.aof");
        let text = String::from_utf8(m.to_text()).unwrap();
        assert_eq!(
            text,
            "file ao.2.base.aof seq 2 type b\nfile ao.1.incr.aof seq 1 type h\n\
             file ao.1.base.rdb seq 1 type h\nfile ao.2.incr.aof seq 2 type i\n"
        );
        let deleted: Vec<_> = m.take_history().into_iter().map(|f| f.name).collect();
        assert_eq!(deleted, [b"ao.1.incr.aof".to_vec(), b"ao.1.base.rdb".to_vec()]);
        assert_eq!(parse(&m.to_text()).unwrap(), m);
        // With the AOF off every incr is absorbed.
        m.retire_rewritten_incrs(false);
        assert!(m.incrs.is_empty() && m.history.len() == 1);
        assert_eq!(m.files_to_load().count(), 1);
    }
}
