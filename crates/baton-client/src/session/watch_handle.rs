//! What a caller holds for a watch: [`Watch`] (one-shot, a future) and
//! [`PersistentWatch`] (a stream of events), and the sending ends the watch manager keeps.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tokio::sync::{mpsc, oneshot};

use crate::{ClientError, WatchEvent};

/// The sending end of a one-shot watch.
pub(crate) type OneShotTx = oneshot::Sender<Result<WatchEvent, ClientError>>;

/// A one-shot watch (set by `get_watch`, `exists_watch`, `children_watch`): a future that
/// resolves to the first event that fires it, or to an error if the session ends first
/// ([`ClientError::SessionExpired`], [`ClientError::Closed`]) or the watch is removed.
///
/// Events arrive in the session's order: when the reply of a later call on the same
/// session has been received, the event of every change that reply reflects is already
/// here ([`Watch::try_event`] sees it).
#[derive(Debug)]
pub struct Watch {
    path: String,
    rx: oneshot::Receiver<Result<WatchEvent, ClientError>>,
}

impl Watch {
    pub(crate) fn new(path: &str) -> (OneShotTx, Watch) {
        let (tx, rx) = oneshot::channel();
        (tx, Watch { path: path.to_owned(), rx })
    }

    /// The path the watch was set on.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The outcome if the watch has fired (or ended) already, without waiting.
    pub fn try_event(&mut self) -> Option<Result<WatchEvent, ClientError>> {
        match self.rx.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(ClientError::Closed)),
        }
    }
}

impl Future for Watch {
    type Output = Result<WatchEvent, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The manager always sends before it lets go; a dropped sender means the session's
        // task is gone, which only happens when the session is over.
        Pin::new(&mut self.rx).poll(cx).map(|outcome| outcome.unwrap_or(Err(ClientError::Closed)))
    }
}

/// The sending end of a persistent watch, kept by the watch manager.
#[derive(Debug)]
pub(crate) struct Sink {
    tx: mpsc::Sender<WatchEvent>,
    end: Arc<Mutex<Option<ClientError>>>,
    path: String,
    events_max: usize,
}

/// What became of an event offered to a [`Sink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Delivered,
    /// The consumer is gone or too far behind: forget this sink.
    Dropped,
}

impl Sink {
    /// Queues `event`. A full queue ends the watch with [`ClientError::WatchLagged`]
    /// (after the events already queued); a dropped receiver just ends it.
    pub(crate) fn offer(&self, event: &WatchEvent) -> Delivery {
        match self.tx.try_send(event.clone()) {
            Ok(()) => Delivery::Delivered,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let lagged =
                    ClientError::WatchLagged { path: self.path.clone(), max: self.events_max };
                self.finish(lagged);
                Delivery::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Dropped,
        }
    }

    /// Records why the watch ends ([`ClientError::WatchRemoved`]: it was removed, and
    /// the stream just ends). The receiver reads it once it has drained the queue and
    /// the sink is dropped; the first reason recorded wins.
    pub(crate) fn finish(&self, error: ClientError) {
        if let Ok(mut end) = self.end.lock() {
            end.get_or_insert(error);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A persistent (or persistent-recursive) watch set by [`crate::Session::add_watch`]: its
/// events in the session's order, until it is removed or the session ends.
///
/// [`PersistentWatch::recv`] yields `Some(Ok(event))` for each event; then, if the watch
/// ended because of an error (the session expired or was closed, or this consumer fell
/// more than the session's `watch_events_max` events behind), one `Some(Err(..))`; then
/// `None`. It also implements [`tokio_stream::Stream`] with the same items.
///
/// Dropping it stops delivery; the server forgets the watch on the next reconnect or
/// when it is removed with [`crate::Session::remove_watch`].
#[derive(Debug)]
pub struct PersistentWatch {
    path: String,
    recursive: bool,
    rx: mpsc::Receiver<WatchEvent>,
    end: Arc<Mutex<Option<ClientError>>>,
    ended: bool,
}

impl PersistentWatch {
    pub(crate) fn new(path: &str, recursive: bool, events_max: usize) -> (Sink, PersistentWatch) {
        let (tx, rx) = mpsc::channel(events_max.max(1));
        let end = Arc::new(Mutex::new(None));
        let sink = Sink { tx, end: end.clone(), path: path.to_owned(), events_max };
        let watch = PersistentWatch { path: path.to_owned(), recursive, rx, end, ended: false };
        (sink, watch)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn is_recursive(&self) -> bool {
        self.recursive
    }

    /// The next event; `None` once the watch has ended (see the type's docs).
    pub async fn recv(&mut self) -> Option<Result<WatchEvent, ClientError>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<WatchEvent, ClientError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(Some(Ok(event))),
            Poll::Ready(None) => {
                self.ended = true;
                let end = self.end.lock().ok().and_then(|mut end| end.take());
                Poll::Ready(end.filter(|e| !is_removal(e)).map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A removed watch ends its stream without an error item.
fn is_removal(error: &ClientError) -> bool {
    matches!(error, ClientError::WatchRemoved { .. })
}

impl tokio_stream::Stream for PersistentWatch {
    type Item = Result<WatchEvent, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}
