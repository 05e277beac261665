//! The short nemesis of every CI run: the four baton-client workloads at once on one
//! real 3-member ensemble, under every fault kind in turn (fixed seed), and a shorter
//! run of the register through ZooKeeper's protocol. Longer runs:
//! `cargo xtask nemesis --matrix SECS` (see docs/reliability.md).

use std::time::Duration;

use baton_nemesis::{Options, faults, run, workload::Workload};

/// Seconds of faults (extended until every fault kind was injected once).
const SECONDS: u64 = 30;
/// The same for the ZooKeeper-protocol register (two fault kinds).
const ZK_SECONDS: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_workload_survives_every_fault_kind() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = Options {
        nodes: 3,
        time: Duration::from_secs(SECONDS),
        faults: faults::ALL.to_vec(),
        round_robin: true,
        workloads: Workload::BATON_CLIENT.to_vec(),
        seed: 100,
        clients: 4,
        tick_ms: 100,
        server_bin: baton_testkit::server_bin(),
        dir: dir.path().join("all"),
        server_args: Vec::new(),
    };
    let report = run(options).await.expect("the nemesis harness ran");
    eprintln!("{}", report.summary());
    for line in &report.faults.lines {
        eprintln!("  {line}");
    }
    for anomaly in &report.verdict.anomalies {
        eprintln!("  ANOMALY: {anomaly}");
    }
    for (workload, verdict) in &report.verdicts {
        eprintln!(
            "  {workload}: ops {} (ok {}, info {}, fail {})",
            verdict.ops, verdict.ok, verdict.info, verdict.fail
        );
        assert!(verdict.ops > 100, "{workload}: too few operations to mean anything");
    }
    for fault in faults::ALL {
        let injected = report.faults.injected.get(&fault.to_string()).copied().unwrap_or(0);
        assert!(injected > 0, "fault {fault} was never injected: {:?}", report.faults.injected);
    }
    assert!(report.passed(), "the nemesis run found problems:\n{}", report.summary());
}

/// The register through ZooKeeper's protocol: `zookeeper-client` sessions on the
/// members' ZooKeeper ports, moving between members while a member is killed and
/// while one is cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_register_through_zookeepers_protocol_survives_kills_and_partitions() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = Options {
        nodes: 3,
        time: Duration::from_secs(ZK_SECONDS),
        faults: vec![faults::Fault::Kill, faults::Fault::Partition],
        round_robin: true,
        workloads: vec![Workload::ZkRegister],
        seed: 7,
        clients: 4,
        tick_ms: 100,
        server_bin: baton_testkit::server_bin(),
        dir: dir.path().join("zk-register"),
        server_args: Vec::new(),
    };
    let report = run(options).await.expect("the nemesis harness ran");
    eprintln!("{}", report.summary());
    for line in report.faults.lines.iter().chain(&report.verdict.anomalies) {
        eprintln!("  {line}");
    }
    assert!(report.verdict.ops > 100, "too few operations to mean anything");
    assert!(report.passed(), "the nemesis run found problems:\n{}", report.summary());
}

/// Found by the nemesis (connection resets on peer links): a follower whose stream of
/// forwarded writes to the leader broke stayed in broadcast but refused every write
/// ("cannot reach leader") until its role changed — for good, on a quiet ensemble.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_reopens_its_broken_link_to_the_leader() {
    use baton_client::{Client, CreateMode};
    use baton_nemesis::{proxy::LinkMode, testbed::Testbed};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let args = vec!["--tick-ms".to_owned(), "100".to_owned()];
    let bed = Testbed::start(dir.path(), baton_testkit::server_bin(), 3, args, 1)
        .await
        .expect("an ensemble");
    let ensemble = &bed.ensemble;
    let leader = ensemble.wait_settled(Duration::from_secs(30)).await.expect("a leader");
    let follower = ensemble.ids().into_iter().find(|id| *id != leader).expect("a follower");
    let client = Client::connect(&[ensemble.member(follower).endpoint()]).await.expect("a client");
    client.create("/before", "", CreateMode::Persistent).await.expect("a forwarded write");

    // Cut follower → leader for less than the sync limit (5 ticks): the follower keeps
    // hearing its leader and stays in broadcast, but its forward stream is closed.
    let cut = LinkMode { cut: true, ..LinkMode::default() };
    bed.proxy.set(follower, leader, cut);
    tokio::time::sleep(Duration::from_millis(200)).await;
    bed.proxy.heal();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        match client.create("/after", "", CreateMode::Persistent).await {
            Ok(_) => return,
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("writes through member {follower} still refused 10 s after the link healed: {last:?}");
}

/// A rolling restart as Kubernetes does one (SIGTERM, followers first, the leader
/// last, each serving again before the next) under a write load: no request fails
/// beyond its retries, and each member stops promptly (a leader answers what it has
/// in flight, then its followers elect at once). `cargo xtask rolling-restart` is
/// the longer run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_fails_no_request() {
    use baton_nemesis::rolling::{RollingOptions, rolling_restart};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = RollingOptions {
        nodes: 3,
        clients: 4,
        between: Duration::from_secs(1),
        dir: dir.path().join("rolling"),
        server_bin: baton_testkit::server_bin(),
        server_args: Vec::new(),
    };
    let report = rolling_restart(&options).await.expect("the rolling restart ran");
    eprintln!("{}", report.summary());
    assert!(report.passed(), "{}\n{}", report.summary(), report.failed.join("\n"));
    assert_eq!(report.restarts.len(), 3);
    assert_eq!(report.restarts.last().map(|r| r.1), Some("leader"), "the leader goes last");
    for (id, _, stopped_in, _) in &report.restarts {
        assert!(*stopped_in < 10.0, "member {id} took {stopped_in:.1} s to stop");
    }
}
