//! The driver: the one task that turns queued writes into committed, applied txns.
//!
//! # Order (for every batch; asserted below)
//! 1. take up to `batch_txns_max` queued writes;
//! 2. assign each write its zxid ([`Standalone::propose`]) and time (wall clock,
//!    never going back within a run), and encode it;
//! 3. append the batch to the log and flush it once (the storage thread);
//! 4. report the flushed prefix to the quorum ([`Standalone::persisted`]); in an
//!    ensemble of one it is committed at once;
//! 5. apply each txn to the tree in zxid order, all under one write lock (so readers
//!    see batch boundaries only); assert each is committed;
//! 6. reply to each write and barrier (sync) of the batch.
//!
//! Nothing is applied or answered before the flush that covers it returned. A
//! storage error in step 3 is fatal: the durability of the batch is unknown, so
//! its writes fail with a storage error and the driver stops, which stops the
//! server (fail-stop: never acknowledge what may not be durable).

use std::sync::Arc;

use baton_log::{LogEntry, Meta};
use baton_quorum::{Epochs, QuorumError, Standalone, Zxid};
use baton_znode::{OpResult, Txn, TxnError, encode_txn};
use tokio::sync::{mpsc, oneshot};

use crate::{
    ServerError, clock,
    metrics::Metrics,
    shared::Shared,
    shutdown::ShutdownListener,
    storage::Storage,
    write_queue::{TxnReply, Write, WriteError},
};

/// The driver and what it owns.
#[derive(Debug)]
pub(crate) struct Driver {
    writes: mpsc::Receiver<Write>,
    quorum: Standalone,
    storage: Storage,
    shared: Arc<Shared>,
    batch_txns_max: usize,
    /// Time of the last txn: txn times never go back, even if the clock does.
    last_time_ms: i64,
    snapshots: SnapshotTrigger,
    shutdown: ShutdownListener,
}

/// Asks the snapshotter for a snapshot every `every_txns` logged txns or
/// `every_bytes` logged bytes, whichever comes first (a few large txns, such as
/// multis of many creates, should not make a long log to replay at the next start).
#[derive(Debug)]
pub(crate) struct SnapshotTrigger {
    pub(crate) sender: mpsc::Sender<()>,
    pub(crate) every_txns: u64,
    pub(crate) every_bytes: u64,
    /// Logged since the last request (starts with the log found at recovery).
    pub(crate) since_last: u64,
    pub(crate) bytes_since_last: u64,
}

impl SnapshotTrigger {
    /// `txns` txns of `bytes` bytes were logged.
    pub(crate) fn logged(&mut self, txns: u64, bytes: u64) {
        self.since_last += txns;
        self.bytes_since_last += bytes;
    }

    /// Asks for a snapshot if one is due. A full channel means one is already
    /// pending: keep counting.
    pub(crate) fn maybe_request(&mut self) {
        let due = self.since_last >= self.every_txns || self.bytes_since_last >= self.every_bytes;
        if due && self.sender.try_send(()).is_ok() {
            self.since_last = 0;
            self.bytes_since_last = 0;
        }
    }
}

type TxnSender = oneshot::Sender<Result<TxnReply, WriteError>>;
type SyncSender = oneshot::Sender<Result<u64, WriteError>>;

/// A write of the batch being committed, with its txn once it has a zxid.
enum Pending {
    Txn(Txn, TxnSender),
    Sync(SyncSender),
}

/// A write of the batch once applied, waiting for its reply.
enum Done {
    Txn(u64, Result<OpResult, TxnError>, TxnSender),
    Sync(SyncSender),
}

impl Driver {
    pub(crate) fn new(
        writes: mpsc::Receiver<Write>,
        quorum: Standalone,
        storage: Storage,
        shared: Arc<Shared>,
        batch_txns_max: usize,
        snapshots: SnapshotTrigger,
        shutdown: ShutdownListener,
    ) -> Driver {
        assert!(batch_txns_max > 0, "a batch holds at least one write");
        let last_time_ms = 0;
        Driver {
            writes,
            quorum,
            storage,
            shared,
            batch_txns_max,
            last_time_ms,
            snapshots,
            shutdown,
        }
    }

