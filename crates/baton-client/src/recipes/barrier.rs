//! A double barrier (ZooKeeper's recipe): [`Barrier::enter`] returns once `size`
//! participants have entered, [`Barrier::leave`] once every participant has left.
//!
//! Enter: watch for the `ready` node, create this participant's ephemeral node, count
//! the participants; the one that completes the count creates `ready`, which wakes the
//! others. Leave: the lowest participant waits for the highest to go, every other one
//! deletes its node and waits for the lowest to go; the lowest leaves last.
//!
//! A barrier path is for one round: `ready` stays after the round (a participant late
//! for it would pass at once), so use a fresh path for every round.

use super::{RETRIES_MAX, dir_of, ensure_path, retrying, seq};
use crate::{ClientError, CreateMode, ErrorCode, Session};

/// The node whose creation opens the barrier.
pub const READY_NODE: &str = "ready";

/// One participant of a double barrier.
#[derive(Debug, Clone)]
pub struct Barrier {
    session: Session,
    dir: String,
    size: usize,
    name: String,
}

impl Barrier {
    /// A participant of the barrier at `path` for `size` participants.
    pub fn new(session: &Session, path: &str, size: usize) -> Barrier {
        let name = format!("p-{:016x}-{:x}", session.session_id(), seq::next_nonce());
        Barrier { session: session.clone(), dir: dir_of(path), size, name }
    }

    /// This participant's node name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn node(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }

    /// Waits until `size` participants have entered.
    pub async fn enter(&self) -> Result<(), ClientError> {
        let s = &self.session;
        ensure_path(s, &self.dir).await?;
        let ready = format!("{}/{READY_NODE}", self.dir);
        let node = self.node();
        for _ in 0..RETRIES_MAX {
            let (open, watch) = retrying(s, || s.exists_watch(&ready)).await?;
            match retrying(s, || s.create(&node, "", CreateMode::Ephemeral)).await {
                // NodeExists: ours, from a retry or an earlier round of this loop.
                Ok(_) => {}
                Err(e) if e.code() == ErrorCode::NodeExists => {}
                Err(e) => return Err(e),
            }
            if open.is_some() {
                return Ok(());
            }
            if self.participants().await?.len() >= self.size {
                return match retrying(s, || s.create(&ready, "", CreateMode::Persistent)).await {
                    Err(e) if e.code() != ErrorCode::NodeExists => Err(e),
                    _ => Ok(()),
                };
            }
            // Woken by the creation of `ready`; any other end of the watch: look again.
            seq::wait_event(watch).await?;
            if retrying(s, || s.exists(&ready)).await?.is_some() {
                return Ok(());
            }
        }
        Err(ClientError::Api {
            code: ErrorCode::OperationTimeout,
            message: format!("barrier {} did not open in {RETRIES_MAX} rounds", self.dir),
            path: self.dir.clone(),
            op_index: None,
        })
    }

    /// Waits until every participant has left.
    pub async fn leave(&self) -> Result<(), ClientError> {
        let s = &self.session;
        let node = self.node();
        loop {
            let names = self.participants().await?;
            let (Some(lowest), Some(highest)) = (names.first(), names.last()) else {
                return Ok(());
            };
            let mine = names.contains(&self.name);
            if mine && names.len() == 1 {
                return delete_if_there(s, &node).await;
            }
            let wait_for = if mine && *lowest == self.name {
                // The lowest leaves last: wait for the highest to go first.
                highest
            } else {
                if mine {
                    delete_if_there(s, &node).await?;
                }
                lowest
            };
            seq::wait_gone(s, &format!("{}/{wait_for}", self.dir)).await?;
        }
    }

    /// The participants' names, sorted (everything but `ready`).
    async fn participants(&self) -> Result<Vec<String>, ClientError> {
        let s = &self.session;
        let (mut names, _) = retrying(s, || s.children(&self.dir)).await?;
        names.retain(|name| name != READY_NODE);
        names.sort();
        Ok(names)
    }
}

async fn delete_if_there(session: &Session, path: &str) -> Result<(), ClientError> {
    match retrying(session, || session.delete(path, -1)).await {
        Err(e) if e.code() != ErrorCode::NoNode => Err(e),
        _ => Ok(()),
    }
}
