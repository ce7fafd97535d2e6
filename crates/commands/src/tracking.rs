//! Client-side caching (`CLIENT TRACKING`): which clients want to hear of which keys'
//! changes, and the invalidation messages that tell them.
//!
//! Two ways to track, as in Redis:
//! * default mode: a client is told of the keys it read. The reading command remembers its
//!   keys in their shard's `engine::tracked::TrackedKeys` (under the shard lock it holds); a
//!   command that changes a key takes the key's readers from there (so each read yields at
//!   most one invalidation) and `execute` sends them one message per key;
//! * `BCAST`: a client is told of every changed key under its prefixes. While any broadcast
//!   client exists, commands collect every key they change and `execute` sends, per prefix,
//!   one message listing that prefix's keys (Redis collects them per event-loop iteration;
//!   Tandem per command).
//!
//! Messages go to the client's mailbox (a RESP3 push), or to its `REDIRECT` target's
//! (a push if that one speaks RESP3, a `__redis__:invalidate` pub/sub message if it speaks
//! RESP2 and is subscribed to anything, else nothing). A message for the client running the
//! command goes out after that command's reply (`Session::after_reply`), as in Redis.
//! Flushes (`FLUSHDB`, `FLUSHALL`, `DEBUG RELOAD`, a cluster snapshot installed) send every
//! tracking client a null invalidation and forget every tracked key (`SWAPDB` does not, as
//! in Redis 7.0).
//!
//! Lock order: the registry's locks and each mailbox are leaves, taken under shard locks.

use crate::errors::CmdError;
use crate::host::Host;
use crate::pubsub::Mailbox;
use crate::session::Session;
use parking_lot::RwLock;
use protocol::{ReplyWriter, Resp};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The pub/sub channel RESP2 redirect targets hear invalidations on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// One client's tracking, as its last `CLIENT TRACKING ON` set it.
#[derive(Debug)]
pub struct Tracker {
    /// The client's id.
    pub id: u64,
    /// The client's own mailbox (for its pushes, and the broken-redirect notice).
    pub mailbox: Arc<Mailbox>,
    /// `BCAST`: told of every change under its prefixes, reads remember nothing.
    pub bcast: bool,
    /// `OPTIN`: reads are remembered only after `CLIENT CACHING yes`.
    pub optin: bool,
    /// `OPTOUT`: reads are remembered unless `CLIENT CACHING no` preceded them.
    pub optout: bool,
    /// `NOLOOP`: not told of its own changes.
    pub noloop: bool,
    /// `REDIRECT`: the client its messages go to (0: itself).
    pub redirect: u64,
    /// `BCAST` prefixes, in byte order (accumulated over `ON` calls until `OFF`).
    pub prefixes: Vec<Vec<u8>>,
    /// The redirect target went away (`broken_redirect`, flag `R`).
    pub broken: AtomicBool,
}

/// What `CLIENT TRACKING ON` asked for.
#[derive(Debug, Default)]
pub struct On {
    /// `REDIRECT id` (0: none).
    pub redirect: u64,
    /// `BCAST`
    pub bcast: bool,
    /// `OPTIN`
    pub optin: bool,
    /// `OPTOUT`
    pub optout: bool,
    /// `NOLOOP`
    pub noloop: bool,
    /// `PREFIX p ...`
    pub prefixes: Vec<Vec<u8>>,
}

/// What an invalidation says.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// These keys changed.
    Keys(&'a [&'a [u8]]),
    /// Everything changed (a flush): a null instead of the key list.
    Flush,
}

/// Where messages for the client running the command go instead of its mailbox: after
/// its reply.
pub struct Me<'a> {
    /// Its id.
    pub id: u64,
    /// Its protocol.
    pub resp: Resp,
    /// Bytes written after its reply.
    pub after_reply: &'a mut Vec<u8>,
}

