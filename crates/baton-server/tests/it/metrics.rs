//! /metrics scraped while a load runs: request latency histograms per op, the fsync
//! histogram, the tree's gauges and the role; gRPC readiness in an ensemble.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

use baton_client::{CreateMode, Session, SessionOptions};
use baton_testkit::wait_until_async;

use crate::support::{DEADLINE, TestServer, metric};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_while_a_load_runs() {
    let server = TestServer::start(&[]).await;
    let session = Session::connect(&[server.process.endpoint()], SessionOptions::default())
        .await
        .expect("session");
    session.create("/load", Vec::new(), CreateMode::Persistent).await.expect("create /load");
    let stop = Arc::new(AtomicBool::new(false));
    let (created, read) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (session, stop, created, read) =
            (session.clone(), stop.clone(), created.clone(), read.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("/load/n{n:06}");
                session.create(&path, vec![7u8; 10], CreateMode::Persistent).await.expect("create");
                created.fetch_add(1, Ordering::Relaxed);
                session.get(&path).await.expect("get");
                read.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        })
    };

    // Scrapes while the load runs see it grow.
    let creates = r#"baton_request_duration_seconds_count{op="create"}"#;
    let first = {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let seen = metric(&server.process, creates).await;
            if seen >= 20 || Instant::now() > deadline {
                break seen;
            }
        }
    };
    assert!(first >= 20, "creates seen by /metrics during the load: {first}");
    let grew = wait_until_async(Instant::now() + DEADLINE, || async {
        metric(&server.process, creates).await > first
    })
    .await;
    assert!(grew, "the create count did not grow between scrapes while the load ran");
    assert!(!load.is_finished(), "the load is still running while scraped");
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load task");

    let (created, read) = (created.load(Ordering::Relaxed), read.load(Ordering::Relaxed));
    let p = &server.process;
    assert_eq!(metric(p, creates).await, created + 1, "every create timed (and /load's)");
    assert_eq!(metric(p, r#"baton_request_duration_seconds_count{op="get"}"#).await, read);
    let bucket = r#"baton_request_duration_seconds_bucket{op="get",le="+Inf"}"#;
    assert_eq!(metric(p, bucket).await, read, "+Inf holds every get");
    assert!(metric(p, "baton_fsync_duration_seconds_count").await >= 1);
    assert_eq!(metric(p, "baton_znodes").await, 2 + 1 + created, "/, /baton, /load and each");
    assert_eq!(metric(p, "baton_data_bytes").await, 10 * created);
    assert_eq!(metric(p, r#"baton_role{role="leading"}"#).await, 1);
    assert_eq!(metric(p, r#"baton_role{role="following"}"#).await, 0);
    assert_eq!(metric(p, r#"baton_role{role="looking"}"#).await, 0);
    assert_eq!(metric(p, "baton_sessions").await, 1);
    assert_eq!(metric(p, "baton_proposals_in_flight").await, 0);
}