    /// Runs until shutdown (then the queue is closed and what was queued before is
    /// still committed and answered) or until storage fails.
    pub(crate) async fn run(mut self) -> Result<(), ServerError> {
        let mut batch = Vec::with_capacity(self.batch_txns_max);
        let mut closing = false;
        loop {
            tokio::select! {
                // recv_many is cancel-safe: nothing is lost when shutdown wins.
                received = self.writes.recv_many(&mut batch, self.batch_txns_max) => {
                    if received == 0 {
                        break;
                    }
                    Metrics::sub(&self.shared.metrics.write_queue_depth, received as u64);
                    self.commit_batch(std::mem::take(&mut batch)).await?;
                }
                () = self.shutdown.recv(), if !closing => {
                    // New writes now fail with ShuttingDown; queued ones drain.
                    self.writes.close();
                    closing = true;
                }
            }
        }
        tracing::debug!("write queue drained; driver done");
        Ok(())
    }

    async fn commit_batch(&mut self, batch: Vec<Write>) -> Result<(), ServerError> {
        let mut pending = Vec::with_capacity(batch.len());
        let mut entries = Vec::new();
        let mut failure = None;
        for write in batch {
            match write {
                Write::Sync { reply } => pending.push(Pending::Sync(reply)),
                Write::Txn { session, op, reply } if failure.is_none() => {
                    match self.propose().await {
                        Ok(zxid) => {
                            let txn =
                                Txn { zxid: zxid.as_u64(), time_ms: self.now_ms(), session, op };
                            entries
                                .push(LogEntry { zxid: txn.zxid, data: encode_txn(&txn).into() });
                            pending.push(Pending::Txn(txn, reply));
                        }
                        Err(error) => {
                            let _ = reply.send(Err(WriteError::Storage(error.to_string())));
                            failure = Some(error);
                        }
                    }
                }
                Write::Txn { reply, .. } => {
                    let _ = reply.send(Err(WriteError::ShuttingDown));
                }
            }
        }
        if failure.is_none()
            && let Some(last) = entries.last().map(|e| Zxid::from_u64(e.zxid))
        {
            let count = entries.len() as u64;
            let bytes = entries.iter().map(|e| e.data.len() as u64).sum();
            match self.storage.commit(entries).await {
                Ok(()) => {
                    self.quorum.persisted(last);
                    Metrics::add(&self.shared.metrics.fsyncs_total, 1);
                    Metrics::add(&self.shared.metrics.batches_total, 1);
                    self.snapshots.logged(count, bytes);
                }
                Err(error) => failure = Some(error),
            }
        }
        if let Some(error) = failure {
            tracing::error!(%error, "cannot make a batch durable; stopping the server");
            fail_all(pending, &error);
            return Err(error);
        }
        self.apply_and_reply(pending);
        self.maybe_snapshot();
        Ok(())
    }

    /// The next zxid; starts a new epoch (persisted first) when the counter runs out.
    async fn propose(&mut self) -> Result<Zxid, ServerError> {
        match self.quorum.propose() {
            Ok(zxid) => Ok(zxid),
            Err(QuorumError::CounterExhausted { .. }) => {
                let epochs = self.quorum.new_epoch()?;
                self.storage.set_meta(meta_of(epochs)).await?;
                self.shared.set_epoch(epochs.current_epoch);
                tracing::info!(epoch = epochs.current_epoch, "zxid counter exhausted; new epoch");
                Ok(self.quorum.propose()?)
            }
            Err(error) => Err(error.into()),
        }
    }

    fn apply_and_reply(&mut self, pending: Vec<Pending>) {
        let committed = self.quorum.committed().as_u64();
        let mut done = Vec::with_capacity(pending.len());
        let (mut applied, mut failed) = (0, 0);
        let mut tree = self.shared.write_tree();
        for item in pending {
            match item {
                Pending::Txn(txn, reply) => {
                    assert!(txn.zxid <= committed, "applying {:#x} before its commit", txn.zxid);
                    let result = tree.apply(&txn);
                    // Watch events are queued now, under the write lock: before any
                    // reply or read can reflect the change.
                    self.shared.sessions.applied(&txn.op, txn.zxid, &result);
                    let result = result.map(|applied| applied.result);
                    applied += 1;
                    failed += u64::from(result.is_err());
                    done.push(Done::Txn(txn.zxid, result, reply));
                }
                Pending::Sync(reply) => done.push(Done::Sync(reply)),
            }
        }
        let applied_zxid = tree.last_zxid();
        drop(tree);
        Metrics::add(&self.shared.metrics.writes_total, applied);
        Metrics::add(&self.shared.metrics.writes_failed_total, failed);
        for item in done {
            match item {
                Done::Txn(zxid, result, reply) => {
                    let _ = reply.send(Ok(TxnReply { zxid, applied_zxid, result }));
                }
                Done::Sync(reply) => {
                    let _ = reply.send(Ok(applied_zxid));
                }
            }
        }
    }

    fn maybe_snapshot(&mut self) {
        self.snapshots.maybe_request();
    }

