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
//!
//! # Damage: a disk that lost what this member acknowledged
//! Beside the store, the promise file says how far the log reached when this member
//! last acknowledged anything (and a second copy of the epochs). Opening compares:
//! a log that now ends before the promise — a lost suffix ("fsync lied"), a corrupt
//! record (the store cuts the log there), a newest snapshot that is corrupt with the
//! log after it no longer connecting to any older one, an unreadable promise file —
//! makes the member damaged ([`Damage`]): it starts, but is no candidate and its
//! votes count for nobody until it has taken a leader's history (baton-quorum's
//! `Node::recovering`). An ensemble of one has nobody to repair from: it refuses to
//! start ([`ServerError::DataLoss`]) unless `--accept-data-loss`.

use std::path::Path;

use baton_log::{
    LogEntry, LogError, LogStore, Meta, Promise, PromiseFile, PromiseState, SledOptions, SledStore,
};
use baton_quorum::{Epochs, Zxid};
use baton_znode::{DataTree, DecodeError};

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
    /// The promise file, as just written for the state recovered.
    pub(crate) promise: Option<(PromiseFile, Promise)>,
    /// Set when the disk lost entries this member had acknowledged.
    pub(crate) damage: Option<Damage>,
    /// sled's meta failed its check: the epochs must come from the promise file.
    pub(crate) meta_error: Option<LogError>,
}

/// What a damaged member lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// How far it had acknowledged (`None`: unknown, the promise file is unreadable).
    pub(crate) promised: Option<u64>,
    /// Where its usable history ends now.
    pub(crate) log_end: u64,
    /// What was found, for the log line.
    pub(crate) cause: String,
}

