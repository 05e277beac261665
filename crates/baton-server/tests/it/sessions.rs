//! Sessions, ephemerals and watches against a real server process.
//!
//! Some tests speak the raw `Sessions` stream (to stop pinging, to resume by hand,
//! to never read the stream); the others use baton-client's `Session`.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use baton_api::{
    pb::{self, request::Op, session_request, session_response, sessions_client::SessionsClient},
    status::error_from_status,
};
use baton_client::{ErrorCode, Session, SessionOptions};
use baton_znode::{ChangeKind, CreateMode, CreateOp, MultiOp};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::support::{DEADLINE, TestServer};

/// A tick short enough for expiry tests: timeouts are clamped to [200, 2000] ms.
const TICK: &[&str] = &["--tick-ms", "100"];

/// A raw session stream.
struct Raw {
    send: mpsc::Sender<pb::SessionRequest>,
    recv: Streaming<pb::SessionResponse>,
    connected: pb::Connected,
    xid: u64,
}

async fn raw_connect(endpoint: &str, connect: pb::Connect) -> Result<Raw, tonic::Status> {
    let mut client = SessionsClient::connect(format!("http://{endpoint}")).await.unwrap();
    let (send, requests) = mpsc::channel(64);
    let first = pb::SessionRequest { kind: Some(session_request::Kind::Connect(connect)) };
    send.send(first).await.unwrap();
    let mut recv = client.session(ReceiverStream::new(requests)).await?.into_inner();
    match recv.message().await?.and_then(|m| m.kind) {
        Some(session_response::Kind::Connected(connected)) => {
            Ok(Raw { send, recv, connected, xid: 0 })
        }
        other => panic!("expected Connected, got {other:?}"),
    }
}

