//! Lists, hashes, sets and sorted sets beyond what the differential cases compare: encodings
//! where Tandem follows Redis 7.2 while the reference binary is 7.0, and `DUMP`/`RESTORE`
//! interchange with redis-server in both directions.

mod common;

use common::pair;
use testkit::{bulk, simple, Frame, RawClient};

fn int(v: i64) -> Frame {
    Frame::Integer(v)
}

fn encoding(c: &mut RawClient, key: &str) -> Frame {
    c.send(&["OBJECT", "ENCODING", key])
}

/// Redis 7.2's list encodings: a listpack while it fits one node, a quicklist beyond, and a
/// listpack again once a single node is less than half full. (Redis 7.0 always says
/// "quicklist", so this cannot be a differential case.)
#[test]
fn list_encodings_follow_redis_7_2() {
    let (t, _r) = pair();
    let mut c = t.client();
    c.send(&["RPUSH", "l", "a", "b"]);
    assert_eq!(encoding(&mut c, "l"), bulk("listpack"));
    // 8 KiB node limit (list-max-listpack-size -2): 100 elements of 100 bytes overflow it.
    let big = "x".repeat(100);
    for _ in 0..100 {
        c.send(&["RPUSH", "l", &big]);
    }
    assert_eq!(encoding(&mut c, "l"), bulk("quicklist"));
    assert_eq!(c.send(&["LLEN", "l"]), int(102));
    // Down to one node under half the limit: back to a listpack.
    assert_eq!(c.send(&["LTRIM", "l", "0", "9"]), simple("OK"));
    assert_eq!(encoding(&mut c, "l"), bulk("listpack"));
    assert_eq!(c.send(&["LINDEX", "l", "1"]), bulk("b"));

    // A count limit, set through the old name.
    assert_eq!(c.send(&["CONFIG", "SET", "list-max-ziplist-size", "4"]), simple("OK"));
    assert_eq!(
        c.send(&["CONFIG", "GET", "list-max-listpack-size"]),
        Frame::Array(vec![bulk("list-max-listpack-size"), bulk("4")])
    );
    c.send(&["RPUSH", "n", "1", "2", "3", "4"]);
    assert_eq!(encoding(&mut c, "n"), bulk("listpack"));
    c.send(&["RPUSH", "n", "5"]);
    assert_eq!(encoding(&mut c, "n"), bulk("quicklist"));
    // LINSERT converts before it looks for the pivot, found or not.
    c.send(&["DEL", "n"]);
    c.send(&["RPUSH", "n", "1", "2", "3", "4"]);
    assert_eq!(c.send(&["LINSERT", "n", "BEFORE", "nope", "x"]), int(-1));
    assert_eq!(encoding(&mut c, "n"), bulk("quicklist"));
    // Popping to one node of at most half the count converts back.
    c.send(&["RPOP", "n", "2"]);
    assert_eq!(encoding(&mut c, "n"), bulk("listpack"));
    assert_eq!(c.send(&["CONFIG", "SET", "list-max-listpack-size", "-2"]), simple("OK"));
}

/// A value's contents as a comparable frame.
fn contents(c: &mut RawClient, key: &str) -> Frame {
    match c.send(&["TYPE", key]) {
        Frame::Simple(t) if t == b"list" => c.send(&["LRANGE", key, "0", "-1"]),
        Frame::Simple(t) if t == b"set" => {
            let (Frame::Array(mut m) | Frame::Set(mut m)) = c.send(&["SMEMBERS", key]) else { panic!("SMEMBERS") };
            m.sort_by_key(|f| f.to_display());
            Frame::Array(m)
        }
        Frame::Simple(t) if t == b"hash" => {
            let Frame::Array(flat) = c.send(&["HGETALL", key]) else { panic!("HGETALL") };
            let mut pairs: Vec<Frame> = flat.chunks(2).map(|p| Frame::Array(p.to_vec())).collect();
            pairs.sort_by_key(|f| f.to_display());
            Frame::Array(pairs)
        }
        // Members and scores in order, as text: exact scores survive the trip.
        Frame::Simple(t) if t == b"zset" => c.send(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        other => panic!("{key}: type {other:?}"),
    }
}

/// Writes the same collections of every encoding to a server.
fn fill(c: &mut RawClient) -> Vec<&'static str> {
    let mut cmds: Vec<Vec<String>> = vec![
        ["RPUSH", "list:small", "a", "1", "-1", "300", "70000", "", "007"].map(String::from).to_vec(),
        ["HSET", "hash:small", "f", "v", "n", "12", "neg", "-5"].map(String::from).to_vec(),
        ["HSET", "hash:long", "f", &"v".repeat(80)].map(String::from).to_vec(),
        ["SADD", "set:small", "1", "-5", "70000", "-9223372036854775808"].map(String::from).to_vec(),
        ["SADD", "set:strings", "a", "b", "12", ""].map(String::from).to_vec(),
        ["ZADD", "zset:small", "1", "a", "-2.5", "b", "0.1", "c", "-0", "d", "inf", "e", "1e300", "f", "3", "12"]
            .map(String::from)
            .to_vec(),
        ["ZADD", "zset:long", "1", &"m".repeat(100), "2", "x"].map(String::from).to_vec(),
    ];
    let mut long = vec!["RPUSH".to_string(), "list:long".into()];
    long.extend((0..2000).map(|i| format!("item:{i}")));
    cmds.push(long);
    let mut wide = vec!["HSET".to_string(), "hash:wide".into()];
    wide.extend((0..1200).map(|i| format!("w{i}")));
    cmds.push(wide);
    let mut many = vec!["SADD".to_string(), "set:wide".into()];
    many.extend((0..700).map(|i| format!("{}", i * 3)));
    cmds.push(many);
    let mut scores = vec!["ZADD".to_string(), "zset:wide".into()];
    scores.extend((0..500).flat_map(|i| [format!("{}", f64::from(i) / 3.0 - 50.0), format!("z{i}")]));
    cmds.push(scores);
    let mut big = vec!["RPUSH".to_string(), "list:bigelem".into(), "a".into()];
    big.push("B".repeat(20_000));
    big.push("c".into());
    cmds.push(big);
    for cmd in cmds {
        let r = c.send(&cmd.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!matches!(r, Frame::Error(_)), "{cmd:?}: {r:?}");
    }
    vec![
        "list:small",
        "list:long",
        "list:bigelem",
        "hash:small",
        "hash:long",
        "hash:wide",
        "set:small",
        "set:strings",
        "set:wide",
        "zset:small",
        "zset:long",
        "zset:wide",
    ]
}

