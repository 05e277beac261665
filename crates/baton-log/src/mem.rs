//! [`MemStore`]: the [`LogStore`] contract in memory, with a model of durability
//! so that simulations can crash it.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::CorruptReason;
use crate::scrub::{Damage, DamagedPart, ScrubCursor, ScrubPart, ScrubStep};
use crate::store::check_append_order;
use crate::{LogEntry, LogError, LogStore, Meta, PurgeStep, Snapshot};

/// What the scrub counts for an entry or snapshot besides its data: its key.
const KEY_BYTES: usize = 8;

/// An in-memory [`LogStore`] for tests and simulation.
///
/// It keeps the same contract as the sled store, including what survives a
/// crash: appended entries stay "unflushed" until `flush` (or any operation that
/// is durable on return), and [`MemStore::crash`] returns the store a restart
/// would find, i.e. only the durable state.
///
/// Damage comes only from fault injection ([`MemStore::corrupt_entry`],
/// [`MemStore::corrupt_snapshot`]), and behaves as in the sled store, each entry
/// being a record of its own: reads fail on a damaged entry, `latest_snapshot` and
/// `purge` pass over a damaged snapshot, `scrub_step` reports both, and a restart
/// ([`MemStore::crash`]) truncates the log from the first damaged entry, reported
/// by `recovered_truncation`.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    log: BTreeMap<u64, Stored>,
    /// zxid of the oldest entry not yet flushed; it and every later entry are
    /// lost by a crash. Appends are ordered, so the unflushed entries are always a
    /// suffix of `log`.
    unflushed_from: Option<u64>,
    snapshots: BTreeMap<u64, Stored>,
    /// What the first entry follows (see [`LogStore::log_follows`]); meaningless
    /// while the log is empty.
    follows: Option<u64>,
    meta: Meta,
    /// Fault injection: this many of the next flushes fail.
    flush_failures_pending: u32,
    /// Entries the restart that made this store dropped (see `crash`).
    recovered_truncation: usize,
}

/// An entry's or a snapshot's data, and whether fault injection damaged it. The
/// mark lives and dies with the value, as damage on disk would.
#[derive(Debug, Clone)]
struct Stored {
    data: Bytes,
    damaged: bool,
}

impl Stored {
    fn new(data: Bytes) -> Stored {
        Stored { data, damaged: false }
    }
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// The store a restart after a crash right now would find: flushed entries,
    /// saved snapshots and meta; every unflushed entry is lost.
    pub fn crash(&self) -> MemStore {
        self.crash_keeping(0)
    }

    /// Like [`MemStore::crash`], but the first `unflushed_kept` unflushed entries
    /// happened to reach the disk before the crash (the contract allows any
    /// prefix of them to survive). A simulation picks this from its seed.
    ///
    /// As the sled store's open does, the restart truncates the log from the first
    /// damaged entry and reports how many entries that dropped.
    pub fn crash_keeping(&self, unflushed_kept: usize) -> MemStore {
        let mut log = self.log.clone();
        if let Some(from) = self.unflushed_from {
            let lost_from = self.log.range(from..).nth(unflushed_kept).map(|(zxid, _)| *zxid);
            if let Some(lost_from) = lost_from {
                drop(log.split_off(&lost_from));
            }
        }
        let first_damaged = log.iter().find(|(_, stored)| stored.damaged).map(|(zxid, _)| *zxid);
        let recovered_truncation = first_damaged.map_or(0, |zxid| log.split_off(&zxid).len());
        MemStore {
            log,
            unflushed_from: None,
            snapshots: self.snapshots.clone(),
            follows: self.follows,
            meta: self.meta,
            flush_failures_pending: 0,
            recovered_truncation,
        }
    }

    /// Number of appended entries a crash would lose right now.
    pub fn unflushed_len(&self) -> usize {
        self.unflushed_from.map_or(0, |from| self.log.range(from..).count())
    }

    /// Fault injection: the next `count` calls to `flush` fail with
    /// [`LogError::Injected`] and make nothing durable.
    pub fn fail_next_flushes(&mut self, count: u32) {
        self.flush_failures_pending = count;
    }

