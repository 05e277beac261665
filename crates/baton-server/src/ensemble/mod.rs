//! Ensemble mode: this server as one member of a replicated ensemble (`--peers`).
//!
//! - `driver`: [`driver::EnsembleDriver`], the task that runs the ZAB node from
//!   baton-quorum over the storage thread, the tree and the peer transport.
//! - `cache`: the in-memory durable log tail the node reads (`LogView`).
//! - `transport`: the `baton.peer.v1.Peer` service, the per-peer senders, and the
//!   follower's ordered stream of forwarded writes to its leader.
//!
//! Everything else (the client gRPC services, sessions, the admin port, the
//! snapshotter, the reaper) is the same as a standalone server's: they talk to the
//! write queue and the shared tree, and do not know which driver is behind them.

pub(crate) mod cache;
pub(crate) mod driver;
pub(crate) mod transport;
