//! SIGINT and SIGTERM, the two ways to tell a long-running command (`create -e`, `watch`,
//! `lock`, `session open`) to stop cleanly: close its session and exit.

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Installed handlers. Install them before printing anything a script may react to, so
/// that a signal sent right after is handled, not fatal.
#[derive(Debug)]
pub struct Interrupts {
    interrupt: Signal,
    terminate: Signal,
}

impl Interrupts {
    pub fn install() -> anyhow::Result<Interrupts> {
        let interrupt = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
        let terminate = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        Ok(Interrupts { interrupt, terminate })
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
