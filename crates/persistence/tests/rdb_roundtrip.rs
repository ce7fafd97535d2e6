//! RDB files written with the writer pieces and read back with the loader, plus the loader's
//! answers to hand-made and damaged files. What Redis itself does with such files is checked
//! in `rdb_redis.rs`.

mod rdb_support;

use std::io::Write;

use engine::rdb::encoding as enc;
use engine::rdb::RdbValue;
use persistence::rdb_file::{self, AuxInfo, Checksummed, Entry, LoadErrorKind};
use proptest::collection::vec;
use proptest::prelude::*;
use rdb_support::{pseudo_random_bytes, record, record_with, seal, show};

/// One generated key: key, value, expiry, idle, freq.
type Gen = (Vec<u8>, Vec<u8>, Option<i64>, Option<u64>, Option<u8>);

fn blob() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        any::<i64>().prop_map(|v| v.to_string().into_bytes()),
        (-300i64..300).prop_map(|v| v.to_string().into_bytes()),
        "[-+ 0-9.]{0,12}".prop_map(String::into_bytes),
        (vec(any::<u8>(), 1..4), 1usize..60).prop_map(|(seed, n)| seed.repeat(n)),
    ]
}

fn section() -> impl Strategy<Value = (u64, Vec<Gen>)> {
    let key =
        (blob(), blob(), proptest::option::of(any::<i64>()), proptest::option::of(any::<u64>()), any::<Option<u8>>());
    (0u64..16, vec(key, 0..8))
}

fn standard_aux_text(info: &AuxInfo) -> Vec<(Vec<u8>, Vec<u8>)> {
    [
        ("redis-ver", info.redis_ver.to_string()),
        ("redis-bits", "64".to_string()),
        ("ctime", info.ctime_secs.to_string()),
        ("used-mem", info.used_mem.to_string()),
        ("aof-base", if info.aof_base { "1" } else { "0" }.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.into_bytes()))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn written_files_load_back(
        sections in vec(section(), 0..6),
        functions in vec(vec(any::<u8>(), 0..100), 0..3),
        ctime in any::<i64>(),
        used_mem in any::<u64>(),
        aof_base in any::<bool>(),
        compress in any::<bool>(),
        checksum in any::<bool>(),
        cuts in vec(any::<usize>(), 0..6),
    ) {
        let info = AuxInfo { redis_ver: "7.0.15", ctime_secs: ctime, used_mem, aof_base };
        let mut body = Vec::new();
        rdb_file::write_header(&mut body);
        rdb_file::write_standard_aux(&mut body, &info);
        for f in &functions {
            rdb_file::write_function(&mut body, f, compress);
        }
        let mut expected = Vec::new();
        for (db, keys) in &sections {
            rdb_file::write_select_db(&mut body, *db);
            let expires = keys.iter().filter(|k| k.2.is_some()).count() as u64;
            rdb_file::write_resize_db(&mut body, keys.len() as u64, expires);
            for (i, (key, value, expire, idle, freq)) in keys.iter().enumerate() {
                if let Some(s) = idle {
                    rdb_file::write_idle(&mut body, *s);
                }
                if let Some(f) = freq {
                    rdb_file::write_freq(&mut body, *f);
                }
                // Both entry writers, which must agree.
                if i % 2 == 0 {
                    rdb_file::write_string_entry(&mut body, key, value, *expire, compress);
                } else {
                    let v = engine::Value::Str(engine::Str::from_vec(value.clone()));
                    rdb_file::write_entry(&mut body, key, &v, *expire, compress);
                }
                expected.push(Entry {
                    db: *db,
                    key: key.clone(),
                    value: RdbValue::String(value.clone()),
                    expire_at_ms: *expire,
                    idle_secs: *idle,
                    freq: *freq,
                });
            }
        }
        let file = seal(&body, checksum);

        // Streaming the same bytes in arbitrary pieces through the `Write` impl gives the same file.
        let mut streamed = Checksummed::new(Vec::new());
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        for c in cuts.into_iter().chain([body.len()]) {
            Write::write_all(&mut streamed, &body[at..c]).unwrap();
            at = c;
        }
        prop_assert_eq!(streamed.bytes_written(), body.len() as u64);
        prop_assert_eq!(&streamed.finish(checksum).unwrap(), &file);

        let (rec, summary) = record(&file).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&rec.entries, &expected);
        prop_assert_eq!(rec.aux, standard_aux_text(&info));
        prop_assert_eq!(rec.functions, functions.clone());
        prop_assert_eq!(rec.selects, sections.iter().map(|s| s.0).collect::<Vec<_>>());
        prop_assert_eq!(summary.version, 10);
        prop_assert_eq!(summary.keys, expected.len() as u64);
        prop_assert_eq!(summary.functions, functions.len() as u64);
        prop_assert_eq!(summary.bytes, file.len() as u64);
        if checksum {
            let crc = engine::rdb::crc64::crc64(0, &[&body[..], &[enc::RDB_OPCODE_EOF]].concat());
            prop_assert_eq!(&file[file.len() - 8..], &crc.to_le_bytes()[..]);
        } else {
            prop_assert_eq!(&file[file.len() - 8..], &[0u8; 8][..]);
        }
    }
}

