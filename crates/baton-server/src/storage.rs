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

use std::thread::JoinHandle;

use baton_log::{LogEntry, LogError, LogStore, Meta, Snapshot};
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
    /// Save a snapshot (the reply), then purge in the background: keep the newest
    /// `keep` snapshots and the log after the oldest of them.
    Snapshot {
        snapshot: Snapshot,
        keep: usize,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
}

/// A handle to the storage thread. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Commit { entries, .. } => write!(f, "Commit({} entries)", entries.len()),
            Command::SetMeta { meta, .. } => write!(f, "SetMeta({meta:?})"),
            Command::Truncate { after, .. } => write!(f, "Truncate(after {after:#x})"),
            Command::Install { snapshot, .. } => write!(f, "Install({:#x})", snapshot.zxid),
            Command::Snapshot { snapshot, keep, .. } => {
                write!(f, "Snapshot({:#x}, keep {keep})", snapshot.zxid)
            }
        }
    }
}

impl Storage {
    /// Starts the thread that owns `store`. Its result is the final flush's.
    /// `purged` is told how many log entries each completed purge deleted, `flushed`
    /// how long each commit (append + flush) took.
    pub(crate) fn spawn(
        store: Box<dyn LogStore>,
        purged: impl Fn(usize) + Send + 'static,
        flushed: impl Fn(std::time::Duration) + Send + 'static,
    ) -> std::io::Result<(Storage, JoinHandle<Result<(), LogError>>)> {
        let (commands, receiver) = mpsc::channel(STORAGE_QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("baton-storage".into())
            .spawn(move || serve(store, receiver, purged, flushed))?;
        Ok((Storage { commands }, thread))
    }

    /// Appends `entries` and makes them durable. Only after Ok may they be applied
    /// and acknowledged.
    pub(crate) async fn commit(&self, entries: Vec<LogEntry>) -> Result<(), ServerError> {
        self.call(|reply| Command::Commit { entries, reply }).await
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

    /// Saves `snapshot` (durable on return); the purge it allows follows.
    pub(crate) async fn save_snapshot(
        &self,
        snapshot: Snapshot,
        keep: usize,
    ) -> Result<(), ServerError> {
        self.call(|reply| Command::Snapshot { snapshot, keep, reply }).await
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
    mut commands: mpsc::Receiver<Command>,
    purged: impl Fn(usize),
    flushed: impl Fn(std::time::Duration),
) -> Result<(), LogError> {
    // (snapshots to keep, entries deleted so far) of the purge under way.
    let mut purging: Option<(usize, usize)> = None;
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
                let result = store.append(&entries).and_then(|()| store.flush());
                flushed(started.elapsed());
                let failed = result.is_err();
                let _ = reply.send(result);
                if failed {
                    // The durability of the batch is unknown: accept nothing more.
                    return Ok(());
                }
            }
            Command::SetMeta { meta, reply } => {
                let _ = reply.send(store.set_meta(meta));
            }
            Command::Truncate { after, reply } => {
                let result = store.truncate_after(after).and_then(|()| store.flush());
                let failed = result.is_err();
                let _ = reply.send(result);
                if failed {
                    return Ok(());
                }
            }
            Command::Install { snapshot, reply } => {
                let result = store
                    .truncate_after(0)
                    .and_then(|()| store.save_snapshot(snapshot))
                    .and_then(|()| store.flush());
                let failed = result.is_err();
                let _ = reply.send(result);
                if failed {
                    return Ok(());
                }
            }
            Command::Snapshot { snapshot, keep, reply } => {
                let result = store.save_snapshot(snapshot);
                if result.is_ok() {
                    purging = Some((keep, purging.map_or(0, |(_, deleted)| deleted)));
                }
                let _ = reply.send(result);
            }
        }
    }
    store.flush()
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
        let (storage, thread) = Storage::spawn(Box::new(mem), |_| {}, |_| {}).unwrap();
        let error = storage.commit(vec![entry(1)]).await.unwrap_err();
        assert!(matches!(error, ServerError::Storage(_)), "{error}");
        let error = storage.commit(vec![entry(2)]).await.unwrap_err();
        assert!(matches!(error, ServerError::TaskFailed { .. }), "{error}");
        drop(storage);
        thread.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn snapshots_and_meta_go_through_and_the_purge_follows() {
        let (told, purged) = std::sync::mpsc::channel();
        let (storage, thread) =
            Storage::spawn(Box::new(MemStore::new()), move |n| told.send(n).unwrap(), |_| {})
                .unwrap();
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
