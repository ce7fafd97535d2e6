//! The cluster with real processes: nodes started side by side form one Raft cluster, every
//! node takes writes (followers forward them), writes are applied in one order everywhere,
//! losing the leader costs a re-election only, and a node without a majority refuses writes
//! within a bounded time.
//!
//! Safety rule (shared/CLUSTER-TESTING.md): no test traffic leaves the root network namespace.
//! Each test re-runs itself inside a fresh namespace holding only `lo` (it needs root and
//! iproute2, as in CI) and asserts that it is in one before it opens any socket.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use testkit::process::{temp_dir, ServerProcess};
use testkit::{bulk, encode_command, error, simple, Frame, RawClient};

const IN_NETNS: &str = "TANDEM_TEST_NETNS";

/// Runs `body` inside a new network namespace: in the parent, re-executes this test there
/// and checks that it passed; in the child, runs the body.
fn in_netns(test: &str, body: impl FnOnce()) {
    if std::env::var_os(IN_NETNS).is_some() {
        let me = std::process::id().to_string();
        let out = Command::new("ip").args(["netns", "identify", &me]).output().expect("iproute2");
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!name.is_empty(), "refusing to run cluster traffic outside a test namespace");
        assert!(Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap().success());
        body();
        return;
    }
    let tag = test.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let ns = format!("tandem-cl-{}-{:x}", std::process::id(), tag & 0xffff_ffff);
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success(), "ip netns add (root?)");
    let exe = std::env::current_exe().unwrap();
    let st = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(IN_NETNS, &ns)
        .status()
        .unwrap();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert!(st.success(), "{test} failed inside its namespace");
}

struct Node {
    proc: Option<ServerProcess>,
    port: u16,
}

impl Node {
    fn client(&self) -> RawClient {
        let mut c = RawClient::connect(("127.0.0.1", self.port)).unwrap();
        c.set_timeout(Duration::from_secs(20));
        c
    }

    fn info(&self) -> String {
        self.info_section("cluster")
    }

    fn info_section(&self, section: &str) -> String {
        match self.client().send(&["INFO", section]) {
            Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("INFO: {other:?}"),
        }
    }

    fn field(&self, name: &str) -> String {
        let info = self.info();
        info.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string())).unwrap_or_default()
    }
}

/// Cluster addresses of nodes 1..=n.
fn seeds(n: usize) -> String {
    (1..=n).map(|i| format!("127.0.0.1:{}", 17000 + i)).collect::<Vec<_>>().join(",")
}

/// Node `i` on port 7000+i (cluster port 17000+i).
fn spawn_node(i: usize, seeds: &str, expect: usize, extra: &[&str]) -> Node {
    spawn_node_in(i, seeds, expect, extra, None)
}

/// Node `i`, keeping its data in `state` (which outlives the process) if given, else in the
/// process's own directory.
fn spawn_node_in(i: usize, seeds: &str, expect: usize, extra: &[&str], state: Option<&Path>) -> Node {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tandem-server"));
    let port = 7000 + i as u16;
    let dir = temp_dir("cluster-node");
    let data = state.map(Path::to_path_buf).unwrap_or_else(|| dir.clone());
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        &data.display().to_string(),
        "--cluster-seeds",
        seeds,
        "--cluster-bootstrap-expect",
        &expect.to_string(),
        "--cluster-write-timeout",
        "3000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Node { proc: Some(ServerProcess::spawn_exact("tandem-server", &bin, &args, port, dir)), port }
}

/// `n` nodes on ports 7001.. (cluster ports 17001..), all seeded with every node.
fn start_cluster(n: usize, expect: usize) -> Vec<Node> {
    start_cluster_with(n, expect, &[])
}

