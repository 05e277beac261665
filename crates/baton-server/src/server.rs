//! [`run`]: recover, listen, serve, and shut down in order.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use baton_api::peer::peer_server::PeerServer;
use baton_quorum::{
    Zxid,
    zab::{Entry, Member, Membership, Node, ZabConfig, decode_config_entry},
};
use tonic::transport::server::TcpIncoming;

use crate::{
    Config, ServerError, admin,
    auth::Authenticator,
    ensemble::{
        cache::LogCache,
        driver::Driver,
        transport::{self, PeerLinks, PeerService},
    },
    fourlw,
    grpc::{self, BatonService},
    metrics::Metrics,
    reaper, recovery, scrubber,
    session::{self, service::SessionsService},
    shared::Shared,
    shutdown::Shutdown,
    snapshotter::{self, SNAPSHOT_REQUESTS_MAX, SnapshotTrigger},
    storage::{Promised, Storage},
    tls::{self, PeerDialer, Reloadable, TlsIncoming, TlsSetup},
    write_queue::write_queue,
    zk,
};

/// How long the listeners may take to finish their requests and close their
/// connections after shutdown begins; then they are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The one line printed on stdout once the server serves (tests and scripts read it
/// to learn the ports, which may have been chosen by the OS).
#[derive(Debug, Serialize)]
struct Addresses {
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    /// Only when there are peers to talk to.
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_addr: Option<SocketAddr>,
    /// ZooKeeper's client protocol, unless `--zk-addr off`.
    #[serde(skip_serializing_if = "Option::is_none")]
    zk_addr: Option<SocketAddr>,
}

