use bytes::Bytes;

use crate::{Applied, DecodeError, Stat, Txn, TxnError, ZnodeError};

/// An open session as the tree knows it (opened and closed by txns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    pub session: u64,
    pub timeout_ms: u32,
}

/// The tree of znodes.
#[derive(Debug, Clone)]
pub struct DataTree {}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree with only `/` and the reserved `/baton`.
    pub fn new() -> Self {
        todo!("baton-znode helper")
    }

    /// Applies a txn. Deterministic. A failed txn changes nothing but the last zxid.
    /// Panics (assertion) if `txn.zxid` is not greater than `last_zxid()`.
    pub fn apply(&mut self, txn: &Txn) -> Result<Applied, TxnError> {
        let _ = txn;
        todo!("baton-znode helper")
    }

    /// zxid of the last applied txn (0 for a new tree).
    pub fn last_zxid(&self) -> u64 {
        todo!("baton-znode helper")
    }

    pub fn get(&self, path: &str) -> Result<(Bytes, Stat), ZnodeError> {
        let _ = path;
        todo!("baton-znode helper")
    }

    /// The Stat, or None if the node does not exist (an invalid path is an error).
    pub fn stat(&self, path: &str) -> Result<Option<Stat>, ZnodeError> {
        let _ = path;
        todo!("baton-znode helper")
    }

    /// Child names, sorted, and the node's Stat.
    pub fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ZnodeError> {
        let _ = path;
        todo!("baton-znode helper")
    }

    pub fn node_count(&self) -> usize {
        todo!("baton-znode helper")
    }

    /// Order-independent digest of every node (path, data, Stat) and session, kept up
    /// to date incrementally: equal trees have equal digests.
    pub fn digest(&self) -> u64 {
        todo!("baton-znode helper")
    }

    /// Open sessions, by id.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        todo!("baton-znode helper")
    }

    /// Paths of a session's ephemeral nodes, sorted.
    pub fn ephemerals(&self, session: u64) -> Vec<String> {
        let _ = session;
        todo!("baton-znode helper")
    }

    /// Containers and TTL nodes eligible for deletion at `now_ms`, at most `max`.
    pub fn reapable(&self, now_ms: i64, max: usize) -> Vec<String> {
        let _ = (now_ms, max);
        todo!("baton-znode helper")
    }

    /// A self-checking (checksummed, versioned) encoding of the whole tree.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        todo!("baton-znode helper")
    }

    pub fn decode_snapshot(bytes: &[u8]) -> Result<DataTree, DecodeError> {
        let _ = bytes;
        todo!("baton-znode helper")
    }
}
