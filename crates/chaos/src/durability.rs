//! The durability check: after crashes and restarts, every node must still hold each
//! acknowledged write, or a write that may legitimately have replaced it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::history::{self, as_token, Event, F};

/// An attempted `SET`, acknowledged or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The key.
    pub key: String,
    /// The value written (unique per key).
    pub value: String,
    /// Invocation time.
    pub call: u64,
    /// Acknowledgement time; `None` if never acknowledged (indeterminate or unfinished).
    pub ret: Option<u64>,
}

/// Final reads: node → key → value (`None`: the key is absent).
pub type FinalReads = BTreeMap<String, BTreeMap<String, Option<String>>>;

/// The attempted writes of a history: `set` operations, acknowledged or indeterminate; failed
/// ones are left out, so a value they wrote counts as never attempted.
pub fn writes_from_history(events: &[Event]) -> Result<Vec<Write>, String> {
    let mut writes = Vec::new();
    for op in history::pair(events)?.into_iter().filter(|o| o.f == F::Set) {
        let value =
            as_token(&op.input).ok_or_else(|| format!("event {}: set value {} is not a string", op.index, op.input))?;
        writes.push(Write { key: op.key, value, call: op.call, ret: op.ret });
    }
    Ok(writes)
}

/// An acknowledged write a node no longer has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    /// The node.
    pub node: String,
    /// The key.
    pub key: String,
    /// The acknowledged value.
    pub acked: String,
    /// What the node returned instead.
    pub found: Option<String>,
}

/// A value a node returned that nobody attempted to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unexpected {
    /// The node.
    pub node: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// The outcome of [`check_durability`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurabilityReport {
    /// Nodes read.
    pub nodes: usize,
    /// Acknowledged writes checked on each node.
    pub acked: usize,
    /// Acknowledged writes missing or replaced by an older value.
    pub lost: Vec<Lost>,
    /// Values never attempted.
    pub unexpected: Vec<Unexpected>,
}

impl DurabilityReport {
    /// Nothing lost and nothing invented.
    pub fn is_ok(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty()
    }
}

/// Compares each node's final reads with the writes. A node's value for a key is acceptable for
/// an acknowledged write `w` if it is `w`'s value or that of an attempted write not known to
/// precede `w` (one that was not acknowledged before `w` was invoked). A key missing from a
/// node's reads counts as absent there, since the harness reads every acknowledged key.
pub fn check_durability(writes: &[Write], finals: &FinalReads) -> DurabilityReport {
    let mut by_key: HashMap<&str, HashMap<&str, &Write>> = HashMap::new();
    for w in writes {
        by_key.entry(&w.key).or_default().insert(&w.value, w);
    }
    let acked: Vec<&Write> = writes.iter().filter(|w| w.ret.is_some()).collect();
    let mut report = DurabilityReport { nodes: finals.len(), acked: acked.len(), ..Default::default() };
    for (node, reads) in finals {
        for w in &acked {
            let found = reads.get(&w.key).cloned().flatten();
            let attempted = found.as_deref().and_then(|v| by_key.get(w.key.as_str())?.get(v));
            let ok = match attempted {
                // Equal, or not finished before `w` began, so it may have been applied after `w`.
                Some(v) => v.value == w.value || v.ret.is_none_or(|r| r >= w.call),
                None => false,
            };
            if !ok {
                report.lost.push(Lost { node: node.clone(), key: w.key.clone(), acked: w.value.clone(), found });
            }
        }
        for (key, value) in reads {
            let Some(value) = value else { continue };
            if by_key.get(key.as_str()).is_none_or(|vals| !vals.contains_key(value.as_str())) {
                report.unexpected.push(Unexpected { node: node.clone(), key: key.clone(), value: value.clone() });
            }
        }
    }
    report
}

impl fmt::Display for DurabilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes_losing: BTreeSet<&str> = self.lost.iter().map(|l| l.node.as_str()).collect();
        write!(
            f,
            "durability: {} ({} acked writes on {} nodes: {} lost on {} nodes, {} unexpected)",
            if self.is_ok() { "OK" } else { "FAILED" },
            self.acked,
            self.nodes,
            self.lost.len(),
            nodes_losing.len(),
            self.unexpected.len()
        )?;
        for l in &self.lost {
            let found = l.found.as_deref().unwrap_or("nil");
            write!(f, "\n  lost on {}: {} = {} acknowledged, found {found}", l.node, l.key, l.acked)?;
        }
        for u in &self.unexpected {
            write!(f, "\n  unexpected on {}: {} = {} was never written", u.node, u.key, u.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(key: &str, value: &str, call: u64, ret: Option<u64>) -> Write {
        Write { key: key.into(), value: value.into(), call, ret }
    }

    fn finals(node: &str, kv: &[(&str, Option<&str>)]) -> FinalReads {
        let reads = kv.iter().map(|(k, v)| (k.to_string(), v.map(String::from))).collect();
        BTreeMap::from([(node.to_string(), reads)])
    }

    fn writes() -> Vec<Write> {
        vec![
            w("a", "1", 0, Some(1)),
            w("a", "2", 2, Some(3)),
            // indeterminate, after "2"
            w("a", "3", 4, None),
            // acked, overlapping "5"
            w("b", "4", 0, Some(10)),
            w("b", "5", 5, Some(6)),
        ]
    }

    #[test]
    fn acked_or_later_values_pass() {
        for (a, b) in [("2", "4"), ("3", "5"), ("3", "4")] {
            let r = check_durability(&writes(), &finals("n1", &[("a", Some(a)), ("b", Some(b))]));
            assert!(r.is_ok(), "{a} {b}: {r}");
        }
    }

    #[test]
    fn lost_writes_are_reported() {
        // "1" finished before "2" began, so finding it means "2" was lost.
        let r = check_durability(&writes(), &finals("n1", &[("a", Some("1")), ("b", Some("5"))]));
        assert_eq!(
            r.lost,
            vec![Lost { node: "n1".into(), key: "a".into(), acked: "2".into(), found: Some("1".into()) }]
        );
        assert!(r.unexpected.is_empty());
        let r = check_durability(&writes(), &finals("n1", &[("a", None)]));
        assert_eq!(r.lost.len(), 4, "{r}");
        assert!(r.to_string().contains("lost on n1: a = 2 acknowledged, found nil"), "{r}");
    }

    #[test]
    fn unexpected_values_are_reported() {
        let r = check_durability(&writes(), &finals("n2", &[("a", Some("2")), ("b", Some("4")), ("c", Some("9"))]));
        assert!(r.lost.is_empty(), "{r}");
        assert_eq!(r.unexpected, vec![Unexpected { node: "n2".into(), key: "c".into(), value: "9".into() }]);
    }

    #[test]
    fn from_history_skips_failed_writes() {
        let h = r#"{"time":0,"process":0,"type":"invoke","f":"set","key":"a","value":1}
{"time":1,"process":0,"type":"ok","f":"set","key":"a","value":1}
{"time":2,"process":0,"type":"invoke","f":"set","key":"a","value":2}
{"time":3,"process":0,"type":"fail","f":"set","key":"a","value":2}
{"time":4,"process":1,"type":"invoke","f":"set","key":"a","value":3}"#;
        let writes = writes_from_history(&history::parse_jsonl(h).unwrap()).unwrap();
        assert_eq!(writes, vec![w("a", "1", 0, Some(1)), w("a", "3", 4, None)]);
        let r = check_durability(&writes, &finals("n1", &[("a", Some("2"))]));
        assert_eq!((r.lost.len(), r.unexpected.len()), (1, 1), "{r}");
    }
}
