//! What the node may read of its own durable state. The driver implements it over
//! its log store and tree (the simulation over memory). Reads only: every change
//! goes through [`crate::zab::Ready`].

use bytes::Bytes;
use thiserror::Error;

use crate::{Zxid, zab::Entry};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ViewError {
    /// The entries asked for are no longer in the log (purged after a snapshot):
    /// the leader falls back to SNAP.
    #[error("log entries after {after} are purged")]
    Purged { after: Zxid },
    /// Not ready yet (a snapshot being encoded off the driver's thread): the node
    /// asks again at its next tick.
    #[error("not available yet: {0}")]
    Unavailable(&'static str),
    /// The store failed; the node treats the request as unanswerable for now.
    #[error("storage: {0}")]
    Storage(String),
}

pub trait LogView {
    /// The zxid of the last durable entry (or of the snapshot, if the log is empty).
    fn last_logged(&self) -> Zxid;

    /// Durable entries with zxid > `after`, in order, at most `max`.
    fn entries_after(&self, after: Zxid, max: usize) -> Result<Vec<Entry>, ViewError>;

    /// The zxid of the last durable entry at or before `zxid` (or of the snapshot,
    /// when the log holds none there; `Zxid::ZERO` for an empty history).
    fn last_at_or_before(&self, zxid: Zxid) -> Result<Zxid, ViewError>;

    /// A snapshot of the applied (committed) state and the zxid it is at, to send a
    /// follower that is too far behind (SNAP); the entries after it must still be
    /// readable through `entries_after`. The node only asks on the leader. Encoding
    /// a large tree is slow: a view may answer [`ViewError::Unavailable`] and
    /// prepare one meanwhile (the node asks again every tick), as raft-rs's storage
    /// answers `SnapshotTemporarilyUnavailable`.
    fn snapshot(&self) -> Result<(Zxid, Bytes), ViewError>;
}
