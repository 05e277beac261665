use super::*;
use crate::Stat;

#[test]
fn create_sets_stat_and_updates_parent() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", "parent"));
    let applied = ok(&mut tree, create("/a/b", "hello"));
    let stat = Stat {
        czxid: 2,
        mzxid: 2,
        pzxid: 2,
        ctime: time_of(2),
        mtime: time_of(2),
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 5,
        num_children: 0,
    };
    assert_eq!(applied.result, OpResult::Created { path: "/a/b".into(), stat });
    assert_eq!(
        changes(&applied),
        [("/a/b", ChangeKind::NodeCreated), ("/a", ChangeKind::NodeChildrenChanged)]
    );
    assert_eq!(tree.get("/a/b").unwrap(), (Bytes::from_static(b"hello"), stat));
    let parent = tree.stat("/a").unwrap().unwrap();
    assert_eq!((parent.cversion, parent.pzxid, parent.num_children), (1, 2, 1));
    // The parent's data and data version are untouched.
    assert_eq!((parent.mzxid, parent.version, parent.data_length), (1, 0, 6));
}

#[test]
fn create_errors_change_nothing() {
    let mut tree = DataTree::new();
    open(&mut tree, 7);
    ok(&mut tree, create("/a", ""));
    ok_as(&mut tree, 7, create_mode("/e", CreateMode::Ephemeral, 0));

    let e = fails(&mut tree, create("/x/y", ""));
    assert_eq!(e, ZnodeError::NoNode { path: "/x/y".into() }.into());
    let e = fails(&mut tree, create("/a", ""));
    assert_eq!(e, ZnodeError::NodeExists { path: "/a".into() }.into());
    let e = fails(&mut tree, create("/", ""));
    assert_eq!(e, ZnodeError::NodeExists { path: "/".into() }.into());
    let e = fails(&mut tree, create("/e/child", ""));
    assert_eq!(e, ZnodeError::NoChildrenForEphemerals { path: "/e/child".into() }.into());
    let e = fails(&mut tree, create_mode("/eph", CreateMode::Ephemeral, 0));
    assert_eq!(e, ZnodeError::SessionExpired { session: 0 }.into());
    let e = fails_as(&mut tree, 8, create_mode("/eph", CreateMode::EphemeralSequential, 0));
    assert_eq!(e, ZnodeError::SessionExpired { session: 8 }.into());
    let e = fails(&mut tree, create("/a/", ""));
    assert!(matches!(e.error, ZnodeError::InvalidPath { ref path, .. } if path == "/a/"));
    let e = fails(&mut tree, create("/a/../b", ""));
    assert!(matches!(e.error, ZnodeError::InvalidPath { .. }));
    let e = fails(&mut tree, create_mode("/t", CreateMode::PersistentWithTtl, 0));
    assert!(bad_arguments(&e.error));
    let e = fails(&mut tree, create_mode("/t", CreateMode::Container, 5));
    assert!(bad_arguments(&e.error));
    assert_eq!(e.op_index, None);
}

#[test]
fn sequential_suffix_is_parent_cversion() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/q", ""));
    let seq = |tree: &mut DataTree, path: &str| {
        created_path(&ok(tree, create_mode(path, CreateMode::PersistentSequential, 0)))
    };
    assert_eq!(seq(&mut tree, "/q/n-"), "/q/n-0000000000");
    assert_eq!(seq(&mut tree, "/q/n-"), "/q/n-0000000001");
    // Deletes bump cversion too, so numbers are never reused.
    ok(&mut tree, delete("/q/n-0000000000", -1));
    assert_eq!(seq(&mut tree, "/q/"), "/q/0000000003");
    assert_eq!(seq(&mut tree, "/q/x"), "/q/x0000000004");
    // Under the root: its cversion counts only client creates (not /baton).
    assert_eq!(seq(&mut tree, "/"), "/0000000001");
}

#[test]
fn sequential_suffix_formats_negative_cversion_like_zookeeper() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/q", ""));
    let set_cversion = |tree: &mut DataTree, cversion: i32| {
        tree.nodes.get_mut("/q").unwrap().stat.cversion = cversion;
        tree.digest = tree.recompute_digest();
    };
    set_cversion(&mut tree, i32::MAX);
    let op = create_mode("/q/n", CreateMode::PersistentSequential, 0);
    assert_eq!(created_path(&ok(&mut tree, op.clone())), "/q/n2147483647");
    assert_eq!(tree.stat("/q").unwrap().unwrap().cversion, i32::MIN);
    assert_eq!(created_path(&ok(&mut tree, op.clone())), "/q/n-2147483648");
    set_cversion(&mut tree, -1);
    assert_eq!(created_path(&ok(&mut tree, op)), "/q/n-000000001");
}

#[test]
fn sequential_create_of_existing_name_fails() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/q", ""));
    ok(&mut tree, create("/q/n0000000001", ""));
    let e = fails(&mut tree, create_mode("/q/n", CreateMode::PersistentSequential, 0));
    assert_eq!(e, ZnodeError::NodeExists { path: "/q/n0000000001".into() }.into());
}

#[test]
fn ephemeral_create_records_owner() {
    let mut tree = DataTree::new();
    open(&mut tree, 5);
    let applied = ok_as(&mut tree, 5, create_mode("/e", CreateMode::EphemeralSequential, 0));
    let path = created_path(&applied);
    assert_eq!(path, "/e0000000000");
    assert_eq!(tree.stat(&path).unwrap().unwrap().ephemeral_owner, 5);
    assert_eq!(tree.ephemerals(5), [path]);
    assert!(tree.ephemerals(6).is_empty());
}

#[test]
fn container_and_ttl_nodes_look_persistent() {
    let mut tree = DataTree::new();
    ok(&mut tree, create_mode("/c", CreateMode::Container, 0));
    ok(&mut tree, create_mode("/t", CreateMode::PersistentWithTtl, 100));
    let applied = ok(&mut tree, create_mode("/t", CreateMode::PersistentSequentialWithTtl, 100));
    assert_eq!(created_path(&applied), "/t0000000002");
    for path in ["/c", "/t", "/t0000000002"] {
        assert_eq!(tree.stat(path).unwrap().unwrap().ephemeral_owner, 0);
    }
    // The kind is part of the digest even though the Stat does not show it.
    let mut persistent = DataTree::new();
    ok(&mut persistent, create("/c", ""));
    let mut container = DataTree::new();
    ok(&mut container, create_mode("/c", CreateMode::Container, 0));
    assert_eq!(persistent.get("/c"), container.get("/c"));
    assert_ne!(persistent.digest(), container.digest());
}