impl Raw {
    async fn call(&mut self, op: Op) -> pb::Reply {
        self.xid += 1;
        let request = pb::Request { xid: self.xid, watch: false, op: Some(op) };
        let message = pb::SessionRequest { kind: Some(session_request::Kind::Request(request)) };
        self.send.send(message).await.unwrap();
        loop {
            match self.recv.message().await.unwrap().and_then(|m| m.kind) {
                Some(session_response::Kind::Reply(reply)) => {
                    assert_eq!(reply.xid, self.xid, "replies come in request order");
                    return reply;
                }
                Some(session_response::Kind::Event(_)) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

fn create_op(path: &str, mode: pb::CreateMode) -> Op {
    Op::Create(pb::CreateRequest { path: path.into(), mode: mode as i32, ..Default::default() })
}

fn error_code(reply: &pb::Reply) -> Option<ErrorCode> {
    match &reply.result {
        Some(pb::reply::Result::Error(e)) => ErrorCode::try_from(e.code).ok(),
        _ => None,
    }
}

async fn exists(server: &TestServer, path: &str) -> bool {
    server.client.exists(path).await.unwrap().is_some()
}

#[tokio::test]
async fn an_ephemeral_goes_with_an_explicit_close_and_its_children_are_refused() {
    let server = TestServer::start(&[]).await;
    let session =
        Session::connect(&[server.process.endpoint()], SessionOptions::default()).await.unwrap();
    session.create("/e", "x", CreateMode::Ephemeral).await.unwrap();
    let stat = server.client.exists("/e").await.unwrap().expect("/e exists");
    assert_eq!(stat.ephemeral_owner, session.session_id());
    let child = session.create("/e/child", "", CreateMode::Persistent).await.unwrap_err();
    assert_eq!(child.code(), ErrorCode::NoChildrenForEphemerals, "{child}");
    assert!(exists(&server, "/e").await);
    assert_eq!(server.status().await.sessions, 1);
    session.close().await.unwrap();
    assert!(!exists(&server, "/e").await, "gone when close returns");
    assert_eq!(server.status().await.sessions, 0);
}

#[tokio::test]
async fn a_silent_session_expires_after_its_timeout_not_before() {
    let server = TestServer::start(TICK).await;
    let connect = pb::Connect { timeout_ms: 400, ..Default::default() };
    let mut raw = raw_connect(&server.process.endpoint(), connect).await.unwrap();
    assert_eq!(raw.connected.timeout_ms, 400);
    let before_last_ping = Instant::now();
    let reply = raw.call(create_op("/silent", pb::CreateMode::Ephemeral)).await;
    assert_eq!(error_code(&reply), None, "{reply:?}");
    // From now on the client says nothing (but keeps its stream open).
    let deadline = Instant::now() + DEADLINE;
    while exists(&server, "/silent").await {
        assert!(Instant::now() < deadline, "the ephemeral outlived its session");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gone_after = before_last_ping.elapsed();
    assert!(gone_after >= Duration::from_millis(400), "expired early: {gone_after:?}");
    // The stream ends with SESSION_EXPIRED.
    let end = loop {
        match raw.recv.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(error_from_status(&end).code, ErrorCode::SessionExpired as i32, "{end:?}");
}

#[tokio::test]
async fn pings_keep_a_session_alive_past_its_timeout() {
    let server = TestServer::start(TICK).await;
    let connect = pb::Connect { timeout_ms: 300, ..Default::default() };
    let mut raw = raw_connect(&server.process.endpoint(), connect).await.unwrap();
    raw.call(create_op("/kept", pb::CreateMode::Ephemeral)).await;
    let until = Instant::now() + Duration::from_millis(1_200);
    while Instant::now() < until {
        let reply = raw.call(Op::Ping(pb::PingRequest {})).await;
        assert_eq!(error_code(&reply), None);
        assert!(exists(&server, "/kept").await, "expired while pinging");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_session_survives_a_restart_within_its_timeout_and_resume_is_checked() {
    let mut server = TestServer::start(TICK).await;
    let connect = pb::Connect { timeout_ms: 2_000, ..Default::default() };
    let mut raw = raw_connect(&server.process.endpoint(), connect).await.unwrap();
    let reply = raw.call(create_op("/mine", pb::CreateMode::Ephemeral)).await;
    let seen = reply.zxid;
    let (id, password) = (raw.connected.session_id, raw.connected.password.clone());
    drop(raw);
    server.restart(TICK).await;
    let endpoint = server.process.endpoint();

    // Wrong password, unknown id, a zxid from the future: refused, nothing changes.
    let refused = |connect: pb::Connect| {
        let endpoint = endpoint.clone();
        async move { raw_connect(&endpoint, connect).await.err().expect("refused") }
    };
    let digest = server.digest().await;
    let wrong = pb::Connect {
        session_id: id,
        password: Bytes::from_static(b"12345678"),
        ..Default::default()
    };
    let status = refused(wrong).await;
    assert_eq!(error_from_status(&status).code, ErrorCode::AuthFailed as i32, "{status:?}");
    let unknown =
        pb::Connect { session_id: id + 1, password: password.clone(), ..Default::default() };
    let status = refused(unknown).await;
    assert_eq!(error_from_status(&status).code, ErrorCode::SessionExpired as i32, "{status:?}");
    let future = pb::Connect {
        session_id: id,
        password: password.clone(),
        last_zxid_seen: u64::MAX,
        ..Default::default()
    };
    let status = refused(future).await;
    assert_eq!(error_from_status(&status).code, ErrorCode::ConnectionLoss as i32, "{status:?}");
    assert_eq!(server.digest().await, digest);

    // The right id and password: the session and its ephemeral are still there.
    let resume =
        pb::Connect { session_id: id, password, last_zxid_seen: seen, ..Default::default() };
    let mut raw = raw_connect(&endpoint, resume).await.unwrap();
    assert_eq!(raw.connected.session_id, id);
    assert!(raw.connected.zxid >= seen);
    assert!(exists(&server, "/mine").await);
    let reply = raw.call(Op::Ping(pb::PingRequest {})).await;
    assert_eq!(error_code(&reply), None);
    // Silent from now on: after the timeout it is gone.
    let deadline = Instant::now() + DEADLINE;
    while exists(&server, "/mine").await {
        assert!(Instant::now() < deadline, "the ephemeral outlived its session");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_watch_event_comes_before_any_reply_that_reflects_it() {
    let server = TestServer::start(&[]).await;
    server.client.create("/w", "0", CreateMode::Persistent).await.unwrap();
    let endpoint = server.process.endpoint();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = server.client.clone();
            tokio::spawn(async move {
                for i in 0..150 {
                    client.set("/w", format!("{w}-{i}"), -1).await.unwrap();
                }
            })
        })
        .collect();
    let session = Session::connect(&[endpoint], SessionOptions::default()).await.unwrap();
    let mut checked = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        let (_, stat, mut watch) = session.get_watch("/w").await.unwrap();
        // Read until a reply shows a newer version: by then the event is delivered.
        loop {
            let (_, now) = session.get("/w").await.unwrap();
            if now.mzxid > stat.mzxid {
                let Some(event) = watch.try_event() else {
                    let late = tokio::time::timeout(Duration::from_secs(2), &mut watch).await;
                    panic!(
                        "no event before the reply: watch set at {:#x}, read {:#x}, later {late:?}",
                        stat.mzxid, now.mzxid
                    );
                };
                let event = event.unwrap();
                assert_eq!(event.kind, ChangeKind::NodeDataChanged);
                assert!(event.zxid > stat.mzxid && event.zxid <= now.mzxid);
                checked += 1;
                break;
            }
            if writers.iter().all(|w| w.is_finished()) {
                break;
            }
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(checked > 0, "no change was observed");
}

#[tokio::test]
async fn a_recursive_watch_sees_every_change_below_its_path() {
    let server = TestServer::start(&[]).await;
    server.client.create("/r", "", CreateMode::Persistent).await.unwrap();
    let session =
        Session::connect(&[server.process.endpoint()], SessionOptions::default()).await.unwrap();
    let mut watch = session.add_watch("/r", true).await.unwrap();
    server.client.create("/outside", "", CreateMode::Persistent).await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = server.client.clone();
            tokio::spawn(async move {
                let (created, changed) = ("NodeCreated", "NodeDataChanged");
                let mut expected = Vec::new();
                let dir = format!("/r/w{w}");
                client.create(&dir, "", CreateMode::Persistent).await.unwrap();
                let czxid = client.exists(&dir).await.unwrap().unwrap().czxid;
                expected.push((created, dir.clone(), czxid));
                for i in 0..40 {
                    let path = format!("{dir}/n{i}");
                    client.create(&path, "", CreateMode::Persistent).await.unwrap();
                    let czxid = client.exists(&path).await.unwrap().unwrap().czxid;
                    expected.push((created, path.clone(), czxid));
                    let stat = client.set(&path, "v", -1).await.unwrap();
                    expected.push((changed, path, stat.mzxid));
                }
                expected
            })
        })
        .collect();
    let mut expected = BTreeSet::new();
    for writer in writers {
        let written = writer.await.unwrap();
        expected.extend(written.into_iter().map(|(k, p, z)| (k.to_owned(), p, z)));
    }
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let event = tokio::time::timeout(DEADLINE, watch.recv())
            .await
            .expect("an event within the deadline")
            .expect("the watch is open")
            .unwrap();
        seen.push((format!("{:?}", event.kind), event.path, event.zxid));
    }
    assert!(seen.windows(2).all(|w| w[0].2 <= w[1].2), "events in zxid order");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_without_stalling_others() {
    let server = TestServer::start(&[]).await;
    let endpoint = server.process.endpoint();
    let mut slow = raw_connect(&endpoint, pb::Connect { timeout_ms: 20_000, ..Default::default() })
        .await
        .unwrap();
    let add = Op::AddWatch(pb::AddWatchRequest {
        path: "/".into(),
        kind: pb::WatchKind::PersistentRecursive as i32,
    });
    assert_eq!(error_code(&slow.call(add).await), None);
    assert_eq!(server.status().await.watches, 1);
    // From now on `slow` reads nothing. Each multi creates 1000 nodes with long
    // names: 1000 events of about 1 KiB for the slow session.
    let other = Session::connect(&[endpoint], SessionOptions::default()).await.unwrap();
    let name = "x".repeat(1_000);
    let deadline = Instant::now() + DEADLINE;
    let mut round = 0;
    while server.status().await.watches != 0 {
        assert!(Instant::now() < deadline, "the slow consumer was never disconnected");
        let ops = (0..1_000)
            .map(|i| {
                MultiOp::Create(CreateOp {
                    acl: baton_znode::acl::open_acl(),
                    path: format!("/{name}-{round}-{i}"),
                    data: Bytes::new(),
                    mode: CreateMode::Persistent,
                    ttl_ms: 0,
                })
            })
            .collect();
        server.client.multi(ops).await.unwrap();
        // Another session is served all along.
        other.exists("/").await.unwrap();
        round += 1;
    }
    // The slow client, reading at last, finds the reason at the end of its stream.
    let end = loop {
        match slow.recv.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(error_from_status(&end).code, ErrorCode::SystemError as i32);
    assert!(end.message().contains("did not read its stream"), "{end:?}");
    // Its session lives on (until it expires): it can resume.
    let resume = pb::Connect {
        session_id: slow.connected.session_id,
        password: slow.connected.password.clone(),
        ..Default::default()
    };
    let mut again = raw_connect(&server.process.endpoint(), resume).await.unwrap();
    assert_eq!(error_code(&again.call(Op::Ping(pb::PingRequest {})).await), None);
}

#[tokio::test]
async fn a_resumed_session_gets_the_events_it_missed() {
    let server = TestServer::start(&[]).await;
    let endpoint = server.process.endpoint();
    server.client.create("/d", "0", CreateMode::Persistent).await.unwrap();
    server.client.create("/c", "", CreateMode::Persistent).await.unwrap();
    let mut raw = raw_connect(&endpoint, pb::Connect { timeout_ms: 20_000, ..Default::default() })
        .await
        .unwrap();
    let seen = raw.call(Op::Ping(pb::PingRequest {})).await.zxid;
    let (id, password) = (raw.connected.session_id, raw.connected.password.clone());
    drop(raw);
    // While the client is away: /d changes, /c gets a child, /e appears, /same stays.
    server.client.set("/d", "1", -1).await.unwrap();
    server.client.create("/c/kid", "", CreateMode::Persistent).await.unwrap();
    server.client.create("/e", "", CreateMode::Persistent).await.unwrap();
    let spec =
        |path: &str, kind: pb::WatchKind| pb::WatchSpec { path: path.into(), kind: kind as i32 };
    let resume = pb::Connect {
        session_id: id,
        password,
        last_zxid_seen: seen,
        watches: vec![
            spec("/d", pb::WatchKind::Data),
            spec("/c", pb::WatchKind::Child),
            spec("/e", pb::WatchKind::Exists),
            spec("/", pb::WatchKind::Data),
        ],
        ..Default::default()
    };
    let mut raw = raw_connect(&endpoint, resume).await.unwrap();
    let mut missed = Vec::new();
    for _ in 0..3 {
        match raw.recv.message().await.unwrap().and_then(|m| m.kind) {
            Some(session_response::Kind::Event(e)) => missed.push((e.r#type, e.path)),
            other => panic!("expected a missed event, got {other:?}"),
        }
    }
    let kind = |t: pb::EventType| t as i32;
    assert_eq!(
        missed,
        vec![
            (kind(pb::EventType::NodeDataChanged), "/d".to_owned()),
            (kind(pb::EventType::NodeChildrenChanged), "/c".to_owned()),
            (kind(pb::EventType::NodeCreated), "/e".to_owned()),
        ]
    );
    // The watch on / was set again: it fires on the next change of /.
    server.client.set("/", "root", -1).await.unwrap();
    match raw.recv.message().await.unwrap().and_then(|m| m.kind) {
        Some(session_response::Kind::Event(e)) => {
            assert_eq!((e.r#type, e.path.as_str()), (kind(pb::EventType::NodeDataChanged), "/"));
        }
        other => panic!("expected the event of /, got {other:?}"),
    }
}

/// A linearizable read is a unary call: asked in a session stream (which answers in
/// order from the member's tree) it is refused, naming the way, and the stream goes
/// on; the same read as a unary call is answered.
#[tokio::test]
async fn a_linearizable_read_in_a_session_is_refused_and_unary_ones_answer() {
    let server = TestServer::start(&[]).await;
    server.client.create("/lin", "v", CreateMode::Persistent).await.unwrap();
    let mut raw = raw_connect(&server.process.endpoint(), pb::Connect::default()).await.unwrap();
    let get = pb::GetRequest { path: "/lin".into(), linearizable: true };
    let reply = raw.call(Op::Get(get)).await;
    assert_eq!(error_code(&reply), Some(ErrorCode::BadArguments), "{reply:?}");
    let reply =
        raw.call(Op::Get(pb::GetRequest { path: "/lin".into(), linearizable: false })).await;
    assert_eq!(error_code(&reply), None, "the stream goes on: {reply:?}");
    let (data, _) = server.client.get_linearizable("/lin").await.unwrap();
    assert_eq!(&data[..], b"v");
}