impl<'a> Me<'a> {
    /// The client of `session`.
    pub fn of(session: &'a mut Session) -> Me<'a> {
        Me { id: session.id, resp: session.resp, after_reply: &mut session.after_reply }
    }

    /// No client (the expiry cycle, a snapshot installed): every message goes to a mailbox.
    pub fn nobody(unused: &'a mut Vec<u8>) -> Me<'a> {
        Me { id: 0, resp: Resp::V2, after_reply: unused }
    }
}

/// Every client's tracking state (redirect targets are found through `Host::client_mailbox`).
#[derive(Default)]
pub struct Tracking {
    trackers: RwLock<HashMap<u64, Arc<Tracker>>>,
    /// `BCAST` prefixes and the clients of each.
    prefixes: RwLock<BTreeMap<Vec<u8>, BTreeSet<u64>>>,
    /// Clients with tracking on (`tracking_clients`).
    clients: AtomicUsize,
    /// Any `BCAST` prefix exists: commands collect the keys they change.
    bcast: AtomicBool,
    /// Tracked keys and (key, client) pairs over every shard.
    keys: AtomicUsize,
    items: AtomicUsize,
    /// `tracking-table-max-keys` (0: no limit), shared with the configuration.
    max_keys: Arc<AtomicU64>,
}

impl Tracking {
    /// A registry whose key limit is `max_keys` (`tracking-table-max-keys`).
    pub fn new(max_keys: Arc<AtomicU64>) -> Tracking {
        Tracking { max_keys, ..Tracking::default() }
    }

    /// True if any `BCAST` prefix exists: changed keys must be collected.
    #[inline]
    pub fn broadcasting(&self) -> bool {
        self.bcast.load(Ordering::Relaxed)
    }

    /// Client `id`'s tracking, if on.
    pub fn tracker(&self, id: u64) -> Option<Arc<Tracker>> {
        self.trackers.read().get(&id).cloned()
    }

    /// `tracking_clients`, `tracking_total_keys`, `tracking_total_items`,
    /// `tracking_total_prefixes`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.clients.load(Ordering::Relaxed),
            self.keys.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
            self.prefixes.read().len(),
        )
    }

    /// Turns tracking on for client `id` (its `mailbox`), replacing its flags and redirect;
    /// `BCAST` prefixes add to those it had. The caller checked `on` against the client's
    /// current state ([`check_on`]).
    pub fn enable(&self, mailbox: &Arc<Mailbox>, on: On) -> Arc<Tracker> {
        let id = mailbox.id;
        let mut trackers = self.trackers.write();
        let old = trackers.get(&id).cloned();
        let mut prefixes: BTreeSet<Vec<u8>> = old.iter().flat_map(|t| t.prefixes.iter().cloned()).collect();
        if on.bcast {
            let new: Vec<Vec<u8>> = if on.prefixes.is_empty() { vec![Vec::new()] } else { on.prefixes };
            let mut table = self.prefixes.write();
            for p in new {
                table.entry(p.clone()).or_default().insert(id);
                prefixes.insert(p);
            }
            self.bcast.store(!table.is_empty(), Ordering::Relaxed);
        }
        let t = Arc::new(Tracker {
            id,
            mailbox: mailbox.clone(),
            bcast: on.bcast,
            optin: on.optin,
            optout: on.optout,
            noloop: on.noloop,
            redirect: on.redirect,
            prefixes: prefixes.into_iter().collect(),
            broken: AtomicBool::new(false),
        });
        if trackers.insert(id, t.clone()).is_none() {
            self.clients.fetch_add(1, Ordering::Relaxed);
        }
        t
    }

