//! A simulated atomic register store that produces histories which are linearizable by
//! construction: each operation takes effect at a random step between its invoke and completion
//! events (or, for indeterminate ones, at any later step or never).

#![allow(dead_code)]

use chaos::rng::Rng;
use chaos::{Event, Kind, F};
use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub struct Sim {
    pub processes: usize,
    pub keys: usize,
    pub ops: usize,
    /// Percent of operations that end indeterminate.
    pub info_pct: u64,
    /// Percent of writes rejected without effect.
    pub fail_pct: u64,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Fate {
    Ok,
    Fail,
    // Reported info after taking effect.
    InfoApplied,
    // Reported info; takes effect at some later step, or never.
    InfoLater,
    // Never completed in the history; may take effect later or never.
    Unfinished,
}

#[derive(Clone, Debug)]
struct Pending {
    pid: u64,
    f: F,
    key: usize,
    input: Value,
    fate: Fate,
    // The completion's value once the operation has taken effect.
    done: Option<Value>,
}

struct Store {
    state: Vec<Option<i64>>,
    // Per key: write values are key * 1_000_000 + seq * 1000, so incrs never reach another
    // write's value (a test mutation relies on that).
    seq: Vec<i64>,
}

impl Store {
    fn fresh(&mut self, key: usize) -> i64 {
        self.seq[key] += 1;
        assert!(self.seq[key] < 1000, "too many writes on one key for unique values");
        (key as i64 + 1) * 1_000_000 + self.seq[key] * 1000
    }

    // Applies an operation atomically and returns its result, or None if a cas found another value.
    fn apply(&mut self, p: &Pending) -> Option<Value> {
        let s = &mut self.state[p.key];
        match p.f {
            F::Get => Some(json!(*s)),
            F::Set => {
                *s = p.input.as_i64();
                Some(p.input.clone())
            }
            F::Incr => {
                let n = s.unwrap_or(0) + 1;
                *s = Some(n);
                Some(json!(n))
            }
            F::Cas => {
                let old = p.input[0].as_i64();
                if *s == old {
                    *s = p.input[1].as_i64();
                    Some(p.input.clone())
                } else {
                    None
                }
            }
            _ => unreachable!(),
        }
    }
}

struct Out {
    events: Vec<Event>,
    time: u64,
}

impl Out {
    fn emit(&mut self, gap: u64, process: u64, kind: Kind, f: F, key: usize, value: Value) {
        self.time += gap;
        let index = Some(self.events.len() as u64);
        self.events.push(Event {
            index,
            time: self.time,
            process,
            kind,
            f,
            key: key_name(key),
            value,
            node: None,
            error: None,
        });
    }
}

pub fn key_name(key: usize) -> String {
    format!("r{key}")
}

/// Runs the simulation; the history is linearizable whatever the seed.
pub fn simulate(seed: u64, sim: &Sim) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let mut store = Store { state: vec![None; sim.keys], seq: vec![0; sim.keys] };
    let mut slots: Vec<Option<Pending>> = vec![None; sim.processes];
    let mut pids: Vec<u64> = (0..sim.processes as u64).collect();
    let mut next_pid = sim.processes as u64;
    let mut zombies: Vec<Pending> = Vec::new();
    let mut out = Out { events: Vec::new(), time: 0 };
    let mut invoked = 0;
    loop {
        let busy = slots.iter().any(Option::is_some);
        if invoked >= sim.ops && !busy {
            break;
        }
        // A zombie takes effect now and then: late application of an indeterminate write.
        if !zombies.is_empty() && rng.percent(10) {
            let z = zombies.swap_remove(rng.below(zombies.len() as u64) as usize);
            store.apply(&z);
        }
        let s = rng.below(sim.processes as u64) as usize;
        match slots[s].take() {
            None if invoked < sim.ops => {
                invoked += 1;
                let key = rng.below(sim.keys as u64) as usize;
                let (f, input) = match rng.below(100) {
                    0..=34 => (F::Get, Value::Null),
                    35..=54 => (F::Set, json!(store.fresh(key))),
                    55..=84 => (F::Incr, Value::Null),
                    _ => {
                        // Usually the current value (likely to succeed), sometimes a stale guess.
                        let old = if rng.percent(70) { store.state[key] } else { Some(rng.below(3) as i64) };
                        (F::Cas, json!([old, store.fresh(key)]))
                    }
                };
                let fate = if rng.percent(sim.info_pct) {
                    [Fate::InfoApplied, Fate::InfoLater, Fate::Unfinished][rng.below(3) as usize]
                } else if f != F::Get && rng.percent(sim.fail_pct) {
                    Fate::Fail
                } else {
                    Fate::Ok
                };
                out.emit(1 + rng.below(3), pids[s], Kind::Invoke, f, key, input.clone());
                slots[s] = Some(Pending { pid: pids[s], f, key, input, fate, done: None });
            }
            None => {}
            Some(mut p) => match p.fate {
                Fate::Ok | Fate::InfoApplied if p.done.is_none() => {
                    match store.apply(&p) {
                        Some(v) => p.done = Some(v),
                        // A cas that found another value is a definite failure.
                        None => p.fate = Fate::Fail,
                    }
                    slots[s] = Some(p);
                }
                Fate::Ok => {
                    let v = p.done.take().expect("applied");
                    out.emit(1 + rng.below(3), p.pid, Kind::Ok, p.f, p.key, v);
                }
                Fate::Fail => {
                    out.emit(1 + rng.below(3), p.pid, Kind::Fail, p.f, p.key, p.input.clone());
                }
                Fate::InfoApplied | Fate::InfoLater | Fate::Unfinished => {
                    if p.fate != Fate::Unfinished {
                        out.emit(1 + rng.below(3), p.pid, Kind::Info, p.f, p.key, p.input.clone());
                    }
                    // The client gave up: a fresh logical process takes the slot.
                    pids[s] = next_pid;
                    next_pid += 1;
                    if p.fate != Fate::InfoApplied && rng.percent(60) {
                        zombies.push(p);
                    }
                }
            },
        }
    }
    out.events
}

/// Indices of `ok` events of function `f`, grouped by key.
pub fn ok_events_by_key(events: &[Event], f: F) -> std::collections::BTreeMap<String, Vec<usize>> {
    let mut m: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, e) in events.iter().enumerate() {
        if e.kind == Kind::Ok && e.f == f {
            m.entry(e.key.clone()).or_default().push(i);
        }
    }
    m
}
