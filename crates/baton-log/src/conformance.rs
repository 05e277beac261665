//! The suite every [`LogStore`] must pass.
//!
//! A store plugs in through a [`StoreHarness`] that can open a fresh store and
//! "restart" one (drop it and open the same durable state again: the same
//! directory for the sled store, [`crate::MemStore::crash`] for the memory store).
//! [`run_all`] runs every check; each check is also public so a test can run one
//! alone. A failing check panics with a message that names it: this is test code.

use std::panic::{self, AssertUnwindSafe};

use bytes::Bytes;

use crate::{Damage, LogEntry, LogError, LogStore, Meta, ScrubCursor, ScrubStep, Snapshot};

/// How the suite opens and restarts a store.
pub trait StoreHarness {
    type Store: LogStore;

    /// A new, empty store.
    fn open(&mut self) -> Self::Store;

    /// Drops `store` and opens what it left durable, as a restart would.
    fn reopen(&mut self, store: Self::Store) -> Self::Store;
}

/// One named check of the suite.
pub type Check<H> = (&'static str, fn(&mut H));

/// Every check, in the order [`run_all`] runs them.
pub fn checks<H: StoreHarness>() -> Vec<Check<H>> {
    vec![
        ("empty_store", empty_store::<H>),
        ("append_and_read_ranges", append_and_read_ranges::<H>),
        ("out_of_order_appends_store_nothing", out_of_order_appends_store_nothing::<H>),
        ("flushed_entries_survive_reopen", flushed_entries_survive_reopen::<H>),
        ("unflushed_loss_is_a_suffix", unflushed_loss_is_a_suffix::<H>),
        ("durable_operations_are_barriers", durable_operations_are_barriers::<H>),
        ("truncate_after_then_append", truncate_after_then_append::<H>),
        ("truncate_everything", truncate_everything::<H>),
        ("snapshots_latest_and_reopen", snapshots_latest_and_reopen::<H>),
        ("snapshots_written_from_another_thread", snapshots_written_from_another_thread::<H>),
        ("purge_keeps_newest_snapshots", purge_keeps_newest_snapshots::<H>),
        ("purge_in_steps", purge_in_steps::<H>),
        ("purge_without_snapshots_keeps_log", purge_without_snapshots_keeps_log::<H>),
        ("purge_past_the_log_end", purge_past_the_log_end::<H>),
        ("log_follows_what_went_before", log_follows_what_went_before::<H>),
        ("meta_round_trip", meta_round_trip::<H>),
        ("large_entries", large_entries::<H>),
        ("many_entries_paged", many_entries_paged::<H>),
        ("scrub_of_a_clean_store", scrub_of_a_clean_store::<H>),
        ("scrub_steps_are_bounded_and_resume", scrub_steps_are_bounded_and_resume::<H>),
        ("scrub_across_purge_and_truncation", scrub_across_purge_and_truncation::<H>),
    ]
}

/// Runs every check against stores from `harness`.
pub fn run_all<H: StoreHarness>(harness: &mut H) {
    for (name, check) in checks::<H>() {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(harness)));
        if let Err(payload) = outcome {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("conformance check `{name}` failed: {message}");
        }
    }
}

/// An entry whose data names its zxid, so a misplaced entry is visible.
pub fn entry(zxid: u64) -> LogEntry {
    LogEntry { zxid, data: Bytes::from(format!("txn {zxid:#x}")) }
}

pub fn entries(zxids: impl IntoIterator<Item = u64>) -> Vec<LogEntry> {
    zxids.into_iter().map(entry).collect()
}

/// Scrubs `store` from the start of a pass to its end in steps of `bytes_max`:
/// the bytes each step verified, and all the damage found.
pub fn scrub_pass<S: LogStore>(store: &S, bytes_max: usize) -> (Vec<usize>, Vec<Damage>) {
    scrub_to_the_end(store, ScrubCursor::default(), bytes_max)
}

/// Like [`scrub_pass`], going on from `cursor`.
pub fn scrub_to_the_end<S: LogStore>(
    store: &S,
    mut cursor: ScrubCursor,
    bytes_max: usize,
) -> (Vec<usize>, Vec<Damage>) {
    const STEPS_MAX: usize = 1_000_000;
    let (mut steps, mut damage) = (Vec::new(), Vec::new());
    loop {
        assert!(steps.len() < STEPS_MAX, "a scrub pass did not end");
        let step = store.scrub_step(cursor, bytes_max).expect("scrub step failed");
        steps.push(step.bytes);
        damage.extend(step.damage);
        match step.next {
            Some(next) => cursor = next,
            None => return (steps, damage),
        }
    }
}

