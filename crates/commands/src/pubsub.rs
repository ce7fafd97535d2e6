//! Pub/sub delivery: the registry of channel, pattern and shard-channel subscribers, and each
//! client's [`Mailbox`], where messages it did not ask for at that moment (published
//! messages, and keyspace events, which are published messages too) wait for its connection
//! to write them.
//!
//! A publisher encodes the message into every receiving mailbox itself, in the receiver's
//! protocol (RESP2 array or RESP3 push), and wakes its connection; the connection moves the
//! bytes into its output between commands. The registry is one read-write lock, a leaf taken
//! under shard locks (keyspace events are published by the command that caused them, still
//! holding its keys), and each mailbox's buffer a leaf under it.
//!
//! A mailbox enforces `client-output-buffer-limit`: its bytes plus the replies its
//! connection has not written yet are the client's output buffer; past the hard limit, or
//! past the soft limit for longer than its seconds, the client is closed and its buffer freed,
//! so a subscriber that never reads costs bounded memory.

use engine::glob::glob_match;
use parking_lot::{Mutex, RwLock};
use protocol::{ReplyWriter, Resp};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A client class of `client-output-buffer-limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientClass {
    /// Ordinary clients.
    Normal = 0,
    /// Replicas (Tandem has none; the limits are kept for `CONFIG GET`).
    Replica = 1,
    /// Clients subscribed to a channel or pattern.
    PubSub = 2,
}

impl ClientClass {
    /// Every class, in `CONFIG GET` order, with its name there.
    pub const ALL: [(ClientClass, &'static str); 3] =
        [(ClientClass::Normal, "normal"), (ClientClass::Replica, "slave"), (ClientClass::PubSub, "pubsub")];
}

/// One class's limits: bytes (0 = none) and seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassLimit {
    /// Closed at once past this many bytes.
    pub hard: u64,
    /// Closed when past this many bytes for longer than `soft_seconds`.
    pub soft: u64,
    /// See `soft`.
    pub soft_seconds: u64,
}

/// `client-output-buffer-limit`, shared by the configuration and every mailbox.
#[derive(Debug, Default)]
pub struct OutputLimits {
    values: [[AtomicU64; 3]; 3],
}

impl OutputLimits {
    /// Sets one class's limits.
    pub fn set(&self, class: ClientClass, l: ClassLimit) {
        let v = &self.values[class as usize];
        v[0].store(l.hard, Ordering::Relaxed);
        v[1].store(l.soft, Ordering::Relaxed);
        v[2].store(l.soft_seconds, Ordering::Relaxed);
    }

    /// One class's limits.
    pub fn get(&self, class: ClientClass) -> ClassLimit {
        let v = &self.values[class as usize];
        ClassLimit {
            hard: v[0].load(Ordering::Relaxed),
            soft: v[1].load(Ordering::Relaxed),
            soft_seconds: v[2].load(Ordering::Relaxed),
        }
    }
}

/// What a mailbox holds besides its bytes.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// When the output buffer went past the soft limit (ms), while it stays past it.
    soft_since_ms: Option<i64>,
    /// Why the client was closed (for the connection's log line).
    closed_why: Option<String>,
}

/// Called once when a mailbox closes its client for its output buffer, possibly under shard
/// and registry locks: it must only signal the connection (which logs it), never block.
pub type OnOverflow = Box<dyn Fn() + Send + Sync>;

/// One client's undelivered messages, and its output-buffer accounting.
pub struct Mailbox {
    /// The client's id.
    pub id: u64,
    pending: Mutex<Pending>,
    /// Bytes in `pending` (read without the lock to skip empty mailboxes).
    len: AtomicUsize,
    /// Reply bytes the connection holds but has not written yet.
    unsent: AtomicUsize,
    resp3: AtomicBool,
    /// In the pubsub class (subscribed to anything).
    subscribed: AtomicBool,
    closed: AtomicBool,
    limits: Arc<OutputLimits>,
    on_overflow: OnOverflow,
    /// Woken when bytes arrive or the client is closed.
    pub notify: crate::signal::Signal,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").field("id", &self.id).field("len", &self.len()).finish()
    }
}

impl Mailbox {
    /// A mailbox for client `id`.
    pub fn new(id: u64, limits: Arc<OutputLimits>, on_overflow: OnOverflow) -> Mailbox {
        Mailbox {
            id,
            pending: Mutex::new(Pending::default()),
            len: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            resp3: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            limits,
            on_overflow,
            notify: crate::signal::Signal::new(),
        }
    }

    /// Bytes waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True when nothing waits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the client was closed for its output buffer.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Why the client was closed for its output buffer, if it was.
    pub fn closed_why(&self) -> Option<String> {
        self.pending.lock().closed_why.clone()
    }

    /// Moves the waiting bytes to `out`.
    pub fn drain_into(&self, out: &mut Vec<u8>) {
        if self.is_empty() {
            return;
        }
        let mut p = self.pending.lock();
        out.extend_from_slice(&p.bytes);
        p.bytes.clear();
        if p.bytes.capacity() > 64 * 1024 {
            p.bytes = Vec::new();
        }
        self.len.store(0, Ordering::Relaxed);
    }

    /// Takes the waiting bytes: the first `before` of them go in front of `out[at..]` (a
    /// command's reply), the rest after it; returns how many went in front.
    pub fn splice_into(&self, out: &mut Vec<u8>, at: usize, before: usize) -> usize {
        if self.is_empty() {
            return 0;
        }
        let bytes = {
            let mut p = self.pending.lock();
            self.len.store(0, Ordering::Relaxed);
            std::mem::take(&mut p.bytes)
        };
        let before = before.min(bytes.len());
        out.extend_from_slice(&bytes[before..]);
        out.splice(at..at, bytes[..before].iter().copied());
        before
    }

    /// The connection's protocol (messages are encoded in it).
    pub fn set_resp(&self, resp: Resp) {
        self.resp3.store(resp == Resp::V3, Ordering::Relaxed);
    }

    /// The protocol messages are encoded in.
    pub fn resp(&self) -> Resp {
        if self.resp3.load(Ordering::Relaxed) {
            Resp::V3
        } else {
            Resp::V2
        }
    }

    /// Notes how many reply bytes the connection holds unwritten (part of its output buffer).
    pub fn set_unsent(&self, n: usize) {
        self.unsent.store(n, Ordering::Relaxed);
    }

    /// True while the client is subscribed to anything (a RESP2 redirect target then hears
    /// invalidations as pub/sub messages).
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    fn class(&self) -> ClientClass {
        if self.subscribed.load(Ordering::Relaxed) {
            ClientClass::PubSub
        } else {
            ClientClass::Normal
        }
    }

    /// Appends a message encoded by `encode` in the client's protocol; false if the client
    /// is closed (or closes now, being past its output buffer limit).
    pub fn deliver(&self, now_ms: i64, encode: impl FnOnce(&mut ReplyWriter)) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut w = ReplyWriter::new(self.resp());
        {
            let mut p = self.pending.lock();
            w.buf = std::mem::take(&mut p.bytes);
            encode(&mut w);
            p.bytes = w.buf;
            let total = p.bytes.len();
            self.len.store(total, Ordering::Relaxed);
            if let Some(why) = self.over_limit(&mut p, total + self.unsent.load(Ordering::Relaxed), now_ms) {
                self.close(&mut p, &why);
                return false;
            }
        }
        self.notify.notify();
        true
    }

    /// Checks the limits with `replies` reply bytes unwritten (the connection calls this
    /// before writing); false if the client must close.
    pub fn check_replies(&self, replies: usize, now_ms: i64) -> bool {
        if self.is_closed() {
            return false;
        }
        let l = self.limits.get(self.class());
        if l.hard == 0 && l.soft == 0 {
            return true;
        }
        let mut p = self.pending.lock();
        let total = p.bytes.len() + replies;
        match self.over_limit(&mut p, total, now_ms) {
            Some(why) => {
                self.close(&mut p, &why);
                false
            }
            None => true,
        }
    }

    /// Redis's `checkClientOutputBufferLimits`: the reason to close, if any.
    fn over_limit(&self, p: &mut Pending, used: usize, now_ms: i64) -> Option<String> {
        let class = self.class();
        let l = self.limits.get(class);
        let used = used as u64;
        let hard = l.hard > 0 && used >= l.hard;
        let mut soft = l.soft > 0 && used >= l.soft;
        if soft {
            match p.soft_since_ms {
                None => {
                    p.soft_since_ms = Some(now_ms);
                    soft = false;
                }
                Some(since) => soft = (now_ms - since) / 1000 > l.soft_seconds as i64,
            }
        } else {
            p.soft_since_ms = None;
        }
        (hard || soft).then(|| {
            let name = ClientClass::ALL[class as usize].1;
            format!("id={} omem={used} class={name} {} limit", self.id, if hard { "hard" } else { "soft" })
        })
    }

    fn close(&self, p: &mut Pending, why: &str) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        p.bytes = Vec::new();
        p.closed_why = Some(why.to_string());
        self.len.store(0, Ordering::Relaxed);
        (self.on_overflow)();
        self.notify.notify();
    }
}

/// Which kind of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `SUBSCRIBE`
    Channel,
    /// `PSUBSCRIBE`
    Pattern,
    /// `SSUBSCRIBE`
    Shard,
}

impl Kind {
    /// The reply word of a subscription, an unsubscription, and a message.
    pub fn words(self) -> (&'static [u8], &'static [u8], &'static [u8]) {
        match self {
            Kind::Channel => (b"subscribe", b"unsubscribe", b"message"),
            Kind::Pattern => (b"psubscribe", b"punsubscribe", b"pmessage"),
            Kind::Shard => (b"ssubscribe", b"sunsubscribe", b"smessage"),
        }
    }
}

/// A client's subscriptions (kept in its session).
#[derive(Clone, Debug, Default)]
pub struct Subscriptions {
    /// `SUBSCRIBE`d channels.
    pub channels: HashSet<Vec<u8>>,
    /// `PSUBSCRIBE`d patterns.
    pub patterns: HashSet<Vec<u8>>,
    /// `SSUBSCRIBE`d shard channels.
    pub shard: HashSet<Vec<u8>>,
}

impl Subscriptions {
    /// The set of one kind.
    pub fn of(&self, kind: Kind) -> &HashSet<Vec<u8>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut HashSet<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// The count a (un)subscription reply carries: channels and patterns together, shard
    /// channels on their own (as Redis counts them).
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    /// Subscriptions of every kind.
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard.len()
    }
}

type Subscribers = HashMap<Vec<u8>, Vec<Arc<Mailbox>>, foldhash::fast::RandomState>;

#[derive(Default)]
struct Registry {
    channels: Subscribers,
    patterns: Subscribers,
    shard: Subscribers,
}

impl Registry {
    fn of(&mut self, kind: Kind) -> &mut Subscribers {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }
}

/// The server's subscribers.
#[derive(Default)]
pub struct PubSub {
    reg: RwLock<Registry>,
}

impl PubSub {
    /// Subscribes `mailbox` (whose client's subscriptions are `subs`) to `name`; the count
    /// to reply with.
    pub fn subscribe(&self, subs: &mut Subscriptions, mailbox: &Arc<Mailbox>, kind: Kind, name: &[u8]) -> usize {
        if subs.of_mut(kind).insert(name.to_vec()) {
            self.reg.write().of(kind).entry(name.to_vec()).or_default().push(mailbox.clone());
            mailbox.subscribed.store(true, Ordering::Relaxed);
        }
        subs.count(kind)
    }

    /// Unsubscribes from `name`; the count to reply with.
    pub fn unsubscribe(&self, subs: &mut Subscriptions, id: u64, kind: Kind, name: &[u8]) -> usize {
        if subs.of_mut(kind).remove(name) {
            let mut reg = self.reg.write();
            let map = reg.of(kind);
            if let Some(list) = map.get_mut(name) {
                list.retain(|m| m.id != id);
                if list.is_empty() {
                    map.remove(name);
                }
            }
        }
        subs.count(kind)
    }

    /// Drops every subscription of a client (`RESET`, disconnect).
    pub fn unsubscribe_all(&self, subs: &mut Subscriptions, mailbox: Option<&Arc<Mailbox>>, id: u64) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            let names: Vec<Vec<u8>> = subs.of(kind).iter().cloned().collect();
            for n in names {
                self.unsubscribe(subs, id, kind, &n);
            }
        }
        if let Some(m) = mailbox {
            m.subscribed.store(false, Ordering::Relaxed);
        }
    }

    /// Notes that a client may have left the pubsub class (no subscriptions left).
    pub fn settle_class(subs: &Subscriptions, mailbox: Option<&Arc<Mailbox>>) {
        if let Some(m) = mailbox {
            m.subscribed.store(subs.total() > 0, Ordering::Relaxed);
        }
    }

    /// `PUBLISH`: delivers to the channel's subscribers, then to every matching pattern's;
    /// the number of clients that received it.
    pub fn publish(&self, channel: &[u8], message: &[u8], now_ms: i64) -> usize {
        let reg = self.reg.read();
        let mut n = 0;
        if let Some(list) = reg.channels.get(channel) {
            for m in list {
                n += m.deliver(now_ms, |w| {
                    w.push(3);
                    w.bulk(b"message");
                    w.bulk(channel);
                    w.bulk(message);
                }) as usize;
            }
        }
        for (pattern, list) in reg.patterns.iter() {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            for m in list {
                n += m.deliver(now_ms, |w| {
                    w.push(4);
                    w.bulk(b"pmessage");
                    w.bulk(pattern);
                    w.bulk(channel);
                    w.bulk(message);
                }) as usize;
            }
        }
        n
    }

    /// `SPUBLISH`: delivers to the shard channel's subscribers.
    pub fn spublish(&self, channel: &[u8], message: &[u8], now_ms: i64) -> usize {
        let reg = self.reg.read();
        let Some(list) = reg.shard.get(channel) else { return 0 };
        list.iter()
            .map(|m| {
                m.deliver(now_ms, |w| {
                    w.push(3);
                    w.bulk(b"smessage");
                    w.bulk(channel);
                    w.bulk(message);
                }) as usize
            })
            .sum()
    }

    /// How many clients a message on `channel` would reach now.
    pub fn receivers(&self, kind: Kind, channel: &[u8]) -> usize {
        let reg = self.reg.read();
        if kind == Kind::Shard {
            return reg.shard.get(channel).map_or(0, |l| l.len());
        }
        let direct = reg.channels.get(channel).map_or(0, |l| l.len());
        let by_pattern: usize =
            reg.patterns.iter().filter(|(p, _)| glob_match(p, channel, false)).map(|(_, l)| l.len()).sum();
        direct + by_pattern
    }

    /// True if anyone subscribes to anything (keyspace events skip their work otherwise).
    pub fn has_subscribers(&self) -> bool {
        let reg = self.reg.read();
        !reg.channels.is_empty() || !reg.patterns.is_empty()
    }

    /// `PUBSUB CHANNELS|SHARDCHANNELS [pattern]`: active channels matching the pattern.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let reg = self.reg.read();
        let map = if kind == Kind::Shard { &reg.shard } else { &reg.channels };
        map.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    /// `PUBSUB NUMSUB|SHARDNUMSUB`: subscribers of one channel.
    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        let reg = self.reg.read();
        let map = if kind == Kind::Shard { &reg.shard } else { &reg.channels };
        map.get(channel).map_or(0, |l| l.len())
    }

    /// Number of channels, patterns and shard channels with subscribers (`INFO stats`,
    /// `PUBSUB NUMPAT`).
    pub fn counts(&self) -> (usize, usize, usize) {
        let reg = self.reg.read();
        (reg.channels.len(), reg.patterns.len(), reg.shard.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(id: u64, limits: &Arc<OutputLimits>) -> (Arc<Mailbox>, Arc<AtomicUsize>) {
        let closed = Arc::new(AtomicUsize::new(0));
        let c = closed.clone();
        let m = Mailbox::new(
            id,
            limits.clone(),
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }),
        );
        (Arc::new(m), closed)
    }

    #[test]
    fn messages_reach_channel_then_pattern_subscribers_in_their_protocol() {
        let limits = Arc::new(OutputLimits::default());
        let ps = PubSub::default();
        let (a, _) = mailbox(1, &limits);
        let (b, _) = mailbox(2, &limits);
        b.set_resp(Resp::V3);
        let (mut sa, mut sb) = (Subscriptions::default(), Subscriptions::default());
        assert_eq!(ps.subscribe(&mut sa, &a, Kind::Channel, b"news"), 1);
        assert_eq!(ps.subscribe(&mut sa, &a, Kind::Channel, b"news"), 1);
        assert_eq!(ps.subscribe(&mut sb, &b, Kind::Pattern, b"n*"), 1);
        assert_eq!(ps.publish(b"news", b"hi", 0), 2);
        assert_eq!(ps.publish(b"other", b"x", 0), 0);
        let mut out = Vec::new();
        a.drain_into(&mut out);
        assert_eq!(out, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        out.clear();
        b.drain_into(&mut out);
        assert_eq!(out, b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        assert_eq!(ps.unsubscribe(&mut sa, 1, Kind::Channel, b"news"), 0);
        assert_eq!(ps.counts(), (0, 1, 0));
        assert_eq!(ps.publish(b"news", b"hi", 0), 1);
    }

    #[test]
    fn a_subscriber_past_its_limit_is_closed_and_its_bytes_freed() {
        let limits = Arc::new(OutputLimits::default());
        limits.set(ClientClass::PubSub, ClassLimit { hard: 1000, soft: 200, soft_seconds: 2 });
        let ps = PubSub::default();
        let (a, closed) = mailbox(1, &limits);
        let mut sa = Subscriptions::default();
        ps.subscribe(&mut sa, &a, Kind::Channel, b"c");
        let msg = vec![b'x'; 100];
        // Past the soft limit from t=0 and still at t=2s: not yet (more than 2 s are needed).
        for t in [0, 0, 2000] {
            assert_eq!(ps.publish(b"c", &msg, t), 1);
        }
        assert_eq!(closed.load(Ordering::SeqCst), 0);
        assert_eq!(ps.publish(b"c", &msg, 3001), 0);
        assert_eq!(closed.load(Ordering::SeqCst), 1);
        assert!(a.is_empty());
        // The hard limit closes at once.
        let (b, closed) = mailbox(2, &limits);
        let mut sb = Subscriptions::default();
        ps.subscribe(&mut sb, &b, Kind::Channel, b"c");
        let mut received = 0;
        for _ in 0..20 {
            received += ps.publish(b"c", &msg, 0);
        }
        assert_eq!(closed.load(Ordering::SeqCst), 1);
        assert!(received < 10, "{received}");
        // An unsubscribed client is in the normal class, unlimited by default.
        let (c, closed) = mailbox(3, &limits);
        for _ in 0..100 {
            assert!(c.deliver(0, |w| w.bulk(&msg)));
        }
        assert_eq!(closed.load(Ordering::SeqCst), 0);
    }
}
