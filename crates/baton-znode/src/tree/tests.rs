//! Unit tests of the tree, by area. Every error case checks both the error and
//! that the tree (digest included) is exactly as before, but for `last_zxid`.

mod acl;
mod create;
mod multi;
mod quota;
mod reap;
mod sessions;
mod snapshot;
mod update;

use bytes::Bytes;

use super::DataTree;
use crate::acl::Auth;
use crate::{
    Applied, ChangeKind, CheckOp, CreateMode, CreateOp, DeleteOp, MultiOp, OpResult, SetDataOp,
    Txn, TxnError, TxnOp, ZnodeError,
};

/// Time of the txn with this zxid: distinct per txn, so Stat times are checkable.
fn time_of(zxid: u64) -> i64 {
    1_000 * zxid as i64
}

fn apply_with(
    tree: &mut DataTree,
    session: u64,
    auth: &Auth,
    op: TxnOp,
) -> Result<Applied, TxnError> {
    let zxid = tree.last_zxid() + 1;
    tree.apply(&Txn { auth: auth.clone(), zxid, time_ms: time_of(zxid), session, op })
}

fn ok(tree: &mut DataTree, op: TxnOp) -> Applied {
    ok_as(tree, 0, op)
}

fn ok_as(tree: &mut DataTree, session: u64, op: TxnOp) -> Applied {
    ok_with(tree, session, &Auth::none(), op)
}

fn ok_with(tree: &mut DataTree, session: u64, auth: &Auth, op: TxnOp) -> Applied {
    let applied = apply_with(tree, session, auth, op.clone());
    let applied = applied.unwrap_or_else(|e| panic!("{op:?} failed: {e}"));
    assert_eq!(tree.digest(), tree.recompute_digest());
    assert_eq!(tree.data_bytes(), tree.nodes.values().map(|n| n.data.len() as u64).sum::<u64>());
    applied
}

/// Applies an op that must fail, and checks it changed nothing but `last_zxid`.
fn fails(tree: &mut DataTree, op: TxnOp) -> TxnError {
    fails_as(tree, 0, op)
}

fn fails_as(tree: &mut DataTree, session: u64, op: TxnOp) -> TxnError {
    fails_with(tree, session, &Auth::none(), op)
}

/// Also checks the refusal left every node's ACL, the ACL cache and the quotas
/// as they were (`DataTree`'s equality compares them).
fn fails_with(tree: &mut DataTree, session: u64, auth: &Auth, op: TxnOp) -> TxnError {
    let before = tree.clone();
    let error = apply_with(tree, session, auth, op.clone()).expect_err("op should fail");
    assert_eq!(tree.last_zxid(), before.last_zxid() + 1, "a failed txn still advances the zxid");
    let mut expected = before;
    expected.last_zxid = tree.last_zxid();
    assert!(*tree == expected, "failed {op:?} changed the tree");
    assert_eq!(tree.digest(), expected.digest());
    assert_eq!(tree.digest(), tree.recompute_digest());
    assert_eq!(tree.data_bytes(), expected.data_bytes(), "a failed {op:?} changed data_bytes");
    error
}

fn create(path: &str, data: &str) -> TxnOp {
    TxnOp::Create(create_op(path, data, CreateMode::Persistent, 0))
}

fn create_mode(path: &str, mode: CreateMode, ttl_ms: i64) -> TxnOp {
    TxnOp::Create(create_op(path, "", mode, ttl_ms))
}

