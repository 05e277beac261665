//! Errors on the wire. A failed call is a gRPC [`Status`] whose code is chosen by
//! [`grpc_code`], whose `details` hold an encoded [`pb::Error`] (code, message, path,
//! op index) and whose metadata carries [`ERROR_CODE_METADATA`] = the code's proto name.
//! [`error_status`] is the only function that builds such a status.

use baton_znode::{TxnError, ZnodeError, watch::WatchError};
use prost::Message;
use tonic::{Code, Status, metadata::MetadataMap};

use crate::pb;
pub use crate::pb::ErrorCode;

/// The metadata key that carries the error code's proto name (e.g. `NO_NODE`), for
/// clients that only look at headers (grpcurl, proxies, logs).
pub const ERROR_CODE_METADATA: &str = "baton-error-code";

/// The code of a tree error.
pub fn znode_error_code(error: &ZnodeError) -> ErrorCode {
    match error {
        ZnodeError::NoNode { .. } => ErrorCode::NoNode,
        ZnodeError::NodeExists { .. } => ErrorCode::NodeExists,
        ZnodeError::BadVersion { .. } => ErrorCode::BadVersion,
        ZnodeError::NotEmpty { .. } => ErrorCode::NotEmpty,
        ZnodeError::NoChildrenForEphemerals { .. } => ErrorCode::NoChildrenForEphemerals,
        ZnodeError::InvalidPath { .. } => ErrorCode::InvalidPath,
        ZnodeError::DataTooLarge { .. } => ErrorCode::DataTooLarge,
        ZnodeError::SessionExpired { .. } => ErrorCode::SessionExpired,
        ZnodeError::BadArguments { .. } => ErrorCode::BadArguments,
        ZnodeError::NoAuth { .. } => ErrorCode::NoAuth,
        ZnodeError::InvalidAcl { .. } => ErrorCode::InvalidAcl,
        ZnodeError::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
    }
}

/// The gRPC code a Baton error code travels under.
///
/// Session errors (`SESSION_EXPIRED`, `SESSION_MOVED`) are `FAILED_PRECONDITION`: the
/// request was well-formed but the session it names is not in a state that allows it, and
/// retrying the same request on the same session cannot succeed. They are deliberately not
/// `UNAVAILABLE`, which generic gRPC clients treat as "retry elsewhere".
pub fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::NoNode | ErrorCode::NoWatcher => Code::NotFound,
        ErrorCode::NodeExists => Code::AlreadyExists,
        ErrorCode::BadVersion
        | ErrorCode::NotEmpty
        | ErrorCode::NoChildrenForEphemerals
        | ErrorCode::NotReadOnly
        | ErrorCode::SessionExpired
        | ErrorCode::SessionMoved => Code::FailedPrecondition,
        ErrorCode::InvalidPath
        | ErrorCode::DataTooLarge
        | ErrorCode::BadArguments
        | ErrorCode::InvalidAcl => Code::InvalidArgument,
        ErrorCode::NoAuth => Code::PermissionDenied,
        ErrorCode::QuotaExceeded => Code::ResourceExhausted,
        ErrorCode::AuthFailed => Code::Unauthenticated,
        ErrorCode::ConnectionLoss => Code::Unavailable,
        ErrorCode::OperationTimeout => Code::DeadlineExceeded,
        ErrorCode::Unimplemented => Code::Unimplemented,
        ErrorCode::SystemError => Code::Internal,
        ErrorCode::Unspecified => Code::Unknown,
    }
}

/// Builds the status of a failed call: the one place an error becomes a [`Status`].
pub fn error_status(
    code: ErrorCode,
    message: impl Into<String>,
    path: impl Into<String>,
    op_index: Option<u32>,
) -> Status {
    let error =
        pb::Error { code: code as i32, message: message.into(), path: path.into(), op_index };
    let mut metadata = MetadataMap::new();
    // `as_str_name` is ASCII upper case and underscores, always a valid header value.
    if let Ok(value) = code.as_str_name().parse() {
        metadata.insert(ERROR_CODE_METADATA, value);
    }
    Status::with_details_and_metadata(
        grpc_code(code),
        error.message.clone(),
        error.encode_to_vec().into(),
        metadata,
    )
}

