//! RDB persistence with real processes: files move both ways between Tandem and Debian's
//! redis-server with identical keyspaces, `redis-check-rdb` accepts Tandem's files, snapshots
//! are point-in-time while writes go on, and damage or failure is never silent.

mod common;

use std::time::Duration;

use common::dataset::{assert_same, data_dir, dump, fill, info_field, start_expecting_exit, tandem_in, wait_for};
use common::{redis, tandem};
use testkit::{bulk, simple, Frame};

#[test]
fn save_and_restart_keeps_every_key() {
    let dir = data_dir("rdb-restart");
    let before = {
        let t = tandem_in(&dir, &[]);
        let mut c = t.client();
        fill(&mut c);
        let d = dump(&mut c);
        let last = c.send(&["LASTSAVE"]);
        assert_eq!(c.send(&["SAVE"]), simple("OK"));
        assert!(matches!((last, c.send(&["LASTSAVE"])), (Frame::Integer(a), Frame::Integer(b)) if b >= a));
        assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
        assert_eq!(info_field(&mut c, "rdb_saves"), "1");
        d
    };
    let t = tandem_in(&dir, &[]);
    let mut c = t.client();
    assert_same(&before, &dump(&mut c), 2_000);
    assert_eq!(info_field(&mut c, "rdb_last_load_keys_loaded"), before.len().to_string());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_files_load_into_tandem() {
    for flags in [&[][..], &["--rdbcompression", "no"][..], &["--rdbchecksum", "no"][..]] {
        let r = redis(&[flags, &["--enable-debug-command", "yes"]].concat());
        let mut rc = r.client();
        fill(&mut rc);
        let want = dump(&mut rc);
        assert_eq!(rc.send(&["SAVE"]), simple("OK"));
        let dir = data_dir("from-redis");
        std::fs::copy(r.dir.join("dump.rdb"), dir.join("dump.rdb")).unwrap();
        let t = tandem_in(&dir, &[]);
        let mut tc = t.client();
        assert_same(&want, &dump(&mut tc), 2_000);
        // Same dataset, same digest: the encodings Redis chose were read faithfully.
        assert_eq!(tc.send(&["DEBUG", "DIGEST"]), rc.send(&["DEBUG", "DIGEST"]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn tandem_files_load_into_redis_and_pass_redis_check_rdb() {
    for flags in [&[][..], &["--rdbcompression", "no"][..], &["--rdbchecksum", "no"][..]] {
        let dir = data_dir("to-redis");
        let want = {
            let t = tandem_in(&dir, flags);
            let mut c = t.client();
            fill(&mut c);
            assert_eq!(c.send(&["SAVE"]), simple("OK"));
            dump(&mut c)
        };
        let file = dir.join("dump.rdb");
        let check = std::process::Command::new(testkit::tool_bin("redis-check-rdb")).arg(&file).output().unwrap();
        let out = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success() && out.contains("RDB looks OK"), "redis-check-rdb: {out}");
        let r = redis(&["--dir", &dir.display().to_string()]);
        assert_same(&want, &dump(&mut r.client()), 2_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn bgsave_is_a_point_in_time_image_while_writes_go_on() {
    // A writer keeps setting 64 keys (spread over many shards) to the same generation number
    // with one MSET each time. Whatever instant a snapshot is cut at, every key in the file
    // must carry the same generation. Four shards of 12,500 keys: the snapshot walks each in
    // many steps with the lock released in between, while the writer changes keys in all four.
    let dir = data_dir("bgsave-cut");
    let t = tandem_in(&dir, &["--keyspace-shards", "4"]);
    let mut c = t.client();
    for i in 0..50_000 {
        if i % 1000 == 0 {
            let mut pipe = Vec::new();
            for j in i..i + 1000 {
                pipe.extend(testkit::encode_command(&["SET", &format!("filler:{j}"), "x"]));
            }
            c.send_raw(&pipe).unwrap();
            for _ in 0..1000 {
                c.read_frame();
            }
        }
    }
    let keys: Vec<String> = (0..64).map(|i| format!("gen:{i}")).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Stops the writer also when an assertion below panics (else the scope would wait forever).
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        let _stop_guard = StopOnDrop(&stop);
        let writer = s.spawn(|| {
            let mut w = t.client();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let mut args = vec!["MSET".to_string()];
                for k in &keys {
                    args.push(k.clone());
                    args.push(n.to_string());
                }
                assert_eq!(w.send(&args), simple("OK"));
            }
            n
        });
        wait_for("first MSET", Duration::from_secs(10), || c.send(&["EXISTS", "gen:63"]) == Frame::Integer(1));
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(c.send(&["BGSAVE"]), simple("Background saving started"));
            wait_for("bgsave", Duration::from_secs(30), || info_field(&mut c, "rdb_bgsave_in_progress") == "0");
            assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
            // Load the file into a real Redis and check the cut.
            let copy = data_dir("bgsave-copy");
            std::fs::copy(dir.join("dump.rdb"), copy.join("dump.rdb")).unwrap();
            let r = redis(&["--dir", &copy.display().to_string()]);
            let mut rc = r.client();
            let Frame::Array(vals) = rc.send(&[&["MGET".to_string()][..], &keys[..]].concat()) else { panic!("MGET") };
            assert!(vals.iter().all(|v| *v == vals[0]), "torn snapshot: {vals:?}");
            assert_eq!(rc.send(&["DBSIZE"]), Frame::Integer(50_000 + 64));
            let _ = std::fs::remove_dir_all(&copy);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(writer.join().unwrap() > 5);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_points_shutdown_and_sigterm_save() {
    let dir = data_dir("save-points");
    {
        let t = tandem_in(&dir, &["--save", "1 1"]);
        let mut c = t.client();
        c.send(&["SET", "a", "1"]);
        wait_for("automatic save", Duration::from_secs(10), || dir.join("dump.rdb").exists());
        wait_for("rdb_saves", Duration::from_secs(10), || info_field(&mut c, "rdb_saves") != "0");
        c.send(&["SET", "b", "2"]);
        // SIGTERM with save points: the final save has b.
        t.signal(testkit::signal::SIGTERM);
        let mut t = t;
        assert!(t.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
    }
    {
        let t = tandem_in(&dir, &["--save", "3600 1"]);
        let mut c = t.client();
        assert_eq!(c.send(&["MGET", "a", "b"]), Frame::Array(vec![bulk("1"), bulk("2")]));
        c.send(&["SET", "c", "3"]);
        // SHUTDOWN NOSAVE loses c; SHUTDOWN (save points configured) would keep it.
        c.write_command(&["SHUTDOWN", "NOSAVE"]).unwrap();
        let mut t = t;
        assert!(t.wait_exit(Duration::from_secs(10)).is_some());
    }
    {
        let t = tandem_in(&dir, &[]);
        let mut c = t.client();
        assert_eq!(c.send(&["EXISTS", "c"]), Frame::Integer(0));
        c.send(&["SET", "d", "4"]);
        // No save points: plain SHUTDOWN does not save, SHUTDOWN SAVE does.
        c.write_command(&["SHUTDOWN", "SAVE"]).unwrap();
        let mut t = t;
        assert!(t.wait_exit(Duration::from_secs(10)).is_some());
    }
    let t = tandem_in(&dir, &[]);
    assert_eq!(t.client().send(&["MGET", "a", "d"]), Frame::Array(vec![bulk("1"), bulk("4")]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flushall_with_save_points_saves_the_empty_dataset() {
    let dir = data_dir("flushall");
    {
        let t = tandem_in(&dir, &["--save", "3600 1"]);
        let mut c = t.client();
        c.send(&["SET", "a", "1"]);
        assert_eq!(c.send(&["SAVE"]), simple("OK"));
        assert_eq!(c.send(&["FLUSHALL"]), simple("OK"));
        // Killed without a chance to save again: the file already has the flush.
    }
    let t = tandem_in(&dir, &[]);
    assert_eq!(t.client().send(&["DBSIZE"]), Frame::Integer(0));
    drop(t);
    // A background save still running when FLUSHALL comes must not put the old keys back.
    for round in 0..5 {
        {
            let t = tandem_in(&dir, &["--save", "3600 1"]);
            let mut c = t.client();
            let mut pipe = Vec::new();
            for j in 0..100_000 {
                pipe.extend(testkit::encode_command(&["SET", &format!("key:{j}"), "some value"]));
            }
            c.send_raw(&pipe).unwrap();
            for _ in 0..100_000 {
                c.read_frame();
            }
            assert_eq!(c.send(&["BGSAVE"]), simple("Background saving started"));
            // Land FLUSHALL at different points of the save (cut, capture, file sync).
            std::thread::sleep(Duration::from_millis([0, 2, 5, 10, 20][round]));
            assert_eq!(c.send(&["FLUSHALL"]), simple("OK"));
            wait_for("bgsave", Duration::from_secs(30), || info_field(&mut c, "rdb_bgsave_in_progress") == "0");
        }
        let t = tandem_in(&dir, &[]);
        assert_eq!(t.client().send(&["DBSIZE"]), Frame::Integer(0), "round {round}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debug_reload_keeps_the_dataset() {
    let t = tandem(&[]);
    let mut c = t.client();
    fill(&mut c);
    let digest = c.send(&["DEBUG", "DIGEST"]);
    let before = dump(&mut c);
    assert_eq!(c.send(&["DEBUG", "RELOAD"]), simple("OK"));
    assert_eq!(c.send(&["DEBUG", "DIGEST"]), digest);
    assert_same(&before, &dump(&mut c), 2_000);
}

#[test]
fn damaged_files_stop_start_up_with_file_and_offset() {
    // A real file from Redis, cut short and then with a flipped byte.
    let r = redis(&[]);
    let mut rc = r.client();
    fill(&mut rc);
    rc.send(&["SAVE"]);
    let good = std::fs::read(r.dir.join("dump.rdb")).unwrap();
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("corrupted", {
            let mut b = good.clone();
            let i = b.len() - 20;
            b[i] ^= 0x5a;
            b
        }),
    ] {
        let dir = data_dir("damaged");
        std::fs::write(dir.join("dump.rdb"), &bytes).unwrap();
        let (ok, text) = start_expecting_exit(&dir, &[]);
        assert!(!ok, "{what}: start-up must fail:\n{text}");
        assert!(
            text.contains("dump.rdb") && text.contains("offset"),
            "{what}: message must name file and offset:\n{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn failed_background_save_refuses_writes_with_misconf() {
    let dir = data_dir("misconf");
    let t = tandem_in(&dir, &["--save", "3600 1"]);
    let mut c = t.client();
    c.send(&["SET", "a", "1"]);
    // The directory disappears: the next save cannot create its file.
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(c.send(&["BGSAVE"]), simple("Background saving started"));
    wait_for("failed bgsave", Duration::from_secs(10), || info_field(&mut c, "rdb_last_bgsave_status") == "err");
    let Frame::Error(e) = c.send(&["SET", "b", "2"]) else { panic!("SET must fail") };
    assert!(String::from_utf8_lossy(&e).starts_with("MISCONF "), "{}", String::from_utf8_lossy(&e));
    assert!(matches!(c.send(&["PING"]), Frame::Error(e) if e.starts_with(b"MISCONF")));
    // Reads still work; turning the option off lets writes through again.
    assert_eq!(c.send(&["GET", "a"]), bulk("1"));
    assert_eq!(c.send(&["SAVE"]), testkit::error("ERR"));
    assert_eq!(c.send(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]), simple("OK"));
    assert_eq!(c.send(&["SET", "b", "2"]), simple("OK"));
    // With the directory back, a save succeeds and clears the error.
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(c.send(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"]), simple("OK"));
    assert_eq!(c.send(&["BGSAVE"]), simple("Background saving started"));
    wait_for("good bgsave", Duration::from_secs(10), || info_field(&mut c, "rdb_last_bgsave_status") == "ok");
    assert_eq!(c.send(&["SET", "c", "3"]), simple("OK"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// While saves fail, `EXEC` of a transaction that writes is refused as a whole with
/// `EXECABORT ... because of: MISCONF ...` (its commands were queued before), and a read-only
/// transaction still runs, exactly as redis-server does.
#[test]
fn a_transaction_that_writes_is_refused_at_exec_while_saves_fail() {
    let dir = data_dir("misconf-exec");
    let t = tandem_in(&dir, &["--save", "3600 1"]);
    let r = redis(&["--save", "3600 1"]);
    let mut seen = Vec::new();
    for (server_dir, mut c, mut other) in
        [(dir.clone(), t.client(), t.client()), (r.dir.clone(), r.client(), r.client())]
    {
        c.send(&["SET", "a", "1"]);
        assert_eq!(c.send(&["MULTI"]), simple("OK"));
        assert_eq!(c.send(&["SET", "b", "2"]), simple("QUEUED"));
        // The directory disappears: the next save cannot create its file.
        std::fs::remove_dir_all(&server_dir).unwrap();
        assert_eq!(other.send(&["BGSAVE"]), simple("Background saving started"));
        wait_for("failed bgsave", Duration::from_secs(10), || {
            info_field(&mut other, "rdb_last_bgsave_status") == "err"
        });
        let exec = c.send(&["EXEC"]);
        let after = c.send(&["EXEC"]);
        c.send(&["MULTI"]);
        c.send(&["GET", "a"]);
        let read_only = c.send(&["EXEC"]);
        let b = c.send(&["GET", "b"]);
        std::fs::create_dir_all(&server_dir).unwrap();
        seen.push((exec, after, read_only, b));
    }
    assert_eq!(seen[0], seen[1], "tandem, then redis");
    match &seen[0].0 {
        Frame::Error(e) => assert!(e.starts_with(b"EXECABORT Transaction discarded because of: MISCONF "), "{e:?}"),
        other => panic!("EXEC ran: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
