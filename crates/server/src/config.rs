//! The configuration registry: every setting Tandem has, with Redis's names, types, defaults
//! and mutability, read from a redis.conf-style file and `--name value` flags, and served by
//! `CONFIG GET/SET`.
//!
//! Values are kept as the canonical text `CONFIG GET` prints (memory in bytes, booleans as
//! yes/no). The few values read on hot paths are mirrored into typed fields on every change.

use commands::pubsub::{ClassLimit, ClientClass, OutputLimits};
use commands::session::ReadConsistency;
use engine::glob::glob_match;
use engine::limits::{Limits, SharedLimits};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// The type of a setting, which decides parsing and printing.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// yes / no
    Bool,
    /// An integer in a range.
    Int(i64, i64),
    /// A byte count with optional unit (`512mb`, `1gb`, `100k`).
    Memory,
    /// Free text.
    Str,
    /// One word of a fixed set.
    Enum(&'static [&'static str]),
    /// Space-separated list of text (`bind`).
    List,
    /// `save` points: pairs of integers, or the empty string.
    Save,
    /// A file name without directories (`dbfilename`).
    FileName,
    /// `client-output-buffer-limit`: `<class> <hard> <soft> <seconds>` groups; a change
    /// replaces only the classes it names.
    OutputLimits,
    /// `notify-keyspace-events`: class letters, shown in Redis's order.
    NotifyFlags,
}

/// One setting.
#[derive(Clone, Copy, Debug)]
pub struct Def {
    /// Name (lower-case).
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
    /// Default, in file syntax.
    pub default: &'static str,
    /// True if `CONFIG SET` may change it at run time.
    pub mutable: bool,
}

const fn def(name: &'static str, kind: Kind, default: &'static str, mutable: bool) -> Def {
    Def { name, kind, default, mutable }
}

