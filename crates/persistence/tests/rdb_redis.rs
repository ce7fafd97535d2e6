//! RDB interchange with the real redis-server (Debian's 7.0.15): files Redis saves load with
//! every key, value, database and expiry intact (and are reproduced byte for byte by the
//! writer); files the writer makes load into Redis and pass `redis-check-rdb`; hand-made edge
//! cases are accepted or refused exactly as Redis accepts or refuses them.

mod rdb_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::rdb::encoding as enc;
use engine::rdb::RdbValue;
use persistence::rdb_file::{self, AuxInfo, Checksummed, Entry};
use rdb_support::{pseudo_random_bytes, record, record_with, seal, show, Recorded};
use testkit::{bulk, redis_bin, run_to_exit, tool_bin, Frame, RawClient, RedisProcess};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// String values covering every way Redis stores a string in an RDB file: integer encodings at
/// their edges, integer-looking text that must stay text, sizes around the embstr and
/// compression thresholds, compressible text and incompressible binary.
fn string_values() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "0",
        "1",
        "-1",
        "127",
        "-128",
        "128",
        "-129",
        "255",
        "32767",
        "-32768",
        "32768",
        "-32769",
        "65536",
        "2147483647",
        "-2147483648",
        "2147483648",
        "-2147483649",
        "4294967296",
        "12345678901",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "007",
        "00",
        "-0",
        "+1",
        " 1",
        "1 ",
        "1.0",
        "1e3",
        "0x1f",
        "",
        "a",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for n in [20, 21, 44, 45] {
        v.push(b"x".repeat(n));
    }
    v.push(b"abcdefghijklmnopqrstu".to_vec()); // 21 bytes that LZF cannot shrink
    v.push(b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(90));
    v.push(pseudo_random_bytes(7, 3000));
    v.push(b"nul\0cr\rlf\n\xff\xfe".to_vec());
    v
}

/// (db, key, value, expiry) for every key the tests put in Redis.
type Expected = Vec<(u64, Vec<u8>, Vec<u8>, Option<i64>)>;

/// A value and its expiry.
type Stored = (Vec<u8>, Option<i64>);

/// One SELECTDB run: the database and its (key, value, expiry) entries.
type Section = (u64, Vec<(Vec<u8>, Vec<u8>, Option<i64>)>);

fn expected_keys(base_ms: i64) -> Expected {
    let dbs = [0u64, 3, 15];
    let mut out = Expected::new();
    for (i, value) in string_values().into_iter().enumerate() {
        let expire = (i % 3 == 1).then(|| base_ms + 3_600_000 + i as i64 * 1_000);
        out.push((dbs[i % 3], format!("key:{i}").into_bytes(), value, expire));
    }
    // Keys in their own encodings: empty, integer-like (stored integer-encoded), binary, long
    // and compressible.
    out.push((0, b"".to_vec(), b"empty key".to_vec(), None));
    out.push((3, b"12345".to_vec(), b"int key".to_vec(), Some(base_ms + 86_400_000)));
    out.push((15, b"\x00\xff\r\n".to_vec(), b"binary key".to_vec(), None));
    out.push((0, b"long key ".repeat(40), b"v".to_vec(), Some(base_ms + 1234)));
    out
}

/// The function library loaded into Redis.
const LIBRARY: &str = "#!lua name=rdbtest\nredis.register_function('rdbtest_one', function() return 1 end)";

fn as_map(rec: &Recorded) -> BTreeMap<(u64, Vec<u8>), Stored> {
    let mut map = BTreeMap::new();
    for e in &rec.entries {
        let RdbValue::String(v) = &e.value else { panic!("this test stores strings only") };
        let prev = map.insert((e.db, e.key.clone()), (v.clone(), e.expire_at_ms));
        assert!(prev.is_none(), "key {} twice in db {}", show(&e.key), e.db);
    }
    map
}

fn info_field(c: &mut RawClient, section: &str, field: &str) -> String {
    let Frame::Bulk(text) = c.send(&["INFO", section]) else { panic!("INFO {section}") };
    let text = String::from_utf8(text).unwrap();
    let prefix = format!("{field}:");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {field} in INFO")).to_string()
}

