//! Load for what `redis-benchmark` cannot drive.
//!
//! * `tandem-load --port P --clients C --seconds S multi N` — each client sends `MULTI`, N
//!   `SET`s and `EXEC` in one write and reads the N+2 replies; prints transactions per second
//!   and the p50/p99 round-trip latency in milliseconds as `tps=... p50=... p99=...`.
//! * `... publish N` — N subscriber connections on one channel, C publishers each sending 16
//!   `PUBLISH`es per round trip; prints messages delivered per second (counted by the
//!   subscribers) as `delivered=... published=... p50=... p99=...` (publish round trips).
//! * `... get KEYS on|off` — C clients (RESP3) each sending 16 `GET`s of random keys out of
//!   KEYS per round trip, with `CLIENT TRACKING` on or off, while one more client `SET`s a
//!   random key every millisecond (so invalidations flow); prints `ops=... p50=... p99=...`.
//!
//! Used by `bench/transactions.sh` and `bench/pubsub.sh` against tandem-server and
//! redis-server alike.

use std::time::{Duration, Instant};
use testkit::{encode_command, Frame, RawClient};

fn usage() -> ! {
    eprintln!("usage: tandem-load --port P [--clients C] [--seconds S] (multi N | publish N | get KEYS on|off)");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut port, mut clients, mut seconds) = (0u16, 50usize, 5u64);
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--port" => port = value().parse().unwrap_or_else(|_| usage()),
            "--clients" => clients = value().parse().unwrap_or_else(|_| usage()),
            "--seconds" => seconds = value().parse().unwrap_or_else(|_| usage()),
            _ => rest.push(a),
        }
    }
    let n = rest.get(1).and_then(|n| n.parse::<usize>().ok()).unwrap_or_else(|| usage());
    if port == 0 {
        usage();
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    match rest.first().map(String::as_str) {
        Some("multi") => multi(port, clients, seconds, deadline, n),
        Some("publish") => publish(port, clients, seconds, deadline, n),
        Some("get") => get(port, clients, seconds, deadline, n, rest.get(2).map(String::as_str) == Some("on")),
        _ => usage(),
    }
}

/// p50 and p99 of round-trip times, in milliseconds.
fn percentiles(latencies: Vec<Vec<Duration>>) -> (usize, f64, f64) {
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied();
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    (all.len(), ms(pct(0.50)), ms(pct(0.99)))
}

fn multi(port: u16, clients: usize, seconds: u64, deadline: Instant, n: usize) {
    let latencies: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let mut client = RawClient::connect(("127.0.0.1", port)).expect("connect");
                    let mut batch = encode_command(&["MULTI"]);
                    for i in 0..n {
                        batch.extend(encode_command(&["SET", &format!("key:{c}:{i}"), "xxxxxxxxxxxxxxxx"]));
                    }
                    batch.extend(encode_command(&["EXEC"]));
                    let mut lat = Vec::new();
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        client.send_raw(&batch).expect("write");
                        for _ in 0..n + 1 {
                            client.read_frame();
                        }
                        match client.read_frame() {
                            Frame::Array(r) if r.len() == n => {}
                            other => panic!("EXEC answered {other:?}"),
                        }
                        lat.push(t0.elapsed());
                    }
                    lat
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let (count, p50, p99) = percentiles(latencies);
    println!("tps={:.0} p50={p50:.3} p99={p99:.3}", count as f64 / seconds as f64);
}

/// Messages per publisher round trip.
const PIPELINE: usize = 16;

