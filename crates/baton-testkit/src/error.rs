use std::{net::SocketAddr, path::PathBuf, time::Duration};

use thiserror::Error;

/// What can go wrong starting, signalling or asking a process.
#[derive(Debug, Error)]
pub enum Error {
    /// The program could not be run at all (missing binary, no permission).
    #[error("cannot run {what}: {source}")]
    Spawn { what: String, source: std::io::Error },
    /// The server ran but did not announce its addresses: it exited (a refused start)
    /// or stayed silent.
    #[error("{what} did not start: {reason} (log: {})", log.display())]
    Startup { what: String, reason: String, log: PathBuf },
    /// The process is not running (never started, killed, or exited).
    #[error("{what} is not running")]
    NotRunning { what: String },
    /// A signal could not be sent.
    #[error("signal {signal} to {what} (pid {pid}): {source}")]
    Signal { what: String, pid: u32, signal: &'static str, source: std::io::Error },
    /// The process did not exit within the time given after SIGTERM (it was killed).
    #[error("{what} did not stop within {within:?} of SIGTERM")]
    Stop { what: String, within: Duration },
    /// `/status` (or another admin page) could not be read.
    #[error("admin port {addr}: {reason}")]
    Admin { addr: SocketAddr, reason: String },
    /// A condition waited for did not hold in time.
    #[error("{what} within {within:?}")]
    Timeout { what: String, within: Duration },
    /// Anything else from the operating system (log files, ports).
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}
