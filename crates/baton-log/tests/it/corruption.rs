//! Damage to our own records inside sled's trees, written behind the store's back
//! through sled's API: the store must cut the log at the first bad record (a torn
//! or corrupt tail), report it, and keep everything before it. Damage to sled's
//! files on disk is in `sled_files.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton_log::conformance::{entries, scrub_pass};
use baton_log::{
    CorruptReason, DamagedPart, LOG_TREE, LogEntry, LogError, LogStore, META_TREE, Meta,
    SNAPSHOTS_TREE, SledStore, Snapshot, record,
};
use bytes::Bytes;
use tempfile::TempDir;

fn key(zxid: u64) -> [u8; 8] {
    zxid.to_be_bytes()
}

/// A store in a fresh directory holding `entries(1..=count)`, appended one at a
/// time (so each is a record of its own under its zxid), flushed and closed.
fn closed_store(count: u64) -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    let mut store = SledStore::open(&dir).expect("open");
    for zxid in 1..=count {
        store.append(&entries(zxid..=zxid)).expect("append");
    }
    store.flush().expect("flush");
    (tmp, dir)
}

/// A store holding entries 1..=12 appended as three batches of four: three batch
/// records, under keys 1, 5 and 9.
fn batched_store() -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    let mut store = SledStore::open(&dir).expect("open");
    for first in [1, 5, 9] {
        store.append(&entries(first..=first + 3)).expect("append");
    }
    store.flush().expect("flush");
    let db_keys: Vec<u64> = {
        drop(store);
        let db = raw_sled(&dir);
        let log = db.open_tree(LOG_TREE).unwrap();
        log.iter().keys().map(|k| u64::from_be_bytes(k.unwrap()[..].try_into().unwrap())).collect()
    };
    assert_eq!(db_keys, [1, 5, 9], "one record per appended batch");
    (tmp, dir)
}

#[test]
fn a_damaged_batch_record_drops_it_and_everything_after() {
    let (_tmp, dir) = batched_store();
    let mut damaged =
        raw_sled(&dir).open_tree(LOG_TREE).unwrap().get(key(5)).unwrap().unwrap().to_vec();
    *damaged.last_mut().unwrap() ^= 0x01;
    poke(&dir, LOG_TREE, &key(5), &damaged);

    let store = SledStore::open(&dir).expect("open with a corrupt batch record");
    assert_eq!(store.recovered_truncation(), 2, "records 5 and 9 are the dropped tail");
    assert_eq!(all(&store), entries(1..=4));
    assert_eq!((store.first_zxid(), store.last_zxid()), (Some(1), Some(4)));
}

#[test]
fn a_missing_batch_record_cuts_the_log_at_the_hole() {
    let (_tmp, dir) = batched_store();
    let db = raw_sled(&dir);
    db.open_tree(LOG_TREE).unwrap().remove(key(5)).unwrap();
    db.flush().unwrap();
    drop(db);

    let store = SledStore::open(&dir).expect("open with a hole in the log");
    assert_eq!(store.recovered_truncation(), 1, "record 9 names 8, not 4, as its predecessor");
    assert_eq!(all(&store), entries(1..=4));
}

#[test]
fn reads_truncations_and_purges_inside_batch_records() {
    let (_tmp, dir) = batched_store();
    let mut store = SledStore::open(&dir).expect("open");
    assert_eq!(store.read(6, 3).unwrap(), entries(6..=8), "from inside a record, bounded");
    assert_eq!(store.read(4, usize::MAX).unwrap(), entries(4..=12), "across records");
    store.truncate_after(6).unwrap();
    assert_eq!(all(&store), entries(1..=6));
    assert_eq!(store.last_zxid(), Some(6));
    store.append(&entries(7..=8)).unwrap();
    store.save_snapshot(Snapshot { zxid: 3, data: Bytes::from_static(b"at 3") }).unwrap();
    assert_eq!(store.purge(1).unwrap(), 3);
    assert_eq!(store.first_zxid(), Some(4));
    drop(store);
    // What a rewrite left behind links up and survives a reopen.
    let store = SledStore::open(&dir).expect("reopen");
    assert_eq!(store.recovered_truncation(), 0);
    assert_eq!(all(&store), entries(4..=8));
}

