//! The admin HTTP port: `/health`, `/ready`, `/status` (JSON), `/metrics` (Prometheus text)
//! `/snapshot` (a backup: the encoded tree, see `restore`) and `/commands/<name>`
//! (ZooKeeper's four-letter words, see `fourlw`).

use std::{future::Future, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use baton_api::admin::{ConfigMember, Ensemble, Status};
use tokio::net::TcpListener;

use crate::{
    ServerError,
    fourlw::{self, Refusal, Words},
    metrics::Gauges,
    shared::{Membership, Shared},
    tls::{Reloadable, TlsIncoming},
};

/// Serves the admin port until `shutdown` resolves, over TLS when `tls` has material.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    words: Words,
    tls: Option<Arc<Reloadable<rustls::ServerConfig>>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let failed = |error: std::io::Error| ServerError::Serve {
        what: "admin HTTP",
        message: error.to_string(),
    };
    let app = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/snapshot", get(snapshot))
        .with_state(Arc::clone(&shared))
        .merge(
            Router::new()
                .route("/commands/{name}", get(command))
                .with_state((Arc::clone(&shared), Arc::new(words))),
        );
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(failed),
        Some(material) => {
            let incoming = TlsIncoming::start(listener, material, false, shared).map_err(failed)?;
            axum::serve(incoming, app).with_graceful_shutdown(shutdown).await.map_err(failed)
        }
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.serving() && shared.read_tree().is_ok() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
    }
}

/// Readiness as the gRPC `baton.v1.Ready` reports it, for HTTP(S) probes (a kubelet's
/// gRPC probe cannot speak TLS).
async fn ready(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> Result<Json<Status>, StatusCode> {
    let tree = shared.read_tree().map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let membership = shared.membership();
    let status = Status {
        role: membership.role,
        id: shared.server_id,
        epoch: shared.epoch(),
        ensemble: ensemble_status(membership),
        last_zxid: tree.last_zxid(),
        last_zxid_hex: format!("{:#x}", tree.last_zxid()),
        node_count: tree.node_count() as u64,
        digest: format!("{:016x}", tree.digest()),
        sessions: tree.session_count() as u64,
        watches: shared.sessions.watch_count() as u64,
        zk_connections: shared.metrics.zk_connections.load(std::sync::atomic::Ordering::Relaxed),
        data_dir: shared.data_dir.display().to_string(),
        client_addr: shared.client_addr.to_string(),
    };
    Ok(Json(status))
}

fn ensemble_status(membership: Membership) -> Ensemble {
    Ensemble {
        role: membership.role,
        leader: membership.leader,
        broadcasting: membership.broadcasting,
        accepted_epoch: membership.accepted_epoch,
        current_epoch: membership.current_epoch,
        logged_zxid: membership.logged_zxid,
        committed_zxid: membership.committed_zxid,
        peers: membership.peers.to_vec(),
        damaged: membership.damaged,
        config_version: membership.config.version.as_u64(),
        members: membership
            .config
            .members
            .iter()
            .map(|m| ConfigMember { id: m.id, addr: m.addr.clone(), voter: m.voter })
            .collect(),
        config_pending: membership.config_pending,
        removed: membership.removed,
    }
}

/// The tree as a snapshot (checksummed, at the zxid in `x-baton-zxid`), written off
/// the async runtime in slices while writes go on.
async fn snapshot(State(shared): State<Arc<Shared>>) -> Result<impl IntoResponse, StatusCode> {
    let written = tokio::task::spawn_blocking(move || shared.write_snapshot())
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let (zxid, data) = (written.zxid, written.data);
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::HeaderName::from_static("x-baton-zxid"), format!("{zxid:#x}")),
    ];
    Ok((headers, data))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Result<impl IntoResponse, StatusCode> {
    let gauges = {
        let tree = shared.read_tree().map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        let membership = shared.membership();
        Gauges {
            znodes: tree.node_count() as u64,
            data_bytes: tree.data_bytes(),
            last_zxid: tree.last_zxid(),
            committed_zxid: membership.committed_zxid.max(tree.last_zxid()),
            logged_zxid: membership.logged_zxid.max(tree.last_zxid()),
            epoch: shared.epoch(),
            role: membership.role,
            sessions: tree.session_count() as u64,
            watches: shared.sessions.watch_count() as u64,
            disk_free_bytes: shared.disk.free().unwrap_or(0),
            disk_reserve_bytes: shared.disk.reserve(),
            config_voters: membership.config.voters().count() as u64,
            config_observers: membership.config.observers().count() as u64,
        }
    };
    let text = shared.metrics.render(gauges);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// A four-letter word as text, with ZooKeeper's sentence (403) for one outside the
/// whitelist.
async fn command(
    State((shared, words)): State<(Arc<Shared>, Arc<Words>)>,
    Path(name): Path<String>,
) -> impl IntoResponse {
    let text_plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    // Off the async runtime: `dirs` walks the data directory and the rest take locks
    // the driver holds for whole batches.
    let answered = tokio::task::spawn_blocking(move || fourlw::answer(&name, &shared, &words));
    match answered.await {
        Ok(Ok(text)) => (StatusCode::OK, text_plain, text),
        Ok(Err(Refusal::NotWhitelisted(sentence))) => (StatusCode::FORBIDDEN, text_plain, sentence),
        Ok(Err(Refusal::Unknown)) => (StatusCode::NOT_FOUND, text_plain, String::new()),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, text_plain, String::new()),
    }
}
