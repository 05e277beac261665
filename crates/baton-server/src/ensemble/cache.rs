//! [`LogCache`]: the durable log tail the ensemble driver keeps in memory, which
//! the ZAB node reads through [`LogView`] (the store itself belongs to the storage
//! thread).
//!
//! It holds every durable entry after `base`: at start, everything the store holds
//! after the newest snapshot; then each batch once it is flushed. It is trimmed to
//! the newest `keep` applied entries and at most `keep_bytes` bytes; a follower
//! behind that gets a snapshot.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    time::{Duration, Instant},
};

use baton_quorum::{
    Zxid,
    zab::{Entry, LogView, ViewError},
};
use bytes::Bytes;

/// Bytes of applied entries the cache keeps at most (besides `--diff-entries-max`):
/// a follower further behind than this is sent a snapshot, which is cheaper than
/// keeping hundreds of megabytes of large txns (multis) in memory for it.
pub(crate) const LOG_CACHE_BYTES_MAX: usize = 32 << 20;
/// How long a snapshot encoded for a SNAP waits for the leader to take it (it asks
/// every node tick while a follower waits) before it is dropped.
pub(crate) const PREPARED_SNAPSHOT_TTL: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct LogCache {
    /// Entries at or below this are not here (the snapshot, or trimmed).
    base: Zxid,
    entries: VecDeque<Entry>,
    /// Bytes of data in `entries`.
    bytes: usize,
    /// A snapshot encoded off the driver's thread for a SNAP, until the node takes it
    /// (or [`PREPARED_SNAPSHOT_TTL`] passes: it may be hundreds of MB).
    prepared: RefCell<Option<(Zxid, Bytes, Instant)>>,
    /// The node asked for a snapshot that was not prepared: the driver encodes one.
    snapshot_wanted: Cell<bool>,
}

impl LogCache {
    pub(crate) fn new(base: Zxid, entries: Vec<Entry>) -> LogCache {
        assert!(entries.windows(2).all(|w| w[0].zxid < w[1].zxid), "log order");
        assert!(entries.first().is_none_or(|e| e.zxid > base), "entries follow the base");
        let bytes = entries.iter().map(|e| e.data.len()).sum();
        LogCache {
            base,
            entries: entries.into(),
            bytes,
            prepared: RefCell::new(None),
            snapshot_wanted: Cell::new(false),
        }
    }

    /// Entries made durable, after every cached one.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        for entry in entries {
            assert!(entry.zxid > self.last_logged(), "appended in zxid order");
            self.bytes += entry.data.len();
            self.entries.push_back(entry.clone());
        }
    }

    /// A TRUNC: drops every entry after `zxid`.
    pub(crate) fn truncate_after(&mut self, zxid: Zxid) {
        while self.entries.back().is_some_and(|e| e.zxid > zxid) {
            if let Some(entry) = self.entries.pop_back() {
                self.bytes -= entry.data.len();
            }
        }
    }

    /// A SNAP installed at `zxid`: nothing before it is kept.
    pub(crate) fn reset(&mut self, zxid: Zxid) {
        self.entries.clear();
        self.bytes = 0;
        self.base = zxid;
    }

    /// Entries at or below this are not held.
    pub(crate) fn base(&self) -> Zxid {
        self.base
    }

    /// The held entries with zxid >= `from`, in order.
    pub(crate) fn entries_from(&self, from: Zxid) -> impl Iterator<Item = &Entry> {
        let start = self.entries.partition_point(|e| e.zxid < from);
        self.entries.iter().skip(start)
    }

    /// True once if the node asked for a snapshot since the last call.
    pub(crate) fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.replace(false)
    }

    /// A snapshot encoded for a SNAP, at `zxid`: it answers what was asked so far.
    pub(crate) fn set_prepared_snapshot(&self, zxid: Zxid, data: Bytes, now: Instant) {
        self.snapshot_wanted.set(false);
        self.prepared.replace(Some((zxid, data, now)));
    }

    /// Drops a prepared snapshot nobody took within [`PREPARED_SNAPSHOT_TTL`].
    pub(crate) fn expire_prepared_snapshot(&self, now: Instant) {
        let stale = self
            .prepared
            .borrow()
            .as_ref()
            .is_some_and(|(_, _, at)| now.duration_since(*at) > PREPARED_SNAPSHOT_TTL);
        if stale {
            self.prepared.replace(None);
        }
    }

    /// Keeps at most `keep` entries at or below `applied`, and drops more of those
    /// while the cache holds over `keep_bytes` (never one that is not applied yet:
    /// the node may still have to hand it out).
    pub(crate) fn trim(&mut self, applied: Zxid, keep: usize, keep_bytes: usize) {
        let mut applied_count = self.entries.partition_point(|e| e.zxid <= applied);
        while applied_count > 0 && (applied_count > keep || self.bytes > keep_bytes) {
            if let Some(entry) = self.entries.pop_front() {
                self.bytes -= entry.data.len();
                self.base = entry.zxid;
            }
            applied_count -= 1;
        }
    }
}

