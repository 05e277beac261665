use super::super::node::NodeKind;
use super::*;
use crate::DecodeError;
use crate::tree::snapshot::{encode_listed, encode_with_table};

/// A tree with one of everything: sessions, ephemerals, containers, TTL nodes,
/// sequential nodes, data, and a non-zero last_zxid.
fn rich_tree() -> DataTree {
    let mut tree = DataTree::new();
    open(&mut tree, 4);
    open(&mut tree, 11);
    ok(&mut tree, create("/app", "config"));
    ok(&mut tree, create_mode("/app/c", CreateMode::Container, 0));
    ok(&mut tree, create_mode("/app/c/t", CreateMode::PersistentSequentialWithTtl, 60_000));
    ok_as(&mut tree, 4, create_mode("/app/e", CreateMode::EphemeralSequential, 0));
    ok_as(&mut tree, 11, create_mode("/app!", CreateMode::Ephemeral, 0));
    ok(&mut tree, set("/app", "v2", 0));
    ok(&mut tree, create("/z", ""));
    tree
}

#[test]
fn snapshot_round_trips_contents_digest_and_indexes() {
    let tree = rich_tree();
    let bytes = tree.encode_snapshot();
    let decoded = DataTree::decode_snapshot(&bytes).unwrap();
    assert!(decoded == tree);
    assert_eq!(decoded.digest(), tree.digest());
    assert_eq!(decoded.last_zxid(), tree.last_zxid());
    assert_eq!(decoded.ephemerals(4), tree.ephemerals(4));
    assert_eq!(decoded.encode_snapshot(), bytes, "one tree, one encoding");
    // The decoded tree keeps working: closing a session deletes its ephemerals.
    let mut decoded = decoded;
    ok(&mut decoded, TxnOp::CloseSession { session: 11 });
    assert_eq!(decoded.stat("/app!"), Ok(None));
}

#[test]
fn snapshot_of_a_new_tree_round_trips() {
    let tree = DataTree::new();
    assert!(DataTree::decode_snapshot(&tree.encode_snapshot()).unwrap() == tree);
}

#[test]
fn damaged_snapshots_are_rejected() {
    let bytes = rich_tree().encode_snapshot();
    let mut flipped = bytes.clone();
    flipped[20] ^= 1;
    assert!(matches!(DataTree::decode_snapshot(&flipped), Err(DecodeError::Checksum { .. })));
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert!(matches!(DataTree::decode_snapshot(&magic), Err(DecodeError::BadHeader(_))));
    let mut version = bytes.clone();
    version[8] = 9;
    assert!(matches!(DataTree::decode_snapshot(&version), Err(DecodeError::BadHeader(_))));
    for len in [0, 5, 12, bytes.len() - 1] {
        assert!(DataTree::decode_snapshot(&bytes[..len]).is_err(), "cut at {len}");
    }
}

/// Every path of `tree`, ascending (version 1's order).
fn sorted_paths(tree: &DataTree) -> Vec<&str> {
    let mut paths: Vec<&str> = tree.nodes.keys().map(String::as_str).collect();
    paths.sort_unstable();
    paths
}

fn invalid_reason(bytes: &[u8]) -> String {
    match DataTree::decode_snapshot(bytes) {
        Err(DecodeError::Invalid { reason, .. }) => reason,
        other => panic!("expected an invalid snapshot, got {other:?}"),
    }
}

/// Encodes a tree broken by `damage` (in path order, as version 1: the encoder
/// trusts its input and walks a well-formed tree, the decoder must not trust
/// anything) and returns the decode error's reason.
fn decode_damaged(damage: impl FnOnce(&mut DataTree)) -> String {
    let mut tree = rich_tree();
    damage(&mut tree);
    invalid_reason(&encode_listed(&tree, 1, &sorted_paths(&tree)))
}

#[test]
fn version_1_snapshots_still_decode() {
    let tree = rich_tree();
    let decoded = DataTree::decode_snapshot(&encode_listed(&tree, 1, &sorted_paths(&tree)));
    assert!(decoded.unwrap() == tree);
}

