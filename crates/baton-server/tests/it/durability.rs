//! Acknowledged writes survive kill -9, a graceful stop, and restarts across
//! snapshots and purges.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use baton_client::{Client, CreateMode};
use baton_testkit::{Rng, wait_until_async};

use crate::support::{DEADLINE, TestServer, replayed_in};

const WRITERS: usize = 4;
const OPS_PER_WRITER: usize = 300;

/// What one writer saw acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// Paths created (data = the path).
    created: Vec<String>,
    /// The last value acknowledged by a set on the writer's own node.
    last_set: Option<u64>,
}

/// Creates `/w<i>/k<n>` and sets `/w<i>` to `n`, alternately, until an error.
async fn writer(client: Client, i: usize, acked: Arc<Mutex<Acked>>) {
    let own = format!("/w{i}");
    for n in 0..OPS_PER_WRITER as u64 {
        let path = format!("{own}/k{n}");
        if client.create(&path, path.clone(), CreateMode::Persistent).await.is_err() {
            return;
        }
        acked.lock().unwrap().created.push(path);
        if client.set(&own, n.to_string(), -1).await.is_err() {
            return;
        }
        acked.lock().unwrap().last_set = Some(n);
    }
}

fn total(acked: &[Arc<Mutex<Acked>>]) -> usize {
    acked.iter().map(|a| a.lock().unwrap().created.len()).sum()
}

async fn check_all_present(client: &Client, acked: &[Arc<Mutex<Acked>>]) {
    for (i, acked) in acked.iter().enumerate() {
        let (created, last_set) = {
            let acked = acked.lock().unwrap();
            (acked.created.clone(), acked.last_set)
        };
        for path in &created {
            let (data, _) = client.get(path).await.unwrap_or_else(|e| panic!("{path} lost: {e}"));
            assert_eq!(&data[..], path.as_bytes());
        }
        if let Some(last) = last_set {
            let (data, _) = client.get(&format!("/w{i}")).await.unwrap();
            let value: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
            assert!(value >= last, "/w{i} = {value}, but {last} was acknowledged");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let mut server = TestServer::start(&[]).await;
    for i in 0..WRITERS {
        server.client.create(&format!("/w{i}"), "", CreateMode::Persistent).await.unwrap();
    }
    let acked: Vec<_> = (0..WRITERS).map(|_| Arc::new(Mutex::new(Acked::default()))).collect();
    let tasks: Vec<_> = acked
        .iter()
        .enumerate()
        .map(|(i, a)| tokio::spawn(writer(server.client.clone(), i, Arc::clone(a))))
        .collect();

    // Kill at a random point while the writers are busy.
    let kill_after = 50 + Rng::from_env_or_time("kill -9").below(600) as usize;
    let reached = wait_until_async(Instant::now() + DEADLINE, || {
        let done = total(&acked) >= kill_after;
        async move { done }
    })
    .await;
    assert!(reached, "writers did not reach {kill_after} creates");
    server.process.kill();
    for task in tasks {
        task.await.unwrap();
    }
    let before = total(&acked);
    assert!(before >= kill_after);

    server.restart(&[]).await;
    check_all_present(&server.client, &acked).await;
    assert_eq!(server.status().await.epoch, 2, "a restart starts a new epoch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_keeps_everything_and_exits_0() {
    let mut server = TestServer::start(&[]).await;
    for n in 0..50 {
        let path = format!("/g{n}");
        server.client.create(&path, path.clone(), CreateMode::Persistent).await.unwrap();
    }
    let digest = server.digest().await;
    server.process.terminate().expect("SIGTERM");
    let exit = server.process.wait_exit(Instant::now() + DEADLINE).expect("exits after SIGTERM");
    assert!(exit.success(), "exit status {exit:?}\n{}", server.process.log());
    assert!(server.process.log().contains("stopped"));

    server.restart(&[]).await;
    assert_eq!(server.digest().await, digest);
    for n in 0..50 {
        assert!(server.client.exists(&format!("/g{n}")).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_snapshots_after_purge() {
    let args = ["--snapshot-every-txns", "50", "--snapshots-keep", "2"];
    let mut server = TestServer::start(&args).await;
    let acked: Vec<_> = (0..WRITERS).map(|_| Arc::new(Mutex::new(Acked::default()))).collect();
    for i in 0..WRITERS {
        server.client.create(&format!("/w{i}"), "", CreateMode::Persistent).await.unwrap();
    }
    // 4 writers × 125 creates = 500 creates (and as many sets).
    let tasks: Vec<_> = acked
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let client = server.client.clone();
            let acked = Arc::clone(a);
            tokio::spawn(async move {
                for n in 0..125u64 {
                    let path = format!("/w{i}/k{n}");
                    client.create(&path, path.clone(), CreateMode::Persistent).await.unwrap();
                    acked.lock().unwrap().created.push(path);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let s = &server;
    let snapshotted = wait_until_async(Instant::now() + DEADLINE, || async move {
        s.metric("baton_snapshots_total").await >= 5
            && s.metric("baton_log_entries_purged_total").await > 0
    })
    .await;
    assert!(snapshotted, "no snapshots or no purge:\n{}", server.process.log());

    server.process.kill();
    server.restart(&args).await;
    check_all_present(&server.client, &acked).await;
    let replayed = replayed_in(&server.process.log()).expect("a recovered line");
    assert!(replayed < 100, "replayed {replayed} txns: the snapshot was not used");
}