/// Opens the sled database of a closed store directly. sled releases its lock a
/// moment after a close (its thread pool still holds the file), so wait for it.
fn raw_sled(dir: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(error) if Instant::now() < deadline => {
                assert!(error.to_string().contains("could not acquire lock"), "raw open: {error}");
                std::thread::yield_now();
            }
            Err(error) => panic!("raw sled open: {error}"),
        }
    }
}

/// Writes `value` under `key` in sled tree `tree` of the closed store in `dir`,
/// behind the store's back.
fn poke(dir: &Path, tree: &str, key: &[u8], value: &[u8]) {
    let db = raw_sled(dir);
    db.open_tree(tree).expect("tree").insert(key, value).expect("raw insert");
    db.flush().expect("raw flush");
}

fn all(store: &SledStore) -> Vec<LogEntry> {
    store.read(0, usize::MAX).expect("read after recovery")
}

#[test]
fn bad_checksum_in_the_middle_truncates_from_there() {
    let (_tmp, dir) = closed_store(10);
    let mut damaged = record::encode(b"txn 0x6");
    *damaged.last_mut().unwrap() ^= 0x01;
    poke(&dir, LOG_TREE, &key(6), &damaged);

    let store = SledStore::open(&dir).expect("open with a corrupt record");
    assert_eq!(store.recovered_truncation(), 5, "records 6..=10 are the dropped tail");
    assert_eq!(all(&store), entries(1..=5), "entries before the damage are intact");
    assert_eq!((store.first_zxid(), store.last_zxid()), (Some(1), Some(5)));
    drop(store);

    // The truncation was made durable: a second open finds a clean log.
    let mut store = SledStore::open(&dir).expect("second open");
    assert_eq!(store.recovered_truncation(), 0, "the tail was already gone");
    assert_eq!(all(&store), entries(1..=5));
    store.append(&entries(6..=7)).expect("the log continues after recovery");
}

#[test]
fn torn_record_at_the_tail_is_dropped() {
    let (_tmp, dir) = closed_store(10);
    let whole = record::encode(&[0xAB; 64]);
    poke(&dir, LOG_TREE, &key(11), &whole[..whole.len() - 10]);

    let store = SledStore::open(&dir).expect("open with a torn record");
    assert_eq!(store.recovered_truncation(), 1);
    assert_eq!(all(&store), entries(1..=10));
}

#[test]
fn missing_record_truncates_from_the_next() {
    let (_tmp, dir) = closed_store(10);
    let db = raw_sled(&dir);
    db.open_tree(LOG_TREE).unwrap().remove(key(4)).unwrap();
    db.flush().unwrap();
    drop(db);

    let store = SledStore::open(&dir).expect("open with a hole in the log");
    assert_eq!(store.recovered_truncation(), 6, "5..=10 no longer link to 3");
    assert_eq!(all(&store), entries(1..=3));
}

#[test]
fn every_kind_of_bad_record_is_caught() {
    let good = record::encode(b"txn 0x4");
    let mut wrong_version = good.clone();
    wrong_version[0] = 2;
    let mut long_length = good.clone();
    long_length[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty value", Vec::new()),
        ("short header", good[..5].to_vec()),
        ("unknown version", wrong_version),
        ("length beyond the value", long_length),
    ];
    for (name, value) in cases {
        let (_tmp, dir) = closed_store(6);
        poke(&dir, LOG_TREE, &key(4), &value);
        let store = SledStore::open(&dir).unwrap_or_else(|e| panic!("{name}: open failed: {e}"));
        assert_eq!(store.recovered_truncation(), 3, "{name}: dropped 4..=6");
        assert_eq!(all(&store), entries(1..=3), "{name}: prefix kept");
    }
}

