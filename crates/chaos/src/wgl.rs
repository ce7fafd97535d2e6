//! Linearizability of register histories: Wing & Gong's backtracking search with Lowe's memo of
//! `(linearized set, state)`, run per key since a history is linearizable iff each key's
//! sub-history is (Herlihy & Wing's locality; Horn & Kroening's P-compositionality).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::history::{self, as_int, Event, Op, Output, F};

/// A register's state: `None` while the key is absent.
pub type State = Option<i64>;

/// What a register operation asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterInput {
    /// Read the value.
    Get,
    /// Write a value.
    Set(i64),
    /// Add one, an absent key counting as 0.
    Incr,
    /// Write `new` if the value is `old` (`None`: absent).
    Cas(Option<i64>, i64),
}

/// What a register operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOutput {
    /// A get's value or an incr's result.
    Value(Option<i64>),
    /// A set or a successful cas.
    Done,
    /// Indeterminate: any result, but the effect applies wherever it is linearized.
    Unknown,
}

/// One register operation of one key.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterOp {
    /// Event index of the invocation, for reports.
    pub index: u64,
    /// Process that ran it.
    pub process: u64,
    /// Invocation time.
    pub call: u64,
    /// Completion time; `None` = +infinity.
    pub ret: Option<u64>,
    /// The request.
    pub input: RegisterInput,
    /// The reply.
    pub output: RegisterOutput,
}

impl RegisterOp {
    /// Types a paired operation; errors name the event when a value has the wrong shape.
    pub fn from_op(op: &Op) -> Result<Self, String> {
        let bad = |what: &str| format!("event {}: {} on {}: {what}", op.index, op.f, op.key);
        let int = |v: &Value, what: &str| as_int(v).ok_or_else(|| bad(&format!("{what} {v} is not an integer")));
        let input = match op.f {
            F::Get => RegisterInput::Get,
            F::Set => RegisterInput::Set(int(&op.input, "value")?),
            F::Incr => RegisterInput::Incr,
            F::Cas => match &op.input {
                Value::Array(pair) if pair.len() == 2 => {
                    let old = if pair[0].is_null() { None } else { Some(int(&pair[0], "old value")?) };
                    RegisterInput::Cas(old, int(&pair[1], "new value")?)
                }
                v => return Err(bad(&format!("value {v} is not [old, new]"))),
            },
            _ => return Err(bad("not a register operation")),
        };
        let output = match (&op.output, input) {
            (Output::Unknown, _) => RegisterOutput::Unknown,
            (Output::Known(Value::Null), RegisterInput::Get) => RegisterOutput::Value(None),
            (Output::Known(v), RegisterInput::Get | RegisterInput::Incr) => {
                RegisterOutput::Value(Some(int(v, "result")?))
            }
            (Output::Known(_), _) => RegisterOutput::Done,
        };
        Ok(RegisterOp { index: op.index, process: op.process, call: op.call, ret: op.ret, input, output })
    }
}

/// The register model: the state after applying `input` with result `output` to `state`, or
/// `None` if that result is impossible there.
pub fn step(state: State, input: RegisterInput, output: RegisterOutput) -> Option<State> {
    match input {
        RegisterInput::Get => match output {
            RegisterOutput::Value(v) => (v == state).then_some(state),
            _ => Some(state),
        },
        RegisterInput::Set(v) => Some(Some(v)),
        RegisterInput::Incr => {
            // Redis refuses to overflow, so an incr at i64::MAX cannot have succeeded.
            let n = state.unwrap_or(0).checked_add(1)?;
            match output {
                RegisterOutput::Value(v) => (v == Some(n)).then_some(Some(n)),
                _ => Some(Some(n)),
            }
        }
        RegisterInput::Cas(old, new) => match output {
            // An indeterminate cas that finds another value simply did nothing.
            RegisterOutput::Unknown => Some(if state == old { Some(new) } else { state }),
            _ => (state == old).then_some(Some(new)),
        },
    }
}

/// How much search one key may use before its verdict becomes [`Verdict::Unknown`]. The search
/// is exponential in the worst case (the problem is NP-complete), and the memo grows by at most
/// one entry per step, so the step cap also caps memory.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Loop iterations per key.
    pub max_steps: u64,
    /// Wall-clock limit per key, from the start of that key's search.
    pub time_limit: Option<Duration>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { max_steps: 2_000_000, time_limit: Some(Duration::from_secs(10)) }
    }
}

