//! [`run`]: recover, listen, serve, and shut down in order.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};

use crate::{
    Config, ServerError, admin,
    driver::{Driver, SnapshotTrigger},
    grpc::{self, BatonService},
    reaper, recovery,
    session::{self, service::SessionsService},
    shared::Shared,
    shutdown::Shutdown,
    snapshotter::{self, SNAPSHOT_REQUESTS_MAX},
    storage::Storage,
    write_queue::write_queue,
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
}

/// Runs a standalone server until `shutdown` resolves (or a fatal error).
///
/// Start: validate the config, open the store in `--data-dir` and recover the tree
/// (snapshot + log), persist a new epoch, bind both listeners, print their
/// addresses as one JSON line on stdout. Stop: stop accepting, commit and answer
/// what was queued, let the listeners finish (within [`SHUTDOWN_GRACE`]), flush and
/// close the store. Returns the first error of any part.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    config.validate()?;
    let (dir, fsync) = (config.data_dir.clone(), config.fsync);
    let recovered = tokio::task::spawn_blocking(move || recovery::open_and_recover(&dir, fsync))
        .await
        .map_err(|error| task_failed("recovery", &error))??;

    let client_listener = bind(config.client_addr, "client gRPC").await?;
    let admin_listener = bind(config.admin_addr, "admin HTTP").await?;
    let addresses = Addresses {
        client_addr: local_addr(&client_listener, config.client_addr, "client gRPC")?,
        admin_addr: local_addr(&admin_listener, config.admin_addr, "admin HTTP")?,
    };
    let shared = Arc::new(Shared::new(
        recovered.tree,
        config.limits(),
        config.data_dir.clone(),
        addresses.client_addr,
        recovered.quorum.epoch(),
        config.tick_ms,
    ));
    let (storage, storage_thread) =
        Storage::spawn(recovered.store).map_err(|error| task_failed("storage thread", &error))?;

    let stop = Shutdown::new();
    let (writes, queued) = write_queue(config.write_queue_max, Arc::clone(&shared));
    let (snapshot_requests, snapshot_requested) = mpsc::channel(SNAPSHOT_REQUESTS_MAX);
    let trigger = SnapshotTrigger {
        sender: snapshot_requests,
        every_txns: config.snapshot_every_txns,
        since_last: recovered.replayed,
    };
    let driver = Driver::new(
        queued,
        recovered.quorum,
        storage.clone(),
        Arc::clone(&shared),
        config.batch_txns_max,
        trigger,
        stop.listener(),
    );
    let driver_task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let result = driver.run().await;
            if result.is_err() {
                stop.trigger();
            }
            result
        }
    });
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
    let service = BatonService::new(Arc::clone(&shared), writes);
    let grpc_task = tokio::spawn(grpc::serve(
        client_listener,
        service,
        sessions,
        config.request_bytes_max,
        stop.listener(),
    ));
    let mut admin_stop = stop.listener();
    let admin_shutdown = async move { admin_stop.recv().await };
    let admin_task =
        tokio::spawn(admin::serve(admin_listener, Arc::clone(&shared), admin_shutdown));

    shared.set_serving(true);
    announce(&addresses);

    let mut failed = stop.listener();
    tokio::select! {
        () = shutdown => tracing::info!("shutdown requested"),
        () = failed.recv() => tracing::warn!("shutting down after a failure"),
    }
    shared.set_serving(false);
    stop.trigger();

    // The driver closes the write queue and answers what was queued; with no write
    // left in flight the listeners finish, then the store is flushed and closed.
    let driver_result = join("driver", driver_task).await;
    let grpc_result = finish("client gRPC", grpc_task).await;
    let admin_result = finish("admin HTTP", admin_task).await;
    let _ = reaper_task.await;
    let _ = expiry_task.await;
    let _ = snapshot_task.await;
    let storage_result = tokio::task::spawn_blocking(move || storage_thread.join())
        .await
        .map_err(|error| task_failed("storage thread", &error))
        .and_then(|joined| {
            joined.map_err(|_| task_failed("storage thread", &"it panicked"))?.map_err(Into::into)
        });
    tracing::info!("stopped");
    driver_result.and(storage_result).and(grpc_result).and(admin_result)
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
