//! `cargo xtask <command>`: automation for the Baton workspace.
//!
//! # Layout
//! - `ci`: everything CI runs, in its order: format check, clippy, the test suite, the
//!   quick benchmark, deploy-check (`.ci/run` is `cargo xtask ci`).
//! - `bench`: Baton, ZooKeeper and etcd side by side under the same load (baton-bench),
//!   on release binaries; `--quick` is the short Baton-only run CI does, on the
//!   binaries the test suite uses; `--micro` runs the criterion benchmarks of the tree
//!   and the commit log instead.
//! - `sim`: the deterministic ensemble simulation over many seeds.
//! - `cluster`: a local ensemble of real processes (`up`, `down`, `kill`, `restart`, `status`,
//!   `add`, `remove`, and `scale`: 3 → 5 → 3 under a write load).
//! - `nemesis`: fault testing of a real ensemble with checked client histories; one run,
//!   or `--matrix` for every fault × workload pair.
//!
//! - `rolling-restart`: members restarted one by one under load, followers first.
//! - `deps`: installs the Debian packages of ZooKeeper, kazoo and etcd that the
//!   compatibility tests and the benchmark use (best effort; `ci` runs it first).
//! - `deploy-check`: the Kubernetes manifests pass `kubernetes-validate --strict` and
//!   agree with `baton-server --help`.
//!
//! Every command shells out to `cargo` with the workspace root as working directory,
//! so it behaves the same from any subdirectory.