/// Why a key could not be linearized: the deepest dead end of the search.
#[derive(Clone, Debug, PartialEq)]
pub struct Illegal {
    /// The longest linearized prefix found (indices into the key's operations).
    pub prefix: Vec<usize>,
    /// The register after that prefix.
    pub state: State,
    /// The operation whose return was reached before it could be linearized.
    pub blocked: usize,
    /// Operations not in the prefix that were invoked before `blocked` returned: none of them
    /// can come next.
    pub pending: Vec<usize>,
}

/// The outcome for one key.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Linearizable; `order` is one linearization (indices into the key's operations).
    Ok {
        /// Operations in linearization order.
        order: Vec<usize>,
    },
    /// Not linearizable.
    Illegal(Box<Illegal>),
    /// The budget ran out first.
    Unknown {
        /// What ran out.
        reason: String,
    },
}

/// One key's operations and verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyResult {
    /// The key.
    pub key: String,
    /// Its operations, in invocation order.
    pub ops: Vec<RegisterOp>,
    /// The outcome.
    pub verdict: Verdict,
}

/// The outcome for a whole register history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// One result per key, sorted by key.
    pub keys: Vec<KeyResult>,
    /// Malformed history: pairing errors, or operations whose values have the wrong shape (their
    /// keys are left unchecked).
    pub errors: Vec<String>,
}

impl Report {
    /// Every key linearizable and the history well formed.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty() && self.keys.iter().all(|k| matches!(k.verdict, Verdict::Ok { .. }))
    }

    /// The result for one key.
    pub fn key(&self, key: &str) -> Option<&KeyResult> {
        self.keys.iter().find(|k| k.key == key)
    }

    /// Keys whose verdict is [`Verdict::Illegal`].
    pub fn illegal_keys(&self) -> Vec<&str> {
        self.keys.iter().filter(|k| matches!(k.verdict, Verdict::Illegal(_))).map(|k| k.key.as_str()).collect()
    }

    /// Keys whose verdict is [`Verdict::Unknown`].
    pub fn unknown_keys(&self) -> Vec<&str> {
        self.keys.iter().filter(|k| matches!(k.verdict, Verdict::Unknown { .. })).map(|k| k.key.as_str()).collect()
    }
}

/// Checks every key of a register history (`get`, `set`, `incr`, `cas`; other functions are
/// ignored) with the default [`Budget`].
pub fn check_register(events: &[Event]) -> Report {
    check_register_with(events, &Budget::default())
}

/// [`check_register`] with a chosen budget per key.
pub fn check_register_with(events: &[Event], budget: &Budget) -> Report {
    let mut report = Report::default();
    let ops = match history::pair(events) {
        Ok(ops) => ops,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let mut by_key: BTreeMap<String, Vec<RegisterOp>> = BTreeMap::new();
    let mut broken = Vec::new();
    for op in ops.iter().filter(|o| matches!(o.f, F::Get | F::Set | F::Incr | F::Cas)) {
        match RegisterOp::from_op(op) {
            Ok(r) => by_key.entry(op.key.clone()).or_default().push(r),
            Err(e) => {
                report.errors.push(e);
                broken.push(op.key.clone());
            }
        }
    }
    for key in broken {
        if by_key.remove(&key).is_some() {
            report.errors.push(format!("key {key} left unchecked"));
        }
    }
    report.keys = check_keys(by_key, budget);
    report
}

/// Checks keys independently, spread over the machine's cores.
pub fn check_keys(keys: BTreeMap<String, Vec<RegisterOp>>, budget: &Budget) -> Vec<KeyResult> {
    let work: Vec<(String, Vec<RegisterOp>)> = keys.into_iter().collect();
    let threads = thread::available_parallelism().map_or(1, |n| n.get()).min(work.len()).max(1);
    let next = AtomicUsize::new(0);
    let mut verdicts: Vec<Option<Verdict>> = vec![None; work.len()];
    thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, ops)) = work.get(i) else { break };
                        done.push((i, check_ops(ops, budget)));
                    }
                    done
                })
            })
            .collect();
        for w in workers {
            for (i, v) in w.join().expect("checker thread panicked") {
                verdicts[i] = Some(v);
            }
        }
    });
    work.into_iter()
        .zip(verdicts)
        .map(|((key, ops), v)| KeyResult { key, ops, verdict: v.expect("every key was checked") })
        .collect()
}

