//! The storage thread: the one owner of the log store.
//!
//! Every store call blocks (sled I/O, fdatasync), so none runs on the async
//! runtime. One plain thread owns the store and serves commands in arrival order;
//! that order is also the durability order (a snapshot saved after a commit is
//! saved after that commit's flush). Async callers send a command and await its
//! reply. When every [`Storage`] handle is gone the thread flushes once more and
//! closes the store.
//!
//! A purge after a snapshot (deleting the log the snapshot covers) runs in steps of
//! [`PURGE_STEP_ENTRIES`] entries while nothing else is queued, so that commits never
//! wait behind it.
//!
//! The thread also keeps the member's durable promise ([`Promised`]): after every
//! change of the log, before the command's reply (and so before any ACK relying on
//! it), the promise file says where the log ends, so that a disk that later loses
//! acknowledged entries is caught on the next start. While the member is damaged the
//! promise never goes down, until the driver reports it repaired.

use std::thread::JoinHandle;

use baton_log::{
    Damage, LogEntry, LogError, LogStore, Meta, Promise, PromiseFile, ScrubCursor, Snapshot,
    SnapshotWriter,
};
use tokio::sync::{
    mpsc::{self, error::TryRecvError},
    oneshot,
};

use crate::ServerError;

/// Commands waiting for the storage thread. The driver has at most one commit in
/// flight and the snapshotter one snapshot, so this is never the limit in practice.
pub(crate) const STORAGE_QUEUE_MAX: usize = 16;
/// Log entries one purge step deletes.
pub(crate) const PURGE_STEP_ENTRIES: usize = 256;