/// Every setting, as data.
pub const DEFS: &[Def] = &[
    def("port", Kind::Int(0, 65535), "6379", false),
    def("bind", Kind::List, "127.0.0.1 -::1", false),
    def("protected-mode", Kind::Bool, "yes", true),
    def("requirepass", Kind::Str, "", true),
    def("databases", Kind::Int(1, i32::MAX as i64), "16", false),
    def("loglevel", Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]), "notice", true),
    def("logfile", Kind::Str, "", false),
    def("dir", Kind::Str, ".", true),
    def("maxclients", Kind::Int(1, i32::MAX as i64), "10000", true),
    def("timeout", Kind::Int(0, i32::MAX as i64), "0", true),
    def("tcp-keepalive", Kind::Int(0, i32::MAX as i64), "300", true),
    def("tcp-backlog", Kind::Int(0, i32::MAX as i64), "511", false),
    def("proto-max-bulk-len", Kind::Memory, "512mb", true),
    def("hz", Kind::Int(1, 500), "10", true),
    def("daemonize", Kind::Enum(&["no"]), "no", false),
    def("pidfile", Kind::Str, "", false),
    def("maxmemory-policy", Kind::Enum(&["noeviction"]), "noeviction", true),
    def("active-expire-enabled", Kind::Bool, "yes", true),
    def("keyspace-shards", Kind::Int(1, 65536), "256", false),
    def("io-threads", Kind::Int(1, 128), "1", false),
    // Threads that run connections and commands; 0 means one per CPU core.
    def("worker-threads", Kind::Int(0, 1024), "0", false), // 0 = cores - 1, at least 1
    // RDB. `save` is off by default: Tandem started with no configuration keeps data in memory
    // only (Redis's built-in default has save points; set them to get its behaviour).
    def("save", Kind::Save, "", true),
    def("dbfilename", Kind::FileName, "dump.rdb", true),
    def("rdbcompression", Kind::Bool, "yes", true),
    def("rdbchecksum", Kind::Bool, "yes", false),
    def("stop-writes-on-bgsave-error", Kind::Bool, "yes", true),
    // AOF (see `server::aof`).
    def("appendonly", Kind::Bool, "no", true),
    def("appendfsync", Kind::Enum(&["always", "everysec", "no"]), "everysec", true),
    def("appenddirname", Kind::FileName, "appendonlydir", false),
    def("appendfilename", Kind::FileName, "appendonly.aof", false),
    def("aof-use-rdb-preamble", Kind::Bool, "yes", true),
    def("aof-load-truncated", Kind::Bool, "yes", true),
    def("auto-aof-rewrite-percentage", Kind::Int(0, i32::MAX as i64), "100", true),
    def("auto-aof-rewrite-min-size", Kind::Memory, "64mb", true),
    // Tandem's own: the share of one core a background snapshot (BGSAVE, AOF rewrite) may use.
    // It rests in between, so commands keep their latency while it runs; 100 = flat out.
    def("snapshot-cpu-percent", Kind::Int(1, 100), "25", true),
    // Tandem's cluster (Raft replication). A node is in cluster mode when it has seeds or a
    // bootstrap count; `cluster-port` 0 means `port` + 10000 as in Redis.
    def("cluster-seeds", Kind::Str, "", false),
    // `dns:NAME[:port]`: more seeds from DNS (SRV, else A/AAAA records), e.g. a Kubernetes
    // headless Service; `cluster-discovery-resolver ip[:port]` picks the name server.
    def("cluster-discovery", Kind::Str, "", false),
    def("cluster-discovery-resolver", Kind::Str, "", false),
    def("cluster-bootstrap-expect", Kind::Int(0, 1000), "0", false),
    def("cluster-port", Kind::Int(0, 65535), "0", false),
    def("cluster-announce-ip", Kind::Str, "", false),
    def("cluster-node-id", Kind::Str, "", false),
    def("cluster-voters", Kind::Int(1, 7), "3", false),
    // A member that has not answered the leader for this long is removed from the cluster
    // (and replaced by a learner if there is one). The name and default are Redis's.
    def("cluster-node-timeout", Kind::Int(500, i32::MAX as i64), "15000", false),
    // A Raft snapshot (an RDB image) is taken once the log holds this many entries since the
    // last one, or as many as the dataset has keys if that is more.
    def("cluster-snapshot-entries", Kind::Int(10, i32::MAX as i64), "10000", false),
    // How long a client's write may wait for its entry to commit before the reply says its
    // outcome is unknown.
    def("cluster-write-timeout", Kind::Int(100, i32::MAX as i64), "5000", true),
    // How up to date reads are in a cluster (per connection: `TANDEM CONSISTENCY`). The
    // default is what one Redis gives: every read sees every acknowledged write.
    def("read-consistency", Kind::Enum(&["linearizable", "session", "stale"]), "linearizable", true),
    // Encodings of small collections (see `engine::limits`); the defaults are redis-server 7's.
    def("list-max-listpack-size", Kind::Int(i32::MIN as i64, i32::MAX as i64), "-2", true),
    // Accepted for compatibility; inner list nodes are not compressed.
    def("list-compress-depth", Kind::Int(0, i32::MAX as i64), "0", true),
    def("hash-max-listpack-entries", Kind::Int(0, i64::MAX), "512", true),
    def("hash-max-listpack-value", Kind::Int(0, i64::MAX), "64", true),
    def("set-max-intset-entries", Kind::Int(0, i64::MAX), "512", true),
    def("set-max-listpack-entries", Kind::Int(0, i64::MAX), "128", true),
    def("set-max-listpack-value", Kind::Int(0, i64::MAX), "64", true),
    def("zset-max-listpack-entries", Kind::Int(0, i64::MAX), "128", true),
    def("zset-max-listpack-value", Kind::Int(0, i64::MAX), "64", true),
    def("notify-keyspace-events", Kind::NotifyFlags, "", true),
    def("tracking-table-max-keys", Kind::Int(0, i64::MAX), "1000000", true),
    def(
        "client-output-buffer-limit",
        Kind::OutputLimits,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        true,
    ),
];