fn all<S: LogStore>(store: &S) -> Vec<LogEntry> {
    store.read(0, usize::MAX).expect("read of the whole log failed")
}

fn zxids<S: LogStore>(store: &S) -> Vec<u64> {
    all(store).iter().map(|e| e.zxid).collect()
}

fn append<S: LogStore>(store: &mut S, zxids: impl IntoIterator<Item = u64>) {
    store.append(&entries(zxids)).expect("a valid append was rejected");
}

fn flush<S: LogStore>(store: &mut S) {
    store.flush().expect("flush failed");
}

fn snapshot(zxid: u64) -> Snapshot {
    Snapshot { zxid, data: Bytes::from(format!("tree at {zxid:#x}")) }
}

fn assert_bounds<S: LogStore>(store: &S, first: Option<u64>, last: Option<u64>, when: &str) {
    assert_eq!(store.first_zxid(), first, "first_zxid {when}");
    assert_eq!(store.last_zxid(), last, "last_zxid {when}");
}

pub fn empty_store<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    assert_bounds(&store, None, None, "of an empty store");
    assert!(all(&store).is_empty(), "an empty store returned entries");
    assert_eq!(store.read(5, 10).unwrap(), [], "read from an empty store");
    assert_eq!(store.latest_snapshot().unwrap(), None, "snapshot of an empty store");
    assert_eq!(store.meta().unwrap(), Meta::default(), "meta of an empty store");
    assert_eq!(store.recovered_truncation(), 0, "fresh store reports a truncation");
    store.append(&[]).expect("an empty append must be accepted");
    flush(&mut store);
    store.truncate_after(0).expect("truncate_after on an empty store");
    assert_eq!(store.purge(1).unwrap(), 0, "purge of an empty store deleted entries");

    let store = h.reopen(store);
    assert_bounds(&store, None, None, "of an empty store after reopen");
    assert_eq!(store.recovered_truncation(), 0, "reopened empty store reports a truncation");
}

pub fn append_and_read_ranges<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, [10, 20, 30]);
    append(&mut store, [40]);
    append(&mut store, [50, 60]);
    assert_bounds(&store, Some(10), Some(60), "after appends");

    assert_eq!(all(&store), entries([10, 20, 30, 40, 50, 60]), "whole log");
    assert_eq!(store.read(20, 3).unwrap(), entries([20, 30, 40]), "read(20, 3)");
    assert_eq!(store.read(15, 2).unwrap(), entries([20, 30]), "read from between entries");
    assert_eq!(store.read(0, 1).unwrap(), entries([10]), "read(0, 1)");
    assert_eq!(store.read(60, 10).unwrap(), entries([60]), "read of the last entry");
    assert_eq!(store.read(61, 10).unwrap(), [], "read past the end");
    assert_eq!(store.read(u64::MAX, 10).unwrap(), [], "read(u64::MAX)");
    assert_eq!(store.read(10, 0).unwrap(), [], "read with max 0");
}

pub fn out_of_order_appends_store_nothing<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, [1, 2, 3]);

    let rejected: [&[u64]; 5] = [&[3], &[2], &[4, 5, 5], &[6, 4], &[7, 8, 1]];
    for batch in rejected {
        match store.append(&entries(batch.iter().copied())) {
            Err(LogError::OutOfOrder { .. }) => {}
            other => panic!("append of {batch:?} after 1..=3 returned {other:?}"),
        }
        assert_eq!(zxids(&store), [1, 2, 3], "a rejected append of {batch:?} stored something");
        assert_bounds(&store, Some(1), Some(3), "after a rejected append");
    }

    flush(&mut store);
    let store = h.reopen(store);
    assert_eq!(zxids(&store), [1, 2, 3], "rejected appends appeared after reopen");
}

pub fn flushed_entries_survive_reopen<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 1..=5);
    flush(&mut store);
    append(&mut store, 6..=8);
    flush(&mut store);

    let mut store = h.reopen(store);
    assert_eq!(all(&store), entries(1..=8), "flushed entries after reopen");
    assert_bounds(&store, Some(1), Some(8), "after reopen");
    assert_eq!(store.recovered_truncation(), 0, "clean reopen reports a truncation");

    append(&mut store, [9]);
    flush(&mut store);
    let store = h.reopen(store);
    assert_eq!(all(&store), entries(1..=9), "entries appended after a reopen");
}

