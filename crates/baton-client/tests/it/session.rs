//! [`Session`] against the fake `Sessions` service: connecting, ordering of events and
//! replies, watches, resuming on another server with the watches and the last zxid,
//! servers that are behind or silent, expiry, close, limits.

use std::time::Duration;

use baton_api::{pb, status::ErrorCode};
use baton_client::{
    ChangeKind, ClientError, CreateMode, RemoveKind, Session, SessionOptions, SessionState,
};

use crate::{
    fake_session::{Cluster, Server},
    wait::{self, eventually, within},
};

fn options() -> SessionOptions {
    SessionOptions { request_timeout: wait::DEADLINE, ..SessionOptions::default() }
}

async fn connect(servers: &[&Server]) -> Session {
    let endpoints: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    Session::connect(&endpoints, options()).await.unwrap()
}

fn is_connection_loss(result: &Result<impl std::fmt::Debug, ClientError>) -> bool {
    matches!(result, Err(ClientError::ConnectionLoss { .. }))
}

/// The accepted Connects of a session after its first.
fn resumes(cluster: &Cluster, session: u64) -> Vec<pb::Connect> {
    cluster
        .connects()
        .into_iter()
        .filter(|c| c.accepted && c.connect.session_id == session)
        .map(|c| c.connect)
        .collect()
}

#[tokio::test]
async fn connect_opens_a_new_session_that_owns_its_ephemerals() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    assert_eq!(session.state(), SessionState::Connected);
    assert_ne!(session.session_id(), 0);
    assert_eq!(session.timeout_ms(), 10_000);
    let first = &cluster.connects()[0];
    assert!(first.accepted);
    assert_eq!((first.connect.session_id, first.connect.last_zxid_seen), (0, 0));
    assert_eq!(first.connect.timeout_ms, 10_000);

    session.create("/e", "x", CreateMode::Ephemeral).await.unwrap();
    let stat = session.exists("/e").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, session.session_id());
    assert_eq!(session.last_zxid(), cluster.zxid());
}

#[tokio::test]
async fn connect_fails_when_no_server_grants_a_session() {
    let cluster = Cluster::new();
    let refusing = cluster.server().await;
    refusing.knobs.refuse(Some(ErrorCode::ConnectionLoss));
    let closed = crate::fake::closed_port().await;
    let endpoints = [refusing.addr.clone(), closed.clone()];
    let err = Session::connect(&endpoints, options()).await.unwrap_err();
    match &err {
        ClientError::ConnectionLoss { endpoint, .. } => {
            assert_eq!(endpoint, &format!("{},{closed}", refusing.addr));
        }
        other => panic!("expected ConnectionLoss, got {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_calls_are_all_answered_and_the_zxid_is_tracked() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let session = session.clone();
        calls.spawn(
            async move { session.create(&format!("/n{i}"), "", CreateMode::Persistent).await },
        );
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(session.children("/").await.unwrap().0.len(), 201, "200 and /baton");
    assert_eq!(session.last_zxid(), cluster.zxid());
    let first = session.create("/seq-", "", CreateMode::PersistentSequential).await.unwrap();
    let second = session.create("/seq-", "", CreateMode::PersistentSequential).await.unwrap();
    assert!(first < second, "{first} then {second}");
}

#[tokio::test]
async fn an_event_arrives_before_the_reply_that_reflects_its_change() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let a = connect(&[&server]).await;
    let b = connect(&[&server]).await;
    a.create("/a", "0", CreateMode::Persistent).await.unwrap();

    // The same session: the set's reply comes after the event it fired.
    let (_, _, mut watch) = a.get_watch("/a").await.unwrap();
    let stat = a.set("/a", "1", -1).await.unwrap();
    let event = watch.try_event().expect("event before the set's reply").unwrap();
    assert_eq!((event.kind, event.path.as_str()), (ChangeKind::NodeDataChanged, "/a"));
    assert_eq!(event.zxid, stat.mzxid);

    // Another session's change: once a's later reply is in, so is the event.
    let (_, _, mut watch) = a.get_watch("/a").await.unwrap();
    b.set("/a", "2", -1).await.unwrap();
    a.sync("/").await.unwrap();
    let event = watch.try_event().expect("event before the later reply").unwrap();
    assert_eq!(event.kind, ChangeKind::NodeDataChanged);
}

#[tokio::test]
async fn one_shot_watches_fire_once_for_every_caller() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let s = connect(&[&server]).await;
    s.create("/a", "", CreateMode::Persistent).await.unwrap();
    let (_, _, w1) = s.get_watch("/a").await.unwrap();
    let (_, _, w2) = s.get_watch("/a").await.unwrap();
    let (missing, w3) = s.exists_watch("/a/kid").await.unwrap();
    assert!(missing.is_none());
    let (kids, _, w4) = s.children_watch("/a").await.unwrap();
    assert!(kids.is_empty());

    s.set("/a", "x", -1).await.unwrap();
    s.create("/a/kid", "", CreateMode::Persistent).await.unwrap();
    for watch in [w1, w2] {
        assert_eq!(within("data watch", watch).await.unwrap().kind, ChangeKind::NodeDataChanged);
    }
    let created = within("exists watch", w3).await.unwrap();
    assert_eq!((created.kind, created.path.as_str()), (ChangeKind::NodeCreated, "/a/kid"));
    let changed = within("child watch", w4).await.unwrap();
    assert_eq!((changed.kind, changed.path.as_str()), (ChangeKind::NodeChildrenChanged, "/a"));

    // A get on a missing node fails and sets no watch.
    assert_eq!(s.get_watch("/nope").await.unwrap_err().code(), ErrorCode::NoNode);
}

