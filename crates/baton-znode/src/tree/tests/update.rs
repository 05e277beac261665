use super::*;

#[test]
fn delete_updates_parent() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    ok(&mut tree, create("/a/b", ""));
    let digest = tree.digest();
    let applied = ok(&mut tree, delete("/a/b", 0));
    assert_eq!(applied.result, OpResult::Deleted);
    assert_eq!(
        changes(&applied),
        [("/a/b", ChangeKind::NodeDeleted), ("/a", ChangeKind::NodeChildrenChanged)]
    );
    assert_eq!(tree.stat("/a/b"), Ok(None));
    let parent = tree.stat("/a").unwrap().unwrap();
    assert_eq!((parent.cversion, parent.pzxid, parent.num_children), (2, 3, 0));
    assert!(tree.children("/a").unwrap().0.is_empty());
    assert_ne!(tree.digest(), digest);
}

#[test]
fn delete_errors_change_nothing() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    ok(&mut tree, create("/a/b", ""));
    ok(&mut tree, set("/a/b", "x", -1));
    let e = fails(&mut tree, delete("/nope", -1));
    assert_eq!(e, ZnodeError::NoNode { path: "/nope".into() }.into());
    let e = fails(&mut tree, delete("/a/b", 0));
    assert_eq!(e, ZnodeError::BadVersion { path: "/a/b".into(), expected: 0, actual: 1 }.into());
    let e = fails(&mut tree, delete("/a", -1));
    assert_eq!(e, ZnodeError::NotEmpty { path: "/a".into() }.into());
    // The version is checked before emptiness, as ZooKeeper does.
    let e = fails(&mut tree, delete("/a", 3));
    assert!(matches!(e.error, ZnodeError::BadVersion { .. }));
    let e = fails(&mut tree, delete("/", -1));
    assert!(bad_arguments(&e.error));
    let e = fails(&mut tree, delete("//", -1));
    assert!(matches!(e.error, ZnodeError::InvalidPath { .. }));
}

#[test]
fn set_data_bumps_version_and_mtime() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", "old"));
    let applied = ok(&mut tree, set("/a", "newer", 0));
    let (data, stat) = tree.get("/a").unwrap();
    assert_eq!(applied.result, OpResult::SetData { stat });
    assert_eq!(changes(&applied), [("/a", ChangeKind::NodeDataChanged)]);
    assert_eq!(data, Bytes::from_static(b"newer"));
    assert_eq!((stat.version, stat.mzxid, stat.mtime, stat.data_length), (1, 2, time_of(2), 5));
    assert_eq!((stat.czxid, stat.ctime, stat.pzxid, stat.cversion), (1, time_of(1), 1, 0));
    ok(&mut tree, set("/a", "", -1));
    assert_eq!(tree.stat("/a").unwrap().unwrap().version, 2);
    // The root's data may be set.
    ok(&mut tree, set("/", "root", -1));
}

#[test]
fn set_data_errors_change_nothing() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    let e = fails(&mut tree, set("/b", "x", -1));
    assert_eq!(e, ZnodeError::NoNode { path: "/b".into() }.into());
    let e = fails(&mut tree, set("/a", "x", 4));
    assert_eq!(e, ZnodeError::BadVersion { path: "/a".into(), expected: 4, actual: 0 }.into());
    let e = fails(&mut tree, set("/a/", "x", -1));
    assert!(matches!(e.error, ZnodeError::InvalidPath { .. }));
}

#[test]
fn data_version_wraps_like_a_java_int() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", ""));
    tree.nodes.get_mut("/a").unwrap().stat.version = i32::MAX;
    tree.digest = tree.recompute_digest();
    ok(&mut tree, set("/a", "x", i32::MAX));
    assert_eq!(tree.stat("/a").unwrap().unwrap().version, i32::MIN);
}
