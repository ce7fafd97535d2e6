//! Shared by the `rdb_*` tests: a visitor that records everything and a few file builders.
#![allow(dead_code)]

use persistence::rdb_file::{self, Entry, LoadError, LoadOptions, Summary, Visitor};

/// Databases the recording visitor accepts (Redis's default).
pub const DATABASES: u64 = 16;

/// Everything a load reported, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recorded {
    /// AUX fields.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// SELECTDB arguments.
    pub selects: Vec<u64>,
    /// RESIZEDB arguments.
    pub resizes: Vec<(u64, u64)>,
    /// Entries.
    pub entries: Vec<Entry>,
    /// FUNCTION2 payloads.
    pub functions: Vec<Vec<u8>>,
}

impl Visitor for Recorded {
    fn aux(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.aux.push((key.to_vec(), value.to_vec()));
        Ok(())
    }

    fn select_db(&mut self, db: u64) -> Result<(), String> {
        if db >= DATABASES {
            return Err(format!("database {db} out of range"));
        }
        self.selects.push(db);
        Ok(())
    }

    fn resize_db(&mut self, db_size: u64, expires_size: u64) -> Result<(), String> {
        self.resizes.push((db_size, expires_size));
        Ok(())
    }

    fn entry(&mut self, e: Entry) -> Result<(), String> {
        self.entries.push(e);
        Ok(())
    }

    fn function(&mut self, code: &[u8]) -> Result<(), String> {
        self.functions.push(code.to_vec());
        Ok(())
    }
}

/// Loads `data` with checksum verification, recording every item.
pub fn record(data: &[u8]) -> Result<(Recorded, Summary), LoadError> {
    record_with(data, true)
}

/// Loads `data`, recording every item.
pub fn record_with(data: &[u8], verify_checksum: bool) -> Result<(Recorded, Summary), LoadError> {
    let mut rec = Recorded::default();
    let summary = rdb_file::load(data, &LoadOptions { verify_checksum }, &mut rec)?;
    Ok((rec, summary))
}

/// Appends the EOF opcode and the CRC-64 of `body` (or 0).
pub fn seal(body: &[u8], checksum: bool) -> Vec<u8> {
    let mut c = rdb_file::Checksummed::new(Vec::new());
    c.write_all(body).unwrap();
    c.finish(checksum).unwrap()
}

/// A byte string shown shortly, for assertion messages.
pub fn show(b: &[u8]) -> String {
    let shown: Vec<u8> = b.iter().copied().take(40).collect();
    format!("\"{}\"{}", shown.escape_ascii(), if b.len() > 40 { format!("... ({} bytes)", b.len()) } else { "".into() })
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no RNG crate.
pub fn pseudo_random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
