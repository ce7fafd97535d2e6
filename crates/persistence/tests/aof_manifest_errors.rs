//! Manifest parsing against redis-server: each malformed form must be rejected with Redis's
//! text, line number and line (redis-server is started on it and must log exactly our report),
//! and the odd but valid forms must mean to us what they mean to Redis (after a rewrite, Redis
//! writes the manifest our transitions predict from our parse).

mod aof_support;

use aof_support::*;
use persistence::aof::manifest::{self, BaseFormat, FileKind, ManifestErrorKind};
use std::fs;
use std::path::Path;
use testkit::RedisProcess;

use ManifestErrorKind::*;

/// (manifest text, error kind, line number) for every way Redis rejects a manifest.
fn cases() -> Vec<(Vec<u8>, ManifestErrorKind, usize)> {
    let long = |prefix: &str| {
        let mut v = prefix.as_bytes().to_vec();
        v.resize(1100, b'x');
        v.push(b'\n');
        v
    };
    let mut cases: Vec<(Vec<u8>, ManifestErrorKind, usize)> = vec![
        (b"".to_vec(), Empty, 0),
        (b"file a.1.incr.aof seq 1 type i".to_vec(), TooLongLine, 1),
        (b"file a.1.incr.aof seq 1 type i\nfile a.2.incr.aof seq 2 type i".to_vec(), TooLongLine, 2),
        (long("file "), TooLongLine, 1),
        // A long comment is cut by Redis's 1024-byte reads; the rest is read as line 2.
        (long("#"), InvalidFormat, 2),
        (b"file a.1.incr.aof seq 1 type i\x00\n".to_vec(), TooLongLine, 1),
        (b"\n".to_vec(), InvalidFormat, 1),
        (b"# comment\n \t\r\n".to_vec(), InvalidFormat, 2),
        (b"file \"a.1.incr.aof seq 1 type i\n".to_vec(), InvalidFormat, 1),
        (b"file \"a\"b seq 1 type i\n".to_vec(), InvalidFormat, 1),
        (b"file a.1.incr.aof seq 1 type\n".to_vec(), InvalidFormat, 1),
        (b"file a.1.incr.aof seq 1 type i extra\n".to_vec(), InvalidFormat, 1),
        (b"file a.1.incr.aof seq 0 type i\n".to_vec(), InvalidFormat, 1),
        (b"file a.1.incr.aof seq one type i\n".to_vec(), InvalidFormat, 1),
        (b"name a.1.incr.aof seq 1 type i\n".to_vec(), InvalidFormat, 1),
        (b"file a.1.incr.aof seq 1 kind i\n".to_vec(), InvalidFormat, 1),
        (b"file a.1.incr.aof seq 1 type \"\"\n".to_vec(), InvalidFormat, 1),
        (b"file dir/a.1.incr.aof seq 1 type i\n".to_vec(), NotBaseName, 1),
        (b"file a\\b seq 1 type i\n".to_vec(), NotBaseName, 1),
        (b"file \"..\\\\x\" seq 1 type h\n".to_vec(), NotBaseName, 1),
        (b"file a.1.base.aof seq 1 type b\nfile a.2.base.aof seq 2 type b\n".to_vec(), DuplicateBase, 2),
        (
            b"file a.2.incr.aof seq 2 type i\nfile a.1.incr.aof seq 1 type h\nfile a.2.incr.aof seq 2 type i\n"
                .to_vec(),
            NonMonotonicSeq,
            3,
        ),
        (b"file a.1.incr.aof seq -1 type i\n".to_vec(), NonMonotonicSeq, 1),
        (b"file a.1.incr.aof seq 1 type q\n".to_vec(), UnknownType, 1),
        (b"file a.1.incr.aof seq 1 type B\n".to_vec(), UnknownType, 1),
    ];
    // The check on the file name comes before the missing-field check.
    cases.push((b"file a/b seq 0 type i\n".to_vec(), NotBaseName, 1));
    cases
}

fn write_dir(text: &[u8]) -> std::path::PathBuf {
    let dir = testkit::temp_dir("aof-manifest");
    let aof_dir = dir.join("appendonlydir");
    fs::create_dir_all(&aof_dir).unwrap();
    fs::write(aof_dir.join("appendonly.aof.manifest"), text).unwrap();
    dir
}

