//! A side-by-side load benchmark: Baton, Apache ZooKeeper and etcd, each started as a
//! 3-member ensemble of real processes on 127.0.0.1 with fsync on, run through the same
//! workloads by the same load generator, reported in one table with ratios. A fourth
//! system, baton-zk, is Baton's ensemble driven by the ZooKeeper driver through its
//! ZooKeeper-protocol ports: same client and workload code as ZooKeeper, another server.
//!
//! # Layout
//! - [`procs`]: a member process's RSS and CPU time, from /proc.
//! - [`systems`]: how each system's ensemble is configured, started (through
//!   baton-testkit: Baton's members as its ensemble, ZooKeeper's and etcd's as its
//!   processes), killed, restarted and asked for its leader.
//! - [`driver`]: one client connection of any of them, with the operations the
//!   workloads use (create, set, get, batched create, persistent watch).
//! - [`workload`]: the closed-loop workloads, the watch fan-out, failover, the bulk
//!   load and the restart.
//! - [`stats`]: latency percentiles.
//! - [`report`]: the table and the ratios.
//!
//! What the systems are asked to do is the same: the same keys (`/bench/k0000042`), the
//! same 100-byte values, clients spread evenly over the members, plain reads served by
//! the member a client talks to (etcd's serializable reads; ZooKeeper's and Baton's
//! reads are so by default), writes committed by a quorum that has fsynced them.

pub mod driver;
pub mod plot;
pub mod procs;
pub mod report;
pub mod stats;
pub mod systems;
pub mod workload;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result};

pub use report::{Report, Row};
pub use systems::Kind;

/// What one benchmark run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The systems to run, in order (the first is the one ratios are taken of).
    pub systems: Vec<Kind>,
    /// How long each throughput workload runs.
    pub workload_time: Duration,
    /// How many znodes the memory and restart measurement loads.
    pub znodes: usize,
    /// Members of each ensemble (3; 5 for the scale report).
    pub members: u32,
    /// Sessions the session-memory measurement holds open (0: not measured).
    pub sessions: usize,
    /// How many watchers the fan-out has.
    pub watchers: usize,
    /// How many times the fan-out's writer changes the watched node.
    pub watch_rounds: usize,
    /// The keys the read and update workloads pick from (created before they run).
    pub keys: usize,
    /// Where the members' data directories and logs go (wiped first).
    pub dir: PathBuf,
    /// The `baton-server` binary.
    pub baton_bin: PathBuf,
    /// Extra flags for every Baton member.
    pub baton_args: Vec<String>,
    /// Skip the failover measurement.
    pub skip_failover: bool,
    /// Only the measurements whose name contains this (for profiling one of them).
    pub only: Option<String>,
    /// Baton with TLS on its client and peer ports (client certificates required,
    /// mutual TLS between members), from a test PKI made in `dir`.
    pub tls: bool,
}

impl Options {
    /// Whether the measurement named `name` is to run.
    pub fn wants(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|only| name.contains(only))
    }

    /// Whether `kind`'s server-side measurements (memory and restart with the loaded
    /// znodes) are another system's in this run: baton-zk's members are Baton's, the
    /// same binary with the same flags holding the same tree, so with `baton` in the
    /// run they would measure the same thing twice.
    pub fn server_measured_by_other(&self, kind: Kind) -> bool {
        kind == Kind::BatonZk && self.systems.contains(&Kind::Baton)
    }
}

impl Options {
    /// The full run: every workload long enough for stable percentiles, 1M znodes.
    pub fn full(dir: PathBuf, baton_bin: PathBuf) -> Options {
        Options {
            systems: vec![Kind::Baton, Kind::BatonZk, Kind::ZooKeeper, Kind::Etcd],
            workload_time: Duration::from_secs(8),
            znodes: 1_000_000,
            members: 3,
            sessions: 0,
            watchers: 1_000,
            watch_rounds: 20,
            keys: 1_000,
            dir,
            baton_bin,
            baton_args: Vec::new(),
            skip_failover: false,
            only: None,
            tls: false,
        }
    }

    /// The short run CI does: Baton through both of its client protocols, every
    /// workload briefly, 10,000 znodes.
    pub fn quick(dir: PathBuf, baton_bin: PathBuf) -> Options {
        Options {
            systems: vec![Kind::Baton, Kind::BatonZk],
            workload_time: Duration::from_secs(1),
            znodes: 10_000,
            watchers: 100,
            watch_rounds: 5,
            keys: 200,
            ..Options::full(dir, baton_bin)
        }
    }
}

/// Runs every workload against every system in `options.systems` and returns the
/// rows. A system that cannot be started (not installed, say) is skipped with its
/// reason in the report; any other failure ends the run with an error.
pub async fn run(options: &Options) -> Result<Report> {
    if options.dir.exists() {
        std::fs::remove_dir_all(&options.dir)
            .with_context(|| format!("wiping {}", options.dir.display()))?;
    }
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("creating {}", options.dir.display()))?;
    let mut report = Report::default();
    if options.members != 3 {
        report.notes.push(format!(
            "Every ensemble here has {} members (the observer row adds 2 observers to 3 voters).",
            options.members
        ));
    }
    for &kind in &options.systems {
        if let Err(reason) = systems::available(kind, options.tls) {
            eprintln!("bench: skipping {}: {reason}", kind.name());
            report.skipped.push((kind, reason));
            continue;
        }
        eprintln!("bench: {}", kind.name());
        let rows = workload::run_system(kind, options)
            .await
            .with_context(|| format!("benchmarking {}", kind.name()))?;
        report.rows.extend(rows);
        if kind == Kind::BatonZk {
            report.notes.push(baton_zk_note(options));
        }
    }
    Ok(report)
}

/// What baton-zk's rows measure, for the report.
fn baton_zk_note(options: &Options) -> String {
    let mut note = "baton-zk: Baton's ensemble (the same binary, flags and members as baton) \
        driven by the ZooKeeper driver (zookeeper-client) through the members' \
        ZooKeeper-protocol ports; its CPU and RSS columns are the three baton-server \
        processes."
        .to_owned();
    if options.server_measured_by_other(Kind::BatonZk) {
        note.push_str(&format!(
            " Memory and restart with {} znodes are not measured again: the same server \
             holding the same tree, see baton's rows.",
            options.znodes
        ));
    }
    note
}
