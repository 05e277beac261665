//! `baton-bench`: Baton, ZooKeeper and etcd side by side (see the library docs). Run it
//! through `cargo xtask bench`, which builds the server in release mode first.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use baton_bench::{Kind, Options};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "baton-bench", about = "Baton, ZooKeeper and etcd under the same load")]
struct Cli {
    /// The short run: Baton alone through both of its protocols (baton, baton-zk;
    /// unless --systems says otherwise), 1 s per workload, 10,000 znodes, 100 watchers.
    #[arg(long)]
    quick: bool,
    /// The systems, comma separated: baton, baton-zk (Baton's server through its
    /// ZooKeeper port, driven by the ZooKeeper driver), zookeeper, etcd.
    #[arg(long, value_delimiter = ',')]
    systems: Option<Vec<String>>,
    /// Seconds per throughput workload.
    #[arg(long)]
    secs: Option<f64>,
    /// Znodes loaded for the memory and restart measurements.
    #[arg(long)]
    znodes: Option<usize>,
    /// Members of each ensemble (3 by default; 5 for the scale report).
    #[arg(long)]
    members: Option<u32>,
    /// Also measure the memory of this many open sessions (ZooKeeper: connections;
    /// etcd has none, its leases are not measured).
    #[arg(long)]
    sessions: Option<usize>,
    /// Watchers in the fan-out.
    #[arg(long)]
    watchers: Option<usize>,
    /// Skip the failover measurement.
    #[arg(long)]
    skip_failover: bool,
    /// The baton-server binary.
    #[arg(long)]
    server_bin: PathBuf,
    /// Where data directories, logs and the report go (wiped first).
    #[arg(long, default_value = "target/bench")]
    dir: PathBuf,
    /// Only the measurements whose name contains this, e.g. "write, 8".
    #[arg(long)]
    only: Option<String>,
    /// Extra flags for every Baton member, e.g. --baton-arg=--tick-ms=500.
    #[arg(long = "baton-arg", allow_hyphen_values = true)]
    baton_args: Vec<String>,
    /// Baton with TLS on its client and peer ports (client certificates required,
    /// mutual TLS between members), from a test PKI made under --dir.
    #[arg(long)]
    tls: bool,
    /// Where the plots (throughput.svg, latency-cdf.svg) go; default: --dir. The
    /// docs' plots come from `--plots docs/bench`.
    #[arg(long)]
    plots: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if !cli.server_bin.is_file() {
        bail!("--server-bin {} is not a file", cli.server_bin.display());
    }
    let dir = std::path::absolute(&cli.dir).context("the --dir path")?;
    let mut options = if cli.quick {
        Options::quick(dir.clone(), cli.server_bin.clone())
    } else {
        Options::full(dir.clone(), cli.server_bin.clone())
    };
    if let Some(systems) = &cli.systems {
        options.systems = systems.iter().map(|s| Kind::parse(s)).collect::<Result<_>>()?;
    }
    if let Some(secs) = cli.secs {
        options.workload_time = Duration::from_secs_f64(secs);
    }
    if let Some(znodes) = cli.znodes {
        options.znodes = znodes.max(1);
    }
    if let Some(members) = cli.members {
        if !(1..=7).contains(&members) {
            bail!("--members {members}: an ensemble of 1 to 7 members");
        }
        options.members = members;
    }
    if let Some(sessions) = cli.sessions {
        options.sessions = sessions;
    }
    if let Some(watchers) = cli.watchers {
        options.watchers = watchers.max(1);
    }
    options.skip_failover = cli.skip_failover;
    options.only = cli.only.clone();
    options.baton_args = cli.baton_args.clone();
    options.tls = cli.tls;

    let started = std::time::Instant::now();
    let report = baton_bench::run(&options).await?;
    let table = report.markdown();
    println!("{table}");
    let path = dir.join("report.md");
    std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    let plots = cli.plots.clone().unwrap_or_else(|| dir.clone());
    for written in baton_bench::plot::write_plots(&report, &plots)? {
        eprintln!("bench: plot {}", written.display());
    }
    eprintln!(
        "bench: done in {:.0} s; table in {}",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    if report.rows.is_empty() {
        bail!("no system could be benchmarked");
    }
    let problems = report.problems();
    if !problems.is_empty() {
        bail!("the run is not valid:\n{}", problems.join("\n"));
    }
    Ok(())
}