pub fn unflushed_loss_is_a_suffix<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 1..=5);
    flush(&mut store);
    append(&mut store, 6..=7);
    append(&mut store, 8..=9);

    // Whether unflushed entries survive is up to the store; what survives must be
    // every flushed entry plus a prefix of the rest.
    let store = h.reopen(store);
    let survivors = zxids(&store);
    let expected: Vec<u64> = (1..=survivors.len() as u64).collect();
    assert!(survivors.len() >= 5, "flushed entries lost: {survivors:?}");
    assert_eq!(survivors, expected, "reopen kept a non-prefix of the appends");
    assert_eq!(all(&store), entries(expected), "surviving entries changed");
    assert_eq!(store.last_zxid(), survivors.last().copied(), "last_zxid after reopen");
}

pub fn durable_operations_are_barriers<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 1..=2);
    store.set_meta(Meta { accepted_epoch: 1, current_epoch: 1 }).unwrap();
    append(&mut store, 3..=4);
    store.save_snapshot(snapshot(1)).unwrap();
    append(&mut store, 5..=6);
    store.truncate_after(5).unwrap();

    let store = h.reopen(store);
    assert_eq!(zxids(&store), [1, 2, 3, 4, 5], "entries before durable operations were lost");
}

pub fn truncate_after_then_append<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 1..=10);
    flush(&mut store);

    store.truncate_after(6).expect("truncate_after(6)");
    assert_eq!(all(&store), entries(1..=6), "log after truncate_after(6)");
    assert_bounds(&store, Some(1), Some(6), "after truncate_after(6)");

    store.truncate_after(100).expect("truncate_after past the end");
    assert_eq!(zxids(&store), [1, 2, 3, 4, 5, 6], "truncate_after past the end changed the log");

    let replacement = LogEntry { zxid: 7, data: Bytes::from_static(b"a new leader's txn") };
    store.append(std::slice::from_ref(&replacement)).expect("append after truncate");
    flush(&mut store);
    assert_bounds(&store, Some(1), Some(7), "after re-append");

    let store = h.reopen(store);
    let mut expected = entries(1..=6);
    expected.push(replacement);
    assert_eq!(all(&store), expected, "truncated and re-appended log after reopen");
}

pub fn truncate_everything<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 5..=9);
    flush(&mut store);
    store.truncate_after(4).expect("truncate_after below the first entry");
    assert_bounds(&store, None, None, "after truncating everything");
    assert!(all(&store).is_empty(), "entries left after truncating everything");

    // With the log empty, any zxid may come next.
    append(&mut store, [2, 3]);
    flush(&mut store);
    let store = h.reopen(store);
    assert_eq!(zxids(&store), [2, 3], "log after truncating everything and reopen");
    assert_bounds(&store, Some(2), Some(3), "after reopen");
}

pub fn snapshots_latest_and_reopen<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    store.save_snapshot(snapshot(5)).unwrap();
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(5)), "the only snapshot");
    store.save_snapshot(snapshot(10)).unwrap();
    store.save_snapshot(snapshot(7)).unwrap();
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(10)), "newest is by zxid");

    let replaced = Snapshot { zxid: 10, data: Bytes::from_static(b"retaken") };
    store.save_snapshot(replaced.clone()).unwrap();
    assert_eq!(store.latest_snapshot().unwrap(), Some(replaced.clone()), "same zxid replaces");

    let store = h.reopen(store);
    assert_eq!(store.latest_snapshot().unwrap(), Some(replaced), "snapshot after reopen");
}

