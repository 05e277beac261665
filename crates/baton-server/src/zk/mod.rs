//! ZooKeeper's client protocol (jute over TCP) on `--zk-addr`, so that ZooKeeper's
//! clients and tools (kazoo, the Java client and Curator, zkCli.sh, the C client)
//! work against Baton unchanged.
//!
//! A connection is a Baton session stream under another encoding: its requests are
//! translated into the session's requests (`translate`), and what the session answers
//! is written back in ZooKeeper's frames (`conn`). Sessions, watches, ordering, access
//! control and expiry are therefore the gRPC API's own, and a session is one session
//! whichever protocol it is reached by: a node created on this port fires the watches
//! of gRPC sessions, and the other way round.
//!
//! With client TLS on, this port speaks TLS too (ZooKeeper's secureClientPort), and a
//! verified client certificate adds its `x509:` identity as on the gRPC port.
//!
//! # Layout
//! - `translate`: requests and replies, opcode by opcode (pure).
//! - `conn`: one connection: four-letter words, the handshake, the two directions.

mod conn;
pub(crate) mod translate;

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::Semaphore};
use tokio_stream::StreamExt;

use crate::{
    fourlw::Words,
    session::service::SessionsService,
    shared::Shared,
    shutdown::ShutdownListener,
    tls::{Reloadable, TlsIncoming, subject_of},
};

/// Connections the port serves at once; beyond it new ones are closed at once.
pub(crate) const ZK_CONNECTIONS_MAX: usize = 10_000;

/// What the listener needs besides the socket.
#[derive(Debug)]
pub(crate) struct ZkPort {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sessions: SessionsService,
    pub(crate) words: Words,
    /// The configuration in force at start: `/zookeeper/config` until the driver
    /// publishes one.
    pub(crate) config: baton_quorum::zab::Membership,
    pub(crate) frame_bytes_max: usize,
}

/// Serves the port until shutdown.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<Reloadable<rustls::ServerConfig>>>,
    port: ZkPort,
    mut shutdown: ShutdownListener,
) -> Result<(), crate::ServerError> {
    let config = crate::membership::text(&port.config);
    let context = translate::Context { config: config.into() };
    let port = Arc::new(conn::Port {
        shared: port.shared,
        sessions: port.sessions,
        words: port.words,
        context,
        frame_bytes_max: port.frame_bytes_max,
    });
    let slots = Arc::new(Semaphore::new(ZK_CONNECTIONS_MAX));
    match tls {
        None => loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = shutdown.recv() => return Ok(()),
            };
            let Ok((stream, remote)) = accepted else {
                // Out of descriptors, say: pause rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::warn!(%remote, "ZooKeeper port: {ZK_CONNECTIONS_MAX} connections open; refused");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let port = Arc::clone(&port);
            tokio::spawn(async move {
                conn::serve(stream, Some(remote), None, port).await;
                drop(slot);
            });
        },
        Some(material) => {
            let shared = Arc::clone(&port.shared);
            let mut incoming =
                TlsIncoming::start(listener, material, true, shared).map_err(|error| {
                    crate::ServerError::Serve {
                        what: "ZooKeeper protocol",
                        message: error.to_string(),
                    }
                })?;
            loop {
                let accepted = tokio::select! {
                    accepted = incoming.next() => accepted,
                    () = shutdown.recv() => return Ok(()),
                };
                let Some(Ok(stream)) = accepted else { return Ok(()) };
                let (tcp, session) = stream.get_ref();
                let remote: Option<SocketAddr> = tcp.peer_addr().ok();
                let subject = session
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|cert| subject_of(cert.as_ref()));
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(
                        ?remote,
                        "ZooKeeper port: {ZK_CONNECTIONS_MAX} connections open; refused"
                    );
                    continue;
                };
                let port = Arc::clone(&port);
                tokio::spawn(async move {
                    conn::serve(stream, remote, subject, port).await;
                    drop(slot);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::membership::text;

    #[test]
    fn config_lists_every_member() {
        use baton_quorum::{
            Zxid,
            zab::{Member, Membership},
        };
        let config = |observer| {
            let member = |id, addr: &str| Member { id, voter: id != observer, addr: addr.into() };
            text(&Membership::new(
                Zxid::ZERO,
                vec![member(1, "10.0.0.1:7182"), member(2, "b.svc:7282")],
            ))
        };
        assert_eq!(
            config(0),
            "server.1=10.0.0.1:7182:7182:participant\nserver.2=b.svc:7282:7282:participant\nversion=0"
        );
        assert_eq!(
            config(2),
            "server.1=10.0.0.1:7182:7182:participant\nserver.2=b.svc:7282:7282:observer\nversion=0"
        );
    }
}
