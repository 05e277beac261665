//! The verified client certificate's subject, as an RFC 4514 string: the identity the
//! access-control checks match `x509` ACL entries against.

use tonic::Request;
use x509_parser::{
    prelude::{FromDer, X509Certificate},
    x509::{AttributeTypeAndValue, X509Name},
};

/// The subject distinguished name of the certificate the client presented on this
/// request's connection (`CN=alice,O=Example`); `None` without one. The certificate
/// was verified in the handshake (it chains to `--tls-ca`), so the name can be trusted.
/// Works for unary calls and for streams (`Request<Streaming<_>>`) alike.
pub(crate) fn client_subject<T>(request: &Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    subject_of(certs.first()?.as_ref())
}

/// The subject of a DER certificate, RFC 4514; `None` if it does not parse.
pub(crate) fn subject_of(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(rfc4514(cert.subject()))
}

/// RFC 4514 §2.1: the RDNs from the last to the first, `,` between them, `+` between
/// the attributes of a multi-valued one.
fn rfc4514(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.reverse();
    rdns.join(",")
}

fn attribute(atv: &AttributeTypeAndValue<'_>) -> String {
    let oid = atv.attr_type().to_id_string();
    // RFC 4514 §3: the short names every implementation knows; others are dotted.
    let name = match oid.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => other,
    };
    let value = match atv.as_str() {
        Ok(text) => escape(text),
        // §2.4: a value that is not a string is `#` and the hex of its encoding.
        Err(_) => {
            let raw = atv.attr_value();
            let mut der = vec![raw.tag().0 as u8];
            der.extend(der_length(raw.data.len()));
            der.extend_from_slice(raw.data);
            let mut hex = String::from("#");
            for byte in der {
                hex.push_str(&format!("{byte:02x}"));
            }
            hex
        }
    };
    format!("{name}={value}")
}

/// A DER length: short form below 128, else the long form.
fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mut out = vec![0x80 | (bytes.len() - skip) as u8];
    out.extend_from_slice(&bytes[skip..]);
    out
}

/// RFC 4514 §2.4 escaping of a string value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
    use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
    use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
    use tokio::net::{TcpListener, TcpStream};
    use tonic::transport::server::Connected;

    use super::*;
    use crate::tls::material::provider;

    fn cert_with(
        subject: &[(DnType, &str)],
        issuer: Option<&rcgen::Issuer<'_, KeyPair>>,
    ) -> (rcgen::Certificate, KeyPair) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let mut dn = DistinguishedName::new();
        for (kind, value) in subject {
            dn.push(kind.clone(), *value);
        }
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        let cert = match issuer {
            Some(issuer) => params.signed_by(&key, issuer).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        (cert, key)
    }

    #[test]
    fn subjects_are_rfc_4514_last_rdn_first() {
        let (cert, _) = cert_with(
            &[(DnType::OrganizationName, "Example"), (DnType::CommonName, "alice")],
            None,
        );
        assert_eq!(subject_of(cert.der()).as_deref(), Some("CN=alice,O=Example"));
        let (cert, _) =
            cert_with(&[(DnType::CountryName, "FR"), (DnType::CommonName, "#a, b+c;\"d\" ")], None);
        assert_eq!(subject_of(cert.der()).as_deref(), Some("CN=\\#a\\, b\\+c\\;\\\"d\\\"\\ ,C=FR"));
        assert_eq!(subject_of(b"not a certificate"), None);
    }

    #[test]
    fn no_certificate_no_subject() {
        assert_eq!(client_subject(&Request::new(())), None);
    }

    /// Through a real handshake on a loopback socket: what tonic puts in a request's
    /// extensions for a TLS connection gives the client's subject.
    #[tokio::test]
    async fn the_subject_of_a_connection_s_client_certificate() {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let (server_cert, server_key) = cert_with(&[(DnType::CommonName, "server")], Some(&issuer));
        let (client_cert, client_key) = cert_with(
            &[(DnType::OrganizationName, "Example"), (DnType::CommonName, "alice")],
            Some(&issuer),
        );
        let mut roots = RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let roots = Arc::new(roots);
        let key_der = |key: &KeyPair| PrivatePkcs8KeyDer::from(key.serialize_der()).into();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider())
            .build()
            .unwrap();
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.der().clone()], key_der(&server_key))
            .unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from(client_cert.der().to_vec())],
                key_der(&client_key),
            )
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dial = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("127.0.0.1").unwrap();
            tokio_rustls::TlsConnector::from(Arc::new(client)).connect(name, tcp).await.unwrap()
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(Arc::new(server)).accept(tcp).await.unwrap();
        let _client_side = dial.await.unwrap();
        let mut request = Request::new(());
        request.extensions_mut().insert(tls.connect_info());
        assert_eq!(client_subject(&request).as_deref(), Some("CN=alice,O=Example"));
    }
}
