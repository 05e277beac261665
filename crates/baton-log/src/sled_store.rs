//! [`SledStore`]: the [`LogStore`] contract on sled 0.34.
//!
//! # Durability: what sled 0.34.7 does, and what we add
//!
//! Read from sled 0.34.7's source. A sled directory holds:
//! - `db`: the data file, a log of 512 KiB segments that holds every tree. `Db::flush`
//!   (= `Tree::flush`) seals the in-memory IO buffer and writes it with `pwrite`, then
//!   on Linux calls `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on that byte
//!   range — not fsync/fdatasync. That starts and waits for writeback of the pages
//!   only: it does not flush the drive's volatile write cache, and does not persist
//!   the file's size when the write extended the file, so a power loss can lose an
//!   "flushed" append (sled issues #1351, #1452). Only other platforms get
//!   `sync_all` there. sled's background flusher (every 500 ms) and its `Drop` do call
//!   `sync_all` on `db`, but nothing ties that to our `flush`.
//! - `blobs/<lsn>`: any value (or tree node) bigger than about a quarter of a segment
//!   (~128 KiB) goes into its own file, created and written when the value is
//!   inserted, with a crc32 in front. sled never fsyncs these files nor the `blobs/`
//!   directory, so a "flushed" 1 MiB entry or snapshot could vanish.
//! - `conf`: written once at creation, never synced. `snap.<lsn>`: sled's page-table
//!   snapshot, written only while opening (recovery), `sync_all`ed and renamed into
//!   place without syncing the directory.
//!
//! So [`LogStore::flush`] here is one barrier made of: (1) fdatasync of every blob
//! file created since the last barrier, then an fsync of `blobs/` if there were any
//! (blobs first, so that once `flush` returns no durable pointer names a lost
//! blob); (2) `Db::flush`;
//! (3) fdatasync of `db` through a handle we keep open from `open` (fdatasync acts
//! on the inode, so any descriptor works). That is one fdatasync per group commit
//! in the common case of small entries, as ZooKeeper and etcd do for their logs.
//! On open we also sync `conf`, `db`, all existing blobs, `blobs/` and the directory
//! itself once, which covers sled's creation of its files and its snapshot rename.
//! No `unsafe`: std's `File::sync_data` is fdatasync.
//!
//! [`SledOptions::fsync`] = false skips our syncs and leaves sled's own flush only,
//! so that benchmarks can show the cost; servers never turn it off.
//!
//! # Recovery
//! sled recovers its own log up to the first message that fails its crc and
//! silently drops the rest; a value whose blob file is missing or damaged is
//! dropped alone, even from the middle of a batch (a crash can do that to
//! unflushed entries: sled's background flusher may write the pointer before the
//! blob is synced). So on open every record of `log` is checked — its checksum
//! ([`crate::record`]) and its link to the record before it (`sled_codec`) — and
//! the first one that fails, with everything after it, is removed as a torn or
//! corrupt tail, with a warning; the count is reported by
//! [`LogStore::recovered_truncation`]. Replay only needs the entries after the
//! newest snapshot, so the check could start there once logs grow long; today
//! checking all of it is cheap enough. Opening is in `sled_open`: it also refuses a
//! directory whose data sled lost wholesale ([`LogError::Lost`]).
//!
//! Damage that arrives after open is found by the background scrub
//! ([`LogStore::scrub_step`], in `sled_scrub`), which reports it and cuts nothing:
//! the repair (from peers) is the server's. A purge deletes a corrupt record that
//! the kept snapshot covers and leaves one that may hold later entries, which the
//! next open then cuts like any corrupt record.

use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use sled::{Batch, IVec};
use tracing::warn;

use crate::error::CorruptReason;
use crate::journal::{CHECKPOINT_BYTES, Journal};
use crate::scrub::{ScrubCursor, ScrubPart, ScrubStep, Scrubber};
use crate::sled_codec::{
    BATCH_ENTRY_HEADER, BATCH_RECORD_BYTES_MAX, EPOCHS_KEY, LOG_TREE, META_TREE, SNAPSHOTS_TREE,
    StoredRecord, check_link, decode_meta, decode_record, decode_snapshot, encode_meta,
    encode_record, key_zxid, zxid_key,
};
use crate::sled_open::{LOCK_WAIT_MS_DEFAULT, check_identity, open_sled, sync_new_dir};
use crate::sled_scrub;
use crate::sled_sync::DiskSync;
use crate::store::{PurgeStep, check_append_order};
use crate::{LogEntry, LogError, LogStore, Meta, Snapshot, SnapshotWriter, record};

