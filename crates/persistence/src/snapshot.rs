//! Fork-less RDB snapshots: a point-in-time image of the keyspace written while commands go on.
//!
//! Redis forks and lets the kernel copy pages on write, which can double memory under a write
//! load. Here the keyspace does the work instead (see `engine::keyspace::Capture`): at the cut
//! every shard is marked as owing its contents to the snapshot, and each shard is serialized the
//! first time anyone locks it afterwards (this file's walk, or a command about to change it),
//! then written straight to the file. Memory overhead is one shard's serialization at a time;
//! the RDB format allows one database's keys to come in several `SELECTDB` runs, so shards can
//! land in any order.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::{Keyspace, Shard, Value};
use parking_lot::Mutex;

use crate::rdb_file::{self, AuxInfo, Checksummed};

/// How to write a snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    /// `rdbcompression`: LZF-compress long strings.
    pub compress: bool,
    /// `rdbchecksum`: write a real CRC-64 (else 0, as Redis does).
    pub checksum: bool,
    /// The Redis version reported in the `redis-ver` aux field.
    pub redis_ver: String,
    /// Unix seconds for the `ctime` aux field.
    pub ctime_secs: i64,
    /// Bytes in use, for the `used-mem` aux field.
    pub used_mem: u64,
    /// True when the file is the base of an AOF (`aof-base` aux field).
    pub aof_base: bool,
    /// What the file holds: an RDB image, or commands (an AOF base written with
    /// `aof-use-rdb-preamble no`).
    pub format: Format,
}

/// The form of a snapshot file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Redis's RDB format.
    #[default]
    Rdb,
    /// The commands that rebuild the dataset, as Redis's rewrite writes them without an RDB
    /// preamble: `SELECT`, then per key `SET` (and `PEXPIREAT` if it has a time to live).
    Commands,
}

/// What a finished snapshot wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveStats {
    /// Keys written.
    pub keys: u64,
    /// File size in bytes.
    pub bytes: u64,
}

struct Output {
    writer: Option<Checksummed<BufWriter<File>>>,
    error: Option<io::Error>,
    keys: u64,
}

/// An RDB file being written from keyspace shards (the keyspace's `Capture`).
pub struct RdbSnapshot {
    out: Mutex<Output>,
    compress: bool,
    checksum: bool,
    format: Format,
    tmp_path: PathBuf,
}

impl RdbSnapshot {
    /// Creates `tmp_path` and writes the header and aux fields.
    pub fn create(tmp_path: &Path, opts: &SnapshotOptions) -> io::Result<Arc<RdbSnapshot>> {
        let file = File::create(tmp_path)?;
        let mut writer = Checksummed::new(BufWriter::with_capacity(1 << 20, file));
        if opts.format == Format::Rdb {
            let mut head = Vec::new();
            rdb_file::write_header(&mut head);
            rdb_file::write_standard_aux(
                &mut head,
                &AuxInfo {
                    redis_ver: &opts.redis_ver,
                    ctime_secs: opts.ctime_secs,
                    used_mem: opts.used_mem,
                    aof_base: opts.aof_base,
                },
            );
            writer.write_all(&head)?;
        }
        Ok(Arc::new(RdbSnapshot {
            out: Mutex::new(Output { writer: Some(writer), error: None, keys: 0 }),
            compress: opts.compress,
            checksum: opts.checksum,
            format: opts.format,
            tmp_path: tmp_path.to_path_buf(),
        }))
    }