/// Old names Redis still accepts for settings (alias, name); `CONFIG GET` lists both.
const ALIASES: &[(&str, &str)] = &[
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
];

/// Canonical text of a value for `CONFIG GET`, or the error text Redis gives for bad input.
fn normalise(d: &Def, raw: &str) -> Result<String, String> {
    match d.kind {
        Kind::Bool => match raw.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int(min, max) => {
            let v: i64 = raw.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if v < min || v > max {
                return Err(format!("argument must be between {min} and {max} inclusive"));
            }
            Ok(v.to_string())
        }
        Kind::Memory => {
            parse_memory(raw).map(|v| v.to_string()).ok_or_else(|| "argument must be a memory value".to_string())
        }
        Kind::Str => Ok(raw.to_string()),
        Kind::Enum(words) => {
            let l = raw.to_ascii_lowercase();
            if words.contains(&l.as_str()) {
                Ok(l)
            } else {
                Err(format!("argument(s) must be one of the following: {}", words.join(", ")))
            }
        }
        Kind::List => Ok(raw.split_whitespace().collect::<Vec<_>>().join(" ")),
        Kind::FileName => {
            if raw.contains('/') {
                return Err(format!("{} can't be a path, just a filename", d.name));
            }
            Ok(raw.to_string())
        }
        Kind::NotifyFlags => commands::notify::parse_flags(raw)
            .map(commands::notify::render_flags)
            .ok_or_else(|| commands::notify::BAD_FLAGS.to_string()),
        Kind::OutputLimits => output_limits(raw).map(|groups| {
            groups
                .iter()
                .map(|(c, l)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_seconds))
                .collect::<Vec<_>>()
                .join(" ")
        }),
        Kind::Save => {
            let parts: Vec<&str> = raw.split_whitespace().collect();
            if !parts.len().is_multiple_of(2) || parts.iter().any(|p| p.parse::<u64>().is_err()) {
                return Err("Invalid save parameters".into());
            }
            Ok(parts.join(" "))
        }
    }
}

/// Parses `client-output-buffer-limit` groups (Redis's texts for the errors); class names
/// come out as `CONFIG GET` prints them (`replica` is `slave` there).
fn output_limits(raw: &str) -> Result<Vec<(&'static str, ClassLimit)>, String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut groups = Vec::new();
    for g in words.chunks_exact(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string();
        let hard = parse_memory(g[1]).ok_or_else(bad)?;
        let soft = parse_memory(g[2]).ok_or_else(bad)?;
        let soft_seconds: u64 = g[3].parse().map_err(|_| bad())?;
        groups.push((class, ClassLimit { hard, soft, soft_seconds }));
    }
    Ok(groups)
}

/// The current value with the classes `update` names replaced (both canonical).
fn merge_output_limits(current: &str, update: &str) -> String {
    let mut all = output_limits(current).unwrap_or_default();
    for (class, l) in output_limits(update).unwrap_or_default() {
        match all.iter_mut().find(|(c, _)| *c == class) {
            Some(slot) => slot.1 = l,
            None => all.push((class, l)),
        }
    }
    ClientClass::ALL
        .iter()
        .filter_map(|(_, name)| all.iter().find(|(c, _)| c == name))
        .map(|(c, l)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_seconds))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses Redis's memory syntax: a number with an optional k/kb/m/mb/g/gb unit.
pub fn parse_memory(s: &str) -> Option<u64> {
    let l = s.to_ascii_lowercase();
    let (digits, mul) = [
        ("gb", 1u64 << 30),
        ("g", 1_000_000_000),
        ("mb", 1 << 20),
        ("m", 1_000_000),
        ("kb", 1 << 10),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, mul)| l.strip_suffix(suffix).map(|d| (d.to_string(), *mul)))
    .unwrap_or((l.clone(), 1));
    let v: u64 = digits.parse().ok()?;
    v.checked_mul(mul)
}

