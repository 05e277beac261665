//! `baton-nemesis`: one fault-testing run against a real ensemble (see the library
//! docs). Prints the fault log and a one-line summary; exits 1 if the run found
//! anything wrong.

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use baton_nemesis::{
    Options, faults,
    rolling::{RollingOptions, rolling_restart},
    run,
    workload::Workload,
};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "baton-nemesis",
    about = "Fault-test a real Baton ensemble and check the clients' history"
)]
struct Args {
    /// Members in the ensemble.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// Seconds of client traffic under faults.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Faults to inject: kill, pause, partition, delay, drop, disk (comma-separated), or all.
    #[arg(long, default_value = "kill,pause,partition,disk")]
    faults: String,
    /// The workloads, run at once on the one ensemble (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "register")]
    workload: Vec<Workload>,
    /// Take the faults in turn (each injected at least once) instead of at random.
    #[arg(long)]
    round_robin: bool,
    /// Seed of every random choice (faults, targets, client operations).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    clients: usize,
    /// The members' --tick-ms.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// The baton-server binary (default: the one beside this binary, or
    /// BATON_SERVER_BIN).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Where member data and logs go (default: target/nemesis/<workload>-<seed>).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Instead of faults: restart every member in turn with SIGTERM, followers first,
    /// the leader last, under a retrying write load (--time seconds of load before,
    /// between and after the restarts); fails if a request failed beyond its retries.
    #[arg(long)]
    rolling_restart: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "baton_nemesis=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let exe = std::env::current_exe()?;
    let server_bin = args.server_bin.unwrap_or_else(baton_testkit::server_bin);
    let explicit_dir = args.dir.is_some();
    let dir = args.dir.unwrap_or_else(|| {
        let target = exe.parent().and_then(|p| p.parent()).map(PathBuf::from).unwrap_or_default();
        let names: Vec<&str> = args.workload.iter().map(|w| w.name()).collect();
        target.join("nemesis").join(format!("{}-{}", names.join("+"), args.seed))
    });
    if args.rolling_restart {
        let options = RollingOptions {
            nodes: args.nodes,
            clients: args.clients,
            between: Duration::from_secs(args.time),
            dir: if explicit_dir { dir } else { dir.with_file_name("rolling-restart") },
            server_bin: server_bin.clone(),
            server_args: vec!["--tick-ms".into(), args.tick_ms.to_string()],
        };
        let report = rolling_restart(&options).await?;
        for failure in &report.failed {
            println!("FAILED: {failure}");
        }
        println!("{}", report.summary());
        if !report.passed() {
            std::process::exit(1);
        }
        return Ok(());
    }
    let options = Options {
        nodes: args.nodes,
        time: Duration::from_secs(args.time),
        faults: faults::parse_list(&args.faults)?,
        round_robin: args.round_robin,
        workloads: args.workload,
        seed: args.seed,
        clients: args.clients,
        tick_ms: args.tick_ms,
        server_bin,
        dir,
        server_args: Vec::new(),
    };
    let report = run(options).await?;
    for anomaly in &report.verdict.anomalies {
        println!("ANOMALY: {anomaly}");
    }
    for line in report.faults.crashes.iter().chain(&report.faults.stuck) {
        println!("PROBLEM: {line}");
    }
    println!("digests: {:?}", report.digests);
    println!("{}", report.summary());
    println!("data and member logs: {}", report.options.dir.display());
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn workloads_are_named_and_an_unknown_one_is_refused() {
        for workload in Workload::ALL {
            let args = Args::try_parse_from(["baton-nemesis", "--workload", workload.name()]);
            assert_eq!(args.expect("a known workload").workload, [workload]);
        }
        assert_eq!(Args::try_parse_from(["baton-nemesis"]).unwrap().workload, [Workload::Register]);
        let all = Args::try_parse_from([
            "baton-nemesis",
            "--workload",
            "register,set,lock,members,zk-register",
        ]);
        assert_eq!(all.expect("a list of workloads").workload, Workload::ALL);
        let unknown = Args::try_parse_from(["baton-nemesis", "--workload", "membres"]);
        let error = unknown.expect_err("an unknown workload is refused");
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue, "{error}");
    }
}
