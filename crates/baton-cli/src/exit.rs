//! Exit codes: each says who failed, so scripts can branch without parsing stderr.

use baton_client::{ClientError, ErrorCode};

/// The command did what was asked (`exists`: the node exists).
pub const OK: i32 = 0;
/// `exists` only: the node does not exist.
pub const NOT_FOUND: i32 = 1;
/// The command line is wrong (clap's own code for usage errors), or so is an endpoint.
pub const USAGE: i32 = 2;
/// The server answered with an error (no node, bad version, not empty, ...).
pub const SERVER_ERROR: i32 = 3;
/// No server could be reached, the connection broke, or the call timed out; the same
/// command may work when repeated (a write may or may not have been applied).
pub const CONNECTION_LOSS: i32 = 4;
/// A local failure: reading stdin, writing stdout, starting `lock`'s command, a `watch`
/// whose output could not keep up with its events.
pub const LOCAL_ERROR: i32 = 5;
/// The session ended under the command (expired, or its password refused): its ephemeral
/// node or lock is gone.
pub const SESSION_EXPIRED: i32 = 6;
/// Access denied: the caller lacks a permission (NO_AUTH) or its credentials were
/// refused (AUTH_FAILED).
pub const ACCESS_DENIED: i32 = 7;

/// The exit-code table of `baton --help`.
pub const HELP: &str = "\
Exit codes:
  0  success (exists: the node exists)
  1  exists: the node does not exist
  2  usage error (bad flags or endpoints)
  3  the server reported an error (e.g. node does not exist, version mismatch)
  4  connection loss or timeout: no server answered (retryable)
  5  local error (reading stdin, writing stdout, starting lock's command,
     a watch whose output fell behind)
  6  the session expired (create -e, watch, lock, session): ephemerals and locks are gone
  7  access denied: a permission is missing (NO_AUTH) or --auth was refused (AUTH_FAILED)
  lock: COMMAND's own exit code (128+N if a signal N ended it) once the lock was taken;
        the codes above if baton itself failed

Errors are printed as one line on stderr: `baton: <message>`.";

/// The exit code of a failed command.
pub fn for_error(error: &anyhow::Error) -> i32 {
    match error.downcast_ref::<ClientError>() {
        Some(ClientError::InvalidEndpoint { .. } | ClientError::InvalidTls { .. }) => USAGE,
        Some(ClientError::WatchLagged { .. } | ClientError::TooManyRequests { .. }) => LOCAL_ERROR,
        Some(e) if e.is_session_end() || e.code() == ErrorCode::SessionExpired => SESSION_EXPIRED,
        Some(e) if matches!(e.code(), ErrorCode::NoAuth | ErrorCode::AuthFailed) => ACCESS_DENIED,
        Some(e) if e.is_retryable() => CONNECTION_LOSS,
        Some(_) => SERVER_ERROR,
        None => LOCAL_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: ErrorCode) -> anyhow::Error {
        ClientError::Api { code, message: "m".into(), path: "/p".into(), op_index: None }.into()
    }

    #[test]
    fn errors_map_to_their_documented_codes() {
        assert_eq!(for_error(&api(ErrorCode::NoNode)), SERVER_ERROR);
        assert_eq!(for_error(&api(ErrorCode::BadVersion)), SERVER_ERROR);
        assert_eq!(for_error(&api(ErrorCode::OperationTimeout)), CONNECTION_LOSS);
        let lost = ClientError::ConnectionLoss { endpoint: "h:1".into(), reason: "r".into() };
        assert_eq!(for_error(&lost.into()), CONNECTION_LOSS);
        let bad = ClientError::InvalidEndpoint { endpoint: "h".into(), reason: "r".into() };
        assert_eq!(for_error(&bad.into()), USAGE);
        assert_eq!(for_error(&anyhow::anyhow!("stdin closed")), LOCAL_ERROR);
    }

    #[test]
    fn the_end_of_a_session_has_its_own_code() {
        let expired = ClientError::SessionExpired { session_id: 1, message: "m".into() };
        assert_eq!(for_error(&expired.into()), SESSION_EXPIRED);
        let refused = ClientError::AuthFailed { session_id: 1, message: "m".into() };
        assert_eq!(for_error(&refused.into()), SESSION_EXPIRED);
        assert_eq!(for_error(&ClientError::Closed.into()), SESSION_EXPIRED);
        assert_eq!(for_error(&api(ErrorCode::SessionExpired)), SESSION_EXPIRED);
        let lagged = ClientError::WatchLagged { path: "/".into(), max: 1 };
        assert_eq!(for_error(&lagged.into()), LOCAL_ERROR);
    }

    #[test]
    fn usage_is_claps_code() {
        let err = clap::Error::new(clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(err.exit_code(), USAGE);
    }
}
