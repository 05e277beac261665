//! One znode as the tree stores it, and the hashes the digest is made of.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use bytes::Bytes;

use super::acl_cache::AclRef;
use crate::Stat;
use crate::hash::{StableHasher, hash_bytes};

/// What kind of node it is, beyond its Stat.
///
/// ZooKeeper packs container and TTL into special `ephemeralOwner` values; we keep
/// them here instead and leave `Stat::ephemeral_owner` 0 for them, so the Stat a
/// client sees never carries a fake session id. The kind is not exposed in `Stat`
/// but is part of the digest and of snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Persistent,
    /// Owned by `stat.ephemeral_owner`; deleted when that session closes.
    Ephemeral,
    /// Reapable once it had a child and has none any more.
    Container,
    /// Reapable once childless and unchanged (mtime) for longer than `ttl_ms`.
    Ttl {
        ttl_ms: TtlMs,
    },
}

/// A TTL in milliseconds kept as two 32-bit halves: with 4-byte alignment,
/// `NodeKind` is 12 bytes, and a node's ACL reference fits beside it in the 16 an
/// `i64` payload would take, keeping `Node` at 152 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TtlMs([u32; 2]);

impl TtlMs {
    fn new(ms: i64) -> TtlMs {
        let bits = ms as u64;
        TtlMs([bits as u32, (bits >> 32) as u32])
    }

    fn get(self) -> i64 {
        (u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)) as i64
    }
}

impl NodeKind {
    pub(crate) fn ttl(ttl_ms: i64) -> NodeKind {
        NodeKind::Ttl { ttl_ms: TtlMs::new(ttl_ms) }
    }

    /// Whether `reapable` needs to look at nodes of this kind.
    pub(crate) fn is_reap_candidate(self) -> bool {
        matches!(self, NodeKind::Container | NodeKind::Ttl { .. })
    }

    /// Tag used in the digest and in snapshots.
    pub(crate) fn tag(self) -> u8 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral => 1,
            NodeKind::Container => 2,
            NodeKind::Ttl { .. } => 3,
        }
    }

    /// The TTL, 0 for other kinds.
    pub(crate) fn ttl_ms(self) -> i64 {
        match self {
            NodeKind::Ttl { ttl_ms } => ttl_ms.get(),
            _ => 0,
        }
    }
}

/// No `PartialEq`: `acl` is a slot number, meaningful only with its tree's cache;
/// `DataTree`'s equality compares the lists themselves.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) data: Bytes,
    /// Hash of `data`, cached so that a parent's Stat change (every child create or
    /// delete) does not rehash the parent's data.
    pub(crate) data_hash: u64,
    pub(crate) stat: Stat,
    pub(crate) kind: NodeKind,
    /// The node's ACL, in the tree's `AclCache`.
    pub(crate) acl: AclRef,
    /// Names (not paths) of the children, sorted for `children()` and snapshots.
    pub(crate) children: BTreeSet<ChildName>,
}

impl Node {
    pub(crate) fn new(data: Bytes, stat: Stat, kind: NodeKind, acl: AclRef) -> Node {
        Node { data_hash: hash_bytes(&data), data, stat, kind, acl, children: BTreeSet::new() }
    }

    pub(crate) fn set_data(&mut self, data: Bytes) {
        self.data_hash = hash_bytes(&data);
        self.data = data;
    }

    /// Eligible for deletion by the reaper at `now_ms` (ZooKeeper's ContainerManager
    /// rules): a container that had a child (cversion > 0) and has none; a TTL node
    /// with no children whose data has not changed for more than its TTL.
    pub(crate) fn is_reapable(&self, now_ms: i64) -> bool {
        if !self.children.is_empty() {
            return false;
        }
        match self.kind {
            NodeKind::Container => self.stat.cversion > 0,
            NodeKind::Ttl { ttl_ms } => {
                // i128: a forged txn time must not overflow into a wrong answer.
                i128::from(now_ms) - i128::from(self.stat.mtime) > i128::from(ttl_ms.get())
            }
            NodeKind::Persistent | NodeKind::Ephemeral => false,
        }
    }