enum Command {
    /// Append a batch and flush it: one durability barrier per batch.
    Commit {
        entries: Vec<LogEntry>,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    SetMeta {
        meta: Meta,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    /// Remove every entry after `zxid` and flush (a follower's TRUNC).
    Truncate {
        after: u64,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    /// Replace the whole log by a snapshot and flush (a follower's SNAP).
    Install {
        snapshot: Snapshot,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    /// Save a snapshot, or take note of one the store's snapshot writer saved (the
    /// reply), then purge in the background: keep the newest `keep` snapshots and
    /// the log after the oldest of them.
    Snapshot {
        snapshot: SnapshotSave,
        keep: usize,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    /// Replace every log entry from `from` on by `entries` (good copies from memory
    /// of a part of the log found damaged), then flush.
    Rewrite {
        from: u64,
        entries: Vec<LogEntry>,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    /// The damaged member took a leader's history: its promise follows its log again.
    Repaired {
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    /// Verify up to `bytes_max` stored bytes where the last step stopped.
    Scrub {
        bytes_max: usize,
        reply: oneshot::Sender<Result<Scrubbed, LogError>>,
    },
}

/// What one scrub step verified and found.
#[derive(Debug, Default)]
pub(crate) struct Scrubbed {
    pub(crate) bytes: usize,
    pub(crate) damage: Vec<Damage>,
    /// This step finished a pass over the whole store.
    pub(crate) pass_done: bool,
}

/// The member's durable promise and what it is computed from.
#[derive(Debug)]
pub(crate) struct Promised {
    pub(crate) file: PromiseFile,
    /// As last written.
    pub(crate) promise: Promise,
    /// Set while the member is damaged: what it had promised before the loss
    /// (`u64::MAX` if unknown). The promise stays at least this until repaired.
    pub(crate) floor: Option<u64>,
    /// The newest snapshot's zxid: where the history ends when the log is empty.
    pub(crate) base: u64,
}

impl Promised {
    /// A fresh promise file in `dir` (for tests of the parts around the store).
    #[cfg(test)]
    pub(crate) fn fresh(dir: &std::path::Path) -> Promised {
        let (file, _) = PromiseFile::open(dir, false).expect("promise file");
        Promised { file, promise: Promise::default(), floor: None, base: 0 }
    }

    /// Writes the promise for where `store`'s history ends now (if it changed).
    fn settle(&mut self, store: &dyn LogStore) -> Result<(), LogError> {
        let end = store.last_zxid().unwrap_or(0).max(self.base);
        let zxid = self.floor.map_or(end, |floor| floor.max(end));
        if zxid != self.promise.zxid {
            self.write(Promise { zxid, ..self.promise })?;
        }
        Ok(())
    }

    fn write(&mut self, promise: Promise) -> Result<(), LogError> {
        self.file.write(promise)?;
        self.promise = promise;
        Ok(())
    }
}

/// A snapshot for the storage thread: to save, or saved already by the store's
/// snapshot writer (at this zxid).
enum SnapshotSave {
    Here(Snapshot),
    Written(u64),
}

/// A handle to the storage thread. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    commands: mpsc::Sender<Command>,
    /// Saves snapshots beside the thread, which goes on with commits meanwhile
    /// (None: the store has none, and the thread saves them).
    snapshot_writer: Option<std::sync::Arc<dyn SnapshotWriter>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Commit { entries, .. } => write!(f, "Commit({} entries)", entries.len()),
            Command::SetMeta { meta, .. } => write!(f, "SetMeta({meta:?})"),
            Command::Truncate { after, .. } => write!(f, "Truncate(after {after:#x})"),
            Command::Install { snapshot, .. } => write!(f, "Install({:#x})", snapshot.zxid),
            Command::Snapshot { snapshot: SnapshotSave::Here(snapshot), keep, .. } => {
                write!(f, "Snapshot({:#x}, keep {keep})", snapshot.zxid)
            }
            Command::Snapshot { snapshot: SnapshotSave::Written(zxid), keep, .. } => {
                write!(f, "Snapshot({zxid:#x} written, keep {keep})")
            }
            Command::Rewrite { from, entries, .. } => {
                write!(f, "Rewrite(from {from:#x}, {} entries)", entries.len())
            }
            Command::Repaired { .. } => write!(f, "Repaired"),
            Command::Scrub { bytes_max, .. } => write!(f, "Scrub({bytes_max} bytes)"),
        }
    }
}

/// A commit (append and flush) taking this long is logged as a warning (and one a
/// twentieth as long at debug level).
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Storage {
    /// Starts the thread that owns `store`. Its result is the final flush's.
    /// `purged` is told how many log entries each completed purge deleted, `flushed`
    /// how long each commit (append + flush) took.
    pub(crate) fn spawn(
        store: Box<dyn LogStore>,
        promised: Promised,
        purged: impl Fn(usize) + Send + 'static,
        flushed: impl Fn(std::time::Duration) + Send + 'static,
    ) -> std::io::Result<(Storage, JoinHandle<Result<(), LogError>>)> {
        let (commands, receiver) = mpsc::channel(STORAGE_QUEUE_MAX);
        let snapshot_writer = store.snapshot_writer();
        let thread = std::thread::Builder::new()
            .name("baton-storage".into())
            .spawn(move || serve(store, promised, receiver, purged, flushed))?;
        Ok((Storage { commands, snapshot_writer }, thread))
    }

    /// Queues the append and flush of `entries` and returns at once: the receiver
    /// answers once they are durable, and only then may they be applied and
    /// acknowledged. Commands are served in order, so flushes queued one after
    /// another complete in that order.
    pub(crate) async fn submit_commit(
        &self,
        entries: Vec<LogEntry>,
    ) -> Result<oneshot::Receiver<Result<(), LogError>>, ServerError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Commit { entries, reply }).await.map_err(|_| thread_gone())?;
        Ok(answer)
    }

    /// Appends `entries` and waits until they are durable (tests of the thread).
    #[cfg(test)]
    pub(crate) async fn commit(&self, entries: Vec<LogEntry>) -> Result<(), ServerError> {
        Storage::committed(self.submit_commit(entries).await?.await)
    }

    /// What a receiver from [`Storage::submit_commit`] answered.
    pub(crate) fn committed(
        answer: Result<Result<(), LogError>, oneshot::error::RecvError>,
    ) -> Result<(), ServerError> {
        answer.map_err(|_| thread_gone())?.map_err(ServerError::Storage)
    }

    pub(crate) async fn set_meta(&self, meta: Meta) -> Result<(), ServerError> {
        self.call(|reply| Command::SetMeta { meta, reply }).await
    }

    pub(crate) async fn truncate_after(&self, after: u64) -> Result<(), ServerError> {
        self.call(|reply| Command::Truncate { after, reply }).await
    }

    /// Drops every log entry and saves `snapshot` as the state to start from.
    pub(crate) async fn install(&self, snapshot: Snapshot) -> Result<(), ServerError> {
        self.call(|reply| Command::Install { snapshot, reply }).await
    }

    /// Saves `snapshot` (durable on return); the purge it allows follows. With a
    /// snapshot writer, the write and its sync (a hundred megabytes at a million
    /// znodes) happen on a background thread while the storage thread goes on with
    /// commits; the thread then only takes note of it.
    pub(crate) async fn save_snapshot(
        &self,
        snapshot: Snapshot,
        keep: usize,
    ) -> Result<(), ServerError> {
        let snapshot = match self.snapshot_writer.clone() {
            None => SnapshotSave::Here(snapshot),
            Some(writer) => {
                let zxid = snapshot.zxid;
                crate::background::run("baton-snapshot-save", move || writer.write(snapshot))
                    .await?
                    .map_err(ServerError::Storage)?;
                SnapshotSave::Written(zxid)
            }
        };
        self.call(|reply| Command::Snapshot { snapshot, keep, reply }).await
    }

    /// Replaces every log entry from `from` on by `entries` (durable on return).
    pub(crate) async fn rewrite(
        &self,
        from: u64,
        entries: Vec<LogEntry>,
    ) -> Result<(), ServerError> {
        self.call(|reply| Command::Rewrite { from, entries, reply }).await
    }

    /// The member is no longer damaged: its promise follows its log again.
    pub(crate) async fn repaired(&self) -> Result<(), ServerError> {
        self.call(|reply| Command::Repaired { reply }).await
    }

    /// Verifies up to `bytes_max` more stored bytes.
    pub(crate) async fn scrub(&self, bytes_max: usize) -> Result<Scrubbed, ServerError> {
        self.call(|reply| Command::Scrub { bytes_max, reply }).await
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, LogError>>) -> Command,
    ) -> Result<T, ServerError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| thread_gone())?;
        answer.await.map_err(|_| thread_gone())?.map_err(ServerError::Storage)
    }
}