fn publish(port: u16, publishers: usize, seconds: u64, deadline: Instant, subscribers: usize) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let payload = "x".repeat(16);
    // Every message a subscriber receives has the same size: count bytes, not frames.
    let message_len = encode_command(&["message", "bench", &payload]).len() as u64;
    let delivered = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let mut subs: Vec<std::net::TcpStream> = (0..subscribers)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_nodelay(true).ok();
            s.write_all(&encode_command(&["SUBSCRIBE", "bench"])).expect("subscribe");
            let mut confirm = vec![0u8; encode_command(&["subscribe", "bench"]).len() + 4];
            s.read_exact(&mut confirm).expect("subscribed");
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            s
        })
        .collect();
    let start = Instant::now();
    let (latencies, published) = std::thread::scope(|s| {
        for sub in subs.iter_mut() {
            let (delivered, done) = (&delivered, &done);
            s.spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut bytes = 0u64;
                while !done.load(Ordering::Relaxed) {
                    if let Ok(n) = sub.read(&mut buf) {
                        if Instant::now() < deadline {
                            bytes += n as u64;
                        }
                    }
                }
                delivered.fetch_add(bytes / message_len, Ordering::Relaxed);
            });
        }
        let handles: Vec<_> = (0..publishers)
            .map(|_| {
                let payload = &payload;
                s.spawn(move || {
                    let mut client = RawClient::connect(("127.0.0.1", port)).expect("connect");
                    let mut batch = Vec::new();
                    for _ in 0..PIPELINE {
                        batch.extend(encode_command(&["PUBLISH", "bench", payload]));
                    }
                    let (mut lat, mut sent) = (Vec::new(), 0u64);
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        client.send_raw(&batch).expect("write");
                        for _ in 0..PIPELINE {
                            match client.read_frame() {
                                Frame::Integer(_) => {}
                                other => panic!("PUBLISH answered {other:?}"),
                            }
                        }
                        sent += PIPELINE as u64;
                        lat.push(t0.elapsed());
                    }
                    (lat, sent)
                })
            })
            .collect();
        let results: Vec<(Vec<Duration>, u64)> =
            handles.into_iter().map(|h| h.join().expect("publisher thread")).collect();
        // Let the subscribers take what is still on its way, then stop them.
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, Ordering::Relaxed);
        let published: u64 = results.iter().map(|r| r.1).sum();
        (results.into_iter().map(|r| r.0).collect::<Vec<_>>(), published)
    });
    let window = (deadline - start).as_secs_f64().min(seconds as f64);
    let (_, p50, p99) = percentiles(latencies);
    println!(
        "delivered={:.0} published={:.0} p50={p50:.3} p99={p99:.3}",
        delivered.load(Ordering::Relaxed) as f64 / window,
        published as f64 / window
    );
}

fn get(port: u16, clients: usize, seconds: u64, deadline: Instant, keys: usize, tracking: bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let latencies: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let stop = &stop;
        s.spawn(move || {
            // The writer: changes keep invalidations flowing to the trackers.
            let mut w = RawClient::connect(("127.0.0.1", port)).expect("connect");
            let mut x = 0x9e3779b97f4a7c15u64;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w.send(&["SET", &format!("key:{}", x % keys as u64), "xxxxxxxxxxxxxxxx"]);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let mut client = RawClient::connect(("127.0.0.1", port)).expect("connect");
                    client.hello3();
                    if tracking {
                        assert_eq!(client.send(&["CLIENT", "TRACKING", "on"]), Frame::Simple(b"OK".to_vec()));
                    }
                    let mut x = (c as u64 + 1).wrapping_mul(0x2545f4914f6cdd1d);
                    let (mut lat, mut batch) = (Vec::new(), Vec::new());
                    while Instant::now() < deadline {
                        batch.clear();
                        for _ in 0..PIPELINE {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            batch.extend(encode_command(&["GET", &format!("key:{}", x % keys as u64)]));
                        }
                        let t0 = Instant::now();
                        client.send_raw(&batch).expect("write");
                        let mut replies = 0;
                        while replies < PIPELINE {
                            match client.read_frame() {
                                Frame::Push(_) => {}
                                Frame::Bulk(_) | Frame::Null => replies += 1,
                                other => panic!("GET answered {other:?}"),
                            }
                        }
                        lat.push(t0.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let lat = handles.into_iter().map(|h| h.join().expect("client thread")).collect();
        stop.store(true, Ordering::Relaxed);
        lat
    });
    let (count, p50, p99) = percentiles(latencies);
    println!("ops={:.0} p50={p50:.3} p99={p99:.3}", (count * PIPELINE) as f64 / seconds as f64);
}