/// How a [`SledStore`] is opened.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// fdatasync sled's files at every barrier (see the module docs). Turning this
    /// off leaves only sled's own `sync_file_range`, which does not survive power
    /// loss; it exists so benchmarks can compare.
    pub fsync: bool,
    /// How long `open` waits for sled's lock on its files before giving up with
    /// [`LogError::Locked`]. sled releases the lock from background threads a
    /// moment after a store in the same process is dropped, so a reopen waits.
    pub lock_wait_ms: u64,
}

impl Default for SledOptions {
    fn default() -> SledOptions {
        SledOptions { fsync: true, lock_wait_ms: LOCK_WAIT_MS_DEFAULT }
    }
}

/// The commit log, snapshots and meta in one sled database (see the module docs
/// for durability and recovery).
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    snapshots: sled::Tree,
    sync: DiskSync,
    /// Cached so that `first_zxid`/`last_zxid`/`log_follows` never touch the tree.
    first: Option<u64>,
    last: Option<u64>,
    follows: Option<u64>,
    recovered_truncation: usize,
    /// sled's `blobs/` directory, verified from disk by the scrub.
    blobs: std::path::PathBuf,
    /// Where a flush makes appends durable (see `journal`); sled is made durable at
    /// checkpoints.
    journal: Journal,
    /// How far the journal said the log reached when the store was opened.
    journal_end: u64,
    /// Checkpoints claim at least this much (the journal's end at open) until a
    /// truncation: so that a log found short on open stays known to be short, even if
    /// the store checkpoints (sets its meta, say) before its owner has recorded that.
    journal_floor: u64,
    /// The purge in progress (a new snapshot starts another).
    purge_plan: Option<PurgePlan>,
    /// Tests: drop as a crash would (no closing checkpoint).
    #[cfg(test)]
    crash_on_drop: bool,
}

impl SledStore {
    /// Opens (or creates) the store in `dir` with fsync on.
    pub fn open(dir: &Path) -> Result<SledStore, LogError> {
        SledStore::open_with(dir, SledOptions::default())
    }

    pub fn open_with(dir: &Path, options: SledOptions) -> Result<SledStore, LogError> {
        let started = std::time::Instant::now();
        sync_new_dir(dir, options.fsync)?;
        let db = open_sled(dir, Duration::from_millis(options.lock_wait_ms))?;
        let sled_ms = started.elapsed().as_millis();
        let open_tree = |name: &str| {
            db.open_tree(name).map_err(|source| LogError::Open { path: dir.to_path_buf(), source })
        };
        let (log, meta, snapshots) =
            (open_tree(LOG_TREE)?, open_tree(META_TREE)?, open_tree(SNAPSHOTS_TREE)?);
        let mut sync = DiskSync::open(dir, options.fsync)?;
        check_identity(dir, &db, &meta, &mut sync)?;

        let (journal, journaled) = Journal::open(dir, options.fsync)?;
        let mut store = SledStore {
            db,
            log,
            meta,
            snapshots,
            sync,
            first: None,
            last: None,
            follows: None,
            recovered_truncation: 0,
            blobs: dir.join("blobs"),
            journal,
            journal_end: journaled.end(),
            journal_floor: journaled.end(),
            purge_plan: None,
            #[cfg(test)]
            crash_on_drop: false,
        };
        let identity_ms = started.elapsed().as_millis();
        store.recover()?;
        store.replay(journaled)?;
        tracing::info!(
            sled_ms,
            identity_ms,
            verified_ms = started.elapsed().as_millis(),
            "log store opened"
        );
        Ok(store)
    }

    /// Checks the log from `verify_from()` on and cuts off a corrupt tail.
    fn recover(&mut self) -> Result<(), LogError> {
        if let Some((bad_key, zxid, reason)) = self.first_bad_record(self.verify_from())? {
            let dropped = remove_from(&self.log, &bad_key)?;
            warn!(
                zxid = format_args!("{zxid:#x}"),
                dropped,
                %reason,
                "log store: corrupt, torn or orphaned log tail truncated on open",
            );
            self.recovered_truncation = dropped;
            self.sync.barrier(&self.db)?;
        }
        self.refresh_bounds()
    }

