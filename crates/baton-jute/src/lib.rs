//! ZooKeeper's client wire format: jute records, framing, opcodes and error codes, so
//! that Baton can serve unmodified ZooKeeper clients.
//!
//! A connection is a stream of frames (a 4-byte big-endian length, then the payload).
//! The first frame each way is the handshake, [`ConnectRequest`] and
//! [`ConnectResponse`], with no header. After it, each request is a [`RequestHeader`]
//! and a body whose type depends on the header's opcode ([`Request`]); each reply is a
//! [`ReplyHeader`] and, unless it reports an error, the body for the request's op.
//! Watch notifications are replies with xid [`xid::NOTIFICATION`] and a
//! [`WatcherEvent`] body.
//!
//! The crate is pure data and never does I/O. Decoding never panics on input, and
//! never allocates more than the input it was given could hold: every length and count
//! is checked against the bytes left before it is used, and frames are refused past an
//! explicit maximum ([`FRAME_BYTES_MAX_DEFAULT`]). It knows nothing of Baton's tree or
//! sessions; the listener translates between these records and them.
//!
//! # Layout
//! - `primitives`: [`Reader`] and [`Writer`], jute's int, long, boolean, buffer,
//!   ustring and vector.
//! - `record`: the [`Record`] trait, and the macro that declares a jute class.
//! - `frame`: [`FrameDecoder`] and the encoding of whole frames.
//! - `records`: the classes of `zookeeper.jute`, one file per concept: `connect`
//!   (handshake), `header`, `data` (create, delete, exists, get/set data, [`Stat`]),
//!   `acl`, `children`, `multi`, `watches`, `session` (auth, whoAmI, SASL, reconfig).
//! - `request`: [`Request`], a request body decoded by opcode.
//! - `ops`: [`OpCode`], special xids, [`ErrorCode`], [`EventType`], [`KeeperState`],
//!   [`CreateMode`], [`AddWatchMode`], [`WatcherType`], permission bits.
//! - `error`: [`FrameError`], [`DecodeError`].

#[cfg(test)]
mod arb;
mod error;
mod frame;
mod ops;
mod primitives;
mod record;
mod records;
mod request;
#[cfg(test)]
mod tests;

pub use error::{DecodeError, FrameError};
pub use frame::{
    FRAME_BYTES_MAX_DEFAULT, FrameDecoder, encode_frame, encode_record_frame, encode_reply,
};
pub use ops::{
    AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, WatcherType, perms, xid,
};
pub use primitives::{Reader, Writer};
pub use record::Record;
pub use records::*;
pub use request::{Request, decode_request};
