//! Truncated and corrupt command files: every cut and every damaged structural byte of a
//! sample file against a model of where the valid part ends, verdicts compared with
//! redis-check-aof and redis-server on representative cases, and random input that must never
//! panic.

mod aof_support;

use aof_support::*;
use persistence::aof::manifest::{self, Manifest};
use persistence::aof::{read_commands, Command, Encoder, Problem, ReadError};
use proptest::prelude::*;
use std::fs;
use std::path::PathBuf;
use testkit::{Frame, RedisProcess};

/// What a piece of the sample is.
#[derive(Clone, Debug)]
enum Kind {
    Annotation,
    Command(Vec<Vec<u8>>),
}

#[derive(Clone, Debug)]
struct Item {
    start: usize,
    end: usize,
    kind: Kind,
}

/// A command as (start, end, argv).
type CmdView = (usize, usize, Vec<Vec<u8>>);

/// A structural byte: replacing it must be detected at `expected_offset`.
#[derive(Clone, Copy, Debug)]
struct Structural {
    pos: usize,
    expected_offset: usize,
    item: usize,
}

/// A command file built by hand, byte by byte, recording its layout.
#[derive(Default)]
struct Sample {
    data: Vec<u8>,
    items: Vec<Item>,
    structural: Vec<Structural>,
}

impl Sample {
    fn mark(&mut self, pos: usize, expected_offset: usize) {
        self.structural.push(Structural { pos, expected_offset, item: self.items.len() });
    }

    /// `prefix`, digits, CR, LF, all structural.
    fn number_line(&mut self, prefix: u8, n: usize) {
        let at = self.data.len();
        self.data.push(prefix);
        self.data.extend_from_slice(n.to_string().as_bytes());
        self.data.extend_from_slice(b"\r\n");
        for pos in at..self.data.len() - 1 {
            self.mark(pos, pos);
        }
        // A damaged LF is reported at its CR.
        self.mark(self.data.len() - 1, self.data.len() - 2);
    }

    fn command(&mut self, argv: &[&[u8]]) -> &mut Self {
        let start = self.data.len();
        self.number_line(b'*', argv.len());
        for arg in argv {
            self.number_line(b'$', arg.len());
            self.data.extend_from_slice(arg);
            let cr = self.data.len();
            self.data.extend_from_slice(b"\r\n");
            self.mark(cr, cr);
            self.mark(cr + 1, cr);
        }
        let kind = Kind::Command(argv.iter().map(|a| a.to_vec()).collect());
        self.items.push(Item { start, end: self.data.len(), kind });
        self
    }

    fn annotation(&mut self, text: &[u8]) -> &mut Self {
        let start = self.data.len();
        self.mark(start, start);
        self.data.extend_from_slice(text);
        self.data.extend_from_slice(b"\r\n");
        self.items.push(Item { start, end: self.data.len(), kind: Kind::Annotation });
        self
    }

    fn commands(&self) -> impl Iterator<Item = (&Item, &Vec<Vec<u8>>)> {
        self.items.iter().filter_map(|i| match &i.kind {
            Kind::Command(argv) => Some((i, argv)),
            Kind::Annotation => None,
        })
    }

    /// The reader's expected view of the first `upto` items: the commands, the end of the
    /// last one, and the end of the last one before an open MULTI.
    fn state_after(&self, upto: usize) -> (Vec<CmdView>, usize, Option<usize>) {
        let (mut commands, mut last_end, mut before_multi) = (Vec::new(), 0, None);
        for item in &self.items[..upto] {
            if let Kind::Command(argv) = &item.kind {
                let name = argv[0].to_ascii_uppercase();
                if name == b"MULTI" && before_multi.is_none() {
                    before_multi = Some(last_end);
                } else if name == b"EXEC" {
                    before_multi = None;
                }
                last_end = item.end;
                commands.push((item.start, item.end, argv.clone()));
            }
        }
        (commands, last_end, before_multi)
    }
}