    /// Writes back what the journal holds beyond sled's log (flushed entries sled
    /// lost: its tail after a crash between checkpoints, or after damage), when it
    /// connects to the log; then a checkpoint, whose base keeps the journal's end if
    /// the log stays short of it (the member's promise must not forget it).
    fn replay(&mut self, journaled: crate::journal::Recovered) -> Result<(), LogError> {
        let end = self.history_end()?;
        let beyond: Vec<_> =
            journaled.entries.iter().filter(|(_, zxid, _)| Some(*zxid) > end).collect();
        if let Some((follows, first, _)) = beyond.first() {
            if *follows == end {
                let entries: Vec<LogEntry> = beyond
                    .iter()
                    .map(|(_, zxid, data)| LogEntry { zxid: *zxid, data: data.clone() })
                    .collect();
                self.append_to_sled(&entries)?;
                warn!(
                    entries = entries.len(),
                    first = format_args!("{first:#x}"),
                    "log store: flushed entries sled did not have were written back from the journal",
                );
            } else {
                warn!(
                    log_end = format_args!("{:#x}", end.unwrap_or(0)),
                    journal_from = format_args!("{first:#x}"),
                    journal_end = format_args!("{:#x}", journaled.end()),
                    "log store: the journal does not connect to the log; the log ends before what was flushed",
                );
            }
        }
        self.barrier()
    }

    /// Where the history ends: the last entry, else the newest snapshot.
    fn history_end(&self) -> Result<Option<u64>, LogError> {
        if self.last.is_some() {
            return Ok(self.last);
        }
        match self.snapshots.last()? {
            Some((key, _)) => Ok(key_zxid("snapshot", &key).ok()),
            None => Ok(None),
        }
    }

    /// Makes everything durable in sled, then starts the journal over from where the
    /// history ends now.
    fn barrier(&mut self) -> Result<(), LogError> {
        let started = std::time::Instant::now();
        self.sync.barrier(&self.db)?;
        let synced = started.elapsed();
        let base = self.history_end()?.unwrap_or(0).max(self.journal_floor);
        self.journal.checkpoint(base)?;
        tracing::debug!(
            sled_ms = synced.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "log store: checkpoint"
        );
        Ok(())
    }

