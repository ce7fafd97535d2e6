//! One harness run: set up the network from wherever the caller runs (only `ip` commands), then
//! re-execute the caller inside the control namespace, where the run proper starts the servers,
//! drives workers and the nemesis, heals, checks liveness, takes final reads and checks the
//! history. The parent reads the outcome the child leaves in the out directory and tears the
//! network down.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::durability::{check_durability, writes_from_history, FinalReads};
use crate::history::{Event, Kind, F};
use crate::nemesis::{self, Cluster, Scenario};
use crate::net::{self, Topology};
use crate::nodes::{self, NodeSetup};
use crate::resp::{Conn, Reply};
use crate::rng::Rng;
use crate::workload::{self, Family, Keys, Recorder, Shared};
use crate::{append, wgl};

/// The environment variable that carries the configuration to the re-executed child; its
/// presence is what makes [`run`] do the run instead of setting one up.
pub const CHILD_ENV: &str = "TANDEM_CHAOS_CHILD";

/// What to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunConfig {
    /// The faults.
    pub scenario: Scenario,
    /// Seed of the schedule and the workers' choices.
    pub seed: u64,
    /// Length of the faulty phase.
    pub secs: u64,
    /// Number of servers (1–9).
    pub nodes: usize,
    /// Client workers.
    pub workers: usize,
    /// Total operations per second the workers aim at (0: unthrottled).
    pub rate: u32,
    /// Bounds in milliseconds of each fault's length and of the calm between faults.
    pub interval_ms: (u64, u64),
    /// The `tandem-server` binary.
    pub server: PathBuf,
    /// Where the history, logs, data directories and summary go.
    pub out: PathBuf,
    /// Form a Raft cluster; false starts independent servers, which must fail the checks (the
    /// control that shows the harness can fail).
    pub cluster: bool,
    /// Extra server flags for every node (e.g. `--read-consistency stale`, to see the checkers
    /// catch what it allows).
    #[serde(default)]
    pub server_args: Vec<String>,
    /// Lowercase letters naming this run among others of the same process (namespace names).
    pub tag: String,
    /// Arguments that make the current executable call [`run`] again with this configuration
    /// (for a test binary: `--exact <test> --nocapture`; for the `chaos` binary its own
    /// arguments).
    pub reexec: Vec<String>,
}

impl RunConfig {
    /// Defaults: 3 nodes, 8 workers, 400 ops/s, faults of 4–6 s, a cluster.
    pub fn new(scenario: Scenario, seed: u64, secs: u64, server: PathBuf, out: PathBuf) -> Self {
        RunConfig {
            scenario,
            seed,
            secs,
            nodes: 3,
            workers: 8,
            rate: 400,
            interval_ms: (4000, 6000),
            server,
            out,
            cluster: true,
            server_args: Vec::new(),
            tag: "c".into(),
            reexec: Vec::new(),
        }
    }
}

/// The verdict of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// Every check passed.
    pub ok: bool,
    /// Names of the checks that failed: `setup`, `liveness`, `register`, `append`,
    /// `durability`, `progress`, `logs`, `crash`, `harness`.
    pub failures: Vec<String>,
    /// The summary: configuration, operation counts, nemesis actions, each check's report.
    pub text: String,
}

impl Outcome {
    fn failed(what: &str, text: String) -> Self {
        Outcome { ok: false, failures: vec![what.into()], text }
    }
}

/// Runs one harness run. Called outside the control namespace, it builds the network,
/// re-executes `cfg.reexec` inside it and returns the outcome. In that child (marked by
/// [`CHILD_ENV`]) it does the run with the parent's configuration, writes the outcome and exits
/// the process: it never returns there.
pub fn run(cfg: &RunConfig) -> Outcome {
    if let Ok(json) = std::env::var(CHILD_ENV) {
        let cfg: RunConfig = match serde_json::from_str(&json) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("chaos: bad {CHILD_ENV}: {e}");
                std::process::exit(2);
            }
        };
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| child(&cfg))) {
            Ok(o) => o,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Outcome::failed("harness", format!("the harness panicked: {msg}"))
            }
        };
        let json = serde_json::to_string_pretty(&outcome).expect("outcome serializes");
        let _ = fs::write(cfg.out.join("outcome.json"), json);
        std::process::exit(if outcome.ok { 0 } else { 1 });
    }
    parent(cfg)
}

