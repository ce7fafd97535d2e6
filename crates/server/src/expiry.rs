//! The active expiry cycle, run `hz` times a second like Redis's `activeExpireCycle`: each
//! run walks the shards, samples volatile keys per database, removes the expired ones, and
//! keeps going on a database while more than a quarter of its samples were expired, within a
//! time budget of a quarter of the cycle period. It also drives incremental rehashing and
//! shrinking of the tables, as Redis's `databasesCron` does.

use crate::connection::unix_ms;
use crate::Shared;
use commands::Stats;
use engine::expire::{sample_and_expire, KEYS_PER_LOOP};
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
        // In a cluster only applied log entries change the dataset: no node removes expired
        // keys on its own (reads hide them; writes that meet them remove them on every node).
        let active = shared.config.active_expire.load(Ordering::Relaxed) && shared.cluster().is_none();
        let s = shared.clone();
        let mut r = Rng::new(rng.next_u64());
        let start_shard = next_shard;
        // The cycle takes locks and may run for milliseconds: keep it off the async workers.
        next_shard =
            tokio::task::spawn_blocking(move || cycle(&s, &mut r, start_shard, budget, active)).await.unwrap_or(0);
    }
}

/// One cycle; returns the shard to resume from next time.
fn cycle(shared: &Shared, rng: &mut Rng, start_shard: usize, budget: Duration, active: bool) -> usize {
    let t0 = Instant::now();
    let n = shared.ks.num_shards();
    for step in 0..n {
        let i = (start_shard + step) % n;
        if t0.elapsed() > budget {
            return i;
        }
        // Rehashing and shrinking leave the keys as they are, so a pending snapshot need not be
        // served first; removing expired keys does change them (captured just below).
        let mut shard = shared.ks.lock_deferred(i);
        if active && shard.dbs.iter().any(|d| !d.expires.is_empty()) {
            shard.capture_now();
        }
        // Read under the shard lock, like a command's `Host::logging`.
        let logging = shared.aof.is_on();
        for (d, db) in shard.dbs.iter_mut().enumerate() {
            if active && !db.expires.is_empty() {
                loop {
                    let now = unix_ms();
                    let s = sample_and_expire(db, now, rng, KEYS_PER_LOOP, |key| {
                        // Logged as DEL under the shard lock, in order with commands on the key.
                        if logging {
                            shared.aof.append_one(d, &[b"DEL", key]);
                        }
                    });
                    Stats::add(&shared.stats.expired_keys, s.expired as u64);
                    if s.sampled == 0 || s.expired * 4 <= s.sampled || t0.elapsed() > budget {
                        break;
                    }
                }
            }
            db.main.shrink_if_needed();
            db.expires.shrink_if_needed();
            db.main.rehash(100);
            db.expires.rehash(100);
        }
    }
    0
}
