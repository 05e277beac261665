//! Background scrubbing: the log and the snapshots are verified (checksums and the
//! links between log records) at a bounded rate, `--scrub-bytes-per-sec`, so that
//! damage is found while this member still holds good copies in memory, not at the
//! next start.
//!
//! A step runs on the storage thread every [`SCRUB_PERIOD`], verifying a tenth of the
//! rate's bytes, so commits wait behind at most one short step. Each damaged part is
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

use baton_log::{Damage, DamagedPart};
use tokio::sync::mpsc;

use crate::{metrics::Metrics, shared::Shared, shutdown::ShutdownListener, storage::Storage};

/// How often a scrub step runs.
pub(crate) const SCRUB_PERIOD: Duration = Duration::from_millis(100);
/// Damage reports waiting for the driver; more in one pass are found again later.
pub(crate) const DAMAGE_QUEUE_MAX: usize = 64;

/// Scrubs at `bytes_per_sec` until shutdown or the storage thread stops.
pub(crate) async fn run(
    shared: Arc<Shared>,
    storage: Storage,
    bytes_per_sec: u64,
    repairs: mpsc::Sender<Damage>,
    mut shutdown: ShutdownListener,
) {
    let per_step = usize::try_from(bytes_per_sec / 10).unwrap_or(usize::MAX).max(1);
    let mut ticker = tokio::time::interval(SCRUB_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.recv() => return,
        }
        let scrubbed = match storage.scrub(per_step).await {
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