fn parent(cfg: &RunConfig) -> Outcome {
    if let Err(e) = fs::create_dir_all(&cfg.out) {
        return Outcome::failed("setup", format!("{}: {e}", cfg.out.display()));
    }
    let outcome_file = cfg.out.join("outcome.json");
    let _ = fs::remove_file(&outcome_file);
    if cfg.scenario.partitions() {
        if let Err(e) = Topology::check_tools() {
            return Outcome::failed("setup", e);
        }
    }
    net::cleanup_stale();
    let topo = Topology::for_this_process(&cfg.tag, cfg.nodes);
    topo.destroy();
    if let Err(e) = topo.create() {
        topo.destroy();
        return Outcome::failed("setup", format!("creating the network (root needed): {e}"));
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Outcome::failed("setup", format!("current_exe: {e}")),
    };
    let json = serde_json::to_string(cfg).expect("config serializes");
    let spawned = Command::new("ip")
        .args(["netns", "exec", &topo.ctl_ns()])
        .arg(&exe)
        .args(&cfg.reexec)
        .env(CHILD_ENV, json)
        .stdin(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            topo.destroy();
            return Outcome::failed("setup", format!("re-executing {} in {}: {e}", exe.display(), topo.ctl_ns()));
        }
    };
    // Far beyond a healthy run (faulty phase, heal, liveness, final reads, checking): a hung
    // child is killed rather than waited for forever.
    let deadline = Instant::now() + Duration::from_secs(cfg.secs + 240);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    topo.destroy();
    match fs::read_to_string(&outcome_file).ok().and_then(|s| serde_json::from_str::<Outcome>(&s).ok()) {
        Some(o) => o,
        None => Outcome::failed(
            "harness",
            format!(
                "the run left no outcome (child {}); see {}",
                status.map_or("hung".into(), |s| s.to_string()),
                cfg.out.display()
            ),
        ),
    }
}

/// `PASS`, or `FAIL (` the failed checks `)`.
pub fn result_line(o: &Outcome) -> String {
    if o.ok {
        "PASS".into()
    } else {
        format!("FAIL ({})", o.failures.join(", "))
    }
}

/// The final reads, saved beside the history so `chaos check` can re-check a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Finals {
    /// List key → tokens, read after healing (absent when the read failed).
    pub append: BTreeMap<String, Vec<String>>,
    /// Node → durability key → value.
    pub durability: FinalReads,
}

fn child(cfg: &RunConfig) -> Outcome {
    // The parent's pid named the namespaces; ours differs, so take the name from where we are.
    let here = net::current_namespace();
    let Some(prefix) = here.strip_suffix("ctl").filter(|p| p.starts_with(net::PREFIX)) else {
        return Outcome::failed("harness", format!("refusing to run outside a control namespace (in {here:?})"));
    };
    let topo = Topology { prefix: prefix.to_string(), nodes: cfg.nodes };
    if let Err(e) = net::assert_inside(&topo.ctl_ns()) {
        return Outcome::failed("harness", e);
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "chaos run: scenario={} seed={} secs={} nodes={} workers={} rate={} interval={}-{}ms cluster={} server_args=[{}]\nserver: {}\nout: {}",
        cfg.scenario,
        cfg.seed,
        cfg.secs,
        cfg.nodes,
        cfg.workers,
        cfg.rate,
        cfg.interval_ms.0,
        cfg.interval_ms.1,
        cfg.cluster,
        cfg.server_args.join(" "),
        cfg.server.display(),
        cfg.out.display()
    );
    let outcome = drive(cfg, topo, &mut text);
    let _ = fs::write(cfg.out.join("summary.txt"), &outcome.text);
    // The parent gets the text with the outcome and decides what to show.
    println!("chaos: run over: {} (summary in {})", result_line(&outcome), cfg.out.join("summary.txt").display());
    outcome
}

