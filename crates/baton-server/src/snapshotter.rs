//! Background snapshots.
//!
//! The driver asks for one every `--snapshot-every-txns` applied txns. The tree is
//! encoded under its read lock, which is only ever free between two of the driver's
//! batches, so the snapshot is a consistent point; reads go on meanwhile (the driver
//! waits for the lock to apply its next batch). The storage thread then saves it and
//! purges old snapshots and the log they cover (in steps, between commits).

use std::sync::Arc;

use baton_log::Snapshot;
use baton_quorum::Zxid;
use tokio::sync::mpsc;

use crate::{
    ServerError,
    metrics::Metrics,
    shared::{Shared, WrittenSnapshot},
    storage::Storage,
};

/// Requests waiting for the snapshotter: one. A request made while one is pending
/// is dropped (the driver asks again after its next batch; a repair, at the
/// scrubber's next pass).
pub(crate) const SNAPSHOT_REQUESTS_MAX: usize = 1;

/// Why a snapshot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// `--snapshot-every-txns` / `--snapshot-every-bytes` logged since the last one.
    Due,
    /// Damage the tree covers was found in the log or a snapshot: the new snapshot
    /// replaces it, and the purge after it keeps only the new one, so the damaged
    /// log records below it go too.
    Repair,
}

/// Asks the snapshotter for a snapshot every `every_txns` logged txns or
/// `every_bytes` logged bytes, whichever comes first (a few large txns, such as
/// multis of many creates, should not make a long log to replay at the next start).
#[derive(Debug)]
pub(crate) struct SnapshotTrigger {
    pub(crate) sender: mpsc::Sender<Request>,
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
        if due && self.sender.try_send(Request::Due).is_ok() {
            self.since_last = 0;
            self.bytes_since_last = 0;
        }
    }

    /// Asks for a repairing snapshot; false if one is pending already.
    pub(crate) fn request_repair(&mut self) -> bool {
        let asked = self.sender.try_send(Request::Repair).is_ok();
        if asked {
            self.since_last = 0;
            self.bytes_since_last = 0;
        }
        asked
    }
}

/// Serves snapshot requests until the driver drops its sender.
pub(crate) async fn run(
    shared: Arc<Shared>,
    storage: Storage,
    snapshots_keep: usize,
    mut requests: mpsc::Receiver<Request>,
) {
    while let Some(request) = requests.recv().await {
        let keep = if request == Request::Repair { 1 } else { snapshots_keep };
        match take(&shared, &storage, keep).await {
            Ok(()) if request == Request::Repair => {
                Metrics::add(&shared.metrics.storage_repairs_total, 1);
                tracing::info!(
                    "scrub: repaired by a new snapshot (the damaged parts below it are purged)"
                );
            }
            Ok(()) => {}
            // The log still holds everything: a failed snapshot costs replay time
            // at the next start, not data. A failing disk stops the driver anyway.
            Err(error) => tracing::error!(%error, "snapshot failed"),
        }
    }
}

async fn take(shared: &Arc<Shared>, storage: &Storage, keep: usize) -> Result<(), ServerError> {
    let started = std::time::Instant::now();
    let writer = Arc::clone(shared);
    let WrittenSnapshot { zxid, data, slices, longest_slice, recorded } =
        crate::background::run("baton-snapshot", move || writer.write_snapshot()).await?.map_err(
            |error| ServerError::TaskFailed {
                task: "snapshot encoder",
                message: error.to_string(),
            },
        )?;
    let bytes = data.len();
    let encoded = started.elapsed();
    storage.save_snapshot(Snapshot { zxid, data: data.into() }, keep).await?;
    Metrics::add(&shared.metrics.snapshots_total, 1);
    tracing::info!(
        zxid = %Zxid::from_u64(zxid),
        bytes,
        slices,
        longest_slice_us = longest_slice.as_micros(),
        recorded,
        encoded_ms = encoded.as_millis(),
        saved_ms = started.elapsed().as_millis(),
        "snapshot saved"
    );
    Ok(())
}
