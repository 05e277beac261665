//! The Baton server: a member of a replicated ZAB ensemble, or without peers an
//! ensemble of one. Both run the same code: there is one write path.
//!
//! Every change takes it: a client's request is validated, queued, proposed to the
//! ZAB node (baton-quorum), logged and flushed (baton-log), committed once a quorum
//! has it durably (an ensemble of one: its own flush), applied to the tree
//! (baton-znode) and only then answered. Reads are answered from the local tree.
//! Restart = newest valid snapshot, then the log after it, committed by the node.
//!
//! # The driver's order
//! Written down once, in `ensemble::driver`, and asserted there: feed the node a
//! round of inputs → send what it allows before the flush → persist (epochs,
//! truncation, snapshot, entries) with one flush → send the rest (ACKs) → apply the
//! committed entries in zxid order under the tree's write lock → reply. A storage
//! error stops the server without acknowledging what it covered.
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
//! - `recovery`: opening the store: the newest snapshot, the log after it, the epochs.
//! - `storage`: the storage thread that owns the log store.
//! - `write_queue`: the bounded queue of writes and what comes back.
//! - `ensemble`: the write path: the driver of the ZAB node, routing, the apply
//!   backlog, the log cache and the peer transport.
//! - `grpc`: the `baton.v1.Baton` service, gRPC health and reflection.
//! - `admin`: `/health`, `/status`, `/metrics` over HTTP.
//! - `fourlw`: ZooKeeper's four-letter words (`srvr`, `mntr`, ...) as text, for any port.
//! - `session`: sessions (tracker, expiry, the `baton.v1.Sessions` stream) and
//!   where watch events go.
//! - `reaper`: deletes expired containers and TTL nodes through the write path.
//! - `snapshotter`: background snapshots and purge.
//! - `metrics`: counters and Prometheus text.
//! - `shared`: the state the tasks share (tree behind a lock, counters).
//! - `shutdown`: one trigger, many listeners.
//! - `clock`: the wall clock, read in one place.
//! - `error`: [`ServerError`].
//! - `tls`: TLS on the client, peer and admin ports: material reloaded while serving,
//!   the acceptor, the peer connector, the client certificate's subject.

mod access;
mod admin;
mod auth;
mod background;
mod clock;
mod config;
mod disk;
mod ensemble;
mod error;
mod fourlw;
mod grpc;
mod membership;
mod metrics;
mod reaper;
mod recovery;
mod restore;
mod scrubber;
mod server;
mod session;
mod shared;
mod shutdown;
mod snapshotter;
mod storage;
mod write_queue;
mod zk;

mod tls;

pub use config::{Config, REQUEST_BYTES_MAX_DEFAULT};
pub use error::ServerError;
pub use grpc::{READY_SERVICE_NAME, SERVICE_NAME};
pub use restore::restore_snapshot;
pub use server::{SHUTDOWN_GRACE, run};
pub use tls::ClientAuth;
