//! A distributed FIFO queue (ZooKeeper's recipe): [`Queue::offer`] creates a
//! persistent-sequential `qn-…` node holding the item; consumers take the lowest
//! sequence by deleting it; whoever's delete succeeds owns the item, so every item is
//! taken once. A consumer that loses a race for one item tries the next.
//!
//! An item's delete that fails with ConnectionLoss may have happened: the error is
//! returned, and the item may be gone (taken by this call, or by another consumer).

use bytes::Bytes;

use super::{dir_of, ensure_path, retrying, seq};
use crate::{ClientError, CreateMode, ErrorCode, Session};

const LABEL: &str = "qn";

/// A queue at one path. Items are taken in the order they were offered.
#[derive(Debug, Clone)]
pub struct Queue {
    session: Session,
    dir: String,
}

impl Queue {
    pub fn new(session: &Session, path: &str) -> Queue {
        Queue { session: session.clone(), dir: dir_of(path) }
    }

    /// Adds an item; returns its node's path. Not repeated after a ConnectionLoss (the
    /// item may or may not have been added).
    pub async fn offer(&self, data: impl Into<Bytes>) -> Result<String, ClientError> {
        let data = data.into();
        let prefix = format!("{}/{LABEL}-", self.dir);
        match self.session.create(&prefix, data.clone(), CreateMode::PersistentSequential).await {
            Err(e) if e.code() == ErrorCode::NoNode => {
                ensure_path(&self.session, &self.dir).await?;
                self.session.create(&prefix, data, CreateMode::PersistentSequential).await
            }
            other => other,
        }
    }

    /// Takes the oldest item, or `None` when the queue is empty.
    pub async fn poll(&self) -> Result<Option<Bytes>, ClientError> {
        let s = &self.session;
        let children = match retrying(s, || s.children(&self.dir)).await {
            Err(e) if e.code() == ErrorCode::NoNode => return Ok(None),
            other => other?.0,
        };
        self.take_first_of(children).await
    }

    /// Takes the oldest item, waiting for one while the queue is empty.
    pub async fn take(&self) -> Result<Bytes, ClientError> {
        let s = &self.session;
        loop {
            let (children, _, watch) = match retrying(s, || s.children_watch(&self.dir)).await {
                Err(e) if e.code() == ErrorCode::NoNode => {
                    ensure_path(s, &self.dir).await?;
                    continue;
                }
                other => other?,
            };
            if let Some(item) = self.take_first_of(children).await? {
                return Ok(item);
            }
            seq::wait_event(watch).await?;
        }
    }

    /// Takes the first item of `children` that no other consumer takes first.
    async fn take_first_of(&self, children: Vec<String>) -> Result<Option<Bytes>, ClientError> {
        let s = &self.session;
        for name in seq::ordered(children, LABEL) {
            let path = format!("{}/{name}", self.dir);
            let (data, stat) = match retrying(s, || s.get(&path)).await {
                Err(e) if e.code() == ErrorCode::NoNode => continue,
                other => other?,
            };
            match s.delete(&path, stat.version).await {
                Ok(()) => return Ok(Some(data)),
                // Taken by another consumer (or changed under us): the next one.
                Err(e) if matches!(e.code(), ErrorCode::NoNode | ErrorCode::BadVersion) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}
