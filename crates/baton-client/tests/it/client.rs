//! The unary [`Client`] against the fake Baton server: endpoint failover, reconnecting
//! after a lost connection, zxid tracking, and the recursive calls.

use crate::fake::{self, FakeServer};
use baton_client::{Client, ClientError, CreateMode, ErrorCode};

#[tokio::test]
async fn connect_skips_endpoints_that_do_not_answer() {
    let dead = fake::closed_port().await;
    let live = FakeServer::start().await;
    let client = Client::connect(&[dead.clone(), live.addr.clone()]).await.unwrap();
    assert_eq!(client.endpoint().await, live.addr);
    assert!(client.exists("/").await.unwrap().is_some());
}

#[tokio::test]
async fn connect_fails_with_connection_loss_naming_every_endpoint() {
    let (a, b) = (fake::closed_port().await, fake::closed_port().await);
    let err = Client::connect(&[a.clone(), b.clone()]).await.unwrap_err();
    match &err {
        ClientError::ConnectionLoss { endpoint, reason } => {
            assert_eq!(endpoint, &format!("{a},{b}"));
            assert!(reason.contains("refused"), "{reason}");
        }
        other => panic!("expected ConnectionLoss, got {other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test]
async fn invalid_endpoints_fail_before_dialling() {
    let err = Client::connect(&["localhost".to_owned()]).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidEndpoint { .. }), "{err:?}");
}

#[tokio::test]
async fn a_read_moves_to_the_next_server_and_is_repeated_there() {
    let first = FakeServer::start().await;
    let second = FakeServer::start().await;
    let client = Client::connect(&[first.addr.clone(), second.addr.clone()]).await.unwrap();
    assert_eq!(client.endpoint().await, first.addr);
    first.stop().await;
    assert!(client.exists("/").await.unwrap().is_some());
    assert_eq!(client.endpoint().await, second.addr);
}

#[tokio::test]
async fn a_write_is_not_repeated_but_the_next_call_uses_the_next_server() {
    let first = FakeServer::start().await;
    let second = FakeServer::start().await;
    let client = Client::connect(&[first.addr.clone(), second.addr.clone()]).await.unwrap();
    first.stop().await;
    let err = client.create("/w", "x", CreateMode::Persistent).await.unwrap_err();
    assert!(matches!(err, ClientError::ConnectionLoss { .. }), "{err:?}");
    assert_eq!(client.endpoint().await, second.addr);
    assert_eq!(second.paths(), ["/", "/baton"], "the write must not have been repeated");
    assert_eq!(client.create("/w", "x", CreateMode::Persistent).await.unwrap(), "/w");
}

#[tokio::test]
async fn the_highest_zxid_seen_is_tracked() {
    let server = FakeServer::start().await;
    let client = Client::connect(std::slice::from_ref(&server.addr)).await.unwrap();
    assert_eq!(client.last_zxid(), 0);
    client.create("/a", "", CreateMode::Persistent).await.unwrap();
    let after_create = client.last_zxid();
    assert!(after_create > 0);
    client.set("/a", "1", -1).await.unwrap();
    assert!(client.last_zxid() > after_create);
    assert_eq!(client.sync("/").await.unwrap(), client.last_zxid());
}

#[tokio::test]
async fn server_errors_arrive_with_code_message_and_path() {
    let server = FakeServer::start().await;
    let client = Client::connect(std::slice::from_ref(&server.addr)).await.unwrap();
    let err = client.get("/missing").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoNode);
    assert_eq!(err.to_string(), "node does not exist: /missing");
    assert!(!err.is_retryable());
    assert_eq!(client.exists("/missing").await.unwrap(), None);
}

#[tokio::test]
async fn list_recursive_is_depth_first_and_sorted() {
    let server = FakeServer::start().await;
    let client = Client::connect(std::slice::from_ref(&server.addr)).await.unwrap();
    for path in ["/a", "/a/z", "/a/b", "/a/b/c", "/a/b-x", "/other"] {
        client.create(path, "", CreateMode::Persistent).await.unwrap();
    }
    let listed = client.list_recursive("/a").await.unwrap();
    assert_eq!(listed, ["/a", "/a/b", "/a/b/c", "/a/b-x", "/a/z"]);
    let all = client.list_recursive("/").await.unwrap();
    assert_eq!(all.first().map(String::as_str), Some("/"));
    assert_eq!(all.len(), 8, "/, the reserved /baton and the six created: {all:?}");
    assert_eq!(client.list_recursive("/nope").await.unwrap_err().code(), ErrorCode::NoNode);
}

#[tokio::test]
async fn delete_recursive_deletes_children_first() {
    let server = FakeServer::start().await;
    let client = Client::connect(std::slice::from_ref(&server.addr)).await.unwrap();
    for path in ["/a", "/a/b", "/a/b/c", "/a/d", "/keep"] {
        client.create(path, "", CreateMode::Persistent).await.unwrap();
    }
    assert_eq!(client.delete("/a", -1).await.unwrap_err().code(), ErrorCode::NotEmpty);
    assert_eq!(client.delete_recursive("/a").await.unwrap(), 4);
    assert_eq!(server.paths(), ["/", "/baton", "/keep"]);
    assert_eq!(client.delete_recursive("/a").await.unwrap_err().code(), ErrorCode::NoNode);
    assert_eq!(client.delete_recursive("/").await.unwrap_err().code(), ErrorCode::BadArguments);
}