/// The live configuration.
pub struct Config {
    values: RwLock<BTreeMap<&'static str, String>>,
    /// `requirepass`, mirrored.
    pub requirepass: RwLock<Option<Vec<u8>>>,
    /// `proto-max-bulk-len`, mirrored.
    pub max_bulk_len: AtomicU64,
    /// `protected-mode`, mirrored.
    pub protected_mode: AtomicBool,
    /// `maxclients`, mirrored.
    pub maxclients: AtomicU64,
    /// `timeout` (seconds), mirrored.
    pub timeout: AtomicU64,
    /// `active-expire-enabled` (also `DEBUG SET-ACTIVE-EXPIRE`), mirrored.
    pub active_expire: AtomicBool,
    /// `hz`, mirrored.
    pub hz: AtomicU64,
    /// `read-consistency`, mirrored (index into `ReadConsistency::ALL`).
    pub read_consistency: AtomicU8,
    /// The collection encoding thresholds, mirrored; the keyspace reads the same object.
    pub limits: Arc<SharedLimits>,
    /// `client-output-buffer-limit`, mirrored; every client's mailbox reads the same object.
    pub output_limits: Arc<OutputLimits>,
    /// `tracking-table-max-keys`, mirrored into the tracking registry's limit.
    pub tracking_max_keys: Arc<AtomicU64>,
    /// `notify-keyspace-events` as class bits, mirrored.
    pub notify_flags: AtomicU32,
}

