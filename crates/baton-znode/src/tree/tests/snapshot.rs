use super::super::node::NodeKind;
use super::*;
use crate::DecodeError;
use crate::tree::snapshot::encode_listed;

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
