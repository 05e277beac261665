//! gRPC health and reflection; the admin port's /health, /status and /metrics.

use baton_testkit::{Role, http_get};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_admin() {
    let server = TestServer::start(&[]).await;
    let url = format!("http://{}", server.process.endpoint());
    let channel = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap();

    let mut health = HealthClient::new(channel.clone());
    for service in ["", baton_server::SERVICE_NAME] {
        let request = HealthCheckRequest { service: service.into() };
        let response = health.check(request).await.unwrap().into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("a reflection response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"baton.v1.Baton"), "{names:?}");

    let admin = server.process.admin_addr();
    assert_eq!(http_get(admin, "/health").await.unwrap(), (200, "ok\n".to_owned()));
    let status = server.status().await;
    assert_eq!(status.role, Role::Leading);
    assert_eq!(status.ensemble.role, Role::Leading);
    assert_eq!(status.ensemble.leader, Some(1), "a server without peers leads itself");
    assert!(status.ensemble.broadcasting);
    assert_eq!(status.epoch, 1);
    assert_eq!(status.node_count, 2, "/ and /baton");
    assert_eq!(status.sessions, 0);
    assert_eq!(status.client_addr, server.process.endpoint());
    assert_eq!(status.data_dir, server.data_dir().display().to_string());
    assert_eq!(status.digest.len(), 16);
    for name in ["baton_znodes", "baton_last_zxid", "baton_epoch", "baton_writes_total"] {
        server.metric(name).await;
    }
    assert_eq!(server.metric("baton_znodes").await, 2);
    let (code, _) = http_get(admin, "/nope").await.unwrap();
    assert_eq!(code, 404);
}
