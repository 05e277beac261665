use bytes::Bytes;

use crate::LogError;
use crate::scrub::{ScrubCursor, ScrubStep};

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
///   `last_zxid()` (any zxid when the log is empty); anything else is
///   [`LogError::OutOfOrder`] and stores nothing, not even a valid prefix of the
///   batch.
/// - Appended entries are visible to reads at once but are **durable only after
///   `flush` returns Ok**: a crash may lose any unflushed suffix, never a flushed
///   entry and never a middle entry (the log stays a prefix-closed sequence).
///   A caller acknowledges a txn only after the flush that covers it.
/// - `flush` is one durability barrier (one fsync-equivalent) for everything
///   appended before it: callers batch (group commit). If `flush` fails, the
///   durability of the unflushed entries is unknown; the caller must not
///   acknowledge them.
/// - The operations that are durable on return (`truncate_after`,
///   `save_snapshot`, `purge`, `set_meta`) are also barriers: every entry appended
///   before them is durable when they return Ok.
/// - Every record is checksummed (and, on disk, names its predecessor). On open, a
///   torn or corrupt tail — from the first record that fails its check or whose
///   predecessor is missing — is truncated (with a logged warning) back to the
///   last valid record, and reported by `recovered_truncation`; a corrupt record
///   is never returned as data (`read` returns [`LogError::Corrupt`] instead).
///   Damage a store cannot repair that way makes `open` fail, never panic.
/// - `first_zxid` / `last_zxid` describe the entries currently in the log; both
///   are `None` when it is empty, even if a snapshot exists (a caller that needs
///   "the last zxid I have" combines them with `latest_snapshot`). They are cheap
///   (cached), never a scan.
/// - `log_follows` says what the log goes on from (the entry its first record names
///   as its predecessor), so that a log that no valid snapshot connects to is seen:
///   the rules are on the method. It is durable with the log and cheap (cached).
/// - `truncate_after(z)` removes every entry with zxid > z (durable on return).
/// - `save_snapshot` is durable on return (a snapshot with the zxid of an existing
///   one replaces it); `latest_snapshot` returns the newest snapshot that passes
///   its checksum. `purge` never deletes an entry that the newest kept snapshot
///   does not cover.
/// - `set_meta` is durable on return; `meta` of a store that never had one set
///   is `Meta::default()`.
/// - `scrub_step` verifies what is stored, a bounded amount per call, and reports
///   damage rather than failing on it. It only reads, and the store may change
///   between steps without a change being reported as damage.
pub trait LogStore: Send {
    /// Appends entries (not yet durable; see `flush`).
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), LogError>;

    /// Makes every appended entry durable.
    fn flush(&mut self) -> Result<(), LogError>;

    /// For a store that makes appends durable in a journal of its own (the sled
    /// store): how far the journal said the log reached when the store was opened,
    /// after writing back into the log what it could. A log that ends before it lost
    /// flushed entries. `None`: no journal; `u64::MAX`: unknown (the journal is
    /// damaged: a record fails its check with valid ones after it).
    fn journal_end(&self) -> Option<u64> {
        None
    }

    /// The owner took a leader's history in place of what this store lost: the
    /// journal stops claiming the end it had on open.
    fn repaired(&mut self) -> Result<(), LogError> {
        Ok(())
    }

    /// Up to `max` entries with zxid >= `from`, in zxid order. A record that fails
    /// its checksum is an error, never data.
    fn read(&self, from: u64, max: usize) -> Result<Vec<LogEntry>, LogError>;

    /// zxid of the first entry still in the log, if any.
    fn first_zxid(&self) -> Option<u64>;

    /// zxid of the last entry in the log (appended and not truncated), if any.
    fn last_zxid(&self) -> Option<u64>;

    /// The zxid of the entry the log goes on from: the one its first record names
    /// as its predecessor. Replaying the log needs a state that reaches it (a
    /// snapshot at or after it). `None` when the log is empty, or when its first
    /// record names nothing, i.e. the log starts from the empty history.
    ///
    /// Exactly: entries appended to a non-empty log follow its last entry; entries
    /// appended to an empty log follow the newest snapshot (valid or not) if its
    /// zxid is below the first of them, else nothing; after a purge deleted entries
    /// from the front, the log follows the last entry deleted (which may be below
    /// the snapshot's zxid when the log has gaps); a truncation that keeps the first
    /// entry leaves it as it was. It survives a reopen (the sled store keeps it in
    /// the first record's link). Logs written before this rule may name nothing
    /// after an append into an empty log.
    ///
    /// Use: when the newest valid snapshot is below `log_follows` (or there is
    /// none), the log does not connect to any state this member has, e.g. the
    /// newest snapshot rotted after the older ones were purged.
    fn log_follows(&self) -> Option<u64>;

    /// Removes every entry with zxid > `zxid`. Durable on return.
    fn truncate_after(&mut self, zxid: u64) -> Result<(), LogError>;

    /// Stores a snapshot. Durable on return.
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError>;

    /// The newest snapshot that passes its checksum.
    fn latest_snapshot(&self) -> Result<Option<Snapshot>, LogError>;

    /// Keeps the newest `keep` snapshots, deletes older ones, and deletes every log
    /// entry with zxid <= the oldest kept snapshot's zxid (those are in it).
    /// Returns the number of entries deleted. Durable on return.
    ///
    /// Only snapshots that pass their checksum count as kept; corrupt ones are
    /// deleted. `keep` is at least 1: with no snapshot left, the purged prefix of
    /// the log would be unrecoverable. Without any valid snapshot nothing is
    /// deleted from the log.
    ///
    /// A corrupt log record does not make the purge fail. It is deleted like the
    /// others when the snapshot covers every entry it can hold (bounded by the next
    /// record's first zxid, or the entry that record names as its predecessor, or
    /// the log's last zxid when it is the last record). One that may hold later
    /// entries is left in place, and the purge stops before it: reads of it fail,
    /// and the next open truncates the log from it.
    fn purge(&mut self, keep: usize) -> Result<usize, LogError> {
        let mut deleted = 0;
        loop {
            let step = self.purge_step(keep, usize::MAX)?;
            deleted += step.deleted;
            if step.done {
                return Ok(deleted);
            }
        }
    }

    /// One step of [`LogStore::purge`]: deletes at most `entries_max` of the entries
    /// it would delete, oldest first, so that the log left is always a contiguous
    /// suffix and a caller can serve other work between steps. The step that
    /// finds nothing more to delete also deletes the old snapshots and is durable
    /// on return (`done`). A corrupt record counts as one entry: how many it held
    /// cannot be read.
    fn purge_step(&mut self, keep: usize, entries_max: usize) -> Result<PurgeStep, LogError>;

    /// The last meta set (`Meta::default()` if none).
    fn meta(&self) -> Result<Meta, LogError>;

    /// Replaces the meta. Durable on return.
    fn set_meta(&mut self, meta: Meta) -> Result<(), LogError>;

    /// If opening found and truncated a torn/corrupt tail: the number of records
    /// dropped. 0 otherwise.
    fn recovered_truncation(&self) -> usize;

    /// One step of a background scrub, which finds damage that arrived after the
    /// store was opened before anything needs the damaged record.
    ///
    /// Verifies stored records from `from` on: the log's records in zxid order,
    /// each checked as open-time recovery checks it (its checksum, and its link to
    /// the record before it; the first record's link is not checked, since its
    /// predecessor may have been purged), then every snapshot's checksum. It stops
    /// once `bytes_max` stored bytes were verified, after the record that reached
    /// the limit, so every step verifies at least one record (if any is left) and
    /// none verifies more than `bytes_max` plus one record. `ScrubCursor::default()`
    /// starts a pass; `next` is `None` when the pass is done.
    ///
    /// Damage is reported in the step, never returned as an error (an error is an
    /// I/O failure), and the walk goes on past it: a damaged record does not hide
    /// the state of the records after it. After a damaged log record, the next
    /// record's link can only be checked against the damaged record's range (it must
    /// name an entry at or after its first zxid); every entry up to the next good
    /// record is suspect anyway ([`crate::DamagedPart::LogRecord`]). On a log that
    /// does not change during the pass, the first log damage reported is where
    /// open-time recovery would truncate.
    ///
    /// It only reads, so the storage thread can run it between other operations.
    /// The store may change between steps: the walk goes on from the same key,
    /// records added or removed behind it are seen by the next pass, and a record
    /// whose neighbour changed (by a purge or truncation) is not reported.
    fn scrub_step(&self, from: ScrubCursor, bytes_max: usize) -> Result<ScrubStep, LogError>;

    /// The same scrub as a handle that runs on another thread while this store is
    /// used (`None` if the store cannot be read from elsewhere: then scrub through
    /// `scrub_step`).
    fn scrubber(&self) -> Option<std::sync::Arc<dyn crate::Scrubber>> {
        None
    }

    /// A handle that saves snapshots into this store from another thread while
    /// the store goes on with appends (`None`: save through `save_snapshot`). A
    /// snapshot it wrote is durable and `latest_snapshot` may return it; the owner
    /// then calls [`LogStore::snapshot_written`] before purging by it. The handle
    /// may keep the store's files open (and locked) until it is dropped too.
    fn snapshot_writer(&self) -> Option<std::sync::Arc<dyn SnapshotWriter>> {
        None
    }

    /// Takes note of a snapshot the `snapshot_writer` wrote: what a purge keeps is
    /// decided anew, and the store is checkpointed as after `save_snapshot`.
    /// Durable on return.
    fn snapshot_written(&mut self) -> Result<(), LogError> {
        Ok(())
    }
}

/// Saves snapshots from a thread other than the store owner's: a snapshot of a
/// million znodes is a hundred megabytes, and its write and sync would hold up
/// every commit queued behind it on the owner's thread.
pub trait SnapshotWriter: Send + Sync + std::fmt::Debug {
    /// Stores `snapshot`, durably, as `save_snapshot` would. By value: a store
    /// that copies it into its own form can free it before storing the copy.
    fn write(&self, snapshot: Snapshot) -> Result<(), LogError>;
}

/// Checks a batch against the append contract: strictly increasing zxids, all
/// greater than `last`. Shared by every store so they reject exactly alike.
pub(crate) fn check_append_order(last: Option<u64>, entries: &[LogEntry]) -> Result<(), LogError> {
    let mut previous = last;
    for entry in entries {
        match previous {
            Some(last) if entry.zxid <= last => {
                return Err(LogError::OutOfOrder { zxid: entry.zxid, last });
            }
            _ => {}
        }
        previous = Some(entry.zxid);
    }
    Ok(())
}

/// What one [`LogStore::purge_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeStep {
    /// Log entries deleted by this step.
    pub deleted: usize,
    /// The purge is complete (and durable).
    pub done: bool,
}
