//! Credentials on the wire: the `baton-auth` metadata of unary calls and the
//! `AddAuthRequest` of sessions. Parsing only; checking them is the server's.
//!
//! A credential holds a secret, so nothing here prints one: [`Credential`]'s and
//! `pb::AddAuthRequest`'s `Debug` show the scheme and the user at most.

use std::fmt;

use tonic::{
    Status,
    metadata::{AsciiMetadataValue, MetadataMap},
};

use crate::{
    pb,
    status::{ErrorCode, error_status},
};

/// The metadata key of a unary call's credentials: one value per credential,
/// `<scheme> <credentials>` (e.g. `digest alice:secret`).
pub const AUTH_METADATA: &str = "baton-auth";

/// Most credentials one call or session may present.
pub const CREDENTIALS_MAX: usize = 16;

/// Longest credential (scheme and secret together), in bytes.
pub const CREDENTIAL_BYTES_MAX: usize = 1024;

/// A scheme and its secret (for `digest`: `user:password`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub scheme: String,
    pub secret: Vec<u8>,
}

impl Credential {
    /// A `digest` credential for `user:password`.
    pub fn digest(user: &str, password: &str) -> Credential {
        Credential { scheme: "digest".into(), secret: format!("{user}:{password}").into_bytes() }
    }

    /// Parses `scheme:credentials` as zkCli's `addauth` and the CLI's `--auth` take it
    /// (`digest:alice:secret`).
    pub fn parse(text: &str) -> Result<Credential, String> {
        match text.split_once(':') {
            Some((scheme, secret)) if !scheme.is_empty() && !secret.is_empty() => {
                Ok(Credential { scheme: scheme.to_owned(), secret: secret.as_bytes().to_vec() })
            }
            _ => Err("credentials must be scheme:credentials, e.g. digest:user:password".into()),
        }
    }

    /// The user a digest credential names, if it is one (safe to show).
    pub fn user(&self) -> Option<&str> {
        let text = std::str::from_utf8(&self.secret).ok()?;
        Some(text.split_once(':').map_or(text, |(user, _)| user))
    }

    pub fn to_pb(&self) -> pb::AddAuthRequest {
        pb::AddAuthRequest { scheme: self.scheme.clone(), auth: self.secret.clone().into() }
    }

    pub fn from_pb(request: &pb::AddAuthRequest) -> Result<Credential, Status> {
        let credential =
            Credential { scheme: request.scheme.clone(), secret: request.auth.to_vec() };
        check_size(&credential)?;
        Ok(credential)
    }

    /// The metadata value of a unary call; None if it cannot be one (not ASCII).
    pub fn to_metadata(&self) -> Option<AsciiMetadataValue> {
        let secret = std::str::from_utf8(&self.secret).ok()?;
        format!("{} {secret}", self.scheme).parse().ok()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("scheme", &self.scheme)
            .field("user", &self.user().unwrap_or("?"))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for pb::AddAuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddAuthRequest").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

fn check_size(credential: &Credential) -> Result<(), Status> {
    if credential.scheme.len() + credential.secret.len() > CREDENTIAL_BYTES_MAX {
        let message = format!("credentials longer than {CREDENTIAL_BYTES_MAX} bytes");
        return Err(error_status(ErrorCode::AuthFailed, message, "", None));
    }
    Ok(())
}

/// The credentials of a unary call, from its `baton-auth` metadata. Malformed ones
/// are AUTH_FAILED, with a message that never contains the secret.
pub fn credentials_from_metadata(metadata: &MetadataMap) -> Result<Vec<Credential>, Status> {
    let failed = |message: String| error_status(ErrorCode::AuthFailed, message, "", None);
    let mut credentials = Vec::new();
    for value in metadata.get_all(AUTH_METADATA) {
        if credentials.len() == CREDENTIALS_MAX {
            return Err(failed(format!("more than {CREDENTIALS_MAX} {AUTH_METADATA} values")));
        }
        let text = value
            .to_str()
            .map_err(|_| failed(format!("a {AUTH_METADATA} value is not ASCII text")))?;
        let Some((scheme, secret)) = text.trim().split_once(' ') else {
            return Err(failed(format!(
                "a {AUTH_METADATA} value must be \"<scheme> <credentials>\", e.g. \"digest user:password\""
            )));
        };
        let credential =
            Credential { scheme: scheme.to_owned(), secret: secret.trim().as_bytes().to_vec() };
        check_size(&credential)?;
        credentials.push(credential);
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trip_and_debug_hides_the_secret() {
        let credential = Credential::digest("alice", "s3cret");
        let mut metadata = MetadataMap::new();
        metadata.append(AUTH_METADATA, credential.to_metadata().unwrap());
        assert_eq!(credentials_from_metadata(&metadata).unwrap(), vec![credential.clone()]);
        let shown = format!("{credential:?} {:?}", credential.to_pb());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }

    #[test]
    fn malformed_metadata_is_auth_failed_without_the_secret() {
        let mut metadata = MetadataMap::new();
        metadata.append(AUTH_METADATA, "digest-alice:s3cret".parse().unwrap());
        let status = credentials_from_metadata(&metadata).unwrap_err();
        assert_eq!(crate::status::error_from_status(&status).code, ErrorCode::AuthFailed as i32);
        assert!(!status.message().contains("s3cret"));
    }

    #[test]
    fn cli_form_parses() {
        let c = Credential::parse("digest:alice:pw:with:colons").unwrap();
        assert_eq!(
            (c.scheme.as_str(), c.secret.as_slice()),
            ("digest", &b"alice:pw:with:colons"[..])
        );
        assert!(Credential::parse("digest").is_err());
        assert!(Credential::parse(":x").is_err());
    }
}
