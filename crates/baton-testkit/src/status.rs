//! The admin port: the typed `/status` client, a minimal HTTP GET for the other pages,
//! and what an ensemble's statuses must show to be settled or converged.

use std::{net::SocketAddr, time::Duration};

use baton_api::admin::{Role, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    Error,
    tls::{AdminTls, client_config, tls_connect},
};

/// How long one `/status` request may take before the member counts as not answering.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest admin response read (a `/metrics` page is a few tens of KiB).
const RESPONSE_BYTES_MAX: u64 = 16 << 20;

/// A minimal HTTP/1.1 GET (for the admin port): the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with(addr, path, None).await
}

/// [`http_get`] over HTTPS when `tls` is given.
pub async fn http_get_with(
    addr: SocketAddr,
    path: &str,
    tls: Option<&AdminTls>,
) -> std::io::Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    match tls {
        None => {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.write_all(request.as_bytes()).await?;
            stream.take(RESPONSE_BYTES_MAX).read_to_end(&mut response).await?;
        }
        Some(tls) => {
            let config = client_config(&tls.ca, tls.client.as_ref(), b"http/1.1")?;
            let mut stream = tls_connect(addr, config).await?;
            stream.write_all(request.as_bytes()).await?;
            // A server may close without close_notify after `Connection: close`.
            match stream.take(RESPONSE_BYTES_MAX).read_to_end(&mut response).await {
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {}
                other => {
                    other?;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&response);
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(invalid)?;
    let code =
        head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).ok_or_else(invalid)?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok((code, body))
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        let (Some(chunk), Some(after)) = (rest.get(..size), rest.get(size..)) else { break };
        if size == 0 {
            break;
        }
        out.push_str(chunk);
        body = after.trim_start_matches("\r\n");
    }
    out
}

/// The server's `/status`, within [`STATUS_TIMEOUT`].
pub async fn fetch_status(admin: SocketAddr) -> Result<Status, Error> {
    fetch_status_with(admin, None).await
}

/// [`fetch_status`] over HTTPS when `tls` is given.
pub async fn fetch_status_with(admin: SocketAddr, tls: Option<&AdminTls>) -> Result<Status, Error> {
    let failed = |reason: String| Error::Admin { addr: admin, reason };
    let answer = tokio::time::timeout(STATUS_TIMEOUT, http_get_with(admin, "/status", tls))
        .await
        .map_err(|_| failed(format!("no answer within {STATUS_TIMEOUT:?}")))?
        .map_err(|e| failed(e.to_string()))?;
    match answer {
        (200, body) => serde_json::from_str(&body)
            .map_err(|e| failed(format!("/status is not a Baton status ({e}): {body}"))),
        (code, body) => Err(failed(format!("/status answered {code}: {body}"))),
    }
}

/// The leader's id if the ensemble these statuses come from is settled: exactly one
/// member leads, and every one broadcasts under it.
pub fn settled(statuses: &[Status]) -> Option<u64> {
    let leaders: Vec<&Status> = statuses.iter().filter(|s| s.role == Role::Leading).collect();
    let [leader] = leaders[..] else { return None };
    let leader = u64::from(leader.id);
    let all = statuses.iter().all(|s| s.ensemble.broadcasting && s.ensemble.leader == Some(leader));
    all.then_some(leader)
}

/// Whether these statuses show one tree: every member broadcasts, with the same last
/// zxid and digest.
pub fn converged(statuses: &[Status]) -> bool {
    let Some(first) = statuses.first() else { return false };
    statuses.iter().all(|s| {
        s.ensemble.broadcasting && s.last_zxid == first.last_zxid && s.digest == first.digest
    })
}

#[cfg(test)]
mod tests {
    use baton_api::admin::Ensemble;

    use super::*;

    fn member(id: u8, role: Role, leader: Option<u64>, zxid: u64) -> Status {
        Status {
            role,
            id,
            epoch: 1,
            ensemble: Ensemble {
                role,
                leader,
                broadcasting: leader.is_some(),
                accepted_epoch: 1,
                current_epoch: 1,
                logged_zxid: zxid,
                committed_zxid: zxid,
                peers: Vec::new(),
                damaged: false,
                config_version: 0,
                members: Vec::new(),
                config_pending: None,
                removed: false,
            },
            last_zxid: zxid,
            last_zxid_hex: format!("{zxid:#x}"),
            node_count: 2,
            digest: format!("{zxid:016x}"),
            sessions: 0,
            watches: 0,
            zk_connections: 0,
            data_dir: String::new(),
            client_addr: String::new(),
        }
    }

    #[test]
    fn settled_needs_one_leader_every_member_follows() {
        let leader = member(2, Role::Leading, Some(2), 5);
        let follower = member(1, Role::Following, Some(2), 5);
        assert_eq!(settled(&[follower.clone(), leader.clone()]), Some(2));
        assert_eq!(settled(std::slice::from_ref(&leader)), Some(2), "an ensemble of one");
        let looking = member(3, Role::Looking, None, 5);
        assert_eq!(settled(&[leader.clone(), looking]), None);
        let elsewhere = member(3, Role::Following, Some(3), 5);
        assert_eq!(settled(&[leader.clone(), elsewhere]), None);
        let second = member(3, Role::Leading, Some(3), 5);
        assert_eq!(settled(&[leader, second]), None);
        assert_eq!(settled(&[follower]), None);
    }

    #[test]
    fn converged_needs_equal_trees_in_broadcast() {
        let a = member(1, Role::Leading, Some(1), 7);
        let b = member(2, Role::Following, Some(1), 7);
        assert!(converged(&[a.clone(), b.clone()]));
        assert!(!converged(&[a.clone(), member(2, Role::Following, Some(1), 6)]));
        assert!(!converged(&[a, member(2, Role::Looking, None, 7)]));
        assert!(!converged(&[]));
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
