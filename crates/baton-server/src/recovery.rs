//! Start-up: open the store, rebuild the tree, start a new epoch.
//!
//! The tree = the newest valid snapshot + every logged txn after it, applied in zxid
//! order. Txns that failed when they were first applied fail again the same way
//! (apply is deterministic), which is fine: they changed nothing then either. A log
//! record that passed its checksum but does not decode is not something to skip:
//! the server refuses to start and names it.

use std::path::Path;

use baton_log::{LogError, LogStore, SledOptions, SledStore};
use baton_quorum::{Epochs, Standalone, Zxid};
use baton_znode::{DataTree, decode_txn};

use crate::{ServerError, driver::meta_of};

/// Log entries read from the store per call while replaying.
pub(crate) const REPLAY_CHUNK_ENTRIES: usize = 1_024;

/// How long opening waits for sled's lock. Another live process holds it until it
/// exits; the wait only covers a store closed a moment ago in this process.
pub(crate) const LOCK_WAIT_MS: u64 = 500;

/// What a recovered server starts from.
pub(crate) struct Recovered {
    pub(crate) store: Box<dyn LogStore>,
    pub(crate) tree: DataTree,
    pub(crate) quorum: Standalone,
    /// Txns replayed from the log (they count towards the next snapshot).
    pub(crate) replayed: u64,
}

impl std::fmt::Debug for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovered")
            .field("last_zxid", &self.tree.last_zxid())
            .field("quorum", &self.quorum)
            .field("replayed", &self.replayed)
            .finish_non_exhaustive()
    }
}

/// Opens the sled store in `dir` (creating it) and recovers from it. Blocking.
pub(crate) fn open_and_recover(dir: &Path, fsync: bool) -> Result<Recovered, ServerError> {
    recover(open(dir, fsync)?, dir)
}

/// What an ensemble member starts from: the tree of the newest snapshot only (the
/// log after it may hold proposals that were never committed: the leader decides),
/// the logged entries after it, and the persisted epochs as they are.
pub(crate) struct Member {
    pub(crate) store: Box<dyn LogStore>,
    pub(crate) tree: DataTree,
    pub(crate) epochs: Epochs,
    pub(crate) log: Vec<baton_log::LogEntry>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("tree_zxid", &self.tree.last_zxid())
            .field("epochs", &self.epochs)
            .field("logged", &self.log.len())
            .finish_non_exhaustive()
    }
}

/// Opens the store in `dir` for an ensemble member. Blocking.
pub(crate) fn open_member(dir: &Path, fsync: bool) -> Result<Member, ServerError> {
    let started = std::time::Instant::now();
    let store = open(dir, fsync)?;
    let opened_ms = started.elapsed().as_millis();
    let snapshot = store.latest_snapshot()?;
    let read_ms = started.elapsed().as_millis();
    let tree = match snapshot {
        Some(snapshot) => DataTree::decode_snapshot(&snapshot.data).map_err(|source| {
            ServerError::BadSnapshot { dir: dir.to_path_buf(), zxid: snapshot.zxid, source }
        })?,
        None => DataTree::new(),
    };
    let decoded_ms = started.elapsed().as_millis();
    let mut log = Vec::new();
    loop {
        let from = log.last().map_or(tree.last_zxid(), |e: &baton_log::LogEntry| e.zxid) + 1;
        let entries = store.read(from, REPLAY_CHUNK_ENTRIES)?;
        if entries.is_empty() {
            break;
        }
        for entry in &entries {
            // Checked now so that a bad record stops the start, not a later apply.
            match decode_txn(&entry.data) {
                Ok(txn) if txn.zxid == entry.zxid => {}
                Ok(_) | Err(_) => {
                    return Err(ServerError::BadLogRecord {
                        dir: dir.to_path_buf(),
                        zxid: entry.zxid,
                        source: baton_znode::DecodeError::Invalid {
                            offset: 0,
                            reason: "the record does not decode as its own txn".into(),
                        },
                    });
                }
            }
        }
        log.extend(entries);
    }
    let meta = store.meta()?;
    let epochs = Epochs { accepted_epoch: meta.accepted_epoch, current_epoch: meta.current_epoch };
    tracing::info!(
        snapshot_zxid = %Zxid::from_u64(tree.last_zxid()),
        logged = log.len(),
        opened_ms,
        read_ms,
        decoded_ms,
        total_ms = started.elapsed().as_millis(),
        accepted_epoch = epochs.accepted_epoch,
        current_epoch = epochs.current_epoch,
        "recovered an ensemble member"
    );
    Ok(Member { store, tree, epochs, log })
}

fn open(dir: &Path, fsync: bool) -> Result<Box<dyn LogStore>, ServerError> {
    let options = SledOptions { fsync, lock_wait_ms: LOCK_WAIT_MS };
    let store = SledStore::open_with(dir, options).map_err(|error| match error {
        LogError::Locked { path } => ServerError::DataDirInUse { path },
        other => ServerError::Storage(other),
    })?;
    if store.recovered_truncation() > 0 {
        tracing::warn!(
            records = store.recovered_truncation(),
            "dropped a torn or corrupt tail of the log (never acknowledged)"
        );
    }
    Ok(Box::new(store))
}

