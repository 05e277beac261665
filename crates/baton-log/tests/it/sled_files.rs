//! Damage to sled's own files on disk, after everything was flushed.
//!
//! The promise: opening either succeeds with a prefix of the flushed entries,
//! each passing its checksum, or returns an error. Never a panic, never a damaged
//! entry. Beyond that, the cases pin what sled 0.34.7 was seen to do (over many
//! runs; where sled's IO buffer boundaries vary from run to run, so do the counts),
//! so that an upgrade that changes it shows up here:
//!
//! | damage (store closed after 10 flushed batches of 20 entries, ~520 KB of `db`) | seen |
//! |---|---|
//! | `db` tail truncated by 1 B … 20 KB; a byte flipped or overwritten in the last 4 KiB | opens, last batch lost: 180 kept |
//! | `db` truncated by 300 KB | opens, 80 kept |
//! | a byte flipped 100 KB from the end / at offset 400 KB / at offset 100 KB | opens, 140–160 / 140 / 20–40 kept |
//! | a byte flipped at offset 2000 (the first message after our format key) | opens with **0** kept |
//! | segment header flipped (offset 0..100), file emptied, file all garbage | sled opens an *empty* db without error; our marker check refuses it: `LogError::Lost` |
//! | `conf` garbage | sled refuses: `Corruption` |
//! | `conf` deleted | sled writes it again; all 200 kept |
//! | after a clean restart: `snap.*` garbage or flipped | sled refuses: `Corruption`; we remove the snap file (a warning) and sled rebuilds its index from `db`: all kept |
//! | after a clean restart: `snap.*` deleted | sled rebuilds its index from `db`; all kept |
//! | `db` tail cut behind an index that points past it (found by the nemesis) | sled refuses: `Corruption`; without the snap file it opens with a prefix |
//! | after a clean restart: `db` cut by 300 KB (only the zero-filled tail) | all kept, or (1 run in 15) sled refuses: `Corruption` |
//! | after a clean restart: `db` cut by 600 KB (into data) | opens, then reading the log fails with `Corruption`: refused |
//! | the newest blob file (entry > 128 KiB) flipped or truncated | that batch lost: 2 of 4 kept |
//! | the newest blob file deleted | sled drops that one value, which may leave a hole (1, 2, 4): our link check cuts there: 2 or 3 of 4 kept |
//!
//! So sled checks each message of its log (crc32) and recovers up to the first bad
//! one, silently zeroing the rest of that segment; it never reported a loss and
//! never panicked. A damaged byte early in `db` therefore loses every later batch
//! silently (the 0-kept row): sled cannot tell "never written" from "lost", and
//! neither can we, except in the wholesale case our marker file catches. ZAB's
//! safety assumes a server does not forget what it acknowledged; with sled that
//! holds against crashes and torn writes at the tail, not against bit rot inside
//! the file.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use baton_log::{LogEntry, LogError, LogStore, SledStore};
use bytes::Bytes;
use tempfile::TempDir;

/// What opening a store with damaged sled files gave.
#[derive(Debug)]
enum Outcome {
    /// Opened; the log holds the first `kept` flushed entries, all intact.
    Opened { kept: usize },
    /// Refused to open, or to read the log, with this error.
    Refused(LogError),
}

/// Opens the damaged store in `dir` and checks the promise: a prefix of
/// `flushed`, every entry intact, or an error. A panic fails the test.
fn reopen_damaged(dir: &Path, flushed: &[LogEntry], damage: &str) -> Outcome {
    let attempt = panic::catch_unwind(AssertUnwindSafe(|| {
        let store = match SledStore::open(dir) {
            Ok(store) => store,
            Err(error) => return Outcome::Refused(error),
        };
        let read = match store.read(0, usize::MAX) {
            Ok(read) => read,
            Err(error) => return Outcome::Refused(error),
        };
        assert!(read.len() <= flushed.len(), "{damage}: more entries than were written");
        let summary = |entries: &[LogEntry]| -> Vec<(u64, usize, u8)> {
            entries
                .iter()
                .map(|e| (e.zxid, e.data.len(), e.data.first().copied().unwrap_or(0)))
                .collect()
        };
        assert!(
            read == flushed[..read.len()],
            "{damage}: not a prefix of the flushed entries: {:?}",
            summary(&read)
        );
        assert_eq!(store.last_zxid(), read.last().map(|e| e.zxid), "{damage}: last_zxid");
        Outcome::Opened { kept: read.len() }
    }));
    let outcome =
        attempt.unwrap_or_else(|_| panic!("{damage}: opening the damaged store panicked"));
    println!("{damage}: {outcome:?}");
    outcome
}

