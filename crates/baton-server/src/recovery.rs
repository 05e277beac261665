//! Start-up: open the store and read what the member starts from.
//!
//! Every server is a ZAB member (a server without peers: an ensemble of one), and
//! starts from its newest valid snapshot only. The logged entries after it are
//! handed to the node, which commits them when its leader says so (an ensemble of
//! one: when it elects itself, at once) and the driver applies them then. A
//! standalone data directory of an earlier release is the same layout, and opens
//! this way with all of its data.
//!
//! A log record that passed its checksum but does not decode as its own txn is not
//! something to skip: the server refuses to start and names it.

use std::path::Path;

use baton_log::{LogEntry, LogError, LogStore, Meta, SledOptions, SledStore};
use baton_quorum::{Epochs, Zxid};
use baton_znode::{DataTree, DecodeError, decode_txn};

use crate::ServerError;

/// Log entries read from the store per call while recovering.
pub(crate) const REPLAY_CHUNK_ENTRIES: usize = 1_024;

/// How long opening waits for sled's lock. Another live process holds it until it
/// exits; the wait only covers a store closed a moment ago in this process.
pub(crate) const LOCK_WAIT_MS: u64 = 500;

/// What a member starts from: the tree of the newest snapshot (the log after it
/// may hold proposals that were never committed: the leader decides), the logged
/// entries after it, and the persisted epochs as they are.
pub(crate) struct Recovered {
    pub(crate) store: Box<dyn LogStore>,
    pub(crate) tree: DataTree,
    pub(crate) epochs: Epochs,
    pub(crate) log: Vec<LogEntry>,
}

impl std::fmt::Debug for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovered")
            .field("tree_zxid", &self.tree.last_zxid())
            .field("epochs", &self.epochs)
            .field("logged", &self.log.len())
            .finish_non_exhaustive()
    }
}

/// The store's meta for `epochs`.
pub(crate) fn meta_of(epochs: Epochs) -> Meta {
    Meta { accepted_epoch: epochs.accepted_epoch, current_epoch: epochs.current_epoch }
}

/// Opens the sled store in `dir` (creating it) and reads what the member starts
/// from. Blocking.
pub(crate) fn open(dir: &Path, fsync: bool) -> Result<Recovered, ServerError> {
    let started = std::time::Instant::now();
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
    let opened_ms = started.elapsed().as_millis();
    let recovered = recover(Box::new(store), dir)?;
    tracing::info!(
        snapshot_zxid = %Zxid::from_u64(recovered.tree.last_zxid()),
        // Logged entries after the snapshot: the node commits them, the driver
        // applies them (an ensemble of one: before it serves).
        replayed = recovered.log.len(),
        opened_ms,
        total_ms = started.elapsed().as_millis(),
        accepted_epoch = recovered.epochs.accepted_epoch,
        current_epoch = recovered.epochs.current_epoch,
        "recovered"
    );
    Ok(recovered)
}

/// Reads the newest snapshot, the log after it (each entry checked to decode as
/// its own txn) and the epochs from `store`; `dir` names it in errors.
pub(crate) fn recover(store: Box<dyn LogStore>, dir: &Path) -> Result<Recovered, ServerError> {
    let tree = match store.latest_snapshot()? {
        Some(snapshot) => DataTree::decode_snapshot(&snapshot.data).map_err(|source| {
            ServerError::BadSnapshot { dir: dir.to_path_buf(), zxid: snapshot.zxid, source }
        })?,
        None => DataTree::new(),
    };
    let mut log: Vec<LogEntry> = Vec::new();
    loop {
        let from = log.last().map_or(tree.last_zxid(), |e| e.zxid) + 1;
        let entries = store.read(from, REPLAY_CHUNK_ENTRIES)?;
        if entries.is_empty() {
            break;
        }
        for entry in &entries {
            // Checked now so that a bad record stops the start, not a later apply.
            let bad = |reason: String| ServerError::BadLogRecord {
                dir: dir.to_path_buf(),
                zxid: entry.zxid,
                source: DecodeError::Invalid { offset: 0, reason },
            };
            match decode_txn(&entry.data) {
                Ok(txn) if txn.zxid == entry.zxid => {}
                Ok(txn) => return Err(bad(format!("the record holds txn {:#x}", txn.zxid))),
                Err(source) => {
                    return Err(ServerError::BadLogRecord {
                        dir: dir.to_path_buf(),
                        zxid: entry.zxid,
                        source,
                    });
                }
            }
        }
        log.extend(entries);
    }
    let meta = store.meta()?;
    let epochs = Epochs { accepted_epoch: meta.accepted_epoch, current_epoch: meta.current_epoch };
    Ok(Recovered { store, tree, epochs, log })
}