/// Rebuilds the tree from `store` and persists the epoch of the new run.
pub(crate) fn recover(mut store: Box<dyn LogStore>, dir: &Path) -> Result<Recovered, ServerError> {
    let mut tree = match store.latest_snapshot()? {
        Some(snapshot) => DataTree::decode_snapshot(&snapshot.data).map_err(|source| {
            ServerError::BadSnapshot { dir: dir.to_path_buf(), zxid: snapshot.zxid, source }
        })?,
        None => DataTree::new(),
    };
    let from_snapshot = tree.last_zxid();
    let replayed = replay(&*store, &mut tree, dir)?;
    let last_logged = store.last_zxid().unwrap_or(0).max(tree.last_zxid());

    let meta = store.meta()?;
    let stored = Epochs { accepted_epoch: meta.accepted_epoch, current_epoch: meta.current_epoch };
    let (quorum, epochs) = Standalone::recover(stored, Zxid::from_u64(last_logged))?;
    store.set_meta(meta_of(epochs))?;
    tracing::info!(
        snapshot_zxid = %Zxid::from_u64(from_snapshot),
        replayed,
        last_zxid = %Zxid::from_u64(tree.last_zxid()),
        epoch = quorum.epoch(),
        nodes = tree.node_count(),
        "recovered"
    );
    Ok(Recovered { store, tree, quorum, replayed })
}

/// Applies every logged txn after the tree's last zxid; returns how many.
fn replay(store: &dyn LogStore, tree: &mut DataTree, dir: &Path) -> Result<u64, ServerError> {
    let mut replayed = 0;
    loop {
        let Some(from) = tree.last_zxid().checked_add(1) else { return Ok(replayed) };
        let entries = store.read(from, REPLAY_CHUNK_ENTRIES)?;
        let Some(last) = entries.last().map(|e| e.zxid) else { return Ok(replayed) };
        for entry in &entries {
            let txn = decode_txn(&entry.data).map_err(|source| ServerError::BadLogRecord {
                dir: dir.to_path_buf(),
                zxid: entry.zxid,
                source,
            })?;
            if txn.zxid != entry.zxid {
                return Err(ServerError::BadLogRecord {
                    dir: dir.to_path_buf(),
                    zxid: entry.zxid,
                    source: baton_znode::DecodeError::Invalid {
                        offset: 0,
                        reason: format!("the record holds txn {:#x}", txn.zxid),
                    },
                });
            }
            // A failed txn failed the first time too; replay only has to repeat it.
            let _ = tree.apply(&txn);
            replayed += 1;
        }
        assert_eq!(tree.last_zxid(), last, "replay applies every entry it reads");
    }
}

#[cfg(test)]
mod tests {
    use baton_log::{LogEntry, MemStore, Meta, Snapshot};
    use baton_znode::{CreateMode, CreateOp, Txn, TxnOp, encode_txn};
    use bytes::Bytes;

    use super::*;

    fn create(zxid: u64, path: &str) -> LogEntry {
        let op = TxnOp::Create(CreateOp {
            path: path.into(),
            data: Bytes::from_static(b"d"),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
        });
        let txn = Txn { zxid, time_ms: 1, session: 0, op };
        LogEntry { zxid, data: encode_txn(&txn).into() }
    }

    #[test]
    fn snapshot_plus_log_and_a_new_epoch() {
        let mut store = MemStore::new();
        store.set_meta(Meta { accepted_epoch: 1, current_epoch: 1 }).unwrap();
        let z = |n| Zxid::new(1, n).as_u64();
        store.append(&[create(z(1), "/a"), create(z(2), "/a"), create(z(3), "/b")]).unwrap();
        store.flush().unwrap();
        let recovered = recover(Box::new(store.clone()), Path::new("mem")).unwrap();
        assert_eq!(recovered.replayed, 3, "the failed create is replayed too");
        assert_eq!(recovered.tree.last_zxid(), z(3));
        assert!(recovered.tree.stat("/b").unwrap().is_some());
        assert_eq!(recovered.quorum.epoch(), 2);
        assert_eq!(recovered.store.meta().unwrap().current_epoch, 2);

        let snapshot = recovered.tree.encode_snapshot();
        store.save_snapshot(Snapshot { zxid: z(3), data: snapshot.into() }).unwrap();
        store.append(&[create(z(4), "/c")]).unwrap();
        let recovered = recover(Box::new(store), Path::new("mem")).unwrap();
        assert_eq!(recovered.replayed, 1);
        assert!(recovered.tree.stat("/c").unwrap().is_some());
    }

    #[test]
    fn an_undecodable_record_refuses_to_start() {
        let mut store = MemStore::new();
        store.append(&[LogEntry { zxid: 7, data: Bytes::from_static(b"garbage") }]).unwrap();
        let error = recover(Box::new(store), Path::new("/var/baton")).unwrap_err();
        assert!(matches!(error, ServerError::BadLogRecord { zxid: 7, .. }), "{error}");
        assert!(error.to_string().contains("/var/baton"), "{error}");
    }
}
