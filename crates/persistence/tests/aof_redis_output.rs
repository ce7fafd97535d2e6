//! Reading what redis-server writes: its manifest (parsed, and rebuilt byte for byte, and
//! predicted by our transitions), its incr files (the commands sent, in Redis's logged forms)
//! and its base files, across BGREWRITEAOF.

mod aof_support;

use aof_support::*;
use persistence::aof::manifest::{self, BaseFormat, FileKind, Manifest};
use persistence::aof::{is_rdb, read_commands, Encoder};
use std::fs;
use std::path::Path;
use testkit::{Frame, RedisProcess};

const APPENDFILENAME: &[u8] = b"appendonly.aof";

fn read_manifest(aof_dir: &Path) -> (Vec<u8>, Manifest) {
    let text = fs::read(path_of(aof_dir, &manifest::manifest_file_name(APPENDFILENAME))).unwrap();
    let parsed = manifest::parse(&text).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&text)));
    assert_eq!(
        String::from_utf8_lossy(&parsed.to_text()),
        String::from_utf8_lossy(&text),
        "to_text must reproduce Redis's manifest"
    );
    (text, parsed)
}

/// Re-encodes a command file from what the reader found (SELECTs through an [`Encoder`], the
/// gaps between commands as `#TS` annotations) and checks the result equals the file.
fn assert_reencodes(data: &[u8]) {
    let (commands, end) = read_commands(data, 0);
    assert_eq!(end, Ok(()));
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    let mut db = None;
    let mut prev_end = 0;
    for c in &commands {
        let gap = &data[prev_end..c.start];
        if !gap.is_empty() {
            let ts = gap.strip_prefix(b"#TS:").and_then(|g| g.strip_suffix(b"\r\n")).expect("only #TS annotations");
            enc.timestamp(&mut out, std::str::from_utf8(ts).unwrap().parse().unwrap());
        }
        prev_end = c.end;
        if c.argv[0].eq_ignore_ascii_case(b"select") {
            db = Some(std::str::from_utf8(c.argv[1]).unwrap().parse().unwrap());
            continue;
        }
        enc.append(&mut out, db.expect("a SELECT before the first command"), &c.argv);
    }
    assert_eq!(prev_end, data.len());
    assert_eq!(out.escape_ascii().to_string(), data.escape_ascii().to_string());
}

fn s(c: &mut testkit::RawClient, args: &[&[u8]]) -> Frame {
    c.send(args)
}

