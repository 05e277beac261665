//! The storage thread: the one owner of the log store.
//!
//! Every store call blocks (sled I/O, fdatasync), so none runs on the async
//! runtime. One plain thread owns the store and serves commands in arrival order;
//! that order is also the durability order (a snapshot saved after a commit is
//! saved after that commit's flush). Async callers send a command and await its
//! reply. When every [`Storage`] handle is gone the thread flushes once more and
//! closes the store.

use std::thread::JoinHandle;

use baton_log::{LogEntry, LogError, LogStore, Meta, Snapshot};
use tokio::sync::{mpsc, oneshot};

use crate::ServerError;

/// Commands waiting for the storage thread. The driver has at most one commit in
/// flight and the snapshotter one snapshot, so this is never the limit in practice.
pub(crate) const STORAGE_QUEUE_MAX: usize = 16;

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
    /// Save a snapshot, then purge: keep the newest `keep` snapshots and the log
    /// after the oldest of them. Replies with the number of log entries purged.
    Snapshot {
        snapshot: Snapshot,
        keep: usize,
        reply: oneshot::Sender<Result<usize, LogError>>,
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
    pub(crate) fn spawn(
        store: Box<dyn LogStore>,
    ) -> std::io::Result<(Storage, JoinHandle<Result<(), LogError>>)> {
        let (commands, receiver) = mpsc::channel(STORAGE_QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("baton-storage".into())
            .spawn(move || serve(store, receiver))?;
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

    pub(crate) async fn save_snapshot(
        &self,
        snapshot: Snapshot,
        keep: usize,
    ) -> Result<usize, ServerError> {
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
) -> Result<(), LogError> {
    while let Some(command) = commands.blocking_recv() {
        tracing::trace!(?command, "storage");
        match command {
            Command::Commit { entries, reply } => {
                let result = store.append(&entries).and_then(|()| store.flush());
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
                let result = store.save_snapshot(snapshot).and_then(|()| store.purge(keep));
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
        let (storage, thread) = Storage::spawn(Box::new(mem)).unwrap();
        let error = storage.commit(vec![entry(1)]).await.unwrap_err();
        assert!(matches!(error, ServerError::Storage(_)), "{error}");
        let error = storage.commit(vec![entry(2)]).await.unwrap_err();
        assert!(matches!(error, ServerError::TaskFailed { .. }), "{error}");
        drop(storage);
        thread.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn snapshots_and_meta_go_through() {
        let (storage, thread) = Storage::spawn(Box::new(MemStore::new())).unwrap();
        storage.commit(vec![entry(1), entry(2)]).await.unwrap();
        storage.set_meta(Meta { accepted_epoch: 1, current_epoch: 1 }).await.unwrap();
        let snapshot = Snapshot { zxid: 2, data: Bytes::from_static(b"tree") };
        assert_eq!(storage.save_snapshot(snapshot, 1).await.unwrap(), 2);
        drop(storage);
        thread.join().unwrap().unwrap();
    }
}
