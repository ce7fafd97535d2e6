//! The Raft log on disk (with `appendonly yes`): one append-only file, `raft/log`, of records
//! `[u32 length][u32 CRC-32C of the body][body: JSON]`; a body is a log entry or, first in a
//! rewritten file, the id of the last purged entry. The vote is a file of its own, replaced
//! atomically.
//!
//! Appends go to one writer thread: it takes every append queued since its last sync, writes
//! them with one `write`, runs one `fdatasync` and only then tells openraft they are flushed
//! (group commit: under load one sync covers many entries). Purging and truncating (after a
//! snapshot, or when a new leader overrules uncommitted entries) rewrite the file through a
//! temporary file renamed into place, queued behind earlier appends so the order holds.
//!
//! A torn record at the end (a crash mid-write) is cut off when the file is opened: its entry
//! was never reported flushed, so no node counted on it. Damage anywhere else stops the node.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use openraft::storage::LogFlushed;
use openraft::{Entry, LogId};
use serde::{Deserialize, Serialize};

use crate::types::{NodeId, TypeConfig};

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// One record of the log file, as read.
#[derive(Deserialize)]
pub enum Record {
    /// Everything up to this id was purged (first record of a rewritten file).
    Purged(LogId<NodeId>),
    /// A log entry.
    Entry(Entry<TypeConfig>),
}

/// [`Record`] as written: borrowing the entry (same encoding).
#[derive(Serialize)]
enum RecordRef<'a> {
    Purged(LogId<NodeId>),
    Entry(&'a Entry<TypeConfig>),
}

/// Appends the record of an entry to `out`.
pub fn encode_entry(entry: &Entry<TypeConfig>, out: &mut Vec<u8>) {
    encode(&RecordRef::Entry(entry), out);
}

/// Appends the record saying everything up to `id` was purged to `out`.
pub fn encode_purged(id: LogId<NodeId>, out: &mut Vec<u8>) {
    encode(&RecordRef::Purged(id), out);
}

fn encode(record: &RecordRef<'_>, out: &mut Vec<u8>) {
    let body = serde_json::to_vec(record).expect("log records serialise");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&CRC.checksum(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// What a log file held.
pub struct Loaded {
    /// Records in order.
    pub records: Vec<Record>,
    /// Bytes of damaged or torn records cut off the end.
    pub cut: u64,
}

/// Reads the log file at `path` (absent = empty), cutting off a damaged tail.
pub fn load(path: &Path) -> io::Result<Loaded> {
    let mut data = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut data)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded { records: Vec::new(), cut: 0 }),
        Err(e) => return Err(e),
    }
    let mut records = Vec::new();
    let mut at = 0usize;
    while data.len() - at >= 8 {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(body) = data.get(at + 8..at + 8 + len) else { break };
        let record = (CRC.checksum(body) == crc).then(|| serde_json::from_slice::<Record>(body).ok()).flatten();
        match record {
            Some(r) => records.push(r),
            // The last record may be torn (its pages only partly written).
            None if at + 8 + len == data.len() => break,
            // Damage before the end is not a crash's doing: entries this node acknowledged
            // would be lost, and with them the promise its votes made. Stop.
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("raft log {} is damaged at offset {at} (not at its end)", path.display()),
                ))
            }
        }
        at += 8 + len;
    }
    let cut = (data.len() - at) as u64;
    if cut > 0 {
        tracing::warn!("raft log {}: cutting {cut} bytes of a torn or damaged tail", path.display());
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(at as u64)?;
        f.sync_all()?;
    }
    Ok(Loaded { records, cut })
}

enum Op {
    Append(Vec<u8>, LogFlushed<TypeConfig>),
    Rewrite(Vec<u8>, tokio::sync::oneshot::Sender<io::Result<()>>),
}

/// The writer thread's handle.
pub struct Writer {
    tx: mpsc::Sender<Op>,
}

