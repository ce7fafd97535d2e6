//! Expiry with a manual clock: keys vanish exactly at their deadline for every command that
//! can see them, the lazy deletion is logged as `DEL`, and relative times are logged absolute.

use commands::testing::{bulk, simple, Harness};
use protocol::Frame;

const T0: i64 = 1_700_000_000_000;

fn effects(h: &Harness) -> Vec<String> {
    h.effects
        .list
        .iter()
        .map(|e| e.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn expired_keys_are_invisible_to_every_reader() {
    // Each row: a command that reads key `k`, its reply while alive, its reply once expired.
    let rows: &[(&[&str], Frame, Frame)] = &[
        (&["GET", "k"], bulk("v"), Frame::Null),
        (&["EXISTS", "k"], Frame::Integer(1), Frame::Integer(0)),
        (&["TYPE", "k"], simple("string"), simple("none")),
        (&["STRLEN", "k"], Frame::Integer(1), Frame::Integer(0)),
        (&["PTTL", "k"], Frame::Integer(100), Frame::Integer(-2)),
        (&["KEYS", "*"], Frame::Array(vec![bulk("k")]), Frame::Array(vec![])),
        (&["GETRANGE", "k", "0", "-1"], bulk("v"), bulk("")),
        (
            &["SCAN", "0"],
            Frame::Array(vec![bulk("0"), Frame::Array(vec![bulk("k")])]),
            Frame::Array(vec![bulk("0"), Frame::Array(vec![])]),
        ),
        (&["RANDOMKEY"], bulk("k"), Frame::Null),
        (&["GETBIT", "k", "1"], Frame::Integer(1), Frame::Integer(0)),
    ];
    for (cmd, alive, gone) in rows {
        let mut h = Harness::new(T0);
        assert_eq!(h.run(&["SET", "k", "v", "PX", "100"]), simple("OK"));
        assert_eq!(&h.run(cmd), alive, "{cmd:?} before the deadline");
        h.now_ms += 100;
        assert_eq!(&h.run(cmd), gone, "{cmd:?} at the deadline");
    }
}

#[test]
fn lazy_expiry_is_logged_as_del_and_relative_times_as_absolute() {
    let mut h = Harness::new(T0);
    h.run(&["SET", "a", "1", "EX", "10"]);
    h.run(&["SET", "b", "2"]);
    h.run(&["EXPIRE", "b", "5"]);
    h.run(&["SETEX", "c", "1", "3"]);
    h.now_ms += 1_000;
    assert_eq!(h.run(&["GET", "c"]), Frame::Null);
    assert_eq!(h.run(&["GET", "a"]), bulk("1"));
    assert_eq!(
        effects(&h),
        vec![
            format!("SET a 1 PXAT {}", T0 + 10_000),
            "SET b 2".to_string(),
            format!("PEXPIREAT b {}", T0 + 5_000),
            format!("SET c 3 PXAT {}", T0 + 1_000),
            "DEL c".to_string(),
        ]
    );
}

#[test]
fn a_write_to_an_expired_key_starts_from_nothing() {
    let mut h = Harness::new(T0);
    h.run(&["SET", "n", "10", "PX", "50"]);
    h.now_ms += 50;
    assert_eq!(h.run(&["INCR", "n"]), Frame::Integer(1));
    assert_eq!(h.run(&["PTTL", "n"]), Frame::Integer(-1));
    h.run(&["SET", "s", "abc", "PX", "50"]);
    h.now_ms += 60;
    assert_eq!(h.run(&["APPEND", "s", "x"]), Frame::Integer(1));
    assert_eq!(h.run(&["SET", "s", "new", "NX"]), Frame::Null);
}

/// Hash fields vanish at their deadline for every hash reader; where the execution may not
/// remove them (a cluster node's local read) they are hidden and nothing changes; where it
/// may, the first reader removes them and logs one `HDEL`.
#[test]
fn expired_hash_fields_are_invisible_and_removed_only_where_allowed() {
    let rows: &[(&[&str], Frame, Frame)] = &[
        (&["HGET", "h", "a"], bulk("1"), Frame::Null),
        (&["HEXISTS", "h", "a"], Frame::Integer(1), Frame::Integer(0)),
        (&["HLEN", "h"], Frame::Integer(2), Frame::Integer(1)),
        (&["HSTRLEN", "h", "a"], Frame::Integer(1), Frame::Integer(0)),
        (&["HKEYS", "h"], Frame::Array(vec![bulk("a"), bulk("b")]), Frame::Array(vec![bulk("b")])),
        (
            &["HMGET", "h", "a", "b"],
            Frame::Array(vec![bulk("1"), bulk("2")]),
            Frame::Array(vec![Frame::Null, bulk("2")]),
        ),
        (&["HRANDFIELD", "h", "5"], Frame::Array(vec![bulk("a"), bulk("b")]), Frame::Array(vec![bulk("b")])),
        (
            &["HSCAN", "h", "0"],
            Frame::Array(vec![bulk("0"), Frame::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")])]),
            Frame::Array(vec![bulk("0"), Frame::Array(vec![bulk("b"), bulk("2")])]),
        ),
        (
            &["HPTTL", "h", "FIELDS", "2", "a", "b"],
            Frame::Array(vec![Frame::Integer(100), Frame::Integer(-1)]),
            Frame::Array(vec![Frame::Integer(-2), Frame::Integer(-1)]),
        ),
    ];
    for may_expire in [false, true] {
        for (cmd, alive, gone) in rows {
            let mut h = Harness::new(T0);
            assert_eq!(h.run(&["HSET", "h", "a", "1", "b", "2"]), Frame::Integer(2));
            assert_eq!(h.run(&["HPEXPIRE", "h", "100", "FIELDS", "1", "a"]), Frame::Array(vec![Frame::Integer(1)]));
            h.may_expire = may_expire;
            assert_eq!(&h.run(cmd), alive, "{cmd:?} before the deadline");
            h.now_ms += 100;
            let logged = h.effects.list.len();
            let digest = h.run(&["DEBUG", "DIGEST"]);
            assert_eq!(&h.run(cmd), gone, "{cmd:?} at the deadline (may expire: {may_expire})");
            if may_expire {
                assert_eq!(effects(&h)[logged..], ["HDEL h a".to_string()], "{cmd:?}");
                assert_ne!(h.run(&["DEBUG", "DIGEST"]), digest, "{cmd:?} removed the field");
            } else {
                assert_eq!(h.effects.list.len(), logged, "{cmd:?} logged something");
                assert_eq!(h.run(&["DEBUG", "DIGEST"]), digest, "{cmd:?} changed the dataset");
            }
        }
    }
    // All fields gone: the key reads as missing; removed where allowed.
    for may_expire in [false, true] {
        let mut h = Harness::new(T0);
        h.run(&["HSET", "h", "a", "1"]);
        h.run(&["HPEXPIRE", "h", "100", "FIELDS", "1", "a"]);
        h.may_expire = may_expire;
        h.now_ms += 100;
        assert_eq!(h.run(&["HGETALL", "h"]), Frame::Array(vec![]));
        assert_eq!(h.run(&["HRANDFIELD", "h"]), Frame::Null);
        assert_eq!(h.run(&["EXISTS", "h"]), Frame::Integer(i64::from(!may_expire)));
    }
}