/// Rebuilds a file from what the loader found, using only the writer pieces, in the file's
/// order, computing the RESIZEDB hints from the entries.
fn rebuild(rec: &Recorded, compress: bool, checksum: bool) -> Vec<u8> {
    let aux: BTreeMap<&[u8], &[u8]> = rec.aux.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    let text = |k: &str| std::str::from_utf8(aux[k.as_bytes()]).unwrap();
    let mut head = Vec::new();
    rdb_file::write_header(&mut head);
    rdb_file::write_standard_aux(
        &mut head,
        &AuxInfo {
            redis_ver: text("redis-ver"),
            ctime_secs: text("ctime").parse().unwrap(),
            used_mem: text("used-mem").parse().unwrap(),
            aof_base: text("aof-base") == "1",
        },
    );
    for f in &rec.functions {
        rdb_file::write_function(&mut head, f, compress);
    }
    let mut w = Checksummed::new(Vec::new());
    w.write_all(&head).unwrap();
    let mut i = 0;
    while i < rec.entries.len() {
        let db = rec.entries[i].db;
        let run: Vec<&Entry> = rec.entries[i..].iter().take_while(|e| e.db == db).collect();
        let mut piece = Vec::new();
        rdb_file::write_select_db(&mut piece, db);
        let expires = run.iter().filter(|e| e.expire_at_ms.is_some()).count() as u64;
        rdb_file::write_resize_db(&mut piece, run.len() as u64, expires);
        for e in &run {
            let value = e.value.clone().into_value(&engine::Limits::default());
            rdb_file::write_entry(&mut piece, &e.key, &value, e.expire_at_ms, compress);
        }
        w.write_all(&piece).unwrap();
        i += run.len();
    }
    w.finish(checksum).unwrap()
}

/// Starts redis-server with `args`, stores `expected` and the function library in it, saves,
/// and returns the file and the Redis version.
fn saved_by_redis(args: &[&str], expected: &Expected) -> (Vec<u8>, String) {
    let r = RedisProcess::spawn(args);
    let mut c = r.client();
    for (db, key, value, expire) in expected {
        c.send(&["SELECT", &db.to_string()]);
        assert_eq!(c.send(&[&b"SET"[..], key, value]), Frame::Simple(b"OK".to_vec()));
        if let Some(at) = expire {
            assert_eq!(c.send(&[&b"PEXPIREAT"[..], key, at.to_string().as_bytes()]), Frame::Integer(1));
        }
    }
    assert_eq!(c.send(&["FUNCTION", "LOAD", LIBRARY]), bulk("rdbtest"));
    assert_eq!(c.send(&["SAVE"]), Frame::Simple(b"OK".to_vec()));
    (std::fs::read(r.dir.join("dump.rdb")).unwrap(), info_field(&mut c, "server", "redis_version"))
}

