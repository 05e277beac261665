//! Real `baton-server` processes for tests and tools: one place that starts, signals,
//! restarts and asks them how they are.
//!
//! A test or a tool never spawns a server by hand: it describes one ([`Launch`]) or an
//! ensemble ([`EnsembleSpec`]) and the kit starts it, reads the one JSON address line
//! the server prints, sends its stderr to a log file (printed when a test panics) and
//! kills it (SIGKILL) when dropped. Everything a server says about itself is read as
//! the typed `/status` document of `baton_api::admin`. Waiting is always for a
//! condition with a deadline ([`wait_until`]), never a bare sleep.
//!
//! # What this crate must never do
//! - Be a dependency of a production crate (the server, the client, the CLI): it is
//!   for tests (as a dev-dependency) and for the tools (xtask, baton-bench,
//!   baton-nemesis).
//! - Stop a process it did not start, or one found by its name: only by the pid of a
//!   child it spawned (or one a tool recorded when it started it).
//! - Bind anything but 127.0.0.1.
//!
//! # Layout
//! - `bin`: [`server_bin`], where the `baton-server` binary is (built once if needed),
//!   and [`run_server`] for runs that end by themselves (`--help`, a refused start).
//! - `ports`: [`fixed_free_port`] for processes that must be found on the same port
//!   after a restart.
//! - `process`: [`Process`], any child process with a log file: signals, pause and
//!   resume, a graceful stop, kill on drop; [`signal`] and [`alive`] by pid.
//! - `server`: [`ServerProcess`], one `baton-server` started from a [`Launch`].
//! - `ensemble`: [`Ensemble`], N members with fixed ports, and what to wait for:
//!   settled (one leader every member follows) or converged (equal trees).
//! - `status`: the typed `/status` client ([`fetch_status`]), [`http_get`] for the rest
//!   of the admin port, and the [`settled`] and [`converged`] checks.
//! - `tls`: [`TestPki`], a test PKI made with rcgen (CAs, server, member and client
//!   certificates, an expired one, a client-only one) and the flags that turn a
//!   server's TLS on; [`AdminTls`], HTTPS to an admin port; raw handshakes.
//! - `wait`: [`wait_until`] and [`wait_until_async`].
//! - `zookeeper`: [`ZkEnsemble`], a real Apache ZooKeeper ensemble to hold Baton's
//!   ZooKeeper listener against, and [`zookeeper_available`].
//! - `zk_client`: [`ZkClient`], a raw ZooKeeper-protocol client for tests, on
//!   baton-jute: any request under any opcode, replies and watch events kept in the
//!   order they arrived, raw bytes for bad-input tests.
//! - `rng`: [`Rng`], the one seeded generator of the tests and tools.
//! - `error`: [`Error`].

mod bin;
mod ensemble;
mod error;
mod ports;
mod process;
mod rng;
mod server;
mod status;
mod tls;
mod wait;
mod zk_client;
mod zookeeper;

pub use bin::{run_server, server_bin};
pub use ensemble::{Ensemble, EnsembleSpec, MemberSpec, peer_list};
pub use error::Error;
pub use ports::{FIXED_PORTS, fixed_free_port};
pub use process::{Process, ProcessSpec, Signal, alive, signal};
pub use rng::Rng;
pub use server::{Launch, STARTUP_TIMEOUT, ServerProcess};
pub use status::{
    STATUS_TIMEOUT, converged, fetch_status, fetch_status_with, http_get, http_get_with, settled,
};
pub use tls::{AdminTls, CertFiles, TestPki, client_config, served_certificate, tls_connect};
pub use wait::{POLL_INTERVAL, wait_until, wait_until_async};
pub use zk_client::{ZK_REPLY_TIMEOUT, ZkClient, ZkFrame};
pub use zookeeper::{
    ZOOKEEPER_JARS, ZOOKEEPER_STARTUP_TIMEOUT, ZkEnsemble, four_letter_word, zookeeper_available,
};

/// The typed `/status` document, re-exported for the kit's users.
pub use baton_api::admin::{Ensemble as EnsembleStatus, Role, Status};
/// The jute records [`ZkClient`] sends and decodes, for its users.
pub use baton_jute as jute;
