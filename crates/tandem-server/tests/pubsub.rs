//! Pub/sub with real clients where the differential cases cannot go: a subscriber that never
//! reads (closed at `client-output-buffer-limit`, memory flat), and many messages to
//! subscribers that do read, on Tandem and on redis-server side by side.

mod common;

use common::{redis, tandem, COMMON_FLAGS, REDIS_ONLY_FLAGS};
use std::time::{Duration, Instant};
use testkit::process::ServerProcess;
use testkit::{bulk, Frame, RawClient};

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

fn subscribe(server: &ServerProcess, channel: &str) -> RawClient {
    let mut c = server.client();
    assert_eq!(
        c.send(&["SUBSCRIBE", channel]),
        Frame::Array(vec![bulk("subscribe"), bulk(channel), Frame::Integer(1)])
    );
    c
}

/// A subscriber that never reads is closed once its output buffer passes the hard limit:
/// the publisher's 256 MiB of messages do not pile up in the server, while a subscriber that
/// reads gets every one of them. The same run against redis-server shows the same.
#[test]
fn a_subscriber_that_never_reads_is_closed_at_its_limit_and_memory_stays_flat() {
    let limit = ["--client-output-buffer-limit", "pubsub 8mb 2mb 60"];
    let t = tandem(&[COMMON_FLAGS, &limit].concat());
    let r = redis(&[COMMON_FLAGS, REDIS_ONLY_FLAGS, &limit].concat());
    for (name, server) in [("tandem", &*t), ("redis", &*r)] {
        let stalled = subscribe(server, "firehose");
        let mut reader = subscribe(server, "firehose");
        let message = vec![b'm'; 64 * 1024];
        let rounds = 4096;
        let before = rss_kib(server.pid());
        let mut peak = before;
        // The reader's progress: the publisher keeps at most 2 MiB ahead of it, so only the
        // stalled subscriber can reach the limit.
        let consumed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let progress = consumed.clone();
        let reading = std::thread::spawn(move || {
            for i in 0..rounds {
                progress.store(i, std::sync::atomic::Ordering::Relaxed);
                match reader.read_frame() {
                    Frame::Array(parts) if parts.len() == 3 && parts[2] == Frame::Bulk(vec![b'm'; 64 * 1024]) => {}
                    other => panic!("message {i}: {}", other.to_display()),
                }
            }
        });
        let mut publisher = server.client();
        let mut receivers = Vec::new();
        for chunk in 0..rounds / 16 {
            let deadline = Instant::now() + Duration::from_secs(20);
            while consumed.load(std::sync::atomic::Ordering::Relaxed) + 32 < chunk * 16 {
                assert!(Instant::now() < deadline, "{name}: the reading subscriber stopped");
                std::thread::sleep(Duration::from_millis(1));
            }
            for _ in 0..16 {
                publisher.write_command(&[&b"PUBLISH"[..], b"firehose", &message]).unwrap();
            }
            for _ in 0..16 {
                match publisher.read_frame() {
                    Frame::Integer(n) => receivers.push(n),
                    other => panic!("{name}: {}", other.to_display()),
                }
            }
            if chunk % 16 == 0 {
                peak = peak.max(rss_kib(server.pid()));
            }
        }
        reading.join().unwrap();
        // Every message reached the reader; the stalled one was dropped on the way.
        assert_eq!(receivers[0], 2, "{name}");
        assert_eq!(*receivers.last().unwrap(), 1, "{name}: the stalled subscriber is still there");
        let grown_mib = peak.saturating_sub(before) / 1024;
        println!("{name}: RSS grew by at most {grown_mib} MiB while 256 MiB were published");
        assert!(grown_mib < 64, "{name}: RSS grew by {grown_mib} MiB");
        let mut c = server.client();
        assert_eq!(c.send(&["PUBSUB", "NUMSUB", "firehose"]), Frame::Array(vec![bulk("firehose"), Frame::Integer(0)]));
        // The stalled client finds its connection closed once it reads what was sent.
        let mut stalled = stalled;
        stalled.set_timeout(Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match stalled.try_read_frame() {
                Ok(_) => assert!(Instant::now() < deadline, "{name}: the stalled subscriber was never closed"),
                Err(e) if e.is_closed() => break,
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    let log = t.stdout() + &t.stderr();
    assert!(log.contains("closed for overcoming of output buffer limits"), "{log}");
}

/// `MONITOR` beside redis-server: the same commands give the same lines (timestamps and
/// client addresses aside): commands shown once they ran (a failure while running is shown,
/// a refusal before it is not), with the database selected after them, never administrative
/// commands, passwords redacted, arguments quoted as Redis quotes them. The monitoring client
/// may not touch keys, and a second `MONITOR` gets no reply.
#[test]
fn monitor_shows_what_redis_shows() {
    let t = tandem(COMMON_FLAGS);
    let r = redis(&[COMMON_FLAGS, REDIS_ONLY_FLAGS].concat());
    let mut seen = Vec::new();
    for server in [&*t, &*r] {
        let mut m = server.client();
        assert_eq!(m.send(&["MONITOR"]), Frame::Simple(b"OK".to_vec()));
        let mut c = server.client();
        let script: &[&[&str]] = &[
            &["SET", "k", "v"],
            &["GET", "k"],
            &["NOSUCHCOMMAND", "x"],
            &["GET"],
            &["LPUSH", "k", "x"],
            &["CONFIG", "GET", "maxmemory"],
            &["SELECT", "2"],
            &["SET", "a b", "x\ny\"\\\u{1}"],
            &["AUTH", "secret"],
            &["HELLO", "2", "AUTH", "default", "secret"],
            &["MULTI"],
            &["INCR", "n"],
            &["PING"],
            &["EXEC"],
            &["ECHO", "done"],
        ];
        for cmd in script {
            c.send(cmd);
        }
        let mut lines = Vec::new();
        loop {
            let line = match m.read_frame() {
                Frame::Simple(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("{other:?}"),
            };
            // "<seconds>.<micros> [<db> <addr>] args": keep the database and the arguments.
            let (ts, rest) = line.split_once(' ').unwrap();
            assert!(ts.len() == 17 && ts.as_bytes()[10] == b'.', "{line}");
            let (db_addr, args) = rest.split_once("] ").unwrap();
            let db = db_addr.trim_start_matches('[').split(' ').next().unwrap();
            let done = args == "\"ECHO\" \"done\"";
            lines.push(format!("[{db}] {args}"));
            if done {
                break;
            }
        }
        assert_eq!(m.send(&["GET", "k"]), Frame::Error(b"ERR Replica can't interact with the keyspace".to_vec()));
        m.write_command(&["MONITOR"]).unwrap();
        assert_eq!(m.send(&["PING"]), Frame::Simple(b"PONG".to_vec()), "a second MONITOR answers nothing");
        // A monitor sees its own commands too, after their replies.
        match m.read_frame() {
            Frame::Simple(line) if line.ends_with(b"] \"PING\"") => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(m.send(&["RESET"]), Frame::Simple(b"RESET".to_vec()));
        assert_eq!(m.send(&["GET", "k"]), Frame::Bulk(b"v".to_vec()));
        seen.push(lines);
    }
    assert_eq!(seen[0], seen[1], "tandem's lines, then redis's");
}

/// The idle `timeout` closes idle clients but not subscribers, which only listen (Redis
/// exempts them too): side by side with redis-server.
#[test]
fn the_idle_timeout_spares_subscribers() {
    let flags = ["--timeout", "1"];
    let t = tandem(&flags);
    let r = redis(&[REDIS_ONLY_FLAGS, &flags].concat());
    for (name, server) in [("tandem", &*t), ("redis", &*r)] {
        let mut idle = server.client();
        assert_eq!(idle.send(&["PING"]), Frame::Simple(b"PONG".to_vec()));
        let mut sub = subscribe(server, "quiet");
        // Redis checks timeouts in its cron, up to a second late.
        std::thread::sleep(Duration::from_millis(3200));
        assert_eq!(server.client().send(&["PUBLISH", "quiet", "still here"]), Frame::Integer(1), "{name}");
        assert_eq!(sub.read_frame(), Frame::Array(vec![bulk("message"), bulk("quiet"), bulk("still here")]), "{name}");
        assert!(idle.try_read_frame().is_err_and(|e| e.is_closed()), "{name}: the idle client is closed");
    }
}
