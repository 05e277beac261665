//! The async Rust client of Baton.
//!
//! [`Client::connect`] takes a list of `host:port` endpoints, connects to the first that
//! answers and keeps the list: when a connection is lost the client moves on to the next
//! server. Calls take and return baton-znode's domain types ([`Stat`], [`CreateMode`],
//! [`MultiOp`], [`OpResult`]); failures are one enum, [`ClientError`], whose `Api`
//! variant carries the server's machine-readable [`ErrorCode`] and message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), baton_client::ClientError> {
//! use baton_client::{Client, CreateMode};
//! let client = Client::connect(&["127.0.0.1:7181".to_owned()]).await?;
//! client.create("/app", "", CreateMode::Persistent).await?;
//! let (data, stat) = client.get("/app").await?;
//! # let _ = (data, stat); Ok(()) }
//! ```
//!
//! # Layout
//! - `client`: [`Client`], its connection and the single-node calls.
//! - `recursive`: whole-subtree calls (`list_recursive`, `delete_recursive`).
//! - `endpoint`: parsing of endpoint strings.
//! - `error`: [`ClientError`].
//!
//! Sessions (and so ephemeral nodes), watches and the ordered per-session stream arrive
//! later; the connection bookkeeping (endpoint list, generations, `last_zxid`) is already
//! shaped for them.
//!
//! # What this crate must never do
//! - Convert wire types itself: every protobuf ↔ domain conversion and every status
//!   decoding goes through baton-api.
//! - Repeat a write after a lost connection: it may have been applied, so the caller
//!   decides (reads are repeated once on the next server).
//! - Panic on what a server sent: a malformed response is an error.

mod client;
mod endpoint;
mod error;
mod recursive;

pub use baton_api::status::ErrorCode;
pub use baton_znode::{
    CheckOp, CreateMode, CreateOp, DeleteOp, MultiOp, OpResult, SetDataOp, Stat,
};
pub use client::{CONNECT_TIMEOUT, Client, CreateOptions, REQUEST_TIMEOUT};
pub use endpoint::{ServerAddr, parse_endpoint, parse_endpoints};
pub use error::ClientError;
pub use recursive::{DELETE_RECURSIVE_ROUNDS_MAX, child_path};