#[test]
fn files_saved_by_redis_load_with_every_key() {
    let base = now_ms();
    let expected = expected_keys(base);
    let want: BTreeMap<_, _> = expected.iter().map(|(db, k, v, e)| ((*db, k.clone()), (v.clone(), *e))).collect();

    let mut saved = Vec::new();
    for (args, compress, checksum) in [
        (&[][..], true, true),
        (&["--rdbcompression", "no"][..], false, true),
        (&["--rdbchecksum", "no"][..], true, false),
    ] {
        let (file, version) = saved_by_redis(args, &expected);
        let setting = args.join(" ");
        let (rec, summary) = record(&file).unwrap_or_else(|e| panic!("{setting}: {e}"));
        assert_eq!(as_map(&rec), want, "{setting}");
        assert_eq!(summary.version, 10);
        assert_eq!(summary.keys, expected.len() as u64);
        assert_eq!(summary.bytes, file.len() as u64);
        assert_eq!(rec.functions, [LIBRARY.as_bytes()]);
        let names: Vec<&[u8]> = rec.aux.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(names, [&b"redis-ver"[..], b"redis-bits", b"ctime", b"used-mem", b"aof-base"]);
        assert_eq!(rec.aux[0].1, version.as_bytes());
        let ctime: i64 = std::str::from_utf8(&rec.aux[2].1).unwrap().parse().unwrap();
        assert!((ctime - base / 1000).abs() < 60, "ctime {ctime}");
        // One RESIZEDB per database, with its true sizes.
        assert_eq!(rec.selects, [0, 3, 15]);
        for (db, hint) in rec.selects.iter().zip(&rec.resizes) {
            let keys = expected.iter().filter(|k| k.0 == *db);
            let expiring = keys.clone().filter(|k| k.3.is_some()).count() as u64;
            assert_eq!(*hint, (keys.count() as u64, expiring), "db {db}");
        }
        if !checksum {
            assert_eq!(&file[file.len() - 8..], &[0; 8]);
        }
        // The writer, fed what was found in the same order, produces Redis's very bytes.
        let ours = rebuild(&rec, compress, checksum);
        if ours != file {
            let at = ours.iter().zip(&file).position(|(a, b)| a != b).unwrap_or(ours.len().min(file.len()));
            panic!(
                "{setting}: rebuilt file differs at byte {at} (ours {} bytes, Redis {}):\nours  {}\nredis {}",
                ours.len(),
                file.len(),
                show(&ours[at.saturating_sub(8)..]),
                show(&file[at.saturating_sub(8)..])
            );
        }
        saved.push(file);
    }
    // Compression really happened in the first file and not in the second.
    let lorem = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(90);
    let contains = |hay: &[u8]| hay.windows(lorem.len()).any(|w| w == lorem.as_slice());
    assert!(!contains(&saved[0]) && contains(&saved[1]));
    assert!(saved[0].len() + 4000 < saved[1].len(), "{} vs {}", saved[0].len(), saved[1].len());

    damage_is_detected(&saved[0]);
}

/// Every truncation of a file Redis saved fails at or before the cut; every flipped byte is
/// refused (or, for the version digits only, reads as an old version with the same data).
fn damage_is_detected(file: &[u8]) {
    let good = record(file).unwrap().0;
    for cut in 0..file.len() {
        let e = record(&file[..cut]).err().unwrap_or_else(|| panic!("cut at {cut} loaded"));
        assert!(e.offset <= cut as u64, "cut at {cut}: {e}");
    }
    for i in 0..file.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = file.to_vec();
            bad[i] ^= mask;
            if let Ok((rec, s)) = record(&bad) {
                assert!((5..9).contains(&i) && s.version < 5 && rec == good, "flip {mask:#04x} at {i} loaded");
            }
            let _ = record_with(&bad, false);
        }
    }
}

/// Writes `file` into a fresh directory and starts redis-server on it.
fn redis_with_file(file: &[u8], extra: &[&str]) -> (RedisProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ours.rdb"), file).unwrap();
    let dir_arg = dir.path().display().to_string();
    let mut args = vec!["--dir", &dir_arg, "--dbfilename", "ours.rdb"];
    args.extend_from_slice(extra);
    (RedisProcess::spawn(&args), dir)
}

/// Checks that Redis holds exactly the keys of `entries` (the last one wins for a repeated key),
/// skipping those whose expiry has passed, as a Redis master does when it loads.
fn assert_redis_holds(c: &mut RawClient, entries: &[Entry]) {
    let loaded_at = now_ms();
    let mut want: BTreeMap<u64, BTreeMap<Vec<u8>, Stored>> = BTreeMap::new();
    for e in entries {
        let RdbValue::String(v) = &e.value else { panic!("this test stores strings only") };
        if e.expire_at_ms.is_some_and(|t| t < loaded_at - 5_000) {
            continue;
        }
        want.entry(e.db).or_default().insert(e.key.clone(), (v.clone(), e.expire_at_ms));
    }
    for db in 0..16u64 {
        let keys = want.remove(&db).unwrap_or_default();
        c.send(&["SELECT", &db.to_string()]);
        assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(keys.len() as i64), "DBSIZE of db {db}");
        for (key, (value, expire)) in keys {
            assert_eq!(c.send(&[&b"GET"[..], &key]), Frame::Bulk(value.clone()), "GET {} in db {db}", show(&key));
            let Frame::Integer(pttl) = c.send(&[&b"PTTL"[..], &key]) else { panic!("PTTL") };
            match expire {
                None => assert_eq!(pttl, -1, "PTTL {} in db {db}", show(&key)),
                Some(at) => {
                    let left = at - now_ms();
                    assert!(
                        (pttl - left).abs() < 3_000,
                        "PTTL {} in db {db}: {pttl}, expected about {left}",
                        show(&key)
                    );
                }
            }
        }
    }
}