    /// Appends `entries` to sled's log tree (durable at the next barrier); returns
    /// the zxid the first of them follows.
    fn append_to_sled(&mut self, entries: &[LogEntry]) -> Result<Option<u64>, LogError> {
        check_append_order(self.last, entries)?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(self.last);
        };
        // As few records as BATCH_RECORD_BYTES_MAX allows, inserted in order, not as
        // one sled batch: sled writes out and waits for the writeback of its buffer to
        // seal every batch (`sync_file_range`), a device wait the journal makes
        // needless. A crash can then leave a prefix of the records, which is what an
        // unflushed append may leave anyway.
        let mut prev = match self.last {
            Some(last) => Some(last),
            None => self.empty_log_follows(first.zxid)?,
        };
        let follows = prev;
        let mut group: Vec<(u64, &[u8])> = Vec::new();
        let mut group_bytes = 0;
        for entry in entries {
            let bytes = BATCH_ENTRY_HEADER + entry.data.len();
            if !group.is_empty() && group_bytes + bytes > BATCH_RECORD_BYTES_MAX {
                self.log.insert(&zxid_key(group[0].0)[..], encode_record(prev, &group))?;
                prev = group.last().map(|(zxid, _)| *zxid);
                group.clear();
                group_bytes = 0;
            }
            group.push((entry.zxid, &entry.data));
            group_bytes += bytes;
        }
        self.log.insert(&zxid_key(group[0].0)[..], encode_record(prev, &group))?;
        if self.first.is_none() {
            (self.first, self.follows) = (Some(first.zxid), follows);
        }
        self.last = Some(last.zxid);
        Ok(follows)
    }

    /// The snapshots a purge keeping `keep` of them keeps (valid ones, newest first)
    /// and deletes (older ones, and corrupt ones).
    fn plan_purge(&self, keep: usize) -> Result<PurgePlan, LogError> {
        let mut plan = PurgePlan { keep, kept: Vec::with_capacity(keep), doomed: Vec::new() };
        for item in self.snapshots.iter().rev() {
            let (key, value) = item?;
            if plan.kept.len() == keep {
                plan.doomed.push(key);
                continue;
            }
            match decode_snapshot(&key, &value) {
                Ok(snapshot) => plan.kept.push(snapshot.zxid),
                Err(error) => {
                    warn!(%error, "log store: deleting a corrupt snapshot during purge");
                    plan.doomed.push(key);
                }
            }
        }
        Ok(plan)
    }

    /// Where open-time verification starts. Replay needs only the entries after the
    /// newest valid snapshot; verifying the whole log is cheap enough for now and
    /// also catches damage in entries a lagging follower may still be sent.
    fn verify_from(&self) -> u64 {
        0
    }

    /// The first record at or after `from` that fails its checksum or does not
    /// link to the record before it: its raw key, its zxid as far as it can be
    /// read, and why.
    fn first_bad_record(&self, from: u64) -> Result<Option<(IVec, u64, CorruptReason)>, LogError> {
        let mut previous = None;
        for item in self.log.range(zxid_key(from)..) {
            let (key, value) = item?;
            let checked = decode_record(&key, &value)
                .and_then(|record| check_link(previous, &record).map(|()| record.last()));
            match checked {
                Ok(last) => previous = Some(last),
                Err(LogError::Corrupt { zxid, reason, .. }) => {
                    return Ok(Some((key, zxid, reason)));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(None)
    }

    fn refresh_bounds(&mut self) -> Result<(), LogError> {
        self.refresh_front()?;
        self.last = match self.log.last()? {
            Some((key, value)) => Some(decode_record(&key, &value)?.last()),
            None => None,
        };
        Ok(())
    }

    /// Refreshes what is cached about the first record, which is all a purge
    /// changes (it never touches the last record unless it empties the log).
    ///
    /// A first record that fails its check can be left by a purge (see
    /// `purge_step`); its link is unreadable, so `follows` is then the zxid just
    /// below its key. Its true link names an entry at or below that, so this asks
    /// of a snapshot at least as much as the link would.
    fn refresh_front(&mut self) -> Result<(), LogError> {
        let Some((key, value)) = self.log.first()? else {
            (self.first, self.last, self.follows) = (None, None, None);
            return Ok(());
        };
        let first = key_zxid("log entry", &key)?;
        self.first = Some(first);
        self.follows = match decode_record(&key, &value) {
            Ok(record) => record.prev,
            Err(_) => first.checked_sub(1),
        };
        Ok(())
    }

    /// What an append into an empty log names as its predecessor: the newest
    /// snapshot's zxid, if it is below the first zxid appended. With no entries
    /// left the snapshot is where the log goes on from, and saying so keeps a log
    /// that outlived its snapshot from passing as one that starts from nothing
    /// (see [`LogStore::log_follows`]). The key is enough: no need to read the
    /// snapshot itself on the write path.
    fn empty_log_follows(&self, first: u64) -> Result<Option<u64>, LogError> {
        let Some(key) = self.snapshots.last()?.map(|(key, _)| key) else {
            return Ok(None);
        };
        Ok(key_zxid("snapshot", &key).ok().filter(|&zxid| zxid < first))
    }

    /// An upper bound on the last zxid of the record under `key`, whose value is
    /// unreadable and whose first zxid is `first`: the entry the next record names
    /// as its predecessor (when it lies in this record's range), else the zxid below
    /// the next record's; the log's last zxid when it is the last record. `None` if
    /// nothing around it tells.
    fn unreadable_record_last(&self, key: &[u8], first: u64) -> Result<Option<u64>, LogError> {
        let after = (Bound::Excluded(key), Bound::Unbounded);
        let Some((next_key, next_value)) = self.log.range::<&[u8], _>(after).next().transpose()?
        else {
            return Ok(self.last.filter(|&last| last >= first));
        };
        let Ok(next_first) = key_zxid("log entry", &next_key) else {
            return Ok(None);
        };
        let linked = decode_record(&next_key, &next_value).ok().and_then(|next| next.prev);
        match linked {
            Some(prev) if first <= prev && prev < next_first => Ok(Some(prev)),
            _ => Ok(next_first.checked_sub(1)),
        }
    }

    /// The key of the record holding `zxid`, or of the first record after it.
    fn start_key(&self, zxid: u64) -> Result<IVec, LogError> {
        let holder = self.log.range(..=zxid_key(zxid)).next_back().transpose()?;
        if let Some((key, value)) = holder
            && decode_record(&key, &value)?.last() >= zxid
        {
            return Ok(key);
        }
        Ok(IVec::from(&zxid_key(zxid)))
    }
}

/// A purge in progress: decided at its first step, carried out over several.
#[derive(Debug)]
struct PurgePlan {
    keep: usize,
    /// zxids of the snapshots kept, newest first.
    kept: Vec<u64>,
    /// Keys of the snapshots deleted when the log is purged.
    doomed: Vec<IVec>,
}

/// Puts `entries` (a record's, in order) back as one record under its first zxid.
fn rewrite(batch: &mut Batch, prev: Option<u64>, entries: &[(u64, &[u8])]) {
    batch.insert(&zxid_key(entries[0].0)[..], encode_record(prev, entries));
}

/// Owned copies of a record's entries, for rewriting it in a batch.
fn owned(record: &StoredRecord<'_>) -> Vec<(u64, Vec<u8>)> {
    record.entries.iter().map(|(zxid, data)| (*zxid, data.to_vec())).collect()
}

fn borrowed(entries: &[(u64, Vec<u8>)]) -> Vec<(u64, &[u8])> {
    entries.iter().map(|(zxid, data)| (*zxid, data.as_slice())).collect()
}

impl LogStore for SledStore {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), LogError> {
        let follows = self.append_to_sled(entries)?;
        if !entries.is_empty() {
            self.journal.add(follows, entries);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.journal.write()?;
        if self.journal.len() >= CHECKPOINT_BYTES {
            self.barrier()?;
        }
        Ok(())
    }

    fn journal_end(&self) -> Option<u64> {
        Some(self.journal_end)
    }

    fn repaired(&mut self) -> Result<(), LogError> {
        self.journal_floor = 0;
        self.barrier()
    }

    fn read(&self, from: u64, max: usize) -> Result<Vec<LogEntry>, LogError> {
        let mut entries = Vec::new();
        if max == 0 {
            return Ok(entries);
        }
        for item in self.log.range(self.start_key(from)?..) {
            let (key, value) = item?;
            for (zxid, data) in decode_record(&key, &value)?.entries {
                if zxid >= from {
                    entries.push(LogEntry { zxid, data: Bytes::copy_from_slice(data) });
                    if entries.len() == max {
                        return Ok(entries);
                    }
                }
            }
        }
        Ok(entries)
    }

    fn first_zxid(&self) -> Option<u64> {
        self.first
    }

    fn log_follows(&self) -> Option<u64> {
        self.follows
    }

    fn last_zxid(&self) -> Option<u64> {
        self.last
    }

    fn truncate_after(&mut self, zxid: u64) -> Result<(), LogError> {
        // The journal first stops holding anything past `zxid` (what it held is
        // durable in sled from here), so that no crash can bring cut entries back.
        self.sync.barrier(&self.db)?;
        let end = self.history_end()?.unwrap_or(0);
        self.journal_floor = 0;
        self.journal.checkpoint(end.min(zxid))?;
        if let Some(after) = zxid.checked_add(1) {
            let mut batch = Batch::default();
            // The record holding `zxid` may hold later entries too: keep its head.
            let holder = self.log.range(..zxid_key(after)).next_back().transpose()?;
            if let Some((key, value)) = holder {
                let record = decode_record(&key, &value)?;
                if record.last() > zxid {
                    let kept: Vec<_> =
                        record.entries.iter().copied().filter(|e| e.0 <= zxid).collect();
                    rewrite(&mut batch, record.prev, &kept);
                }
            }
            for item in self.log.range(zxid_key(after)..) {
                batch.remove(item?.0);
            }
            self.log.apply_batch(batch)?;
        }
        self.sync.barrier(&self.db)?;
        self.refresh_bounds()
    }

    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.snapshots.insert(zxid_key(snapshot.zxid), record::encode(&snapshot.data))?;
        self.purge_plan = None;
        self.barrier()
    }

    fn latest_snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        for item in self.snapshots.iter().rev() {
            let (key, value) = item?;
            match decode_snapshot(&key, &value) {
                Ok(snapshot) => return Ok(Some(snapshot)),
                Err(error) => warn!(%error, "log store: skipping a corrupt snapshot"),
            }
        }
        Ok(None)
    }

    fn purge_step(&mut self, keep: usize, entries_max: usize) -> Result<PurgeStep, LogError> {
        let keep = keep.max(1);
        // Which snapshots are kept is decided once per purge, not per step: checking
        // a snapshot reads all of it (a hundred megabytes at a million znodes).
        let plan = match self.purge_plan.take() {
            Some(plan) if plan.keep == keep => plan,
            _ => self.plan_purge(keep)?,
        };
        let oldest_kept = plan.kept.last().copied();

        // Oldest first, in bounded batches: one huge batch costs sled (and the
        // writes queued behind it) far more than its share.
        let mut deleted = 0;
        if let Some(oldest_kept) = oldest_kept {
            let mut covered = Batch::default();
            for item in self.log.range(..=zxid_key(oldest_kept)) {
                if deleted == entries_max {
                    break;
                }
                let (key, value) = item?;
                let record = match decode_record(&key, &value) {
                    Ok(record) => record,
                    Err(LogError::Corrupt { zxid, reason, .. }) => {
                        let last = self.unreadable_record_last(&key, zxid)?;
                        if last.is_none_or(|last| last > oldest_kept) {
                            // It may hold entries the snapshot lacks: keep it. Reads
                            // of it fail, and the next open cuts the log there.
                            warn!(
                                zxid = format_args!("{zxid:#x}"),
                                %reason,
                                "log store: a corrupt log record is not all in the kept \
                                 snapshot; purge leaves it",
                            );
                            break;
                        }
                        warn!(
                            zxid = format_args!("{zxid:#x}"),
                            %reason,
                            "log store: purge deletes a corrupt log record the snapshot covers",
                        );
                        // Its entries cannot be counted: it holds at least one.
                        covered.remove(key);
                        deleted += 1;
                        continue;
                    }
                    Err(other) => return Err(other),
                };
                let covered_here = record.entries.iter().filter(|e| e.0 <= oldest_kept).count();
                let dropped = covered_here.min(entries_max - deleted);
                covered.remove(key);
                if dropped < record.entries.len() {
                    // Keep the rest of the record, under its new first zxid.
                    let rest = owned(&record).split_off(dropped);
                    let prev = Some(record.entries[dropped - 1].0);
                    rewrite(&mut covered, prev, &borrowed(&rest));
                }
                deleted += dropped;
            }
            self.log.apply_batch(covered)?;
            self.refresh_front()?;
            if deleted == entries_max {
                self.purge_plan = Some(plan);
                return Ok(PurgeStep { deleted, done: false });
            }
        }
        let mut doomed = Batch::default();
        for key in plan.doomed {
            doomed.remove(key);
        }
        self.snapshots.apply_batch(doomed)?;
        self.barrier()?;
        Ok(PurgeStep { deleted, done: true })
    }

    fn meta(&self) -> Result<Meta, LogError> {
        match self.meta.get(EPOCHS_KEY)? {
            Some(value) => decode_meta(&value),
            None => Ok(Meta::default()),
        }
    }

    fn set_meta(&mut self, meta: Meta) -> Result<(), LogError> {
        self.meta.insert(EPOCHS_KEY, encode_meta(meta))?;
        self.barrier()
    }

    fn recovered_truncation(&self) -> usize {
        self.recovered_truncation
    }

    fn scrub_step(&self, from: ScrubCursor, bytes_max: usize) -> Result<ScrubStep, LogError> {
        self.sled_scrubber().step(from, bytes_max)
    }

    fn scrubber(&self) -> Option<std::sync::Arc<dyn Scrubber>> {
        Some(std::sync::Arc::new(self.sled_scrubber()))
    }

    fn snapshot_writer(&self) -> Option<std::sync::Arc<dyn SnapshotWriter>> {
        match DiskSync::open(self.sync.dir(), self.sync.enabled()) {
            Ok(sync) => Some(std::sync::Arc::new(SledSnapshotWriter {
                db: self.db.clone(),
                snapshots: self.snapshots.clone(),
                sync: std::sync::Mutex::new(sync),
            })),
            Err(error) => {
                warn!(%error, "log store: snapshots are saved on the store's thread");
                None
            }
        }
    }

    fn snapshot_written(&mut self) -> Result<(), LogError> {
        self.purge_plan = None;
        self.barrier()
    }
}

