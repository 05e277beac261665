//! Arbitrary and mutated bytes fed to the decoders: they return a value or a specific
//! error, never panic, and never yield more than the input held.

use baton_jute::*;
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

/// A valid create frame to mutate, so mutations reach deep into a record.
fn create_frame() -> Bytes {
    encode_frame(|writer| {
        RequestHeader { xid: 1, op: OpCode::Multi.code() }.encode(writer);
        MultiRequest {
            ops: vec![
                MultiOp::Create(CreateRequest {
                    path: "/app/lock-".into(),
                    data: Some(Bytes::from_static(b"data")),
                    acl: vec![Acl {
                        perms: perms::ALL,
                        id: Id { scheme: "world".into(), id: "anyone".into() },
                    }],
                    flags: CreateMode::EphemeralSequential.code(),
                }),
                MultiOp::Check(CheckVersionRequest { path: "/app".into(), version: 2 }),
            ],
        }
        .encode(writer);
    })
}

/// Every frame the decoder yields fits in the input and under the maximum.
fn drain_frames(decoder: FrameDecoder, input: &[u8]) -> Result<Vec<Bytes>, FrameError> {
    let mut buffer = BytesMut::from(input);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buffer)? {
        assert!(frame.len() <= decoder.frame_bytes_max());
        frames.push(frame);
    }
    Ok(frames)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn frame_decoder_on_arbitrary_bytes(
        input in proptest::collection::vec(any::<u8>(), 0..64),
        frame_bytes_max in 0usize..32,
    ) {
        match drain_frames(FrameDecoder::new(frame_bytes_max), &input) {
            Ok(frames) => {
                let total: usize = frames.iter().map(|frame| frame.len() + 4).sum();
                prop_assert!(total <= input.len());
            }
            Err(FrameError::NegativeLength { length }) => prop_assert!(length < 0),
            Err(FrameError::TooLarge { length, frame_bytes_max: max }) => {
                prop_assert_eq!(max, frame_bytes_max);
                prop_assert!(length > max);
            }
        }
    }

    #[test]
    fn request_decoder_on_arbitrary_bytes(
        op in prop_oneof![
            proptest::sample::select(OpCode::ALL).prop_map(OpCode::code),
            any::<i32>(),
        ],
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut payload = RequestHeader { xid: 1, op }.to_bytes().to_vec();
        payload.extend_from_slice(&body);
        let _ = decode_request(Bytes::from(payload));
        let _ = Request::decode(op, Bytes::from(body.clone()));
        let _ = ConnectRequest::from_bytes(Bytes::from(body.clone()));
        let _ = MultiResponse::from_bytes(Bytes::from(body));
    }

    #[test]
    fn request_decoder_on_mutated_frames(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = create_frame()[4..].to_vec();
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok((_, request)) = decode_request(Bytes::from(bytes.clone())) {
            // Whatever decoded re-encodes to no more bytes than it came from.
            let mut writer = Writer::new();
            request.encode_body(&mut writer);
            prop_assert!(writer.len() + 8 <= bytes.len() || matches!(request, Request::Unknown(_)));
        }
    }

    #[test]
    fn every_truncation_of_a_valid_frame_is_truncated_or_beyond_input(
        cut in any::<prop::sample::Index>(),
    ) {
        let payload = create_frame().slice(4..);
        let cut = cut.index(payload.len());
        let error = decode_request(payload.slice(..cut)).unwrap_err();
        prop_assert!(matches!(
            error,
            DecodeError::Truncated { .. }
                | DecodeError::LengthBeyondInput { .. }
                | DecodeError::CountBeyondInput { .. }
        ), "{error:?}");
    }
}
