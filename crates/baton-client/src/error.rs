use baton_api::{pb, status::ErrorCode};
use thiserror::Error;

/// Every way a client call can fail.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    /// The server refused the request; `message` is the server's own (e.g.
    /// `node does not exist: /a`), `op_index` names the failing op of a multi.
    #[error("{message}")]
    Api { code: ErrorCode, message: String, path: String, op_index: Option<u32> },
    /// No server could be reached, the connection broke, or the server said it cannot
    /// serve now. Retryable on another server; a write that failed this way may or may not
    /// have been applied.
    #[error("connection loss ({endpoint}): {reason}")]
    ConnectionLoss { endpoint: String, reason: String },
    /// An endpoint that cannot be dialled (no port, unsupported scheme, ...).
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// The session is over: the server expired it (or no longer knows it). Final: every
    /// later call on the session fails this way, and its ephemeral nodes are gone.
    #[error("session 0x{session_id:016x} expired: {message}")]
    SessionExpired { session_id: u64, message: String },
    /// The server refused the session's password. Final, like an expiry.
    #[error("session 0x{session_id:016x} refused: authentication failed: {message}")]
    AuthFailed { session_id: u64, message: String },
    /// The session was closed by this client ([`crate::Session::close`]).
    #[error("session closed")]
    Closed,
    /// The session already has its limit of requests waiting for a reply.
    #[error("too many requests in flight (limit {max})")]
    TooManyRequests { max: usize },
    /// A persistent watch's consumer fell more than `max` events behind; the watch was
    /// dropped rather than let its queue grow.
    #[error("watch on {path} dropped: its consumer fell more than {max} events behind")]
    WatchLagged { path: String, max: usize },
    /// The watch was removed ([`crate::Session::remove_watch`]) before it fired.
    #[error("watch on {path} removed")]
    WatchRemoved { path: String },
    /// TLS options that cannot be used: a file that cannot be read, is not PEM, a key
    /// that does not match its certificate. (A refused handshake is a
    /// [`ClientError::ConnectionLoss`] naming the endpoint and the reason.)
    #[error("invalid TLS options: {reason}")]
    InvalidTls { reason: String },
}

impl ClientError {
    /// The Baton error code; `BAD_ARGUMENTS` for an invalid endpoint, `SESSION_EXPIRED`
    /// for a closed session (as ZooKeeper answers calls on a closed handle),
    /// `SYSTEM_ERROR` for the client's own limits, `UNSPECIFIED` for a removed watch.
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Api { code, .. } => *code,
            ClientError::ConnectionLoss { .. } => ErrorCode::ConnectionLoss,
            ClientError::InvalidEndpoint { .. } | ClientError::InvalidTls { .. } => {
                ErrorCode::BadArguments
            }
            ClientError::SessionExpired { .. } | ClientError::Closed => ErrorCode::SessionExpired,
            ClientError::AuthFailed { .. } => ErrorCode::AuthFailed,
            ClientError::TooManyRequests { .. } | ClientError::WatchLagged { .. } => {
                ErrorCode::SystemError
            }
            ClientError::WatchRemoved { .. } => ErrorCode::Unspecified,
        }
    }

    /// True when the session this error came from is over for good (expired, refused or
    /// closed): nothing on it can succeed any more.
    pub fn is_session_end(&self) -> bool {
        matches!(
            self,
            ClientError::SessionExpired { .. }
                | ClientError::AuthFailed { .. }
                | ClientError::Closed
        )
    }

    /// True when repeating the call (after a reconnect) may succeed: a lost connection or a
    /// timeout. Everything else is an answer that repeating would only repeat.
    pub fn is_retryable(&self) -> bool {
        matches!(self.code(), ErrorCode::ConnectionLoss | ErrorCode::OperationTimeout)
    }

    /// The error a failed call's status describes. A status saying `CONNECTION_LOSS`
    /// (whether the transport made it or a server that cannot serve sent it) becomes
    /// [`ClientError::ConnectionLoss`]; every other code is [`ClientError::Api`].
    pub fn from_status(status: &tonic::Status, endpoint: &str) -> ClientError {
        let error = baton_api::status::error_from_status(status);
        if error.code == ErrorCode::ConnectionLoss as i32 {
            return ClientError::ConnectionLoss {
                endpoint: endpoint.to_owned(),
                reason: with_sources(&error.message, status),
            };
        }
        ClientError::from_pb(error, endpoint)
    }

    /// The error a `baton.v1.Error` describes (a failed reply on a session stream, or the
    /// decoded details of a status): `CONNECTION_LOSS` is [`ClientError::ConnectionLoss`],
    /// every other code [`ClientError::Api`].
    pub fn from_pb(error: pb::Error, endpoint: &str) -> ClientError {
        let pb::Error { code, message, path, op_index } = error;
        // A code from a newer server that this build does not know is still a failure the
        // caller must see; SYSTEM_ERROR is the honest "something went wrong there".
        let code = ErrorCode::try_from(code).unwrap_or(ErrorCode::SystemError);
        if code == ErrorCode::ConnectionLoss {
            return ClientError::ConnectionLoss { endpoint: endpoint.to_owned(), reason: message };
        }
        ClientError::Api { code, message, path, op_index }
    }
}