impl Damage {
    /// The promise to keep until repaired.
    pub(crate) fn floor(&self) -> u64 {
        self.promised.unwrap_or(u64::MAX)
    }
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

/// Opens the sled store and the promise in `dir` (creating them) and reads what the
/// member starts from; `alone`: an ensemble of one (it cannot repair), and
/// `accept_data_loss`: serve what is left of a damaged disk. Blocking.
pub(crate) fn open(
    dir: &Path,
    fsync: bool,
    alone: bool,
    accept_data_loss: bool,
) -> Result<Recovered, ServerError> {
    let started = std::time::Instant::now();
    let options = SledOptions { fsync, lock_wait_ms: LOCK_WAIT_MS };
    let (file, state) = PromiseFile::open(dir, fsync)?;
    let mut recovered = match open_store(dir, &options).and_then(|store| recover(store, dir)) {
        Ok(recovered) => recovered,
        Err(error) if unreadable(&error) => {
            // Nothing of the store can be read: a member repairs all of it from its
            // peers, starting from an empty store; the broken files are kept aside
            // for inspection, never deleted.
            let cause = format!("the log store cannot be read ({error})");
            if alone && !accept_data_loss {
                return Err(ServerError::DataLoss { dir: dir.to_path_buf(), cause });
            }
            let aside = move_aside(dir, fsync)?;
            tracing::error!(
                %error,
                moved_to = %aside.display(),
                "the log store cannot be read: its files were moved aside; starting from an empty store"
            );
            let mut recovered = recover(open_store(dir, &options)?, dir)?;
            let cause = format!("{cause}; its files are in {}", aside.display());
            recovered.damage = Some(Damage { promised: None, log_end: 0, cause });
            recovered
        }
        Err(error) => return Err(error),
    };
    check_promise(&mut recovered, dir, state, alone, accept_data_loss)?;
    let promise = Promise {
        accepted_epoch: recovered.epochs.accepted_epoch,
        current_epoch: recovered.epochs.current_epoch,
        zxid: recovered.damage.as_ref().map_or(log_end(&recovered), Damage::floor),
    };
    let mut file = file;
    file.write(promise)?;
    recovered.promise = Some((file, promise));
    tracing::info!(
        snapshot_zxid = %Zxid::from_u64(recovered.tree.last_zxid()),
        // Logged entries after the snapshot: the node commits them, the driver
        // applies them (an ensemble of one: before it serves).
        replayed = recovered.log.len(),
        took_ms = started.elapsed().as_millis(),
        accepted_epoch = recovered.epochs.accepted_epoch,
        current_epoch = recovered.epochs.current_epoch,
        "recovered"
    );
    Ok(recovered)
}

/// Opens the sled store in `dir`.
fn open_store(dir: &Path, options: &SledOptions) -> Result<Box<dyn LogStore>, ServerError> {
    let store = SledStore::open_with(dir, options.clone()).map_err(|error| match error {
        LogError::Locked { path } => ServerError::DataDirInUse { path },
        other => ServerError::Storage(other),
    })?;
    if store.recovered_truncation() > 0 {
        tracing::warn!(
            records = store.recovered_truncation(),
            "dropped a torn or corrupt tail of the log (the promise tells whether it was acknowledged)"
        );
    }
    Ok(Box::new(store))
}

/// An error that says the store's files are damaged beyond what opening repairs
/// (not one of permissions, locks or a full disk).
fn unreadable(error: &ServerError) -> bool {
    matches!(error, ServerError::Storage(error) if error.is_damage())
}

/// Moves everything of the store in `dir` except the promise (and earlier such
/// moves) into a new `damaged-<seconds>` directory beside it; returns its path.
fn move_aside(dir: &Path, fsync: bool) -> Result<std::path::PathBuf, ServerError> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let mut aside = dir.join(format!("damaged-{seconds}"));
    let mut n = 0;
    while aside.exists() {
        n += 1;
        aside = dir.join(format!("damaged-{seconds}-{n}"));
    }
    std::fs::create_dir(&aside).map_err(LogError::Io)?;
    for entry in std::fs::read_dir(dir).map_err(LogError::Io)? {
        let entry = entry.map_err(LogError::Io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == baton_log::PROMISE_FILE || name.starts_with("damaged-") {
            continue;
        }
        std::fs::rename(entry.path(), aside.join(&*name)).map_err(LogError::Io)?;
    }
    if fsync {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(LogError::Io)?;
    }
    Ok(aside)
}

/// Where the recovered history ends: the last logged entry, else the snapshot.
pub(crate) fn log_end(recovered: &Recovered) -> u64 {
    recovered.log.last().map_or(recovered.tree.last_zxid(), |e| e.zxid)
}

/// Compares what was recovered with the durable promise (`state`): marks the member
/// damaged if its history ends before what it acknowledged, takes the epochs from
/// the promise where sled's meta lost them, and decides for a damaged member alone.
fn check_promise(
    recovered: &mut Recovered,
    dir: &Path,
    state: PromiseState,
    alone: bool,
    accept_data_loss: bool,
) -> Result<(), ServerError> {
    let end = log_end(recovered);
    let journaled = recovered.store.journal_end().unwrap_or(0);
    let journal_damaged = journaled == u64::MAX;
    if let Some(error) = recovered.meta_error.take() {
        // Without a second copy of the epochs, guessing them could let this member
        // accept an epoch it had already moved past.
        let PromiseState::Valid(promise) = state else { return Err(error.into()) };
        tracing::warn!(%error, "the log store's meta is corrupt; the epochs come from the promise file");
        let epochs =
            Epochs { accepted_epoch: promise.accepted_epoch, current_epoch: promise.current_epoch };
        recovered.epochs = epochs;
        recovered.store.set_meta(meta_of(epochs))?;
    }
    let promised = match state {
        PromiseState::Valid(promise) => {
            let from_promise = Epochs {
                accepted_epoch: promise.accepted_epoch,
                current_epoch: promise.current_epoch,
            };
            let epochs = &mut recovered.epochs;
            if (from_promise.accepted_epoch, from_promise.current_epoch)
                > (epochs.accepted_epoch, epochs.current_epoch)
            {
                tracing::warn!(
                    meta = ?*epochs,
                    promise = ?from_promise,
                    "the log store's meta lost its epochs; restored from the promise file"
                );
                epochs.accepted_epoch = epochs.accepted_epoch.max(from_promise.accepted_epoch);
                epochs.current_epoch = epochs.current_epoch.max(from_promise.current_epoch);
                recovered.store.set_meta(meta_of(*epochs))?;
            }
            // Appends are promised in the store's journal, flushed with them; the file
            // holds the rest (truncations, repairs, snapshots installed).
            Some(promise.zxid.max(journaled))
        }
        PromiseState::Missing if journaled > 0 => Some(journaled),
        PromiseState::Missing => {
            if end > 0 {
                tracing::info!(
                    log_end = %Zxid::from_u64(end),
                    "no promise file (a data directory of an older release): the log as it is becomes the promise"
                );
            }
            Some(end)
        }
        PromiseState::Damaged => None,
    };
    let found = recovered.damage.take();
    // Damage found in the store itself with no valid promise to say how far it went:
    // unknown, so that a crash before the repair still finds it damaged.
    let promised =
        if journal_damaged || (found.is_some() && !matches!(state, PromiseState::Valid(_))) {
            None
        } else {
            promised
        };
    let cause = match (promised, found) {
        (_, Some(found)) => Some(found.cause),
        (None, None) if journal_damaged => Some(
            "the journal of flushed entries is damaged: how far the log reached is unknown"
                .to_owned(),
        ),
        (None, None) => Some("the promise file is unreadable".to_owned()),
        (Some(promised), None) if promised > end => Some(format!(
            "the log ends at {} but this member acknowledged up to {}",
            Zxid::from_u64(end),
            Zxid::from_u64(promised)
        )),
        (Some(_), None) => None,
    };
    let Some(cause) = cause else { return Ok(()) };
    let damage = Damage { promised, log_end: end, cause };
    if accept_data_loss {
        tracing::error!(
            cause = %damage.cause,
            log_end = %Zxid::from_u64(end),
            "the disk lost acknowledged entries; --accept-data-loss: serving what is left"
        );
        return Ok(());
    }
    if alone {
        return Err(ServerError::DataLoss { dir: dir.to_path_buf(), cause: damage.cause });
    }
    tracing::warn!(
        cause = %damage.cause,
        log_end = %Zxid::from_u64(end),
        "the disk lost entries this member acknowledged: it will not vote until it has taken a leader's history"
    );
    recovered.damage = Some(damage);
    Ok(())
}

/// Reads the newest snapshot, the log after it (each entry checked to decode as
/// its own txn) and the epochs from `store`; `dir` names it in errors. A log that
/// does not connect to the snapshot (it follows a zxid the snapshot does not reach:
/// the newest snapshot was corrupt and the older ones purged) is dropped and
/// reported as damage.
pub(crate) fn recover(mut store: Box<dyn LogStore>, dir: &Path) -> Result<Recovered, ServerError> {
    let tree = match store.latest_snapshot()? {
        Some(snapshot) => DataTree::decode_snapshot(&snapshot.data).map_err(|source| {
            ServerError::BadSnapshot { dir: dir.to_path_buf(), zxid: snapshot.zxid, source }
        })?,
        None => DataTree::new(),
    };
    let mut damage = None;
    if let Some(follows) = store.log_follows()
        && follows > tree.last_zxid()
    {
        let cause = format!(
            "the log follows {} but the newest valid snapshot is at {}",
            Zxid::from_u64(follows),
            Zxid::from_u64(tree.last_zxid())
        );
        tracing::warn!(%cause, "dropping a log that no valid snapshot reaches");
        store.truncate_after(0)?;
        damage = Some(Damage { promised: None, log_end: tree.last_zxid(), cause });
    }
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
            match crate::membership::entry_txn(entry.zxid, &entry.data) {
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
    let (meta, meta_error) = match store.meta() {
        Ok(meta) => (meta, None),
        Err(error @ LogError::Corrupt { .. }) => (Meta::default(), Some(error)),
        Err(error) => return Err(error.into()),
    };
    let epochs = Epochs { accepted_epoch: meta.accepted_epoch, current_epoch: meta.current_epoch };
    Ok(Recovered { store, tree, epochs, log, promise: None, damage, meta_error })
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
            let _ = tree.apply(&baton_znode::decode_txn(&entry.data).unwrap());
        }
        store.save_snapshot(Snapshot { zxid: z(3), data: tree.encode_snapshot().into() }).unwrap();
        store.append(&[create(z(4), "/c")]).unwrap();
        let recovered = recover(Box::new(store), Path::new("mem")).unwrap();
        assert_eq!(recovered.tree.last_zxid(), z(3));
        assert!(recovered.tree.stat("/b").unwrap().is_some());
        assert_eq!(recovered.log.iter().map(|e| e.zxid).collect::<Vec<_>>(), [z(4)]);
    }

