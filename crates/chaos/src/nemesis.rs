//! Fault schedules (CLUSTER-TESTING 5.4) driven by the run's seed: partitions, pauses and
//! crashes, each held 4–6 s by default (a crashed node restarts after 1–3 s) with as much calm
//! between.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::net::Topology;
use crate::nodes::Node;
use crate::resp::Reply;
use crate::rng::Rng;

/// Which faults a run injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// No faults.
    None,
    /// Network partitions: majority/minority splits, the leader isolated, one-way cuts (and
    /// bridges with five nodes).
    Partition,
    /// SIGSTOP a random node or the leader, then SIGCONT.
    Pause,
    /// `kill -9` one node, the leader, a majority or all, then restart with the same data.
    Kill,
    /// Any of the above.
    Mixed,
    /// Any of the above, plus membership changes: a node restarted without its data (a new
    /// identity joins, the old one is removed) or stopped gracefully (it leaves, then comes
    /// back and joins again); nodes run with a short `cluster-node-timeout`, so paused and
    /// cut-off nodes are removed and rejoin during the faults too.
    Membership,
}

impl Scenario {
    /// Every scenario with faults.
    pub const FAULTY: [Scenario; 5] =
        [Scenario::Partition, Scenario::Pause, Scenario::Kill, Scenario::Mixed, Scenario::Membership];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::None => "none",
            Scenario::Partition => "partition",
            Scenario::Pause => "pause",
            Scenario::Kill => "kill",
            Scenario::Mixed => "mixed",
            Scenario::Membership => "membership",
        }
    }

    /// Whether it needs nftables.
    pub fn partitions(self) -> bool {
        matches!(self, Scenario::Partition | Scenario::Mixed | Scenario::Membership)
    }

    /// Server flags the scenario needs on every node.
    pub fn server_args(self) -> Vec<String> {
        match self {
            // Removal after 3 s: a fault of 4-6 s removes the paused or cut-off node.
            Scenario::Membership => vec!["--cluster-node-timeout".into(), "3000".into()],
            _ => Vec::new(),
        }
    }

    /// Whether one node runs with its clock skewed (libfaketime).
    pub fn skews_a_clock(self) -> bool {
        matches!(self, Scenario::Mixed | Scenario::Membership)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Scenario::None, Scenario::Partition, Scenario::Pause, Scenario::Kill, Scenario::Mixed, Scenario::Membership]
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| format!("unknown scenario {s:?} (none, partition, pause, kill, mixed, membership)"))
    }
}

/// The servers and the network, as the nemesis and the final phase see them.
pub struct Cluster {
    /// The namespaces.
    pub topo: Topology,
    /// The servers.
    pub nodes: Vec<Node>,
    /// Whether the nodes form a Raft cluster (else there is no leader to look for).
    pub raft: bool,
    /// Directed cuts in force: `(a, b)` = packets from node a to node b are dropped.
    pub cuts: BTreeSet<(usize, usize)>,
    /// What the nemesis did, with times.
    log: File,
    start: Instant,
    /// Things that went wrong outside the histories: a node that died by itself, a fault that
    /// could not be applied or healed.
    pub problems: Vec<String>,
}

impl Cluster {
    /// Wraps started nodes; `log` receives the nemesis's actions, timed from `start` (the
    /// history's clock origin).
    pub fn new(topo: Topology, nodes: Vec<Node>, raft: bool, log: File, start: Instant) -> Self {
        Cluster { topo, nodes, raft, cuts: BTreeSet::new(), log, start, problems: Vec::new() }
    }

    /// Logs an action to the nemesis log and stdout.
    pub fn note(&mut self, what: &str) {
        let line = format!("{:8.3}s nemesis: {what}", self.start.elapsed().as_secs_f64());
        println!("chaos: {line}");
        let _ = writeln!(self.log, "{line}");
    }

    fn problem(&mut self, what: String) {
        self.note(&format!("PROBLEM: {what}"));
        self.problems.push(what);
    }

    /// Records nodes that exited by themselves (crashes).
    pub fn check_crashes(&mut self) {
        for i in 0..self.nodes.len() {
            if let Some(status) = self.nodes[i].reap_if_exited() {
                let name = self.nodes[i].name.clone();
                self.problem(format!("{name} exited by itself ({status})"));
            }
        }
    }

