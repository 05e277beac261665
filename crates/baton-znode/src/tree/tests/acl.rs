//! Permission checks at apply time, SetAcl, and the shared ACL lists.

use super::*;
use crate::acl::{Acl, AclEntry, Id, Perms, digest_id, open_acl, parse_acl};
use crate::{QuotaLimits, SetAclOp, Stat};

fn acl(text: &str) -> Acl {
    parse_acl(text).unwrap()
}

fn create_acl(path: &str, acl: Acl) -> TxnOp {
    TxnOp::Create(CreateOp { acl, ..create_op(path, "", CreateMode::Persistent, 0) })
}

fn set_acl(path: &str, acl: Acl, version: i32) -> TxnOp {
    TxnOp::SetAcl(SetAclOp { path: path.into(), acl, version })
}

fn quota(path: &str) -> TxnOp {
    let limits = QuotaLimits { count_hard: Some(100), ..QuotaLimits::default() };
    TxnOp::SetQuota { path: path.into(), limits }
}

fn auth(ids: &[Id]) -> Auth {
    Auth::new(ids.to_vec())
}

fn no_auth(path: &str, perm: &'static str) -> ZnodeError {
    ZnodeError::NoAuth { path: path.into(), perm }
}

/// One operation and the one permission it needs: on `/p` for create and delete,
/// on `/p/n` for the rest.
struct Case {
    name: &'static str,
    perm: Perms,
    checked: &'static str,
    op: fn() -> TxnOp,
    /// The op index a refusal reports (multis).
    op_index: Option<usize>,
}

const CASES: &[Case] = &[
    Case {
        name: "create",
        perm: Perms::CREATE,
        checked: "/p",
        op_index: None,
        op: || create("/p/new", "x"),
    },
    Case {
        name: "create in multi",
        perm: Perms::CREATE,
        checked: "/p",
        op_index: Some(1),
        op: || {
            TxnOp::Multi(vec![
                MultiOp::SetData(set_op("/p/n", "changed", -1)),
                MultiOp::Create(create_op("/p/new", "", CreateMode::Persistent, 0)),
            ])
        },
    },
    Case {
        name: "delete",
        perm: Perms::DELETE,
        checked: "/p",
        op_index: None,
        op: || delete("/p/n", -1),
    },
    Case {
        name: "setData",
        perm: Perms::WRITE,
        checked: "/p/n",
        op_index: None,
        op: || set("/p/n", "y", -1),
    },
    Case {
        name: "multi check",
        perm: Perms::READ,
        checked: "/p/n",
        op_index: Some(0),
        op: || TxnOp::Multi(vec![check("/p/n", -1)]),
    },
    Case {
        name: "setACL",
        perm: Perms::ADMIN,
        checked: "/p/n",
        op_index: None,
        op: || set_acl("/p/n", open_acl(), -1),
    },
    Case {
        name: "setQuota",
        perm: Perms::ADMIN,
        checked: "/p/n",
        op_index: None,
        op: || quota("/p/n"),
    },
    Case {
        name: "removeQuota",
        perm: Perms::ADMIN,
        checked: "/p/n",
        op_index: None,
        op: || TxnOp::RemoveQuota { path: "/p/n".into() },
    },
];

/// `/p` and `/p/n` (with a quota, for removeQuota), both then given `acl`.
fn tree_with(case: &Case, acl: &Acl) -> DataTree {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/p", ""));
    ok(&mut tree, create("/p/n", ""));
    if case.name == "removeQuota" {
        ok(&mut tree, quota("/p/n"));
    }
    ok(&mut tree, set_acl("/p/n", acl.clone(), -1));
    ok(&mut tree, set_acl("/p", acl.clone(), -1));
    tree
}

/// Every permission but `perm` for everyone, and `perm` for `grantee` only.
fn all_but(perm: Perms, grantee: &Id) -> Acl {
    let others = Perms::from_bits(Perms::ALL.bits() & !perm.bits()).unwrap();
    vec![
        AclEntry { perms: others, id: Id::anyone() },
        AclEntry { perms: perm, id: grantee.clone() },
    ]
}

#[test]
fn each_operation_needs_its_one_permission() {
    let alice = Id::new("digest", digest_id("alice", "secret"));
    let grantees = [
        (alice.clone(), auth(std::slice::from_ref(&alice))),
        (Id::new("ip", "10.0.0.0/8"), auth(&[Id::new("ip", "10.1.2.3")])),
        (Id::new("ip", "fd00::/8"), auth(&[Id::new("ip", "fd12::1")])),
        (Id::new("x509", "CN=alice,O=baton"), auth(&[Id::new("x509", "CN=alice,O=baton")])),
    ];
    for case in CASES {
        for (grantee, granted) in &grantees {
            let acl = all_but(case.perm, grantee);
            let mut tree = tree_with(case, &acl);
            // Refused, naming the node checked; `fails_with` checks nothing changed.
            let strangers = [
                Auth::none(),
                auth(&[Id::new("digest", digest_id("alice", "wrong"))]),
                auth(&[Id::new("ip", "11.0.0.1")]),
                auth(&[Id::new("x509", "CN=mallory")]),
            ];
            for stranger in &strangers {
                let error = fails_with(&mut tree, 0, stranger, (case.op)());
                let expected = TxnError {
                    op_index: case.op_index,
                    error: no_auth(case.checked, case.perm.name()),
                };
                assert_eq!(error, expected, "{} by {stranger:?}, ACL {acl:?}", case.name);
            }
            ok_with(&mut tree, 0, granted, (case.op)());
        }
        let everyone = all_but(Perms::NONE, &Id::anyone());
        ok_with(&mut tree_with(case, &everyone), 0, &Auth::none(), (case.op)());
        let nobody = acl("world:anyone:");
        let superuser = auth(&[Id::super_user()]);
        ok_with(&mut tree_with(case, &nobody), 0, &superuser, (case.op)());
    }
}