fn expect_opened(outcome: Outcome, damage: &str) -> usize {
    match outcome {
        Outcome::Opened { kept } => kept,
        Outcome::Refused(error) => panic!("{damage}: expected to open, got {error}"),
    }
}

fn expect_refused(outcome: Outcome, damage: &str) -> LogError {
    match outcome {
        Outcome::Refused(error) => error,
        Outcome::Opened { kept } => panic!("{damage}: expected an error, opened with {kept}"),
    }
}

fn expect_lost(outcome: Outcome, damage: &str) {
    let error = expect_refused(outcome, damage);
    assert!(matches!(error, LogError::Lost { .. }), "{damage}: expected Lost, got {error}");
}

const BATCHES: u64 = 10;
const BATCH_LEN: u64 = 20;
const ALL: usize = (BATCHES * BATCH_LEN) as usize;

/// 10 flushed batches of 20 entries of 1000 bytes, each entry appended alone (a
/// record per key, the layout the table above was seen with), store closed: about
/// 520 KiB of sled log, so the data file spans two 512 KiB segments.
fn flushed_files() -> (TempDir, PathBuf, Vec<LogEntry>) {
    written_files(false)
}

/// The same entries with each batch appended at once: one batch record per flush.
fn written_files(batched: bool) -> (TempDir, PathBuf, Vec<LogEntry>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    let mut store = SledStore::open(&dir).expect("open");
    let mut written = Vec::new();
    for batch in 0..BATCHES {
        let entries: Vec<LogEntry> = (1..=BATCH_LEN)
            .map(|i| batch * BATCH_LEN + i)
            .map(|zxid| LogEntry { zxid, data: Bytes::from(vec![zxid as u8; 1000]) })
            .collect();
        if batched {
            store.append(&entries).expect("append");
        } else {
            for entry in entries.chunks(1) {
                store.append(entry).expect("append");
            }
        }
        store.flush().expect("flush");
        written.extend(entries);
    }
    (tmp, dir, written)
}

/// Batch records keep the promise under the same kinds of damage: a prefix of the
/// flushed entries, each intact, or an error; damage inside the data loses some.
#[test]
fn batch_records_damaged_in_the_data_file() {
    for bytes in [1, 100, 4096, 20_000, 100_000] {
        let (_tmp, dir, flushed) = written_files(true);
        truncate_by(&data_file(&dir), bytes);
        reopen_damaged(&dir, &flushed, &format!("batched: db truncated by {bytes} bytes"));
    }
    let len = std::fs::metadata(data_file(&written_files(true).1)).unwrap().len() as usize;
    for offset in [len / 4, len / 2, len - 4096, len - 100] {
        let (_tmp, dir, flushed) = written_files(true);
        flip_at(&data_file(&dir), offset);
        reopen_damaged(&dir, &flushed, &format!("batched: byte flipped at {offset} of {len}"));
    }
    let (_tmp, dir, flushed) = written_files(true);
    truncate_by(&data_file(&dir), (len / 2) as u64);
    expect_some_loss(
        reopen_damaged(&dir, &flushed, "batched: db cut in half"),
        "batched: db cut in half",
    );
}

/// The same after one clean restart, which makes sled write its `snap.*` file
/// and zero-fill the rest of its current segment.
fn restarted_files() -> (TempDir, PathBuf, Vec<LogEntry>) {
    let (tmp, dir, written) = flushed_files();
    drop(SledStore::open(&dir).expect("clean restart"));
    (tmp, dir, written)
}

fn data_file(dir: &Path) -> PathBuf {
    dir.join("db")
}

fn snap_files(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    let snaps: Vec<PathBuf> =
        entries.filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("snap.")).collect();
    assert!(!snaps.is_empty(), "sled wrote no snap file on restart");
    snaps
}

fn truncate_by(path: &Path, bytes: u64) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len.saturating_sub(bytes)).unwrap();
}

fn flip_at(path: &Path, offset: usize) {
    let mut contents = std::fs::read(path).unwrap();
    contents[offset] ^= 0xFF;
    std::fs::write(path, contents).unwrap();
}

fn flip_from_end(path: &Path, from_end: usize) {
    let len = std::fs::metadata(path).unwrap().len() as usize;
    flip_at(path, len - from_end);
}

