//! The semantics of each txn op (ZooKeeper 3.9's, as `PrepRequestProcessor` and
//! `DataTree` implement them). Every op checks everything before its first
//! mutation; a multi's earlier ops are undone from the journal.

use bytes::Bytes;

use super::DataTree;
use super::node::{Node, NodeKind};
use super::store::Journal;
use crate::limits::{bad, check_mode_ttl, reserved, under_given_path};
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
struct Ctx {
    zxid: u64,
    time_ms: i64,
    session: u64,
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
        let ctx = Ctx { zxid: txn.zxid, time_ms: txn.time_ms, session: txn.session };
        let digest_before = self.digest;
        let mut journal = Journal::default();
        let outcome = self.apply_op(ctx, &txn.op, &mut journal);
        let outcome = match outcome {
            Ok(result) => {
                Ok(Applied { result, changes: journal.changes, quota_warnings: Vec::new() })
            }
            Err(error) => {
                self.rollback(journal);
                self.digest = digest_before;
                Err(error)
            }
        };
        debug_assert!(
            self.nodes.len() > DEBUG_DIGEST_CHECK_NODES_MAX
                || self.digest == self.recompute_digest(),
            "incremental digest diverged after zxid {:#x}",
            txn.zxid
        );
        outcome
    }

    fn apply_op(&mut self, ctx: Ctx, op: &TxnOp, j: &mut Journal) -> Result<OpResult, TxnError> {
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
            TxnOp::SetAcl(op) => return Err(bad(&op.path, "ACLs: not applied yet").into()),
            TxnOp::SetQuota { path, .. } | TxnOp::RemoveQuota { path } => {
                return Err(bad(path, "quotas: not applied yet").into());
            }
        };
        Ok(result)
    }

    /// Ops in order, each seeing the earlier ones' effects; the first failure fails
    /// the whole txn (and `apply_txn` undoes the earlier ops).
    fn multi(&mut self, ctx: Ctx, ops: &[MultiOp], j: &mut Journal) -> Result<OpResult, TxnError> {
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let result = match op {
                MultiOp::Check(op) => self.check(op),
                MultiOp::Create(op) => self.create(ctx, op, j),
                MultiOp::SetData(op) => self.set_data(ctx, op, j),
                MultiOp::Delete(op) => self.delete(ctx, op, j),
            };
            results.push(result.map_err(|error| TxnError { op_index: Some(i), error })?);
        }
        Ok(OpResult::Multi(results))
    }

    fn create(&mut self, ctx: Ctx, op: &CreateOp, j: &mut Journal) -> Result<OpResult, ZnodeError> {
        let sequential = op.mode.is_sequential();
        let probe = create_probe(&op.path, sequential);
        validate_path(&probe).map_err(|e| under_given_path(e, &op.path))?;
        if is_reserved(&probe) {
            return Err(reserved(&op.path));
        }
        check_mode_ttl(op)?;
        if op.mode.is_ephemeral() && (ctx.session == 0 || !self.sessions.contains_key(&ctx.session))
        {
            return Err(ZnodeError::SessionExpired { session: ctx.session });
        }
        let Some(parent_path) = parent(&probe) else {
            return Err(ZnodeError::NodeExists { path: op.path.clone() });
        };
        let no_node = || ZnodeError::NoNode { path: op.path.clone() };
        let parent_node = self.nodes.get(parent_path).ok_or_else(no_node)?;
        if parent_node.kind == NodeKind::Ephemeral {
            return Err(ZnodeError::NoChildrenForEphemerals { path: op.path.clone() });
        }
        let path = if sequential {
            // ZooKeeper's "%010d" of the parent's cversion: a negative (wrapped)
            // cversion gives "-000000001", exactly as Rust's "{:010}" does.
            format!("{}{:010}", op.path, parent_node.stat.cversion)
        } else {
            op.path.clone()
        };
        if self.nodes.contains_key(&path) {
            return Err(ZnodeError::NodeExists { path });
        }
        let (kind, owner) = match op.mode {
            m if m.is_ephemeral() => (NodeKind::Ephemeral, ctx.session),
            m if m.is_container() => (NodeKind::Container, 0),
            m if m.is_ttl() => (NodeKind::Ttl { ttl_ms: op.ttl_ms }, 0),
            _ => (NodeKind::Persistent, 0),
        };
        let stat = Stat {
            czxid: ctx.zxid,
            mzxid: ctx.zxid,
            pzxid: ctx.zxid,
            ctime: ctx.time_ms,
            mtime: ctx.time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            data_length: data_length(&op.data),
            num_children: 0,
        };
        self.insert_node(path.clone(), Node::new(op.data.clone(), stat, kind), j);
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
        Ok(OpResult::Created { path, stat })
    }

    fn delete(&mut self, ctx: Ctx, op: &DeleteOp, j: &mut Journal) -> Result<OpResult, ZnodeError> {
        let node = self.target(&op.path, op.version)?;
        if op.path == "/" {
            return Err(bad("/", "the root cannot be deleted"));
        }
        if !node.children.is_empty() {
            return Err(ZnodeError::NotEmpty { path: op.path.clone() });
        }
        self.remove_leaf(ctx, &op.path, j);
        Ok(OpResult::Deleted)
    }

    fn set_data(
        &mut self,
        ctx: Ctx,
        op: &SetDataOp,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        self.target(&op.path, op.version)?;
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

    fn check(&self, op: &CheckOp) -> Result<OpResult, ZnodeError> {
        self.target(&op.path, op.version)?;
        Ok(OpResult::Checked)
    }

    /// The node a delete, set or check acts on: a valid client-owned path that
    /// exists, at the expected version (-1 = any).
    fn target(&self, path: &str, version: i32) -> Result<&Node, ZnodeError> {
        validate_path(path)?;
        if is_reserved(path) {
            return Err(reserved(path));
        }
        let node = self.nodes.get(path).ok_or_else(|| ZnodeError::NoNode { path: path.into() })?;
        if version != -1 && version != node.stat.version {
            return Err(ZnodeError::BadVersion {
                path: path.to_owned(),
                expected: version,
                actual: node.stat.version,
            });
        }
        Ok(node)
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
        ctx: Ctx,
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
    fn reap(&mut self, ctx: Ctx, paths: &[String], j: &mut Journal) -> OpResult {
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
    fn remove_leaf(&mut self, ctx: Ctx, path: &str, j: &mut Journal) {
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

/// Data longer than u32::MAX cannot pass `Limits`; saturate rather than wrap if a
/// forged txn carries it.
fn data_length(data: &Bytes) -> u32 {
    u32::try_from(data.len()).unwrap_or(u32::MAX)
}