fn drive(cfg: &RunConfig, topo: Topology, text: &mut String) -> Outcome {
    let mut failures: Vec<String> = Vec::new();
    let done = |failures: Vec<String>, text: &mut String| {
        let mut outcome = Outcome { ok: failures.is_empty(), failures, text: String::new() };
        let _ = writeln!(text, "RESULT: {}", result_line(&outcome));
        outcome.text = text.clone();
        outcome
    };
    let mut extra_args = cfg.scenario.server_args();
    extra_args.extend(cfg.server_args.iter().cloned());
    // One node's wall clock hours off (either way, from the seed): expiry and the log's time
    // must not depend on it.
    let skew = (cfg.cluster && cfg.scenario.skews_a_clock()).then(|| {
        let mut rng = Rng::new(cfg.seed ^ 0x5eed_c10c);
        let k = 1 + rng.index(cfg.nodes);
        let offset = format!("{}{}h", if rng.percent(50) { "-" } else { "+" }, rng.between(1, 24));
        (k, offset)
    });
    if let Some((k, offset)) = &skew {
        if !Path::new(nodes::FAKETIME_LIB).exists() {
            let _ = writeln!(text, "setup: {} missing (apt-get install -y faketime)", nodes::FAKETIME_LIB);
            return done(vec!["setup".into()], text);
        }
        let _ = writeln!(text, "clock: n{k} runs with FAKETIME={offset}");
    }
    let setup = NodeSetup {
        topo: &topo,
        server: &cfg.server,
        out: &cfg.out,
        cluster: cfg.cluster,
        extra_args: &extra_args,
        skew,
    };
    let mut node_list = nodes::make_nodes(&setup);
    let files = nodes::create_file(&cfg.out.join("history.jsonl"))
        .and_then(|h| Ok((h, nodes::create_file(&cfg.out.join("nemesis.log"))?)));
    let (history_file, nemesis_log) = match files {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(text, "setup: {e}");
            return done(vec!["setup".into()], text);
        }
    };
    // One clock for the history and the nemesis log, so faults line up with operations.
    let shared = Arc::new(Shared {
        recorder: Recorder::new(history_file),
        keys: Mutex::new(Keys::new(2)),
        nodes: node_list.iter().map(|n| (n.name.clone(), n.addr())).collect(),
        stop: AtomicBool::new(false),
        counter: AtomicU64::new(0),
        rate: cfg.rate,
        workers: cfg.workers,
    });
    let start = shared.recorder.origin();
    for n in &mut node_list {
        if let Err(e) = n.start() {
            let _ = writeln!(text, "setup: {e}");
            return done(vec!["setup".into()], text);
        }
    }
    let cluster = Arc::new(Mutex::new(Cluster::new(topo, node_list, cfg.cluster, nemesis_log, start)));

    // Formation: every node must serve before the workers start.
    {
        let c = cluster.lock().expect("cluster lock");
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in &c.nodes {
            if let Err(e) = nodes::serves(n, &format!("zready{}", n.k), deadline) {
                let _ = writeln!(text, "setup: {} did not serve within 30 s of start: {e}", n.name);
                drop(c);
                return done(vec!["setup".into()], text);
            }
        }
        let _ = writeln!(text, "formed: every node served after {:.1} s", start.elapsed().as_secs_f64());
    }

    let workers: Vec<_> = (0..cfg.workers)
        .map(|i| {
            let s = shared.clone();
            let rng = Rng::derive(cfg.seed, 1 + i as u64);
            thread::spawn(move || workload::worker(s, i, rng))
        })
        .collect();
    let stop_nemesis = Arc::new(AtomicBool::new(false));
    let nemesis = {
        let (c, stop, rng, sc, iv) =
            (cluster.clone(), stop_nemesis.clone(), Rng::derive(cfg.seed, 0), cfg.scenario, cfg.interval_ms);
        thread::spawn(move || nemesis::run(c, sc, iv, rng, stop))
    };
    thread::sleep(Duration::from_secs(cfg.secs));
    stop_nemesis.store(true, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    if nemesis.join().is_err() {
        failures.push("harness".into());
        let _ = writeln!(text, "the nemesis thread panicked");
    }
    for w in workers {
        if w.join().is_err() {
            failures.push("harness".into());
            let _ = writeln!(text, "a worker thread panicked");
        }
    }
    let events = shared.recorder.events();
    let _ = writeln!(text, "{}", op_counts(&events));

    // Liveness: with every fault healed, every node serves a write and a read within 15 s.
    let mut c = cluster.lock().expect("cluster lock");
    c.heal_all();
    let healed = Instant::now();
    let deadline = healed + Duration::from_secs(15);
    let mut live = Vec::new();
    for n in &c.nodes {
        match nodes::serves(n, &format!("zlive{}", n.k), deadline) {
            Ok(_) => live.push(format!("{} {:.1}s", n.name, healed.elapsed().as_secs_f64())),
            Err(e) => {
                let _ = writeln!(
                    text,
                    "liveness: FAILED: {} did not serve a write and a read within 15 s of healing: {e}",
                    n.name
                );
                if !failures.contains(&"liveness".to_string()) {
                    failures.push("liveness".into());
                }
            }
        }
    }
    let _ = writeln!(text, "liveness: served a write and a read after healing: {}", live.join(", "));

    let keys = shared.keys.lock().expect("keys lock");
    let finals = final_reads(
        &c,
        &keys.used(Family::List),
        &keys.used(Family::RList),
        &keys.used(Family::Durable),
        text,
        &mut failures,
    );
    drop(keys);
    if let Ok(json) = serde_json::to_string(&finals) {
        let _ = fs::write(cfg.out.join("finals.json"), json);
    }
    c.stop_all();
    let problems = c.problems.clone();
    let logs: Vec<PathBuf> = c.nodes.iter().map(|n| n.log.clone()).collect();
    drop(c);
    if !problems.is_empty() {
        failures.push("crash".into());
        for p in &problems {
            let _ = writeln!(text, "problem: {p}");
        }
    }
    let mut log_issues = Vec::new();
    for l in &logs {
        for line in nodes::log_problems(l) {
            log_issues.push(format!("{}: {line}", l.display()));
        }
    }
    if log_issues.is_empty() {
        let _ = writeln!(text, "logs: OK (no panics)");
    } else {
        failures.push("logs".into());
        let _ = writeln!(text, "logs: FAILED\n  {}", log_issues.join("\n  "));
    }
    check(&events, &finals, Some(&cfg.out), text, &mut failures);
    let _ = writeln!(text, "nemesis log: {}", cfg.out.join("nemesis.log").display());
    done(failures, text)
}

