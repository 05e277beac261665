//! [`DataTree`]: the znodes, the open sessions and the indexes `apply` keeps.
//!
//! Reads live here; the txn semantics are in `apply` (ACL and quota ops in
//! `access` and `quota`), the journaled mutation primitives (and rollback) in
//! `store`, the shared ACL lists in `acl_cache`, snapshots in `snapshot`.

mod access;
mod acl_cache;
mod apply;
mod capture;
pub use capture::{SnapshotAbandoned, SnapshotEncoder};
mod node;
mod quota;
pub(crate) use quota::{format_limits, limits_node};
mod snapshot;
mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use crate::acl::{Acl, Auth, Perms, open_acl};
use crate::path::validate_path;
use crate::{
    Applied, DecodeError, QuotaLimits, QuotaUsage, RESERVED_PREFIX, Stat, Txn, TxnError, ZnodeError,
};
use acl_cache::AclCache;
use node::{Node, NodeKind, session_hash};
use quota::Quota;

/// The path index's hasher: foldhash, seeded at random per process (paths come from
/// clients; a fixed seed would let them aim for collisions), several times faster
/// than std's SipHash on short keys. The digest does not use it (see `hash`).
type PathHasher = foldhash::fast::RandomState;

/// An open session as the tree knows it (opened and closed by txns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    pub session: u64,
    pub timeout_ms: u32,
    pub password: u64,
}

/// An open session and the ephemeral nodes it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Session {
    timeout_ms: u32,
    password: u64,
    /// Paths, sorted: closing a session deletes them in this order.
    ephemerals: BTreeSet<String>,
}

/// The tree of znodes.
///
/// Invariants (checked by `decode_snapshot` on untrusted input, asserted here):
/// every node but `/` has its parent in `nodes`, listed in the parent's `children`;
/// `num_children` equals `children.len()`; an ephemeral's owner is an open session
/// whose `ephemerals` lists it, and it has no children; `reap_candidates` holds
/// exactly the container and TTL paths; `digest` is the wrapping sum of every
/// node's and session's hash. Every node's `acl` names a list in `acls` whose
/// reference count is the number of nodes naming it (between txns no list is
/// unreferenced). `quotas` holds exactly the quotas whose limits nodes are under
/// `/baton/quota`, none on an ancestor of another, each with the count and data
/// bytes of the nodes at and below its path.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// Keyed by full path: a read is one hash lookup, whatever the depth. Nodes are
    /// boxed: a hash table keeps up to twice its entries' room allocated, and a
    /// pointer is a fifth of a node (for 1M znodes: 612 → 470 MiB).
    nodes: HashMap<String, Box<Node>, PathHasher>,
    sessions: BTreeMap<u64, Session>,
    /// Containers and TTL nodes: the only nodes `reapable` has to look at.
    reap_candidates: BTreeSet<String>,
    last_zxid: u64,
    digest: u64,
    /// Bytes of data in all znodes together.
    data_bytes: u64,
    /// The distinct ACL lists the nodes refer to.
    acls: AclCache,
    /// Quotas by the path they are on, rebuilt from `/baton/quota` on decode.
    quotas: BTreeMap<String, Quota>,
    /// What a snapshot being written needs of the tree it began on (`capture`).
    capture: Option<Box<capture::Capture>>,
}

/// Equal contents: the nodes' ACLs are compared as lists, not as the cache slots
/// they happen to sit in (which depend on history).
impl PartialEq for DataTree {
    fn eq(&self, other: &Self) -> bool {
        self.sessions == other.sessions
            && self.reap_candidates == other.reap_candidates
            && self.last_zxid == other.last_zxid
            && self.digest == other.digest
            && self.data_bytes == other.data_bytes
            && self.quotas == other.quotas
            && self.acls == other.acls
            && self.nodes.len() == other.nodes.len()
            && self.nodes.iter().all(|(path, a)| {
                other.nodes.get(path).is_some_and(|b| {
                    a.data == b.data
                        && a.stat == b.stat
                        && a.kind == b.kind
                        && a.children == b.children
                        && self.acls.get(a.acl) == other.acls.get(b.acl)
                })
            })
    }
}