#[test]
fn header_and_standard_aux_bytes() {
    let mut out = Vec::new();
    rdb_file::write_header(&mut out);
    assert_eq!(out, b"REDIS0010");
    // The aux section of a file saved by redis-server 7.0.15, which must come out identical
    // from the same facts.
    let redis: &[u8] = b"\xfa\x09redis-ver\x067.0.15\xfa\x0aredis-bits\xc0\x40\xfa\x05ctime\xc2\xcc\x24\x02\x6b\
        \xfa\x08used-mem\xc2\xb8\xb6\x0e\x00\xfa\x08aof-base\xc0\x00";
    let mut out = Vec::new();
    let info = AuxInfo { redis_ver: "7.0.15", ctime_secs: 0x6b0224cc, used_mem: 0x000eb6b8, aof_base: false };
    rdb_file::write_standard_aux(&mut out, &info);
    assert_eq!(show(&out), show(redis));
    // Numbers beyond 32 bits are written as decimal text.
    let mut out = Vec::new();
    rdb_file::write_standard_aux(&mut out, &AuxInfo { used_mem: 1 << 40, ..info });
    let (rec, _) = record(&seal(&[&b"REDIS0010"[..], &out].concat(), true)).unwrap();
    assert_eq!(rec.aux[3], (b"used-mem".to_vec(), b"1099511627776".to_vec()));
}

/// A small file with one of each item, for the hand-made cases below.
fn sample_body() -> Vec<u8> {
    let mut b = Vec::new();
    rdb_file::write_header(&mut b);
    rdb_file::write_aux(&mut b, b"redis-ver", b"7.0.15");
    rdb_file::write_select_db(&mut b, 2);
    rdb_file::write_resize_db(&mut b, 2, 1);
    rdb_file::write_string_entry(&mut b, b"k", b"v", Some(1_700_000_000_123), true);
    rdb_file::write_string_entry(&mut b, b"n", b"42", None, true);
    b
}