fn start_cluster_with(n: usize, expect: usize, extra: &[&str]) -> Vec<Node> {
    let seeds = seeds(n);
    (1..=n).map(|i| spawn_node(i, &seeds, expect, extra)).collect()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the live nodes agree on one leader among them; returns its index.
fn agreed_leader(nodes: &[Node]) -> usize {
    let mut leader = None;
    wait_until("one leader all live nodes agree on", Duration::from_secs(20), || {
        let live: Vec<(usize, &Node)> = nodes.iter().enumerate().filter(|(_, n)| n.proc.is_some()).collect();
        let leaders: Vec<String> = live.iter().map(|(_, n)| n.field("cluster_leader")).collect();
        let roles: Vec<String> = live.iter().map(|(_, n)| n.field("cluster_role")).collect();
        let agreed = !leaders[0].is_empty() && leaders.iter().all(|l| *l == leaders[0]);
        let one = roles.iter().filter(|r| *r == "leader").count() == 1;
        if agreed && one {
            leader = live.iter().zip(&roles).find(|(_, r)| *r == "leader").map(|((i, _), _)| *i);
        }
        agreed && one
    });
    leader.unwrap()
}

#[test]
fn nodes_started_together_form_one_cluster_and_take_writes_on_every_node() {
    in_netns("nodes_started_together_form_one_cluster_and_take_writes_on_every_node", || {
        let nodes = start_cluster(3, 3);
        agreed_leader(&nodes);
        for n in &nodes {
            assert_eq!(n.field("cluster_enabled"), "0", "standalone clients must see a standalone server");
            assert_eq!(n.field("cluster_members").split(',').count(), 3, "{}", n.info());
        }
        // INCRs sent round-robin to every node: each reply is the next number, so the writes
        // were applied one at a time in one order, whichever node took them.
        let mut clients: Vec<RawClient> = nodes.iter().map(|n| n.client()).collect();
        for i in 1..=30i64 {
            let c = &mut clients[i as usize % 3];
            assert_eq!(c.send(&["INCR", "counter"]), Frame::Integer(i));
        }
        // Replies of a replicated write keep the client's protocol and Redis's errors.
        assert_eq!(clients[1].send(&["SET", "k", "v", "EX", "100"]), simple("OK"));
        match clients[2].send(&["INCR", "k"]) {
            Frame::Error(e) => assert_eq!(e, b"ERR value is not an integer or out of range"),
            other => panic!("{other:?}"),
        }
        // CLIENT REPLY covers replicated writes too.
        let c = &mut clients[1];
        c.write_command(&["CLIENT", "REPLY", "SKIP"]).unwrap();
        c.write_command(&["INCR", "counter"]).unwrap();
        assert_eq!(c.send(&["PING"]), simple("PONG"), "the skipped INCR's reply must not come");
        assert_eq!(c.send(&["GET", "counter"]), bulk("31"));
        assert_eq!(c.send(&["DECR", "counter"]), Frame::Integer(30));
        // A pipeline's consecutive writes travel as one entry, replies in order, CLIENT REPLY
        // honoured per command, a read in between seeing the writes before it.
        let c = &mut clients[2];
        let before: u64 = nodes[2].field("cluster_last_log_index").parse().unwrap();
        let mut pipeline: Vec<Vec<String>> = Vec::new();
        let cmd = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        for _ in 0..100 {
            pipeline.push(cmd(&["INCR", "piped"]));
        }
        pipeline.push(cmd(&["GET", "piped"]));
        pipeline.push(cmd(&["INCR", "piped"]));
        pipeline.push(cmd(&["CLIENT", "REPLY", "SKIP"]));
        pipeline.push(cmd(&["INCR", "piped"]));
        pipeline.push(cmd(&["INCR", "piped"]));
        pipeline.push(cmd(&["PING"]));
        let mut bytes = Vec::new();
        for p in &pipeline {
            bytes.extend_from_slice(format!("*{}\r\n", p.len()).as_bytes());
            for a in p {
                bytes.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
        c.send_raw(&bytes).unwrap();
        for i in 1..=100 {
            assert_eq!(c.read_frame(), Frame::Integer(i));
        }
        assert_eq!(c.read_frame(), bulk("100"));
        assert_eq!(c.read_frame(), Frame::Integer(101));
        assert_eq!(c.read_frame(), Frame::Integer(103), "the skipped INCR's reply (102) must not come");
        assert_eq!(c.read_frame(), simple("PONG"));
        let after: u64 = nodes[2].field("cluster_last_log_index").parse().unwrap();
        assert!(after - before < 50, "104 pipelined writes took {} log entries", after - before);
        // Writes of different connections arriving together share log entries too (a batch is
        // one entry), on the leader and through a follower alike.
        let leader = agreed_leader(&nodes);
        for n in [leader, (leader + 1) % 3] {
            let mut conns: Vec<RawClient> = (0..30).map(|_| nodes[n].client()).collect();
            let before: u64 = nodes[leader].field("cluster_last_log_index").parse().unwrap();
            for c in &mut conns {
                c.write_command(&["INCR", "together"]).unwrap();
            }
            for c in &mut conns {
                assert!(matches!(c.read_frame(), Frame::Integer(_)));
            }
            let after: u64 = nodes[leader].field("cluster_last_log_index").parse().unwrap();
            assert!(
                after - before < 15,
                "30 connections' writes took {} log entries on node {}",
                after - before,
                n + 1
            );
        }
        // Every node applies every entry.
        for n in &nodes {
            let mut c = n.client();
            wait_until("the write to reach every node", Duration::from_secs(5), || {
                c.send(&["GET", "counter"]) == bulk("30")
            });
            wait_until(
                "the expiry to reach every node",
                Duration::from_secs(5),
                || matches!(c.send(&["TTL", "k"]), Frame::Integer(t) if t > 90),
            );
        }
        // INFO replication and ROLE: every node is a master (it takes writes) with no Redis
        // replicas; the offset is the applied log index; raft_ lines say where it stands.
        let leader = agreed_leader(&nodes);
        let leader_id = node_id(&nodes[leader]);
        let last: u64 = nodes[leader].field("cluster_last_log_index").parse().unwrap();
        for (i, n) in nodes.iter().enumerate() {
            wait_until("every node to apply the whole log", Duration::from_secs(5), || {
                n.field("cluster_last_applied") == last.to_string()
            });
            let info = n.info_section("replication");
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
                    .unwrap_or_default()
            };
            assert_eq!(field("role"), "master", "{info}");
            assert_eq!(field("connected_slaves"), "0", "{info}");
            assert_eq!(field("master_repl_offset"), last.to_string(), "{info}");
            assert_eq!(field("raft_role"), if i == leader { "leader" } else { "follower" }, "{info}");
            assert_eq!(field("raft_leader_id"), leader_id.to_string(), "{info}");
            assert_eq!(field("raft_leader_addr"), format!("127.0.0.1:{}", 17001 + leader), "{info}");
            assert_eq!(field("raft_last_applied"), last.to_string(), "{info}");
            assert_eq!(field("raft_apply_lag"), "0", "{info}");
            let want_lag = if i == leader { "0" } else { "-1" };
            assert_eq!(field("raft_max_member_lag"), want_lag, "{info}");
            assert_eq!(
                n.client().send(&["ROLE"]),
                Frame::Array(vec![bulk("master"), Frame::Integer(last as i64), Frame::Array(vec![])])
            );
        }
        let info = nodes[leader].info();
        let lags: Vec<&str> =
            info.lines().filter(|l| l.starts_with("member")).filter_map(|l| l.split(",lag=").nth(1)).collect();
        assert_eq!(lags.len(), 3, "{info}");
        assert!(lags.iter().all(|l| l.starts_with("0,")), "every member caught up: {info}");
    });
}

#[test]
fn reads_see_every_acknowledged_write_from_any_node_unless_asked_for_less() {
    in_netns("reads_see_every_acknowledged_write_from_any_node_unless_asked_for_less", || {
        let mut nodes = start_cluster(3, 3);
        let leader = agreed_leader(&nodes);
        let mut clients: Vec<RawClient> = nodes.iter().map(|n| n.client()).collect();
        // Linearizable (the default): a write acknowledged on one node is seen by a read that
        // starts afterwards on any other, followers included, at once.
        for i in 0..150usize {
            let v = i.to_string();
            assert_eq!(clients[i % 3].send(&["SET", "reg", &v]), simple("OK"));
            let reader = (i + 1 + i / 3) % 3;
            assert_eq!(clients[reader].send(&["GET", "reg"]), bulk(&v), "write on {} read on {reader}", i % 3);
        }
        // Pipelined reads after a write in the same batch see it too.
        let follower = (leader + 1) % 3;
        let c = &mut clients[follower];
        c.write_command(&["SET", "p", "1"]).unwrap();
        c.write_command(&["GET", "p"]).unwrap();
        c.write_command(&["INCR", "p"]).unwrap();
        c.write_command(&["GET", "p"]).unwrap();
        assert_eq!(c.read_frame(), simple("OK"));
        assert_eq!(c.read_frame(), bulk("1"));
        assert_eq!(c.read_frame(), Frame::Integer(2));
        assert_eq!(c.read_frame(), bulk("2"));
        // Session: a connection sees its own writes on a follower.
        assert_eq!(c.send(&["TANDEM", "CONSISTENCY"]), bulk("linearizable"));
        assert_eq!(c.send(&["TANDEM", "CONSISTENCY", "session"]), simple("OK"));
        assert_eq!(c.send(&["TANDEM", "CONSISTENCY"]), bulk("session"));
        for i in 0..50 {
            let v = format!("s{i}");
            assert_eq!(c.send(&["SET", "own", &v]), simple("OK"));
            assert_eq!(c.send(&["GET", "own"]), bulk(&v));
        }
        match c.send(&["TANDEM", "CONSISTENCY", "stale", "x"]) {
            Frame::Error(e) => assert_eq!(e, b"ERR syntax error"),
            other => panic!("{other:?}"),
        }
        match c.send(&["TANDEM", "HELP"]) {
            Frame::Array(lines) => {
                assert!(
                    lines.iter().any(|l| matches!(l, Frame::Simple(t) if t.starts_with(b"CONSISTENCY"))),
                    "{lines:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        match c.send(&["TANDEM", "CONSISTENCY", "eventual"]) {
            Frame::Error(e) => assert!(e.starts_with(b"ERR unknown read consistency 'eventual'"), "{e:?}"),
            other => panic!("{other:?}"),
        }
        // Without a majority: linearizable reads are refused, stale reads are served.
        for (i, n) in nodes.iter_mut().enumerate() {
            if i != follower {
                n.proc.take().unwrap().kill();
            }
        }
        let mut lone = nodes[follower].client();
        match lone.send(&["GET", "p"]) {
            Frame::Error(e) => assert!(
                e.starts_with(b"CLUSTERDOWN") || e.starts_with(b"TRYAGAIN"),
                "a linearizable read without a majority: {}",
                String::from_utf8_lossy(&e)
            ),
            other => panic!("a node without a majority served a linearizable read: {other:?}"),
        }
        assert_eq!(lone.send(&["TANDEM", "CONSISTENCY", "stale"]), simple("OK"));
        assert_eq!(lone.send(&["GET", "p"]), bulk("2"));
        assert_eq!(lone.send(&["TANDEM", "CONSISTENCY", "default"]), simple("OK"));
        assert_eq!(lone.send(&["CONFIG", "SET", "read-consistency", "session"]), simple("OK"));
        assert_eq!(lone.send(&["TANDEM", "CONSISTENCY"]), bulk("session"));
        assert_eq!(lone.send(&["GET", "p"]), bulk("2"), "session reads need only the connection's writes");
    });
}

#[test]
fn the_log_is_compacted_into_snapshots_and_a_new_node_catches_up_from_one() {
    in_netns("the_log_is_compacted_into_snapshots_and_a_new_node_catches_up_from_one", || {
        let extra = ["--cluster-snapshot-entries", "50"];
        let mut nodes = start_cluster_with(3, 3, &extra);
        let leader = agreed_leader(&nodes);
        let mut clients: Vec<RawClient> = nodes.iter().map(|n| n.client()).collect();
        // (No leader's expiry cycle reaps keys here, so the expired key below stays.)
        for c in clients.iter_mut() {
            assert_eq!(c.send(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), simple("OK"));
        }
        assert_eq!(clients[0].send(&["SET", "ttl", "x", "EX", "1000"]), simple("OK"));
        // Past its time before any snapshot, but only the log may remove it: every node,
        // the new one included, must keep holding it until an entry does.
        assert_eq!(clients[0].send(&["SET", "gone", "x", "PX", "1"]), simple("OK"));
        std::thread::sleep(Duration::from_millis(5));
        for i in 0..400usize {
            let (k, v) = (format!("k{i}"), format!("v{i}"));
            assert_eq!(clients[i % 3].send(&["SET", &k, &v]), simple("OK"));
        }
        // A set whose hash table grew to 2000 members and lost most of them: the new node
        // rebuilds it from the image at another size and in another order, so a random pick
        // that followed the table's layout would take different members there (SPOP below).
        let members: Vec<String> = (0..2000).map(|i| format!("m{i}")).collect();
        for chunk in members.chunks(500) {
            let args: Vec<&str> = ["SADD", "big"].into_iter().chain(chunk.iter().map(String::as_str)).collect();
            assert_eq!(clients[0].send(&args), Frame::Integer(500));
        }
        for chunk in members.chunks(4) {
            let args: Vec<&str> = ["SREM", "big"].into_iter().chain(chunk[1..].iter().map(String::as_str)).collect();
            assert_eq!(clients[1].send(&args), Frame::Integer(3));
        }
        // Overwrite until every node has a snapshot holding the set (a snapshot is due once
        // the log since the last one holds some writes per key the dataset had then).
        let num = |n: &Node, f: &str| n.field(f).parse::<u64>().unwrap_or(0);
        let set_done = num(&nodes[leader], "cluster_last_applied");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut i = 0i64;
        while !nodes.iter().all(|n| num(n, "cluster_snapshot_index") >= set_done) {
            assert!(std::time::Instant::now() < deadline, "no snapshot after the set's writes");
            for _ in 0..100 {
                i += 1;
                assert_eq!(clients[0].send(&["INCR", "counter"]), Frame::Integer(i));
            }
        }
        wait_until("a purged log on every node", Duration::from_secs(20), || {
            nodes.iter().all(|n| num(n, "cluster_log_first_index") > 1)
        });
        // A fourth node joins; the entries it lacks are gone from the log, so it can only
        // catch up from a snapshot. With three voters already it stays a learner.
        nodes.push(spawn_node(4, &seeds(3), 3, &extra));
        let new = &nodes[3];
        wait_until("the new node to join", Duration::from_secs(20), || {
            new.field("cluster_members").split(',').count() == 4
        });
        assert_eq!(new.field("cluster_role"), "learner");
        // (At least one: a snapshot the leader writes while the node catches up may follow
        // the first, as a debug build's slower writes made happen in CI.)
        wait_until("the new node to install a snapshot", Duration::from_secs(20), || {
            num(new, "cluster_snapshots_installed") >= 1
        });
        assert_eq!(nodes[leader].field("cluster_voters").split(',').count(), 3);
        assert_eq!(nodes[leader].field("cluster_membership_changing"), "0");
        let mut c = nodes[3].client();
        for i in 0..400usize {
            assert_eq!(c.send(&["GET", &format!("k{i}")]), bulk(format!("v{i}")));
        }
        assert!(matches!(c.send(&["TTL", "ttl"]), Frame::Integer(t) if t > 900), "expiry times travel in the image");
        // A learner takes writes (forwarded) and applies later ones from the log.
        assert_eq!(c.send(&["SET", "from-learner", "1"]), simple("OK"));
        assert_eq!(clients[leader].send(&["GET", "from-learner"]), bulk("1"));
        assert_eq!(clients[leader].send(&["SET", "after", "2"]), simple("OK"));
        assert_eq!(c.send(&["GET", "after"]), bulk("2"));
        assert_eq!(c.send(&["GET", "gone"]), Frame::Null);
        assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(406), "the new node's dataset is the others'");
        assert_eq!(clients[leader].send(&["DBSIZE"]), Frame::Integer(406));
        // Random pops applied on every node remove the same members everywhere. (Compared
        // by reading the members: a read waits for this node to apply what came before it.)
        let members = |c: &mut RawClient| {
            let (Frame::Array(mut m) | Frame::Set(mut m)) = c.send(&["SMEMBERS", "big"]) else { panic!("SMEMBERS") };
            m.sort_by_key(|f| f.to_display());
            m
        };
        let before = members(&mut c);
        assert_eq!(before.len(), 500);
        for (i, n) in [1usize, 5, 1, 20].into_iter().enumerate() {
            let from = if i % 2 == 0 { &mut c } else { &mut clients[leader] };
            let r = from.send(&["SPOP", "big", &n.to_string()]);
            assert!(matches!(&r, Frame::Array(m) | Frame::Set(m) if m.len() == n), "SPOP: {r:?}");
        }
        assert!(matches!(c.send(&["SPOP", "big"]), Frame::Bulk(_)));
        let after = members(&mut c);
        assert_eq!(after.len(), 500 - 28);
        for (i, other) in clients.iter_mut().enumerate() {
            assert_eq!(members(other), after, "node {} popped other members than the new node", i + 1);
        }
    });
}

#[test]
fn a_pipelined_load_is_compacted_by_its_writes_not_its_entries() {
    in_netns("a_pipelined_load_is_compacted_by_its_writes_not_its_entries", || {
        // One entry carries a whole batch of pipelined writes: 10,000 overwrites of ten keys
        // take far fewer than 1,000 entries, yet the log holds all of them until a snapshot.
        let nodes = start_cluster_with(3, 3, &["--cluster-snapshot-entries", "1000"]);
        let mut c = nodes[0].client();
        for round in 0..20 {
            let mut pipeline = Vec::new();
            for i in 0..500 {
                pipeline.extend(encode_command(&["SET", &format!("k{}", i % 10), &format!("{round}-{i}")]));
            }
            c.send_raw(&pipeline).unwrap();
            for _ in 0..500 {
                assert_eq!(c.read_frame(), simple("OK"));
            }
        }
        let num = |n: &Node, f: &str| n.field(f).parse::<u64>().unwrap_or(0);
        let entries = num(&nodes[0], "cluster_last_log_index");
        assert!(entries < 1000, "the writes took {entries} entries: this test needs them batched");
        // A snapshot, and the log purged but for about the last 1,000 writes (openraft's own
        // rule would keep the last 1,000 entries: here, all of them).
        wait_until("a snapshot and a purged log on every node", Duration::from_secs(20), || {
            nodes.iter().all(|n| num(n, "cluster_snapshot_index") > 0 && num(n, "cluster_log_first_index") > 1)
        });
        assert_eq!(c.send(&["GET", "k9"]), bulk("19-499"));
        // Few writes of large values: compacted once the log's bytes outgrow the rest of
        // memory (at least 64 MiB), long before 1,000 writes, and purged to at most 16 MiB.
        let settled = || nodes.iter().map(|n| num(n, "cluster_snapshot_index")).collect::<Vec<_>>();
        let mut before = settled();
        loop {
            std::thread::sleep(Duration::from_millis(1500));
            let now = settled();
            if now == before {
                break;
            }
            before = now;
        }
        let value = "v".repeat(1 << 20);
        for _ in 0..80 {
            assert_eq!(c.send(&["SET", "big", &value]), simple("OK"));
        }
        wait_until("a snapshot for the log's bytes on every node", Duration::from_secs(20), || {
            nodes.iter().zip(&before).all(|(n, b)| num(n, "cluster_snapshot_index") > *b)
        });
        let used = |n: &Node| {
            let info = n.info_section("memory");
            info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse::<u64>().ok())
        };
        wait_until("the 80 MiB of log purged on every node", Duration::from_secs(20), || {
            nodes.iter().all(|n| used(n).is_some_and(|u| u < 48 << 20))
        });
    });
}

#[test]
fn a_whole_cluster_restart_keeps_every_acknowledged_write_and_a_node_without_its_state_rejoins_anew() {
    in_netns(
        "a_whole_cluster_restart_keeps_every_acknowledged_write_and_a_node_without_its_state_rejoins_anew",
        || {
            let extra = ["--appendonly", "yes", "--cluster-snapshot-entries", "100"];
            let states: Vec<PathBuf> = (0..3).map(|_| temp_dir("cluster-state")).collect();
            let start = |i: usize| spawn_node_in(i + 1, &seeds(3), 3, &extra, Some(states[i].as_path()));
            let mut nodes: Vec<Node> = (0..3).map(start).collect();
            agreed_leader(&nodes);
            let mut clients: Vec<RawClient> = nodes.iter().map(|n| n.client()).collect();
            for i in 1..=250i64 {
                assert_eq!(clients[i as usize % 3].send(&["INCR", "counter"]), Frame::Integer(i));
                assert_eq!(clients[(i as usize + 1) % 3].send(&["SET", &format!("k{i}"), "v"]), simple("OK"));
            }
            let num = |n: &Node, f: &str| n.field(f).parse::<u64>().unwrap_or(0);
            wait_until("a snapshot on every node", Duration::from_secs(20), || {
                nodes.iter().all(|n| num(n, "cluster_snapshot_index") >= 100)
            });
            // More entries after the snapshots: a restart needs the image and the log after it.
            for i in 251..=270i64 {
                assert_eq!(clients[i as usize % 3].send(&["INCR", "counter"]), Frame::Integer(i));
            }
            let ids: Vec<String> = nodes.iter().map(|n| n.field("cluster_node_id")).collect();
            drop(clients);
            for n in nodes.iter_mut() {
                n.proc.take().unwrap().kill();
            }
            nodes = (0..3).map(start).collect();
            agreed_leader(&nodes);
            // appendonly makes the Raft log durable: no AOF of the node's own is opened (or loaded).
            assert!(states.iter().all(|s| !s.join("appendonlydir").exists()), "an AOF was opened in a cluster");
            for (n, id) in nodes.iter().zip(&ids) {
                assert_eq!(&n.field("cluster_node_id"), id, "a node with its state keeps its identity");
                let mut c = n.client();
                assert_eq!(c.send(&["GET", "counter"]), bulk("270"));
                assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(251));
            }
            assert_eq!(nodes[0].client().send(&["INCR", "counter"]), Frame::Integer(271));
            // Node 3 loses its state: it comes back as a new member and catches up.
            nodes[2].proc.take().unwrap().kill();
            std::fs::remove_dir_all(&states[2]).unwrap();
            std::fs::create_dir_all(&states[2]).unwrap();
            nodes[2] = start(2);
            let new_id = nodes[2].field("cluster_node_id");
            assert_ne!(new_id, ids[2], "a node that lost its log must not reuse its identity");
            wait_until("the renewed node to join", Duration::from_secs(20), || {
                nodes[2].field("cluster_members").contains(&format!("{new_id}@"))
            });
            let mut c = nodes[2].client();
            wait_until("the renewed node to catch up", Duration::from_secs(20), || {
                c.send(&["GET", "counter"]) == bulk("271")
            });
            drop(nodes);
            for s in &states {
                let _ = std::fs::remove_dir_all(s);
            }
        },
    );
}

/// After a whole-cluster restart every node applies its log again (from its snapshot on):
/// the messages and keyspace events of those entries went out when they were written, and
/// subscribers that connect meanwhile receive only what is published from then on.
#[test]
fn a_restart_replays_the_log_without_delivering_its_messages_again() {
    in_netns("a_restart_replays_the_log_without_delivering_its_messages_again", || {
        let extra = ["--appendonly", "yes", "--notify-keyspace-events", "KEA", "--cluster-snapshot-entries", "100"];
        let states: Vec<PathBuf> = (0..3).map(|_| temp_dir("cluster-state")).collect();
        let start = |i: usize| spawn_node_in(i + 1, &seeds(3), 3, &extra, Some(states[i].as_path()));
        let mut nodes: Vec<Node> = (0..3).map(start).collect();
        agreed_leader(&nodes);
        let mut c = nodes[0].client();
        // Snapshots first: a restarted leader's first heartbeats carry its snapshot's index as
        // its commit index, which must not be taken for the end of the backlog.
        for i in 0..150 {
            assert_eq!(c.send(&["SET", &format!("s{i}"), "v"]), simple("OK"));
        }
        let num = |n: &Node, f: &str| n.field(f).parse::<u64>().unwrap_or(0);
        wait_until("a snapshot on every node", Duration::from_secs(20), || {
            nodes.iter().all(|n| num(n, "cluster_snapshot_index") >= 100)
        });
        for i in 0..20 {
            assert_eq!(c.send(&["PUBLISH", "news", &format!("old-{i}")]), Frame::Integer(0));
            assert_eq!(c.send(&["SET", &format!("k{i}"), "v"]), simple("OK"));
        }
        drop(c);
        for n in nodes.iter_mut() {
            n.proc.take().unwrap().kill();
        }
        nodes = (0..3).map(start).collect();
        // Subscribed before any entry can apply: no leader yet, so nothing is committed.
        let mut subs: Vec<RawClient> = nodes
            .iter()
            .map(|n| {
                let mut s = n.client();
                s.send(&["SUBSCRIBE", "news"]);
                s.send(&["PSUBSCRIBE", "__key*__:*"]);
                s
            })
            .collect();
        agreed_leader(&nodes);
        for n in &nodes {
            let mut c = n.client();
            wait_until("the log applied again", Duration::from_secs(20), || c.send(&["GET", "k19"]) == bulk("v"));
        }
        assert_eq!(nodes[1].client().send(&["PUBLISH", "news", "new"]), Frame::Integer(1));
        for (s, n) in subs.iter_mut().zip(&nodes) {
            assert_eq!(
                s.read_frame(),
                Frame::Array(vec![bulk("message"), bulk("news"), bulk("new")]),
                "the first message on node {}",
                n.port
            );
        }
        drop(nodes);
        for s in &states {
            let _ = std::fs::remove_dir_all(s);
        }
    });
}

#[test]
fn losing_the_leader_costs_an_election_and_a_lone_node_refuses_writes() {
    in_netns("losing_the_leader_costs_an_election_and_a_lone_node_refuses_writes", || {
        let mut nodes = start_cluster(3, 3);
        let first = agreed_leader(&nodes);
        let mut c = nodes[(first + 1) % 3].client();
        assert_eq!(c.send(&["SET", "before", "1"]), simple("OK"));
        nodes[first].proc.take().unwrap().kill();
        let second = agreed_leader(&nodes);
        assert_ne!(second, first);
        // The survivors take writes again, through either of them, and kept the old ones.
        for (i, n) in nodes.iter().enumerate().filter(|(_, n)| n.proc.is_some()) {
            let mut c = n.client();
            wait_until("writes after the election", Duration::from_secs(10), || {
                c.send(&["SET", &format!("after{i}"), "1"]) == simple("OK")
            });
            assert_eq!(c.send(&["GET", "before"]), bulk("1"));
        }
        // Kill one more: the last node has no majority and must say so, in bounded time,
        // without applying the write.
        let victim = nodes.iter().position(|n| n.proc.is_some()).unwrap();
        nodes[victim].proc.take().unwrap().kill();
        let last = nodes.iter().find(|n| n.proc.is_some()).unwrap();
        let mut c = last.client();
        std::thread::sleep(Duration::from_secs(3));
        let t = Instant::now();
        match c.send(&["SET", "lonely", "1"]) {
            Frame::Error(e) => assert!(
                e.starts_with(b"CLUSTERDOWN") || e.starts_with(b"TIMEOUT"),
                "a lone node must refuse or report an unknown outcome: {}",
                String::from_utf8_lossy(&e)
            ),
            other => panic!("a lone node took a write: {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(5), "refusal took {:?}", t.elapsed());
        // (Its own data is all this node can read now.)
        assert_eq!(c.send(&["TANDEM", "CONSISTENCY", "stale"]), simple("OK"));
        assert_eq!(c.send(&["GET", "lonely"]), Frame::Null, "a refused write must not be applied");
    });
}

/// libfaketime from Debian's `faketime` package (installed by `scripts/test`).
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn expiry_follows_the_log_clock_on_every_node_and_only_the_leader_reaps() {
    // Keys and hash fields alike.
    in_netns("expiry_follows_the_log_clock_on_every_node_and_only_the_leader_reaps", || {
        assert!(Path::new(FAKETIME_LIB).exists(), "libfaketime missing (apt-get install faketime)");
        let two = seeds(2);
        let mut nodes = vec![spawn_node(1, &two, 2, &[]), spawn_node(2, &two, 2, &[])];
        agreed_leader(&nodes);
        // Node 3's wall clock is a day behind (its monotonic clock is real, so Raft's timers
        // are too). It joins a running cluster, so it follows.
        std::env::set_var("LD_PRELOAD", FAKETIME_LIB);
        std::env::set_var("FAKETIME", "-1d");
        std::env::set_var("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        nodes.push(spawn_node(3, &two, 2, &[]));
        for v in ["LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC"] {
            std::env::remove_var(v);
        }
        wait_until("node 3 to vote", Duration::from_secs(20), || {
            nodes[0].field("cluster_voters").split(',').count() == 3 && nodes[2].field("cluster_role") == "follower"
        });
        let mut skewed = nodes[2].client();
        match skewed.send(&["TIME"]) {
            Frame::Array(t) => {
                let secs: i64 = match &t[0] {
                    Frame::Bulk(b) => String::from_utf8_lossy(b).parse().unwrap(),
                    other => panic!("{other:?}"),
                };
                let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
                assert!((real - secs - 86_400).abs() < 60, "node 3 must run a day behind: {secs} vs {real}");
            }
            other => panic!("{other:?}"),
        }
        // A write taken by the skewed node is stamped by the leader: the TTL is the same
        // everywhere, and so is an absolute expiry time.
        assert_eq!(skewed.send(&["SET", "ttl", "v", "EX", "1000"]), simple("OK"));
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 500;
        assert_eq!(skewed.send(&["SET", "at", "v"]), simple("OK"));
        assert_eq!(skewed.send(&["EXPIREAT", "at", &at.to_string()]), Frame::Integer(1));
        // Hash fields too.
        assert_eq!(skewed.send(&["HSET", "hf", "a", "1", "b", "2"]), Frame::Integer(2));
        assert_eq!(
            skewed.send(&["HEXPIRE", "hf", "1000", "FIELDS", "2", "a", "nosuch"]),
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(-2)])
        );
        for (i, n) in nodes.iter().enumerate() {
            let mut c = n.client();
            for level in ["linearizable", "stale"] {
                assert_eq!(c.send(&["TANDEM", "CONSISTENCY", level]), simple("OK"));
                wait_until("the writes to apply", Duration::from_secs(5), || {
                    c.send(&["EXISTS", "at"]) == Frame::Integer(1)
                });
                match c.send(&["TTL", "ttl"]) {
                    Frame::Integer(t) => assert!((990..=1000).contains(&t), "node {} ({level}): TTL {t}", i + 1),
                    other => panic!("{other:?}"),
                }
                match c.send(&["TTL", "at"]) {
                    Frame::Integer(t) => assert!((490..=500).contains(&t), "node {} ({level}): TTL {t}", i + 1),
                    other => panic!("{other:?}"),
                }
                match c.send(&["HTTL", "hf", "FIELDS", "2", "a", "b"]) {
                    Frame::Array(t) => match t[..] {
                        [Frame::Integer(a), Frame::Integer(-1)] if (990..=1000).contains(&a) => {}
                        _ => panic!("node {} ({level}): HTTL {t:?}", i + 1),
                    },
                    other => panic!("{other:?}"),
                }
            }
        }
        // Short-lived keys run out on every node at the same (log) time, the skewed one
        // included, and the leader has them removed through the log: every node's dataset
        // shrinks, though followers never expire keys on their own.
        let mut c = nodes[0].client();
        for i in 0..300 {
            assert_eq!(c.send(&["SET", &format!("short{i}"), "v", "PX", "300"]), simple("OK"));
        }
        assert_eq!(c.send(&["SET", "kept", "v"]), simple("OK"));
        // And hash fields, whose hashes stay.
        for i in 0..100 {
            let k = format!("hs{i}");
            assert_eq!(c.send(&["HSET", &k, "f", "1", "g", "2"]), Frame::Integer(2));
            assert_eq!(c.send(&["HPEXPIRE", &k, "300", "FIELDS", "1", "f"]), Frame::Array(vec![Frame::Integer(1)]));
        }
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(skewed.send(&["TANDEM", "CONSISTENCY", "stale"]), simple("OK"));
        assert_eq!(skewed.send(&["GET", "short7"]), Frame::Null, "expired on the log's clock");
        assert_eq!(skewed.send(&["HGET", "hs7", "f"]), Frame::Null, "expired on the log's clock");
        assert_eq!(skewed.send(&["HLEN", "hs8"]), Frame::Integer(1));
        for (i, n) in nodes.iter().enumerate() {
            let mut c = n.client();
            wait_until(&format!("node {} to drop the expired keys", i + 1), Duration::from_secs(10), || {
                c.send(&["DBSIZE"]) == Frame::Integer(104)
                    && matches!(c.send(&["INFO", "stats"]), Frame::Bulk(b) if String::from_utf8_lossy(&b).contains("expired_subkeys:100\r\n"))
            });
            match c.send(&["INFO", "stats"]) {
                Frame::Bulk(b) => {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    assert!(text.contains("expired_keys:300\r\n"), "node {}: {text}", i + 1);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(c.send(&["HKEYS", "hs42"]), Frame::Array(vec![bulk("g")]));
        }
        // Every node holds the same data.
        let digests: Vec<Frame> = nodes.iter().map(|n| n.client().send(&["DEBUG", "DIGEST"])).collect();
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
        assert_eq!(c.send(&["GET", "kept"]), bulk("v"));
        // REAP leaves keys that have not run out alone.
        assert_eq!(c.send(&["TANDEM", "REAP", "kept", "ttl", "nosuchkey", "hf"]), Frame::Integer(0));
        assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(104));
        // A hash whose earliest field time went away (HSET clears it) is not collected over
        // and over: once nothing is due the log stands still.
        for i in 0..50 {
            let k = format!("st{i}");
            c.send(&["HSET", &k, "f", "1", "g", "2"]);
            c.send(&["HPEXPIRE", &k, "200", "FIELDS", "1", "f"]);
            assert_eq!(c.send(&["HSET", &k, "f", "3"]), Frame::Integer(0));
        }
        std::thread::sleep(Duration::from_millis(600));
        let leader = agreed_leader(&nodes);
        let before = nodes[leader].field("cluster_last_log_index");
        assert!(before.parse::<u64>().is_ok_and(|i| i > 0), "{before:?}");
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(nodes[leader].field("cluster_last_log_index"), before, "nothing to reap, yet the log grew");
        assert_eq!(c.send(&["HGET", "st7", "f"]), bulk("3"));
    });
}

// Signal numbers (Linux).
const SIGTERM: i32 = 15;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

/// `TANDEM MEMBERS` as (id, role) pairs.
fn members(n: &Node) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    match n.client().send(&["TANDEM", "MEMBERS"]) {
        Frame::Array(ms) => {
            for m in ms {
                let Frame::Array(kv) = m else { panic!("{m:?}") };
                let get = |k: &str| kv.iter().position(|f| *f == bulk(k)).map(|i| kv[i + 1].clone()).unwrap();
                let Frame::Integer(id) = get("id") else { panic!() };
                let Frame::Bulk(role) = get("role") else { panic!() };
                out.push((id as u64, String::from_utf8(role).unwrap()));
            }
        }
        other => panic!("TANDEM MEMBERS: {other:?}"),
    }
    out.sort();
    out
}

fn voters(n: &Node) -> usize {
    members(n).iter().filter(|(_, r)| r == "voter").count()
}

fn node_id(n: &Node) -> u64 {
    n.field("cluster_node_id").parse().unwrap()
}

#[test]
fn members_are_replaced_removed_and_rejoin_without_an_operator() {
    in_netns("members_are_replaced_removed_and_rejoin_without_an_operator", || {
        let extra = ["--cluster-node-timeout", "2500"];
        let three = seeds(3);
        let mut nodes: Vec<Node> = (1..=3).map(|i| spawn_node(i, &three, 3, &extra)).collect();
        let leader = agreed_leader(&nodes);
        let mut c = nodes[leader].client();
        for i in 0..200 {
            assert_eq!(c.send(&["SET", &format!("k{i}"), &i.to_string()]), simple("OK"));
        }
        // A fourth node joins as a learner: three voters are enough.
        nodes.push(spawn_node(4, &three, 3, &extra));
        wait_until("node 4 to join", Duration::from_secs(20), || members(&nodes[leader]).len() == 4);
        assert_eq!(voters(&nodes[leader]), 3, "{:?}", members(&nodes[leader]));
        // INFO cluster has a line per member; the leader learns how far each is replicated.
        let info = nodes[leader].info();
        let lines: Vec<&str> = info.lines().filter(|l| l.starts_with("member")).collect();
        assert_eq!(lines.len(), 4, "{info}");
        assert_eq!(lines.iter().filter(|l| l.contains(",role=voter,")).count(), 3, "{info}");
        assert_eq!(lines.iter().filter(|l| l.contains(",leader=1,")).count(), 1, "{info}");
        wait_until("the leader to know every member's replication", Duration::from_secs(10), || {
            let info = nodes[leader].info();
            info.lines()
                .filter(|l| l.starts_with("member") && !l.contains("leader=1"))
                .all(|l| !l.contains("matched=-1"))
        });
        assert_eq!(nodes[3].client().send(&["GET", "k7"]), bulk("7"), "a learner serves reads");
        assert_eq!(nodes[3].client().send(&["SET", "via-learner", "1"]), simple("OK"), "and forwards writes");

        // A voter that dies is removed after cluster-node-timeout and the learner takes its
        // place: three voters again, without anyone asking.
        let victim = (leader + 1) % 3;
        let victim_id = node_id(&nodes[victim]);
        let learner_id = node_id(&nodes[3]);
        nodes[victim].proc.take().unwrap().kill();
        wait_until("the dead voter to be replaced by the learner", Duration::from_secs(20), || {
            let m = members(&nodes[leader]);
            m.len() == 3 && !m.iter().any(|(id, _)| *id == victim_id) && m.contains(&(learner_id, "voter".into()))
        });

        // A node stopped with SIGTERM leaves first: the others see it gone at once, well
        // before cluster-node-timeout; here it is the leader.
        let leaving_id = node_id(&nodes[leader]);
        let mut p = nodes[leader].proc.take().unwrap();
        p.signal(SIGTERM);
        assert!(p.wait_exit(Duration::from_secs(10)).is_some(), "SIGTERM must stop the node");
        let rest: Vec<usize> = (0..4).filter(|i| nodes[*i].proc.is_some()).collect();
        assert_eq!(rest.len(), 2);
        for &i in &rest {
            let m = members(&nodes[i]);
            assert!(!m.iter().any(|(id, _)| *id == leaving_id), "node {} still lists the leaver: {m:?}", i + 1);
        }
        let leader = agreed_leader(&nodes);
        let mut c = nodes[leader].client();
        assert_eq!(c.send(&["INCR", "after-leave"]), Frame::Integer(1), "two voters of two take writes");

        // A new node (no state) joins and is promoted: three voters again.
        nodes.push(spawn_node(5, &three, 3, &extra));
        // (Until the change's second step, the two voters before it still make a quorum of
        // their own, which the pause below would break: wait for its end.)
        wait_until("node 5 to become a voter", Duration::from_secs(20), || {
            voters(&nodes[leader]) == 3 && nodes[leader].field("cluster_membership_changing") == "0"
        });

        // A voter cut off for longer than the timeout (paused) is removed; when it comes back
        // it finds itself removed and joins again, catching up, without disrupting the others.
        let paused = rest.iter().copied().find(|i| *i != leader).unwrap();
        let paused_id = node_id(&nodes[paused]);
        nodes[paused].proc.as_ref().unwrap().signal(SIGSTOP);
        wait_until("the paused voter to be removed", Duration::from_secs(20), || {
            !members(&nodes[leader]).iter().any(|(id, _)| *id == paused_id)
        });
        assert_eq!(c.send(&["SET", "while-away", "x"]), simple("OK"));
        nodes[paused].proc.as_ref().unwrap().signal(SIGCONT);
        wait_until("the removed node to rejoin as a voter", Duration::from_secs(30), || {
            let leader = agreed_leader(&nodes);
            members(&nodes[leader]).contains(&(paused_id, "voter".into()))
        });
        let mut back = nodes[paused].client();
        wait_until("the rejoined node to catch up", Duration::from_secs(10), || {
            back.send(&["GET", "while-away"]) == bulk("x")
        });
        // Nothing acknowledged was lost on the way.
        for n in nodes.iter().filter(|n| n.proc.is_some()) {
            let mut c = n.client();
            for i in (0..200).step_by(17) {
                assert_eq!(c.send(&["GET", &format!("k{i}")]), bulk(i.to_string()));
            }
            assert_eq!(c.send(&["GET", "via-learner"]), bulk("1"));
        }
        // Errors.
        match c.send(&["TANDEM", "REMOVE", "12345"]) {
            Frame::Error(e) => assert_eq!(e, b"ERR node 12345 is not a member"),
            other => panic!("{other:?}"),
        }
        match c.send(&["TANDEM", "REMOVE", "x"]) {
            Frame::Error(e) => assert_eq!(e, b"ERR invalid node id"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn scaling_one_to_three_to_five_and_back_to_one_under_load_loses_nothing() {
    in_netns("scaling_one_to_three_to_five_and_back_to_one_under_load_loses_nothing", || {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let first = seeds(1);
        let mut nodes = vec![spawn_node(1, &first, 1, &[])];
        agreed_leader(&nodes);
        // Writers keep going on every live node throughout; a write counts once acknowledged.
        let live: Arc<Mutex<Vec<u16>>> = Arc::new(Mutex::new(vec![nodes[0].port]));
        let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (live, acked, stop) = (live.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        seq += 1;
                        let ports = live.lock().unwrap().clone();
                        let port = ports[seq as usize % ports.len()];
                        let Ok(mut c) = RawClient::connect(("127.0.0.1", port)) else { continue };
                        c.set_timeout(Duration::from_secs(10));
                        let key = format!("w{w}-{seq}");
                        if c.write_command(&["SET", &key, &seq.to_string()]).is_err() {
                            continue;
                        }
                        if c.try_read_frame().ok() == Some(simple("OK")) {
                            acked.lock().unwrap().push(key);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        let grow = |nodes: &mut Vec<Node>, to: usize| {
            for i in nodes.len() + 1..=to {
                nodes.push(spawn_node(i, &first, 1, &[]));
                let n = nodes.last().unwrap();
                wait_until(&format!("node {i} to join"), Duration::from_secs(30), || {
                    n.field("cluster_members").split(',').count() == i
                });
                live.lock().unwrap().push(n.port);
            }
        };
        grow(&mut nodes, 3);
        let leader = agreed_leader(&nodes);
        wait_until("three voters", Duration::from_secs(20), || voters(&nodes[leader]) == 3);
        grow(&mut nodes, 5);
        let leader = agreed_leader(&nodes);
        assert_eq!(voters(&nodes[leader]), 3, "nodes beyond cluster-voters stay learners");
        std::thread::sleep(Duration::from_millis(500));
        // Down to one: stop nodes one at a time with SIGTERM (each leaves first), voters and
        // the leader included; learners step in while there are any.
        for stop_at in [0usize, 2, 1, 4] {
            let port = nodes[stop_at].port;
            live.lock().unwrap().retain(|p| *p != port);
            let mut p = nodes[stop_at].proc.take().unwrap();
            p.signal(SIGTERM);
            assert!(p.wait_exit(Duration::from_secs(10)).is_some(), "node {} did not stop", stop_at + 1);
            let leader = agreed_leader(&nodes);
            let left = nodes.iter().filter(|n| n.proc.is_some()).count();
            wait_until(&format!("{left} members"), Duration::from_secs(20), || {
                members(&nodes[leader]).len() == left && voters(&nodes[leader]) == left.min(3)
            });
            std::thread::sleep(Duration::from_millis(300));
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        let last = nodes.iter().find(|n| n.proc.is_some()).unwrap();
        let mut c = last.client();
        assert_eq!(c.send(&["SET", "alone", "1"]), simple("OK"), "a single voter takes writes");
        let acked = acked.lock().unwrap();
        eprintln!("{} acknowledged writes checked", acked.len());
        assert!(acked.len() > 100, "the load was too light: {} writes", acked.len());
        for key in acked.iter() {
            let seq = key.rsplit('-').next().unwrap();
            assert_eq!(c.send(&["GET", key]), bulk(seq), "acknowledged write {key} lost");
        }
    });
}

#[test]
fn nodes_find_each_other_through_dns() {
    in_netns("nodes_find_each_other_through_dns", || {
        // A real DNS server (Debian's dnsmasq, installed by scripts/test): the name has one A
        // record per node, as a headless Service publishes them; the SRV name lists them with
        // their cluster port.
        let dir = temp_dir("dnsmasq");
        let dns = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--port",
                "5353",
                "--listen-address",
                "127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--host-record=nodes.tandem.test,127.0.0.1",
                "--host-record=nodes.tandem.test,127.0.0.2",
                "--host-record=nodes.tandem.test,127.0.0.3",
                "--host-record=n1.tandem.test,127.0.0.1",
                "--host-record=n2.tandem.test,127.0.0.2",
                "--srv-host=_tandem._tcp.tandem.test,n1.tandem.test,16379",
                "--srv-host=_tandem._tcp.tandem.test,n2.tandem.test,16379",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("dnsmasq.log")).unwrap())
            .spawn()
            .expect("dnsmasq (apt-get install dnsmasq-base)");
        // Stopped however the test ends.
        struct Reaper(std::process::Child);
        impl Drop for Reaper {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let _dns = Reaper(dns);
        let spawn = |i: usize, name: &str| {
            let bin = PathBuf::from(env!("CARGO_BIN_EXE_tandem-server"));
            let port = 7000 + i as u16;
            let dir = temp_dir("cluster-node");
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                // The node's own address first (the one it announces), and 127.0.0.1 for the test.
                "--bind",
                &if i == 1 { "127.0.0.1".to_string() } else { format!("127.0.0.{i} 127.0.0.1") },
                "--cluster-port",
                "16379",
                "--dir",
                &dir.display().to_string(),
                "--cluster-discovery",
                &format!("dns:{name}"),
                "--cluster-discovery-resolver",
                "127.0.0.1:5353",
                "--cluster-bootstrap-expect",
                "3",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            Node { proc: Some(ServerProcess::spawn_exact("tandem-server", &bin, &args, port, dir)), port }
        };
        // No seeds at all: three nodes started together find each other by name and form one
        // cluster.
        let mut nodes: Vec<Node> = (1..=3).map(|i| spawn(i, "nodes.tandem.test")).collect();
        let leader = agreed_leader(&nodes);
        assert_eq!(voters(&nodes[leader]), 3);
        assert_eq!(nodes[0].client().send(&["SET", "found", "by-dns"]), simple("OK"));
        // A fourth node looks the cluster up by its SRV name, joins, and serves the data.
        nodes.push(spawn(4, "_tandem._tcp.tandem.test"));
        wait_until("the fourth node to join", Duration::from_secs(20), || members(&nodes[leader]).len() == 4);
        assert_eq!(nodes[3].client().send(&["GET", "found"]), bulk("by-dns"));
    });
}

#[test]
fn select_swapdb_and_flushall_behave_as_on_one_server_on_every_node() {
    in_netns("select_swapdb_and_flushall_behave_as_on_one_server_on_every_node", || {
        let nodes = start_cluster(3, 3);
        agreed_leader(&nodes);
        let mut a = nodes[0].client();
        let mut b = nodes[1].client();
        let mut c = nodes[2].client();
        // SELECT is the connection's: writes carry its database through the log.
        assert_eq!(a.send(&["SELECT", "2"]), simple("OK"));
        assert_eq!(a.send(&["SET", "k", "in-2"]), simple("OK"));
        assert_eq!(b.send(&["SET", "k", "in-0"]), simple("OK"));
        assert_eq!(c.send(&["SELECT", "2"]), simple("OK"));
        assert_eq!(c.send(&["GET", "k"]), bulk("in-2"));
        // SWAPDB through the log: every node swaps, connections keep their index.
        assert_eq!(b.send(&["SWAPDB", "0", "2"]), simple("OK"));
        assert_eq!(c.send(&["GET", "k"]), bulk("in-0"));
        assert_eq!(a.send(&["GET", "k"]), bulk("in-0"));
        assert_eq!(b.send(&["GET", "k"]), bulk("in-2"));
        // FLUSHDB empties only the selected database, FLUSHALL every one, on every node.
        assert_eq!(a.send(&["FLUSHDB"]), simple("OK"));
        assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(0));
        assert_eq!(b.send(&["DBSIZE"]), Frame::Integer(1));
        assert_eq!(c.send(&["SET", "x", "1"]), simple("OK"));
        assert_eq!(c.send(&["FLUSHALL"]), simple("OK"));
        for n in &nodes {
            let mut cl = n.client();
            for db in ["0", "2"] {
                assert_eq!(cl.send(&["SELECT", db]), simple("OK"));
                assert_eq!(cl.send(&["DBSIZE"]), Frame::Integer(0), "node {} db {db}", n.port);
            }
        }
    });
}

#[test]
fn leadership_moves_on_request_without_failing_a_write_or_a_read() {
    in_netns("leadership_moves_on_request_without_failing_a_write_or_a_read", || {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        // Five voters: the target needs votes from voters other than the old leader, whose
        // leases a transfer must let run out (in a 3-voter cluster the old leader's vote
        // alone would do).
        let nodes = start_cluster_with(5, 5, &["--cluster-voters", "5"]);
        let leader = agreed_leader(&nodes);
        let ids: Vec<u64> = nodes.iter().map(node_id).collect();
        // One writer per node, each on one connection: INCR its own counter, then read it back
        // (linearizable, the default). Every reply must be the expected one, transfers or not.
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(w, n)| {
                let (mut c, stop) = (n.client(), stop.clone());
                std::thread::spawn(move || {
                    let key = format!("counter-{w}");
                    let mut done = 0i64;
                    while !stop.load(Ordering::Relaxed) {
                        assert_eq!(c.send(&["INCR", &key]), Frame::Integer(done + 1), "INCR on node {}", w + 1);
                        done += 1;
                        assert_eq!(c.send(&["GET", &key]), bulk(done.to_string()), "GET on node {}", w + 1);
                    }
                    done
                })
            })
            .collect();
        // And one that only writes (reads wait during a transfer too, which alone would
        // quiet the writers above).
        let blind = {
            let (mut c, stop) = (nodes[leader].client(), stop.clone());
            std::thread::spawn(move || {
                let mut done = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(c.send(&["INCR", "blind"]), Frame::Integer(done + 1), "blind INCR");
                    done += 1;
                }
                done
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        // Asked on a follower, for another follower.
        let asked = (leader + 1) % 5;
        let target = (leader + 2) % 5;
        let t = Instant::now();
        assert_eq!(
            nodes[asked].client().send(&["TANDEM", "TRANSFER", &ids[target].to_string()]),
            Frame::Integer(ids[target] as i64)
        );
        eprintln!("transfer took {} ms", t.elapsed().as_millis());
        assert_eq!(agreed_leader(&nodes), target);
        std::thread::sleep(Duration::from_millis(300));
        // Without a target, on the leader: the most caught-up other voter.
        let reply = nodes[target].client().send(&["TANDEM", "TRANSFER"]);
        let Frame::Integer(new) = reply else { panic!("TANDEM TRANSFER: {reply:?}") };
        let now = agreed_leader(&nodes);
        assert_eq!(ids[now] as i64, new);
        assert_ne!(now, target);
        // To the leader itself: nothing to do.
        assert_eq!(nodes[asked].client().send(&["TANDEM", "TRANSFER", &ids[now].to_string()]), Frame::Integer(new));
        assert_eq!(
            nodes[asked].client().send(&["TANDEM", "TRANSFER", "12345"]),
            error("ERR node 12345 is not a member")
        );
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let counts: Vec<i64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let blind = blind.join().unwrap();
        eprintln!("increments per node: {counts:?}, blind: {blind}");
        for n in &nodes {
            assert_eq!(n.client().send(&["GET", "blind"]), bulk(blind.to_string()));
        }
        for (w, count) in counts.iter().enumerate() {
            assert!(*count > 20, "writer {w} made too little progress: {count}");
            for n in &nodes {
                let mut c = n.client();
                assert_eq!(c.send(&["GET", &format!("counter-{w}")]), bulk(count.to_string()));
            }
        }
        // A learner cannot lead.
        let extra = spawn_node(6, &seeds(5), 5, &["--cluster-voters", "5"]);
        wait_until("node 6 to join", Duration::from_secs(20), || extra.field("cluster_role") == "learner");
        let learner = node_id(&extra);
        assert_eq!(
            nodes[asked].client().send(&["TANDEM", "TRANSFER", &learner.to_string()]),
            error(format!("ERR node {learner} is a learner, only a voter can lead"))
        );
    });
}

fn blocked_clients(n: &Node) -> usize {
    n.info_section("clients")
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:").map(|v| v.trim().parse().unwrap()))
        .unwrap()
}

fn pair_reply(key: &str, v: &str) -> Frame {
    Frame::Array(vec![bulk(key), bulk(v)])
}

#[test]
fn blocked_pops_wake_on_pushes_through_any_node_and_take_each_element_once() {
    // Lists and sorted sets alike.
    in_netns("blocked_pops_wake_on_pushes_through_any_node_and_take_each_element_once", || {
        let nodes = start_cluster(3, 3);
        agreed_leader(&nodes);
        // A waiter on one node, the push on another: every node applies the pop.
        let mut w = nodes[0].client();
        w.write_command(&["BLPOP", "q", "0"]).unwrap();
        wait_until("the BLPOP to block", Duration::from_secs(10), || blocked_clients(&nodes[0]) == 1);
        assert_eq!(nodes[2].client().send(&["RPUSH", "q", "a", "b"]), Frame::Integer(2));
        assert_eq!(w.read_frame(), pair_reply("q", "a"));
        for n in &nodes {
            assert_eq!(n.client().send(&["LRANGE", "q", "0", "-1"]), Frame::Array(vec![bulk("b")]), "node {}", n.port);
        }
        // BLMOVE on a follower or the leader alike; the move is one entry.
        let mut m = nodes[1].client();
        m.write_command(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]).unwrap();
        wait_until("the BLMOVE to block", Duration::from_secs(10), || blocked_clients(&nodes[1]) == 1);
        nodes[0].client().send(&["RPUSH", "src", "x"]);
        assert_eq!(m.read_frame(), bulk("x"));
        for n in &nodes {
            let mut c = n.client();
            assert_eq!(c.send(&["EXISTS", "src"]), Frame::Integer(0));
            assert_eq!(c.send(&["LRANGE", "dst", "0", "-1"]), Frame::Array(vec![bulk("x")]));
        }
        // A sorted-set waiter is woken by a ZADD through another node; a list pushed to its
        // key first leaves it waiting.
        let mut z = nodes[1].client();
        z.write_command(&["BZPOPMAX", "zq", "0"]).unwrap();
        wait_until("the BZPOPMAX to block", Duration::from_secs(10), || blocked_clients(&nodes[1]) == 1);
        nodes[2].client().send(&["RPUSH", "zq", "l"]);
        nodes[2].client().send(&["DEL", "zq"]);
        assert_eq!(nodes[0].client().send(&["ZADD", "zq", "1", "lo", "9", "hi"]), Frame::Integer(2));
        assert_eq!(z.read_frame(), Frame::Array(vec![bulk("zq"), bulk("hi"), bulk("9")]));
        for n in &nodes {
            assert_eq!(
                n.client().send(&["ZRANGE", "zq", "0", "-1"]),
                Frame::Array(vec![bulk("lo")]),
                "node {}",
                n.port
            );
        }
        // Timeouts and CLIENT UNBLOCK end a wait with a null, as on one server.
        let mut t = nodes[2].client();
        let started = Instant::now();
        assert_eq!(t.send(&["BRPOP", "none", "0.3"]), Frame::NullArray);
        assert!(started.elapsed() >= Duration::from_millis(300));
        let id = match t.send(&["CLIENT", "ID"]) {
            Frame::Integer(id) => id.to_string(),
            f => panic!("{f:?}"),
        };
        t.write_command(&["BLPOP", "none", "0"]).unwrap();
        wait_until("the BLPOP to block", Duration::from_secs(10), || blocked_clients(&nodes[2]) == 1);
        assert_eq!(nodes[2].client().send(&["CLIENT", "UNBLOCK", &id]), Frame::Integer(1));
        assert_eq!(t.read_frame(), Frame::NullArray);
        // Consumers on every node and producers on every node: each token comes out once.
        const TOKENS: usize = 300;
        let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let consumers: Vec<_> = (0..6)
            .map(|i| {
                let port = ports[i % 3];
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut c = RawClient::connect(("127.0.0.1", port)).unwrap();
                    c.set_timeout(Duration::from_secs(20));
                    let mut got = Vec::new();
                    loop {
                        match c.send(&["BLPOP", "jobs", "0.2"]) {
                            Frame::Array(kv) => got.push(kv[1].clone()),
                            Frame::NullArray if done.load(std::sync::atomic::Ordering::Relaxed) => return got,
                            Frame::NullArray => {}
                            f => panic!("{f:?}"),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        for (i, port) in ports.iter().enumerate() {
            let mut c = RawClient::connect(("127.0.0.1", *port)).unwrap();
            c.set_timeout(Duration::from_secs(20));
            for j in (i..TOKENS).step_by(3) {
                let reply = c.send(&["RPUSH", "jobs", &j.to_string()]);
                assert!(matches!(reply, Frame::Integer(_)), "{reply:?}");
            }
        }
        wait_until("every job to be taken", Duration::from_secs(30), || {
            nodes[0].client().send(&["LLEN", "jobs"]) == Frame::Integer(0)
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all: Vec<String> = consumers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .map(|f| match f {
                Frame::Bulk(b) => String::from_utf8(b).unwrap(),
                f => panic!("{f:?}"),
            })
            .collect();
        assert_eq!(all.len(), TOKENS);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), TOKENS, "a job was taken twice");
    });
}

/// WATCH, read, MULTI/SET n+1/EXEC on `c`; true if the transaction ran.
fn cas_increment(c: &mut RawClient, key: &str) -> bool {
    assert_eq!(c.send(&["WATCH", key]), simple("OK"));
    let n: i64 = match c.send(&["GET", key]) {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).parse().unwrap(),
        Frame::Null => 0,
        other => panic!("GET answered {other:?}"),
    };
    assert_eq!(c.send(&["MULTI"]), simple("OK"));
    assert_eq!(c.send(&["SET", key, &(n + 1).to_string()]), simple("QUEUED"));
    match c.send(&["EXEC"]) {
        Frame::Array(r) => r == vec![simple("OK")],
        Frame::NullArray => false,
        other => panic!("EXEC answered {other:?}"),
    }
}

#[test]
fn transactions_apply_whole_on_every_node_and_watch_sees_writes_through_any_node() {
    in_netns("transactions_apply_whole_on_every_node_and_watch_sees_writes_through_any_node", || {
        let nodes = start_cluster(3, 3);
        agreed_leader(&nodes);
        let mut a = nodes[0].client();
        let mut b = nodes[1].client();
        // One entry, applied in one piece everywhere; SELECT inside stays in force after.
        assert_eq!(a.send(&["MULTI"]), simple("OK"));
        for cmd in [&["SET", "x", "1"][..], &["INCR", "n"], &["SELECT", "3"], &["SET", "y", "2"], &["LPUSH", "y", "z"]]
        {
            assert_eq!(a.send(cmd), simple("QUEUED"));
        }
        let wrongtype = error("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert_eq!(
            a.send(&["EXEC"]),
            Frame::Array(vec![simple("OK"), Frame::Integer(1), simple("OK"), simple("OK"), wrongtype])
        );
        assert_eq!(a.send(&["GET", "y"]), bulk("2"));
        for n in &nodes {
            let mut c = n.client();
            assert_eq!(c.send(&["GET", "x"]), bulk("1"), "node {}", n.port);
            assert_eq!(c.send(&["SELECT", "3"]), simple("OK"));
            assert_eq!(c.send(&["GET", "y"]), bulk("2"), "node {}", n.port);
        }
        // A queueing error dooms it here, before the log; so does a command that acts on the
        // node rather than the data, which would otherwise run on every node.
        let execabort = error("EXECABORT Transaction discarded because of previous errors.");
        assert_eq!(a.send(&["MULTI"]), simple("OK"));
        assert!(matches!(a.send(&["NOSUCHCOMMAND"]), Frame::Error(_)));
        assert_eq!(a.send(&["EXEC"]), execabort);
        assert_eq!(a.send(&["MULTI"]), simple("OK"));
        assert_eq!(a.send(&["SET", "x", "2"]), simple("QUEUED"));
        assert_eq!(
            a.send(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
            error("ERR CONFIG SET is not allowed in a transaction in a cluster")
        );
        assert_eq!(a.send(&["EXEC"]), execabort);
        assert_eq!(a.send(&["GET", "x"]), Frame::Null, "db 3 still");
        // A write through another node between WATCH and EXEC fails the transaction on every
        // node; with no write in between it runs.
        let mut w = nodes[0].client();
        assert_eq!(w.send(&["WATCH", "k"]), simple("OK"));
        assert_eq!(b.send(&["SET", "k", "theirs"]), simple("OK"));
        assert_eq!(w.send(&["MULTI"]), simple("OK"));
        assert_eq!(w.send(&["SET", "k", "mine"]), simple("QUEUED"));
        assert_eq!(w.send(&["EXEC"]), Frame::NullArray);
        for n in &nodes {
            assert_eq!(n.client().send(&["GET", "k"]), bulk("theirs"), "node {}", n.port);
        }
        // A SELECT inside a transaction that did not run leaves the connection where it was.
        assert_eq!(w.send(&["WATCH", "k"]), simple("OK"));
        assert_eq!(b.send(&["SET", "k", "again"]), simple("OK"));
        assert_eq!(w.send(&["MULTI"]), simple("OK"));
        assert_eq!(w.send(&["SELECT", "5"]), simple("QUEUED"));
        assert_eq!(w.send(&["EXEC"]), Frame::NullArray);
        assert_eq!(w.send(&["GET", "k"]), bulk("again"), "still in db 0");
        assert_eq!(w.send(&["WATCH", "k"]), simple("OK"));
        assert_eq!(w.send(&["MULTI"]), simple("OK"));
        assert_eq!(w.send(&["SET", "k", "mine"]), simple("QUEUED"));
        assert_eq!(w.send(&["EXEC"]), Frame::Array(vec![simple("OK")]));
        assert_eq!(b.send(&["GET", "k"]), bulk("mine"));
        // So does a write of the same value, or a change and back, once the watching node has
        // applied it (its linearizable GET waits for that), though the key holds what it did.
        assert_eq!(b.send(&["SET", "k", "same"]), simple("OK"));
        for writes in [&["same"][..], &["other", "same"]] {
            assert_eq!(w.send(&["WATCH", "k"]), simple("OK"));
            for v in writes {
                assert_eq!(b.send(&["SET", "k", v]), simple("OK"));
            }
            assert_eq!(w.send(&["GET", "k"]), bulk("same"));
            assert_eq!(w.send(&["MULTI"]), simple("OK"));
            assert_eq!(w.send(&["SET", "k", "mine"]), simple("QUEUED"));
            assert_eq!(w.send(&["EXEC"]), Frame::NullArray, "after {writes:?}");
        }
        assert_eq!(b.send(&["GET", "k"]), bulk("same"));
        // Read-modify-write through every node at once loses no update.
        let per_client = 25;
        std::thread::scope(|s| {
            for n in &nodes {
                s.spawn(move || {
                    let mut c = n.client();
                    for _ in 0..per_client {
                        while !cas_increment(&mut c, "counter") {}
                    }
                });
            }
        });
        let digests: Vec<Frame> = nodes
            .iter()
            .map(|n| {
                let mut c = n.client();
                assert_eq!(c.send(&["GET", "counter"]), bulk((3 * per_client).to_string()), "node {}", n.port);
                c.send(&["DEBUG", "DIGEST"])
            })
            .collect();
        assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
    });
}

/// A node whose background save failed refuses writes from its clients with `-MISCONF`, as
/// one Redis does, before they reach the log (which every node applies past such checks), and
/// goes on applying the writes that come through other nodes.
#[test]
fn a_node_whose_save_failed_refuses_its_clients_writes_but_applies_the_log() {
    in_netns("a_node_whose_save_failed_refuses_its_clients_writes_but_applies_the_log", || {
        let nodes = start_cluster_with(3, 3, &["--save", "3600 1"]);
        agreed_leader(&nodes);
        let dir = nodes[0].proc.as_ref().unwrap().dir.clone();
        let mut a = nodes[0].client();
        let mut b = nodes[1].client();
        assert_eq!(a.send(&["SET", "before", "1"]), simple("OK"));
        let mut queued = nodes[0].client();
        assert_eq!(queued.send(&["MULTI"]), simple("OK"));
        assert_eq!(queued.send(&["INCR", "refused"]), simple("QUEUED"));
        // Its directory disappears: the next save cannot create its file.
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(a.send(&["BGSAVE"]), simple("Background saving started"));
        wait_until("a failed save", Duration::from_secs(10), || {
            nodes[0].info_section("persistence").contains("rdb_last_bgsave_status:err")
        });
        let misconf = |f: Frame| matches!(f, Frame::Error(e) if e.starts_with(b"MISCONF "));
        assert!(misconf(a.send(&["SET", "refused", "1"])));
        assert!(misconf(a.send(&["PING"])));
        assert!(matches!(queued.send(&["EXEC"]),
            Frame::Error(e) if e.starts_with(b"EXECABORT Transaction discarded because of: MISCONF ")));
        assert!(misconf(a.send(&["BLPOP", "refused", "0"])));
        // Pipelined: every write refused, in order, none sent.
        a.send_raw(&[encode_command(&["SET", "refused", "2"]), encode_command(&["DEL", "before"])].concat()).unwrap();
        assert!(misconf(a.read_frame()) && misconf(a.read_frame()));
        // Reads and messages still go; writes through other nodes apply here too.
        assert_eq!(a.send(&["PUBLISH", "ch", "m"]), Frame::Integer(0));
        assert_eq!(b.send(&["SET", "through-b", "1"]), simple("OK"));
        assert_eq!(a.send(&["GET", "through-b"]), bulk("1"));
        for n in &nodes {
            let mut c = n.client();
            assert_eq!(c.send(&["EXISTS", "refused", "before"]), Frame::Integer(1), "node {}", n.port);
        }
        // Its directory back, a good save opens the gate again.
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(a.send(&["BGSAVE"]), simple("Background saving started"));
        wait_until("a good save", Duration::from_secs(10), || {
            nodes[0].info_section("persistence").contains("rdb_last_bgsave_status:ok")
        });
        assert_eq!(a.send(&["SET", "after", "1"]), simple("OK"));
        assert_eq!(b.send(&["GET", "after"]), bulk("1"));
    });
}

/// A message published through any node reaches subscribers on every node, each
/// publisher's messages in the order it published them; the reply counts the subscribers
/// of the publisher's node.
#[test]
fn messages_published_on_any_node_reach_subscribers_on_every_node_in_order() {
    in_netns("messages_published_on_any_node_reach_subscribers_on_every_node_in_order", || {
        let nodes = start_cluster(3, 3);
        agreed_leader(&nodes);
        let mut subs: Vec<RawClient> = nodes.iter().map(|n| n.client()).collect();
        for s in subs.iter_mut() {
            assert_eq!(
                s.send(&["SUBSCRIBE", "news"]),
                Frame::Array(vec![bulk("subscribe"), bulk("news"), Frame::Integer(1)])
            );
        }
        let per_publisher = 200;
        std::thread::scope(|s| {
            for (i, n) in nodes.iter().enumerate() {
                s.spawn(move || {
                    let mut c = n.client();
                    // Pipelined: consecutive publishes of one connection share log entries.
                    for j in 0..per_publisher {
                        c.write_command(&["PUBLISH", "news", &format!("{i}:{j}")]).unwrap();
                    }
                    for _ in 0..per_publisher {
                        assert_eq!(c.read_frame(), Frame::Integer(1), "one subscriber on node {i}");
                    }
                });
            }
        });
        for (k, s) in subs.iter_mut().enumerate() {
            let mut next = [0usize; 3];
            for _ in 0..3 * per_publisher {
                let f = s.read_frame();
                let Frame::Array(parts) = &f else { panic!("node {k}: {f:?}") };
                assert_eq!(parts[..2], [bulk("message"), bulk("news")], "node {k}");
                let Frame::Bulk(m) = &parts[2] else { panic!("{f:?}") };
                let m = String::from_utf8_lossy(m);
                let (i, j) = m.split_once(':').unwrap();
                let (i, j): (usize, usize) = (i.parse().unwrap(), j.parse().unwrap());
                assert_eq!(j, next[i], "node {k}: publisher {i}'s messages out of order");
                next[i] += 1;
            }
            assert!(s.is_silent(Duration::from_millis(200)), "node {k}: a message delivered twice");
        }
        // A subscribed RESP2 connection is refused writes on its node, before the log.
        match subs[0].send(&["SET", "k", "v"]) {
            Frame::Error(e) => assert!(e.starts_with(b"ERR Can't execute 'set'"), "{}", String::from_utf8_lossy(&e)),
            other => panic!("{other:?}"),
        }
        // Keyspace events: every node applies every write, so each publishes its events to
        // its own subscribers (the setting is per node, as in Redis).
        for n in &nodes {
            assert_eq!(n.client().send(&["CONFIG", "SET", "notify-keyspace-events", "E$"]), simple("OK"));
        }
        let mut events = nodes[2].client();
        events.send(&["SUBSCRIBE", "__keyevent@0__:set"]);
        assert_eq!(nodes[0].client().send(&["SET", "written-on-0", "v"]), simple("OK"));
        assert_eq!(
            events.read_frame(),
            Frame::Array(vec![bulk("message"), bulk("__keyevent@0__:set"), bulk("written-on-0")])
        );
        // Shard channels too.
        assert_eq!(
            subs[2].send(&["SSUBSCRIBE", "orders"]),
            Frame::Array(vec![bulk("ssubscribe"), bulk("orders"), Frame::Integer(1)])
        );
        assert_eq!(nodes[1].client().send(&["SPUBLISH", "orders", "o1"]), Frame::Integer(0));
        assert_eq!(subs[2].read_frame(), Frame::Array(vec![bulk("smessage"), bulk("orders"), bulk("o1")]));
    });
}

/// Client-side caching across the cluster: every node applies every write, so a client
/// tracking keys on any node hears of changes written through any other, in default and
/// BCAST mode, and of flushes.
#[test]
fn writes_through_any_node_invalidate_tracking_clients_on_every_node() {
    in_netns("writes_through_any_node_invalidate_tracking_clients_on_every_node", || {
        let nodes = start_cluster(3, 3);
        agreed_leader(&nodes);
        let invalidate =
            |keys: &[&str]| Frame::Push(vec![bulk("invalidate"), Frame::Array(keys.iter().map(bulk).collect())]);
        let mut trackers: Vec<RawClient> = nodes
            .iter()
            .map(|n| {
                let mut c = n.client();
                c.hello3();
                assert_eq!(c.send(&["CLIENT", "TRACKING", "on"]), simple("OK"));
                assert_eq!(c.send(&["GET", "k"]), Frame::Null);
                c
            })
            .collect();
        let mut bcast = nodes[1].client();
        bcast.hello3();
        assert_eq!(bcast.send(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p:"]), simple("OK"));

        assert_eq!(nodes[0].client().send(&["SET", "k", "v"]), simple("OK"));
        for (i, t) in trackers.iter_mut().enumerate() {
            assert_eq!(t.read_frame_timeout(Duration::from_secs(5)).unwrap(), invalidate(&["k"]), "node {i}");
        }
        // Read once, told once.
        assert_eq!(nodes[2].client().send(&["SET", "k", "w"]), simple("OK"));
        assert_eq!(nodes[2].client().send(&["MSET", "p:1", "a", "q:1", "b"]), simple("OK"));
        assert_eq!(bcast.read_frame_timeout(Duration::from_secs(5)).unwrap(), invalidate(&["p:1"]));
        for (i, t) in trackers.iter_mut().enumerate() {
            assert!(t.is_silent(Duration::from_millis(200)), "node {i}: invalidated without a read");
            assert_eq!(t.send(&["GET", "k"]), bulk("w"), "node {i}");
        }
        assert_eq!(nodes[1].client().send(&["FLUSHALL"]), simple("OK"));
        let flushed = Frame::Push(vec![bulk("invalidate"), Frame::Null]);
        for (i, t) in trackers.iter_mut().enumerate() {
            assert_eq!(t.read_frame_timeout(Duration::from_secs(5)).unwrap(), flushed, "node {i}");
        }
        assert_eq!(bcast.read_frame_timeout(Duration::from_secs(5)).unwrap(), flushed);

        // The node a client is connected to applies its writes as that client's: NOLOOP
        // silences its own writes, not others'.
        let mut quiet = nodes[1].client();
        quiet.hello3();
        assert_eq!(quiet.send(&["CLIENT", "TRACKING", "on", "NOLOOP"]), simple("OK"));
        assert_eq!(quiet.send(&["GET", "own"]), Frame::Null);
        assert_eq!(quiet.send(&["SET", "own", "1"]), simple("OK"));
        assert!(quiet.is_silent(Duration::from_millis(300)), "NOLOOP: told of its own write");
        assert_eq!(quiet.send(&["GET", "own"]), bulk("1"));
        assert_eq!(nodes[2].client().send(&["SET", "own", "2"]), simple("OK"));
        assert_eq!(quiet.read_frame_timeout(Duration::from_secs(5)).unwrap(), invalidate(&["own"]));
        // Keys read inside a transaction (one log entry) are remembered for its client.
        let t = &mut trackers[2];
        assert_eq!(t.send(&["MULTI"]), simple("OK"));
        assert_eq!(t.send(&["GET", "txread"]), simple("QUEUED"));
        assert_eq!(t.send(&["EXEC"]), Frame::Array(vec![Frame::Null]));
        assert_eq!(nodes[0].client().send(&["SET", "txread", "x"]), simple("OK"));
        assert_eq!(t.read_frame_timeout(Duration::from_secs(5)).unwrap(), invalidate(&["txread"]));
    });
}

#[test]
fn a_job_queue_runs_every_job_exactly_once_with_workers_on_every_node() {
    // pip needs the registry, which the test's namespace cannot reach: build the venv first.
    let venv = common::jobqueue::rq_venv();
    in_netns("a_job_queue_runs_every_job_exactly_once_with_workers_on_every_node", || {
        let nodes = start_cluster(3, 3);
        agreed_leader(&nodes);
        // Jobs enqueued through node 1; six workers, two per node, each blocked in BLPOP on its
        // own node, so every pop is a replicated write competing with pops on other nodes.
        let urls: Vec<String> = nodes.iter().map(|n| format!("redis://127.0.0.1:{}/", n.port)).collect();
        common::jobqueue::rq_check(&venv, 2000, 6, &urls);
    });
}
