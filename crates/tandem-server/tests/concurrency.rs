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
