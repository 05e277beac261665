//! A test PKI made with rcgen in a directory (CAs, server, peer and client
//! certificates, and the bad ones tests need), the flags that turn a server's TLS on,
//! and HTTPS for the admin port ([`AdminTls`]).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;

use crate::Error;

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA whose certificates are written under one directory as `NAME.pem` and
/// `NAME-key.pem`. Certificates for servers name 127.0.0.1 and localhost.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    ca: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn failed(what: String) -> impl FnOnce(rcgen::Error) -> Error {
    move |error| Error::Io { what, source: std::io::Error::other(error.to_string()) }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text)
        .map_err(|source| Error::Io { what: format!("writing {}", path.display()), source })
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Usage {
    /// serverAuth and clientAuth: a server, or a member on both sides of a link.
    Both,
    /// clientAuth only.
    Client,
}

impl TestPki {
    /// A new CA called `name` (its certificate in `dir/NAME-ca.pem`); `dir` is created.
    pub fn new(dir: &Path, name: &str) -> Result<TestPki, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Io { what: format!("creating {}", dir.display()), source })?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(failed(name.into()))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.distinguished_name = name_of(&[(DnType::CommonName, &format!("{name} CA"))]);
        let key = KeyPair::generate().map_err(failed(format!("a key for {name}")))?;
        let cert = params.self_signed(&key).map_err(failed(format!("the CA {name}")))?;
        let ca = dir.join(format!("{name}-ca.pem"));
        write(&ca, &cert.pem())?;
        Ok(TestPki { dir: dir.to_path_buf(), ca, issuer: Issuer::new(params, key) })
    }

    /// The CA certificate (PEM).
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// A server or member certificate: subject `CN=cn`, SANs 127.0.0.1 and localhost,
    /// both the serverAuth and clientAuth usages. Issuing again under the same `name`
    /// replaces the files (a rotation).
    pub fn server(&self, name: &str, cn: &str) -> Result<CertFiles, Error> {
        self.issue(name, &[(DnType::CommonName, cn)], Usage::Both, true, false)
    }

    /// A client certificate: subject `CN=cn,O=Baton tests`, clientAuth only.
    pub fn client(&self, name: &str, cn: &str) -> Result<CertFiles, Error> {
        let subject = [(DnType::OrganizationName, "Baton tests"), (DnType::CommonName, cn)];
        self.issue(name, &subject, Usage::Client, false, false)
    }

    /// A certificate with SANs 127.0.0.1 and localhost but the clientAuth usage only:
    /// a member that presents it as a server is refused by the member dialling it.
    pub fn client_only_member(&self, name: &str) -> Result<CertFiles, Error> {
        self.issue(name, &[(DnType::CommonName, name)], Usage::Client, true, false)
    }

    /// A certificate like [`TestPki::server`]'s (so usable as a client's too) that
    /// expired in 2001.
    pub fn expired(&self, name: &str, cn: &str) -> Result<CertFiles, Error> {
        self.issue(name, &[(DnType::CommonName, cn)], Usage::Both, true, true)
    }

    fn issue(
        &self,
        name: &str,
        subject: &[(DnType, &str)],
        usage: Usage,
        sans: bool,
        expired: bool,
    ) -> Result<CertFiles, Error> {
        let names =
            if sans { vec!["127.0.0.1".to_owned(), "localhost".to_owned()] } else { Vec::new() };
        let mut params = CertificateParams::new(names).map_err(failed(name.into()))?;
        params.distinguished_name = name_of(subject);
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match usage {
            Usage::Both => {
                vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
            }
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().map_err(failed(format!("a key for {name}")))?;
        let cert = params.signed_by(&key, &self.issuer).map_err(failed(name.into()))?;
        let files = CertFiles {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}-key.pem")),
        };
        write(&files.key, &key.serialize_pem())?;
        write(&files.cert, &cert.pem())?;
        Ok(files)
    }

    /// Every TLS flag of a server whose three ports use `server`'s certificate, with
    /// this CA for clients (`--client-auth required`), peers and the admin port.
    pub fn server_flags(&self, server: &CertFiles) -> Vec<String> {
        let (cert, key, ca) = (path(&server.cert), path(&server.key), path(&self.ca));
        [
            ("--tls-cert", &cert),
            ("--tls-key", &key),
            ("--tls-ca", &ca),
            ("--peer-tls-cert", &cert),
            ("--peer-tls-key", &key),
            ("--peer-tls-ca", &ca),
            ("--admin-tls-cert", &cert),
            ("--admin-tls-key", &key),
            ("--admin-tls-ca", &ca),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value.clone()])
        .chain(["--client-auth".to_owned(), "required".to_owned()])
        .collect()
    }

    /// How to reach an admin port that trusts this CA, presenting `client`.
    pub fn admin_client(&self, client: &CertFiles) -> AdminTls {
        AdminTls { ca: self.ca.clone(), client: Some(client.clone()) }
    }
}

fn path(file: &Path) -> String {
    file.display().to_string()
}

fn name_of(subject: &[(DnType, &str)]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (kind, value) in subject {
        name.push(kind.clone(), *value);
    }
    name
}

/// HTTPS to an admin port: the CA its certificate chains to, and the client
/// certificate to present when it asks for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTls {
    pub ca: PathBuf,
    pub client: Option<CertFiles>,
}

/// ring, the provider of the whole build.
#[allow(deprecated, reason = "ring is the workspace's one provider")]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn io_error(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(what.to_string())
}

fn read_certs(file: &Path) -> std::io::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| io_error(format!("{}: {error}", file.display())))
}

/// A rustls client configuration trusting `ca` and presenting `client` if given.
pub fn client_config(
    ca: &Path,
    client: Option<&CertFiles>,
    alpn: &[u8],
) -> std::io::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(ca)? {
        roots.add(cert).map_err(io_error)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io_error)?
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(files) => {
            let key = PrivateKeyDer::from_pem_file(&files.key)
                .map_err(|error| io_error(format!("{}: {error}", files.key.display())))?;
            builder.with_client_auth_cert(read_certs(&files.cert)?, key).map_err(io_error)?
        }
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// Connects to `addr` and completes a TLS handshake (server name 127.0.0.1).
pub async fn tls_connect(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await
}

/// The certificate the server at `addr` presents now (DER), seen through a fresh
/// handshake.
pub async fn served_certificate(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<Vec<u8>> {
    let stream = tls_connect(addr, config).await?;
    let (_, session) = stream.get_ref();
    let certs = session.peer_certificates().ok_or_else(|| io_error("no server certificate"))?;
    Ok(certs.first().map(|c| c.as_ref().to_vec()).unwrap_or_default())
}
