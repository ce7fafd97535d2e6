//! The client workers and the history they record (CLUSTER-TESTING 5.3). Each worker runs one
//! logical process at a time, sends each operation to a uniformly random node (exercising
//! forwarding) and records an invoke event before sending and a completion after the reply,
//! all timed by one monotonic clock.
//!
//! Key families, told apart by their first letter so each checker gets its own operations:
//! `r*` registers (GET, SET of unique values, and compare-and-set through WATCH/GET/MULTI/SET/
//! EXEC), `c*` counters (GET/INCR), `a*` lists built with `APPEND k ",tok"` (read back with GET),
//! `l*` lists built with `RPUSH k tok` (read back with `LRANGE k 0 -1`), `d*` durability keys
//! (one SET each, read back from every node at the end).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::history::{write_event, Event, Kind, F};
use crate::resp::{Conn, Reply};
use crate::rng::Rng;

/// How long a worker waits for a reply before calling the operation indeterminate: above the
/// servers' `cluster-write-timeout` (3 s) so their own verdicts arrive first.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Operations per key before it is retired: keeps each key's search small.
pub const OPS_PER_KEY: u32 = 200;
/// Indeterminate writes per key before it is retired: each one stays concurrent with everything
/// after it, which is what makes the linearizability search expensive.
pub const INFOS_PER_KEY: u32 = 8;

/// The history being recorded, on disk as it happens (a crash keeps what was written) and in
/// memory for the checkers.
pub struct Recorder {
    start: Instant,
    inner: Mutex<RecorderInner>,
}

struct RecorderInner {
    events: Vec<Event>,
    file: BufWriter<File>,
    next_index: u64,
}

impl Recorder {
    /// Records into `file`.
    pub fn new(file: File) -> Self {
        Recorder {
            start: Instant::now(),
            inner: Mutex::new(RecorderInner { events: Vec::new(), file: BufWriter::new(file), next_index: 0 }),
        }
    }

    /// The instant history times count from.
    pub fn origin(&self) -> Instant {
        self.start
    }

    /// Nanoseconds since the recorder started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records one event. The time is read under the lock, so the file is in time order; for an
    /// invoke that is still before the request is sent, for a completion after the reply came.
    #[allow(clippy::too_many_arguments)]
    pub fn record(&self, process: u64, kind: Kind, f: F, key: &str, value: Value, node: &str, error: Option<String>) {
        let mut g = self.inner.lock().expect("recorder lock");
        let index = g.next_index;
        g.next_index += 1;
        let event = Event {
            index: Some(index),
            time: self.now(),
            process,
            kind,
            f,
            key: key.to_string(),
            value,
            node: Some(node.to_string()),
            error,
        };
        // A full disk would only lose the copy on disk; the checkers use the one in memory.
        let _ = write_event(&mut g.file, &event);
        g.events.push(event);
    }

    /// The events so far (flushing the file).
    pub fn events(&self) -> Vec<Event> {
        let mut g = self.inner.lock().expect("recorder lock");
        let _ = g.file.flush();
        g.events.clone()
    }
}

/// The kinds of key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// GET/SET/CAS.
    Register,
    /// GET/INCR.
    Counter,
    /// APPEND/GET.
    List,
    /// RPUSH/LRANGE.
    RList,
    /// One SET per key.
    Durable,
}

impl Family {
    /// The first letter of its keys.
    pub fn letter(self) -> char {
        match self {
            Family::Register => 'r',
            Family::Counter => 'c',
            Family::List => 'a',
            Family::RList => 'l',
            Family::Durable => 'd',
        }
    }

    /// The family of a key, by its first letter.
    pub fn of(key: &str) -> Option<Family> {
        match key.chars().next()? {
            'r' => Some(Family::Register),
            'c' => Some(Family::Counter),
            'a' => Some(Family::List),
            'l' => Some(Family::RList),
            'd' => Some(Family::Durable),
            _ => None,
        }
    }
}

struct Slot {
    id: u64,
    ops: u32,
    infos: u32,
}

