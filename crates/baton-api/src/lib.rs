//! Baton's wire format: the prost/tonic code generated from `proto/baton/v1/baton.proto`,
//! and the one place where wire types meet domain types.
//!
//! Every conversion between a `baton.v1` message and a baton-znode type lives here, and so
//! does the one function that turns an error into a gRPC [`tonic::Status`]. Servers and
//! clients call these functions instead of touching both worlds themselves, so that a
//! change to the wire format is a change to this crate only.
//!
//! # Layout
//! - [`peer`]: the generated peer protocol (members talking to members).
//! - [`pb`]: the generated messages, the `Baton` service trait and server
//!   ([`pb::baton_server`]) and the client ([`pb::baton_client`]).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for tonic-reflection.
//! - [`convert`]: `Stat`, create modes, requests, multi ops and op results, both ways.
//! - [`status`]: error codes, `ZnodeError`/`TxnError` → `Status`, and `Status` → `pb::Error`.
//! - [`session`]: the `Sessions` stream's watch kinds, watch specs and events, both ways.
//! - [`auth`]: credentials on the wire (`baton-auth` metadata, `AddAuthRequest`), with
//!   a `Debug` that never shows a secret.
//! - [`admin`]: the admin port's `/status` document (serde types) and [`admin::Role`].
//!
//! # What this crate must never do
//! - Hold state, do I/O or read a clock: it is functions from values to values.
//! - Decide semantics: it converts, it does not validate what baton-znode validates
//!   (paths, sizes, TTL/mode agreement). It only rejects what cannot be represented in the
//!   domain at all (an unknown enum value, an `Op` with nothing set).
//! - Panic on anything that came off the wire: malformed input is a `Status`.

pub mod admin;
pub mod auth;
pub mod codec;
pub mod convert;
pub mod session;
pub mod status;

/// The code generated from `baton.v1`. `bytes` fields are [`bytes::Bytes`], as in
/// baton-znode, so data moves between the two without a copy.
pub mod pb {
    tonic::include_proto!("baton.v1");
}

/// The peer protocol between the members of an ensemble (`baton.peer.v1`): consensus
/// frames, forwarded writes and session touches.
pub mod peer {
    tonic::include_proto!("baton.peer.v1");
}

/// The encoded `FileDescriptorSet` of `baton.v1`, to register with tonic-reflection so that
/// `grpcurl` can list and call the service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("baton_descriptor");
