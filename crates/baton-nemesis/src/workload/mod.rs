//! The workloads: what concurrent clients do during a run, and how their history is
//! checked afterwards.
//!
//! - [`register`]: reads and writes of a few keys; writes and synced reads must be
//!   linearizable, plain reads sequentially consistent.
//! - [`set`]: sequential creates; none acknowledged may be lost or appear twice.
//! - [`lock`]: the lock recipe guarding a counter, with the holder's zxid as fencing
//!   token; no two holders may increment from the same value, tokens never go back.
//! - [`members`]: ephemeral nodes as group membership; a node exists exactly while its
//!   session lives.
//! - [`zk_register`]: the register workload with clients that speak ZooKeeper's
//!   protocol (`zookeeper-client` sessions on the members' `--zk-addr` ports).

pub mod lock;
pub mod members;
pub mod register;
pub mod set;
pub mod zk_register;

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Result, bail};
use baton_client::{ClientError, CreateMode, ErrorCode, Session, SessionOptions};
use bytes::Bytes;

use crate::history::{Clock, Event, History, next_process};

/// The root every workload works under.
pub const ROOT: &str = "/nemesis";

/// How long the final reads may take on a healed ensemble.
const FINAL_READS_WITHIN: Duration = Duration::from_secs(60);

/// What every client of a run shares.
#[derive(Debug)]
pub struct Ctx {
    pub clock: Clock,
    /// Every member's client endpoint.
    pub endpoints: Vec<String>,
    /// Every member's ZooKeeper-protocol endpoint, in the order of `endpoints`.
    pub zk_endpoints: Vec<String>,
    pub stop: AtomicBool,
    pub session: SessionOptions,
    /// The pause between two calls of one client.
    pub pace: Duration,
    /// Where the history is written after the run (one line per call).
    pub history_file: std::path::PathBuf,
}

impl Ctx {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Client `worker`'s endpoint list: every member, starting with a different one
    /// per client so that clients spread over the ensemble.
    pub fn endpoints_for(&self, worker: usize) -> Vec<String> {
        let n = self.endpoints.len();
        (0..n).map(|i| self.endpoints[(worker + i) % n].clone()).collect()
    }

    /// Client `worker`'s ZooKeeper connection string's hosts, as [`Ctx::endpoints_for`].
    pub fn zk_endpoints_for(&self, worker: usize) -> Vec<String> {
        let n = self.zk_endpoints.len();
        (0..n).map(|i| self.zk_endpoints[(worker + i) % n].clone()).collect()
    }

    /// A new session for `worker` (with a fresh process number), retried until one
    /// is granted or the run stops.
    pub async fn session(&self, worker: usize) -> Option<(Session, u64)> {
        while !self.stopped() {
            match Session::connect(&self.endpoints_for(worker), self.session.clone()).await {
                Ok(session) => return Some((session, next_process())),
                Err(error) => {
                    tracing::debug!(worker, %error, "no session yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        None
    }

    pub async fn pause(&self) {
        tokio::time::sleep(self.pace).await;
    }
}

/// Creates [`ROOT`] and then each of `nodes` (path, initial data), each unless it
/// exists, in one session.
pub async fn create_all(ctx: &Ctx, nodes: &[(String, &[u8])]) -> Result<()> {
    let (setup, _) = ctx.session(0).await.ok_or_else(|| anyhow::anyhow!("stopped"))?;
    ensure(&setup, ROOT, b"").await?;
    for (path, data) in nodes {
        ensure(&setup, path, data).await?;
    }
    let _ = setup.close().await;
    Ok(())
}

/// Creates `path` (persistent, with `data`) unless it exists, retrying lost connections.
async fn ensure(session: &Session, path: &str, data: &[u8]) -> Result<()> {
    for _ in 0..50 {
        let created =
            session.create(path, Bytes::copy_from_slice(data), CreateMode::Persistent).await;
        match created {
            Ok(_) => return Ok(()),
            Err(error) if error.code() == ErrorCode::NodeExists => return Ok(()),
            Err(error) if error.is_retryable() => retry_pause(session, &error).await,
            Err(error) => bail!("creating {path}: {error}"),
        }
    }
    bail!("creating {path}: no answer after 50 tries")
}

async fn retry_pause(session: &Session, error: &ClientError) {
    tracing::debug!(%error, "retrying");
    let _ = tokio::time::timeout(Duration::from_secs(2), session.wait_connected()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A session on one member only (for the final reads, member by member).
pub async fn session_on(endpoint: &str, options: &SessionOptions) -> Result<Session> {
    let deadline = tokio::time::Instant::now() + FINAL_READS_WITHIN;
    loop {
        match Session::connect(&[endpoint.to_owned()], options.clone()).await {
            Ok(session) => return Ok(session),
            Err(error) if tokio::time::Instant::now() > deadline => {
                bail!("no session on {endpoint} within {FINAL_READS_WITHIN:?}: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs `read` until it answers without a retryable error (for final reads).
pub async fn settle<T, F, Fut>(what: &str, mut read: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let deadline = tokio::time::Instant::now() + FINAL_READS_WITHIN;
    loop {
        match read().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => bail!("{what}: {error}"),
        }
    }
}

/// The workloads a run can have (`--workload`; clap refuses any other name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    Register,
    Set,
    Lock,
    Members,
    ZkRegister,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Register,
        Workload::Set,
        Workload::Lock,
        Workload::Members,
        Workload::ZkRegister,
    ];

    /// The workloads whose clients use baton-client (the short CI run has them all).
    pub const BATON_CLIENT: [Workload; 4] =
        [Workload::Register, Workload::Set, Workload::Lock, Workload::Members];

    /// The name the command line, the summary and the data directory use.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Set => "set",
            Workload::Lock => "lock",
            Workload::Members => "members",
            Workload::ZkRegister => "zk-register",
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Joins worker tasks (each ends within its request timeout once told to stop),
/// then takes the history they recorded and dumps it to the run's history file.
pub async fn finish_history<C: std::fmt::Debug, R: std::fmt::Debug>(
    ctx: &Ctx,
    workers: Vec<tokio::task::JoinHandle<()>>,
    history: &History<C, R>,
) -> Result<Vec<Event<C, R>>> {
    for worker in workers {
        if let Err(error) = worker.await {
            bail!("a client task failed: {error}");
        }
    }
    let events = history.take();
    crate::history::dump(&ctx.history_file, &events);
    Ok(events)
}
