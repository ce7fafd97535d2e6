//! The list-append workload's checker: unique elements appended to lists, whole lists read back.
//! Since every element is unique, all reads of a key must be prefixes of one order; anything else
//! means two histories diverged (split brain) or a write was lost or invented.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde_json::Value;

use crate::history::{self, as_token, Event, Kind, Output, F};

/// Which read an anomaly is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadId {
    /// An `ok` read in the history, by its invoke event's index.
    Event(u64),
    /// The final read supplied beside the history.
    Final,
}

/// Something no single order of appends can explain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendAnomaly {
    /// A read holds the same element twice.
    Duplicate {
        /// The key.
        key: String,
        /// The read.
        read: ReadId,
        /// The repeated element.
        element: String,
    },
    /// A read holds an element nobody appended, or whose append definitely failed.
    NeverAttempted {
        /// The key.
        key: String,
        /// The first read showing it.
        read: ReadId,
        /// The element.
        element: String,
        /// Its append was reported as `fail` (an aborted read).
        failed: bool,
    },
    /// A read is not a prefix of the longest read.
    NotPrefix {
        /// The key.
        key: String,
        /// The read.
        read: ReadId,
        /// The longest read.
        longest: ReadId,
        /// First position where they differ.
        position: usize,
    },
    /// A read misses elements that were acknowledged, or returned by another read, before it
    /// was invoked.
    RealTime {
        /// The key.
        key: String,
        /// The read.
        read: ReadId,
        /// The missing elements.
        missing: Vec<String>,
    },
    /// The final read misses acknowledged appends.
    Lost {
        /// The key.
        key: String,
        /// The final read.
        read: ReadId,
        /// The missing elements.
        missing: Vec<String>,
    },
    /// Final reads were supplied but not for this key, which has acknowledged appends.
    NoFinalRead {
        /// The key.
        key: String,
        /// How many appends were acknowledged.
        acked: usize,
    },
}

/// The outcome of [`check_append`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendReport {
    /// Keys seen.
    pub keys: usize,
    /// Appends attempted (`ok` or indeterminate).
    pub appends: usize,
    /// `ok` reads, plus supplied final reads.
    pub reads: usize,
    /// What went wrong.
    pub anomalies: Vec<AppendAnomaly>,
    /// Malformed history.
    pub errors: Vec<String>,
}

impl AppendReport {
    /// No anomaly and a well-formed history.
    pub fn is_ok(&self) -> bool {
        self.anomalies.is_empty() && self.errors.is_empty()
    }
}

struct Append {
    element: String,
    ret: Option<u64>,
}

struct Read {
    id: ReadId,
    // None for a supplied final read: it follows everything.
    call: Option<u64>,
    ret: Option<u64>,
    elements: Vec<String>,
}

#[derive(Default)]
struct KeyOps {
    appends: Vec<Append>,
    reads: Vec<Read>,
    failed: HashSet<String>,
}

