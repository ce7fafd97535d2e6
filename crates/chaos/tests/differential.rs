//! Differential test: our checker and todc-utils' WGLChecker must agree on small random
//! register histories, with the model written out independently for todc.

use chaos::wgl::{check_ops, Budget, RegisterInput, RegisterOp, RegisterOutput, Verdict};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use todc_utils::{Action, History, Specification, WGLChecker};

struct Register;

impl Specification for Register {
    type State = Option<i64>;
    type Operation = (RegisterInput, RegisterOutput);

    fn init() -> Self::State {
        None
    }

    fn apply(&(input, output): &Self::Operation, state: &Self::State) -> (bool, Self::State) {
        let s = *state;
        let (valid, next) = match (input, output) {
            (RegisterInput::Get, RegisterOutput::Value(v)) => (v == s, s),
            (RegisterInput::Get, _) => (true, s),
            (RegisterInput::Set(v), _) => (true, Some(v)),
            (RegisterInput::Incr, RegisterOutput::Value(v)) => {
                (v == Some(s.unwrap_or(0) + 1), Some(s.unwrap_or(0) + 1))
            }
            (RegisterInput::Incr, _) => (true, Some(s.unwrap_or(0) + 1)),
            (RegisterInput::Cas(old, new), RegisterOutput::Unknown) => (true, if s == old { Some(new) } else { s }),
            (RegisterInput::Cas(old, new), _) => (s == old, Some(new)),
        };
        (valid, if valid { next } else { s })
    }
}

fn small() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![Just(None), (1i64..=3).prop_map(Some)]
}

fn op() -> impl Strategy<Value = RegisterOp> {
    let io = prop_oneof![
        small().prop_map(|v| (RegisterInput::Get, RegisterOutput::Value(v))),
        (1i64..=3, any::<bool>()).prop_map(|(v, u)| {
            (RegisterInput::Set(v), if u { RegisterOutput::Unknown } else { RegisterOutput::Done })
        }),
        (1i64..=4, any::<bool>()).prop_map(|(v, u)| {
            (RegisterInput::Incr, if u { RegisterOutput::Unknown } else { RegisterOutput::Value(Some(v)) })
        }),
        (small(), 1i64..=3, any::<bool>()).prop_map(|(a, b, u)| {
            (RegisterInput::Cas(a, b), if u { RegisterOutput::Unknown } else { RegisterOutput::Done })
        }),
    ];
    (0u64..20, 0u64..8, io).prop_map(|(call, len, (input, output))| {
        // Indeterminate operations never return, as the conversion rules say.
        let ret = (output != RegisterOutput::Unknown).then_some(call + len);
        RegisterOp { index: 0, process: 0, call, ret, input, output }
    })
}

fn todc_verdict(ops: &[RegisterOp]) -> bool {
    let mut entries: Vec<(bool, u64, u8, usize)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        entries.push((false, o.call, 0, i));
        entries.push((o.ret.is_none(), o.ret.unwrap_or(0), 1, i));
    }
    entries.sort();
    let actions = entries
        .into_iter()
        .map(|(_, _, ret, i)| {
            let operation = (ops[i].input, ops[i].output);
            (i, if ret == 0 { Action::Call(operation) } else { Action::Response(operation) })
        })
        .collect();
    WGLChecker::<Register>::is_linearizable(History::from_actions(actions))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn agrees_with_todc(ops in prop::collection::vec(op(), 1..8)) {
        let ours = check_ops(&ops, &Budget::default());
        prop_assert!(!matches!(ours, Verdict::Unknown { .. }), "budget ran out");
        prop_assert_eq!(matches!(ours, Verdict::Ok { .. }), todc_verdict(&ops), "{:?}", ops);
    }
}

#[test]
fn both_outcomes_occur() {
    // Without both verdicts in the mix the property above would compare nothing.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(op(), 1..8);
    let (mut ok, mut illegal) = (0, 0);
    for _ in 0..500 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        match check_ops(&ops, &Budget::default()) {
            Verdict::Ok { .. } => ok += 1,
            _ => illegal += 1,
        }
    }
    assert!(ok > 50 && illegal > 50, "{ok} ok, {illegal} illegal");
}
