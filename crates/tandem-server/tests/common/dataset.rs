//! Datasets for persistence tests: writing keys of every string encoding, reading a whole
//! keyspace back, comparing two, and small helpers for servers with a data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::TANDEM_BIN;
use testkit::{simple, Frame, RawClient, TandemProcess};

/// Every key of every database: (db, key) -> (value, pttl).
pub type Dump = BTreeMap<(usize, Vec<u8>), (Vec<u8>, i64)>;

pub fn dump(c: &mut RawClient) -> Dump {
    let mut out = Dump::new();
    for db in 0..16 {
        assert_eq!(c.send(&["SELECT", &db.to_string()]), simple("OK"));
        let Frame::Array(keys) = c.send(&["KEYS", "*"]) else { panic!("KEYS failed") };
        for k in keys {
            let Frame::Bulk(key) = k else { panic!("key {k:?}") };
            let v = match c.send(&[b"GET".as_slice(), &key]) {
                Frame::Bulk(v) => v,
                // Expired between KEYS and GET.
                Frame::Null => continue,
                f => panic!("GET {key:?}: {f:?}"),
            };
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
    }
    c.send(&["SELECT", "0"]);
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