#[cfg(test)]
mod tests {
    use baton_log::{MemStore, Snapshot};
    use baton_znode::{CreateMode, CreateOp, Txn, TxnOp, encode_txn};
    use bytes::Bytes;

    use super::*;

    fn create(zxid: u64, path: &str) -> LogEntry {
        let op = TxnOp::Create(CreateOp {
            acl: baton_znode::acl::open_acl(),
            path: path.into(),
            data: Bytes::from_static(b"d"),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
        });
        let txn = Txn { auth: baton_znode::acl::Auth::none(), zxid, time_ms: 1, session: 0, op };
        LogEntry { zxid, data: encode_txn(&txn).into() }
    }

    #[test]
    fn the_newest_snapshot_and_the_log_after_it() {
        let mut store = MemStore::new();
        store.set_meta(Meta { accepted_epoch: 2, current_epoch: 1 }).unwrap();
        let z = |n| Zxid::new(1, n).as_u64();
        store.append(&[create(z(1), "/a"), create(z(2), "/a"), create(z(3), "/b")]).unwrap();
        store.flush().unwrap();
        let recovered = recover(Box::new(store.clone()), Path::new("mem")).unwrap();
        assert_eq!(recovered.tree.last_zxid(), 0, "no snapshot: the empty tree");
        assert_eq!(recovered.log.iter().map(|e| e.zxid).collect::<Vec<_>>(), [z(1), z(2), z(3)]);
        assert_eq!(recovered.epochs, Epochs { accepted_epoch: 2, current_epoch: 1 });

        let mut tree = DataTree::new();
        for entry in &recovered.log {
            let _ = tree.apply(&decode_txn(&entry.data).unwrap());
        }
        store.save_snapshot(Snapshot { zxid: z(3), data: tree.encode_snapshot().into() }).unwrap();
        store.append(&[create(z(4), "/c")]).unwrap();
        let recovered = recover(Box::new(store), Path::new("mem")).unwrap();
        assert_eq!(recovered.tree.last_zxid(), z(3));
        assert!(recovered.tree.stat("/b").unwrap().is_some());
        assert_eq!(recovered.log.iter().map(|e| e.zxid).collect::<Vec<_>>(), [z(4)]);
    }

    #[test]
    fn an_undecodable_record_refuses_to_start() {
        let mut store = MemStore::new();
        store.append(&[LogEntry { zxid: 7, data: Bytes::from_static(b"garbage") }]).unwrap();
        let error = recover(Box::new(store), Path::new("/var/baton")).unwrap_err();
        assert!(matches!(error, ServerError::BadLogRecord { zxid: 7, .. }), "{error}");
        assert!(error.to_string().contains("/var/baton"), "{error}");
        let mut store = MemStore::new();
        store.append(&[create(9, "/other")]).unwrap();
        store.append(&[LogEntry { zxid: 10, data: create(11, "/x").data }]).unwrap();
        let error = recover(Box::new(store), Path::new("/var/baton")).unwrap_err();
        assert!(matches!(error, ServerError::BadLogRecord { zxid: 10, .. }), "{error}");
        assert!(error.to_string().contains("0xb"), "{error}");
    }
}