/// Runs a server until `shutdown` resolves (or a fatal error): a member of the
/// ensemble `--peers` names, or without it an ensemble of one. Both take the same
/// path: the ZAB node, its driver and its recovery.
///
/// Start: validate the config, open the store in `--data-dir` and read the newest
/// snapshot and the log after it (the node commits the log when its leader says
/// so: an ensemble of one elects itself at once), bind the listeners, print their
/// addresses as one JSON line on stdout. Stop: stop accepting, commit and answer
/// what is in flight, let the listeners finish (within [`SHUTDOWN_GRACE`]), flush
/// and close the store. Returns the first error of any part.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    config.validate()?;
    let tls = TlsSetup::load(&config)?;
    // Every member, this one included; without --peers, this one alone.
    let peers: Vec<(u64, String)> = if config.peers.is_empty() {
        vec![(config.id, config.peer_addr.to_string())]
    } else {
        config.peers.iter().map(|p| (p.id, p.addr.clone())).collect()
    };
    let alone = peers.len() == 1;
    let (dir, fsync, accept) = (config.data_dir.clone(), config.fsync, config.accept_data_loss);
    let recovered = tokio::task::spawn_blocking(move || recovery::open(&dir, fsync, alone, accept))
        .await
        .map_err(|error| task_failed("recovery", &error))??;

    let client_listener = bind(config.client_addr, "client gRPC").await?;
    let admin_listener = bind(config.admin_addr, "admin HTTP").await?;
    // An ensemble of one has nobody to talk to: it listens for no peer.
    let peer_listener = if alone { None } else { Some(bind(config.peer_addr, "peer gRPC").await?) };
    let zk_listener = match config.zk_addr.0 {
        Some(addr) => Some((bind(addr, "ZooKeeper protocol").await?, addr)),
        None => None,
    };
    let addresses = Addresses {
        client_addr: local_addr(&client_listener, config.client_addr, "client gRPC")?,
        admin_addr: local_addr(&admin_listener, config.admin_addr, "admin HTTP")?,
        peer_addr: match &peer_listener {
            Some(listener) => Some(local_addr(listener, config.peer_addr, "peer gRPC")?),
            None => None,
        },
        zk_addr: match &zk_listener {
            Some((listener, addr)) => Some(local_addr(listener, *addr, "ZooKeeper protocol")?),
            None => None,
        },
    };
    let recovery::Recovered { store, tree, epochs, log, promise, damage, .. } = recovered;
    let (promise_file, promise) = promise.expect("open writes the promise");
    let promised = Promised {
        file: promise_file,
        promise,
        floor: damage.as_ref().map(recovery::Damage::floor),
        base: tree.last_zxid(),
    };
    // (txns, bytes) in the log after the snapshot: they count towards the next one.
    let logged = (log.len() as u64, log.iter().map(|e| e.data.len() as u64).sum::<u64>());
    let server_id = u8::try_from(config.id)
        .map_err(|_| ServerError::Config(format!("--id {} is not in 1..=255", config.id)))?;
    let shared = Arc::new(
        Shared::new(
            tree,
            config.limits(),
            config.data_dir.clone(),
            addresses.client_addr,
            epochs.current_epoch,
            config.tick_ms,
            server_id,
        )
        .with_disk_reserve(config.disk_reserve_bytes)
        .with_authenticator(Authenticator::new(
            config.super_digest.as_deref(),
            config.digest_users.clone(),
        )?),
    );
    let (purge_metrics, flush_metrics) = (Arc::clone(&shared), Arc::clone(&shared));
    let purged = move |purged: usize| {
        Metrics::add(&purge_metrics.metrics.log_entries_purged_total, purged as u64);
        tracing::info!(purged, "log purged up to the oldest snapshot kept");
    };
    let flushed = move |took| flush_metrics.metrics.fsync_seconds.observe(took);
    let detached_scrubber = store.scrubber();
    let (storage, storage_thread) = Storage::spawn(store, promised, purged, flushed)
        .map_err(|error| task_failed("storage thread", &error))?;

    let stop = Shutdown::new();
    let peers_stop = Shutdown::new();
    let (writes, queued) = write_queue(config.write_queue_max, Arc::clone(&shared));
    let (snapshot_requests, snapshot_requested) = mpsc::channel(SNAPSHOT_REQUESTS_MAX);
    let trigger = SnapshotTrigger {
        sender: snapshot_requests,
        every_txns: config.snapshot_every_txns,
        every_bytes: config.snapshot_every_bytes,
        since_last: logged.0,
        bytes_since_last: logged.1,
    };
    let (inbound, inbound_rx) = mpsc::channel(transport::INBOUND_MESSAGES_MAX);
    let (lost_reports, lost) = mpsc::channel(transport::LOST_REPORTS_MAX);
    let dialer = tls.peer_client.clone().map_or(PeerDialer::Plain, PeerDialer::MutualTls);
    let lost_sender = PeerLinks::new(lost_reports, dialer);
    // `--peers` entries marked `:observer` (without --peers: this server alone, a voter).
    let observers: Vec<u64> = config.peers.iter().filter(|p| p.observer).map(|p| p.id).collect();
    let members = peers
        .iter()
        .map(|(id, addr)| Member { id: *id, voter: !observers.contains(id), addr: addr.clone() })
        .collect();
    let started_with = Membership::new(Zxid::ZERO, members);
    let membership = committed_config(&shared, &started_with)?;
    // The newest configuration the log holds (the node follows it from there).
    let logged = log.iter().rev().find_map(|e| {
        decode_config_entry(&e.data).map(|members| Membership::new(Zxid::from_u64(e.zxid), members))
    });
    let newest = logged.as_ref().unwrap_or(&membership);
    // What the ZooKeeper port shows before the driver publishes the configuration.
    let zk_config = newest.clone();
    if newest.members != started_with.members {
        let show = |c: &Membership| crate::membership::text(c).replace('\n', ", ");
        tracing::warn!(
            configuration = %show(newest),
            peers = %show(&started_with),
            "--peers differs from the configuration of version {:x} in the data directory: following the committed one",
            newest.version.as_u64()
        );
    }
    let zab = ZabConfig {
        id: config.id,
        membership,
        // The node ticks NODE_TICKS_PER_TICK times per --tick-ms: the limits keep
        // their meaning in ticks, while pings (every half tick, as ZooKeeper's) and
        // an election's resends and finalize wait (a tenth of a tick: 200 ms by
        // default, ZooKeeper's finalizeWait) get finer.
        sync_limit_ticks: config.sync_limit * NODE_TICKS_PER_TICK,
        init_limit_ticks: config.init_limit * NODE_TICKS_PER_TICK,
        heartbeat_ticks: NODE_TICKS_PER_TICK / 2,
        election_resend_ticks: 1,
        inflight_proposals_max: config.write_queue_max,
        diff_entries_max: config.diff_entries_max,
    };
    let base = Zxid::from_u64(shared.read_tree().map_or(0, |t| t.last_zxid()));
    let entries =
        log.into_iter().map(|e| Entry { zxid: Zxid::from_u64(e.zxid), data: e.data }).collect();
    let cache = LogCache::new(base, entries);
    let node = Node::recovering(zab, epochs, &cache, base, damage.is_some());
    if damage.is_some() {
        Metrics::set(&shared.metrics.storage_damaged, 1);
        Metrics::add(&shared.metrics.storage_damage_found_total, 1);
    }
    // An ensemble of one chose its new epoch already (it persists it first thing).
    shared.set_epoch(node.status().current_epoch);
    let (on_serving, serving) = oneshot::channel();
    let (damage_reports, damage) = mpsc::channel(scrubber::DAMAGE_QUEUE_MAX);
    let scrub_task = (config.scrub_bytes_per_sec > 0).then(|| {
        let source = match detached_scrubber {
            Some(scrubber) => scrubber::Source::Detached(scrubber),
            None => scrubber::Source::Storage(storage.clone()),
        };
        tokio::spawn(scrubber::run(
            Arc::clone(&shared),
            source,
            config.scrub_bytes_per_sec,
            damage_reports,
            stop.listener(),
        ))
    });
    let driver = Driver {
        node,
        cache,
        storage: storage.clone(),
        shared: Arc::clone(&shared),
        writes: queued,
        inbound: inbound_rx,
        outbound: transport::Outbound::start(config.id, &peers, &lost_sender),
        lost,
        lost_sender,
        peers: peers.clone().into(),
        tick: Duration::from_millis(config.tick_ms) / NODE_TICKS_PER_TICK,
        batch_txns_max: config.batch_txns_max,
        forward_queue_max: config.write_queue_max,
        snapshots: trigger,
        shutdown: stop.listener(),
        // Nobody to bring up to date entry by entry in an ensemble of one.
        cache_keep: if alone { 0 } else { config.diff_entries_max },
        on_serving: Some(on_serving),
        damage,
        repaired_blobs: Default::default(),
    };
    let peer_task = peer_listener.map(|listener| {
        let service = PeerService {
            inbound,
            writes: writes.clone(),
            shared: Arc::clone(&shared),
            stopping: peers_stop.listener(),
        };
        // The peer protocol outlives the driver's drain: a stopping leader needs
        // its followers' ACKs to commit what it proposed (see DRAIN_MAX).
        let material = tls.peer_server.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(serve_peers(listener, service, material, shared, peers_stop.listener()))
    });
    let driver_task = spawn_driver(&stop, driver.run());
    let snapshot_task = tokio::spawn(snapshotter::run(
        Arc::clone(&shared),
        storage,
        config.snapshots_keep,
        snapshot_requested,
    ));
    let reaper_task = tokio::spawn(reaper::run(
        Arc::clone(&shared),
        writes.clone(),
        config.reap_interval(),
        stop.listener(),
    ));
    let expiry_task =
        tokio::spawn(session::expiry::run(Arc::clone(&shared), writes.clone(), stop.listener()));
    let sessions = SessionsService::new(Arc::clone(&shared), writes.clone());
    let zk_sessions = sessions.clone();
    let service = BatonService::new(Arc::clone(&shared), writes);
    let bytes_max = config.request_bytes_max;
    let grpc_task = match tls.client.clone() {
        None => {
            // Nagle off, as on the TLS port: replies are small and latency-bound.
            let incoming = TcpIncoming::from(client_listener).with_nodelay(Some(true));
            tokio::spawn(grpc::serve(incoming, service, sessions, bytes_max, stop.listener()))
        }
        Some(material) => {
            let incoming = TlsIncoming::start(client_listener, material, true, Arc::clone(&shared))
                .map_err(|source| ServerError::Bind {
                    what: "client gRPC",
                    addr: addresses.client_addr,
                    source,
                })?;
            tokio::spawn(grpc::serve(incoming, service, sessions, bytes_max, stop.listener()))
        }
    };
    let mut admin_stop = stop.listener();
    let admin_shutdown = async move { admin_stop.recv().await };
    let admin_tls = tls.admin.clone();
    let whitelist =
        fourlw::Whitelist::parse(&config.four_lw_whitelist).map_err(ServerError::Config)?;
    let mut effective = config.clone();
    effective.client_addr = addresses.client_addr;
    effective.admin_addr = addresses.admin_addr;
    let words = fourlw::Words::new(&effective, whitelist);
    let zk_task = zk_listener.map(|(listener, _)| {
        let port = zk::ZkPort {
            shared: Arc::clone(&shared),
            sessions: zk_sessions,
            words: words.clone(),
            config: zk_config,
            // ZooKeeper's jute.maxbuffer (1 MiB) and slack, or room for the largest
            // data allowed when that is larger.
            frame_bytes_max: baton_jute::FRAME_BYTES_MAX_DEFAULT
                .max(config.data_bytes_max.saturating_add(64 * 1024)),
        };
        tokio::spawn(zk::serve(listener, tls.client.clone(), port, stop.listener()))
    });
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        Arc::clone(&shared),
        words,
        admin_tls,
        admin_shutdown,
    ));
    if tls.any() {
        tracing::info!(
            client = tls.client.is_some(),
            peer = tls.peer_server.is_some(),
            admin = tls.admin.is_some(),
            "TLS on"
        );
    }
    let join_task = (!config.join.is_empty()).then(|| {
        let join = crate::membership::Join {
            id: config.id,
            addr: config.advertised_peer_addr().unwrap_or_default().to_owned(),
            voter: config.join_as == "voter",
            endpoints: config.join.clone(),
            // The members' client ports speak TLS when this one's does: the same CA,
            // and this member's certificate if they ask for one.
            tls: config.tls_cert.as_ref().map(|cert| baton_client::ClientTls {
                ca: config.tls_ca.clone(),
                cert: Some(cert.clone()),
                key: config.tls_key.clone(),
            }),
        };
        tokio::spawn(crate::membership::join(Arc::clone(&shared), join, stop.listener()))
    });
    let reload_task = {
        let (shared, stopping) = (Arc::clone(&shared), stop.listener());
        tokio::spawn(async move { tls::watch(&tls, shared, stopping).await })
    };

    // Clients are served once the driver says the node broadcasts and has applied
    // what it knew committed. An ensemble of one gets there on its own (it applies
    // its recovered log first), so it announces itself then, as a server that is
    // ready; a member announces at once (it needs its peers to get there).
    let mut failed = stop.listener();
    let mut shutdown = std::pin::pin!(shutdown);
    let announced = if alone {
        tokio::select! {
            told = serving => told.is_ok(),
            () = &mut shutdown => false,
            () = failed.recv() => false,
        }
    } else {
        true
    };
    if announced {
        announce(&addresses);
        tokio::select! {
            () = &mut shutdown => tracing::info!("shutdown requested"),
            () = failed.recv() => tracing::warn!("shutting down after a failure"),
        }
    }
    shared.set_serving(false);
    stop.trigger();

    // The driver refuses new writes and answers what is in flight; with no write
    // left in flight the listeners finish, then the store is flushed and closed.
    let driver_result = join("driver", driver_task).await;
    // What was in flight is answered: end the sessions' streams (their clients
    // resume on another member at once) and the followers' forward streams.
    shared.sessions.disconnect_all("this server is shutting down; resume elsewhere");
    peers_stop.trigger();
    let grpc_result = finish("client gRPC", grpc_task).await;
    let admin_result = finish("admin HTTP", admin_task).await;
    let zk_result = match zk_task {
        Some(task) => finish("ZooKeeper protocol", task).await,
        None => Ok(()),
    };
    let peer_result = match peer_task {
        Some(task) => finish("peer gRPC", task).await,
        None => Ok(()),
    };
    let _ = reload_task.await;
    if let Some(task) = join_task {
        let _ = task.await;
    }
    let _ = reaper_task.await;
    let _ = expiry_task.await;
    let _ = snapshot_task.await;
    if let Some(task) = scrub_task {
        let _ = task.await;
    }
    let storage_result = tokio::task::spawn_blocking(move || storage_thread.join())
        .await
        .map_err(|error| task_failed("storage thread", &error))
        .and_then(|joined| {
            joined.map_err(|_| task_failed("storage thread", &"it panicked"))?.map_err(Into::into)
        });
    tracing::info!("stopped");
    driver_result
        .and(storage_result)
        .and(grpc_result)
        .and(admin_result)
        .and(peer_result)
        .and(zk_result)
}

