//! Leader election (ZooKeeper's recipe): each candidate creates an ephemeral-sequential
//! node `n-…` under the election's path; the lowest sequence leads. A candidate waits
//! for leadership by watching only the candidate just before it; when the leader's
//! session ends (or it resigns), its node goes and the next candidate leads.

use bytes::Bytes;

use super::{
    dir_of, ensure_path, no_node, retrying,
    seq::{self, OwnedNode},
};
use crate::{ClientError, ErrorCode, Session};

const LABEL: &str = "n";

/// An election at one path.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    session: Session,
    dir: String,
}

/// This session's candidacy: its node in the election.
#[derive(Debug)]
pub struct Candidate {
    session: Session,
    dir: String,
    node: OwnedNode,
}

impl LeaderElection {
    pub fn new(session: &Session, path: &str) -> LeaderElection {
        LeaderElection { session: session.clone(), dir: dir_of(path) }
    }

    /// Enters the election with `data` (e.g. this candidate's address, for others to
    /// read with [`LeaderElection::leader`]).
    pub async fn volunteer(&self, data: impl Into<Bytes>) -> Result<Candidate, ClientError> {
        ensure_path(&self.session, &self.dir).await?;
        let node = seq::create_protected(&self.session, &self.dir, LABEL, data.into()).await?;
        Ok(Candidate { session: self.session.clone(), dir: self.dir.clone(), node })
    }

    /// The current leader's node path and data; `None` when there is no candidate.
    pub async fn leader(&self) -> Result<Option<(String, Bytes)>, ClientError> {
        // The leader may go between the listing and the read: look again.
        for _ in 0..super::RETRIES_MAX {
            let children = match retrying(&self.session, || self.session.children(&self.dir)).await
            {
                Err(e) if e.code() == ErrorCode::NoNode => return Ok(None),
                other => other?.0,
            };
            let Some(first) = seq::ordered(children, LABEL).into_iter().next() else {
                return Ok(None);
            };
            let path = format!("{}/{first}", self.dir);
            match retrying(&self.session, || self.session.get(&path)).await {
                Ok((data, _)) => return Ok(Some((path, data))),
                Err(e) if e.code() == ErrorCode::NoNode => continue,
                Err(e) => return Err(e),
            }
        }
        Err(no_node(&self.dir))
    }
}

impl Candidate {
    /// The path of this candidate's node.
    pub fn path(&self) -> &str {
        self.node.path()
    }

    /// Whether this candidate leads now.
    pub async fn is_leader(&self) -> Result<bool, ClientError> {
        let (children, _) = retrying(&self.session, || self.session.children(&self.dir)).await?;
        let ordered = seq::ordered(children, LABEL);
        match seq::place(&ordered, self.node.name()) {
            seq::Place::First => Ok(true),
            seq::Place::After(_) => Ok(false),
            seq::Place::Missing => Err(no_node(self.node.path())),
        }
    }

    /// Waits until this candidate leads.
    pub async fn wait_for_leadership(&self) -> Result<(), ClientError> {
        seq::wait_until_first(&self.session, &self.dir, LABEL, self.node.name()).await
    }

    /// Leaves the election (the next candidate leads if this one did).
    pub async fn resign(self) -> Result<(), ClientError> {
        self.node.delete().await
    }
}
