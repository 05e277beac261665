use super::*;

fn sample_txns() -> Vec<Txn> {
    let create = CreateOp {
        acl: crate::acl::open_acl(),
        path: "/a/é".into(),
        data: Bytes::from_static(b"\0data"),
        mode: CreateMode::PersistentSequentialWithTtl,
        ttl_ms: 5_000,
    };
    let ops = [
        TxnOp::Create(create.clone()),
        TxnOp::Delete(DeleteOp { path: "/a".into(), version: -1 }),
        TxnOp::SetData(SetDataOp { path: "/a".into(), data: Bytes::new(), version: i32::MAX }),
        TxnOp::Multi(vec![]),
        TxnOp::Multi(vec![
            MultiOp::Check(CheckOp { path: "/c".into(), version: i32::MIN }),
            MultiOp::Create(create),
            MultiOp::SetData(SetDataOp { path: "/s".into(), data: "x".into(), version: 3 }),
            MultiOp::Delete(DeleteOp { path: "/d".into(), version: 0 }),
        ]),
        TxnOp::CreateSession { session: u64::MAX, timeout_ms: u32::MAX, password: 7 },
        TxnOp::CloseSession { session: 7 },
        TxnOp::Reap { paths: vec!["/x".into(), "/y/z".into()] },
        TxnOp::Reap { paths: vec![] },
    ];
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| Txn {
            auth: crate::acl::Auth::none(),
            zxid: i as u64 + 1,
            time_ms: -(i as i64),
            session: 9,
            op,
        })
        .collect()
}

#[test]
fn every_op_round_trips() {
    for txn in sample_txns() {
        let bytes = encode_txn(&txn);
        assert_eq!(decode_txn(&bytes), Ok(txn));
    }
}

#[test]
fn every_truncation_is_an_error() {
    for txn in sample_txns() {
        let bytes = encode_txn(&txn);
        for len in 0..bytes.len() {
            assert!(decode_txn(&bytes[..len]).is_err(), "{txn:?} cut at {len}");
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode_txn(&sample_txns()[6]);
    bytes.push(0);
    let len = bytes.len();
    assert_eq!(
        decode_txn(&bytes),
        Err(DecodeError::Invalid { offset: len - 1, reason: "1 trailing bytes".into() })
    );
}

#[test]
fn unknown_version_and_tags_are_rejected() {
    let txn = Txn {
        auth: crate::acl::Auth::none(),
        zxid: 1,
        time_ms: 0,
        session: 0,
        op: TxnOp::CloseSession { session: 1 },
    };
    let mut bytes = encode_txn(&txn);
    assert_eq!(bytes, [2, 1, 0, 0, 0, OP_CLOSE_SESSION, 1]);
    // Version 1 (before ACLs) had no identities: it still decodes.
    assert_eq!(decode_txn(&[1, 1, 0, 0, OP_CLOSE_SESSION, 1]), Ok(txn));
    bytes[0] = 3;
    assert!(matches!(decode_txn(&bytes), Err(DecodeError::BadHeader(_))));
    bytes[0] = 2;
    bytes[5] = 99;
    assert_eq!(
        decode_txn(&bytes),
        Err(DecodeError::Invalid { offset: 5, reason: "unknown op tag 99".into() })
    );
    // A create with mode 7.
    let bytes = [1, 1, 0, 0, OP_CREATE, 2, b'/', b'a', 0, 7, 0];
    assert_eq!(
        decode_txn(&bytes),
        Err(DecodeError::Invalid { offset: 9, reason: "unknown mode 7".into() })
    );
}

#[test]
fn huge_counts_fail_before_allocating() {
    // A multi announcing 2^62 ops in a few bytes.
    let mut w = Writer::default();
    w.raw(&[1, 1, 0, 0, OP_MULTI]);
    w.varint(1 << 62);
    assert!(matches!(decode_txn(w.as_slice()), Err(DecodeError::Truncated { offset: 5, .. })));
    // A path claiming a length far beyond the input.
    let bytes = [1, 1, 0, 0, OP_DELETE, 0xff, 0xff, 0xff, 0x7f];
    assert!(matches!(decode_txn(&bytes), Err(DecodeError::Truncated { offset: 5, .. })));
}

#[test]
fn invalid_utf8_and_out_of_range_ints_are_rejected() {
    let bytes = [1, 1, 0, 0, OP_DELETE, 2, b'/', 0xff, 0];
    assert!(matches!(decode_txn(&bytes), Err(DecodeError::Invalid { offset: 5, .. })));
    // version 2^31 does not fit an i32 (zigzag: 2^32).
    let mut w = Writer::default();
    w.raw(&[1, 1, 0, 0, OP_DELETE, 2, b'/', b'a']);
    w.i64(1 << 31);
    assert!(matches!(decode_txn(w.as_slice()), Err(DecodeError::Invalid { offset: 8, .. })));
}
