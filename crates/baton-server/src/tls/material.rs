//! PEM files to rustls configurations, and material that can be swapped while serving.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::{CryptoProvider, ring},
    server::WebPkiClientVerifier,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::{Config, ServerError};

/// Whether the client port asks clients for a certificate (`--client-auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client may present one (it must then chain to `--tls-ca`), or none.
    Optional,
    /// Every client must present one chaining to `--tls-ca`.
    Required,
}

/// ALPN of the gRPC ports (HTTP/2) and of the admin port (HTTP/1.1).
const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why material could not be loaded: the file and the reason, never the file's bytes.
#[derive(Debug, Clone)]
pub(crate) struct MaterialError {
    pub(crate) file: PathBuf,
    pub(crate) reason: String,
}

impl fmt::Display for MaterialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

fn failed(file: &Path, reason: impl Into<String>) -> MaterialError {
    MaterialError { file: file.to_path_buf(), reason: reason.into() }
}

/// ring, the provider tonic's `tls-ring` uses: one crypto provider in the build.
/// (rustls deprecates it for lacking post-quantum key exchange, which needs aws-lc-rs.)
#[allow(deprecated, reason = "ring is the chosen provider; see above")]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn read(file: &Path) -> Result<Vec<u8>, MaterialError> {
    std::fs::read(file).map_err(|error| failed(file, format!("cannot read it: {error}")))
}

pub(crate) fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>, MaterialError> {
    let bytes = read(file)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| failed(file, format!("bad PEM: {error}")))?;
    if certs.is_empty() {
        return Err(failed(file, "no CERTIFICATE in it"));
    }
    Ok(certs)
}

/// The key's bytes go nowhere but rustls: a parse error is told by kind only.
fn read_key(file: &Path) -> Result<PrivateKeyDer<'static>, MaterialError> {
    let bytes = read(file)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
        let why = match error {
            rustls_pki_types::pem::Error::NoItemsFound => "no private key in it",
            _ => "bad PEM",
        };
        failed(file, format!("{why} (expected a PEM PKCS#8, PKCS#1 or SEC1 private key)"))
    })
}

fn read_roots(file: &Path) -> Result<Arc<RootCertStore>, MaterialError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(file)? {
        roots.add(cert).map_err(|error| failed(file, format!("not a usable CA: {error}")))?;
    }
    Ok(Arc::new(roots))
}

/// A key that does not match its certificate is the key file's fault (the usual
/// mistake: one of the pair was replaced and not the other).
fn keyed(key: &Path, cert: &Path, error: rustls::Error) -> MaterialError {
    match error {
        rustls::Error::InconsistentKeys(_) => failed(
            key,
            format!("the private key does not match the certificate in {}", cert.display()),
        ),
        other => {
            failed(key, format!("unusable with the certificate in {}: {other}", cert.display()))
        }
    }
}

/// The files of one port's server side.
#[derive(Debug, Clone)]
pub(crate) struct ServerFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) ca: Option<PathBuf>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) alpn: &'static [u8],
}

impl ServerFiles {
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.cert.clone(), self.key.clone()];
        files.extend(self.ca.clone());
        files
    }

    pub(crate) fn load(&self) -> Result<ServerConfig, MaterialError> {
        let chain = read_certs(&self.cert)?;
        let key = read_key(&self.key)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| failed(&self.cert, error.to_string()))?;
        let builder = match (&self.ca, self.client_auth) {
            (Some(ca), auth) if auth != ClientAuth::None => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(read_roots(ca)?, provider());
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|error| failed(ca, error.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config =
            builder.with_single_cert(chain, key).map_err(|e| keyed(&self.key, &self.cert, e))?;
        config.alpn_protocols = vec![self.alpn.to_vec()];
        Ok(config)
    }
}

/// The files of this member's side of the links it dials to its peers.
#[derive(Debug, Clone)]
pub(crate) struct ClientFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) ca: PathBuf,
}

impl ClientFiles {
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        vec![self.cert.clone(), self.key.clone(), self.ca.clone()]
    }

    pub(crate) fn load(&self) -> Result<ClientConfig, MaterialError> {
        let chain = read_certs(&self.cert)?;
        let key = read_key(&self.key)?;
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| failed(&self.cert, error.to_string()))?
            .with_root_certificates(read_roots(&self.ca)?)
            .with_client_auth_cert(chain, key)
            .map_err(|e| keyed(&self.key, &self.cert, e))?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(config)
    }
}

/// What identifies a file's version on disk (following symlinks, as a Kubernetes
/// Secret volume swaps its `..data` link): a change of any is a change of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

fn fingerprint(file: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).ok()?;
    Some(Fingerprint {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
        device: meta.dev(),
    })
}

