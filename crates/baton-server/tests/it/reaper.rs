//! Containers and TTL nodes go away through the reaper's txns, and only when due.

use std::time::Instant;

use baton_client::{CreateMode, CreateOptions};
use baton_testkit::wait_until_async;

use crate::support::{DEADLINE, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_and_ttl_nodes_are_reaped() {
    let server = TestServer::start(&["--reap-interval-ms", "100"]).await;
    let c = &server.client;
    let container = CreateOptions::mode(CreateMode::Container);
    let ttl = CreateOptions { ttl_ms: 200, ..CreateOptions::mode(CreateMode::PersistentWithTtl) };

    c.create_with("/never-had-a-child", "", container.clone()).await.unwrap();
    c.create_with("/c", "", container).await.unwrap();
    c.create("/c/child", "", CreateMode::Persistent).await.unwrap();
    // Created before /t with the same TTL: by the time /t is due, so is this one,
    // except that it has a child.
    c.create_with("/t-parent", "", ttl.clone()).await.unwrap();
    c.create("/t-parent/child", "", CreateMode::Persistent).await.unwrap();
    c.create_with("/t", "", ttl).await.unwrap();

    c.delete("/c/child", -1).await.unwrap();
    let gone = |path: &'static str| async move {
        wait_until_async(Instant::now() + DEADLINE, || async move {
            c.exists(path).await.unwrap().is_none()
        })
        .await
    };
    assert!(gone("/c").await, "the emptied container was not reaped");
    assert!(gone("/t").await, "the expired TTL node was not reaped");
    assert!(c.exists("/t-parent").await.unwrap().is_some(), "a TTL node with a child stays");
    assert!(
        c.exists("/never-had-a-child").await.unwrap().is_some(),
        "a container never used stays"
    );
    assert!(server.metric("baton_writes_total").await > 6, "reaping is a txn");
}
