//! Coordination recipes on a [`Session`], as ZooKeeper documents them: [`Lock`],
//! [`LeaderElection`], [`Barrier`] (a double barrier) and [`Queue`].
//!
//! Each takes a `&Session` and keeps a clone; several recipes (and several instances
//! of one) may share a session. They survive a ConnectionLoss: reads are repeated once
//! the session is resumed, and the creates of sequential nodes are protected (see
//! `seq`). The end of the session ([`ClientError::SessionExpired`], closed) ends them:
//! the ephemeral nodes they stood on are gone, and so is any lock or leadership.
//!
//! # Layout
//! - `seq`: sequential-ephemeral nodes: protected create, order, waiting for the
//!   predecessor. Shared by the lock and the election.
//! - `lock`, `election`, `barrier`, `queue`: one recipe each.

mod barrier;
mod election;
mod lock;
mod queue;
mod seq;

use std::future::Future;

pub use barrier::{Barrier, READY_NODE};
pub use election::{Candidate, LeaderElection};
pub use lock::{Lock, LockGuard};
pub use queue::Queue;

use crate::{ClientError, CreateMode, ErrorCode, Session};

/// How many times a recipe repeats one step that failed with a retryable error
/// (ConnectionLoss, timeout), waiting for the session to be resumed before each.
pub const RETRIES_MAX: usize = 32;

/// Runs `call` until it succeeds, fails for good, or has failed [`RETRIES_MAX`] times
/// with a retryable error; waits for the session to be connected before each retry.
/// Only for calls that may be repeated (reads, and writes whose repetition the caller
/// handles).
pub(crate) async fn retrying<T, F, Fut>(session: &Session, mut call: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut attempts = 1;
    loop {
        match call().await {
            Err(e) if e.is_retryable() && attempts < RETRIES_MAX => {
                attempts += 1;
                session.wait_connected().await?;
            }
            other => return other,
        }
    }
}

/// Creates `path` and its missing ancestors as empty persistent nodes.
pub(crate) async fn ensure_path(session: &Session, path: &str) -> Result<(), ClientError> {
    let mut at = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        at.push('/');
        at.push_str(segment);
        let created = retrying(session, || session.create(&at, "", CreateMode::Persistent)).await;
        match created {
            Ok(_) => {}
            // Someone else's, or ours from an attempt whose answer was lost.
            Err(e) if e.code() == ErrorCode::NodeExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(crate) fn no_node(path: &str) -> ClientError {
    ClientError::Api {
        code: ErrorCode::NoNode,
        message: format!("node does not exist: {path}"),
        path: path.to_owned(),
        op_index: None,
    }
}

/// `path` without a trailing `/` (the recipes append `/name` to it).
pub(crate) fn dir_of(path: &str) -> String {
    path.trim_end_matches('/').to_owned()
}