/// Runs a driver; its failure stops the server.
fn spawn_driver(
    stop: &Shutdown,
    run: impl Future<Output = Result<(), ServerError>> + Send + 'static,
) -> JoinHandle<Result<(), ServerError>> {
    let stop = stop.clone();
    tokio::spawn(async move {
        let result = run.await;
        if result.is_err() {
            stop.trigger();
        }
        result
    })
}

/// The configuration in force: the last one committed (in the recovered tree), or
/// the one the members start with (`--peers`) when none was. A member whose
/// `--peers` disagrees with the committed one follows the committed one, and says
/// so.
fn committed_config(shared: &Shared, started_with: &Membership) -> Result<Membership, ServerError> {
    let stored = match shared.read_tree() {
        Ok(tree) => tree.get(baton_znode::CONFIG_PATH).ok().map(|(data, _)| data),
        Err(_) => None,
    };
    let Some(data) = stored else { return Ok(started_with.clone()) };
    let committed = std::str::from_utf8(&data)
        .map_err(|e| e.to_string())
        .and_then(crate::membership::parse)
        .map_err(|reason| {
            ServerError::Config(format!(
                "{} in {} does not hold a configuration: {reason}",
                baton_znode::CONFIG_PATH,
                shared.data_dir.display()
            ))
        })?;
    tracing::info!(version = %committed.version, "the committed configuration is in force");
    Ok(committed)
}