mod cluster;
mod deploy_check;
mod deps;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Automation for the Baton workspace")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Everything CI runs, in order: format check, clippy with warnings denied, the
    /// whole test suite, the quick benchmark and deploy-check.
    Ci,
    /// Installs (apt) what the compatibility tests and the bench compare against:
    /// ZooKeeper 3.8, its C client, kazoo and etcd. Best effort: where it cannot, it
    /// says what to install, and the tests that need them skip.
    Deps,
    /// Baton (also as baton-zk: through its ZooKeeper port with ZooKeeper's driver),
    /// ZooKeeper and etcd as 3-member ensembles under the same workloads, one
    /// table with ratios (baton-bench; peers it cannot start are skipped). Flags after
    /// `--` go to baton-bench (`--systems`, `--secs`, `--znodes`, `--watchers`, ...).
    Bench {
        /// The short run: Baton alone (baton and baton-zk, its two client protocols),
        /// every workload briefly, on the dev-profile
        /// binaries the tests use (what CI runs: it checks the harness end to end,
        /// its numbers are not the benchmark's). With --micro: criterion's --quick.
        #[arg(long)]
        quick: bool,
        /// The criterion benchmarks (tree apply, commit-log append+flush) instead.
        #[arg(long)]
        micro: bool,
        /// Baton with TLS on its client and peer ports (baton-bench --tls).
        #[arg(long, conflicts_with = "micro")]
        tls: bool,
        /// With --micro: only benchmarks whose name contains this. Otherwise: flags
        /// for baton-bench.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The deterministic ensemble simulation (3 and 5 members, and with observers,
    /// every fault kind including storage faults) in
    /// release mode: seeds 1..=N, or one seed to replay a failure.
    Sim {
        /// Run seeds 1..=N.
        #[arg(long, default_value_t = 10_000)]
        seeds: u64,
        /// Replay this one seed (what a failure prints).
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
    },
    /// Fault testing: a real ensemble under kills, pauses, partitions, slow and
    /// broken links and damaged logs while clients record a history that is then
    /// checked. Flags go to baton-nemesis (`--nodes 3|5 --time SECS --faults
    /// kill,pause,partition,delay,drop,disk|all --workload
    /// register,set,lock,members,zk-register --round-robin
    /// --seed S --clients N`).
    Nemesis {
        /// Run every fault kind alone and all together against every workload, each
        /// for this many seconds, and print the results as a markdown table.
        #[arg(long)]
        matrix: Option<u64>,
        /// Build the server with this deliberate bug (a cargo feature of
        /// baton-server, e.g. `bug-stale-reads`) to show the nemesis catches it.
        #[arg(long)]
        broken: Option<String>,
        /// Flags for baton-nemesis.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A rolling restart of a local 3-member ensemble under a retrying write load, as
    /// Kubernetes does one: SIGTERM, followers first, the leader last, each member
    /// serving again before the next. Fails if any request failed beyond its
    /// retries. Flags go to baton-nemesis (`--time SECS` of load between restarts,
    /// `--clients N`, `--nodes 3|5`).
    RollingRestart {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Validates deploy/k8s (kubernetes-validate --strict, installed into
    /// target/deploy-check) and checks its ports, variables and probes against
    /// `baton-server --help`; a broken copy must be refused (self-test).
    DeployCheck,
    /// A local ensemble of real baton-server processes on 127.0.0.1 (state and data
    /// under target/cluster/).
    Cluster {
        #[command(subcommand)]
        command: ClusterCmd,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCmd {
    /// Build (release) and start N members; print their ports and data dirs once a
    /// leader serves.
    Up {
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// The members' --tick-ms (the failure detector: syncLimit 5 ticks).
        #[arg(long, default_value_t = 200)]
        tick_ms: u64,
    },
    /// Stop every member (SIGTERM, then SIGKILL after 10 s).
    Down {
        /// Also remove the members' data directories.
        #[arg(long)]
        wipe: bool,
    },
    /// SIGKILL member N.
    Kill { id: u32 },
    /// Stop member N if it runs, start it again on its data dir and ports.
    Restart {
        id: u32,
        #[arg(long, default_value_t = 200)]
        tick_ms: u64,
    },
    /// Each member's role, epoch, last zxid and digest.
    Status,
    /// Start a new member (the next id, new ports) and add it to the configuration
    /// (`baton members add`): a voter once it has caught up, or an observer.
    Add {
        #[arg(long)]
        observer: bool,
        #[arg(long, default_value_t = 200)]
        tick_ms: u64,
    },
    /// Remove member N from the configuration (`baton members remove`; the leader
    /// hands over first), then stop it (its data dir stays).
    Remove { id: u32 },
    /// The scaling run: a fresh ensemble of 3 under a write load grows to 5
    /// (`add`, `add`) and shrinks back to 3 (`remove`, `remove`, the leader among
    /// them if it is), then checks that no write failed beyond retries and that the
    /// members' digests are equal. Leaves the cluster up.
    Scale {
        #[arg(long, default_value_t = 100)]
        tick_ms: u64,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Ci => ci(),
        Cmd::Bench { quick, micro: false, tls, args } => {
            let mut args = args;
            if tls {
                args.push("--tls".to_owned());
            }
            bench(quick, &args)
        }
        Cmd::Bench { quick, micro: true, args, .. } => {
            // Only the criterion targets: libtest's harness (lib, tests) knows no --quick.
            let mut args_bench = vec![
                "bench",
                "-p",
                "baton-znode",
                "-p",
                "baton-log",
                "--bench",
                "apply",
                "--bench",
                "append",
                "--",
            ];
            if quick {
                args_bench.push("--quick");
            }
            let mut cargo_args = args_bench;
            cargo_args.extend(args.iter().map(String::as_str));
            cargo(&cargo_args)
        }
        Cmd::Cluster { command } => {
            let root = workspace_root();
            match command {
                ClusterCmd::Up { nodes, tick_ms } => cluster::up(&root, nodes, tick_ms, cargo),
                ClusterCmd::Down { wipe } => cluster::down(&root, wipe),
                ClusterCmd::Kill { id } => cluster::kill(&root, id),
                ClusterCmd::Restart { id, tick_ms } => cluster::restart(&root, id, tick_ms),
                ClusterCmd::Status => cluster::show(&root),
                ClusterCmd::Add { observer, tick_ms } => cluster::add(&root, observer, tick_ms),
                ClusterCmd::Remove { id } => cluster::remove(&root, id),
                ClusterCmd::Scale { tick_ms } => cluster::scale(&root, tick_ms, cargo),
            }
        }
        Cmd::Nemesis { matrix, broken, args } => nemesis(matrix, broken.as_deref(), &args),
        Cmd::RollingRestart { args } => {
            let root = workspace_root();
            cargo(&["build", "--release", "-p", "baton-server", "-p", "baton-nemesis"])?;
            let status = Command::new(root.join("target/release/baton-nemesis"))
                .arg("--rolling-restart")
                .args(["--tick-ms", "2000", "--time", "5"])
                .args(&args)
                .current_dir(&root)
                .status()
                .context("running baton-nemesis --rolling-restart")?;
            if !status.success() {
                bail!("the rolling restart failed: {status}");
            }
            Ok(())
        }
        Cmd::DeployCheck => deploy_check(),
        Cmd::Deps => deps::install(),
        Cmd::Sim { seeds, seed } => {
            let (name, value) = match seed {
                Some(seed) => ("SIM_SEED", seed),
                None => ("SIM_SEEDS", seeds),
            };
            let args = [
                "test",
                "--release",
                "-p",
                "baton-quorum",
                "--test",
                "sim",
                "seeds_pass",
                "--",
                "--nocapture",
            ];
            cargo_with_env(&args, name, value.to_string())
        }
    }
}

/// What CI runs, in order, with each step's time at the end. One dev-profile build
/// serves it all: the tests, the quick benchmark and deploy-check run the same
/// binaries.
/// Set by `ci`: every cargo it runs builds without incremental compilation. A clean
/// CI build gains nothing from it, and its caches were 2.8 GB of target/.
static NOT_INCREMENTAL: AtomicBool = AtomicBool::new(false);

fn ci() -> Result<()> {
    NOT_INCREMENTAL.store(true, Ordering::Relaxed);
    let root = workspace_root();
    let server = root.join("target/debug/baton-server");
    let mut times = Vec::new();
    let result = std::thread::scope(|scope| {
        // pip mostly waits on the network: deploy-check's validator is installed while
        // the rest runs (deploy-check itself still runs last).
        let validator = scope.spawn(|| deploy_check::install_validator(&root));
        // So are the peers the compatibility tests run against (before the tests).
        let peers = scope.spawn(deps::install);
        let mut step = |name: &str, run: &dyn Fn() -> Result<()>| {
            let started = Instant::now();
            let result = run();
            times.push(format!("{name} {:.0} s", started.elapsed().as_secs_f64()));
            result.with_context(|| format!("ci: {name} failed"))
        };
        step("fmt", &|| cargo(&["fmt", "--all", "--check"]))?;
        step("clippy", &|| {
            cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
        })?;
        // Every test runs the server of this build. Without BATON_SERVER_BIN the CLI's
        // and the client's test harnesses run `cargo build -p baton-server`, whose
        // features (the server's dependencies only) differ from the workspace's: the
        // server and much of what it uses would be built a second time.
        let peers = peers.join().expect("installing the peers does not panic");
        step("test", &|| {
            peers.as_ref().map_err(|error| anyhow::anyhow!("{error:#}"))?;
            cargo_with_env(&["test", "--workspace"], "BATON_SERVER_BIN", &server)
        })?;
        step("bench --quick", &|| bench(true, &[]))?;
        let installed = validator.join().expect("installing the validator does not panic");
        step("deploy-check", &|| {
            installed.as_ref().map_err(|error| anyhow::anyhow!("{error:#}"))?;
            deploy_check()
        })
    });
    eprintln!("ci: {} ({})", if result.is_ok() { "passed" } else { "failed" }, times.join(", "));
    result
}

/// Builds the workspace's binaries in the dev profile, as `cargo test --workspace`
/// builds them: after it, only the binaries no test needs (baton-bench) are new. With
/// `--examples` among the targets cargo resolves features with the dev-dependencies,
/// as for the tests; `--bins` alone would give some dependencies other features and
/// build them, and everything above them, a second time.
fn build_dev_binaries() -> Result<PathBuf> {
    cargo(&["build", "--workspace", "--exclude", "xtask", "--bins", "--examples"])?;
    Ok(workspace_root().join("target/debug"))
}

/// baton-bench against a `baton-server` of the same build: release for the real
/// benchmark; for `--quick` (a check of the harness end to end, not a measurement)
/// the dev-profile binaries the tests use, so CI needs no build of its own for it.
fn bench(quick: bool, args: &[String]) -> Result<()> {
    let root = workspace_root();
    let bin = if quick {
        build_dev_binaries()?
    } else {
        cargo(&["build", "--release", "-p", "baton-server", "-p", "baton-bench"])?;
        root.join("target/release")
    };
    let mut command = Command::new(bin.join("baton-bench"));
    command.arg("--server-bin").arg(bin.join("baton-server"));
    // The server the test kit starts is this one too: without the variable the kit,
    // run under cargo, would first build a dev-profile server nobody uses.
    command.env("BATON_SERVER_BIN", bin.join("baton-server"));
    if quick {
        command.arg("--quick");
    }
    let status = command.args(args).current_dir(&root).status().context("running baton-bench")?;
    if !status.success() {
        bail!("baton-bench failed: {status}");
    }
    Ok(())
}

fn deploy_check() -> Result<()> {
    let bin = build_dev_binaries()?;
    // Only the flags' help text: no server runs.
    let help = Command::new(bin.join("baton-server"))
        .arg("--help")
        .output()
        .context("running baton-server --help")?;
    let leave = Command::new(bin.join("baton"))
        .args(["members", "leave", "--help"])
        .output()
        .context("running baton members leave --help")?;
    deploy_check::run(
        &workspace_root(),
        &String::from_utf8_lossy(&help.stdout),
        &String::from_utf8_lossy(&leave.stdout),
    )
}

/// Builds the server (with `broken`'s feature, into its own target directory so the
/// normal build stays correct) and baton-nemesis in release mode, then runs it.
fn nemesis(matrix: Option<u64>, broken: Option<&str>, args: &[String]) -> Result<()> {
    let root = workspace_root();
    cargo(&["build", "--release", "-p", "baton-nemesis"])?;
    let server_bin = match broken {
        None => {
            cargo(&["build", "--release", "-p", "baton-server"])?;
            root.join("target/release/baton-server")
        }
        Some(feature) => {
            let features = format!("baton-server/{feature}");
            let target = root.join("target/broken");
            let target = target.to_string_lossy();
            let build = ["build", "--release", "-p", "baton-server", "--features", &features];
            cargo(&[&build[..], &["--target-dir", &target]].concat())?;
            root.join("target/broken/release/baton-server")
        }
    };
    let nemesis = root.join("target/release/baton-nemesis");
    let bin = server_bin.to_string_lossy().into_owned();
    let runs: Vec<Vec<String>> = match matrix {
        None => vec![args.to_vec()],
        Some(secs) => {
            let mut runs = Vec::new();
            for faults in ["kill", "pause", "partition", "delay,drop", "disk", "all"] {
                for workload in ["register", "set", "lock", "members", "zk-register"] {
                    let mut run: Vec<String> = args.to_vec();
                    run.extend(
                        ["--faults", faults, "--workload", workload, "--time"].map(String::from),
                    );
                    run.push(secs.to_string());
                    runs.push(run);
                }
            }
            runs
        }
    };
    let mut failed = 0;
    let mut rows = Vec::new();
    for run in &runs {
        eprintln!("+ baton-nemesis {}", run.join(" "));
        let output = Command::new(&nemesis)
            .args(run)
            .args(["--server-bin", &bin])
            .current_dir(&root)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running baton-nemesis")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        print!("{stdout}");
        if !output.status.success() {
            failed += 1;
        }
        if let Some(summary) = stdout.lines().find(|l| l.contains(" | seed ")) {
            rows.push(format!("| {summary} | `cargo xtask nemesis {}` |", run.join(" ")));
        }
    }
    if matrix.is_some() {
        println!(
            "\n| workload | nodes | faults | seed | time | injected | ops | anomalies | lost | crashes | stuck | digests | result | reproduce |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for row in &rows {
            println!("{row}");
        }
    }
    if failed > 0 {
        bail!("{failed} of {} nemesis runs found something", runs.len());
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

fn cargo(args: &[&str]) -> Result<()> {
    cargo_with_env(args, "BATON_XTASK", "1")
}

/// Runs cargo with one extra environment variable for the child.
fn cargo_with_env(args: &[&str], name: &str, value: impl AsRef<OsStr>) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let value = value.as_ref();
    eprintln!("+ {name}={} cargo {}", value.to_string_lossy(), args.join(" "));
    let mut command = Command::new(&cargo);
    command.args(args).env(name, value).current_dir(workspace_root());
    if NOT_INCREMENTAL.load(Ordering::Relaxed) {
        // Inherited by whatever cargo the tests themselves run.
        command.env("CARGO_INCREMENTAL", "0");
    }
    let status = command.status().with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed: {status}", args.join(" "));
    }
    Ok(())
}
