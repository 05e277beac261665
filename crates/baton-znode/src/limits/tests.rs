use bytes::Bytes;

use super::*;
use crate::{CheckOp, DeleteOp, SetDataOp};

fn create(path: &str, mode: CreateMode, ttl_ms: i64) -> CreateOp {
    CreateOp { acl: crate::acl::open_acl(), path: path.into(), data: Bytes::new(), mode, ttl_ms }
}

fn err(op: &TxnOp) -> ZnodeError {
    validate_op(op, &Limits::default()).unwrap_err().error
}

#[test]
fn valid_ops_pass() {
    let limits = Limits::default();
    let ops = [
        TxnOp::Create(create("/a", CreateMode::Persistent, 0)),
        TxnOp::Create(create("/a/", CreateMode::PersistentSequential, 0)),
        TxnOp::Create(create("/", CreateMode::EphemeralSequential, 0)),
        TxnOp::Create(create("/batonx", CreateMode::Persistent, 0)),
        TxnOp::Create(create("/baton", CreateMode::PersistentSequential, 0)),
        TxnOp::Create(create("/t", CreateMode::PersistentWithTtl, TTL_MS_MAX)),
        TxnOp::Delete(DeleteOp { path: "/a".into(), version: -1 }),
        TxnOp::SetData(SetDataOp { path: "/".into(), data: Bytes::new(), version: 0 }),
        TxnOp::Multi(vec![]),
        TxnOp::CreateSession { session: 1, timeout_ms: 1, password: 7 },
        TxnOp::CloseSession { session: 1 },
        TxnOp::Reap { paths: vec!["/a".into()] },
    ];
    for op in ops {
        assert_eq!(validate_op(&op, &limits), Ok(()), "{op:?}");
    }
}

#[test]
fn paths_are_checked() {
    let e = err(&TxnOp::Create(create("/a/", CreateMode::Persistent, 0)));
    assert!(matches!(e, ZnodeError::InvalidPath { ref path, .. } if path == "/a/"));
    let e = err(&TxnOp::Create(create("/a//", CreateMode::PersistentSequential, 0)));
    assert!(matches!(e, ZnodeError::InvalidPath { ref path, .. } if path == "/a//"));
    let e = err(&TxnOp::Delete(DeleteOp { path: "a".into(), version: -1 }));
    assert!(matches!(e, ZnodeError::InvalidPath { .. }));
    let e = err(&TxnOp::Reap { paths: vec!["/ok".into(), "/x/..".into()] });
    assert!(matches!(e, ZnodeError::InvalidPath { ref path, .. } if path == "/x/.."));
}

#[test]
fn path_length_limit() {
    let limits = Limits { path_bytes_max: 4, ..Limits::default() };
    assert_eq!(
        validate_op(&TxnOp::Create(create("/abc", CreateMode::Persistent, 0)), &limits),
        Ok(())
    );
    let e = validate_op(&TxnOp::Create(create("/abcd", CreateMode::Persistent, 0)), &limits);
    assert_eq!(
        e.unwrap_err().error,
        ZnodeError::InvalidPath { path: "/abcd".into(), reason: "path longer than path_bytes_max" }
    );
    // The sequential suffix is not counted (it is not known yet), only the probe digit.
    let e =
        validate_op(&TxnOp::Create(create("/abc", CreateMode::PersistentSequential, 0)), &limits);
    assert!(e.is_err());
}

#[test]
fn data_size_limit() {
    let limits = Limits { data_bytes_max: 3, ..Limits::default() };
    let big = Bytes::from_static(b"1234");
    let op = TxnOp::SetData(SetDataOp { path: "/a".into(), data: big.clone(), version: -1 });
    assert_eq!(
        validate_op(&op, &limits).unwrap_err().error,
        ZnodeError::DataTooLarge { path: "/a".into(), len: 4, max: 3 }
    );
    let op = TxnOp::Create(CreateOp { data: big, ..create("/b", CreateMode::Persistent, 0) });
    assert!(matches!(
        validate_op(&op, &limits).unwrap_err().error,
        ZnodeError::DataTooLarge { len: 4, .. }
    ));
}

