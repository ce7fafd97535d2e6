//! Command facts as data: arity, flags, key specs, ACL categories, arguments.
//!
//! The facts come from `data/redis-commands.json`, a verbatim copy of `shared/redis-commands.json`
//! (Valkey 8.0.1's command specs with prose removed, BSD-3-Clause; see NOTICE). They are parsed
//! once at start-up; everything that needs a fact about a command (arity check, key locking,
//! `COMMAND`, what gets logged) reads it from here, never from a retyped constant.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The embedded facts file.
pub const SPEC_JSON: &str = include_str!("../data/redis-commands.json");

/// Tandem's own commands (`TANDEM ...`), in the same format.
pub const TANDEM_SPEC_JSON: &str = include_str!("../data/tandem-commands.json");

/// Command flags (Redis's `CMD_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(pub u32);

macro_rules! flags {
    ($($name:ident = $bit:expr, $json:literal, $reply:expr;)*) => {
        impl Flags {
            $(
                #[doc = concat!("`", $json, "`")]
                pub const $name: Flags = Flags(1 << $bit);
            )*
            /// Every flag with its JSON name and its name in `COMMAND INFO` (None = hidden),
            /// in the order Redis prints them.
            pub const ALL: &'static [(Flags, &'static str, Option<&'static str>)] = &[
                $((Flags::$name, $json, $reply),)*
            ];
        }
    };
}

flags! {
    WRITE = 0, "WRITE", Some("write");
    READONLY = 1, "READONLY", Some("readonly");
    DENYOOM = 2, "DENYOOM", Some("denyoom");
    MODULE = 3, "MODULE", Some("module");
    ADMIN = 4, "ADMIN", Some("admin");
    PUBSUB = 5, "PUBSUB", Some("pubsub");
    NOSCRIPT = 6, "NOSCRIPT", Some("noscript");
    BLOCKING = 7, "BLOCKING", Some("blocking");
    LOADING = 8, "LOADING", Some("loading");
    STALE = 9, "STALE", Some("stale");
    SKIP_MONITOR = 10, "SKIP_MONITOR", Some("skip_monitor");
    SKIP_SLOWLOG = 11, "SKIP_SLOWLOG", Some("skip_slowlog");
    ASKING = 12, "ASKING", Some("asking");
    FAST = 13, "FAST", Some("fast");
    NO_AUTH = 14, "NO_AUTH", Some("no_auth");
    MAY_REPLICATE = 15, "MAY_REPLICATE", None;
    SENTINEL = 16, "SENTINEL", None;
    ONLY_SENTINEL = 17, "ONLY_SENTINEL", None;
    NO_MANDATORY_KEYS = 18, "NO_MANDATORY_KEYS", Some("no_mandatory_keys");
    PROTECTED = 19, "PROTECTED", None;
    NO_ASYNC_LOADING = 20, "NO_ASYNC_LOADING", Some("no_async_loading");
    NO_MULTI = 21, "NO_MULTI", Some("no_multi");
    MOVABLE_KEYS = 22, "MOVABLE_KEYS", Some("movablekeys");
    ALLOW_BUSY = 23, "ALLOW_BUSY", Some("allow_busy");
    TOUCHES_ARBITRARY_KEYS = 24, "TOUCHES_ARBITRARY_KEYS", None;
}

impl Flags {
    /// True if every bit of `other` is set.
    #[inline]
    pub fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set.
    #[inline]
    pub fn has_any(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
}

/// ACL categories in the order Redis lists them.
pub const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

fn acl_bit(name: &str) -> u32 {
    let lower = name.to_ascii_lowercase();
    let i = ACL_CATEGORIES.iter().position(|c| *c == lower).unwrap_or_else(|| panic!("unknown ACL category {name}"));
    1 << i
}

/// Where a key spec starts looking for keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeginSearch {
    /// At a fixed argument index.
    Index(usize),
    /// After a keyword, searched from `startfrom` (negative: from the end, backwards).
    Keyword {
        /// The keyword.
        keyword: String,
        /// Where to start searching.
        startfrom: i64,
    },
    /// Only the command knows.
    Unknown,
}

/// How a key spec finds keys once it has started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindKeys {
    /// A range: `lastkey` relative to the start (negative: from the end), every `step`.
    Range {
        /// Last key, relative to the start; -1 is the last argument.
        lastkey: i64,
        /// Step between keys.
        step: usize,
        /// With lastkey -1: a divisor limiting the range.
        limit: usize,
    },
    /// A count argument followed by keys.
    Keynum {
        /// Index of the count, relative to the start.
        keynumidx: usize,
        /// Index of the first key, relative to the start.
        firstkey: usize,
        /// Step between keys.
        step: usize,
    },
    /// Only the command knows.
    Unknown,
}