/// Runs `redis-check-rdb` on `file` and returns its output, panicking if it finds a problem.
fn redis_check_rdb(file: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("check.rdb");
    std::fs::write(&path, file).unwrap();
    let out = run_to_exit(Command::new(tool_bin("redis-check-rdb")).arg(&path), Duration::from_secs(30));
    assert!(out.status.success(), "redis-check-rdb refused the file:\n{}{}", out.stdout, out.stderr);
    out.stdout
}

/// A file of one database section per entry of `sections`, written with the writer pieces.
fn our_file(sections: &[Section], compress_every: usize) -> (Vec<u8>, Vec<Entry>) {
    let mut body = Vec::new();
    rdb_file::write_header(&mut body);
    let info = AuxInfo { redis_ver: "7.0.15", ctime_secs: now_ms() / 1000, used_mem: 1 << 20, aof_base: false };
    rdb_file::write_standard_aux(&mut body, &info);
    rdb_file::write_function(&mut body, LIBRARY.as_bytes(), true);
    let mut entries = Vec::new();
    let mut n = 0;
    for (db, keys) in sections {
        rdb_file::write_select_db(&mut body, *db);
        let expiring = keys.iter().filter(|k| k.2.is_some()).count() as u64;
        rdb_file::write_resize_db(&mut body, keys.len() as u64, expiring);
        for (key, value, expire) in keys {
            n += 1;
            rdb_file::write_string_entry(&mut body, key, value, *expire, n % compress_every != 0);
            let value = RdbValue::String(value.clone());
            entries.push(Entry {
                db: *db,
                key: key.clone(),
                value,
                expire_at_ms: *expire,
                idle_secs: None,
                freq: None,
            });
        }
    }
    (seal(&body, true), entries)
}

#[test]
fn files_written_here_load_into_redis() {
    let base = now_ms();
    let mut sections: Vec<Section> = vec![(0, vec![]), (3, vec![]), (15, vec![])];
    for (db, key, value, expire) in expected_keys(base) {
        let at = [0, 3, 15].iter().position(|d| *d == db).unwrap();
        sections[at].1.push((key, value, expire));
    }
    let (file, entries) = our_file(&sections, 2);
    let (rec, _) = record(&file).unwrap();
    assert_eq!(rec.entries, entries);
    let report = redis_check_rdb(&file);
    assert!(report.contains(&format!("[info] {} keys read", entries.len())), "{report}");

    let (r, _dir) = redis_with_file(&file, &[]);
    let mut c = r.client();
    assert_redis_holds(&mut c, &entries);
    let Frame::Array(libs) = c.send(&["FUNCTION", "LIST"]) else { panic!("FUNCTION LIST") };
    assert_eq!(libs.len(), 1);
    assert_eq!(c.send(&["FCALL", "rdbtest_one", "0"]), Frame::Integer(1));
}

#[test]
fn one_database_in_several_runs_loads_whole() {
    let base = now_ms();
    let kv = |k: &str, v: &str, e: Option<i64>| (k.as_bytes().to_vec(), v.as_bytes().to_vec(), e);
    // As a snapshot streamed shard by shard writes them: the same databases recur.
    let sections = vec![
        (0, vec![kv("a", "1", None), kv("b", "text", Some(base + 60_000))]),
        (3, vec![kv("c", "2", None)]),
        (0, vec![kv("d", &"d".repeat(100), None)]),
        (15, vec![kv("e", "-5", Some(base + 120_000))]),
        (0, vec![]),
        (3, vec![kv("f", "3", None), kv("g", "", None)]),
        (0, vec![kv("h", "last", None)]),
    ];
    let (file, entries) = our_file(&sections, 3);
    let report = redis_check_rdb(&file);
    assert!(report.contains("[info] 8 keys read"), "{report}");
    let (r, _dir) = redis_with_file(&file, &[]);
    assert_redis_holds(&mut r.client(), &entries);
}

