use super::*;
use crate::SessionInfo;

#[test]
fn sessions_open_and_close() {
    let mut tree = DataTree::new();
    let digest = tree.digest();
    let applied = ok(&mut tree, TxnOp::CreateSession { session: 9, timeout_ms: 500, password: 7 });
    assert_eq!(applied.result, OpResult::SessionCreated);
    assert!(applied.changes.is_empty());
    open(&mut tree, 2);
    assert_eq!(
        tree.sessions(),
        [
            SessionInfo { session: 2, timeout_ms: 10_000, password: 7 },
            SessionInfo { session: 9, timeout_ms: 500, password: 7 }
        ]
    );
    assert_ne!(tree.digest(), digest);
    let applied = ok(&mut tree, TxnOp::CloseSession { session: 2 });
    assert_eq!(applied.result, OpResult::SessionClosed);
    ok(&mut tree, TxnOp::CloseSession { session: 9 });
    assert_eq!(tree.digest(), digest);
}

#[test]
fn session_errors_change_nothing() {
    let mut tree = DataTree::new();
    open(&mut tree, 1);
    let e = fails(&mut tree, TxnOp::CreateSession { session: 1, timeout_ms: 5, password: 7 });
    assert!(bad_arguments(&e.error));
    let e = fails(&mut tree, TxnOp::CreateSession { session: 0, timeout_ms: 5, password: 7 });
    assert!(bad_arguments(&e.error));
    let e = fails(&mut tree, TxnOp::CreateSession { session: 2, timeout_ms: 0, password: 7 });
    assert!(bad_arguments(&e.error));
    let e = fails(&mut tree, TxnOp::CloseSession { session: 2 });
    assert_eq!(e, ZnodeError::SessionExpired { session: 2 }.into());
}

#[test]
fn closing_a_session_deletes_its_ephemerals_in_path_order() {
    let mut tree = DataTree::new();
    open(&mut tree, 1);
    open(&mut tree, 2);
    ok(&mut tree, create("/p", ""));
    ok_as(&mut tree, 1, create_mode("/p/z", CreateMode::Ephemeral, 0));
    ok_as(&mut tree, 1, create_mode("/a", CreateMode::Ephemeral, 0));
    ok_as(&mut tree, 2, create_mode("/p/other", CreateMode::Ephemeral, 0));
    ok_as(&mut tree, 1, create("/p/persistent", ""));
    assert_eq!(tree.ephemerals(1), ["/a", "/p/z"]);
    let close = ok(&mut tree, TxnOp::CloseSession { session: 1 });
    let zxid = tree.last_zxid();
    assert_eq!(
        changes(&close),
        [
            ("/a", ChangeKind::NodeDeleted),
            ("/", ChangeKind::NodeChildrenChanged),
            ("/p/z", ChangeKind::NodeDeleted),
            ("/p", ChangeKind::NodeChildrenChanged),
        ]
    );
    assert_eq!(tree.children("/p").unwrap().0, ["other", "persistent"]);
    let parent = tree.stat("/p").unwrap().unwrap();
    assert_eq!((parent.pzxid, parent.cversion, parent.num_children), (zxid, 4, 2));
    assert_eq!(tree.sessions().len(), 1);
    assert!(tree.ephemerals(1).is_empty());
    assert_eq!(tree.ephemerals(2), ["/p/other"]);
    // The session is gone: it can own nothing any more.
    let e = fails_as(&mut tree, 1, create_mode("/b", CreateMode::Ephemeral, 0));
    assert_eq!(e, ZnodeError::SessionExpired { session: 1 }.into());
}

#[test]
fn deleting_an_ephemeral_forgets_it_in_its_session() {
    let mut tree = DataTree::new();
    open(&mut tree, 1);
    ok_as(&mut tree, 1, create_mode("/e", CreateMode::Ephemeral, 0));
    ok(&mut tree, delete("/e", -1));
    assert!(tree.ephemerals(1).is_empty());
    let close = ok(&mut tree, TxnOp::CloseSession { session: 1 });
    assert!(close.changes.is_empty());
}

/// A client's write that was still on its way when its session closed (the close
/// was ordered first, and the client was told its session expired) must not take
/// effect after the close: found by the nemesis as a write acknowledged as failed
/// ("session expired") that showed up later in the log.
#[test]
fn a_closed_sessions_writes_fail_and_change_nothing() {
    let mut tree = DataTree::new();
    open(&mut tree, 1);
    ok(&mut tree, create("/r", "a"));
    ok_as(&mut tree, 1, set("/r", "b", -1));
    ok(&mut tree, TxnOp::CloseSession { session: 1 });
    let late = [
        set("/r", "c", -1),
        create("/s", ""),
        delete("/r", -1),
        TxnOp::Multi(vec![MultiOp::SetData(set_op("/r", "c", -1))]),
        TxnOp::SetAcl(crate::SetAclOp {
            path: "/r".into(),
            acl: crate::acl::open_acl(),
            version: -1,
        }),
    ];
    for op in late {
        let e = fails_as(&mut tree, 1, op);
        assert_eq!(e, ZnodeError::SessionExpired { session: 1 }.into());
    }
    // A session never opened is refused alike.
    let e = fails_as(&mut tree, 2, set("/r", "c", -1));
    assert_eq!(e, ZnodeError::SessionExpired { session: 2 }.into());
    assert_eq!(&tree.get("/r").unwrap().0[..], b"b");
    // Txns without a session (unary calls, the server's own) are not concerned.
    ok(&mut tree, set("/r", "d", -1));
}
