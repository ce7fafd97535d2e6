//! Differential tests: the same commands go to `tandem-server` and to Debian's `redis-server`
//! (both started by the test on free ports) and the replies must match, error texts included.
//!
//! # Case files
//!
//! Every `tests/diff/*.cases` file is picked up automatically. Format:
//!
//! ```text
//! # comment line (blank lines are ignored too)
//! SET foo bar          a command line, split like redis-cli ("..." with \n \xHH escapes,
//!                      '...'); the replies must be equal frames (error texts included)
//! ~TTL foo             integers/doubles may differ by 2, or by 1% of the larger value;
//!                      everything else (also inside arrays and maps) compared exactly
//! ?OBJECT IDLETIME k   only the reply type is compared (both integers, both bulk, ...)
//! *KEYS *              arrays, sets and maps compared as multisets (order-insensitive)
//! **COMMAND INFO X     like '*', at every nesting level (replies Redis builds from hash
//!                      tables, e.g. subcommand lists, whose order even Redis does not keep)
//! !DEBUG SLEEP 0       run on both, reply read but not compared
//! -CLIENT REPLY OFF    run on both, no reply read (the command must not answer; a stray
//!                      reply shows up as a mismatch on the next compared line)
//! >SET foo bar         on the case's second connection (opened on first use, same
//!                      protocol; for WATCH, pub/sub...), before any mode prefix: `>!GET foo`
//! ^                    nothing sent: one more frame read from the connection and compared
//!                      exactly (a published message, the second reply of `SUBSCRIBE a b`);
//!                      `>^` on the second connection
//! $ID2                 an argument standing for the second connection's client id on each
//!                      server (`$ID1`: the first's), looked up with `CLIENT ID` first
//! @resp3               directive: the current case runs only under RESP3 (or @resp2)
//! ---                  separates cases
//! ```
//!
//! Each case runs twice, in RESP2 and in RESP3 (`HELLO 3` first), each time on fresh
//! connections to both servers after `FLUSHALL` (so the case starts in db 0 with default
//! connection state). Server-wide state a case changes (`CONFIG SET`, `CLIENT PAUSE`...) must
//! be restored by the case itself. A connection closed by the server (`QUIT`) reads as
//! `<closed>` and matches only another `<closed>`.
//!
//! One Tandem and one Redis serve all case files; every mismatch is reported with
//! `file:line`, the command, the protocol and both replies, and the test fails at the end.
//! `DIFF_FILTER=strings` runs only the files whose name contains `strings`.
//!
//! # Generated sequences
//!
//! `proptest_strings_keys` runs random sequences of string, key, list, hash, set and sorted-set commands (fixed seed, so
//! failures reproduce; `DIFF_PROPTEST_SEED=<u64>` and `DIFF_PROPTEST_CASES=<n>` override).

mod common;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::cases::{parse_cases, replies_match, Case, Mode};
use testkit::client::display_args;
use testkit::{Frame, RawClient, ReadError, ServerProcess};

/// How long to wait for one reply before declaring the server stuck.
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// The directory of the case files.
fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("diff")
}

/// What a server did in answer to one command.
#[derive(Debug, PartialEq)]
enum Got {
    Reply(Frame),
    Closed,
    Timeout,
    Garbage(String),
}

impl Got {
    fn render(&self) -> String {
        match self {
            Got::Reply(f) => f.to_display(),
            Got::Closed => "<connection closed>".into(),
            Got::Timeout => format!("<no reply within {REPLY_TIMEOUT:?}>"),
            Got::Garbage(e) => format!("<{e}>"),
        }
    }
}

fn read_got(c: &mut RawClient) -> Got {
    match c.read_frame_timeout(REPLY_TIMEOUT) {
        Ok(f) => Got::Reply(f),
        Err(e) if e.is_closed() => Got::Closed,
        Err(ReadError::Timeout) => Got::Timeout,
        Err(e) => Got::Garbage(e.to_string()),
    }
}

fn matches(mode: Mode, t: &Got, r: &Got) -> bool {
    match (t, r) {
        (Got::Reply(a), Got::Reply(b)) => replies_match(mode, a, b),
        (Got::Closed, Got::Closed) => true,
        _ => mode == Mode::Ignore && !matches!(t, Got::Timeout) && !matches!(r, Got::Timeout),
    }
}

/// A connection pair, one to each server, set up for a case.
struct Conns {
    t: RawClient,
    r: RawClient,
}

impl Conns {
    /// Fresh connections in protocol `resp`, after `FLUSHALL`.
    fn open(tandem: &ServerProcess, redis: &ServerProcess, resp: u8) -> Result<Conns, String> {
        let mut conns = Conns::connect(tandem, redis, resp)?;
        let (t, r) = conns.exchange(&[b"FLUSHALL".to_vec()]);
        let ok = Got::Reply(Frame::Simple(b"OK".to_vec()));
        if t != ok || r != ok {
            return Err(format!("FLUSHALL answered tandem: {}, redis: {}", t.render(), r.render()));
        }
        Ok(conns)
    }

    /// Fresh connections in protocol `resp`.
    fn connect(tandem: &ServerProcess, redis: &ServerProcess, resp: u8) -> Result<Conns, String> {
        let mut conns = Conns { t: tandem.client(), r: redis.client() };
        if resp == 3 {
            let (t, r) = conns.exchange(&[b"HELLO".to_vec(), b"3".to_vec()]);
            for (name, got) in [("tandem", &t), ("redis", &r)] {
                if !matches!(got, Got::Reply(Frame::Map(_))) {
                    return Err(format!("HELLO 3 on {name} answered {}", got.render()));
                }
            }
        }
        Ok(conns)
    }

