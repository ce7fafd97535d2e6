//! Load for what `redis-benchmark` cannot drive: command sequences per round trip.
//!
//! `tandem-load --port P --clients C --seconds S multi N` — each client sends `MULTI`, N `SET`s
//! and `EXEC` in one write and reads the N+2 replies; prints transactions per second and the
//! p50/p99 round-trip latency in milliseconds as `tps=... p50=... p99=...`.
//!
//! Used by `bench/compare.sh` against tandem-server and redis-server alike.

use std::time::{Duration, Instant};
use testkit::{encode_command, Frame, RawClient};

fn usage() -> ! {
    eprintln!("usage: tandem-load --port P [--clients C] [--seconds S] multi N");
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
    let (Some("multi"), Some(n)) =
        (rest.first().map(String::as_str), rest.get(1).and_then(|n| n.parse::<usize>().ok()))
    else {
        usage()
    };
    if port == 0 {
        usage();
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
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
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied();
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!("tps={:.0} p50={:.3} p99={:.3}", all.len() as f64 / seconds as f64, ms(pct(0.50)), ms(pct(0.99)));
}
