//! The Baton data tree: a ZooKeeper-style tree of znodes, changed only by applying
//! [`Txn`]s.
//!
//! This crate is pure: no I/O, no clock, no randomness. Time arrives inside each txn,
//! so applying the same txns in the same order gives the same tree (and the same
//! [`DataTree::digest`]) on every replica.
//!
//! # Layout
//! - `acl`: ACLs, permissions, identities and the checks (ZooKeeper's model).
//! - `path`: path validation and helpers, the reserved `/baton` prefix.
//! - `stat`: [`Stat`], a znode's metadata.
//! - `txn`: [`Txn`], [`TxnOp`], [`CreateMode`], results and changes.
//! - `limits`: [`Limits`] and the stateless checks done before a txn is proposed.
//! - `tree`: [`DataTree`]: reads (ACLs, permission checks and quotas included) and
//!   indexes.
//!   - `tree/node`: one znode, its kind (container, TTL), its ACL reference and its
//!     digest hash.
//!   - `tree/acl_cache`: each distinct ACL list stored once, reference counted.
//!   - `tree/apply`: the deterministic semantics of every txn op, with the
//!     permission each client op needs checked against the txn's identities.
//!   - `tree/access`: those checks, and `SetAcl`.
//!   - `tree/quota`: quotas: limits nodes under `/baton/quota`, the usage index,
//!     hard limits enforced, soft limits warned of.
//!   - `tree/store`: journaled mutation primitives and multi rollback.
//!   - `tree/snapshot`: checksummed snapshot encoding (the ACL table once), checked
//!     on decode.
//!   - `tree/capture`: the same snapshot written in slices while writes go on.
//! - `codec`: binary encoding of txns (for the log); `codec/wire`: varints and the
//!   bounds-checked reader shared with snapshots.
//! - `hash`: the platform- and release-stable hash the digest is built from.
//! - `watch`: the watch registry (which session watches what; changes → events).
//! - `error`: [`ZnodeError`], [`TxnError`], [`DecodeError`].

pub mod acl;
mod codec;
mod error;
mod hash;
mod limits;
mod path;
mod stat;
mod tree;
mod txn;
pub mod watch;

pub use acl::{Acl, AclEntry, Auth, Id, Perms};
pub use codec::{decode_txn, encode_txn};
pub use error::{DecodeError, TxnError, ZnodeError};
pub use limits::{Limits, TTL_MS_MAX, validate_op};
pub use path::{RESERVED_PREFIX, basename, is_reserved, parent, validate_path};
pub use stat::Stat;
pub use tree::{DataTree, SessionInfo, SnapshotAbandoned, SnapshotEncoder};
pub use txn::{
    Applied, CONFIG_PATH, Change, ChangeKind, CheckOp, ConfigChange, ConfigMember, CreateMode,
    CreateOp, DeleteOp, MultiOp, OpResult, QuotaLimits, QuotaUsage, QuotaWarning, ReconfigOp,
    SetAclOp, SetDataOp, Txn, TxnOp,
};