fn thread_gone() -> ServerError {
    ServerError::TaskFailed {
        task: "storage thread",
        message: "it exited (after a storage error or a panic)".into(),
    }
}

fn serve(
    mut store: Box<dyn LogStore>,
    mut promised: Promised,
    mut commands: mpsc::Receiver<Command>,
    purged: impl Fn(usize),
    flushed: impl Fn(std::time::Duration),
) -> Result<(), LogError> {
    // (snapshots to keep, entries deleted so far) of the purge under way.
    let mut purging: Option<(usize, usize)> = None;
    let mut scrub_at = ScrubCursor::default();
    loop {
        let command = match purging {
            None => commands.blocking_recv(),
            Some((keep, deleted)) => match commands.try_recv() {
                Ok(command) => Some(command),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => {
                    let step = store.purge_step(keep, PURGE_STEP_ENTRIES)?;
                    let deleted = deleted + step.deleted;
                    if step.done {
                        tracing::debug!(deleted, "purge done");
                        purged(deleted);
                        purging = None;
                    } else {
                        purging = Some((keep, deleted));
                    }
                    continue;
                }
            },
        };
        let Some(command) = command else { break };
        tracing::trace!(?command, "storage");
        match command {
            Command::Commit { entries, reply } => {
                let started = std::time::Instant::now();
                // A store with a journal keeps the promise of its appends there, made
                // durable by the same flush: the file is written for the other changes.
                let journaled = store.journal_end().is_some();
                let appended = store.append(&entries);
                let append_took = started.elapsed();
                let result = appended.and_then(|()| store.flush()).and_then(|()| {
                    if journaled { Ok(()) } else { promised.settle(store.as_ref()) }
                });
                let took = started.elapsed();
                flushed(took);
                if took >= SLOW_COMMIT {
                    // As etcd warns of a slow fdatasync: the disk (or sled) held every
                    // write queued behind this one.
                    tracing::warn!(
                        took_ms = took.as_millis(),
                        append_ms = append_took.as_millis(),
                        entries = entries.len(),
                        "storage: a slow commit"
                    );
                } else if took >= SLOW_COMMIT / 20 {
                    tracing::debug!(
                        took_ms = took.as_millis(),
                        append_ms = append_took.as_millis(),
                        entries = entries.len(),
                        "storage: a commit took long"
                    );
                }
                if fail_stop(reply, result) {
                    return Ok(());
                }
            }
            Command::SetMeta { meta, reply } => {
                let promise = Promise {
                    accepted_epoch: meta.accepted_epoch,
                    current_epoch: meta.current_epoch,
                    ..promised.promise
                };
                let result = store.set_meta(meta).and_then(|()| promised.write(promise));
                if fail_stop(reply, result) {
                    return Ok(());
                }
            }
            Command::Truncate { after, reply } => {
                let result = store
                    .truncate_after(after)
                    .and_then(|()| store.flush())
                    .and_then(|()| promised.settle(store.as_ref()));
                if fail_stop(reply, result) {
                    return Ok(());
                }
            }
            Command::Install { snapshot, reply } => {
                let zxid = snapshot.zxid;
                let result = store
                    .truncate_after(0)
                    .and_then(|()| store.save_snapshot(snapshot))
                    .and_then(|()| store.flush())
                    .and_then(|()| {
                        promised.base = zxid;
                        promised.settle(store.as_ref())
                    });
                if fail_stop(reply, result) {
                    return Ok(());
                }
            }
            Command::Snapshot { snapshot, keep, reply } => {
                let (zxid, result) = match snapshot {
                    SnapshotSave::Here(snapshot) => (snapshot.zxid, store.save_snapshot(snapshot)),
                    SnapshotSave::Written(zxid) => (zxid, store.snapshot_written()),
                };
                if result.is_ok() {
                    promised.base = promised.base.max(zxid);
                    purging = Some((keep, purging.map_or(0, |(_, deleted)| deleted)));
                }
                let _ = reply.send(result);
            }
            Command::Rewrite { from, entries, reply } => {
                let result = store
                    .truncate_after(from.saturating_sub(1))
                    .and_then(|()| store.append(&entries))
                    .and_then(|()| store.flush())
                    .and_then(|()| promised.settle(store.as_ref()));
                if fail_stop(reply, result) {
                    return Ok(());
                }
            }
            Command::Repaired { reply } => {
                promised.floor = None;
                let result = store.repaired().and_then(|()| promised.settle(store.as_ref()));
                if fail_stop(reply, result) {
                    return Ok(());
                }
            }
            Command::Scrub { bytes_max, reply } => {
                let result = store.scrub_step(scrub_at, bytes_max).map(|step| {
                    scrub_at = step.next.unwrap_or_default();
                    Scrubbed {
                        bytes: step.bytes,
                        damage: step.damage,
                        pass_done: step.next.is_none(),
                    }
                });
                let _ = reply.send(result);
            }
        }
    }
    store.flush()
}

