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

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use sled::{Batch, IVec};
use tracing::warn;

use crate::error::CorruptReason;
use crate::sled_codec::{
    BATCH_ENTRY_HEADER, BATCH_RECORD_BYTES_MAX, EPOCHS_KEY, LOG_TREE, META_TREE, SNAPSHOTS_TREE,
    StoredRecord, check_link, decode_meta, decode_record, decode_snapshot, encode_meta,
    encode_record, zxid_key,
};
use crate::sled_open::{LOCK_WAIT_MS_DEFAULT, check_identity, open_sled, sync_new_dir};
use crate::sled_sync::DiskSync;
use crate::store::{PurgeStep, check_append_order};
use crate::{LogEntry, LogError, LogStore, Meta, Snapshot, record};

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
    /// Cached so that `first_zxid`/`last_zxid` never touch the tree.
    first: Option<u64>,
    last: Option<u64>,
    recovered_truncation: usize,
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

        let mut store = SledStore {
            db,
            log,
            meta,
            snapshots,
            sync,
            first: None,
            last: None,
            recovered_truncation: 0,
        };
        let identity_ms = started.elapsed().as_millis();
        store.recover()?;
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
        let bound = |item: Option<(IVec, IVec)>| {
            item.map(|(key, value)| decode_record(&key, &value).map(|r| (r.first(), r.last())))
                .transpose()
        };
        self.first = bound(self.log.first()?)?.map(|(first, _)| first);
        self.last = bound(self.log.last()?)?.map(|(_, last)| last);
        Ok(())
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
        check_append_order(self.last, entries)?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        // As few records as BATCH_RECORD_BYTES_MAX allows, in one atomic batch.
        let mut batch = Batch::default();
        let mut prev = self.last;
        let mut group: Vec<(u64, &[u8])> = Vec::new();
        let mut group_bytes = 0;
        for entry in entries {
            let bytes = BATCH_ENTRY_HEADER + entry.data.len();
            if !group.is_empty() && group_bytes + bytes > BATCH_RECORD_BYTES_MAX {
                rewrite(&mut batch, prev, &group);
                prev = group.last().map(|(zxid, _)| *zxid);
                group.clear();
                group_bytes = 0;
            }
            group.push((entry.zxid, &entry.data));
            group_bytes += bytes;
        }
        rewrite(&mut batch, prev, &group);
        self.log.apply_batch(batch)?;
        self.first.get_or_insert(first.zxid);
        self.last = Some(last.zxid);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.sync.barrier(&self.db)
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

    fn last_zxid(&self) -> Option<u64> {
        self.last
    }

    fn truncate_after(&mut self, zxid: u64) -> Result<(), LogError> {
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
        self.sync.barrier(&self.db)
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
        let mut kept = Vec::with_capacity(keep);
        let mut doomed = Batch::default();
        for item in self.snapshots.iter().rev() {
            let (key, value) = item?;
            if kept.len() == keep {
                doomed.remove(key);
                continue;
            }
            match decode_snapshot(&key, &value) {
                Ok(snapshot) => kept.push(snapshot.zxid),
                Err(error) => {
                    warn!(%error, "log store: deleting a corrupt snapshot during purge");
                    doomed.remove(key);
                }
            }
        }

        // Oldest first, in bounded batches: one huge batch costs sled (and the
        // writes queued behind it) far more than its share.
        let mut deleted = 0;
        if let Some(&oldest_kept) = kept.last() {
            let mut covered = Batch::default();
            for item in self.log.range(..=zxid_key(oldest_kept)) {
                if deleted == entries_max {
                    break;
                }
                let (key, value) = item?;
                let record = decode_record(&key, &value)?;
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
            self.refresh_bounds()?;
            if deleted == entries_max {
                return Ok(PurgeStep { deleted, done: false });
            }
        }
        self.snapshots.apply_batch(doomed)?;
        self.sync.barrier(&self.db)?;
        self.refresh_bounds()?;
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
        self.sync.barrier(&self.db)
    }

    fn recovered_truncation(&self) -> usize {
        self.recovered_truncation
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
