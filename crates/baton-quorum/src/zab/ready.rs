//! What the driver must do next; see the order in [`crate::zab`].

use bytes::Bytes;

use crate::{
    Epochs, Zxid,
    zab::{Entry, Envelope},
};

/// One batch of work for the driver. The node decides what may leave before the
/// batch is durable (`messages`) and what only after (`persisted_messages`): the
/// driver sends each list at its point of the order and never looks inside a
/// message to decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ready {
    /// 1. Send these now, before anything below is persisted. They promise nothing
    ///    about this member's disk: a leader's proposals, commits and pings in
    ///    broadcast (its followers then log in parallel with it; its own vote counts
    ///    only once `advance` reports the flush, so a commit still means a durable
    ///    quorum).
    pub messages: Vec<Envelope>,
    /// 2a. Persist these epochs (acceptedEpoch / currentEpoch).
    pub epochs: Option<Epochs>,
    /// 2b. Remove every log entry with zxid > this (a follower's TRUNC).
    pub truncate_after: Option<Zxid>,
    /// 2c. Replace the whole state (log and tree) by this snapshot (a follower's SNAP).
    pub snapshot: Option<(Zxid, Bytes)>,
    /// 2d. Append these entries (strictly increasing zxids), then flush once.
    pub entries: Vec<Entry>,
    /// 3. Only once 2 is durable, send these: ACKs, epoch acknowledgements, votes,
    ///    and everything else that states or relies on what this member logged.
    pub persisted_messages: Vec<Envelope>,
    /// 4. Then apply these, in order.
    pub committed: Vec<Entry>,
    /// Linearizable reads confirmed (see [`crate::zab::Node::read_index`]): for
    /// each asker's number, the zxid this member must have applied before it reads.
    pub reads: Vec<(u64, Zxid)>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self == &Ready::default()
    }
}
