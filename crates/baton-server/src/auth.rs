//! Who a request is: the identities its ACL checks run with.
//!
//! Every request has `ip:<client address>`; on a TLS port with a verified client
//! certificate, `x509:<subject>`; then whatever its credentials prove: a `digest`
//! credential `user:password` yields `digest:user:base64(sha1(user:password))`, and
//! the super user's the `super` identity too. Without `--digest-users` any
//! credential is accepted (ZooKeeper's digest provider: a wrong password simply
//! yields an identity no ACL names), except a wrong password for the super user's
//! name; with it, only a listed user with the right password authenticates.
//! A refusal is AUTH_FAILED and adds nothing.
//!
//! Secrets stay here: no log line, metric or error message holds a password or a
//! digest (errors name the scheme and at most the user).

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant, SystemTime},
};

use baton_api::{
    auth::{Credential, credentials_from_metadata},
    status::{ErrorCode, error_status},
};
use baton_znode::{
    Auth, Id,
    acl::{SCHEME_DIGEST, SCHEME_IP, SCHEME_X509, digest_id},
};
use tonic::Status;

use crate::{ServerError, tls::client_subject};

/// How often a changed `--digest-users` file is noticed, at most.
const USERS_RECHECK: Duration = Duration::from_secs(1);

/// Most users a `--digest-users` file may list.
pub(crate) const DIGEST_USERS_MAX: usize = 100_000;

/// Checks credentials; shared by every call and session of a server.
#[derive(Debug)]
pub(crate) struct Authenticator {
    /// The super user's digest id (`user:hash`).
    super_digest: Option<String>,
    users: Option<Mutex<UsersFile>>,
}

/// The `--digest-users` file and what it held when last read.
#[derive(Debug)]
struct UsersFile {
    path: PathBuf,
    /// (modified, length) when read; a change makes it read again.
    version: Option<(SystemTime, u64)>,
    checked: Instant,
    /// Digest ids (`user:hash`), sorted by user.
    users: Vec<String>,
}

impl Authenticator {
    /// A `--super-digest` is set: only the super user may change the membership.
    pub(crate) fn has_super(&self) -> bool {
        self.super_digest.is_some()
    }

    /// No super user, no users file: ZooKeeper's defaults.
    pub(crate) fn open() -> Authenticator {
        Authenticator { super_digest: None, users: None }
    }

    /// Reads the configuration; a malformed super digest or users file is an error
    /// that names the flag or the file and the line (never its content).
    pub(crate) fn new(
        super_digest: Option<&str>,
        users: Option<PathBuf>,
    ) -> Result<Authenticator, ServerError> {
        if let Some(digest) = super_digest {
            check_digest_id(digest)
                .map_err(|reason| ServerError::Config(format!("--super-digest: {reason}")))?;
        }
        let users = match users {
            None => None,
            Some(path) => {
                let mut file =
                    UsersFile { path, version: None, checked: Instant::now(), users: Vec::new() };
                file.reload().map_err(ServerError::Config)?;
                Some(Mutex::new(file))
            }
        };
        Ok(Authenticator { super_digest: super_digest.map(str::to_owned), users })
    }