/// An error in the configuration file or flags, naming where it is.
#[derive(Debug)]
pub struct ConfigError {
    /// Line number in the combined text (1-based).
    pub line: usize,
    /// The offending line.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.2.4) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
            self.line, self.text, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

fn find(name: &str) -> Option<&'static Def> {
    let name = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, real)| real);
    DEFS.iter().find(|d| d.name == name)
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// All defaults.
    pub fn new() -> Config {
        let mut values = BTreeMap::new();
        for d in DEFS {
            values.insert(d.name, normalise(d, d.default).expect("defaults are valid"));
        }
        let c = Config {
            values: RwLock::new(values),
            requirepass: RwLock::new(None),
            max_bulk_len: AtomicU64::new(0),
            protected_mode: AtomicBool::new(true),
            maxclients: AtomicU64::new(0),
            timeout: AtomicU64::new(0),
            active_expire: AtomicBool::new(true),
            hz: AtomicU64::new(10),
            read_consistency: AtomicU8::new(0),
            limits: Arc::new(SharedLimits::default()),
            output_limits: Arc::new(OutputLimits::default()),
            tracking_max_keys: Arc::new(AtomicU64::new(0)),
            notify_flags: AtomicU32::new(0),
        };
        c.mirror();
        c
    }

    /// Applies a redis.conf-style text (a file's contents followed by the command-line
    /// options turned into lines, as redis-server does). Unknown names and bad values stop
    /// with an error naming the line.
    pub fn load_text(&self, text: &str) -> Result<(), ConfigError> {
        let mut save_seen = false;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let err = |reason: String| ConfigError { line: i + 1, text: trimmed.to_string(), reason };
            let words = split_args(trimmed).ok_or_else(|| err("Unbalanced quotes in configuration line".into()))?;
            if words.is_empty() {
                continue;
            }
            let name = words[0].to_ascii_lowercase();
            let Some(d) = find(&name) else {
                return Err(err("Bad directive or wrong number of arguments".into()));
            };
            let value = words[1..].join(" ");
            if words.len() < 2 && !matches!(d.kind, Kind::List | Kind::Save | Kind::Str) {
                return Err(err("wrong number of arguments".into()));
            }
            let mut v = normalise(d, &value).map_err(err)?;
            if matches!(d.kind, Kind::Save) {
                // In a config file `save` lines add up; the first one replaces the default and
                // `save ""` clears them.
                if save_seen && !v.is_empty() {
                    let prev = self.get("save");
                    if !prev.is_empty() {
                        v = format!("{prev} {v}");
                    }
                }
                save_seen = true;
            }
            if matches!(d.kind, Kind::OutputLimits) {
                v = merge_output_limits(&self.get(d.name), &v);
            }
            if matches!(d.kind, Kind::NotifyFlags) {
                // From the value as given: the text shown drops `n` next to `A`.
                self.notify_flags.store(commands::notify::parse_flags(&value).unwrap_or(0), Ordering::Relaxed);
            }
            self.values.write().insert(d.name, v);
        }
        self.mirror();
        Ok(())
    }

    fn mirror(&self) {
        let v = self.values.read();
        let pass = &v["requirepass"];
        *self.requirepass.write() = if pass.is_empty() { None } else { Some(pass.as_bytes().to_vec()) };
        self.max_bulk_len.store(v["proto-max-bulk-len"].parse().unwrap_or(512 << 20), Ordering::Relaxed);
        self.protected_mode.store(v["protected-mode"] == "yes", Ordering::Relaxed);
        self.maxclients.store(v["maxclients"].parse().unwrap_or(10000), Ordering::Relaxed);
        self.timeout.store(v["timeout"].parse().unwrap_or(0), Ordering::Relaxed);
        self.active_expire.store(v["active-expire-enabled"] == "yes", Ordering::Relaxed);
        let level = ReadConsistency::ALL.iter().position(|(_, n)| *n == v["read-consistency"]).unwrap_or(0);
        self.read_consistency.store(level as u8, Ordering::Relaxed);
        self.hz.store(v["hz"].parse().unwrap_or(10), Ordering::Relaxed);
        self.tracking_max_keys.store(v["tracking-table-max-keys"].parse().unwrap_or(1_000_000), Ordering::Relaxed);
        for (class, l) in output_limits(&v["client-output-buffer-limit"]).unwrap_or_default() {
            let class = ClientClass::ALL.iter().find(|(_, n)| *n == class).map_or(ClientClass::Normal, |(c, _)| *c);
            self.output_limits.set(class, l);
        }
        let n = |name: &str| v[name].parse::<i64>().unwrap_or(0);
        let u = |name: &str| n(name).max(0) as usize;
        self.limits.set(Limits {
            list_max_listpack_size: n("list-max-listpack-size"),
            hash_max_listpack_entries: u("hash-max-listpack-entries"),
            hash_max_listpack_value: u("hash-max-listpack-value"),
            set_max_intset_entries: u("set-max-intset-entries"),
            set_max_listpack_entries: u("set-max-listpack-entries"),
            set_max_listpack_value: u("set-max-listpack-value"),
            zset_max_listpack_entries: u("zset-max-listpack-entries"),
            zset_max_listpack_value: u("zset-max-listpack-value"),
        });
    }

    /// The current text of a setting.
    pub fn get(&self, name: &str) -> String {
        self.values.read().get(name).cloned().unwrap_or_default()
    }

    /// A setting parsed as an integer.
    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    /// The `read-consistency` setting.
    #[inline]
    pub fn read_consistency(&self) -> ReadConsistency {
        ReadConsistency::ALL[self.read_consistency.load(Ordering::Relaxed) as usize % 3].0
    }

    /// A yes/no setting.
    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name) == "yes"
    }

    /// The `save` points as (seconds, changes) pairs.
    pub fn save_points(&self) -> Vec<(u64, u64)> {
        let v: Vec<u64> = self.get("save").split_whitespace().filter_map(|p| p.parse().ok()).collect();
        v.chunks_exact(2).map(|c| (c[0], c[1])).collect()
    }

    /// `CONFIG GET pattern`.
    pub fn get_matching(&self, pattern: &[u8]) -> Vec<(String, String)> {
        let values = self.values.read();
        let names = values.keys().map(|k| (*k, *k)).chain(ALIASES.iter().map(|(a, real)| (*a, *real)));
        names
            .filter(|(name, _)| glob_match(pattern, name.as_bytes(), true))
            .map(|(name, real)| (name.to_string(), values[real].clone()))
            .collect()
    }

    /// `CONFIG SET` of several pairs: all are validated before any is applied. The error is
    /// the complete reply text.
    pub fn set_many(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        let mut staged: Vec<(&'static str, String)> = Vec::new();
        let mut notify = None;
        for (name, value) in pairs {
            let n = String::from_utf8_lossy(name).to_ascii_lowercase();
            let v = String::from_utf8_lossy(value).into_owned();
            let Some(d) = find(&n) else {
                return Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{n}'"));
            };
            if !d.mutable {
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{n}') - can't set immutable config"
                ));
            }
            if staged.iter().any(|(s, _)| *s == d.name) {
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{n}') - duplicate parameter"
                ));
            }
            let mut v = normalise(d, &v)
                .map_err(|e| format!("ERR CONFIG SET failed (possibly related to argument '{n}') - {e}"))?;
            if matches!(d.kind, Kind::OutputLimits) {
                v = merge_output_limits(&self.get(d.name), &v);
            }
            if matches!(d.kind, Kind::NotifyFlags) {
                notify = commands::notify::parse_flags(&String::from_utf8_lossy(value));
            }
            staged.push((d.name, v));
        }
        {
            let mut w = self.values.write();
            for (k, v) in staged {
                w.insert(k, v);
            }
        }
        if let Some(flags) = notify {
            self.notify_flags.store(flags, Ordering::Relaxed);
        }
        self.mirror();
        Ok(())
    }

    /// Sets one value internally (no mutability check), e.g. `DEBUG SET-ACTIVE-EXPIRE`.
    pub fn force_set(&self, name: &'static str, value: String) {
        self.values.write().insert(name, value);
        self.mirror();
    }
}