/// Answers a command that changes the store; true if it failed: the durability of
/// what it wrote is unknown, so the thread accepts nothing more (fail-stop).
fn fail_stop(reply: oneshot::Sender<Result<(), LogError>>, result: Result<(), LogError>) -> bool {
    let failed = result.is_err();
    let _ = reply.send(result);
    failed
}

#[cfg(test)]
mod tests {
    use baton_log::MemStore;
    use bytes::Bytes;

    use super::*;

    fn entry(zxid: u64) -> LogEntry {
        LogEntry { zxid, data: Bytes::from_static(b"txn") }
    }

    #[tokio::test]
    async fn commits_in_order_and_stops_after_a_failed_flush() {
        let mut mem = MemStore::new();
        mem.fail_next_flushes(1);
        let dir = tempfile::tempdir().unwrap();
        let promised = Promised::fresh(dir.path());
        let (storage, thread) = Storage::spawn(Box::new(mem), promised, |_| {}, |_| {}).unwrap();
        let error = storage.commit(vec![entry(1)]).await.unwrap_err();
        assert!(matches!(error, ServerError::Storage(_)), "{error}");
        let error = storage.commit(vec![entry(2)]).await.unwrap_err();
        assert!(matches!(error, ServerError::TaskFailed { .. }), "{error}");
        drop(storage);
        thread.join().unwrap().unwrap();
    }

