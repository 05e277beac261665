//! Exit codes: each says who failed, so scripts can branch without parsing stderr.

use baton_client::ClientError;

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
/// A local failure: reading stdin, writing stdout.
pub const LOCAL_ERROR: i32 = 5;

/// The exit-code table of `baton --help`.
pub const HELP: &str = "\
Exit codes:
  0  success (exists: the node exists)
  1  exists: the node does not exist
  2  usage error (bad flags or endpoints)
  3  the server reported an error (e.g. node does not exist, version mismatch)
  4  connection loss or timeout: no server answered (retryable)
  5  local error (reading stdin, writing stdout)

Errors are printed as one line on stderr: `baton: <message>`.";

/// The exit code of a failed command.
pub fn for_error(error: &anyhow::Error) -> i32 {
    match error.downcast_ref::<ClientError>() {
        Some(ClientError::InvalidEndpoint { .. }) => USAGE,
        Some(e) if e.is_retryable() => CONNECTION_LOSS,
        Some(_) => SERVER_ERROR,
        None => LOCAL_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use baton_client::ErrorCode;

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
    fn usage_is_claps_code() {
        let err = clap::Error::new(clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(err.exit_code(), USAGE);
    }
}