fn sample(annotations: bool) -> Sample {
    let mut s = Sample::default();
    s.command(&[b"SELECT", b"0"]).command(&[b"SET", b"a", b"1"]).command(&[
        b"SET",
        b"bin",
        b"\r\n*2\r\n$1\r\n\x00\xff",
    ]);
    if annotations {
        s.annotation(b"#TS:1700000000");
    }
    s.command(&[b"MULTI"]).command(&[b"SET", b"m1", b"x"]).command(&[b"INCR", b"m2"]).command(&[b"EXEC"]);
    s.command(&[b"SELECT", b"3"]).command(&[b"SET", b"", b""]);
    if annotations {
        s.annotation(b"#TS:1700000001");
    }
    s.command(&[b"RPUSH", b"l", b"a", b"b", b"c"]).command(&[b"multi"]).command(&[b"SET", b"m3", b"y"]);
    s.command(&[b"exec"]).command(&[b"SET", b"last", b"1"]);
    s
}

fn view(commands: &[Command<'_>]) -> Vec<CmdView> {
    commands.iter().map(|c| (c.start, c.end, c.argv.iter().map(|a| a.to_vec()).collect())).collect()
}

#[test]
fn the_sample_is_what_our_encoder_writes() {
    let s = sample(true);
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    let mut db = 0;
    for item in &s.items {
        match &item.kind {
            Kind::Annotation => {
                let ts = std::str::from_utf8(&s.data[item.start + 4..item.end - 2]).unwrap();
                enc.timestamp(&mut out, ts.parse().unwrap());
            }
            Kind::Command(argv) if argv[0] == b"SELECT" => db = std::str::from_utf8(&argv[1]).unwrap().parse().unwrap(),
            Kind::Command(argv) => enc.append(&mut out, db, argv),
        }
    }
    assert_eq!(out.escape_ascii().to_string(), s.data.escape_ascii().to_string());
}

#[test]
fn every_cut() {
    for annotations in [false, true] {
        let s = sample(annotations);
        for cut in 0..=s.data.len() {
            let complete = s.items.iter().take_while(|i| i.end <= cut).count();
            let (commands, last_end, before_multi) = s.state_after(complete);
            let at_boundary = cut == complete.checked_sub(1).map_or(0, |last| s.items[last].end);
            let expected = match (at_boundary, before_multi) {
                (true, None) => Ok(()),
                (_, Some(valid_up_to)) => Err(ReadError::Truncated { valid_up_to, open_multi: true }),
                (false, None) => Err(ReadError::Truncated { valid_up_to: last_end, open_multi: false }),
            };
            let (got, end) = read_commands(&s.data[..cut], 0);
            assert_eq!((view(&got), end), (commands, expected), "cut at {cut} of {}", s.data.escape_ascii());
            if let Err(e) = end {
                assert!(e.valid_up_to() <= cut);
            }
        }
    }
}

#[test]
fn every_damaged_structural_byte() {
    let s = sample(true);
    for st in &s.structural {
        let mut data = s.data.clone();
        data[st.pos] = b'X';
        let (commands, _, before_multi) = s.state_after(st.item);
        let (got, end) = read_commands(&data, 0);
        assert_eq!(view(&got), commands, "damage at {}", st.pos);
        match end {
            Err(ReadError::Corrupt { offset, valid_up_to, .. }) => {
                assert_eq!(offset, st.expected_offset, "damage at {}", st.pos);
                let last_end = commands.last().map_or(0, |c| c.1);
                assert_eq!(valid_up_to, before_multi.unwrap_or(last_end), "damage at {}", st.pos);
            }
            other => panic!("damage at {}: {other:?}", st.pos),
        }
    }
    assert!(s.structural.len() > 150);
}

const INCR: &[u8] = b"appendonly.aof.1.incr.aof";

/// A directory holding `appendonlydir` with a manifest listing one incr file, `data`.
fn aof_dir_with(data: &[u8]) -> PathBuf {
    let dir = testkit::temp_dir("aof-cut");
    let aof_dir = dir.join("appendonlydir");
    fs::create_dir_all(&aof_dir).unwrap();
    let mut m = Manifest::new();
    assert_eq!(m.new_incr(b"appendonly.aof").name, INCR);
    manifest::persist(&aof_dir, b"appendonly.aof", &m).unwrap();
    fs::write(aof_dir.join("appendonly.aof.1.incr.aof"), data).unwrap();
    dir
}

fn check_aof_on(dir: &std::path::Path) -> (bool, String) {
    check_aof(&dir.join("appendonlydir/appendonly.aof.manifest"))
}

fn item_end(s: &Sample, argv0: &[u8], argv1: &[u8]) -> (usize, usize) {
    let (item, _) = s.commands().find(|(_, a)| a[0] == argv0 && a.get(1).map(Vec::as_slice) == Some(argv1)).unwrap();
    (item.start, item.end)
}

/// Redis with `aof-load-truncated yes` cuts our truncated file exactly where we say it is valid.
fn redis_truncates_at(dir: &std::path::Path, valid_up_to: usize, log_line: &str) -> RedisProcess {
    let r =
        RedisProcess::spawn(&["--appendonly", "yes", "--aof-load-truncated", "yes", "--dir", dir.to_str().unwrap()]);
    let size = fs::metadata(dir.join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap().len();
    assert_eq!(size as usize, valid_up_to, "Redis's log:\n{}", r.stdout());
    assert!(r.stdout().contains(log_line), "{log_line} not in Redis's log:\n{}", r.stdout());
    r
}

#[test]
fn cut_inside_a_command_compared_with_redis() {
    let s = sample(false);
    let (bin_start, bin_end) = item_end(&s, b"SET", b"bin");
    let cut = bin_end - 5;
    let (_, a_end) = item_end(&s, b"SET", b"a");
    let (_, end) = read_commands(&s.data[..cut], 0);
    let err = end.unwrap_err();
    assert_eq!(err, ReadError::Truncated { valid_up_to: a_end, open_multi: false });
    assert_eq!(bin_start, a_end);

    let dir = aof_dir_with(&s.data[..cut]);
    let (ok, out) = check_aof_on(&dir);
    assert!(!ok && out.contains(&format!("ok_up_to={a_end},")), "{out}");

    let log = redis_fails_to_start(&dir, &["--appendonly", "yes", "--aof-load-truncated", "no"]);
    assert!(log.contains(&err.redis_message(std::str::from_utf8(INCR).unwrap())), "{log}");

    let r = redis_truncates_at(&dir, a_end, &format!("Truncating the AOF appendonly.aof.1.incr.aof at offset {a_end}"));
    let mut c = r.client();
    assert_eq!(c.send(&["GET", "a"]), Frame::Bulk(b"1".to_vec()));
    assert_eq!(c.send(&["EXISTS", "bin"]), Frame::Integer(0));
    drop(r);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn open_multi_compared_with_redis() {
    let s = sample(false);
    // No annotation in this sample: the MULTI starts where SET bin ends.
    let (_, multi_start) = item_end(&s, b"SET", b"bin");
    let (_, m1_end) = item_end(&s, b"SET", b"m1");
    let expected = ReadError::Truncated { valid_up_to: multi_start, open_multi: true };

    // At a command boundary inside the transaction: Redis reverts it.
    let (commands, end) = read_commands(&s.data[..m1_end], 0);
    assert_eq!(end, Err(expected));
    assert_eq!(commands.last().unwrap().argv[0], b"SET", "the queued commands are read, the caller drops them");
    let dir = aof_dir_with(&s.data[..m1_end]);
    let (ok, out) = check_aof_on(&dir);
    assert!(!ok && out.contains("Reached EOF before reading EXEC for MULTI"), "{out}");
    assert!(out.contains(&format!("ok_up_to={multi_start},")), "{out}");
    let r = redis_truncates_at(&dir, multi_start, "Revert incomplete MULTI/EXEC transaction in AOF file");
    assert_eq!(r.client().send(&["EXISTS", "m1", "bin"]), Frame::Integer(1));
    drop(r);
    fs::remove_dir_all(&dir).unwrap();

    // Inside a command inside the transaction: also before the MULTI, as redis-check-aof says.
    // (redis-server first cuts after the last whole command, then reverts the transaction the
    // next time it starts; we go there in one step.)
    let cut = m1_end + 6;
    assert_eq!(read_commands(&s.data[..cut], 0).1, Err(expected));
    let dir = aof_dir_with(&s.data[..cut]);
    let (ok, out) = check_aof_on(&dir);
    assert!(!ok && out.contains(&format!("ok_up_to={multi_start},")), "{out}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corruption_compared_with_redis() {
    let s = sample(false);
    let (rpush_start, _) = item_end(&s, b"RPUSH", b"l");
    // The `$` of RPUSH's second argument.
    let pos = rpush_start + b"*5\r\n$5\r\nRPUSH\r\n".len();
    let mut data = s.data.clone();
    assert_eq!(data[pos], b'$');
    data[pos] = b'X';
    let err = read_commands(&data, 0).1.unwrap_err();
    assert_eq!(
        err,
        ReadError::Corrupt {
            offset: pos,
            valid_up_to: rpush_start,
            problem: Problem::Prefix { expected: b'$', found: b'X' }
        }
    );

    let dir = aof_dir_with(&data);
    let (ok, out) = check_aof_on(&dir);
    assert!(!ok && out.contains("Expected prefix '$', got: 'X'"), "{out}");
    assert!(out.contains(&format!("ok_up_to={rpush_start},")), "{out}");
    let log = redis_fails_to_start(&dir, &["--appendonly", "yes", "--aof-load-truncated", "yes"]);
    assert!(log.contains(&err.redis_message(std::str::from_utf8(INCR).unwrap())), "{log}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn whole_file_compared_with_redis() {
    let s = sample(false);
    let (commands, end) = read_commands(&s.data, 0);
    assert_eq!(end, Ok(()));
    assert_eq!(commands.len(), s.commands().count());
    let dir = aof_dir_with(&s.data);
    let (ok, out) = check_aof_on(&dir);
    assert!(ok && out.contains("All AOF files and manifest are valid"), "{out}");
    let r = RedisProcess::spawn(&["--appendonly", "yes", "--aof-load-truncated", "no", "--dir", dir.to_str().unwrap()]);
    let mut c = r.client();
    assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(4));
    c.send(&["SELECT", "3"]);
    assert_eq!(c.send(&["DBSIZE"]), Frame::Integer(4));
    drop(r);
    fs::remove_dir_all(&dir).unwrap();
}

fn arb_argv() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 1..5)
}

proptest! {
    #[test]
    fn encoded_commands_read_back(cmds in prop::collection::vec((0usize..4, arb_argv()), 0..12)) {
        let mut data = Vec::new();
        let mut enc = Encoder::new();
        let mut expected = Vec::new();
        for (db, argv) in &cmds {
            if enc.selected_db() != Some(*db) {
                expected.push(vec![b"SELECT".to_vec(), db.to_string().into_bytes()]);
            }
            enc.append(&mut data, *db, argv);
            expected.push(argv.clone());
        }
        let (got, end) = read_commands(&data, 0);
        let open_multi = expected.iter().fold(false, |open, a| {
            if a[0].eq_ignore_ascii_case(b"multi") { true } else if a[0].eq_ignore_ascii_case(b"exec") { false } else { open }
        });
        prop_assert_eq!(end.is_ok(), !open_multi);
        prop_assert_eq!(argvs(&got), expected);
    }

    #[test]
    fn damaged_input_never_panics(cmds in prop::collection::vec(arb_argv(), 1..6), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4), cut in any::<prop::sample::Index>()) {
        let mut data = Vec::new();
        for argv in &cmds {
            persistence::aof::append_command(&mut data, argv);
        }
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let data = &data[..cut.index(data.len() + 1)];
        let (got, end) = read_commands(data, 0);
        for c in &got {
            prop_assert!(c.start < c.end && c.end <= data.len());
        }
        if let Err(e) = end {
            prop_assert!(e.valid_up_to() <= data.len());
            if let ReadError::Corrupt { offset, .. } = e {
                prop_assert!(offset < data.len());
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = read_commands(&data, 0);
        let _ = manifest::parse(&data);
    }
}
