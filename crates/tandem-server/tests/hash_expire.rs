//! Hash field expiration (`HEXPIRE` & co., Redis 7.4; `HGETDEL`, `HGETEX`, `HSETEX`, Redis
//! 8.0). The reference redis-server (7.0) has none of these commands, so the expected replies
//! here follow Redis's documentation and source; what can be compared with redis-server
//! (RDB and `DUMP` payloads of hashes whose fields no longer expire) is.

mod common;

use common::{redis, tandem, COMMON_FLAGS};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::{bulk, error, simple, Frame, RawClient};

fn int(v: i64) -> Frame {
    Frame::Integer(v)
}

fn ints(v: &[i64]) -> Frame {
    Frame::Array(v.iter().map(|&i| int(i)).collect())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// 2100-01-01 in Unix seconds: a fixed time far enough ahead for exact replies.
const Y2100: i64 = 4_102_444_800;

fn integer(f: Frame) -> i64 {
    match f {
        Frame::Integer(i) => i,
        Frame::Array(a) if a.len() == 1 => integer(a.into_iter().next().unwrap()),
        other => panic!("not an integer: {other:?}"),
    }
}

/// Every command, its replies per field and its errors, as Redis's documentation and source
/// give them.
#[test]
fn commands_reply_per_field_and_refuse_bad_arguments_as_redis_does() {
    let t = tandem(COMMON_FLAGS);
    let mut c = t.client();
    let at = Y2100.to_string();
    let at_ms = (Y2100 * 1000).to_string();
    let cases: Vec<(String, Frame)> = vec![
        ("HSET h a 1 b 2 c 3 d 4".into(), int(4)),
        ("OBJECT ENCODING h".into(), bulk("listpack")),
        // -2 no such field, 1 set.
        (format!("HEXPIREAT h {at} FIELDS 3 a nosuch b"), ints(&[1, -2, 1])),
        ("OBJECT ENCODING h".into(), bulk("listpackex")),
        ("HEXPIRETIME h FIELDS 4 a b c nosuch".into(), ints(&[Y2100, Y2100, -1, -2])),
        ("HPEXPIRETIME h FIELDS 2 a c".into(), ints(&[Y2100 * 1000, -1])),
        // Conditions: NX only without a time to live, XX only with one, GT/LT compare with
        // the old time and a field without one counts as never expiring.
        (format!("HPEXPIREAT h {at_ms} NX FIELDS 2 a c"), ints(&[0, 1])),
        (format!("HEXPIREAT h {} XX FIELDS 2 a d", Y2100 + 10), ints(&[1, 0])),
        (format!("HEXPIREAT h {} GT FIELDS 3 a b d", Y2100 + 5), ints(&[0, 1, 0])),
        (format!("HEXPIREAT h {} LT FIELDS 3 a b d", Y2100 + 1), ints(&[1, 1, 1])),
        (format!("hexpireat h {} lt FIELDS 1 a", Y2100 + 1), ints(&[0])),
        ("HEXPIRETIME h FIELDS 4 a b c d".into(), ints(&[Y2100 + 1, Y2100 + 1, Y2100, Y2100 + 1])),
        // A time now or in the past removes the field: 2.
        ("HEXPIRE h 0 FIELDS 2 d nosuch".into(), ints(&[2, -2])),
        ("HPEXPIREAT h 1 FIELDS 1 c".into(), ints(&[2])),
        ("HGETALL h".into(), Frame::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")])),
        // HPERSIST: -2 no such field, -1 no time to live, 1 removed.
        ("HPERSIST h FIELDS 3 a nosuch a".into(), ints(&[1, -2, -1])),
        ("HTTL h FIELDS 2 a nosuch".into(), ints(&[-1, -2])),
        ("OBJECT ENCODING h".into(), bulk("listpackex")),
        // A missing key: -2 per field (nil per field for the getters).
        ("HEXPIRE nokey 10 FIELDS 2 a b".into(), ints(&[-2, -2])),
        ("HTTL nokey FIELDS 1 a".into(), ints(&[-2])),
        ("HPERSIST nokey FIELDS 1 a".into(), ints(&[-2])),
        ("HGETDEL nokey FIELDS 2 a b".into(), Frame::Array(vec![Frame::Null, Frame::Null])),
        ("HGETEX nokey EX 10 FIELDS 1 a".into(), Frame::Array(vec![Frame::Null])),
        ("EXISTS nokey".into(), int(0)),
        // Errors of the HEXPIRE family, in Redis's order: type, time, FIELDS, count.
        ("SET s x".into(), simple("OK")),
        ("HEXPIRE s bad FIELDS 1 a".into(), error("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ("HEXPIRE h bad FIELDS 1 a".into(), error("ERR value is not an integer or out of range")),
        ("HEXPIRE h -1 FIELDS 1 a".into(), error("ERR invalid expire time, must be >= 0")),
        ("HEXPIRE h 70368744177664 FIELDS 1 a".into(), error("ERR invalid expire time in 'hexpire' command")),
        ("HPEXPIREAT h 70368744177664 FIELDS 1 a".into(), error("ERR invalid expire time in 'hpexpireat' command")),
        ("HPEXPIREAT h 70368744177663 FIELDS 1 a".into(), ints(&[1])),
        ("HPEXPIRE h 70368744177663 FIELDS 1 a".into(), error("ERR invalid expire time in 'hpexpire' command")),
        (
            "HEXPIRE h 10 NX XX FIELDS 1 a".into(),
            error("ERR Mandatory argument FIELDS is missing or not at the right position"),
        ),
        (
            "HEXPIRE h 10 BAD FIELDS 1 a".into(),
            error("ERR Mandatory argument FIELDS is missing or not at the right position"),
        ),
        ("HEXPIRE h 10 FIELDS 0 a".into(), error("ERR Parameter `numFields` should be greater than 0")),
        ("HEXPIRE h 10 FIELDS x a".into(), error("ERR Parameter `numFields` should be greater than 0")),
        ("HEXPIRE h 10 FIELDS 2 a".into(), error("ERR The `numfields` parameter must match the number of arguments")),
        ("HEXPIRE h 10 FIELDS 1 a b".into(), error("ERR The `numfields` parameter must match the number of arguments")),
        ("HEXPIRE h 10 FIELDS 1".into(), error("ERR wrong number of arguments for 'hexpire' command")),
        // Errors of the others.
        ("HTTL s FIELDS 1 a".into(), error("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ("HTTL h FELDS 1 a".into(), error("ERR Mandatory argument FIELDS is missing or not at the right position")),
        ("HPTTL h FIELDS 0 a".into(), error("ERR Number of fields must be a positive integer")),
        ("HPERSIST h FIELDS -1 a".into(), error("ERR Number of fields must be a positive integer")),
        ("HEXPIRETIME h FIELDS 3 a".into(), error("ERR The `numfields` parameter must match the number of arguments")),
        ("HGETDEL h FIELDS 0 a".into(), error("ERR Number of fields must be a positive integer")),
        ("HGETEX h EX bad FIELDS 1 a".into(), error("ERR value is not an integer or out of range")),
        (
            "HGETEX h EX 10 PX 10 FIELDS 1 a".into(),
            error("ERR Mandatory argument FIELDS is missing or not at the right position"),
        ),
        (
            "HGETEX h PERSIST 1 FIELDS 1 a".into(),
            error("ERR Mandatory argument FIELDS is missing or not at the right position"),
        ),
        ("HGETEX h EXAT 70368744178 FIELDS 1 a".into(), error("ERR invalid expire time in 'hgetex' command")),
        // HSETEX reads every argument before it looks at the key.
        ("HSETEX s FIELDS 1 a 1".into(), error("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ("HSETEX s FOO FIELDS 1 a 1".into(), error("ERR unknown argument: FOO")),
        ("HSETEX h FNX FXX FIELDS 1 a 1".into(), error("ERR Only one of FXX or FNX arguments can be specified")),
        (
            "HSETEX h EX 10 KEEPTTL FIELDS 1 a 1".into(),
            error("ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
        ),
        (
            "HSETEX h KEEPTTL KEEPTTL FIELDS 1 a 1".into(),
            error("ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
        ),
        ("HSETEX h FIELDS 0 a 1".into(), error("ERR invalid number of fields")),
        ("HSETEX h FIELDS 2 a 1".into(), error("ERR wrong number of arguments for 'hsetex' command")),
        ("HSETEX h FIELDS 1 a 1 b".into(), error("ERR wrong number of arguments for 'hsetex' command")),
        ("HSETEX h EX -1 FIELDS 1 a 1".into(), error("ERR invalid expire time, must be >= 0")),
        ("HSETEX h EX FIELDS 1 a 1".into(), error("ERR value is not an integer or out of range")),
        ("HSETEX h PX 10 FNX".into(), error("ERR wrong number of arguments for 'hsetex' command")),
    ];
    for (line, want) in cases {
        assert_eq!(c.cmd(&line), want, "{line}");
    }
}

/// `HGETDEL`, `HGETEX` and `HSETEX` (Redis 8.0), and how the older hash commands treat times
/// to live: `HSET` clears one, `HINCRBY` keeps it, the key goes with its last field.
#[test]
fn getters_and_setters_with_times_to_live() {
    let t = tandem(COMMON_FLAGS);
    let mut c = t.client();
    let far = (Y2100 * 1000).to_string();
    // HSETEX: FNX only if no field exists, FXX only if all do (a missing key: not created).
    assert_eq!(c.cmd("HSETEX h FXX FIELDS 1 a 1"), int(0));
    assert_eq!(c.cmd("EXISTS h"), int(0));
    assert_eq!(c.cmd(&format!("HSETEX h FNX PXAT {far} FIELDS 2 a 1 b 2")), int(1));
    assert_eq!(c.cmd("HPEXPIRETIME h FIELDS 2 a b"), ints(&[Y2100 * 1000, Y2100 * 1000]));
    assert_eq!(c.cmd("HSETEX h FNX FIELDS 2 c 3 a 9"), int(0));
    assert_eq!(c.cmd("HGET h a"), bulk("1"));
    assert_eq!(c.cmd("HSETEX h FXX KEEPTTL FIELDS 1 a 10"), int(1));
    assert_eq!(c.cmd("HPEXPIRETIME h FIELDS 1 a"), ints(&[Y2100 * 1000]));
    // Without KEEPTTL (and with HSET) a set clears the time to live; increments keep it.
    assert_eq!(c.cmd("HSETEX h FIELDS 1 a 11"), int(1));
    assert_eq!(c.cmd("HTTL h FIELDS 1 a"), ints(&[-1]));
    assert_eq!(c.cmd("HSET h b 20"), int(0));
    assert_eq!(c.cmd("HTTL h FIELDS 1 b"), ints(&[-1]));
    assert_eq!(c.cmd("HEXPIRE h 1000 FIELDS 2 a b"), ints(&[1, 1]));
    assert_eq!(c.cmd("HINCRBY h a 5"), int(16));
    assert_eq!(c.cmd("HINCRBYFLOAT h b 0.5"), bulk("20.5"));
    let ttl = integer(c.cmd("HTTL h FIELDS 1 a"));
    assert!((999..=1000).contains(&ttl), "{ttl}");
    let ttl = integer(c.cmd("HTTL h FIELDS 1 b"));
    assert!((999..=1000).contains(&ttl), "{ttl}");
    // HSETEX EX with a past time sets and removes at once; the reply is still 1.
    assert_eq!(c.cmd("HSETEX h EXAT 1 FIELDS 1 z 1"), int(1));
    assert_eq!(c.cmd("HEXISTS h z"), int(0));
    // HGETEX: values of existing fields, times changed; PERSIST removes them.
    assert_eq!(
        c.cmd("HGETEX h PX 100000 FIELDS 3 a nosuch b"),
        Frame::Array(vec![bulk("16"), Frame::Null, bulk("20.5")])
    );
    let pttl = integer(c.cmd("HPTTL h FIELDS 1 a"));
    assert!((99_000..=100_000).contains(&pttl), "{pttl}");
    assert_eq!(c.cmd("HGETEX h PERSIST FIELDS 1 a"), Frame::Array(vec![bulk("16")]));
    assert_eq!(c.cmd("HTTL h FIELDS 1 a"), ints(&[-1]));
    assert_eq!(c.cmd("HGETEX h FIELDS 1 b"), Frame::Array(vec![bulk("20.5")]));
    // A past time: the values come back and the fields are gone.
    assert_eq!(c.cmd("HGETEX h EXAT 1 FIELDS 1 a"), Frame::Array(vec![bulk("16")]));
    assert_eq!(c.cmd("HKEYS h"), Frame::Array(vec![bulk("b")]));
    // HGETDEL: values, then removed; the last field takes the key with it.
    c.cmd("HSET h c 3");
    assert_eq!(c.cmd("HGETDEL h FIELDS 3 c nosuch c"), Frame::Array(vec![bulk("3"), Frame::Null, Frame::Null]));
    assert_eq!(c.cmd("HGETDEL h FIELDS 1 b"), Frame::Array(vec![bulk("20.5")]));
    assert_eq!(c.cmd("EXISTS h"), int(0));
    // A large hash keeps field times as a table.
    let mut args: Vec<String> = vec!["HSET".into(), "big".into()];
    for i in 0..600 {
        args.push(format!("f{i}"));
        args.push(i.to_string());
    }
    assert_eq!(c.send(&args), int(600));
    assert_eq!(c.cmd("HEXPIRE big 1000 FIELDS 2 f1 f599"), ints(&[1, 1]));
    assert_eq!(c.cmd("OBJECT ENCODING big"), bulk("hashtable"));
    assert_eq!(c.cmd("HTTL big FIELDS 3 f1 f2 f599"), ints(&[1000, -1, 1000]));
}

/// Fields run out by the command's time: hidden at once, removed on access and by the
/// expiry cycle, and the key goes with its last field. Key and field expiry coexist.
#[test]
fn fields_expire_lazily_and_actively() {
    let t = tandem(COMMON_FLAGS);
    let mut c = t.client();
    c.cmd("HSET h a 1 b 2 c 3");
    assert_eq!(c.cmd("HPEXPIRE h 100 FIELDS 2 a b"), ints(&[1, 1]));
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(c.cmd("HGETALL h"), Frame::Array(vec![bulk("c"), bulk("3")]));
    assert_eq!(c.cmd("HLEN h"), int(1));
    assert_eq!(c.cmd("HGET h a"), Frame::Null);
    // The expiry cycle takes hashes nobody touches, and their keys when they are empty.
    for i in 0..50 {
        let k = format!("k{i}");
        c.send(&["HSET", &k, "x", "1", "y", "2"]);
        c.send(&["HPEXPIRE", &k, "100", "FIELDS", "2", "x", "y"]);
    }
    c.cmd("HSET keep x 1");
    c.cmd("HPEXPIRE keep 100000 FIELDS 1 x");
    assert_eq!(c.cmd("DBSIZE"), int(52));
    let start = Instant::now();
    while c.cmd("DBSIZE") != int(2) {
        assert!(start.elapsed() < Duration::from_secs(5), "the expiry cycle left {:?} keys", c.cmd("DBSIZE"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = match c.cmd("INFO stats") {
        Frame::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains("expired_subkeys:102\r\n"), "{info}");
    assert!(info.contains("expired_keys:0\r\n"), "emptied hashes are not expired keys: {info}");
    // Key expiry and field expiry: whichever comes first.
    c.cmd("HSET both f 1");
    c.cmd("HPEXPIRE both 100000 FIELDS 1 f");
    c.cmd("PEXPIRE both 50");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.cmd("EXISTS both"), int(0));
    // PERSIST of the key leaves field times alone.
    c.cmd("HSET both f 1");
    c.cmd("EXPIRE both 100");
    c.cmd("HPEXPIRE both 50 FIELDS 1 f");
    assert_eq!(c.cmd("PERSIST both"), int(1));
    assert_eq!(c.cmd("TTL both"), int(-1));
    match c.cmd("HPTTL both FIELDS 1 f") {
        Frame::Array(v) if matches!(v[..], [Frame::Integer(ms)] if ms > 0 && ms <= 50) => {}
        other => panic!("PERSIST touched the field time: {other:?}"),
    }
    // The emptied hash goes with the expiry cycle; EXISTS does not look at field times (as in
    // Redis), so wait for the cycle rather than for a fixed time a loaded machine may overrun.
    let start = Instant::now();
    while c.cmd("EXISTS both") != int(0) {
        assert!(start.elapsed() < Duration::from_secs(5), "the field expiry never emptied the hash");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.cmd("HLEN both"), int(0));
}

/// A field removed because a command found it expired changes its hash for `WATCH` and
/// client-side caching, as Redis's lazy field expiry signals the key (`hashTypeGetValue`),
/// even when the command that found it only reads.
#[test]
fn lazily_expired_fields_fail_watchers_and_invalidate_trackers() {
    let t = tandem(COMMON_FLAGS);
    let mut c = t.client();
    let mut watcher = t.client();
    let mut tracker = t.client();
    // Only lazy expiry: the cycle would otherwise race the reads below.
    assert_eq!(c.cmd("DEBUG SET-ACTIVE-EXPIRE 0"), simple("OK"));
    c.cmd("HSET h a 1 b 2");
    // Long enough for the watcher and tracker to be set up before it runs out.
    assert_eq!(c.cmd("HPEXPIRE h 1000 FIELDS 1 a"), ints(&[1]));
    assert_eq!(watcher.cmd("WATCH h"), simple("OK"));
    tracker.cmd("HELLO 3");
    assert_eq!(tracker.cmd("CLIENT TRACKING on"), simple("OK"));
    assert_eq!(tracker.cmd("HGET h b"), bulk("2"));
    assert_eq!(c.cmd("HLEN h"), int(2), "set up before the field ran out");
    std::thread::sleep(Duration::from_millis(1100));
    // A read finds the field expired and removes it.
    assert_eq!(c.cmd("HGET h a"), Frame::Null);
    assert_eq!(c.cmd("HLEN h"), int(1));
    assert_eq!(
        tracker.read_frame(),
        Frame::Push(vec![bulk("invalidate"), Frame::Array(vec![bulk("h")])]),
        "the tracker hears of the hash's change"
    );
    watcher.cmd("MULTI");
    watcher.cmd("SET x 1");
    assert_eq!(watcher.cmd("EXEC"), Frame::NullArray, "the transaction watching the hash fails");
    assert_eq!(c.cmd("DEBUG SET-ACTIVE-EXPIRE 1"), simple("OK"));
}

/// RENAME, COPY, MOVE and SWAPDB carry field times; a new value under the key drops them.
#[test]
fn field_times_move_with_their_hash() {
    let t = tandem(COMMON_FLAGS);
    let mut c = t.client();
    let at = Y2100.to_string();
    c.cmd("HSET h a 1 b 2");
    c.cmd(&format!("HEXPIREAT h {at} FIELDS 1 a"));
    assert_eq!(c.cmd("RENAME h r"), simple("OK"));
    assert_eq!(c.cmd("HEXPIRETIME r FIELDS 2 a b"), ints(&[Y2100, -1]));
    assert_eq!(c.cmd("COPY r cp"), int(1));
    assert_eq!(c.cmd("HEXPIRETIME cp FIELDS 1 a"), ints(&[Y2100]));
    assert_eq!(c.cmd("MOVE cp 1"), int(1));
    c.cmd("SELECT 1");
    assert_eq!(c.cmd("HEXPIRETIME cp FIELDS 1 a"), ints(&[Y2100]));
    c.cmd("SELECT 0");
    // Short times still run out after a move, wherever the hash went.
    c.cmd("HSET s a 1 b 2");
    c.cmd("HPEXPIRE s 100 FIELDS 1 a");
    assert_eq!(c.cmd("SWAPDB 0 2"), simple("OK"));
    c.cmd("SELECT 2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.cmd("HKEYS s"), Frame::Array(vec![bulk("b")]));
    c.cmd("SELECT 0");
    c.cmd("HSET n a 1");
    c.cmd("HPEXPIRE n 50 FIELDS 1 a");
    c.cmd("SET n plain");
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(c.cmd("GET n"), bulk("plain"));
}

fn dump(c: &mut RawClient, key: &str) -> Vec<u8> {
    match c.send(&["DUMP", key]) {
        Frame::Bulk(b) => b,
        other => panic!("DUMP {key}: {other:?}"),
    }
}

/// `DUMP` writes Redis 7.4's types (25 for a `listpackex`, 24 for a table) and `RESTORE`
/// reads them back; a hash whose fields no longer expire is written in the plain types,
/// which redis-server 7.0 loads.
#[test]
fn dump_and_restore_keep_field_times() {
    let t = tandem(COMMON_FLAGS);
    let mut c = t.client();
    let at = Y2100.to_string();
    c.cmd("HSET small a 1 b 2 c 3");
    c.cmd(&format!("HEXPIREAT small {at} FIELDS 1 b"));
    c.cmd(&format!("HEXPIREAT small {} FIELDS 1 a", Y2100 + 1));
    let mut args: Vec<String> = vec!["HSET".into(), "big".into()];
    for i in 0..600 {
        args.push(format!("f{i}"));
        args.push(i.to_string());
    }
    c.send(&args);
    c.cmd(&format!("HEXPIREAT big {at} FIELDS 2 f0 f7"));
    for (key, type_byte, encoding) in [("small", 25u8, "listpackex"), ("big", 24, "hashtable")] {
        let payload = dump(&mut c, key);
        assert_eq!(payload[0], type_byte, "{key}");
        let copy = format!("{key}-copy");
        assert_eq!(c.send(&[b"RESTORE".as_slice(), copy.as_bytes(), b"0", &payload]), simple("OK"));
        assert_eq!(c.send(&["OBJECT", "ENCODING", &copy]), bulk(encoding));
        let fields: &[&str] = if key == "small" { &["a", "b", "c"] } else { &["f0", "f1", "f7"] };
        let mut q = vec!["HEXPIRETIME", key, "FIELDS", "3"];
        q.extend(fields);
        let want = c.send(&q);
        q[1] = &copy;
        assert_eq!(c.send(&q), want);
        assert_eq!(c.send(&["HLEN", &copy]), c.send(&["HLEN", key]));
    }
    // Persisted fields: plain types, which the 7.0 reference loads.
    c.cmd("HPERSIST small FIELDS 2 a b");
    c.cmd("HPERSIST big FIELDS 2 f0 f7");
    let r = redis(COMMON_FLAGS);
    let mut rc = r.client();
    for (key, type_byte) in [("small", 16u8), ("big", 4)] {
        let payload = dump(&mut c, key);
        assert_eq!(payload[0], type_byte, "{key}");
        assert_eq!(rc.send(&[b"RESTORE".as_slice(), key.as_bytes(), b"0", &payload]), simple("OK"));
        assert_eq!(rc.send(&["HLEN", key]), c.send(&["HLEN", key]));
    }
}

/// Field times survive `DEBUG RELOAD`, a restart from the RDB file, and a restart from the
/// AOF, which logs them as absolute `HPEXPIREAT` and removed fields as `HDEL`.
#[test]
fn field_times_survive_restarts_and_are_logged_in_absolute_form() {
    let dir = testkit::temp_dir("hash-expire-persist");
    let args = [COMMON_FLAGS, &["--appendonly", "yes", "--appendfsync", "always"]].concat();
    let far = Y2100.to_string();
    {
        let t = testkit::TandemProcess::spawn_with_data_dir(common::TANDEM_BIN, &dir, &args);
        let mut c = t.client();
        c.cmd("HSET h a 1 b 2 c 3 d 4");
        assert_eq!(c.cmd(&format!("HEXPIREAT h {far} FIELDS 1 a")), ints(&[1]));
        assert_eq!(c.cmd("HEXPIRE h 1000 FIELDS 1 b"), ints(&[1]));
        assert_eq!(c.cmd("HSETEX h EX 2000 FIELDS 1 e 5"), int(1));
        assert_eq!(c.cmd("HPEXPIRE h 50 FIELDS 1 c"), ints(&[1]));
        assert_eq!(c.cmd("HEXPIRE h 0 FIELDS 1 d"), ints(&[2]));
        // An increment keeps the time, in the log too.
        c.cmd("HSET inc f 1.5");
        assert_eq!(c.cmd("HEXPIRE inc 1000 FIELDS 1 f"), ints(&[1]));
        assert_eq!(c.cmd("HINCRBYFLOAT inc f 1"), bulk("2.5"));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(c.cmd("HEXISTS h c"), int(0));
        let before = c.cmd("HPEXPIRETIME h FIELDS 3 a b e");
        assert_eq!(c.cmd("DEBUG RELOAD"), simple("OK"));
        assert_eq!(c.cmd("HPEXPIRETIME h FIELDS 3 a b e"), before);
        assert_eq!(c.cmd("OBJECT ENCODING h"), bulk("listpackex"));
        c.cmd("HSET h2 x 1");
        c.cmd("HPEXPIRE h2 100000 FIELDS 1 x");
        c.cmd("SAVE");
        // The log holds absolute times only.
        let aof_dir = dir.join("appendonlydir");
        let mut log = Vec::new();
        for e in std::fs::read_dir(&aof_dir).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".incr.aof") {
                log.extend(std::fs::read(p).unwrap());
            }
        }
        let log = String::from_utf8_lossy(&log).to_lowercase();
        assert!(log.contains("hpexpireat"), "{log}");
        assert!(!log.contains("\r\nhexpire\r\n") && !log.contains("\r\nhpexpire\r\n"), "{log}");
        assert!(log.contains("hsetex\r\n$1\r\nh\r\n$4\r\npxat"), "{log}");
        assert!(log.contains("hdel\r\n$1\r\nh\r\n$1\r\nd"), "{log}");
        assert!(log.contains("hdel\r\n$1\r\nh\r\n$1\r\nc"), "the expired field is logged: {log}");
        drop(c);
        drop(t);
    }
    // From the AOF.
    {
        let t = testkit::TandemProcess::spawn_with_data_dir(common::TANDEM_BIN, &dir, &args);
        let mut c = t.client();
        match c.cmd("HEXPIRETIME h FIELDS 5 a b c d e") {
            Frame::Array(v) => {
                assert_eq!(v[0], int(Y2100));
                assert!(integer(v[1].clone()) > now_ms() / 1000 + 900, "{v:?}");
                assert_eq!(&v[2..4], &[int(-2), int(-2)]);
                assert!(integer(v[4].clone()) > now_ms() / 1000 + 1900, "{v:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.cmd("HGET h2 x"), bulk("1"));
        assert_eq!(c.cmd("HGET inc f"), bulk("2.5"));
        let ttl = integer(c.cmd("HTTL inc FIELDS 1 f"));
        assert!((990..=1000).contains(&ttl), "{ttl}");
        // A rewrite keeps them too (in command form: `HMSET` then `HPEXPIREAT` per field).
        assert_eq!(c.cmd("CONFIG SET aof-use-rdb-preamble no"), simple("OK"));
        assert_eq!(c.cmd("BGREWRITEAOF"), simple("Background append only file rewriting started"));
        let start = Instant::now();
        loop {
            let info = match c.cmd("INFO persistence") {
                Frame::Bulk(b) => String::from_utf8(b).unwrap(),
                other => panic!("{other:?}"),
            };
            if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(c);
        drop(t);
    }
    {
        let t = testkit::TandemProcess::spawn_with_data_dir(common::TANDEM_BIN, &dir, &args);
        let mut c = t.client();
        assert_eq!(c.cmd("HEXPIRETIME h FIELDS 1 a"), ints(&[Y2100]));
        let base: Vec<u8> = std::fs::read_dir(dir.join("appendonlydir"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".base."))
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect();
        let base = String::from_utf8_lossy(&base);
        assert!(base.contains(&format!("HPEXPIREAT\r\n$1\r\nh\r\n$13\r\n{}", Y2100 * 1000)), "{base}");
        let ttl = integer(c.cmd("HTTL h2 FIELDS 1 x"));
        assert!((90..=100).contains(&ttl), "{ttl}");
    }
    // From the RDB file alone.
    let rdb_only = [COMMON_FLAGS, &["--appendonly", "no"]].concat();
    let t = testkit::TandemProcess::spawn_with_data_dir(common::TANDEM_BIN, &dir, &rdb_only);
    let mut c = t.client();
    assert_eq!(c.cmd("HEXPIRETIME h FIELDS 1 a"), ints(&[Y2100]));
    assert_eq!(c.cmd("HGET h a"), bulk("1"));
}

/// Keyspace events of field expiry (Redis 7.4's names): `hexpire`, `hpersist`, `hdel` for a
/// time already past; `hexpired` when fields run out, lazily or in the expiry cycle, then
/// `del` when the hash is emptied.
#[test]
fn field_expiry_publishes_its_keyspace_events() {
    let t = tandem(COMMON_FLAGS);
    let mut c = t.client();
    c.cmd("CONFIG SET notify-keyspace-events Kh");
    let mut sub = t.client();
    sub.cmd("PSUBSCRIBE __keyspace@0__:*");
    let mut next = |key: &str| match sub.read_frame() {
        Frame::Array(p) if p.len() == 4 && p[2] == bulk(format!("__keyspace@0__:{key}")) => p[3].clone(),
        other => panic!("{other:?}"),
    };
    c.cmd("HSET h a 1 b 2 c 3");
    assert_eq!(next("h"), bulk("hset"));
    c.cmd("HEXPIRE h 100 FIELDS 1 a");
    assert_eq!(next("h"), bulk("hexpire"));
    c.cmd("HPERSIST h FIELDS 1 a");
    assert_eq!(next("h"), bulk("hpersist"));
    c.cmd("HPERSIST h FIELDS 1 a");
    c.cmd("HEXPIREAT h 1 FIELDS 1 a");
    assert_eq!(next("h"), bulk("hdel"), "a time already past deletes (and nothing for the no-op)");
    // Lazily: a read finds b gone.
    c.cmd("HPEXPIRE h 20 FIELDS 1 b");
    assert_eq!(next("h"), bulk("hexpire"));
    std::thread::sleep(Duration::from_millis(40));
    c.cmd("CONFIG SET notify-keyspace-events Khg");
    assert_eq!(c.cmd("HGET h b"), Frame::Null);
    assert_eq!(next("h"), bulk("hexpired"));
    // In the expiry cycle: the last field goes, and the hash with it.
    c.cmd("HPEXPIRE h 20 FIELDS 1 c");
    assert_eq!(next("h"), bulk("hexpire"));
    assert_eq!(next("h"), bulk("hexpired"));
    assert_eq!(next("h"), bulk("del"));
    assert_eq!(c.cmd("EXISTS h"), int(0));
}