const NIL: usize = usize::MAX;

fn is_call(entry: usize) -> bool {
    entry.is_multiple_of(2)
}

// The history as a doubly linked list of call and return entries in time order. Entry `2i` is the
// call of operation `i` and `2i + 1` its return, so lifting an operation needs no lookups.
// Unlinked entries keep their own pointers, so relinking in reverse order restores the list
// (Knuth's dancing links); the search's stack discipline guarantees that order.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    head: usize,
}

impl Entries {
    fn new(ops: &[RegisterOp]) -> Self {
        let n = ops.len();
        let mut order: Vec<usize> = (0..2 * n).collect();
        // Ties put calls before returns: operations touching in time count as concurrent.
        order.sort_by_key(|&e| {
            let op = &ops[e / 2];
            let time = if is_call(e) { Some(op.call) } else { op.ret };
            (time.is_none(), time.unwrap_or(0), !is_call(e), e)
        });
        let head = 2 * n;
        let mut next = vec![NIL; 2 * n + 1];
        let mut prev = vec![NIL; 2 * n + 1];
        let mut last = head;
        for e in order {
            next[last] = e;
            prev[e] = last;
            last = e;
        }
        Entries { next, prev, head }
    }

    fn unlink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        if n != NIL {
            self.prev[n] = x;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(call + 1);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(call + 1);
        self.relink(call);
    }

    fn first(&self) -> usize {
        self.next[self.head]
    }
}

/// Checks one key's operations.
pub fn check_ops(ops: &[RegisterOp], budget: &Budget) -> Verdict {
    let started = Instant::now();
    let mut list = Entries::new(ops);
    let mut lin = vec![0u64; ops.len().div_ceil(64)];
    let mut cache: HashSet<(Box<[u64]>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut deepest: Option<Illegal> = None;
    let mut steps: u64 = 0;
    let mut e = list.first();
    while e != NIL {
        steps += 1;
        if steps > budget.max_steps {
            return Verdict::Unknown { reason: format!("step budget of {} exhausted", budget.max_steps) };
        }
        if steps.is_multiple_of(4096) {
            if let Some(limit) = budget.time_limit.filter(|&l| started.elapsed() > l) {
                return Verdict::Unknown { reason: format!("time limit of {limit:?} exceeded after {steps} steps") };
            }
        }
        let i = e / 2;
        if is_call(e) {
            if let Some(next_state) = step(state, ops[i].input, ops[i].output) {
                lin[i / 64] |= 1 << (i % 64);
                if cache.insert((lin.clone().into_boxed_slice(), next_state)) {
                    stack.push((e, state));
                    state = next_state;
                    list.lift(e);
                    e = list.first();
                    continue;
                }
                lin[i / 64] &= !(1 << (i % 64));
            }
            // A call's own return is still listed after it, so this never runs off the end.
            e = list.next[e];
        } else {
            if deepest.as_ref().is_none_or(|d| stack.len() > d.prefix.len()) {
                deepest = Some(dead_end(&list, &stack, state, e));
            }
            let Some((call, prev_state)) = stack.pop() else {
                return Verdict::Illegal(Box::new(deepest.expect("recorded above")));
            };
            let j = call / 2;
            lin[j / 64] &= !(1 << (j % 64));
            state = prev_state;
            list.unlift(call);
            e = list.next[call];
        }
    }
    Verdict::Ok { order: stack.iter().map(|&(call, _)| call / 2).collect() }
}

fn dead_end(list: &Entries, stack: &[(usize, State)], state: State, ret: usize) -> Illegal {
    let mut pending = Vec::new();
    let mut e = list.first();
    while e != ret {
        if is_call(e) {
            pending.push(e / 2);
        }
        e = list.next[e];
    }
    Illegal { prefix: stack.iter().map(|&(call, _)| call / 2).collect(), state, blocked: ret / 2, pending }
}

struct ShowState(State);

impl fmt::Display for ShowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("nil"),
        }
    }
}

