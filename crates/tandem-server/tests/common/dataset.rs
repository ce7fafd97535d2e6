//! Datasets for persistence tests: writing keys of every type and encoding, reading a whole
//! keyspace back, comparing two, and small helpers for servers with a data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::TANDEM_BIN;
use testkit::{simple, Frame, RawClient, TandemProcess};

/// Every key of every database: (db, key) -> (value, pttl). A value is its type and
/// contents in one canonical byte string (hash fields sorted).
pub type Dump = BTreeMap<(usize, Vec<u8>), (Vec<u8>, i64)>;

/// Appends length-prefixed items of an array reply.
fn items(out: &mut Vec<u8>, f: Frame) -> Vec<Vec<u8>> {
    let (Frame::Array(items) | Frame::Set(items)) = f else { panic!("array expected: {f:?}") };
    let items: Vec<Vec<u8>> = items
        .into_iter()
        .map(|i| match i {
            Frame::Bulk(b) => b,
            other => panic!("bulk expected: {other:?}"),
        })
        .collect();
    out.extend_from_slice(format!("[{}]", items.len()).as_bytes());
    items
}

/// A key's value in canonical form, or None if it went away meanwhile.
fn read_value(c: &mut RawClient, key: &[u8]) -> Option<Vec<u8>> {
    let Frame::Simple(t) = c.send(&[b"TYPE".as_slice(), key]) else { panic!("TYPE") };
    let mut out = t.clone();
    out.push(b':');
    let push_all = |out: &mut Vec<u8>, v: Vec<Vec<u8>>| {
        for i in v {
            out.extend_from_slice(format!("{}:", i.len()).as_bytes());
            out.extend_from_slice(&i);
        }
    };
    match t.as_slice() {
        b"none" => return None,
        b"string" => match c.send(&[b"GET".as_slice(), key]) {
            Frame::Bulk(v) => out.extend_from_slice(&v),
            Frame::Null => return None,
            f => panic!("GET {key:?}: {f:?}"),
        },
        b"list" => {
            let v = items(&mut out, c.send(&[b"LRANGE".as_slice(), key, b"0", b"-1"]));
            push_all(&mut out, v);
        }
        b"hash" => {
            let v = items(&mut out, c.send(&[b"HGETALL".as_slice(), key]));
            let mut pairs: Vec<Vec<u8>> =
                v.chunks(2).map(|p| [p[0].clone(), b"=".to_vec(), p[1].clone()].concat()).collect();
            pairs.sort();
            push_all(&mut out, pairs);
        }
        b"set" => {
            let mut v = items(&mut out, c.send(&[b"SMEMBERS".as_slice(), key]));
            v.sort();
            push_all(&mut out, v);
        }
        b"zset" => {
            // In order, scores as text: "%.17g" shows every bit of a score.
            let v = items(&mut out, c.send(&[b"ZRANGE".as_slice(), key, b"0", b"-1", b"WITHSCORES"]));
            push_all(&mut out, v);
        }
        other => panic!("type {} not dumped yet", String::from_utf8_lossy(other)),
    }
    Some(out)
}

pub fn dump(c: &mut RawClient) -> Dump {
    // A server just started may still be loading its files.
    wait_for(
        "the dataset to load",
        Duration::from_secs(60),
        || !matches!(c.send(&["PING"]), Frame::Error(e) if e.starts_with(b"LOADING")),
    );
    let mut out = Dump::new();
    for db in 0..16 {
        assert_eq!(c.send(&["SELECT", &db.to_string()]), simple("OK"));
        let keys = c.send(&["KEYS", "*"]);
        let Frame::Array(keys) = keys else { panic!("KEYS failed: {keys:?}") };
        for k in keys {
            let Frame::Bulk(key) = k else { panic!("key {k:?}") };
            // Expired between KEYS and the read: gone.
            let Some(v) = read_value(c, &key) else { continue };
            let Frame::Integer(ttl) = c.send(&[b"PTTL".as_slice(), &key]) else { panic!("PTTL") };
            out.insert((db, key), (v, ttl));
        }
    }
    c.send(&["SELECT", "0"]);
    out
}