fn overwrite_tail(path: &Path, len: u64) {
    let mut file = OpenOptions::new().write(true).open(path).unwrap();
    let file_len = file.metadata().unwrap().len();
    file.seek(SeekFrom::Start(file_len - len)).unwrap();
    file.write_all(&vec![0xA5; len as usize]).unwrap();
}

/// Damage inside the flushed data loses something, and what is left is a prefix.
fn expect_some_loss(outcome: Outcome, damage: &str) {
    let kept = expect_opened(outcome, damage);
    assert!(kept < ALL, "{damage}: damaged data yet all {ALL} entries came back");
}

#[test]
fn data_file_tail_truncated() {
    for bytes in [1, 100, 4096, 20_000, 300_000] {
        let (_tmp, dir, flushed) = flushed_files();
        truncate_by(&data_file(&dir), bytes);
        let damage = format!("db truncated by {bytes} bytes");
        expect_some_loss(reopen_damaged(&dir, &flushed, &damage), &damage);
    }
}

#[test]
fn data_file_bytes_flipped_near_the_end() {
    for from_end in [1, 10, 1500, 100_000] {
        let (_tmp, dir, flushed) = flushed_files();
        flip_from_end(&data_file(&dir), from_end);
        let damage = format!("db byte flipped {from_end} bytes from the end");
        expect_some_loss(reopen_damaged(&dir, &flushed, &damage), &damage);
    }
    for len in [16, 4096] {
        let (_tmp, dir, flushed) = flushed_files();
        overwrite_tail(&data_file(&dir), len);
        let damage = format!("last {len} bytes of db overwritten");
        expect_some_loss(reopen_damaged(&dir, &flushed, &damage), &damage);
    }
}

#[test]
fn data_file_bytes_flipped_inside() {
    // The loss runs from the damaged message to the end: sled cannot skip it.
    for offset in [2000, 100_000, 400_000] {
        let (_tmp, dir, flushed) = flushed_files();
        flip_at(&data_file(&dir), offset);
        let damage = format!("db byte flipped at offset {offset}");
        expect_some_loss(reopen_damaged(&dir, &flushed, &damage), &damage);
    }
}

#[test]
fn data_file_wiped_is_refused_not_opened_empty() {
    for offset in [0, 10, 100] {
        let (_tmp, dir, flushed) = flushed_files();
        flip_at(&data_file(&dir), offset);
        let damage = format!("db segment header flipped at offset {offset}");
        expect_lost(reopen_damaged(&dir, &flushed, &damage), &damage);
    }

    let (_tmp, dir, flushed) = flushed_files();
    truncate_by(&data_file(&dir), u64::MAX);
    expect_lost(reopen_damaged(&dir, &flushed, "db emptied"), "db emptied");

    let (_tmp, dir, flushed) = flushed_files();
    let len = std::fs::metadata(data_file(&dir)).unwrap().len();
    std::fs::write(data_file(&dir), vec![0x5A; len as usize]).unwrap();
    expect_lost(reopen_damaged(&dir, &flushed, "db all garbage"), "db all garbage");
}

#[test]
fn config_file_damaged() {
    let (_tmp, dir, flushed) = flushed_files();
    std::fs::write(dir.join("conf"), b"segment_size: banana\n").unwrap();
    let error = expect_refused(reopen_damaged(&dir, &flushed, "conf garbage"), "conf garbage");
    assert!(matches!(error, LogError::Open { .. }), "conf garbage: {error}");

    let (_tmp, dir, flushed) = flushed_files();
    std::fs::remove_file(dir.join("conf")).unwrap();
    let kept = expect_opened(reopen_damaged(&dir, &flushed, "conf deleted"), "conf deleted");
    assert_eq!(kept, ALL, "sled rewrites a deleted conf with the same defaults");
}

#[test]
fn sled_snapshot_file_damaged() {
    // The snap file is only sled's index of `db`: one sled refuses is removed and
    // sled rebuilds the index from its log.
    let (_tmp, dir, flushed) = restarted_files();
    for snap in snap_files(&dir) {
        std::fs::write(snap, b"not a sled snapshot").unwrap();
    }
    let kept = expect_opened(reopen_damaged(&dir, &flushed, "snap garbage"), "snap garbage");
    assert_eq!(kept, ALL, "sled rebuilds without its snap file");

    let (_tmp, dir, flushed) = restarted_files();
    for snap in snap_files(&dir) {
        flip_from_end(&snap, 20);
    }
    let kept = expect_opened(reopen_damaged(&dir, &flushed, "snap flipped"), "snap flipped");
    assert_eq!(kept, ALL, "sled rebuilds without its snap file");

    let (_tmp, dir, flushed) = restarted_files();
    for snap in snap_files(&dir) {
        std::fs::remove_file(snap).unwrap();
    }
    let kept = expect_opened(reopen_damaged(&dir, &flushed, "snap deleted"), "snap deleted");
    assert_eq!(kept, ALL, "sled rebuilds without its snap file");
}