/// Version 2 takes the nodes in preorder with siblings in name order, and nothing
/// else: not path order (`/app!` sorts between `/app` and `/app/c`), not siblings
/// out of order, not a node twice.
#[test]
fn version_2_takes_preorder_only() {
    let tree = rich_tree();
    let paths = sorted_paths(&tree);
    assert!(paths.contains(&"/app!") && paths.contains(&"/app/c"), "{paths:?}");
    let reason = invalid_reason(&encode_listed(&tree, 2, &paths));
    assert!(reason.contains("not in preorder"), "{reason}");
    let reason = invalid_reason(&encode_listed(&tree, 2, &["/", "/z", "/baton"]));
    assert!(reason.contains("name order"), "{reason}");
    let reason = invalid_reason(&encode_listed(&tree, 2, &["/", "/baton", "/z", "/z"]));
    assert!(reason.contains("name order"), "{reason}");
}

#[test]
fn structurally_invalid_snapshots_are_rejected() {
    let node = |tree: &mut DataTree, path: &str| tree.nodes.get_mut(path).unwrap().clone();
    let reason = decode_damaged(|t| t.nodes.get_mut("/app").unwrap().stat.num_children = 7);
    assert!(reason.contains("num_children"), "{reason}");
    let reason = decode_damaged(|t| {
        t.sessions.remove(&11);
    });
    assert!(reason.contains("not an open session"), "{reason}");
    let reason = decode_damaged(|t| {
        t.nodes.remove("/baton");
    });
    assert!(reason.contains("/baton missing"), "{reason}");
    let reason = decode_damaged(|t| {
        let orphan = node(t, "/z");
        t.nodes.insert("/nowhere/x".into(), orphan);
    });
    assert!(reason.contains("parent of /nowhere/x missing"), "{reason}");
    let reason = decode_damaged(|t| {
        let child = node(t, "/z");
        t.nodes.insert("/app!/child".into(), child);
    });
    assert!(reason.contains("child of an ephemeral"), "{reason}");
    let reason = decode_damaged(|t| t.nodes.get_mut("/z").unwrap().stat.ephemeral_owner = 4);
    assert!(reason.contains("disagrees with kind"), "{reason}");
    let reason = decode_damaged(|t| t.nodes.get_mut("/z").unwrap().kind = NodeKind::Ephemeral);
    assert!(reason.contains("disagrees with kind"), "{reason}");
    let reason = decode_damaged(|t| t.nodes.get_mut("/z").unwrap().stat.data_length = 3);
    assert!(reason.contains("data_length"), "{reason}");
    let reason = decode_damaged(|t| {
        t.nodes.get_mut("/z").unwrap().kind = NodeKind::ttl(0);
    });
    assert!(reason.contains("bad kind"), "{reason}");
    let reason = decode_damaged(|t| {
        let bad = node(t, "/z");
        t.nodes.insert("/a//b".into(), bad);
    });
    assert!(reason.contains("invalid path"), "{reason}");
    let reason = decode_damaged(|t| {
        t.nodes.remove("/");
    });
    assert!(reason.contains("not /"), "{reason}");
}

/// `rich_tree` with a few ACLs: some shared, one with every scheme.
fn tree_with_acls() -> DataTree {
    let mut tree = rich_tree();
    let acl = |text: &str| crate::acl::parse_acl(text).unwrap();
    let many = acl("digest:alice:abc=:cdrwa,ip:10.0.0.0/8:r,ip:fd00::/8:w,x509:CN=bob:a");
    for (path, acl) in
        [("/z", acl("world:anyone:r")), ("/app/c", acl("world:anyone:r")), ("/app", many)]
    {
        ok(&mut tree, TxnOp::SetAcl(crate::SetAclOp { path: path.into(), acl, version: -1 }));
    }
    tree
}