#[test]
fn create_stores_the_acl_and_checks_it_again() {
    let mut tree = DataTree::new();
    let read_only = acl("world:anyone:r");
    ok(&mut tree, create_acl("/a", read_only.clone()));
    let (stored, stat) = tree.acl("/a").unwrap();
    assert_eq!(stored, read_only);
    assert_eq!(stat, tree.stat("/a").unwrap().unwrap());
    assert_eq!(tree.acl("/").unwrap().0, open_acl());
    assert_eq!(tree.acl("/baton").unwrap().0, open_acl());
    assert_eq!(tree.acl("/nope"), Err(ZnodeError::NoNode { path: "/nope".into() }));
    // From the log, an ACL is outside input: apply refuses what fixup would.
    for bad in [vec![], acl("auth::cdrwa"), acl("digest:alice:r"), acl("foo:bar:r")] {
        let e = fails(&mut tree, create_acl("/b", bad));
        assert!(matches!(e.error, ZnodeError::InvalidAcl { .. }), "{e:?}");
    }
    // READ only: no CREATE below it for anyone but the super identity.
    let e = fails(&mut tree, create("/a/b", ""));
    assert_eq!(e.error, no_auth("/a", "CREATE"));
    ok_with(&mut tree, 0, &auth(&[Id::super_user()]), create("/a/b", ""));
}

#[test]
fn set_acl_changes_only_the_acl_and_aversion() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", "x"));
    let before = tree.stat("/a").unwrap().unwrap();
    let digest = tree.digest();
    let applied = ok(&mut tree, set_acl("/a", acl("world:anyone:rwa"), 0));
    let after = tree.stat("/a").unwrap().unwrap();
    assert_eq!(after, Stat { aversion: 1, ..before }, "not mzxid, not version");
    assert_eq!(applied.result, OpResult::AclSet { stat: after });
    assert!(applied.changes.is_empty(), "ZooKeeper's setACL fires no watch");
    assert_ne!(tree.digest(), digest, "the digest covers ACLs");
    let e = fails(&mut tree, set_acl("/a", open_acl(), 0));
    assert_eq!(e.error, ZnodeError::BadVersion { path: "/a".into(), expected: 0, actual: 1 });
    let e = fails(&mut tree, set_acl("/nope", open_acl(), -1));
    assert_eq!(e.error, ZnodeError::NoNode { path: "/nope".into() });
    let e = fails(&mut tree, set_acl("/a", vec![], -1));
    assert!(matches!(e.error, ZnodeError::InvalidAcl { .. }));
    let e = fails(&mut tree, set_acl("/baton", open_acl(), -1));
    assert!(bad_arguments(&e.error));
    // The ACL is checked before the node, as ZooKeeper's fixupACL comes first.
    let e = fails(&mut tree, set_acl("/nope", vec![], -1));
    assert!(matches!(e.error, ZnodeError::InvalidAcl { .. }));
    // rw has no ADMIN: only the super identity may change it now.
    ok(&mut tree, set_acl("/a", acl("world:anyone:rw"), 1));
    let e = fails(&mut tree, set_acl("/a", open_acl(), -1));
    assert_eq!(e.error, no_auth("/a", "ADMIN"));
    // The ACL version wraps as Java's int.
    tree.nodes.get_mut("/a").unwrap().stat.aversion = i32::MAX;
    tree.digest = tree.recompute_digest();
    ok_with(&mut tree, 0, &auth(&[Id::super_user()]), set_acl("/a", open_acl(), i32::MAX));
    assert_eq!(tree.stat("/a").unwrap().unwrap().aversion, i32::MIN);
}

#[test]
fn an_acl_that_locks_everyone_out_is_allowed_and_super_can_undo_it() {
    let mut tree = DataTree::new();
    ok(&mut tree, create("/a", "x"));
    let alice = auth(&[Id::new("digest", digest_id("alice", "pw"))]);
    ok(&mut tree, set_acl("/a", acl("world:anyone:"), -1));
    for op in [set("/a", "y", -1), set_acl("/a", open_acl(), -1), create("/a/b", "")] {
        fails_with(&mut tree, 0, &alice, op.clone());
        fails(&mut tree, op);
    }
    assert!(matches!(
        tree.authorize("/a", &alice, Perms::READ),
        Err(ZnodeError::NoAuth { perm: "READ", .. })
    ));
    let superuser = auth(&[Id::super_user()]);
    assert_eq!(tree.authorize("/a", &superuser, Perms::READ), Ok(()));
    ok_with(&mut tree, 0, &superuser, set_acl("/a", open_acl(), -1));
    ok_with(&mut tree, 0, &alice, set("/a", "y", -1));
}

