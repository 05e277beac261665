//! A distributed exclusive lock (ZooKeeper's lock recipe).
//!
//! To acquire, a client creates an ephemeral-sequential node `lock-…` under the lock's
//! path and lists the children: if its node has the lowest sequence, it holds the lock;
//! otherwise it watches only the node just before its own, and looks again when that
//! one goes. A release (or the holder's session ending) deletes one node and so wakes
//! one waiter: no herd effect. Waiters are served in the order they asked.

use bytes::Bytes;

use super::{
    dir_of, ensure_path,
    seq::{self, OwnedNode},
};
use crate::{ClientError, Session};

/// The name prefix of the lock's nodes.
const LABEL: &str = "lock";

/// A lock at one path. Cheap; make one per acquisition or keep it.
#[derive(Debug, Clone)]
pub struct Lock {
    session: Session,
    dir: String,
}

/// A held lock. It is released by [`LockGuard::release`], by dropping it (in the
/// background, best effort), or by the end of its session.
#[derive(Debug)]
pub struct LockGuard {
    node: OwnedNode,
}

impl Lock {
    pub fn new(session: &Session, path: &str) -> Lock {
        Lock { session: session.clone(), dir: dir_of(path) }
    }

    /// Waits until the lock is held. Cancel-safe: dropping the future gives up the
    /// place in line.
    pub async fn acquire(&self) -> Result<LockGuard, ClientError> {
        ensure_path(&self.session, &self.dir).await?;
        let node = seq::create_protected(&self.session, &self.dir, LABEL, Bytes::new()).await?;
        seq::wait_until_first(&self.session, &self.dir, LABEL, node.name()).await?;
        Ok(LockGuard { node })
    }

    /// Takes the lock if nobody holds it or waits for it; `None` otherwise.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>, ClientError> {
        ensure_path(&self.session, &self.dir).await?;
        let node = seq::create_protected(&self.session, &self.dir, LABEL, Bytes::new()).await?;
        let (children, _) =
            super::retrying(&self.session, || self.session.children(&self.dir)).await?;
        let ordered = seq::ordered(children, LABEL);
        if seq::place(&ordered, node.name()) == seq::Place::First {
            Ok(Some(LockGuard { node }))
        } else {
            node.delete().await?;
            Ok(None)
        }
    }
}

impl LockGuard {
    /// The path of this holder's node.
    pub fn path(&self) -> &str {
        self.node.path()
    }

    /// A fencing token: the creation zxid of this holder's node. Every later holder's
    /// token is larger, so a resource that remembers the largest token it has seen can
    /// refuse a holder whose lock has since passed on (e.g. after its session expired).
    pub fn fencing_token(&self) -> u64 {
        self.node.czxid()
    }

    /// Releases the lock (deletes the node; already gone is fine).
    pub async fn release(self) -> Result<(), ClientError> {
        self.node.delete().await
    }
}