#[tokio::test]
async fn persistent_watches_stream_events_in_order_until_removed() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let s = connect(&[&server]).await;
    s.create("/p", "", CreateMode::Persistent).await.unwrap();
    let mut plain = s.add_watch("/p", false).await.unwrap();
    let mut recursive = s.add_watch("/p", true).await.unwrap();
    s.create("/p/a", "", CreateMode::Persistent).await.unwrap();
    s.set("/p/a", "1", -1).await.unwrap();
    s.set("/p", "1", -1).await.unwrap();
    s.delete("/p/a", -1).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = within("plain event", plain.recv()).await.unwrap().unwrap();
        seen.push((event.kind, event.path));
    }
    use ChangeKind::*;
    assert_eq!(
        seen,
        [
            (NodeChildrenChanged, "/p".into()),
            (NodeDataChanged, "/p".into()),
            (NodeChildrenChanged, "/p".into())
        ]
    );
    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = within("recursive event", recursive.recv()).await.unwrap().unwrap();
        seen.push((event.kind, event.path));
    }
    assert_eq!(
        seen,
        [
            (NodeCreated, "/p/a".into()),
            (NodeDataChanged, "/p/a".into()),
            (NodeDataChanged, "/p".into()),
            (NodeDeleted, "/p/a".into()),
        ]
    );

    s.remove_watch("/p", RemoveKind::Persistent).await.unwrap();
    assert!(within("end of the removed stream", plain.recv()).await.is_none());
}

#[tokio::test]
async fn an_interrupted_call_fails_with_connection_loss_and_the_session_resumes() {
    let cluster = Cluster::new();
    let (s1, s2) = (cluster.server().await, cluster.server().await);
    let session = connect(&[&s1, &s2]).await;
    let id = session.session_id();
    session.create("/x", "", CreateMode::Persistent).await.unwrap();

    s1.knobs.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    let before = cluster.requests();
    let in_flight = tokio::spawn({
        let session = session.clone();
        async move { session.get("/x").await }
    });
    eventually("the get to reach the server", || cluster.requests() > before).await;
    let status = baton_api::status::error_status(ErrorCode::ConnectionLoss, "going away", "", None);
    cluster.kill_stream(id, Some(status));

    let result = within("the interrupted get", in_flight).await.unwrap();
    assert!(is_connection_loss(&result), "{result:?}");
    assert!(result.unwrap_err().is_retryable());

    wait::state(&session, SessionState::Connected).await;
    eventually("a resume", || resumes(&cluster, id).len() == 1).await;
    let resume = &resumes(&cluster, id)[0];
    assert_eq!(resume.password, format!("pw-{id}").as_bytes());
    assert_eq!(cluster.server_of(id), Some(s2.index), "resumed on the next server");
    assert_eq!(session.get("/x").await.unwrap().0, "");
}