#[test]
fn acls_round_trip_stored_once() {
    let tree = tree_with_acls();
    let bytes = tree.encode_snapshot();
    let decoded = DataTree::decode_snapshot(&bytes).unwrap();
    assert!(decoded == tree);
    for path in ["/", "/z", "/app", "/app/c", "/app/e0000000002"] {
        assert_eq!(decoded.acl(path), tree.acl(path), "{path}");
    }
    assert_eq!(decoded.acls.len(), 3);
    assert_eq!(decoded.encode_snapshot(), bytes, "one tree, one encoding");
    // The shared list is written once: one more node with it adds no ACL bytes.
    let mut more = tree.clone();
    let r = crate::acl::parse_acl("world:anyone:r").unwrap();
    let op = CreateOp { acl: r, ..create_op("/y", "", CreateMode::Persistent, 0) };
    ok(&mut more, TxnOp::Create(op));
    let mut plain = tree;
    ok(&mut plain, create("/y", ""));
    assert_eq!(more.encode_snapshot().len(), plain.encode_snapshot().len());
}

#[test]
fn older_versions_decode_with_open_acls() {
    let tree = tree_with_acls();
    let mut paths = Vec::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(path) = stack.pop() {
        let (names, _) = tree.children(&path).unwrap();
        let prefix = if path == "/" { String::new() } else { path.clone() };
        stack.extend(names.iter().rev().map(|n| format!("{prefix}/{n}")));
        paths.push(path);
    }
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    for (version, paths) in [(2, paths.clone()), (1, sorted_paths(&tree))] {
        let decoded = DataTree::decode_snapshot(&encode_listed(&tree, version, &paths)).unwrap();
        assert!(paths.iter().all(|p| decoded.acl(p).unwrap().0 == crate::acl::open_acl()));
        assert_eq!(decoded.acls.len(), 1);
        assert_eq!(decoded.digest(), decoded.recompute_digest());
    }
}

#[test]
fn bad_acl_records_are_rejected() {
    use crate::codec::wire::Writer;
    let tree = DataTree::new();
    let open = crate::acl::open_acl();
    let read = crate::acl::parse_acl("world:anyone:r").unwrap();
    let table = |acls: Vec<Vec<crate::acl::AclEntry>>| {
        move |w: &mut Writer| {
            w.len(acls.len());
            for acl in &acls {
                crate::codec::write_acl(w, acl);
            }
        }
    };
    let both = [("/", 0), ("/baton", 0)];
    let reason = |bytes: Vec<u8>| invalid_reason(&bytes);
    let good = encode_with_table(&tree, table(vec![open.clone()]), &both);
    assert!(DataTree::decode_snapshot(&good).unwrap() == tree);
    let r = reason(encode_with_table(&tree, table(vec![open.clone()]), &[("/", 0), ("/baton", 1)]));
    assert!(r.contains("ACL index 1 not in the table"), "{r}");
    let r = reason(encode_with_table(&tree, table(vec![read.clone(), open.clone()]), &both));
    assert!(r.contains("ACL 1 of the table is used by no node"), "{r}");
    let r = reason(encode_with_table(&tree, table(vec![open.clone(), read]), &both));
    assert!(r.contains("content order"), "{r}");
    let r = reason(encode_with_table(&tree, table(vec![open.clone(), open]), &both));
    assert!(r.contains("content order"), "{r}");
    let r = reason(encode_with_table(&tree, table(vec![vec![]]), &both));
    assert!(r.contains("empty"), "{r}");
    let unknown = crate::acl::parse_acl("foo:bar:r").unwrap();
    let r = reason(encode_with_table(&tree, table(vec![unknown]), &both));
    assert!(r.contains("unknown scheme"), "{r}");
    let raw_perms = |w: &mut Writer| {
        w.len(1);
        w.len(1);
        w.u8(0x40);
        w.str("world");
        w.str("anyone");
    };
    let r = reason(encode_with_table(&tree, raw_perms, &both));
    assert!(r.contains("permission bits"), "{r}");
}