fn dump_payload(c: &mut RawClient, key: &str) -> Vec<u8> {
    match c.send(&["DUMP", key]) {
        Frame::Bulk(b) => b,
        f => panic!("DUMP {key}: {f:?}"),
    }
}

#[test]
fn dump_and_restore_interchange_with_redis() {
    let (t, r) = pair();
    let (mut tc, mut rc) = (t.client(), r.client());
    let keys = fill(&mut tc);
    fill(&mut rc);
    for key in keys {
        let (from_t, from_r) = (dump_payload(&mut tc, key), dump_payload(&mut rc, key));
        // Listpack-encoded values are the same bytes in both.
        if key.ends_with("small") {
            assert_eq!(from_t, from_r, "DUMP {key}");
        }
        let copy = format!("{key}:copy");
        for (c, payload) in [(&mut rc, &from_t), (&mut tc, &from_r)] {
            let args: Vec<&[u8]> = vec![b"RESTORE", copy.as_bytes(), b"0", payload];
            assert_eq!(c.send(&args), simple("OK"), "RESTORE {key}");
        }
        let want = contents(&mut tc, key);
        assert_eq!(contents(&mut rc, &copy), want, "{key} in redis");
        assert_eq!(contents(&mut tc, &copy), want, "{key} back in tandem");
        assert_eq!(encoding(&mut tc, &copy), encoding(&mut tc, key), "{key} keeps its encoding");
    }
    // Damaged payloads are refused, never loaded half.
    let mut bad = dump_payload(&mut tc, "hash:small");
    bad[8] ^= 0x40;
    let args: Vec<&[u8]> = vec![b"RESTORE", b"x", b"0", &bad];
    assert!(matches!(tc.send(&args), Frame::Error(_)));
    assert_eq!(tc.send(&["EXISTS", "x"]), int(0));
}

/// Counts that Redis accepts but that ask for more random picks than memory holds: the reply
/// is dropped and the client closed once it passes 512 MB, as a client past its output buffer
/// limit is, instead of the server running out of memory. Other clients carry on.
#[test]
fn huge_random_pick_counts_close_the_client_not_the_server() {
    let t = common::tandem(&[]);
    let mut c = t.client();
    c.send(&["SADD", "s", "a", "b"]);
    c.send(&["HSET", "h", "f", "v"]);
    for cmd in [
        &["SRANDMEMBER", "s", "-9223372036854775807"][..],
        &["HRANDFIELD", "h", "-4611686018427387903", "WITHVALUES"][..],
    ] {
        let mut victim = t.client();
        victim.write_command(cmd).unwrap();
        let got = victim.expect_closed(std::time::Duration::from_secs(120));
        assert!(matches!(&got, Ok(frames) if frames.is_empty()), "{cmd:?}: {got:?}");
        assert_eq!(c.send(&["PING"]), simple("PONG"));
        let Frame::Bulk(info) = c.send(&["INFO", "memory"]) else { panic!("INFO") };
        let info = String::from_utf8(info).unwrap();
        let used: u64 = info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
        assert!(used < 100 << 20, "memory after {cmd:?}: {used}");
    }
    // Ordinary negative counts still answer in full.
    let Frame::Array(picks) = c.send(&["SRANDMEMBER", "s", "-5000"]) else { panic!("SRANDMEMBER") };
    assert_eq!(picks.len(), 5000);
}
