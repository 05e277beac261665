//! The Baton server: a durable, standalone (ensemble-of-one) Baton.
//!
//! Every change takes one path: a client's request is validated, queued, given a
//! zxid by the quorum state machine (baton-quorum), logged and flushed (baton-log),
//! applied to the tree (baton-znode) and only then answered. Reads are answered from
//! the local tree. Restart = newest valid snapshot + replay of the log after it,
//! then a new epoch.
//!
//! # The driver's order
//! Written down once, in `driver`, and asserted there: take a batch of queued
//! writes → assign zxids and times → append the batch and flush it once → report
//! the flushed prefix as persisted (committed, in an ensemble of one) → apply in
//! zxid order under one write lock → reply. A storage error stops the server
//! without acknowledging the batch.
//!
//! # What this crate must never do
//! - Acknowledge a write before the flush that covers it returned.
//! - Block the async runtime on storage: the store lives on its own thread.
//! - Let a queue grow without bound: every queue has a named limit.
//! - Panic on what a client sends: bad input is a gRPC status (through baton-api).
//!
//! # Layout
//! - `config`: [`Config`], the flags and their `BATON_*` variables.
//! - `server`: [`run`]: start-up, serving, shutdown order.
//! - `recovery`: opening the store, snapshot + log replay, the new epoch.
//! - `storage`: the storage thread that owns the log store.
//! - `write_queue`: the bounded queue of writes and what comes back.
//! - `driver`: the write path (batch → zxid → log + flush → apply → reply).
//! - `grpc`: the `baton.v1.Baton` service, gRPC health and reflection.
//! - `admin`: `/health`, `/status`, `/metrics` over HTTP.
//! - `session`: sessions (tracker, expiry, the `baton.v1.Sessions` stream) and
//!   where watch events go.
//! - `reaper`: deletes expired containers and TTL nodes through the write path.
//! - `snapshotter`: background snapshots and purge.
//! - `metrics`: counters and Prometheus text.
//! - `shared`: the state the tasks share (tree behind a lock, counters).
//! - `shutdown`: one trigger, many listeners.
//! - `clock`: the wall clock, read in one place.
//! - `error`: [`ServerError`].

mod admin;
mod clock;
mod config;
mod disk;
mod driver;
mod ensemble;
mod error;
mod grpc;
mod metrics;
mod reaper;
mod recovery;
mod restore;
mod server;
mod session;
mod shared;
mod shutdown;
mod snapshotter;
mod storage;
mod write_queue;

pub use config::{Config, REQUEST_BYTES_MAX_DEFAULT};
pub use error::ServerError;
pub use grpc::{READY_SERVICE_NAME, SERVICE_NAME};
pub use restore::restore_snapshot;
pub use server::{SHUTDOWN_GRACE, run};
