//! `INFO` fields that count what happened, compared with redis-server after the same commands.

mod common;

use common::pair;
use testkit::{simple, Frame};

fn info_fields(reply: Frame, names: &[&str]) -> Vec<String> {
    let text = match reply {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(&text).into_owned(),
        other => panic!("INFO returned {other:?}"),
    };
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| names.iter().any(|n| l.starts_with(&format!("{n}:")) || l.starts_with("errorstat_")))
        .map(|l| l.trim().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn error_and_keyspace_counters_match_redis() {
    let (tandem, redis) = pair();
    let script: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["GET", "a"],
        &["GET", "missing"],
        &["NOSUCHCOMMAND"],
        &["GET"],
        &["INCR", "a"],
        &["SET", "s", "x"],
        &["INCR", "s"],
        &["SET", "a", "1", "EX", "0"],
        &["CONFIG", "NOSUCH"],
    ];
    let mut results = Vec::new();
    for server in [&*tandem, &*redis] {
        let mut c = server.client();
        c.send(&["CONFIG", "RESETSTAT"]);
        for cmd in script {
            c.send(cmd);
        }
        results.push(info_fields(
            c.send(&["INFO", "all"]),
            &["keyspace_hits", "keyspace_misses", "total_error_replies", "rdb_changes_since_last_save"],
        ));
    }
    // Both count the same hits, misses and errors (by error code).
    let filt = |v: &Vec<String>| v.iter().filter(|l| !l.starts_with("rdb_changes")).cloned().collect::<Vec<_>>();
    assert_eq!(filt(&results[0]), filt(&results[1]));
    assert!(results[0].iter().any(|l| l.starts_with("errorstat_ERR:count=")), "{:?}", results[0]);
}

/// Commands run by `EXEC` are timed one by one in `INFO commandstats`, as Redis's `call()`
/// times them (and `EXEC` itself covers them all).
#[test]
fn commands_inside_exec_are_timed() {
    let (tandem, redis) = pair();
    for server in [&*tandem, &*redis] {
        let mut c = server.client();
        c.send(&["CONFIG", "RESETSTAT"]);
        c.send(&["MULTI"]);
        c.send(&["DEBUG", "SLEEP", "0.2"]);
        c.send(&["SET", "k", "v"]);
        assert_eq!(c.send(&["EXEC"]), Frame::Array(vec![simple("OK"), simple("OK")]));
        let stats = info_fields(c.send(&["INFO", "commandstats"]), &["cmdstat_debug", "cmdstat_exec"]);
        let usec = |name: &str| -> u64 {
            let line = stats.iter().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {stats:?}"));
            assert!(line.contains("calls=1,"), "{line}");
            line.split("usec=").nth(1).and_then(|r| r.split(',').next()).and_then(|n| n.parse().ok()).unwrap()
        };
        assert!(usec("cmdstat_debug:") >= 150_000, "{stats:?}");
        assert!(usec("cmdstat_exec:") >= 150_000, "{stats:?}");
    }
}
