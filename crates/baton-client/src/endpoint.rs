//! Parsing of the endpoints a client is given: `host:port`, optionally written with an
//! `http://` scheme, or `https://` when TLS options are given ([`crate::ClientTls`]).
//! With TLS options every endpoint is dialled with TLS, `host:port` included; without
//! them `https://` is refused rather than silently spoken in plain text.

use tonic::transport::Uri;

use crate::{ClientError, ClientTls, tls::TlsDial};

/// One server address, as given and as dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// `host:port`, the form used in messages.
    pub authority: String,
    /// `http://host:port/`, the form tonic dials (TLS, when there is, is the
    /// connector's: the scheme stays `http`).
    pub uri: Uri,
    /// TLS to this server, when options were given.
    pub(crate) tls: Option<TlsDial>,
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.authority)
    }
}

/// Parses one endpoint. Surrounding whitespace is ignored (lists come from flags and
/// environment variables, where `a:1, b:2` is a natural thing to type).
pub fn parse_endpoint(endpoint: &str) -> Result<ServerAddr, ClientError> {
    parse(endpoint, None)
}

fn parse(endpoint: &str, tls: Option<&TlsDial>) -> Result<ServerAddr, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = endpoint.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty endpoint"));
    }
    let rest = match (trimmed.split_once("://"), tls) {
        (Some(("http", rest)), None) | (Some(("https", rest)), Some(_)) => rest,
        (Some(("https", _)), None) => {
            return Err(invalid("https:// needs TLS options (a CA, or the default roots)"));
        }
        (Some(("http", _)), Some(_)) => {
            return Err(invalid("http:// with TLS options (use host:port or https://)"));
        }
        (Some((scheme, _)), _) => {
            return Err(invalid(&format!("unsupported scheme {scheme:?} (use host:port)")));
        }
        (None, _) => trimmed,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(invalid("expected host:port, without path, query or user"));
    }
    let uri: Uri =
        format!("http://{authority}/").parse().map_err(|_| invalid("not a valid host:port"))?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid("missing host"));
    }
    match uri.port_u16() {
        Some(0) => Err(invalid("port 0 cannot be dialled")),
        Some(_) => Ok(ServerAddr { authority: authority.to_owned(), uri, tls: tls.cloned() }),
        None => Err(invalid("missing port (expected host:port)")),
    }
}

/// Parses a list of endpoints; the list must not be empty.
pub fn parse_endpoints(endpoints: &[String]) -> Result<Vec<ServerAddr>, ClientError> {
    parse_endpoints_with(endpoints, None)
}

/// Parses a list of endpoints to be dialled with `tls` (its files are read now).
pub fn parse_endpoints_with(
    endpoints: &[String],
    tls: Option<&ClientTls>,
) -> Result<Vec<ServerAddr>, ClientError> {
    if endpoints.is_empty() {
        return Err(ClientError::InvalidEndpoint {
            endpoint: String::new(),
            reason: "no endpoints given".to_owned(),
        });
    }
    let tls = tls.map(|tls| tls.config().map(TlsDial::new)).transpose()?;
    endpoints.iter().map(|e| parse(e, tls.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_port_with_or_without_http() {
        for (given, authority) in [
            ("127.0.0.1:7181", "127.0.0.1:7181"),
            ("http://127.0.0.1:7181", "127.0.0.1:7181"),
            ("http://localhost:1/", "localhost:1"),
            (" baton-0.baton:7181 ", "baton-0.baton:7181"),
            ("[::1]:7181", "[::1]:7181"),
        ] {
            let addr = parse_endpoint(given).unwrap();
            assert_eq!(addr.authority, authority);
            assert_eq!(addr.uri.to_string(), format!("http://{authority}/"));
        }
    }

    #[test]
    fn rejects_what_cannot_be_dialled() {
        for bad in [
            "",
            "  ",
            "127.0.0.1",
            "127.0.0.1:",
            ":7181",
            "127.0.0.1:99999",
            "127.0.0.1:0",
            "https://127.0.0.1:7181",
            "unix:///tmp/sock",
            "http://127.0.0.1:7181/path",
            "user@host:1",
            "host:port",
        ] {
            let err = parse_endpoint(bad).unwrap_err();
            assert!(matches!(err, ClientError::InvalidEndpoint { .. }), "{bad:?} gave {err:?}");
        }
    }

    #[test]
    fn https_only_with_tls_options_and_then_for_every_endpoint() {
        let tls = ClientTls::default();
        let list = ["https://127.0.0.1:7181/".to_owned(), "b:2".to_owned()];
        let addrs = parse_endpoints_with(&list, Some(&tls)).unwrap();
        assert_eq!(addrs[0].authority, "127.0.0.1:7181");
        assert!(addrs.iter().all(|a| a.tls.is_some()), "host:port too is dialled with TLS");
        let plain = parse_endpoints(&["b:2".to_owned()]).unwrap();
        assert!(plain[0].tls.is_none());
        let err = parse_endpoints(&list).unwrap_err();
        assert!(err.to_string().contains("https:// needs TLS options"), "{err}");
        let err = parse_endpoints_with(&["http://a:1".to_owned()], Some(&tls)).unwrap_err();
        assert!(err.to_string().contains("http:// with TLS options"), "{err}");
    }

    #[test]
    fn unusable_tls_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ca.pem");
        let tls = ClientTls { ca: Some(missing.clone()), ..ClientTls::default() };
        let err = parse_endpoints_with(&["a:1".to_owned()], Some(&tls)).unwrap_err();
        assert!(matches!(err, ClientError::InvalidTls { .. }), "{err:?}");
        assert!(err.to_string().contains(&missing.display().to_string()), "{err}");
        let garbage = dir.path().join("key.pem");
        std::fs::write(&garbage, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n").unwrap();
        let tls = ClientTls { cert: Some(garbage.clone()), key: None, ca: None };
        let err = parse_endpoints_with(&["a:1".to_owned()], Some(&tls)).unwrap_err();
        assert!(err.to_string().contains("needs its key"), "{err}");
        let tls = ClientTls { cert: Some(missing.clone()), key: Some(garbage.clone()), ca: None };
        let err = parse_endpoints_with(&["a:1".to_owned()], Some(&tls)).unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "no key bytes in errors: {err}");
    }

    #[test]
    fn a_list_must_not_be_empty() {
        assert!(parse_endpoints(&[]).is_err());
        let list = parse_endpoints(&["a:1".into(), "http://b:2".into()]).unwrap();
        assert_eq!(list.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["a:1", "b:2"]);
        assert!(parse_endpoints(&["a:1".into(), "b".into()]).is_err());
    }
}
