//! The handshake: the first frame each way on a connection, sent without a header.

use bytes::Bytes;

use crate::{DecodeError, Reader, Record, Writer};

/// The client's first frame. Its last field, `read_only`, was added to the protocol
/// later and older clients omit it (44 bytes with a 16-byte password, 45 with it), so
/// this record must be decoded from its own frame, with [`Record::from_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    /// The session timeout the client asks for, in milliseconds.
    pub timeout_ms: i32,
    /// 0 for a new session; otherwise the session to resume.
    pub session_id: i64,
    pub passwd: Bytes,
    /// `None` when the client did not send the flag; the server then leaves it out of
    /// its [`ConnectResponse`] too, since such a client does not expect it.
    pub read_only: Option<bool>,
}

/// The server's answer to [`ConnectRequest`]. A refused or expired session is a
/// response with `timeout_ms` 0 and `session_id` 0, after which the server closes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    /// The session timeout the server granted, in milliseconds.
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

fn encode_read_only(read_only: Option<bool>, writer: &mut Writer) {
    if let Some(read_only) = read_only {
        writer.write_bool(read_only);
    }
}

/// The optional flag is the frame's last byte, present or not.
fn decode_read_only(reader: &mut Reader) -> Result<Option<bool>, DecodeError> {
    if reader.is_empty() { Ok(None) } else { reader.read_bool().map(Some) }
}

/// A client's flag, read as ZooKeeper's server reads it (Java's `readBoolean`: any
/// byte but 0 is true), and whatever follows it ignored, as ZooKeeper ignores it:
/// clients that pad their handshake must still connect.
fn decode_client_read_only(reader: &mut Reader) -> Result<Option<bool>, DecodeError> {
    if reader.is_empty() {
        return Ok(None);
    }
    let flag = match reader.read_bool() {
        Ok(flag) => flag,
        Err(DecodeError::InvalidBoolean { .. }) => true,
        Err(other) => return Err(other),
    };
    reader.skip_rest();
    Ok(Some(flag))
}

impl Record for ConnectRequest {
    const BYTES_MIN: usize = 4 + 8 + 4 + 8 + 4;

    fn encode(&self, writer: &mut Writer) {
        writer.write_i32(self.protocol_version);
        writer.write_i64(self.last_zxid_seen);
        writer.write_i32(self.timeout_ms);
        writer.write_i64(self.session_id);
        self.passwd.encode(writer);
        encode_read_only(self.read_only, writer);
    }

    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: reader.read_i32()?,
            last_zxid_seen: reader.read_i64()?,
            timeout_ms: reader.read_i32()?,
            session_id: reader.read_i64()?,
            passwd: Bytes::decode(reader)?,
            read_only: decode_client_read_only(reader)?,
        })
    }
}

impl Record for ConnectResponse {
    const BYTES_MIN: usize = 4 + 4 + 8 + 4;

    fn encode(&self, writer: &mut Writer) {
        writer.write_i32(self.protocol_version);
        writer.write_i32(self.timeout_ms);
        writer.write_i64(self.session_id);
        self.passwd.encode(writer);
        encode_read_only(self.read_only, writer);
    }

    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: reader.read_i32()?,
            timeout_ms: reader.read_i32()?,
            session_id: reader.read_i64()?,
            passwd: Bytes::decode(reader)?,
            read_only: decode_read_only(reader)?,
        })
    }
}

#[cfg(test)]
mod arb {
    use proptest::prelude::*;

    use super::*;
    use crate::arb::Arb;

    impl Arb for ConnectRequest {
        fn arb() -> BoxedStrategy<Self> {
            (any::<(i32, i64, i32, i64)>(), Bytes::arb(), any::<Option<bool>>())
                .prop_map(
                    |(
                        (protocol_version, last_zxid_seen, timeout_ms, session_id),
                        passwd,
                        read_only,
                    )| Self {
                        protocol_version,
                        last_zxid_seen,
                        timeout_ms,
                        session_id,
                        passwd,
                        read_only,
                    },
                )
                .boxed()
        }
    }

    impl Arb for ConnectResponse {
        fn arb() -> BoxedStrategy<Self> {
            (any::<(i32, i32, i64)>(), Bytes::arb(), any::<Option<bool>>())
                .prop_map(|((protocol_version, timeout_ms, session_id), passwd, read_only)| Self {
                    protocol_version,
                    timeout_ms,
                    session_id,
                    passwd,
                    read_only,
                })
                .boxed()
        }
    }
}