#[test]
fn expired_keys_are_reported_and_left_to_the_caller() {
    let past = now_ms() - 3_600_000;
    let kv = |k: &str, e: Option<i64>| (k.as_bytes().to_vec(), b"v".to_vec(), e);
    let (file, entries) = our_file(&[(0, vec![kv("gone", Some(past)), kv("kept", None)])], 1);
    let (rec, _) = record(&file).unwrap();
    assert_eq!(rec.entries[0].expire_at_ms, Some(past));
    // Redis, as a master, drops the expired key while loading.
    let (r, _dir) = redis_with_file(&file, &[]);
    let mut c = r.client();
    assert_redis_holds(&mut c, &entries);
    assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(0));
    c.send(&["SELECT", "0"]);
    assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(1));
}

#[test]
fn lru_and_lfu_metadata_cross_over() {
    // From Redis: LFU counters and LRU idle times are saved under the matching policies.
    for (policy, lfu) in [("allkeys-lfu", true), ("allkeys-lru", false)] {
        let r = RedisProcess::spawn(&["--maxmemory-policy", policy]);
        let mut c = r.client();
        c.send(&["SET", "hot", "1"]);
        for _ in 0..200 {
            c.send(&["GET", "hot"]);
        }
        let what = if lfu { "FREQ" } else { "IDLETIME" };
        let Frame::Integer(before) = c.send(&["OBJECT", what, "hot"]) else { panic!("OBJECT {what}") };
        c.send(&["SAVE"]);
        let (rec, _) = record(&std::fs::read(r.dir.join("dump.rdb")).unwrap()).unwrap();
        let e = &rec.entries[0];
        if lfu {
            assert_eq!((e.freq, e.idle_secs), (Some(before as u8), None));
            assert!(before > 5, "LFU counter {before}");
        } else {
            assert!(e.freq.is_none() && e.idle_secs.is_some_and(|s| s.abs_diff(before as u64) <= 1), "{e:?}");
        }
    }
    // To Redis: the values written come back through OBJECT FREQ / OBJECT IDLETIME.
    let mut body = Vec::new();
    rdb_file::write_header(&mut body);
    rdb_file::write_select_db(&mut body, 0);
    rdb_file::write_freq(&mut body, 200);
    rdb_file::write_string_entry(&mut body, b"hot", b"1", None, true);
    rdb_file::write_idle(&mut body, 1000);
    rdb_file::write_string_entry(&mut body, b"old", b"2", None, true);
    let file = seal(&body, true);
    redis_check_rdb(&file);
    let (r, _dir) = redis_with_file(&file, &["--maxmemory-policy", "allkeys-lfu"]);
    assert_eq!(r.client().send(&["OBJECT", "FREQ", "hot"]), Frame::Integer(200));
    let (r, _dir) = redis_with_file(&file, &["--maxmemory-policy", "allkeys-lru"]);
    let Frame::Integer(idle) = r.client().send(&["OBJECT", "IDLETIME", "old"]) else { panic!("IDLETIME") };
    assert!((1000..=1003).contains(&idle), "idle {idle}");
}

