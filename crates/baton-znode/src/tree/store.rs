//! The mutation primitives `apply` is built from. Each keeps the indexes and the
//! digest up to date and records its inverse in a [`Journal`], so a failed txn (a
//! multi whose third op fails) is undone by replaying the journal backwards. Only
//! what was touched is recorded: a rollback never copies the tree.
//!
//! `link` and `unlink` keep the ACL reference counts and the quota usage, so the
//! inverse of an insert or a removal restores them too; only a changed ACL
//! reference and a changed quota entry need undo records of their own.

use bytes::Bytes;

use super::acl_cache::AclRef;
use super::node::{ChildName, Node, NodeKind, session_hash};
use super::quota::Quota;
use super::{DataTree, Session};
use crate::path::{basename, parent};
use crate::{Change, ChangeKind, QuotaWarning, Stat};

/// The inverse of one primitive.
#[derive(Debug)]
enum Undo {
    Inserted(String),
    Removed(String, Node),
    Updated { path: String, data: Option<(Bytes, u64)>, stat: Stat },
    AclChanged { path: String, acl: AclRef, stat: Stat },
    QuotaChanged { path: String, quota: Option<Quota> },
    SessionOpened(u64),
    SessionClosed(u64, u32, u64),
}

/// What one txn did so far: the undo log, the changes for watches and the soft
/// quota limits it exceeded.
#[derive(Debug, Default)]
pub(super) struct Journal {
    undo: Vec<Undo>,
    pub(super) changes: Vec<Change>,
    pub(super) quota_warnings: Vec<QuotaWarning>,
}

impl Journal {
    pub(super) fn change(&mut self, path: &str, kind: ChangeKind) {
        self.changes.push(Change { path: path.to_owned(), kind });
    }
}

impl DataTree {
    /// Adds a node whose parent exists.
    pub(super) fn insert_node(&mut self, path: String, node: Node, journal: &mut Journal) {
        self.touch(&path);
        self.digest = self.digest.wrapping_add(self.node_hash(&path, &node));
        self.link(path.clone(), node);
        journal.undo.push(Undo::Inserted(path));
    }

    /// Removes a childless node.
    pub(super) fn remove_node(&mut self, path: &str, journal: &mut Journal) {
        self.touch(path);
        let node = self.unlink(path);
        if let Some(capture) = self.capture.as_deref_mut() {
            capture.removed(path);
        }
        // The node's list is not freed before the txn ends, so its hash is there.
        self.digest = self.digest.wrapping_sub(self.node_hash(path, &node));
        journal.undo.push(Undo::Removed(path.to_owned(), node));
    }