/// The keys in use: a few active keys per family, shared by all workers so operations on one key
/// are concurrent; a key is replaced by a fresh one after [`OPS_PER_KEY`] operations or
/// [`INFOS_PER_KEY`] indeterminate writes.
pub struct Keys {
    slots: HashMap<Family, Vec<Slot>>,
    next_id: u64,
    used: BTreeMap<Family, Vec<String>>,
}

impl Keys {
    /// `active` keys at a time in each family.
    pub fn new(active: usize) -> Self {
        let mut k = Keys { slots: HashMap::new(), next_id: 0, used: BTreeMap::new() };
        for fam in [Family::Register, Family::Counter, Family::List, Family::RList] {
            let slots = (0..active).map(|_| k.fresh(fam)).collect();
            k.slots.insert(fam, slots);
        }
        k
    }

    fn fresh(&mut self, fam: Family) -> Slot {
        self.next_id += 1;
        self.used.entry(fam).or_default().push(format!("{}{}", fam.letter(), self.next_id));
        Slot { id: self.next_id, ops: 0, infos: 0 }
    }

    fn name(fam: Family, id: u64) -> String {
        format!("{}{id}", fam.letter())
    }

    /// A key of `fam` for one more operation.
    pub fn take(&mut self, fam: Family, rng: &mut Rng) -> String {
        if fam == Family::Durable {
            let s = self.fresh(fam);
            return Self::name(fam, s.id);
        }
        let i = rng.index(self.slots[&fam].len());
        let slot = &self.slots[&fam][i];
        if slot.ops >= OPS_PER_KEY || slot.infos >= INFOS_PER_KEY {
            let s = self.fresh(fam);
            self.slots.get_mut(&fam).expect("family")[i] = s;
        }
        let slot = &mut self.slots.get_mut(&fam).expect("family")[i];
        slot.ops += 1;
        Self::name(fam, slot.id)
    }

    /// Notes an indeterminate write on `key`.
    pub fn note_info(&mut self, key: &str) {
        let Some(fam) = Family::of(key) else { return };
        if let Some(slots) = self.slots.get_mut(&fam) {
            for s in slots.iter_mut().filter(|s| Self::name(fam, s.id) == key) {
                s.infos += 1;
            }
        }
    }

    /// Every key of a family handed out so far.
    pub fn used(&self, fam: Family) -> Vec<String> {
        self.used.get(&fam).cloned().unwrap_or_default()
    }
}

/// What the workers share.
pub struct Shared {
    /// The history.
    pub recorder: Recorder,
    /// The keys.
    pub keys: Mutex<Keys>,
    /// Node names and client addresses.
    pub nodes: Vec<(String, SocketAddr)>,
    /// Set to stop the workers (each finishes its current operation).
    pub stop: AtomicBool,
    /// Source of unique values, list tokens and process ids.
    pub counter: AtomicU64,
    /// Total operations per second to aim at (0 = as fast as possible).
    pub rate: u32,
    /// Number of workers (for pacing).
    pub workers: usize,
}

impl Shared {
    fn unique(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// How a reply classifies.
enum Outcome {
    Ok(Value),
    Fail(String),
    Info(String),
}

/// Classifies an error reply: only `CLUSTERDOWN` is the server's promise that nothing was (or
/// will be) applied; everything else may have taken effect.
fn error_outcome(e: &str) -> Outcome {
    if e.starts_with("CLUSTERDOWN") {
        Outcome::Fail(e.to_string())
    } else {
        Outcome::Info(e.to_string())
    }
}

fn int_or_text(b: &[u8]) -> Value {
    let s = String::from_utf8_lossy(b);
    match s.parse::<i64>() {
        Ok(n) => Value::from(n),
        // A value that is not one of ours is recorded as text, where the checker flags it.
        Err(_) => Value::String(s.into_owned()),
    }
}

/// Splits a list value written by `APPEND k ",tok"` into its tokens.
pub fn list_tokens(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b).split(',').filter(|t| !t.is_empty()).map(String::from).collect()
}

fn tokens_value(b: Option<&[u8]>) -> Value {
    Value::Array(b.map(list_tokens).unwrap_or_default().into_iter().map(Value::String).collect())
}

/// The elements of an `LRANGE` reply as tokens; `None` if one is not a bulk string.
fn items_value(items: Vec<Reply>) -> Option<Value> {
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        match it {
            Reply::Bulk(Some(b)) => out.push(Value::String(String::from_utf8_lossy(&b).into_owned())),
            _ => return None,
        }
    }
    Some(Value::Array(out))
}