impl LogView for LogCache {
    fn last_logged(&self) -> Zxid {
        self.entries.back().map_or(self.base, |e| e.zxid)
    }

    fn entries_after(&self, after: Zxid, max: usize) -> Result<Vec<Entry>, ViewError> {
        if after < self.base {
            return Err(ViewError::Purged { after });
        }
        let start = self.entries.partition_point(|e| e.zxid <= after);
        Ok(self.entries.iter().skip(start).take(max).cloned().collect())
    }

    fn last_at_or_before(&self, zxid: Zxid) -> Result<Zxid, ViewError> {
        if zxid < self.base {
            return Err(ViewError::Purged { after: zxid });
        }
        let end = self.entries.partition_point(|e| e.zxid <= zxid);
        Ok(if end == 0 { self.base } else { self.entries[end - 1].zxid })
    }

    /// The prepared snapshot, once (it can be hundreds of MB), if the entries after
    /// it are still here; else "unavailable", and the driver encodes a new one on a
    /// blocking thread (encoding 1M znodes takes most of a second).
    fn snapshot(&self) -> Result<(Zxid, Bytes), ViewError> {
        match self.prepared.take() {
            Some((zxid, data, _)) if zxid >= self.base => Ok((zxid, data)),
            _ => {
                self.snapshot_wanted.set(true);
                Err(ViewError::Unavailable("a snapshot for a SNAP is being encoded"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(counter: u32) -> Entry {
        Entry { zxid: Zxid::new(1, counter), data: Bytes::from_static(b"txn") }
    }

    #[test]
    fn a_snapshot_for_a_snap_is_prepared_off_the_thread_and_taken_once() {
        let mut cache = LogCache::new(Zxid::ZERO, vec![entry(1), entry(2), entry(3)]);
        let start = Instant::now();
        assert!(matches!(cache.snapshot(), Err(ViewError::Unavailable(_))));
        assert!(cache.take_snapshot_wanted(), "the driver is asked to encode one");
        assert!(!cache.take_snapshot_wanted(), "once");
        cache.set_prepared_snapshot(Zxid::new(1, 2), Bytes::from_static(b"tree"), start);
        assert_eq!(cache.snapshot().unwrap(), (Zxid::new(1, 2), Bytes::from_static(b"tree")));
        assert!(!cache.take_snapshot_wanted());
        assert!(matches!(cache.snapshot(), Err(ViewError::Unavailable(_))), "taken once");
        assert!(cache.take_snapshot_wanted());

        // A snapshot whose following entries are trimmed is no use: a new one is asked.
        cache.set_prepared_snapshot(Zxid::new(1, 1), Bytes::from_static(b"old"), start);
        cache.trim(Zxid::new(1, 3), 1, usize::MAX);
        assert!(matches!(cache.snapshot(), Err(ViewError::Unavailable(_))));
        assert!(cache.take_snapshot_wanted());

        // One nobody takes is dropped after its time.
        cache.set_prepared_snapshot(Zxid::new(1, 3), Bytes::from_static(b"late"), start);
        cache.expire_prepared_snapshot(start + PREPARED_SNAPSHOT_TTL / 2);
        cache.expire_prepared_snapshot(start + PREPARED_SNAPSHOT_TTL * 2);
        assert!(matches!(cache.snapshot(), Err(ViewError::Unavailable(_))), "expired");
    }
}
