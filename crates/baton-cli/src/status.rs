//! `baton status`: each server's place in its ensemble, from its admin port's
//! `/status` (HTTP/1.1 over a TCP stream, or over TLS with the `--tls-*` flags: one
//! GET, no HTTP client library).

use std::time::Duration;

use anyhow::{Context, bail};
use baton_api::admin::Status;
use baton_client::ClientTls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest `/status` body read.
const STATUS_BYTES_MAX: u64 = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(3);

/// Prints one line (one JSON object with `json`) per admin endpoint; exits 0 if
/// every endpoint answered, 4 (connection) otherwise.
pub(crate) async fn run(
    admin: &[String],
    tls: Option<&ClientTls>,
    json: bool,
) -> anyhow::Result<i32> {
    let mut failed = false;
    let mut answers = Vec::new();
    for endpoint in admin {
        answers.push((endpoint, fetch(endpoint, tls).await));
    }
    // Lag: how many txns a member has applied fewer than the most advanced one
    // (zxids of one epoch count txns; across epochs it is shown as "behind").
    let newest =
        answers.iter().filter_map(|(_, a)| a.as_ref().ok().map(|s| s.last_zxid)).max().unwrap_or(0);
    for (endpoint, answer) in answers {
        let lag = |status: &Status| {
            let applied = status.last_zxid;
            if applied >> 32 == newest >> 32 {
                serde_json::json!(newest - applied)
            } else {
                serde_json::json!("behind")
            }
        };
        match answer {
            Ok(status) if json => {
                let lag = lag(&status);
                println!(
                    "{}",
                    serde_json::json!({"endpoint": endpoint, "lag": lag, "status": status})
                )
            }
            Ok(status) => println!("{endpoint}  {} lag={}", line(&status), lag(&status)),
            Err(error) => {
                failed = true;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"endpoint": endpoint, "error": format!("{error:#}")})
                    );
                } else {
                    println!("{endpoint}  unreachable: {error:#}");
                }
            }
        }
    }
    Ok(if failed { crate::exit::CONNECTION_LOSS } else { 0 })
}

/// `id=2 following leader=3 broadcasting epoch=4 logged=0x… committed=0x… applied=0x… digest=…`
/// (`damaged` after the role while the disk lost acknowledged entries not yet repaired)
fn line(status: &Status) -> String {
    let e = &status.ensemble;
    let mut out = format!("id={} {}", status.id, status.role);
    if let Some(leader) = e.leader {
        out.push_str(&format!(" leader={leader}"));
    }
    if e.broadcasting {
        out.push_str(" broadcasting");
    }
    if e.damaged {
        // Its disk lost what it acknowledged: it neither votes nor serves until repaired.
        out.push_str(" damaged");
    }
    out.push_str(&format!(
        " epoch={} logged={:#x} committed={:#x} applied={:#x} znodes={} sessions={} digest={}",
        status.epoch,
        e.logged_zxid,
        e.committed_zxid,
        status.last_zxid,
        status.node_count,
        status.sessions,
        status.digest,
    ));
    out
}

async fn fetch(endpoint: &str, tls: Option<&ClientTls>) -> anyhow::Result<Status> {
    let body = tokio::time::timeout(TIMEOUT, get(endpoint, tls, "/status"))
        .await
        .with_context(|| format!("no answer within {TIMEOUT:?}"))??;
    serde_json::from_str(&body).context("the /status answer is not a Baton status")
}

async fn get(endpoint: &str, tls: Option<&ClientTls>, path: &str) -> anyhow::Result<String> {
    match tls {
        Some(tls) => exchange(tls.connect_https(endpoint).await?, endpoint, path).await,
        None => {
            let stream = tokio::net::TcpStream::connect(endpoint).await.context("connecting")?;
            exchange(stream, endpoint, path).await
        }
    }
}

async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    endpoint: &str,
    path: &str,
) -> anyhow::Result<String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {endpoint}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.context("sending the request")?;
    let mut response = Vec::new();
    stream.take(STATUS_BYTES_MAX).read_to_end(&mut response).await.context("reading the answer")?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
    let status_line = head.lines().next().unwrap_or("");
    if !status_line.contains(" 200 ") {
        bail!("answered {status_line:?}");
    }
    Ok(body.to_owned())
}
