//! Limits and the stateless checks done on a client op before it is proposed.

use crate::acl::{AclEntry, validate_entry};
use crate::path::{create_probe, is_reserved, validate_path};
use crate::{CreateMode, CreateOp, MultiOp, TxnError, TxnOp, ZnodeError};

/// Longest TTL, in milliseconds: ZooKeeper keeps a TTL in 40 bits of
/// `ephemeralOwner`, so this is its maximum too.
pub const TTL_MS_MAX: i64 = 0xFF_FFFF_FFFF;

/// Most entries in one ACL (not configuration: `apply` checks it too).
pub const ACL_ENTRIES_MAX: usize = 256;

/// Limits checked before a txn is proposed. They are configuration, so they are not
/// re-checked by `apply` (replicas must not disagree because their configs differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest data of one znode (ZooKeeper's jute.maxbuffer is 1 MiB).
    pub data_bytes_max: usize,
    /// Most ops in one multi.
    pub multi_ops_max: usize,
    /// Longest path, in bytes.
    pub path_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { data_bytes_max: 1024 * 1024, multi_ops_max: 1024, path_bytes_max: 4096 }
    }
}

/// Stateless validation of a client op: paths, data sizes, TTL and mode agreement,
/// multi size. Errors name the path (and the op index in a multi).
///
/// An empty multi is valid (ZooKeeper answers it with an empty result). Session and
/// reap ops are server-made; they get only sanity checks.
///
/// `DataTree::apply` repeats the checks that do not depend on configuration (path
/// syntax, the reserved `/baton` subtree, mode/TTL agreement, session ids), so a
/// forged or replayed txn cannot get past them; it does not repeat the limits.
pub fn validate_op(op: &TxnOp, limits: &Limits) -> Result<(), TxnError> {
    match op {
        TxnOp::Create(create) => check_create(create, limits)?,
        TxnOp::Delete(delete) => check_target(&delete.path, delete.version, limits)?,
        TxnOp::SetData(set) => {
            check_target(&set.path, set.version, limits)?;
            check_data(&set.path, set.data.len(), limits)?;
        }
        TxnOp::Multi(ops) => check_multi(ops, limits)?,
        TxnOp::CreateSession { session, timeout_ms, .. } => {
            if *session == 0 {
                return Err(bad("", "session id 0 means no session").into());
            }
            if *timeout_ms == 0 {
                return Err(bad("", "session timeout must be > 0").into());
            }
        }
        TxnOp::CloseSession { session } => {
            if *session == 0 {
                return Err(bad("", "session id 0 means no session").into());
            }
        }
        TxnOp::Reap { paths } => {
            for path in paths {
                check_path(path, limits)?;
            }
        }
        TxnOp::SetAcl(op) => {
            check_target(&op.path, op.version, limits)?;
            check_acl(&op.path, &op.acl)?;
        }
        TxnOp::SetQuota { path, .. } | TxnOp::RemoveQuota { path } => {
            check_target(path, -1, limits)?;
        }
        TxnOp::Reconfig(op) => check_reconfig(op)?,
        TxnOp::SetConfig { data } => check_data(crate::CONFIG_PATH, data.len(), limits)?,
        TxnOp::ConfigRefused { .. } => {}
    }
    Ok(())
}

/// A membership change names valid ids and addresses (the leader checks the rest
/// against the configuration in force).
fn check_reconfig(op: &crate::ReconfigOp) -> Result<(), TxnError> {
    use crate::ConfigChange;
    let members: &[crate::ConfigMember] = match &op.change {
        ConfigChange::Add(member) => std::slice::from_ref(member),
        ConfigChange::Members(members) => members,
        ConfigChange::Remove { id } | ConfigChange::SetRole { id, .. } => {
            if *id == 0 {
                return Err(
                    bad(crate::CONFIG_PATH, "server id 0 is not valid (ids are > 0)").into()
                );
            }
            return Ok(());
        }
    };
    for member in members {
        if member.id == 0 {
            return Err(bad(crate::CONFIG_PATH, "server id 0 is not valid (ids are > 0)").into());
        }
        let (host, port) = member.addr.rsplit_once(':').unwrap_or(("", ""));
        if host.is_empty() || port.parse::<u16>().is_err() || member.addr.len() > 1_024 {
            let reason = format!("server {}: `{}` is not HOST:PORT", member.id, member.addr);
            return Err(bad(crate::CONFIG_PATH, reason).into());
        }
    }
    Ok(())
}

