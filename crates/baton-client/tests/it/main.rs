//! baton-client's integration tests.
//!
//! - `client`: the unary [`baton_client::Client`] against an in-process fake server (`fake`).
//! - `session`: [`baton_client::Session`] against an in-process fake of the `Sessions`
//!   service (`fake_session`, `fake_tree`): reconnect, resume with watches and the last
//!   zxid, expiry, in-flight requests, ordering of events and replies.
//! - `recipes`: the recipes with several concurrent sessions, against a real
//!   `baton-server` process (`server`).

mod client;
mod fake;
mod fake_session;
mod fake_tree;
mod recipes;
mod server;
mod session;
mod wait;