    /// Changes an existing node's Stat, and its data if `data` is given.
    pub(super) fn update_node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        update: impl FnOnce(&mut Stat),
        journal: &mut Journal,
    ) {
        self.touch(path);
        let node = self.nodes.get_mut(path);
        let node = node.unwrap_or_else(|| panic!("update of missing node {path}"));
        let acl_hash = self.acls.hash(node.acl);
        let old_hash = node.hash(path, acl_hash);
        let old_data = data.as_ref().map(|_| (node.data.clone(), node.data_hash));
        journal.undo.push(Undo::Updated { path: path.to_owned(), data: old_data, stat: node.stat });
        let mut lengths = None;
        if let Some(data) = data {
            lengths = Some((node.data.len() as u64, data.len() as u64));
            node.set_data(data);
        }
        update(&mut node.stat);
        let new_hash = node.hash(path, acl_hash);
        self.digest = self.digest.wrapping_sub(old_hash).wrapping_add(new_hash);
        if let Some((old_len, new_len)) = lengths {
            self.data_resized(path, old_len, new_len);
        }
    }

    /// Gives an existing node another ACL and changes its Stat (the aversion).
    pub(super) fn update_acl(
        &mut self,
        path: &str,
        acl: AclRef,
        update: impl FnOnce(&mut Stat),
        journal: &mut Journal,
    ) {
        self.touch(path);
        let node = self.nodes.get_mut(path);
        let node = node.unwrap_or_else(|| panic!("ACL update of missing node {path}"));
        let old_hash = node.hash(path, self.acls.hash(node.acl));
        journal.undo.push(Undo::AclChanged {
            path: path.to_owned(),
            acl: node.acl,
            stat: node.stat,
        });
        // Retain first: the old and the new list may be the same.
        self.acls.retain(acl);
        self.acls.release(node.acl);
        node.acl = acl;
        update(&mut node.stat);
        let new_hash = node.hash(path, self.acls.hash(acl));
        self.digest = self.digest.wrapping_sub(old_hash).wrapping_add(new_hash);
    }

    /// Before a node changes (or is created): a snapshot being written records
    /// what it was.
    fn touch(&mut self, path: &str) {
        if let Some(capture) = self.capture.as_deref_mut() {
            capture.touch(path, self.nodes.get(path).map(|node| &**node));
        }
    }

    /// Sets (Some) or removes (None) the quota entry on `path`.
    pub(super) fn update_quota(&mut self, path: &str, quota: Option<Quota>, journal: &mut Journal) {
        let previous = match quota {
            Some(quota) => self.quotas.insert(path.to_owned(), quota),
            None => self.quotas.remove(path),
        };
        journal.undo.push(Undo::QuotaChanged { path: path.to_owned(), quota: previous });
    }

    /// Keeps `data_bytes` and the covering quota's bytes when a node's data changes.
    fn data_resized(&mut self, path: &str, old_len: u64, new_len: u64) {
        self.data_bytes = self.data_bytes - old_len + new_len;
        if let Some(usage) = self.quota_usage_mut(path) {
            usage.bytes = usage.bytes - old_len + new_len;
        }
    }

    pub(super) fn open_session(
        &mut self,
        id: u64,
        timeout_ms: u32,
        password: u64,
        journal: &mut Journal,
    ) {
        let session = Session { timeout_ms, password, ephemerals: Default::default() };
        assert!(self.sessions.insert(id, session).is_none(), "session {id:#x} opened twice");
        self.digest = self.digest.wrapping_add(session_hash(id, timeout_ms, password));
        journal.undo.push(Undo::SessionOpened(id));
    }

    /// Forgets a session that owns no ephemerals any more.
    pub(super) fn close_session(&mut self, id: u64, journal: &mut Journal) {
        let session = self.sessions.remove(&id);
        let session = session.unwrap_or_else(|| panic!("close of unknown session {id:#x}"));
        assert!(session.ephemerals.is_empty(), "session {id:#x} closed with ephemerals");
        self.digest =
            self.digest.wrapping_sub(session_hash(id, session.timeout_ms, session.password));
        journal.undo.push(Undo::SessionClosed(id, session.timeout_ms, session.password));
    }

    /// Undoes a journal, newest first. The caller restores the digest it saved.
    pub(super) fn rollback(&mut self, journal: Journal) {
        for undo in journal.undo.into_iter().rev() {
            match undo {
                Undo::Inserted(path) => {
                    self.unlink(&path);
                }
                Undo::Removed(path, node) => self.link(path, node),
                Undo::Updated { path, data, stat } => {
                    let node = self.nodes.get_mut(&path);
                    let node = node.unwrap_or_else(|| panic!("rollback of missing node {path}"));
                    node.stat = stat;
                    if let Some((data, data_hash)) = data {
                        let lengths = (node.data.len() as u64, data.len() as u64);
                        node.data = data;
                        node.data_hash = data_hash;
                        self.data_resized(&path, lengths.0, lengths.1);
                    }
                }
                Undo::AclChanged { path, acl, stat } => {
                    let node = self.nodes.get_mut(&path);
                    let node = node.unwrap_or_else(|| panic!("rollback of missing node {path}"));
                    self.acls.retain(acl);
                    self.acls.release(node.acl);
                    node.acl = acl;
                    node.stat = stat;
                }
                Undo::QuotaChanged { path, quota: Some(quota) } => {
                    self.quotas.insert(path, quota);
                }
                Undo::QuotaChanged { path, quota: None } => {
                    self.quotas.remove(&path);
                }
                Undo::SessionOpened(id) => {
                    self.sessions.remove(&id);
                }
                Undo::SessionClosed(id, timeout_ms, password) => {
                    let session = Session { timeout_ms, password, ephemerals: Default::default() };
                    self.sessions.insert(id, session);
                }
            }
        }
    }

    /// Puts a node in the maps and indexes; no digest, no journal. Its parent must
    /// exist (except for the root) and its owner, if ephemeral, be open.
    pub(super) fn link(&mut self, path: String, node: Node) {
        if let Some(parent_path) = parent(&path) {
            let parent = self.nodes.get_mut(parent_path);
            let parent = parent.unwrap_or_else(|| panic!("parent of {path} missing"));
            assert!(parent.kind != NodeKind::Ephemeral, "child of ephemeral {parent_path}");
            parent.children.insert(ChildName::new(basename(&path)));
        }
        self.link_unlisted(path, node);
    }

    /// `link` but for the parent's child list, which the caller fills in (snapshot
    /// decoding builds each list at once from its sorted names).
    pub(super) fn link_unlisted(&mut self, path: String, node: Node) {
        if node.kind == NodeKind::Ephemeral {
            let owner = node.stat.ephemeral_owner;
            let session = self.sessions.get_mut(&owner);
            let session = session.unwrap_or_else(|| panic!("owner {owner:#x} of {path} not open"));
            session.ephemerals.insert(path.clone());
        }
        if node.kind.is_reap_candidate() {
            self.reap_candidates.insert(path.clone());
        }
        self.data_bytes += node.data.len() as u64;
        self.acls.retain(node.acl);
        if let Some(usage) = self.quota_usage_mut(&path) {
            usage.count += 1;
            usage.bytes += node.data.len() as u64;
        }
        let previous = self.nodes.insert(path, Box::new(node));
        assert!(previous.is_none(), "node inserted twice");
    }

    /// Takes a childless node out of the maps and indexes; no digest, no journal.
    fn unlink(&mut self, path: &str) -> Node {
        let node = *self.nodes.remove(path).unwrap_or_else(|| panic!("removal of missing {path}"));
        assert!(node.children.is_empty(), "removal of {path}, which has children");
        if let Some(parent) = parent(path).and_then(|p| self.nodes.get_mut(p)) {
            parent.children.remove(basename(path));
        }
        let owner = (node.kind == NodeKind::Ephemeral).then_some(node.stat.ephemeral_owner);
        if let Some(session) = owner.and_then(|owner| self.sessions.get_mut(&owner)) {
            session.ephemerals.remove(path);
        }
        if node.kind.is_reap_candidate() {
            self.reap_candidates.remove(path);
        }
        self.data_bytes -= node.data.len() as u64;
        self.acls.release(node.acl);
        if let Some(usage) = self.quota_usage_mut(path) {
            usage.count -= 1;
            usage.bytes -= node.data.len() as u64;
        }
        node
    }
}
