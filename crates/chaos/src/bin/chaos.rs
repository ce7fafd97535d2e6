//! `chaos run --scenario S [--seed N] [--secs T] [--nodes 3] [--workers 8] [--rate 400]
//! [--interval 4000-6000] [--no-cluster] [--server-arg FLAG ...] --server PATH --out DIR`: one harness run (as root; exit 0 = pass, 1 = fail).
//! `chaos check DIR`: re-checks a saved run's history and final reads.

use std::path::PathBuf;
use std::process::exit;
use std::time::{SystemTime, UNIX_EPOCH};

use chaos::run::{check_dir, RunConfig};
use chaos::Scenario;

const USAGE: &str = "usage: chaos run --scenario none|partition|pause|kill|mixed|membership [--seed N] [--secs T] [--nodes N] \
[--workers N] [--rate OPS] [--interval LO-HI (ms)] [--no-cluster] [--server-arg FLAG ...] --server PATH --out DIR\n       chaos check DIR";

fn usage(msg: &str) -> ! {
    eprintln!("chaos: {msg}\n{USAGE}");
    exit(2)
}

fn parse<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
    let v = v.unwrap_or_else(|| usage(&format!("{flag} needs a value")));
    v.parse().unwrap_or_else(|_| usage(&format!("bad value for {flag}: {v}")))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args),
        Some("check") => {
            let dir = args.get(1).unwrap_or_else(|| usage("check needs a directory"));
            match check_dir(&PathBuf::from(dir)) {
                Ok(o) => {
                    println!("{}", o.text);
                    println!(
                        "RESULT: {}",
                        if o.ok { "PASS".into() } else { format!("FAIL ({})", o.failures.join(", ")) }
                    );
                    exit(if o.ok { 0 } else { 1 });
                }
                Err(e) => {
                    eprintln!("chaos check: {e}");
                    exit(2);
                }
            }
        }
        _ => usage("expected a subcommand"),
    }
}

fn run(args: &[String]) {
    let mut it = args.iter().skip(1).cloned();
    let mut scenario = None;
    let mut seed = None;
    let (mut secs, mut nodes, mut workers, mut rate, mut cluster) = (60u64, 3usize, 8usize, 400u32, true);
    let (mut server, mut out) = (None, None);
    let mut interval = (4000u64, 6000u64);
    let mut server_args = Vec::new();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--scenario" => scenario = Some(parse::<Scenario>(&flag, it.next())),
            "--seed" => seed = Some(parse::<u64>(&flag, it.next())),
            "--secs" => secs = parse(&flag, it.next()),
            "--nodes" => nodes = parse(&flag, it.next()),
            "--workers" => workers = parse(&flag, it.next()),
            "--rate" => rate = parse(&flag, it.next()),
            "--interval" => {
                let v: String = parse(&flag, it.next());
                let (lo, hi) = v.split_once('-').unwrap_or_else(|| usage("--interval takes LO-HI (ms)"));
                interval = (parse(&flag, Some(lo.into())), parse(&flag, Some(hi.into())));
            }
            "--no-cluster" => cluster = false,
            "--server-arg" => server_args.push(parse::<String>(&flag, it.next())),
            "--server" => server = Some(parse::<PathBuf>(&flag, it.next())),
            "--out" => out = Some(parse::<PathBuf>(&flag, it.next())),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if !(1..=9).contains(&nodes) || workers == 0 {
        usage("--nodes must be 1..9 and --workers at least 1");
    }
    let seed = seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
    let scenario = scenario.unwrap_or_else(|| usage("--scenario is required"));
    let server = server.unwrap_or_else(|| usage("--server is required"));
    let out = out.unwrap_or_else(|| usage("--out is required"));
    // Absolute paths: the child runs them from its own namespace, and the servers' --dir too.
    let abs = |p: PathBuf| if p.is_absolute() { p } else { std::env::current_dir().expect("cwd").join(p) };
    let mut cfg = RunConfig::new(scenario, seed, secs, abs(server), abs(out));
    cfg.nodes = nodes;
    cfg.workers = workers;
    cfg.rate = rate;
    cfg.interval_ms = interval;
    cfg.server_args = server_args;
    cfg.cluster = cluster;
    // The child is this binary again; it takes its configuration from the parent, so the
    // arguments only need to lead it back to `run`.
    cfg.reexec = args.to_vec();
    if std::env::var_os(chaos::run::CHILD_ENV).is_none() {
        println!("chaos: scenario {scenario} seed {seed} ({secs} s, {nodes} nodes) -> {}", cfg.out.display());
    }
    let outcome = chaos::run(&cfg);
    println!("{}", outcome.text);
    println!(
        "chaos: {} scenario={scenario} seed={seed} out={}",
        if outcome.ok { "PASS" } else { "FAIL" },
        cfg.out.display()
    );
    if !outcome.ok {
        println!("chaos: failed checks: {}", outcome.failures.join(", "));
    }
    exit(if outcome.ok { 0 } else { 1 })
}
