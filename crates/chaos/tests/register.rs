//! Randomised tests of the register checker: simulated linearizable histories must pass, and
//! single mutations that no register can explain must fail.

mod common;

use chaos::{check_register, Kind, Report, Verdict, F};
use common::{ok_events_by_key, simulate, Sim};
use proptest::prelude::*;
use serde_json::json;

fn sims() -> impl Strategy<Value = (u64, Sim)> {
    (any::<u64>(), 1usize..=6, 1usize..=3, 1usize..=80, 0u64..=15, 0u64..=20).prop_map(
        |(seed, processes, keys, ops, info_pct, fail_pct)| (seed, Sim { processes, keys, ops, info_pct, fail_pct }),
    )
}

fn all_decided(report: &Report) -> bool {
    report.unknown_keys().is_empty()
}

proptest! {
    #[test]
    fn simulated_histories_are_linearizable((seed, sim) in sims()) {
        let events = simulate(seed, &sim);
        let report = check_register(&events);
        prop_assert!(report.is_ok(), "{}\n{}", report, chaos::to_jsonl(&events));
    }

    #[test]
    fn a_read_of_a_never_written_value_is_illegal((seed, sim) in sims(), pick in any::<prop::sample::Index>()) {
        let mut events = simulate(seed, &sim);
        let reads: Vec<usize> = ok_events_by_key(&events, F::Get).into_values().flatten().collect();
        prop_assume!(!reads.is_empty());
        let i = reads[pick.index(reads.len())];
        events[i].value = json!(-1);
        let report = check_register(&events);
        prop_assert!(all_decided(&report), "{}", report);
        prop_assert_eq!(report.illegal_keys(), vec![events[i].key.as_str()], "{}", report);
    }

    #[test]
    fn two_incrs_returning_the_same_value_are_illegal((seed, sim) in sims(), pick in any::<prop::sample::Index>()) {
        let mut events = simulate(seed, &sim);
        let pairs: Vec<(usize, usize)> = ok_events_by_key(&events, F::Incr)
            .into_values()
            .flat_map(|v| v.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>())
            .collect();
        prop_assume!(!pairs.is_empty());
        let (a, b) = pairs[pick.index(pairs.len())];
        events[b].value = events[a].value.clone();
        let report = check_register(&events);
        prop_assert!(all_decided(&report), "{}", report);
        prop_assert_eq!(report.illegal_keys(), vec![events[b].key.as_str()], "{}", report);
    }
}

#[test]
fn the_simulation_covers_every_outcome() {
    // The properties above only mean something if the generator produces indeterminate and
    // failed operations and concurrency.
    let events = simulate(7, &Sim { processes: 6, keys: 2, ops: 2000, info_pct: 10, fail_pct: 10 });
    for kind in [Kind::Ok, Kind::Fail, Kind::Info] {
        assert!(events.iter().any(|e| e.kind == kind), "{kind:?}");
    }
    let unfinished = chaos::pair(&events).unwrap().iter().filter(|o| o.ret.is_none()).count();
    let infos = events.iter().filter(|e| e.kind == Kind::Info && e.f != F::Get).count();
    assert!(unfinished > infos, "some writes never complete");
    let report = check_register(&events);
    assert!(report.is_ok(), "{report}");
    let overlapping = report.keys.iter().any(|k| k.ops.windows(2).any(|w| w[0].ret.is_some_and(|r| r > w[1].call)));
    assert!(overlapping);
}

#[test]
fn verdicts_carry_a_replayable_order() {
    let events = simulate(11, &Sim { processes: 5, keys: 3, ops: 300, info_pct: 5, fail_pct: 5 });
    let report = check_register(&events);
    for k in &report.keys {
        let Verdict::Ok { order } = &k.verdict else { panic!("{report}") };
        let mut state = None;
        for &i in order {
            state = chaos::wgl::step(state, k.ops[i].input, k.ops[i].output).expect("replays");
        }
        // Real time: an op never comes after one that was invoked after it returned.
        for (n, &i) in order.iter().enumerate() {
            for &j in &order[n + 1..] {
                assert!(k.ops[i].call <= k.ops[j].ret.unwrap_or(u64::MAX), "op {j} precedes {i}");
            }
        }
    }
}
