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
