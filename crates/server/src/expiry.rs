//! The active expiry cycle, run `hz` times a second like Redis's `activeExpireCycle`: each
//! run walks the shards, samples volatile keys per database, removes the expired ones, and
//! keeps going on a database while more than a quarter of its samples were expired, within a
//! time budget of a quarter of the cycle period. It also drives incremental rehashing and
//! shrinking of the tables, as Redis's `databasesCron` does.
//!
//! In a cluster only applied log entries change the dataset, so no node removes keys on its
//! own: the leader's cycle only collects expired keys (at the log's time) and sends them
//! through the log as `TANDEM REAP`, which removes those still expired on every node.

use crate::connection::unix_ms;
use crate::Shared;
use commands::notify::{self, Event};
use commands::Stats;
use engine::expire::{expire_hash_fields, sample_and_expire, sample_expired, Reaped, KEYS_PER_LOOP};
use engine::watched::Change;
use engine::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the cycle until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut rng = Rng::new(crate::random_seed());
    let mut next_shard = 0usize;
    loop {
        let hz = shared.config.hz.load(Ordering::Relaxed).max(1);
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        if shared.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        let budget = Duration::from_micros(250_000 / hz);
        let on = shared.config.active_expire.load(Ordering::Relaxed);
        let cluster = shared.cluster().cloned();
        let mode = match &cluster {
            None if on => Mode::Remove,
            Some(c) if on && c.is_leader() => Mode::Collect(c.clock_ms()),
            _ => Mode::Off,
        };
        let s = shared.clone();
        let mut r = Rng::new(rng.next_u64());
        let start_shard = next_shard;
        // The cycle takes locks and may run for milliseconds: keep it off the async workers.
        let (next, found) = tokio::task::spawn_blocking(move || cycle(&s, &mut r, start_shard, budget, mode))
            .await
            .unwrap_or((0, Vec::new()));
        next_shard = next;
        if let Some(c) = cluster {
            reap(&c, found).await;
        }
    }
}

/// What a cycle does about expired keys.
#[derive(Clone, Copy)]
enum Mode {
    /// Nothing (`active-expire-enabled no`, or a cluster node that does not lead).
    Off,
    /// Removes them (a single server).
    Remove,
    /// Collects those expired at this (log) time, for the leader to send through the log.
    Collect(i64),
}

/// Expired keys collected by a cycle, per database.
type Found = Vec<(usize, Vec<Box<[u8]>>)>;

/// Keys a cycle collects per database of a shard, at most.
const COLLECT_PER_DB: usize = 256;

/// Keys one `TANDEM REAP` entry names, at most.
const REAP_BATCH: usize = 512;

/// Sends collected expired keys through the log. A failed write is not retried here: the
/// keys are still expired, and a later cycle finds them again.
async fn reap(cluster: &Arc<cluster::Cluster>, found: Found) {
    for (db, keys) in found {
        for chunk in keys.chunks(REAP_BATCH) {
            let mut argv: Vec<Vec<u8>> = Vec::with_capacity(chunk.len() + 2);
            argv.push(b"TANDEM".to_vec());
            argv.push(b"REAP".to_vec());
            argv.extend(chunk.iter().map(|k| k.to_vec()));
            // (Time is the leader's to stamp; REAP uses no randomness.)
            let mut req = cluster::Request::builder(db as u32, 2, None);
            req.push(&argv, 0);
            let req = req.finish();
            if let Err(e) = cluster.write(req).await {
                tracing::debug!("expired keys not reaped this time: {}", e.reply_text());
                return;
            }
        }
    }
}

