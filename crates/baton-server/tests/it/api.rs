//! Every RPC of `baton.v1.Baton` against a real server, with the expected results.

use baton_client::{
    CheckOp, CreateMode, CreateOp, DeleteOp, ErrorCode, MultiOp, OpResult, SetDataOp,
};
use baton_testkit::Role;
use bytes::Bytes;

use crate::support::{TestServer, code_of};

fn create(path: &str, data: &'static [u8]) -> MultiOp {
    MultiOp::Create(CreateOp {
        acl: baton_znode::acl::open_acl(),
        path: path.into(),
        data: Bytes::from_static(data),
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_works() {
    let server = TestServer::start(&[]).await;
    let c = &server.client;
    let epoch = u64::from(server.status().await.epoch);

    // Create, with sequential names from the parent's cversion.
    assert_eq!(c.create("/app", "", CreateMode::Persistent).await.unwrap(), "/app");
    let job = c.create("/app/job-", "a", CreateMode::PersistentSequential).await.unwrap();
    assert_eq!(job, "/app/job-0000000000");
    let job = c.create("/app/job-", "b", CreateMode::PersistentSequential).await.unwrap();
    assert_eq!(job, "/app/job-0000000001");
    assert_eq!(code_of(c.create("/app", "", CreateMode::Persistent).await), ErrorCode::NodeExists);

    // Get and Exists; zxids are of this run's epoch.
    c.create("/app/config", "blue", CreateMode::Persistent).await.unwrap();
    let (data, stat) = c.get("/app/config").await.unwrap();
    assert_eq!((&data[..], stat.version, stat.data_length), (&b"blue"[..], 0, 4));
    assert_eq!(stat.czxid >> 32, epoch, "czxid {:#x} in epoch {epoch}", stat.czxid);
    assert_eq!(c.exists("/app/config").await.unwrap(), Some(stat));
    assert_eq!(c.exists("/app/nope").await.unwrap(), None);
    assert_eq!(code_of(c.get("/app/nope").await), ErrorCode::NoNode);

    // Conditional Set.
    let set = c.set("/app/config", "green", 0).await.unwrap();
    assert_eq!(set.version, 1);
    assert!(set.mzxid > stat.mzxid);
    assert_eq!(code_of(c.set("/app/config", "red", 0).await), ErrorCode::BadVersion);
    assert_eq!(c.set("/app/config", "red", -1).await.unwrap().version, 2);
    assert_eq!(&c.get("/app/config").await.unwrap().0[..], b"red");

    // Children, sorted, with the parent's Stat.
    let (children, parent) = c.children("/app").await.unwrap();
    assert_eq!(children, ["config", "job-0000000000", "job-0000000001"]);
    assert_eq!((parent.num_children, parent.cversion), (3, 3));

    // Conditional Delete.
    assert_eq!(code_of(c.delete("/app/config", 0).await), ErrorCode::BadVersion);
    assert_eq!(code_of(c.delete("/app", -1).await), ErrorCode::NotEmpty);
    c.delete("/app/config", 2).await.unwrap();
    assert_eq!(c.exists("/app/config").await.unwrap(), None);

    // Multi: all ops, with per-op results.
    let results = c
        .multi(vec![
            create("/m", b""),
            create("/m/a", b"1"),
            MultiOp::SetData(SetDataOp {
                path: "/m".into(),
                data: Bytes::from_static(b"x"),
                version: -1,
            }),
            MultiOp::Check(CheckOp { path: "/m".into(), version: 1 }),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    assert!(matches!(&results[0], OpResult::Created { path, .. } if path == "/m"));
    assert!(matches!(&results[1], OpResult::Created { path, .. } if path == "/m/a"));
    assert!(matches!(&results[2], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[3], OpResult::Checked);
    assert_eq!(&c.get("/m").await.unwrap().0[..], b"x");

    // Multi failure: the failing op's index, and nothing changed.
    let digest = server.digest().await;
    let failed = c
        .multi(vec![
            create("/m2", b""),
            MultiOp::Delete(DeleteOp { path: "/m/a".into(), version: 5 }),
        ])
        .await
        .unwrap_err();
    match &failed {
        baton_client::ClientError::Api { code, op_index, path, .. } => {
            assert_eq!((*code, *op_index, path.as_str()), (ErrorCode::BadVersion, Some(1), "/m/a"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(c.exists("/m2").await.unwrap(), None);
    assert_eq!(server.digest().await, digest, "a failed multi changes nothing");

    // Sync returns a zxid at least that of every acknowledged write.
    let before = c.last_zxid();
    assert!(before > 0);
    let synced = c.sync("/").await.unwrap();
    assert!(synced >= before, "sync {synced:#x} < last seen {before:#x}");
    let status = server.status().await;
    assert_eq!(status.last_zxid, synced);
    assert_eq!(status.role, Role::Leading);
}