#[test]
fn malformed_manifests_are_rejected_like_redis() {
    for (text, kind, line_no) in cases() {
        let shown = text.escape_ascii().to_string();
        let err = manifest::parse(&text).expect_err(&shown);
        assert_eq!((err.kind, err.line_no), (kind, line_no), "{shown}");
        let dir = write_dir(&text);
        let log = redis_fails_to_start(&dir, &["--appendonly", "yes"]);
        for message in err.redis_report() {
            assert!(log.contains(&format!("# {message}")), "{shown}: {message:?} not in Redis's log:\n{log}");
        }
        assert_eq!(log.contains("Reading the manifest file, at line"), err.line.is_some(), "{shown}:\n{log}");
        assert_eq!(
            log.matches("FATAL AOF MANIFEST FILE ERROR").count(),
            1,
            "{shown}: exactly one error in Redis's log:\n{log}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// Writes empty files for every file the manifest names.
fn touch_files(aof_dir: &Path, m: &manifest::Manifest) {
    for f in m.history.iter().chain(m.files_to_load()) {
        fs::write(f.path_in(aof_dir), b"").unwrap();
    }
}

#[test]
fn odd_valid_manifests_mean_the_same_to_redis() {
    // Comments, keys in any case and order, unknown pairs, surrounding blanks, `seq` read like
    // atoll, `type` by its first letter, quoted names, history files anywhere.
    let text: &[u8] = b"# written by hand\n\
        TYPE history SEQ 9 FILE old.aof\n\
        \t file \"base file\" seq 5 type b  \r\n\
        file a.3.incr.aof seq 3abc type incr future 1\n\
        #\n\
        seq 7 type i file 'a 7'\n";
    let m = manifest::parse(text).unwrap();
    assert_eq!(m.base.as_ref().map(|b| (b.name.as_slice(), b.seq)), Some((b"base file".as_slice(), 5)));
    let incrs: Vec<_> = m.incrs.iter().map(|f| (f.name.as_slice(), f.seq)).collect();
    assert_eq!(incrs, [(b"a.3.incr.aof".as_slice(), 3), (b"a 7", 7)]);
    assert_eq!(m.history.len(), 1);
    assert_eq!((m.history[0].kind, m.history[0].seq), (FileKind::History, 9));
    assert_eq!((m.base_seq, m.incr_seq), (5, 7));

    let dir = write_dir(text);
    let aof_dir = dir.join("appendonlydir");
    touch_files(&aof_dir, &m);
    let r =
        RedisProcess::spawn(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no", "--dir", dir.to_str().unwrap()]);
    let mut c = r.client();
    c.send(&["SET", "k", "v"]);
    bgrewriteaof(&mut c);
    let mut predicted = m.clone();
    predicted.new_incr(b"appendonly.aof");
    predicted.complete_rewrite(b"appendonly.aof", BaseFormat::Aof, true);
    let deleted = predicted.take_history();
    assert_eq!(deleted.len(), 4);
    let written = fs::read(aof_dir.join("appendonly.aof.manifest")).unwrap();
    assert_eq!(String::from_utf8_lossy(&written), String::from_utf8_lossy(&predicted.to_text()));
    assert_eq!(
        String::from_utf8_lossy(&written),
        "file appendonly.aof.6.base.aof seq 6 type b\nfile appendonly.aof.8.incr.aof seq 8 type i\n"
    );
    for f in &deleted {
        wait_gone(&f.path_in(&aof_dir));
    }
    drop(r);
    fs::remove_dir_all(&dir).unwrap();
}

/// A manifest of comments only lists no file: Redis starts empty and makes its first files.
#[test]
fn comments_only_is_an_empty_manifest() {
    let m = manifest::parse(b"# nothing\n#\n").unwrap();
    assert!(m.is_empty());
    let dir = write_dir(b"# nothing\n#\n");
    let r = RedisProcess::spawn(&["--appendonly", "yes", "--dir", dir.to_str().unwrap()]);
    let mut predicted = m;
    predicted.new_base(b"appendonly.aof", BaseFormat::Rdb);
    predicted.last_or_new_incr(b"appendonly.aof");
    let written = fs::read(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert_eq!(written, predicted.to_text());
    drop(r);
    fs::remove_dir_all(&dir).unwrap();
}
