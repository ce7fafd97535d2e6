//! Atomicity on the multi-threaded server: many connections on several worker threads (forced
//! to 4: the default on a 2-core machine is one) hammer the same keys; no update is lost and no
//! reader sees half of a multi-key write.

mod common;

use common::tandem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use testkit::{bulk, Frame};

#[test]
fn concurrent_increments_lose_no_update() {
    let server = tandem(&["--worker-threads", "4"]);
    let threads = 8;
    let per_thread = 2_000;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut c = server.client();
                for i in 0..per_thread {
                    c.send(&["INCR", "counter"]);
                    c.send(&["INCRBY", "other", if i % 2 == 0 { "2" } else { "-1" }]);
                    c.send(&["APPEND", "log", "x"]);
                }
            });
        }
    });
    let mut c = server.client();
    assert_eq!(c.send(&["GET", "counter"]), bulk((threads * per_thread).to_string()));
    assert_eq!(c.send(&["GET", "other"]), bulk((threads * per_thread / 2).to_string()));
    assert_eq!(c.send(&["STRLEN", "log"]), Frame::Integer((threads * per_thread) as i64));
}

#[test]
fn multi_key_writes_are_seen_whole() {
    // Keys chosen to spread over shards: MSET must lock all of them at once, so a reader
    // never sees a mix of two writes.
    let server = tandem(&["--worker-threads", "4"]);
    let keys: Vec<String> = (0..6).map(|i| format!("key-{i}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let server = &server;
    std::thread::scope(|s| {
        for w in 0..3 {
            let keys = &keys;
            let stop = stop.clone();
            s.spawn(move || {
                let mut c = server.client();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let v = format!("w{w}-{n}");
                    let mut args: Vec<&str> = vec!["MSET"];
                    for k in keys {
                        args.push(k);
                        args.push(&v);
                    }
                    c.send(&args);
                    n += 1;
                }
            });
        }
        let mut reader = server.client();
        for _ in 0..3_000 {
            let mut args: Vec<&str> = vec!["MGET"];
            args.extend(keys.iter().map(|k| k.as_str()));
            let Frame::Array(vals) = reader.send(&args) else { panic!("MGET returns an array") };
            assert!(vals.windows(2).all(|w| w[0] == w[1]), "torn MSET observed: {vals:?}");
        }
        stop.store(true, Ordering::Relaxed);
    });
}

/// One round of optimistic locking: WATCH, read, MULTI/EXEC the new value; true if it ran.
fn cas_increment(c: &mut testkit::RawClient, key: &str) -> bool {
    c.send(&["WATCH", key]);
    let n: i64 = match c.send(&["GET", key]) {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).parse().expect("a number"),
        Frame::Null => 0,
        other => panic!("GET answered {other:?}"),
    };
    assert_eq!(c.send(&["MULTI"]), Frame::Simple(b"OK".to_vec()));
    assert_eq!(c.send(&["SET", key, &(n + 1).to_string()]), Frame::Simple(b"QUEUED".to_vec()));
    match c.send(&["EXEC"]) {
        Frame::Array(r) => {
            assert_eq!(r, vec![Frame::Simple(b"OK".to_vec())]);
            true
        }
        Frame::NullArray => false,
        other => panic!("EXEC answered {other:?}"),
    }
}

#[test]
fn watched_read_modify_write_loses_no_update() {
    // Each client reads the counter and writes counter+1 in a transaction guarded by WATCH,
    // retrying when EXEC fails; meanwhile other clients INCR it directly. Every successful
    // EXEC and every INCR must count exactly once: a WATCH that misses a change loses one.
    let server = tandem(&["--worker-threads", "4"]);
    let server = &server;
    let per_client = 300;
    let (cas_clients, incr_clients) = (6, 2);
    let retries = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..cas_clients {
            let retries = &retries;
            s.spawn(move || {
                let mut c = server.client();
                for _ in 0..per_client {
                    while !cas_increment(&mut c, "counter") {
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for _ in 0..incr_clients {
            s.spawn(move || {
                let mut c = server.client();
                for _ in 0..per_client {
                    c.send(&["INCR", "counter"]);
                }
            });
        }
    });
    let mut c = server.client();
    let want = (cas_clients + incr_clients) * per_client;
    assert_eq!(c.send(&["GET", "counter"]), bulk(want.to_string()));
    // The contention must have been real for the test to mean anything.
    assert!(retries.load(Ordering::Relaxed) > 0, "no EXEC ever failed: the clients never raced");
}

#[test]
fn transactions_are_seen_whole_and_never_interleave() {
    // Writers move one unit between keys spread over shards inside MULTI/EXEC (the total stays
    // 0 after every transaction); readers sum the keys with MGET and inside their own
    // transactions: never a half-applied transaction.
    let server = tandem(&["--worker-threads", "4"]);
    let server = &server;
    let keys: Vec<String> = (0..5).map(|i| format!("acct-{i}")).collect();
    let stop = AtomicBool::new(false);
    let parse = |f: &Frame| match f {
        Frame::Bulk(b) => String::from_utf8_lossy(b).parse::<i64>().expect("a number"),
        Frame::Null => 0,
        other => panic!("not a number: {other:?}"),
    };
    std::thread::scope(|s| {
        for w in 0..3usize {
            let (keys, stop) = (&keys, &stop);
            s.spawn(move || {
                let mut c = server.client();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let (from, to) = (&keys[i % keys.len()], &keys[(i + 1 + w) % keys.len()]);
                    c.send(&["MULTI"]);
                    c.send(&["DECRBY", from, "7"]);
                    // A command that takes shard locks of its own must not open a gap.
                    c.send(&["INFO", "keyspace"]);
                    c.send(&["INCRBY", to, "7"]);
                    let Frame::Array(r) = c.send(&["EXEC"]) else { panic!("EXEC failed") };
                    assert_eq!(r.len(), 3);
                    assert!(matches!(r[1], Frame::Bulk(_)), "INFO's reply in its place: {r:?}");
                    i += 1;
                }
            });
        }
        // Stops the writers even when an assertion below fails.
        let _stop = StopOnDrop(&stop);
        let mut reader = server.client();
        let mut args: Vec<&str> = vec!["MGET"];
        args.extend(keys.iter().map(|k| k.as_str()));
        for round in 0..2_000 {
            let sum: i64 = if round % 2 == 0 {
                let Frame::Array(vals) = reader.send(&args) else { panic!("MGET returns an array") };
                vals.iter().map(parse).sum()
            } else {
                reader.send(&["MULTI"]);
                for k in &keys {
                    reader.send(&["GET", k]);
                }
                let Frame::Array(vals) = reader.send(&["EXEC"]) else { panic!("EXEC failed") };
                vals.iter().map(parse).sum()
            };
            assert_eq!(sum, 0, "a reader saw half of a transaction");
        }
    });
}

/// Sets the flag when dropped (also while unwinding from a failed assertion).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
