//! The ensemble and its timing.

use crate::{
    Zxid,
    zab::{Member, Membership},
};

/// A server's id in the ensemble (ZooKeeper's myid): unique, > 0.
pub type ServerId = u64;

/// Static configuration of a member. Times are in ticks: the node has no clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZabConfig {
    /// This server.
    pub id: ServerId,
    /// The configuration this member starts with: the last one committed in its
    /// durable state (version 0: the command line's, when none was ever
    /// committed). The node follows the config entries of its log from there.
    pub membership: Membership,
    /// Ticks a follower goes without hearing from its leader before it starts an
    /// election, and a leader without hearing from a quorum before it steps down
    /// (ZooKeeper's syncLimit).
    pub sync_limit_ticks: u32,
    /// Ticks discovery + synchronization may take before the prospective leader or
    /// follower gives up and goes back to electing (ZooKeeper's initLimit).
    pub init_limit_ticks: u32,
    /// A leader pings its followers every this many ticks (carrying the commit zxid).
    pub heartbeat_ticks: u32,
    /// A looking server resends its vote every this many ticks.
    pub election_resend_ticks: u32,
    /// Proposals the leader holds proposed but not committed; beyond this
    /// `propose` refuses (back-pressure to clients).
    pub inflight_proposals_max: usize,
    /// A follower further behind than this many entries is synced by SNAP, not DIFF.
    pub diff_entries_max: usize,
}

impl ZabConfig {
    /// A first configuration (version 0) of these voters and observers, with no
    /// addresses (the driver knows them).
    pub fn initial(voters: &[ServerId], observers: &[ServerId]) -> Membership {
        let member = |id: &ServerId, voter| Member { id: *id, voter, addr: String::new() };
        let members = voters.iter().map(|id| member(id, true));
        Membership::new(
            Zxid::ZERO,
            members.chain(observers.iter().map(|id| member(id, false))).collect(),
        )
    }
}
