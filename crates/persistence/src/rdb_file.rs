//! The RDB file format, as Redis 7.0 writes it and Redis 7.0/7.2 load it.
//!
//! ```text
//! "REDIS" + 4-digit version            header
//! AUX name value ...                   redis-ver, redis-bits, ctime, used-mem, aof-base
//! FUNCTION2 code ...                   function libraries
//! SELECTDB n  RESIZEDB size expires    a run of one database's keys (may repeat per database)
//!   [EXPIRETIME_MS t] [IDLE s | FREQ f] type key value
//! EOF  crc64                           CRC-64 of every byte before it (0: not computed)
//! ```
//!
//! Writing is a set of pieces appended to a `Vec<u8>`, so that a snapshot can serialize each
//! shard on its own and stream it through [`Checksummed`], which keeps the running CRC.
//! Loading takes a whole file in memory and reports each item, in file order, to a [`Visitor`];
//! what to do with expired keys, duplicates or out-of-range databases is the caller's choice.
//! Every error carries the byte offset of the item that failed; damage never panics.

use std::fmt;
use std::io::{self, Write};

use engine::rdb::crc64::crc64;
use engine::rdb::encoding::{self as enc, Reader};
use engine::rdb::{self, RdbError, RdbValue};
use engine::Value;

/// The RDB version written: Redis 7.0's, so every Redis 7.x loads our files.
pub const RDB_VERSION: u32 = 10;

/// The newest RDB version loaded: 11 (Redis 7.2) is 10 plus value encodings, and files holding
/// only types Tandem has load fine.
pub const MAX_LOAD_VERSION: u32 = 11;

/// Versions from this one on end with a CRC-64 after the EOF opcode.
const FIRST_CHECKSUM_VERSION: u32 = 5;

/// Length of `"REDIS"` plus four version digits.
const HEADER_LEN: usize = 9;

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Appends the header for [`RDB_VERSION`]: `REDIS0010`.
pub fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
}

/// Appends an AUX field. Both strings get Redis's string encoding with compression allowed, as
/// Redis's default `rdbcompression yes` does (the standard fields are too short to compress).
pub fn write_aux(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    enc::write_u8(out, enc::RDB_OPCODE_AUX);
    enc::write_string(out, key, true);
    enc::write_string(out, value, true);
}

/// Redis writes numeric aux values as decimal text, which the string encoding then stores as an
/// integer when it fits 32 bits.
fn write_aux_int(out: &mut Vec<u8>, key: &[u8], value: i128) {
    write_aux(out, key, value.to_string().as_bytes());
}

/// The facts recorded in the standard AUX fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxInfo<'a> {
    /// `redis-ver`: the Redis version we claim compatibility with.
    pub redis_ver: &'a str,
    /// `ctime`: Unix time of the save, in seconds.
    pub ctime_secs: i64,
    /// `used-mem`: bytes in use at the save.
    pub used_mem: u64,
    /// `aof-base`: whether the file is the base of a multi-part AOF.
    pub aof_base: bool,
}

/// Appends the AUX fields Redis 7.0 writes for a save outside replication, in its order and
/// encodings: `redis-ver`, `redis-bits`, `ctime`, `used-mem`, `aof-base`. (A server that has a
/// replication backlog also writes `repl-stream-db`, `repl-id` and `repl-offset` before
/// `aof-base`; those belong to replication, which writes them with [`write_aux`].)
pub fn write_standard_aux(out: &mut Vec<u8>, info: &AuxInfo) {
    write_aux(out, b"redis-ver", info.redis_ver.as_bytes());
    write_aux_int(out, b"redis-bits", i128::from(usize::BITS));
    write_aux_int(out, b"ctime", i128::from(info.ctime_secs));
    write_aux_int(out, b"used-mem", i128::from(info.used_mem));
    write_aux_int(out, b"aof-base", i128::from(info.aof_base));
}

/// Appends a SELECTDB opcode: the entries that follow belong to database `db`.
pub fn write_select_db(out: &mut Vec<u8>, db: u64) {
    enc::write_u8(out, enc::RDB_OPCODE_SELECTDB);
    enc::write_len(out, db);
}

/// Appends a RESIZEDB opcode: sizing hints (keys, keys with an expiry) for the current database.
/// Optional; Redis writes one after each SELECTDB.
pub fn write_resize_db(out: &mut Vec<u8>, db_size: u64, expires_size: u64) {
    enc::write_u8(out, enc::RDB_OPCODE_RESIZEDB);
    enc::write_len(out, db_size);
    enc::write_len(out, expires_size);
}

