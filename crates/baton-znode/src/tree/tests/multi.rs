use super::*;

#[test]
fn multi_applies_in_order_with_results_and_changes() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/m", ""));
    let applied = ok(
        &mut tree,
        TxnOp::Multi(vec![
            MultiOp::Create(create_op("/m/a", "1", CreateMode::Persistent, 0)),
            // Sees the create before it.
            MultiOp::SetData(set_op("/m/a", "2", 0)),
            check("/m/a", 1),
            MultiOp::Create(create_op("/m/s", "", CreateMode::PersistentSequential, 0)),
            MultiOp::Delete(DeleteOp { path: "/m/a".into(), version: 1 }),
        ]),
    );
    let OpResult::Multi(results) = &applied.result else { panic!("{:?}", applied.result) };
    assert_eq!(results.len(), 5);
    assert!(matches!(&results[0], OpResult::Created { path, .. } if path == "/m/a"));
    assert!(matches!(&results[1], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[2], OpResult::Checked);
    assert!(matches!(&results[3], OpResult::Created { path, .. } if path == "/m/s0000000001"));
    assert_eq!(results[4], OpResult::Deleted);
    assert_eq!(
        changes(&applied),
        [
            ("/m/a", ChangeKind::NodeCreated),
            ("/m", ChangeKind::NodeChildrenChanged),
            ("/m/a", ChangeKind::NodeDataChanged),
            ("/m/s0000000001", ChangeKind::NodeCreated),
            ("/m", ChangeKind::NodeChildrenChanged),
            ("/m/a", ChangeKind::NodeDeleted),
            ("/m", ChangeKind::NodeChildrenChanged),
        ]
    );
    assert_eq!(tree.children("/m").unwrap().0, ["s0000000001"]);
    assert_eq!(tree.stat("/m").unwrap().unwrap().cversion, 3);
}

#[test]
fn failed_multi_rolls_back_creates_sets_and_deletes() {
    let mut tree = DataTree::new();
    open(&mut tree, 3);
    ok(&mut tree, create("/m", "m"));
    ok(&mut tree, create("/m/old", "keep"));
    ok(&mut tree, set("/m/old", "kept", -1));
    let cversion = tree.stat("/m").unwrap().unwrap().cversion;
    let digest = tree.digest();
    let e = fails_as(
        &mut tree,
        3,
        TxnOp::Multi(vec![
            MultiOp::Create(create_op("/m/new", "x", CreateMode::Persistent, 0)),
            MultiOp::Create(create_op("/m/new/deep", "", CreateMode::Container, 0)),
            MultiOp::Create(create_op("/m/e", "", CreateMode::EphemeralSequential, 0)),
            MultiOp::SetData(set_op("/m", "changed", -1)),
            MultiOp::Delete(DeleteOp { path: "/m/old".into(), version: 1 }),
            MultiOp::SetData(set_op("/m", "again", -1)),
            MultiOp::Create(create_op("/m/new", "", CreateMode::Persistent, 0)),
        ]),
    );
    assert_eq!(
        e,
        TxnError { op_index: Some(6), error: ZnodeError::NodeExists { path: "/m/new".into() } }
    );
    // `fails` compared the whole tree; spell out the key facts too.
    assert_eq!(tree.stat("/m/new"), Ok(None));
    assert_eq!(tree.get("/m/old").unwrap().0, Bytes::from_static(b"kept"));
    assert_eq!(tree.get("/m").unwrap().0, Bytes::from_static(b"m"));
    assert_eq!(tree.stat("/m").unwrap().unwrap().cversion, cversion);
    assert!(tree.ephemerals(3).is_empty());
    assert!(tree.reapable(i64::MAX, 10).is_empty());
    assert_eq!(tree.digest(), digest);
}

#[test]
fn failing_ops_report_their_index() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    let cases = [
        (vec![check("/a", 0), check("/b", -1)], 1, ZnodeError::NoNode { path: "/b".into() }),
        (
            vec![check("/a", 3)],
            0,
            ZnodeError::BadVersion { path: "/a".into(), expected: 3, actual: 0 },
        ),
        (
            vec![MultiOp::SetData(set_op("/a", "", -1)), MultiOp::SetData(set_op("/a", "", 0))],
            1,
            ZnodeError::BadVersion { path: "/a".into(), expected: 0, actual: 1 },
        ),
    ];
    for (ops, index, error) in cases {
        let e = fails(&mut tree, TxnOp::Multi(ops));
        assert_eq!(e, TxnError { op_index: Some(index), error });
    }
    let e = fails(&mut tree, TxnOp::Multi(vec![check("/a", -1), check("/baton/x", -1)]));
    assert_eq!(e.op_index, Some(1));
    assert!(bad_arguments(&e.error));
}

#[test]
fn empty_multi_succeeds_with_no_changes() {
    let mut tree = DataTree::new();
    let digest = tree.digest();
    let applied = ok(&mut tree, TxnOp::Multi(vec![]));
    assert_eq!(applied.result, OpResult::Multi(vec![]));
    assert!(applied.changes.is_empty());
    assert_eq!(tree.digest(), digest);
}
