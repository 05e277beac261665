//! What the sled store keeps in each tree: keys, and the payloads inside the
//! checksummed [`record`]s.
//!
//! - `log`: key = the zxid of the record's first entry (8 bytes, big-endian, so
//!   sled's byte order is zxid order). A record holds one entry or several:
//!   - one entry: link (1 byte: 1 if there is a predecessor, else 0) + predecessor
//!     zxid (8 bytes big-endian, 0 without one) + the entry's data;
//!   - several (format 2): [`BATCH_TAG`] + the link as above + count (u32
//!     big-endian) + per entry its zxid (u64 big-endian, ascending, the first equal
//!     to the key), its length (u32 big-endian) and its data. One appended batch
//!     becomes as few records as [`BATCH_RECORD_BYTES_MAX`] allows: sled copies a
//!     leaf node on every insert and removal, so one key per entry cost most of a
//!     member's storage CPU under write load.
//!
//!   The link names the last entry of the record before, which makes a *missing*
//!   record detectable, not only a damaged one: sled can recover a database with
//!   one key of a batch gone and later keys present (seen when a blob file is
//!   lost), and the log must stay prefix-closed.
//! - `snapshots`: key = zxid; payload = the snapshot's data.
//! - `meta`: `epochs` → accepted epoch + current epoch (u32 big-endian each);
//!   `format` → [`FORMAT`]. A store of format 1 (one entry per record only) is
//!   marked format 2 when opened, so that an older build refuses it rather than
//!   reading a batch record as a corrupt tail.

use crate::error::CorruptReason;
use crate::{LogError, Meta, Snapshot, record};

/// Names of the sled trees, part of the on-disk format.
pub const LOG_TREE: &str = "log";
pub const META_TREE: &str = "meta";
pub const SNAPSHOTS_TREE: &str = "snapshots";

pub(crate) const EPOCHS_KEY: &[u8] = b"epochs";
pub(crate) const FORMAT_KEY: &[u8] = b"format";
/// Identifies a store of this format, in `meta` and in the marker file.
pub(crate) const FORMAT: &[u8] = b"baton-log 2\n";
/// The format before batch records, still opened (and then marked [`FORMAT`]).
pub(crate) const FORMAT_1: &[u8] = b"baton-log 1\n";

const LINK_LEN: usize = 1 + 8;
/// The first payload byte of a record of several entries (a single entry's is its
/// link flag, 0 or 1).
const BATCH_TAG: u8 = 2;
/// Per entry in a batch record: zxid and length.
pub(crate) const BATCH_ENTRY_HEADER: usize = 8 + 4;
/// A batch record's payload stays under this (so it stays inline in sled's
/// segments, well below its ~128 KiB blob threshold); a bigger entry is a record
/// of its own.
pub(crate) const BATCH_RECORD_BYTES_MAX: usize = 64 << 10;

/// A log record as stored: one or more entries, checked, borrowed from sled's value.
#[derive(Debug)]
pub(crate) struct StoredRecord<'a> {
    /// The zxid of the last entry of the record before it when it was written;
    /// `None` if the log was empty then.
    pub(crate) prev: Option<u64>,
    /// (zxid, data), ascending, never empty.
    pub(crate) entries: Vec<(u64, &'a [u8])>,
}

impl StoredRecord<'_> {
    pub(crate) fn first(&self) -> u64 {
        self.entries[0].0
    }

    pub(crate) fn last(&self) -> u64 {
        self.entries[self.entries.len() - 1].0
    }
}

/// Encodes entries (ascending, at least one) as one record after `prev`: the
/// single-entry layout for one, a batch record for more.
pub(crate) fn encode_record(prev: Option<u64>, entries: &[(u64, &[u8])]) -> Vec<u8> {
    assert!(!entries.is_empty(), "a log record holds at least one entry");
    if let [(_, data)] = entries {
        return encode_entry(prev, data);
    }
    let data_len: usize = entries.iter().map(|(_, d)| BATCH_ENTRY_HEADER + d.len()).sum();
    let mut payload = Vec::with_capacity(1 + LINK_LEN + 4 + data_len);
    payload.push(BATCH_TAG);
    payload.push(u8::from(prev.is_some()));
    payload.extend_from_slice(&prev.unwrap_or(0).to_be_bytes());
    let count = u32::try_from(entries.len()).expect("a batch record's count fits in u32");
    payload.extend_from_slice(&count.to_be_bytes());
    for (zxid, data) in entries {
        payload.extend_from_slice(&zxid.to_be_bytes());
        let len = u32::try_from(data.len()).expect("a log entry's length fits in u32");
        payload.extend_from_slice(&len.to_be_bytes());
        payload.extend_from_slice(data);
    }
    record::encode(&payload)
}