    /// Sends without reading.
    fn write(&mut self, args: &[Vec<u8>]) {
        let _ = self.t.write_command(args);
        let _ = self.r.write_command(args);
    }

    /// Sends to both, then reads one reply from each.
    fn exchange(&mut self, args: &[Vec<u8>]) -> (Got, Got) {
        self.write(args);
        (read_got(&mut self.t), read_got(&mut self.r))
    }

    /// Each server's client id of this connection (`CLIENT ID`).
    fn ids(&mut self) -> Result<(Vec<u8>, Vec<u8>), String> {
        match self.exchange(&[b"CLIENT".to_vec(), b"ID".to_vec()]) {
            (Got::Reply(Frame::Integer(t)), Got::Reply(Frame::Integer(r))) => {
                Ok((t.to_string().into_bytes(), r.to_string().into_bytes()))
            }
            (t, r) => Err(format!("CLIENT ID answered tandem: {}, redis: {}", t.render(), r.render())),
        }
    }
}

/// Each server's arguments for a line: `$ID1` and `$ID2` stand for the client id of the
/// case's first and second connection on that server (`CLIENT TRACKING ... REDIRECT $ID2`).
fn with_ids(args: &[Vec<u8>], ids: &[(Vec<u8>, Vec<u8>)]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let pick = |server: usize| {
        args.iter()
            .map(|a| match a.as_slice() {
                b"$ID1" | b"$ID2" => {
                    let (t, r) = &ids[(a[3] - b'1') as usize];
                    if server == 0 {
                        t.clone()
                    } else {
                        r.clone()
                    }
                }
                _ => a.clone(),
            })
            .collect()
    };
    (pick(0), pick(1))
}

/// Runs every case of one file in one protocol, appending mismatches to `failures`.
/// Returns the number of commands compared.
fn run_file(
    name: &str,
    cases: &[Case],
    tandem: &ServerProcess,
    redis: &ServerProcess,
    resp: u8,
    failures: &mut Vec<String>,
) -> usize {
    let mut commands = 0;
    for case in cases {
        if case.only_resp.is_some_and(|only| only != resp) {
            continue;
        }
        let first = match Conns::open(tandem, redis, resp) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}:{} [RESP{resp}] case set-up failed: {e}", case.line_no));
                continue;
            }
        };
        let mut all = vec![first];
        for line in &case.lines {
            commands += 1;
            if line.conn >= all.len() {
                match Conns::connect(tandem, redis, resp) {
                    Ok(c) => all.push(c),
                    Err(e) => {
                        failures.push(format!("{name}:{} [RESP{resp}] second connection failed: {e}", line.line_no));
                        break;
                    }
                }
            }
            let names_ids = line.args.iter().any(|a| a == b"$ID1" || a == b"$ID2");
            if names_ids {
                if all.len() < 2 {
                    match Conns::connect(tandem, redis, resp) {
                        Ok(c) => all.push(c),
                        Err(e) => {
                            failures
                                .push(format!("{name}:{} [RESP{resp}] second connection failed: {e}", line.line_no));
                            break;
                        }
                    }
                }
                let ids: Result<Vec<_>, String> = all.iter_mut().take(2).map(|c| c.ids()).collect();
                let ids = match ids {
                    Ok(ids) => ids,
                    Err(e) => {
                        failures.push(format!("{name}:{} [RESP{resp}] {e}", line.line_no));
                        break;
                    }
                };
                let (ta, ra) = with_ids(&line.args, &ids);
                let conns = &mut all[line.conn];
                let _ = conns.t.write_command(&ta);
                let _ = conns.r.write_command(&ra);
                let (t, r) = (read_got(&mut conns.t), read_got(&mut conns.r));
                if !matches(line.mode, &t, &r) {
                    failures.push(format!(
                        "{name}:{} [RESP{resp}] {}   (case from line {})\n    tandem: {}\n    redis:  {}",
                        line.line_no,
                        line.text,
                        case.line_no,
                        t.render(),
                        r.render()
                    ));
                }
                continue;
            }
            let conns = &mut all[line.conn];
            if line.mode == Mode::NoReply {
                conns.write(&line.args);
                continue;
            }
            let (t, r) = if line.mode == Mode::Receive {
                (read_got(&mut conns.t), read_got(&mut conns.r))
            } else {
                conns.exchange(&line.args)
            };
            if !matches(line.mode, &t, &r) {
                failures.push(format!(
                    "{name}:{} [RESP{resp}] {}{}{}   (case from line {})\n    tandem: {}\n    redis:  {}",
                    line.line_no,
                    if line.conn > 0 { ">" } else { "" },
                    line.mode.prefix(),
                    line.text,
                    case.line_no,
                    t.render(),
                    r.render()
                ));
            }
            if matches!(t, Got::Timeout | Got::Garbage(_)) || matches!(r, Got::Timeout | Got::Garbage(_)) {
                failures.push(format!(
                    "{name}:{} [RESP{resp}] connections out of step: rest of the case skipped",
                    line.line_no
                ));
                break;
            }
        }
    }
    commands
}

/// The `redis_version` a server reports in `INFO server`.
fn redis_version(server: &ServerProcess) -> String {
    match server.client().send(&["INFO", "server"]) {
        Frame::Bulk(text) => String::from_utf8_lossy(&text)
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:").map(str::to_string))
            .unwrap_or_else(|| "(no redis_version)".into()),
        other => other.to_display(),
    }
}

