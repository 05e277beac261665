//! Quotas: limits nodes, usage upkeep, hard and soft limits.

use super::super::node::Node;
use super::*;
use crate::{QuotaLimits, QuotaUsage, QuotaWarning};

fn set_quota(path: &str, limits: QuotaLimits) -> TxnOp {
    TxnOp::SetQuota { path: path.into(), limits }
}

fn remove_quota(path: &str) -> TxnOp {
    TxnOp::RemoveQuota { path: path.into() }
}

fn hard(count: Option<u64>, bytes: Option<u64>) -> QuotaLimits {
    QuotaLimits { count_hard: count, bytes_hard: bytes, ..QuotaLimits::default() }
}

fn usage(tree: &DataTree, path: &str) -> (u64, u64) {
    let (_, usage) = tree.quota(path).expect("a quota");
    (usage.count, usage.bytes)
}

fn exceeded(error: &TxnError) -> (&str, &str) {
    match &error.error {
        ZnodeError::QuotaExceeded { path, quota_path, .. } => (path, quota_path),
        other => panic!("not QuotaExceeded: {other:?}"),
    }
}

#[test]
fn set_quota_writes_a_limits_node_and_counts_the_subtree() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/app", "ab"));
    ok(&mut tree, create("/app/x", "cde"));
    ok(&mut tree, create("/app/x/y", ""));
    let limits = QuotaLimits { count_soft: Some(10), bytes_hard: Some(100), ..Default::default() };
    let applied = ok(&mut tree, set_quota("/app/x", limits));
    assert_eq!(applied.result, OpResult::QuotaSet);
    let (data, _) = tree.get("/baton/quota/app/x/limits").unwrap();
    assert_eq!(&data[..], b"count=10,bytes=-1=;byteHardLimit=100;countHardLimit=-1");
    assert_eq!(tree.quota("/app/x"), Some((limits, QuotaUsage { count: 2, bytes: 3 })));
    assert_eq!(
        tree.quotas(),
        vec![("/app/x".to_owned(), limits, QuotaUsage { count: 2, bytes: 3 })]
    );
    assert!(changes(&applied).contains(&("/baton/quota/app/x/limits", ChangeKind::NodeCreated)));
    // Replacing keeps the usage and updates the node as a setData would.
    let tighter = hard(Some(5), None);
    ok(&mut tree, set_quota("/app/x", tighter));
    assert_eq!(tree.quota("/app/x").unwrap(), (tighter, QuotaUsage { count: 2, bytes: 3 }));
    assert_eq!(tree.stat("/baton/quota/app/x/limits").unwrap().unwrap().version, 1);
    assert_eq!(tree.quota("/app"), None);
}

#[test]
fn bad_quota_requests_are_refused() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    ok(&mut tree, create("/a/b", ""));
    ok(&mut tree, create("/c", ""));
    ok(&mut tree, set_quota("/a", hard(Some(10), None)));
    let e = fails(&mut tree, set_quota("/a/b", hard(Some(1), None)));
    assert!(
        bad_arguments(&e.error) && e.to_string().contains("/a/b") && e.to_string().contains("/a ")
    );
    ok(&mut tree, remove_quota("/a"));
    ok(&mut tree, set_quota("/a/b", hard(Some(1), None)));
    let e = fails(&mut tree, set_quota("/a", hard(Some(1), None)));
    assert!(bad_arguments(&e.error) && e.to_string().contains("/a/b"), "{e}");
    for path in ["/", "/baton", "/baton/quota"] {
        assert!(bad_arguments(&fails(&mut tree, set_quota(path, hard(Some(1), None))).error));
    }
    let e = fails(&mut tree, set_quota("/nope", hard(Some(1), None)));
    assert_eq!(e.error, ZnodeError::NoNode { path: "/nope".into() });
    assert!(bad_arguments(&fails(&mut tree, set_quota("/c", QuotaLimits::default())).error));
    let huge = hard(Some(u64::MAX), None);
    assert!(bad_arguments(&fails(&mut tree, set_quota("/c", huge)).error));
    let e = fails(&mut tree, remove_quota("/c"));
    assert_eq!(e.error, ZnodeError::NoNode { path: "/baton/quota/c/limits".into() });
}