#[test]
fn header_errors() {
    let file = seal(&sample_body(), true);
    let kind_of = |data: &[u8]| record(data).map(|_| ()).map_err(|e| (e.offset, e.kind));

    let mut bad = file.clone();
    bad[4] = b'X';
    assert_eq!(kind_of(&bad), Err((0, LoadErrorKind::WrongSignature)));
    for (digits, version) in [(&b"0000"[..], 0), (b"0012", 12), (b"-001", -1), (b"abcd", 0)] {
        let mut bad = file.clone();
        bad[5..9].copy_from_slice(digits);
        assert_eq!(kind_of(&bad), Err((5, LoadErrorKind::UnsupportedVersion(version))));
    }
    assert_eq!(kind_of(b"REDIS00"), Err((0, LoadErrorKind::Truncated { needed: 9 })));
    assert_eq!(kind_of(b""), Err((0, LoadErrorKind::Truncated { needed: 9 })));

    // Version 11 (Redis 7.2) loads; the checksum covers the header, so recompute it.
    let mut v11 = sample_body();
    v11[5..9].copy_from_slice(b"0011");
    let (_, s) = record(&seal(&v11, true)).unwrap();
    assert_eq!(s.version, 11);
    // atoi accepts blanks and a sign, like Redis.
    let mut spaced = sample_body();
    spaced[5..9].copy_from_slice(b" +10");
    assert_eq!(record(&seal(&spaced, true)).unwrap().1.version, 10);
    // Before version 5 there is no checksum: the file ends at EOF.
    let mut v4 = sample_body();
    v4[5..9].copy_from_slice(b"0004");
    v4.push(enc::RDB_OPCODE_EOF);
    let (rec, s) = record(&v4).unwrap();
    assert_eq!((s.version, s.keys, s.bytes), (4, 2, v4.len() as u64));
    assert_eq!(rec.entries[0].expire_at_ms, Some(1_700_000_000_123));
}

#[test]
fn checksum_rules() {
    let body = sample_body();
    let good = seal(&body, true);
    let (rec, summary) = record(&good).unwrap();
    assert_eq!(summary.bytes, good.len() as u64);
    assert_eq!(rec.selects, [2]);
    assert_eq!(rec.resizes, [(2, 1)]);
    assert_eq!(rec.entries.len(), 2);
    assert!(rec.entries.iter().all(|e| e.db == 2));

    // A stored 0 means "not computed" and is never checked.
    let zero = seal(&body, false);
    assert_eq!(record(&zero).unwrap().0, rec);
    // A wrong checksum names both values and the checksum's offset.
    let mut wrong = good.clone();
    let n = wrong.len();
    wrong[n - 1] ^= 0x40;
    let e = record(&wrong).unwrap_err();
    let expected = engine::rdb::crc64::crc64(0, &good[..n - 8]);
    let found = u64::from_le_bytes(wrong[n - 8..].try_into().unwrap());
    assert_eq!(e.offset, n as u64 - 8);
    assert_eq!(e.kind, LoadErrorKind::ChecksumMismatch { expected, found });
    let text = e.to_string();
    assert!(text.contains(&format!("{expected:016x}")) && text.contains(&format!("{found:016x}")), "{text}");
    assert!(text.contains(&format!("offset {}", n - 8)), "{text}");
    // ... unless verification is off.
    assert_eq!(record_with(&wrong, false).unwrap().0, rec);
    // Bytes after the checksum are ignored.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"garbage");
    assert_eq!(record(&trailing).unwrap().1.bytes, good.len() as u64);
}