/// Found by the nemesis (disk faults): a member killed and restarted several times,
/// then killed with a few bytes cut off the end of `db`, could not start again: sled's
/// index (`snap.*`, written during a restart) pointed past the cut and sled refused
/// ("Read corrupted data"). The fixture is that member's directory as it was left.
#[test]
fn a_cut_tail_that_sleds_index_points_past_opens_with_a_prefix() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("member");
    std::fs::create_dir(&dir).unwrap();
    let fixture =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/cut-tail-behind-index.tar.gz");
    let status = std::process::Command::new("tar")
        .args(["xzf", fixture, "-C"])
        .arg(&dir)
        .status()
        .expect("run tar");
    assert!(status.success(), "unpacking {fixture}");
    let store = SledStore::open(&dir).expect("the damaged member's log opens");
    let entries = store.read(0, usize::MAX).expect("its log reads back");
    assert!(!entries.is_empty(), "a prefix of the log survives");
    assert!(entries.windows(2).all(|w| w[0].zxid < w[1].zxid), "zxids increase");
    assert_eq!(store.last_zxid(), entries.last().map(|e| e.zxid));
}

#[test]
fn data_file_truncated_after_a_restart() {
    // A restart zero-fills the rest of sled's current segment; cutting only
    // zeroes usually loses nothing, but sled sometimes refuses it (its snap file
    // then points past the end).
    let (_tmp, dir, flushed) = restarted_files();
    truncate_by(&data_file(&dir), 300_000);
    let damage = "db truncated into its zeroed tail";
    if let Outcome::Opened { kept } = reopen_damaged(&dir, &flushed, damage) {
        assert_eq!(kept, ALL, "{damage}");
    }

    // Cutting into data that sled's snap file says is there.
    let (_tmp, dir, flushed) = restarted_files();
    truncate_by(&data_file(&dir), 600_000);
    reopen_damaged(&dir, &flushed, "db truncated into data after a restart");
}

/// 4 entries of 300 KB (each its own blob file) in 2 flushed batches.
fn blob_files() -> (TempDir, PathBuf, Vec<LogEntry>, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    let mut store = SledStore::open(&dir).expect("open");
    let written: Vec<LogEntry> = (1..=4u64)
        .map(|zxid| LogEntry { zxid, data: Bytes::from(vec![zxid as u8; 300_000]) })
        .collect();
    for batch in written.chunks(2) {
        store.append(batch).expect("append");
        store.flush().expect("flush");
    }
    drop(store);

    let blobs = std::fs::read_dir(dir.join("blobs")).unwrap().map(|e| e.unwrap().path());
    let newest = blobs
        .max_by_key(|p| p.file_name().unwrap().to_string_lossy().parse::<u64>().unwrap())
        .expect("large entries are stored as blob files");
    (tmp, dir, written, newest)
}

#[test]
fn blob_files_damaged() {
    let (_tmp, dir, flushed, newest) = blob_files();
    flip_from_end(&newest, 10);
    let kept = expect_opened(reopen_damaged(&dir, &flushed, "blob flipped"), "blob flipped");
    // Records go into sled one by one, not as one sled batch: only the damaged blob's
    // record (the last) is lost.
    assert_eq!(kept, 3, "the damaged blob's record is lost");

    let (_tmp, dir, flushed, newest) = blob_files();
    truncate_by(&newest, 10);
    let kept = expect_opened(reopen_damaged(&dir, &flushed, "blob truncated"), "blob truncated");
    assert_eq!(kept, 3, "the damaged blob's record is lost");

    // sled drops just the value whose blob is gone, which may be entry 3 while
    // entry 4 stays: the link check of our records cuts the log at the hole.
    let (_tmp, dir, flushed, newest) = blob_files();
    std::fs::remove_file(newest).unwrap();
    let kept = expect_opened(reopen_damaged(&dir, &flushed, "blob deleted"), "blob deleted");
    assert!((2..=3).contains(&kept), "blob deleted: {kept} kept");
}
