//! The replicated ensemble's state machine: ZAB-style election, discovery,
//! synchronization and broadcast, with no I/O.
//!
//! # How a driver runs a [`Node`] (the order is the contract)
//! 1. Feed inputs: [`Node::tick`] every tick, [`Node::step`] for every message from
//!    a peer, [`Node::propose`] for every client write (leader only).
//! 2. Take [`Node::ready`] and send its `messages` at once: the node put there
//!    only what promises nothing about this member's disk (a leader's proposals,
//!    commits and pings in broadcast, so its followers log in parallel with it).
//! 3. Persist what it says, in this order, as one durability barrier: `epochs`,
//!    `truncate_after`, `snapshot`, `entries` (then flush/fsync).
//! 4. Only then send `persisted_messages` (an ACK must never leave before what it
//!    acknowledges is durable). The driver never sorts messages itself: the node
//!    decided, and kept every link's messages in order across the two lists.
//! 5. Apply `committed` entries to the tree, in order (they are always durable
//!    here already, and always a contiguous continuation of what was applied).
//! 6. Call [`Node::advance`] with the last zxid made durable in step 3.
//!
//! An ensemble of one member runs the same machine: it elects itself when it
//! starts (no votes, no wait), and a proposal commits once `advance` reports it
//! durable.
//!
//! The node trusts nothing from the network: a message from a non-member, from an
//! older epoch, or that does not fit the node's state is dropped (and counted),
//! never a panic. Broken internal invariants are assertions.
//!
//! # Layout
//! - `config`: [`ZabConfig`], the ensemble and its timing in ticks.
//! - `membership`: [`Membership`], config entries and joint quorums while one
//!   changes.
//! - `message`: [`Message`], [`Envelope`], [`Entry`].
//! - `codec`: their binary encoding for the peer transport.
//! - `election`: fast leader election (votes by (epoch, last zxid, id)).
//! - `view`: [`LogView`], what the node may read of its durable log and state.
//! - `ready`: [`Ready`], what the driver must do next.
//! - `node`: [`Node`], [`Role`], [`NodeStatus`]: what every role shares.
//! - `election`, `leader`, `follower`: the roles.
//!
//! The protocol is tested from outside, through this interface only: golden
//! scripts of each phase and the fault simulation, both in `tests/sim`.

mod codec;
mod config;
mod election;
mod follower;
mod leader;
mod membership;
mod message;
mod node;
mod ready;
mod view;

pub use codec::{ENVELOPE_BYTES_MAX, decode_envelope, encode_envelope};
pub use config::{ServerId, ZabConfig};
pub use membership::{
    MEMBERS_MAX, Member, Membership, decode_config_entry, encode_config_entry, is_config_entry,
};
pub use message::{Entry, Envelope, Message};
pub use node::{Node, NodeStatus, Role};
pub use ready::Ready;
pub use view::{LogView, ViewError};