fn redis_output(preamble: bool) {
    let format = if preamble { BaseFormat::Rdb } else { BaseFormat::Aof };
    // `always`: Redis writes the AOF before it replies (with `everysec` it may postpone the
    // write while a background fsync runs), so the files can be read right after a reply.
    let r = RedisProcess::spawn(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--aof-use-rdb-preamble",
        if preamble { "yes" } else { "no" },
        "--aof-timestamp-enabled",
        "yes",
    ]);
    let aof_dir = r.dir.join("appendonlydir");
    let mut c = r.client();

    // Start-up on an empty dataset: an empty base, then the first incr file.
    let (_, m0) = read_manifest(&aof_dir);
    let mut predicted = Manifest::new();
    predicted.new_base(APPENDFILENAME, format);
    predicted.last_or_new_incr(APPENDFILENAME);
    assert_eq!(m0, predicted);
    let base1 = fs::read(m0.base.as_ref().unwrap().path_in(&aof_dir)).unwrap();
    assert_eq!(is_rdb(&base1), preamble);
    if !preamble {
        assert_eq!(read_commands(&base1, 0), (vec![], Ok(())), "an empty dataset rewrites to no command");
    }

    let bin_key: &[u8] = b"k\r\n*1\r\n\x00";
    let bin_val: &[u8] = b"\xff$3\r\n\r\n";
    let t0 = now_ms();
    s(&mut c, &[b"SET", b"a", b"1"]);
    s(&mut c, &[b"SET", bin_key, bin_val]);
    s(&mut c, &[b"EXPIRE", b"a", b"100"]);
    s(&mut c, &[b"SET", b"t", b"v", b"EX", b"100"]);
    s(&mut c, &[b"MULTI"]);
    s(&mut c, &[b"INCR", b"c"]);
    s(&mut c, &[b"LPUSH", b"l", b"x", b"y"]);
    s(&mut c, &[b"EXEC"]);
    s(&mut c, &[b"SELECT", b"3"]);
    s(&mut c, &[b"SET", b"z", b""]);
    s(&mut c, &[b"SELECT", b"0"]);
    s(&mut c, &[b"DEL", b"a"]);
    let t1 = now_ms();
    let ttl = Arg::Ms(t0 + 100_000, t1 + 100_000);

    let incr1 = fs::read(m0.incrs[0].path_in(&aof_dir)).unwrap();
    let (commands, end) = read_commands(&incr1, 0);
    assert_eq!(end, Ok(()));
    assert_commands(
        &argvs(&commands),
        &[
            cmd(&[b"SELECT", b"0"]),
            cmd(&[b"SET", b"a", b"1"]),
            cmd(&[b"SET", bin_key, bin_val]),
            vec![Arg::Is(b"PEXPIREAT".to_vec()), Arg::Is(b"a".to_vec()), ttl.clone()],
            [cmd(&[b"SET", b"t", b"v", b"PXAT"]), vec![ttl.clone()]].concat(),
            cmd(&[b"MULTI"]),
            cmd(&[b"INCR", b"c"]),
            cmd(&[b"LPUSH", b"l", b"x", b"y"]),
            cmd(&[b"EXEC"]),
            cmd(&[b"SELECT", b"3"]),
            cmd(&[b"SET", b"z", b""]),
            cmd(&[b"SELECT", b"0"]),
            cmd(&[b"DEL", b"a"]),
        ],
    );
    assert_reencodes(&incr1);

    bgrewriteaof(&mut c);
    let (_, m1) = read_manifest(&aof_dir);
    let mut predicted = m0.clone();
    predicted.new_incr(APPENDFILENAME);
    predicted.complete_rewrite(APPENDFILENAME, format, true);
    let deleted = predicted.take_history();
    assert_eq!(m1, predicted);
    assert_eq!(deleted.len(), 2, "the old base and the first incr");
    for f in &deleted {
        wait_gone(&f.path_in(&aof_dir));
    }

    let base2 = fs::read(m1.base.as_ref().unwrap().path_in(&aof_dir)).unwrap();
    assert_eq!(is_rdb(&base2), preamble);
    if !preamble {
        // The rewrite lists each database's keys in hash order: compare per database, sorted.
        assert!(base2.starts_with(b"#TS:"), "a rewrite starts with a timestamp");
        let (commands, end) = read_commands(&base2, 0);
        assert_eq!(end, Ok(()));
        let all = argvs(&commands);
        let select3 = all.iter().position(|a| a[0] == b"SELECT" && a[1] == b"3").expect("SELECT 3");
        assert_eq!(all[0], [b"SELECT".to_vec(), b"0".to_vec()]);
        let mut db0 = all[1..select3].to_vec();
        // PEXPIREAT follows its key's SET.
        let set_t = db0.iter().position(|a| a[0] == b"SET" && a[1] == b"t").unwrap();
        let pexpireat = db0.remove(set_t + 1);
        assert_commands(&[pexpireat], &[vec![Arg::Is(b"PEXPIREAT".to_vec()), Arg::Is(b"t".to_vec()), ttl.clone()]]);
        db0.sort();
        let mut expected0: Vec<Vec<Vec<u8>>> = vec![
            vec![b"SET".to_vec(), b"c".to_vec(), b"1".to_vec()],
            vec![b"RPUSH".to_vec(), b"l".to_vec(), b"y".to_vec(), b"x".to_vec()],
            vec![b"SET".to_vec(), b"t".to_vec(), b"v".to_vec()],
            vec![b"SET".to_vec(), bin_key.to_vec(), bin_val.to_vec()],
        ];
        expected0.sort();
        assert_eq!(db0, expected0);
        assert_commands(&all[select3 + 1..], &[cmd(&[b"SET", b"z", b""])]);
    }

    // After the rewrite, logging resumes in the new incr file, which selects its database anew.
    s(&mut c, &[b"SET", b"after", b"1"]);
    s(&mut c, &[b"SELECT", b"3"]);
    s(&mut c, &[b"DEL", b"z"]);
    let incr2 = fs::read(m1.incrs[0].path_in(&aof_dir)).unwrap();
    let (commands, end) = read_commands(&incr2, 0);
    assert_eq!(end, Ok(()));
    assert_commands(
        &argvs(&commands),
        &[cmd(&[b"SELECT", b"0"]), cmd(&[b"SET", b"after", b"1"]), cmd(&[b"SELECT", b"3"]), cmd(&[b"DEL", b"z"])],
    );
    assert_reencodes(&incr2);
    assert_eq!(m1.incrs[0].seq, 2);
    assert_eq!(m1.incrs[0].kind, FileKind::Incr);
}

