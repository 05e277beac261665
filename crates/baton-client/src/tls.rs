//! TLS to the servers: [`ClientTls`] (PEM files), [`ConnectOptions`], and the connector
//! that dials `host:port` and shakes hands (rustls, ring provider).
//!
//! The server is verified against `ca` when it is given, else against the Mozilla
//! roots built into the client (webpki-roots): the same on every machine, whatever its
//! system store holds. The server's certificate must name the host dialled (a DNS name
//! or an IP address SAN).

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tonic::transport::Uri;

use crate::ClientError;

/// TLS options: files read when the client or session connects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA (PEM) the servers' certificates must chain to; without it, the Mozilla
    /// roots (webpki-roots).
    pub ca: Option<PathBuf>,
    /// This client's certificate chain (PEM), presented to servers that ask; with `key`.
    pub cert: Option<PathBuf>,
    /// The private key of `cert` (PEM).
    pub key: Option<PathBuf>,
}

/// Options of [`crate::Client::connect_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// TLS to every endpoint (`host:port` or `https://host:port`); `None`: plain text.
    pub tls: Option<ClientTls>,
}

fn invalid(file: &Path, reason: impl std::fmt::Display) -> ClientError {
    ClientError::InvalidTls { reason: format!("{}: {reason}", file.display()) }
}

fn read(file: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(file).map_err(|error| invalid(file, format!("cannot read it: {error}")))
}

fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_slice_iter(&read(file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(file, format!("bad PEM: {error}")))?;
    if certs.is_empty() {
        return Err(invalid(file, "no CERTIFICATE in it"));
    }
    Ok(certs)
}

/// The key's bytes never reach an error message: only what kind of problem it is.
fn read_key(file: &Path) -> Result<PrivateKeyDer<'static>, ClientError> {
    PrivateKeyDer::from_pem_slice(&read(file)?).map_err(|error| {
        let why = match error {
            rustls_pki_types::pem::Error::NoItemsFound => "no private key in it",
            _ => "bad PEM",
        };
        invalid(file, format!("{why} (expected a PEM PKCS#8, PKCS#1 or SEC1 private key)"))
    })
}

/// ring, as the server and tonic's `tls-ring` use it: one crypto provider in the build.
#[allow(deprecated, reason = "ring is the chosen provider (rustls would have aws-lc-rs)")]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ClientTls {
    /// Reads the files into a rustls configuration.
    pub(crate) fn config(&self) -> Result<Arc<ClientConfig>, ClientError> {
        let roots = match &self.ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(ca)? {
                    roots
                        .add(cert)
                        .map_err(|error| invalid(ca, format!("not a usable CA: {error}")))?;
                }
                roots
            }
            None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| ClientError::InvalidTls { reason: error.to_string() })?
            .with_root_certificates(roots);
        let mut config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
                .map_err(|error| {
                    let reason = match error {
                        rustls::Error::InconsistentKeys(_) => {
                            format!(
                                "the private key does not match the certificate in {}",
                                cert.display()
                            )
                        }
                        other => format!("unusable with {}: {other}", cert.display()),
                    };
                    invalid(key, reason)
                })?,
            (Some(_), None) => {
                return Err(ClientError::InvalidTls {
                    reason: "a client certificate needs its key".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ClientError::InvalidTls {
                    reason: "a client key needs its certificate".into(),
                });
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ClientTls {
    /// Dials `host:port` and shakes hands for HTTP/1.1 (an admin port: `/status`,
    /// `/metrics`), verifying the server as a client connection does.
    pub async fn connect_https(
        &self,
        endpoint: &str,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
        let mut config = Arc::unwrap_or_clone(self.config()?);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let lost =
            |reason: String| ClientError::ConnectionLoss { endpoint: endpoint.to_owned(), reason };
        let host = endpoint.rsplit_once(':').map_or(endpoint, |(host, _)| host);
        let host = host.trim_matches(['[', ']']).to_owned();
        let name = ServerName::try_from(host.clone())
            .map_err(|_| lost(format!("{host} is not a host name or an IP address")))?;
        let tcp = TcpStream::connect(endpoint).await.map_err(|e| lost(e.to_string()))?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| lost(format!("TLS handshake: {e}")))
    }
}

/// A prepared configuration, shared by every endpoint of a client or session.
#[derive(Clone)]
pub(crate) struct TlsDial {
    config: Arc<ClientConfig>,
}

impl TlsDial {
    pub(crate) fn new(config: Arc<ClientConfig>) -> TlsDial {
        TlsDial { config }
    }
}

impl std::fmt::Debug for TlsDial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsDial")
    }
}

impl PartialEq for TlsDial {
    fn eq(&self, other: &TlsDial) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for TlsDial {}

type Dialled = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// tonic calls this for each connection it opens.
impl tonic::codegen::Service<Uri> for TlsDial {
    type Response = Dialled;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Dialled, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
            let port = uri.port_u16().ok_or_else(|| format!("no port in {uri}"))?;
            let name = ServerName::try_from(host.clone())
                .map_err(|_| format!("{host} is not a host name or an IP address"))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|error| format!("TLS handshake failed: {error}"))?;
            Ok(TokioIo::new(tls))
        })
    }
}
