//! The fixture histories of CLUSTER-TESTING.md 2.1.

use chaos::{check_register, parse_jsonl, Report, Verdict};

fn check(name: &str) -> Report {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    check_register(&parse_jsonl(&text).unwrap())
}

#[test]
fn ok_fixture_is_linearizable() {
    let report = check("ok.jsonl");
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.keys.len(), 2);
    // 7 ops on x survive the conversion (the failed cas is dropped), 3 on y.
    assert_eq!(report.key("x").unwrap().ops.len(), 7);
    assert_eq!(report.key("y").unwrap().ops.len(), 3);
    assert!(report.to_string().starts_with("register: OK (2 keys"), "{report}");
}

#[test]
fn ok_fixture_linearization_respects_the_model() {
    let report = check("ok.jsonl");
    let x = report.key("x").unwrap();
    let Verdict::Ok { order } = &x.verdict else { panic!("{report}") };
    let mut state = None;
    for &i in order {
        state = chaos::wgl::step(state, x.ops[i].input, x.ops[i].output).expect("order replays");
    }
    assert_eq!(order.len(), x.ops.len());
}

#[test]
fn bad_fixture_is_illegal_on_both_keys() {
    let report = check("bad.jsonl");
    assert!(!report.is_ok());
    assert_eq!(report.illegal_keys(), vec!["x", "y"], "{report}");
    let shown = report.to_string();
    assert!(shown.starts_with("register: FAILED (2 keys, 5 ops: 0 ok, 2 illegal"), "{shown}");
    assert!(shown.contains("key x: NOT LINEARIZABLE"), "{shown}");
}

#[test]
fn bad_stale_fixture_is_illegal() {
    let report = check("bad_stale.jsonl");
    assert_eq!(report.illegal_keys(), vec!["x"], "{report}");
    assert_eq!(report.keys.len(), 1);
    let Verdict::Illegal(ill) = &report.key("x").unwrap().verdict else { unreachable!() };
    // set 1 and the read of 1 linearize; the later read of nil cannot.
    assert_eq!(ill.prefix, vec![0, 1]);
    assert_eq!(ill.blocked, 2);
}

#[test]
fn bad_incr_fixture_is_illegal() {
    let report = check("bad_incr.jsonl");
    assert_eq!(report.illegal_keys(), vec!["y"], "{report}");
    assert_eq!(report.keys.len(), 1);
}