#[test]
fn differential_cases() {
    let started = Instant::now();
    let filter = std::env::var("DIFF_FILTER").unwrap_or_default();
    let (tandem, redis) = common::pair();
    eprintln!("tandem-server {} vs redis-server {}", redis_version(&tandem), redis_version(&redis));
    let mut failures = Vec::new();
    let files = case_files();
    // An exclusion names a case by its first line: one left behind by an edit above the case
    // would silently compare (or skip) another.
    for (file, line, why) in EVENTS_NOT_COMPARED {
        let found = files.iter().any(|(n, cases)| n == file && cases.iter().any(|c| c.line_no == *line));
        assert!(found, "EVENTS_NOT_COMPARED: no case starts at {file}:{line} ({why})");
    }
    for (name, cases) in files {
        if !name.contains(&filter) {
            continue;
        }
        let before = failures.len();
        let file_start = Instant::now();
        let mut commands = 0;
        for resp in [2, 3] {
            commands += run_file(&name, &cases, &tandem, &redis, resp, &mut failures);
        }
        eprintln!(
            "{name}: {} cases, {commands} commands (RESP2 + RESP3), {} mismatches, {:?}",
            cases.len(),
            failures.len() - before,
            file_start.elapsed()
        );
    }
    eprintln!("differential cases done in {:?}", started.elapsed());
    if !failures.is_empty() {
        panic!(
            "{} differential mismatch(es) between tandem-server and redis-server:\n\n{}\n",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Keyspace events
// ---------------------------------------------------------------------------------------------

/// Every case file again (RESP2), with `notify-keyspace-events` on for every class and a
/// third connection subscribed to every channel: the events each case causes must be those
/// redis-server publishes, in the same order. Active expiry is off on both (its events would
/// land wherever the cycle happens to run); lazy expiry's `expired` events are compared.
#[test]
fn keyspace_events_match() {
    let started = Instant::now();
    let filter = std::env::var("DIFF_FILTER").unwrap_or_default();
    let (tandem, redis) = common::pair();
    for server in [&*tandem, &*redis] {
        let mut c = server.client();
        assert_eq!(c.send(&["CONFIG", "SET", "notify-keyspace-events", "KEAmn"]), Frame::Simple(b"OK".to_vec()));
        assert_eq!(c.send(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), Frame::Simple(b"OK".to_vec()));
    }
    let mut failures = Vec::new();
    let files = case_files();
    // An exclusion names a case by its first line: one left behind by an edit above the case
    // would silently compare (or skip) another.
    for (file, line, why) in EVENTS_NOT_COMPARED {
        let found = files.iter().any(|(n, cases)| n == file && cases.iter().any(|c| c.line_no == *line));
        assert!(found, "EVENTS_NOT_COMPARED: no case starts at {file}:{line} ({why})");
    }
    for (name, cases) in files {
        if !name.contains(&filter) {
            continue;
        }
        let before = failures.len();
        for case in &cases {
            if case.only_resp == Some(3) {
                continue;
            }
            if let Some((_, _, why)) = EVENTS_NOT_COMPARED.iter().find(|(f, l, _)| *f == name && *l == case.line_no) {
                eprintln!("{name}: case from line {} not compared: {why}", case.line_no);
                continue;
            }
            if let Err(e) = events_of_case(&name, case, &tandem, &redis) {
                failures.push(e);
            }
        }
        eprintln!("{name}: {} cases, {} with other events", cases.len(), failures.len() - before);
    }
    eprintln!("keyspace events done in {:?}", started.elapsed());
    if !failures.is_empty() {
        panic!("{} case(s) published other events than redis-server:\n\n{}\n", failures.len(), failures.join("\n\n"));
    }
}

/// Cases whose events are not compared, each with the documented difference that makes them
/// differ (file, line of the case's first command, why).
const EVENTS_NOT_COMPARED: &[(&str, usize, &str)] = &[
    ("diff/keys.cases", 594, "RANDOMKEY removes an expired key only if its random pick lands on it"),
    (
        "diff/keys.cases",
        653,
        "SCAN skips keys whose time has run out without removing them; Redis removes them (`expired`)",
    ),
];

/// Runs one case and compares the events; the error describes the first difference.
fn events_of_case(name: &str, case: &Case, tandem: &ServerProcess, redis: &ServerProcess) -> Result<(), String> {
    let end = b"tandem-diff-events-end".to_vec();
    let subscribe = |server: &ServerProcess| {
        let mut c = server.client();
        c.send(&["PSUBSCRIBE", "*"]);
        c
    };
    // Set again before every case: a case about the setting turns it off at its end.
    for server in [tandem, redis] {
        server.client().send(&["CONFIG", "SET", "notify-keyspace-events", "KEAmn"]);
    }
    let (mut st, mut sr) = (subscribe(tandem), subscribe(redis));
    let mut all = vec![Conns::open(tandem, redis, 2)?];
    for line in &case.lines {
        if line.conn >= all.len() {
            all.push(Conns::connect(tandem, redis, 2)?);
        }
        let conns = &mut all[line.conn];
        let (t, r) = match line.mode {
            Mode::NoReply => {
                conns.write(&line.args);
                continue;
            }
            Mode::Receive => (read_got(&mut conns.t), read_got(&mut conns.r)),
            _ => conns.exchange(&line.args),
        };
        if matches!(t, Got::Timeout | Got::Garbage(_)) || matches!(r, Got::Timeout | Got::Garbage(_)) {
            break;
        }
    }
    let mut c = all.swap_remove(0);
    c.exchange(&[b"PUBLISH".to_vec(), end.clone(), b"x".to_vec()]);
    let collect = |sub: &mut RawClient| -> Vec<String> {
        let mut events = Vec::new();
        loop {
            match sub.read_frame_timeout(REPLY_TIMEOUT) {
                Ok(Frame::Array(parts)) if parts.len() == 4 => {
                    if parts[2] == Frame::Bulk(end.clone()) {
                        return events;
                    }
                    events.push(format!("{} {}", parts[2].to_display(), parts[3].to_display()));
                }
                Ok(other) => events.push(format!("<{}>", other.to_display())),
                Err(e) => {
                    events.push(format!("<{e}>"));
                    return events;
                }
            }
        }
    };
    let (et, er) = (collect(&mut st), collect(&mut sr));
    if et == er {
        return Ok(());
    }
    let at = et.iter().zip(&er).take_while(|(a, b)| a == b).count();
    let show = |v: &[String]| v.iter().skip(at.saturating_sub(2)).take(8).cloned().collect::<Vec<_>>().join("\n      ");
    Err(format!(
        "{name}: case from line {}: events differ at #{at}\n    tandem:\n      {}\n    redis:\n      {}",
        case.line_no,
        show(&et),
        show(&er)
    ))
}

/// Every case file, by name, parsed.
fn case_files() -> Vec<(String, Vec<Case>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap_or_else(|e| panic!("reading {}: {e}", cases_dir().display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    files.sort();
    let files: Vec<(String, Vec<Case>)> = files
        .iter()
        .map(|path| {
            let name = format!("diff/{}", path.file_name().unwrap_or_default().to_string_lossy());
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let cases = parse_cases(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, cases)
        })
        .collect();
    assert!(!files.is_empty(), "no .cases files in {}", cases_dir().display());
    files
}

// ---------------------------------------------------------------------------------------------
// Generated sequences
// ---------------------------------------------------------------------------------------------

/// Commands the generator leaves out because Tandem does not implement them yet. Keep this
/// list minimal: an entry hides a whole command from the differential test. The test prints it
/// and says when an entry has become implemented.
const NOT_YET_IMPLEMENTED: &[&str] = &[];

/// Fixed seed of the generated sequences.
const SEED: u64 = 0x7a6e_6465_6d21_0001;

/// One generated command.
#[derive(Clone, Debug)]
struct GenCmd {
    args: Vec<Vec<u8>>,
    mode: Mode,
}

impl GenCmd {
    fn name(&self) -> String {
        String::from_utf8_lossy(&self.args[0]).to_ascii_lowercase()
    }
}

fn gen_cmd(parts: Vec<String>) -> GenCmd {
    GenCmd { args: parts.into_iter().map(String::into_bytes).collect(), mode: Mode::Exact }
}

/// A command whose reply comes from a hash table, compared as a multiset.
fn unordered(parts: Vec<String>) -> GenCmd {
    GenCmd { mode: Mode::Unordered, ..gen_cmd(parts) }
}

fn key() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(vec!["k1", "k2", "k3", "k4"]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(vec![
        "",
        "0",
        "1",
        "-1",
        "7",
        "42",
        "-17",
        "10",
        "007",
        " 5",
        "3.14",
        "-0.5",
        "1e3",
        "abc",
        "hello world",
        "x",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
    ])
    .prop_map(String::from)
}

fn small_int() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => (-100i64..100).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec!["9223372036854775807", "-9223372036854775808", "1.5", "x", ""]).prop_map(String::from),
    ]
}

/// A score, a score bound or a weight: integers, fractions, infinities, and a few that are
/// not numbers.
fn score() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => (-5i64..6).prop_map(|n| n.to_string()),
        3 => prop::sample::select(vec!["1.5", "-2.25", "0.5", "inf", "-inf", "+inf", "1e3", "3.14"]).prop_map(String::from),
        1 => prop::sample::select(vec!["x", "", "nan"]).prop_map(String::from),
    ]
}