    /// This node's share of the tree digest: path, data, every Stat field, kind,
    /// TTL and the hash of its ACL's contents (`acl_hash`: the list, never the slot
    /// it sits in). Children are not included; each child contributes its own hash.
    pub(crate) fn hash(&self, path: &str, acl_hash: u64) -> u64 {
        let s = &self.stat;
        let mut h = StableHasher::default();
        h.write_u64(NODE_TAG);
        h.write_bytes(path.as_bytes());
        h.write_u64(self.data_hash);
        for v in [s.czxid, s.mzxid, s.pzxid, s.ephemeral_owner] {
            h.write_u64(v);
        }
        for v in [s.ctime, s.mtime] {
            h.write_i64(v);
        }
        for v in [s.version, s.cversion, s.aversion] {
            h.write_i64(i64::from(v));
        }
        h.write_u64(u64::from(s.data_length));
        h.write_u64(u64::from(s.num_children));
        h.write_u64(u64::from(self.kind.tag()));
        h.write_i64(self.kind.ttl_ms());
        h.write_u64(acl_hash);
        h.finish()
    }
}

/// A child's name, ordered exactly as its bytes are, with its first 8 bytes also
/// kept inline (big-endian, zero-padded). Descending a parent's child set compares
/// a new name with dozens of others; most comparisons end on the inline head
/// without reading a name from the heap (a cache miss each in a big set). The
/// same 24 bytes as a `String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChildName {
    head: u64,
    name: Box<str>,
}

impl ChildName {
    pub(crate) fn new(name: &str) -> ChildName {
        let mut head = [0u8; 8];
        let n = name.len().min(8);
        head[..n].copy_from_slice(&name.as_bytes()[..n]);
        ChildName { head: u64::from_be_bytes(head), name: name.into() }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }
}

/// Heads that differ order the names as their bytes do: at the first differing
/// byte either both names have a byte there, or the shorter one ended before it
/// (its padding 0 is below any byte of the other, and the shorter is a prefix of
/// the longer). Equal heads leave it to the whole names.
impl Ord for ChildName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.head.cmp(&other.head).then_with(|| self.name.as_bytes().cmp(other.name.as_bytes()))
    }
}

impl PartialOrd for ChildName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sound because the order is the names' own (see `Ord`).
impl Borrow<str> for ChildName {
    fn borrow(&self) -> &str {
        &self.name
    }
}

/// Domain separators: a node and a session can never hash alike by construction.
const NODE_TAG: u64 = 1;
const SESSION_TAG: u64 = 2;

/// A session's share of the tree digest.
pub(crate) fn session_hash(session: u64, timeout_ms: u32, password: u64) -> u64 {
    let mut h = StableHasher::default();
    h.write_u64(SESSION_TAG);
    h.write_u64(session);
    h.write_u64(u64::from(timeout_ms));
    h.write_u64(password);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::{ChildName, Node, NodeKind};

    /// Memory per znode matters (a million of them is common): the ACL reference
    /// must not make a node bigger than it was before ACLs.
    #[test]
    fn node_stays_small() {
        assert_eq!(std::mem::size_of::<NodeKind>(), 12);
        assert_eq!(std::mem::size_of::<Node>(), 152);
        for ttl in [1, super::super::super::TTL_MS_MAX, i64::MAX, -1] {
            assert_eq!(NodeKind::ttl(ttl).ttl_ms(), ttl);
        }
    }

    /// Every pair of names up to 10 bytes over an alphabet with NUL, the lowest and
    /// highest bytes, and names that share their first 8 bytes: `ChildName` orders
    /// them exactly as their bytes.
    #[test]
    fn child_names_order_as_their_bytes() {
        let mut names = vec![String::new()];
        for len in 1..=3 {
            for i in 0..4usize.pow(len) {
                let name: String =
                    (0..len).map(|d| ['\0', 'a', 'b', '\u{7f}'][i / 4usize.pow(d) % 4]).collect();
                names.push(name);
            }
        }
        let long: Vec<String> = names.iter().map(|n| format!("abcdefgh{n}")).collect();
        names.extend(long);
        names.extend(["abcdefg".into(), "abcdefgi".into(), "é".into(), "abcdefg\u{0}".into()]);
        for a in &names {
            for b in &names {
                let (x, y) = (ChildName::new(a), ChildName::new(b));
                assert_eq!(x.cmp(&y), a.as_bytes().cmp(b.as_bytes()), "{a:?} vs {b:?}");
                assert_eq!(x == y, a == b, "{a:?} vs {b:?}");
            }
        }
    }
}
