//! The one write path: this server as a member of a ZAB ensemble (`--peers`; an
//! ensemble of one without it).
//!
//! - `driver`: [`driver::Driver`], the task that runs the ZAB node from
//!   baton-quorum, its rounds and its order (the contract, written down once).
//! - `route`: client writes proposed, forwarded to the leader, or refused.
//! - `ready`: the node's `Ready` carried out: send, persist, send, apply.
//! - `apply`: the apply backlog and the writes waiting on it.
//! - `cache`: the in-memory durable log tail the node reads (`LogView`).
//! - `repair`: damage the scrubber found, repaired from the tree and the cache.
//! - `transport`: the `baton.peer.v1.Peer` service, the per-peer senders, and the
//!   follower's ordered stream of forwarded writes to its leader.
//!
//! Everything else (the client gRPC services, sessions, the admin port, the
//! snapshotter, the reaper) talks to the write queue and the shared tree only.

mod apply;
pub(crate) mod cache;
pub(crate) mod driver;
mod ready;
mod repair;
mod route;
pub(crate) mod transport;

#[cfg(test)]
mod tests;
