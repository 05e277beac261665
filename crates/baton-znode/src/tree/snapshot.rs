//! Snapshots: the whole tree in one checksummed, versioned buffer.
//!
//! ```text
//! snapshot = magic "BATNSNAP" version:u8(=3) last_zxid
//!            count (session timeout_ms password)*  count acl*  count node*
//!            crc32:u32le
//! acl      = count (perms:u8 scheme id)*           (the txn codec's)
//! node     = path data czxid mzxid pzxid ctime mtime version cversion aversion
//!            ephemeral_owner data_length num_children kind:u8 ttl_ms acl_index
//! ```
//!
//! Integers are `codec::wire` varints. Sessions are in id order. Each distinct ACL
//! is written once, in content order (not in the order of the cache's slots, which
//! depends on history), and every one is used by some node; a node refers to its
//! ACL by position. Versions 1 and 2, still read, had no ACLs: every node gets the
//! open ACL. Nodes are in the tree's preorder, siblings in name order (versions 2
//! and 3): each node comes after its
//! parent and after the whole subtree of the sibling before it. That is the order
//! of a walk down the children sets the tree keeps sorted anyway, so encoding
//! (done under the tree's read lock, while writes wait) sorts nothing. Version 1,
//! still read, had the nodes in ascending path order, which needed a sort of
//! every path. Either way a tree has exactly one encoding per version. The digest
//! is not stored: decode rebuilds it (and every index, the quotas' usage included)
//! from the contents.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use super::acl_cache::{AclCache, AclRef};
use super::node::{ChildName, Node, NodeKind, session_hash};
use super::{DataTree, PathHasher, Session};
use crate::acl::open_acl;
use crate::codec::wire::{Reader, Writer};
use crate::codec::{read_acl, write_acl};
use crate::limits::check_acl;
use crate::path::{basename, parent, validate_path};
use crate::{DecodeError, RESERVED_PREFIX, Stat, TTL_MS_MAX};

const MAGIC: &[u8; 8] = b"BATNSNAP";
/// The version written.
const VERSION: u8 = 3;
/// An older version, still read: preorder, no ACLs.
const VERSION_NO_ACLS: u8 = 2;
/// The oldest version, still read: nodes in ascending path order, no ACLs.
const VERSION_PATH_ORDER: u8 = 1;
const CRC_BYTES: usize = 4;
/// Smallest encodings, which bound the counts a snapshot may announce.
const SESSION_BYTES_MIN: usize = 2;
const NODE_BYTES_MIN: usize = 16;
const ACL_BYTES_MIN: usize = 1;

pub(super) fn encode(tree: &DataTree) -> Vec<u8> {
    let (mut w, positions) = begin(tree);
    write_preorder(&mut w, tree, &positions);
    seal(w)
}

/// Everything before the nodes (the header, the sessions, the ACL table and the
/// node count); returns each ACL slot's position in the table.
pub(super) fn begin(tree: &DataTree) -> (Writer, Vec<u32>) {
    let mut w = header(tree, VERSION);
    let positions = write_acls(&mut w, &tree.acls);
    w.len(tree.nodes.len());
    (w, positions)
}

/// Writes the given nodes in the given order under any version's header: the
/// tests' way to make snapshots the encoder would not (broken trees, wrong orders,
/// version 1).
#[cfg(test)]
pub(super) fn encode_listed(tree: &DataTree, version: u8, paths: &[&str]) -> Vec<u8> {
    let mut w = header(tree, version);
    let positions = (version >= VERSION).then(|| write_acls(&mut w, &tree.acls));
    w.len(paths.len());
    for path in paths {
        write_node(&mut w, path, &tree.nodes[*path], positions.as_deref());
    }
    seal(w)
}

/// A version 3 snapshot with whatever ACL table `write_table` writes, and the
/// listed nodes each with the given table index: the tests' way to make ACL
/// records the encoder would not.
#[cfg(test)]
pub(super) fn encode_with_table(
    tree: &DataTree,
    write_table: impl FnOnce(&mut Writer),
    nodes: &[(&str, u32)],
) -> Vec<u8> {
    let mut w = header(tree, VERSION);
    write_table(&mut w);
    w.len(nodes.len());
    for (path, index) in nodes {
        let node = &tree.nodes[*path];
        write_node(&mut w, path, node, Some(&vec![*index; node.acl as usize + 1]));
    }
    seal(w)
}

/// The ACL table, in content order; returns each cache slot's position in it.
fn write_acls(w: &mut Writer, acls: &AclCache) -> Vec<u32> {
    let table = acls.sorted();
    let slots = table.iter().map(|(_, id)| *id as usize + 1).max().unwrap_or(0);
    let mut positions = vec![u32::MAX; slots];
    w.len(table.len());
    for (position, (acl, id)) in table.iter().enumerate() {
        write_acl(w, acl);
        positions[*id as usize] = position as u32;
    }
    positions
}

/// Magic, version, last zxid and the sessions.
fn header(tree: &DataTree, version: u8) -> Writer {
    let data_bytes = tree.data_bytes as usize;
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

pub(super) fn seal(mut w: Writer) -> Vec<u8> {
    let crc = crc32fast::hash(w.as_slice());
    w.raw(&crc.to_le_bytes());
    w.into_vec()
}

/// Every node, parents first and siblings in name order, walking down the sorted
/// children sets with one path buffer.
fn write_preorder(w: &mut Writer, tree: &DataTree, positions: &[u32]) {
    let root = tree.nodes.get("/").expect("the tree has a root");
    write_node(w, "/", root, Some(positions));
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
        write_node(w, &path, node, Some(positions));
        written += 1;
        if !node.children.is_empty() {
            path.push('/');
            levels.push((node.children.iter(), path.len()));
        }
    }
    assert_eq!(written, tree.nodes.len(), "nodes not reachable from the root");
}