/// Counts per function and outcome, e.g. `set ok=10 fail=2 info=1`.
fn op_counts(events: &[Event]) -> String {
    let mut counts: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for e in events {
        let slot = match e.kind {
            Kind::Ok => 0,
            Kind::Fail => 1,
            Kind::Info => 2,
            Kind::Invoke => continue,
        };
        counts.entry(e.f.name()).or_default()[slot] += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(f, [o, fl, i])| format!("{f} ok={o} fail={fl} info={i}")).collect();
    format!("ops: {} events; {}", events.len(), parts.join("; "))
}

/// Reads every list key from one node (any that serves) and every durability key from each node,
/// retrying for up to 15 s per node.
fn final_reads(
    c: &Cluster,
    lists: &[String],
    rlists: &[String],
    durable: &[String],
    text: &mut String,
    failures: &mut Vec<String>,
) -> Finals {
    let mut finals = Finals::default();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last_err = String::new();
    'lists: while Instant::now() < deadline {
        for n in &c.nodes {
            match mget(n, lists).and_then(|values| Ok((values, lranges(n, rlists)?))) {
                Ok((values, elements)) => {
                    for (k, v) in lists.iter().zip(values) {
                        finals
                            .append
                            .insert(k.clone(), v.map(|s| workload::list_tokens(s.as_bytes())).unwrap_or_default());
                    }
                    finals.append.extend(rlists.iter().cloned().zip(elements));
                    let _ = writeln!(text, "final reads: {} list keys from {}", lists.len() + rlists.len(), n.name);
                    break 'lists;
                }
                Err(e) => last_err = format!("{}: {e}", n.name),
            }
        }
        thread::sleep(Duration::from_millis(300));
    }
    if finals.append.len() != lists.len() + rlists.len() {
        let _ = writeln!(text, "final reads: FAILED: no node served the list keys: {last_err}");
        failures.push("liveness".into());
    }
    for n in &c.nodes {
        let mut got = None;
        while got.is_none() && Instant::now() < deadline + Duration::from_secs(5) {
            match mget(n, durable) {
                Ok(values) => got = Some(values),
                Err(e) => {
                    last_err = e;
                    thread::sleep(Duration::from_millis(300));
                }
            }
        }
        match got {
            Some(values) => {
                finals.durability.insert(n.name.clone(), durable.iter().cloned().zip(values).collect());
            }
            None => {
                let _ = writeln!(text, "final reads: FAILED: {} did not serve the durability keys: {last_err}", n.name);
                if !failures.contains(&"liveness".to_string()) {
                    failures.push("liveness".into());
                }
            }
        }
    }
    let _ = writeln!(text, "final reads: {} durability keys from {} nodes", durable.len(), finals.durability.len());
    finals
}

