use thiserror::Error;

/// Every way an operation on the tree can fail. The variants mirror ZooKeeper's
/// KeeperException codes; each names the path it is about.
///
/// These are *outcomes*, not faults: a txn that fails with one of these changes
/// nothing in the tree, on every replica alike.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ZnodeError {
    #[error("node does not exist: {path}")]
    NoNode { path: String },
    #[error("node already exists: {path}")]
    NodeExists { path: String },
    #[error("version mismatch on {path}: expected {expected}, actual {actual}")]
    BadVersion { path: String, expected: i32, actual: i32 },
    #[error("node has children: {path}")]
    NotEmpty { path: String },
    #[error("ephemeral node cannot have children: {path}")]
    NoChildrenForEphemerals { path: String },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("data too large for {path}: {len} bytes, limit {max} bytes")]
    DataTooLarge { path: String, len: usize, max: usize },
    #[error("session expired or unknown: 0x{session:016x}")]
    SessionExpired { session: u64 },
    #[error("bad arguments for {path}: {reason}")]
    BadArguments { path: String, reason: String },
    /// The caller lacks the permission the operation needs on `path` (the node, or
    /// its parent for create and delete).
    #[error("not authorized: {perm} permission needed on {path}")]
    NoAuth { path: String, perm: &'static str },
    #[error("invalid ACL for {path}: {reason}")]
    InvalidAcl { path: String, reason: String },
    /// A hard quota limit would be exceeded.
    #[error("quota exceeded for {path}: {reason} (quota on {quota_path})")]
    QuotaExceeded { path: String, quota_path: String, reason: String },
}

impl ZnodeError {
    /// The path the error is about ("" for errors not about a path).
    pub fn path(&self) -> &str {
        match self {
            ZnodeError::NoNode { path }
            | ZnodeError::NodeExists { path }
            | ZnodeError::BadVersion { path, .. }
            | ZnodeError::NotEmpty { path }
            | ZnodeError::NoChildrenForEphemerals { path }
            | ZnodeError::InvalidPath { path, .. }
            | ZnodeError::DataTooLarge { path, .. }
            | ZnodeError::BadArguments { path, .. }
            | ZnodeError::NoAuth { path, .. }
            | ZnodeError::InvalidAcl { path, .. }
            | ZnodeError::QuotaExceeded { path, .. } => path,
            ZnodeError::SessionExpired { .. } => "",
        }
    }
}

/// A failed txn: the error, and for a multi the index of the op that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{error}", op_index.map(|i| format!("multi op {i}: ")).unwrap_or_default())]
pub struct TxnError {
    pub op_index: Option<usize>,
    pub error: ZnodeError,
}

impl From<ZnodeError> for TxnError {
    fn from(error: ZnodeError) -> Self {
        TxnError { op_index: None, error }
    }
}

/// Snapshot or txn bytes that cannot be decoded. Comes from disk or a peer, so it is
/// an error, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated input: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("bad magic or version: {0}")]
    BadHeader(String),
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("invalid value at offset {offset}: {reason}")]
    Invalid { offset: usize, reason: String },
}