/// Saves snapshots through its own handles on sled (safe to write from any thread
/// while another writes) and its own sync of sled's files: the snapshot's blob,
/// written by the insert, is synced here, so the owner's next barrier finds it
/// clean.
#[derive(Debug)]
struct SledSnapshotWriter {
    db: sled::Db,
    snapshots: sled::Tree,
    sync: std::sync::Mutex<DiskSync>,
}

impl SnapshotWriter for SledSnapshotWriter {
    fn write(&self, snapshot: Snapshot) -> Result<(), LogError> {
        // Three copies of a hundred megabytes would be alive at once (the encoded
        // tree, the record, sled's own): the tree's goes before sled makes its.
        let (key, record) = (zxid_key(snapshot.zxid), record::encode(&snapshot.data));
        drop(snapshot);
        self.snapshots.insert(key, record)?;
        let mut sync = self.sync.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sync.barrier(&self.db)
    }
}

/// A store closed in order leaves nothing to replay: sled is synced and the journal
/// starts over (its base still says where the log ended).
impl Drop for SledStore {
    fn drop(&mut self) {
        #[cfg(test)]
        if self.crash_on_drop {
            return;
        }
        if let Err(error) = self.barrier() {
            warn!(%error, "log store: the closing checkpoint failed; the journal is replayed on the next open");
        }
    }
}