#[test]
fn opcode_errors_name_their_offset() {
    let body = sample_body();
    let case = |extra: &[u8]| {
        let mut b = body.clone();
        let at = b.len() as u64;
        b.extend_from_slice(extra);
        let e = record(&seal(&b, true)).unwrap_err();
        let text = e.to_string();
        (e.offset - at, e.kind, text)
    };
    // Module aux data needs its module.
    let mut module = vec![enc::RDB_OPCODE_MODULE_AUX];
    enc::write_len(&mut module, 0x91e6_5b6d_a2b1_9c03);
    let (off, kind, _) = case(&module);
    assert_eq!(off, 0);
    assert!(matches!(kind, LoadErrorKind::ModuleAux { .. }), "{kind:?}");
    assert_eq!(case(&[enc::RDB_OPCODE_FUNCTION_PRE_GA, 0]).1, LoadErrorKind::FunctionPreGa);
    // 8 and 26 are no types; 244 is an opcode of later Redis versions.
    for t in [8u8, 26, 244] {
        assert_eq!(case(&[t, 1, b'k', 0]).1, LoadErrorKind::UnknownType { type_byte: t });
    }
    // A stream is a real type Tandem lacks: the error names type, key and offset.
    let (off, kind, text) = case(&[enc::RDB_TYPE_STREAM_LISTPACKS, 4, b'l', b'i', b's', b't', 1, 2]);
    assert_eq!((off, kind), (0, LoadErrorKind::UnsupportedType { type_byte: 15, key: b"list".to_vec() }));
    assert!(text.contains("\"list\"") && text.contains("15"), "{text}");
    // A damaged listpack inside a list is refused with its offset.
    let (off, kind, _) = case(&[enc::RDB_TYPE_LIST_QUICKLIST_2, 1, b'l', 1, 2, 3, 1, 2, 3]);
    assert_eq!((off, kind), (5, LoadErrorKind::BadValue("listpack")));
    // Bad string encodings inside a key.
    assert_eq!(case(&[0, 0xc4]).1, LoadErrorKind::BadStringEncoding { encoding: 4 });
    assert_eq!(case(&[0, 0x82]).1, LoadErrorKind::BadLength { byte: 0x82 });
    assert_eq!(case(&[0, 1, b'k', 0xc3, 0x02, 0x05, 0x00, b'a']).1, LoadErrorKind::BadLzf);
    // The visitor's refusal of a database stops the load at the SELECTDB.
    let (off, kind, text) = case(&[enc::RDB_OPCODE_SELECTDB, 16]);
    assert_eq!((off, kind), (0, LoadErrorKind::Rejected("database 16 out of range".into())));
    assert!(text.contains("database 16 out of range"), "{text}");
}

#[test]
fn key_attributes_follow_redis() {
    let mut b = Vec::new();
    rdb_file::write_header(&mut b);
    // An expiry in seconds (signed 32 bits), then one in ms pending across a SELECTDB and an
    // AUX field: it belongs to the next key, as in Redis.
    b.push(enc::RDB_OPCODE_EXPIRETIME);
    b.extend_from_slice(&(-5i32).to_le_bytes());
    rdb_file::write_string_entry(&mut b, b"old", b"1", None, true);
    b.push(enc::RDB_OPCODE_EXPIRETIME_MS);
    b.extend_from_slice(&123i64.to_le_bytes());
    rdb_file::write_idle(&mut b, 77);
    rdb_file::write_select_db(&mut b, 3);
    rdb_file::write_aux(&mut b, b"x", b"y");
    rdb_file::write_string_entry(&mut b, b"late", b"2", None, true);
    // Attributes do not leak to the key after.
    rdb_file::write_string_entry(&mut b, b"plain", b"3", None, true);
    // SELECTDB and IDLE lengths are read as Redis's rdbLoadLen(NULL) reads them: an encoded
    // marker stands for its low six bits.
    b.extend_from_slice(&[enc::RDB_OPCODE_SELECTDB, 0xc5]);
    b.extend_from_slice(&[enc::RDB_OPCODE_SELECTDB, 0x81, 0, 0, 0, 0, 0, 0, 0, 7]);
    rdb_file::write_string_entry(&mut b, b"seven", b"4", None, true);
    let (rec, _) = record(&seal(&b, true)).unwrap();
    let got: Vec<_> = rec.entries.iter().map(|e| (e.db, e.key.as_slice(), e.expire_at_ms, e.idle_secs)).collect();
    assert_eq!(
        got,
        [
            (0, &b"old"[..], Some(-5000), None),
            (3, b"late", Some(123), Some(77)),
            (3, b"plain", None, None),
            (7, b"seven", None, None)
        ]
    );
    assert_eq!(rec.selects, [3, 5, 7]);
}

