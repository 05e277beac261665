//! The reload task: every [`RELOAD_POLL`] it looks whether the TLS files changed on
//! disk, and on SIGHUP it reloads them all.

use std::{sync::Arc, time::Duration};

use tokio::signal::unix::{SignalKind, signal};

use crate::{metrics::Metrics, shared::Shared, shutdown::ShutdownListener, tls::TlsSetup};

/// How often the files' metadata is read.
pub(crate) const RELOAD_POLL: Duration = Duration::from_secs(1);

/// Material that can be reloaded, whatever it configures.
trait Reload: Send + Sync {
    fn what(&self) -> &'static str;
    fn changed(&self) -> bool;
    fn reload(&self) -> Result<(), super::material::MaterialError>;
}

impl<T: Send + Sync> Reload for super::Reloadable<T> {
    fn what(&self) -> &'static str {
        self.what
    }
    fn changed(&self) -> bool {
        super::Reloadable::changed(self)
    }
    fn reload(&self) -> Result<(), super::material::MaterialError> {
        super::Reloadable::reload(self)
    }
}

/// Reloads `setup`'s material when its files change or on SIGHUP, until `shutdown`.
/// Without TLS there is nothing to watch and SIGHUP keeps its default meaning.
pub(crate) async fn watch(setup: &TlsSetup, shared: Arc<Shared>, mut shutdown: ShutdownListener) {
    let mut all: Vec<Arc<dyn Reload>> = Vec::new();
    for server in [&setup.client, &setup.peer_server, &setup.admin].into_iter().flatten() {
        all.push(Arc::clone(server) as Arc<dyn Reload>);
    }
    if let Some(client) = &setup.peer_client {
        all.push(Arc::clone(client) as Arc<dyn Reload>);
    }
    if all.is_empty() {
        return;
    }
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; TLS files are reloaded when they change");
            None
        }
    };
    let mut poll = tokio::time::interval(RELOAD_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = poll.tick() => false,
            Some(()) = async { match &mut hangup { Some(h) => h.recv().await, None => None } } => {
                tracing::info!("SIGHUP received: reloading the TLS material");
                true
            }
            () = shutdown.recv() => return,
        };
        let (all, shared) = (all.clone(), Arc::clone(&shared));
        // Metadata and file reads stay off the async workers.
        let _ = tokio::task::spawn_blocking(move || reload_changed(&all, &shared, forced)).await;
    }
}

fn reload_changed(all: &[Arc<dyn Reload>], shared: &Shared, forced: bool) {
    for material in all {
        // `changed` also remembers the files as they are: call it even when forced.
        if !material.changed() && !forced {
            continue;
        }
        match material.reload() {
            Ok(()) => {
                Metrics::add(&shared.metrics.tls_reloads_total, 1);
                tracing::info!(what = material.what(), "TLS material reloaded");
            }
            Err(error) => {
                Metrics::add(&shared.metrics.tls_reload_errors_total, 1);
                tracing::error!(
                    what = material.what(),
                    file = %error.file.display(),
                    reason = %error.reason,
                    "TLS reload failed; the material in use stays"
                );
            }
        }
    }
}