impl SledStore {
    fn sled_scrubber(&self) -> SledScrubber {
        SledScrubber {
            log: self.log.clone(),
            snapshots: self.snapshots.clone(),
            blobs: self.blobs.clone(),
        }
    }
}

/// The sled store's scrub over its own handles to the trees (sled is safe to read
/// from any thread while another writes) and the blob directory.
#[derive(Debug)]
struct SledScrubber {
    log: sled::Tree,
    snapshots: sled::Tree,
    blobs: std::path::PathBuf,
}

impl Scrubber for SledScrubber {
    fn step(&self, from: ScrubCursor, bytes_max: usize) -> Result<ScrubStep, LogError> {
        if from.part == ScrubPart::Blobs {
            return sled_scrub::blob_step(&self.blobs, from, bytes_max);
        }
        let mut step = sled_scrub::scrub_step(&self.log, &self.snapshots, from, bytes_max)?;
        let any_blob = || std::fs::read_dir(&self.blobs).is_ok_and(|mut d| d.next().is_some());
        if step.next.is_none() && any_blob() {
            // The trees as sled returns them (its page cache, for what it holds):
            // then the blob files, read from the disk itself.
            step.next = Some(ScrubCursor::BLOBS);
        }
        Ok(step)
    }
}

/// Removes every key >= `from` in one batch; returns how many.
fn remove_from(tree: &sled::Tree, from: &[u8]) -> Result<usize, LogError> {
    let mut batch = Batch::default();
    let mut removed = 0;
    for item in tree.range(from..) {
        batch.remove(item?.0);
        removed += 1;
    }
    tree.apply_batch(batch)?;
    Ok(removed)
}

