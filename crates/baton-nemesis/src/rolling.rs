//! A rolling restart under load, as Kubernetes does one (`kubectl rollout restart`
//! with the StatefulSet's RollingUpdate and the PodDisruptionBudget): every member
//! in turn, followers first and the leader last, is stopped with SIGTERM, started
//! again on its data directory, and waited for until it serves again before the next.
//! Meanwhile clients write without pause, retrying what CONNECTION_LOSS interrupts
//! (sets of fixed keys: a retried write is the same write). The run passes when no
//! request failed beyond its retries and the members end identical.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Result, bail};
use baton_client::{CreateMode, ErrorCode, Session, SessionOptions};
use tokio::time::Instant;

use crate::testbed::Testbed;

/// Attempts one request gets (the first and its retries).
pub const ATTEMPTS_MAX: u32 = 100;
/// Failure messages a report keeps.
pub const FAILURES_KEPT: usize = 100;
/// Pause between two attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// How long a member may take to stop after SIGTERM, and to serve again.
const STOP_WITHIN: Duration = Duration::from_secs(30);
const SERVE_WITHIN: Duration = Duration::from_secs(60);

/// What a rolling restart does.
#[derive(Debug, Clone)]
pub struct RollingOptions {
    pub nodes: u32,
    pub clients: usize,
    /// Load before the first restart, between restarts and after the last.
    pub between: Duration,
    pub dir: PathBuf,
    pub server_bin: PathBuf,
    /// Extra flags for every member.
    pub server_args: Vec<String>,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct RollingReport {
    /// (member, its role when restarted, seconds from SIGTERM to exit, seconds from
    /// start to serving again).
    pub restarts: Vec<(u32, &'static str, f64, f64)>,
    /// Requests that succeeded (after retries if needed).
    pub ok: u64,
    /// Attempts that were retried.
    pub retries: u64,
    /// Requests that failed beyond their retries, with why (the first
    /// [`FAILURES_KEPT`]; `failures` counts them all).
    pub failed: Vec<String>,
    pub failures: u64,
    /// The most attempts one request needed.
    pub most_attempts: u64,
}

impl RollingReport {
    pub fn passed(&self) -> bool {
        self.failures == 0 && self.ok > 0
    }

    pub fn summary(&self) -> String {
        let order: Vec<String> = self
            .restarts
            .iter()
            .map(|(id, role, stop, serve)| {
                format!("{id} ({role}, stop {stop:.2}s, serving {serve:.2}s)")
            })
            .collect();
        format!(
            "rolling restart | order {} | requests ok {} | retried attempts {} | most attempts {} | failed {} | {}",
            order.join(" → "),
            self.ok,
            self.retries,
            self.most_attempts,
            self.failures,
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

/// Runs the rolling restart; an error means the harness could not (a member did not
/// stop or serve again), a report that did not pass means clients saw failures.
pub async fn rolling_restart(options: &RollingOptions) -> Result<RollingReport> {
    if options.dir.exists() {
        std::fs::remove_dir_all(&options.dir)?;
    }
    std::fs::create_dir_all(&options.dir)?;
    // The proxy (healthy throughout) lives as long as the members.
    let Testbed { mut ensemble, proxy: _proxy } = Testbed::start(
        &options.dir,
        options.server_bin.clone(),
        options.nodes,
        options.server_args.clone(),
        1,
    )
    .await?;
    let leader = ensemble.wait_settled(SERVE_WITHIN).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let most = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for worker in 0..options.clients {
        let endpoints = ensemble.endpoints_from(worker);
        let (stop, ok, retries, most, failed, failures) = (
            stop.clone(),
            ok.clone(),
            retries.clone(),
            most.clone(),
            failed.clone(),
            failures.clone(),
        );
        let fail = move |why: String| {
            failures.fetch_add(1, Ordering::Relaxed);
            let mut failed = failed.lock().unwrap_or_else(|e| e.into_inner());
            if failed.len() < FAILURES_KEPT {
                failed.push(why);
            }
        };
        clients.push(tokio::spawn(async move {
            let session = match Session::connect(&endpoints, SessionOptions::default()).await {
                Ok(session) => session,
                Err(error) => {
                    fail(format!("client {worker}: connect: {error}"));
                    return;
                }
            };
            let key = format!("/rolling-{worker}");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let value = n.to_be_bytes().to_vec();
                let mut attempts = 0u64;
                let outcome = loop {
                    attempts += 1;
                    let result = match session.set(&key, value.clone(), -1).await {
                        Err(error) if error.code() == ErrorCode::NoNode => session
                            .create(&key, value.clone(), CreateMode::Persistent)
                            .await
                            .map(|_| ()),
                        other => other.map(|_| ()),
                    };
                    match result {
                        Ok(()) => break Ok(()),
                        Err(error) if error.code() == ErrorCode::NodeExists => continue,
                        Err(error)
                            if error.is_retryable() && attempts < u64::from(ATTEMPTS_MAX) =>
                        {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                        Err(error) => break Err(error),
                    }
                };
                most.fetch_max(attempts, Ordering::Relaxed);
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        fail(format!(
                            "client {worker}, write {n} after {attempts} attempts: {error}"
                        ));
                        if error.is_session_end() {
                            return;
                        }
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
            let _ = session.close().await;
        }));
    }

    let mut report = RollingReport::default();
    tokio::time::sleep(options.between).await;
    let mut order: Vec<u32> = ensemble.ids().into_iter().filter(|id| *id != leader).collect();
    order.push(leader);
    for id in order {
        let role = if id == leader { "leader" } else { "follower" };
        tracing::info!(id, role, "rolling restart: stopping");
        let (stopped_in, status) = ensemble.stop(id, STOP_WITHIN)?;
        tracing::info!(id, ?stopped_in, %status, "rolling restart: stopped; starting again");
        let started = Instant::now();
        ensemble.start_member(id)?;
        ensemble.wait_settled(SERVE_WITHIN).await?;
        report.restarts.push((id, role, stopped_in.as_secs_f64(), started.elapsed().as_secs_f64()));
        tokio::time::sleep(options.between).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    ensemble.wait_converged(SERVE_WITHIN).await?;
    if let Some((id, why)) = ensemble.exited().into_iter().next() {
        bail!("member {id} exited on its own: {why}");
    }
    report.ok = ok.load(Ordering::Relaxed);
    report.retries = retries.load(Ordering::Relaxed);
    report.most_attempts = most.load(Ordering::Relaxed);
    report.failed = std::mem::take(&mut *failed.lock().unwrap_or_else(|e| e.into_inner()));
    report.failures = failures.load(Ordering::Relaxed);
    Ok(report)
}
