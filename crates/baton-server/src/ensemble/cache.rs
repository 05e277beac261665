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

#[derive(Debug)]
pub(crate) struct LogCache {
    /// Entries at or below this are not here (the snapshot, or trimmed).
    base: Zxid,
    entries: VecDeque<Entry>,
    /// Bytes of data in `entries`.
    bytes: usize,
    /// A snapshot encoded off the driver's thread for a SNAP, until the node takes it.
    prepared: RefCell<Option<(Zxid, Bytes)>>,
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

    /// True once if the node asked for a snapshot since the last call.
    pub(crate) fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.replace(false)
    }

    /// A snapshot encoded for a SNAP, at `zxid`.
    pub(crate) fn set_prepared_snapshot(&self, zxid: Zxid, data: Bytes) {
        self.prepared.replace(Some((zxid, data)));
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
            Some((zxid, data)) if zxid >= self.base => Ok((zxid, data)),
            _ => {
                self.snapshot_wanted.set(true);
                Err(ViewError::Unavailable("a snapshot for a SNAP is being encoded"))
            }
        }
    }
}
