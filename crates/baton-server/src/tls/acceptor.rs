//! [`TlsIncoming`]: connections accepted on a TLS port, handshaken beside the accept
//! loop, for tonic (a stream) and axum (a listener).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use rustls::ServerConfig;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::{metrics::Metrics, shared::Shared, tls::Reloadable};

/// How long a client may take to complete its handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once on one port; a connection beyond them is closed.
pub(crate) const HANDSHAKES_MAX: usize = 256;
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_MAX: usize = 64;
/// A refused handshake is logged once per remote address per this long.
pub(crate) const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);
/// Remote addresses remembered for that; beyond it the oldest are forgotten.
const REFUSALS_REMEMBERED_MAX: usize = 4_096;
/// The pause after a failed `accept` (out of file descriptors, say), so that the
/// loop does not spin on it.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Connections of a TLS port whose handshake succeeded. The accept loop ends when
/// this is dropped.
#[derive(Debug)]
pub(crate) struct TlsIncoming {
    accepted: mpsc::Receiver<TlsStream<TcpStream>>,
    local_addr: SocketAddr,
}

/// What the accept loop shares with its handshakes.
#[derive(Debug)]
struct Port {
    what: &'static str,
    config: Arc<Reloadable<ServerConfig>>,
    nodelay: bool,
    shared: Arc<Shared>,
    refusals: Refusals,
}

impl TlsIncoming {
    /// Accepts on `listener` and shakes hands with the material `config` holds at the
    /// time of each connection. `nodelay`: Nagle off on every accepted socket.
    pub(crate) fn start(
        listener: TcpListener,
        config: Arc<Reloadable<ServerConfig>>,
        nodelay: bool,
        shared: Arc<Shared>,
    ) -> std::io::Result<TlsIncoming> {
        let local_addr = listener.local_addr()?;
        let (sender, accepted) = mpsc::channel(ACCEPTED_MAX);
        let what = config.what;
        let port = Arc::new(Port { what, config, nodelay, shared, refusals: Refusals::default() });
        tokio::spawn(accept_loop(listener, port, sender));
        Ok(TlsIncoming { accepted, local_addr })
    }
}

async fn accept_loop(
    listener: TcpListener,
    port: Arc<Port>,
    sender: mpsc::Sender<TlsStream<TcpStream>>,
) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = sender.closed() => return,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(port = port.what, %error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
            port.refused(remote, "too many handshakes in progress");
            continue;
        };
        if port.nodelay {
            let _ = stream.set_nodelay(true);
        }
        let (port, sender) = (Arc::clone(&port), sender.clone());
        tokio::spawn(async move {
            let acceptor = TlsAcceptor::from(port.config.current());
            let shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(permit);
            match shaken {
                Ok(Ok(tls)) => {
                    let _ = sender.send(tls).await;
                }
                Ok(Err(error)) => port.refused(remote, &error.to_string()),
                Err(_) => port.refused(remote, "no handshake within the time allowed"),
            }
        });
    }
}

impl Port {
    fn refused(&self, remote: SocketAddr, reason: &str) {
        Metrics::add(&self.shared.metrics.tls_handshake_failures_total, 1);
        if self.refusals.first_in_a_while(remote.ip(), Instant::now()) {
            tracing::warn!(
                port = self.what,
                %remote,
                reason,
                "TLS handshake refused (further ones from this address are not logged for a minute)"
            );
        }
    }
}

/// When a refusal from each address was last logged.
#[derive(Debug, Default)]
struct Refusals {
    logged: Mutex<HashMap<IpAddr, Instant>>,
}

impl Refusals {
    fn first_in_a_while(&self, ip: IpAddr, now: Instant) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(at) = logged.get(&ip)
            && now.duration_since(*at) < REFUSAL_LOG_EVERY
        {
            return false;
        }
        if logged.len() >= REFUSALS_REMEMBERED_MAX {
            logged.retain(|_, at| now.duration_since(*at) < REFUSAL_LOG_EVERY);
            if logged.len() >= REFUSALS_REMEMBERED_MAX {
                // Many addresses at once: forget them rather than grow.
                logged.clear();
            }
        }
        logged.insert(ip, now);
        true
    }
}

impl tokio_stream::Stream for TlsIncoming {
    type Item = Result<TlsStream<TcpStream>, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.accepted.poll_recv(cx).map(|next| next.map(Ok))
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(tls) => {
                let remote = tls.get_ref().0.peer_addr().unwrap_or(self.local_addr);
                (tls, remote)
            }
            // The accept loop is gone only when this is dropped: nothing comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_a_minute_per_address() {
        let refusals = Refusals::default();
        let start = Instant::now();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        assert!(refusals.first_in_a_while(a, start));
        assert!(!refusals.first_in_a_while(a, start + Duration::from_secs(30)));
        assert!(refusals.first_in_a_while(b, start + Duration::from_secs(30)));
        assert!(refusals.first_in_a_while(a, start + REFUSAL_LOG_EVERY));
    }

    #[test]
    fn remembered_addresses_are_bounded() {
        let refusals = Refusals::default();
        let now = Instant::now();
        for i in 0..(REFUSALS_REMEMBERED_MAX as u32 + 10) {
            assert!(refusals.first_in_a_while(IpAddr::from(i.to_be_bytes()), now));
        }
        assert!(refusals.logged.lock().unwrap().len() <= REFUSALS_REMEMBERED_MAX);
    }
}
