//! The sled store's scrub step ([`crate::LogStore::scrub_step`]): every record of
//! `log` in key order, checked as open-time recovery checks it (checksum, layout,
//! link to the record before), then every snapshot's checksum.
//!
//! Unlike recovery it reports and goes on. After a record that fails its check,
//! the next one cannot be checked against that record's last zxid (unreadable),
//! only against its range: it must name as its predecessor an entry at or after
//! the damaged record's key and before its own first zxid. So the next good
//! record is not reported merely for following a damaged one, while one that
//! names something outside that range (a record missing as well, or one from
//! another history) is. Every entry between a damaged record's key and the next
//! good record's first zxid is suspect anyway ([`DamagedPart::LogRecord`]).
//!
//! The store may change between steps. A cursor keeps the last record it saw, and
//! a link that does not match it is checked again against the record now before
//! it in the tree before being reported, so that a purge or truncation between
//! steps is never reported as damage. On a log that does not change, the first
//! damage a pass reports is where open-time recovery would cut the log.

use sled::IVec;

use crate::LogError;
use crate::error::CorruptReason;
use crate::scrub::{Damage, DamagedPart, Link, ScrubCursor, ScrubPart, ScrubStep};
use crate::sled_codec::{StoredRecord, decode_record, decode_snapshot, key_after, zxid_key};

/// One step of a scrub over the `log` and `snapshots` trees.
pub(crate) fn scrub_step(
    log: &sled::Tree,
    snapshots: &sled::Tree,
    from: ScrubCursor,
    bytes_max: usize,
) -> Result<ScrubStep, LogError> {
    let mut step = ScrubStep::default();
    let mut cursor = from;
    if cursor.part == ScrubPart::Log {
        let mut records = log.range(zxid_key(cursor.from)..).peekable();
        let mut link = cursor.link;
        while let Some(item) = records.next() {
            let (key, value) = item?;
            step.bytes += key.len() + value.len();
            link = check_record(log, &key, &value, link, &mut step.damage)?;
            let resume = key_after(&key).filter(|_| records.peek().is_some());
            if step.bytes >= bytes_max {
                step.next = match resume {
                    Some(from) => Some(ScrubCursor::log(from, link)),
                    None => snapshots_from(snapshots)?,
                };
                return Ok(step);
            }
            if resume.is_none() {
                break;
            }
        }
        cursor = ScrubCursor::SNAPSHOTS;
    }
    let mut stored = snapshots.range(zxid_key(cursor.from)..).peekable();
    while let Some(item) = stored.next() {
        let (key, value) = item?;
        step.bytes += key.len() + value.len();
        if let Err(LogError::Corrupt { zxid, reason, .. }) = decode_snapshot(&key, &value) {
            step.damage.push(Damage { what: DamagedPart::Snapshot { zxid }, reason });
        }
        let resume = key_after(&key).filter(|_| stored.peek().is_some());
        if step.bytes >= bytes_max || resume.is_none() {
            step.next = resume.map(|from| ScrubCursor { from, ..ScrubCursor::SNAPSHOTS });
            return Ok(step);
        }
    }
    Ok(step)
}

/// The cursor at the start of the snapshots, or `None` if there are none.
fn snapshots_from(snapshots: &sled::Tree) -> Result<Option<ScrubCursor>, LogError> {
    Ok(snapshots.first()?.map(|_| ScrubCursor::SNAPSHOTS))
}

/// Checks one log record, recording its damage; returns what the next record must
/// link to.
fn check_record(
    log: &sled::Tree,
    key: &IVec,
    value: &IVec,
    link: Link,
    damage: &mut Vec<Damage>,
) -> Result<Link, LogError> {
    match decode_record(key, value) {
        Ok(record) => {
            if let Some(reason) = broken_link(log, key, link, &record)? {
                let what = DamagedPart::LogRecord { first_zxid: record.first() };
                damage.push(Damage { what, reason });
            }
            Ok(Link::After(record.last()))
        }
        Err(LogError::Corrupt { zxid, reason, .. }) => {
            damage.push(Damage { what: DamagedPart::LogRecord { first_zxid: zxid }, reason });
            Ok(Link::AfterDamaged(zxid))
        }
        Err(other) => Err(other),
    }
}

/// Why `record` does not follow the record before it, if it does not. `link` is
/// what this pass saw before it, which may be stale if the log changed since the
/// last step: a mismatch is checked again against the tree as it is now.
fn broken_link(
    log: &sled::Tree,
    key: &IVec,
    link: Link,
    record: &StoredRecord<'_>,
) -> Result<Option<CorruptReason>, LogError> {
    if link_mismatch(link, record).is_none() {
        return Ok(None);
    }
    let now = match log.range::<&IVec, _>(..key).next_back().transpose()? {
        None => Link::Start,
        Some((before_key, before_value)) => match decode_record(&before_key, &before_value) {
            Ok(before) => Link::After(before.last()),
            Err(LogError::Corrupt { zxid, .. }) => Link::AfterDamaged(zxid),
            Err(other) => return Err(other),
        },
    };
    Ok(link_mismatch(now, record))
}

