//! Byte vectors written by hand from `zookeeper.jute`, field by field, so the codec is
//! checked against the spec rather than against itself.

use baton_jute::*;
use bytes::{Bytes, BytesMut};

/// The 16-byte password used below: 0x00, 0x01, ..., 0x0f.
fn passwd() -> Bytes {
    (0..16u8).collect::<Vec<_>>().into()
}

fn connect_request_bytes() -> Vec<u8> {
    let mut bytes = vec![
        0x00, 0x00, 0x00, 0x00, // protocolVersion: 0
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // lastZxidSeen: 0x1_0000_0002
        0x00, 0x00, 0x75, 0x30, // timeOut: 30000 ms
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // sessionId
        0x00, 0x00, 0x00, 0x10, // passwd: length 16
    ];
    bytes.extend(0..16u8); // passwd: the bytes
    bytes
}

fn connect_request(read_only: Option<bool>) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x1_0000_0002,
        timeout_ms: 30_000,
        session_id: 0x0102_0304_0506_0708,
        passwd: passwd(),
        read_only,
    }
}

#[test]
fn connect_request_without_read_only_is_44_bytes() {
    let bytes = connect_request_bytes();
    assert_eq!(bytes.len(), 44);
    assert_eq!(connect_request(None).to_bytes(), bytes);
    assert_eq!(ConnectRequest::from_bytes(bytes.into()), Ok(connect_request(None)));
}

#[test]
fn connect_request_with_read_only_is_45_bytes() {
    let mut bytes = connect_request_bytes();
    bytes.push(0x01); // readOnly: true
    assert_eq!(bytes.len(), 45);
    assert_eq!(connect_request(Some(true)).to_bytes(), bytes);
    assert_eq!(ConnectRequest::from_bytes(bytes.into()), Ok(connect_request(Some(true))));
}

/// As ZooKeeper's server: the byte after the password is the flag (any non-zero
/// byte is true) and whatever follows is ignored.
#[test]
fn connect_request_bytes_after_the_flag_are_ignored() {
    let mut bytes = connect_request_bytes();
    bytes.extend([0x00, 0x07]);
    assert_eq!(ConnectRequest::from_bytes(bytes.into()), Ok(connect_request(Some(false))));
    let mut bytes = connect_request_bytes();
    bytes.push(0x02);
    assert_eq!(ConnectRequest::from_bytes(bytes.into()), Ok(connect_request(Some(true))));
}

#[test]
fn connect_response_frame() {
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4_000,
        session_id: 0x0102_0304_0506_0708,
        passwd: passwd(),
        read_only: Some(false),
    };
    let mut expected = vec![
        0x00, 0x00, 0x00, 0x25, // frame length: 37
        0x00, 0x00, 0x00, 0x00, // protocolVersion: 0
        0x00, 0x00, 0x0f, 0xa0, // timeOut: 4000 ms
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // sessionId
        0x00, 0x00, 0x00, 0x10, // passwd: length 16
    ];
    expected.extend(0..16u8); // passwd: the bytes
    expected.push(0x00); // readOnly: false
    assert_eq!(encode_record_frame(&response), expected);
}

#[test]
fn create_request_frame() {
    let frame: &[u8] = &[
        0x00, 0x00, 0x00, 0x33, // frame length: 51
        0x00, 0x00, 0x00, 0x07, // RequestHeader.xid: 7
        0x00, 0x00, 0x00, 0x01, // RequestHeader.type: create
        0x00, 0x00, 0x00, 0x02, b'/', b'a', // path: "/a"
        0x00, 0x00, 0x00, 0x02, b'h', b'i', // data: "hi"
        0x00, 0x00, 0x00, 0x01, // acl: one entry
        0x00, 0x00, 0x00, 0x1f, // perms: ALL
        0x00, 0x00, 0x00, 0x05, b'w', b'o', b'r', b'l', b'd', // id.scheme: "world"
        0x00, 0x00, 0x00, 0x06, b'a', b'n', b'y', b'o', b'n', b'e', // id.id: "anyone"
        0x00, 0x00, 0x00, 0x01, // flags: EPHEMERAL
    ];
    let mut buffer = BytesMut::from(frame);
    let payload = FrameDecoder::default().decode(&mut buffer).unwrap().unwrap();
    let (header, request) = decode_request(payload).unwrap();
    assert_eq!(header, RequestHeader { xid: 7, op: OpCode::Create.code() });
    let create = CreateRequest {
        path: "/a".into(),
        data: Some(Bytes::from_static(b"hi")),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id { scheme: "world".into(), id: "anyone".into() },
        }],
        flags: CreateMode::Ephemeral.code(),
    };
    assert_eq!(request, Request::Create(create));
}

