//! `cargo xtask <command>`: automation for the Baton workspace.
//!
//! # Layout
//! - `ci`: what `.ci/run` does (format check, clippy, the test suite).
//! - `bench`: the criterion benchmarks of the tree and the commit log.
//!
//! Every command shells out to `cargo` with the workspace root as working directory,
//! so it behaves the same from any subdirectory.

use std::path::PathBuf;
use std::process::Command;

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
    /// Format check, clippy with warnings denied, and the whole test suite.
    Ci,
    /// Criterion benchmarks: tree apply throughput and commit-log append+flush.
    Bench {
        /// A short run (criterion's --quick): checks the benches work end to end.
        #[arg(long)]
        quick: bool,
        /// Only benchmarks whose name contains this.
        filter: Option<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Ci => {
            cargo(&["fmt", "--all", "--check"])?;
            cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
            cargo(&["test", "--workspace"])
        }
        Cmd::Bench { quick, filter } => {
            // Only the criterion targets: libtest's harness (lib, tests) knows no --quick.
            let mut args = vec![
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
                args.push("--quick");
            }
            if let Some(filter) = filter.as_deref() {
                args.push(filter);
            }
            cargo(&args)
        }
    }
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("+ cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed: {status}", args.join(" "));
    }
    Ok(())
}