fn check_multi(ops: &[MultiOp], limits: &Limits) -> Result<(), TxnError> {
    if ops.len() > limits.multi_ops_max {
        let path = ops.first().map(multi_op_path).unwrap_or_default();
        return Err(bad(
            path,
            format!("multi has {} ops, limit {}", ops.len(), limits.multi_ops_max),
        )
        .into());
    }
    for (i, op) in ops.iter().enumerate() {
        let checked = match op {
            MultiOp::Check(check) => check_target(&check.path, check.version, limits),
            MultiOp::Create(create) => check_create(create, limits),
            MultiOp::Delete(delete) => check_target(&delete.path, delete.version, limits),
            MultiOp::SetData(set) => check_target(&set.path, set.version, limits)
                .and_then(|()| check_data(&set.path, set.data.len(), limits)),
        };
        checked.map_err(|error| TxnError { op_index: Some(i), error })?;
    }
    Ok(())
}

fn multi_op_path(op: &MultiOp) -> &str {
    match op {
        MultiOp::Check(op) => &op.path,
        MultiOp::Create(op) => &op.path,
        MultiOp::SetData(op) => &op.path,
        MultiOp::Delete(op) => &op.path,
    }
}

fn check_create(op: &CreateOp, limits: &Limits) -> Result<(), ZnodeError> {
    let probe = create_probe(&op.path, op.mode.is_sequential());
    check_path(&probe, limits).map_err(|e| under_given_path(e, &op.path))?;
    if is_reserved(&probe) {
        return Err(reserved(&op.path));
    }
    check_data(&op.path, op.data.len(), limits)?;
    check_acl(&op.path, &op.acl)?;
    check_mode_ttl(op)
}

/// A concrete ACL: not empty, not too long, every entry valid (no `auth` left).
/// Not configuration, so `apply` checks it too.
pub(crate) fn check_acl(path: &str, acl: &[AclEntry]) -> Result<(), ZnodeError> {
    let invalid = |reason: String| ZnodeError::InvalidAcl { path: path.to_owned(), reason };
    if acl.is_empty() {
        return Err(invalid("the ACL is empty".into()));
    }
    if acl.len() > ACL_ENTRIES_MAX {
        return Err(invalid(format!("{} entries, limit {ACL_ENTRIES_MAX}", acl.len())));
    }
    for entry in acl {
        validate_entry(entry).map_err(invalid)?;
    }
    Ok(())
}

/// Mode and TTL agree: a TTL in 1..=[`TTL_MS_MAX`] for the TTL modes, 0 otherwise.
/// Not configuration, so `apply` checks it too.
pub(crate) fn check_mode_ttl(op: &CreateOp) -> Result<(), ZnodeError> {
    if op.mode.is_ttl() {
        if op.ttl_ms <= 0 || op.ttl_ms > TTL_MS_MAX {
            return Err(bad(&op.path, format!("ttl_ms must be in 1..={TTL_MS_MAX}")));
        }
    } else if op.ttl_ms != 0 {
        let mode: CreateMode = op.mode;
        return Err(bad(&op.path, format!("ttl_ms must be 0 for mode {mode:?}")));
    }
    Ok(())
}

/// A delete, set or check target: a valid, client-owned path and a version ≥ -1.
fn check_target(path: &str, version: i32, limits: &Limits) -> Result<(), ZnodeError> {
    check_path(path, limits)?;
    if is_reserved(path) {
        return Err(reserved(path));
    }
    if version < -1 {
        return Err(bad(path, format!("version {version} < -1")));
    }
    Ok(())
}

fn check_path(path: &str, limits: &Limits) -> Result<(), ZnodeError> {
    validate_path(path)?;
    if path.len() > limits.path_bytes_max {
        return Err(ZnodeError::InvalidPath {
            path: path.to_owned(),
            reason: "path longer than path_bytes_max",
        });
    }
    Ok(())
}

fn check_data(path: &str, len: usize, limits: &Limits) -> Result<(), ZnodeError> {
    if len > limits.data_bytes_max {
        return Err(ZnodeError::DataTooLarge {
            path: path.to_owned(),
            len,
            max: limits.data_bytes_max,
        });
    }
    Ok(())
}

/// Reports an error about the probe path (`/a/0`) under the path the client gave.
pub(crate) fn under_given_path(error: ZnodeError, path: &str) -> ZnodeError {
    match error {
        ZnodeError::InvalidPath { reason, .. } => {
            ZnodeError::InvalidPath { path: path.to_owned(), reason }
        }
        other => other,
    }
}

pub(crate) fn reserved(path: &str) -> ZnodeError {
    bad(path, "paths under /baton belong to the server")
}

pub(crate) fn bad(path: &str, reason: impl Into<String>) -> ZnodeError {
    ZnodeError::BadArguments { path: path.to_owned(), reason: reason.into() }
}

#[cfg(test)]
mod tests;
