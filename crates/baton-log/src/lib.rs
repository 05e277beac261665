//! The Baton commit log and snapshots.
//!
//! [`LogStore`] is the storage contract the server (and later the quorum driver)
//! relies on; [`SledStore`] keeps it on disk, [`MemStore`] in memory for tests and
//! simulation. Both pass the same conformance suite ([`conformance`]).
//!
//! This crate knows nothing of znodes or consensus: an entry is a zxid and opaque bytes.
//!
//! # Layout
//! - `store`: the [`LogStore`] trait, [`LogEntry`], [`Snapshot`], [`Meta`].
//! - `record`: the checksummed on-disk record format.
//! - `sled_store`: [`SledStore`].
//! - `mem`: [`MemStore`].
//! - `conformance`: the suite every store must pass.
//! - `error`: [`LogError`].

pub mod conformance;
mod error;
mod mem;
mod record;
mod sled_store;
mod store;

pub use error::LogError;
pub use mem::MemStore;
pub use sled_store::SledStore;
pub use store::{LogEntry, LogStore, Meta, Snapshot};
