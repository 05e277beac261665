//! Limits at their edge: paths as deep as the path-length limit allows work, one byte
//! more is refused; a listing too large for one reply is refused by name; in both
//! cases nothing changes and the server goes on serving.

use baton_client::{CreateMode, CreateOp, ErrorCode, MultiOp};

use crate::support::TestServer;

fn create(path: String) -> MultiOp {
    MultiOp::Create(CreateOp {
        acl: baton_znode::acl::open_acl(),
        path,
        data: Default::default(),
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_as_deep_as_the_length_limit_work_and_longer_ones_are_refused() {
    let server = TestServer::start(&[]).await;
    let c = &server.client;
    // 2,000 levels of "/d": a 4,000-byte path, within the 4,096-byte limit.
    let mut path = String::new();
    let mut ops = Vec::new();
    for _ in 0..2_000 {
        path.push_str("/d");
        ops.push(create(path.clone()));
        if ops.len() == 1_000 {
            c.multi(std::mem::take(&mut ops)).await.expect("a multi of 1,000 nested creates");
        }
    }
    assert!(c.exists(&path).await.unwrap().is_some(), "the deepest node");
    assert_eq!(c.children(&path[..path.len() - 2]).await.unwrap().0, ["d"]);

    let digest = server.digest().await;
    let too_long = format!("{path}/{}", "x".repeat(4_096 - path.len()));
    assert_eq!(too_long.len(), 4_097);
    let error = c.create(&too_long, "", CreateMode::Persistent).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidPath, "{error}");
    assert_eq!(server.digest().await, digest, "a refused create changed the tree");
    c.delete(&path, -1).await.expect("the deepest node deletes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_too_large_for_one_reply_is_refused_by_name() {
    let server = TestServer::start(&[]).await;
    let c = &server.client;
    c.create("/big", "", CreateMode::Persistent).await.unwrap();
    // 4,200 children with 1,000-byte names: 4.2 MB of names, over the 4 MiB a reply
    // carries.
    let name = |n: usize| format!("{n:05}{}", "n".repeat(995));
    for chunk in 0..6 {
        let ops = (chunk * 700..(chunk + 1) * 700).map(|n| create(format!("/big/{}", name(n))));
        c.multi(ops.collect()).await.expect("700 creates");
    }
    let error = c.children("/big").await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::BadArguments, "{error}");
    let message = error.to_string();
    assert!(message.contains("/big") && message.contains("4200 names"), "{message}");

    // A listing that fits is served, by the session path too.
    for n in 0..300 {
        c.delete(&format!("/big/{}", name(n)), -1).await.unwrap();
    }
    assert_eq!(c.children("/big").await.expect("3,900 names fit").0.len(), 3_900);
    let session = baton_client::Session::connect(&[server.process.endpoint()], Default::default())
        .await
        .unwrap();
    assert_eq!(session.children("/big").await.unwrap().0.len(), 3_900);
    c.create(&format!("/big/{}", name(0)), "", CreateMode::Persistent).await.unwrap();
    c.create(&format!("/big/{}", name(1)), "", CreateMode::Persistent).await.unwrap();
    for n in 2..300 {
        c.create(&format!("/big/{}", name(n)), "", CreateMode::Persistent).await.unwrap();
    }
    let error = session.children("/big").await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::BadArguments, "{error}");
}