/// A compare-and-set of a register through an optimistic transaction: `WATCH k`, `GET k`, and
/// if the value is `old`, `MULTI`, `SET k new`, `EXEC`. Everything before `EXEC` is sent is a
/// definite failure (nothing can have been written); a nil `EXEC` is one too (the watched key
/// changed). `Err` means the connection is no longer usable. When the register holds another
/// value, that value goes to `found` (for the next attempt to expect).
fn cas(
    c: &mut Conn,
    key: &str,
    old: Option<i64>,
    new: i64,
    found: &mut Option<Option<i64>>,
) -> Result<Outcome, Outcome> {
    let io_fail = |what: &str, e: std::io::Error| Err(Outcome::Fail(format!("{what} (before EXEC): {e}")));
    match c.call(&["WATCH", key]) {
        Ok(Reply::Simple(s)) if s == "OK" => {}
        Ok(Reply::Error(e)) => return Ok(Outcome::Fail(format!("WATCH: {e}"))),
        Ok(other) => return Err(Outcome::Fail(format!("WATCH: unexpected {other}"))),
        Err(e) => return io_fail("WATCH", e),
    }
    let current = match c.call(&["GET", key]) {
        Ok(Reply::Bulk(b)) => b.map(|b| String::from_utf8_lossy(&b).into_owned()),
        Ok(other) => return Err(Outcome::Fail(format!("GET in cas: {other}"))),
        Err(e) => return io_fail("GET", e),
    };
    if current != old.map(|v| v.to_string()) {
        *found = Some(current.and_then(|v| v.parse().ok()));
        return match c.call(&["UNWATCH"]) {
            Ok(_) => Ok(Outcome::Fail("cas: another value".into())),
            Err(_) => Err(Outcome::Fail("cas: another value".into())),
        };
    }
    let new_text = new.to_string();
    for args in [&["MULTI"][..], &["SET", key, &new_text][..]] {
        match c.call(args) {
            Ok(Reply::Simple(s)) if s == "OK" || s == "QUEUED" => {}
            Ok(other) => return Err(Outcome::Fail(format!("{}: {other}", args[0]))),
            Err(e) => return io_fail(args[0], e),
        }
    }
    match c.call(&["EXEC"]) {
        Ok(Reply::Array(None)) => Ok(Outcome::Fail("cas: EXEC aborted, the key changed".into())),
        Ok(Reply::Array(Some(r))) if matches!(r.as_slice(), [Reply::Simple(s)] if s == "OK") => {
            Ok(Outcome::Ok(Value::Null))
        }
        Ok(Reply::Error(e)) if e.starts_with("EXECABORT") => Ok(Outcome::Fail(e)),
        Ok(Reply::Error(e)) => Ok(error_outcome(&e)),
        Ok(other) => Ok(Outcome::Info(format!("unexpected reply to EXEC: {other}"))),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err(Outcome::Info(format!("timeout: {e}")))
        }
        Err(e) => Err(Outcome::Info(format!("io: {e}"))),
    }
}

/// Interprets the reply to one operation.
fn interpret(f: F, reply: Reply) -> Outcome {
    match (f, reply) {
        (_, Reply::Error(e)) => error_outcome(&e),
        (F::Get, Reply::Bulk(b)) => Outcome::Ok(b.as_deref().map_or(Value::Null, int_or_text)),
        (F::Read, Reply::Bulk(b)) => Outcome::Ok(tokens_value(b.as_deref())),
        (F::Read, Reply::Array(Some(items))) => match items_value(items) {
            Some(v) => Outcome::Ok(v),
            None => Outcome::Info("LRANGE: an element that is not a bulk string".into()),
        },
        (F::Set, Reply::Simple(s)) if s == "OK" => Outcome::Ok(Value::Null),
        (F::Incr, Reply::Int(n)) => Outcome::Ok(Value::from(n)),
        (F::Append, Reply::Int(_)) => Outcome::Ok(Value::Null),
        (f, other) => Outcome::Info(format!("unexpected reply to {f}: {other}")),
    }
}

