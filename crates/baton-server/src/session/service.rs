//! The `baton.v1.Sessions` service: the handshake of a session stream.
//!
//! The first message must be a Connect. A new session is created by logging a
//! CreateSession txn (so every server agrees on it); a resuming one is checked
//! against the tree: known and open (else SESSION_EXPIRED), the right password
//! (else AUTH_FAILED), and a tree not behind what the client has seen (else
//! CONNECTION_LOSS: the client goes to another server, never back in time).
//! Then `Connected` is sent, followed by the events the client missed while away
//! (its watches are set again, as ZooKeeper's setWatches), and the stream is
//! handed to [`super::conn`].
//!
//! The stream's identities are its address, its client certificate and what the
//! Connect's credentials prove; a credential refused fails the stream with
//! AUTH_FAILED before any session is created or resumed.

use std::{sync::Arc, time::Duration};

use baton_api::{
    auth::CREDENTIALS_MAX,
    pb::{self, sessions_server::Sessions},
    session::{watch_event_to_pb, watch_spec_from_pb},
    status::{ErrorCode, error_status, txn_error_status},
};
use baton_znode::{Auth, TxnOp};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status, Streaming};

use tokio_stream::StreamExt;

use super::{
    Incoming, SESSION_OUTBOUND_MAX, SESSIONS_MAX, conn, ids::new_password, outbound::Outbound,
};
use crate::{auth::base_identities, shared::Shared, tls::client_subject, write_queue::WriteQueue};

/// How long a client may take to send its Connect after opening the stream.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Watches a resuming client may ask to set again at once.
pub(crate) const RESUME_WATCHES_MAX: usize = 100_000;

#[derive(Debug, Clone)]
pub(crate) struct SessionsService {
    shared: Arc<Shared>,
    writes: WriteQueue,
}

impl SessionsService {
    pub(crate) fn new(shared: Arc<Shared>, writes: WriteQueue) -> Self {
        SessionsService { shared, writes }
    }
}

fn status(code: ErrorCode, message: impl Into<String>) -> Status {
    error_status(code, message, "", None)
}

fn session_hex(session: u64) -> String {
    format!("0x{session:016x}")
}

#[tonic::async_trait]
impl Sessions for SessionsService {
    type SessionStream = Outbound;

    async fn session(
        &self,
        request: Request<Streaming<pb::SessionRequest>>,
    ) -> Result<Response<Outbound>, Status> {
        let (remote, subject) = (request.remote_addr(), client_subject(&request));
        let incoming: Incoming = Box::pin(request.into_inner());
        self.open(remote, subject, incoming).await.map(Response::new)
    }
}