/// `MGET` in chunks over one connection (linearizable reads in a cluster).
fn mget(n: &nodes::Node, keys: &[String]) -> Result<Vec<Option<String>>, String> {
    let mut conn =
        Conn::connect(n.addr(), Duration::from_secs(1), Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut args: Vec<&str> = vec!["MGET"];
        args.extend(chunk.iter().map(String::as_str));
        match conn.call(&args).map_err(|e| e.to_string())? {
            Reply::Array(Some(items)) if items.len() == chunk.len() => {
                for it in items {
                    out.push(it.into_bulk_text()?);
                }
            }
            other => return Err(format!("MGET: {other}")),
        }
    }
    Ok(out)
}

/// `LRANGE k 0 -1` of each key through one connection to `n`.
fn lranges(n: &nodes::Node, keys: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut conn =
        Conn::connect(n.addr(), Duration::from_secs(1), Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        match conn.call(&["LRANGE", k.as_str(), "0", "-1"]).map_err(|e| e.to_string())? {
            Reply::Array(Some(items)) => {
                let mut elements = Vec::with_capacity(items.len());
                for it in items {
                    elements.push(it.into_bulk_text()?.unwrap_or_default());
                }
                out.push(elements);
            }
            other => return Err(format!("LRANGE: {other}")),
        }
    }
    Ok(out)
}

/// Runs the checkers on a history and its final reads, appending their reports to `text`
/// (clipped; the full reports go to `register.txt`, `append.txt` and `durability.txt` in `dir`)
/// and the names of failed checks to `failures`.
pub fn check(events: &[Event], finals: &Finals, dir: Option<&Path>, text: &mut String, failures: &mut Vec<String>) {
    let family = |fams: &[Family]| -> Vec<Event> {
        events.iter().filter(|e| Family::of(&e.key).is_some_and(|f| fams.contains(&f))).cloned().collect()
    };
    let mut report = |name: &str, ok: bool, full: String| {
        if let Some(dir) = dir {
            let _ = fs::write(dir.join(format!("{name}.txt")), &full);
        }
        let _ = writeln!(text, "{}", clip(&full, 60));
        if !ok {
            failures.push(name.into());
        }
    };
    let started = Instant::now();
    let register = wgl::check_register(&family(&[Family::Register, Family::Counter]));
    report("register", register.is_ok(), format!("{register} [{:.1} s]", started.elapsed().as_secs_f64()));
    let append = append::check_append(&family(&[Family::List, Family::RList]), Some(&finals.append));
    report("append", append.is_ok(), append.to_string());
    match writes_from_history(&family(&[Family::Durable])) {
        Ok(writes) => {
            let durability = check_durability(&writes, &finals.durability);
            report("durability", durability.is_ok(), durability.to_string());
        }
        Err(e) => report("durability", false, format!("durability: FAILED: malformed history: {e}")),
    }
    // A sanity line: a run where nearly nothing succeeded proves nothing.
    let oks = events.iter().filter(|e| e.kind == Kind::Ok && !e.f.is_read()).count();
    let reads = events.iter().filter(|e| e.kind == Kind::Ok && matches!(e.f, F::Get | F::Read)).count();
    let _ = writeln!(text, "acknowledged: {oks} writes, {reads} reads");
    if oks < MIN_ACKED_WRITES {
        let _ = writeln!(text, "progress: FAILED: fewer than {MIN_ACKED_WRITES} acknowledged writes");
        failures.push("progress".into());
    }
}

/// A run with fewer acknowledged writes checks next to nothing (a broken setup, not a pass).
const MIN_ACKED_WRITES: usize = 20;

/// The first `max` lines of a report, and a note of how many were left out.
fn clip(report: &str, max: usize) -> String {
    let lines: Vec<&str> = report.lines().collect();
    if lines.len() <= max {
        return report.to_string();
    }
    format!("{}\n  ... ({} more lines in the full report)", lines[..max].join("\n"), lines.len() - max)
}

/// Re-checks a saved run (`history.jsonl` and `finals.json` in `dir`).
pub fn check_dir(dir: &Path) -> Result<Outcome, String> {
    let history = fs::read_to_string(dir.join("history.jsonl")).map_err(|e| format!("history.jsonl: {e}"))?;
    let events = crate::history::parse_jsonl(&history)?;
    let finals: Finals = match fs::read_to_string(dir.join("finals.json")) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| format!("finals.json: {e}"))?,
        Err(e) => return Err(format!("finals.json: {e}")),
    };
    let mut text = format!("{}\n", op_counts(&events));
    let mut failures = Vec::new();
    check(&events, &finals, None, &mut text, &mut failures);
    let ok = failures.is_empty();
    Ok(Outcome { ok, failures, text })
}