#[test]
fn hard_count_limit_refuses_creates_and_changes_nothing() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/q", ""));
    ok(&mut tree, set_quota("/q", hard(Some(3), None)));
    ok(&mut tree, create("/q/a", ""));
    ok(&mut tree, create("/q/a/b", ""));
    assert_eq!(usage(&tree, "/q"), (3, 0));
    let e = fails(&mut tree, create("/q/c", ""));
    assert_eq!(exceeded(&e), ("/q/c", "/q"));
    assert!(e.to_string().contains("hard limit of 3 znodes; the subtree would hold 4"), "{e}");
    // A sequential create is checked under the name it would get.
    let e = fails(&mut tree, create_mode("/q/s-", CreateMode::PersistentSequential, 0));
    assert_eq!(exceeded(&e).1, "/q");
    // Outside the subtree nothing is limited; setData adds no node.
    ok(&mut tree, create("/q2", ""));
    ok(&mut tree, set("/q/a", "anything", -1));
    ok(&mut tree, delete("/q/a/b", -1));
    ok(&mut tree, create("/q/c", ""));
}

#[test]
fn hard_byte_limit_refuses_growth_only() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/q", "12"));
    ok(&mut tree, set_quota("/q", hard(None, Some(5))));
    ok(&mut tree, create("/q/a", "345"));
    assert_eq!(usage(&tree, "/q"), (2, 5));
    let e = fails(&mut tree, set("/q/a", "3456", -1));
    assert_eq!(exceeded(&e), ("/q/a", "/q"));
    assert!(e.to_string().contains("hard limit of 5 data bytes; the subtree would hold 6"), "{e}");
    fails(&mut tree, create("/q/b", "x"));
    ok(&mut tree, create("/q/b", ""));
    // Shrinking, or staying the same size, is always allowed.
    ok(&mut tree, set("/q/a", "", -1));
    assert_eq!(usage(&tree, "/q"), (3, 2));
    ok(&mut tree, set("/q/a", "xyz", -1));
    // Quota checks come before the version check, as ZooKeeper's.
    let e = fails(&mut tree, set("/q/a", "abcdefgh", 99));
    exceeded(&e);
}

#[test]
fn soft_limits_warn_and_succeed() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/q", ""));
    let limits = QuotaLimits { count_soft: Some(1), bytes_soft: Some(2), ..Default::default() };
    ok(&mut tree, set_quota("/q", limits));
    let applied = ok(&mut tree, create("/q/a", "xyz"));
    assert_eq!(
        applied.quota_warnings,
        [QuotaWarning {
            quota_path: "/q".into(),
            limits,
            usage: QuotaUsage { count: 2, bytes: 3 }
        }]
    );
    // Shrinking data adds nothing, so it warns of nothing.
    assert!(ok(&mut tree, set("/q/a", "x", -1)).quota_warnings.is_empty());
    assert!(ok(&mut tree, create("/elsewhere", "xyz")).quota_warnings.is_empty());
    // A failed txn reports no warning, only its error.
    let op = TxnOp::Multi(vec![
        MultiOp::Create(create_op("/q/b", "", CreateMode::Persistent, 0)),
        check("/missing", -1),
    ]);
    fails(&mut tree, op);
}

#[test]
fn usage_follows_deletes_session_closes_and_reaps() {
    let mut tree = DataTree::new();
    open(&mut tree, 9);
    ok(&mut tree, create("/q", ""));
    ok(&mut tree, set_quota("/q", hard(Some(100), Some(100))));
    ok_as(&mut tree, 9, TxnOp::Create(create_op("/q/e", "eph", CreateMode::Ephemeral, 0)));
    ok(&mut tree, create_mode("/q/c", CreateMode::Container, 0));
    ok(&mut tree, create("/q/c/x", "12"));
    assert_eq!(usage(&tree, "/q"), (4, 5));
    ok(&mut tree, delete("/q/c/x", -1));
    assert_eq!(usage(&tree, "/q"), (3, 3));
    ok(&mut tree, TxnOp::CloseSession { session: 9 });
    assert_eq!(usage(&tree, "/q"), (2, 0));
    let zxid = tree.last_zxid() + 1;
    let reap = TxnOp::Reap { paths: vec!["/q/c".into()] };
    tree.apply(&Txn { auth: Auth::none(), zxid, time_ms: 0, session: 0, op: reap }).unwrap();
    assert_eq!(usage(&tree, "/q"), (1, 0));
    // The quota outlives its node, as ZooKeeper's does, and counts it again.
    ok(&mut tree, delete("/q", -1));
    assert_eq!(usage(&tree, "/q"), (0, 0));
    ok(&mut tree, create("/q", "ab"));
    assert_eq!(usage(&tree, "/q"), (1, 2));
}

