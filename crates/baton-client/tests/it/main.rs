//! baton-client's integration tests.
//!
//! - `client`: the unary [`baton_client::Client`] against an in-process fake server (`fake`).
//! - `session`: [`baton_client::Session`] against an in-process fake of the `Sessions`
//!   service (`fake_session`): reconnect, resume with watches and the last zxid, expiry,
//!   in-flight requests, ordering of events and replies.
//! - `fake_tree`: the tree both fakes serve, a real `baton_znode::DataTree` with its
//!   watch registry: the fakes script failures, not znode rules.
//! - `recipes`: the recipes with several concurrent sessions, against the fake and
//!   against a real `baton-server` process (`server`, through baton-testkit).

mod client;
mod fake;
mod fake_session;
mod fake_tree;
mod recipes;
mod server;
mod session;
mod wait;