    /// The identities `credential` proves, or AUTH_FAILED.
    pub(crate) fn authenticate(&self, credential: &Credential) -> Result<Vec<Id>, Status> {
        let failed = |message: String| error_status(ErrorCode::AuthFailed, message, "", None);
        match credential.scheme.as_str() {
            SCHEME_DIGEST => {}
            SCHEME_X509 => {
                return Err(failed(
                    "x509 identities come from the TLS client certificate, not from credentials"
                        .into(),
                ));
            }
            other => {
                return Err(failed(format!(
                    "unknown authentication scheme {:?} (this server knows digest)",
                    truncated(other)
                )));
            }
        }
        let text = std::str::from_utf8(&credential.secret)
            .map_err(|_| failed("digest credentials must be UTF-8 user:password".into()))?;
        let Some((user, password)) = text.split_once(':').filter(|(user, _)| !user.is_empty())
        else {
            return Err(failed("digest credentials must be user:password".into()));
        };
        let id = digest_id(user, password);
        let refused =
            || failed(format!("digest authentication failed for user {:?}", truncated(user)));
        let mut ids = vec![Id::new(SCHEME_DIGEST, id.clone())];
        if let Some(super_digest) = &self.super_digest
            && same_user(super_digest, user)
        {
            if !constant_time_eq(super_digest.as_bytes(), id.as_bytes()) {
                return Err(refused());
            }
            ids.push(Id::super_user());
            return Ok(ids);
        }
        if let Some(users) = &self.users {
            let mut users = users.lock().unwrap_or_else(|e| e.into_inner());
            users.refresh();
            if !users.admits(user, &id) {
                return Err(refused());
            }
        }
        Ok(ids)
    }

    /// The identities of one unary call: its address, its certificate and the
    /// credentials in its `baton-auth` metadata.
    pub(crate) fn call_auth<T>(&self, request: &tonic::Request<T>) -> Result<Auth, Status> {
        let mut ids = base_identities(request.remote_addr(), client_subject(request));
        for credential in credentials_from_metadata(request.metadata())? {
            ids.extend(self.authenticate(&credential)?);
        }
        Ok(Auth::new(ids))
    }
}

/// The identities a connection has before any credential: `ip` of its address and
/// `x509` of its verified client certificate's subject.
pub(crate) fn base_identities(remote: Option<SocketAddr>, x509: Option<String>) -> Vec<Id> {
    let mut ids = Vec::with_capacity(2);
    if let Some(addr) = remote {
        ids.push(Id::new(SCHEME_IP, addr.ip().to_canonical().to_string()));
    }
    if let Some(subject) = x509 {
        ids.push(Id::new(SCHEME_X509, subject));
    }
    ids
}

/// Adds identities to a set, without duplicates (a session adding the same
/// credentials twice keeps one identity).
pub(crate) fn add_identities(auth: &Auth, more: Vec<Id>) -> Auth {
    let mut ids = auth.ids().to_vec();
    for id in more {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Auth::new(ids)
}

impl UsersFile {
    /// Re-reads the file if it changed, at most once per [`USERS_RECHECK`]. A file
    /// that became unreadable or malformed keeps the users read before (logged).
    fn refresh(&mut self) {
        if self.checked.elapsed() < USERS_RECHECK {
            return;
        }
        self.checked = Instant::now();
        if file_version(&self.path) == self.version {
            return;
        }
        match self.reload() {
            Ok(()) => {
                tracing::info!(file = %self.path.display(), users = self.users.len(), "digest users reloaded")
            }
            Err(error) => {
                tracing::error!(%error, "digest users file not reloaded; the users read before stay")
            }
        }
    }

    fn reload(&mut self) -> Result<(), String> {
        let name = self.path.display();
        let version = file_version(&self.path);
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("--digest-users {name}: cannot read: {e}"))?;
        let mut users = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            check_digest_id(line)
                .map_err(|reason| format!("--digest-users {name} line {}: {reason}", number + 1))?;
            if users.len() == DIGEST_USERS_MAX {
                return Err(format!("--digest-users {name}: more than {DIGEST_USERS_MAX} users"));
            }
            users.push(line.to_owned());
        }
        users.sort_unstable_by(|a, b| user_of(a).cmp(user_of(b)));
        if let Some(pair) = users.windows(2).find(|w| user_of(&w[0]) == user_of(&w[1])) {
            return Err(format!(
                "--digest-users {name}: user {:?} listed twice",
                user_of(&pair[0])
            ));
        }
        self.users = users;
        self.version = version;
        Ok(())
    }

    fn admits(&self, user: &str, id: &str) -> bool {
        self.users
            .binary_search_by(|listed| user_of(listed).cmp(user))
            .is_ok_and(|i| constant_time_eq(self.users[i].as_bytes(), id.as_bytes()))
    }
}

