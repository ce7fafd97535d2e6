//! The append-only file with real processes: AOF directories move both ways between Tandem and
//! Debian's redis-server with identical keyspaces, `redis-check-aof` accepts Tandem's,
//! `kill -9` under a write load loses no acknowledged write, rewrites run while writes go on,
//! and truncation, corruption and a full disk behave as documented.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dataset::{assert_same, data_dir, dump, fill, info_field, start_expecting_exit, tandem_in, wait_for};
use common::redis;
use testkit::{bulk, simple, Frame, RawClient, RedisProcess};

fn aof_dir(dir: &Path) -> PathBuf {
    dir.join("appendonlydir")
}

fn manifest_text(dir: &Path) -> String {
    std::fs::read_to_string(aof_dir(dir).join("appendonly.aof.manifest")).unwrap()
}

/// `redis-check-aof` on the manifest must find every file valid.
fn assert_check_aof_ok(dir: &Path) {
    let out = Command::new(testkit::tool_bin("redis-check-aof"))
        .arg(aof_dir(dir).join("appendonly.aof.manifest"))
        .output()
        .expect("redis-check-aof runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("All AOF files and manifest are valid"), "redis-check-aof:\n{text}");
}

/// Starts redis-server on the AOF directory in `dir` (Redis wins no flags over ours but these).
fn redis_on(dir: &Path) -> RedisProcess {
    redis(&["--dir", &dir.display().to_string(), "--appendonly", "yes"])
}

/// Writes that exercise the rewritten forms of commands (relative times, GETDEL, ...) and
/// several databases, on top of [`fill`].
fn churn(c: &mut RawClient, round: usize) {
    for i in 0..50 {
        c.send(&["INCR", &format!("counter:{}", i % 7)]);
        c.send(&["SET", &format!("r{round}:{i}"), &format!("v{i}"), "EX", "500"]);
    }
    c.send(&["EXPIRE", "k0:14", "400"]);
    c.send(&["PEXPIRE", "k0:15", "450000"]);
    c.send(&["SETEX", &format!("setex{round}"), "300", "x"]);
    c.send(&["PSETEX", &format!("psetex{round}"), "300000", "y"]);
    c.send(&["GETEX", "k0:16", "EX", "350"]);
    c.send(&["GETDEL", "k0:17"]);
    c.send(&["APPEND", "k0:18", "-more"]);
    c.send(&["INCRBYFLOAT", "float", "1.5"]);
    c.send(&["SELECT", "3"]);
    c.send(&["RENAME", "k3:1", &format!("renamed{round}")]);
    c.send(&["MOVE", "k3:2", "4"]);
    c.send(&["COPY", "k3:3", "copied", "DB", "5", "REPLACE"]);
    c.send(&["SELECT", "0"]);
    // A transaction crossing databases, logged as MULTI ... EXEC.
    c.send(&["MULTI"]);
    c.send(&["INCR", "tx-counter"]);
    c.send(&["SELECT", "2"]);
    c.send(&["SET", &format!("tx{round}"), "in-db-2", "EX", "600"]);
    c.send(&["SELECT", "0"]);
    c.send(&["LPUSH", "tx-list", &format!("r{round}")]);
    assert!(matches!(c.send(&["EXEC"]), Frame::Array(r) if r.len() == 5));
    c.send(&["DEL", "k0:19"]);
    c.send(&["SET", "short-lived", "x", "PX", "1"]);
    // Gone before anyone dumps the keyspace.
    std::thread::sleep(Duration::from_millis(5));
}

#[test]
fn tandem_aof_loads_into_redis_and_back_through_rewrites() {
    let dir = data_dir("aof-tandem");
    let mut t = tandem_in(&dir, &["--appendonly", "yes"]);
    let mut c = t.client();
    fill(&mut c);
    churn(&mut c, 0);
    assert_eq!(c.send(&["BGREWRITEAOF"]), simple("Background append only file rewriting started"));
    churn(&mut c, 1);
    wait_for("rewrite", Duration::from_secs(10), || info_field(&mut c, "aof_rewrite_in_progress") == "0");
    // A base of commands instead of an RDB preamble.
    assert_eq!(c.send(&["CONFIG", "SET", "aof-use-rdb-preamble", "no"]), simple("OK"));
    assert_eq!(c.send(&["BGREWRITEAOF"]), simple("Background append only file rewriting started"));
    churn(&mut c, 2);
    wait_for("rewrite", Duration::from_secs(10), || info_field(&mut c, "aof_rewrite_in_progress") == "0");
    churn(&mut c, 3);
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    assert_eq!(info_field(&mut c, "aof_rewrites"), "2");
    let manifest = manifest_text(&dir);
    assert!(manifest.contains("appendonly.aof.3.base.aof seq 3 type b"), "{manifest}");
    assert!(manifest.contains("appendonly.aof.3.incr.aof seq 3 type i"), "{manifest}");
    assert_eq!(manifest.lines().count(), 2, "history files are deleted: {manifest}");
    let before = dump(&mut c);
    assert!(before.len() > 250, "{}", before.len());
    // Every acknowledged write is in the kernel before its reply: kill -9 loses nothing.
    t.kill();
    assert_check_aof_ok(&dir);

    let r = redis_on(&dir);
    assert_same(&before, &dump(&mut r.client()), 5_000);
    drop(r);

    let t = tandem_in(&dir, &["--appendonly", "yes"]);
    let mut c = t.client();
    assert_same(&before, &dump(&mut c), 5_000);
    assert_eq!(c.send(&["GET", "counter:0"]), bulk("32"));
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_aof_directories_load_into_tandem() {
    for preamble in ["yes", "no"] {
        let r = redis(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
        let mut rc = r.client();
        fill(&mut rc);
        churn(&mut rc, 0);
        // A transaction: Redis logs it inside MULTI/EXEC.
        assert_eq!(rc.send(&["MULTI"]), simple("OK"));
        rc.send(&["SET", "tx:a", "1"]);
        rc.send(&["INCRBY", "tx:b", "5"]);
        assert!(matches!(rc.send(&["EXEC"]), Frame::Array(_)));
        assert_eq!(rc.send(&["BGREWRITEAOF"]), simple("Background append only file rewriting started"));
        wait_for("redis rewrite", Duration::from_secs(10), || info_field(&mut rc, "aof_rewrite_in_progress") == "0");
        churn(&mut rc, 1);
        let expected = dump(&mut rc);
        let dir = data_dir("aof-from-redis");
        copy_dir(&aof_dir(&r.dir), &aof_dir(&dir));
        drop(r);
        let t = tandem_in(&dir, &["--appendonly", "yes"]);
        assert_same(&expected, &dump(&mut t.client()), 5_000);
        drop(t);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn an_old_single_file_aof_is_moved_into_the_directory() {
    let dir = data_dir("aof-old-style");
    let mut data = Vec::new();
    for argv in [&["SELECT", "2"][..], &["SET", "old", "style"], &["INCRBY", "n", "41"], &["INCR", "n"]] {
        data.extend_from_slice(&testkit::encode_command(argv));
    }
    std::fs::write(dir.join("appendonly.aof"), &data).unwrap();
    let t = tandem_in(&dir, &["--appendonly", "yes"]);
    let mut c = t.client();
    c.send(&["SELECT", "2"]);
    assert_eq!(c.send(&["GET", "old"]), bulk("style"));
    assert_eq!(c.send(&["GET", "n"]), bulk("42"));
    assert!(aof_dir(&dir).join("appendonly.aof").is_file());
    assert!(!dir.join("appendonly.aof").exists());
    assert_eq!(manifest_text(&dir), "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The incr file appended to now (the last one of the manifest).
fn current_incr(dir: &Path) -> PathBuf {
    let m = manifest_text(dir);
    let name = m.lines().rfind(|l| l.ends_with("type i")).unwrap().split(' ').nth(1).unwrap().to_string();
    aof_dir(dir).join(name)
}

#[test]
fn truncated_and_corrupted_files_behave_as_configured() {
    let dir = data_dir("aof-damage");
    let mut t = tandem_in(&dir, &["--appendonly", "yes"]);
    let mut c = t.client();
    for i in 0..20 {
        c.send(&["SET", &format!("k{i}"), "v"]);
    }
    t.kill();
    let incr = current_incr(&dir);
    let good = std::fs::read(&incr).unwrap();

    // A command cut off at the end.
    let mut cut = good.clone();
    cut.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$5\r\nhal");
    std::fs::write(&incr, &cut).unwrap();
    let (ok, log) = start_expecting_exit(&dir, &["--appendonly", "yes", "--aof-load-truncated", "no"]);
    assert!(!ok && log.contains("Unexpected end of file"), "{log}");
    assert_eq!(std::fs::read(&incr).unwrap(), cut, "nothing is repaired without aof-load-truncated");
    let t = tandem_in(&dir, &["--appendonly", "yes"]);
    let mut c = t.client();
    assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(20));
    assert_eq!(c.send(&["EXISTS", "x"]), Frame::Integer(0));
    let log = t.stdout() + &t.stderr();
    assert!(log.contains(&format!("Truncating the AOF appendonly.aof.1.incr.aof at offset {}", good.len())), "{log}");
    assert_eq!(std::fs::read(&incr).unwrap(), good, "the tail is cut off");
    // The file goes on from there.
    assert_eq!(c.send(&["SET", "after", "cut"]), simple("OK"));
    drop(t);
    assert_check_aof_ok(&dir);

    // Garbage in the middle is never repaired.
    let mut bad = std::fs::read(&incr).unwrap();
    let at = good.len() / 2;
    bad.splice(at..at, b"!garbage".iter().copied());
    std::fs::write(&incr, &bad).unwrap();
    let (ok, log) = start_expecting_exit(&dir, &["--appendonly", "yes"]);
    assert!(!ok && log.contains("Bad file format") && log.contains("offset"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn appendonly_switches_on_and_off_at_run_time() {
    let dir = data_dir("aof-config-set");
    let t = tandem_in(&dir, &[]);
    let mut c = t.client();
    fill(&mut c);
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    assert_eq!(c.send(&["CONFIG", "SET", "appendonly", "yes"]), simple("OK"));
    wait_for("aof on", Duration::from_secs(10), || info_field(&mut c, "aof_enabled") == "1");
    // The AOF exists once its first base is written (switching it off before then drops the
    // unfinished rewrite, as in Redis, and leaves nothing to load).
    wait_for("the first base", Duration::from_secs(10), || {
        info_field(&mut c, "aof_rewrites") == "1" && info_field(&mut c, "aof_rewrite_in_progress") == "0"
    });
    churn(&mut c, 0);
    let expected = dump(&mut c);
    // Everything logged so far is durable once the AOF is switched off.
    assert_eq!(c.send(&["CONFIG", "SET", "appendonly", "no"]), simple("OK"));
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    c.send(&["SET", "not-logged", "1"]);
    drop(t);
    let t = tandem_in(&dir, &["--appendonly", "yes"]);
    assert_same(&expected, &dump(&mut t.client()), 5_000);
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn automatic_rewrite_when_the_log_doubles() {
    let dir = data_dir("aof-auto");
    let t = tandem_in(
        &dir,
        &["--appendonly", "yes", "--auto-aof-rewrite-min-size", "100kb", "--auto-aof-rewrite-percentage", "100"],
    );
    let mut c = t.client();
    let value = "v".repeat(1000);
    for i in 0..300 {
        c.send(&["SET", &format!("key{}", i % 10), &value]);
    }
    wait_for("automatic rewrite", Duration::from_secs(10), || info_field(&mut c, "aof_rewrites") == "1");
    wait_for("rewrite done", Duration::from_secs(10), || info_field(&mut c, "aof_rewrite_in_progress") == "0");
    // Ten keys of 1 kB remain: the new base is small.
    let size: u64 = info_field(&mut c, "aof_current_size").parse().unwrap();
    assert!(size < 50_000, "aof_current_size {size}");
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One writer's record: keys acknowledged, and its counter's last acknowledged value.
#[derive(Default)]
struct Acked {
    keys: Vec<String>,
    counter: i64,
}

/// Writers SET unique keys and INCR a counter each until the connection breaks.
fn writers(port: u16, n: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Acked>> {
    (0..n)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Acked::default();
                let Ok(mut c) = RawClient::connect(("127.0.0.1", port)) else { return acked };
                c.set_timeout(Duration::from_secs(10));
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{w}:{i}");
                    if c.write_command(&["SET", &key, &i.to_string()]).is_err() {
                        break;
                    }
                    match c.try_read_frame() {
                        Ok(Frame::Simple(s)) if s == b"OK" => acked.keys.push(key),
                        _ => break,
                    }
                    if c.write_command(&["INCR", &format!("counter:{w}")]).is_err() {
                        break;
                    }
                    match c.try_read_frame() {
                        Ok(Frame::Integer(v)) => acked.counter = v,
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect()
}

/// Every acknowledged key is back; each counter is its last acknowledged value or one more
/// (an INCR that was logged but whose reply the kill cut off).
fn check_acked(c: &mut RawClient, acked: &[Acked]) -> usize {
    let mut n = 0;
    for (w, a) in acked.iter().enumerate() {
        for k in &a.keys {
            assert!(matches!(c.send(&["EXISTS", k]), Frame::Integer(1)), "acknowledged key {k} lost");
        }
        let got = match c.send(&["GET", &format!("counter:{w}")]) {
            Frame::Bulk(v) => String::from_utf8(v).unwrap().parse::<i64>().unwrap(),
            Frame::Null => 0,
            f => panic!("{f:?}"),
        };
        assert!(got == a.counter || got == a.counter + 1, "counter:{w} is {got}, last acknowledged {}", a.counter);
        n += a.keys.len() + a.counter as usize;
    }
    n
}

/// `kill -9` in the middle of a write load (and of rewrites), restart, check every
/// acknowledged write; repeated. Returns (iterations, acknowledged writes checked).
fn crash_rounds(policy: &str, rounds: usize) -> (usize, usize) {
    let dir = data_dir(&format!("aof-crash-{policy}"));
    let args = ["--appendonly", "yes", "--appendfsync", policy, "--worker-threads", "2"];
    let mut total = 0;
    let mut all: Vec<Acked> = Vec::new();
    for round in 0..rounds {
        let mut t = tandem_in(&dir, &args);
        let stop = Arc::new(AtomicBool::new(false));
        let handles = writers(t.port, 4, stop.clone());
        let run_ms = 150 + (round as u64 * 97) % 400;
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_millis(run_ms / 3));
            let mut c = t.client();
            c.send(&["BGREWRITEAOF"]);
        }
        std::thread::sleep(Duration::from_millis(run_ms));
        t.kill();
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<Acked> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let t = tandem_in(&dir, &args);
        let mut c = t.client();
        // Counters continue across rounds: keep the previous rounds' keys and add this one's.
        for (w, a) in acked.into_iter().enumerate() {
            if all.len() <= w {
                all.push(Acked::default());
            }
            all[w].keys.extend(a.keys);
            if a.counter > 0 {
                all[w].counter = a.counter;
            }
        }
        total += check_acked(&mut c, &all);
        // The next round starts from whatever the restart found (a counter one ahead).
        for (w, a) in all.iter_mut().enumerate() {
            if let Frame::Bulk(v) = c.send(&["GET", &format!("counter:{w}")]) {
                a.counter = String::from_utf8(v).unwrap().parse().unwrap();
            }
        }
        drop(t);
    }
    assert_check_aof_ok(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    (rounds, total)
}

#[test]
fn kill_9_loses_no_acknowledged_write_under_appendfsync_always() {
    let rounds: usize = std::env::var("TANDEM_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let (n, writes) = crash_rounds("always", rounds);
    eprintln!("appendfsync always: {n} kill -9 rounds, {writes} acknowledged writes checked");
}

#[test]
fn kill_9_loses_no_acknowledged_write_under_everysec_either() {
    // Replies leave only after the write(2) of their commands, as in Redis, so a process crash
    // loses nothing under everysec; only a machine crash can lose up to about a second.
    let (n, writes) = crash_rounds("everysec", 4);
    eprintln!("appendfsync everysec: {n} kill -9 rounds, {writes} acknowledged writes checked");
}

/// A small tmpfs mounted for the test, unmounted on drop. Needs root (CI runs as root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root (CI runs as root)");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_writes_with_misconf_and_loses_nothing() {
    let dir = data_dir("aof-full-disk");
    let mount = Tmpfs::mount(&dir, "4m");
    let mut t = tandem_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut a = t.client();
    let mut b = t.client();
    // Leave about 64 kB free.
    let ballast = dir.join("ballast");
    let free = {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(&dir).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse::<u64>().unwrap()
    };
    std::fs::write(&ballast, vec![0u8; (free - 64 * 1024) as usize]).unwrap();
    let value = "x".repeat(4000);
    let mut acked = Vec::new();
    // Writes go on until one cannot be made durable: its reply is held back, not faked.
    a.set_timeout(Duration::from_millis(1500));
    let mut held = None;
    for i in 0..100 {
        let key = format!("k{i}");
        a.write_command(&["SET", &key, &value]).unwrap();
        match a.try_read_frame() {
            Ok(f) => {
                assert_eq!(f, simple("OK"));
                acked.push(key);
            }
            Err(_) => {
                held = Some(key);
                break;
            }
        }
    }
    let held = held.expect("the disk filled up");
    // Meanwhile writes and PING are refused with Redis's text; reads go on.
    let refused = b.send(&["SET", "other", "1"]);
    assert_eq!(refused, testkit::error("MISCONF Errors writing to the AOF file: No space left on device"));
    assert!(matches!(b.send(&["PING"]), Frame::Error(e) if e.starts_with(b"MISCONF")));
    assert_eq!(b.send(&["GET", "k0"]), bulk(&value));
    assert_eq!(info_field(&mut b, "aof_last_write_status"), "err");
    // Space comes back: the held write is written, its reply arrives, writes are accepted.
    std::fs::remove_file(&ballast).unwrap();
    a.set_timeout(Duration::from_secs(10));
    assert_eq!(a.try_read_frame().unwrap(), simple("OK"));
    acked.push(held);
    wait_for("writes accepted", Duration::from_secs(10), || info_field(&mut b, "aof_last_write_status") == "ok");
    assert_eq!(b.send(&["SET", "after", "1"]), simple("OK"));
    t.kill();
    assert_check_aof_ok(&dir);
    let t = tandem_in(&dir, &["--appendonly", "yes"]);
    let mut c = t.client();
    for k in &acked {
        assert_eq!(c.send(&["STRLEN", k]), Frame::Integer(4000), "{k}");
    }
    assert_eq!(c.send(&["GET", "after"]), bulk("1"));
    assert_eq!(c.send(&["EXISTS", "other"]), Frame::Integer(0));
    drop(t);
    drop(mount);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn expired_keys_are_logged_as_del() {
    let dir = data_dir("aof-expiry");
    let t = tandem_in(&dir, &["--appendonly", "yes", "--hz", "100"]);
    let mut c = t.client();
    c.send(&["SET", "active", "1", "PX", "20"]);
    c.send(&["SET", "lazy", "1", "PX", "20"]);
    c.send(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(c.send(&["GET", "lazy"]), Frame::Null);
    c.send(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    wait_for("active expiry", Duration::from_secs(5), || matches!(c.send(&["DBSIZE"]), Frame::Integer(0)));
    c.send(&["SET", "marker", "1"]);
    let text = std::fs::read(current_incr(&dir)).unwrap();
    let del = |k: &str| testkit::encode_command(&["DEL", k]);
    let find = |needle: &[u8]| text.windows(needle.len()).position(|w| w == needle);
    let lazy = find(&del("lazy")).expect("lazy expiry logged as DEL");
    let active = find(&del("active")).expect("active expiry logged as DEL");
    let marker = find(&testkit::encode_command(&["SET", "marker", "1"])).unwrap();
    assert!(lazy < marker && active < marker);
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn transactions_are_logged_whole() {
    let dir = data_dir("aof-multi");
    let t = tandem_in(&dir, &["--appendonly", "yes"]);
    let mut c = t.client();
    for cmd in [&["MULTI"][..], &["SET", "a", "1"], &["INCR", "n"], &["EXEC"]] {
        c.send(cmd);
    }
    // One write: no wrapping, as Redis propagates it. No write: nothing logged.
    for cmd in [&["MULTI"][..], &["SET", "b", "2"], &["GET", "a"], &["EXEC"]] {
        c.send(cmd);
    }
    for cmd in [&["MULTI"][..], &["GET", "a"], &["EXEC"]] {
        c.send(cmd);
    }
    c.send(&["SET", "marker", "1"]);
    let text = std::fs::read(current_incr(&dir)).unwrap();
    let want: Vec<u8> = [
        testkit::encode_command(&["MULTI"]),
        testkit::encode_command(&["SET", "a", "1"]),
        testkit::encode_command(&["INCR", "n"]),
        testkit::encode_command(&["EXEC"]),
        testkit::encode_command(&["SET", "b", "2"]),
        testkit::encode_command(&["SET", "marker", "1"]),
    ]
    .concat();
    assert!(text.ends_with(&want), "{}", String::from_utf8_lossy(&text));
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_and_bgrewriteaof_take_turns() {
    let dir = data_dir("aof-turns");
    let t = tandem_in(&dir, &["--appendonly", "yes"]);
    let mut c = t.client();
    let value = "v".repeat(100);
    for chunk in 0..3 {
        for i in 0..10_000 {
            c.write_command(&["SET", &format!("key:{chunk}:{i}"), &value]).unwrap();
        }
        for _ in 0..10_000 {
            c.read_frame();
        }
    }
    let started = Instant::now();
    assert_eq!(c.send(&["BGREWRITEAOF"]), simple("Background append only file rewriting started"));
    let reply = c.send(&["BGREWRITEAOF"]);
    let reply2 = c.send(&["BGSAVE"]);
    if info_field(&mut c, "aof_rewrite_in_progress") == "1" {
        assert_eq!(reply, testkit::error("ERR Background append only file rewriting already in progress"));
        assert!(
            matches!(&reply2, Frame::Error(e) if e.starts_with(b"ERR Another child process is active (AOF?)")),
            "{reply2:?}"
        );
    }
    let scheduled = c.send(&["BGSAVE", "SCHEDULE"]);
    let accepted = [
        simple("Background saving scheduled"),
        simple("Background saving started"),
        // The plain BGSAVE above started because the rewrite had already finished.
        testkit::error("ERR Background save already in progress"),
    ];
    assert!(accepted.contains(&scheduled), "{scheduled:?}");
    // Whichever way, the save happens once the rewrite is done.
    wait_for("both done", Duration::from_secs(30), || {
        info_field(&mut c, "aof_rewrite_in_progress") == "0" && info_field(&mut c, "rdb_saves") == "1"
    });
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(dir.join("dump.rdb").is_file());
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn an_idle_server_with_the_aof_on_stays_idle() {
    let dir = data_dir("aof-idle");
    let t = tandem_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = t.client();
    assert_eq!(c.send(&["SET", "k", "v"]), simple("OK"));
    let before = cpu_ticks(t.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(t.pid()) - before;
    // Timers (expiry cycle, cron, the fsync thread's poll) cost a few ticks; a spinning thread
    // would cost about 200.
    assert!(used < 40, "{used} ticks of CPU in 2 s idle");
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgrewriteaof_with_the_aof_off_writes_a_base_redis_loads() {
    let dir = data_dir("aof-off-rewrite");
    let t = tandem_in(&dir, &[]);
    let mut c = t.client();
    fill(&mut c);
    assert_eq!(c.send(&["BGREWRITEAOF"]), simple("Background append only file rewriting started"));
    wait_for("rewrite", Duration::from_secs(10), || info_field(&mut c, "aof_rewrite_in_progress") == "0");
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    assert_eq!(manifest_text(&dir), "file appendonly.aof.1.base.rdb seq 1 type b\n");
    let expected = dump(&mut c);
    drop(t);
    assert_check_aof_ok(&dir);
    let r = redis_on(&dir);
    assert_same(&expected, &dump(&mut r.client()), 5_000);
    drop(r);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kill -9` cannot show that a write was synced before its reply (the page cache survives
/// the process), so watch the system calls: under `always`, each reply to one client's
/// sequential writes must be preceded by a completed `fdatasync` since the previous reply.
#[test]
fn under_always_every_reply_waits_for_an_fdatasync() {
    let dir = data_dir("aof-strace");
    let t = tandem_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = t.client();
    assert_eq!(c.send(&["SET", "warm", "up"]), simple("OK"));
    let trace = dir.join("trace");
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=fdatasync,fsync,write,writev,sendto,sendmsg", "-s", "16", "-o"])
        .arg(&trace)
        .args(["-p", &t.pid().to_string()])
        .spawn()
        .expect("strace (apt-get install strace)");
    // Attached once a PING's reply shows up in the trace.
    wait_for("strace to attach", Duration::from_secs(10), || {
        assert_eq!(c.send(&["PING"]), simple("PONG"));
        std::fs::read_to_string(&trace).unwrap_or_default().contains("+PONG")
    });
    for i in 0..20 {
        assert_eq!(c.send(&["SET", &format!("k{i}"), "v"]), simple("OK"));
    }
    // SIGINT makes strace detach and flush its output.
    Command::new("kill").args(["-INT", &strace.id().to_string()]).status().unwrap();
    strace.wait().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    let after_pong = &text[text.rfind("+PONG").unwrap()..];
    let mut synced_since_reply = false;
    let mut replies = 0;
    for line in after_pong.lines().skip(1) {
        let done = line.contains(" = 0") && (line.contains("fdatasync(") || line.contains("fdatasync resumed"));
        if done {
            synced_since_reply = true;
        } else if line.contains("\"+OK\\r\\n\"") {
            assert!(synced_since_reply, "reply {replies} left before any fdatasync:\n{after_pong}");
            synced_since_reply = false;
            replies += 1;
        }
    }
    assert_eq!(replies, 20, "{after_pong}");
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}
