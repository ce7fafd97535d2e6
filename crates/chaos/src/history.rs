//! The history format (one JSON event per line) and the pairing of invocations with their
//! completions into operations.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an event says about its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The client is about to send the request.
    Invoke,
    /// The server replied with success.
    Ok,
    /// The operation definitely did not take effect.
    Fail,
    /// Indeterminate: the operation may or may not have taken effect, possibly later.
    Info,
}

/// The operation's function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum F {
    /// `GET k`: a register read.
    Get,
    /// `SET k v`: a register write.
    Set,
    /// `INCR k`.
    Incr,
    /// Compare-and-set; the value is `[old, new]`.
    Cas,
    /// `RPUSH k e`: append one element to a list.
    Append,
    /// `LRANGE k 0 -1`: read a whole list.
    Read,
    /// `SADD s e`: add one element to a set.
    Add,
}

impl F {
    /// Whether the operation leaves the state untouched, so an indeterminate one can be dropped.
    pub fn is_read(self) -> bool {
        matches!(self, F::Get | F::Read)
    }

    /// The name used in the JSON form.
    pub fn name(self) -> &'static str {
        match self {
            F::Get => "get",
            F::Set => "set",
            F::Incr => "incr",
            F::Cas => "cas",
            F::Append => "append",
            F::Read => "read",
            F::Add => "add",
        }
    }
}

impl fmt::Display for F {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history as written by the harness; absent in hand-written fixtures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Harness monotonic clock in nanoseconds (fixtures use small integers).
    pub time: u64,
    /// Logical process: one outstanding operation at a time.
    pub process: u64,
    /// Invocation or kind of completion.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The operation.
    pub f: F,
    /// The key the operation touches.
    pub key: String,
    /// Argument (on invoke) or result (on ok); `null`, an integer, `[old, new]` for cas, a string
    /// or an array of strings for lists.
    #[serde(default)]
    pub value: Value,
    /// Node the request was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Error text behind a `fail` or `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Parses a JSONL history; blank lines are skipped.
pub fn parse_jsonl(text: &str) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        events.push(event);
    }
    Ok(events)
}

/// Writes one event as a JSON line; the harness calls this as operations happen so a crash
/// keeps the history written so far.
pub fn write_event<W: Write>(out: &mut W, event: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")
}

/// Writes a whole history as JSONL.
pub fn write_jsonl<W: Write>(out: &mut W, events: &[Event]) -> io::Result<()> {
    for event in events {
        write_event(out, event)?;
    }
    Ok(())
}

/// A history as a JSONL string.
pub fn to_jsonl(events: &[Event]) -> String {
    let mut out = Vec::new();
    write_jsonl(&mut out, events).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// What a completed operation returned.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// The value of the `ok` event.
    Known(Value),
    /// Indeterminate (`info`, or no completion at all): any result is possible.
    Unknown,
}

/// An invocation paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// The invoke event's `index`, or its position in the history when it has none.
    pub index: u64,
    /// Process that ran it.
    pub process: u64,
    /// The operation.
    pub f: F,
    /// The key.
    pub key: String,
    /// Time of the invocation.
    pub call: u64,
    /// Time of the completion; `None` = +infinity (indeterminate).
    pub ret: Option<u64>,
    /// The invoke event's value.
    pub input: Value,
    /// The result.
    pub output: Output,
}