#[test]
fn null_data_is_not_empty_data() {
    let null: &[u8] = &[
        0x00, 0x00, 0x00, 0x02, b'/', b'a', // path
        0xff, 0xff, 0xff, 0xff, // data: null
        0xff, 0xff, 0xff, 0xff, // version: -1, any
    ];
    let decoded = SetDataRequest::from_bytes(Bytes::from_static(null)).unwrap();
    assert_eq!(decoded.data, None);
    assert_eq!(decoded.to_bytes(), null);
    let empty = SetDataRequest { data: Some(Bytes::new()), ..decoded };
    assert_eq!(empty.to_bytes()[6..10], [0, 0, 0, 0]);
}

#[test]
fn reply_header_with_an_error_has_no_body() {
    let header = ReplyHeader { xid: 7, zxid: 0x1_0000_0010, err: ErrorCode::NoNode.code() };
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x10, // frame length: 16
        0x00, 0x00, 0x00, 0x07, // xid: 7
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, // zxid
        0xff, 0xff, 0xff, 0x9b, // err: NONODE, -101
    ];
    assert_eq!(encode_reply(&header, &()), expected);
}

#[test]
fn watcher_event_notification() {
    let header = ReplyHeader { xid: xid::NOTIFICATION, zxid: -1, err: 0 };
    let event = WatcherEvent {
        event_type: EventType::NodeDataChanged.code(),
        state: KeeperState::SyncConnected.code(),
        path: "/a".into(),
    };
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x1e, // frame length: 30
        0xff, 0xff, 0xff, 0xff, // xid: notification, -1
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // zxid: -1
        0x00, 0x00, 0x00, 0x00, // err: OK
        0x00, 0x00, 0x00, 0x03, // type: NodeDataChanged
        0x00, 0x00, 0x00, 0x03, // state: SyncConnected
        0x00, 0x00, 0x00, 0x02, b'/', b'a', // path
    ];
    assert_eq!(encode_reply(&header, &event), expected);
}

#[test]
fn multi_request_ends_with_done_header() {
    let multi = MultiRequest {
        ops: vec![MultiOp::Delete(DeleteRequest { path: "/a".into(), version: 3 })],
    };
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x02, // MultiHeader.type: delete
        0x00, // done: false
        0xff, 0xff, 0xff, 0xff, // err: -1
        0x00, 0x00, 0x00, 0x02, b'/', b'a', // path
        0x00, 0x00, 0x00, 0x03, // version: 3
        0xff, 0xff, 0xff, 0xff, // MultiHeader.type: -1
        0x01, // done: true
        0xff, 0xff, 0xff, 0xff, // err: -1
    ];
    assert_eq!(multi.to_bytes(), expected);
    assert_eq!(MultiRequest::from_bytes(Bytes::from_static(expected)), Ok(multi));
}

#[test]
fn multi_response_error_result() {
    let response = MultiResponse {
        results: vec![
            MultiResult::Check,
            MultiResult::Error(ErrorResponse { err: ErrorCode::BadVersion.code() }),
        ],
    };
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, // check, not done, OK
        0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0x99, // error, not done, BADVERSION
        0xff, 0xff, 0xff, 0x99, // ErrorResponse.err: BADVERSION, -103
        0xff, 0xff, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff, 0xff, // end
    ];
    assert_eq!(response.to_bytes(), expected);
    assert_eq!(MultiResponse::from_bytes(Bytes::from_static(expected)), Ok(response));
}

#[test]
fn stat_is_68_bytes_in_zookeeper_field_order() {
    let stat = Stat {
        czxid: 1,
        mzxid: 2,
        ctime: 3,
        mtime: 4,
        version: 5,
        cversion: 6,
        aversion: 7,
        ephemeral_owner: 8,
        data_length: 9,
        num_children: 10,
        pzxid: 11,
    };
    let bytes = stat.to_bytes();
    assert_eq!(bytes.len(), 68);
    assert_eq!(bytes[..8], 1i64.to_be_bytes()); // czxid
    assert_eq!(bytes[32..36], 5i32.to_be_bytes()); // version
    assert_eq!(bytes[44..52], 8i64.to_be_bytes()); // ephemeralOwner
    assert_eq!(bytes[60..68], 11i64.to_be_bytes()); // pzxid
}

#[test]
fn opcodes_and_codes_are_zookeepers() {
    assert_eq!(OpCode::GetChildren2.code(), 12);
    assert_eq!(OpCode::CreateTtl.code(), 21);
    assert_eq!(OpCode::WhoAmI.code(), 107);
    assert_eq!(OpCode::CloseSession.code(), -11);
    assert_eq!(ErrorCode::SessionExpired.code(), -112);
    assert_eq!(ErrorCode::ThrottledOp.code(), -127);
    assert_eq!(KeeperState::Expired.code(), -112);
    assert_eq!(CreateMode::PersistentSequentialWithTtl.code(), 6);
    assert_eq!(WatcherType::Any.code(), 3);
    assert_eq!((xid::NOTIFICATION, xid::PING, xid::AUTH, xid::SET_WATCHES), (-1, -2, -4, -8));
}
