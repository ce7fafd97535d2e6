//! The list-append checker on hand-written histories: one good, and one per kind of anomaly.

use std::collections::BTreeMap;

use chaos::append::ReadId;
use chaos::{check_append, AppendAnomaly, Event, Kind, F};
use serde_json::{json, Value};

fn ev(time: u64, process: u64, kind: Kind, f: F, key: &str, value: Value) -> Event {
    Event { index: Some(time), time, process, kind, f, key: key.into(), value, node: None, error: None }
}

use Kind::{Fail, Info, Invoke as I, Ok};
use F::{Append as A, Read as R};

/// Appends a (acked), b (indeterminate, took effect), c (failed), d (acked); reads concurrent
/// with appends that miss them; a second key read while absent.
fn good() -> Vec<Event> {
    vec![
        ev(1, 0, I, A, "k", json!("a")),
        ev(2, 1, I, R, "k", Value::Null),
        ev(3, 0, Ok, A, "k", json!("a")),
        ev(4, 1, Ok, R, "k", json!([])),
        ev(5, 1, I, R, "k", Value::Null),
        ev(6, 2, I, A, "k", json!("b")),
        ev(7, 1, Ok, R, "k", json!(["a"])),
        ev(8, 2, Info, A, "k", json!("b")),
        ev(9, 3, I, A, "k", json!("c")),
        ev(10, 3, Fail, A, "k", json!("c")),
        ev(11, 4, I, A, "k", json!("d")),
        ev(12, 4, Ok, A, "k", json!("d")),
        ev(13, 1, I, R, "k", Value::Null),
        ev(14, 1, Ok, R, "k", json!(["a", "b", "d"])),
        ev(15, 1, I, R, "j", Value::Null),
        ev(16, 1, Ok, R, "j", Value::Null),
    ]
}

fn anomalies(events: &[Event], finals: Option<&BTreeMap<String, Vec<String>>>) -> Vec<AppendAnomaly> {
    let report = check_append(events, finals);
    assert!(report.errors.is_empty(), "{report}");
    report.anomalies
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn good_history_passes() {
    let report = check_append(&good(), None);
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.keys, report.appends, report.reads), (2, 3, 4));
    let finals = BTreeMap::from([("k".to_string(), strings(&["a", "b", "d"]))]);
    let report = check_append(&good(), Some(&finals));
    assert!(report.is_ok(), "{report}");
}

#[test]
fn lost_acked_append_is_rejected() {
    // d is acknowledged while the last read runs, so only the final-read rule catches it.
    let mut h = good();
    h[11].time = 13;
    h[12].time = 12;
    h[13].value = json!(["a", "b"]);
    h.swap(11, 12);
    let key = "k".to_string();
    assert_eq!(
        anomalies(&h, None),
        vec![AppendAnomaly::Lost { key, read: ReadId::Event(13), missing: strings(&["d"]) }]
    );
}

#[test]
fn lost_acked_append_in_explicit_final_read_is_rejected() {
    let finals = BTreeMap::from([("k".to_string(), strings(&["a", "b"]))]);
    let a = AppendAnomaly::Lost { key: "k".into(), read: ReadId::Final, missing: strings(&["d"]) };
    assert_eq!(anomalies(&good(), Some(&finals)), vec![a]);
}

#[test]
fn read_that_is_not_a_prefix_is_rejected() {
    let mut h = good();
    // Overlaps the read of [a, b, d], so real time does not force b into it.
    h.push(ev(14, 5, I, R, "k", Value::Null));
    h.push(ev(18, 5, Ok, R, "k", json!(["a", "d"])));
    // Keep the longer read as the final one.
    h.push(ev(19, 1, I, R, "k", Value::Null));
    h.push(ev(20, 1, Ok, R, "k", json!(["a", "b", "d"])));
    assert_eq!(
        anomalies(&h, None),
        vec![AppendAnomaly::NotPrefix {
            key: "k".into(),
            read: ReadId::Event(14),
            longest: ReadId::Event(13),
            position: 1
        }]
    );
}

#[test]
fn duplicate_element_is_rejected() {
    let mut h = good();
    h[13].value = json!(["a", "b", "d", "a"]);
    let a = AppendAnomaly::Duplicate { key: "k".into(), read: ReadId::Event(13), element: "a".into() };
    assert_eq!(anomalies(&h, None), vec![a]);
}

#[test]
fn never_attempted_element_is_rejected() {
    let mut h = good();
    h[13].value = json!(["a", "b", "d", "z"]);
    let a =
        AppendAnomaly::NeverAttempted { key: "k".into(), read: ReadId::Event(13), element: "z".into(), failed: false };
    assert_eq!(anomalies(&h, None), vec![a]);
}

#[test]
fn element_of_a_failed_append_is_rejected() {
    let mut h = good();
    h[13].value = json!(["a", "b", "d", "c"]);
    let a =
        AppendAnomaly::NeverAttempted { key: "k".into(), read: ReadId::Event(13), element: "c".into(), failed: true };
    assert_eq!(anomalies(&h, None), vec![a]);
    assert!(check_append(&h, None).to_string().contains("reported failed"));
}

#[test]
fn read_missing_an_earlier_acked_append_is_rejected() {
    // a was acknowledged at 3; a read invoked at 5 must see it.
    let mut h = good();
    h[6].value = json!([]);
    let a = AppendAnomaly::RealTime { key: "k".into(), read: ReadId::Event(5), missing: strings(&["a"]) };
    assert_eq!(anomalies(&h, None), vec![a]);
}

#[test]
fn read_missing_what_an_earlier_read_saw_is_rejected() {
    // b is never acknowledged, but once a finished read has returned it, later reads must too.
    let mut h = good();
    h.push(ev(17, 5, I, R, "k", Value::Null));
    h.push(ev(18, 5, Ok, R, "k", json!(["a"])));
    h.push(ev(19, 1, I, R, "k", Value::Null));
    h.push(ev(20, 1, Ok, R, "k", json!(["a", "b", "d"])));
    let a = AppendAnomaly::RealTime { key: "k".into(), read: ReadId::Event(17), missing: strings(&["b", "d"]) };
    // b only witnessed, d acknowledged: both reported.
    assert_eq!(anomalies(&h, None), vec![a]);
}

#[test]
fn missing_final_read_is_reported() {
    let finals = BTreeMap::from([("j".to_string(), Vec::new())]);
    assert_eq!(anomalies(&good(), Some(&finals)), vec![AppendAnomaly::NoFinalRead { key: "k".into(), acked: 2 }]);
}
