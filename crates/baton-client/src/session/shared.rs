//! What the session's task and its handles both see: the state, the session's identity,
//! the highest zxid seen, why the session ended, and the shutdown flag.

use std::sync::{
    Mutex,
    atomic::{AtomicU32, AtomicU64, Ordering},
};

use baton_api::auth::Credential;
use tokio::sync::watch;

use super::state::{Input, SessionState};
use crate::ClientError;

#[derive(Debug)]
pub(crate) struct Shared {
    state: watch::Sender<SessionState>,
    session_id: AtomicU64,
    timeout_ms: AtomicU32,
    /// The highest zxid seen in any reply, event or Connected: presented on every
    /// reconnect so that no server behind it is accepted (a client never goes back in
    /// time).
    last_zxid: AtomicU64,
    /// Why the session ended, set before the state becomes final.
    end: Mutex<Option<ClientError>>,
    /// Set by `close` when it stops waiting for the server: the task ends at once.
    shutdown: watch::Sender<bool>,
    /// The server the session is (or was last) connected to.
    endpoint: Mutex<String>,
    /// Credentials the session authenticated with: sent again in the Connect of
    /// every reconnect, so the identities survive a move to another server.
    credentials: Mutex<Vec<Credential>>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            state: watch::Sender::new(SessionState::Connecting),
            session_id: AtomicU64::new(0),
            timeout_ms: AtomicU32::new(0),
            last_zxid: AtomicU64::new(0),
            end: Mutex::new(None),
            shutdown: watch::Sender::new(false),
            endpoint: Mutex::new(String::new()),
            credentials: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn credentials(&self) -> Vec<Credential> {
        self.credentials.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps a credential the server accepted (once).
    pub(crate) fn add_credential(&self, credential: Credential) {
        let mut credentials = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        if !credentials.contains(&credential) {
            credentials.push(credential);
        }
    }

    pub(crate) fn state(&self) -> SessionState {
        *self.state.borrow()
    }

    pub(crate) fn states(&self) -> watch::Receiver<SessionState> {
        self.state.subscribe()
    }

    /// Moves the state machine; returns the new state. Receivers are woken only when
    /// the state actually changes.
    pub(crate) fn apply(&self, input: Input) -> SessionState {
        let mut after = SessionState::Connecting;
        self.state.send_if_modified(|state| {
            after = state.next(input);
            let changed = after != *state;
            *state = after;
            changed
        });
        after
    }

    /// Ends the session: records why, then publishes the final state, so that whoever
    /// sees the final state also finds the reason.
    pub(crate) fn end(&self, input: Input, error: &ClientError) {
        if let Ok(mut end) = self.end.lock() {
            end.get_or_insert_with(|| error.clone());
        }
        self.apply(input);
    }

    /// Why the session ended; `None` while it lives.
    pub(crate) fn end_error(&self) -> Option<ClientError> {
        self.end.lock().ok().and_then(|end| end.clone())
    }

    pub(crate) fn session_id(&self) -> u64 {
        self.session_id.load(Ordering::Acquire)
    }

    pub(crate) fn timeout_ms(&self) -> u32 {
        self.timeout_ms.load(Ordering::Acquire)
    }

    pub(crate) fn adopt(&self, session_id: u64, timeout_ms: u32, endpoint: &str) {
        self.session_id.store(session_id, Ordering::Release);
        self.timeout_ms.store(timeout_ms, Ordering::Release);
        if let Ok(mut current) = self.endpoint.lock() {
            endpoint.clone_into(&mut current);
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        self.endpoint.lock().map(|e| e.clone()).unwrap_or_default()
    }

    pub(crate) fn last_zxid(&self) -> u64 {
        self.last_zxid.load(Ordering::Acquire)
    }

    pub(crate) fn see_zxid(&self, zxid: u64) {
        self.last_zxid.fetch_max(zxid, Ordering::AcqRel);
    }

    pub(crate) fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn shutdown_requests(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}