/// A file with a bit of everything, about 3 KB.
fn varied_file(checksum: bool) -> Vec<u8> {
    let mut b = Vec::new();
    rdb_file::write_header(&mut b);
    let info = AuxInfo { redis_ver: "7.0.15", ctime_secs: 1_700_000_000, used_mem: 1 << 20, aof_base: false };
    rdb_file::write_standard_aux(&mut b, &info);
    rdb_file::write_function(&mut b, b"#!lua name=lib\nredis.register_function('f', function() return 1 end)", true);
    for db in [0, 5, 0] {
        rdb_file::write_select_db(&mut b, db);
        rdb_file::write_resize_db(&mut b, 6, 2);
        rdb_file::write_string_entry(&mut b, b"int", b"-70000", Some(1_800_000_000_000), true);
        rdb_file::write_string_entry(&mut b, b"12", b"", None, true);
        rdb_file::write_freq(&mut b, 9);
        rdb_file::write_string_entry(&mut b, b"text", &b"compress me ".repeat(40), None, true);
        rdb_file::write_string_entry(&mut b, b"raw", &b"not compressed ".repeat(10), Some(-1), false);
        rdb_file::write_idle(&mut b, 100_000);
        rdb_file::write_string_entry(
            &mut b,
            &pseudo_random_bytes(db + 1, 30),
            &pseudo_random_bytes(db, 600),
            None,
            true,
        );
        rdb_file::write_string_entry(&mut b, b"big", b"9223372036854775807", None, true);
    }
    seal(&b, checksum)
}

#[test]
fn truncation_anywhere_fails_at_or_before_the_cut() {
    for checksum in [true, false] {
        let file = varied_file(checksum);
        let (rec, _) = record(&file).unwrap();
        assert_eq!(rec.entries.len(), 18);
        for cut in 0..file.len() {
            match record(&file[..cut]) {
                Ok(_) => panic!("a file cut at {cut} of {} loaded", file.len()),
                Err(e) => {
                    assert!(e.offset <= cut as u64, "cut at {cut}: error at {}: {e}", e.offset);
                    assert!(e.to_string().contains(&format!("offset {}", e.offset)));
                }
            }
        }
    }
}

/// Every single-byte change is caught, as CRC-64 detects every error burst shorter than 64 bits,
/// with one exception that leaves the data intact: version digits such as "001\x10" read as
/// version 1 (C's `atoi`, as in Redis), which has no checksum, so the file loads the same.
/// (The format has one more hole: a change that turns a type byte into EOF right before eight
/// zero bytes reads as "no checksum"; this file has no such run of zeros.)
#[test]
fn flipped_bytes_are_caught_by_the_checksum() {
    let file = varied_file(true);
    let good = record(&file).unwrap().0;
    for i in 0..file.len() {
        for mask in [0x01u8, 0x20, 0x80, 0xff] {
            let mut bad = file.clone();
            bad[i] ^= mask;
            if let Ok((rec, summary)) = record(&bad) {
                assert!(
                    (5..9).contains(&i) && summary.version < 5 && rec == good,
                    "flipping byte {i} with {mask:#04x} loaded version {} (same keyspace: {})",
                    summary.version,
                    rec == good
                );
            }
            // Without verification, damage may load (as in Redis) but must not panic.
            if let Err(e) = record_with(&bad, false) {
                assert!(e.offset < file.len() as u64);
            }
        }
    }
}

proptest! {
    #[test]
    fn garbage_never_panics(tail in vec(any::<u8>(), 0..300), version in 1u32..=11) {
        let mut b = format!("REDIS{version:04}").into_bytes();
        b.extend_from_slice(&tail);
        if let Err(e) = record(&b) {
            prop_assert!(e.offset <= b.len() as u64);
        }
        let sealed = seal(&b, true);
        if let Err(e) = record(&sealed) {
            prop_assert!(e.offset <= sealed.len() as u64);
        }
    }
}
