//! The reaper: deletes containers that lost their last child and TTL nodes that
//! expired, through the same write path as any client write (a `Reap` txn), so
//! that the deletion is logged and every replica agrees on it.

use std::{sync::Arc, time::Duration};

use baton_znode::TxnOp;

use crate::{
    clock::now_ms,
    shared::Shared,
    shutdown::ShutdownListener,
    write_queue::{WriteError, WriteQueue},
};

/// Most paths one `Reap` txn deletes; more wait for the next round.
pub(crate) const REAP_PATHS_MAX: usize = 1_000;

pub(crate) async fn run(
    shared: Arc<Shared>,
    writes: WriteQueue,
    interval: Duration,
    mut shutdown: ShutdownListener,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = ticks.tick() => {}
        }
        let paths = match shared.read_tree() {
            Ok(tree) => tree.reapable(now_ms(), REAP_PATHS_MAX),
            Err(_) => return,
        };
        if paths.is_empty() {
            continue;
        }
        let count = paths.len();
        match writes.submit(0, TxnOp::Reap { paths }).await {
            Ok(reply) => {
                tracing::debug!(count, zxid = reply.zxid, result = ?reply.result, "reaped")
            }
            // A busy server tries again next round.
            Err(WriteError::QueueFull(_)) => {}
            Err(error) => {
                tracing::debug!(%error, "reaper stops");
                return;
            }
        }
    }
}
