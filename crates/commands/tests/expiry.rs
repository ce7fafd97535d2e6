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
