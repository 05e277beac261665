//! Snapshots: the whole tree in one checksummed, versioned buffer.
//!
//! ```text
//! snapshot = magic "BATNSNAP" version:u8(=2) last_zxid
//!            count (session timeout_ms password)*  count node*  crc32:u32le
//! node     = path data czxid mzxid pzxid ctime mtime version cversion aversion
//!            ephemeral_owner data_length num_children kind:u8 ttl_ms
//! ```
//!
//! Integers are `codec::wire` varints. Sessions are in id order. Nodes are in the
//! tree's preorder, siblings in name order (version 2): each node comes after its
//! parent and after the whole subtree of the sibling before it. That is the order
//! of a walk down the children sets the tree keeps sorted anyway, so encoding
//! (done under the tree's read lock, while writes wait) sorts nothing. Version 1,
//! still read, had the nodes in ascending path order, which needed a sort of
//! every path. Either way a tree has exactly one encoding per version. The digest
//! is not stored: decode rebuilds it (and every index) from the contents.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use super::node::{ChildName, Node, NodeKind, session_hash};
use super::{DataTree, PathHasher, Session};
use crate::codec::wire::{Reader, Writer};
use crate::path::{basename, parent, validate_path};
use crate::{DecodeError, RESERVED_PREFIX, Stat, TTL_MS_MAX};

const MAGIC: &[u8; 8] = b"BATNSNAP";
/// The version written.
const VERSION: u8 = 2;
/// The older version, still read: nodes in ascending path order.
const VERSION_PATH_ORDER: u8 = 1;
const CRC_BYTES: usize = 4;
/// Smallest encodings, which bound the counts a snapshot may announce.
const SESSION_BYTES_MIN: usize = 2;
const NODE_BYTES_MIN: usize = 16;

pub(super) fn encode(tree: &DataTree) -> Vec<u8> {
    let mut w = header(tree, VERSION);
    w.len(tree.nodes.len());
    write_preorder(&mut w, tree);
    seal(w)
}

/// Writes the given nodes in the given order under any version's header: the
/// tests' way to make snapshots the encoder would not (broken trees, wrong orders,
/// version 1).
#[cfg(test)]
pub(super) fn encode_listed(tree: &DataTree, version: u8, paths: &[&str]) -> Vec<u8> {
    let mut w = header(tree, version);
    w.len(paths.len());
    for path in paths {
        write_node(&mut w, path, &tree.nodes[*path]);
    }
    seal(w)
}

/// Magic, version, last zxid and the sessions.
fn header(tree: &DataTree, version: u8) -> Writer {
    let data_bytes: usize = tree.nodes.values().map(|n| n.data.len()).sum();
    let mut w = Writer::with_capacity(64 + data_bytes + tree.nodes.len() * 64);
    w.raw(MAGIC);
    w.u8(version);
    w.varint(tree.last_zxid);
    w.len(tree.sessions.len());
    for (id, session) in &tree.sessions {
        w.varint(*id);
        w.varint(u64::from(session.timeout_ms));
        w.varint(session.password);
    }
    w
}

fn seal(mut w: Writer) -> Vec<u8> {
    let crc = crc32fast::hash(w.as_slice());
    w.raw(&crc.to_le_bytes());
    w.into_vec()
}

/// Every node, parents first and siblings in name order, walking down the sorted
/// children sets with one path buffer.
fn write_preorder(w: &mut Writer, tree: &DataTree) {
    let root = tree.nodes.get("/").expect("the tree has a root");
    write_node(w, "/", root);
    let mut written = 1;
    let mut path = String::from("/");
    // Per level: the children still to write, and the length of their parent's
    // path with its trailing `/`.
    let mut levels = vec![(root.children.iter(), 1)];
    while let Some((children, base)) = levels.last_mut() {
        let Some(name) = children.next() else {
            levels.pop();
            continue;
        };
        path.truncate(*base);
        path.push_str(name.as_str());
        let node = tree.nodes.get(path.as_str());
        let node = node.unwrap_or_else(|| panic!("child {path} is not in the tree"));
        write_node(w, &path, node);
        written += 1;
        if !node.children.is_empty() {
            path.push('/');
            levels.push((node.children.iter(), path.len()));
        }
    }
    assert_eq!(written, tree.nodes.len(), "nodes not reachable from the root");
}

