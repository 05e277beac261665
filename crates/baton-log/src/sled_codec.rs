//! What the sled store keeps in each tree: keys, and the payloads inside the
//! checksummed [`record`]s.
//!
//! - `log`: key = zxid (8 bytes, big-endian, so sled's byte order is zxid order);
//!   payload = link (1 byte: 1 if there is a predecessor, else 0) + predecessor
//!   zxid (8 bytes big-endian, 0 without one) + the entry's data. The link makes a
//!   *missing* record detectable, not only a damaged one: sled can recover a
//!   database with one key of a batch gone and later keys present (seen when a
//!   blob file is lost), and the log must stay prefix-closed.
//! - `snapshots`: key = zxid; payload = the snapshot's data.
//! - `meta`: `epochs` → accepted epoch + current epoch (u32 big-endian each);
//!   `format` → [`FORMAT`].

use crate::error::CorruptReason;
use crate::{LogError, Meta, Snapshot, record};

/// Names of the sled trees, part of the on-disk format.
pub const LOG_TREE: &str = "log";
pub const META_TREE: &str = "meta";
pub const SNAPSHOTS_TREE: &str = "snapshots";

pub(crate) const EPOCHS_KEY: &[u8] = b"epochs";
pub(crate) const FORMAT_KEY: &[u8] = b"format";
/// Identifies a store of this format, in `meta` and in the marker file.
pub(crate) const FORMAT: &[u8] = b"baton-log 1\n";

const LINK_LEN: usize = 1 + 8;

/// A log record as stored, checked and borrowed from sled's value.
#[derive(Debug)]
pub(crate) struct StoredEntry<'a> {
    pub(crate) zxid: u64,
    /// The zxid of the entry before it when it was appended; `None` if the log was
    /// empty then.
    pub(crate) prev: Option<u64>,
    pub(crate) data: &'a [u8],
}

pub(crate) fn zxid_key(zxid: u64) -> [u8; 8] {
    zxid.to_be_bytes()
}

pub(crate) fn key_zxid(what: &'static str, key: &[u8]) -> Result<u64, LogError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| LogError::Corrupt {
        what,
        zxid: key_prefix_zxid(key),
        reason: CorruptReason::BadKey { len: key.len() },
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Best-effort zxid of a malformed key, only to name it in an error.
fn key_prefix_zxid(key: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    let len = key.len().min(8);
    bytes[..len].copy_from_slice(&key[..len]);
    u64::from_be_bytes(bytes)
}

pub(crate) fn encode_entry(prev: Option<u64>, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(LINK_LEN + data.len());
    payload.push(u8::from(prev.is_some()));
    payload.extend_from_slice(&prev.unwrap_or(0).to_be_bytes());
    payload.extend_from_slice(data);
    record::encode(&payload)
}

pub(crate) fn decode_entry<'a>(key: &[u8], value: &'a [u8]) -> Result<StoredEntry<'a>, LogError> {
    const WHAT: &str = "log entry";
    let zxid = key_zxid(WHAT, key)?;
    let payload = record::decode(WHAT, zxid, value)?;
    let bad_payload = || LogError::Corrupt {
        what: WHAT,
        zxid,
        reason: CorruptReason::BadPayload { len: payload.len() },
    };
    let Some((link, data)) = payload.split_first_chunk::<LINK_LEN>() else {
        return Err(bad_payload());
    };
    let [has_prev, prev @ ..] = *link;
    let prev = match has_prev {
        0 => None,
        1 => Some(u64::from_be_bytes(prev)),
        _ => return Err(bad_payload()),
    };
    Ok(StoredEntry { zxid, prev, data })
}

/// Checks that `entry` follows `previous`, the zxid of the record before it in the
/// tree (`None` at the start of a check: the first record's predecessor may have
/// been purged).
pub(crate) fn check_link(previous: Option<u64>, entry: &StoredEntry<'_>) -> Result<(), LogError> {
    match previous {
        Some(expected) if entry.prev != Some(expected) => Err(LogError::Corrupt {
            what: "log entry",
            zxid: entry.zxid,
            reason: CorruptReason::BrokenLink { prev: entry.prev, expected },
        }),
        _ => Ok(()),
    }
}

pub(crate) fn decode_snapshot(key: &[u8], value: &[u8]) -> Result<Snapshot, LogError> {
    let zxid = key_zxid("snapshot", key)?;
    let data = record::decode("snapshot", zxid, value)?;
    Ok(Snapshot { zxid, data: bytes::Bytes::copy_from_slice(data) })
}

pub(crate) fn encode_meta(meta: Meta) -> Vec<u8> {
    let mut payload = [0; 8];
    payload[..4].copy_from_slice(&meta.accepted_epoch.to_be_bytes());
    payload[4..].copy_from_slice(&meta.current_epoch.to_be_bytes());
    record::encode(&payload)
}

pub(crate) fn decode_meta(value: &[u8]) -> Result<Meta, LogError> {
    let payload = record::decode("meta", 0, value)?;
    let bytes: [u8; 8] = payload.try_into().map_err(|_| LogError::Corrupt {
        what: "meta",
        zxid: 0,
        reason: CorruptReason::BadPayload { len: payload.len() },
    })?;
    let [a0, a1, a2, a3, c0, c1, c2, c3] = bytes;
    Ok(Meta {
        accepted_epoch: u32::from_be_bytes([a0, a1, a2, a3]),
        current_epoch: u32::from_be_bytes([c0, c1, c2, c3]),
    })
}

/// Checks the `format` value of a store.
pub(crate) fn check_format(value: &[u8]) -> Result<(), LogError> {
    let payload = record::decode("format marker", 0, value)?;
    if payload == FORMAT {
        return Ok(());
    }
    let reason = CorruptReason::BadPayload { len: payload.len() };
    Err(LogError::Corrupt { what: "format marker", zxid: 0, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip() {
        for prev in [None, Some(0), Some(7), Some(u64::MAX)] {
            let value = encode_entry(prev, b"data");
            let entry = decode_entry(&zxid_key(9), &value).unwrap();
            assert_eq!((entry.zxid, entry.prev, entry.data), (9, prev, &b"data"[..]));
        }
    }

    #[test]
    fn links() {
        let value = encode_entry(Some(4), b"");
        let entry = decode_entry(&zxid_key(5), &value).unwrap();
        assert!(check_link(None, &entry).is_ok(), "the first record is not checked");
        assert!(check_link(Some(4), &entry).is_ok());
        assert!(check_link(Some(3), &entry).is_err(), "a record between them is missing");

        let value = encode_entry(None, b"");
        let first = decode_entry(&zxid_key(5), &value).unwrap();
        assert!(check_link(Some(4), &first).is_err(), "appended to an empty log, yet follows 4");
    }

    #[test]
    fn short_or_bad_link() {
        let short = record::encode(&[1, 0, 0]);
        assert!(decode_entry(&zxid_key(1), &short).is_err());
        let mut bad_flag = vec![2];
        bad_flag.extend_from_slice(&[0; 8]);
        assert!(decode_entry(&zxid_key(1), &record::encode(&bad_flag)).is_err());
    }

    #[test]
    fn meta_round_trip() {
        let meta = Meta { accepted_epoch: 3, current_epoch: u32::MAX };
        assert_eq!(decode_meta(&encode_meta(meta)).unwrap(), meta);
        assert!(decode_meta(&record::encode(&[0; 7])).is_err());
    }
}