impl Writer {
    /// Starts the writer thread appending to `path`.
    pub fn start(path: PathBuf) -> io::Result<Writer> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("tandem-raft-log".into()).spawn(move || run(path, file, rx))?;
        Ok(Writer { tx })
    }

    /// Queues `bytes` (encoded records); `done` is told once they are synced.
    pub fn append(&self, bytes: Vec<u8>, done: LogFlushed<TypeConfig>) {
        if let Err(mpsc::SendError(Op::Append(_, done))) = self.tx.send(Op::Append(bytes, done)) {
            done.log_io_completed(Err(io::Error::other("the raft log writer has stopped")));
        }
    }

    /// Replaces the file's contents with `bytes`, after every append queued before.
    pub async fn rewrite(&self, bytes: Vec<u8>) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send(Op::Rewrite(bytes, tx)).map_err(|_| io::Error::other("the raft log writer has stopped"))?;
        rx.await.map_err(|_| io::Error::other("the raft log writer has stopped"))?
    }
}

fn run(path: PathBuf, mut file: File, rx: mpsc::Receiver<Op>) {
    let mut next = None;
    loop {
        let op = match next.take() {
            Some(op) => op,
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => return,
            },
        };
        match op {
            Op::Append(bytes, done) => {
                // Group commit: everything queued meanwhile goes out with this write and sync.
                let mut buf = bytes;
                let mut waiting = vec![done];
                while let Ok(op) = rx.try_recv() {
                    match op {
                        Op::Append(b, d) => {
                            buf.extend_from_slice(&b);
                            waiting.push(d);
                        }
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                let result = file.write_all(&buf).and_then(|_| file.sync_data());
                for d in waiting {
                    d.log_io_completed(
                        result.as_ref().map(|_| ()).map_err(|e| io::Error::new(e.kind(), e.to_string())),
                    );
                }
            }
            Op::Rewrite(bytes, done) => {
                let result = crate::store::write_synced(&path, &bytes)
                    .and_then(|_| OpenOptions::new().append(true).open(&path))
                    .map(|f| file = f);
                let _ = done.send(result);
            }
        }
    }
}

/// Writes the vote durably.
pub fn save_vote(dir: &Path, vote: &openraft::Vote<NodeId>) -> io::Result<()> {
    let json = serde_json::to_vec(vote).map_err(io::Error::other)?;
    crate::store::write_synced(&dir.join("vote"), &json)
}

/// Reads the vote, if one was saved.
pub fn read_vote(dir: &Path) -> io::Result<Option<openraft::Vote<NodeId>>> {
    match std::fs::read(dir.join("vote")) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(i: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 7), i),
            payload: EntryPayload::Normal(crate::types::Batch {
                now_ms: 1,
                parts: vec![{
                    let mut b = crate::types::Request::builder(0, 2, None);
                    b.push(&[b"SET".to_vec(), format!("k{i}").into_bytes(), b"v".to_vec()], i);
                    b.finish()
                }],
            }),
        }
    }

    #[test]
    fn a_torn_tail_is_cut_and_whole_records_survive() {
        let dir = std::env::temp_dir().join(format!("tandem-raftlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let mut bytes = Vec::new();
        encode_purged(LogId::new(CommittedLeaderId::new(1, 7), 2), &mut bytes);
        for i in 3..6 {
            encode_entry(&entry(i), &mut bytes);
        }
        let whole = bytes.len();
        encode_entry(&entry(6), &mut bytes);
        // The last record lost its end; then a flipped byte in a copy's middle record.
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.records.len(), 4);
        assert!(matches!(&loaded.records[3], Record::Entry(e) if e.log_id.index == 5));
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, whole, "the torn tail is cut off");
        // A whole last record failing its checksum is torn too.
        let mut last_bad = bytes.clone();
        let n = last_bad.len();
        last_bad[n - 2] ^= 0x20;
        std::fs::write(&path, &last_bad).unwrap();
        assert_eq!(load(&path).unwrap().records.len(), 4);
        // Damage in the middle is refused.
        let mut damaged = bytes.clone();
        damaged[whole / 2] ^= 0x20;
        std::fs::write(&path, &damaged).unwrap();
        let err = load(&path).err().expect("damage in the middle must be refused");
        assert!(err.to_string().contains("damaged at offset"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
