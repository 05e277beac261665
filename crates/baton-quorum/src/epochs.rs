//! [`Epochs`]: the two durable epochs of ZAB.

/// The durable epochs of ZAB, as this crate sees them (the server maps them to and
/// from its store's meta).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Epochs {
    /// The highest epoch this server has agreed to (acceptedEpoch).
    pub accepted_epoch: u32,
    /// The epoch whose history this server has adopted (currentEpoch).
    pub current_epoch: u32,
}