fn write_node(w: &mut Writer, path: &str, node: &Node) {
    let s = &node.stat;
    w.str(path);
    w.bytes(&node.data);
    w.varint(s.czxid);
    w.varint(s.mzxid);
    w.varint(s.pzxid);
    w.i64(s.ctime);
    w.i64(s.mtime);
    w.i32(s.version);
    w.i32(s.cversion);
    w.i32(s.aversion);
    w.varint(s.ephemeral_owner);
    w.varint(u64::from(s.data_length));
    w.varint(u64::from(s.num_children));
    w.u8(node.kind.tag());
    w.i64(match node.kind {
        NodeKind::Ttl { ttl_ms } => ttl_ms,
        _ => 0,
    });
}

pub(super) fn decode(bytes: &[u8]) -> Result<DataTree, DecodeError> {
    let header = MAGIC.len() + 1;
    if bytes.len() < header + CRC_BYTES {
        let needed = header + CRC_BYTES - bytes.len();
        return Err(DecodeError::Truncated { offset: bytes.len(), needed });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(DecodeError::BadHeader("not a Baton snapshot (bad magic)".into()));
    }
    let order = match bytes[MAGIC.len()] {
        VERSION => Order::Preorder,
        VERSION_PATH_ORDER => Order::PathOrder,
        version => {
            return Err(DecodeError::BadHeader(format!("unknown snapshot version {version}")));
        }
    };
    let (body, crc) = bytes.split_at(bytes.len() - CRC_BYTES);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    let mut r = Reader::new(body);
    r.take(header)?;
    let mut tree = DataTree {
        nodes: Default::default(),
        sessions: Default::default(),
        reap_candidates: BTreeSet::new(),
        last_zxid: r.varint()?,
        digest: 0,
        data_bytes: 0,
    };
    read_sessions(&mut r, &mut tree)?;
    read_nodes(&mut r, &mut tree, order)?;
    r.finish()?;
    check_counts(&tree, r.offset())?;
    debug_assert_eq!(tree.digest, tree.recompute_digest());
    Ok(tree)
}

fn read_sessions(r: &mut Reader<'_>, tree: &mut DataTree) -> Result<(), DecodeError> {
    let n = r.count(SESSION_BYTES_MIN)?;
    let mut previous = 0u64;
    for _ in 0..n {
        let at = r.offset();
        let id = r.varint()?;
        let timeout_ms = r.u32()?;
        let password = r.varint()?;
        if id <= previous {
            return Err(r.invalid(at, "session ids must be non-zero and ascending"));
        }
        if timeout_ms == 0 {
            return Err(r.invalid(at, "session timeout must be > 0"));
        }
        previous = id;
        tree.sessions.insert(id, Session { timeout_ms, password, ephemerals: BTreeSet::new() });
    }
    Ok(())
}

/// The order of the nodes in a snapshot, by version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Version 2: preorder, siblings in name order.
    Preorder,
    /// Version 1: ascending paths.
    PathOrder,
}

