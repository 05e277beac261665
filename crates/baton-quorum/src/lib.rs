//! Baton's consensus as a pure state machine.
//!
//! Today this is the single-member path: a standalone server is an ensemble of one,
//! so a proposal is committed as soon as it is persisted. The full ZAB machine
//! (election, discovery, sync, broadcast) comes later and slots in beside
//! [`Standalone`]: same [`Zxid`]s, same [`Epochs`], same "propose → persist →
//! commit" contract, with a quorum of acknowledgements between persist and commit.
//!
//! # What this crate must never do
//! - I/O, threads, async, or reading a clock: inputs come in as arguments (what was
//!   persisted, what the disk says the epochs are), decisions go out as return values
//!   (the epochs to persist, the zxid to log). The driver in baton-server does the rest.
//! - Know about the log store or the tree: it has its own small types ([`Epochs`]),
//!   which the server maps to and from baton-log's.
//!
//! # Layout
//! - `zxid`: [`Zxid`], `epoch << 32 | counter`.
//! - `standalone`: [`Standalone`], the single-member state machine, and [`Epochs`].
//! - [`zab`]: the replicated ensemble's machine: election, discovery, sync, broadcast.
//! - `error`: [`QuorumError`].

mod error;
mod standalone;
pub mod zab;
mod zxid;

pub use error::QuorumError;
pub use standalone::{Epochs, Standalone};
pub use zxid::Zxid;
