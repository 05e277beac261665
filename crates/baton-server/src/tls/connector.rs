//! [`PeerDialer`]: the channels this member dials to its peers, in plain text or with
//! mutual TLS on the material current at each connection (so that a rotated
//! certificate of this member is presented from the next connection on).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::tls::Reloadable;

/// How long dialling a peer may take (TCP, and the TLS handshake when there is one).
pub(crate) const PEER_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How this member reaches its peers.
#[derive(Debug, Clone, Default)]
pub(crate) enum PeerDialer {
    #[default]
    Plain,
    /// Presents this member's certificate and checks the peer's against the peer CA
    /// and the peer's address (host name or IP).
    MutualTls(Arc<Reloadable<ClientConfig>>),
}

impl PeerDialer {
    /// A channel to `addr` (`host:port`) that connects when first used, with Nagle off.
    pub(crate) fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(PEER_CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        Ok(match self {
            PeerDialer::Plain => endpoint.connect_lazy(),
            PeerDialer::MutualTls(config) => {
                endpoint.connect_with_connector_lazy(TlsDial { config: Arc::clone(config) })
            }
        })
    }
}

/// The connector tonic calls for each new connection.
#[derive(Debug, Clone)]
struct TlsDial {
    config: Arc<Reloadable<ClientConfig>>,
}

type Dialled = TokioIo<TlsStream<TcpStream>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tonic::codegen::Service<Uri> for TlsDial {
    type Response = Dialled;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Dialled, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = self.config.current();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
            let port = uri.port_u16().ok_or_else(|| format!("no port in {uri}"))?;
            let name = ServerName::try_from(host.clone())
                .map_err(|_| format!("{host} is not a host name or an IP address"))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            // Nagle off, as on plain links: see `serve_peers`.
            tcp.set_nodelay(true)?;
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|error| format!("TLS handshake with {host}:{port}: {error}"))?;
            Ok(TokioIo::new(tls))
        })
    }
}