/// `positions`: each ACL slot's place in the table (None: a version without ACLs).
fn write_node(w: &mut Writer, path: &str, node: &Node, positions: Option<&[u32]>) {
    let position = positions.map(|positions| positions[node.acl as usize]);
    write_fields(w, path, &node.data, &node.stat, node.kind, position);
}

/// A node's record; `acl_position` is its ACL's place in the table (None: a
/// version without ACLs).
pub(super) fn write_fields(
    w: &mut Writer,
    path: &str,
    data: &[u8],
    s: &Stat,
    kind: NodeKind,
    acl_position: Option<u32>,
) {
    w.str(path);
    w.bytes(data);
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
    w.u8(kind.tag());
    w.i64(kind.ttl_ms());
    if let Some(position) = acl_position {
        assert!(position != u32::MAX, "{path} refers to an ACL slot with no references");
        w.varint(u64::from(position));
    }
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
    let (order, has_acls) = match bytes[MAGIC.len()] {
        VERSION => (Order::Preorder, true),
        VERSION_NO_ACLS => (Order::Preorder, false),
        VERSION_PATH_ORDER => (Order::PathOrder, false),
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
        acls: AclCache::default(),
        quotas: BTreeMap::new(),
        capture: None,
    };
    read_sessions(&mut r, &mut tree)?;
    let table = if has_acls { read_acls(&mut r, &mut tree.acls)? } else { older_acls(&mut tree) };
    read_nodes(&mut r, &mut tree, order, &table, has_acls)?;
    r.finish()?;
    let end = r.offset();
    check_counts(&tree, end)?;
    if let Some(unused) = table.iter().position(|id| tree.acls.refs(*id) == 0) {
        let reason = format!("ACL {unused} of the table is used by no node");
        return Err(DecodeError::Invalid { offset: end, reason });
    }
    tree.rebuild_quotas().map_err(|reason| DecodeError::Invalid { offset: end, reason })?;
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

/// The ACL table: valid concrete ACLs, strictly ascending (so one tree has one
/// encoding), interned in the tree's cache in table order.
fn read_acls(r: &mut Reader<'_>, acls: &mut AclCache) -> Result<Vec<AclRef>, DecodeError> {
    let n = r.count(ACL_BYTES_MIN)?;
    let mut table = Vec::with_capacity(n);
    let mut previous: Option<crate::acl::Acl> = None;
    for i in 0..n {
        let at = r.offset();
        let acl = read_acl(r)?;
        let invalid = |reason: String| DecodeError::Invalid { offset: at, reason };
        check_acl("", &acl).map_err(|e| invalid(format!("ACL {i}: {e}")))?;
        if previous.as_ref().is_some_and(|p| *p >= acl) {
            return Err(invalid(format!("ACL {i} not after the one before it in content order")));
        }
        table.push(acls.intern(&acl));
        previous = Some(acl);
    }
    Ok(table)
}

/// A snapshot from before ACLs: every node has the open ACL, the table's only one.
fn older_acls(tree: &mut DataTree) -> Vec<AclRef> {
    vec![tree.acls.intern(&open_acl())]
}

/// The order of the nodes in a snapshot, by version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Version 2: preorder, siblings in name order.
    Preorder,
    /// Version 1: ascending paths.
    PathOrder,
}

/// Reads the nodes (each with an index into `acls` if `has_index`, else with the
/// older versions' one ACL), checking before each insertion everything `link` asserts and
/// that they come in the version's order (which also rules out duplicates), and
/// adds up the digest as it goes. Each parent's child list is built once at the
/// end from its names, which arrive sorted: far cheaper than inserting them one by
/// one.
fn read_nodes(
    r: &mut Reader<'_>,
    tree: &mut DataTree,
    order: Order,
    acls: &[AclRef],
    has_index: bool,
) -> Result<(), DecodeError> {
    let n = r.count(NODE_BYTES_MIN)?;
    tree.nodes.reserve(n);
    let mut children: HashMap<&str, Vec<ChildName>, PathHasher> = HashMap::default();
    let mut digest = 0u64;
    let mut previous: Option<&str> = None;
    // Preorder: the path from the root to the previous node, with each one's kind.
    let mut ancestors: Vec<(&str, NodeKind)> = Vec::new();
    for _ in 0..n {
        let at = r.offset();
        let (path, node) = read_node(r, acls, has_index)?;
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
        digest = digest.wrapping_add(tree.node_hash(path, &node));
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

fn read_node<'a>(
    r: &mut Reader<'a>,
    acls: &[AclRef],
    has_index: bool,
) -> Result<(&'a str, Node), DecodeError> {
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
        (3, 1..=TTL_MS_MAX) => NodeKind::ttl(ttl_ms),
        _ => return Err(r.invalid(kind_at, format!("bad kind {tag} with ttl_ms {ttl_ms}"))),
    };
    let acl = if has_index {
        let at = r.offset();
        let index = r.varint()?;
        let found = usize::try_from(index).ok().and_then(|i| acls.get(i));
        *found.ok_or_else(|| r.invalid(at, format!("ACL index {index} not in the table")))?
    } else {
        acls[0]
    };
    Ok((path, Node::new(Bytes::copy_from_slice(data), stat, kind, acl)))
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
