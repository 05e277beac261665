//! Opening one session stream to one server: dial, send `Connect`, wait for `Connected`,
//! and say what a refusal means (try the next server, or the session is over).

use baton_api::{
    pb::{self, sessions_client::SessionsClient},
    status::ErrorCode,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::{CONNECT_TIMEOUT, ClientError, ServerAddr, client::dial};

/// The largest message the client accepts from a server (tonic's default is 4 MiB): a
/// node's data is at most 1 MiB by default but configurable, and a children listing of a
/// crowded node can be larger.
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// An open session stream.
#[derive(Debug)]
pub(crate) struct Live {
    /// Requests to the server. Bounded; the task never has more outstanding than this
    /// holds, so sending never waits.
    pub(crate) outbound: mpsc::Sender<pb::SessionRequest>,
    pub(crate) inbound: Streaming<pb::SessionResponse>,
    pub(crate) endpoint: String,
}

/// Why a server did not (or no longer does) serve the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This server cannot serve now (unreachable, behind the client, shutting down, a
    /// broken stream, ...): try the next one. The error says why.
    Lost(ClientError),
    /// The session is over: SESSION_EXPIRED or AUTH_FAILED. Final.
    Ended(ClientError),
}

/// Dials `server` and opens a session stream with `connect`, within [`CONNECT_TIMEOUT`].
pub(crate) async fn open(
    server: &ServerAddr,
    connect: pb::Connect,
    outbound_max: usize,
) -> Result<(Live, pb::Connected), Refusal> {
    let session_id = connect.session_id;
    let endpoint = server.authority.as_str();
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt(server, connect, outbound_max)).await {
        Ok(result) => result,
        Err(_) => Err(lost(
            endpoint,
            format!("no Connected answer within {} ms", CONNECT_TIMEOUT.as_millis()),
        )),
    }
    .map_err(|refusal| match refusal {
        Refusal::Ended(error) => Refusal::Ended(with_session(error, session_id)),
        lost => lost,
    })
}

async fn attempt(
    server: &ServerAddr,
    connect: pb::Connect,
    outbound_max: usize,
) -> Result<(Live, pb::Connected), Refusal> {
    let endpoint = server.authority.as_str();
    let channel = dial(server).await.map_err(|reason| lost(endpoint, reason))?;
    let (outbound, requests) = mpsc::channel(outbound_max.max(1));
    let first = pb::SessionRequest { kind: Some(pb::session_request::Kind::Connect(connect)) };
    outbound.try_send(first).map_err(|_| lost(endpoint, "request queue closed".to_owned()))?;
    let response = SessionsClient::new(channel)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .session(ReceiverStream::new(requests))
        .await
        .map_err(|status| refusal(&status, endpoint))?;
    let mut inbound = response.into_inner();
    use pb::session_response::Kind;
    match inbound.message().await {
        Ok(Some(pb::SessionResponse { kind: Some(Kind::Connected(connected)) })) => {
            Ok((Live { outbound, inbound, endpoint: endpoint.to_owned() }, connected))
        }
        Ok(Some(_)) => Err(lost(endpoint, "protocol error: first message is not Connected".into())),
        Ok(None) => Err(lost(endpoint, "the server ended the stream before Connected".into())),
        Err(status) => Err(refusal(&status, endpoint)),
    }
}

/// What the status that ended (or refused) a stream means for the session.
pub(crate) fn refusal(status: &Status, endpoint: &str) -> Refusal {
    let error = ClientError::from_status(status, endpoint);
    match error.code() {
        ErrorCode::SessionExpired => Refusal::Ended(ClientError::SessionExpired {
            session_id: 0,
            message: error.to_string(),
        }),
        ErrorCode::AuthFailed => {
            Refusal::Ended(ClientError::AuthFailed { session_id: 0, message: error.to_string() })
        }
        ErrorCode::Unimplemented => Refusal::Lost(ClientError::Api {
            code: ErrorCode::Unimplemented,
            message: format!(
                "{endpoint} does not serve sessions (rpc Sessions.Session is unimplemented)"
            ),
            path: String::new(),
            op_index: None,
        }),
        _ => Refusal::Lost(error),
    }
}

/// The error in-flight requests fail with when the stream broke for `reason`.
pub(crate) fn as_connection_loss(reason: &ClientError, endpoint: &str) -> ClientError {
    match reason {
        ClientError::ConnectionLoss { .. } => reason.clone(),
        other => {
            ClientError::ConnectionLoss { endpoint: endpoint.to_owned(), reason: other.to_string() }
        }
    }
}

/// Names the session in an end-of-session error.
pub(crate) fn with_session(error: ClientError, id: u64) -> ClientError {
    match error {
        ClientError::SessionExpired { message, .. } => {
            ClientError::SessionExpired { session_id: id, message }
        }
        ClientError::AuthFailed { message, .. } => {
            ClientError::AuthFailed { session_id: id, message }
        }
        other => other,
    }
}

fn lost(endpoint: &str, reason: String) -> Refusal {
    Refusal::Lost(ClientError::ConnectionLoss { endpoint: endpoint.to_owned(), reason })
}
