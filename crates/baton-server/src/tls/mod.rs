//! TLS on the three ports (rustls with the ring provider): the client gRPC port, the
//! peer port (always mutual TLS, and so are the links this member dials) and the admin
//! HTTP port.
//!
//! The material (certificate chain, key, CA) is read from PEM files when the server
//! starts, and again when the files change on disk or on SIGHUP: new handshakes use
//! the new material, established connections go on with what they shook hands with.
//! A reload that fails keeps the old material. Handshakes run beside the accept loop,
//! so a slow or hostile client holds up no one; a refused one is logged at a bounded
//! rate, per remote address.
//!
//! # What this module must never do
//! - Put a private key's bytes in a log line, a metric or an error: errors name the
//!   file and the reason only.
//! - Stop serving because one handshake or one reload failed.
//!
//! # Layout
//! - `material`: PEM files → rustls configs; [`Reloadable`] material and its files.
//! - `acceptor`: [`TlsIncoming`], handshaken connections for tonic and axum.
//! - `connector`: [`PeerDialer`], the links to other members, plain or mutual TLS.
//! - `reload`: the task that reloads on a file change or SIGHUP.
//! - `subject`: [`client_subject`], the verified client certificate's subject.

mod acceptor;
mod connector;
mod material;
mod reload;
mod subject;

pub(crate) use acceptor::TlsIncoming;
pub(crate) use connector::PeerDialer;
pub use material::ClientAuth;
pub(crate) use material::{Reloadable, TlsSetup};
pub(crate) use reload::watch;
pub(crate) use subject::{client_subject, subject_of};
