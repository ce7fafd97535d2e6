//! Blocking list commands with several real connections: scenarios run against Tandem and
//! redis-server side by side and compared reply by reply (who is served, in which order, with
//! what), plus what a single server must guarantee on its own: timeouts, disconnects, the AOF,
//! no element lost or doubled under concurrent pushers and movers.

mod common;

use common::{pair, tandem};
use std::time::{Duration, Instant};
use testkit::{Frame, RawClient};

/// One step of a scenario.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Client `i` runs a command and its reply is recorded.
    Run(usize, &'static str),
    /// Client `i` sends a command that must block; the step waits until the server lists the
    /// client as blocked.
    Block(usize, &'static str),
    /// Client `i`'s pending reply is read and recorded.
    Read(usize),
}

use Step::*;

fn client_id(c: &mut RawClient) -> i64 {
    match c.send(&["CLIENT", "ID"]) {
        Frame::Integer(id) => id,
        f => panic!("CLIENT ID: {f:?}"),
    }
}

/// Waits until the client with `id` is blocked (`flags=b` in `CLIENT LIST`).
fn wait_blocked(ctl: &mut RawClient, id: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Frame::Bulk(line) = ctl.send(&["CLIENT", "LIST", "ID", &id.to_string()]) {
            if String::from_utf8_lossy(&line).contains("flags=b") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "client {id} did not block");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `steps` on fresh connections to `port` (speaking `resp`) and returns the transcript.
fn transcript(port: u16, resp: u8, steps: &[Step]) -> Vec<String> {
    let connect = || {
        let mut c = RawClient::connect(("127.0.0.1", port)).expect("connect");
        c.set_timeout(Duration::from_secs(5));
        if resp == 3 {
            c.hello3();
        }
        c
    };
    // The control connection speaks RESP2 (CLIENT LIST is a verbatim string in RESP3).
    let mut ctl = RawClient::connect(("127.0.0.1", port)).expect("connect");
    ctl.send(&["FLUSHALL"]);
    let n = steps.iter().map(|s| match s {
        Run(i, _) | Block(i, _) | Read(i) => *i + 1,
    });
    let mut clients: Vec<RawClient> = (0..n.max().unwrap_or(0)).map(|_| connect()).collect();
    let ids: Vec<i64> = clients.iter_mut().map(client_id).collect();
    let mut out = Vec::new();
    for step in steps {
        match *step {
            Run(i, cmd) => {
                // `CIDn` stands for client n's id, which differs between servers.
                let mut text = cmd.to_string();
                for (n, id) in ids.iter().enumerate() {
                    text = text.replace(&format!("CID{n}"), &id.to_string());
                }
                let reply = clients[i].send(&text.split(' ').collect::<Vec<_>>());
                out.push(format!("c{i} {cmd} -> {reply:?}"));
            }
            Block(i, cmd) => {
                clients[i].write_command(&cmd.split(' ').collect::<Vec<_>>()).expect("send");
                wait_blocked(&mut ctl, ids[i]);
                out.push(format!("c{i} {cmd} blocks"));
            }
            Read(i) => {
                let reply = clients[i].read_frame_timeout(Duration::from_secs(5));
                out.push(format!("c{i} <- {reply:?}"));
            }
        }
    }
    out
}

/// Scenarios whose transcripts must match redis-server's.
fn scenarios() -> Vec<(&'static str, Vec<Step>)> {
    vec![
        (
            "first come, first served; one element each",
            vec![
                Block(0, "BLPOP q 0"),
                Block(1, "BRPOP q 0"),
                Block(2, "BLPOP q 0"),
                Run(3, "RPUSH q a b c d"),
                Read(0),
                Read(1),
                Read(2),
                Run(3, "LRANGE q 0 -1"),
            ],
        ),
        (
            "a pushed element goes to the waiter before the pusher's next command",
            vec![Block(0, "BLPOP q 0"), Run(1, "RPUSH q x"), Run(1, "LPOP q"), Run(1, "EXISTS q"), Read(0)],
        ),
        (
            "several keys: whichever receives first",
            vec![Block(0, "BLPOP a b c 0"), Run(1, "RPUSH c z"), Read(0), Run(1, "EXISTS c")],
        ),
        (
            "a waiter on two keys is served once",
            vec![
                Block(0, "BLPOP a b 0"),
                Block(1, "BLPOP b 0"),
                Run(2, "RPUSH a 1"),
                Run(2, "RPUSH b 2"),
                Read(0),
                Read(1),
            ],
        ),
        (
            "BLMPOP takes up to its count",
            vec![
                Block(0, "BLMPOP 0 2 a b RIGHT COUNT 2"),
                Block(1, "BLMPOP 0 1 b LEFT COUNT 5"),
                Run(2, "RPUSH b 1 2 3 4 5"),
                Read(0),
                Read(1),
                Run(2, "LRANGE b 0 -1"),
            ],
        ),
        (
            "BLMOVE moves, and wakes a waiter on its destination",
            vec![
                Block(0, "BLMOVE src mid LEFT RIGHT 0"),
                Block(1, "BRPOPLPUSH mid dst 0"),
                Block(2, "BLPOP dst 0"),
                Run(3, "RPUSH src x y"),
                Read(0),
                Read(1),
                Read(2),
                Run(3, "LRANGE src 0 -1"),
                Run(3, "EXISTS mid dst"),
            ],
        ),
        (
            "BLMOVE onto a key of another type answers WRONGTYPE and leaves the element",
            vec![
                Run(2, "SET dst s"),
                Block(0, "BLMOVE src dst LEFT LEFT 0"),
                Run(1, "RPUSH src x"),
                Read(0),
                Run(1, "LRANGE src 0 -1"),
            ],
        ),
        (
            "a key replaced by another type keeps its waiters blocked until it is a list again",
            vec![
                Block(0, "BLPOP k 0"),
                Run(1, "SET k string"),
                Run(1, "DEL k"),
                Run(1, "HSET k f v"),
                Run(1, "DEL k"),
                Run(1, "LPUSH k v1 v2"),
                Read(0),
                Run(1, "LRANGE k 0 -1"),
            ],
        ),
        (
            "RENAME, COPY and MOVE of a list wake waiters on the new name",
            vec![
                Block(0, "BLPOP k1 0"),
                Block(1, "BLPOP k2 0"),
                Run(2, "RPUSH tmp a b"),
                Run(2, "RENAME tmp k1"),
                Read(0),
                Run(2, "COPY k1 k2"),
                Read(1),
                Run(2, "EXISTS k1 k2"),
            ],
        ),
        (
            "CLIENT UNBLOCK with TIMEOUT and ERROR",
            vec![
                Block(0, "BLPOP k 0"),
                Block(1, "BLMOVE k d LEFT LEFT 0"),
                Run(2, "CLIENT UNBLOCK 999999"),
                Run(2, "CLIENT UNBLOCK CID0"),
                Read(0),
                Run(2, "CLIENT UNBLOCK CID1 ERROR"),
                Read(1),
                Run(2, "CLIENT UNBLOCK CID1"),
                Run(0, "RPUSH k a"),
                Run(0, "LRANGE k 0 -1"),
            ],
        ),
        (
            "the blocked client's pipelined commands wait behind it",
            vec![Block(0, "BLPOP q 0"), Run(1, "RPUSH q x"), Read(0), Run(0, "PING")],
        ),
        (
            "the served pop happens in the waiter's database",
            vec![
                Run(0, "SELECT 3"),
                Block(0, "BLPOP q 0"),
                Run(1, "RPUSH q db0"),
                Run(1, "SELECT 3"),
                Run(1, "RPUSH q db3"),
                Read(0),
                Run(1, "SELECT 0"),
                Run(1, "LRANGE q 0 -1"),
            ],
        ),
        (
            "SWAPDB brings a list under a waited key",
            vec![
                Run(1, "SELECT 1"),
                Run(1, "RPUSH q from1"),
                Block(0, "BLPOP q 0"),
                Run(2, "SWAPDB 0 1"),
                Read(0),
                Run(1, "EXISTS q"),
            ],
        ),
        (
            "BZPOPMIN and BZPOPMAX: first come, first served, lowest and highest scores",
            vec![
                Block(0, "BZPOPMIN z 0"),
                Block(1, "BZPOPMAX z 0"),
                Block(2, "BZPOPMIN z other 0"),
                Run(3, "ZADD z 1 a 2 b 3 c 4 d"),
                Read(0),
                Read(1),
                Read(2),
                Run(3, "ZRANGE z 0 -1 WITHSCORES"),
            ],
        ),
        (
            "BZMPOP takes up to its count, from the first key that fills",
            vec![
                Block(0, "BZMPOP 0 2 a b MAX COUNT 2"),
                Block(1, "BZMPOP 0 1 b MIN COUNT 10"),
                Run(2, "ZADD b 1.5 x 2.5 y 3.5 z"),
                Read(0),
                Read(1),
                Run(2, "EXISTS b"),
            ],
        ),
        (
            "list and sorted-set waiters on one key: each waits for its own type",
            vec![
                Block(0, "BLPOP k 0"),
                Block(1, "BZPOPMIN k 0"),
                Run(2, "ZADD k 1 m"),
                Read(1),
                Run(2, "RPUSH k e"),
                Read(0),
                Run(2, "EXISTS k"),
            ],
        ),
        (
            "a sorted set arriving by ZUNIONSTORE, ZRANGESTORE or RENAME serves waiters",
            vec![
                Block(0, "BZPOPMAX dst 0"),
                Block(1, "BZPOPMIN r 0"),
                Block(2, "BZMPOP 0 1 moved MIN COUNT 5"),
                Run(3, "ZADD src 1 a 2 b 3 c"),
                Run(3, "ZUNIONSTORE dst 2 src src"),
                Read(0),
                Run(3, "ZRANGESTORE r src 1 -1"),
                Read(1),
                Run(3, "RENAME dst moved"),
                Read(2),
                Run(3, "EXISTS dst r moved"),
            ],
        ),
        (
            "a sorted-set waiter on a key of another type keeps waiting; WRONGTYPE up front",
            vec![
                Run(1, "SET s x"),
                Run(0, "BZPOPMIN s 0"),
                Block(0, "BZPOPMIN k 0"),
                Run(1, "RPUSH k e"),
                Run(1, "DEL k"),
                Run(1, "ZADD k 7 seven"),
                Read(0),
            ],
        ),
        (
            "SWAPDB brings a sorted set under a waited key",
            vec![
                Run(1, "SELECT 1"),
                Run(1, "ZADD z 1 a 2 b"),
                Block(0, "BZPOPMAX z 0"),
                Run(2, "SWAPDB 0 1"),
                Read(0),
                Run(1, "ZRANGE z 0 -1"),
            ],
        ),
        (
            "CLIENT UNBLOCK ends a BZPOPMIN",
            vec![
                Block(0, "BZPOPMIN k 0"),
                Block(1, "BZMPOP 0 1 k MAX"),
                Run(2, "CLIENT UNBLOCK CID0"),
                Read(0),
                Run(2, "CLIENT UNBLOCK CID1 ERROR"),
                Read(1),
            ],
        ),
    ]
}

#[test]
fn blocked_clients_are_served_as_redis_serves_them() {
    let (t, r) = pair();
    for (name, steps) in scenarios() {
        for resp in [2u8, 3] {
            eprintln!("scenario: {name} (RESP{resp})");
            let got = transcript(t.port, resp, &steps);
            let want = transcript(r.port, resp, &steps);
            assert_eq!(got, want, "scenario '{name}' (RESP{resp}) differs from redis-server");
        }
    }
}

#[test]
fn timeouts_end_the_wait_with_a_null_and_zero_waits_forever() {
    let t = tandem(&[]);
    let mut c = t.client();
    let started = Instant::now();
    assert_eq!(c.send(&["BLPOP", "q", "0.3"]), Frame::NullArray);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2), "waited {waited:?}");
    // A timed-out BLMOVE answers a null array too (LMOVE's null is a bulk).
    assert_eq!(c.send(&["BLMOVE", "q", "d", "LEFT", "LEFT", "0.01"]), Frame::NullArray);
    c.hello3();
    assert_eq!(c.send(&["BRPOPLPUSH", "q", "d", "0.01"]), Frame::Null);
    // Timeout 0: still blocked after a while, served when the element comes.
    let mut w = t.client();
    w.write_command(&["BRPOP", "q", "0"]).unwrap();
    assert!(w.is_silent(Duration::from_millis(500)), "BRPOP with timeout 0 answered");
    let mut p = t.client();
    p.send(&["RPUSH", "q", "late"]);
    assert_eq!(w.read_frame(), Frame::Array(vec![Frame::Bulk(b"q".to_vec()), Frame::Bulk(b"late".to_vec())]));
    // The sorted-set pops time out the same way.
    let started = Instant::now();
    assert_eq!(c.send(&["BZPOPMIN", "z", "0.2"]), Frame::Null);
    assert_eq!(c.send(&["BZMPOP", "0.01", "1", "z", "MAX"]), Frame::Null);
    assert!(started.elapsed() >= Duration::from_millis(200), "waited {:?}", started.elapsed());
}

