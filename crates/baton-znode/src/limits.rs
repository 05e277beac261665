use crate::{TxnError, TxnOp};

/// Limits checked before a txn is proposed. They are configuration, so they are not
/// re-checked by `apply` (replicas must not disagree because their configs differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest data of one znode (ZooKeeper's jute.maxbuffer is 1 MiB).
    pub data_bytes_max: usize,
    /// Most ops in one multi.
    pub multi_ops_max: usize,
    /// Longest path, in bytes.
    pub path_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { data_bytes_max: 1024 * 1024, multi_ops_max: 1024, path_bytes_max: 4096 }
    }
}

/// Stateless validation of a client op: paths, data sizes, TTL and mode agreement,
/// multi size. Errors name the path (and the op index in a multi).
pub fn validate_op(op: &TxnOp, limits: &Limits) -> Result<(), TxnError> {
    let _ = (op, limits);
    todo!("baton-znode helper")
}