#[test]
fn redis_output_without_rdb_preamble() {
    redis_output(false);
}

#[test]
fn redis_output_with_rdb_preamble() {
    redis_output(true);
}

/// With `aof-disable-auto-gc`, history accumulates in the manifest: our transitions must
/// predict Redis's manifest (and its order of history lines) rewrite after rewrite, also when
/// the base format changes in between and when the name needs quoting.
#[test]
fn history_kept_without_auto_gc() {
    let fname: &[u8] = b"a b\"\xc3\xa9.aof";
    let r = RedisProcess::spawn(&[
        "--appendonly",
        "yes",
        "--appendfilename",
        std::str::from_utf8(fname).unwrap(),
        "--aof-disable-auto-gc",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
    ]);
    let aof_dir = r.dir.join("appendonlydir");
    let read = || {
        let text = fs::read(path_of(&aof_dir, &manifest::manifest_file_name(fname))).unwrap();
        let parsed = manifest::parse(&text).unwrap();
        assert_eq!(parsed.to_text().escape_ascii().to_string(), text.escape_ascii().to_string());
        parsed
    };
    let mut predicted = Manifest::new();
    predicted.new_base(fname, BaseFormat::Aof);
    predicted.last_or_new_incr(fname);
    assert_eq!(read(), predicted);
    assert!(String::from_utf8_lossy(&predicted.to_text()).starts_with("file \"a b\\\"\\xc3\\xa9.aof.1.base.aof\" "));

    let mut c = r.client();
    for (round, format) in [BaseFormat::Aof, BaseFormat::Rdb, BaseFormat::Rdb, BaseFormat::Aof].into_iter().enumerate()
    {
        let preamble = if format == BaseFormat::Rdb { "yes" } else { "no" };
        c.send(&["CONFIG", "SET", "aof-use-rdb-preamble", preamble]);
        c.send(&["SET", "round", &round.to_string()]);
        bgrewriteaof(&mut c);
        predicted.new_incr(fname);
        predicted.complete_rewrite(fname, format, true);
        assert_eq!(read(), predicted, "after rewrite {round}");
        for f in predicted.history.iter().chain(predicted.files_to_load()) {
            assert!(f.path_in(&aof_dir).exists(), "{} is listed but missing", f.path_in(&aof_dir).display());
        }
    }
    assert_eq!(predicted.history.len(), 8);
    let (ok, out) = check_aof(&path_of(&aof_dir, &manifest::manifest_file_name(fname)));
    assert!(ok && out.contains("All AOF files and manifest are valid"), "{out}");
}