fn link_mismatch(link: Link, record: &StoredRecord<'_>) -> Option<CorruptReason> {
    let prev = record.prev;
    match link {
        Link::Start => None,
        Link::After(expected) if prev == Some(expected) => None,
        Link::After(expected) => Some(CorruptReason::BrokenLink { prev, expected }),
        Link::AfterDamaged(damaged) => match prev {
            Some(p) if damaged <= p && p < record.first() => None,
            _ => Some(CorruptReason::LinkAfterDamage { prev, damaged }),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::ops::RangeInclusive;

    use super::*;
    use crate::conformance::scrub_pass;
    use crate::sled_codec::{LOG_TREE, SNAPSHOTS_TREE, encode_entry};
    use crate::{LogStore, SledStore};

    fn singles(zxids: RangeInclusive<u64>) -> Vec<RangeInclusive<u64>> {
        zxids.map(|zxid| zxid..=zxid).collect()
    }

    /// The damage a whole pass finds, the same in one step and in steps of one
    /// record (the cursor carries what the walk saw across steps).
    fn damage(store: &SledStore) -> Vec<Damage> {
        let (_, whole) = scrub_pass(store, usize::MAX);
        let (_, stepped) = scrub_pass(store, 1);
        assert_eq!(whole, stepped, "one step vs steps of one record");
        whole
    }

    fn log_record(first_zxid: u64, reason: CorruptReason) -> Damage {
        Damage { what: DamagedPart::LogRecord { first_zxid }, reason }
    }

    fn checksum_damage(damage: &Damage) -> Option<DamagedPart> {
        matches!(damage.reason, CorruptReason::ChecksumMismatch { .. }).then_some(damage.what)
    }

    #[test]
    fn damaged_records_in_the_middle_are_reported_and_the_rest_verified() {
        let (_tmp, store) = SledStore::with_records(&singles(1..=10), &[]);
        let (clean_steps, clean) = scrub_pass(&store, 1);
        assert_eq!((clean_steps.len(), &clean[..]), (10, &[][..]));

        store.flip_stored(LOG_TREE, 5);
        store.flip_stored(LOG_TREE, 8);
        let (steps, _) = scrub_pass(&store, 1);
        assert_eq!(steps, clean_steps, "every record is still verified, none twice");
        let found: Vec<_> = damage(&store).iter().map(checksum_damage).collect();
        let expected = [5, 8].map(|first_zxid| Some(DamagedPart::LogRecord { first_zxid }));
        assert_eq!(found, expected, "both, and nothing for the records after them");
    }

    #[test]
    fn a_damaged_batch_record_is_reported_by_its_first_zxid() {
        let (_tmp, store) = SledStore::with_records(&[1..=4, 5..=8, 9..=12], &[]);
        store.flip_stored(LOG_TREE, 5);
        let found: Vec<_> = damage(&store).iter().map(checksum_damage).collect();
        assert_eq!(found, [Some(DamagedPart::LogRecord { first_zxid: 5 })]);
    }

    #[test]
    fn a_missing_record_is_a_broken_link() {
        let (_tmp, store) = SledStore::with_records(&singles(1..=6), &[]);
        store.raw_tree(LOG_TREE).remove(zxid_key(4)).unwrap();
        let reason = CorruptReason::BrokenLink { prev: Some(4), expected: 3 };
        assert_eq!(damage(&store), [log_record(5, reason)]);
    }

    #[test]
    fn after_a_damaged_record_the_next_must_link_into_it() {
        let (_tmp, store) = SledStore::with_records(&singles(1..=8), &[]);
        store.flip_stored(LOG_TREE, 4);
        // 5 missing as well: 6 names it, inside the suspect range from 4 to 6.
        store.raw_tree(LOG_TREE).remove(zxid_key(5)).unwrap();
        let found: Vec<_> = damage(&store).iter().map(checksum_damage).collect();
        assert_eq!(found, [Some(DamagedPart::LogRecord { first_zxid: 4 })]);

        // 6 names 2, before the damaged record: something else is wrong there.
        store.raw_tree(LOG_TREE).insert(zxid_key(6), encode_entry(Some(2), b"?")).unwrap();
        let found = damage(&store);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(checksum_damage(&found[0]), Some(DamagedPart::LogRecord { first_zxid: 4 }));
        let reason = CorruptReason::LinkAfterDamage { prev: Some(2), damaged: 4 };
        assert_eq!(found[1], log_record(6, reason));
    }

    #[test]
    fn the_first_damage_reported_is_where_open_cuts_the_log() {
        let (tmp, store) = SledStore::with_records(&singles(1..=10), &[]);
        store.flip_stored(LOG_TREE, 4);
        store.flip_stored(LOG_TREE, 7);
        assert_eq!(damage(&store)[0].what, DamagedPart::LogRecord { first_zxid: 4 });
        drop(store);
        let store = SledStore::open(tmp.path()).unwrap();
        assert_eq!(store.recovered_truncation(), 7, "records 4..=10");
        assert_eq!(store.last_zxid(), Some(3));
        assert_eq!(damage(&store), [], "what open left is clean");
    }

    #[test]
    fn a_corrupt_snapshot_is_reported() {
        let (_tmp, store) = SledStore::with_records(&singles(1..=4), &[2, 4]);
        store.flip_stored(SNAPSHOTS_TREE, 2);
        let found: Vec<_> = damage(&store).iter().map(checksum_damage).collect();
        assert_eq!(found, [Some(DamagedPart::Snapshot { zxid: 2 })]);
    }
}

/// Blob files younger than this are not verified: sled may still be writing one.
const BLOB_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// One step over sled's blob files in `dir`, in id order from `from`: each file is
/// read from the disk and checked against sled's own header (a little-endian
/// crc32 over the kind byte and the data). A file that vanished meanwhile was
/// collected by sled and is skipped.
pub(crate) fn blob_step(
    dir: &std::path::Path,
    from: ScrubCursor,
    bytes_max: usize,
) -> Result<ScrubStep, LogError> {
    let mut step = ScrubStep::default();
    let mut ids: Vec<u64> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .filter(|id| *id >= from.from)
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    ids.sort_unstable();
    let now = std::time::SystemTime::now();
    for (index, id) in ids.iter().enumerate() {
        let path = dir.join(id.to_string());
        let settled = std::fs::metadata(&path)
            .and_then(|meta| meta.modified())
            .is_ok_and(|at| now.duration_since(at).is_ok_and(|age| age >= BLOB_SETTLE));
        let bytes = if settled { std::fs::read(&path) } else { Ok(Vec::new()) };
        match bytes {
            Ok(bytes) => {
                step.bytes += bytes.len();
                if let Some(reason) = blob_damage(&bytes).filter(|_| settled) {
                    step.damage.push(Damage { what: DamagedPart::SledBlob { id: *id }, reason });
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        if step.bytes >= bytes_max {
            step.next =
                ids.get(index + 1).map(|next| ScrubCursor { from: *next, ..ScrubCursor::BLOBS });
            return Ok(step);
        }
    }
    Ok(step)
}

/// Why a blob file's contents fail sled's header check, if they do.
fn blob_damage(bytes: &[u8]) -> Option<CorruptReason> {
    let Some((crc, rest)) = bytes.split_first_chunk::<4>() else {
        return Some(CorruptReason::TooShort { len: bytes.len() });
    };
    if rest.is_empty() {
        return Some(CorruptReason::TooShort { len: bytes.len() });
    }
    let stored = u32::from_le_bytes(*crc);
    let computed = crc32fast::hash(rest);
    (stored != computed).then_some(CorruptReason::ChecksumMismatch { stored, computed })
}

#[cfg(test)]
mod blob_tests {
    use super::*;

    #[test]
    fn a_flipped_byte_in_a_blob_file_is_found_and_others_pass() {
        let dir = tempfile::tempdir().unwrap();
        let blob = |body: &[u8]| {
            let mut bytes = crc32fast::hash(body).to_le_bytes().to_vec();
            bytes.extend_from_slice(body);
            bytes
        };
        std::fs::write(dir.path().join("10"), blob(b"\x01a snapshot")).unwrap();
        let mut bad = blob(b"\x01a large log record");
        bad[9] ^= 4;
        std::fs::write(dir.path().join("20"), bad).unwrap();
        std::fs::write(dir.path().join("30"), b"ab").unwrap();
        // Old enough to be checked.
        let old = std::time::SystemTime::now() - BLOB_SETTLE * 2;
        for name in ["10", "20", "30"] {
            let file = std::fs::File::options().write(true).open(dir.path().join(name)).unwrap();
            file.set_modified(old).unwrap();
        }
        let step = blob_step(dir.path(), ScrubCursor::BLOBS, usize::MAX).unwrap();
        let found: Vec<DamagedPart> = step.damage.iter().map(|d| d.what).collect();
        assert_eq!(found, [DamagedPart::SledBlob { id: 20 }, DamagedPart::SledBlob { id: 30 }]);
        assert_eq!(step.next, None);
        // Bounded: one file per step, resuming after it.
        let step = blob_step(dir.path(), ScrubCursor::BLOBS, 1).unwrap();
        assert!(step.damage.is_empty());
        let step = blob_step(dir.path(), step.next.expect("more"), 1).unwrap();
        assert_eq!(step.damage.len(), 1);
        // A file just written is left for later.
        std::fs::write(dir.path().join("40"), b"xx").unwrap();
        let step =
            blob_step(dir.path(), ScrubCursor { from: 40, ..ScrubCursor::BLOBS }, 10).unwrap();
        assert!(step.damage.is_empty());
    }
}