/// A score range bound: a score, exclusive or not.
fn score_bound() -> impl Strategy<Value = String> + Clone {
    (score(), any::<bool>()).prop_map(|(s, ex)| if ex { format!("({s}") } else { s })
}

/// A lexicographic range bound over the values.
fn lex_bound() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        1 => prop::sample::select(vec!["-", "+", "x"]).prop_map(String::from),
        4 => (value(), any::<bool>()).prop_map(|(v, ex)| format!("{}{v}", if ex { "(" } else { "[" })),
    ]
}

/// A relative expiry long enough that nothing expires during the run.
fn long_seconds() -> impl Strategy<Value = String> + Clone {
    (1000i64..100_000).prop_map(|n| n.to_string())
}

fn keys(n: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<String>> + Clone {
    prop::collection::vec(key(), n)
}

/// The generators, by command name.
fn generators() -> Vec<(&'static str, BoxedStrategy<GenCmd>)> {
    let k = key;
    let v = value;
    let one = |name: &'static str| k().prop_map(move |k| gen_cmd(vec![name.into(), k])).boxed();
    let set = (
        k(),
        v(),
        prop::sample::select(vec!["", "NX", "XX"]),
        any::<bool>(),
        prop_oneof![
            3 => Just(Vec::<String>::new()),
            1 => long_seconds().prop_map(|s| vec!["EX".to_string(), s]),
            1 => long_seconds().prop_map(|s| vec!["PX".to_string(), format!("{s}000")]),
            1 => Just(vec!["KEEPTTL".to_string()]),
        ],
    )
        .prop_map(|(k, v, cond, get, exp)| {
            let mut p = vec!["SET".to_string(), k, v];
            if !cond.is_empty() {
                p.push(cond.to_string());
            }
            if get {
                p.push("GET".into());
            }
            p.extend(exp);
            gen_cmd(p)
        })
        .boxed();
    let kv_pairs = prop::collection::vec((k(), v()), 1..=3).prop_map(|pairs| {
        let mut p = vec!["MSET".to_string()];
        for (k, v) in pairs {
            p.push(k);
            p.push(v);
        }
        gen_cmd(p)
    });
    let ttl = k().prop_map(|k| GenCmd { mode: Mode::Tolerant, ..gen_cmd(vec!["TTL".into(), k]) });
    vec![
        ("set", set),
        ("get", one("GET")),
        ("del", keys(1..=3).prop_map(|ks| gen_cmd([vec!["DEL".to_string()], ks].concat())).boxed()),
        ("exists", keys(1..=3).prop_map(|ks| gen_cmd([vec!["EXISTS".to_string()], ks].concat())).boxed()),
        ("incr", one("INCR")),
        ("decr", one("DECR")),
        ("incrby", (k(), small_int()).prop_map(|(k, n)| gen_cmd(vec!["INCRBY".into(), k, n])).boxed()),
        ("append", (k(), v()).prop_map(|(k, v)| gen_cmd(vec!["APPEND".into(), k, v])).boxed()),
        ("strlen", one("STRLEN")),
        (
            "getrange",
            (k(), -6i64..12, -6i64..12)
                .prop_map(|(k, s, e)| gen_cmd(vec!["GETRANGE".into(), k, s.to_string(), e.to_string()]))
                .boxed(),
        ),
        (
            "setrange",
            (k(), prop_oneof![4 => (0i64..12).prop_map(|n| n.to_string()), 1 => Just("-1".to_string())], v())
                .prop_map(|(k, o, v)| gen_cmd(vec!["SETRANGE".into(), k, o, v]))
                .boxed(),
        ),
        ("mset", kv_pairs.boxed()),
        ("mget", keys(1..=4).prop_map(|ks| gen_cmd([vec!["MGET".to_string()], ks].concat())).boxed()),
        ("getdel", one("GETDEL")),
        ("getset", (k(), v()).prop_map(|(k, v)| gen_cmd(vec!["GETSET".into(), k, v])).boxed()),
        ("setnx", (k(), v()).prop_map(|(k, v)| gen_cmd(vec!["SETNX".into(), k, v])).boxed()),
        ("type", one("TYPE")),
        ("rename", (k(), k()).prop_map(|(a, b)| gen_cmd(vec!["RENAME".into(), a, b])).boxed()),
        ("persist", one("PERSIST")),
        (
            "expire",
            (k(), long_seconds(), prop::sample::select(vec!["", "", "", "NX", "XX", "GT", "LT"]))
                .prop_map(|(k, s, opt)| {
                    let mut p = vec!["EXPIRE".to_string(), k, s];
                    if !opt.is_empty() {
                        p.push(opt.to_string());
                    }
                    gen_cmd(p)
                })
                .boxed(),
        ),
        ("ttl", ttl.boxed()),
    ]
    .into_iter()
    .chain(collection_generators())
    .collect()
}

/// Lists, hashes and sets, on the same keys as the strings (so WRONGTYPE shows up too), with
/// the replies that do not depend on randomness.
fn collection_generators() -> Vec<(&'static str, BoxedStrategy<GenCmd>)> {
    let k = key;
    let v = value;

    let idx = || (-4i64..5).prop_map(|n| n.to_string());
    let end = || prop::sample::select(vec!["LEFT", "RIGHT"]).prop_map(String::from);
    let with = |name: &'static str, f: fn(String, Vec<String>) -> GenCmd| {
        (key(), prop::collection::vec(value(), 1..=3))
            .prop_map(move |(k, vs)| f(k, [vec![name.to_string()], vs].concat()))
            .boxed()
    };
    let cmd = |k: String, mut rest: Vec<String>| {
        rest.insert(1, k);
        gen_cmd(rest)
    };
    let mut gens = vec![
        ("rpush", with("RPUSH", cmd)),
        ("lpush", with("LPUSH", cmd)),
        ("lpushx", with("LPUSHX", cmd)),
        (
            "lpop",
            (k(), prop::option::of(0i64..4))
                .prop_map(|(k, n)| {
                    gen_cmd([vec!["LPOP".into(), k], n.map(|n| n.to_string()).into_iter().collect()].concat())
                })
                .boxed(),
        ),
        (
            "rpop",
            (k(), prop::option::of(0i64..4))
                .prop_map(|(k, n)| {
                    gen_cmd([vec!["RPOP".into(), k], n.map(|n| n.to_string()).into_iter().collect()].concat())
                })
                .boxed(),
        ),
        ("llen", k().prop_map(|k| gen_cmd(vec!["LLEN".into(), k])).boxed()),
        ("lrange", (k(), idx(), idx()).prop_map(|(k, a, b)| gen_cmd(vec!["LRANGE".into(), k, a, b])).boxed()),
        ("lindex", (k(), idx()).prop_map(|(k, i)| gen_cmd(vec!["LINDEX".into(), k, i])).boxed()),
        ("lset", (k(), idx(), v()).prop_map(|(k, i, x)| gen_cmd(vec!["LSET".into(), k, i, x])).boxed()),
        (
            "linsert",
            (k(), prop::sample::select(vec!["BEFORE", "AFTER"]), v(), v())
                .prop_map(|(k, w, p, x)| gen_cmd(vec!["LINSERT".into(), k, w.into(), p, x]))
                .boxed(),
        ),
        ("lrem", (k(), -2i64..3, v()).prop_map(|(k, n, x)| gen_cmd(vec!["LREM".into(), k, n.to_string(), x])).boxed()),
        ("ltrim", (k(), idx(), idx()).prop_map(|(k, a, b)| gen_cmd(vec!["LTRIM".into(), k, a, b])).boxed()),
        (
            "lpos",
            (k(), v(), prop_oneof![Just(1i64), Just(-1), Just(2)], 0i64..3)
                .prop_map(|(k, x, r, c)| {
                    gen_cmd(vec!["LPOS".into(), k, x, "RANK".into(), r.to_string(), "COUNT".into(), c.to_string()])
                })
                .boxed(),
        ),
        ("lmove", (k(), k(), end(), end()).prop_map(|(a, b, f, t)| gen_cmd(vec!["LMOVE".into(), a, b, f, t])).boxed()),
        (
            "lmpop",
            (k(), k(), end(), 1i64..4)
                .prop_map(|(a, b, e, n)| {
                    gen_cmd(vec!["LMPOP".into(), "2".into(), a, b, e, "COUNT".into(), n.to_string()])
                })
                .boxed(),
        ),
        (
            "hset",
            (k(), prop::collection::vec((v(), v()), 1..=3))
                .prop_map(|(k, p)| {
                    gen_cmd([vec!["HSET".to_string(), k], p.into_iter().flat_map(|(f, x)| [f, x]).collect()].concat())
                })
                .boxed(),
        ),
        ("hget", (k(), v()).prop_map(|(k, f)| gen_cmd(vec!["HGET".into(), k, f])).boxed()),
        ("hdel", with("HDEL", cmd)),
        ("hmget", with("HMGET", cmd)),
        ("hlen", k().prop_map(|k| gen_cmd(vec!["HLEN".into(), k])).boxed()),
        ("hexists", (k(), v()).prop_map(|(k, f)| gen_cmd(vec!["HEXISTS".into(), k, f])).boxed()),
        ("hstrlen", (k(), v()).prop_map(|(k, f)| gen_cmd(vec!["HSTRLEN".into(), k, f])).boxed()),
        ("hincrby", (k(), v(), small_int()).prop_map(|(k, f, n)| gen_cmd(vec!["HINCRBY".into(), k, f, n])).boxed()),
        ("hincrbyfloat", (k(), v(), v()).prop_map(|(k, f, n)| gen_cmd(vec!["HINCRBYFLOAT".into(), k, f, n])).boxed()),
        ("hsetnx", (k(), v(), v()).prop_map(|(k, f, x)| gen_cmd(vec!["HSETNX".into(), k, f, x])).boxed()),
        ("hgetall", k().prop_map(|k| unordered(vec!["HGETALL".into(), k])).boxed()),
        ("hkeys", k().prop_map(|k| unordered(vec!["HKEYS".into(), k])).boxed()),
        ("hvals", k().prop_map(|k| unordered(vec!["HVALS".into(), k])).boxed()),
        ("sadd", with("SADD", cmd)),
        ("srem", with("SREM", cmd)),
        ("smismember", with("SMISMEMBER", cmd)),
        ("sismember", (k(), v()).prop_map(|(k, m)| gen_cmd(vec!["SISMEMBER".into(), k, m])).boxed()),
        ("scard", k().prop_map(|k| gen_cmd(vec!["SCARD".into(), k])).boxed()),
        ("smembers", k().prop_map(|k| unordered(vec!["SMEMBERS".into(), k])).boxed()),
        ("smove", (k(), k(), v()).prop_map(|(a, b, m)| gen_cmd(vec!["SMOVE".into(), a, b, m])).boxed()),
        ("sinter", keys(1..=3).prop_map(|ks| unordered([vec!["SINTER".to_string()], ks].concat())).boxed()),
        ("sunion", keys(1..=3).prop_map(|ks| unordered([vec!["SUNION".to_string()], ks].concat())).boxed()),
        ("sdiff", keys(1..=3).prop_map(|ks| unordered([vec!["SDIFF".to_string()], ks].concat())).boxed()),
        (
            "sunionstore",
            (k(), keys(1..=3)).prop_map(|(d, ks)| gen_cmd([vec!["SUNIONSTORE".to_string(), d], ks].concat())).boxed(),
        ),
        (
            "sinterstore",
            (k(), keys(1..=3)).prop_map(|(d, ks)| gen_cmd([vec!["SINTERSTORE".to_string(), d], ks].concat())).boxed(),
        ),
        (
            "sdiffstore",
            (k(), keys(1..=3)).prop_map(|(d, ks)| gen_cmd([vec!["SDIFFSTORE".to_string(), d], ks].concat())).boxed(),
        ),
        (
            "sintercard",
            keys(1..=3)
                .prop_map(|ks| gen_cmd([vec!["SINTERCARD".to_string(), ks.len().to_string()], ks].concat()))
                .boxed(),
        ),
    ];
    gens.extend(zset_generators());
    gens
}

