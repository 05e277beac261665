//! The Baton data tree: a ZooKeeper-style tree of znodes, changed only by applying
//! [`Txn`]s.
//!
//! This crate is pure: no I/O, no clock, no randomness. Time arrives inside each txn,
//! so applying the same txns in the same order gives the same tree (and the same
//! [`DataTree::digest`]) on every replica.
//!
//! # Layout
//! - `path`: path validation and helpers.
//! - `stat`: [`Stat`], a znode's metadata.
//! - `txn`: [`Txn`], [`TxnOp`], [`CreateMode`], results and changes.
//! - `limits`: [`Limits`] and the stateless checks done before a txn is proposed.
//! - `tree`: [`DataTree`]: reads and the deterministic `apply`.
//! - `codec`: binary encoding of txns (for the log) and snapshots.
//! - `error`: [`ZnodeError`], [`TxnError`], [`DecodeError`].

mod codec;
mod error;
mod limits;
mod path;
mod stat;
mod tree;
mod txn;

pub use codec::{decode_txn, encode_txn};
pub use error::{DecodeError, TxnError, ZnodeError};
pub use limits::{Limits, validate_op};
pub use path::{RESERVED_PREFIX, basename, parent, validate_path};
pub use stat::Stat;
pub use tree::{DataTree, SessionInfo};
pub use txn::{
    Applied, Change, ChangeKind, CheckOp, CreateMode, CreateOp, DeleteOp, MultiOp, OpResult,
    SetDataOp, Txn, TxnOp,
};