/// Damage done behind a live store's back, as bit rot after open would be (damage
/// written before an open is cut away by open-time recovery, so the integration
/// tests, which can only reach a closed store's trees, cannot set this up).
#[cfg(test)]
impl SledStore {
    /// A store in a fresh directory whose log holds `batches`, each appended as one
    /// record, and snapshots at `snapshots`.
    pub(crate) fn with_records(
        batches: &[std::ops::RangeInclusive<u64>],
        snapshots: &[u64],
    ) -> (tempfile::TempDir, SledStore) {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(tmp.path()).expect("open the store");
        for batch in batches {
            store.append(&crate::conformance::entries(batch.clone())).unwrap();
        }
        for &zxid in snapshots {
            let data = Bytes::from(format!("tree at {zxid}"));
            store.save_snapshot(Snapshot { zxid, data }).unwrap();
        }
        let firsts: Vec<u64> = batches.iter().map(|batch| *batch.start()).collect();
        assert_eq!(store.record_keys(), firsts, "one record per batch");
        (tmp, store)
    }

    /// The sled tree `name` of this live store.
    pub(crate) fn raw_tree(&self, name: &str) -> &sled::Tree {
        match name {
            LOG_TREE => &self.log,
            SNAPSHOTS_TREE => &self.snapshots,
            _ => &self.meta,
        }
    }

    /// Flips the last bit of the stored value under `zxid` in tree `name`.
    pub(crate) fn flip_stored(&self, name: &str, zxid: u64) {
        let tree = self.raw_tree(name);
        let mut value = tree.get(zxid_key(zxid)).unwrap().expect("a stored value").to_vec();
        *value.last_mut().unwrap() ^= 0x01;
        tree.insert(zxid_key(zxid), value).unwrap();
    }

    /// The keys of the log tree: the first zxid of each record.
    pub(crate) fn record_keys(&self) -> Vec<u64> {
        self.log
            .iter()
            .keys()
            .map(|key| u64::from_be_bytes(key.unwrap()[..].try_into().unwrap()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::entries;

    fn open(dir: &Path) -> SledStore {
        SledStore::open(dir).expect("open the store")
    }

    fn store(
        batches: &[std::ops::RangeInclusive<u64>],
        snapshot: u64,
    ) -> (tempfile::TempDir, SledStore) {
        SledStore::with_records(batches, &[snapshot])
    }

    fn all(store: &SledStore) -> Vec<LogEntry> {
        store.read(0, usize::MAX).unwrap()
    }

    /// sled loses the log records under `zxids` (made durable in sled as such), then
    /// the store stops as a crash would: no closing checkpoint.
    fn lose_and_crash(mut store: SledStore, zxids: std::ops::RangeInclusive<u64>) {
        for zxid in zxids {
            store.log.remove(zxid_key(zxid)).unwrap();
        }
        store.db.flush().unwrap();
        store.crash_on_drop = true;
    }

    /// Entries flushed (into the journal) that sled then lost — its tail was never
    /// synced before a crash — are written back on open, and the journal's end is
    /// reported.
    #[test]
    fn flushed_entries_sled_lost_come_back_from_the_journal() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = open(tmp.path());
        store.append(&entries(1..=3)).unwrap();
        store.save_snapshot(Snapshot { zxid: 2, data: Bytes::from_static(b"at 2") }).unwrap();
        store.append(&entries(4..=5)).unwrap();
        store.flush().unwrap();
        store.append(&entries(6..=6)).unwrap();
        store.flush().unwrap();
        store.append(&entries(7..=7)).unwrap();
        // sled loses everything after 3; 7 was never flushed.
        lose_and_crash(store, 4..=7);
        let store = open(tmp.path());
        assert_eq!(all(&store), entries(1..=6));
        assert_eq!(store.journal_end(), Some(6));
        drop(store);
        let store = open(tmp.path());
        assert_eq!(all(&store), entries(1..=6), "written back for good");
        assert_eq!(store.journal_end(), Some(6));
    }

    /// A journal that does not connect to what sled kept writes nothing back, and its
    /// end still says how far the log had reached.
    #[test]
    fn a_journal_that_does_not_connect_writes_nothing_back() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = open(tmp.path());
        for zxid in 1..=3 {
            store.append(&entries(zxid..=zxid)).unwrap();
        }
        store.save_snapshot(Snapshot { zxid: 1, data: Bytes::from_static(b"at 1") }).unwrap();
        store.append(&entries(4..=5)).unwrap();
        store.flush().unwrap();
        lose_and_crash(store, 2..=5);
        let store = open(tmp.path());
        assert_eq!(all(&store), entries(1..=1));
        assert_eq!(store.journal_end(), Some(5), "the journal still knows how far it went");
        drop(store);
        let store = open(tmp.path());
        assert_eq!(store.journal_end(), Some(5), "and keeps knowing it across a clean close");
    }

    /// Entries a truncation cut never come back from the journal.
    #[test]
    fn a_truncation_is_not_undone_by_the_journal() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = open(tmp.path());
        store.append(&entries(1..=5)).unwrap();
        store.flush().unwrap();
        store.truncate_after(2).unwrap();
        store.append(&entries(3..=3)).unwrap();
        store.flush().unwrap();
        store.crash_on_drop = true;
        drop(store);
        let store = open(tmp.path());
        assert_eq!(all(&store), entries(1..=3));
        assert_eq!(store.journal_end(), Some(3));
    }