/// Decodes a log record of either layout, checking its structure: the first
/// entry's zxid is the key, zxids ascend, lengths add up exactly.
pub(crate) fn decode_record<'a>(key: &[u8], value: &'a [u8]) -> Result<StoredRecord<'a>, LogError> {
    const WHAT: &str = "log entry";
    let zxid = key_zxid(WHAT, key)?;
    let payload = record::decode(WHAT, zxid, value)?;
    let Some((&BATCH_TAG, rest)) = payload.split_first() else {
        let entry = decode_single(zxid, payload)?;
        return Ok(StoredRecord { prev: entry.prev, entries: vec![(entry.zxid, entry.data)] });
    };
    let bad_payload = || LogError::Corrupt {
        what: WHAT,
        zxid,
        reason: CorruptReason::BadPayload { len: payload.len() },
    };
    let Some((link, rest)) = rest.split_first_chunk::<LINK_LEN>() else {
        return Err(bad_payload());
    };
    let prev = decode_link(*link).ok_or_else(bad_payload)?;
    let Some((count, mut rest)) = rest.split_first_chunk::<4>() else {
        return Err(bad_payload());
    };
    let count = u32::from_be_bytes(*count) as usize;
    // Every entry takes at least its header: a count beyond that is damage, and
    // must not size an allocation.
    if count < 2 || count > rest.len() / BATCH_ENTRY_HEADER {
        return Err(bad_payload());
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let Some((header, after)) = rest.split_first_chunk::<BATCH_ENTRY_HEADER>() else {
            return Err(bad_payload());
        };
        let (z, len) = header.split_at(8);
        let entry_zxid = u64::from_be_bytes(z.try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let expected_order = match entries.last() {
            None => entry_zxid == zxid,
            Some(&(before, _)) => entry_zxid > before,
        };
        if !expected_order || len > after.len() {
            return Err(bad_payload());
        }
        let (data, after) = after.split_at(len);
        entries.push((entry_zxid, data));
        rest = after;
    }
    if !rest.is_empty() {
        return Err(bad_payload());
    }
    Ok(StoredRecord { prev, entries })
}

fn decode_link(link: [u8; LINK_LEN]) -> Option<Option<u64>> {
    let [has_prev, prev @ ..] = link;
    match has_prev {
        0 => Some(None),
        1 => Some(Some(u64::from_be_bytes(prev))),
        _ => None,
    }
}

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

/// The smallest zxid whose key sorts after `key`, to go on past it in a walk (a
/// short, malformed key sorts before its zero-padded zxid; of several long ones
/// sharing their first 8 bytes, the later are passed over). `None` after
/// u64::MAX.
pub(crate) fn key_after(key: &[u8]) -> Option<u64> {
    let zxid = key_prefix_zxid(key);
    if key.len() < 8 { Some(zxid) } else { zxid.checked_add(1) }
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

#[cfg(test)]
pub(crate) fn decode_entry<'a>(key: &[u8], value: &'a [u8]) -> Result<StoredEntry<'a>, LogError> {
    let zxid = key_zxid("log entry", key)?;
    decode_single(zxid, record::decode("log entry", zxid, value)?)
}

/// The single-entry layout, from a checked record's payload.
fn decode_single(zxid: u64, payload: &[u8]) -> Result<StoredEntry<'_>, LogError> {
    let bad_payload = || LogError::Corrupt {
        what: "log entry",
        zxid,
        reason: CorruptReason::BadPayload { len: payload.len() },
    };
    let Some((link, data)) = payload.split_first_chunk::<LINK_LEN>() else {
        return Err(bad_payload());
    };
    let prev = decode_link(*link).ok_or_else(bad_payload)?;
    Ok(StoredEntry { zxid, prev, data })
}