#[test]
fn malformed_key_truncates_from_its_place() {
    let (_tmp, dir) = closed_store(10);
    // Sorts right after zxid 7: bytes 0..8 are zxid 7's key, then one more byte.
    let mut long_key = key(7).to_vec();
    long_key.push(0);
    poke(&dir, LOG_TREE, &long_key, &record::encode(b"?"));

    let store = SledStore::open(&dir).expect("open with a malformed key");
    assert_eq!(store.recovered_truncation(), 4, "the bad key and 8..=10");
    assert_eq!(all(&store), entries(1..=7));
}

#[test]
fn corrupt_snapshots_are_skipped_and_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut store = SledStore::open(&dir).unwrap();
    store.append(&entries(1..=30)).unwrap();
    for zxid in [10, 20] {
        store.save_snapshot(Snapshot { zxid, data: Bytes::from(format!("at {zxid}")) }).unwrap();
    }
    drop(store);
    let mut damaged = record::encode(b"at 30");
    damaged[record::HEADER_LEN] ^= 0xFF;
    poke(&dir, SNAPSHOTS_TREE, &key(30), &damaged);

    let mut store = SledStore::open(&dir).unwrap();
    let latest = store.latest_snapshot().unwrap().expect("a valid snapshot remains");
    assert_eq!(latest.zxid, 20, "the corrupt newer snapshot is skipped");
    // Only valid snapshots count as kept: purge(1) keeps 20 (not the corrupt 30)
    // and so deletes the entries up to 20 only.
    assert_eq!(store.purge(1).unwrap(), 20);
    assert_eq!(store.first_zxid(), Some(21));
    assert_eq!(store.latest_snapshot().unwrap().map(|s| s.zxid), Some(20));
}

/// Open does not check snapshots (they are read when needed); the scrub finds a
/// damaged one while the others are still good.
#[test]
fn the_scrub_reports_a_corrupt_snapshot() {
    let (_tmp, dir) = closed_store(10);
    let mut store = SledStore::open(&dir).unwrap();
    for zxid in [4, 8] {
        store.save_snapshot(Snapshot { zxid, data: Bytes::from(format!("at {zxid}")) }).unwrap();
    }
    drop(store);
    let mut damaged = record::encode(b"at 4");
    damaged[record::HEADER_LEN + 1] ^= 0x20;
    poke(&dir, SNAPSHOTS_TREE, &key(4), &damaged);

    let store = SledStore::open(&dir).unwrap();
    assert_eq!(store.recovered_truncation(), 0, "the log is intact");
    let (steps, damage) = scrub_pass(&store, 64);
    assert!(steps.len() > 1, "bounded steps");
    match &damage[..] {
        [damage] => {
            assert_eq!(damage.what, DamagedPart::Snapshot { zxid: 4 });
            assert!(matches!(damage.reason, CorruptReason::ChecksumMismatch { .. }));
        }
        other => panic!("expected the snapshot at 4 only, found {other:?}"),
    }
}

#[test]
fn corrupt_meta_is_an_error() {
    let (_tmp, dir) = closed_store(1);
    let mut store = SledStore::open(&dir).unwrap();
    store.set_meta(Meta { accepted_epoch: 4, current_epoch: 4 }).unwrap();
    drop(store);
    let mut damaged = record::encode(&[0, 0, 0, 4, 0, 0, 0, 4]);
    damaged[record::HEADER_LEN + 3] = 5;
    poke(&dir, META_TREE, b"epochs", &damaged);

    let store = SledStore::open(&dir).unwrap();
    match store.meta() {
        Err(LogError::Corrupt {
            what: "meta",
            reason: CorruptReason::ChecksumMismatch { .. },
            ..
        }) => {}
        other => panic!("corrupt meta returned {other:?}"),
    }
}
