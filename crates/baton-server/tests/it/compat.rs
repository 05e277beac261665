//! A data directory written by a standalone server of release 0.1 (its own driver,
//! before a server without peers became a ZAB ensemble of one) opens with every
//! znode, and keeps them across new writes and restarts.

use std::path::Path;

use baton_client::CreateMode;
use baton_testkit::Role;

use crate::support::TestServer;

/// Copies the release-0.1 data directory (see tests/data/README.md) to `dir/data`.
fn copy_fixture(dir: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/standalone-0.1");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("blobs")).unwrap();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), data.join(entry.file_name())).unwrap();
    }
}

async fn get(server: &TestServer, path: &str) -> String {
    let (data, _) = server.client.get(path).await.unwrap_or_else(|e| panic!("{path}: {e}"));
    String::from_utf8(data.to_vec()).unwrap()
}

#[tokio::test]
async fn a_standalone_data_directory_of_release_0_1_opens_with_all_its_data() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    let mut server = TestServer::start_in(dir, &[]).await;

    // The very tree the old server had: same zxid, same digest. The old server's
    // digest was 15c74406cb02d85c; since ACLs are part of every node's hash, the same
    // tree with every node's ACL open (what a tree before ACLs means) digests to this.
    let status = server.status().await;
    assert_eq!(status.last_zxid, 0x2_0000_0002_u64, "{status:?}");
    assert_eq!(status.node_count, 16, "{status:?}");
    assert_eq!(status.digest, "051438d0dc76ef2b");
    let (acl, _) = server.client.get_acl("/app/config").await.unwrap();
    assert_eq!(acl, baton_client::acl::open_acl(), "nodes from before ACLs are open");
    assert_eq!(status.role, Role::Leading);
    assert_eq!(status.ensemble.current_epoch, 3, "a new epoch above both old runs");
    // From the snapshot (run 1) and from the log after it (run 2).
    assert_eq!(get(&server, "/app/config").await, "color=green");
    assert_eq!(get(&server, "/app/big").await, "x".repeat(3_000));
    assert_eq!(get(&server, "/last").await, "second run");
    assert_eq!(get(&server, "/app/job-0000000013").await, "job 11");
    assert_eq!(server.client.exists("/app/job-0000000003").await.unwrap(), None);
    let (jobs, _) = server.client.children("/app").await.unwrap();
    assert_eq!(jobs.len(), 2 + 10, "config, big, and 10 jobs: {jobs:?}");

    // New writes continue the sequence and the epochs; all of it survives kill -9.
    let next = server.client.create("/app/job-", "job 12", CreateMode::PersistentSequential);
    assert_eq!(next.await.unwrap(), "/app/job-0000000014");
    let (_, stat) = server.client.get("/app/job-0000000014").await.unwrap();
    assert_eq!(stat.czxid, 0x3_0000_0001, "the first txn of epoch 3");
    server.restart(&[]).await;
    assert_eq!(get(&server, "/app/job-0000000014").await, "job 12");
    assert_eq!(get(&server, "/last").await, "second run");
    assert_eq!(server.status().await.node_count, 17);
}