/// Pairs invocations with completions per process, by the conversion rules shared by all
/// checkers: `fail` dropped (it never happened); `info` and unfinished writes kept with
/// `ret = None` and [`Output::Unknown`]; `info` and unfinished reads dropped (they changed
/// nothing). Operations come back in invocation order.
pub fn pair(events: &[Event]) -> Result<Vec<Op>, String> {
    let mut pending: HashMap<u64, (usize, &Event)> = HashMap::new();
    let mut ops: Vec<(usize, Op)> = Vec::new();
    let at = |pos: usize, e: &Event| e.index.unwrap_or(pos as u64);
    let make = |pos: usize, inv: &Event, ret: Option<u64>, output: Output| Op {
        index: at(pos, inv),
        process: inv.process,
        f: inv.f,
        key: inv.key.clone(),
        call: inv.time,
        ret,
        input: inv.value.clone(),
        output,
    };
    for (pos, e) in events.iter().enumerate() {
        if e.kind == Kind::Invoke {
            if let Some(&(p, prev)) = pending.get(&e.process) {
                return Err(format!(
                    "event {}: process {} invokes while event {} is outstanding",
                    at(pos, e),
                    e.process,
                    at(p, prev)
                ));
            }
            pending.insert(e.process, (pos, e));
            continue;
        }
        let Some((ipos, inv)) = pending.remove(&e.process) else {
            return Err(format!("event {}: {:?} for process {} with no invocation", at(pos, e), e.kind, e.process));
        };
        if inv.f != e.f || inv.key != e.key {
            return Err(format!(
                "event {}: completes {} {} but process {} invoked {} {}",
                at(pos, e),
                e.f,
                e.key,
                e.process,
                inv.f,
                inv.key
            ));
        }
        if e.time < inv.time {
            return Err(format!("event {}: completes before its invocation", at(pos, e)));
        }
        match e.kind {
            Kind::Ok => ops.push((ipos, make(ipos, inv, Some(e.time), Output::Known(e.value.clone())))),
            Kind::Info if !inv.f.is_read() => ops.push((ipos, make(ipos, inv, None, Output::Unknown))),
            _ => {}
        }
    }
    for (ipos, inv) in pending.into_values() {
        if !inv.f.is_read() {
            ops.push((ipos, make(ipos, inv, None, Output::Unknown)));
        }
    }
    ops.sort_by_key(|(pos, _)| *pos);
    Ok(ops.into_iter().map(|(_, op)| op).collect())
}

/// Reads an integer that the harness may have logged either as a JSON number or as the
/// decimal string the server sent.
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Reads a list element or set member: a string, or an integer taken as its decimal text.
pub fn as_token(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = r#"
{"index":0,"time":5,"process":1,"type":"invoke","f":"set","key":"a","value":7,"node":"n1"}
{"index":1,"time":6,"process":2,"type":"invoke","f":"get","key":"a"}
{"index":2,"time":7,"process":3,"type":"invoke","f":"cas","key":"a","value":[7,8]}
{"index":3,"time":8,"process":2,"type":"info","f":"get","key":"a","value":null,"error":"timeout"}
{"index":4,"time":9,"process":3,"type":"fail","f":"cas","key":"a","value":[7,8]}
{"index":5,"time":10,"process":1,"type":"ok","f":"set","key":"a","value":7}
{"index":6,"time":11,"process":4,"type":"invoke","f":"incr","key":"a","value":null}
{"index":7,"time":12,"process":5,"type":"invoke","f":"get","key":"a","value":null}
{"index":8,"time":13,"process":6,"type":"invoke","f":"set","key":"a","value":9}
{"index":9,"time":14,"process":6,"type":"info","f":"set","key":"a","value":9}
"#;

    #[test]
    fn round_trip() {
        let events = parse_jsonl(H).unwrap();
        assert_eq!(events.len(), 10);
        assert_eq!(events[0].node.as_deref(), Some("n1"));
        assert_eq!(events[1].value, Value::Null);
        assert_eq!(events[3].error.as_deref(), Some("timeout"));
        let text = to_jsonl(&events);
        assert_eq!(parse_jsonl(&text).unwrap(), events);
        assert!(!text.contains("\"node\":null"), "absent fields stay absent: {text}");
    }

    #[test]
    fn parse_error_names_the_line() {
        let err = parse_jsonl("\n{\"time\":0}\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn pairing_follows_the_conversion_rules() {
        let ops = pair(&parse_jsonl(H).unwrap()).unwrap();
        let summary: Vec<_> = ops.iter().map(|o| (o.index, o.f, o.ret, o.output.clone())).collect();
        assert_eq!(
            summary,
            vec![
                (0, F::Set, Some(10), Output::Known(Value::from(7))),
                // unfinished write: indeterminate
                (6, F::Incr, None, Output::Unknown),
                // the info write
                (8, F::Set, None, Output::Unknown),
            ]
        );
        assert_eq!(ops[0].call, 5);
    }

    #[test]
    fn pairing_rejects_malformed_histories() {
        let orphan = r#"{"time":1,"process":1,"type":"ok","f":"get","key":"a","value":null}"#;
        assert!(pair(&parse_jsonl(orphan).unwrap()).is_err());
        let twice = r#"{"time":1,"process":1,"type":"invoke","f":"get","key":"a"}
{"time":2,"process":1,"type":"invoke","f":"get","key":"a"}"#;
        assert!(pair(&parse_jsonl(twice).unwrap()).is_err());
        let other = r#"{"time":1,"process":1,"type":"invoke","f":"get","key":"a"}
{"time":2,"process":1,"type":"ok","f":"get","key":"b","value":null}"#;
        assert!(pair(&parse_jsonl(other).unwrap()).is_err());
    }
}