    fn now_ms(&mut self) -> i64 {
        self.last_time_ms = self.last_time_ms.max(clock::now_ms());
        self.last_time_ms
    }
}

pub(crate) fn meta_of(epochs: Epochs) -> Meta {
    Meta { accepted_epoch: epochs.accepted_epoch, current_epoch: epochs.current_epoch }
}

fn fail_all(pending: Vec<Pending>, error: &ServerError) {
    let error = WriteError::Storage(error.to_string());
    for item in pending {
        match item {
            Pending::Txn(_, reply) => {
                let _ = reply.send(Err(error.clone()));
            }
            Pending::Sync(reply) => {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use baton_log::MemStore;
    use baton_znode::{CreateMode, CreateOp, Limits, TxnOp};
    use bytes::Bytes;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::{
        recovery,
        shutdown::Shutdown,
        write_queue::{WriteQueue, write_queue},
    };

    struct Harness {
        writes: WriteQueue,
        shared: Arc<Shared>,
        driver: JoinHandle<Result<(), ServerError>>,
        snapshot_requests: mpsc::Receiver<()>,
        stop: Shutdown,
    }

    fn start(store: MemStore) -> Harness {
        let recovered = recovery::recover(Box::new(store), Path::new("mem")).unwrap();
        let addr = "127.0.0.1:1".parse().unwrap();
        let epoch = recovered.quorum.epoch();
        let shared = Arc::new(Shared::new(
            recovered.tree,
            Limits::default(),
            "mem".into(),
            addr,
            epoch,
            2_000,
            1,
        ));
        let (storage, _thread) = Storage::spawn(recovered.store, |_| {}, |_| {}).unwrap();
        let (writes, queued) = write_queue(64, Arc::clone(&shared));
        let (sender, snapshot_requests) = mpsc::channel(1);
        let trigger = SnapshotTrigger {
            sender,
            every_txns: 3,
            every_bytes: u64::MAX,
            since_last: 0,
            bytes_since_last: 0,
        };
        let stop = Shutdown::new();
        let driver = Driver::new(
            queued,
            recovered.quorum,
            storage,
            Arc::clone(&shared),
            4,
            trigger,
            stop.listener(),
        );
        Harness { writes, shared, driver: tokio::spawn(driver.run()), snapshot_requests, stop }
    }

    fn create(path: &str) -> TxnOp {
        TxnOp::Create(CreateOp {
            path: path.into(),
            data: Bytes::from_static(b"x"),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
        })
    }

    #[tokio::test]
    async fn writes_get_increasing_zxids_and_sync_waits_for_them() {
        let mut h = start(MemStore::new());
        let submits = (0..10).map(|i| {
            let writes = h.writes.clone();
            async move { writes.submit(0, create(&format!("/n{i}"))).await }
        });
        let replies = futures_join(submits).await;
        let mut zxids: Vec<u64> = replies.iter().map(|r| r.as_ref().unwrap().zxid).collect();
        assert!(replies.iter().all(|r| r.as_ref().unwrap().result.is_ok()));
        zxids.sort_unstable();
        zxids.dedup();
        assert_eq!(zxids.len(), 10);
        assert!(zxids.iter().all(|z| Zxid::from_u64(*z).epoch() == 1));
        let synced = h.writes.sync().await.unwrap();
        assert!(synced >= *zxids.last().unwrap());
        assert_eq!(h.shared.read_tree().unwrap().node_count(), 2 + 10);
        assert!(h.snapshot_requests.try_recv().is_ok(), "10 txns ask for a snapshot");

        h.stop.trigger();
        h.driver.await.unwrap().unwrap();
        let after = h.writes.submit(0, create("/late")).await.unwrap_err();
        assert_eq!(after, WriteError::ShuttingDown);
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_batch_and_stops_the_driver() {
        let mut store = MemStore::new();
        store.fail_next_flushes(1);
        let h = start(store);
        let error = h.writes.submit(0, create("/lost")).await.unwrap_err();
        assert!(matches!(error, WriteError::Storage(_)), "{error}");
        let stopped = h.driver.await.unwrap();
        assert!(matches!(stopped, Err(ServerError::Storage(_))), "{stopped:?}");
        let lost = h.shared.read_tree().unwrap().stat("/lost").unwrap();
        assert_eq!(lost, None, "nothing unflushed is applied");
        assert_eq!(h.writes.sync().await.unwrap_err(), WriteError::ShuttingDown);
    }

    /// Joins futures concurrently without another dependency.
    async fn futures_join<F: std::future::Future + Send + 'static>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<F::Output>
    where
        F::Output: Send,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}