/// One worker: runs until `shared.stop`, one operation at a time.
pub fn worker(shared: Arc<Shared>, id: usize, mut rng: Rng) {
    let mut conns: Vec<Option<Conn>> = shared.nodes.iter().map(|_| None).collect();
    let mut process = id as u64;
    // Pacing: exponential-ish gaps around the mean interval, so workers do not march in step.
    let mean_gap = if shared.rate == 0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(shared.workers as f64 / shared.rate as f64)
    };
    // The last value this worker saw in each register: what its compare-and-sets expect.
    let mut seen: HashMap<String, Option<i64>> = HashMap::new();
    while !shared.stop.load(Ordering::Relaxed) {
        if !mean_gap.is_zero() {
            thread::sleep(mean_gap.mul_f64(rng.below(2001) as f64 / 1000.0));
        }
        let fam = match rng.below(100) {
            0..35 => Family::Register,
            35..50 => Family::Counter,
            50..68 => Family::List,
            68..85 => Family::RList,
            _ => Family::Durable,
        };
        let key = shared.keys.lock().expect("keys lock").take(fam, &mut rng);
        let roll = rng.below(100);
        let write = fam == Family::Durable || roll < 50;
        let mut cas_args = None;
        let mut found = None;
        let (f, args, input): (F, Vec<String>, Value) = match (fam, write) {
            (Family::Register, true) if roll < 20 => {
                let old = seen.get(&key).copied().flatten();
                let new = shared.unique() as i64;
                cas_args = Some((old, new));
                (F::Cas, Vec::new(), Value::Array(vec![old.map_or(Value::Null, Value::from), Value::from(new)]))
            }
            (Family::Register | Family::Durable, true) => {
                let v = shared.unique();
                (F::Set, vec!["SET".into(), key.clone(), v.to_string()], Value::from(v))
            }
            (Family::Counter, true) => (F::Incr, vec!["INCR".into(), key.clone()], Value::Null),
            (Family::List, true) => {
                let t = shared.unique().to_string();
                (F::Append, vec!["APPEND".into(), key.clone(), format!(",{t}")], Value::String(t))
            }
            (Family::RList, true) => {
                let t = shared.unique().to_string();
                (F::Append, vec!["RPUSH".into(), key.clone(), t.clone()], Value::String(t))
            }
            (Family::List, false) => (F::Read, vec!["GET".into(), key.clone()], Value::Null),
            (Family::RList, false) => {
                (F::Read, vec!["LRANGE".into(), key.clone(), "0".into(), "-1".into()], Value::Null)
            }
            (_, false) => (F::Get, vec!["GET".into(), key.clone()], Value::Null),
        };
        let n = rng.index(shared.nodes.len());
        let (node, addr) = &shared.nodes[n];
        let rec = &shared.recorder;
        rec.record(process, Kind::Invoke, f, &key, input.clone(), node, None);
        let outcome = match conns[n].take() {
            Some(c) => Ok(c),
            None => Conn::connect(*addr, CONNECT_TIMEOUT, OP_TIMEOUT),
        }
        .map_err(|e| {
            // Nothing was sent: the operation certainly did not happen.
            Outcome::Fail(format!("connect: {e}"))
        })
        .and_then(|mut c| {
            if let Some((old, new)) = cas_args {
                let o = cas(&mut c, &key, old, new, &mut found)?;
                conns[n] = Some(c);
                return Ok(o);
            }
            match c.call(&args) {
                Ok(reply) => {
                    let o = interpret(f, reply);
                    // After an error reply the stream is still in step; after a timeout it is
                    // not (a late reply would be read as the next one's).
                    conns[n] = Some(c);
                    Ok(o)
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    Err(Outcome::Info(format!("timeout: {e}")))
                }
                Err(e) => Err(Outcome::Info(format!("io: {e}"))),
            }
        });
        let outcome = outcome.unwrap_or_else(|o| o);
        match outcome {
            Outcome::Ok(v) => {
                match (f, &v, cas_args) {
                    (F::Get, _, _) => {
                        seen.insert(key.clone(), v.as_i64());
                    }
                    (F::Set, _, _) => {
                        seen.insert(key.clone(), input.as_i64());
                    }
                    (F::Cas, _, Some((_, new))) => {
                        seen.insert(key.clone(), Some(new));
                    }
                    _ => {}
                }
                // A completion carries the result for reads and incr, the argument otherwise.
                let value = if matches!(f, F::Get | F::Read | F::Incr) { v } else { input };
                rec.record(process, Kind::Ok, f, &key, value, node, None);
            }
            Outcome::Fail(e) => {
                // A failed cas saw another value (expect that one next time), or lost a race.
                if f == F::Cas {
                    match found {
                        Some(v) => seen.insert(key.clone(), v),
                        None => seen.remove(&key),
                    };
                }
                rec.record(process, Kind::Fail, f, &key, input, node, Some(e))
            }
            Outcome::Info(e) => {
                rec.record(process, Kind::Info, f, &key, input, node, Some(e));
                if !f.is_read() {
                    shared.keys.lock().expect("keys lock").note_info(&key);
                }
                // Its operation may still be running: the next one is another process's.
                process = shared.workers as u64 + shared.unique();
                conns[n] = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_classify_by_the_servers_promises() {
        assert!(matches!(interpret(F::Set, Reply::Error("CLUSTERDOWN No quorum".into())), Outcome::Fail(_)));
        assert!(matches!(interpret(F::Set, Reply::Error("TIMEOUT unknown".into())), Outcome::Info(_)));
        assert!(matches!(interpret(F::Get, Reply::Error("TRYAGAIN behind".into())), Outcome::Info(_)));
        assert!(matches!(interpret(F::Get, Reply::Bulk(None)), Outcome::Ok(Value::Null)));
        assert!(matches!(interpret(F::Get, Reply::Bulk(Some(b"17".to_vec()))), Outcome::Ok(v) if v == 17));
        assert!(matches!(interpret(F::Set, Reply::Int(1)), Outcome::Info(_)));
        match interpret(F::Read, Reply::Bulk(Some(b",1,22,3".to_vec()))) {
            Outcome::Ok(v) => assert_eq!(v, serde_json::json!(["1", "22", "3"])),
            _ => panic!(),
        }
        // LRANGE of an RPUSH list: the elements are the tokens.
        let items = vec![Reply::Bulk(Some(b"1".to_vec())), Reply::Bulk(Some(b"22".to_vec()))];
        match interpret(F::Read, Reply::Array(Some(items))) {
            Outcome::Ok(v) => assert_eq!(v, serde_json::json!(["1", "22"])),
            _ => panic!(),
        }
        assert!(matches!(interpret(F::Read, Reply::Array(Some(vec![Reply::Int(1)]))), Outcome::Info(_)));
        assert!(matches!(interpret(F::Append, Reply::Int(3)), Outcome::Ok(_)));
    }

    #[test]
    fn keys_rotate() {
        let mut keys = Keys::new(1);
        let mut rng = Rng::new(1);
        let first = keys.take(Family::Register, &mut rng);
        for _ in 1..OPS_PER_KEY {
            assert_eq!(keys.take(Family::Register, &mut rng), first);
        }
        assert_ne!(keys.take(Family::Register, &mut rng), first);
        let c = keys.take(Family::Counter, &mut rng);
        for _ in 0..INFOS_PER_KEY {
            keys.note_info(&c);
        }
        assert_ne!(keys.take(Family::Counter, &mut rng), c);
        assert_ne!(keys.take(Family::Durable, &mut rng), keys.take(Family::Durable, &mut rng));
        assert_eq!(keys.used(Family::Register).len(), 2);
    }
}