fn file_version(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// `user:hash` with a non-empty user and a base64 SHA-1 (28 characters). The
/// reason never repeats the digest.
fn check_digest_id(id: &str) -> Result<(), String> {
    match id.split_once(':') {
        Some((user, hash)) if !user.is_empty() && hash.len() == 28 && !hash.contains(':') => Ok(()),
        _ => {
            Err("expected user:base64(sha1(user:password)), as `baton digest user:password` prints"
                .into())
        }
    }
}

fn user_of(id: &str) -> &str {
    id.split_once(':').map_or(id, |(user, _)| user)
}

fn same_user(digest_id: &str, user: &str) -> bool {
    user_of(digest_id) == user
}

/// At most 64 characters of a name from outside, for messages.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Compares two secrets' digests in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(status: &Status) -> i32 {
        baton_api::status::error_from_status(status).code
    }

    #[test]
    fn zookeeper_semantics_without_a_users_file() {
        let auth = Authenticator::new(Some(&digest_id("super", "sup")), None).unwrap();
        let ids = auth.authenticate(&Credential::digest("alice", "pw")).unwrap();
        assert_eq!(ids, vec![Id::new("digest", digest_id("alice", "pw"))]);
        let ids = auth.authenticate(&Credential::digest("super", "sup")).unwrap();
        assert!(ids.contains(&Id::super_user()));
        let wrong = auth.authenticate(&Credential::digest("super", "nope")).unwrap_err();
        assert_eq!(code(&wrong), ErrorCode::AuthFailed as i32);
        assert!(!wrong.message().contains("nope"));
        let unknown = Credential { scheme: "kerberos".into(), secret: b"x".to_vec() };
        assert!(auth.authenticate(&unknown).unwrap_err().message().contains("kerberos"));
        let malformed = Credential { scheme: "digest".into(), secret: b"no-colon".to_vec() };
        assert!(!auth.authenticate(&malformed).unwrap_err().message().contains("no-colon"));
    }

    #[test]
    fn a_users_file_admits_only_its_users_and_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, format!("# users\n{}\n", digest_id("alice", "pw"))).unwrap();
        let auth = Authenticator::new(None, Some(path.clone())).unwrap();
        assert!(auth.authenticate(&Credential::digest("alice", "pw")).is_ok());
        let wrong = auth.authenticate(&Credential::digest("alice", "bad")).unwrap_err();
        assert!(!wrong.message().contains("bad"));
        assert!(auth.authenticate(&Credential::digest("bob", "pw")).is_err());
        std::fs::write(
            &path,
            format!("{}\n{}\n", digest_id("alice", "pw"), digest_id("bob", "pw2")),
        )
        .unwrap();
        if let Some(users) = &auth.users {
            users.lock().unwrap().checked -= USERS_RECHECK;
        }
        assert!(auth.authenticate(&Credential::digest("bob", "pw2")).is_ok());
    }

    #[test]
    fn bad_configuration_is_refused_without_echoing_it() {
        let error = Authenticator::new(Some("super:short"), None).unwrap_err().to_string();
        assert!(error.contains("--super-digest") && !error.contains("short"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "alice:secretpassword\n").unwrap();
        let error = Authenticator::new(None, Some(path)).unwrap_err().to_string();
        assert!(error.contains("line 1") && !error.contains("secretpassword"), "{error}");
    }

    #[test]
    fn base_identities_are_the_address_and_the_subject() {
        let ids =
            base_identities(Some("[::ffff:10.1.2.3]:5".parse().unwrap()), Some("CN=a".into()));
        assert_eq!(ids, vec![Id::new("ip", "10.1.2.3"), Id::new("x509", "CN=a")]);
    }
}