/// Reads the nodes, checking before each insertion everything `link` asserts and
/// that they come in the version's order (which also rules out duplicates), and
/// adds up the digest as it goes. Each parent's child list is built once at the
/// end from its names, which arrive sorted: far cheaper than inserting them one by
/// one.
fn read_nodes(r: &mut Reader<'_>, tree: &mut DataTree, order: Order) -> Result<(), DecodeError> {
    let n = r.count(NODE_BYTES_MIN)?;
    tree.nodes.reserve(n);
    let mut children: HashMap<&str, Vec<ChildName>, PathHasher> = HashMap::default();
    let mut digest = 0u64;
    let mut previous: Option<&str> = None;
    // Preorder: the path from the root to the previous node, with each one's kind.
    let mut ancestors: Vec<(&str, NodeKind)> = Vec::new();
    for _ in 0..n {
        let at = r.offset();
        let (path, node) = read_node(r)?;
        let invalid = |reason: String| DecodeError::Invalid { offset: at, reason };
        validate_path(path).map_err(|e| invalid(e.to_string()))?;
        match (previous, parent(path)) {
            (None, None) => {}
            (None, Some(_)) => return Err(invalid(format!("first node is {path}, not /"))),
            (Some(_), None) => return Err(invalid("/ after another path".into())),
            (Some(prev), Some(parent_path)) => {
                let parent_kind = match order {
                    Order::PathOrder if prev >= path => {
                        return Err(invalid(format!("{path} not after {prev}: paths must ascend")));
                    }
                    Order::PathOrder => tree.nodes.get(parent_path).map(|p| p.kind),
                    Order::Preorder => {
                        while ancestors.last().is_some_and(|(a, _)| *a != parent_path) {
                            ancestors.pop();
                        }
                        ancestors.last().map(|(_, kind)| *kind)
                    }
                };
                match parent_kind {
                    None if order == Order::Preorder => {
                        return Err(invalid(format!(
                            "{path} is not below {prev} or one of its ancestors: not in preorder"
                        )));
                    }
                    None => return Err(invalid(format!("parent of {path} missing"))),
                    Some(NodeKind::Ephemeral) => {
                        return Err(invalid(format!("{path} is a child of an ephemeral")));
                    }
                    Some(_) => {}
                }
                let name = ChildName::new(basename(path));
                let siblings = children.entry(parent_path).or_default();
                if siblings.last().is_some_and(|last| *last >= name) {
                    return Err(invalid(format!(
                        "{path} after a sibling not before it in name order"
                    )));
                }
                siblings.push(name);
            }
        }
        let owner = node.stat.ephemeral_owner;
        if (node.kind == NodeKind::Ephemeral) != (owner != 0) {
            return Err(invalid(format!("{path}: ephemeral owner {owner:#x} disagrees with kind")));
        }
        if owner != 0 && !tree.sessions.contains_key(&owner) {
            return Err(invalid(format!("{path}: owner {owner:#x} is not an open session")));
        }
        previous = Some(path);
        if order == Order::Preorder {
            ancestors.push((path, node.kind));
        }
        digest = digest.wrapping_add(node.hash(path));
        tree.link_unlisted(path.to_owned(), node);
    }
    for (parent_path, names) in children {
        let parent = tree.nodes.get_mut(parent_path);
        let parent = parent.unwrap_or_else(|| panic!("parent {parent_path} was checked"));
        parent.children = names.into_iter().collect();
    }
    let sessions = tree.sessions.iter().map(|(id, s)| session_hash(*id, s.timeout_ms, s.password));
    tree.digest = sessions.fold(digest, u64::wrapping_add);
    Ok(())
}

fn read_node<'a>(r: &mut Reader<'a>) -> Result<(&'a str, Node), DecodeError> {
    let path = r.str()?;
    let data = r.bytes()?;
    let at = r.offset();
    let stat = Stat {
        czxid: r.varint()?,
        mzxid: r.varint()?,
        pzxid: r.varint()?,
        ctime: r.i64()?,
        mtime: r.i64()?,
        version: r.i32()?,
        cversion: r.i32()?,
        aversion: r.i32()?,
        ephemeral_owner: r.varint()?,
        data_length: r.u32()?,
        num_children: r.u32()?,
    };
    if usize::try_from(stat.data_length).ok() != Some(data.len()) {
        return Err(
            r.invalid(at, format!("data_length {} for {} bytes", stat.data_length, data.len()))
        );
    }
    let kind_at = r.offset();
    let tag = r.u8()?;
    let ttl_ms = r.i64()?;
    let kind = match (tag, ttl_ms) {
        (0, 0) => NodeKind::Persistent,
        (1, 0) => NodeKind::Ephemeral,
        (2, 0) => NodeKind::Container,
        (3, 1..=TTL_MS_MAX) => NodeKind::Ttl { ttl_ms },
        _ => return Err(r.invalid(kind_at, format!("bad kind {tag} with ttl_ms {ttl_ms}"))),
    };
    Ok((path, Node::new(Bytes::copy_from_slice(data), stat, kind)))
}

/// Whole-tree checks once every node is in: Stat child counts match, and the
/// root and the reserved node exist as plain persistent nodes.
fn check_counts(tree: &DataTree, end: usize) -> Result<(), DecodeError> {
    // Both must be plain persistent nodes: a container or TTL root or /baton
    // could otherwise be reaped.
    for path in ["/", RESERVED_PREFIX] {
        match tree.nodes.get(path) {
            None => {
                let reason = format!("{path} missing");
                return Err(DecodeError::Invalid { offset: end, reason });
            }
            Some(node) if node.kind != NodeKind::Persistent => {
                let reason = format!("{path} is not a plain persistent node");
                return Err(DecodeError::Invalid { offset: end, reason });
            }
            Some(_) => {}
        }
    }
    for (path, node) in &tree.nodes {
        if usize::try_from(node.stat.num_children).ok() != Some(node.children.len()) {
            let reason = format!(
                "{path}: num_children {} but {} children",
                node.stat.num_children,
                node.children.len()
            );
            return Err(DecodeError::Invalid { offset: end, reason });
        }
    }
    Ok(())
}