/// One cycle; returns the shard to resume from next time, and the expired keys it collected
/// per database (`Mode::Collect`).
fn cycle(shared: &Shared, rng: &mut Rng, start_shard: usize, budget: Duration, mode: Mode) -> (usize, Found) {
    let t0 = Instant::now();
    let n = shared.ks.num_shards();
    let mut found: Found = Vec::new();
    for step in 0..n {
        let i = (start_shard + step) % n;
        if t0.elapsed() > budget {
            return (i, found);
        }
        // Rehashing and shrinking leave the keys as they are, so a pending snapshot need not be
        // served first; removing expired keys does change them (captured just below).
        let mut shard = shared.ks.lock_deferred(i);
        let remove = matches!(mode, Mode::Remove);
        if remove && shard.dbs.iter().any(|d| !d.expires.is_empty() || !d.hash_fields.is_empty()) {
            shard.capture_now();
        }
        // Read under the shard lock, like a command's `Host::logging`.
        let logging = shared.aof.is_on();
        // Keyspace events of what this shard's turn removes, published under its lock.
        let flags = shared.config.notify_flags.load(std::sync::atomic::Ordering::Relaxed);
        let mut events: Vec<Event> = Vec::new();
        let shard = &mut *shard;
        let watched = &mut shard.watched;
        // Client-side caching: the readers of removed keys (and broadcast clients) are told.
        let tracked = &mut shard.tracked;
        let bcast = shared.tracking.broadcasting();
        let mut invalidated: Vec<(Vec<u8>, Vec<u64>)> = Vec::new();
        let mut invalidate = |key: &[u8]| {
            if bcast || (!tracked.is_empty() && tracked.contains(key)) {
                invalidated.push((key.to_vec(), shared.tracking.take(tracked, key)));
            }
        };
        for (d, db) in shard.dbs.iter_mut().enumerate() {
            match mode {
                Mode::Remove if !db.expires.is_empty() => loop {
                    let now = unix_ms();
                    let s = sample_and_expire(db, now, rng, KEYS_PER_LOOP, |key| {
                        if !watched.is_empty() {
                            watched.touch(d, key, Change::ExpiredRemoved);
                        }
                        invalidate(key);
                        // Logged as DEL under the shard lock, in order with commands on the key.
                        if logging {
                            shared.aof.append_one(d, &[b"DEL", key]);
                        }
                        notify::record(&mut events, flags, notify::EXPIRED, "expired", d, key);
                    });
                    Stats::add(&shared.stats.expired_keys, s.expired as u64);
                    if s.sampled == 0 || s.expired * 4 <= s.sampled || t0.elapsed() > budget {
                        break;
                    }
                },
                Mode::Collect(now) if !db.expires.is_empty() => {
                    let mut keys = Vec::new();
                    loop {
                        // Nothing is removed, so samples repeat: a round that finds few keys
                        // not already collected ends the database's turn.
                        let s = sample_expired(db, now, rng, KEYS_PER_LOOP, &mut keys);
                        if s.sampled == 0
                            || s.expired * 4 <= s.sampled
                            || keys.len() >= COLLECT_PER_DB
                            || t0.elapsed() > budget
                        {
                            break;
                        }
                    }
                    if !keys.is_empty() {
                        match found.iter_mut().find(|(fd, _)| *fd == d) {
                            Some((_, all)) => all.extend(keys),
                            None => found.push((d, keys)),
                        }
                    }
                }
                _ => {}
            }
            // Hash fields: the hashes are kept in order of their earliest field expiry, so
            // the due ones are taken first, without sampling.
            match mode {
                Mode::Remove if !db.hash_fields.is_empty() => loop {
                    let now = unix_ms();
                    let mut fields = 0;
                    let visited = expire_hash_fields(db, now, KEYS_PER_LOOP, |key, reaped| match reaped {
                        Reaped::Key => {
                            if !watched.is_empty() {
                                watched.touch(d, key, Change::ExpiredRemoved);
                            }
                            invalidate(key);
                            Stats::add(&shared.stats.expired_keys, 1);
                            if logging {
                                shared.aof.append_one(d, &[b"DEL", key]);
                            }
                            notify::record(&mut events, flags, notify::EXPIRED, "expired", d, key);
                        }
                        Reaped::Fields(gone) => {
                            fields += gone.len();
                            if !watched.is_empty() {
                                watched.touch(d, key, Change::Modified);
                            }
                            invalidate(key);
                            if logging {
                                let mut argv: Vec<&[u8]> = vec![b"HDEL", key];
                                argv.extend(gone.iter().map(|f| &**f));
                                shared.aof.append_one(d, &argv);
                            }
                            notify::record(&mut events, flags, notify::HASH, "hexpired", d, key);
                        }
                    });
                    Stats::add(&shared.stats.expired_subkeys, fields as u64);
                    if visited < KEYS_PER_LOOP || t0.elapsed() > budget {
                        break;
                    }
                },
                Mode::Collect(now) if !db.hash_fields.is_empty() => {
                    let keys = db.hash_fields.due(now, COLLECT_PER_DB);
                    if !keys.is_empty() {
                        match found.iter_mut().find(|(fd, _)| *fd == d) {
                            Some((_, all)) => all.extend(keys),
                            None => found.push((d, keys)),
                        }
                    }
                }
                _ => {}
            }
            if !events.is_empty() {
                // A hash that lost its last field is gone too: `del` after its `hexpired`.
                let mut all = Vec::with_capacity(events.len());
                for e in events.drain(..) {
                    let emptied = e.name == "hexpired" && db.value(shared.ks.hash(&e.key), &e.key).is_none();
                    let (d, key) = (e.db, if emptied { e.key.clone() } else { Vec::new() });
                    all.push(e);
                    if emptied {
                        notify::record(&mut all, flags, notify::GENERIC, "del", d, &key);
                    }
                }
                notify::publish(shared, flags, &all, unix_ms());
            }
            db.main.shrink_if_needed();
            db.expires.shrink_if_needed();
            db.main.rehash(100);
            db.expires.rehash(100);
        }
        if !invalidated.is_empty() {
            // Still under the shard lock, like a command's.
            let mut unused = Vec::new();
            let mut me = commands::tracking::Me::nobody(&mut unused);
            shared.tracking.invalidate(shared, &invalidated, bcast, &mut me, unix_ms());
        }
    }
    (0, found)
}
