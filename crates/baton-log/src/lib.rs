//! The Baton commit log and snapshots.
//!
//! [`LogStore`] is the storage contract the server's driver relies on (its storage
//! thread owns the store; the ZAB node reads the durable tail through the
//! driver's log cache); [`SledStore`] keeps it on disk, [`MemStore`] in memory for tests and
//! simulation (it models durability: [`MemStore::crash`] keeps only what was
//! flushed). Both pass the same conformance suite ([`conformance`]).
//!
//! This crate knows nothing of znodes or consensus: an entry is a zxid and opaque
//! bytes. It must never return a damaged record as data, never panic on what it
//! reads from disk, and never report a flush before the data is on stable storage
//! (sled's own flush is not enough: see `sled_store`).
//!
//! # Layout
//! - `store`: the [`LogStore`] trait and its contract, [`LogEntry`], [`Snapshot`], [`Meta`].
//! - `scrub`: what a background scrub step reports ([`ScrubStep`], [`Damage`]) and
//!   where a pass is ([`ScrubCursor`]).
//! - `record`: the checksummed record every stored value is wrapped in.
//! - `sled_store`: [`SledStore`], with what sled does and does not sync, and recovery.
//! - `sled_codec`: keys and payloads of the sled trees (log records link to their
//!   predecessor, so a lost record is caught like a corrupt one).
//! - `sled_open`: opening sled (lock wait, contained panics, the "lost data" check).
//! - `sled_sync`: the durability barrier (fdatasync of sled's files).
//! - `journal`: where the sled store makes a flush durable with one fdatasync; sled
//!   itself is synced at checkpoints.
//! - `sled_scrub`: the sled store's scrub step (checksums and links, reported, not
//!   cut).
//! - `mem`: [`MemStore`].
//! - `promise`: [`PromiseFile`], what this member acknowledged, kept apart from the
//!   log so that a log that lost acknowledged entries is known to be damaged.
//! - `conformance`: the suite every store must pass.
//! - `error`: [`LogError`], [`CorruptReason`].

pub mod conformance;
mod error;
mod journal;
mod mem;
mod promise;
pub mod record;
mod scrub;
mod sled_codec;
mod sled_open;
mod sled_scrub;
mod sled_store;
mod sled_sync;
mod store;

pub use error::{CorruptReason, LogError};
pub use journal::JOURNAL_FILES;
pub use mem::MemStore;
pub use promise::{PROMISE_FILE, Promise, PromiseFile, PromiseState};
pub use scrub::{Damage, DamagedPart, ScrubCursor, ScrubStep, Scrubber};
pub use sled_codec::{LOG_TREE, META_TREE, SNAPSHOTS_TREE};
pub use sled_open::MARKER_FILE;
pub use sled_store::{SledOptions, SledStore};
pub use store::{LogEntry, LogStore, Meta, PurgeStep, Snapshot, SnapshotWriter};
