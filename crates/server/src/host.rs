//! `commands::Host` for the server: configuration, clients, INFO, pause, shutdown.

use crate::connection::unix_ms;
use crate::persist::SaveError;
use crate::Shared;
use commands::host::{Host, KillFilter};
use commands::{Session, Stats};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Host for Shared {
    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn waiters(&self) -> &commands::blocking::Waiters {
        &self.waiters
    }

    fn pubsub(&self) -> &commands::pubsub::PubSub {
        &self.pubsub
    }

    fn tracking(&self) -> &commands::tracking::Tracking {
        &self.tracking
    }

    fn client_mailbox(&self, id: u64) -> Option<Arc<commands::pubsub::Mailbox>> {
        self.clients.get(id).and_then(|c| c.mailbox.get().cloned())
    }

    fn monitors(&self) -> Option<&commands::monitor::Monitors> {
        Some(&self.monitors)
    }

    fn feed_monitors(&self, session: &Session, argv: &[&[u8]]) -> Option<Vec<u8>> {
        let addr = match self.clients.get(session.id) {
            Some(c) => c.addr.to_string(),
            None => "lua".into(),
        };
        let us = self.unix_time_us();
        self.monitors.feed(us, session.db, &addr, argv, us / 1000, session.id)
    }

    fn notify_flags(&self) -> u32 {
        self.config.notify_flags.load(Ordering::Relaxed)
    }

    fn requirepass(&self) -> Option<Vec<u8>> {
        self.config.requirepass.read().clone()
    }

    fn max_bulk_len(&self) -> u64 {
        self.config.max_bulk_len.load(Ordering::Relaxed)
    }

    fn lfu_policy(&self) -> bool {
        self.config.get("maxmemory-policy").contains("lfu")
    }

    fn config_get(&self, pattern: &[u8]) -> Vec<(String, String)> {
        self.config.get_matching(pattern)
    }

    fn config_set(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        let aof_was = self.config.get_bool("appendonly");
        self.config.set_many(pairs)?;
        // `save` and `stop-writes-on-bgsave-error` decide whether writes are refused.
        self.update_misconf_gate();
        self.aof_config_changed();
        let aof_now = self.config.get_bool("appendonly");
        if aof_was && !aof_now {
            self.aof_stop();
        } else if aof_now && !aof_was {
            self.aof_start_in_background();
        }
        Ok(())
    }

    fn config_resetstat(&self) {
        let s = &self.stats;
        for c in [&s.keyspace_hits, &s.keyspace_misses, &s.expired_keys, &s.total_commands, &s.error_replies] {
            c.store(0, Ordering::Relaxed);
        }
        s.errors_by_code.lock().clear();
        self.clients.total_connections.store(0, Ordering::Relaxed);
        self.clients.rejected_connections.store(0, Ordering::Relaxed);
        self.net_input_bytes.store(0, Ordering::Relaxed);
        self.net_output_bytes.store(0, Ordering::Relaxed);
    }

    fn config_rewrite(&self) -> Result<(), String> {
        if self.config_file.is_empty() {
            return Err("ERR The server is running without a config file".into());
        }
        Err("ERR Rewriting config file: not supported by this version of Tandem".into())
    }

    fn info(&self, sections: &[String], me: &Session) -> String {
        crate::info::render(self, sections, me)
    }

    fn client_list(&self, me: &Session, ids: Option<&[u64]>, client_type: Option<&str>) -> String {
        let now = unix_ms();
        // The caller's own line shows the command running now, as in Redis.
        if let Some(c) = self.clients.get(me.id) {
            c.publish(me, now, 0);
        }
        let mut s = String::new();
        for c in self.clients.all() {
            if ids.is_some_and(|ids| !ids.contains(&c.id)) {
                continue;
            }
            if let Some(t) = client_type {
                let pubsub = c.snapshot.lock().subs != (0, 0, 0);
                if (t == "pubsub") != pubsub || !matches!(t, "normal" | "pubsub") {
                    continue;
                }
            }
            s.push_str(&c.line(now));
            s.push('\n');
        }
        s
    }

    fn client_info(&self, me: &Session) -> String {
        match self.clients.get(me.id) {
            Some(c) => {
                c.publish(me, unix_ms(), 0);
                format!("{}\n", c.line(unix_ms()))
            }
            None => String::new(),
        }
    }

    fn client_kill(&self, me: &Session, filter: &KillFilter) -> usize {
        self.clients.kill(me.id, filter, unix_ms())
    }

    fn client_pause(&self, until_ms: i64, write_only: bool) {
        self.pause.set(until_ms, write_only);
    }

    fn client_unpause(&self) {
        self.pause.clear();
    }

    fn shutdown(&self, save: Option<bool>, _now: bool, _force: bool, abort: bool) -> Result<(), String> {
        if abort {
            return Err("ERR No shutdown in progress.".into());
        }
        tracing::warn!("User requested shutdown...");
        self.save_before_exit(save).map_err(|_| "ERR Errors trying to SHUTDOWN. Check logs.".to_string())?;
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown_notify.notify_one();
        Ok(())
    }

    fn set_active_expire(&self, on: bool) {
        self.config.force_set("active-expire-enabled", if on { "yes" } else { "no" }.into());
    }

    fn unix_time_us(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
    }

    fn read_consistency(&self) -> commands::session::ReadConsistency {
        self.config.read_consistency()
    }

    fn in_cluster(&self) -> bool {
        self.cluster().is_some()
    }

    fn cluster_members(&self) -> Option<Vec<commands::host::ClusterMember>> {
        let members = self.cluster()?.members();
        Some(
            members
                .into_iter()
                .map(|m| commands::host::ClusterMember {
                    id: m.id,
                    addr: m.addr,
                    voter: m.voter,
                    leader: m.leader,
                    matched: m.matched,
                    last_contact_ms: m.last_contact_ms,
                })
                .collect(),
        )
    }

    fn cluster_remove(&self, id: Option<u64>) -> Result<(), String> {
        let c = self.cluster().ok_or_else(|| commands::host::NOT_IN_CLUSTER.to_string())?;
        // Blocks this worker thread (its other connections wait) for at most
        // `cluster-write-timeout`: membership changes are rare administrative commands.
        c.remove_blocking(id).map_err(|e| format!("ERR {e}"))
    }

    fn repl_offset(&self) -> i64 {
        self.cluster().map_or(0, |c| c.applied_index() as i64)
    }

    fn cluster_transfer(&self, to: Option<u64>) -> Result<u64, String> {
        let c = self.cluster().ok_or_else(|| commands::host::NOT_IN_CLUSTER.to_string())?;
        // Blocks this worker thread for the transfer (a few seconds at most), like REMOVE.
        c.transfer_blocking(to).map_err(|e| format!("ERR {e}"))
    }

    fn save(&self) -> Result<(), String> {
        match self.save_now() {
            Ok(()) => Ok(()),
            Err(SaveError::Busy) => Err("ERR Background save already in progress".into()),
            // Redis answers a failed SAVE with a bare "ERR".
            Err(_) => Err("ERR".into()),
        }
    }

    fn bgsave(&self, schedule: bool) -> Result<&'static str, String> {
        match self.arc().start_bgsave() {
            Ok(()) => Ok("Background saving started"),
            Err(SaveError::Busy) if self.aof.rewrite_running.load(Ordering::SeqCst) => {
                if schedule {
                    self.persist.bgsave_scheduled.store(true, Ordering::SeqCst);
                    Ok("Background saving scheduled")
                } else {
                    Err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE \
                         in order to schedule a BGSAVE whenever possible."
                        .into())
                }
            }
            Err(SaveError::Busy) => Err("ERR Background save already in progress".into()),
            Err(_) => Err("ERR".into()),
        }
    }

    fn logging(&self) -> bool {
        self.aof.is_on()
    }

    fn log_effects(&self, effects: &[commands::effects::Effect]) -> u64 {
        self.aof.append(effects)
    }

    fn aof_error(&self) -> String {
        self.aof.error_text()
    }

    fn bgrewriteaof(&self) -> Result<&'static str, String> {
        self.arc().start_aof_rewrite()
    }

    fn lastsave(&self) -> i64 {
        self.persist.last_save()
    }

    fn flushed_all(&self, shards: &[&mut engine::Shard]) {
        self.after_flushall(shards);
    }

    fn debug_reload(&self, shards: &mut [&mut engine::Shard]) -> Result<(), String> {
        Shared::debug_reload(self, shards)
    }
}