    /// What the promise file in `dir` holds now.
    fn promised_zxid(dir: &std::path::Path) -> u64 {
        match PromiseFile::open(dir, false).unwrap().1 {
            baton_log::PromiseState::Valid(promise) => promise.zxid,
            other => panic!("no valid promise: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_promise_follows_the_log_and_holds_while_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, thread) =
            Storage::spawn(Box::new(MemStore::new()), Promised::fresh(dir.path()), |_| {}, |_| {})
                .unwrap();
        storage.commit(vec![entry(1), entry(2), entry(3)]).await.unwrap();
        assert_eq!(promised_zxid(dir.path()), 3, "written before the commit's reply");
        storage.set_meta(Meta { accepted_epoch: 4, current_epoch: 3 }).await.unwrap();
        storage.truncate_after(2).await.unwrap();
        assert_eq!(promised_zxid(dir.path()), 2, "a TRUNC takes back unacknowledged proposals");
        storage.install(Snapshot { zxid: 9, data: Bytes::from_static(b"tree") }).await.unwrap();
        assert_eq!(promised_zxid(dir.path()), 9);
        drop(storage);
        thread.join().unwrap().unwrap();
        match PromiseFile::open(dir.path(), false).unwrap().1 {
            baton_log::PromiseState::Valid(promise) => {
                assert_eq!((promise.accepted_epoch, promise.current_epoch), (4, 3));
            }
            other => panic!("{other:?}"),
        }

        // A damaged member: the promise stays at what it had promised until repaired.
        let dir = tempfile::tempdir().unwrap();
        let promised = Promised { floor: Some(20), ..Promised::fresh(dir.path()) };
        let (storage, thread) =
            Storage::spawn(Box::new(MemStore::new()), promised, |_| {}, |_| {}).unwrap();
        storage.commit(vec![entry(1), entry(2)]).await.unwrap();
        assert_eq!(promised_zxid(dir.path()), 20);
        storage.truncate_after(1).await.unwrap();
        assert_eq!(promised_zxid(dir.path()), 20, "never lowered while damaged");
        storage.repaired().await.unwrap();
        assert_eq!(promised_zxid(dir.path()), 1, "repaired: the log again");
        drop(storage);
        thread.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_damaged_record_is_rewritten_from_good_copies() {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = MemStore::new();
        mem.append(&[entry(1), entry(2), entry(3)]).unwrap();
        mem.flush().unwrap();
        mem.corrupt_entry(2);
        let (storage, thread) =
            Storage::spawn(Box::new(mem), Promised::fresh(dir.path()), |_| {}, |_| {}).unwrap();
        let scrubbed = storage.scrub(1 << 20).await.unwrap();
        assert_eq!(scrubbed.damage.len(), 1, "{scrubbed:?}");
        storage.rewrite(2, vec![entry(2), entry(3)]).await.unwrap();
        let scrubbed = storage.scrub(1 << 20).await.unwrap();
        assert!(scrubbed.damage.is_empty(), "{scrubbed:?}");
        drop(storage);
        thread.join().unwrap().unwrap();
    }

    /// Saved by the storage thread (the memory store) or beside it by the store's
    /// snapshot writer (sled): either way durable, and the purge follows.
    #[tokio::test]
    async fn snapshots_and_meta_go_through_and_the_purge_follows() {
        snapshot_then_purge(Box::new(MemStore::new())).await;
        let dir = tempfile::tempdir().unwrap();
        let store = baton_log::SledStore::open(&dir.path().join("log")).unwrap();
        assert!(store.snapshot_writer().is_some());
        snapshot_then_purge(Box::new(store)).await;
        let store = baton_log::SledStore::open(&dir.path().join("log")).unwrap();
        let latest = store.latest_snapshot().unwrap().expect("the snapshot");
        assert_eq!(latest.zxid, 2);
        assert_eq!(store.first_zxid(), Some(3), "purged up to it");
    }

    async fn snapshot_then_purge(store: Box<dyn LogStore>) {
        let (told, purged) = std::sync::mpsc::channel();
        let dir = tempfile::tempdir().unwrap();
        let promised = Promised::fresh(dir.path());
        let (storage, thread) =
            Storage::spawn(store, promised, move |n| told.send(n).unwrap(), |_| {}).unwrap();
        storage.commit(vec![entry(1), entry(2), entry(3)]).await.unwrap();
        storage.set_meta(Meta { accepted_epoch: 1, current_epoch: 1 }).await.unwrap();
        let snapshot = Snapshot { zxid: 2, data: Bytes::from_static(b"tree") };
        storage.save_snapshot(snapshot, 1).await.unwrap();
        assert_eq!(purged.recv().unwrap(), 2, "entries 1 and 2 are in the snapshot");
        storage.commit(vec![entry(4)]).await.unwrap();
        drop(storage);
        thread.join().unwrap().unwrap();
    }
}
