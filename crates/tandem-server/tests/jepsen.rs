//! Jepsen-style runs of the real binary (`shared/CLUSTER-TESTING.md` section 5): three cluster
//! nodes in network namespaces of their own, eight clients sending to random nodes, and a seeded
//! schedule of partitions, pauses or `kill -9`s; then every fault healed, every node must serve
//! again, and the history must be linearizable, lose no acknowledged list append or write, and
//! leave no panic in the logs. A control run against independent servers proves the checks can
//! fail. Needs root, `ip` and `nft` (nftables).
//!
//! The seed comes from the clock and is printed; `TANDEM_CHAOS_SEED=N` repeats a schedule.
//! `scripts/chaos-campaign` runs longer campaigns with the release build.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use chaos::run::CHILD_ENV;
use chaos::{Outcome, RunConfig, Scenario};

/// The runs share two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn seed() -> u64 {
    match std::env::var("TANDEM_CHAOS_SEED") {
        Ok(s) => s.trim().parse().expect("TANDEM_CHAOS_SEED must be an integer"),
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64),
    }
}

/// Runs `scenario` for `secs` seconds. Inside the re-executed child (which has the parent's
/// configuration), `chaos::run` does the run and exits the process.
fn chaos_run(test: &str, tag: &str, scenario: Scenario, secs: u64, cluster: bool) -> (Outcome, PathBuf) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seed = seed();
    let out = std::env::temp_dir().join(format!("tandem-jepsen-{test}-{seed}"));
    let mut cfg = RunConfig::new(scenario, seed, secs, PathBuf::from(env!("CARGO_BIN_EXE_tandem-server")), out.clone());
    cfg.cluster = cluster;
    cfg.tag = tag.into();
    cfg.reexec = ["--exact", test, "--nocapture", "--test-threads", "1"].map(String::from).to_vec();
    if std::env::var_os(CHILD_ENV).is_none() {
        eprintln!("{test}: scenario {scenario}, seed {seed} (TANDEM_CHAOS_SEED={seed} repeats the schedule)");
    }
    (chaos::run(&cfg), out)
}

fn assert_passes(test: &str, tag: &str, scenario: Scenario) {
    let (outcome, out) = chaos_run(test, tag, scenario, 30, true);
    assert!(
        outcome.ok,
        "{test} failed ({}); history, logs and data kept in {}\n{}",
        outcome.failures.join(", "),
        out.display(),
        outcome.text
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn partitions_keep_the_cluster_linearizable_and_lose_nothing() {
    assert_passes("partitions_keep_the_cluster_linearizable_and_lose_nothing", "p", Scenario::Partition);
}

#[test]
fn paused_nodes_keep_the_cluster_linearizable_and_lose_nothing() {
    assert_passes("paused_nodes_keep_the_cluster_linearizable_and_lose_nothing", "s", Scenario::Pause);
}

#[test]
fn killed_nodes_keep_the_cluster_linearizable_and_lose_nothing() {
    assert_passes("killed_nodes_keep_the_cluster_linearizable_and_lose_nothing", "k", Scenario::Kill);
}

/// Nodes wiped (a new identity joins, the old one is removed), leaving gracefully and coming
/// back, removed while paused or cut off (a 3 s node timeout) and rejoining, amid partitions,
/// pauses and crashes; one node's wall clock hours off.
#[test]
fn membership_changes_amid_faults_keep_the_cluster_linearizable_and_lose_nothing() {
    assert_passes(
        "membership_changes_amid_faults_keep_the_cluster_linearizable_and_lose_nothing",
        "m",
        Scenario::Membership,
    );
}

/// The harness must be able to fail: three servers that do not form a cluster, behind the same
/// clients sending each operation to a random node, are three registers, not one.
#[test]
fn independent_servers_are_judged_not_linearizable() {
    let test = "independent_servers_are_judged_not_linearizable";
    let (outcome, out) = chaos_run(test, "i", Scenario::None, 10, false);
    assert!(!outcome.ok, "independent servers passed the checks:\n{}", outcome.text);
    for check in ["register", "append", "durability"] {
        assert!(outcome.failures.iter().any(|f| f == check), "{check} did not fail:\n{}", outcome.text);
    }
    assert!(outcome.text.contains("NOT LINEARIZABLE"), "{}", outcome.text);
    for healthy in ["setup", "liveness", "logs", "crash", "harness"] {
        assert!(
            !outcome.failures.iter().any(|f| f == healthy),
            "the control failed for the wrong reason ({healthy}):\n{}",
            outcome.text
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
