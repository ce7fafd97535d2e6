//! The determinism contract (DESIGN §3): the effects recorded while running a random write
//! workload, replayed on a fresh engine at their recorded times, rebuild the same keyspace
//! (same `DEBUG DIGEST`). Time moves on during the workload so keys expire lazily, and the
//! workload uses relative expiry (of keys and of hash fields), random choices and
//! multi-database commands.

use commands::testing::Harness;
use engine::digest::{dataset_digest, to_hex};
use engine::Rng;
use protocol::Frame;

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}

/// One random command of the workload.
fn random_command(rng: &mut Rng) -> Vec<String> {
    let keys = ["k1", "k2", "k3", "k4", "k5", "{t}a", "{t}b"];
    let vals = ["v", "12", "-3", "0", "3.5", "", "hello world", "99999999999"];
    let k = pick(rng, &keys).to_string();
    let k2 = pick(rng, &keys).to_string();
    let v = pick(rng, &vals).to_string();
    let v2 = pick(rng, &vals).to_string();
    let secs = (1 + rng.below(5)).to_string();
    let ms = (1 + rng.below(5000)).to_string();
    let at = (1_700_000_000_000 + rng.below(60_000)).to_string();
    let f = pick(rng, &["f", "n", "x", "a", "b"]).to_string();
    let c: Vec<&str> = match rng.below(66) {
        0 => vec!["SET", &k, &v],
        1 => vec!["SET", &k, &v, "EX", &secs],
        2 => vec!["SET", &k, &v, "PX", &ms, "NX"],
        3 => vec!["SET", &k, &v, "XX", "KEEPTTL"],
        4 => vec!["GET", &k],
        5 => vec!["DEL", &k, &k2],
        6 => vec!["INCR", &k],
        7 => vec!["INCRBY", &k, "-7"],
        8 => vec!["APPEND", &k, &v],
        9 => vec!["EXPIRE", &k, &secs],
        10 => vec!["PEXPIRE", &k, &ms, "GT"],
        11 => vec!["PERSIST", &k],
        12 => vec!["RENAME", &k, &k2],
        13 => vec!["SETRANGE", &k, "3", &v],
        14 => vec!["INCRBYFLOAT", &k, "1.25"],
        15 => vec!["MSET", &k, &v, &k2, "x"],
        16 => vec!["GETEX", &k, "PX", &ms],
        17 => vec!["GETDEL", &k],
        18 => vec!["SETEX", &k, &secs, &v],
        19 => vec!["SETBIT", &k, "13", "1"],
        20 => vec!["BITOP", "OR", "{t}a", "{t}a", "{t}b"],
        21 => vec!["COPY", &k, &k2, "DB", "1", "REPLACE"],
        22 => vec!["MOVE", &k, "2"],
        23 => vec!["SELECT", pick(rng, &["0", "1", "2"])],
        24 => vec!["SWAPDB", "0", "1"],
        25 => vec!["EXISTS", &k],
        26 => vec!["RENAMENX", &k, &k2],
        27 => vec!["GETSET", &k, &v],
        28 => vec!["DECR", &k],
        29 => vec!["RPUSH", &k, &v, &v2],
        30 => vec!["LPUSH", &k, &v],
        31 => vec!["LPOP", &k, "2"],
        32 => vec!["RPOP", &k],
        33 => vec!["LMOVE", &k, &k2, "LEFT", "RIGHT"],
        34 => vec!["LREM", &k, "-1", &v],
        35 => vec!["LTRIM", &k, "1", "-2"],
        36 => vec!["LINSERT", &k, "BEFORE", &v, &v2],
        37 => vec!["LSET", &k, "0", &v],
        38 => vec!["LMPOP", "2", &k, &k2, "RIGHT", "COUNT", "3"],
        39 => vec!["HSET", &k, &v, &v2, "f", &v],
        40 => vec!["HDEL", &k, &v, "f"],
        41 => vec!["HINCRBY", &k, "n", "3"],
        42 => vec!["HINCRBYFLOAT", &k, &f, "0.1"],
        43 => vec!["HSETNX", &k, &v2, &v],
        44 => vec!["HMSET", &k, "a", &v, "b", &v2],
        45 => vec!["RPOPLPUSH", &k, &k2],
        46 => vec!["LPUSHX", &k, &v2],
        47 => vec!["SADD", &k, &v, &v2, "m"],
        48 => vec!["SREM", &k, &v],
        49 => vec!["SPOP", &k],
        50 => vec!["SPOP", &k, "2"],
        51 => vec!["SMOVE", &k, &k2, &v],
        52 => vec!["SINTERSTORE", &k, &k, &k2],
        53 => vec!["SUNIONSTORE", &k2, &k, &k2],
        54 => vec!["SDIFFSTORE", &k, &k2, &k],
        55 => vec!["HEXPIRE", &k, &secs, "FIELDS", "2", &f, "a"],
        56 => vec!["HPEXPIRE", &k, &ms, pick(rng, &["NX", "XX", "GT", "LT"]), "FIELDS", "1", &f],
        57 => vec!["HPEXPIREAT", &k, &at, "FIELDS", "2", &f, &v],
        58 => vec!["HPERSIST", &k, "FIELDS", "1", &f],
        59 => vec!["HSETEX", &k, pick(rng, &["FNX", "FXX", "KEEPTTL"]), "FIELDS", "1", &f, &v],
        60 => vec!["HSETEX", &k, "PX", &ms, "FIELDS", "2", &f, &v, "b", &v2],
        61 => vec!["HGETEX", &k, "PERSIST", "FIELDS", "1", &f],
        62 => vec!["HGETEX", &k, "PX", &ms, "FIELDS", "1", &f],
        63 => vec!["HGETDEL", &k, "FIELDS", "2", &f, &v],
        64 => vec!["HTTL", &k, "FIELDS", "1", &f],
        _ => vec!["BITFIELD", &k, "INCRBY", "u8", "0", "200", "OVERFLOW", "WRAP", "SET", "i5", "3", "9"],
    };
    c.into_iter().map(String::from).collect()
}