/// A snapshot saved by the store's `snapshot_writer` on another thread while the
/// owner appends and flushes is durable without the owner's help, the newest,
/// and purges the log as one saved by `save_snapshot` does (a store without a
/// writer has nothing to check).
pub fn snapshots_written_from_another_thread<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    let Some(writer) = store.snapshot_writer() else { return };
    append(&mut store, 1..=10);
    flush(&mut store);
    // Big enough to be a file of its own in stores that keep large values apart.
    let big = Snapshot { zxid: 10, data: Bytes::from(vec![7u8; 256 * 1024]) };
    std::thread::scope(|scope| {
        let writing = scope.spawn(|| writer.write(big.clone()));
        for zxid in 11..=40 {
            append(&mut store, [zxid]);
            flush(&mut store);
        }
        writing.join().expect("the writer thread").expect("the snapshot is written");
    });
    // The writer may hold the store open (the sled store's handles do).
    drop(writer);
    let store = h.reopen(store);
    assert_eq!(store.latest_snapshot().unwrap(), Some(big.clone()), "durable on its own");
    assert_eq!(zxids(&store), (1..=40).collect::<Vec<_>>(), "the appends beside it");

    let mut store = store;
    let writer = store.snapshot_writer().expect("a writer after reopen");
    let newer = Snapshot { zxid: 20, data: Bytes::from(vec![8u8; 256 * 1024]) };
    writer.write(newer.clone()).unwrap();
    store.snapshot_written().unwrap();
    assert_eq!(store.latest_snapshot().unwrap(), Some(newer.clone()), "the newest");
    assert_eq!(store.purge(1).unwrap(), 20, "purge(1) deletes entries <= 20");
    assert_bounds(&store, Some(21), Some(40), "after the purge");
    drop(writer);
    let store = h.reopen(store);
    assert_eq!(store.latest_snapshot().unwrap(), Some(newer), "after reopen");
    assert_eq!(zxids(&store), (21..=40).collect::<Vec<_>>(), "purged log after reopen");
}

pub fn purge_keeps_newest_snapshots<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 1..=20);
    flush(&mut store);
    for zxid in [5, 10, 15] {
        store.save_snapshot(snapshot(zxid)).unwrap();
    }

    assert_eq!(store.purge(2).unwrap(), 10, "purge(2) must delete entries <= 10");
    assert_eq!(all(&store), entries(11..=20), "log after purge(2)");
    assert_bounds(&store, Some(11), Some(20), "after purge(2)");
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(15)), "newest after purge");
    assert_eq!(store.purge(2).unwrap(), 0, "a repeated purge(2) deleted entries");

    let mut store = h.reopen(store);
    assert_eq!(zxids(&store), (11..=20).collect::<Vec<_>>(), "purged log after reopen");
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(15)), "snapshot after reopen");

    // keep = 0 means 1: the newest snapshot is never deleted.
    assert_eq!(store.purge(0).unwrap(), 5, "purge(0) must act as purge(1)");
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(15)), "purge(0) kept a snapshot");
    assert_bounds(&store, Some(16), Some(20), "after purge(0)");
    append(&mut store, [21]);
    assert_bounds(&store, Some(16), Some(21), "append after purge");
}

/// A purge done in steps of at most 3 entries: every step leaves a contiguous
/// suffix, and the steps together do what one purge does.
pub fn purge_in_steps<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 1..=20);
    flush(&mut store);
    for zxid in [5, 10, 15] {
        store.save_snapshot(snapshot(zxid)).unwrap();
    }
    let mut deleted = 0;
    loop {
        let step = store.purge_step(2, 3).unwrap();
        assert!(step.deleted <= 3, "a step deleted {} entries", step.deleted);
        deleted += step.deleted;
        let left = zxids(&store);
        assert_eq!(left, (left[0]..=20).collect::<Vec<_>>(), "a step left a hole");
        if step.done {
            break;
        }
    }
    assert_eq!(deleted, 10, "the steps must delete entries <= 10");
    assert_bounds(&store, Some(11), Some(20), "after a stepped purge");
    let store = h.reopen(store);
    assert_eq!(zxids(&store), (11..=20).collect::<Vec<_>>(), "stepped purge after reopen");
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(15)), "newest after the steps");
}

pub fn purge_without_snapshots_keeps_log<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 1..=5);
    assert_eq!(store.purge(3).unwrap(), 0, "purge without snapshots deleted entries");
    let store = h.reopen(store);
    assert_eq!(zxids(&store), [1, 2, 3, 4, 5], "log after purge without snapshots");
}

pub fn purge_past_the_log_end<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    append(&mut store, 1..=3);
    store.save_snapshot(snapshot(8)).unwrap();
    assert_eq!(store.purge(1).unwrap(), 3, "a snapshot past the log end covers all of it");
    assert_bounds(&store, None, None, "after purging the whole log");
    append(&mut store, [9, 10]);
    flush(&mut store);
    let store = h.reopen(store);
    assert_eq!(zxids(&store), [9, 10], "log after purge and reopen");
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(8)), "snapshot after reopen");
}