impl Eq for DataTree {}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree with only `/` and the reserved `/baton`.
    ///
    /// Both have a zeroed Stat (but for the root's `num_children`, which counts
    /// `/baton`), as ZooKeeper's `/` and `/zookeeper`.
    pub fn new() -> Self {
        let mut tree = DataTree {
            nodes: HashMap::default(),
            sessions: BTreeMap::new(),
            reap_candidates: BTreeSet::new(),
            last_zxid: 0,
            digest: 0,
            data_bytes: 0,
            acls: AclCache::default(),
            quotas: BTreeMap::new(),
            capture: None,
        };
        let open = tree.acls.intern(&open_acl());
        let root_stat = Stat { num_children: 1, ..Stat::default() };
        let root = Node::new(Bytes::new(), root_stat, NodeKind::Persistent, open);
        tree.link("/".to_owned(), root);
        let reserved = Node::new(Bytes::new(), Stat::default(), NodeKind::Persistent, open);
        tree.link(RESERVED_PREFIX.to_owned(), reserved);
        tree.digest = tree.recompute_digest();
        tree
    }

    /// Applies a txn. Deterministic. A failed txn changes nothing but the last zxid.
    /// Client ops are checked against the ACLs with `txn.auth` (a refusal is
    /// `NoAuth`) and against the quotas; server-made ops (sessions, reaping) are not.
    /// An op of a session (`txn.session` != 0) that is not open fails with
    /// `SessionExpired`, except opening and closing it.
    /// Panics (assertion) if `txn.zxid` is not greater than `last_zxid()`.
    pub fn apply(&mut self, txn: &Txn) -> Result<Applied, TxnError> {
        self.apply_txn(txn)
    }

    /// zxid of the last applied txn (0 for a new tree).
    pub fn last_zxid(&self) -> u64 {
        self.last_zxid
    }

    pub fn get(&self, path: &str) -> Result<(Bytes, Stat), ZnodeError> {
        let node = self.existing(path)?;
        Ok((node.data.clone(), node.stat))
    }

    /// The Stat, or None if the node does not exist (an invalid path is an error).
    pub fn stat(&self, path: &str) -> Result<Option<Stat>, ZnodeError> {
        validate_path(path)?;
        Ok(self.nodes.get(path).map(|node| node.stat))
    }

    /// Child names, sorted, and the node's Stat.
    pub fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ZnodeError> {
        let node = self.existing(path)?;
        Ok((node.children.iter().map(|c| c.as_str().to_owned()).collect(), node.stat))
    }

    /// Every node, `/` and `/baton` included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes of data in all znodes together (paths and Stats not counted).
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Order-independent digest of every node (path, data, Stat, the container /
    /// TTL kind and the ACL) and session (id, timeout), kept up to date incrementally: equal trees
    /// have equal digests. It covers contents only, not `last_zxid`: two replicas
    /// that applied different no-op txns still agree.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The digest computed from scratch (O(nodes)); `digest()` must always equal it.
    /// For tests and for checking a tree loaded from elsewhere.
    pub fn recompute_digest(&self) -> u64 {
        let nodes = self.nodes.iter().map(|(path, node)| self.node_hash(path, node));
        let sessions =
            self.sessions.iter().map(|(id, s)| session_hash(*id, s.timeout_ms, s.password));
        nodes.chain(sessions).fold(0u64, u64::wrapping_add)
    }

    /// One open session, if it is open.
    pub fn session(&self, session: u64) -> Option<SessionInfo> {
        self.sessions.get(&session).map(|s| SessionInfo {
            session,
            timeout_ms: s.timeout_ms,
            password: s.password,
        })
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Open sessions, by id.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions
            .iter()
            .map(|(id, s)| SessionInfo {
                session: *id,
                timeout_ms: s.timeout_ms,
                password: s.password,
            })
            .collect()
    }

    /// A node's ACL and Stat (the server checks READ or ADMIN first, and masks
    /// digests for a caller without ADMIN).
    pub fn acl(&self, path: &str) -> Result<(Acl, Stat), ZnodeError> {
        let node = self.existing(path)?;
        Ok((self.acls.get(node.acl).to_vec(), node.stat))
    }

    /// Whether `auth` has any of `perm` on the node: NoNode when it does not exist,
    /// NoAuth when refused. The server's check for reads (get, exists, children,
    /// getAcl); writes are checked by `apply` itself.
    pub fn authorize(&self, path: &str, auth: &Auth, perm: Perms) -> Result<(), ZnodeError> {
        let node = self.existing(path)?;
        self.permit(path, node, auth, perm)
    }

    /// The quota on exactly `path`, and what its subtree holds now.
    pub fn quota(&self, path: &str) -> Option<(QuotaLimits, QuotaUsage)> {
        self.quotas.get(path).map(|q| (q.limits, q.usage))
    }

    /// Every quota, by path.
    pub fn quotas(&self) -> Vec<(String, QuotaLimits, QuotaUsage)> {
        self.quotas.iter().map(|(path, q)| (path.clone(), q.limits, q.usage)).collect()
    }

    /// Paths of a session's ephemeral nodes, sorted.
    pub fn ephemerals(&self, session: u64) -> Vec<String> {
        self.sessions
            .get(&session)
            .map(|s| s.ephemerals.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Containers and TTL nodes eligible for deletion at `now_ms`, at most `max`,
    /// sorted. Looks only at container and TTL nodes, never the whole tree.
    ///
    /// The server proposes a `TxnOp::Reap` with them; `apply` checks eligibility
    /// again at the txn's own time, so a node changed in between is left alone.
    pub fn reapable(&self, now_ms: i64, max: usize) -> Vec<String> {
        self.reap_candidates
            .iter()
            .filter(|path| self.nodes.get(path.as_str()).is_some_and(|n| n.is_reapable(now_ms)))
            .take(max)
            .cloned()
            .collect()
    }

    /// A self-checking (checksummed, versioned) encoding of the whole tree.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        snapshot::encode(self)
    }

    /// Decodes `encode_snapshot`'s bytes, checking the checksum and every structural
    /// invariant; never panics, whatever the bytes.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<DataTree, DecodeError> {
        snapshot::decode(bytes)
    }

    /// A node's share of the digest (its ACL's hash comes from the cache).
    fn node_hash(&self, path: &str, node: &Node) -> u64 {
        node.hash(path, self.acls.hash(node.acl))
    }

    fn existing(&self, path: &str) -> Result<&Node, ZnodeError> {
        validate_path(path)?;
        self.nodes
            .get(path)
            .map(|node| &**node)
            .ok_or_else(|| ZnodeError::NoNode { path: path.to_owned() })
    }
}
