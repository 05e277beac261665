//! The driver of an ensemble of one, over an in-memory store: the write path with
//! no process around it (the process tests cover the rest).

use std::{path::Path, sync::Arc, time::Duration};

use baton_api::admin::Role as MemberRole;
use baton_log::MemStore;
use baton_quorum::{
    Zxid,
    zab::{Entry, Node, ZabConfig},
};
use baton_znode::{Auth, CreateMode, CreateOp, Limits, TxnOp, ZnodeError};
use bytes::Bytes;
use tokio::{sync::mpsc, task::JoinHandle};

use super::{cache::LogCache, driver::Driver, transport};
use crate::{
    ServerError, recovery,
    shared::Shared,
    shutdown::Shutdown,
    snapshotter::{self, SnapshotTrigger},
    storage::{Promised, Storage},
    write_queue::{WriteError, WriteQueue, write_queue},
};

struct Harness {
    writes: WriteQueue,
    shared: Arc<Shared>,
    driver: JoinHandle<Result<(), ServerError>>,
    snapshot_requests: mpsc::Receiver<snapshotter::Request>,
    stop: Shutdown,
    _promise_dir: tempfile::TempDir,
}

fn start(store: MemStore) -> Harness {
    let recovered = recovery::recover(Box::new(store), Path::new("mem")).unwrap();
    let addr = "127.0.0.1:1".parse().unwrap();
    let shared = Arc::new(Shared::new(
        recovered.tree,
        Limits::default(),
        "mem".into(),
        addr,
        recovered.epochs.current_epoch,
        2_000,
        1,
    ));
    let promise_dir = tempfile::tempdir().unwrap();
    let promised = Promised::fresh(promise_dir.path());
    let (storage, _thread) = Storage::spawn(recovered.store, promised, |_| {}, |_| {}).unwrap();
    let (writes, queued) = write_queue(64, Arc::clone(&shared));
    let (sender, snapshot_requests) = mpsc::channel(1);
    let snapshots = SnapshotTrigger {
        sender,
        every_txns: 3,
        every_bytes: u64::MAX,
        since_last: 0,
        bytes_since_last: 0,
    };
    let config = ZabConfig {
        id: 1,
        membership: ZabConfig::initial(&[1], &[]),
        sync_limit_ticks: 50,
        init_limit_ticks: 100,
        heartbeat_ticks: 5,
        election_resend_ticks: 1,
        inflight_proposals_max: 64,
        diff_entries_max: 10,
    };
    let base = Zxid::from_u64(shared.read_tree().unwrap().last_zxid());
    let log =
        recovered.log.into_iter().map(|e| Entry { zxid: Zxid::from_u64(e.zxid), data: e.data });
    let cache = LogCache::new(base, log.collect());
    let node = Node::new(config, recovered.epochs, &cache, base);
    let peers = vec![(1, "127.0.0.1:1".to_owned())];
    let (lost_sender, lost) = mpsc::channel(transport::LOST_REPORTS_MAX);
    let lost_sender = transport::PeerLinks::new(lost_sender, crate::tls::PeerDialer::Plain);
    let (_inbound, inbound) = mpsc::channel(1);
    let stop = Shutdown::new();
    let driver = Driver {
        node,
        cache,
        storage,
        shared: Arc::clone(&shared),
        writes: queued,
        inbound,
        outbound: transport::Outbound::start(1, &peers, &lost_sender),
        lost,
        lost_sender,
        peers: peers.into(),
        tick: Duration::from_millis(20),
        batch_txns_max: 4,
        forward_queue_max: 64,
        snapshots,
        shutdown: stop.listener(),
        cache_keep: 0,
        on_serving: None,
        damage: mpsc::channel(1).1,
        repaired_blobs: Default::default(),
    };
    // The inbound sender is dropped: an ensemble of one hears from no peer, and
    // the driver must not take the closed channel for its end.
    Harness {
        writes,
        shared,
        driver: tokio::spawn(driver.run()),
        snapshot_requests,
        stop,
        _promise_dir: promise_dir,
    }
}

fn create(path: &str) -> TxnOp {
    TxnOp::Create(CreateOp {
        acl: baton_znode::acl::open_acl(),
        path: path.into(),
        data: Bytes::from_static(b"x"),
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    })
}

#[tokio::test]
async fn an_ensemble_of_one_commits_on_its_own_flush_and_sync_waits_for_it() {
    let mut h = start(MemStore::new());
    let submits: Vec<_> = (0..10)
        .map(|i| {
            let writes = h.writes.clone();
            tokio::spawn(async move { writes.submit(0, create(&format!("/n{i}"))).await })
        })
        .collect();
    let mut zxids = Vec::new();
    for submit in submits {
        let reply = submit.await.unwrap().unwrap();
        assert!(reply.result.is_ok());
        zxids.push(reply.zxid);
    }
    zxids.sort_unstable();
    zxids.dedup();
    assert_eq!(zxids.len(), 10);
    assert!(zxids.iter().all(|z| Zxid::from_u64(*z).epoch() == 1), "{zxids:x?}");
    let synced = h.writes.sync().await.unwrap();
    assert_eq!(synced, *zxids.last().unwrap(), "a sync of an ensemble of one logs nothing");
    assert_eq!(h.shared.read_tree().unwrap().node_count(), 2 + 10);
    assert_eq!(h.shared.membership().role, MemberRole::Leading);
    assert!(h.shared.serving());
    assert!(h.snapshot_requests.try_recv().is_ok(), "10 txns ask for a snapshot");

    h.stop.trigger();
    h.driver.await.unwrap().unwrap();
    let after = h.writes.submit(0, create("/late")).await.unwrap_err();
    assert_eq!(after, WriteError::ShuttingDown);
}

#[tokio::test]
async fn a_failed_flush_fails_its_writes_and_stops_the_driver() {
    let mut store = MemStore::new();
    store.fail_next_flushes(1);
    let h = start(store);
    let error = h.writes.submit(0, create("/lost")).await.unwrap_err();
    assert!(matches!(error, WriteError::Storage(_)), "{error}");
    let stopped = h.driver.await.unwrap();
    assert!(matches!(stopped, Err(ServerError::Storage(_))), "{stopped:?}");
    let lost = h.shared.read_tree().unwrap().stat("/lost").unwrap();
    assert_eq!(lost, None, "nothing unflushed is applied");
    assert_eq!(h.writes.sync().await.unwrap_err(), WriteError::ShuttingDown);
}

/// A session's write queued behind the close of its session (it was on its way —
/// forwarded, or waiting in a queue — when the session expired, and the client was
/// told so) is refused when it applies, not done after the close.
#[tokio::test]
async fn a_write_behind_its_sessions_close_is_refused() {
    let h = start(MemStore::new());
    let session = 0x0100_0000_0000_0001;
    let open = TxnOp::CreateSession { session, timeout_ms: 2_000, password: 7 };
    assert!(h.writes.submit(session, open).await.unwrap().result.is_ok());
    let close = h.writes.queue(session, Auth::none(), TxnOp::CloseSession { session }).unwrap();
    let late = h.writes.queue(session, Auth::none(), create("/late")).unwrap();
    assert!(close.await.unwrap().unwrap().result.is_ok());
    let late = late.await.unwrap().unwrap();
    let error = late.result.expect_err("a write of a closed session");
    assert_eq!(error, ZnodeError::SessionExpired { session }.into());
    assert_eq!(h.shared.read_tree().unwrap().stat("/late").unwrap(), None);
    h.stop.trigger();
    h.driver.await.unwrap().unwrap();
}