/// Sorted-set commands: members are the values, scores small numbers and infinities, so
/// members collide, scores tie and sums stay exact; the listpack limit moves between 1 and 128
/// so both encodings (and conversions) are exercised.
fn zset_generators() -> Vec<(&'static str, BoxedStrategy<GenCmd>)> {
    let k = key;
    let v = value;
    let flags = prop::sample::subsequence(vec!["NX", "XX", "GT", "LT", "CH", "INCR"], 0..=2);
    let range_opts = (
        prop::sample::select(vec!["", "BYSCORE", "BYLEX"]),
        any::<bool>(),
        prop::option::of((-1i64..3, -1i64..4)),
        any::<bool>(),
    );
    let with_opts = |mut args: Vec<String>, (by, rev, limit, scores): (&str, bool, Option<(i64, i64)>, bool)| {
        if !by.is_empty() {
            args.push(by.into());
        }
        if rev {
            args.push("REV".into());
        }
        if let Some((o, c)) = limit {
            args.extend(["LIMIT".into(), o.to_string(), c.to_string()]);
        }
        if scores {
            args.push("WITHSCORES".into());
        }
        gen_cmd(args)
    };
    let store_tail =
        (prop::option::of(prop::collection::vec(score(), 3)), prop::sample::select(vec!["", "SUM", "MIN", "MAX"]));
    let algebra = |name: &'static str,
                   dst: Option<String>,
                   ks: Vec<String>,
                   (w, agg): (Option<Vec<String>>, &str),
                   scores: bool| {
        let mut args = vec![name.to_string()];
        args.extend(dst);
        args.push(ks.len().to_string());
        let n = ks.len();
        args.extend(ks);
        if let Some(w) = w {
            args.push("WEIGHTS".into());
            args.extend(w.into_iter().take(n));
        }
        if !agg.is_empty() {
            args.extend(["AGGREGATE".to_string(), agg.to_string()]);
        }
        if scores {
            args.push("WITHSCORES".into());
        }
        gen_cmd(args)
    };
    vec![
        (
            "config set zset-max-listpack-entries",
            prop::sample::select(vec!["1", "3", "128"])
                .prop_map(|n| {
                    gen_cmd(vec!["CONFIG".into(), "SET".into(), "zset-max-listpack-entries".into(), n.into()])
                })
                .boxed(),
        ),
        (
            "zadd",
            (k(), flags, prop::collection::vec((score(), v()), 1..=3))
                .prop_map(|(k, f, p)| {
                    let mut args = vec!["ZADD".to_string(), k];
                    args.extend(f.into_iter().map(String::from));
                    args.extend(p.into_iter().flat_map(|(s, m)| [s, m]));
                    gen_cmd(args)
                })
                .boxed(),
        ),
        ("zincrby", (k(), score(), v()).prop_map(|(k, s, m)| gen_cmd(vec!["ZINCRBY".into(), k, s, m])).boxed()),
        (
            "zrem",
            (k(), prop::collection::vec(v(), 1..=3))
                .prop_map(|(k, ms)| gen_cmd([vec!["ZREM".to_string(), k], ms].concat()))
                .boxed(),
        ),
        ("zcard", k().prop_map(|k| gen_cmd(vec!["ZCARD".into(), k])).boxed()),
        ("zscore", (k(), v()).prop_map(|(k, m)| gen_cmd(vec!["ZSCORE".into(), k, m])).boxed()),
        (
            "zmscore",
            (k(), prop::collection::vec(v(), 1..=3))
                .prop_map(|(k, ms)| gen_cmd([vec!["ZMSCORE".to_string(), k], ms].concat()))
                .boxed(),
        ),
        (
            "zrank",
            (k(), v(), any::<bool>())
                .prop_map(|(k, m, rev)| gen_cmd(vec![if rev { "ZREVRANK" } else { "ZRANK" }.into(), k, m]))
                .boxed(),
        ),
        (
            "zrange by rank",
            (k(), -4i64..5, -4i64..5, range_opts.clone())
                .prop_map(move |(k, a, b, (_, rev, _, sc))| {
                    with_opts(vec!["ZRANGE".into(), k, a.to_string(), b.to_string()], ("", rev, None, sc))
                })
                .boxed(),
        ),
        (
            "zrange by score",
            (k(), score_bound(), score_bound(), range_opts.clone())
                .prop_map(move |(k, a, b, (_, rev, l, sc))| {
                    with_opts(vec!["ZRANGE".into(), k, a, b], ("BYSCORE", rev, l, sc))
                })
                .boxed(),
        ),
        (
            "zrange by lex",
            (k(), lex_bound(), lex_bound(), range_opts.clone())
                .prop_map(move |(k, a, b, (_, rev, l, _))| {
                    with_opts(vec!["ZRANGE".into(), k, a, b], ("BYLEX", rev, l, false))
                })
                .boxed(),
        ),
        (
            "zrangebyscore",
            (k(), score_bound(), score_bound(), any::<bool>(), any::<bool>())
                .prop_map(|(k, a, b, rev, sc)| {
                    let name = if rev { "ZREVRANGEBYSCORE" } else { "ZRANGEBYSCORE" };
                    let mut args = vec![name.to_string(), k, a, b];
                    if sc {
                        args.push("WITHSCORES".into());
                    }
                    gen_cmd(args)
                })
                .boxed(),
        ),
        (
            "zcount",
            (k(), score_bound(), score_bound()).prop_map(|(k, a, b)| gen_cmd(vec!["ZCOUNT".into(), k, a, b])).boxed(),
        ),
        (
            "zlexcount",
            (k(), lex_bound(), lex_bound()).prop_map(|(k, a, b)| gen_cmd(vec!["ZLEXCOUNT".into(), k, a, b])).boxed(),
        ),
        (
            "zremrangebyrank",
            (k(), -4i64..5, -4i64..5)
                .prop_map(|(k, a, b)| gen_cmd(vec!["ZREMRANGEBYRANK".into(), k, a.to_string(), b.to_string()]))
                .boxed(),
        ),
        (
            "zremrangebyscore",
            (k(), score_bound(), score_bound())
                .prop_map(|(k, a, b)| gen_cmd(vec!["ZREMRANGEBYSCORE".into(), k, a, b]))
                .boxed(),
        ),
        (
            "zremrangebylex",
            (k(), lex_bound(), lex_bound())
                .prop_map(|(k, a, b)| gen_cmd(vec!["ZREMRANGEBYLEX".into(), k, a, b]))
                .boxed(),
        ),
        (
            "zpop",
            (k(), any::<bool>(), prop::option::of(0i64..4))
                .prop_map(|(k, max, n)| {
                    let mut args = vec![if max { "ZPOPMAX" } else { "ZPOPMIN" }.to_string(), k];
                    args.extend(n.map(|n| n.to_string()));
                    gen_cmd(args)
                })
                .boxed(),
        ),
        (
            "zmpop",
            (k(), k(), any::<bool>(), 1i64..4)
                .prop_map(|(a, b, max, n)| {
                    let w = if max { "MAX" } else { "MIN" };
                    gen_cmd(vec!["ZMPOP".into(), "2".into(), a, b, w.into(), "COUNT".into(), n.to_string()])
                })
                .boxed(),
        ),
        (
            "zrangestore",
            (k(), k(), score_bound(), score_bound(), any::<bool>())
                .prop_map(|(d, s, a, b, rev)| {
                    let mut args = vec!["ZRANGESTORE".into(), d, s, a, b, "BYSCORE".into()];
                    if rev {
                        args.push("REV".into());
                    }
                    gen_cmd(args)
                })
                .boxed(),
        ),
        (
            "zunion/zinter/zdiff",
            (prop::sample::select(vec!["ZUNION", "ZINTER", "ZDIFF"]), keys(1..=3), store_tail.clone(), any::<bool>())
                .prop_map(move |(name, ks, tail, sc)| {
                    let tail = if name == "ZDIFF" { (None, "") } else { tail };
                    algebra(name, None, ks, tail, sc)
                })
                .boxed(),
        ),
        (
            "zunionstore/zinterstore/zdiffstore",
            (prop::sample::select(vec!["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), k(), keys(1..=3), store_tail)
                .prop_map(move |(name, d, ks, tail)| {
                    let tail = if name == "ZDIFFSTORE" { (None, "") } else { tail };
                    algebra(name, Some(d), ks, tail, false)
                })
                .boxed(),
        ),
        (
            "zintercard",
            (keys(1..=3), prop::option::of(0i64..3))
                .prop_map(|(ks, l)| {
                    let mut args = vec!["ZINTERCARD".to_string(), ks.len().to_string()];
                    args.extend(ks);
                    if let Some(l) = l {
                        args.extend(["LIMIT".to_string(), l.to_string()]);
                    }
                    gen_cmd(args)
                })
                .boxed(),
        ),
    ]
}

/// Runs one sequence in one protocol; `Err` holds a transcript ending at the first mismatch.
fn run_sequence(tandem: &ServerProcess, redis: &ServerProcess, seq: &[GenCmd], resp: u8) -> Result<(), String> {
    let mut conns = Conns::open(tandem, redis, resp)?;
    let mut transcript = String::new();
    for cmd in seq {
        let (t, r) = conns.exchange(&cmd.args);
        let mode = cmd.mode;
        let _ = write!(transcript, "\n  {}{}", mode.prefix(), display_args(&cmd.args));
        if matches(mode, &t, &r) {
            let _ = write!(transcript, "  -> {}", t.render());
        } else {
            let _ = write!(transcript, "\n      MISMATCH\n      tandem: {}\n      redis:  {}", t.render(), r.render());
            return Err(format!("[RESP{resp}] after FLUSHALL:{transcript}"));
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn proptest_strings_keys() {
    let (tandem, redis) = common::pair();

    // Say when an entry of NOT_YET_IMPLEMENTED has become implemented.
    let mut probe = tandem.client();
    for name in NOT_YET_IMPLEMENTED {
        let unknown = match probe.send(&[*name]) {
            Frame::Error(e) => e.starts_with(b"ERR unknown command"),
            _ => false,
        };
        if !unknown {
            eprintln!("NOTE: {name} is implemented now: remove it from NOT_YET_IMPLEMENTED");
        }
    }

    let gens: Vec<BoxedStrategy<GenCmd>> = generators()
        .into_iter()
        .filter(|(name, _)| !NOT_YET_IMPLEMENTED.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map(|(_, g)| g)
        .collect();
    let seq_strategy = prop::collection::vec(Union::new(gens), 1..=30);

    let seed = env_u64("DIFF_PROPTEST_SEED").unwrap_or(SEED);
    let cases = env_u64("DIFF_PROPTEST_CASES").unwrap_or(40) as u32;
    let mut seed_bytes = [0u8; 32];
    for (i, chunk) in seed_bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.wrapping_add(i as u64)).to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 300,
        max_shrink_time: 20_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let started = Instant::now();
    let result = runner.run(&seq_strategy, |seq| {
        for resp in [2, 3] {
            run_sequence(&tandem, &redis, &seq, resp).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
    eprintln!(
        "proptest_strings_keys: {cases} sequences (seed {seed}) in {:?}; NOT_YET_IMPLEMENTED = {:?}",
        started.elapsed(),
        NOT_YET_IMPLEMENTED
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, seq)) => {
            let names: Vec<String> = seq.iter().map(GenCmd::name).collect();
            panic!(
                "generated sequence differs between tandem-server and redis-server (seed {seed}, minimal case \
                 of {} commands: {names:?}):\n{reason}",
                seq.len()
            )
        }
        Err(e) => panic!("{e}"),
    }
}