/// One key spec.
#[derive(Clone, Debug)]
pub struct KeySpec {
    /// Where the search begins.
    pub begin: BeginSearch,
    /// How keys are found.
    pub find: FindKeys,
    /// Flags such as `RW`, `ACCESS` (JSON names).
    pub flags: Vec<String>,
}

/// Everything known about one command or subcommand.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// Lower-case name; subcommands are `container|sub`.
    pub name: String,
    /// For subcommands, the lower-case container name.
    pub container: Option<String>,
    /// Group (`string`, `generic`, ...).
    pub group: String,
    /// Version that introduced it.
    pub since: String,
    /// Arity: positive = exact, negative = at least.
    pub arity: i64,
    /// Flags, including implicit ones (`MOVABLE_KEYS`).
    pub flags: Flags,
    /// ACL category bits (index in [`ACL_CATEGORIES`]), including implicit ones.
    pub acl: u32,
    /// Tips such as `nondeterministic_output` (lower-case).
    pub tips: Vec<String>,
    /// Key specs.
    pub key_specs: Vec<KeySpec>,
    /// The legacy (first, last, step) key range of `COMMAND INFO`.
    pub legacy_range: (i64, i64, i64),
    /// Complexity text as in the facts file.
    pub complexity: Option<String>,
    /// Versions where the command's behaviour changed.
    pub history: Vec<String>,
    /// Deprecation version, if deprecated.
    pub deprecated_since: Option<String>,
    /// Replacement, if deprecated.
    pub replaced_by: Option<String>,
    /// Documentation flags (`deprecated`, `syscmd`).
    pub doc_flags: Vec<String>,
    /// The argument tree, kept as data for `COMMAND DOCS`.
    pub arguments: serde_json::Value,
}

#[derive(Deserialize)]
struct RawFile {
    commands: BTreeMap<String, RawSpec>,
}

#[derive(Deserialize)]
struct RawSpec {
    arity: i64,
    group: String,
    since: String,
    container: Option<String>,
    #[serde(default)]
    command_flags: Vec<String>,
    #[serde(default)]
    acl_categories: Vec<String>,
    #[serde(default)]
    command_tips: Vec<String>,
    #[serde(default)]
    key_specs: Vec<RawKeySpec>,
    complexity: Option<String>,
    #[serde(default)]
    history: Vec<String>,
    deprecated_since: Option<String>,
    replaced_by: Option<String>,
    #[serde(default)]
    doc_flags: Vec<String>,
    #[serde(default)]
    arguments: serde_json::Value,
}

#[derive(Deserialize)]
struct RawKeySpec {
    begin_search: BTreeMap<String, serde_json::Value>,
    find_keys: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    flags: Vec<String>,
}

fn int(v: &serde_json::Value, field: &str) -> i64 {
    v.get(field).and_then(|x| x.as_i64()).unwrap_or(0)
}

fn key_spec(raw: RawKeySpec) -> KeySpec {
    let begin = match raw.begin_search.iter().next() {
        Some((k, v)) if k == "index" => BeginSearch::Index(int(v, "pos") as usize),
        Some((k, v)) if k == "keyword" => BeginSearch::Keyword {
            keyword: v.get("keyword").and_then(|x| x.as_str()).unwrap_or("").to_string(),
            startfrom: int(v, "startfrom"),
        },
        _ => BeginSearch::Unknown,
    };
    let find = match raw.find_keys.iter().next() {
        Some((k, v)) if k == "range" => FindKeys::Range {
            lastkey: int(v, "lastkey"),
            step: int(v, "step") as usize,
            limit: int(v, "limit") as usize,
        },
        Some((k, v)) if k == "keynum" => FindKeys::Keynum {
            keynumidx: int(v, "keynumidx") as usize,
            firstkey: int(v, "firstkey") as usize,
            step: int(v, "step") as usize,
        },
        _ => FindKeys::Unknown,
    };
    KeySpec { begin, find, flags: raw.flags }
}

/// Computes the legacy key range and whether keys are "movable", as Redis's
/// `populateCommandLegacyRangeSpec` does.
fn legacy_range(specs: &[KeySpec]) -> ((i64, i64, i64), bool) {
    if specs.is_empty() {
        return ((0, 0, 0), false);
    }
    let incomplete = |s: &KeySpec| s.flags.iter().any(|f| f == "INCOMPLETE");
    if specs.len() == 1 {
        if let (BeginSearch::Index(pos), FindKeys::Range { lastkey, step, .. }) = (&specs[0].begin, &specs[0].find) {
            let last = if *lastkey >= 0 { lastkey + *pos as i64 } else { *lastkey };
            return ((*pos as i64, last, *step as i64), incomplete(&specs[0]));
        }
    }
    let mut movable = false;
    let mut first = i64::MAX;
    let mut last: i64 = 0;
    let mut prev_last: i64 = 0;
    for s in specs {
        let (pos, lastkey, step) = match (&s.begin, &s.find) {
            (BeginSearch::Index(pos), FindKeys::Range { lastkey, step, .. }) => (*pos as i64, *lastkey, *step),
            _ => {
                movable = true;
                continue;
            }
        };
        if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
            movable = true;
            continue;
        }
        if incomplete(s) {
            movable = true;
        }
        first = first.min(pos);
        let abs = if lastkey >= 0 { lastkey + pos } else { lastkey };
        // Redis compares as unsigned so that a negative (from the end) index wins.
        last = if (abs as u64) > (last as u64) { abs } else { last };
        prev_last = last;
    }
    if first == i64::MAX {
        return ((0, 0, 0), true);
    }
    ((first, last, 1), movable)
}

