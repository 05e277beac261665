//! Transactions: the only way the tree changes. A txn carries everything `apply`
//! needs (zxid, time, session) so that applying it is deterministic.

use bytes::Bytes;

use crate::Stat;

/// How a znode is created, as ZooKeeper's CreateMode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    /// Deleted by the server once its last child is gone (after it had one).
    Container,
    /// Deleted by the server once it has had no change and no children for its TTL.
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
    pub fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOp {
    pub path: String,
    pub data: Bytes,
    pub mode: CreateMode,
    /// Milliseconds; > 0 for the TTL modes, 0 otherwise.
    pub ttl_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOp {
    pub path: String,
    /// Expected version, -1 = any.
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDataOp {
    pub path: String,
    pub data: Bytes,
    /// Expected version, -1 = any.
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOp {
    pub path: String,
    /// Expected version, -1 = any (then it only checks existence).
    pub version: i32,
}

/// One operation of a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Check(CheckOp),
    Create(CreateOp),
    SetData(SetDataOp),
    Delete(DeleteOp),
}

/// What a txn does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Create(CreateOp),
    Delete(DeleteOp),
    SetData(SetDataOp),
    /// All ops or none.
    Multi(Vec<MultiOp>),
    /// Opens a session (ephemerals can be owned by it from this txn on).
    CreateSession {
        session: u64,
        timeout_ms: u32,
        /// The secret a client shows to resume the session (chosen by the server
        /// that created it, at random; logged so every server can check it).
        password: u64,
    },
    /// Closes a session (explicitly or on expiry) and deletes its ephemerals, in this txn.
    CloseSession {
        session: u64,
    },
    /// Server housekeeping: deletes each listed container / TTL node that is still
    /// eligible at the txn's time (not eligible any more = skipped, not an error).
    Reap {
        paths: Vec<String>,
    },
}

/// A txn as it is logged and replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub zxid: u64,
    /// Milliseconds since the Unix epoch, assigned by the leader when it proposes.
    pub time_ms: i64,
    /// The session on whose behalf the txn runs (owner of ephemerals it creates); 0 = none.
    pub session: u64,
    pub op: TxnOp,
}

/// The result of one successful op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The path actually created (with the sequence suffix) and its Stat.
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    SetData {
        stat: Stat,
    },
    Checked,
    Multi(Vec<OpResult>),
    SessionCreated,
    SessionClosed,
    Reaped {
        paths: Vec<String>,
    },
}

/// What a change did to a path, for watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// A successful apply: the result and the changes it made, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub result: OpResult,
    pub changes: Vec<Change>,
}
