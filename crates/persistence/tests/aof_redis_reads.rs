//! Redis reading what we write: an AOF directory made with our manifest (persisted by
//! `manifest::persist`), a base file and an incr file written with our encoder. redis-check-aof
//! must accept it and redis-server must load every key, database and expiry from it.

mod aof_support;

use aof_support::*;
use persistence::aof::manifest::{self, BaseFormat, Manifest};
use persistence::aof::Encoder;
use std::fs;
use std::path::Path;
use testkit::{Frame, RawClient, RedisProcess};

fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(b.to_vec())
}

fn send(c: &mut RawClient, args: &[&[u8]]) -> Frame {
    c.send(args)
}

fn sorted(f: Frame) -> Vec<Frame> {
    let Frame::Array(mut items) = f else { panic!("{f:?}") };
    items.sort_by_key(Frame::to_bytes);
    items
}

/// Builds the directory `dir/appendonlydir` for `fname`; returns the expiry times used and
/// the manifest text written.
fn build(dir: &Path, fname: &[u8]) -> ([u64; 3], Vec<u8>) {
    let aof_dir = dir.join("appendonlydir");
    fs::create_dir_all(&aof_dir).unwrap();
    let now = now_ms();
    let ttl = [now + 100_000, now + 200_000, now + 300_000];
    let ms = |i: usize| ttl[i].to_string().into_bytes();

    let mut m = Manifest::new();
    let base = m.new_base(fname, BaseFormat::Aof).clone();
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    enc.timestamp(&mut out, (now / 1000) as i64);
    enc.append(&mut out, 0, &[b"SET".as_slice(), b"k1", b"v1"]);
    enc.append(&mut out, 0, &[b"RPUSH".as_slice(), b"list", b"a", b"b", b"c"]);
    enc.append(&mut out, 0, &[b"HSET".as_slice(), b"h", b"f1", b"v1", b"f2", b""]);
    enc.append(&mut out, 0, &[b"SADD".as_slice(), b"s", b"m1", b"m2"]);
    enc.append(&mut out, 0, &[b"ZADD".as_slice(), b"z", b"1.5", b"a", b"2", b"b"]);
    enc.append(&mut out, 0, &[b"SET".as_slice(), b"\x00bin\r\n", b"\xff\r\n*1\r\n"]);
    enc.append(&mut out, 0, &[b"SET".as_slice(), b"ttl1", b"x"]);
    enc.append(&mut out, 0, &[b"PEXPIREAT".as_slice(), b"ttl1", &ms(0)]);
    enc.append(&mut out, 2, &[b"SET".as_slice(), b"d2", b"x"]);
    fs::write(base.path_in(&aof_dir), &out).unwrap();

    let incr = m.new_incr(fname).clone();
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    enc.append(&mut out, 0, &[b"SET".as_slice(), b"k2", b"v2"]);
    enc.append(&mut out, 0, &[b"MULTI".as_slice()]);
    enc.append(&mut out, 0, &[b"INCR".as_slice(), b"counter"]);
    enc.append(&mut out, 0, &[b"INCRBY".as_slice(), b"counter", b"5"]);
    enc.append(&mut out, 0, &[b"EXEC".as_slice()]);
    enc.append(&mut out, 5, &[b"SET".as_slice(), b"d5", b"y"]);
    enc.append(&mut out, 5, &[b"PEXPIREAT".as_slice(), b"d5", &ms(1)]);
    enc.append(&mut out, 0, &[b"DEL".as_slice(), b"k1"]);
    enc.append(&mut out, 0, &[b"SET".as_slice(), b"ttl2", b"x", b"PXAT", &ms(2)]);
    fs::write(incr.path_in(&aof_dir), &out).unwrap();

    manifest::persist(&aof_dir, fname, &m).unwrap();
    assert!(!path_of(&aof_dir, &manifest::temp_manifest_file_name(fname)).exists());
    let text = fs::read(path_of(&aof_dir, &manifest::manifest_file_name(fname))).unwrap();
    assert_eq!(text, m.to_text());
    assert_eq!(manifest::load(&aof_dir, fname).unwrap(), Some(m));
    (ttl, text)
}