    /// Turns tracking off for client `id`. The keys it read stay in the tables until they
    /// change (Redis leaves them too: turned on again, the client hears of them).
    pub fn disable(&self, id: u64) {
        let Some(t) = self.trackers.write().remove(&id) else { return };
        self.clients.fetch_sub(1, Ordering::Relaxed);
        if !t.prefixes.is_empty() {
            let mut table = self.prefixes.write();
            for p in &t.prefixes {
                if let Some(ids) = table.get_mut(p) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        table.remove(p);
                    }
                }
            }
            self.bcast.store(!table.is_empty(), Ordering::Relaxed);
        }
    }

    /// Remembers that client `id` read `key` (in `table`, the key's shard's, locked by the
    /// caller).
    pub fn remember(&self, table: &mut engine::tracked::TrackedKeys, key: &[u8], id: u64) {
        let (new_key, new_item) = table.add(key, id);
        if new_key {
            self.keys.fetch_add(1, Ordering::Relaxed);
        }
        if new_item {
            self.items.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes `key`'s readers out of `table` (its shard's, locked by the caller).
    pub fn take(&self, table: &mut engine::tracked::TrackedKeys, key: &[u8]) -> Vec<u64> {
        match table.take(key) {
            Some(ids) => {
                self.keys.fetch_sub(1, Ordering::Relaxed);
                self.items.fetch_sub(ids.len(), Ordering::Relaxed);
                ids
            }
            None => Vec::new(),
        }
    }

    /// Forgets every key of `table` (a flush; its shard locked by the caller).
    pub fn clear(&self, table: &mut engine::tracked::TrackedKeys) {
        let (keys, items) = table.clear();
        self.keys.fetch_sub(keys, Ordering::Relaxed);
        self.items.fetch_sub(items, Ordering::Relaxed);
    }

    /// True while more keys are tracked than `tracking-table-max-keys` allows.
    pub fn over_limit(&self) -> bool {
        let max = self.max_keys.load(Ordering::Relaxed);
        max > 0 && self.keys.load(Ordering::Relaxed) as u64 > max
    }

    /// Sends the invalidations of a command's changes: `changed` holds each changed key
    /// with the clients that had read it (empty when it was collected only for `BCAST`);
    /// `bcast` says whether every changed key was collected. `me` ran the command.
    pub fn invalidate(&self, host: &dyn Host, changed: &[(Vec<u8>, Vec<u64>)], bcast: bool, me: &mut Me, now_ms: i64) {
        let trackers = self.trackers.read();
        for (key, ids) in changed {
            for id in ids {
                let Some(t) = trackers.get(id) else { continue };
                if t.bcast || (t.noloop && *id == me.id) {
                    continue;
                }
                self.send(host, t, Payload::Keys(&[key.as_slice()]), me, now_ms);
            }
        }
        if !bcast {
            return;
        }
        let prefixes = self.prefixes.read();
        if prefixes.is_empty() {
            return;
        }
        let mut keys: Vec<&[u8]> = changed.iter().map(|(k, _)| k.as_slice()).collect();
        keys.sort_unstable();
        keys.dedup();
        for (prefix, ids) in prefixes.iter() {
            let under: Vec<&[u8]> = keys.iter().copied().filter(|k| k.starts_with(prefix)).collect();
            if under.is_empty() {
                continue;
            }
            for id in ids {
                let Some(t) = trackers.get(id) else { continue };
                // Every key of one command has the same writer: a NOLOOP client's own.
                if t.noloop && *id == me.id {
                    continue;
                }
                self.send(host, t, Payload::Keys(&under), me, now_ms);
            }
        }
    }

    /// A flush: every tracking client is told everything changed.
    pub fn flushed(&self, host: &dyn Host, me: &mut Me, now_ms: i64) {
        let trackers = self.trackers.read();
        for t in trackers.values() {
            self.send(host, t, Payload::Flush, me, now_ms);
        }
    }

    /// Redis's `sendTrackingMessage`: the message for tracker `t`, to it or its redirect.
    /// Messages for the client running the command, about its own tracking, wait for its
    /// reply; any other goes out at once (Redis sends a redirect target's at once too, even
    /// when the target is the client running the command).
    fn send(&self, host: &dyn Host, t: &Tracker, payload: Payload, me: &mut Me, now_ms: i64) {
        let defer = t.id == me.id;
        let protocol = |m: &Mailbox, me: &Me| if defer && m.id == me.id { me.resp } else { m.resp() };
        let target = if t.redirect == 0 {
            t.mailbox.clone()
        } else {
            match host.client_mailbox(t.redirect) {
                Some(m) => m,
                None => {
                    t.broken.store(true, Ordering::Relaxed);
                    if protocol(&t.mailbox, me) == Resp::V3 {
                        let redirect = t.redirect as i64;
                        put(&t.mailbox, defer, me, now_ms, |w| {
                            w.push(2);
                            w.bulk(b"tracking-redir-broken");
                            w.int(redirect);
                        });
                    }
                    return;
                }
            }
        };
        let resp3 = protocol(&target, me) == Resp::V3;
        // RESP2 has no out-of-band frames but pub/sub messages, on a subscribed redirect target.
        let as_message = t.redirect != 0 && target.is_subscribed();
        if !resp3 && !as_message {
            return;
        }
        put(&target, defer, me, now_ms, |w| {
            if resp3 {
                w.push(2);
                w.bulk(b"invalidate");
            } else {
                w.array(3);
                w.bulk(b"message");
                w.bulk(CHANNEL);
            }
            match payload {
                Payload::Keys(keys) => {
                    w.array(keys.len());
                    for k in keys {
                        w.bulk(k);
                    }
                }
                Payload::Flush => w.null(),
            }
        });
    }
}

/// Encodes a message for `mailbox`'s client: after the reply if it is the client running
/// the command and the message is `defer`red, else into its mailbox.
fn put(mailbox: &Mailbox, defer: bool, me: &mut Me, now_ms: i64, encode: impl FnOnce(&mut ReplyWriter)) {
    if defer && mailbox.id == me.id {
        let mut w = ReplyWriter::new(me.resp);
        w.buf = std::mem::take(me.after_reply);
        encode(&mut w);
        *me.after_reply = w.buf;
    } else {
        mailbox.deliver(now_ms, encode);
    }
}