impl fmt::Display for RegisterInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegisterInput::Get => f.write_str("get"),
            RegisterInput::Set(v) => write!(f, "set {v}"),
            RegisterInput::Incr => f.write_str("incr"),
            RegisterInput::Cas(old, new) => write!(f, "cas {}->{new}", ShowState(old)),
        }
    }
}

impl fmt::Display for RegisterOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegisterOutput::Value(v) => write!(f, "{}", ShowState(v)),
            RegisterOutput::Done => f.write_str("ok"),
            RegisterOutput::Unknown => f.write_str("?"),
        }
    }
}

impl fmt::Display for RegisterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} p{} {} -> {} @{}..", self.index, self.process, self.input, self.output, self.call)?;
        match self.ret {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("inf"),
        }
    }
}

// A long prefix is mostly noise: the anomaly sits at its end.
const PREFIX_SHOWN: usize = 12;

impl fmt::Display for KeyResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Ok { .. } => write!(f, "key {}: ok ({} ops)", self.key, self.ops.len()),
            Verdict::Unknown { reason } => write!(f, "key {}: UNKNOWN ({} ops): {reason}", self.key, self.ops.len()),
            Verdict::Illegal(ill) => {
                writeln!(
                    f,
                    "key {}: NOT LINEARIZABLE: at most {} of {} ops linearize",
                    self.key,
                    ill.prefix.len(),
                    self.ops.len()
                )?;
                let skip = ill.prefix.len().saturating_sub(PREFIX_SHOWN);
                writeln!(
                    f,
                    "  longest linearized prefix{}:",
                    if skip > 0 { format!(" ({skip} earlier ops elided)") } else { String::new() }
                )?;
                for &i in &ill.prefix[skip..] {
                    writeln!(f, "    {}", self.ops[i])?;
                }
                writeln!(f, "  state after it: {}", ShowState(ill.state))?;
                writeln!(f, "  then this op returns before it could be linearized: {}", self.ops[ill.blocked])?;
                write!(f, "  ops invoked before that return, none of which can come next:")?;
                for &i in &ill.pending {
                    write!(f, "\n    {}", self.ops[i])?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let illegal = self.illegal_keys().len();
        let unknown = self.unknown_keys().len();
        let ops: usize = self.keys.iter().map(|k| k.ops.len()).sum();
        write!(
            f,
            "register: {} ({} keys, {} ops: {} ok, {illegal} illegal, {unknown} unknown; {} history errors)",
            if self.is_ok() { "OK" } else { "FAILED" },
            self.keys.len(),
            ops,
            self.keys.len() - illegal - unknown,
            self.errors.len()
        )?;
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        for k in self.keys.iter().filter(|k| !matches!(k.verdict, Verdict::Ok { .. })) {
            write!(f, "\n{k}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegisterInput::*;
    use RegisterOutput::*;

    fn op(call: u64, ret: Option<u64>, input: RegisterInput, output: RegisterOutput) -> RegisterOp {
        RegisterOp { index: call, process: 0, call, ret, input, output }
    }

    fn verdict(ops: &[RegisterOp]) -> Verdict {
        check_ops(ops, &Budget::default())
    }

    #[test]
    fn model() {
        assert_eq!(step(None, Get, Value(None)), Some(None));
        assert_eq!(step(Some(1), Get, Value(None)), None);
        assert_eq!(step(None, Incr, Value(Some(1))), Some(Some(1)));
        assert_eq!(step(Some(4), Incr, Value(Some(4))), None);
        assert_eq!(step(Some(i64::MAX), Incr, Unknown), None);
        assert_eq!(step(Some(2), Cas(Some(2), 3), Done), Some(Some(3)));
        assert_eq!(step(Some(1), Cas(Some(2), 3), Done), None);
        assert_eq!(step(None, Cas(None, 3), Done), Some(Some(3)));
        assert_eq!(step(Some(1), Cas(Some(2), 3), Unknown), Some(Some(1)));
        assert_eq!(step(Some(2), Cas(Some(2), 3), Unknown), Some(Some(3)));
        assert_eq!(step(Some(2), Set(5), Unknown), Some(Some(5)));
    }

    #[test]
    fn ok_gives_a_valid_order() {
        // Both reads overlap the write; the one that saw 1 must be ordered after it.
        let ops =
            [op(0, Some(10), Set(1), Done), op(1, Some(3), Get, Value(Some(1))), op(2, Some(4), Get, Value(None))];
        let Verdict::Ok { order } = verdict(&ops) else { panic!() };
        assert_eq!(order, vec![2, 0, 1]);
    }

    #[test]
    fn touching_ops_are_concurrent() {
        // The read returns at the instant the write is invoked, so either order is allowed.
        let ops = [op(0, Some(5), Get, Value(Some(1))), op(5, Some(6), Set(1), Done)];
        assert!(matches!(verdict(&ops), Verdict::Ok { .. }));
        let ops = [op(0, Some(4), Get, Value(Some(1))), op(5, Some(6), Set(1), Done)];
        assert!(matches!(verdict(&ops), Verdict::Illegal(_)));
    }

    #[test]
    fn indeterminate_write_may_or_may_not_apply() {
        let lost = [op(0, None, Set(1), Unknown), op(5, Some(6), Get, Value(None))];
        assert!(matches!(verdict(&lost), Verdict::Ok { .. }));
        let late =
            [op(0, None, Set(1), Unknown), op(5, Some(6), Get, Value(None)), op(7, Some(8), Get, Value(Some(1)))];
        assert!(matches!(verdict(&late), Verdict::Ok { .. }));
        let undone =
            [op(0, None, Set(1), Unknown), op(5, Some(6), Get, Value(Some(1))), op(7, Some(8), Get, Value(None))];
        assert!(matches!(verdict(&undone), Verdict::Illegal(_)));
    }

    #[test]
    fn illegal_report_points_at_the_stale_read() {
        let ops = [
            op(0, Some(1), Set(1), Done),
            op(2, Some(3), Get, Value(Some(1))),
            op(4, Some(9), Set(2), Done),
            op(5, Some(6), Get, Value(None)),
        ];
        let Verdict::Illegal(ill) = verdict(&ops) else { panic!() };
        // The deepest dead end: the write of 2 fits too, and then nothing explains the nil.
        assert_eq!(ill.prefix, vec![0, 1, 2]);
        assert_eq!(ill.state, Some(2));
        assert_eq!(ill.blocked, 3);
        assert_eq!(ill.pending, vec![3]);
        let shown = KeyResult { key: "k".into(), ops: ops.to_vec(), verdict: Verdict::Illegal(ill) }.to_string();
        assert!(shown.contains("#5 p0 get -> nil @5..6"), "{shown}");
    }

    #[test]
    fn budget_exhaustion_is_unknown() {
        // Many concurrent indeterminate writes and a read nobody wrote: the memo still has to
        // visit every subset of the writes before giving up.
        let mut ops: Vec<_> = (0..20).map(|i| op(i, None, Set(i as i64), Unknown)).collect();
        ops.push(op(30, Some(31), Get, Value(Some(-1))));
        let tight = Budget { max_steps: 1000, time_limit: None };
        assert!(matches!(check_ops(&ops, &tight), Verdict::Unknown { .. }));
        let timed = Budget { max_steps: u64::MAX, time_limit: Some(Duration::ZERO) };
        assert!(matches!(check_ops(&ops, &timed), Verdict::Unknown { .. }));
    }

    #[test]
    fn malformed_values_are_errors_not_verdicts() {
        let h = r#"{"time":0,"process":0,"type":"invoke","f":"set","key":"a","value":"x"}
{"time":1,"process":0,"type":"ok","f":"set","key":"a","value":"x"}
{"time":1,"process":0,"type":"invoke","f":"get","key":"a"}
{"time":1,"process":0,"type":"ok","f":"get","key":"a","value":null}
{"time":2,"process":0,"type":"invoke","f":"get","key":"b"}
{"time":3,"process":0,"type":"ok","f":"get","key":"b","value":null}"#;
        let report = check_register(&history::parse_jsonl(h).unwrap());
        assert!(!report.is_ok());
        assert_eq!(report.keys.len(), 1);
        assert_eq!(report.keys[0].key, "b");
        assert_eq!(report.errors.len(), 2, "{report}");
        assert!(report.errors[1].contains("key a left unchecked"), "{report}");
    }
}