/// Checks an append/read history. `finals` (key → list) are reads taken after the run healed;
/// without them the last `ok` read of each key (by completion time) serves as its final read.
pub fn check_append(events: &[Event], finals: Option<&BTreeMap<String, Vec<String>>>) -> AppendReport {
    let mut report = AppendReport::default();
    let ops = match history::pair(events) {
        Ok(ops) => ops,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let mut keys: BTreeMap<&str, KeyOps> = BTreeMap::new();
    // `pair` drops failed appends; keep them to tell an aborted read from an invented element.
    for e in events.iter().filter(|e| e.kind == Kind::Fail && e.f == F::Append) {
        if let Some(t) = as_token(&e.value) {
            keys.entry(&e.key).or_default().failed.insert(t);
        }
    }
    for op in &ops {
        let k = keys.entry(&op.key).or_default();
        match (op.f, &op.output) {
            (F::Append, _) => match as_token(&op.input) {
                Some(element) => k.appends.push(Append { element, ret: op.ret }),
                None => report.errors.push(format!("event {}: append of {} is not a string", op.index, op.input)),
            },
            (F::Read, Output::Known(v)) => match tokens(v) {
                Some(elements) => {
                    k.reads.push(Read { id: ReadId::Event(op.index), call: Some(op.call), ret: op.ret, elements })
                }
                None => report.errors.push(format!("event {}: read result {v} is not a list", op.index)),
            },
            _ => {}
        }
    }
    if let Some(finals) = finals {
        for (key, list) in finals {
            let read = Read { id: ReadId::Final, call: None, ret: None, elements: list.clone() };
            keys.entry(key).or_default().reads.push(read);
        }
    }
    for (key, k) in &keys {
        report.appends += k.appends.len();
        report.reads += k.reads.len();
        check_key(key, k, finals.is_some(), &mut report);
    }
    report.keys = keys.len();
    report
}

fn tokens(v: &Value) -> Option<Vec<String>> {
    match v {
        // LRANGE of an absent key is empty; a harness may log that as null.
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(as_token).collect(),
        _ => None,
    }
}

fn check_key(key: &str, k: &KeyOps, explicit_finals: bool, report: &mut AppendReport) {
    let mut attempted: HashSet<&str> = HashSet::new();
    for a in &k.appends {
        if !attempted.insert(&a.element) {
            report.errors.push(format!("key {key}: element {} appended twice", a.element));
        }
    }
    let mut acked: Vec<(u64, &str)> = k.appends.iter().filter_map(|a| Some((a.ret?, a.element.as_str()))).collect();
    acked.sort();
    let anomalies = &mut report.anomalies;

    let mut reported_unknown = HashSet::new();
    for r in &k.reads {
        let mut seen = HashSet::new();
        for e in &r.elements {
            if !seen.insert(e.as_str()) {
                anomalies.push(AppendAnomaly::Duplicate { key: key.into(), read: r.id.clone(), element: e.clone() });
            }
            if !attempted.contains(e.as_str()) && reported_unknown.insert(e.as_str()) {
                let failed = k.failed.contains(e);
                let (read, element) = (r.id.clone(), e.clone());
                anomalies.push(AppendAnomaly::NeverAttempted { key: key.into(), read, element, failed });
            }
        }
    }

    // The first of the longest reads; any other read must agree with it as far as it goes.
    if let Some(longest) = k.reads.iter().rev().max_by_key(|r| r.elements.len()) {
        for r in &k.reads {
            if let Some(position) = r.elements.iter().zip(&longest.elements).position(|(a, b)| a != b) {
                let (read, longest) = (r.id.clone(), longest.id.clone());
                anomalies.push(AppendAnomaly::NotPrefix { key: key.into(), read, longest, position });
            }
        }
    }

    let last = if explicit_finals {
        k.reads.iter().position(|r| r.id == ReadId::Final)
    } else {
        // max_by_key keeps the last of equals: the read logged last wins ties.
        k.reads.iter().enumerate().max_by_key(|(_, r)| r.ret).map(|(i, _)| i)
    };
    for (i, r) in k.reads.iter().enumerate() {
        let present: HashSet<&str> = r.elements.iter().map(String::as_str).collect();
        // Known to precede the read: acked appends, and whatever a read that finished before it
        // began returned (a read's elements were applied before it was linearized). A final read
        // follows everything.
        let before = |t: u64| r.call.is_none_or(|call| t < call);
        let mut missing_acked: Vec<&str> = Vec::new();
        let mut missing_seen: Vec<&str> = Vec::new();
        for &(ret, e) in &acked {
            if (Some(i) == last || before(ret)) && !present.contains(e) {
                missing_acked.push(e);
            }
        }
        let witness = k
            .reads
            .iter()
            .filter(|w| w.ret.is_some_and(before))
            .max_by_key(|w| w.elements.len())
            .map_or(&[][..], |w| &w.elements[..]);
        for e in witness {
            if !present.contains(e.as_str()) && !missing_acked.contains(&e.as_str()) {
                missing_seen.push(e);
            }
        }
        let owned = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
        if Some(i) == last {
            // The final read must hold every acknowledged append, whenever it was acknowledged.
            if !missing_acked.is_empty() {
                anomalies.push(AppendAnomaly::Lost {
                    key: key.into(),
                    read: r.id.clone(),
                    missing: owned(missing_acked),
                });
            }
        } else {
            missing_seen.extend(missing_acked);
        }
        if !missing_seen.is_empty() {
            anomalies.push(AppendAnomaly::RealTime {
                key: key.into(),
                read: r.id.clone(),
                missing: owned(missing_seen),
            });
        }
    }
    if explicit_finals && last.is_none() && !acked.is_empty() {
        anomalies.push(AppendAnomaly::NoFinalRead { key: key.into(), acked: acked.len() });
    }
}

impl fmt::Display for ReadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadId::Event(i) => write!(f, "read #{i}"),
            ReadId::Final => f.write_str("final read"),
        }
    }
}

// Long element lists say little beyond their size.
fn some(elements: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = elements.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if elements.len() > SHOWN {
        s += &format!(", … ({} in all)", elements.len());
    }
    s
}

impl fmt::Display for AppendAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendAnomaly::Duplicate { key, read, element } => write!(f, "key {key}: {read} holds {element} twice"),
            AppendAnomaly::NeverAttempted { key, read, element, failed: true } => {
                write!(f, "key {key}: {read} holds {element}, whose append was reported failed")
            }
            AppendAnomaly::NeverAttempted { key, read, element, failed: false } => {
                write!(f, "key {key}: {read} holds {element}, which was never appended")
            }
            AppendAnomaly::NotPrefix { key, read, longest, position } => {
                write!(f, "key {key}: {read} diverges from {longest} at position {position}")
            }
            AppendAnomaly::RealTime { key, read, missing } => {
                write!(f, "key {key}: {read} misses elements acknowledged or read before it began: {}", some(missing))
            }
            AppendAnomaly::Lost { key, read, missing } => {
                write!(f, "key {key}: {read} misses acknowledged appends: {}", some(missing))
            }
            AppendAnomaly::NoFinalRead { key, acked } => {
                write!(f, "key {key}: no final read for {acked} acknowledged appends")
            }
        }
    }
}

impl fmt::Display for AppendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "append: {} ({} keys, {} appends, {} reads: {} anomalies; {} history errors)",
            if self.is_ok() { "OK" } else { "FAILED" },
            self.keys,
            self.appends,
            self.reads,
            self.anomalies.len(),
            self.errors.len()
        )?;
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        for a in &self.anomalies {
            write!(f, "\n  {a}")?;
        }
        Ok(())
    }
}
