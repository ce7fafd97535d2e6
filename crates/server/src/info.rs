//! The text of `INFO`, with Redis's section and field names.

use crate::connection::unix_ms;
use crate::Shared;
use commands::table::{table, Command};
use commands::{Session, Stats};
use std::fmt::Write;
use std::sync::atomic::Ordering;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL_EXTRA: &[&str] = &["commandstats", "latencystats"];

/// Renders `INFO` for the requested sections (empty, `default`, `all`, `everything`, or names).
pub fn render(s: &Shared, requested: &[String], _me: &Session) -> String {
    let mut wanted: Vec<&str> = Vec::new();
    if requested.is_empty() {
        wanted.extend(DEFAULT);
    }
    for r in requested {
        match r.as_str() {
            "default" => wanted.extend(DEFAULT),
            "all" | "everything" => {
                wanted.extend(DEFAULT);
                wanted.extend(ALL_EXTRA);
            }
            other => wanted.push(other),
        }
    }
    let mut out = String::new();
    let mut first = true;
    let mut section = |name: &str, out: &mut String, body: &dyn Fn(&mut String)| {
        if !wanted.contains(&name) {
            return;
        }
        if !first {
            out.push_str("\r\n");
        }
        first = false;
        let title = match name {
            "cpu" => "CPU".to_string(),
            other => {
                let mut c = other.chars();
                c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
            }
        };
        let _ = write!(out, "# {title}\r\n");
        body(out);
    };
    let now = unix_ms();
    section("server", &mut out, &|o| server(s, o, now));
    section("clients", &mut out, &|o| {
        let _ = write!(
            o,
            "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:{}\r\ntotal_blocking_keys:{}\r\ntotal_blocking_keys_on_nokey:0\r\n",
            s.clients.len(),
            s.config.maxclients.load(Ordering::Relaxed),
            s.waiters.blocked_clients(),
            s.tracking.counts().0,
            s.waiters.with_timeout(),
            s.waiters.blocking_keys(),
        );
    });
    section("memory", &mut out, &|o| memory(o));
    section("persistence", &mut out, &|o| s.info_persistence(o));
    section("stats", &mut out, &|o| {
        let st = &s.stats;
        let pubsub = s.pubsub.counts();
        let tracking = s.tracking.counts();
        let _ = write!(
            o,
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_subkeys:{}\r\nevicted_keys:0\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\n",
            s.clients.total_connections.load(Ordering::Relaxed),
            Stats::get(&st.total_commands),
            s.rates.ops_per_sec(),
            s.net_input_bytes.load(Ordering::Relaxed),
            s.net_output_bytes.load(Ordering::Relaxed),
            s.rates.input_kbps(),
            s.rates.output_kbps(),
            s.clients.rejected_connections.load(Ordering::Relaxed),
            Stats::get(&st.expired_keys),
            Stats::get(&st.expired_subkeys),
            Stats::get(&st.keyspace_hits),
            Stats::get(&st.keyspace_misses),
            pubsub.0,
            pubsub.1,
            pubsub.2,
            tracking.1,
            tracking.2,
            tracking.3,
            Stats::get(&st.error_replies),
        );
    });
    // Every node of a cluster takes writes, so each reports itself a master with no Redis
    // replicas (clients that read this must not treat followers as read-only); the offset is
    // the last applied log index, and the `raft_` lines say where the node stands in Raft.
    section("replication", &mut out, &|o| {
        let cluster = s.cluster();
        let offset = cluster.map_or(0, |c| c.applied_index());
        let _ = write!(
            o,
            "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
            s.run_id
        );
        if let Some(c) = cluster {
            o.push_str(&c.replication_info());
        }
    });
    section("cpu", &mut out, &|o| cpu(o));
    section("modules", &mut out, &|_| {});
    section("errorstats", &mut out, &|o| {
        for (code, n) in s.stats.errors_by_code.lock().iter() {
            let _ = write!(o, "errorstat_{code}:count={n}\r\n");
        }
    });
    // `cluster_enabled` is about the Redis Cluster protocol, which Tandem does not speak:
    // clients must keep treating a Tandem cluster as one standalone server.
    section("cluster", &mut out, &|o| {
        o.push_str("cluster_enabled:0\r\n");
        if let Some(c) = s.cluster() {
            o.push_str(&c.info());
        }
    });
    section("keyspace", &mut out, &|o| keyspace(s, o));
    section("commandstats", &mut out, &|o| commandstats(o));
    section("latencystats", &mut out, &|_| {});
    out
}

fn server(s: &Shared, o: &mut String, now: i64) {
    let uptime = (now - s.start_ms).max(0) / 1000;
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let (sysname, release, machine) = uname();
    let _ = write!(
        o,
        "redis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{sysname} {release} {machine}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{exe}\r\nconfig_file:{}\r\nio_threads_active:0\r\ntandem_version:{}\r\n",
        commands::family::server::REDIS_VERSION,
        std::process::id(),
        s.run_id,
        s.port.load(Ordering::Relaxed),
        now * 1000,
        uptime / 86400,
        s.config.hz.load(Ordering::Relaxed),
        s.config.hz.load(Ordering::Relaxed),
        (now / 1000) & 0xFF_FFFF,
        s.config_file,
        env!("CARGO_PKG_VERSION"),
    );
}

fn uname() -> (String, String, String) {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    ("Linux".into(), read("/proc/sys/kernel/osrelease"), std::env::consts::ARCH.into())
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Resident set size from /proc (bytes).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn memory(o: &mut String) {
    let rss = rss_bytes();
    let used = crate::memory::used();
    let _ = write!(
        o,
        "used_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\nmem_allocator:{}\r\n",
        human(used),
        human(rss),
        crate::memory::allocator_name()
    );
}

fn cpu(o: &mut String) {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    let _ = write!(
        o,
        "used_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n",
        t(ru.ru_stime),
        t(ru.ru_utime)
    );
}

fn keyspace(s: &Shared, o: &mut String) {
    let n = s.ks.databases();
    let mut keys = vec![0usize; n];
    let mut expires = vec![0usize; n];
    for i in 0..s.ks.num_shards() {
        let shard = s.ks.lock_deferred(i);
        for (db, d) in shard.dbs.iter().enumerate() {
            keys[db] += d.main.len();
            expires[db] += d.expires.len();
        }
    }
    for db in 0..n {
        if keys[db] > 0 {
            let _ = write!(o, "db{db}:keys={},expires={},avg_ttl=0\r\n", keys[db], expires[db]);
        }
    }
}

fn commandstats(o: &mut String) {
    fn one(o: &mut String, c: &Command) {
        let calls = Stats::get(&c.stats.calls);
        let rejected = Stats::get(&c.stats.rejected_calls);
        let failed = Stats::get(&c.stats.failed_calls);
        if calls > 0 || rejected > 0 || failed > 0 {
            let usec = Stats::get(&c.stats.usec);
            let per = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
            let _ = write!(
                o,
                "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                c.spec.name
            );
        }
        for s in c.subcommands.values() {
            one(o, s);
        }
    }
    let mut cmds: Vec<&Command> = table().implemented().collect();
    cmds.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    for c in cmds {
        one(o, c);
    }
}
