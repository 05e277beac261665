//! The ensemble and its timing.

/// A server's id in the ensemble (ZooKeeper's myid): unique, > 0.
pub type ServerId = u64;

/// Static configuration of a member. Times are in ticks: the node has no clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZabConfig {
    /// This server.
    pub id: ServerId,
    /// Every voting member (this server included, unless it observes).
    pub members: Vec<ServerId>,
    /// Observers (ZooKeeper's, etcd's learners): they follow the leader, log and
    /// apply every commit, but never vote, never lead and never count toward a
    /// quorum of anything. Disjoint from `members`.
    pub observers: Vec<ServerId>,
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
    /// The number of voting members that form a quorum (a strict majority).
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// `id` votes (and may lead, and counts toward quorums).
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.members.contains(&id)
    }

    /// `id` is a voter or an observer of this ensemble.
    pub fn is_member(&self, id: ServerId) -> bool {
        self.is_voter(id) || self.observers.contains(&id)
    }

    /// How many of `ids` are voters.
    pub(crate) fn voters_among<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> usize {
        ids.into_iter().filter(|id| self.is_voter(**id)).count()
    }
}
