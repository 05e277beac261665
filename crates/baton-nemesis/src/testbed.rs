//! The ensemble under test: real members started by baton-testkit (fixed client, admin
//! and peer ports, a data directory and a log each), wired to each other through the
//! [`Proxy`]: every member's `--peers` names, for each other member, the proxy's
//! listener of that directed link, so that each link can be cut, delayed or reset.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;
use baton_testkit::{Ensemble, EnsembleSpec, Error, peer_list};

use crate::proxy::Proxy;

/// How long a new ensemble may take to elect its first leader.
const FIRST_LEADER_WITHIN: Duration = Duration::from_secs(60);

/// The members and the proxy between them.
#[derive(Debug)]
pub struct Testbed {
    pub ensemble: Ensemble,
    pub proxy: Proxy,
}

impl Testbed {
    /// Starts `n` members under `root` (`member-N/` data, `member-N.log` stderr) with
    /// the server flags `args`, the proxy's resets drawn from `seed`, and waits until
    /// one leader serves them all.
    pub async fn start(
        root: &Path,
        bin: PathBuf,
        n: u32,
        args: Vec<String>,
        seed: u64,
    ) -> Result<Testbed> {
        let mut spec = EnsembleSpec::new(root, n)?;
        spec.bin = bin;
        spec.args = args;
        let real = spec.peer_addrs();
        let proxy = Proxy::start(&real, seed).await?;
        for &(id, _) in &real {
            let through_proxy = real.iter().map(|&(to, addr)| {
                let port = if to == id { addr.port() } else { proxy.port(id, to) };
                (to, SocketAddr::from(([127, 0, 0, 1], port)))
            });
            spec.member_mut(id).peers = peer_list(through_proxy);
        }
        let ensemble = spec.start()?;
        ensemble.wait_settled(FIRST_LEADER_WITHIN).await?;
        Ok(Testbed { ensemble, proxy })
    }

    /// Starts member `id` again unless it runs. A start the server refuses (a damaged
    /// log, say) is not an error of the harness: the member is left exited, for
    /// [`Ensemble::exited`] to report.
    pub fn restart(&mut self, id: u32) -> Result<()> {
        match self.ensemble.start_member(id) {
            Err(Error::Startup { reason, .. }) => {
                tracing::warn!(id, reason, "member refused to start");
                Ok(())
            }
            other => Ok(other?),
        }
    }

    /// Whether a member's log shows a panic.
    pub fn panicked(&self, id: u32) -> bool {
        self.ensemble.member(id).log().contains("panicked at")
    }

    /// Member `id`'s data directory.
    pub fn data_dir(&self, id: u32) -> &Path {
        self.ensemble.member(id).data_dir()
    }
}
