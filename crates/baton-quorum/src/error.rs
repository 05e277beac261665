use thiserror::Error;

use crate::Zxid;

/// Operating conditions the state machine reports instead of acting on. Broken
/// invariants (a persist report for a zxid never proposed, …) are assertions.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuorumError {
    /// Every counter of the epoch is used: the leader steps down, and the next
    /// election starts a new epoch (an ensemble of one re-elects itself at its next
    /// tick). Propose again then.
    #[error("zxid counter of epoch {epoch} exhausted (last {last}): a new epoch is needed")]
    CounterExhausted { epoch: u32, last: Zxid },
    /// The epoch number itself would overflow: the data directory has seen 2^32 epochs.
    #[error("epoch numbers exhausted (current epoch {current})")]
    EpochExhausted { current: u32 },
    /// `propose` on a node that is not the leader (`leader`: the one it follows, if any).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// `propose` on a leader not yet in broadcast (synchronizing its followers).
    #[error("the leader is not broadcasting yet")]
    NotBroadcasting,
    /// `propose` with `max` proposals already in flight: back-pressure.
    #[error("too many proposals in flight (max {max})")]
    TooManyInflight { max: usize },
    /// `propose` while the leader hands leadership over to `to`.
    #[error("leadership is moving to server {to}")]
    Transferring { to: u64 },
    /// A membership change while another (`pending`, its version) is in flight.
    #[error("membership change {pending} is still in flight")]
    ConfigInFlight { pending: Zxid },
    /// A membership change or leadership transfer that cannot be made (the reason
    /// names the member and the rule).
    #[error("{reason}")]
    BadMembership { reason: String },
    /// Peer bytes that are not a message.
    #[error("bad peer message at offset {offset}: {reason}")]
    Decode { offset: usize, reason: String },
}