/// Splits a configuration line into words with Redis's `sdssplitargs` rules (the same
/// splitter as inline commands). None for unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let words = protocol::split_args(line.as_bytes()).ok()?;
    Some(words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_flags_apply_and_errors_name_the_line() {
        let c = Config::new();
        c.load_text("# comment\nport 7000\nrequirepass \"a b\"\nproto-max-bulk-len 1mb\n").unwrap();
        assert_eq!(c.get("port"), "7000");
        assert_eq!(c.requirepass.read().as_deref(), Some(&b"a b"[..]));
        assert_eq!(c.get("proto-max-bulk-len"), "1048576");
        let e = c.load_text("port 1\nnosuchthing 5\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = c.load_text("port notanumber\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("integer"));
    }

    #[test]
    fn config_set_is_all_or_nothing() {
        let c = Config::new();
        let err = c.set_many(&[(b"timeout", b"5"), (b"port", b"1")]).unwrap_err();
        assert!(err.contains("immutable"), "{err}");
        assert_eq!(c.get("timeout"), "0");
        c.set_many(&[(b"timeout", b"5")]).unwrap();
        assert_eq!(c.get("timeout"), "5");
        assert_eq!(c.get_matching(b"time*"), vec![("timeout".to_string(), "5".to_string())]);
    }

    #[test]
    fn output_limits_change_only_the_classes_named() {
        let c = Config::new();
        c.set_many(&[(b"client-output-buffer-limit", b"pubsub 1mb 512kb 10 normal 1gb 0 0")]).unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            "normal 1073741824 0 0 slave 268435456 67108864 60 pubsub 1048576 524288 10"
        );
        let l = c.output_limits.get(ClientClass::PubSub);
        assert_eq!((l.hard, l.soft, l.soft_seconds), (1 << 20, 512 << 10, 10));
        for (bad, why) in [
            (&b"pubsub 1mb 0"[..], "Wrong number"),
            (b"master 1 1 1", "Invalid client class"),
            (b"pubsub x 1 1", "Error in hard"),
            (b"pubsub 1 1 -1", "Error in hard"),
        ] {
            let e = c.set_many(&[(b"client-output-buffer-limit", bad)]).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
