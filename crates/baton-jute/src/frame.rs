//! Framing: every message either way is a 4-byte big-endian length, then that many
//! bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{FrameError, Record, ReplyHeader, Writer};

/// ZooKeeper's default `jute.maxbuffer` is 1 MiB of payload; the slack leaves room for
/// the headers around a payload of that size.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 1024 * 1024 + 1024;

const LENGTH_PREFIX_BYTES: usize = 4;

/// Splits a byte stream into frames, refusing any longer than `frame_bytes_max` before
/// buffering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    frame_bytes_max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(FRAME_BYTES_MAX_DEFAULT)
    }
}

impl FrameDecoder {
    /// `frame_bytes_max` counts the bytes after the length prefix.
    pub const fn new(frame_bytes_max: usize) -> Self {
        Self { frame_bytes_max }
    }

    pub const fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Takes one complete frame's payload off the front of `buffer`, or returns
    /// `Ok(None)` and leaves `buffer` untouched when more bytes are needed. An error
    /// means the stream cannot be resynchronised: the connection must close.
    pub fn decode(&self, buffer: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buffer.get(..LENGTH_PREFIX_BYTES) else {
            return Ok(None);
        };
        let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let length = usize::try_from(length).map_err(|_| FrameError::NegativeLength { length })?;
        if length > self.frame_bytes_max {
            return Err(FrameError::TooLarge { length, frame_bytes_max: self.frame_bytes_max });
        }
        if buffer.len() < LENGTH_PREFIX_BYTES + length {
            return Ok(None);
        }
        buffer.advance(LENGTH_PREFIX_BYTES);
        Ok(Some(buffer.split_to(length).freeze()))
    }
}

/// Encodes one frame: the length, then whatever `body` writes.
pub fn encode_frame(body: impl FnOnce(&mut Writer)) -> Bytes {
    let mut output = BytesMut::new();
    output.put_i32(0);
    let mut writer = Writer::from_inner(output);
    body(&mut writer);
    let mut output = writer.into_inner();
    let length = i32::try_from(output.len() - LENGTH_PREFIX_BYTES)
        .expect("a frame this process encodes fits in an i32 by construction");
    output[..LENGTH_PREFIX_BYTES].copy_from_slice(&length.to_be_bytes());
    output.freeze()
}

/// A whole frame holding one record with no header (the handshake).
pub fn encode_record_frame(record: &impl Record) -> Bytes {
    encode_frame(|writer| record.encode(writer))
}

/// A whole reply frame: the header, then the body (`&()` for none).
pub fn encode_reply(header: &ReplyHeader, body: &impl Record) -> Bytes {
    encode_frame(|writer| {
        header.encode(writer);
        body.encode(writer);
    })
}