/// Checks that `record` follows `previous`, the last zxid of the record before it
/// in the tree (`None` at the start of a check: the first record's predecessor may
/// have been purged).
pub(crate) fn check_link(previous: Option<u64>, record: &StoredRecord<'_>) -> Result<(), LogError> {
    match previous {
        Some(expected) if record.prev != Some(expected) => Err(LogError::Corrupt {
            what: "log entry",
            zxid: record.first(),
            reason: CorruptReason::BrokenLink { prev: record.prev, expected },
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

/// Checks the `format` value of a store: Ok(true) for format 1, which the caller
/// marks as [`FORMAT`] before writing.
pub(crate) fn check_format(value: &[u8]) -> Result<bool, LogError> {
    let payload = record::decode("format marker", 0, value)?;
    if payload == FORMAT || payload == FORMAT_1 {
        return Ok(payload == FORMAT_1);
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
        let entry = decode_record(&zxid_key(5), &value).unwrap();
        assert!(check_link(None, &entry).is_ok(), "the first record is not checked");
        assert!(check_link(Some(4), &entry).is_ok());
        assert!(check_link(Some(3), &entry).is_err(), "a record between them is missing");

        let value = encode_entry(None, b"");
        let first = decode_record(&zxid_key(5), &value).unwrap();
        assert!(check_link(Some(4), &first).is_err(), "appended to an empty log, yet follows 4");

        let value = encode_record(Some(4), &[(5, b"a"), (6, b"b")]);
        let batch = decode_record(&zxid_key(5), &value).unwrap();
        assert!(check_link(Some(4), &batch).is_ok());
        assert!(check_link(Some(5), &batch).is_err());
    }

    #[test]
    fn short_or_bad_link() {
        let short = record::encode(&[1, 0, 0]);
        assert!(decode_entry(&zxid_key(1), &short).is_err());
        let mut bad_flag = vec![7];
        bad_flag.extend_from_slice(&[0; 8]);
        assert!(decode_entry(&zxid_key(1), &record::encode(&bad_flag)).is_err());
        assert!(decode_record(&zxid_key(1), &record::encode(&bad_flag)).is_err());
    }

    #[test]
    fn batch_records_round_trip_and_every_damage_is_refused() {
        let entries: [(u64, &[u8]); 3] = [(7, b"seven"), (9, b""), (12, b"twelve")];
        for prev in [None, Some(6)] {
            let value = encode_record(prev, &entries);
            let record = decode_record(&zxid_key(7), &value).unwrap();
            assert_eq!(record.prev, prev);
            assert_eq!(record.entries, entries);
            assert_eq!((record.first(), record.last()), (7, 12));
        }
        let value = encode_record(Some(6), &entries);
        assert!(decode_record(&zxid_key(8), &value).is_err(), "first zxid is not the key");
        let payload = record::decode("log entry", 7, &value).unwrap().to_vec();
        // Every shorter payload, resealed so that only the layout can fail.
        for len in 0..payload.len() {
            let cut = record::encode(&payload[..len]);
            assert!(decode_record(&zxid_key(7), &cut).is_err(), "cut to {len}");
        }
        let mut longer = payload.clone();
        longer.push(0);
        assert!(decode_record(&zxid_key(7), &record::encode(&longer)).is_err(), "trailing byte");
        let mut count = payload.clone();
        count[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_record(&zxid_key(7), &record::encode(&count)).is_err(), "huge count");
        let descending = encode_record(None, &[(7, b"a"), (7, b"b")]);
        assert!(decode_record(&zxid_key(7), &descending).is_err(), "zxids must ascend");
    }

    #[test]
    fn meta_round_trip() {
        let meta = Meta { accepted_epoch: 3, current_epoch: u32::MAX };
        assert_eq!(decode_meta(&encode_meta(meta)).unwrap(), meta);
        assert!(decode_meta(&record::encode(&[0; 7])).is_err());
    }
}
