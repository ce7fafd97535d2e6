//! The dataset digest of `DEBUG DIGEST` and `DEBUG DIGEST-VALUE`, computed exactly as Redis
//! does (SHA-1 mixing per key, XOR across keys, database ids mixed in order) so the same
//! dataset gives the same digest in Tandem and in redis-server, and so a replayed effects
//! stream can be checked against the original keyspace.

use crate::keyspace::{Db, Keyspace};
use crate::value::Value;
use sha1_smol::Sha1;

/// A 20-byte digest.
pub type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    let mut h = Sha1::new();
    h.update(data);
    h.digest().bytes()
}

fn xor_digest(digest: &mut Digest, data: &[u8]) {
    let h = sha1(data);
    for (d, x) in digest.iter_mut().zip(h.iter()) {
        *d ^= x;
    }
}

fn mix_digest(digest: &mut Digest, data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1(digest);
}

/// Redis's type code of a value (`OBJ_STRING` = 0 ...), as mixed into the digest.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
    }
}

/// Mixes one value (and whether it has a time to live) into `digest`, like `xorObjectDigest`.
pub fn mix_value(digest: &mut Digest, value: &Value, has_expire: bool) {
    mix_digest(digest, &type_code(value).to_be_bytes());
    match value {
        Value::Str(s) => s.with_bytes(|b| mix_digest(digest, b)),
        // Elements in order.
        Value::List(l) => l.iter().for_each(|e| e.with_bytes(|b| mix_digest(digest, b))),
        // Members XORed in: order does not matter.
        Value::Set(s) => s.for_each(|m| m.with_bytes(|b| xor_digest(digest, b))),
        // Each pair digested on its own and XORed in, so field order does not matter; a
        // field's time to live is part of its pair.
        Value::Hash(h) => h.for_each(|f, v| {
            let mut pair = [0u8; 20];
            f.with_bytes(|b| mix_digest(&mut pair, b));
            v.with_bytes(|b| mix_digest(&mut pair, b));
            if let Some(at) = f.with_bytes(|b| h.field_expire(b)) {
                mix_digest(&mut pair, b"!!hexpire!!");
                mix_digest(&mut pair, &at.to_be_bytes());
            }
            xor_digest(digest, &pair);
        }),
        // Member and score text ("%.17g", as Redis 7.0 prints it) per pair, XORed in.
        Value::ZSet(z) => z.for_each(|m, score| {
            let mut pair = [0u8; 20];
            m.with_bytes(|b| mix_digest(&mut pair, b));
            mix_digest(&mut pair, &crate::num::format_g17(score));
            xor_digest(digest, &pair);
        }),
    }
    if has_expire {
        xor_digest(digest, b"!!expire!!");
    }
}

/// The digest of one key's value, or all zeros when the key is missing.
pub fn value_digest(db: &Db, hash: u64, key: &[u8]) -> Digest {
    let mut d = [0u8; 20];
    if let Some(v) = db.value(hash, key) {
        mix_value(&mut d, v, db.expire_of(hash, key).is_some());
    }
    d
}

/// Mixes a database id into the running dataset digest (done before its keys).
pub fn mix_db(fin: &mut Digest, db: usize) {
    mix_digest(fin, &(db as u32).to_be_bytes());
}

/// XORs every key of one database share into the running dataset digest.
pub fn xor_db_keys(fin: &mut Digest, d: &Db) {
    d.main.for_each(|key, value| {
        let mut kd = [0u8; 20];
        mix_digest(&mut kd, key);
        let h = d.main.hasher().hash(key);
        mix_value(&mut kd, value, d.expire_of(h, key).is_some());
        // Redis folds each key's digest in through SHA-1 (`xorDigest(final, digest, 20)`).
        xor_digest(fin, &kd);
    });
}

/// The digest of the whole keyspace (all zeros when empty). Locks every shard.
pub fn dataset_digest(ks: &Keyspace) -> Digest {
    let guards = ks.lock_all();
    let mut fin = [0u8; 20];
    for db in 0..ks.databases() {
        if guards.iter().all(|g| g.dbs[db].is_empty()) {
            continue;
        }
        mix_db(&mut fin, db);
        for g in &guards {
            xor_db_keys(&mut fin, &g.dbs[db]);
        }
    }
    fin
}

/// Lower-case hex of a digest, as `DEBUG DIGEST` prints it.
pub fn to_hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
