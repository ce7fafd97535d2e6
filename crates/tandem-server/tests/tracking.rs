//! Client-side caching with real clients where the differential cases cannot go: a redirect
//! target that went away, `tracking-table-max-keys`, the `INFO` counts (each beside
//! redis-server), and a cache kept by a client while another writes, which must never keep
//! a stale value.

mod common;

use common::{redis, tandem, COMMON_FLAGS, REDIS_ONLY_FLAGS};
use std::time::{Duration, Instant};
use testkit::process::ServerProcess;
use testkit::{bulk, simple, Frame, RawClient};

fn resp3(server: &ServerProcess) -> RawClient {
    let mut c = server.client();
    c.hello3();
    c
}

fn int(f: &Frame) -> i64 {
    match f {
        Frame::Integer(n) => *n,
        other => panic!("expected an integer, got {}", other.to_display()),
    }
}

/// The keys of an `invalidate` push (None for a flush's null), or None if `f` is not one.
fn invalidated(f: &Frame) -> Option<Vec<Vec<u8>>> {
    match f {
        Frame::Push(parts) if parts.len() == 2 && parts[0] == bulk("invalidate") => match &parts[1] {
            Frame::Array(keys) => Some(
                keys.iter()
                    .map(|k| match k {
                        Frame::Bulk(b) => b.clone(),
                        other => panic!("key {}", other.to_display()),
                    })
                    .collect(),
            ),
            _ => Some(Vec::new()),
        },
        _ => None,
    }
}

fn info_field(c: &mut RawClient, section: &str, field: &str) -> i64 {
    let text = match c.send(&["INFO", section]) {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8(b).unwrap(),
        other => panic!("INFO: {}", other.to_display()),
    };
    let prefix = format!("{field}:");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {field}")).trim().parse().unwrap()
}