#[test]
fn effects_replayed_rebuild_the_same_keyspace() {
    for seed in 1..=20u64 {
        let mut rng = Rng::new(seed);
        let mut live = Harness::new(1_700_000_000_000);
        for _ in 0..400 {
            // Now and then a few commands as one transaction (its effects are logged between
            // MULTI and EXEC, SELECTs inside included).
            let txn = rng.below(10) == 0;
            if txn {
                assert_eq!(live.run(&["MULTI"]), Frame::Simple(b"OK".to_vec()));
            }
            for _ in 0..if txn { 1 + rng.below(4) } else { 1 } {
                let cmd = random_command(&mut rng);
                let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
                let reply = live.run(&args);
                if let Frame::Error(e) = &reply {
                    let text = String::from_utf8_lossy(e);
                    assert!(!text.contains("unknown command"), "workload command {cmd:?} is not implemented: {text}");
                }
            }
            if txn {
                assert!(matches!(live.run(&["EXEC"]), Frame::Array(_)));
            }
            // Time moves on by up to 700 ms so that keys with short lives expire mid-run.
            live.now_ms += rng.below(700) as i64;
        }
        let mut replica = Harness::new(0);
        // The database the replayed commands run in (inside a transaction, once EXEC runs).
        let mut db = 0;
        for e in live.effects.list.clone() {
            replica.now_ms = e.now_ms;
            if db != e.db {
                // As the AOF does, so that it is queued inside a transaction too.
                db = e.db;
                let reply = replica.run(&["SELECT", &db.to_string()]);
                assert!(matches!(reply, Frame::Simple(_)), "SELECT {db}: {reply:?}");
            }
            let argv: Vec<&[u8]> = e.argv.iter().map(|a| a.as_slice()).collect();
            let reply = replica.run_bytes(&argv);
            assert!(!matches!(reply, Frame::Error(_)), "effect {:?} failed on replay: {reply:?}", e.argv);
        }
        let a = to_hex(&dataset_digest(&live.ks));
        let b = to_hex(&dataset_digest(&replica.ks));
        assert_eq!(a, b, "seed {seed}: replayed keyspace differs ({} effects)", live.effects.list.len());
        assert_ne!(a, "0".repeat(40), "seed {seed}: the workload left an empty keyspace; the test would prove nothing");
    }
}