    fn promise(zxid: u64) -> PromiseState {
        PromiseState::Valid(Promise { accepted_epoch: 2, current_epoch: 1, zxid })
    }

    fn logged(upto: u32) -> MemStore {
        let mut store = MemStore::new();
        store.set_meta(Meta { accepted_epoch: 2, current_epoch: 1 }).unwrap();
        let entries: Vec<LogEntry> =
            (1..=upto).map(|n| create(Zxid::new(1, n).as_u64(), &format!("/n{n}"))).collect();
        store.append(&entries).unwrap();
        store.flush().unwrap();
        store
    }

    fn checked(
        store: MemStore,
        state: PromiseState,
        alone: bool,
        accept: bool,
    ) -> Result<Recovered, ServerError> {
        let mut recovered = recover(Box::new(store), Path::new("/var/baton")).unwrap();
        check_promise(&mut recovered, Path::new("/var/baton"), state, alone, accept)?;
        Ok(recovered)
    }

    #[test]
    fn a_log_that_ends_before_the_promise_is_damage() {
        let z = |n| Zxid::new(1, n).as_u64();
        // Intact: the log reaches the promise (or passes it: not yet promised).
        for state in [promise(z(3)), promise(z(2)), PromiseState::Missing] {
            let recovered = checked(logged(3), state, false, false).unwrap();
            assert_eq!(recovered.damage, None, "{state:?}");
        }
        // Lost acknowledged entries: a member of an ensemble starts damaged.
        let recovered = checked(logged(2), promise(z(5)), false, false).unwrap();
        let damage = recovered.damage.expect("damaged");
        assert_eq!((damage.promised, damage.log_end, damage.floor()), (Some(z(5)), z(2), z(5)));
        assert!(damage.cause.contains("acknowledged up to"), "{}", damage.cause);
        // An unreadable promise: what was promised is unknown.
        let recovered = checked(logged(2), PromiseState::Damaged, false, false).unwrap();
        assert_eq!(recovered.damage.expect("damaged").floor(), u64::MAX);
        // Alone, it cannot repair: it refuses to start, naming the directory...
        let error = checked(logged(2), promise(z(5)), true, false).unwrap_err();
        assert!(matches!(error, ServerError::DataLoss { .. }), "{error}");
        assert!(error.to_string().contains("/var/baton"), "{error}");
        assert!(error.to_string().contains("--accept-data-loss"), "{error}");
        // ...unless told to serve what is left.
        let recovered = checked(logged(2), promise(z(5)), true, true).unwrap();
        assert_eq!(recovered.damage, None);
    }

    #[test]
    fn damage_found_in_the_store_without_a_promise_is_unknown_until_repaired() {
        let mut recovered = recover(Box::new(logged(2)), Path::new("/var/baton")).unwrap();
        recovered.damage = Some(Damage { promised: None, log_end: 0, cause: "moved aside".into() });
        let dir = Path::new("/var/baton");
        check_promise(&mut recovered, dir, PromiseState::Missing, false, false).unwrap();
        assert_eq!(recovered.damage.expect("damaged").floor(), u64::MAX);
    }

    #[test]
    fn lost_or_corrupt_epochs_come_back_from_the_promise() {
        let mut store = logged(1);
        store.set_meta(Meta::default()).unwrap();
        let state = PromiseState::Valid(Promise { accepted_epoch: 7, current_epoch: 6, zxid: 0 });
        let recovered = checked(store, state, false, false).unwrap();
        assert_eq!(recovered.epochs, Epochs { accepted_epoch: 7, current_epoch: 6 });
        assert_eq!(recovered.store.meta().unwrap(), Meta { accepted_epoch: 7, current_epoch: 6 });
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