/// Node ticks per `--tick-ms` (see where the ensemble's ZabConfig is made).
const NODE_TICKS_PER_TICK: u32 = 10;

/// Serves the peer protocol until shutdown; with `tls`, only to members whose
/// certificate chains to the peer CA (mutual TLS).
async fn serve_peers(
    listener: TcpListener,
    service: PeerService,
    tls: Option<Arc<Reloadable<rustls::ServerConfig>>>,
    shared: Arc<Shared>,
    mut shutdown: crate::shutdown::ShutdownListener,
) -> Result<(), ServerError> {
    let failed = |message: String| ServerError::Serve { what: "peer gRPC", message };
    let server = PeerServer::new(service)
        .max_decoding_message_size(transport::PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(transport::PEER_MESSAGE_BYTES_MAX);
    let router = tonic::transport::Server::builder().add_service(server);
    let stopped = async move { shutdown.recv().await };
    // Nagle off on every accepted link: the builder's tcp_nodelay applies only to
    // listeners tonic binds itself, and a reply held back by Nagle waits for the
    // peer's delayed ACK (~40 ms) — a commit round stalled by it.
    let served = match tls {
        None => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            router.serve_with_incoming_shutdown(incoming, stopped).await
        }
        Some(material) => {
            let incoming = TlsIncoming::start(listener, material, true, shared)
                .map_err(|error| failed(error.to_string()))?;
            router.serve_with_incoming_shutdown(incoming, stopped).await
        }
    };
    served.map_err(|error| failed(error.to_string()))
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { what, addr, source })
}

