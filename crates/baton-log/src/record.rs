//! The checksummed record every stored value is wrapped in.
//!
//! ```text
//! +---------+----------------+-----------------+-------------------+
//! | version | payload length | crc32           | payload           |
//! | 1 byte  | u32 big-endian | u32 big-endian  | `length` bytes    |
//! +---------+----------------+-----------------+-------------------+
//! ```
//!
//! The crc32 (IEEE, `crc32fast`) covers the version byte, the length and the
//! payload, so a flipped bit anywhere, a torn (short) value and a value from an
//! unknown format version are all told apart from a good record. Decoding never
//! trusts the stored length to size anything: it only compares it with the bytes
//! actually present.

use crate::LogError;
use crate::error::CorruptReason;

/// The only format version written today.
pub const VERSION: u8 = 1;

/// Bytes before the payload: version, length, crc32.
pub const HEADER_LEN: usize = 1 + 4 + 4;

/// The largest payload a record can describe (its length field is a u32).
pub const PAYLOAD_BYTES_MAX: usize = u32::MAX as usize;

/// Wraps `payload` in a record.
///
/// # Panics
/// If `payload` is longer than [`PAYLOAD_BYTES_MAX`]; callers bound their
/// entries far below that (a znode is at most a few MiB).
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("record payload longer than u32::MAX bytes");
    let len_bytes = len.to_be_bytes();
    let crc = checksum(VERSION, len_bytes, payload);

    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(VERSION);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a stored record and returns its payload. `what` and `zxid` only name
/// the record in the error.
pub fn decode<'a>(what: &'static str, zxid: u64, stored: &'a [u8]) -> Result<&'a [u8], LogError> {
    let corrupt = |reason| LogError::Corrupt { what, zxid, reason };

    let Some((header, payload)) = stored.split_first_chunk::<HEADER_LEN>() else {
        return Err(corrupt(CorruptReason::TooShort { len: stored.len() }));
    };
    let version = header[0];
    let len_bytes = [header[1], header[2], header[3], header[4]];
    let stored_crc = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);

    if version != VERSION {
        return Err(corrupt(CorruptReason::UnknownVersion(version)));
    }
    let declared = u32::from_be_bytes(len_bytes);
    if usize::try_from(declared).ok() != Some(payload.len()) {
        return Err(corrupt(CorruptReason::LengthMismatch { declared, actual: payload.len() }));
    }
    let computed = checksum(version, len_bytes, payload);
    if computed != stored_crc {
        return Err(corrupt(CorruptReason::ChecksumMismatch { stored: stored_crc, computed }));
    }
    Ok(payload)
}

fn checksum(version: u8, len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[version]);
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(stored: &[u8]) -> CorruptReason {
        match decode("log entry", 7, stored) {
            Err(LogError::Corrupt { what: "log entry", zxid: 7, reason }) => reason,
            other => panic!("expected a corrupt-record error, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        for payload in [&b""[..], b"x", &[0xAB; 4096]] {
            let stored = encode(payload);
            assert_eq!(stored.len(), HEADER_LEN + payload.len());
            assert_eq!(decode("log entry", 1, &stored).unwrap(), payload);
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let stored = encode(b"hello, baton");
        for byte in 0..stored.len() {
            for bit in 0..8 {
                let mut damaged = stored.clone();
                damaged[byte] ^= 1 << bit;
                assert!(decode("log entry", 1, &damaged).is_err(), "flip {byte}:{bit} passed");
            }
        }
    }

    #[test]
    fn short_header() {
        assert_eq!(reason(&[]), CorruptReason::TooShort { len: 0 });
        assert_eq!(reason(&encode(b"abc")[..HEADER_LEN - 1]), CorruptReason::TooShort { len: 8 });
    }

    #[test]
    fn torn_payload() {
        let stored = encode(b"abcdef");
        assert_eq!(
            reason(&stored[..stored.len() - 2]),
            CorruptReason::LengthMismatch { declared: 6, actual: 4 }
        );
    }

    #[test]
    fn huge_declared_length_does_not_allocate() {
        let mut stored = encode(b"abc");
        stored[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            reason(&stored),
            CorruptReason::LengthMismatch { declared: u32::MAX, actual: 3 }
        );
    }

    #[test]
    fn unknown_version() {
        let mut stored = encode(b"abc");
        stored[0] = 9;
        assert_eq!(reason(&stored), CorruptReason::UnknownVersion(9));
    }

    #[test]
    fn bad_checksum() {
        let mut stored = encode(b"abc");
        stored[HEADER_LEN] ^= 0xFF;
        assert!(matches!(reason(&stored), CorruptReason::ChecksumMismatch { .. }));
    }
}