/// Appends an IDLE opcode: the LRU idle time of the next entry, written by Redis when its
/// `maxmemory-policy` is an LRU one.
pub fn write_idle(out: &mut Vec<u8>, idle_secs: u64) {
    enc::write_u8(out, enc::RDB_OPCODE_IDLE);
    enc::write_len(out, idle_secs);
}

/// Appends a FREQ opcode: the LFU counter of the next entry, written by Redis when its
/// `maxmemory-policy` is an LFU one.
pub fn write_freq(out: &mut Vec<u8>, freq: u8) {
    enc::write_u8(out, enc::RDB_OPCODE_FREQ);
    enc::write_u8(out, freq);
}

/// Appends a key and its value, preceded by its expiry (Unix milliseconds) if it has one.
/// `compress` is `rdbcompression`: long strings (the key too) are LZF-compressed when that pays.
pub fn write_entry(out: &mut Vec<u8>, key: &[u8], value: &Value, expire_at_ms: Option<i64>, compress: bool) {
    write_expire(out, expire_at_ms);
    if let Value::Str(s) = value {
        return s.with_bytes(|v| write_string_body(out, key, v, compress));
    }
    enc::write_u8(out, engine::rdb::object_type(value));
    enc::write_string(out, key, compress);
    engine::rdb::write_object(out, value, compress);
}

/// [`write_entry`] for a string value given as bytes.
pub fn write_string_entry(out: &mut Vec<u8>, key: &[u8], value: &[u8], expire_at_ms: Option<i64>, compress: bool) {
    write_expire(out, expire_at_ms);
    write_string_body(out, key, value, compress);
}

fn write_expire(out: &mut Vec<u8>, expire_at_ms: Option<i64>) {
    if let Some(at) = expire_at_ms {
        enc::write_u8(out, enc::RDB_OPCODE_EXPIRETIME_MS);
        enc::write_u64_le(out, at as u64);
    }
}

fn write_string_body(out: &mut Vec<u8>, key: &[u8], value: &[u8], compress: bool) {
    enc::write_u8(out, enc::RDB_TYPE_STRING);
    enc::write_string(out, key, compress);
    enc::write_string(out, value, compress);
}

/// Appends a FUNCTION2 record holding one function library's source code. Redis writes these
/// after the AUX fields and before the first database.
pub fn write_function(out: &mut Vec<u8>, code: &[u8], compress: bool) {
    enc::write_u8(out, enc::RDB_OPCODE_FUNCTION2);
    enc::write_string(out, code, compress);
}

/// A writer that counts the bytes passed through it and keeps their CRC-64, so that a file can
/// be streamed in pieces and closed with [`Checksummed::finish`].
///
/// After a failed write the count and checksum no longer describe what reached `inner`; the
/// file is to be abandoned.
#[derive(Debug)]
pub struct Checksummed<W: Write> {
    inner: W,
    crc: u64,
    written: u64,
}

impl<W: Write> Checksummed<W> {
    /// Wraps `inner`, starting from zero bytes and an empty checksum.
    pub fn new(inner: W) -> Self {
        Checksummed { inner, crc: 0, written: 0 }
    }

    /// Writes all of `b` to the inner writer and adds it to the count and checksum.
    pub fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.inner.write_all(b)?;
        self.crc = crc64(self.crc, b);
        self.written += b.len() as u64;
        Ok(())
    }

    /// Bytes written so far (the EOF opcode and checksum only once [`finish`](Self::finish)
    /// has written them).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The CRC-64 of everything written so far.
    pub fn checksum(&self) -> u64 {
        self.crc
    }

    /// The inner writer, without writing the EOF opcode and checksum (for files that are not
    /// RDB images, such as an AOF base of commands).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Appends the EOF opcode and the 8-byte little-endian checksum (0 when `checksum` is
    /// false, as Redis writes with `rdbchecksum no`), flushes, and returns the inner writer.
    pub fn finish(mut self, checksum: bool) -> io::Result<W> {
        self.write_all(&[enc::RDB_OPCODE_EOF])?;
        let crc = if checksum { self.crc } else { 0 };
        self.inner.write_all(&crc.to_le_bytes())?;
        self.written += 8;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc64(self.crc, &buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// How to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Check the trailing CRC-64 (Redis's `rdbchecksum`). A stored checksum of 0 means the file
    /// was saved without one and is never checked.
    pub verify_checksum: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { verify_checksum: true }
    }
}