    /// Writes the EOF marker and checksum and syncs the temporary file. Every shard must have
    /// been captured. The file replaces the real one only when [`Written::commit`] is called.
    pub fn finish(&self) -> io::Result<Written> {
        let mut out = self.out.lock();
        let failed = out.error.take();
        let writer = out.writer.take();
        let keys = out.keys;
        drop(out);
        // From here on the temporary file is removed unless committed.
        let mut written =
            Written { tmp_path: self.tmp_path.clone(), stats: SaveStats { keys, bytes: 0 }, committed: false };
        if let Some(e) = failed {
            return Err(e);
        }
        let writer = writer.ok_or_else(|| io::Error::other("snapshot already finished"))?;
        let (bytes, buffered) = match self.format {
            Format::Rdb => (writer.bytes_written() + 9, writer.finish(self.checksum)?),
            Format::Commands => {
                let mut w = writer;
                std::io::Write::flush(&mut w)?;
                (w.bytes_written(), w.into_inner())
            }
        };
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        written.stats.bytes = bytes;
        Ok(written)
    }
}

/// A complete snapshot in its temporary file, removed on drop unless committed.
#[derive(Debug)]
pub struct Written {
    tmp_path: PathBuf,
    stats: SaveStats,
    committed: bool,
}

impl Written {
    /// Renames the file to `path` and syncs the directory so the rename survives a crash.
    pub fn commit(mut self, path: &Path) -> io::Result<SaveStats> {
        std::fs::rename(&self.tmp_path, path)?;
        self.committed = true;
        sync_parent_dir(path)?;
        Ok(self.stats)
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

impl engine::keyspace::Capture for RdbSnapshot {
    fn capture(&self, _index: usize, shard: &Shard) {
        // Serialize outside the file lock so that shards captured by different threads only
        // contend for the write itself. Keys come database by database; each database's run
        // starts with its SELECT (shards interleave in the file).
        let mut buf = Vec::new();
        let mut keys = 0u64;
        let mut current_db = None;
        shard.for_each_at_cut(|d, key, value, expire| {
            if current_db != Some(d) {
                match self.format {
                    Format::Rdb => rdb_file::write_select_db(&mut buf, d as u64),
                    Format::Commands => crate::aof::encode::append_select(&mut buf, d),
                }
                current_db = Some(d);
            }
            match self.format {
                Format::Rdb => match value {
                    Value::Str(s) => s.with_bytes(|v| {
                        rdb_file::write_string_entry(&mut buf, key, v, expire, self.compress);
                    }),
                },
                Format::Commands => write_commands(&mut buf, key, value, expire),
            }
            keys += 1;
        });
        let mut out = self.out.lock();
        out.keys += keys;
        if out.error.is_some() {
            return;
        }
        if let Some(w) = out.writer.as_mut() {
            if let Err(e) = w.write_all(&buf) {
                out.error = Some(e);
            }
        }
    }
}

/// Appends the commands that rebuild one key, as Redis's rewrite writes strings: `SET`, then
/// `PEXPIREAT` if it has a time to live.
fn write_commands(buf: &mut Vec<u8>, key: &[u8], value: &Value, expire: Option<i64>) {
    use crate::aof::encode::append_command;
    match value {
        Value::Str(s) => s.with_bytes(|v| append_command(buf, &[b"SET".as_slice(), key, v])),
    }
    if let Some(at) = expire {
        append_command(buf, &[b"PEXPIREAT".as_slice(), key, at.to_string().as_bytes()]);
    }
}

/// Writes the keyspace to a temporary file beside `path`, capturing every shard from this
/// thread while other threads go on working. `at_cut` runs at the snapshot's instant. The
/// caller decides whether to [`Written::commit`] it.
pub fn save(ks: &Keyspace, path: &Path, opts: &SnapshotOptions, at_cut: impl FnOnce()) -> io::Result<Written> {
    let snap = RdbSnapshot::create(&temp_path_for(path), opts)?;
    ks.begin_snapshot(snap.clone(), at_cut);
    ks.complete_snapshot();
    snap.finish()
}

/// A fresh temporary file name beside `path` (Redis uses `temp-<pid>.rdb`; a sequence number
/// keeps two saves of this process, e.g. a background save and `FLUSHALL`'s, apart).
pub fn temp_path_for(path: &Path) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = path.parent().unwrap_or(Path::new("."));
    dir.join(format!("temp-{}-{n}.rdb", std::process::id()))
}

fn sync_parent_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