/// `log_follows` by the rules written on it: nothing for a log appended from
/// nothing, the last entry a purge deleted (not the snapshot's zxid), the newest
/// snapshot for an append into an emptied log; kept by truncations and reopens.
pub fn log_follows_what_went_before<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    assert_eq!(store.log_follows(), None, "of an empty store");
    // Gaps between zxids, as across epochs: the snapshot at 7 is no entry's zxid.
    append(&mut store, [2, 4, 6]);
    append(&mut store, [8, 10]);
    assert_eq!(store.log_follows(), None, "a log appended from nothing");
    store.save_snapshot(snapshot(7)).unwrap();
    for last_deleted in [2, 4, 6] {
        let step = store.purge_step(1, 1).unwrap();
        assert_eq!(step.deleted, 1, "a purge step of one entry");
        assert_eq!(store.log_follows(), Some(last_deleted), "after purging {last_deleted}");
    }
    assert!(store.purge_step(1, 1).unwrap().done, "entries up to 7 are all purged");
    assert_eq!(store.log_follows(), Some(6), "the last entry deleted, not the snapshot's 7");

    let mut store = h.reopen(store);
    assert_eq!(store.log_follows(), Some(6), "after reopen");
    store.truncate_after(8).unwrap();
    assert_eq!(store.log_follows(), Some(6), "a truncation that keeps the first entry");

    store.save_snapshot(snapshot(12)).unwrap();
    assert_eq!(store.purge(1).unwrap(), 1, "the snapshot at 12 covers all of the log");
    assert_eq!(store.log_follows(), None, "of an emptied log");
    append(&mut store, [13, 14]);
    assert_eq!(store.log_follows(), Some(12), "an emptied log goes on from the snapshot");
    flush(&mut store);
    let mut store = h.reopen(store);
    assert_eq!(store.log_follows(), Some(12), "after reopen");

    store.truncate_after(0).unwrap();
    assert_eq!(store.log_follows(), None, "after truncating everything");
    append(&mut store, [3]);
    assert_eq!(store.log_follows(), None, "no snapshot below the first entry");
    flush(&mut store);
    let store = h.reopen(store);
    assert_eq!(store.log_follows(), None, "after reopen");
}

pub fn meta_round_trip<H: StoreHarness>(h: &mut H) {
    let mut store = h.open();
    store.set_meta(Meta { accepted_epoch: 3, current_epoch: 2 }).unwrap();
    let last = Meta { accepted_epoch: u32::MAX, current_epoch: 7 };
    store.set_meta(last).unwrap();
    assert_eq!(store.meta().unwrap(), last, "meta before reopen");
    let store = h.reopen(store);
    assert_eq!(store.meta().unwrap(), last, "meta after reopen");
}

pub fn large_entries<H: StoreHarness>(h: &mut H) {
    const MIB: usize = 1 << 20;
    let big = |zxid: u64, len: usize| LogEntry {
        zxid,
        data: Bytes::from((0..len).map(|i| (i as u64 ^ zxid) as u8).collect::<Vec<_>>()),
    };
    let batch = vec![entry(1), big(2, MIB + 1), entry(3), big(4, 3 * MIB)];
    let large_snapshot = Snapshot { zxid: 4, data: Bytes::from(vec![0x5A; 2 * MIB]) };

    let mut store = h.open();
    store.append(&batch).expect("append of large entries");
    flush(&mut store);
    store.save_snapshot(large_snapshot.clone()).expect("save of a large snapshot");

    let store = h.reopen(store);
    assert!(all(&store) == batch, "large entries differ after reopen");
    assert!(
        store.latest_snapshot().unwrap() == Some(large_snapshot),
        "large snapshot differs after reopen"
    );
}

pub fn many_entries_paged<H: StoreHarness>(h: &mut H) {
    const COUNT: u64 = 2_000;
    const PAGE: usize = 64;
    let mut store = h.open();
    // Epoch in the high half, as real zxids: big-endian order must hold across it.
    let zxid = |i: u64| ((1 + i / 700) << 32) | (i % 700);
    for chunk in (0..COUNT).collect::<Vec<_>>().chunks(100) {
        append(&mut store, chunk.iter().map(|&i| zxid(i)));
    }
    flush(&mut store);
    let store = h.reopen(store);

    let mut seen = Vec::new();
    let mut from = 0;
    loop {
        let page = store.read(from, PAGE).unwrap();
        assert!(page.len() <= PAGE, "read returned more than max");
        let Some(last) = page.last() else { break };
        from = last.zxid + 1;
        seen.extend(page);
    }
    assert_eq!(seen, entries((0..COUNT).map(zxid)), "paged read of many entries");
    assert_bounds(&store, Some(zxid(0)), Some(zxid(COUNT - 1)), "with many entries");
}

