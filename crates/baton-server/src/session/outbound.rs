//! A session's outgoing stream: the messages queued for it, ended early by a kill.
//!
//! A kill must get through even when the queue is full (that is when a slow
//! consumer is killed), so it travels beside the queue, not in it.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use baton_api::pb;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tonic::Status;

use super::Outgoing;

#[derive(Debug)]
pub(crate) struct Outbound {
    queue: mpsc::Receiver<Outgoing>,
    /// None once the kill resolved (a oneshot must not be polled after that).
    kill: Option<oneshot::Receiver<Status>>,
    ended: bool,
}

impl Outbound {
    pub(crate) fn new(queue: mpsc::Receiver<Outgoing>, kill: oneshot::Receiver<Status>) -> Self {
        Outbound { queue, kill: Some(kill), ended: false }
    }
}

impl Stream for Outbound {
    type Item = Result<pb::SessionResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Some(kill) = self.kill.as_mut()
            && let Poll::Ready(killed) = Pin::new(kill).poll(cx)
        {
            self.kill = None;
            // A dropped kill sender is not a kill: the queue decides then.
            if let Ok(status) = killed {
                self.ended = true;
                return Poll::Ready(Some(Err(status)));
            }
        }
        self.queue.poll_recv(cx).map(|message| message.map(|boxed| Ok(*boxed)))
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_kill_overtakes_a_full_queue_and_ends_the_stream() {
        let (tx, rx) = mpsc::channel(1);
        let (kill, killed) = oneshot::channel();
        tx.try_send(Box::default()).unwrap();
        let mut out = Outbound::new(rx, killed);
        kill.send(Status::internal("slow")).unwrap();
        assert_eq!(out.next().await.unwrap().unwrap_err().message(), "slow");
        assert!(out.next().await.is_none());
    }

    #[tokio::test]
    async fn messages_flow_until_the_senders_are_gone() {
        let (tx, rx) = mpsc::channel(4);
        let (kill, killed) = oneshot::channel::<Status>();
        tx.try_send(Box::default()).unwrap();
        drop(tx);
        drop(kill);
        let mut out = Outbound::new(rx, killed);
        assert!(out.next().await.unwrap().is_ok());
        assert!(out.next().await.is_none());
    }
}