#[test]
fn a_client_that_disconnects_while_blocked_takes_nothing() {
    let t = tandem(&[]);
    let mut ctl = t.client();
    {
        let mut w = t.client();
        let id = client_id(&mut w);
        w.write_command(&["BLPOP", "q", "0"]).unwrap();
        wait_blocked(&mut ctl, id);
    }
    // The server notices the closed socket and forgets the waiter.
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(&mut ctl, "blocked_clients") != "0" {
        assert!(Instant::now() < deadline, "the closed client still counts as blocked");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(info_field(&mut ctl, "total_blocking_keys"), "0");
    ctl.send(&["RPUSH", "q", "kept"]);
    assert_eq!(ctl.send(&["LRANGE", "q", "0", "-1"]), Frame::Array(vec![Frame::Bulk(b"kept".to_vec())]));
}

fn info_field(c: &mut RawClient, field: &str) -> String {
    let Frame::Bulk(text) = c.send(&["INFO", "clients"]) else { panic!("INFO") };
    String::from_utf8(text)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {field}"))
}

#[test]
fn info_and_client_list_show_blocked_clients() {
    let t = tandem(&[]);
    let mut ctl = t.client();
    let mut a = t.client();
    let mut b = t.client();
    let ida = client_id(&mut a);
    let idb = client_id(&mut b);
    a.write_command(&["BLPOP", "k1", "k2", "0"]).unwrap();
    b.write_command(&["BRPOP", "k2", "100"]).unwrap();
    wait_blocked(&mut ctl, ida);
    wait_blocked(&mut ctl, idb);
    assert_eq!(info_field(&mut ctl, "blocked_clients"), "2");
    assert_eq!(info_field(&mut ctl, "total_blocking_keys"), "2");
    assert_eq!(info_field(&mut ctl, "clients_in_timeout_table"), "1");
    let Frame::Bulk(line) = ctl.send(&["CLIENT", "LIST", "ID", &ida.to_string()]) else { panic!() };
    let line = String::from_utf8(line).unwrap();
    assert!(line.contains("flags=b") && line.contains("cmd=blpop"), "{line}");
    ctl.send(&["RPUSH", "k2", "x", "y"]);
    a.read_frame();
    b.read_frame();
    assert_eq!(info_field(&mut ctl, "blocked_clients"), "0");
    assert_eq!(info_field(&mut ctl, "total_blocking_keys"), "0");
    let Frame::Bulk(line) = ctl.send(&["CLIENT", "LIST", "ID", &ida.to_string()]) else { panic!() };
    assert!(String::from_utf8(line).unwrap().contains("flags=N"));
}

/// Producers push unique tokens while consumers pop them with BLPOP, BRPOP, BLMPOP and move
/// them with BLMOVE through a middle list (whose destination often lies in a shard the
/// pushing command holds no lock on): every token must come out exactly once.
#[test]
fn no_element_is_lost_or_doubled_under_concurrent_pushes_and_moves() {
    let t = tandem(&["--worker-threads", "2"]);
    let port = t.port;
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: usize = 1500;
    let total = PRODUCERS * PER_PRODUCER;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let connect = move || {
        let mut c = RawClient::connect(("127.0.0.1", port)).unwrap();
        c.set_timeout(Duration::from_secs(30));
        c
    };
    // Movers: in0..in3 -> mid (BLMOVE / BRPOPLPUSH), never losing what they move.
    let movers: Vec<_> = (0..4)
        .map(|m| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = connect();
                let src = format!("in{m}");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let reply = if m % 2 == 0 {
                        c.send(&["BLMOVE", &src, "mid", "LEFT", "RIGHT", "0.05"])
                    } else {
                        c.send(&["BRPOPLPUSH", &src, "mid", "0.05"])
                    };
                    assert!(matches!(reply, Frame::Bulk(_) | Frame::NullArray), "{reply:?}");
                }
            })
        })
        .collect();
    // Consumers take from mid with the three pops.
    let consumers: Vec<_> = (0..3)
        .map(|k| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = connect();
                let mut got = Vec::new();
                loop {
                    let reply = match k {
                        0 => c.send(&["BLPOP", "mid", "0.05"]),
                        1 => c.send(&["BRPOP", "other", "mid", "0.05"]),
                        _ => c.send(&["BLMPOP", "0.05", "1", "mid", "LEFT", "COUNT", "3"]),
                    };
                    match reply {
                        Frame::Array(parts) => match &parts[1] {
                            Frame::Bulk(v) => got.push(v.clone()),
                            Frame::Array(vs) => got.extend(vs.iter().map(|v| match v {
                                Frame::Bulk(b) => b.clone(),
                                f => panic!("{f:?}"),
                            })),
                            f => panic!("{f:?}"),
                        },
                        Frame::NullArray => {
                            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                return got;
                            }
                        }
                        f => panic!("{f:?}"),
                    }
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = connect();
                for i in 0..PER_PRODUCER {
                    let key = format!("in{}", i % 4);
                    c.send(&["RPUSH", &key, &format!("{p}:{i}")]);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut ctl = connect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: i64 = ["in0", "in1", "in2", "in3", "mid"]
            .iter()
            .map(|k| match ctl.send(&["LLEN", k]) {
                Frame::Integer(n) => n,
                f => panic!("{f:?}"),
            })
            .sum();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} tokens never consumed");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for m in movers {
        m.join().unwrap();
    }
    let mut all: Vec<Vec<u8>> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert_eq!(all.len(), total, "tokens consumed");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "a token came out twice");
}