    /// The current leader (0-based), asked of every running node; `None` if no node claims it.
    pub fn leader(&self) -> Option<usize> {
        if !self.raft {
            return None;
        }
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_up() && !n.paused)
            .filter_map(|(i, n)| {
                let (role, term) = n.role(Duration::from_millis(500))?;
                (role == "leader").then_some((term, i))
            })
            .max()
            .map(|(_, i)| i)
    }

    fn names(&self, set: &[usize]) -> String {
        set.iter().map(|&i| self.nodes[i].name.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// Cuts the network so that packets between the groups are dropped, both ways.
    fn split(&mut self, groups: &[Vec<usize>], what: &str) {
        let mut cuts = BTreeSet::new();
        for (gi, a) in groups.iter().enumerate() {
            for (gj, b) in groups.iter().enumerate() {
                if gi != gj {
                    for &x in a {
                        for &y in b {
                            cuts.insert((x + 1, y + 1));
                        }
                    }
                }
            }
        }
        let shown = groups.iter().map(|g| format!("[{}]", self.names(g))).collect::<Vec<_>>().join(" | ");
        self.set_cuts(cuts, &format!("{what}: {shown}"));
    }

    fn set_cuts(&mut self, cuts: BTreeSet<(usize, usize)>, what: &str) {
        self.note(what);
        if let Err(e) = self.topo.apply_cuts(&cuts) {
            self.problem(format!("partition failed: {e}"));
        }
        self.cuts = cuts;
    }

    /// Removes every cut, continues paused nodes and restarts dead ones.
    pub fn heal_all(&mut self) {
        self.check_crashes();
        if !self.cuts.is_empty() {
            self.set_cuts(BTreeSet::new(), "heal network");
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                let name = self.nodes[i].name.clone();
                self.note(&format!("resume {name}"));
                self.nodes[i].resume();
            }
            if !self.nodes[i].is_up() {
                let name = self.nodes[i].name.clone();
                self.note(&format!("restart {name}"));
                if let Err(e) = self.nodes[i].start() {
                    self.problem(e);
                }
            }
        }
    }

    /// True if the leader lists every node as a voter it heard from within the last second,
    /// one identity per node.
    fn settled(&self) -> bool {
        let Some(l) = self.leader() else { return false };
        let Ok(mut c) = self.nodes[l].control_conn(Duration::from_millis(500)) else { return false };
        let Ok(Reply::Array(Some(members))) = c.call(&["TANDEM", "MEMBERS"]) else { return false };
        let fresh_voter = |m: &Reply| {
            let Reply::Array(Some(kv)) = m else { return false };
            let get = |k: &str| {
                kv.iter().position(|f| matches!(f, Reply::Bulk(Some(b)) if b == k.as_bytes())).map(|i| &kv[i + 1])
            };
            let voter = matches!(get("role"), Some(Reply::Bulk(Some(r))) if r == b"voter");
            let contact = matches!(get("last-contact-ms"), Some(Reply::Int(ms)) if *ms < 1000);
            let leader = matches!(get("leader"), Some(Reply::Int(1)));
            voter && (contact || leader)
        };
        members.len() == self.nodes.len() && members.iter().all(fresh_voter)
    }

    /// Stops every node (SIGTERM, then SIGKILL).
    pub fn stop_all(&mut self) {
        self.check_crashes();
        for n in &mut self.nodes {
            n.stop(Duration::from_secs(5));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A panicking harness must not leave servers behind (the parent also sweeps the
        // namespaces, but only after this process exits).
        for n in &mut self.nodes {
            n.resume();
            n.kill();
        }
    }
}

/// Sleeps up to `d`, waking early when `stop` is set; returns whether it was set.
fn nap(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    stop.load(Ordering::Relaxed)
}

fn millis_between(rng: &mut Rng, (lo, hi): (u64, u64)) -> Duration {
    Duration::from_millis(rng.between(lo, hi.max(lo)))
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Partition,
    Pause,
    Kill,
    /// `kill -9`, the data directory deleted, restarted: a new identity.
    Wipe,
    /// SIGTERM (the node leaves the cluster), restarted later with its data.
    Leave,
}

/// Runs the schedule until `stop`, then heals everything. Each fault lasts, and each calm
/// between faults lasts, a random time in `interval_ms` (CLUSTER-TESTING: 4–6 s); a crashed node
/// stays down 1–3 s (less if the interval is shorter).
pub fn run(
    cluster: Arc<Mutex<Cluster>>,
    scenario: Scenario,
    interval_ms: (u64, u64),
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) {
    let down_ms = (1000.min(interval_ms.0), 3000.min(interval_ms.1));
    let lock = || cluster.lock().expect("cluster lock");
    let n = lock().nodes.len();
    if scenario != Scenario::None {
        loop {
            if nap(millis_between(&mut rng, interval_ms), &stop) {
                break;
            }
            let fault = match scenario {
                Scenario::Partition => Fault::Partition,
                Scenario::Pause => Fault::Pause,
                Scenario::Kill => Fault::Kill,
                Scenario::Membership => {
                    [Fault::Partition, Fault::Pause, Fault::Kill, Fault::Wipe, Fault::Leave][rng.index(5)]
                }
                _ => [Fault::Partition, Fault::Pause, Fault::Kill][rng.index(3)],
            };
            // A membership change only on a settled cluster: every node a caught-up voter
            // under its current identity. Wiping a second node while the first one's old
            // identity still votes would lose a quorum for good, beyond the fault model.
            let fault = match fault {
                Fault::Wipe | Fault::Leave if !lock().settled() => Fault::Pause,
                f => f,
            };
            lock().check_crashes();
            match fault {
                Fault::Partition => {
                    partition(&mut lock(), &mut rng, n);
                    nap(millis_between(&mut rng, interval_ms), &stop);
                    lock().heal_all();
                }
                Fault::Pause => {
                    let mut c = lock();
                    let target = pick(&c, &mut rng, n);
                    let name = c.nodes[target].name.clone();
                    c.note(&format!("pause {name}"));
                    c.nodes[target].pause();
                    drop(c);
                    nap(millis_between(&mut rng, interval_ms), &stop);
                    lock().heal_all();
                }
                Fault::Wipe | Fault::Leave => {
                    let mut c = lock();
                    let target = pick(&c, &mut rng, n);
                    let name = c.nodes[target].name.clone();
                    if let Fault::Wipe = fault {
                        c.note(&format!("kill -9 {name} and delete its data"));
                        c.nodes[target].kill();
                        if let Err(e) = c.nodes[target].wipe() {
                            c.problem(e);
                        }
                    } else {
                        c.note(&format!("stop {name} (SIGTERM: it leaves the cluster)"));
                        c.nodes[target].stop(Duration::from_secs(10));
                    }
                    drop(c);
                    nap(millis_between(&mut rng, down_ms), &stop);
                    lock().heal_all();
                }
                Fault::Kill => {
                    let mut c = lock();
                    let victims = kill_targets(&c, &mut rng, n);
                    let names = c.names(&victims);
                    c.note(&format!("kill -9 {names}"));
                    for &v in &victims {
                        c.nodes[v].kill();
                    }
                    drop(c);
                    nap(millis_between(&mut rng, down_ms), &stop);
                    lock().heal_all();
                }
            }
        }
    }
    let mut c = lock();
    c.note("schedule over");
    c.heal_all();
}

/// The leader (half the time, when there is one) or a random node.
fn pick(c: &Cluster, rng: &mut Rng, n: usize) -> usize {
    if rng.percent(50) {
        if let Some(l) = c.leader() {
            return l;
        }
    }
    rng.index(n)
}

fn kill_targets(c: &Cluster, rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut all);
    match rng.below(100) {
        // One node, or the leader.
        0..80 => vec![pick(c, rng, n)],
        // A majority: the cluster must come back with every acknowledged write.
        80..90 => all[..n / 2 + 1].to_vec(),
        _ => all,
    }
}

fn partition(c: &mut Cluster, rng: &mut Rng, n: usize) {
    let mut all: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut all);
    let kinds = if n >= 5 { 4 } else { 3 };
    match rng.below(kinds) {
        0 => {
            let minority = 1 + rng.index(((n - 1) / 2).max(1));
            let (a, b) = all.split_at(minority);
            c.split(&[a.to_vec(), b.to_vec()], "partition majority/minority");
        }
        1 => {
            let leader = c.leader().unwrap_or(all[0]);
            let rest: Vec<usize> = (0..n).filter(|&i| i != leader).collect();
            c.split(&[vec![leader], rest], "isolate leader");
        }
        2 => {
            // One node's packets to everyone else are lost (or everyone's packets to it), the
            // other direction still flows.
            let x = if rng.percent(50) { c.leader().unwrap_or(all[0]) } else { all[0] };
            let outgoing = rng.percent(50);
            let cuts =
                (0..n).filter(|&y| y != x).map(|y| if outgoing { (x + 1, y + 1) } else { (y + 1, x + 1) }).collect();
            let name = c.nodes[x].name.clone();
            let what = if outgoing {
                format!("one-way: {name} cannot send to the others")
            } else {
                format!("one-way: {name} cannot hear the others")
            };
            c.set_cuts(cuts, &what);
        }
        _ => {
            // Bridge: two halves that cannot talk, one node in the middle that talks to both.
            let m = all[0];
            let half = (n - 1) / 2;
            let (a, b) = all[1..].split_at(half);
            let mut cuts = BTreeSet::new();
            for &x in a {
                for &y in b {
                    cuts.insert((x + 1, y + 1));
                    cuts.insert((y + 1, x + 1));
                }
            }
            let what = format!("bridge: [{}] - {} - [{}]", c.names(a), c.nodes[m].name, c.names(b));
            c.set_cuts(cuts, &what);
        }
    }
}
