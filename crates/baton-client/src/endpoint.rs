//! Parsing of the endpoints a client is given: `host:port`, optionally written with an
//! `http://` scheme. TLS does not exist yet, so `https://` is refused rather than silently
//! spoken in plain text.

use tonic::transport::Uri;

use crate::ClientError;

/// One server address, as given and as dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// `host:port`, the form used in messages.
    pub authority: String,
    /// `http://host:port/`, the form tonic dials.
    pub uri: Uri,
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.authority)
    }
}

/// Parses one endpoint. Surrounding whitespace is ignored (lists come from flags and
/// environment variables, where `a:1, b:2` is a natural thing to type).
pub fn parse_endpoint(endpoint: &str) -> Result<ServerAddr, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = endpoint.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty endpoint"));
    }
    let rest = match trimmed.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(invalid(&format!("unsupported scheme {scheme:?} (use host:port)")));
        }
        None => trimmed,
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
        Some(_) => Ok(ServerAddr { authority: authority.to_owned(), uri }),
        None => Err(invalid("missing port (expected host:port)")),
    }
}

/// Parses a list of endpoints; the list must not be empty.
pub fn parse_endpoints(endpoints: &[String]) -> Result<Vec<ServerAddr>, ClientError> {
    if endpoints.is_empty() {
        return Err(ClientError::InvalidEndpoint {
            endpoint: String::new(),
            reason: "no endpoints given".to_owned(),
        });
    }
    endpoints.iter().map(|e| parse_endpoint(e)).collect()
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
    fn a_list_must_not_be_empty() {
        assert!(parse_endpoints(&[]).is_err());
        let list = parse_endpoints(&["a:1".into(), "http://b:2".into()]).unwrap();
        assert_eq!(list.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["a:1", "b:2"]);
        assert!(parse_endpoints(&["a:1".into(), "b".into()]).is_err());
    }
}
