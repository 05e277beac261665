//! The kit against real servers: one server through its life (typed status, restart
//! on its ports, pause, graceful stop, a refused start), and an ensemble that settles,
//! loses its leader and converges again.

use std::time::{Duration, Instant};

use baton_testkit::{
    Ensemble, Error, Launch, Role, STATUS_TIMEOUT, ServerProcess, fetch_status, wait_until_async,
};

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_through_its_life() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, &[]);
    let status = server.status().await.unwrap();
    assert_eq!((status.role, status.ensemble.leader, status.id), (Role::Leading, Some(1), 1));
    assert!(status.leads());
    assert_eq!(status.client_addr, server.endpoint());

    // A restart comes back on the same ports, in a new epoch.
    let (client, admin) = (server.client_addr(), server.admin_addr());
    let pid = server.pid();
    server.restart().unwrap();
    assert_ne!(server.pid(), pid);
    assert_eq!((server.client_addr(), server.admin_addr()), (client, admin));
    assert_eq!(server.status().await.unwrap().epoch, 2);

    // Paused, it does not answer; resumed, it does.
    server.pause().unwrap();
    let silent = fetch_status(admin).await;
    assert!(matches!(silent, Err(Error::Admin { .. })), "{silent:?}");
    server.resume().unwrap();
    let answers = wait_until_async(Instant::now() + DEADLINE + STATUS_TIMEOUT, || async {
        fetch_status(admin).await.is_ok()
    })
    .await;
    assert!(answers);

    // A second server on the same directory is refused, and says why.
    let second = Launch { log: dir.path().join("second.log"), ..Launch::new(&data) };
    let refused = ServerProcess::launch(second);
    let Err(Error::Startup { log, .. }) = refused else { panic!("{refused:?}") };
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("another baton-server is using"), "{text}");

    // A graceful stop exits 0, not as an exit by itself.
    let (took, exit) = server.stop(DEADLINE).unwrap();
    assert!(exit.success(), "{exit}");
    assert!(took < DEADLINE);
    assert!(!server.running());
    assert!(server.exited().is_none());
    assert!(server.log().contains("stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_settles_fails_over_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let mut ensemble = Ensemble::start(dir.path(), 3, &["--tick-ms", "100"]).unwrap();
    let leader = ensemble.wait_settled(DEADLINE).await.unwrap();
    assert_eq!(ensemble.leader().await, Some(leader));
    let statuses = ensemble.wait_converged(DEADLINE).await.unwrap();
    assert_eq!(statuses.len(), 3);

    ensemble.kill(leader);
    assert!(ensemble.status(leader).await.is_none());
    let next = ensemble.wait_settled(DEADLINE).await.unwrap();
    assert_ne!(next, leader);
    let still_down = ensemble.wait_converged(Duration::from_millis(300)).await;
    assert!(matches!(still_down, Err(Error::Timeout { .. })), "{still_down:?}");

    ensemble.start_member(leader).unwrap();
    ensemble.wait_settled(DEADLINE).await.unwrap();
    ensemble.wait_converged(DEADLINE).await.unwrap();
    assert!(ensemble.exited().is_empty(), "no member exited by itself");
    assert_eq!(ensemble.endpoints_from(1)[0], ensemble.member(2).endpoint());
}
