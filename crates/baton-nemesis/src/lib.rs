//! Fault testing of a real Baton ensemble ("nemesis" runs, after Jepsen).
//!
//! [`run`] starts an ensemble of real `baton-server` processes on 127.0.0.1 (through
//! baton-testkit) with a controllable TCP proxy on every peer link ([`proxy`],
//! [`testbed`]), runs one or more workloads' clients at once
//! against it ([`workload`]) while the nemesis ([`faults`]) kills, pauses, partitions,
//! slows and breaks links, and damages commit logs; then heals everything, waits for
//! every member to hold the same tree (same last zxid and digest), reads the final
//! state from every member, and checks the recorded history ([`history`]).
//!
//! The outcome is a [`Report`]: operations checked, anomalies (must be 0),
//! acknowledged writes lost (must be 0), member crashes, recoveries that took too long.

pub mod faults;
pub mod history;
pub mod proxy;
pub mod rolling;
pub mod testbed;
pub mod workload;

use std::{
    path::PathBuf,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use baton_client::SessionOptions;
use baton_testkit::Rng;

use crate::{
    faults::Fault,
    history::{Clock, Verdict},
    testbed::Testbed,
    workload::{Ctx, Workload},
};

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: u32,
    /// How long clients run under faults.
    pub time: Duration,
    pub faults: Vec<Fault>,
    /// Faults taken in turn (every kind injected, the first round finished even
    /// past `time`) instead of at random.
    pub round_robin: bool,
    /// Workloads run at once on the one ensemble (their znodes do not overlap).
    pub workloads: Vec<Workload>,
    pub seed: u64,
    pub clients: usize,
    /// The members' `--tick-ms`.
    pub tick_ms: u64,
    pub server_bin: PathBuf,
    /// Where the members' data and logs go (kept after the run).
    pub dir: PathBuf,
    /// More `baton-server` flags.
    pub server_args: Vec<String>,
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub options: Options,
    /// Every workload's verdict added up.
    pub verdict: Verdict,
    /// Each workload's own.
    pub verdicts: Vec<(Workload, Verdict)>,
    pub faults: faults::Log,
    /// Every member's last zxid and digest at the end (all equal when converged).
    pub digests: Vec<(u64, String)>,
    pub converged: bool,
    pub elapsed: Duration,
}

impl Report {
    /// True when the run found nothing wrong.
    pub fn passed(&self) -> bool {
        self.verdict.anomaly_count == 0
            && self.verdict.lost == 0
            && self.faults.crashes.is_empty()
            && self.faults.stuck.is_empty()
            && self.converged
    }

    /// The one-line summary (also a row of the table in docs/reliability.md).
    pub fn summary(&self) -> String {
        let faults: Vec<String> = self.options.faults.iter().map(ToString::to_string).collect();
        let injected: Vec<String> =
            self.faults.injected.iter().map(|(f, n)| format!("{f}×{n}")).collect();
        format!(
            "{} | {} nodes | {} | seed {} | {:.0}s | faults {} | ops {} (ok {}, info {}, fail {}) | anomalies {} | lost {} | crashes {} | stuck {} | digests {} | {}",
            workloads(&self.options.workloads),
            self.options.nodes,
            faults.join(","),
            self.options.seed,
            self.options.time.as_secs_f64(),
            injected.join(" "),
            self.verdict.ops,
            self.verdict.ok,
            self.verdict.info,
            self.verdict.fail,
            self.verdict.anomaly_count,
            self.verdict.lost,
            self.faults.crashes.len(),
            self.faults.stuck.len(),
            if self.converged { "equal" } else { "DIFFER" },
            if self.passed() { "PASS" } else { "FAIL" },
        )
    }
}

/// The members' `--snapshot-every-txns` (the server's default is far more than a run
/// writes).
const SNAPSHOT_EVERY_TXNS: u64 = 2_000;

