//! What the driver must do next; see the order in [`crate::zab`].

use bytes::Bytes;

use crate::{
    Epochs, Zxid,
    zab::{Entry, Envelope},
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ready {
    /// 1a. Persist these epochs (acceptedEpoch / currentEpoch).
    pub epochs: Option<Epochs>,
    /// 1b. Remove every log entry with zxid > this (a follower's TRUNC).
    pub truncate_after: Option<Zxid>,
    /// 1c. Replace the whole state (log and tree) by this snapshot (a follower's SNAP).
    pub snapshot: Option<(Zxid, Bytes)>,
    /// 1d. Append these entries (strictly increasing zxids), then flush once.
    pub entries: Vec<Entry>,
    /// 2. Then send these.
    pub messages: Vec<Envelope>,
    /// 3. Then apply these, in order.
    pub committed: Vec<Entry>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self == &Ready::default()
    }
}
