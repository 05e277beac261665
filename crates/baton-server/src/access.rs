//! Access control at the front door: what runs before a request becomes a txn or a
//! read, with the identities the caller has (`auth`).
//!
//! Writes are checked where they are applied (the txn carries its identities, so
//! every replica decides alike); before the txn is built an ACL given by a client
//! is made concrete (`baton_znode::acl::fixup_op`: `auth` entries become the
//! caller's identities, ZooKeeper's fixupACL). Reads are checked here, against the
//! tree they read.

use baton_znode::{
    Acl, Auth, DataTree, Perms, Stat, ZnodeError,
    acl::{check, mask_digests},
};

/// A read of `path` that needs READ: NoNode when it is missing, NoAuth when the
/// caller may not read it.
pub(crate) fn may_read(tree: &DataTree, path: &str, auth: &Auth) -> Result<(), ZnodeError> {
    tree.authorize(path, auth, Perms::READ)
}

/// `exists` needs READ on a node that exists (ZooKeeper 3.9); a missing node is
/// no secret.
pub(crate) fn stat_checked(
    tree: &DataTree,
    path: &str,
    auth: &Auth,
) -> Result<Option<Stat>, ZnodeError> {
    let stat = tree.stat(path)?;
    if stat.is_some() {
        may_read(tree, path, auth)?;
    }
    Ok(stat)
}

/// A node's ACL for a caller with READ or ADMIN on it; without ADMIN, digests are
/// masked (ZooKeeper 3.6+), so a reader cannot take a hash away to guess at.
pub(crate) fn acl_checked(
    tree: &DataTree,
    path: &str,
    auth: &Auth,
) -> Result<(Acl, Stat), ZnodeError> {
    let (acl, stat) = tree.acl(path)?;
    if !check(&acl, auth, Perms::READ.union(Perms::ADMIN)) {
        return Err(ZnodeError::NoAuth { path: path.to_owned(), perm: "READ or ADMIN" });
    }
    if check(&acl, auth, Perms::ADMIN) { Ok((acl, stat)) } else { Ok((mask_digests(&acl), stat)) }
}