/// Runs one nemesis run; an `Err` is a harness failure (the ensemble never
/// started, a client task panicked), not a finding.
pub async fn run(options: Options) -> Result<Report> {
    if !(1..=9).contains(&options.nodes) {
        bail!("--nodes must be 1 to 9");
    }
    if options.workloads.is_empty() {
        bail!("no workload to run");
    }
    let _ = std::fs::remove_dir_all(&options.dir);
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("creating {}", options.dir.display()))?;
    let started = std::time::Instant::now();
    let mut rng = Rng::new(options.seed);
    let tick = Duration::from_millis(options.tick_ms);
    let mut args = vec!["--tick-ms".to_owned(), options.tick_ms.to_string()];
    // Snapshots, purges and SNAP syncs within a run of seconds (and a snapshot for
    // the `disk` fault to damage).
    args.extend(["--snapshot-every-txns".to_owned(), SNAPSHOT_EVERY_TXNS.to_string()]);
    args.extend(options.server_args.iter().cloned());
    let mut bed = Testbed::start(
        &options.dir,
        options.server_bin.clone(),
        options.nodes,
        args,
        rng.next_u64(),
    )
    .await?;
    let mut running = Vec::new();
    for &workload in &options.workloads {
        let history = if options.workloads.len() == 1 {
            "history.txt".to_owned()
        } else {
            format!("history-{workload}.txt")
        };
        let ctx = Arc::new(Ctx {
            clock: Clock::start(),
            endpoints: bed.ensemble.endpoints_from(0),
            zk_endpoints: bed
                .ensemble
                .ids()
                .into_iter()
                .map(|id| bed.ensemble.member(id).zk_endpoint())
                .collect(),
            stop: Default::default(),
            session: SessionOptions {
                // The longest the servers grant at this tick (20 ticks).
                timeout_ms: (options.tick_ms * 20) as u32,
                request_timeout: tick * 30,
                ..SessionOptions::default()
            },
            pace: Duration::from_millis(5),
            history_file: options.dir.join(history),
        });
        let started = Running::start(workload, &ctx, options.clients, &mut rng).await?;
        running.push((workload, ctx, started));
    }
    let until = tokio::time::Instant::now() + options.time;
    let mut log =
        faults::run(&mut bed, &options.faults, options.round_robin, &mut rng, until, tick, started)
            .await?;
    // Everything healed: let the clients see a healthy ensemble a little, then stop.
    tokio::time::sleep_until(until).await;
    let recovered = bed.ensemble.wait_settled(Duration::from_secs(60)).await;
    if let Err(error) = &recovered {
        log.stuck.push(format!("after the final heal: {error}"));
    }
    tokio::time::sleep(tick * 20).await;
    for (_, ctx, _) in &running {
        ctx.stop.store(true, Ordering::Relaxed);
    }
    // Final reads that cannot be done (a member that never serves again) are a finding
    // of the run, not a failure of the harness.
    let mut verdicts = Vec::new();
    for (workload, ctx, started) in running {
        let verdict = match started.finish(&ctx).await {
            Ok(verdict) => verdict,
            Err(error) => {
                log.stuck.push(format!("{workload}: final reads: {error:#}"));
                Verdict::default()
            }
        };
        verdicts.push((workload, verdict));
    }
    let verdict = Verdict::sum(&verdicts);
    let (converged, digests) = match recovered {
        Ok(_) => match bed.ensemble.wait_converged(Duration::from_secs(60)).await {
            Ok(statuses) => (true, statuses.into_iter().map(|s| (s.last_zxid, s.digest)).collect()),
            Err(_) => (false, last_states(&bed.ensemble).await),
        },
        Err(_) => (false, last_states(&bed.ensemble).await),
    };
    let elapsed = started.elapsed();
    Ok(Report { options, verdict, verdicts, faults: log, digests, converged, elapsed })
}

/// `register+set` for a summary line.
fn workloads(all: &[Workload]) -> String {
    all.iter().map(|w| w.name()).collect::<Vec<_>>().join("+")
}

/// Each member's last zxid and digest, as far as they answer.
async fn last_states(ensemble: &baton_testkit::Ensemble) -> Vec<(u64, String)> {
    let mut all = Vec::new();
    for id in ensemble.ids() {
        if let Some(s) = ensemble.status(id).await {
            all.push((s.last_zxid, s.digest));
        }
    }
    all
}

enum Running {
    Register(workload::register::Register),
    Set(workload::set::Set),
    Lock(workload::lock::Lock),
    Members(workload::members::Members),
}

impl Running {
    async fn start(
        workload: Workload,
        ctx: &Arc<Ctx>,
        clients: usize,
        rng: &mut Rng,
    ) -> Result<Running> {
        Ok(match workload {
            Workload::Register => {
                Running::Register(workload::register::Register::start(ctx, clients, rng).await?)
            }
            Workload::Set => Running::Set(workload::set::Set::start(ctx, clients, rng).await?),
            Workload::Lock => Running::Lock(workload::lock::Lock::start(ctx, clients, rng).await?),
            Workload::Members => {
                Running::Members(workload::members::Members::start(ctx, clients, rng).await?)
            }
            Workload::ZkRegister => {
                Running::Register(workload::zk_register::start(ctx, clients, rng).await?)
            }
        })
    }

    async fn finish(self, ctx: &Ctx) -> Result<Verdict> {
        match self {
            Running::Register(w) => w.finish(ctx).await,
            Running::Set(w) => w.finish(ctx).await,
            Running::Lock(w) => w.finish(ctx).await,
            Running::Members(w) => w.finish(ctx).await,
        }
    }
}
