//! Table-driven in-process tests with a manual clock for replies where the reference
//! redis-server (7.0) differs from the Redis 7.2 behaviour Tandem targets, or where the reply
//! depends on facts the differential tests cannot compare exactly.

use commands::testing::{bulk, error, simple, Harness};
use protocol::Frame;

fn check(rows: &[(&[&str], Frame)]) {
    let mut h = Harness::new(1_700_000_000_000);
    for (cmd, want) in rows {
        assert_eq!(&h.run(cmd), want, "{cmd:?}");
    }
}

#[test]
fn command_getkeys_follows_redis_7_2() {
    check(&[
        (&["COMMAND", "GETKEYS", "GET"], error("ERR Invalid number of arguments specified for command")),
        (&["COMMAND", "GETKEYS", "PING"], error("ERR The command has no key arguments")),
        (&["COMMAND", "GETKEYSANDFLAGS", "PING"], error("ERR The command has no key arguments")),
        (&["COMMAND", "GETKEYS", "SET", "a", "b"], Frame::Array(vec![bulk("a")])),
        (
            &["COMMAND", "GETKEYSANDFLAGS", "SET", "a", "b", "GET"],
            Frame::Array(vec![Frame::Array(vec![
                bulk("a"),
                Frame::Array(vec![simple("RW"), simple("access"), simple("update")]),
            ])]),
        ),
        (
            &["COMMAND", "GETKEYSANDFLAGS", "BITFIELD", "k", "GET", "u8", "0"],
            Frame::Array(vec![Frame::Array(vec![bulk("k"), Frame::Array(vec![simple("RO"), simple("access")])])]),
        ),
    ]);
}

#[test]
fn command_info_set_has_redis_facts() {
    let mut h = Harness::new(0);
    let Frame::Array(items) = h.run(&["COMMAND", "INFO", "SET"]) else { panic!("array expected") };
    let Frame::Array(info) = &items[0] else { panic!("array expected") };
    assert_eq!(info[0], bulk("set"));
    assert_eq!(info[1], Frame::Integer(-3));
    assert_eq!(info[2], Frame::Array(vec![simple("write"), simple("denyoom")]));
    assert_eq!(&info[3..6], &[Frame::Integer(1), Frame::Integer(1), Frame::Integer(1)]);
    assert_eq!(info[6], Frame::Array(vec![simple("@write"), simple("@string"), simple("@slow")]));
}

#[test]
fn closed_gates_refuse_commands_as_redis_does() {
    use commands::stats::Gate;
    let mut h = Harness::new(0);
    h.run(&["SET", "k", "v"]);
    // While a dataset loads, only commands flagged `loading` run.
    h.host.stats.set_gate(Gate::Loading, true);
    assert_eq!(h.run(&["GET", "k"]), error("LOADING Redis is loading the dataset in memory"));
    assert_eq!(h.run(&["PING"]), error("LOADING Redis is loading the dataset in memory"));
    assert!(matches!(h.run(&["INFO", "server"]), Frame::Bulk(_)));
    h.host.stats.set_gate(Gate::Loading, false);
    assert_eq!(h.run(&["GET", "k"]), bulk("v"));
    // After a failed background save: writes and PING are refused, reads are not.
    h.host.stats.set_gate(Gate::Misconf, true);
    let Frame::Error(e) = h.run(&["SET", "k", "w"]) else { panic!("SET must be refused") };
    assert!(e.starts_with(b"MISCONF Redis is configured to save RDB snapshots"));
    assert!(matches!(h.run(&["PING"]), Frame::Error(e) if e.starts_with(b"MISCONF")));
    assert_eq!(h.run(&["GET", "k"]), bulk("v"));
    h.host.stats.set_gate(Gate::Misconf, false);
    assert_eq!(h.run(&["SET", "k", "w"]), simple("OK"));
}