impl SessionsService {
    /// Opens a session stream: its first message must be a Connect. The gRPC service
    /// and the ZooKeeper protocol listener both come here.
    pub(crate) async fn open(
        &self,
        remote: Option<std::net::SocketAddr>,
        subject: Option<String>,
        mut incoming: Incoming,
    ) -> Result<Outbound, Status> {
        if !self.shared.serving() {
            return Err(status(ErrorCode::ConnectionLoss, "the server is not serving"));
        }
        let first = tokio::time::timeout(CONNECT_TIMEOUT, incoming.next())
            .await
            .map_err(|_| status(ErrorCode::BadArguments, "no Connect within the timeout"))?
            .transpose()?;
        let connect = match first.and_then(|m| m.kind) {
            Some(pb::session_request::Kind::Connect(connect)) => connect,
            _ => {
                return Err(status(ErrorCode::BadArguments, "the first message must be a Connect"));
            }
        };
        let auth = self.authenticate(base_identities(remote, subject), &connect.auth)?;
        let (session, password, timeout_ms) = if connect.session_id == 0 {
            self.create(connect.timeout_ms).await?
        } else {
            let info = self.check_resume(&connect)?;
            (info.session, info.password, info.timeout_ms)
        };

        let (out, queue) = mpsc::channel(SESSION_OUTBOUND_MAX);
        let (kill, killed) = oneshot::channel();
        let hub = &self.shared.sessions;
        let specs = connect
            .watches
            .into_iter()
            .take(RESUME_WATCHES_MAX)
            .map(watch_spec_from_pb)
            .collect::<Result<Vec<_>, _>>()?;
        // Under the tree's read lock no txn is applied: the missed events computed
        // here and the events of later txns cannot interleave wrongly.
        let tree = self
            .shared
            .read_tree()
            .map_err(|_| status(ErrorCode::ConnectionLoss, "the server is failing; try another"))?;
        let zxid = tree.last_zxid();
        let missed = hub
            .watches()
            .reregister(&tree, session, connect.last_zxid_seen, &specs)
            .map_err(|e| status(ErrorCode::BadArguments, e.to_string()))?;
        let connected = pb::Connected {
            session_id: session,
            password: password.to_le_bytes().to_vec().into(),
            timeout_ms,
            zxid,
        };
        let mut first = vec![pb::session_response::Kind::Connected(connected)];
        first
            .extend(missed.iter().map(|e| pb::session_response::Kind::Event(watch_event_to_pb(e))));
        for kind in first {
            // The queue is new and far larger than one connect's events are allowed to be.
            let _ = out.try_send(Box::new(pb::SessionResponse { kind: Some(kind) }));
        }
        let conn_id = hub.attach(session, auth.clone(), out.clone(), kill);
        drop(tree);
        tracing::debug!(session = %session_hex(session), timeout_ms, "session connected");

        conn::spawn(conn::Conn {
            shared: Arc::clone(&self.shared),
            writes: self.writes.clone(),
            session,
            conn_id,
            auth,
            incoming,
            out,
        });
        Ok(Outbound::new(queue, killed))
    }
    /// The identities a stream starts with; AUTH_FAILED if a credential is refused.
    fn authenticate(
        &self,
        ids: Vec<baton_znode::Id>,
        credentials: &[pb::AddAuthRequest],
    ) -> Result<Auth, Status> {
        if credentials.len() > CREDENTIALS_MAX {
            let message = format!("a Connect may carry at most {CREDENTIALS_MAX} credentials");
            return Err(status(ErrorCode::AuthFailed, message));
        }
        let mut auth = Auth::new(ids);
        for add in credentials {
            // No session yet: a refused Connect is logged as session 0.
            auth = super::authenticated(&self.shared, 0, &auth, add)?;
        }
        Ok(auth)
    }

    /// Logs a new session; returns (id, password, negotiated timeout).
    async fn create(&self, requested_ms: u32) -> Result<(u64, u64, u32), Status> {
        let hub = &self.shared.sessions;
        if hub.session_count() >= SESSIONS_MAX {
            return Err(status(
                ErrorCode::SystemError,
                format!("too many sessions: the limit is {SESSIONS_MAX}"),
            ));
        }
        let timeout_ms = hub.tracker().negotiate(u64::from(requested_ms));
        let timeout_ms = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        let password = new_password().map_err(|e| {
            status(ErrorCode::SystemError, format!("no randomness for a password: {e}"))
        })?;
        let session = loop {
            let id = hub.ids().next_id();
            let tree = self.shared.read_tree().map_err(|_| {
                status(ErrorCode::ConnectionLoss, "the server is failing; try another")
            })?;
            if tree.session(id).is_none() {
                break id;
            }
        };
        let op = TxnOp::CreateSession { session, timeout_ms, password };
        let reply = self
            .writes
            .submit(session, op)
            .await
            .map_err(|e| status(ErrorCode::SystemError, e.to_string()))?;
        reply.result.map_err(|e| txn_error_status(&e))?;
        Ok((session, password, timeout_ms))
    }

    fn check_resume(&self, connect: &pb::Connect) -> Result<baton_znode::SessionInfo, Status> {
        let session = connect.session_id;
        let tree = self
            .shared
            .read_tree()
            .map_err(|_| status(ErrorCode::ConnectionLoss, "the server is failing; try another"))?;
        if tree.last_zxid() < connect.last_zxid_seen {
            return Err(status(
                ErrorCode::ConnectionLoss,
                format!(
                    "this server is behind the client: it has applied up to 0x{:x}, the client \
                     has seen 0x{:x}; try another server",
                    tree.last_zxid(),
                    connect.last_zxid_seen
                ),
            ));
        }
        let expired = || {
            status(ErrorCode::SessionExpired, format!("session {} expired", session_hex(session)))
        };
        let info = tree.session(session).ok_or_else(expired)?;
        let shown = <[u8; 8]>::try_from(connect.password.as_ref()).ok().map(u64::from_le_bytes);
        if shown != Some(info.password) {
            return Err(status(
                ErrorCode::AuthFailed,
                format!("wrong password for session {}", session_hex(session)),
            ));
        }
        if !self.shared.sessions.touch(session) {
            return Err(expired());
        }
        Ok(info)
    }
}