#[test]
fn ttl_must_match_mode() {
    for (mode, ttl) in [
        (CreateMode::PersistentWithTtl, 0),
        (CreateMode::PersistentSequentialWithTtl, -5),
        (CreateMode::PersistentWithTtl, TTL_MS_MAX + 1),
        (CreateMode::Persistent, 10),
        (CreateMode::Container, 10),
        (CreateMode::Ephemeral, 1),
    ] {
        let e = err(&TxnOp::Create(create("/t", mode, ttl)));
        assert!(matches!(e, ZnodeError::BadArguments { .. }), "{mode:?} {ttl}: {e:?}");
    }
}

#[test]
fn versions_below_minus_one_are_rejected() {
    let e = err(&TxnOp::Delete(DeleteOp { path: "/a".into(), version: -2 }));
    assert!(matches!(e, ZnodeError::BadArguments { .. }));
    let e = err(&TxnOp::Multi(vec![MultiOp::Check(CheckOp { path: "/a".into(), version: -7 })]));
    assert!(matches!(e, ZnodeError::BadArguments { .. }));
}

#[test]
fn reserved_paths_are_rejected() {
    for op in [
        TxnOp::Create(create("/baton", CreateMode::Persistent, 0)),
        TxnOp::Create(create("/baton/x", CreateMode::Persistent, 0)),
        TxnOp::Create(create("/baton/", CreateMode::PersistentSequential, 0)),
        TxnOp::Delete(DeleteOp { path: "/baton".into(), version: -1 }),
        TxnOp::SetData(SetDataOp { path: "/baton/x".into(), data: Bytes::new(), version: -1 }),
        TxnOp::Multi(vec![MultiOp::Check(CheckOp { path: "/baton".into(), version: -1 })]),
    ] {
        assert!(matches!(err(&op), ZnodeError::BadArguments { .. }), "{op:?}");
    }
}

#[test]
fn multi_errors_carry_the_op_index() {
    let ops = vec![
        MultiOp::Check(CheckOp { path: "/a".into(), version: -1 }),
        MultiOp::Create(create("/b", CreateMode::Persistent, 0)),
        MultiOp::Delete(DeleteOp { path: "/c/".into(), version: -1 }),
    ];
    let e = validate_op(&TxnOp::Multi(ops), &Limits::default()).unwrap_err();
    assert_eq!(e.op_index, Some(2));
    assert!(matches!(e.error, ZnodeError::InvalidPath { ref path, .. } if path == "/c/"));
}

#[test]
fn multi_size_limit() {
    let limits = Limits { multi_ops_max: 2, ..Limits::default() };
    let check = MultiOp::Check(CheckOp { path: "/a".into(), version: -1 });
    let ok = TxnOp::Multi(vec![check.clone(), check.clone()]);
    assert_eq!(validate_op(&ok, &limits), Ok(()));
    let e = validate_op(&TxnOp::Multi(vec![check.clone(), check.clone(), check]), &limits);
    let e = e.unwrap_err();
    assert_eq!(e.op_index, None);
    assert!(matches!(e.error, ZnodeError::BadArguments { .. }));
}

#[test]
fn session_ops_sanity() {
    assert!(matches!(
        err(&TxnOp::CreateSession { session: 1, timeout_ms: 0, password: 7 }),
        ZnodeError::BadArguments { .. }
    ));
    assert!(matches!(
        err(&TxnOp::CreateSession { session: 0, timeout_ms: 10, password: 7 }),
        ZnodeError::BadArguments { .. }
    ));
    assert!(matches!(err(&TxnOp::CloseSession { session: 0 }), ZnodeError::BadArguments { .. }));
}
