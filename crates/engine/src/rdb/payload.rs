//! `DUMP` payload framing: the serialized value followed by a 2-byte RDB version and an
//! 8-byte CRC-64, both little-endian, as Redis's `createDumpPayload`/`verifyDumpPayload`.
//!
//! ```text
//! +---------------------------+---------------------+-----------------------------+
//! | type byte + value (body)  | RDB version (LE u16) | CRC-64 of all before (LE u64) |
//! +---------------------------+---------------------+-----------------------------+
//! ```
//!
//! Checked against redis-server 7.0.15: a zero CRC is *not* treated as "no checksum" for
//! `DUMP` payloads (that convention exists only for RDB files saved with `rdbchecksum no`);
//! Redis skips the CRC check only when the debug-only `DEBUG SET-SKIP-CHECKSUM-VALIDATION 1`
//! is in effect, which [`verify`] models with its `check_crc` flag. A version newer than the
//! server's own is refused, older ones are accepted.

use std::fmt;

use super::crc64::crc64;

/// RDB version we stamp on payloads we produce: what Redis 7.0 writes (7.2 writes 11), so
/// every Redis 7.x accepts our `DUMP` output.
pub const DUMP_RDB_VERSION: u16 = 10;

/// Newest RDB version accepted by `RESTORE`: 11 so payloads from Redis 7.2 can be restored.
pub const MAX_ACCEPTED_RDB_VERSION: u16 = 11;

/// Size of the version-and-CRC trailer.
pub const FOOTER_LEN: usize = 10;

/// Why a `DUMP` payload was refused. `RESTORE` answers every variant with
/// `ERR DUMP payload version or checksum are wrong`; the variants exist for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// Shorter than the 10-byte trailer.
    TooShort,
    /// The trailer names an RDB version newer than we accept.
    BadVersion(u16),
    /// The stored CRC-64 does not match the content.
    BadChecksum,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::TooShort => f.write_str("DUMP payload too short"),
            PayloadError::BadVersion(v) => write!(f, "DUMP payload RDB version {v} is too new"),
            PayloadError::BadChecksum => f.write_str("DUMP payload checksum mismatch"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// Turns a body (type byte followed by the serialized value) into a complete `DUMP` payload
/// by appending the RDB version and the CRC-64 of everything before the CRC.
pub fn wrap(mut body: Vec<u8>) -> Vec<u8> {
    body.reserve(FOOTER_LEN);
    body.extend_from_slice(&DUMP_RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// Checks a payload's trailer like Redis's `verifyDumpPayload` and returns the RDB version
/// it names; the CRC is only checked when `check_crc` is set (Redis's default).
pub fn verify(payload: &[u8], check_crc: bool) -> Result<u16, PayloadError> {
    if payload.len() < FOOTER_LEN {
        return Err(PayloadError::TooShort);
    }
    let footer = &payload[payload.len() - FOOTER_LEN..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > MAX_ACCEPTED_RDB_VERSION {
        return Err(PayloadError::BadVersion(version));
    }
    if check_crc {
        let stored = u64::from_le_bytes(footer[2..].try_into().expect("footer holds 8 CRC bytes"));
        if crc64(0, &payload[..payload.len() - 8]) != stored {
            return Err(PayloadError::BadChecksum);
        }
    }
    Ok(version)
}

/// Verifies a payload (version and CRC) and returns its body: the type byte and value.
///
/// Note that Redis's `RESTORE` decodes from the start of the *whole* payload rather than this
/// body, so a value that is too short silently continues into the trailer bytes; use
/// [`super::restore_payload`] for that exact behaviour.
pub fn unwrap(payload: &[u8]) -> Result<&[u8], PayloadError> {
    verify(payload, true)?;
    Ok(&payload[..payload.len() - FOOTER_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `DUMP` of the string "hello" from redis-server 7.0.15.
    const HELLO: &[u8] = b"\x00\x05hello\x0a\x00\x63\x72\xdf\x76\x65\x34\x20\x0a";

    #[test]
    fn wrap_matches_redis() {
        assert_eq!(wrap(b"\x00\x05hello".to_vec()), HELLO);
        assert_eq!(unwrap(HELLO), Ok(&b"\x00\x05hello"[..]));
        assert_eq!(verify(HELLO, true), Ok(10));
    }

    #[test]
    fn rejects_bad_trailers() {
        assert_eq!(unwrap(&HELLO[..9]), Err(PayloadError::TooShort));
        assert_eq!(unwrap(b""), Err(PayloadError::TooShort));

        let mut bad_crc = HELLO.to_vec();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert_eq!(unwrap(&bad_crc), Err(PayloadError::BadChecksum));
        assert_eq!(verify(&bad_crc, false), Ok(10));

        // A zero CRC gets no special treatment (checked against Redis 7.0.15).
        let mut zero_crc = HELLO.to_vec();
        let n = zero_crc.len();
        zero_crc[n - 8..].fill(0);
        assert_eq!(unwrap(&zero_crc), Err(PayloadError::BadChecksum));

        let mut v12 = b"\x00\x05hello\x0c\x00".to_vec();
        let crc = crc64(0, &v12);
        v12.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(unwrap(&v12), Err(PayloadError::BadVersion(12)));

        let mut v11 = b"\x00\x05hello\x0b\x00".to_vec();
        let crc = crc64(0, &v11);
        v11.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(verify(&v11, true), Ok(11));
    }
}