/// Equal keys and values; TTLs equal within `slack_ms` (both -1 for no TTL).
pub fn assert_same(a: &Dump, b: &Dump, slack_ms: i64) {
    let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "keys only in the first: {only_a:?}; only in the second: {only_b:?}"
    );
    for (k, (v, ttl)) in a {
        let (v2, ttl2) = b.get(k).unwrap_or_else(|| panic!("missing {k:?}"));
        assert_eq!(v, v2, "value of {k:?}");
        if *ttl < 0 || *ttl2 < 0 {
            assert_eq!(ttl, ttl2, "ttl of {k:?}");
        } else {
            assert!((ttl - ttl2).abs() <= slack_ms, "ttl of {k:?}: {ttl} vs {ttl2}");
        }
    }
}

/// Writes keys covering every string encoding, expiries and several databases.
pub fn fill(c: &mut RawClient) {
    let long_text = "the quick brown fox jumps over the lazy dog ".repeat(40);
    let random: Vec<u8> = (0..3000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let values: Vec<Vec<u8>> = vec![
        b"0".to_vec(),
        b"-1".to_vec(),
        b"127".to_vec(),
        b"-128".to_vec(),
        b"32767".to_vec(),
        b"-32769".to_vec(),
        b"2147483647".to_vec(),
        b"-2147483649".to_vec(),
        b"9223372036854775807".to_vec(),
        b"-9223372036854775808".to_vec(),
        b"007".to_vec(),
        b" 1".to_vec(),
        b"1.0".to_vec(),
        b"".to_vec(),
        b"x".to_vec(),
        vec![b'e'; 44],
        vec![b'f'; 45],
        long_text.into_bytes(),
        random,
        b"bin\x00ary\r\n\xff".to_vec(),
    ];
    for db in [0usize, 3, 15] {
        assert_eq!(c.send(&["SELECT", &db.to_string()]), simple("OK"));
        for (i, v) in values.iter().enumerate() {
            let key = format!("k{db}:{i}");
            assert_eq!(c.send(&[b"SET".as_slice(), key.as_bytes(), v]), simple("OK"), "SET {key}");
        }
        // Keys with a time to live far enough ahead to survive the round trip.
        for i in 0..5 {
            let key = format!("ttl{db}:{i}");
            c.send(&["SET", &key, "v", "PX", &(600_000 + i * 1000).to_string()]);
        }
        c.send(&["APPEND", &format!("raw{db}"), "appended"]);
        fill_collections(c, db);
    }
    c.send(&["SELECT", "0"]);
}

/// Lists, hashes, sets and sorted sets of every encoding (listpack, multi-node quicklist, a node with one large
/// element; listpack and hashtable hashes), one with a time to live.
fn fill_collections(c: &mut RawClient, db: usize) {
    let send = |c: &mut RawClient, args: Vec<Vec<u8>>| {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let r = c.send(&refs);
        assert!(!matches!(r, Frame::Error(_)), "{:?}: {r:?}", String::from_utf8_lossy(&args[0]));
    };
    let cmd = |name: &str, key: String, rest: Vec<Vec<u8>>| -> Vec<Vec<u8>> {
        [vec![name.as_bytes().to_vec(), key.into_bytes()], rest].concat()
    };
    let mixed: Vec<Vec<u8>> = ["a", "1", "-1", "300", "70000", "", "007", "-9223372036854775808", "bin\x00ary\r\n"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    send(c, cmd("RPUSH", format!("list{db}:small"), mixed.clone()));
    let many: Vec<Vec<u8>> = (0..3000).map(|i| format!("element-{i}-{}", i * 7919).into_bytes()).collect();
    send(c, cmd("RPUSH", format!("list{db}:long"), many.clone()));
    let mut big = mixed.clone();
    big.insert(3, vec![b'L'; 10_000]);
    send(c, cmd("RPUSH", format!("list{db}:bigelem"), big));
    send(c, cmd("LPUSH", format!("list{db}:ttl"), mixed.clone()));
    send(c, vec![b"PEXPIRE".to_vec(), format!("list{db}:ttl").into_bytes(), b"700000".to_vec()]);
    let pairs: Vec<Vec<u8>> =
        mixed.iter().enumerate().flat_map(|(i, v)| [format!("f{i}").into_bytes(), v.clone()]).collect();
    send(c, cmd("HSET", format!("hash{db}:small"), pairs));
    let wide: Vec<Vec<u8>> = many[..1200].to_vec();
    send(c, cmd("HSET", format!("hash{db}:wide"), wide));
    send(
        c,
        cmd("HSET", format!("hash{db}:longvalue"), vec![b"f".to_vec(), vec![b'v'; 100], b"7".to_vec(), b"-7".to_vec()]),
    );
    let ints: Vec<Vec<u8>> = ["1", "-5", "300", "70000", "-9223372036854775808", "9223372036854775807"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    send(c, cmd("SADD", format!("set{db}:ints"), ints));
    send(c, cmd("SADD", format!("set{db}:small"), mixed.clone()));
    send(c, cmd("SADD", format!("set{db}:wide"), many[..900].to_vec()));
    let numbers: Vec<Vec<u8>> = (0..700).map(|i| (i * 13).to_string().into_bytes()).collect();
    send(c, cmd("SADD", format!("set{db}:manyints"), numbers));
    // Sorted sets: a listpack with every kind of score, a skiplist, a long member.
    let scores = ["1", "-2.5", "0.1", "-0", "inf", "-inf", "1e300", "4611686018427387904", "123456789012", "3"];
    let scored: Vec<Vec<u8>> =
        scores.iter().zip(&mixed).flat_map(|(s, m)| [s.as_bytes().to_vec(), m.clone()]).collect();
    send(c, cmd("ZADD", format!("zset{db}:small"), scored));
    let wide: Vec<Vec<u8>> = many[..1000]
        .iter()
        .enumerate()
        .flat_map(|(i, m)| [format!("{}", (i as f64) / 7.0 - 40.0).into_bytes(), m.clone()])
        .collect();
    send(c, cmd("ZADD", format!("zset{db}:wide"), wide));
    send(c, cmd("ZADD", format!("zset{db}:longmember"), vec![b"5".to_vec(), vec![b'm'; 70]]));
    send(c, vec![b"PEXPIRE".to_vec(), format!("zset{db}:longmember").into_bytes(), b"700000".to_vec()]);
}

pub fn data_dir(name: &str) -> PathBuf {
    testkit::temp_dir(name)
}

pub fn tandem_in(dir: &Path, args: &[&str]) -> TandemProcess {
    TandemProcess::spawn_with_data_dir(TANDEM_BIN, dir, args)
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn info_field(c: &mut RawClient, field: &str) -> String {
    let Frame::Bulk(text) = c.send(&["INFO", "persistence"]) else { panic!("INFO") };
    let text = String::from_utf8(text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {field} in INFO persistence:\n{text}"))
}

/// Starts Tandem expecting it to exit: (success, stdout + stderr).
pub fn start_expecting_exit(dir: &Path, args: &[&str]) -> (bool, String) {
    let port = testkit::free_port().to_string();
    let d = dir.display().to_string();
    let mut all = vec!["--port", &port, "--dir", &d];
    all.extend_from_slice(args);
    let f = testkit::run_to_exit(std::process::Command::new(TANDEM_BIN).args(&all), Duration::from_secs(10));
    (f.status.success(), format!("{}{}", f.stdout, f.stderr))
}