/// `message` followed by the distinct messages of `error`'s source chain: tonic's
/// transport errors say "transport error" on top and the useful part ("Connection
/// refused") only further down.
pub(crate) fn with_sources(message: &str, error: &dyn std::error::Error) -> String {
    let mut text = message.to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use baton_api::status::{error_status, znode_error_status};
    use baton_znode::ZnodeError;

    use super::*;

    #[test]
    fn server_errors_keep_the_servers_message() {
        let status = znode_error_status(&ZnodeError::NoNode { path: "/a".into() });
        let err = ClientError::from_status(&status, "127.0.0.1:7181");
        assert_eq!(err.to_string(), "node does not exist: /a");
        assert_eq!(err.code(), ErrorCode::NoNode);
        assert!(!err.is_retryable());
        assert_eq!(
            err,
            ClientError::Api {
                code: ErrorCode::NoNode,
                message: "node does not exist: /a".into(),
                path: "/a".into(),
                op_index: None,
            }
        );
    }

    #[test]
    fn multi_errors_keep_the_op_index() {
        let status = error_status(ErrorCode::BadVersion, "multi op 1: bad", "/x", Some(1));
        match ClientError::from_status(&status, "e:1") {
            ClientError::Api { code, op_index, path, .. } => {
                assert_eq!((code, op_index, path.as_str()), (ErrorCode::BadVersion, Some(1), "/x"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unavailable_is_connection_loss_and_retryable() {
        let err = ClientError::from_status(&tonic::Status::unavailable("refused"), "h:1");
        assert_eq!(
            err,
            ClientError::ConnectionLoss { endpoint: "h:1".into(), reason: "refused".into() }
        );
        assert!(err.is_retryable());
        assert_eq!(err.code(), ErrorCode::ConnectionLoss);
        assert_eq!(err.to_string(), "connection loss (h:1): refused");
        let from_server = error_status(ErrorCode::ConnectionLoss, "not serving", "", None);
        assert!(matches!(
            ClientError::from_status(&from_server, "h:1"),
            ClientError::ConnectionLoss { .. }
        ));
    }

    #[test]
    fn timeouts_are_retryable_api_errors() {
        let err = ClientError::from_status(&tonic::Status::deadline_exceeded("slow"), "h:1");
        assert_eq!(err.code(), ErrorCode::OperationTimeout);
        assert!(err.is_retryable());
    }

    #[test]
    fn unknown_codes_become_system_errors() {
        use prost::Message;
        let details =
            pb::Error { code: 999, message: "from the future".into(), ..Default::default() };
        let status =
            tonic::Status::with_details(tonic::Code::Aborted, "x", details.encode_to_vec().into());
        let err = ClientError::from_status(&status, "h:1");
        assert_eq!(err.code(), ErrorCode::SystemError);
        assert_eq!(err.to_string(), "from the future");
    }

    #[test]
    fn invalid_endpoints_are_bad_arguments() {
        let err = ClientError::InvalidEndpoint { endpoint: "x".into(), reason: "no port".into() };
        assert_eq!(err.code(), ErrorCode::BadArguments);
        assert!(!err.is_retryable());
        assert_eq!(err.to_string(), "invalid endpoint \"x\": no port");
    }

    #[test]
    fn source_chains_are_appended_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = tonic::Status::from_error(Box::new(io));
        let text = with_sources("transport error", &outer);
        assert!(text.starts_with("transport error"), "{text}");
    }
}
