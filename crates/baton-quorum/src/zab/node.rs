//! [`Node`]: one member's ZAB state machine. (Interface; the protocol is being
//! filled in: until then a node stays `Looking` and does nothing.)

use bytes::Bytes;

use crate::{
    Epochs, QuorumError, Zxid,
    zab::{Envelope, LogView, Ready, ZabConfig},
};

/// What a member is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Electing a leader.
    Looking,
    /// Following `leader` (in discovery, sync or broadcast: see `NodeStatus`).
    Following { leader: crate::zab::ServerId },
    /// Leading (in discovery, sync or broadcast).
    Leading,
}

/// A snapshot of a node's state, for `/status`, metrics, logs and the simulation's
/// invariant checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: crate::zab::ServerId,
    pub role: Role,
    /// True once the node is in the broadcast phase (a leader: a quorum acked
    /// NEWLEADER; a follower: UPTODATE received). Only then are clients served.
    pub broadcasting: bool,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// Last durable entry (as reported through `advance`).
    pub last_logged: Zxid,
    /// Highest zxid known committed.
    pub committed: Zxid,
    /// Highest zxid handed out in `Ready::committed` (to be applied).
    pub applied: Zxid,
}

/// One member's state machine. See the driver's order in [`crate::zab`].
#[derive(Debug)]
pub struct Node {
    config: ZabConfig,
    epochs: Epochs,
    last_logged: Zxid,
    applied: Zxid,
    ready: Ready,
}

impl Node {
    /// A node starting (or restarting) `Looking`, over its durable state: the
    /// persisted `epochs`, the log seen through `view`, and `applied`, the zxid its
    /// tree is at (everything up to it is committed).
    pub fn new(config: ZabConfig, epochs: Epochs, view: &dyn LogView, applied: Zxid) -> Node {
        let last_logged = view.last_logged();
        Node { config, epochs, last_logged, applied, ready: Ready::default() }
    }

    /// One tick of time passed.
    pub fn tick(&mut self, view: &dyn LogView) {
        let _ = view;
    }

    /// A message from a peer (untrusted: anything that does not fit is dropped).
    pub fn step(&mut self, envelope: Envelope, view: &dyn LogView) {
        let _ = (envelope, view);
    }

    /// A client write, on the leader in broadcast: its zxid (the entry is in the
    /// next `Ready`). Errors: not the leader, not broadcasting, too many in flight,
    /// counter exhausted (the leader then needs a new epoch: it steps down).
    pub fn propose(&mut self, data: Bytes) -> Result<Zxid, QuorumError> {
        let _ = data;
        Err(QuorumError::NotLeader { leader: None })
    }

    /// What the driver must do now (and the node forgets it: the driver must do it).
    pub fn ready(&mut self) -> Ready {
        std::mem::take(&mut self.ready)
    }

    /// Everything up to `persisted` is durable (step 5 of the driver's order).
    pub fn advance(&mut self, persisted: Zxid) {
        self.last_logged = self.last_logged.max(persisted);
    }

    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.config.id,
            role: Role::Looking,
            broadcasting: false,
            accepted_epoch: self.epochs.accepted_epoch,
            current_epoch: self.epochs.current_epoch,
            last_logged: self.last_logged,
            committed: self.applied,
            applied: self.applied,
        }
    }
}