fn local_addr(
    listener: &TcpListener,
    addr: SocketAddr,
    what: &'static str,
) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Bind { what, addr, source })
}

fn announce(addresses: &Addresses) {
    use std::io::Write;
    tracing::info!(client_addr = %addresses.client_addr, admin_addr = %addresses.admin_addr, "serving");
    // Serializing two socket addresses cannot fail; the fallback keeps the format.
    let line = serde_json::to_string(addresses).unwrap_or_else(|_| {
        format!(
            r#"{{"client_addr":"{}","admin_addr":"{}"}}"#,
            addresses.client_addr, addresses.admin_addr
        )
    });
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (nobody reading) must not stop the server.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

fn task_failed(task: &'static str, error: &dyn std::fmt::Display) -> ServerError {
    ServerError::TaskFailed { task, message: error.to_string() }
}

async fn join(
    task: &'static str,
    handle: JoinHandle<Result<(), ServerError>>,
) -> Result<(), ServerError> {
    handle.await.map_err(|error| task_failed(task, &error))?
}

/// Waits for a listener task for at most [`SHUTDOWN_GRACE`], then drops it.
async fn finish(
    task: &'static str,
    mut handle: JoinHandle<Result<(), ServerError>>,
) -> Result<(), ServerError> {
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut handle).await {
        Ok(joined) => joined.map_err(|error| task_failed(task, &error))?,
        Err(_) => {
            tracing::warn!(task, "did not finish within the grace period; dropping it");
            handle.abort();
            Ok(())
        }
    }
}