    /// Fault injection: the entry `zxid` is damaged, as if its record rotted on
    /// disk: `read` fails with [`LogError::Corrupt`] when it reaches it, and
    /// `scrub_step` reports it. The damage lasts until the entry is truncated or
    /// purged, and survives `crash` (which then truncates the log from it).
    ///
    /// # Panics
    /// If the log holds no entry `zxid` (a mistake in the test).
    pub fn corrupt_entry(&mut self, zxid: u64) {
        let Some(entry) = self.log.get_mut(&zxid) else {
            panic!("corrupt_entry: no entry {zxid:#x} in the log");
        };
        entry.damaged = true;
    }

    /// Fault injection: the snapshot at `zxid` is damaged: `latest_snapshot` passes
    /// over it, `purge` counts it as not kept and deletes it, `scrub_step` reports
    /// it. Saving a snapshot at the same zxid replaces it with a good one.
    ///
    /// # Panics
    /// If there is no snapshot at `zxid` (a mistake in the test).
    pub fn corrupt_snapshot(&mut self, zxid: u64) {
        let Some(snapshot) = self.snapshots.get_mut(&zxid) else {
            panic!("corrupt_snapshot: no snapshot at {zxid:#x}");
        };
        snapshot.damaged = true;
    }

    /// Everything appended so far becomes durable (the effect of a barrier).
    fn make_durable(&mut self) {
        self.unflushed_from = None;
    }
}

impl LogStore for MemStore {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), LogError> {
        check_append_order(self.last_zxid(), entries)?;
        if let Some(first) = entries.first() {
            self.unflushed_from.get_or_insert(first.zxid);
            if self.log.is_empty() {
                let newest = self.snapshots.keys().next_back().copied();
                self.follows = newest.filter(|&zxid| zxid < first.zxid);
            }
        }
        for entry in entries {
            self.log.insert(entry.zxid, Stored::new(entry.data.clone()));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        if self.flush_failures_pending > 0 {
            self.flush_failures_pending -= 1;
            return Err(LogError::Injected("flush failure"));
        }
        self.make_durable();
        Ok(())
    }

    fn read(&self, from: u64, max: usize) -> Result<Vec<LogEntry>, LogError> {
        let mut entries = Vec::new();
        for (&zxid, stored) in self.log.range(from..).take(max) {
            if stored.damaged {
                let reason = CorruptReason::Injected;
                return Err(LogError::Corrupt { what: "log entry", zxid, reason });
            }
            entries.push(LogEntry { zxid, data: stored.data.clone() });
        }
        Ok(entries)
    }

    fn first_zxid(&self) -> Option<u64> {
        self.log.keys().next().copied()
    }

    fn last_zxid(&self) -> Option<u64> {
        self.log.keys().next_back().copied()
    }

    fn log_follows(&self) -> Option<u64> {
        if self.log.is_empty() { None } else { self.follows }
    }

    fn truncate_after(&mut self, zxid: u64) -> Result<(), LogError> {
        if let Some(after) = zxid.checked_add(1) {
            drop(self.log.split_off(&after));
        }
        self.make_durable();
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.snapshots.insert(snapshot.zxid, Stored::new(snapshot.data));
        self.make_durable();
        Ok(())
    }