#[test]
fn rolled_back_multi_restores_usage() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/q", ""));
    ok(&mut tree, create("/q/old", "1234"));
    ok(&mut tree, set_quota("/q", hard(Some(10), Some(10))));
    let op = TxnOp::Multi(vec![
        MultiOp::Create(create_op("/q/a", "xy", CreateMode::Persistent, 0)),
        MultiOp::SetData(set_op("/q/old", "1", -1)),
        MultiOp::Delete(DeleteOp { path: "/q/a".into(), version: -1 }),
        MultiOp::Create(create_op("/q/b", "zz", CreateMode::Persistent, 0)),
        check("/missing", -1),
    ]);
    fails(&mut tree, op);
    assert_eq!(usage(&tree, "/q"), (2, 4));
    // A multi's later op sees the usage its earlier ops left.
    ok(&mut tree, set_quota("/q", hard(Some(3), None)));
    let op = TxnOp::Multi(vec![
        MultiOp::Create(create_op("/q/a", "", CreateMode::Persistent, 0)),
        MultiOp::Create(create_op("/q/b", "", CreateMode::Persistent, 0)),
    ]);
    let e = fails(&mut tree, op);
    assert_eq!(e.op_index, Some(1));
    assert_eq!(usage(&tree, "/q"), (2, 4));
}

#[test]
fn remove_quota_deletes_the_nodes_it_made() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    ok(&mut tree, create("/a/b", ""));
    ok(&mut tree, create("/a/c", ""));
    ok(&mut tree, set_quota("/a/b", hard(Some(9), None)));
    ok(&mut tree, set_quota("/a/c", hard(Some(9), None)));
    let nodes = tree.node_count();
    let applied = ok(&mut tree, remove_quota("/a/b"));
    assert_eq!(applied.result, OpResult::QuotaRemoved);
    assert_eq!(tree.node_count(), nodes - 2, "b/limits and b; a still holds c");
    assert_eq!(tree.stat("/baton/quota/a/b"), Ok(None));
    ok(&mut tree, remove_quota("/a/c"));
    assert_eq!(tree.children("/baton/quota").unwrap().0, Vec::<String>::new());
    assert!(tree.quotas().is_empty());
    ok(&mut tree, create("/a/b/many", ""));
}

#[test]
fn snapshots_rebuild_quotas_and_usage() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", "xyz"));
    ok(&mut tree, create("/a/b", "1"));
    ok(&mut tree, create("/z", ""));
    ok(&mut tree, create("/z/limits", "q"));
    ok(&mut tree, set_quota("/a", hard(Some(5), Some(50))));
    ok(
        &mut tree,
        set_quota("/z/limits", QuotaLimits { count_soft: Some(1), ..Default::default() }),
    );
    let decoded = DataTree::decode_snapshot(&tree.encode_snapshot()).unwrap();
    assert!(decoded == tree);
    assert_eq!(decoded.quotas(), tree.quotas());
    assert_eq!(usage(&decoded, "/a"), (2, 4));
    assert_eq!(usage(&decoded, "/z/limits"), (1, 1));
}

#[test]
fn snapshots_with_broken_quota_nodes_are_rejected() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    ok(&mut tree, set_quota("/a", hard(Some(5), None)));
    // What each breaks, and a word the refusal must say (so the check refusing
    // it is the one meant, not some other).
    type Breakage = (&'static str, fn(&mut DataTree));
    let breakages: [Breakage; 4] = [
        ("not a number", |t| set_raw(t, "/baton/quota/a/limits", "count=x")),
        ("at least one limit", |t| set_raw(t, "/baton/quota/a/limits", "count=-1,bytes=-1")),
        ("neither a limits node", |t| {
            let node = (*t.nodes["/baton/quota/a/limits"]).clone();
            t.link("/baton/quota/a/other".into(), node);
            t.nodes.get_mut("/baton/quota/a").unwrap().stat.num_children += 1;
        }),
        ("nest", |t| {
            ok(t, create("/a/b", ""));
            let node = (*t.nodes["/baton/quota/a/limits"]).clone();
            let intermediate = (*t.nodes["/baton/quota/a"]).clone();
            let mut fresh = Node { children: Default::default(), ..intermediate };
            fresh.stat.num_children = 1;
            t.link("/baton/quota/a/b".into(), fresh);
            t.link("/baton/quota/a/b/limits".into(), node);
            t.nodes.get_mut("/baton/quota/a").unwrap().stat.num_children += 1;
        }),
    ];
    for (what, break_it) in breakages {
        let mut broken = tree.clone();
        break_it(&mut broken);
        match DataTree::decode_snapshot(&broken.encode_snapshot()) {
            Err(crate::DecodeError::Invalid { reason, .. }) => {
                assert!(reason.contains(what), "{what}: {reason}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

/// Replaces a node's data behind apply's back (to make snapshots apply never would).
fn set_raw(tree: &mut DataTree, path: &str, data: &str) {
    let node = tree.nodes.get_mut(path).unwrap();
    node.set_data(Bytes::copy_from_slice(data.as_bytes()));
    node.stat.data_length = data.len() as u32;
}