/// Served pops are logged after the push that woke them, in the waiter's database: a restart
/// from the AOF has the lists as they were.
#[test]
fn served_pops_are_logged_to_the_aof() {
    let dir = std::env::temp_dir().join(format!("tandem-blocking-aof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    {
        let t = common::dataset::tandem_in(&dir, &args);
        let mut ctl = t.client();
        let mut w = t.client();
        let mut m = t.client();
        let idw = client_id(&mut w);
        let idm = client_id(&mut m);
        w.send(&["SELECT", "2"]);
        w.write_command(&["BLPOP", "q", "0"]).unwrap();
        m.write_command(&["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"]).unwrap();
        wait_blocked(&mut ctl, idw);
        wait_blocked(&mut ctl, idm);
        ctl.send(&["SELECT", "2"]);
        ctl.send(&["RPUSH", "q", "a", "b"]);
        ctl.send(&["SELECT", "0"]);
        ctl.send(&["RPUSH", "src", "x", "y"]);
        assert_eq!(w.read_frame(), Frame::Array(vec![Frame::Bulk(b"q".to_vec()), Frame::Bulk(b"a".to_vec())]));
        assert_eq!(m.read_frame(), Frame::Bulk(b"y".to_vec()));
        // Sorted-set pops served by a ZADD are logged as the ZPOPMIN/ZPOPMAX they were.
        let mut z = t.client();
        let idz = client_id(&mut z);
        z.write_command(&["BZMPOP", "0", "1", "zq", "MAX", "COUNT", "2"]).unwrap();
        wait_blocked(&mut ctl, idz);
        ctl.send(&["ZADD", "zq", "1", "lo", "2", "mid", "3", "hi"]);
        assert!(matches!(z.read_frame(), Frame::Array(_)));
        z.write_command(&["BZPOPMIN", "zq2", "0"]).unwrap();
        wait_blocked(&mut ctl, idz);
        ctl.send(&["ZADD", "zq2", "5", "x", "6", "y"]);
        assert!(matches!(z.read_frame(), Frame::Array(_)));
    }
    let t = common::dataset::tandem_in(&dir, &args);
    let mut c = t.client();
    assert_eq!(c.send(&["LRANGE", "src", "0", "-1"]), Frame::Array(vec![Frame::Bulk(b"x".to_vec())]));
    assert_eq!(c.send(&["LRANGE", "dst", "0", "-1"]), Frame::Array(vec![Frame::Bulk(b"y".to_vec())]));
    assert_eq!(c.send(&["ZRANGE", "zq", "0", "-1"]), Frame::Array(vec![Frame::Bulk(b"lo".to_vec())]));
    assert_eq!(c.send(&["ZRANGE", "zq2", "0", "-1"]), Frame::Array(vec![Frame::Bulk(b"y".to_vec())]));
    c.send(&["SELECT", "2"]);
    assert_eq!(c.send(&["LRANGE", "q", "0", "-1"]), Frame::Array(vec![Frame::Bulk(b"b".to_vec())]));
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}