    fn latest_snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        let mut valid = self.snapshots.iter().rev().filter(|(_, stored)| !stored.damaged);
        Ok(valid.next().map(|(&zxid, stored)| Snapshot { zxid, data: stored.data.clone() }))
    }

    fn purge_step(&mut self, keep: usize, entries_max: usize) -> Result<PurgeStep, LogError> {
        let keep = keep.max(1);
        let valid = self.snapshots.iter().rev().filter(|(_, stored)| !stored.damaged);
        let Some(oldest_kept) = valid.take(keep).last().map(|(&zxid, _)| zxid) else {
            // Only valid snapshots count as kept; damaged ones go.
            self.snapshots.clear();
            self.make_durable();
            return Ok(PurgeStep { deleted: 0, done: true });
        };
        let covered: Vec<u64> =
            self.log.range(..=oldest_kept).map(|(zxid, _)| *zxid).take(entries_max).collect();
        for zxid in &covered {
            self.log.remove(zxid);
        }
        if let Some(&last_deleted) = covered.last() {
            self.follows = Some(last_deleted);
        }
        if covered.len() == entries_max {
            return Ok(PurgeStep { deleted: covered.len(), done: false });
        }
        self.snapshots = self.snapshots.split_off(&oldest_kept);
        self.snapshots.retain(|_, stored| !stored.damaged);
        self.make_durable();
        Ok(PurgeStep { deleted: covered.len(), done: true })
    }

    fn meta(&self) -> Result<Meta, LogError> {
        Ok(self.meta)
    }

    fn set_meta(&mut self, meta: Meta) -> Result<(), LogError> {
        self.meta = meta;
        self.make_durable();
        Ok(())
    }

    fn recovered_truncation(&self) -> usize {
        self.recovered_truncation
    }

    fn scrub_step(&self, from: ScrubCursor, bytes_max: usize) -> Result<ScrubStep, LogError> {
        let mut step = ScrubStep::default();
        let mut cursor = from;
        if cursor.part == ScrubPart::Log {
            let mut entries = self.log.range(cursor.from..).peekable();
            while let Some((&zxid, stored)) = entries.next() {
                step.bytes += KEY_BYTES + stored.data.len();
                if stored.damaged {
                    let what = DamagedPart::LogRecord { first_zxid: zxid };
                    step.damage.push(Damage { what, reason: CorruptReason::Injected });
                }
                let resume = zxid.checked_add(1).filter(|_| entries.peek().is_some());
                if step.bytes >= bytes_max {
                    step.next = match resume {
                        Some(from) => Some(ScrubCursor::log(from, cursor.link)),
                        None => self.snapshots.keys().next().map(|_| ScrubCursor::SNAPSHOTS),
                    };
                    return Ok(step);
                }
                if resume.is_none() {
                    break;
                }
            }
            cursor = ScrubCursor::SNAPSHOTS;
        }
        let mut snapshots = self.snapshots.range(cursor.from..).peekable();
        while let Some((&zxid, stored)) = snapshots.next() {
            step.bytes += KEY_BYTES + stored.data.len();
            if stored.damaged {
                let what = DamagedPart::Snapshot { zxid };
                step.damage.push(Damage { what, reason: CorruptReason::Injected });
            }
            let resume = zxid.checked_add(1).filter(|_| snapshots.peek().is_some());
            if step.bytes >= bytes_max || resume.is_none() {
                step.next = resume.map(|from| ScrubCursor { from, ..ScrubCursor::SNAPSHOTS });
                return Ok(step);
            }
        }
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(zxid: u64) -> LogEntry {
        LogEntry { zxid, data: Bytes::from(format!("txn {zxid}")) }
    }

    fn zxids(store: &MemStore) -> Vec<u64> {
        store.read(0, usize::MAX).unwrap().iter().map(|e| e.zxid).collect()
    }

    #[test]
    fn crash_keeps_only_flushed_entries() {
        let mut store = MemStore::new();
        store.append(&[entry(1), entry(2)]).unwrap();
        store.flush().unwrap();
        store.append(&[entry(3), entry(4), entry(5)]).unwrap();
        assert_eq!(store.unflushed_len(), 3);

        assert_eq!(zxids(&store.crash()), [1, 2]);
        assert_eq!(zxids(&store.crash_keeping(2)), [1, 2, 3, 4]);
        assert_eq!(zxids(&store.crash_keeping(9)), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn injected_flush_failure_makes_nothing_durable() {
        let mut store = MemStore::new();
        store.append(&[entry(1)]).unwrap();
        store.fail_next_flushes(1);
        assert!(matches!(store.flush(), Err(LogError::Injected(_))));
        assert_eq!(zxids(&store.crash()), Vec::<u64>::new());
        store.flush().unwrap();
        assert_eq!(zxids(&store.crash()), [1]);
    }

    fn injected(zxid: u64) -> impl Fn(&Result<Vec<LogEntry>, LogError>) -> bool {
        move |read| {
            matches!(read, Err(LogError::Corrupt { zxid: z, reason: CorruptReason::Injected, .. })
                if *z == zxid)
        }
    }

    fn scrub(store: &MemStore) -> Vec<Damage> {
        let step = store.scrub_step(ScrubCursor::default(), usize::MAX).unwrap();
        assert_eq!(step.next, None, "one unbounded step is a whole pass");
        step.damage
    }

    fn damage(what: DamagedPart) -> Damage {
        Damage { what, reason: CorruptReason::Injected }
    }

    fn store_of(zxids: std::ops::RangeInclusive<u64>) -> MemStore {
        let mut store = MemStore::new();
        store.append(&zxids.map(entry).collect::<Vec<_>>()).unwrap();
        store.flush().unwrap();
        store
    }

    #[test]
    fn a_corrupt_entry_fails_the_reads_that_reach_it() {
        let mut store = store_of(1..=5);
        store.corrupt_entry(3);
        assert_eq!(store.read(1, 2).unwrap(), [entry(1), entry(2)], "stops short of it");
        assert_eq!(store.read(4, 9).unwrap(), [entry(4), entry(5)], "starts after it");
        assert!(injected(3)(&store.read(1, 3)));
        assert!(injected(3)(&store.read(3, 1)));
        let log_record = |first_zxid| damage(DamagedPart::LogRecord { first_zxid });
        assert_eq!(scrub(&store), [log_record(3)]);
        store.corrupt_entry(5);
        assert_eq!(scrub(&store), [log_record(3), log_record(5)]);
    }

    #[test]
    fn a_restart_truncates_the_log_from_the_first_damaged_entry() {
        let mut store = store_of(1..=5);
        store.corrupt_entry(4);
        store.corrupt_entry(2);
        let restarted = store.crash();
        assert_eq!(restarted.recovered_truncation(), 4, "entries 2..=5");
        assert_eq!(zxids(&restarted), [1]);
        assert_eq!(scrub(&restarted), []);
        assert_eq!(restarted.crash().recovered_truncation(), 0, "nothing left to cut");
    }

    #[test]
    fn a_corrupt_snapshot_is_passed_over_and_purged() {
        let mut store = store_of(1..=10);
        for zxid in [4, 8] {
            store.save_snapshot(Snapshot { zxid, data: Bytes::from("tree") }).unwrap();
        }
        store.corrupt_snapshot(8);
        assert_eq!(store.latest_snapshot().unwrap().map(|s| s.zxid), Some(4));
        assert_eq!(scrub(&store), [damage(DamagedPart::Snapshot { zxid: 8 })]);
        // Only valid snapshots count as kept: 4 is kept, 8 deleted.
        assert_eq!(store.purge(1).unwrap(), 4);
        assert_eq!(store.latest_snapshot().unwrap().map(|s| s.zxid), Some(4));
        assert_eq!(scrub(&store), []);

        store.corrupt_snapshot(4);
        assert_eq!(store.latest_snapshot().unwrap(), None);
        assert_eq!(store.purge(1).unwrap(), 0, "no valid snapshot: the log stays");
        assert_eq!(scrub(&store), [], "the damaged snapshot was deleted");
        assert_eq!(zxids(&store), (5..=10).collect::<Vec<_>>());
    }

    #[test]
    fn damage_goes_with_its_entry_or_snapshot() {
        let mut store = store_of(1..=5);
        store.corrupt_entry(5);
        store.truncate_after(4).unwrap();
        store.append(&[entry(5)]).unwrap();
        assert_eq!(store.read(5, 1).unwrap(), [entry(5)], "a new entry 5 is whole");

        store.corrupt_entry(2);
        store.save_snapshot(Snapshot { zxid: 3, data: Bytes::from("tree") }).unwrap();
        store.corrupt_snapshot(3);
        store.save_snapshot(Snapshot { zxid: 3, data: Bytes::from("again") }).unwrap();
        assert_eq!(store.purge(1).unwrap(), 3, "the damaged entry 2 is in the snapshot");
        assert_eq!(scrub(&store), []);
    }

    #[test]
    fn durable_operations_are_barriers() {
        let mut store = MemStore::new();
        store.append(&[entry(1)]).unwrap();
        store.set_meta(Meta { accepted_epoch: 1, current_epoch: 1 }).unwrap();
        assert_eq!(zxids(&store.crash()), [1]);
    }
}
