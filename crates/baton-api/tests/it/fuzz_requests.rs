//! Fuzz targets, run as property tests over generated and mutated inputs: any bytes
//! a client can put in a request body go through prost decoding, the conversions to
//! domain ops, stateless validation and, when valid, `apply` on a tree — and none of
//! it may panic. A valid-looking request that fails must fail with a Baton error
//! code, and a failed apply must leave the tree's digest unchanged. ACLs go the
//! server's way too: made concrete for a caller (`acl::fixup_op`), then applied with
//! the caller's identities.

use baton_api::{convert, pb, status::error_from_status};
use baton_znode::{Auth, DataTree, Id, Limits, Txn, TxnOp, acl::fixup_op, validate_op};
use proptest::prelude::*;
use prost::Message;

/// Applies a decoded request the way the server would; never panics.
fn serve(tree: &mut DataTree, op: Result<TxnOp, tonic::Status>) {
    let op = match op {
        Ok(op) => op,
        Err(status) => {
            // A refusal is a Baton error with a known code, never an empty one.
            assert_ne!(error_from_status(&status).code, 0, "{status:?}");
            return;
        }
    };
    let auth = caller();
    let Ok(op) = fixup_op(op, &auth) else { return };
    if validate_op(&op, &Limits::default()).is_err() {
        return;
    }
    let before = tree.digest();
    let zxid = tree.last_zxid() + 1;
    if tree.apply(&Txn { auth, zxid, time_ms: 1, session: 0, op }).is_err() {
        assert_eq!(tree.digest(), before, "a failed txn changed the tree");
    }
    assert_eq!(tree.digest(), tree.recompute_digest());
}

/// The identities of the fuzzed caller: an address and a digest user.
fn caller() -> Auth {
    Auth::new(vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:aGFzaA==")])
}

fn decode_all(tree: &mut DataTree, bytes: &[u8]) {
    if let Ok(r) = pb::SetAclRequest::decode(bytes) {
        serve(tree, convert::set_acl_op_from_pb(r).map(TxnOp::SetAcl));
    }
    if let Ok(r) = pb::CreateRequest::decode(bytes) {
        serve(tree, convert::create_op_from_pb(r).map(TxnOp::Create));
    }
    if let Ok(r) = pb::DeleteRequest::decode(bytes) {
        serve(tree, Ok(TxnOp::Delete(convert::delete_op_from_pb(r))));
    }
    if let Ok(r) = pb::SetRequest::decode(bytes) {
        serve(tree, Ok(TxnOp::SetData(convert::set_op_from_pb(r))));
    }
    if let Ok(r) = pb::MultiRequest::decode(bytes) {
        serve(tree, convert::multi_ops_from_pb(r).map(TxnOp::Multi));
    }
    if let Ok(r) = pb::SessionRequest::decode(bytes) {
        // The session stream's first-level decoding: only shapes are checked here.
        let _ = r.kind;
    }
    for path in [
        pb::GetRequest::decode(bytes).map(|r| r.path),
        pb::ChildrenRequest::decode(bytes).map(|r| r.path),
    ]
    .into_iter()
    .flatten()
    {
        let _ = tree.get(&path);
        let _ = tree.children(&path);
        let _ = tree.stat(&path);
    }
}

/// Paths that are mostly plausible: the interesting failures are near valid ones.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        "(/[a-c]{1,2}){1,3}",
        "/baton(/[a-z]{0,3})?",
        ".{0,12}",
        Just("/".to_owned()),
        Just("/a/".to_owned()),
        Just("/a/../b".to_owned()),
    ]
}

/// ACL entries near valid ones: known and unknown schemes, good and bad ids,
/// permission bits in and out of range.
fn acl() -> impl Strategy<Value = Vec<pb::AclEntry>> {
    let schemes = vec!["world", "auth", "digest", "ip", "x509", "super", ""];
    let ids = vec!["anyone", "", "u:aGFzaA==", "127.0.0.0/8", "::1", "10.0.0.1/33", "CN=a"];
    let entry = (
        prop_oneof![0u32..32, any::<u32>()],
        prop::sample::select(schemes),
        prop_oneof![prop::sample::select(ids).prop_map(str::to_owned), ".{0,8}"],
    )
        .prop_map(|(perms, scheme, id)| pb::AclEntry { perms, scheme: scheme.to_owned(), id });
    prop::collection::vec(entry, 0..4)
}

fn create() -> impl Strategy<Value = pb::CreateRequest> {
    (
        path(),
        prop::collection::vec(any::<u8>(), 0..16),
        -2i32..9,
        prop_oneof![Just(0i64), any::<i64>()],
        acl(),
    )
        .prop_map(|(path, data, mode, ttl_ms, acl)| pb::CreateRequest {
            path,
            data: data.into(),
            mode,
            ttl_ms,
            session_id: 0,
            acl,
        })
}

fn op() -> impl Strategy<Value = pb::Op> {
    let version = prop_oneof![Just(-1i32), Just(0i32), any::<i32>()];
    prop_oneof![
        create().prop_map(pb::op::Op::Create),
        (path(), version.clone())
            .prop_map(|(path, version)| pb::op::Op::Delete(pb::DeleteRequest { path, version })),
        (path(), version.clone())
            .prop_map(|(path, version)| pb::op::Op::Check(pb::CheckOp { path, version })),
        (path(), version).prop_map(|(path, version)| pb::op::Op::Set(pb::SetRequest {
            path,
            data: Default::default(),
            version
        })),
    ]
    .prop_map(|op| pb::Op { op: Some(op) })
}

fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        create().prop_map(|r| r.encode_to_vec()),
        (path(), acl(), -1i32..2).prop_map(|(path, acl, version)| {
            pb::SetAclRequest { path, acl, version }.encode_to_vec()
        }),
        prop::collection::vec(op(), 0..6).prop_map(|ops| pb::MultiRequest { ops }.encode_to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Flips, truncates or extends encoded bytes.
fn mutate(mut bytes: Vec<u8>, at: prop::sample::Index, byte: u8, how: u8) -> Vec<u8> {
    if bytes.is_empty() {
        return vec![byte];
    }
    let i = at.index(bytes.len());
    match how % 3 {
        0 => bytes[i] ^= byte | 1,
        1 => bytes.truncate(i),
        _ => bytes.insert(i, byte),
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn requests_never_panic_the_server_path(requests in prop::collection::vec(request_bytes(), 1..12)) {
        let mut tree = DataTree::new();
        for bytes in &requests {
            decode_all(&mut tree, bytes);
        }
    }

    #[test]
    fn mutated_requests_never_panic(bytes in request_bytes(), at in any::<prop::sample::Index>(), byte in any::<u8>(), how in any::<u8>()) {
        let mut tree = DataTree::new();
        decode_all(&mut tree, &mutate(bytes, at, byte, how));
    }
}
