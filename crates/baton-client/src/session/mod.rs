//! [`Session`]: one ZooKeeper-style session on one ordered stream (the `Sessions.Session`
//! rpc), with ephemeral nodes, watches, and resumption on another server.
//!
//! # Layout
//! - `mod.rs`: [`Session`], [`SessionOptions`], connecting, closing, the call path.
//! - `calls`: the tree operations and their watch-setting variants.
//! - `conn`: the task that owns the stream, the outstanding requests and the watches,
//!   and moves the session between servers.
//! - `handshake`: opening one stream (Connect → Connected) and what refusals mean.
//! - `fifo`: outstanding requests; a reply must answer the oldest.
//! - `watches`: the client's watch manager (dispatch rules mirror the server's).
//! - `watch_handle`: [`Watch`] and [`PersistentWatch`], what callers hold.
//! - `request`: what a handle hands to the task.
//! - `shared`: what the task and the handles both see.
//! - `state`: [`SessionState`] and its transitions.

mod calls;
mod conn;
mod fifo;
mod handshake;
mod request;
mod shared;
mod state;
mod watch_handle;
mod watches;

use std::{sync::Arc, time::Duration};

use baton_api::{auth::Credential, pb, status::ErrorCode};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};

pub use conn::{RECONNECT_BACKOFF_MAX, RECONNECT_BACKOFF_MIN};
pub use state::SessionState;
pub use watch_handle::{PersistentWatch, Watch};

use self::{
    request::{Submitted, WatchIntent},
    shared::Shared,
    state::Input,
};
use crate::{ClientError, ClientTls, REQUEST_TIMEOUT, parse_endpoints_with};

/// The session timeout asked for when none is given (the server clamps it).
pub const SESSION_TIMEOUT_MS_DEFAULT: u32 = 10_000;
/// The most requests one session may have sent and not yet had answered.
pub const PENDING_REQUESTS_MAX: usize = 10_000;
/// The most events a persistent watch queues for a consumer that does not keep up.
pub const WATCH_EVENTS_MAX: usize = 1_024;
/// How many calls may wait to be handed to the session's task (e.g. while it is
/// resuming the session elsewhere); further callers wait for room.
pub const SUBMIT_QUEUE_MAX: usize = 1_024;

/// Options of [`Session::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// The session timeout to ask for; the server clamps it to [2, 20] ticks.
    pub timeout_ms: u32,
    /// How long one call may wait for its reply, including any time spent waiting for
    /// the session to be resumed; then it fails with `OPERATION_TIMEOUT`.
    pub request_timeout: Duration,
    /// The most requests sent and not yet answered; one more fails with
    /// [`ClientError::TooManyRequests`].
    pub pending_requests_max: usize,
    /// The most events a persistent watch holds for its consumer; a consumer further
    /// behind gets [`ClientError::WatchLagged`] and the watch ends.
    pub watch_events_max: usize,
    /// Credentials the session starts with (sent in its Connect, and again on every
    /// reconnect with those added later by [`Session::add_auth`]).
    pub credentials: Vec<Credential>,
    /// TLS to every endpoint (`host:port` or `https://host:port`); `None`: plain text.
    pub tls: Option<ClientTls>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            timeout_ms: SESSION_TIMEOUT_MS_DEFAULT,
            request_timeout: REQUEST_TIMEOUT,
            pending_requests_max: PENDING_REQUESTS_MAX,
            watch_events_max: WATCH_EVENTS_MAX,
            credentials: Vec::new(),
            tls: None,
        }
    }
}

/// A session with a Baton ensemble. Cheap to clone; clones share the session.
///
/// Requests of one session are answered in the order they were sent, and a watch event
/// is delivered before any reply that reflects the change that fired it. When the
/// connection breaks, calls in flight fail with [`ClientError::ConnectionLoss`] (a
/// write may or may not have been applied) and the session is resumed on the next
/// server, with its watches; calls made meanwhile wait for it (up to
/// [`SessionOptions::request_timeout`]). Once the server says the session expired,
/// every call fails with [`ClientError::SessionExpired`] and every watch is told.
///
/// Dropping the last clone closes the session in the background (best effort), so that
/// its ephemeral nodes go at once rather than at the timeout; [`Session::close`] does
/// it and waits.
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    submit: mpsc::Sender<Submitted>,
    options: SessionOptions,
}