/// The status of a failed tree operation.
pub fn znode_error_status(error: &ZnodeError) -> Status {
    error_status(znode_error_code(error), error.to_string(), error.path(), None)
}

/// The status of a failed txn; for a multi it names the failing op's index (the message
/// does too, through `TxnError`'s Display).
/// A refused watch operation (remove a watch that is not there, or one watch too
/// many) as the gRPC status a client sees.
pub fn watch_error_status(error: &WatchError) -> Status {
    match error {
        WatchError::NoWatcher { path } => {
            error_status(ErrorCode::NoWatcher, error.to_string(), path.as_str(), None)
        }
        WatchError::TooManyWatches { .. } => {
            error_status(ErrorCode::BadArguments, error.to_string(), "", None)
        }
    }
}

pub fn txn_error_status(error: &TxnError) -> Status {
    // Multis are bounded far below u32::MAX ops (`Limits::multi_ops_max`); saturate rather
    // than wrap should that ever change.
    let op_index = error.op_index.map(|i| u32::try_from(i).unwrap_or(u32::MAX));
    error_status(znode_error_code(&error.error), error.to_string(), error.error.path(), op_index)
}

/// Reads the Baton error out of a status.
///
/// A status built by [`error_status`] decodes exactly. A status without Baton details (made
/// by the client's own transport, or by a proxy) is classified by its gRPC code: a status
/// produced locally from a transport failure (it has a source error) or `UNAVAILABLE` is
/// `CONNECTION_LOSS`, `DEADLINE_EXCEEDED` is `OPERATION_TIMEOUT`, `UNIMPLEMENTED` is
/// `UNIMPLEMENTED`, anything else `SYSTEM_ERROR`; the message is the status message.
pub fn error_from_status(status: &Status) -> pb::Error {
    if let Ok(error) = pb::Error::decode(status.details())
        && error.code != ErrorCode::Unspecified as i32
    {
        return error;
    }
    let code = match status.code() {
        Code::Unavailable => ErrorCode::ConnectionLoss,
        Code::DeadlineExceeded => ErrorCode::OperationTimeout,
        Code::Unimplemented => ErrorCode::Unimplemented,
        _ if std::error::Error::source(status).is_some() => ErrorCode::ConnectionLoss,
        _ => ErrorCode::SystemError,
    };
    pb::Error {
        code: code as i32,
        message: status.message().to_owned(),
        path: String::new(),
        op_index: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_znode_error() -> Vec<ZnodeError> {
        let path = "/a/b".to_owned();
        vec![
            ZnodeError::NoNode { path: path.clone() },
            ZnodeError::NodeExists { path: path.clone() },
            ZnodeError::BadVersion { path: path.clone(), expected: 3, actual: 4 },
            ZnodeError::NotEmpty { path: path.clone() },
            ZnodeError::NoChildrenForEphemerals { path: path.clone() },
            ZnodeError::InvalidPath { path: path.clone(), reason: "empty segment" },
            ZnodeError::DataTooLarge { path: path.clone(), len: 10, max: 5 },
            ZnodeError::SessionExpired { session: 0xabc },
            ZnodeError::BadArguments { path, reason: "ttl on a persistent node".into() },
        ]
    }

    fn every_code() -> impl Iterator<Item = ErrorCode> {
        (0..).map_while(|i| ErrorCode::try_from(i).ok())
    }

    #[test]
    fn every_znode_error_round_trips_through_a_status() {
        for error in every_znode_error() {
            let status = znode_error_status(&error);
            let decoded = error_from_status(&status);
            assert_eq!(decoded.code, znode_error_code(&error) as i32, "{error:?}");
            assert_eq!(decoded.message, error.to_string());
            assert_eq!(decoded.path, error.path());
            assert_eq!(decoded.op_index, None);
            assert_eq!(status.message(), error.to_string());
        }
    }

    #[test]
    fn txn_errors_carry_the_op_index() {
        for error in every_znode_error() {
            let txn = TxnError { op_index: Some(2), error: error.clone() };
            let status = txn_error_status(&txn);
            let decoded = error_from_status(&status);
            assert_eq!(decoded.code, znode_error_code(&error) as i32);
            assert_eq!(decoded.path, error.path());
            assert_eq!(decoded.op_index, Some(2));
            assert!(decoded.message.starts_with("multi op 2: "), "{}", decoded.message);
        }
        let plain = txn_error_status(&TxnError::from(ZnodeError::NoNode { path: "/x".into() }));
        assert_eq!(error_from_status(&plain).op_index, None);
    }

    #[test]
    fn grpc_codes_follow_the_documented_mapping() {
        let code_of = |e: &ZnodeError| znode_error_status(e).code();
        let errors = every_znode_error();
        assert_eq!(code_of(&errors[0]), Code::NotFound);
        assert_eq!(code_of(&errors[1]), Code::AlreadyExists);
        assert_eq!(code_of(&errors[2]), Code::FailedPrecondition);
        assert_eq!(code_of(&errors[3]), Code::FailedPrecondition);
        assert_eq!(code_of(&errors[4]), Code::FailedPrecondition);
        assert_eq!(code_of(&errors[5]), Code::InvalidArgument);
        assert_eq!(code_of(&errors[6]), Code::InvalidArgument);
        assert_eq!(code_of(&errors[7]), Code::FailedPrecondition);
        assert_eq!(code_of(&errors[8]), Code::InvalidArgument);
        assert_eq!(grpc_code(ErrorCode::NoAuth), Code::PermissionDenied);
        assert_eq!(grpc_code(ErrorCode::AuthFailed), Code::Unauthenticated);
        assert_eq!(grpc_code(ErrorCode::ConnectionLoss), Code::Unavailable);
        assert_eq!(grpc_code(ErrorCode::OperationTimeout), Code::DeadlineExceeded);
        assert_eq!(grpc_code(ErrorCode::Unimplemented), Code::Unimplemented);
        assert_eq!(grpc_code(ErrorCode::SystemError), Code::Internal);
        assert_eq!(grpc_code(ErrorCode::InvalidAcl), Code::InvalidArgument);
        assert_eq!(grpc_code(ErrorCode::NotReadOnly), Code::FailedPrecondition);
        assert_eq!(grpc_code(ErrorCode::SessionMoved), Code::FailedPrecondition);
    }

    #[test]
    fn every_code_round_trips_with_metadata() {
        for code in every_code() {
            let status = error_status(code, "boom", "/p", Some(7));
            let name = status.metadata().get(ERROR_CODE_METADATA).expect("metadata set");
            assert_eq!(name.to_str().unwrap(), code.as_str_name());
            if code == ErrorCode::Unspecified {
                continue; // an unspecified code is treated as "no Baton details"
            }
            let decoded = error_from_status(&status);
            assert_eq!(
                decoded,
                pb::Error {
                    code: code as i32,
                    message: "boom".into(),
                    path: "/p".into(),
                    op_index: Some(7),
                }
            );
        }
        assert_eq!(every_code().count(), 21);
    }

    #[test]
    fn statuses_without_details_are_classified_by_grpc_code() {
        let classify = |status: Status| error_from_status(&status);
        let e = classify(Status::unavailable("connection refused"));
        assert_eq!(e.code, ErrorCode::ConnectionLoss as i32);
        assert_eq!(e.message, "connection refused");
        assert_eq!(e.path, "");
        assert_eq!(
            classify(Status::deadline_exceeded("t")).code,
            ErrorCode::OperationTimeout as i32
        );
        assert_eq!(classify(Status::unimplemented("u")).code, ErrorCode::Unimplemented as i32);
        assert_eq!(classify(Status::internal("i")).code, ErrorCode::SystemError as i32);
        assert_eq!(classify(Status::not_found("n")).code, ErrorCode::SystemError as i32);
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe");
        let transport = Status::from_error(Box::new(io));
        assert_eq!(classify(transport).code, ErrorCode::ConnectionLoss as i32);
    }

    #[test]
    fn garbage_details_do_not_panic() {
        let status = Status::with_details(Code::NotFound, "x", vec![0xff, 0xff, 0xff].into());
        assert_eq!(error_from_status(&status).code, ErrorCode::SystemError as i32);
    }
}
