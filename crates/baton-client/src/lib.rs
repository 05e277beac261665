//! The async Rust client of Baton.
//!
//! Two ways in:
//! - [`Client`]: one-shot calls, no session. [`Client::connect`] takes a list of
//!   `host:port` endpoints, connects to the first that answers and moves on to the next
//!   server when a connection is lost. [`Client::connect_with`] takes
//!   [`ConnectOptions`], TLS ([`ClientTls`]) among them; [`SessionOptions::tls`] is the
//!   same for a session.
//! - [`Session`]: a ZooKeeper-style session on one ordered stream: ephemeral nodes,
//!   one-shot watches ([`Session::get_watch`], [`Session::exists_watch`],
//!   [`Session::children_watch`]) and persistent ones ([`Session::add_watch`]), a state
//!   stream ([`Session::states`]), and automatic resumption on another server with the
//!   session's watches and its last seen zxid. [`recipes`] builds a lock, leader
//!   election, a double barrier and a queue on it.
//!
//! Calls take and return baton-znode's domain types ([`Stat`], [`CreateMode`],
//! [`MultiOp`], [`OpResult`], [`WatchEvent`]); failures are one enum, [`ClientError`]:
//! `ConnectionLoss` is retryable (a write may or may not have happened), `SessionExpired`
//! is final, `Api` carries the server's machine-readable [`ErrorCode`] and message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), baton_client::ClientError> {
//! use baton_client::{CreateMode, Session, SessionOptions};
//! let session = Session::connect(&["127.0.0.1:7181".to_owned()], SessionOptions::default()).await?;
//! session.create("/app", "", CreateMode::Persistent).await?;
//! let (data, stat, watch) = session.get_watch("/app").await?;
//! let event = watch.await?; // the next change of /app
//! # let _ = (data, stat, event); Ok(()) }
//! ```
//!
//! # Layout
//! - `client`: [`Client`], its connection and the single-node calls.
//! - `recursive`: whole-subtree calls of [`Client`] (`list_recursive`, `delete_recursive`).
//! - `session`: [`Session`]: the stream's task, the request FIFO, the client's watch
//!   manager, the state machine (see its own docs).
//! - [`recipes`]: lock, leader election, barrier, queue.
//! - `endpoint`: parsing of endpoint strings.
//! - `tls`: [`ClientTls`], [`ConnectOptions`] and the TLS connector.
//! - `error`: [`ClientError`].
//!
//! # What this crate must never do
//! - Convert wire types itself: every protobuf ↔ domain conversion and every status
//!   decoding goes through baton-api.
//! - Repeat a write after a lost connection: it may have been applied, so the caller
//!   decides ([`Client`] repeats reads once on the next server; a [`Session`] repeats
//!   nothing, its recipes repeat reads and protect their creates).
//! - Panic on what a server sent: a malformed response is an error, a reply out of order
//!   drops the connection.
//! - Grow without bound: requests in flight, queued calls and persistent-watch queues
//!   all have named limits.

mod client;
mod endpoint;
mod error;
pub mod recipes;
mod recursive;
mod session;
mod tls;

pub use baton_api::{auth::Credential, status::ErrorCode};
pub use baton_znode::{
    Acl, AclEntry, CheckOp, ConfigChange, ConfigMember, CreateMode, CreateOp, DeleteOp, Id,
    MultiOp, OpResult, Perms, QuotaLimits, QuotaUsage, SetDataOp, Stat, acl,
};
pub use baton_znode::{
    ChangeKind,
    watch::{RemoveKind, WatchEvent},
};
pub use client::{CONNECT_TIMEOUT, Client, Config, CreateOptions, REQUEST_TIMEOUT};
pub use endpoint::{ServerAddr, parse_endpoint, parse_endpoints, parse_endpoints_with};
pub use error::ClientError;
pub use recursive::{DELETE_RECURSIVE_ROUNDS_MAX, child_path};
pub use session::{
    PENDING_REQUESTS_MAX, PersistentWatch, RECONNECT_BACKOFF_MAX, RECONNECT_BACKOFF_MIN,
    SESSION_TIMEOUT_MS_DEFAULT, SUBMIT_QUEUE_MAX, Session, SessionOptions, SessionState,
    WATCH_EVENTS_MAX, Watch,
};
pub use tls::{ClientTls, ConnectOptions};