/// One key as found in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The database of the last SELECTDB before it (0 if none).
    pub db: u64,
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: RdbValue,
    /// Its expiry in Unix milliseconds, possibly in the past: the loader skips nothing.
    pub expire_at_ms: Option<i64>,
    /// The LRU idle time recorded by an IDLE opcode, in seconds.
    pub idle_secs: Option<u64>,
    /// The LFU counter recorded by a FREQ opcode.
    pub freq: Option<u8>,
}

/// Receives the items of a file in order. A method returning `Err(message)` stops the load with
/// [`LoadErrorKind::Rejected`] at the item's offset.
pub trait Visitor {
    /// An AUX field. Unknown fields are to be ignored, as Redis does.
    fn aux(&mut self, _key: &[u8], _value: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// A SELECTDB opcode: the entries that follow belong to `db`, which the visitor must reject
    /// if it has no such database.
    fn select_db(&mut self, db: u64) -> Result<(), String>;

    /// A RESIZEDB opcode: sizing hints for the current database.
    fn resize_db(&mut self, _db_size: u64, _expires_size: u64) -> Result<(), String> {
        Ok(())
    }

    /// A key with its value and metadata.
    fn entry(&mut self, e: Entry) -> Result<(), String>;

    /// A FUNCTION2 record: one function library's source code.
    fn function(&mut self, _code: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// What a successful load found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The file's RDB version.
    pub version: u32,
    /// Entries reported (expired ones included).
    pub keys: u64,
    /// Function libraries reported.
    pub functions: u64,
    /// Bytes making up the file, through the checksum. Anything after it is ignored, as Redis
    /// does.
    pub bytes: u64,
}

/// Why a file did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// The file does not start with `REDIS`.
    WrongSignature,
    /// The version digits name a version outside 1..=[`MAX_LOAD_VERSION`] (read as C's `atoi`
    /// reads them, as Redis does).
    UnsupportedVersion(i64),
    /// The file ends while `needed` more bytes were expected.
    Truncated {
        /// How many bytes the failed read wanted.
        needed: u64,
    },
    /// A length prefix that is none of the defined forms.
    BadLength {
        /// The prefix byte.
        byte: u8,
    },
    /// A string encoding other than INT8/16/32 and LZF.
    BadStringEncoding {
        /// The encoding number.
        encoding: u8,
    },
    /// LZF data that does not expand to its declared length.
    BadLzf,
    /// A collection whose contents are malformed.
    BadValue(&'static str),
    /// A byte where an opcode or value type should be that is neither.
    UnknownType {
        /// The byte.
        type_byte: u8,
    },
    /// A real value type that Tandem does not have yet.
    UnsupportedType {
        /// The value type byte.
        type_byte: u8,
        /// The key holding it.
        key: Vec<u8>,
    },
    /// Module data, which needs a module Tandem does not have.
    ModuleAux {
        /// The module type name encoded in the module id.
        module: String,
    },
    /// A function library in the format of Redis 7.0's release candidates.
    FunctionPreGa,
    /// The stored CRC-64 is not the CRC-64 of the file.
    ChecksumMismatch {
        /// The CRC-64 of the bytes before the checksum.
        expected: u64,
        /// The stored value.
        found: u64,
    },
    /// The visitor refused an item.
    Rejected(String),
}

/// A load failure and the offset of the item (or read) that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// What went wrong.
    pub kind: LoadErrorKind,
}

impl LoadError {
    fn at(offset: usize, kind: LoadErrorKind) -> Self {
        LoadError { offset: offset as u64, kind }
    }
}

impl From<RdbError> for LoadError {
    fn from(e: RdbError) -> Self {
        let kind = match e {
            RdbError::UnexpectedEof { needed, .. } => LoadErrorKind::Truncated { needed },
            RdbError::BadLength { byte, .. } => LoadErrorKind::BadLength { byte },
            RdbError::BadStringEncoding { encoding, .. } => LoadErrorKind::BadStringEncoding { encoding },
            RdbError::BadLzf { .. } => LoadErrorKind::BadLzf,
            RdbError::BadValue { what, .. } => LoadErrorKind::BadValue(what),
            RdbError::UnknownType { type_byte, .. } => LoadErrorKind::UnknownType { type_byte },
            RdbError::UnsupportedType { type_byte, .. } => {
                LoadErrorKind::UnsupportedType { type_byte, key: Vec::new() }
            }
        };
        LoadError::at(e.offset(), kind)
    }
}

/// Shows at most this many bytes of a key in a message.
const KEY_SHOWN: usize = 64;

impl fmt::Display for LoadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadErrorKind::WrongSignature => f.write_str("wrong signature: not an RDB file (no \"REDIS\" header)"),
            LoadErrorKind::UnsupportedVersion(v) => {
                write!(f, "can't handle RDB format version {v} (versions 1 to {MAX_LOAD_VERSION} load)")
            }
            LoadErrorKind::Truncated { needed } => {
                write!(f, "unexpected end of file (short read of {needed} bytes): the file is truncated")
            }
            LoadErrorKind::BadLength { byte } => write!(f, "invalid length encoding byte 0x{byte:02x}"),
            LoadErrorKind::BadStringEncoding { encoding } => write!(f, "unknown string encoding {encoding}"),
            LoadErrorKind::BadLzf => f.write_str("invalid LZF-compressed string"),
            LoadErrorKind::BadValue(what) => write!(f, "bad {what}"),
            LoadErrorKind::UnknownType { type_byte } => {
                write!(f, "unknown RDB opcode or value type {type_byte}")
            }
            LoadErrorKind::UnsupportedType { type_byte, key } => {
                let name = enc::type_name(*type_byte).unwrap_or("unknown");
                let shown = &key[..key.len().min(KEY_SHOWN)];
                let more = if key.len() > KEY_SHOWN { "..." } else { "" };
                write!(
                    f,
                    "key \"{}{more}\" holds a {name} (RDB type {type_byte}), which Tandem cannot load yet",
                    shown.escape_ascii()
                )
            }
            LoadErrorKind::ModuleAux { module } => {
                write!(f, "module auxiliary data of module type '{module}' cannot be loaded: no modules")
            }
            LoadErrorKind::FunctionPreGa => f.write_str("pre-release function format not supported"),
            LoadErrorKind::ChecksumMismatch { expected, found } => {
                write!(f, "wrong RDB checksum: computed {expected:016x}, file has {found:016x}")
            }
            LoadErrorKind::Rejected(msg) => f.write_str(msg),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RDB load failed at offset {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for LoadError {}

/// Reads the version digits the way C's `atoi` does (leading blanks, a sign, digits up to the
/// first non-digit), because Redis parses them so and accepts exactly what that yields.
fn atoi(digits: &[u8]) -> i64 {
    let mut rest = digits;
    while let [b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r', tail @ ..] = rest {
        rest = tail;
    }
    let negative = rest.first() == Some(&b'-');
    if let [b'+' | b'-', tail @ ..] = rest {
        rest = tail;
    }
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    if negative {
        -n
    } else {
        n
    }
}

/// Decodes the module type name packed into the top 54 bits of a module id (nine characters
/// of six bits each; the low ten bits are the encoding version).
fn module_name(id: u64) -> String {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut name = [0u8; 9];
    let mut bits = id >> 10;
    for c in name.iter_mut().rev() {
        *c = CHARSET[(bits & 63) as usize];
        bits >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Opcode-carried attributes of the next key. They stay pending across other opcodes, as in
/// Redis, and are cleared by the key they apply to.
#[derive(Default)]
struct Pending {
    expire_at_ms: Option<i64>,
    idle_secs: Option<u64>,
    freq: Option<u8>,
}

/// Loads a whole RDB file, reporting each item to `v` in file order.
///
/// The checksum is verified at the end, so `v` may have seen every entry of a file that then
/// fails; callers load into something they can throw away. Expired keys are reported like the
/// others. Bytes after the checksum are ignored, as Redis ignores them ([`Summary::bytes`]
/// says where the file ended).
pub fn load(data: &[u8], opts: &LoadOptions, v: &mut impl Visitor) -> Result<Summary, LoadError> {
    let mut r = Reader::new(data);
    let header = r.read_bytes(HEADER_LEN as u64)?;
    if &header[..5] != b"REDIS" {
        return Err(LoadError::at(0, LoadErrorKind::WrongSignature));
    }
    let version = atoi(&header[5..]);
    let version = match u32::try_from(version) {
        Ok(n) if (1..=MAX_LOAD_VERSION).contains(&n) => n,
        _ => return Err(LoadError::at(5, LoadErrorKind::UnsupportedVersion(version))),
    };

    let mut db = 0u64;
    let mut pending = Pending::default();
    let (mut keys, mut functions) = (0u64, 0u64);
    let rejected = |at: usize| move |msg: String| LoadError::at(at, LoadErrorKind::Rejected(msg));
    loop {
        let at = r.position();
        let t = r.read_u8()?;
        match t {
            enc::RDB_OPCODE_EXPIRETIME => {
                // Seconds as a signed 32-bit number (the pre-RDB-3 form).
                let secs = r.read_u32_le()? as i32;
                pending.expire_at_ms = Some(i64::from(secs) * 1000);
            }
            enc::RDB_OPCODE_EXPIRETIME_MS => pending.expire_at_ms = Some(r.read_u64_le()? as i64),
            enc::RDB_OPCODE_FREQ => pending.freq = Some(r.read_u8()?),
            enc::RDB_OPCODE_IDLE => pending.idle_secs = Some(r.read_len_plain()?),
            enc::RDB_OPCODE_EOF => break,
            enc::RDB_OPCODE_SELECTDB => {
                db = r.read_len_plain()?;
                v.select_db(db).map_err(rejected(at))?;
            }
            enc::RDB_OPCODE_RESIZEDB => {
                let db_size = r.read_len_plain()?;
                let expires_size = r.read_len_plain()?;
                v.resize_db(db_size, expires_size).map_err(rejected(at))?;
            }
            enc::RDB_OPCODE_AUX => {
                let key = r.read_string()?;
                let value = r.read_string()?;
                v.aux(&key, &value).map_err(rejected(at))?;
            }
            enc::RDB_OPCODE_MODULE_AUX => {
                let module = module_name(r.read_len_plain()?);
                return Err(LoadError::at(at, LoadErrorKind::ModuleAux { module }));
            }
            enc::RDB_OPCODE_FUNCTION_PRE_GA => return Err(LoadError::at(at, LoadErrorKind::FunctionPreGa)),
            enc::RDB_OPCODE_FUNCTION2 => {
                let code = r.read_string()?;
                v.function(&code).map_err(rejected(at))?;
                functions += 1;
            }
            t if !enc::is_object_type(t) => return Err(LoadError::at(at, LoadErrorKind::UnknownType { type_byte: t })),
            t => {
                let key = r.read_string()?;
                let value = match rdb::decode_value(t, &mut r) {
                    Ok(value) => value,
                    Err(RdbError::UnsupportedType { type_byte, .. }) => {
                        return Err(LoadError::at(at, LoadErrorKind::UnsupportedType { type_byte, key }))
                    }
                    Err(e) => return Err(e.into()),
                };
                let e = Entry {
                    db,
                    key,
                    value,
                    expire_at_ms: pending.expire_at_ms.take(),
                    idle_secs: pending.idle_secs.take(),
                    freq: pending.freq.take(),
                };
                v.entry(e).map_err(rejected(at))?;
                keys += 1;
            }
        }
    }

    if version >= FIRST_CHECKSUM_VERSION {
        let covered = r.position();
        let found = r.read_u64_le()?;
        if opts.verify_checksum && found != 0 {
            let expected = crc64(0, &data[..covered]);
            if expected != found {
                return Err(LoadError::at(covered, LoadErrorKind::ChecksumMismatch { expected, found }));
            }
        }
    }
    Ok(Summary { version, keys, functions, bytes: r.position() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_digits_read_like_atoi() {
        assert_eq!(atoi(b"0010"), 10);
        assert_eq!(atoi(b" 010"), 10);
        assert_eq!(atoi(b"+009"), 9);
        assert_eq!(atoi(b"-001"), -1);
        assert_eq!(atoi(b"1abc"), 1);
        assert_eq!(atoi(b"00 1"), 0);
        assert_eq!(atoi(b"abcd"), 0);
    }

    #[test]
    fn module_names_decode() {
        // Module ids pack nine 6-bit characters above a 10-bit encoding version.
        let encode = |name: &[u8; 9], ver: u64| {
            const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut id = 0u64;
            for c in name {
                id = (id << 6) | CHARSET.iter().position(|x| x == c).unwrap() as u64;
            }
            (id << 10) | ver
        };
        assert_eq!(module_name(encode(b"ReJSON-RL", 3)), "ReJSON-RL");
        assert_eq!(module_name(encode(b"MBbloom--", 0)), "MBbloom--");
    }
}