type Loader<T> = Box<dyn Fn() -> Result<T, MaterialError> + Send + Sync>;

/// Material in use, swapped whole by a reload: each handshake takes the current one.
pub(crate) struct Reloadable<T> {
    /// What it is for, in logs: "client port", "peer links", ...
    pub(crate) what: &'static str,
    files: Vec<PathBuf>,
    load: Loader<T>,
    current: RwLock<Arc<T>>,
    /// The files as they were at the last load or attempt.
    seen: Mutex<Vec<Option<Fingerprint>>>,
}

impl<T> fmt::Debug for Reloadable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloadable").field("what", &self.what).field("files", &self.files).finish()
    }
}

impl<T> Reloadable<T> {
    /// Loads the material now (an error names the file and why).
    pub(crate) fn new(
        what: &'static str,
        files: Vec<PathBuf>,
        load: impl Fn() -> Result<T, MaterialError> + Send + Sync + 'static,
    ) -> Result<Reloadable<T>, MaterialError> {
        let seen = files.iter().map(|f| fingerprint(f)).collect();
        let first = load()?;
        Ok(Reloadable {
            what,
            files,
            load: Box::new(load),
            current: RwLock::new(Arc::new(first)),
            seen: Mutex::new(seen),
        })
    }

    pub(crate) fn current(&self) -> Arc<T> {
        // A poisoned lock still holds a whole Arc: a swap cannot be half done.
        Arc::clone(&self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Whether any file changed since the last load or attempt (and remembers the
    /// files as they are now, so one bad version is reported once).
    pub(crate) fn changed(&self) -> bool {
        let now: Vec<Option<Fingerprint>> = self.files.iter().map(|f| fingerprint(f)).collect();
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *seen == now {
            return false;
        }
        *seen = now;
        true
    }

    /// Loads the files again; on success new handshakes use what they hold, on
    /// failure the material in use stays.
    pub(crate) fn reload(&self) -> Result<(), MaterialError> {
        let fresh = (self.load)()?;
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
        Ok(())
    }
}

/// The material of every port that has TLS, loaded from the flags' files.
#[derive(Debug, Default)]
pub(crate) struct TlsSetup {
    pub(crate) client: Option<Arc<Reloadable<ServerConfig>>>,
    /// The peer port's side and the dialling side share the `--peer-tls-*` files.
    pub(crate) peer_server: Option<Arc<Reloadable<ServerConfig>>>,
    pub(crate) peer_client: Option<Arc<Reloadable<ClientConfig>>>,
    pub(crate) admin: Option<Arc<Reloadable<ServerConfig>>>,
}

fn server_material(
    what: &'static str,
    files: ServerFiles,
) -> Result<Arc<Reloadable<ServerConfig>>, ServerError> {
    let reloadable = Reloadable::new(what, files.files(), move || files.load())
        .map_err(|error| ServerError::Config(format!("TLS of the {what}: {error}")))?;
    Ok(Arc::new(reloadable))
}

impl TlsSetup {
    /// Reads every file the TLS flags name (after `Config::validate`).
    pub(crate) fn load(config: &Config) -> Result<TlsSetup, ServerError> {
        let mut setup = TlsSetup::default();
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            let files = ServerFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: config.tls_ca.clone(),
                client_auth: config.client_auth,
                alpn: ALPN_H2,
            };
            setup.client = Some(server_material("client port", files)?);
        }
        if let (Some(cert), Some(key), Some(ca)) =
            (&config.peer_tls_cert, &config.peer_tls_key, &config.peer_tls_ca)
        {
            let files = ServerFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: Some(ca.clone()),
                client_auth: ClientAuth::Required,
                alpn: ALPN_H2,
            };
            setup.peer_server = Some(server_material("peer port", files)?);
            let dialling = ClientFiles { cert: cert.clone(), key: key.clone(), ca: ca.clone() };
            let reloadable =
                Reloadable::new("peer links", dialling.files(), move || dialling.load()).map_err(
                    |error| ServerError::Config(format!("TLS of the peer links: {error}")),
                )?;
            setup.peer_client = Some(Arc::new(reloadable));
        }
        if let (Some(cert), Some(key)) = (&config.admin_tls_cert, &config.admin_tls_key) {
            let files = ServerFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: config.admin_tls_ca.clone(),
                client_auth: if config.admin_tls_ca.is_some() {
                    ClientAuth::Required
                } else {
                    ClientAuth::None
                },
                alpn: ALPN_HTTP1,
            };
            setup.admin = Some(server_material("admin port", files)?);
        }
        Ok(setup)
    }

    pub(crate) fn any(&self) -> bool {
        self.client.is_some() || self.peer_server.is_some() || self.admin.is_some()
    }
}
