use bytes::Bytes;

use crate::LogError;

/// One logged txn: its zxid and its encoded bytes (opaque to the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub zxid: u64,
    pub data: Bytes,
}

/// A snapshot of the state machine taken at `zxid` (every entry up to and including
/// `zxid` is reflected in `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub zxid: u64,
    pub data: Bytes,
}

/// Small durable facts of the consensus protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// The highest epoch this server has agreed to (ZAB's acceptedEpoch).
    pub accepted_epoch: u32,
    /// The epoch of the leader whose history this server has adopted (currentEpoch).
    pub current_epoch: u32,
}

/// The commit log and snapshot store.
///
/// # Contract (to ensure correctness)
/// - `append` takes entries with strictly increasing zxids, all greater than
///   `last_zxid()`; anything else is an error and stores nothing.
/// - Appended entries are visible to reads at once but are **durable only after
///   `flush` returns Ok**: a crash may lose any unflushed suffix, never a flushed
///   entry and never a middle entry (the log stays a prefix-closed sequence).
///   A caller acknowledges a txn only after the flush that covers it.
/// - `flush` is one durability barrier (one fsync-equivalent) for everything
///   appended before it: callers batch (group commit).
/// - Every record is checksummed. On open, a torn or corrupt tail is truncated
///   (with a logged warning) back to the last valid record, and reported by
///   `recovered_truncation`; a corrupt record is never returned as data.
/// - `truncate_after(z)` removes every entry with zxid > z (durable on return).
/// - `save_snapshot` is durable on return; `latest_snapshot` returns the newest
///   snapshot that passes its checksum. `purge` never deletes an entry that the
///   newest kept snapshot does not cover.
/// - `set_meta` is durable on return.
pub trait LogStore: Send {
    /// Appends entries (not yet durable; see `flush`).
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), LogError>;

    /// Makes every appended entry durable.
    fn flush(&mut self) -> Result<(), LogError>;

    /// Up to `max` entries with zxid >= `from`, in zxid order.
    fn read(&self, from: u64, max: usize) -> Result<Vec<LogEntry>, LogError>;

    /// zxid of the first entry still in the log, if any.
    fn first_zxid(&self) -> Option<u64>;

    /// zxid of the last entry appended, if any.
    fn last_zxid(&self) -> Option<u64>;

    /// Removes every entry with zxid > `zxid`. Durable on return.
    fn truncate_after(&mut self, zxid: u64) -> Result<(), LogError>;

    /// Stores a snapshot. Durable on return.
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError>;

    /// The newest snapshot that passes its checksum.
    fn latest_snapshot(&self) -> Result<Option<Snapshot>, LogError>;

    /// Keeps the newest `keep` snapshots, deletes older ones, and deletes every log
    /// entry with zxid <= the oldest kept snapshot's zxid (those are in it).
    /// Returns the number of entries deleted.
    fn purge(&mut self, keep: usize) -> Result<usize, LogError>;

    fn meta(&self) -> Result<Meta, LogError>;

    /// Durable on return.
    fn set_meta(&mut self, meta: Meta) -> Result<(), LogError>;

    /// If opening found and truncated a torn/corrupt tail: the number of records
    /// dropped. 0 otherwise.
    fn recovered_truncation(&self) -> usize;
}
