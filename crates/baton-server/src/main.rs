//! `baton-server`: parses flags, sets up logging, runs until SIGINT or SIGTERM.

use std::io::IsTerminal;

use anyhow::anyhow;
use baton_server::Config;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's malloc: the tree is millions of small allocations
/// made and freed by several threads, where glibc's per-thread arenas keep freed
/// memory resident (measured: 1M znodes loaded into a 3-member ensemble, RSS of the
/// largest member 916 → 806 MiB, and a restart to serving 5.1 → 2.6 s).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(error) = serve(config) {
        // Display only: every error of ours already names its cause.
        eprintln!("baton-server: {error}");
        std::process::exit(1);
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        baton_server::run(config, shutdown).await?;
        Ok(())
    })
}

/// Resolves on the first SIGINT or SIGTERM. Later ones are ignored: shutdown is
/// already under way and bounded by its grace period.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| anyhow!("cannot listen for SIGINT: {e}"))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| anyhow!("cannot listen for SIGTERM: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}
