//! The semantics of each txn op (ZooKeeper 3.9's, as `PrepRequestProcessor` and
//! `DataTree` implement them, permission checks included). Every op checks
//! everything before its first mutation; a multi's earlier ops are undone from the
//! journal.

use crate::CONFIG_PATH;
use bytes::Bytes;

use super::DataTree;
use super::node::{Node, NodeKind};
use super::store::Journal;
use crate::acl::{Auth, Perms};
use crate::limits::{bad, check_acl, check_mode_ttl, reserved, under_given_path};
use crate::path::{create_probe, is_reserved, parent, validate_path};
use crate::{
    Applied, ChangeKind, CheckOp, CreateOp, DeleteOp, MultiOp, OpResult, SetDataOp, Stat, Txn,
    TxnError, TxnOp, ZnodeError,
};

/// Trees up to this size check `digest == recompute_digest()` after every apply in
/// debug builds; bigger ones would make debug tests quadratic.
const DEBUG_DIGEST_CHECK_NODES_MAX: usize = 256;

/// What an op needs from its txn.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) zxid: u64,
    pub(super) time_ms: i64,
    pub(super) session: u64,
    /// The identities client ops are checked with.
    pub(super) auth: &'a Auth,
}

impl DataTree {
    pub(super) fn apply_txn(&mut self, txn: &Txn) -> Result<Applied, TxnError> {
        assert!(
            txn.zxid > self.last_zxid,
            "txn zxid {:#x} not after last applied zxid {:#x}",
            txn.zxid,
            self.last_zxid
        );
        self.last_zxid = txn.zxid;
        let ctx =
            Ctx { zxid: txn.zxid, time_ms: txn.time_ms, session: txn.session, auth: &txn.auth };
        let digest_before = self.digest;
        let mut journal = Journal::default();
        let outcome = self.apply_op(ctx, &txn.op, &mut journal);
        let outcome = match outcome {
            Ok(result) => Ok(Applied {
                result,
                changes: journal.changes,
                quota_warnings: journal.quota_warnings,
            }),
            Err(error) => {
                self.rollback(journal);
                self.digest = digest_before;
                Err(error)
            }
        };
        // Only now may ACL lists the txn left unreferenced be freed: a rollback
        // relinks nodes with the references they had.
        self.acls.collect();
        debug_assert!(
            self.nodes.len() > DEBUG_DIGEST_CHECK_NODES_MAX
                || self.digest == self.recompute_digest(),
            "incremental digest diverged after zxid {:#x}",
            txn.zxid
        );
        outcome
    }

    fn apply_op(
        &mut self,
        ctx: Ctx<'_>,
        op: &TxnOp,
        j: &mut Journal,
    ) -> Result<OpResult, TxnError> {
        // A session's ops run only while it is open, as ZooKeeper's leader checks
        // each request's session before it becomes a txn. A write still on its way
        // when its session closed (its client was told the session expired) is
        // ordered after the close: it must fail, not take effect late. Txns
        // without a session (unary calls, the server's own) are not concerned;
        // opening and closing check their session themselves.
        let session_op = matches!(op, TxnOp::CreateSession { .. } | TxnOp::CloseSession { .. });
        if ctx.session != 0 && !session_op && !self.sessions.contains_key(&ctx.session) {
            return Err(ZnodeError::SessionExpired { session: ctx.session }.into());
        }
        let result = match op {
            TxnOp::Create(op) => self.create(ctx, op, j)?,
            TxnOp::Delete(op) => self.delete(ctx, op, j)?,
            TxnOp::SetData(op) => self.set_data(ctx, op, j)?,
            TxnOp::Multi(ops) => self.multi(ctx, ops, j)?,
            TxnOp::CreateSession { session, timeout_ms, password } => {
                self.create_session(*session, *timeout_ms, *password, j)?
            }
            TxnOp::CloseSession { session } => self.close_session_op(ctx, *session, j)?,
            TxnOp::Reap { paths } => self.reap(ctx, paths, j),
            TxnOp::SetAcl(op) => self.set_acl(ctx, op, j)?,
            TxnOp::SetQuota { path, limits } => self.set_quota(ctx, path, limits, j)?,
            TxnOp::RemoveQuota { path } => self.remove_quota(ctx, path, j)?,
            TxnOp::SetConfig { data } => self.set_config(ctx, data, j),
            TxnOp::Reconfig(_) => {
                let reason = "a membership change is decided by the leader, never applied".into();
                return Err(ZnodeError::BadArguments { path: CONFIG_PATH.into(), reason }.into());
            }
            TxnOp::ConfigRefused { reason } => {
                let reason = reason.clone();
                return Err(ZnodeError::BadArguments { path: CONFIG_PATH.into(), reason }.into());
            }
        };
        Ok(result)
    }