fn redis_reads(fname: &[u8]) {
    let dir = testkit::temp_dir("aof-ours");
    let (ttl, text) = build(&dir, fname);
    let aof_dir = dir.join("appendonlydir");
    let manifest_path = path_of(&aof_dir, &manifest::manifest_file_name(fname));

    let (ok, out) = check_aof(&manifest_path);
    assert!(ok && out.contains("All AOF files and manifest are valid"), "redis-check-aof:\n{out}");

    let fname_str = std::str::from_utf8(fname).unwrap();
    let dir_str = dir.to_str().unwrap();
    // `always`: the appended command is in the file once the reply arrives.
    let r = RedisProcess::spawn(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--appendfilename",
        fname_str,
        "--dir",
        dir_str,
    ]);
    let mut c = r.client();
    assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "1");
    assert_eq!(send(&mut c, &[b"DBSIZE"]), Frame::Integer(9));
    assert_eq!(send(&mut c, &[b"GET", b"k1"]), Frame::Null);
    assert_eq!(send(&mut c, &[b"GET", b"k2"]), bulk(b"v2"));
    assert_eq!(send(&mut c, &[b"GET", b"counter"]), bulk(b"6"));
    assert_eq!(send(&mut c, &[b"GET", b"\x00bin\r\n"]), bulk(b"\xff\r\n*1\r\n"));
    assert_eq!(
        send(&mut c, &[b"LRANGE", b"list", b"0", b"-1"]),
        Frame::Array(vec![bulk(b"a"), bulk(b"b"), bulk(b"c")])
    );
    assert_eq!(
        sorted(send(&mut c, &[b"HGETALL", b"h"])),
        sorted(Frame::Array(vec![bulk(b"f1"), bulk(b"v1"), bulk(b"f2"), bulk(b"")]))
    );
    assert_eq!(sorted(send(&mut c, &[b"SMEMBERS", b"s"])), vec![bulk(b"m1"), bulk(b"m2")]);
    assert_eq!(
        send(&mut c, &[b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"]),
        Frame::Array(vec![bulk(b"a"), bulk(b"1.5"), bulk(b"b"), bulk(b"2")])
    );
    assert_eq!(send(&mut c, &[b"PEXPIRETIME", b"ttl1"]), Frame::Integer(ttl[0] as i64));
    assert_eq!(send(&mut c, &[b"PEXPIRETIME", b"ttl2"]), Frame::Integer(ttl[2] as i64));
    assert_eq!(send(&mut c, &[b"PEXPIRETIME", b"k2"]), Frame::Integer(-1));
    send(&mut c, &[b"SELECT", b"2"]);
    assert_eq!(send(&mut c, &[b"DBSIZE"]), Frame::Integer(1));
    assert_eq!(send(&mut c, &[b"GET", b"d2"]), bulk(b"x"));
    send(&mut c, &[b"SELECT", b"5"]);
    assert_eq!(send(&mut c, &[b"DBSIZE"]), Frame::Integer(1));
    assert_eq!(send(&mut c, &[b"GET", b"d5"]), bulk(b"y"));
    assert_eq!(send(&mut c, &[b"PEXPIRETIME", b"d5"]), Frame::Integer(ttl[1] as i64));

    // Redis kept our manifest and appends to our last incr file.
    send(&mut c, &[b"SET", b"k3", b"v3"]);
    assert_eq!(fs::read(&manifest_path).unwrap(), text);
    let incr = fs::read(path_of(&aof_dir, &manifest::incr_file_name(fname, 1))).unwrap();
    let mut tail = Vec::new();
    Encoder::new().append(&mut tail, 5, &[b"SET".as_slice(), b"k3", b"v3"]);
    assert!(incr.ends_with(&tail), "{}", incr.escape_ascii());
    drop(r);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn redis_loads_our_directory() {
    redis_reads(b"appendonly.aof");
}

#[test]
fn redis_loads_our_directory_with_a_quoted_name() {
    redis_reads(b"my \"odd\" aof.aof");
}
