//! [`MemStore`]: the [`LogStore`] contract in memory, with a model of durability
//! so that simulations can crash it.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::store::check_append_order;
use crate::{LogEntry, LogError, LogStore, Meta, PurgeStep, Snapshot};

/// An in-memory [`LogStore`] for tests and simulation.
///
/// It keeps the same contract as the sled store, including what survives a
/// crash: appended entries stay "unflushed" until `flush` (or any operation that
/// is durable on return), and [`MemStore::crash`] returns the store a restart
/// would find, i.e. only the durable state. Records are never corrupted in memory,
/// so `recovered_truncation` is always 0.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    log: BTreeMap<u64, Bytes>,
    /// zxid of the oldest entry not yet flushed; it and every later entry are
    /// lost by a crash. Appends are ordered, so the unflushed entries are always a
    /// suffix of `log`.
    unflushed_from: Option<u64>,
    snapshots: BTreeMap<u64, Bytes>,
    /// What the first entry follows (see [`LogStore::log_follows`]); meaningless
    /// while the log is empty.
    follows: Option<u64>,
    meta: Meta,
    /// Fault injection: this many of the next flushes fail.
    flush_failures_pending: u32,
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
    pub fn crash_keeping(&self, unflushed_kept: usize) -> MemStore {
        let mut log = self.log.clone();
        if let Some(from) = self.unflushed_from {
            let lost_from = self.log.range(from..).nth(unflushed_kept).map(|(zxid, _)| *zxid);
            if let Some(lost_from) = lost_from {
                drop(log.split_off(&lost_from));
            }
        }
        MemStore {
            log,
            unflushed_from: None,
            snapshots: self.snapshots.clone(),
            follows: self.follows,
            meta: self.meta,
            flush_failures_pending: 0,
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
            self.log.insert(entry.zxid, entry.data.clone());
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
        let entries = self.log.range(from..).take(max);
        Ok(entries.map(|(zxid, data)| LogEntry { zxid: *zxid, data: data.clone() }).collect())
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
        self.snapshots.insert(snapshot.zxid, snapshot.data);
        self.make_durable();
        Ok(())
    }

    fn latest_snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        let newest = self.snapshots.iter().next_back();
        Ok(newest.map(|(zxid, data)| Snapshot { zxid: *zxid, data: data.clone() }))
    }

    fn purge_step(&mut self, keep: usize, entries_max: usize) -> Result<PurgeStep, LogError> {
        let keep = keep.max(1);
        let Some(&oldest_kept) = self.snapshots.keys().rev().take(keep).last() else {
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
        0
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

    #[test]
    fn durable_operations_are_barriers() {
        let mut store = MemStore::new();
        store.append(&[entry(1)]).unwrap();
        store.set_meta(Meta { accepted_epoch: 1, current_epoch: 1 }).unwrap();
        assert_eq!(zxids(&store.crash()), [1]);
    }
}
