//! The bounded queue between whoever wants a change (gRPC handlers, the reaper) and
//! the driver, and what comes back.

use std::sync::Arc;

use baton_api::status::{ErrorCode, error_status};
use baton_znode::{Auth, OpResult, TxnError, TxnOp};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::{metrics::Metrics, shared::Shared};

/// One item of the queue.
#[derive(Debug)]
pub(crate) enum Write {
    /// A validated op to become a txn on behalf of `session` (0 = none), with the
    /// identities its ACL checks run with.
    Txn {
        session: u64,
        auth: Auth,
        op: TxnOp,
        reply: oneshot::Sender<Result<TxnReply, WriteError>>,
        /// When it was queued (the queue stage of the write's metrics).
        queued: std::time::Instant,
    },
    /// A barrier: answered once everything queued before it is applied.
    Sync { reply: oneshot::Sender<Result<u64, WriteError>> },
    /// Hand leadership to `to` (0: the voter that has logged the most); answered
    /// with the successor once the leader stopped proposing. Leader only.
    Transfer { to: u64, reply: oneshot::Sender<Result<u64, WriteError>> },
    /// A linearizable read's index (ReadIndex): answered with this member's
    /// applied zxid once it has applied what a quorum confirmed committed.
    ReadIndex { reply: oneshot::Sender<Result<u64, WriteError>> },
}

/// The outcome of a txn that was logged, committed and applied. A failed txn
/// (`result` is Err) was logged too and changed nothing.
#[derive(Debug)]
pub(crate) struct TxnReply {
    /// The txn's own zxid.
    pub(crate) zxid: u64,
    /// The last applied zxid when the reply was made (the response header's).
    pub(crate) applied_zxid: u64,
    pub(crate) result: Result<OpResult, TxnError>,
}

/// Why a write got no outcome. None of these says the write did not happen for
/// `ShuttingDown` and `Storage`: the caller must treat it as unknown.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum WriteError {
    #[error("write queue full ({0} writes waiting); retry later")]
    QueueFull(usize),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("storage failure, the server is stopping: {0}")]
    Storage(String),
    /// This member is not in broadcast (the ensemble is electing or syncing): the
    /// write was not taken. Clients reconnect (to another member) and retry.
    #[error("not serving: {0}")]
    NotServing(String),
    /// The leader (or the link to it) went away after the write was sent: it may
    /// or may not have been committed.
    #[error("connection to the leader lost; the write may or may not have happened: {0}")]
    Unknown(String),
    /// Free space on this member's data directory is below the reserve: the write
    /// was not taken.
    #[error("{0}")]
    DiskFull(String),
    /// A request this member cannot do (the reason names the member and the rule).
    #[error("{0}")]
    Refused(String),
}

impl WriteError {
    /// The gRPC status a client sees: CONNECTION_LOSS for the errors it should
    /// answer by reconnecting (perhaps elsewhere) and retrying, SYSTEM_ERROR else.
    pub(crate) fn status(&self) -> tonic::Status {
        let code = match self {
            // A stopping server: the client resumes on another member and retries
            // there (the write may or may not have happened, as for any
            // CONNECTION_LOSS).
            WriteError::NotServing(_) | WriteError::Unknown(_) | WriteError::ShuttingDown => {
                ErrorCode::ConnectionLoss
            }
            WriteError::Refused(_) => ErrorCode::BadArguments,
            _ => ErrorCode::SystemError,
        };
        error_status(code, self.to_string(), "", None)
    }
}

