use super::*;

fn reap(tree: &mut DataTree, time_ms: i64, paths: &[&str]) -> Applied {
    let zxid = tree.last_zxid() + 1;
    let paths = paths.iter().map(|p| p.to_string()).collect();
    let applied = tree.apply(&Txn {
        auth: crate::acl::Auth::none(),
        zxid,
        time_ms,
        session: 0,
        op: TxnOp::Reap { paths },
    });
    let applied = applied.unwrap();
    assert_eq!(tree.digest(), tree.recompute_digest());
    applied
}

fn reaped(applied: &Applied) -> Vec<String> {
    match &applied.result {
        OpResult::Reaped { paths } => paths.clone(),
        other => panic!("not a reap result: {other:?}"),
    }
}

#[test]
fn container_is_reapable_once_its_last_child_is_gone() {
    let mut tree = DataTree::new();
    ok(&mut tree, create_mode("/c", CreateMode::Container, 0));
    // Never had a child: not eligible (a fresh container is not reaped at once).
    assert!(tree.reapable(i64::MAX, 10).is_empty());
    ok(&mut tree, create("/c/x", ""));
    assert!(tree.reapable(i64::MAX, 10).is_empty());
    ok(&mut tree, delete("/c/x", -1));
    assert_eq!(tree.reapable(0, 10), ["/c"]);
    let applied = reap(&mut tree, 0, &["/c"]);
    assert_eq!(reaped(&applied), ["/c"]);
    assert_eq!(
        changes(&applied),
        [("/c", ChangeKind::NodeDeleted), ("/", ChangeKind::NodeChildrenChanged)]
    );
    assert_eq!(tree.stat("/c"), Ok(None));
    assert!(tree.reapable(i64::MAX, 10).is_empty());
}

#[test]
fn ttl_node_is_reapable_after_ttl_without_change_or_children() {
    let mut tree = DataTree::new();
    ok(&mut tree, create_mode("/t", CreateMode::PersistentWithTtl, 500));
    let mtime = tree.stat("/t").unwrap().unwrap().mtime;
    assert!(tree.reapable(mtime + 500, 10).is_empty());
    assert_eq!(tree.reapable(mtime + 501, 10), ["/t"]);
    // A data change restarts the clock.
    ok(&mut tree, set("/t", "x", -1));
    let mtime = tree.stat("/t").unwrap().unwrap().mtime;
    assert!(tree.reapable(mtime + 500, 10).is_empty());
    // A child keeps it alive whatever the time.
    ok(&mut tree, create("/t/kid", ""));
    assert!(tree.reapable(i64::MAX, 10).is_empty());
    ok(&mut tree, delete("/t/kid", -1));
    assert_eq!(tree.reapable(i64::MAX, 10), ["/t"]);
    // Extreme times do not overflow into a wrong answer.
    assert!(tree.reapable(i64::MIN, 10).is_empty());
}

#[test]
fn reap_rechecks_eligibility_at_txn_time_and_skips_the_rest() {
    let mut tree = DataTree::new();
    ok(&mut tree, create_mode("/t", CreateMode::PersistentWithTtl, 500));
    ok(&mut tree, create("/p", ""));
    let mtime = tree.stat("/t").unwrap().unwrap().mtime;
    let eligible_at = mtime + 501;
    assert_eq!(tree.reapable(eligible_at, 10), ["/t"]);
    // Changed after the server chose it: skipped, not an error.
    ok(&mut tree, set("/t", "touched", -1));
    let applied = reap(&mut tree, eligible_at, &["/t", "/p", "/missing", "bad path"]);
    assert!(reaped(&applied).is_empty());
    assert!(applied.changes.is_empty());
    assert!(tree.stat("/t").unwrap().is_some());
}

#[test]
fn reapable_is_sorted_and_bounded() {
    let mut tree = DataTree::new();
    for path in ["/t3", "/t1", "/t2"] {
        ok(&mut tree, create_mode(path, CreateMode::PersistentWithTtl, 1));
    }
    ok(&mut tree, create("/plain", ""));
    assert_eq!(tree.reapable(i64::MAX, 10), ["/t1", "/t2", "/t3"]);
    assert_eq!(tree.reapable(i64::MAX, 2), ["/t1", "/t2"]);
    assert!(tree.reapable(i64::MAX, 0).is_empty());
    let applied = reap(&mut tree, i64::MAX, &["/t2", "/t2", "/plain"]);
    assert_eq!(reaped(&applied), ["/t2"]);
}

#[test]
fn reaping_a_child_can_make_its_container_eligible() {
    let mut tree = DataTree::new();
    ok(&mut tree, create_mode("/c", CreateMode::Container, 0));
    ok(&mut tree, create_mode("/c/t", CreateMode::PersistentWithTtl, 1));
    assert_eq!(tree.reapable(i64::MAX, 10), ["/c/t"]);
    // In one txn, in the order given: the child goes first, then its container.
    let applied = reap(&mut tree, i64::MAX, &["/c/t", "/c"]);
    assert_eq!(reaped(&applied), ["/c/t", "/c"]);
    assert_eq!(tree.node_count(), 2);
}

#[test]
fn forged_reap_of_root_or_reserved_nodes_does_nothing() {
    let mut tree = DataTree::new();
    let digest = tree.digest();
    let applied = reap(&mut tree, i64::MAX, &["/", "/baton", "/baton/x"]);
    assert!(reaped(&applied).is_empty());
    assert_eq!(tree.digest(), digest);
}
