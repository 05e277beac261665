use thiserror::Error;

use crate::Zxid;

/// Operating conditions the state machine reports instead of acting on. Broken
/// invariants (a persist report for a zxid never proposed, …) are assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum QuorumError {
    /// Every counter of the epoch is used: call [`crate::Standalone::new_epoch`],
    /// persist the epochs it returns, and propose again.
    #[error("zxid counter of epoch {epoch} exhausted (last {last}): a new epoch is needed")]
    CounterExhausted { epoch: u32, last: Zxid },
    /// The epoch number itself would overflow: the data directory has seen 2^32 epochs.
    #[error("epoch numbers exhausted (current epoch {current})")]
    EpochExhausted { current: u32 },
}
