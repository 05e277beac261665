//! Background scrubbing: the log and the snapshots are verified (checksums and the
//! links between log records) at a bounded rate, `--scrub-bytes-per-sec`, so that
//! damage is found while this member still holds good copies in memory, not at the
//! next start.
//!
//! A step runs every [`SCRUB_PERIOD`] on a blocking thread of its own, with the
//! store's own read handles (sled reads safely beside the storage thread's writes),
//! so a commit never waits behind it, however large a record or snapshot; a step
//! verifies a tenth of the rate's bytes, and one that read more (a whole snapshot)
//! is followed by a longer pause, so the rate holds on average. A store that cannot
//! be read from elsewhere is scrubbed through the storage thread. Each damaged part is
//! logged, counted and handed to the driver, which repairs it: a log record from its
//! in-memory log (every durable entry after the newest snapshot it started from or
//! installed), an older record or a snapshot by a new snapshot of the tree (which
//! covers everything applied) and a purge. A repair that cannot be made now is
//! found again by the next pass.
//!
//! sled serves its trees from its page cache where it can, so what the trees give
//! is verified as sled holds it; a damaged disk copy of a cached record shows at
//! the next start (the promise catches it). sled's blob files (values over about
//! 128 KiB: snapshots, large records) are read from the disk itself; one that fails
//! sled's crc is repaired by rewriting everything from memory (a snapshot, then the
//! log after it), since sled does not say what it held.

use std::{sync::Arc, time::Duration};

use baton_log::{Damage, DamagedPart, ScrubCursor, Scrubber};
use tokio::sync::mpsc;

use crate::{
    ServerError,
    metrics::Metrics,
    shared::Shared,
    shutdown::ShutdownListener,
    storage::{Scrubbed, Storage},
};

/// Where the scrub reads: the store's detached scrubber, or the storage thread.
#[derive(Debug)]
pub(crate) enum Source {
    Detached(Arc<dyn Scrubber>),
    Storage(Storage),
}

impl Source {
    async fn step(
        &self,
        cursor: &mut ScrubCursor,
        bytes_max: usize,
    ) -> Result<Scrubbed, ServerError> {
        match self {
            Source::Storage(storage) => storage.scrub(bytes_max).await,
            Source::Detached(scrubber) => {
                let (scrubber, from) = (Arc::clone(scrubber), *cursor);
                let step = tokio::task::spawn_blocking(move || scrubber.step(from, bytes_max))
                    .await
                    .map_err(|error| ServerError::TaskFailed {
                        task: "scrubber",
                        message: error.to_string(),
                    })??;
                *cursor = step.next.unwrap_or_default();
                Ok(Scrubbed {
                    bytes: step.bytes,
                    damage: step.damage,
                    pass_done: step.next.is_none(),
                })
            }
        }
    }
}

/// How often a scrub step runs.
pub(crate) const SCRUB_PERIOD: Duration = Duration::from_millis(100);
/// Damage reports waiting for the driver; more in one pass are found again later.
pub(crate) const DAMAGE_QUEUE_MAX: usize = 64;

/// Scrubs at `bytes_per_sec` until shutdown or the storage thread stops.
pub(crate) async fn run(
    shared: Arc<Shared>,
    source: Source,
    bytes_per_sec: u64,
    repairs: mpsc::Sender<Damage>,
    mut shutdown: ShutdownListener,
) {
    let per_step = usize::try_from(bytes_per_sec / 10).unwrap_or(usize::MAX).max(1);
    let mut cursor = ScrubCursor::default();
    let mut pause = SCRUB_PERIOD;
    loop {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.recv() => return,
        }
        let result = source.step(&mut cursor, per_step).await;
        pause = match &result {
            // A step that read more than its share waits for the rate to catch up.
            Ok(scrubbed) => SCRUB_PERIOD
                .max(Duration::from_secs_f64(scrubbed.bytes as f64 / bytes_per_sec.max(1) as f64)),
            Err(_) => SCRUB_PERIOD,
        };
        let scrubbed = match result {
            Ok(scrubbed) => scrubbed,
            Err(error) => {
                // The storage thread is gone (the driver reports why) or a read
                // failed outright: either way nothing more to verify now.
                tracing::warn!(%error, "scrub step failed");
                continue;
            }
        };
        Metrics::add(&shared.metrics.scrub_bytes_total, scrubbed.bytes as u64);
        if scrubbed.pass_done {
            Metrics::add(&shared.metrics.scrub_passes_total, 1);
        }
        for damage in scrubbed.damage {
            Metrics::add(&shared.metrics.storage_damage_found_total, 1);
            match damage.what {
                DamagedPart::LogRecord { first_zxid } => tracing::warn!(
                    zxid = %baton_quorum::Zxid::from_u64(first_zxid),
                    reason = %damage.reason,
                    "scrub: damaged log record found"
                ),
                DamagedPart::Snapshot { zxid } => tracing::warn!(
                    zxid = %baton_quorum::Zxid::from_u64(zxid),
                    reason = %damage.reason,
                    "scrub: damaged snapshot found"
                ),
                DamagedPart::SledBlob { id } => tracing::warn!(
                    blob = id,
                    reason = %damage.reason,
                    "scrub: damaged sled blob file found (a snapshot or a large log record)"
                ),
            }
            let _ = repairs.try_send(damage);
        }
    }
}
