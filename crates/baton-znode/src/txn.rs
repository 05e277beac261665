//! Transactions: the only way the tree changes. A txn carries everything `apply`
//! needs (zxid, time, session) so that applying it is deterministic.

use bytes::Bytes;

use crate::Stat;
use crate::acl::{Acl, Auth};

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
    /// The new node's ACL, concrete (`acl::fixup` made it so before the txn was
    /// built: no `auth` entries). Never empty.
    pub acl: Acl,
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

/// Replaces a node's ACL (needs ADMIN on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAclOp {
    pub path: String,
    /// Concrete, as `CreateOp::acl`.
    pub acl: Acl,
    /// Expected ACL version (`Stat::aversion`), -1 = any.
    pub version: i32,
}

/// The limits of a quota on a subtree, ZooKeeper 3.7's: a count of znodes (the
/// subtree's root included) and a number of data bytes, each soft (exceeding it only
/// warns) or hard (a create or set that would exceed it fails with
/// `QuotaExceeded`). None = no such limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct QuotaLimits {
    pub count_soft: Option<u64>,
    pub bytes_soft: Option<u64>,
    pub count_hard: Option<u64>,
    pub bytes_hard: Option<u64>,
}

impl QuotaLimits {
    /// ZooKeeper 3.7's `StatsTrack` text, as kept in the limits node and as zkCli's
    /// `listquota` prints it: `count=..,bytes=..=;byteHardLimit=..;countHardLimit=..`.
    pub fn to_stats_track(&self) -> String {
        crate::tree::format_limits(self)
    }

    /// The node the quota on `path` is kept in (`/baton/quota<path>/limits`).
    pub fn node_of(path: &str) -> String {
        crate::tree::limits_node(path)
    }
}

/// What a subtree under a quota holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct QuotaUsage {
    /// Znodes, the subtree's root included.
    pub count: u64,
    /// Data bytes of those znodes.
    pub bytes: u64,
}

/// A soft limit that an applied txn left exceeded (the server logs it and counts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaWarning {
    /// The path the quota is on.
    pub quota_path: String,
    pub limits: QuotaLimits,
    pub usage: QuotaUsage,
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
    /// Replaces a node's ACL.
    SetAcl(SetAclOp),
    /// Sets (replaces) the quota on a subtree; the node must exist, and no quota may
    /// be set on its ancestors or descendants (as ZooKeeper). Needs ADMIN on the node.
    /// Kept under `/baton/quota`.
    SetQuota {
        path: String,
        limits: QuotaLimits,
    },
    /// Removes the quota on a subtree (needs ADMIN on the node, when it exists).
    RemoveQuota {
        path: String,
    },
    /// A membership change asked of the ensemble (`baton members …`, ZooKeeper's
    /// reconfig). A request only: the leader decides it and logs the new
    /// configuration (applied as `SetConfig`) or `ConfigRefused`; applied itself,
    /// it fails.
    Reconfig(ReconfigOp),
    /// The configuration committed by a config entry: creates or replaces
    /// [`CONFIG_PATH`] with `data` (its text). Server-made.
    SetConfig {
        data: Bytes,
    },
    /// A membership change the leader refused (`reason` says why): it fails with
    /// that reason on every member, changing nothing.
    ConfigRefused {
        reason: String,
    },
    /// Server housekeeping: deletes each listed container / TTL node that is still
    /// eligible at the txn's time (not eligible any more = skipped, not an error).
    Reap {
        paths: Vec<String>,
    },
}

/// Where the configuration in force is kept (ZooKeeper keeps it at
/// `/zookeeper/config`, which the ZooKeeper port maps here).
pub const CONFIG_PATH: &str = "/baton/config";

/// One member named in a membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMember {
    pub id: u64,
    /// Its peer address (`HOST:PORT`).
    pub addr: String,
    pub voter: bool,
}

/// A membership change; see [`TxnOp::Reconfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigOp {
    /// Made only if the configuration in force has this version (ZooKeeper's
    /// `-v`); -1: whatever it is.
    pub from_version: i64,
    pub change: ConfigChange,
}

/// What a membership change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// A new member: as an observer, or a voter (it joins as an observer and is
    /// promoted once it caught up).
    Add(ConfigMember),
    Remove {
        id: u64,
    },
    SetRole {
        id: u64,
        voter: bool,
    },
    /// A whole new membership.
    Members(Vec<ConfigMember>),
}

/// A txn as it is logged and replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub zxid: u64,
    /// Milliseconds since the Unix epoch, assigned by the leader when it proposes.
    pub time_ms: i64,
    /// The session on whose behalf the txn runs (owner of ephemerals it creates); 0 = none.
    pub session: u64,
    /// The identities the txn runs with: `apply` checks the ACLs with them, so every
    /// replica decides alike. Server-made txns (sessions, reaping) carry none and are
    /// not checked.
    pub auth: Auth,
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
    AclSet {
        stat: Stat,
    },
    QuotaSet,
    QuotaRemoved,
    /// The configuration node after a `SetConfig`.
    ConfigSet {
        stat: Stat,
    },
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
    /// Soft quota limits this txn left exceeded.
    pub quota_warnings: Vec<QuotaWarning>,
}