/// Checks `CLIENT TRACKING ON` with these options against the client's current tracking,
/// in Redis's order, with its texts.
pub fn check_on(on: &On, current: Option<&Tracker>) -> Result<(), CmdError> {
    if !on.bcast && !on.prefixes.is_empty() {
        return Err(CmdError::err("PREFIX option requires BCAST mode to be enabled"));
    }
    if current.is_some_and(|t| t.bcast != on.bcast) {
        return Err(CmdError::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if on.bcast && (on.optin || on.optout) {
        return Err(CmdError::err("OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if on.optin && on.optout {
        return Err(CmdError::err("You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if current.is_some_and(|t| (on.optin && t.optout) || (on.optout && t.optin)) {
        return Err(CmdError::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if on.bcast {
        // Two prefixes overlap when one starts the other (the empty prefix overlaps all).
        let overlap = |a: &[u8], b: &[u8]| a[..a.len().min(b.len())] == b[..a.len().min(b.len())];
        let existing = current.map(|t| t.prefixes.as_slice()).unwrap_or(&[]);
        for (i, p) in on.prefixes.iter().enumerate() {
            if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
                return Err(CmdError::err(format!(
                    "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(e)
                )));
            }
            if let Some(q) = on.prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
                return Err(CmdError::err(format!(
                    "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(q)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(bcast: bool, optin: bool, optout: bool, prefixes: &[&[u8]]) -> Tracker {
        let limits = Arc::new(crate::pubsub::OutputLimits::default());
        Tracker {
            id: 1,
            mailbox: Arc::new(Mailbox::new(1, limits, Box::new(|| ()))),
            bcast,
            optin,
            optout,
            noloop: false,
            redirect: 0,
            prefixes: prefixes.iter().map(|p| p.to_vec()).collect(),
            broken: AtomicBool::new(false),
        }
    }

    fn err(r: Result<(), CmdError>) -> String {
        String::from_utf8(r.unwrap_err().to_bytes()).unwrap()
    }

    #[test]
    fn options_are_checked_in_redis_order() {
        let on = |bcast, optin, optout, prefixes: &[&[u8]]| On {
            bcast,
            optin,
            optout,
            prefixes: prefixes.iter().map(|p| p.to_vec()).collect(),
            ..On::default()
        };
        assert!(err(check_on(&on(false, true, true, &[b"a"]), None)).starts_with("ERR PREFIX option"));
        assert!(err(check_on(&on(true, true, false, &[]), None)).starts_with("ERR OPTIN and OPTOUT are not"));
        assert!(err(check_on(&on(false, true, true, &[]), None)).starts_with("ERR You can't specify both"));
        let optin = tracker(false, true, false, &[]);
        assert!(err(check_on(&on(false, false, true, &[]), Some(&optin))).contains("switch OPTIN/OPTOUT"));
        assert!(check_on(&on(false, false, false, &[]), Some(&optin)).is_ok());
        assert!(err(check_on(&on(true, false, false, &[]), Some(&optin))).contains("switch BCAST"));
        let b = tracker(true, false, false, &[b"user:"]);
        assert_eq!(
            err(check_on(&on(true, false, false, &[b"user:1"]), Some(&b))),
            "ERR Prefix 'user:1' overlaps with an existing prefix 'user:'. Prefixes for a single client must not overlap."
        );
        assert_eq!(
            err(check_on(&on(true, false, false, &[b"a", b"b", b"bar"]), None)),
            "ERR Prefix 'b' overlaps with another provided prefix 'bar'. Prefixes for a single client must not overlap."
        );
        let all = tracker(true, false, false, &[b""]);
        assert!(err(check_on(&on(true, false, false, &[b"x"]), Some(&all))).contains("existing prefix ''"));
        assert!(check_on(&on(true, false, false, &[]), Some(&all)).is_ok());
    }
}

#[cfg(test)]
mod ordering_tests {
    use crate::pubsub::{Mailbox, OutputLimits};
    use crate::testing::Harness;
    use std::sync::Arc;

    /// A message that reaches a client after its command released its locks (another
    /// client's change of a key it just read) goes after that command's reply, never before:
    /// before it, the client would apply the invalidation and then cache the stale value.
    #[test]
    fn messages_after_a_command_ended_follow_its_reply() {
        let mut h = Harness::new(0);
        let mailbox = Arc::new(Mailbox::new(1, Arc::new(OutputLimits::default()), Box::new(|| ())));
        h.session.mailbox = Some(mailbox.clone());
        mailbox.deliver(0, |w| w.simple(b"early"));
        h.run(&["GET", "k"]);
        mailbox.deliver(0, |w| w.simple(b"late"));
        let mut out = b"$-1\r\n".to_vec();
        mailbox.splice_into(&mut out, 0, h.session.mail_mark);
        assert_eq!(out, b"+early\r\n$-1\r\n+late\r\n");
    }
}