impl Write {
    /// Answers the write with `error` without running it.
    pub(crate) fn fail(self, error: WriteError) {
        match self {
            Write::Txn { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Write::Sync { reply } | Write::Transfer { reply, .. } | Write::ReadIndex { reply } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// The sending side; cheap to clone. The driver stops once every clone is gone.
#[derive(Debug, Clone)]
pub(crate) struct WriteQueue {
    sender: mpsc::Sender<Write>,
    shared: Arc<Shared>,
}

/// A queue of at most `write_queue_max` writes.
pub(crate) fn write_queue(
    write_queue_max: usize,
    shared: Arc<Shared>,
) -> (WriteQueue, mpsc::Receiver<Write>) {
    let (sender, receiver) = mpsc::channel(write_queue_max);
    (WriteQueue { sender, shared }, receiver)
}

impl WriteQueue {
    /// Queues a server-made txn (no identities: never checked against ACLs) and
    /// waits for its outcome.
    pub(crate) async fn submit(&self, session: u64, op: TxnOp) -> Result<TxnReply, WriteError> {
        self.submit_as(session, Auth::none(), op).await
    }

    /// Queues a txn and waits for its outcome. A full queue fails at once rather
    /// than letting callers pile up without bound.
    pub(crate) async fn submit_as(
        &self,
        session: u64,
        auth: Auth,
        op: TxnOp,
    ) -> Result<TxnReply, WriteError> {
        let outcome = self.queue(session, auth, op)?;
        outcome.await.unwrap_or(Err(WriteError::ShuttingDown))
    }

    /// Queues a txn without waiting: the receiver gets its outcome. Lets a session
    /// pipeline its writes and still answer them in order.
    pub(crate) fn queue(
        &self,
        session: u64,
        auth: Auth,
        op: TxnOp,
    ) -> Result<oneshot::Receiver<Result<TxnReply, WriteError>>, WriteError> {
        if !matches!(op, TxnOp::CloseSession { .. }) {
            // A close frees what a session holds: it goes through.
            self.shared.disk.check()?;
        }
        let (reply, outcome) = oneshot::channel();
        let queued = std::time::Instant::now();
        self.enqueue(Write::Txn { session, auth, op, reply, queued })?;
        Ok(outcome)
    }

    /// Queues a barrier without waiting (see [`WriteQueue::sync`]).
    pub(crate) fn queue_sync(
        &self,
    ) -> Result<oneshot::Receiver<Result<u64, WriteError>>, WriteError> {
        let (reply, outcome) = oneshot::channel();
        self.enqueue(Write::Sync { reply })?;
        Ok(outcome)
    }

    /// Waits until this member may answer a linearizable read (see
    /// [`Write::ReadIndex`]); returns its applied zxid then.
    pub(crate) async fn read_index(&self) -> Result<u64, WriteError> {
        let (reply, outcome) = oneshot::channel();
        self.enqueue(Write::ReadIndex { reply })?;
        outcome.await.unwrap_or(Err(WriteError::ShuttingDown))
    }

    /// Asks the leader to hand leadership over; returns the successor.
    pub(crate) async fn transfer(&self, to: u64) -> Result<u64, WriteError> {
        let (reply, outcome) = oneshot::channel();
        self.enqueue(Write::Transfer { to, reply })?;
        outcome.await.unwrap_or(Err(WriteError::ShuttingDown))
    }

    /// Waits until every write queued before this call is applied; returns the last
    /// applied zxid then.
    pub(crate) async fn sync(&self) -> Result<u64, WriteError> {
        let (reply, outcome) = oneshot::channel();
        self.enqueue(Write::Sync { reply })?;
        outcome.await.unwrap_or(Err(WriteError::ShuttingDown))
    }

    fn enqueue(&self, write: Write) -> Result<(), WriteError> {
        let metrics = &self.shared.metrics;
        // Counted before sending so that the driver's decrement never goes first.
        Metrics::add(&metrics.write_queue_depth, 1);
        match self.sender.try_send(write) {
            Ok(()) => Ok(()),
            Err(error) => {
                Metrics::sub(&metrics.write_queue_depth, 1);
                match error {
                    mpsc::error::TrySendError::Full(_) => {
                        Metrics::add(&metrics.write_queue_full_total, 1);
                        Err(WriteError::QueueFull(self.sender.max_capacity()))
                    }
                    mpsc::error::TrySendError::Closed(_) => Err(WriteError::ShuttingDown),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use baton_znode::{DataTree, Limits};

    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_closed_one_says_shutting_down() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let shared = Arc::new(Shared::new(
            DataTree::new(),
            Limits::default(),
            "mem".into(),
            addr,
            1,
            2_000,
            1,
        ));
        let (queue, mut receiver) = write_queue(1, Arc::clone(&shared));
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.sync().await }
        });
        let queued = receiver.recv().await;
        // The driver took it off the queue; hold the next one in the queue.
        let (reply, _kept) = oneshot::channel();
        queue.sender.try_send(Write::Sync { reply }).unwrap();
        assert_eq!(queue.sync().await, Err(WriteError::QueueFull(1)));
        assert_eq!(
            shared.metrics.write_queue_full_total.load(std::sync::atomic::Ordering::Relaxed),
            1
        );

        receiver.close();
        drop(queued);
        assert_eq!(waiting.await.unwrap(), Err(WriteError::ShuttingDown), "reply dropped");
        drop(receiver);
        assert_eq!(queue.sync().await, Err(WriteError::ShuttingDown));
    }
}
