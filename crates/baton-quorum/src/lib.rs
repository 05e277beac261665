//! Baton's consensus as a pure state machine: ZAB (election, discovery,
//! synchronization, broadcast) for an ensemble of any size. A server started
//! without peers is an ensemble of one: it elects itself at once, and a proposal
//! commits as soon as its own flush reports it durable. There is no other path.
//!
//! # What this crate must never do
//! - I/O, threads, async, or reading a clock: inputs come in as arguments (what was
//!   persisted, what the disk says the epochs are, ticks), decisions go out as
//!   return values ([`zab::Ready`]: what to persist, what to send before and after
//!   the flush, what to apply). The driver in baton-server does the rest.
//! - Know about the log store or the tree: it has its own small types ([`Epochs`],
//!   [`zab::Entry`], [`zab::LogView`]), which the server maps to and from
//!   baton-log's and baton-znode's.
//!
//! # Layout
//! - `zxid`: [`Zxid`], `epoch << 32 | counter`.
//! - `epochs`: [`Epochs`], the durable acceptedEpoch / currentEpoch.
//! - [`zab`]: the ensemble's machine: election, discovery, sync, broadcast.
//! - `error`: [`QuorumError`].

mod epochs;
mod error;
pub mod zab;
mod zxid;

pub use epochs::Epochs;
pub use error::QuorumError;
pub use zxid::Zxid;