#[tokio::test]
async fn a_resume_sets_the_watches_again_and_delivers_what_was_missed() {
    let cluster = Cluster::new();
    let (s1, s2) = (cluster.server().await, cluster.server().await);
    let a = connect(&[&s1, &s2]).await;
    let b = connect(&[&s2]).await;
    for path in ["/a", "/p", "/p/c"] {
        a.create(path, "", CreateMode::Persistent).await.unwrap();
    }
    let (_, _, data) = a.get_watch("/a").await.unwrap();
    let (_, created) = a.exists_watch("/missing").await.unwrap();
    let (_, _, child) = a.children_watch("/p").await.unwrap();
    let mut subtree = a.add_watch("/p", true).await.unwrap();

    // Keep `a` away from every server while `b` changes the tree.
    s1.knobs.refuse(Some(ErrorCode::ConnectionLoss));
    s2.knobs.refuse(Some(ErrorCode::ConnectionLoss));
    cluster.kill_stream(a.session_id(), None);
    wait::state(&a, SessionState::Disconnected).await;
    let seen = a.last_zxid();
    b.set("/a", "new", -1).await.unwrap();
    b.create("/missing", "", CreateMode::Persistent).await.unwrap();
    b.create("/p/d", "", CreateMode::Persistent).await.unwrap();
    s2.knobs.refuse(None);
    wait::state(&a, SessionState::Connected).await;

    let resume = resumes(&cluster, a.session_id()).pop().expect("a resume");
    assert_eq!(resume.last_zxid_seen, seen);
    let specs: Vec<(String, i32)> =
        resume.watches.iter().map(|w| (w.path.clone(), w.kind)).collect();
    use pb::WatchKind::*;
    assert_eq!(
        specs,
        [
            ("/a".to_owned(), Data as i32),
            ("/missing".to_owned(), Exists as i32),
            ("/p".to_owned(), Child as i32),
            ("/p".to_owned(), PersistentRecursive as i32),
        ]
    );
    assert_eq!(within("missed data change", data).await.unwrap().kind, ChangeKind::NodeDataChanged);
    assert_eq!(within("missed creation", created).await.unwrap().kind, ChangeKind::NodeCreated);
    assert_eq!(within("missed child", child).await.unwrap().kind, ChangeKind::NodeChildrenChanged);

    // The persistent watch is set again and carries on.
    b.create("/p/e", "", CreateMode::Persistent).await.unwrap();
    let event = within("a new event", subtree.recv()).await.unwrap().unwrap();
    assert_eq!((event.kind, event.path.as_str()), (ChangeKind::NodeCreated, "/p/e"));
    assert!(a.last_zxid() >= cluster.zxid() - 1);
}

#[tokio::test]
async fn a_server_behind_the_client_is_passed_over() {
    let cluster = Cluster::new();
    let (s1, s2, s3) = (cluster.server().await, cluster.server().await, cluster.server().await);
    let session = connect(&[&s1, &s2, &s3]).await;
    session.create("/x", "", CreateMode::Persistent).await.unwrap();
    s2.knobs.lag.store(1_000, std::sync::atomic::Ordering::SeqCst);
    s1.knobs.refuse(Some(ErrorCode::ConnectionLoss));
    cluster.kill_stream(session.session_id(), None);
    eventually("a resume", || resumes(&cluster, session.session_id()).len() == 1).await;
    assert_eq!(cluster.server_of(session.session_id()), Some(s3.index));
    let refused = cluster.connects().into_iter().find(|c| c.server == s2.index).expect("s2 tried");
    assert!(!refused.accepted);
    assert!(refused.connect.last_zxid_seen > 0);
    wait::state(&session, SessionState::Connected).await;
    assert!(session.exists("/x").await.unwrap().is_some());
}

#[tokio::test]
async fn calls_made_while_disconnected_are_sent_on_resume() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    server.knobs.refuse(Some(ErrorCode::ConnectionLoss));
    cluster.kill_stream(session.session_id(), None);
    wait::state(&session, SessionState::Disconnected).await;
    let waiting = tokio::spawn({
        let session = session.clone();
        async move { session.create("/later", "", CreateMode::Persistent).await }
    });
    server.knobs.refuse(None);
    assert_eq!(within("the waiting create", waiting).await.unwrap().unwrap(), "/later");
}