impl Session {
    /// Opens a new session on the first of `endpoints` that grants one (each tried once,
    /// in order). The list is kept for resuming the session elsewhere later.
    pub async fn connect(
        endpoints: &[String],
        options: SessionOptions,
    ) -> Result<Session, ClientError> {
        let servers = parse_endpoints_with(endpoints, options.tls.as_ref())?;
        let shared = Arc::new(Shared::new());
        for credential in &options.credentials {
            shared.add_credential(credential.clone());
        }
        let (submit, submitted) = mpsc::channel(SUBMIT_QUEUE_MAX);
        let (first_tx, first_rx) = oneshot::channel();
        let task = conn::Task::new(servers, options.clone(), shared.clone(), submitted);
        tokio::spawn(task.run(first_tx));
        match first_rx.await {
            Ok(Ok(())) => Ok(Session { inner: Arc::new(Inner { shared, submit, options }) }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// The session's id, as the server assigned it.
    pub fn session_id(&self) -> u64 {
        self.inner.shared.session_id()
    }

    /// The timeout the server granted (milliseconds).
    pub fn timeout_ms(&self) -> u32 {
        self.inner.shared.timeout_ms()
    }

    pub fn state(&self) -> SessionState {
        self.inner.shared.state()
    }

    /// Every change of state, as it happens (a `watch` channel: a slow reader sees the
    /// latest state, not every intermediate one).
    pub fn states(&self) -> watch::Receiver<SessionState> {
        self.inner.shared.states()
    }

    /// The highest zxid this session has seen (replies, events, Connected).
    pub fn last_zxid(&self) -> u64 {
        self.inner.shared.last_zxid()
    }

    /// The `host:port` of the server the session is (or was last) connected to.
    pub fn endpoint(&self) -> String {
        self.inner.shared.endpoint()
    }

    /// Why the session ended, once it has (`None` while it lives).
    pub fn end_error(&self) -> Option<ClientError> {
        self.inner.shared.end_error()
    }

    /// Waits until the session is connected; fails with the session's end if it ends
    /// first. Recipes call this after a ConnectionLoss, before trying again.
    pub async fn wait_connected(&self) -> Result<(), ClientError> {
        let mut states = self.states();
        let state = match states.wait_for(|s| s.is_connected() || s.is_final()).await {
            Ok(state) => *state,
            Err(_) => SessionState::Closed,
        };
        match state {
            SessionState::Connected => Ok(()),
            _ => Err(self.end_error().unwrap_or(ClientError::Closed)),
        }
    }

    /// Closes the session: the server deletes its ephemeral nodes, answers, and the state
    /// becomes Closed. If the session is not connected, or the server does not answer
    /// within the request timeout, or refuses (a member that cannot serve now), the
    /// session is closed here anyway (the server expires it after its timeout) and the
    /// error says why. Closing a closed session is a no-op.
    pub async fn close(&self) -> Result<(), ClientError> {
        match self.end_error() {
            Some(ClientError::Closed) => return Ok(()),
            Some(error) => return Err(error),
            None => {}
        }
        let result = if self.state().is_connected() {
            // A refusal (e.g. a member out of broadcast) is an error like a lost
            // connection: the session then ends at its timeout, not now.
            self.outcome(pb::request::Op::Close(pb::CloseRequest {}), WatchIntent::None)
                .await
                .map(|_| ())
        } else {
            Err(ClientError::ConnectionLoss {
                endpoint: self.endpoint(),
                reason: format!("not connected ({}): closed locally only", self.state()),
            })
        };
        self.inner.shared.request_shutdown();
        let mut states = self.states();
        // The task ends promptly once told; the bound is only against a lost task.
        let _ = tokio::time::timeout(
            self.inner.options.request_timeout,
            states.wait_for(|s| s.is_final()),
        )
        .await;
        self.inner.shared.end(Input::Closed, &ClientError::Closed);
        result
    }

    /// Hands one request to the session's task and waits for its reply, within the
    /// request timeout.
    async fn call(
        &self,
        op: pb::request::Op,
        watch: WatchIntent,
    ) -> Result<pb::Reply, ClientError> {
        if let Some(error) = self.end_error() {
            return Err(error);
        }
        let deadline = Instant::now() + self.inner.options.request_timeout;
        let (reply, rx) = oneshot::channel();
        let submitted = Submitted { op, watch, reply };
        match tokio::time::timeout_at(deadline, self.inner.submit.send(submitted)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(self.end_error().unwrap_or(ClientError::Closed)),
            Err(_) => return Err(self.timed_out()),
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.end_error().unwrap_or(ClientError::Closed)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> ClientError {
        ClientError::Api {
            code: ErrorCode::OperationTimeout,
            message: format!(
                "no reply within {} ms (session {})",
                self.inner.options.request_timeout.as_millis(),
                self.state()
            ),
            path: String::new(),
            op_index: None,
        }
    }
}
