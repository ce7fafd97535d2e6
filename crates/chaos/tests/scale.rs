//! A register history of the size a CI scenario produces, checked in one go.

mod common;

use chaos::check_register;
use common::{simulate, Sim};

#[test]
fn twenty_thousand_ops_over_a_hundred_keys() {
    let events = simulate(2024, &Sim { processes: 8, keys: 100, ops: 20_000, info_pct: 1, fail_pct: 2 });
    let report = check_register(&events);
    assert_eq!(report.keys.len(), 100);
    assert!(report.is_ok(), "{report}");
}