/// Entries 0x10..=0x2f appended one at a time (so each is a record of its own, of
/// one size) and flushed, snapshots at 0x14 and 0x20.
fn scrub_store<H: StoreHarness>(h: &mut H) -> H::Store {
    let mut store = h.open();
    for zxid in 0x10..=0x2f {
        append(&mut store, [zxid]);
    }
    flush(&mut store);
    store.save_snapshot(snapshot(0x14)).unwrap();
    store.save_snapshot(snapshot(0x20)).unwrap();
    store
}

/// Records in [`scrub_store`]: 32 entries and 2 snapshots.
const SCRUB_STORE_RECORDS: usize = 34;

pub fn scrub_of_a_clean_store<H: StoreHarness>(h: &mut H) {
    let store = h.open();
    let step = store.scrub_step(ScrubCursor::default(), usize::MAX).unwrap();
    assert_eq!(step, ScrubStep::default(), "scrub of an empty store");

    let store = scrub_store(h);
    let step = store.scrub_step(ScrubCursor::default(), usize::MAX).unwrap();
    assert_eq!((step.next, &step.damage[..]), (None, &[][..]), "one unbounded step: all clean");
    assert!(step.bytes > 0, "a step that verified records counted no bytes");

    let store = h.reopen(store);
    let again = store.scrub_step(ScrubCursor::default(), usize::MAX).unwrap();
    assert_eq!(again, step, "the same pass after reopen");
}

/// Steps stop once `bytes_max` is reached, never later than one record past it,
/// and together verify exactly what one unbounded step does.
pub fn scrub_steps_are_bounded_and_resume<H: StoreHarness>(h: &mut H) {
    let store = scrub_store(h);
    let whole = store.scrub_step(ScrubCursor::default(), usize::MAX).unwrap().bytes;

    let (singles, damage) = scrub_pass(&store, 1);
    assert!(damage.is_empty(), "damage in a clean store: {damage:?}");
    assert_eq!(singles.len(), SCRUB_STORE_RECORDS, "with bytes_max 1, one record per step");
    assert!(singles.iter().all(|&bytes| bytes > 0), "a step verified nothing: {singles:?}");
    assert_eq!(singles.iter().sum::<usize>(), whole, "steps of one record vs one pass");

    let record_max = *singles.iter().max().unwrap();
    let bytes_max = 3 * record_max;
    let (steps, damage) = scrub_pass(&store, bytes_max);
    assert!(damage.is_empty(), "damage in a clean store: {damage:?}");
    assert!(steps.len() > 1, "a bounded pass took one step");
    for (i, &bytes) in steps.iter().enumerate() {
        assert!(bytes < bytes_max + record_max, "step {i}: {bytes} bytes, limit {bytes_max}");
        if i + 1 < steps.len() {
            assert!(bytes >= bytes_max, "step {i} stopped at {bytes} bytes, before the limit");
        }
    }
    assert_eq!(steps.iter().sum::<usize>(), whole, "bounded steps vs one pass");
}

/// A purge and a truncation between steps change the records around the cursor:
/// that is not damage.
pub fn scrub_across_purge_and_truncation<H: StoreHarness>(h: &mut H) {
    let mut store = scrub_store(h);
    let mut cursor = ScrubCursor::default();
    let steps = |store: &H::Store, count: usize, cursor: &mut ScrubCursor| {
        for _ in 0..count {
            let step = store.scrub_step(*cursor, 1).unwrap();
            assert!(step.damage.is_empty(), "damage reported: {:?}", step.damage);
            *cursor = step.next.expect("the pass ended early");
        }
    };
    steps(&store, 5, &mut cursor);
    // Deletes 0x10..=0x20, including the records the cursor saw last.
    assert_eq!(store.purge(1).unwrap(), 17);
    steps(&store, 8, &mut cursor);
    // The cursor is past 0x28; the record it reaches next now follows 0x24.
    store.truncate_after(0x24).unwrap();
    append(&mut store, [0x2a]);
    let (_, damage) = scrub_to_the_end(&store, cursor, 1);
    assert!(damage.is_empty(), "damage reported: {damage:?}");
}