#[tokio::test]
async fn expiry_is_final_for_calls_and_watches() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    let id = session.session_id();
    session.create("/eph", "", CreateMode::Ephemeral).await.unwrap();
    let (_, one_shot) = session.exists_watch("/nope").await.unwrap();
    let mut stream = session.add_watch("/", true).await.unwrap();

    cluster.expire(id);
    wait::state(&session, SessionState::Expired).await;
    let expired = |e: &ClientError| matches!(e, ClientError::SessionExpired { session_id, .. } if *session_id == id);
    assert!(expired(&within("one-shot watch", one_shot).await.unwrap_err()));
    let end = within("stream end", stream.recv()).await.expect("an error item");
    assert!(expired(&end.unwrap_err()));
    assert!(stream.recv().await.is_none());

    let err = session.get("/").await.unwrap_err();
    assert!(expired(&err), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(err.code(), ErrorCode::SessionExpired);
    assert!(err.is_session_end());
    assert!(!cluster.paths().contains(&"/eph".to_owned()));
    assert_eq!(cluster.connects().len(), 1, "no reconnect after an expiry");
    assert_eq!(session.close().await.unwrap_err(), err);
}

#[tokio::test]
async fn a_resume_refused_as_expired_ends_the_session() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    server.knobs.refuse(Some(ErrorCode::SessionExpired));
    cluster.kill_stream(session.session_id(), None);
    wait::state(&session, SessionState::Expired).await;
    assert!(matches!(session.end_error(), Some(ClientError::SessionExpired { .. })));
}

#[tokio::test]
async fn a_refused_password_ends_the_session() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    cluster.change_password(session.session_id());
    cluster.kill_stream(session.session_id(), None);
    wait::state(&session, SessionState::Expired).await;
    let err = session.exists("/").await.unwrap_err();
    assert!(matches!(err, ClientError::AuthFailed { .. }), "{err:?}");
    assert_eq!(err.code(), ErrorCode::AuthFailed);
}

#[tokio::test]
async fn close_deletes_ephemerals_and_ends_everything() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    session.create("/eph", "", CreateMode::Ephemeral).await.unwrap();
    let (_, _, watch) = session.get_watch("/eph").await.unwrap();
    session.close().await.unwrap();
    assert_eq!(session.state(), SessionState::Closed);
    assert!(!cluster.paths().contains(&"/eph".to_owned()));
    assert_eq!(within("watch end", watch).await.unwrap_err(), ClientError::Closed);
    assert_eq!(session.get("/").await.unwrap_err(), ClientError::Closed);
    session.close().await.unwrap();
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_session() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    session.create("/eph", "", CreateMode::Ephemeral).await.unwrap();
    drop(session);
    eventually("the ephemeral to go", || !cluster.paths().contains(&"/eph".to_owned())).await;
}

#[tokio::test]
async fn an_idle_session_pings_and_a_silent_server_is_left() {
    let cluster = Cluster::new();
    let (s1, s2) = (cluster.server().await, cluster.server().await);
    let endpoints = [s1.addr.clone(), s2.addr.clone()];
    let options = SessionOptions { timeout_ms: 300, ..options() };
    let session = Session::connect(&endpoints, options).await.unwrap();
    assert_eq!(session.timeout_ms(), 300);
    eventually("three pings", || cluster.pings() >= 3).await;
    assert_eq!(session.state(), SessionState::Connected);

    // s1 stops answering (pings included): after 2/3 of the timeout the client leaves.
    s1.knobs.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually("a resume on s2", || cluster.server_of(session.session_id()) == Some(s2.index))
        .await;
    assert!(session.exists("/").await.unwrap().is_some());
}

#[tokio::test]
async fn requests_beyond_the_limits_fail_fast() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let options = SessionOptions {
        pending_requests_max: 2,
        request_timeout: Duration::from_millis(500),
        ..options()
    };
    let session = Session::connect(std::slice::from_ref(&server.addr), options).await.unwrap();
    server.knobs.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    let stalled: Vec<_> = (0..2)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.exists("/").await })
        })
        .collect();
    eventually("two stalled requests", || cluster.requests() >= 2).await;
    assert_eq!(session.exists("/").await.unwrap_err(), ClientError::TooManyRequests { max: 2 });
    for call in stalled {
        let err = within("a stalled call", call).await.unwrap().unwrap_err();
        assert_eq!(err.code(), ErrorCode::OperationTimeout, "{err:?}");
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn unknown_event_types_are_ignored() {
    let cluster = Cluster::new();
    let server = cluster.server().await;
    let session = connect(&[&server]).await;
    session.create("/a", "", CreateMode::Persistent).await.unwrap();
    let (_, _, mut watch) = session.get_watch("/a").await.unwrap();
    cluster.inject_event(
        session.session_id(),
        pb::WatchEvent { r#type: 99, path: "/a".into(), zxid: 1 },
    );
    session.sync("/").await.unwrap();
    assert!(watch.try_event().is_none());
    assert_eq!(session.state(), SessionState::Connected);
}