    /// Ops in order, each seeing the earlier ones' effects; the first failure fails
    /// the whole txn (and `apply_txn` undoes the earlier ops).
    fn multi(
        &mut self,
        ctx: Ctx<'_>,
        ops: &[MultiOp],
        j: &mut Journal,
    ) -> Result<OpResult, TxnError> {
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let result = match op {
                MultiOp::Check(op) => self.check(ctx, op),
                MultiOp::Create(op) => self.create(ctx, op, j),
                MultiOp::SetData(op) => self.set_data(ctx, op, j),
                MultiOp::Delete(op) => self.delete(ctx, op, j),
            };
            results.push(result.map_err(|error| TxnError { op_index: Some(i), error })?);
        }
        Ok(OpResult::Multi(results))
    }

    fn create(
        &mut self,
        ctx: Ctx<'_>,
        op: &CreateOp,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        let sequential = op.mode.is_sequential();
        let probe = create_probe(&op.path, sequential);
        validate_path(&probe).map_err(|e| under_given_path(e, &op.path))?;
        if is_reserved(&probe) {
            return Err(reserved(&op.path));
        }
        check_mode_ttl(op)?;
        // The log is input from outside: the ACL is checked again, not trusted.
        check_acl(&op.path, &op.acl)?;
        if op.mode.is_ephemeral() && (ctx.session == 0 || !self.sessions.contains_key(&ctx.session))
        {
            return Err(ZnodeError::SessionExpired { session: ctx.session });
        }
        let Some(parent_path) = parent(&probe) else {
            return Err(ZnodeError::NodeExists { path: op.path.clone() });
        };
        let no_node = || ZnodeError::NoNode { path: op.path.clone() };
        let parent_node = self.nodes.get(parent_path).ok_or_else(no_node)?;
        self.permit(parent_path, parent_node, ctx.auth, Perms::CREATE)?;
        let path = if sequential {
            // ZooKeeper's "%010d" of the parent's cversion: a negative (wrapped)
            // cversion gives "-000000001", exactly as Rust's "{:010}" does.
            format!("{}{:010}", op.path, parent_node.stat.cversion)
        } else {
            op.path.clone()
        };
        self.check_quota(&path, 1, op.data.len() as i64, j)?;
        if self.nodes.contains_key(&path) {
            return Err(ZnodeError::NodeExists { path });
        }
        if parent_node.kind == NodeKind::Ephemeral {
            return Err(ZnodeError::NoChildrenForEphemerals { path: op.path.clone() });
        }
        let (kind, owner) = match op.mode {
            m if m.is_ephemeral() => (NodeKind::Ephemeral, ctx.session),
            m if m.is_container() => (NodeKind::Container, 0),
            m if m.is_ttl() => (NodeKind::ttl(op.ttl_ms), 0),
            _ => (NodeKind::Persistent, 0),
        };
        let stat = created_stat(ctx, owner, &op.data);
        let acl = self.acls.intern(&op.acl);
        self.add_child(ctx, path.clone(), Node::new(op.data.clone(), stat, kind, acl), j);
        Ok(OpResult::Created { path, stat })
    }

    /// Inserts a node under its existing parent and records it there, as a create
    /// does.
    pub(super) fn add_child(&mut self, ctx: Ctx<'_>, path: String, node: Node, j: &mut Journal) {
        // A parent is a prefix of its child's path: slicing spares an allocation.
        let parent_len = parent(&path).unwrap_or_else(|| panic!("add_child of the root")).len();
        self.insert_node(path.clone(), node, j);
        let parent_path = &path[..parent_len];
        self.update_node(
            parent_path,
            None,
            |s| {
                s.cversion = s.cversion.wrapping_add(1);
                s.pzxid = ctx.zxid;
                s.num_children += 1;
            },
            j,
        );
        j.change(&path, ChangeKind::NodeCreated);
        j.change(parent_path, ChangeKind::NodeChildrenChanged);
    }

    fn delete(
        &mut self,
        ctx: Ctx<'_>,
        op: &DeleteOp,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        let node = self.target(&op.path)?;
        let Some(parent_path) = parent(&op.path) else {
            return Err(bad("/", "the root cannot be deleted"));
        };
        let parent_node = &self.nodes[parent_path];
        self.permit(parent_path, parent_node, ctx.auth, Perms::DELETE)?;
        check_version(&op.path, op.version, node.stat.version)?;
        if !node.children.is_empty() {
            return Err(ZnodeError::NotEmpty { path: op.path.clone() });
        }
        self.remove_leaf(ctx, &op.path, j);
        Ok(OpResult::Deleted)
    }

    fn set_data(
        &mut self,
        ctx: Ctx<'_>,
        op: &SetDataOp,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        let node = self.target(&op.path)?;
        self.permit(&op.path, node, ctx.auth, Perms::WRITE)?;
        let grows = op.data.len() as i64 - node.data.len() as i64;
        self.check_quota(&op.path, 0, grows, j)?;
        check_version(&op.path, op.version, node.stat.version)?;
        let update = |s: &mut Stat| {
            // Java int arithmetic, as ZooKeeper: the version wraps.
            s.version = s.version.wrapping_add(1);
            s.mzxid = ctx.zxid;
            s.mtime = ctx.time_ms;
            s.data_length = data_length(&op.data);
        };
        self.update_node(&op.path, Some(op.data.clone()), update, j);
        j.change(&op.path, ChangeKind::NodeDataChanged);
        let stat = self.nodes.get(op.path.as_str()).map(|n| n.stat).unwrap_or_default();
        Ok(OpResult::SetData { stat })
    }

    fn check(&self, ctx: Ctx<'_>, op: &CheckOp) -> Result<OpResult, ZnodeError> {
        let node = self.target(&op.path)?;
        self.permit(&op.path, node, ctx.auth, Perms::READ)?;
        check_version(&op.path, op.version, node.stat.version)?;
        Ok(OpResult::Checked)
    }

    /// The node a delete, set or check acts on: a valid client-owned path that
    /// exists.
    fn target(&self, path: &str) -> Result<&Node, ZnodeError> {
        validate_path(path)?;
        if is_reserved(path) {
            return Err(reserved(path));
        }
        self.nodes.get(path).map(|n| &**n).ok_or_else(|| ZnodeError::NoNode { path: path.into() })
    }

    fn create_session(
        &mut self,
        session: u64,
        timeout_ms: u32,
        password: u64,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        if session == 0 {
            return Err(bad("", "session id 0 means no session"));
        }
        if timeout_ms == 0 {
            return Err(bad("", "session timeout must be > 0"));
        }
        if self.sessions.contains_key(&session) {
            return Err(bad("", format!("session 0x{session:016x} already open")));
        }
        self.open_session(session, timeout_ms, password, j);
        Ok(OpResult::SessionCreated)
    }

    /// Deletes the session's ephemerals in path order, then forgets the session.
    fn close_session_op(
        &mut self,
        ctx: Ctx<'_>,
        session: u64,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        let Some(open) = self.sessions.get(&session) else {
            return Err(ZnodeError::SessionExpired { session });
        };
        let ephemerals: Vec<String> = open.ephemerals.iter().cloned().collect();
        for path in &ephemerals {
            self.remove_leaf(ctx, path, j);
        }
        self.close_session(session, j);
        Ok(OpResult::SessionClosed)
    }

    /// Deletes each listed node that is still eligible at the txn's time; the
    /// others are skipped (they changed since the server chose them).
    fn reap(&mut self, ctx: Ctx<'_>, paths: &[String], j: &mut Journal) -> OpResult {
        let mut reaped = Vec::new();
        for path in paths {
            // The reserved subtree is never reaped, even if a forged txn lists it.
            let eligible = !is_reserved(path)
                && self.nodes.get(path.as_str()).is_some_and(|n| n.is_reapable(ctx.time_ms));
            if eligible {
                self.remove_leaf(ctx, path, j);
                reaped.push(path.clone());
            }
        }
        OpResult::Reaped { paths: reaped }
    }

    /// Deletes a childless node and records it in its parent, as a delete does.
    pub(super) fn remove_leaf(&mut self, ctx: Ctx<'_>, path: &str, j: &mut Journal) {
        let parent_path = parent(path).unwrap_or_else(|| panic!("remove_leaf of the root"));
        self.remove_node(path, j);
        self.update_node(
            parent_path,
            None,
            |s| {
                s.cversion = s.cversion.wrapping_add(1);
                s.pzxid = ctx.zxid;
                s.num_children -= 1;
            },
            j,
        );
        j.change(path, ChangeKind::NodeDeleted);
        j.change(parent_path, ChangeKind::NodeChildrenChanged);
    }
}

/// The expected version (-1 = any) is the actual one.
fn check_version(path: &str, expected: i32, actual: i32) -> Result<(), ZnodeError> {
    if expected != -1 && expected != actual {
        return Err(ZnodeError::BadVersion { path: path.to_owned(), expected, actual });
    }
    Ok(())
}

/// The Stat of a node the txn creates.
pub(super) fn created_stat(ctx: Ctx<'_>, owner: u64, data: &Bytes) -> Stat {
    Stat {
        czxid: ctx.zxid,
        mzxid: ctx.zxid,
        pzxid: ctx.zxid,
        ctime: ctx.time_ms,
        mtime: ctx.time_ms,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: owner,
        data_length: data_length(data),
        num_children: 0,
    }
}

/// Data longer than u32::MAX cannot pass `Limits`; saturate rather than wrap if a
/// forged txn carries it.
fn data_length(data: &Bytes) -> u32 {
    u32::try_from(data.len()).unwrap_or(u32::MAX)
}
