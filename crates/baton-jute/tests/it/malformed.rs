//! Malformed input: each kind of damage is its own specific error.

use baton_jute::*;
use bytes::{Bytes, BytesMut};

fn request(op: OpCode, body: &[u8]) -> Result<Request, DecodeError> {
    Request::decode(op.code(), Bytes::copy_from_slice(body))
}

#[test]
fn negative_vector_length() {
    let body = [0xff, 0xff, 0xff, 0xfe]; // children: count -2
    assert_eq!(
        GetChildrenResponse::from_bytes(Bytes::copy_from_slice(&body)),
        Err(DecodeError::NegativeLength { length: -2 })
    );
}

#[test]
fn null_vector_decodes_as_empty() {
    let body = [0xff, 0xff, 0xff, 0xff];
    let decoded = GetChildrenResponse::from_bytes(Bytes::copy_from_slice(&body)).unwrap();
    assert!(decoded.children.is_empty());
}

#[test]
fn vector_count_beyond_the_input_is_refused_before_allocating() {
    let body = [0x7f, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00];
    assert_eq!(
        GetChildrenResponse::from_bytes(Bytes::copy_from_slice(&body)),
        Err(DecodeError::CountBeyondInput {
            count: i32::MAX as usize,
            bytes_min: i32::MAX as usize * 4,
            remaining: 4,
        })
    );
}

#[test]
fn string_length_beyond_the_frame() {
    let body = [0x00, 0x00, 0x00, 0x09, b'/', b'a', 0x00];
    assert_eq!(
        request(OpCode::Exists, &body),
        Err(DecodeError::LengthBeyondInput { length: 9, remaining: 3 })
    );
}

#[test]
fn negative_string_length() {
    let body = [0x80, 0x00, 0x00, 0x00];
    assert_eq!(request(OpCode::Sync, &body), Err(DecodeError::NegativeLength { length: i32::MIN }));
}

#[test]
fn null_path_is_refused() {
    let body = [0xff, 0xff, 0xff, 0xff];
    assert_eq!(request(OpCode::Sync, &body), Err(DecodeError::UnexpectedNull));
}

#[test]
fn truncated_record() {
    let body = [0x00, 0x00, 0x00, 0x02, b'/', b'a', 0x00, 0x00]; // version cut short
    assert_eq!(
        request(OpCode::Delete, &body),
        Err(DecodeError::Truncated { needed: 4, remaining: 2 })
    );
}

#[test]
fn invalid_utf8() {
    let body = [0x00, 0x00, 0x00, 0x02, b'/', 0xff, 0x00];
    assert_eq!(request(OpCode::Exists, &body), Err(DecodeError::InvalidUtf8));
}

#[test]
fn boolean_other_than_0_or_1() {
    let body = [0x00, 0x00, 0x00, 0x02, b'/', b'a', 0x02];
    assert_eq!(request(OpCode::Exists, &body), Err(DecodeError::InvalidBoolean { byte: 2 }));
}

#[test]
fn trailing_bytes_after_a_body() {
    let body = [0x00, 0x00, 0x00, 0x02, b'/', b'a', 0x00, 0xaa];
    assert_eq!(request(OpCode::Exists, &body), Err(DecodeError::TrailingBytes { remaining: 1 }));
}

#[test]
fn body_on_a_request_that_has_none() {
    assert_eq!(request(OpCode::Ping, &[0x00]), Err(DecodeError::TrailingBytes { remaining: 1 }));
}

#[test]
fn multi_with_an_op_zookeeper_refuses() {
    let body = [0x00, 0x00, 0x00, 0x03, 0x00, 0xff, 0xff, 0xff, 0xff]; // exists
    assert_eq!(request(OpCode::Multi, &body), Err(DecodeError::InvalidMultiOp { op: 3 }));
}

#[test]
fn multi_without_its_end_header() {
    assert_eq!(
        request(OpCode::Multi, &[]),
        Err(DecodeError::Truncated { needed: 4, remaining: 0 })
    );
}

#[test]
fn unknown_opcode_keeps_its_number() {
    assert_eq!(request_raw(42, &[1, 2, 3]), Ok(Request::Unknown(42)));
    assert_eq!(request(OpCode::CreateSession, &[]), Ok(Request::Unknown(-10)));
}

fn request_raw(op: i32, body: &[u8]) -> Result<Request, DecodeError> {
    Request::decode(op, Bytes::copy_from_slice(body))
}

#[test]
fn oversized_frame() {
    let mut buffer = BytesMut::from(&[0x00, 0x10, 0x04, 0x01][..]); // 1 MiB + 1 KiB + 1
    assert_eq!(
        FrameDecoder::default().decode(&mut buffer),
        Err(FrameError::TooLarge {
            length: FRAME_BYTES_MAX_DEFAULT + 1,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT
        })
    );
}

#[test]
fn configured_maximum_is_inclusive() {
    let decoder = FrameDecoder::new(2);
    let mut buffer = BytesMut::from(&[0, 0, 0, 2, 0xaa, 0xbb, 0, 0, 0, 3][..]);
    assert_eq!(decoder.decode(&mut buffer), Ok(Some(Bytes::from_static(&[0xaa, 0xbb]))));
    assert_eq!(
        decoder.decode(&mut buffer),
        Err(FrameError::TooLarge { length: 3, frame_bytes_max: 2 })
    );
}

#[test]
fn negative_frame_length() {
    let mut buffer = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
    assert_eq!(
        FrameDecoder::default().decode(&mut buffer),
        Err(FrameError::NegativeLength { length: -2 })
    );
}

#[test]
fn partial_frame_needs_more() {
    let decoder = FrameDecoder::default();
    let mut buffer = BytesMut::from(&[0x00, 0x00][..]);
    assert_eq!(decoder.decode(&mut buffer), Ok(None));
    buffer.extend_from_slice(&[0x00, 0x03, 0x01, 0x02]);
    assert_eq!(decoder.decode(&mut buffer), Ok(None));
    assert_eq!(buffer.len(), 6, "need-more leaves the buffer as it was");
    buffer.extend_from_slice(&[0x03, 0x09]);
    assert_eq!(decoder.decode(&mut buffer), Ok(Some(Bytes::from_static(&[1, 2, 3]))));
    assert_eq!(&buffer[..], &[0x09]);
}