    #[test]
    fn purge_deletes_a_corrupt_record_the_snapshot_covers() {
        let singles: Vec<_> = (1..=10).map(|zxid| zxid..=zxid).collect();
        let (tmp, mut store) = store(&singles, 6);
        store.flip_stored(LOG_TREE, 4);
        // Five good entries and the corrupt record, counted as one.
        assert_eq!(store.purge(1).unwrap(), 6);
        assert_eq!(all(&store), entries(7..=10));
        assert_eq!((store.first_zxid(), store.log_follows()), (Some(7), Some(6)));
        drop(store);
        let store = open(tmp.path());
        assert_eq!(store.recovered_truncation(), 0, "nothing corrupt is left");
        assert_eq!(all(&store), entries(7..=10));
    }

    #[test]
    fn purge_leaves_a_corrupt_record_that_may_hold_entries_past_the_snapshot() {
        let (tmp, mut store) = store(&[1..=4, 5..=8, 9..=12], 6);
        store.flip_stored(LOG_TREE, 5);
        assert_eq!(store.purge(1).unwrap(), 4, "only the record before it");
        assert_eq!(store.record_keys(), [5, 9]);
        assert_eq!((store.first_zxid(), store.last_zxid()), (Some(5), Some(12)));
        assert_eq!(store.log_follows(), Some(4), "everything before 5 is gone");
        assert!(matches!(store.read(0, 1), Err(LogError::Corrupt { zxid: 5, .. })));
        drop(store);
        let store = open(tmp.path());
        assert_eq!(store.recovered_truncation(), 2, "open cuts the log at the corrupt record");
        assert_eq!((store.first_zxid(), store.log_follows()), (None, None));
    }

    #[test]
    fn purge_bounds_a_corrupt_record_by_the_link_of_the_next() {
        // Entries 5..=8, then a gap up to 100 (a new epoch): the next record's key
        // alone could not show that the corrupt record ends at 8, its link does.
        let (_tmp, mut store) = store(&[1..=4, 5..=8, 100..=103], 8);
        store.flip_stored(LOG_TREE, 5);
        assert_eq!(store.purge(1).unwrap(), 5);
        assert_eq!(all(&store), entries(100..=103));
        assert_eq!(store.log_follows(), Some(8));
    }

    #[test]
    fn purge_deletes_a_corrupt_last_record_below_the_snapshot() {
        let (_tmp, mut store) = store(&[1..=4, 5..=8], 10);
        store.flip_stored(LOG_TREE, 5);
        assert_eq!(store.purge(1).unwrap(), 5, "the log's last zxid bounds the last record");
        assert_eq!(
            (store.first_zxid(), store.last_zxid(), store.log_follows()),
            (None, None, None)
        );
    }

    #[test]
    fn purge_steps_count_a_corrupt_record_as_one_entry() {
        let (_tmp, mut store) = store(&[1..=2, 3..=4, 5..=6], 4);
        store.flip_stored(LOG_TREE, 3);
        assert_eq!(store.purge_step(1, 2).unwrap(), PurgeStep { deleted: 2, done: false });
        assert_eq!(store.purge_step(1, 2).unwrap(), PurgeStep { deleted: 1, done: true });
        assert_eq!(all(&store), entries(5..=6));
        assert_eq!(store.log_follows(), Some(4));
    }
}