fn create_op(path: &str, data: &str, mode: CreateMode, ttl_ms: i64) -> CreateOp {
    CreateOp {
        acl: crate::acl::open_acl(),
        path: path.into(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        mode,
        ttl_ms,
    }
}

fn set(path: &str, data: &str, version: i32) -> TxnOp {
    TxnOp::SetData(set_op(path, data, version))
}

fn set_op(path: &str, data: &str, version: i32) -> SetDataOp {
    SetDataOp { path: path.into(), data: Bytes::copy_from_slice(data.as_bytes()), version }
}

fn delete(path: &str, version: i32) -> TxnOp {
    TxnOp::Delete(DeleteOp { path: path.into(), version })
}

fn check(path: &str, version: i32) -> MultiOp {
    MultiOp::Check(CheckOp { path: path.into(), version })
}

fn open(tree: &mut DataTree, session: u64) {
    ok(tree, TxnOp::CreateSession { session, timeout_ms: 10_000, password: 7 });
}

/// Changes as (path, kind) pairs, for compact assertions.
fn changes(applied: &Applied) -> Vec<(&str, ChangeKind)> {
    applied.changes.iter().map(|c| (c.path.as_str(), c.kind)).collect()
}

fn created_path(applied: &Applied) -> String {
    match &applied.result {
        OpResult::Created { path, .. } => path.clone(),
        other => panic!("not a create result: {other:?}"),
    }
}

fn bad_arguments(error: &ZnodeError) -> bool {
    matches!(error, ZnodeError::BadArguments { .. })
}

#[test]
fn new_tree_holds_root_and_reserved_node() {
    let tree = DataTree::new();
    assert_eq!(tree.node_count(), 2);
    assert_eq!(tree.last_zxid(), 0);
    let (names, root) = tree.children("/").unwrap();
    assert_eq!(names, ["baton"]);
    assert_eq!(root, crate::Stat { num_children: 1, ..Default::default() });
    assert_eq!(tree.get("/baton").unwrap(), (Bytes::new(), crate::Stat::default()));
    assert_eq!(tree.digest(), tree.recompute_digest());
    // Pinned: replicas built from different releases must agree on digests. (It
    // changed once, on purpose, when node hashes came to cover ACLs.)
    assert_eq!(tree.digest(), 0x7e4b_e52f_3ce8_ed65);
    assert!(tree.sessions().is_empty());
}

#[test]
fn reads_report_missing_and_invalid_paths() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", "x"));
    ok(&mut tree, create("/a/c", ""));
    ok(&mut tree, create("/a/b", ""));
    assert_eq!(tree.get("/nope"), Err(ZnodeError::NoNode { path: "/nope".into() }));
    assert_eq!(tree.stat("/nope"), Ok(None));
    assert!(matches!(tree.stat("/a/"), Err(ZnodeError::InvalidPath { .. })));
    assert!(matches!(tree.get("a"), Err(ZnodeError::InvalidPath { .. })));
    assert!(matches!(tree.children("/x"), Err(ZnodeError::NoNode { .. })));
    let (names, stat) = tree.children("/a").unwrap();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(stat.num_children, 2);
    assert_eq!(tree.get("/a").unwrap().0, Bytes::from_static(b"x"));
    assert_eq!(tree.node_count(), 5);
}

#[test]
fn failed_txn_advances_last_zxid_only() {
    let mut tree = DataTree::new();
    fails(&mut tree, delete("/missing", -1));
    assert_eq!(tree.last_zxid(), 1);
}

#[test]
#[should_panic(expected = "not after last applied zxid")]
fn zxid_must_increase() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    let txn = Txn {
        auth: crate::acl::Auth::none(),
        zxid: 1,
        time_ms: 0,
        session: 0,
        op: create("/b", ""),
    };
    let _ = tree.apply(&txn);
}

#[test]
fn reserved_subtree_is_server_owned() {
    let mut tree = DataTree::new();
    let ops = [
        create("/baton", ""),
        create("/baton/x", ""),
        create_mode("/baton/", CreateMode::PersistentSequential, 0),
        delete("/baton", -1),
        set("/baton", "x", -1),
        TxnOp::Multi(vec![check("/baton", -1)]),
    ];
    for op in ops {
        let error = fails(&mut tree, op);
        assert!(bad_arguments(&error.error), "{error:?}");
    }
    // Only a whole segment is reserved.
    ok(&mut tree, create("/batonx", ""));
    let applied = ok(&mut tree, create_mode("/baton", CreateMode::PersistentSequential, 0));
    assert_eq!(created_path(&applied), "/baton0000000001");
}

/// A snapshot being written belongs to the tree it began on: a tree put in its
/// place (a snapshot from the leader) or a newer snapshot of the same tree makes
/// it abandoned, never a mix of two trees.
#[test]
fn a_snapshot_in_slices_is_abandoned_when_its_tree_is_replaced() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", "1"));
    let mut encoder = tree.begin_snapshot();
    let mut replaced = DataTree::decode_snapshot(&tree.encode_snapshot()).unwrap();
    assert_eq!(replaced.continue_snapshot(&mut encoder, 1), Err(super::SnapshotAbandoned));
    let newer = tree.begin_snapshot();
    assert_eq!(tree.continue_snapshot(&mut encoder, 1), Err(super::SnapshotAbandoned));
    assert_eq!(tree.finish_snapshot(encoder), Err(super::SnapshotAbandoned));
    tree.abandon_snapshot(newer);
    assert_eq!(tree.snapshot_recorded(), 0);

    // Abandoning an old encoder leaves the newer one alone.
    let old = replaced.begin_snapshot();
    let mut new = replaced.begin_snapshot();
    replaced.abandon_snapshot(old);
    ok(&mut replaced, set("/a", "2", -1));
    assert_eq!(replaced.snapshot_recorded(), 1, "/a as it was");
    while !replaced.continue_snapshot(&mut new, 1).unwrap() {}
    let bytes = replaced.finish_snapshot(new).unwrap();
    let decoded = DataTree::decode_snapshot(&bytes).unwrap();
    assert_eq!(decoded.get("/a").unwrap().0, "1".as_bytes());
}