#[test]
fn authorize_reports_missing_nodes_and_refusals() {
    let mut tree = DataTree::new();
    ok(&mut tree, create_acl("/a", acl("world:anyone:r,ip:10.0.0.0/8:cdrwa")));
    let inside = auth(&[Id::new("ip", "10.9.9.9")]);
    assert_eq!(tree.authorize("/a", &Auth::none(), Perms::READ), Ok(()));
    assert_eq!(tree.authorize("/a", &Auth::none(), Perms::WRITE), Err(no_auth("/a", "WRITE")));
    assert_eq!(tree.authorize("/a", &inside, Perms::ADMIN), Ok(()));
    let either = Perms::READ.union(Perms::ADMIN);
    assert_eq!(tree.authorize("/a", &Auth::none(), either), Ok(()));
    assert_eq!(
        tree.authorize("/x", &inside, Perms::READ),
        Err(ZnodeError::NoNode { path: "/x".into() })
    );
    assert!(matches!(
        tree.authorize("x", &inside, Perms::READ),
        Err(ZnodeError::InvalidPath { .. })
    ));
}

#[test]
fn server_made_txns_are_not_checked() {
    let mut tree = DataTree::new();
    open(&mut tree, 5);
    ok(&mut tree, create("/p", ""));
    ok_as(&mut tree, 5, create_mode("/p/e", CreateMode::Ephemeral, 0));
    ok(&mut tree, create_mode("/p/c", CreateMode::Container, 0));
    ok(&mut tree, create("/p/c/x", ""));
    ok(&mut tree, delete("/p/c/x", -1));
    ok(&mut tree, set_acl("/p", acl("world:anyone:r"), -1));
    // Nobody may delete below /p now, but closing a session and reaping do.
    fails(&mut tree, delete("/p/c", -1));
    ok(&mut tree, TxnOp::CloseSession { session: 5 });
    assert_eq!(tree.stat("/p/e"), Ok(None));
    let zxid = tree.last_zxid() + 1;
    let reap = TxnOp::Reap { paths: vec!["/p/c".into()] };
    tree.apply(&Txn { auth: Auth::none(), zxid, time_ms: 0, session: 0, op: reap }).unwrap();
    assert_eq!(tree.stat("/p/c"), Ok(None));
}

#[test]
fn equal_lists_are_stored_once_and_freed_with_their_last_node() {
    let mut tree = DataTree::new();
    for i in 0..10 {
        ok(&mut tree, create_acl(&format!("/r{i}"), acl("world:anyone:r")));
    }
    ok(&mut tree, create_acl("/w", acl("world:anyone:w")));
    assert_eq!(tree.acls.len(), 3, "open, r and w");
    let r = tree.nodes["/r0"].acl;
    assert_eq!(tree.acls.refs(r), 10);
    assert!((1..10).all(|i| tree.nodes[format!("/r{i}").as_str()].acl == r));
    ok(&mut tree, delete("/w", -1));
    assert_eq!(tree.acls.len(), 2);
    ok_with(&mut tree, 0, &auth(&[Id::super_user()]), set_acl("/r0", open_acl(), -1));
    assert_eq!(tree.acls.refs(r), 9);
    // A freed slot is reused, and the contents decide equality, not slot numbers.
    ok(&mut tree, create_acl("/x", acl("world:anyone:c")));
    let decoded = DataTree::decode_snapshot(&tree.encode_snapshot()).unwrap();
    assert!(decoded == tree);
}

#[test]
fn rolled_back_multis_keep_reference_counts_exact() {
    let mut tree = DataTree::new();
    ok(&mut tree, create_acl("/only", acl("world:anyone:cdrw")));
    // Deletes the only holder of its list, creates a node with a new list, then
    // fails: the deleted node comes back with the same list, the new list goes.
    let op = TxnOp::Multi(vec![
        MultiOp::Delete(DeleteOp { path: "/only".into(), version: -1 }),
        MultiOp::Create(CreateOp {
            acl: acl("world:anyone:a"),
            ..create_op("/new", "", CreateMode::Persistent, 0)
        }),
        check("/missing", -1),
    ]);
    fails(&mut tree, op);
    assert_eq!(tree.acl("/only").unwrap().0, acl("world:anyone:cdrw"));
    assert_eq!(tree.acls.len(), 2);
    ok(&mut tree, delete("/only", -1));
    assert_eq!(tree.acls.len(), 1);
}

#[test]
fn trees_differing_only_in_an_acl_differ_in_digest() {
    let mut a = DataTree::new();
    let mut b = DataTree::new();
    ok(&mut a, create_acl("/x", acl("world:anyone:r")));
    ok(&mut b, create_acl("/x", acl("world:anyone:w")));
    assert_eq!(a.get("/x"), b.get("/x"));
    assert_ne!(a.digest(), b.digest());
    assert!(a != b);
}