/// Starts redis-server on `file` without a listener and reports whether it refused the file
/// (exited with failure); a server that loads it would keep running, which fails the test.
fn redis_refuses(file: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.rdb"), file).unwrap();
    let mut cmd = Command::new(redis_bin());
    cmd.args(["--port", "0", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dbfilename", "bad.rdb"])
        .arg("--dir")
        .arg(dir.path());
    !run_to_exit(&mut cmd, Duration::from_secs(20)).status.success()
}

fn header_and_key(version: &[u8]) -> Vec<u8> {
    let mut b = b"REDIS".to_vec();
    b.extend_from_slice(version);
    rdb_file::write_select_db(&mut b, 0);
    rdb_file::write_string_entry(&mut b, b"k", b"v", None, true);
    b
}

#[test]
fn edge_cases_accepted_like_redis() {
    let future = now_ms() + 600_000;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    let mut b = Vec::new();
    rdb_file::write_header(&mut b);
    // Seconds expiry (the pre-RDB-3 opcode).
    b.push(enc::RDB_OPCODE_EXPIRETIME);
    b.extend_from_slice(&((future / 1000) as i32).to_le_bytes());
    rdb_file::write_string_entry(&mut b, b"secs", b"1", None, true);
    // An expiry pending across SELECTDB and AUX belongs to the next key.
    b.push(enc::RDB_OPCODE_EXPIRETIME_MS);
    b.extend_from_slice(&future.to_le_bytes());
    rdb_file::write_select_db(&mut b, 3);
    rdb_file::write_aux(&mut b, b"unknown-field", b"ignored");
    rdb_file::write_string_entry(&mut b, b"late", b"2", None, true);
    // Length quirks: an encoded marker as a database number; a 64-bit length form.
    b.extend_from_slice(&[enc::RDB_OPCODE_SELECTDB, 0xc5]);
    rdb_file::write_string_entry(&mut b, b"five", b"5", None, true);
    b.extend_from_slice(&[enc::RDB_OPCODE_SELECTDB, 0x81, 0, 0, 0, 0, 0, 0, 0, 7]);
    b.extend_from_slice(&[enc::RDB_TYPE_STRING, 0x80, 0, 0, 0, 5]);
    b.extend_from_slice(b"seven\x01v");
    cases.push(("quirks", seal(&b, true)));
    cases.push(("quirks, no checksum", seal(&b, false)));
    let mut trailing = seal(&b, true);
    trailing.extend_from_slice(b"trailing bytes");
    cases.push(("trailing bytes", trailing));

    // Old versions end at EOF; "001\x10" reads as version 1.
    let mut v4 = header_and_key(b"0004");
    v4.push(enc::RDB_OPCODE_EOF);
    cases.push(("version 4", v4));
    let mut v1 = header_and_key(b"001\x10");
    v1.push(enc::RDB_OPCODE_EOF);
    v1.extend_from_slice(b"12345678");
    cases.push(("version digits 001\\x10", v1));
    cases.push(("version digits ' 010'", seal(&header_and_key(b" 010"), true)));

    for (name, file) in cases {
        let (rec, _) = record(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (r, _dir) = redis_with_file(&file, &[]);
        assert_redis_holds(&mut r.client(), &rec.entries);
        if name == "quirks" {
            let keys: Vec<(u64, &[u8], bool)> =
                rec.entries.iter().map(|e| (e.db, e.key.as_slice(), e.expire_at_ms.is_some())).collect();
            assert_eq!(keys, [(0, &b"secs"[..], true), (3, b"late", true), (5, b"five", false), (7, b"seven", false)]);
        }
    }
}

#[test]
fn damage_refused_like_redis() {
    let good = {
        let mut b = Vec::new();
        rdb_file::write_header(&mut b);
        rdb_file::write_select_db(&mut b, 0);
        rdb_file::write_string_entry(&mut b, b"key", &b"abc".repeat(20), None, true);
        b
    };
    let with = |extra: &[u8]| seal(&[&good[..], extra].concat(), true);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("wrong signature", seal(&[&b"RADIS"[..], &good[5..]].concat(), true)),
        ("version 0", seal(&header_and_key(b"0000"), true)),
        ("version 12", seal(&header_and_key(b"0012"), true)),
        ("unknown type 8", with(&[8, 1, b'k', 0])),
        ("module aux", with(&[enc::RDB_OPCODE_MODULE_AUX, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 2, 2, 0])),
        ("pre-GA function", with(&[enc::RDB_OPCODE_FUNCTION_PRE_GA, 0, 0])),
        ("bad string encoding", with(&[0, 0xc4, 0])),
        ("bad LZF", with(&[0, 1, b'k', 0xc3, 0x02, 0x05, 0x00, b'a'])),
        ("database out of range", with(&[enc::RDB_OPCODE_SELECTDB, 16])),
        ("truncated value", good[..good.len() - 3].to_vec()),
        ("no checksum after EOF", [&good[..], &[enc::RDB_OPCODE_EOF, 0, 0]].concat()),
    ];
    let mut wrong = seal(&good, true);
    let n = wrong.len();
    wrong[n - 3] ^= 1;
    cases.push(("checksum mismatch", wrong));
    for (name, file) in cases {
        let ours = record(&file);
        assert!(ours.is_err(), "{name}: loaded here");
        assert!(redis_refuses(&file), "{name}: Redis loaded it; here: {}", ours.unwrap_err());
    }
}
