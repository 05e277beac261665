//! Access control at apply time: the permission checks every client op makes
//! (ZooKeeper 3.9's, in `PrepRequestProcessor`'s order) and `SetAcl`.
//!
//! Checks run against the identities inside the txn, never a session's current
//! state, so every replica gives the same answer.

use super::DataTree;
use super::apply::Ctx;
use super::node::Node;
use super::store::Journal;
use crate::acl::{self, Auth, Perms};
use crate::limits::{check_acl, reserved};
use crate::path::{is_reserved, validate_path};
use crate::{OpResult, SetAclOp, ZnodeError};

impl DataTree {
    /// Whether `auth` has any of `perm` on `node` (at `path`, which a refusal names).
    pub(super) fn permit(
        &self,
        path: &str,
        node: &Node,
        auth: &Auth,
        perm: Perms,
    ) -> Result<(), ZnodeError> {
        if acl::check(self.acls.get(node.acl), auth, perm) {
            Ok(())
        } else {
            Err(ZnodeError::NoAuth { path: path.to_owned(), perm: perm.name() })
        }
    }

    /// `TxnOp::SetAcl`: checked as ZooKeeper does (the ACL, the node, ADMIN on it,
    /// then the ACL version). Only the ACL and `aversion` change: not `mzxid`, not
    /// `version`, and no watch fires (ZooKeeper's `setACL` triggers none).
    pub(super) fn set_acl(
        &mut self,
        ctx: Ctx<'_>,
        op: &SetAclOp,
        j: &mut Journal,
    ) -> Result<OpResult, ZnodeError> {
        validate_path(&op.path)?;
        if is_reserved(&op.path) {
            return Err(reserved(&op.path));
        }
        check_acl(&op.path, &op.acl)?;
        let node = self.nodes.get(op.path.as_str());
        let node = node.ok_or_else(|| ZnodeError::NoNode { path: op.path.clone() })?;
        self.permit(&op.path, node, ctx.auth, Perms::ADMIN)?;
        let actual = node.stat.aversion;
        if op.version != -1 && op.version != actual {
            let path = op.path.clone();
            return Err(ZnodeError::BadVersion { path, expected: op.version, actual });
        }
        let acl = self.acls.intern(&op.acl);
        // Java int arithmetic, as ZooKeeper: the ACL version wraps.
        self.update_acl(&op.path, acl, |s| s.aversion = s.aversion.wrapping_add(1), j);
        let stat = self.nodes[op.path.as_str()].stat;
        Ok(OpResult::AclSet { stat })
    }
}