/// A tracking client whose redirect target went away: nothing is lost silently. It hears
/// `tracking-redir-broken` with the target's id each time an invalidation would be sent
/// (RESP3), and CLIENT TRACKINGINFO / CLIENT LIST show it — as on redis-server.
#[test]
fn a_broken_redirect_is_reported_to_the_tracking_client() {
    let t = tandem(COMMON_FLAGS);
    let r = redis(&[COMMON_FLAGS, REDIS_ONLY_FLAGS].concat());
    for (name, server) in [("tandem", &*t), ("redis", &*r)] {
        let mut tracker = resp3(server);
        let mut target = server.client();
        let target_id = int(&target.send(&["CLIENT", "ID"]));
        assert_eq!(
            tracker.send(&["CLIENT", "TRACKING", "on", "REDIRECT", &target_id.to_string()]),
            simple("OK"),
            "{name}"
        );
        assert_eq!(tracker.send(&["GET", "k"]), Frame::Null, "{name}");
        assert_eq!(target.send(&["QUIT"]), simple("OK"), "{name}");
        // The target is gone once the server has freed it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut probe = server.client();
            let list = match probe.send(&["CLIENT", "LIST", "ID", &target_id.to_string()]) {
                Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => b,
                other => panic!("{name}: CLIENT LIST: {}", other.to_display()),
            };
            if list.is_empty() || list == b"\n" {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: the target never went away");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut writer = server.client();
        assert_eq!(writer.send(&["SET", "k", "1"]), simple("OK"), "{name}");
        let broken = Frame::Push(vec![bulk("tracking-redir-broken"), Frame::Integer(target_id)]);
        assert_eq!(tracker.read_frame_timeout(Duration::from_secs(3)).unwrap(), broken, "{name}");
        // Again on the next one, and on a flush.
        assert_eq!(tracker.send(&["GET", "k"]), bulk("1"), "{name}");
        assert_eq!(writer.send(&["FLUSHALL"]), simple("OK"), "{name}");
        assert_eq!(tracker.read_frame_timeout(Duration::from_secs(3)).unwrap(), broken, "{name}");
        match tracker.send(&["CLIENT", "TRACKINGINFO"]) {
            Frame::Map(pairs) => {
                assert_eq!(pairs[0].1, Frame::Set(vec![bulk("on"), bulk("broken_redirect")]), "{name}");
                assert_eq!(pairs[1].1, Frame::Integer(target_id), "{name}");
            }
            other => panic!("{name}: TRACKINGINFO {}", other.to_display()),
        }
        assert_eq!(int(&tracker.send(&["CLIENT", "GETREDIR"])), target_id, "{name}");
        let info = match tracker.send(&["CLIENT", "INFO"]) {
            Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8(b).unwrap(),
            other => panic!("{name}: CLIENT INFO {}", other.to_display()),
        };
        assert!(info.contains(" flags=tR "), "{name}: {info}");
        assert!(info.contains(&format!(" redir={target_id} ")), "{name}: {info}");
    }
}

/// `tracking-table-max-keys`: past the limit, keys are forgotten and their readers told
/// (as if the keys had changed), so the table stays at the limit. The INFO counts follow.
#[test]
fn the_tracking_table_is_kept_under_its_limit_and_counted() {
    let t = tandem(COMMON_FLAGS);
    let r = redis(&[COMMON_FLAGS, REDIS_ONLY_FLAGS].concat());
    for (name, server) in [("tandem", &*t), ("redis", &*r)] {
        let mut admin = server.client();
        let mut c = resp3(server);
        assert_eq!(c.send(&["CLIENT", "TRACKING", "on"]), simple("OK"));
        assert_eq!(info_field(&mut admin, "clients", "tracking_clients"), 1, "{name}");
        c.send(&["MGET", "a", "b", "c"]);
        let mut other = resp3(server);
        other.send(&["CLIENT", "TRACKING", "on"]);
        other.send(&["MGET", "a", "b"]);
        let mut bcast = resp3(server);
        bcast.send(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x", "PREFIX", "y"]);
        assert_eq!(info_field(&mut admin, "clients", "tracking_clients"), 3, "{name}");
        assert_eq!(info_field(&mut admin, "stats", "tracking_total_keys"), 3, "{name}");
        assert_eq!(info_field(&mut admin, "stats", "tracking_total_items"), 5, "{name}");
        assert_eq!(info_field(&mut admin, "stats", "tracking_total_prefixes"), 2, "{name}");
        // A change forgets the key's readers.
        admin.send(&["SET", "a", "1"]);
        assert_eq!(invalidated(&c.read_frame()), Some(vec![b"a".to_vec()]), "{name}");
        assert_eq!(invalidated(&other.read_frame()), Some(vec![b"a".to_vec()]), "{name}");
        assert_eq!(info_field(&mut admin, "stats", "tracking_total_keys"), 2, "{name}");
        assert_eq!(info_field(&mut admin, "stats", "tracking_total_items"), 3, "{name}");
        // Off, and gone: the client counts drop; its entries wait for their keys to change.
        c.send(&["CLIENT", "TRACKING", "off"]);
        drop(bcast);
        let deadline = Instant::now() + Duration::from_secs(5);
        while info_field(&mut admin, "clients", "tracking_clients") != 1 {
            assert!(Instant::now() < deadline, "{name}: tracking_clients stays above 1");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(info_field(&mut admin, "stats", "tracking_total_prefixes"), 0, "{name}");
        admin.send(&["FLUSHALL"]);
        assert_eq!(invalidated(&other.read_frame()), Some(Vec::new()), "{name}: flush");
        assert_eq!(info_field(&mut admin, "stats", "tracking_total_keys"), 0, "{name}");

        // The limit. Forgetting a key changes nothing, so broadcast clients hear nothing.
        let mut bcast = resp3(server);
        bcast.send(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "t"]);
        assert_eq!(admin.send(&["CONFIG", "SET", "tracking-table-max-keys", "2"]), simple("OK"));
        match other.send(&["MGET", "t1", "t2", "t3", "t4", "t5"]) {
            Frame::Array(v) if v.len() == 5 => {}
            f => panic!("{name}: MGET {}", f.to_display()),
        }
        let mut forgotten = Vec::new();
        while forgotten.len() < 3 {
            match other.read_frame_timeout(Duration::from_secs(3)) {
                Ok(f) => forgotten.extend(invalidated(&f).unwrap_or_else(|| panic!("{name}: {}", f.to_display()))),
                Err(e) => panic!("{name}: only {} keys forgotten: {e:?}", forgotten.len()),
            }
        }
        assert!(other.is_silent(Duration::from_millis(300)), "{name}: more than 3 keys forgotten");
        assert!(bcast.is_silent(Duration::from_millis(100)), "{name}: a broadcast client heard of forgotten keys");
        assert_eq!(info_field(&mut admin, "stats", "tracking_total_keys"), 2, "{name}");
        assert_eq!(admin.send(&["CONFIG", "SET", "tracking-table-max-keys", "1000000"]), simple("OK"));
        assert_eq!(
            admin.send(&["CONFIG", "GET", "tracking-table-max-keys"]),
            Frame::Array(vec![bulk("tracking-table-max-keys"), bulk("1000000")]),
            "{name}"
        );
    }
}

/// The point of tracking: a client that caches what it reads and drops what it is told
/// changed never keeps a stale value. Several readers cache a few keys while writers change
/// them; whenever the writers pause, every cached value must be the current one. An
/// invalidation that overtook the reply of the read it invalidates would leave a stale entry.
#[test]
fn a_client_side_cache_never_keeps_a_stale_value() {
    let server = tandem(COMMON_FLAGS);
    let keys: Vec<String> = (0..4).map(|i| format!("key:{i}")).collect();
    let rounds = 300;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    // Writers that finished their round's writes, over all rounds.
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut threads = Vec::new();
    for w in 0..2 {
        let (addr, keys, barrier, written) = (server.addr, keys.clone(), barrier.clone(), written.clone());
        threads.push(std::thread::spawn(move || {
            let mut c = RawClient::connect(addr).unwrap();
            for round in 0..rounds {
                for i in 0..50 {
                    let k = &keys[(i + w) % keys.len()];
                    assert_eq!(c.send(&["SET", k, &format!("{w}-{round}-{i}")]), simple("OK"));
                }
                written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                barrier.wait(); // writes of this round done
                barrier.wait(); // readers checked
            }
        }));
    }
    for _ in 0..2 {
        let (addr, keys, barrier, written) = (server.addr, keys.clone(), barrier.clone(), written.clone());
        threads.push(std::thread::spawn(move || {
            let mut c = RawClient::connect(addr).unwrap();
            c.hello3();
            assert_eq!(c.send(&["CLIENT", "TRACKING", "on"]), simple("OK"));
            let mut cache: std::collections::HashMap<Vec<u8>, Frame> = Default::default();
            let (mut stale, mut overtaken) = (0, 0);
            // Reads one reply, applying the invalidations that come before it. The key being
            // read was not tracked for this client when the read ran (it is read only once
            // its last invalidation arrived), so an invalidation of it before the reply is
            // one of a change after the read, overtaking the read's reply.
            let reply = |c: &mut RawClient,
                         cache: &mut std::collections::HashMap<Vec<u8>, Frame>,
                         reading: Option<&[u8]>,
                         overtaken: &mut usize| loop {
                let f = c.read_frame();
                match invalidated(&f) {
                    Some(keys) if keys.is_empty() => cache.clear(),
                    Some(keys) => {
                        for k in keys {
                            *overtaken += usize::from(reading == Some(k.as_slice()));
                            cache.remove(&k);
                        }
                    }
                    None => return f,
                }
            };
            for round in 0..rounds {
                // Read (and cache) while the writers write, until they are done.
                let mut n = 0;
                while written.load(std::sync::atomic::Ordering::SeqCst) < 2 * (round + 1) {
                    let k = &keys[n % keys.len()];
                    if !cache.contains_key(k.as_bytes()) {
                        c.write_command(&["GET", k]).unwrap();
                        let v = reply(&mut c, &mut cache, Some(k.as_bytes()), &mut overtaken);
                        cache.insert(k.as_bytes().to_vec(), v);
                    }
                    n += 1;
                }
                barrier.wait();
                // Quiet: every invalidation sent has arrived once a PING's reply has.
                c.write_command(&["PING"]).unwrap();
                assert_eq!(reply(&mut c, &mut cache, None, &mut overtaken), simple("PONG"));
                let mut check = RawClient::connect(addr).unwrap();
                for (k, v) in &cache {
                    if check.send(&[b"GET".as_slice(), k.as_slice()]) != *v {
                        stale += 1;
                    }
                }
                barrier.wait();
            }
            assert_eq!((stale, overtaken), (0, 0), "(stale cached values, invalidations before their read's reply)");
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}