/// Parses the embedded facts into specs, keyed by lower-case name (`container|sub` for
/// subcommands).
pub fn load_specs() -> BTreeMap<String, CommandSpec> {
    let file: RawFile = serde_json::from_str(SPEC_JSON).expect("embedded command facts are valid JSON");
    let ours: RawFile = serde_json::from_str(TANDEM_SPEC_JSON).expect("Tandem's command facts are valid JSON");
    let mut out = BTreeMap::new();
    for (name, raw) in file.commands.into_iter().chain(ours.commands) {
        let lname = name.to_ascii_lowercase().replace(' ', "|");
        let mut flags = Flags::default();
        for f in &raw.command_flags {
            let (bit, _, _) = Flags::ALL
                .iter()
                .find(|(_, json, _)| json == f)
                .unwrap_or_else(|| panic!("unknown command flag {f} on {name}"));
            flags = flags | *bit;
        }
        let mut acl = 0u32;
        for c in &raw.acl_categories {
            acl |= acl_bit(c);
        }
        // Implicit categories, as Redis's setImplicitACLCategories.
        if flags.has(Flags::WRITE) {
            acl |= acl_bit("write");
        }
        if flags.has(Flags::READONLY) && acl & acl_bit("scripting") == 0 {
            acl |= acl_bit("read");
        }
        if flags.has(Flags::ADMIN) {
            acl |= acl_bit("admin") | acl_bit("dangerous");
        }
        if flags.has(Flags::PUBSUB) {
            acl |= acl_bit("pubsub");
        }
        if flags.has(Flags::FAST) {
            acl |= acl_bit("fast");
        }
        if flags.has(Flags::BLOCKING) {
            acl |= acl_bit("blocking");
        }
        if acl & acl_bit("fast") == 0 {
            acl |= acl_bit("slow");
        }
        let key_specs: Vec<KeySpec> = raw.key_specs.into_iter().map(key_spec).collect();
        let (legacy, movable) = legacy_range(&key_specs);
        if movable {
            flags = flags | Flags::MOVABLE_KEYS;
        }
        let spec = CommandSpec {
            name: lname.clone(),
            container: raw.container.map(|c| c.to_ascii_lowercase()),
            group: raw.group,
            since: raw.since,
            arity: raw.arity,
            flags,
            acl,
            tips: raw.command_tips.iter().map(|t| t.to_ascii_lowercase()).collect(),
            key_specs,
            legacy_range: legacy,
            complexity: raw.complexity,
            history: raw.history,
            deprecated_since: raw.deprecated_since,
            replaced_by: raw.replaced_by,
            doc_flags: raw.doc_flags.iter().map(|t| t.to_ascii_lowercase()).collect(),
            arguments: raw.arguments,
        };
        out.insert(lname, spec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_parse_and_match_redis_legacy_ranges() {
        let specs = load_specs();
        let get = &specs["get"];
        assert_eq!(get.arity, 2);
        assert!(get.flags.has(Flags::READONLY | Flags::FAST));
        assert_eq!(get.legacy_range, (1, 1, 1));
        let mset = &specs["mset"];
        assert_eq!(mset.legacy_range, (1, -1, 2));
        assert!(!mset.flags.has(Flags::MOVABLE_KEYS));
        let zunionstore = &specs["zunionstore"];
        assert!(zunionstore.flags.has(Flags::MOVABLE_KEYS));
        assert_eq!(zunionstore.legacy_range, (1, 1, 1));
        assert!(specs.contains_key("object|encoding"));
        assert_eq!(specs["object|encoding"].legacy_range, (2, 2, 1));
        // Implicit ACL categories: GET is @read @string @fast.
        let cats: Vec<&str> =
            ACL_CATEGORIES.iter().enumerate().filter(|(i, _)| get.acl & (1 << i) != 0).map(|(_, c)| *c).collect();
        assert_eq!(cats, ["read", "string", "fast"]);
    }

    #[test]
    fn embedded_facts_equal_the_shared_file_when_present() {
        // The repo carries a verbatim copy; when the shared file sits beside the repo (as in CI),
        // a drift between the two fails here.
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/redis-commands.json");
        if let Ok(text) = std::fs::read_to_string(shared) {
            assert_eq!(text, SPEC_JSON, "data/redis-commands.json differs from shared/redis-commands.json");
        }
    }
}
