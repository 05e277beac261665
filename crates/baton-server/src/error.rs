use std::{net::SocketAddr, path::PathBuf};

use baton_log::LogError;
use baton_quorum::QuorumError;
use baton_znode::DecodeError;
use thiserror::Error;

/// Why the server could not start or had to stop. Each message is meant to be the
/// one line an operator reads.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("another baton-server is using {}", path.display())]
    DataDirInUse { path: PathBuf },
    /// The store refused to open or failed: nothing unsafe was acknowledged.
    #[error("storage error: {0}")]
    Storage(#[from] LogError),
    #[error("cannot recover from {}: snapshot at zxid {zxid:#x} does not decode: {source}", dir.display())]
    BadSnapshot {
        dir: PathBuf,
        zxid: u64,
        #[source]
        source: DecodeError,
    },
    #[error("cannot recover from {}: log record {zxid:#x} does not decode: {source}", dir.display())]
    BadLogRecord {
        dir: PathBuf,
        zxid: u64,
        #[source]
        source: DecodeError,
    },
    /// The disk lost entries this member had acknowledged, and an ensemble of one
    /// has no peer to repair them from.
    #[error("the disk in {} lost acknowledged writes ({cause}); an ensemble of one cannot repair them from peers. Restore the directory from a backup, or start with --accept-data-loss to serve what is left", dir.display())]
    DataLoss { dir: PathBuf, cause: String },
    #[error("{0}")]
    Quorum(#[from] QuorumError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} server failed: {message}")]
    Serve { what: &'static str, message: String },
    /// A task the server cannot run without stopped (a panic is a bug, reported here so
    /// the process exits non-zero instead of limping on).
    #[error("{task} stopped unexpectedly: {message}")]
    TaskFailed { task: &'static str, message: String },
}
