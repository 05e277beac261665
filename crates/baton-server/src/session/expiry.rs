//! The expiry task: logs the close of every session the tracker finds expired.
//!
//! The close goes through the write path like any txn, so the session and its
//! ephemerals end on every server at the same point of the log; the hub ends the
//! session's stream when the close is applied.

use std::{sync::Arc, time::Duration};

use baton_znode::{TxnOp, ZnodeError};

use super::EXPIRED_PER_ROUND_MAX;
use crate::{shared::Shared, shutdown::ShutdownListener, write_queue::WriteQueue};

pub(crate) async fn run(shared: Arc<Shared>, writes: WriteQueue, mut shutdown: ShutdownListener) {
    let hub = &shared.sessions;
    let tick = Duration::from_millis(hub.tracker().tick_ms());
    loop {
        // Buckets fall on tick boundaries of the hub's clock: wake at the next one.
        let now = hub.now_ms();
        let tick_ms = hub.tracker().tick_ms();
        let next = hub.tracker().next_expiry_ms().unwrap_or(now + tick_ms).max(now);
        let wait = Duration::from_millis(next - now).min(tick);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.recv() => return,
        }
        if !shared.expires_sessions() {
            // Only the leader (of an ensemble of one too) expires sessions: followers
            // report the sessions they hear from to it.
            continue;
        }
        let expired = hub.tracker().expired(hub.now_ms(), EXPIRED_PER_ROUND_MAX);
        for session in expired {
            tracing::info!(session = %format!("0x{session:016x}"), "session expired; closing it");
            let writes = writes.clone();
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let op = TxnOp::CloseSession { session };
                match writes.submit(session, op).await {
                    Ok(reply) => {
                        if let Err(e) = reply.result
                            && matches!(e.error, ZnodeError::SessionExpired { .. })
                        {
                            // Closed already (by its client): nothing left to track.
                            shared.sessions.tracker().remove(session);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not log the close of an expired session");
                        let now = shared.sessions.now_ms();
                        shared.sessions.tracker().close_failed(session, now);
                    }
                }
            });
        }
    }
}
