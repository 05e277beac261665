//! Bad requests get their specific error code and change nothing; garbage on the
//! gRPC port does not hurt the server.

use std::time::Duration;

use baton_api::{
    pb::{self, baton_client::BatonClient},
    status::error_from_status,
};
use baton_client::{CheckOp, CreateMode, CreateOptions, ErrorCode, MultiOp};
use baton_testkit::Rng;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{TestServer, code_of};

const DATA_BYTES_MAX: usize = 1024;
const REQUEST_BYTES_MAX: usize = 64 * 1024;

async fn start() -> TestServer {
    let (data, request) = (DATA_BYTES_MAX.to_string(), REQUEST_BYTES_MAX.to_string());
    let args = ["--data-bytes-max", &data, "--request-bytes-max", &request, "--multi-ops-max", "8"];
    let server = TestServer::start(&args).await;
    let c = &server.client;
    c.create("/parent", "", CreateMode::Persistent).await.unwrap();
    c.create("/parent/child", "", CreateMode::Persistent).await.unwrap();
    c.create("/exists", "", CreateMode::Persistent).await.unwrap();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_code_and_change_nothing() {
    let mut server = start().await;
    let digest = server.digest().await;
    let c = server.client.clone();
    let big = vec![b'x'; DATA_BYTES_MAX + 1];
    let persistent = CreateMode::Persistent;
    let ttl_on_persistent = CreateOptions { ttl_ms: 5_000, ..CreateOptions::mode(persistent) };
    let ephemeral_in_multi = MultiOp::Create(baton_znode::CreateOp {
        acl: baton_znode::acl::open_acl(),
        path: "/e".into(),
        data: Default::default(),
        mode: CreateMode::Ephemeral,
        ttl_ms: 0,
    });
    let too_many: Vec<MultiOp> =
        (0..9).map(|_| MultiOp::Check(CheckOp { path: "/exists".into(), version: -1 })).collect();

    let cases: Vec<(&str, ErrorCode, ErrorCode)> = vec![
        ("relative path", code_of(c.create("a", "", persistent).await), ErrorCode::InvalidPath),
        ("empty segment", code_of(c.create("/a//b", "", persistent).await), ErrorCode::InvalidPath),
        ("trailing slash", code_of(c.create("/a/", "", persistent).await), ErrorCode::InvalidPath),
        ("dot segment", code_of(c.get("/a/../b").await), ErrorCode::InvalidPath),
        ("NUL", code_of(c.set("/a\0b", "", -1).await), ErrorCode::InvalidPath),
        (
            "data too large",
            code_of(c.create("/big", big.clone(), persistent).await),
            ErrorCode::DataTooLarge,
        ),
        (
            "set too large",
            code_of(c.set("/exists", big.clone(), -1).await),
            ErrorCode::DataTooLarge,
        ),
        (
            "missing parent",
            code_of(c.create("/nope/child", "", persistent).await),
            ErrorCode::NoNode,
        ),
        ("delete missing", code_of(c.delete("/nope", -1).await), ErrorCode::NoNode),
        ("delete non-empty", code_of(c.delete("/parent", -1).await), ErrorCode::NotEmpty),
        ("set bad version", code_of(c.set("/exists", "", 7).await), ErrorCode::BadVersion),
        ("delete bad version", code_of(c.delete("/exists", 7).await), ErrorCode::BadVersion),
        (
            "create existing",
            code_of(c.create("/exists", "", persistent).await),
            ErrorCode::NodeExists,
        ),
        (
            "create under /baton",
            code_of(c.create("/baton/x", "", persistent).await),
            ErrorCode::BadArguments,
        ),
        ("set /baton", code_of(c.set("/baton", "", -1).await), ErrorCode::BadArguments),
        ("delete /baton", code_of(c.delete("/baton", -1).await), ErrorCode::BadArguments),
        (
            "ttl on persistent",
            code_of(c.create_with("/t", "", ttl_on_persistent).await),
            ErrorCode::BadArguments,
        ),
        ("multi too long", code_of(c.multi(too_many).await), ErrorCode::BadArguments),
        // Ephemerals belong to a session stream; a unary call has none (the
        // session tests cover NoChildrenForEphemerals and SessionExpired).
        (
            "ephemeral, no session",
            code_of(c.create("/e", "", CreateMode::Ephemeral).await),
            ErrorCode::BadArguments,
        ),
        (
            "ephemeral in a multi, no session",
            code_of(c.multi(vec![ephemeral_in_multi]).await),
            ErrorCode::BadArguments,
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}");
    }

    // What baton-client cannot send: an unknown create mode, an empty multi op.
    let mut raw =
        BatonClient::connect(format!("http://{}", server.process.endpoint())).await.unwrap();
    let request = pb::CreateRequest { path: "/m".into(), mode: 99, ..Default::default() };
    let status = raw.create(request).await.unwrap_err();
    assert_eq!(error_from_status(&status).code, ErrorCode::BadArguments as i32);
    let empty_op = pb::MultiRequest { ops: vec![pb::Op { op: None }] };
    let error = error_from_status(&raw.multi(empty_op).await.unwrap_err());
    assert_eq!((error.code, error.op_index), (ErrorCode::BadArguments as i32, Some(0)));

    assert_eq!(server.digest().await, digest, "no bad request changed the tree");
    server.assert_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_grpc_port_changes_nothing() {
    let mut server = start().await;
    let digest = server.digest().await;
    let addr = server.process.client_addr();
    let mut rng = Rng::from_env_or_time("garbage");

    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", rng.bytes(4096)),
        ("truncated HTTP/2 preface", preface[..10].to_vec()),
        ("preface then garbage frames", [&preface[..], &rng.bytes(512)].concat()),
        ("HTTP/1 request", b"GET / HTTP/1.1\r\nHost: baton\r\n\r\n".to_vec()),
        (
            "HTTP/1 POST",
            b"POST /baton.v1.Baton/Create HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
        ),
    ];
    for (name, bytes) in inputs {
        let mut stream = TcpStream::connect(addr).await.expect(name);
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
        // Read whatever the server answers until it closes (bounded).
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut sink)).await;
        server.assert_serving().await;
    }

    // A well-formed gRPC message larger than --request-bytes-max.
    let mut raw =
        BatonClient::connect(format!("http://{}", server.process.endpoint())).await.unwrap();
    let huge = vec![0u8; REQUEST_BYTES_MAX + 1];
    let request = pb::SetRequest { path: "/exists".into(), data: huge.into(), version: -1 };
    let status = raw.set(request).await.unwrap_err();
    assert_ne!(status.code(), tonic::Code::Ok);

    assert_eq!(server.digest().await, digest, "garbage changed the tree");
    server.assert_serving().await;
}
