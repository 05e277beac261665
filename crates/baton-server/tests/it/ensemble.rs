//! Three real server processes on 127.0.0.1 as one ensemble: writes through any
//! member; kill -9 of the leader under write load (a new leader commits, nothing
//! acknowledged is lost, the old leader catches up); two of three down stops
//! writes with CONNECTION_LOSS until one returns; a wiped follower rejoins by SNAP.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use baton_client::{
    ChangeKind, Client, CreateMode, CreateOp, ErrorCode, MultiOp, Session, SessionOptions,
};
use baton_testkit::{ServerProcess, wait_until_async};

use crate::support::{DEADLINE, connect, metric, status};

/// Three members with `extra` flags (100 ms ticks), in a temporary directory.
struct Ensemble {
    members: baton_testkit::Ensemble,
    // Dropped last: the members must be gone before their directories.
    _dir: tempfile::TempDir,
}

impl Ensemble {
    fn start(n: u32, extra: &[&str]) -> Ensemble {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut args = vec!["--tick-ms", "100"];
        args.extend_from_slice(extra);
        let members =
            baton_testkit::Ensemble::start(dir.path(), n, &args).expect("the members start");
        Ensemble { members, _dir: dir }
    }

    fn start_member(&mut self, id: u32) {
        self.members.start_member(id).expect("the member starts");
    }

    fn kill(&mut self, id: u32) {
        self.members.kill(id);
    }

    fn process(&self, id: u32) -> &ServerProcess {
        self.members.member(id)
    }

    async fn client(&self, id: u32) -> Client {
        connect(self.process(id)).await
    }

    /// Waits until every running member is in broadcast under one leader; returns it.
    async fn wait_stable(&self) -> u32 {
        self.members.wait_settled(DEADLINE).await.expect("a stable leader")
    }

    /// Waits until every member has the same digest and last zxid; returns the digest.
    async fn wait_converged(&self) -> String {
        let statuses = self.members.wait_converged(DEADLINE).await.expect("converged members");
        statuses[0].digest.clone()
    }
}

/// Creates `/load/<name>-<n>` through `client` until `stop`; records what was acknowledged.
async fn writer(
    client: Client,
    name: String,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<Mutex<bool>>,
) {
    let mut n = 0u64;
    while !*stop.lock().unwrap() {
        let path = format!("/load/{name}-{n}");
        n += 1;
        if client.create(&path, path.clone(), CreateMode::Persistent).await.is_ok() {
            acked.lock().unwrap().push(path);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_failover_under_load_catch_up_and_quorum_loss() {
    let mut e = Ensemble::start(3, &[]);
    let leader = e.wait_stable().await;

    // Writes through every member, read back from every member.
    for id in 1..=3 {
        let client = e.client(id).await;
        client
            .create(&format!("/via{id}"), "x", CreateMode::Persistent)
            .await
            .expect("write through member");
    }
    e.client(1).await.create("/load", "", CreateMode::Persistent).await.expect("create /load");
    for id in 1..=3 {
        let client = e.client(id).await;
        client.sync("/").await.expect("sync");
        for via in 1..=3 {
            assert!(
                client.exists(&format!("/via{via}")).await.unwrap().is_some(),
                "member {id} lacks /via{via}"
            );
        }
    }

    // Load through the two followers, then kill -9 the leader.
    let followers: Vec<u32> = (1..=3).filter(|id| *id != leader).collect();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(Mutex::new(false));
    let mut writers = Vec::new();
    for (w, id) in followers.iter().enumerate() {
        let client = e.client(*id).await;
        writers.push(tokio::spawn(writer(
            client,
            format!("w{w}"),
            Arc::clone(&acked),
            Arc::clone(&stop),
        )));
    }
    let loaded = wait_until_async(Instant::now() + DEADLINE, || async {
        acked.lock().unwrap().len() >= 200
    })
    .await;
    assert!(loaded, "the load made no progress");
    let before_kill = acked.lock().unwrap().len();
    let probe = e.client(followers[0]).await;
    let killed_at = Instant::now();
    e.kill(leader);
    // Failover time: from the kill to the first write acknowledged after it.
    let mut attempt = 0;
    let failed_over = wait_until_async(Instant::now() + DEADLINE, || {
        attempt += 1;
        let path = format!("/probe-{attempt}");
        let probe = &probe;
        async move { probe.create(&path, "", CreateMode::Persistent).await.is_ok() }
    })
    .await;
    let failover = killed_at.elapsed();
    assert!(failed_over, "no write committed after the leader was killed");
    eprintln!("failover: leader {leader} killed -> first new commit after {failover:?}");
    let recovered = wait_until_async(Instant::now() + DEADLINE, || async {
        acked.lock().unwrap().len() > before_kill + 50
    })
    .await;
    assert!(recovered, "the load did not resume after the failover");
    *stop.lock().unwrap() = true;
    for writer in writers {
        writer.await.unwrap();
    }
    let new_leader = e.wait_stable().await;
    assert_ne!(new_leader, leader);

    // Nothing acknowledged is lost, on either survivor.
    let acked = acked.lock().unwrap().clone();
    eprintln!("{} writes acknowledged across the failover", acked.len());
    for id in &followers {
        let client = e.client(*id).await;
        client.sync("/").await.expect("sync");
        for path in &acked {
            assert!(
                client.exists(path).await.unwrap().is_some(),
                "member {id} lost acknowledged {path}"
            );
        }
    }

    // The old leader restarts and catches up.
    e.start_member(leader);
    e.wait_stable().await;
    e.wait_converged().await;

    // Two of three down: writes fail with CONNECTION_LOSS; one back: they resume.
    let survivor = new_leader;
    let down: Vec<u32> = (1..=3).filter(|id| *id != survivor).collect();
    for id in &down {
        e.kill(*id);
    }
    let client = e.client(survivor).await;
    let refused = wait_until_async(Instant::now() + DEADLINE, || async {
        matches!(client.create("/lonely", "", CreateMode::Persistent).await, Err(error) if error.code() == ErrorCode::ConnectionLoss)
    })
    .await;
    assert!(refused, "a member without a quorum must refuse writes with CONNECTION_LOSS");
    e.start_member(down[0]);
    let resumed = wait_until_async(Instant::now() + DEADLINE, || async {
        let client = e.client(survivor).await;
        client.create("/back", "", CreateMode::Persistent).await.is_ok()
    })
    .await;
    assert!(resumed, "writes did not resume when a quorum was back");
    e.start_member(down[1]);
    e.wait_stable().await;
    e.wait_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_follower_rejoins_by_snapshot() {
    let mut e = Ensemble::start(3, &["--diff-entries-max", "20"]);
    let leader = e.wait_stable().await;
    let follower = if leader == 1 { 2 } else { 1 };
    let client = e.client(leader).await;
    for i in 0..120 {
        client.create(&format!("/n{i}"), "v", CreateMode::Persistent).await.expect("write");
    }
    e.kill(follower);
    std::fs::remove_dir_all(e.process(follower).data_dir()).expect("wipe the follower");
    e.start_member(follower);
    e.wait_stable().await;
    let digest = e.wait_converged().await;
    let log = e.process(follower).log();
    assert!(
        log.contains("installing the leader's snapshot"),
        "the wiped follower was not sent a snapshot:\n{log}"
    );
    let client = e.client(follower).await;
    assert!(client.exists("/n119").await.unwrap().is_some());
    eprintln!("wiped follower {follower} rejoined by SNAP; digest {digest}");
}

/// Sessions on followers: the leader alone expires sessions, so it must hear of a
/// session that pings a follower (kept alive well past its timeout), and a watch
/// set through one member fires when a session on another ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_and_watches_work_across_members() {
    let e = Ensemble::start(3, &[]);
    let leader = e.wait_stable().await;
    let followers: Vec<u32> = (1..=3).filter(|id| *id != leader).collect();
    let options = SessionOptions { timeout_ms: 600, ..SessionOptions::default() };
    let owner = Session::connect(&[e.process(followers[0]).endpoint()], options.clone())
        .await
        .expect("a session on a follower");
    owner.create("/eph", "", CreateMode::Ephemeral).await.expect("ephemeral through a follower");
    let watcher = Session::connect(&[e.process(followers[1]).endpoint()], options)
        .await
        .expect("a session on the other follower");
    let (stat, watch) = watcher.exists_watch("/eph").await.expect("exists watch");
    assert!(stat.is_some(), "the other member sees the ephemeral");

    // Three timeouts later the session (pinging a follower only) is still alive.
    let on_leader = e.client(leader).await;
    let until = Instant::now() + Duration::from_millis(1_800);
    while Instant::now() < until {
        assert!(
            on_leader.exists("/eph").await.unwrap().is_some(),
            "the leader expired a live session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The owner goes; the ephemeral goes on every member, and the watch fires.
    drop(owner);
    let event = tokio::time::timeout(DEADLINE, watch).await.expect("the watch fired in time");
    let event = event.expect("a watch event");
    assert_eq!(event.kind, ChangeKind::NodeDeleted, "{event:?}");
    assert_eq!(event.path, "/eph");
    for id in 1..=3 {
        let client = e.client(id).await;
        client.sync("/").await.expect("sync");
        assert!(client.exists("/eph").await.unwrap().is_none(), "member {id} still has /eph");
    }
}

/// Found by the nemesis (membership workload): a member that had lost its quorum
/// refused a session's close, yet the client reported the close as done, so its
/// caller believed the session's ephemerals gone while they stayed until expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_close_refused_by_a_member_without_quorum_is_an_error() {
    let mut e = Ensemble::start(3, &[]);
    let leader = e.wait_stable().await;
    let member = (1..=3).find(|id| *id != leader).expect("a follower");
    let options = SessionOptions { timeout_ms: 2_000, ..SessionOptions::default() };
    let session = Session::connect(&[e.process(member).endpoint()], options)
        .await
        .expect("a session on a follower");
    session.create("/mine", "", CreateMode::Ephemeral).await.expect("an ephemeral");
    for other in (1..=3).filter(|id| *id != member) {
        e.kill(other);
    }
    let alone = wait_until_async(Instant::now() + DEADLINE, || async {
        !status(e.process(member)).await.ensemble.broadcasting
    })
    .await;
    assert!(alone, "member {member} still broadcasts without a quorum");
    assert!(session.state().is_connected(), "the session stream stays up: {}", session.state());
    let closed = session.close().await;
    let error = closed.expect_err("a close the member refused must not be reported as done");
    assert_eq!(error.code(), ErrorCode::ConnectionLoss, "{error}");
}

/// The gRPC readiness check (`baton.v1.Ready`) of one member.
async fn ready(process: &ServerProcess) -> bool {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let url = format!("http://{}", process.endpoint());
    let Ok(channel) = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await else {
        return false;
    };
    let request = HealthCheckRequest { service: baton_server::READY_SERVICE_NAME.into() };
    match HealthClient::new(channel).check(request).await {
        Ok(response) => response.into_inner().status == ServingStatus::Serving as i32,
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_role_metrics_follow_the_ensemble() {
    let mut ensemble = Ensemble::start(3, &[]);
    let leader = ensemble.wait_stable().await;
    for id in 1..=3 {
        let process = ensemble.process(id);
        let is_ready =
            wait_until_async(Instant::now() + DEADLINE, || async { ready(process).await }).await;
        assert!(is_ready, "member {id} never became ready");
        let role = if id == leader { "leading" } else { "following" };
        assert_eq!(metric(process, &format!("baton_role{{role=\"{role}\"}}")).await, 1);
        assert!(metric(process, "baton_elections_total").await >= 1, "member {id}");
    }
    // With two of three gone the last member cannot serve: not ready.
    let [first, last] = [1, 2, 3].into_iter().filter(|id| *id != leader).collect::<Vec<u32>>()[..]
    else {
        unreachable!("two followers")
    };
    ensemble.kill(leader);
    ensemble.kill(first);
    let process = ensemble.process(last);
    let unready =
        wait_until_async(Instant::now() + DEADLINE, || async { !ready(process).await }).await;
    assert!(unready, "member {last} stayed ready without a quorum");
    ensemble.start_member(first);
    let process = ensemble.process(last);
    let again =
        wait_until_async(Instant::now() + DEADLINE, || async { ready(process).await }).await;
    assert!(again, "member {last} did not become ready again with a quorum back");
}

/// Three voters and an observer (`4=HOST:PORT:observer` in every `--peers`): the
/// observer follows, serves reads and takes writes (forwarded), says `observing`;
/// it never counts toward a quorum, so with two voters down nothing commits even
/// though the observer is up, and its own loss changes nothing for the voters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_serves_but_never_counts_toward_a_quorum() {
    use baton_api::admin::Role;
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut spec = baton_testkit::EnsembleSpec::new(dir.path(), 4).expect("ports");
    let observer_entry = format!("4={}", spec.members[3].peer_addr);
    for member in &mut spec.members {
        member.peers = member.peers.replace(&observer_entry, &format!("{observer_entry}:observer"));
    }
    let mut e =
        Ensemble { members: spec.args(&["--tick-ms", "100"]).start().expect("start"), _dir: dir };
    let leader = e.wait_stable().await;
    assert_ne!(leader, 4, "an observer never leads");
    let observed = status(e.process(4)).await;
    assert_eq!(observed.role, Role::Observing);
    assert_eq!(observed.ensemble.leader, Some(u64::from(leader)));

    let through_observer = e.client(4).await;
    through_observer.create("/seen", "1", CreateMode::Persistent).await.expect("forwarded write");
    assert!(through_observer.exists("/seen").await.unwrap().is_some(), "read your write");

    // Two voters down: the observer does not make a quorum with the third.
    let voters: Vec<u32> = (1..=3).collect();
    let down: Vec<u32> = voters.iter().copied().filter(|id| *id != leader).collect();
    for id in &down {
        e.kill(*id);
    }
    let refused = wait_until_async(Instant::now() + DEADLINE, || async {
        let client = e.client(4).await;
        matches!(client.create("/minority", "", CreateMode::Persistent).await,
            Err(error) if error.code() == ErrorCode::ConnectionLoss)
    })
    .await;
    assert!(refused, "one voter and an observer must not commit");
    for id in &down {
        e.start_member(*id);
    }
    e.wait_stable().await;

    // The observer down: the voters go on.
    e.kill(4);
    let leader = e.wait_stable().await;
    e.client(leader).await.create("/without", "", CreateMode::Persistent).await.expect("write");
    e.start_member(4);
    e.wait_stable().await;
    e.wait_converged().await;
}

/// `snapshot saved` lines of a member's log: (zxid, slices, nodes recorded).
fn snapshots_saved(log: &str) -> Vec<(String, u64, u64)> {
    let field = |line: &str, name: &str| {
        let start = line.find(&format!(" {name}="))? + name.len() + 2;
        line[start..].split_whitespace().next().map(str::to_owned)
    };
    log.lines()
        .filter(|line| line.contains("snapshot saved"))
        .filter_map(|line| {
            let slices = field(line, "slices")?.parse().ok()?;
            let recorded = field(line, "recorded")?.parse().ok()?;
            Some((field(line, "zxid")?, slices, recorded))
        })
        .collect()
}

/// Snapshots are written in slices while writes go on (each slice under the
/// tree's read lock, writes applied between them). A member killed under load and
/// restarted from such a snapshot, one whose slices saw creates, data changes and
/// deletes between them, recovers from it, loses nothing acknowledged and
/// converges to the same digest as the members that never stopped. (That the bytes
/// are exactly the tree at the snapshot's zxid is the property test's to show: a
/// replay heals some wrong snapshots, e.g. one that kept a node deleted later.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_written_under_load_restores_the_same_tree() {
    let mut e = Ensemble::start(3, &["--snapshot-every-txns", "300"]);
    let leader = e.wait_stable().await;
    let victim = if leader == 1 { 2 } else { 1 };
    let client = e.client(leader).await;
    client.create("/big", "", CreateMode::Persistent).await.expect("create /big");
    client.create("/load", "", CreateMode::Persistent).await.expect("create /load");
    // 12,800 nodes: three slices of 4,096 and more.
    for batch in 0..128 {
        let ops = (0..100)
            .map(|i| {
                MultiOp::Create(CreateOp {
                    acl: baton_znode::acl::open_acl(),
                    path: format!("/big/k{:05}", batch * 100 + i),
                    data: bytes::Bytes::from_static(b"v0"),
                    mode: CreateMode::Persistent,
                    ttl_ms: 0,
                })
            })
            .collect();
        client.multi(ops).await.expect("a batch of creates");
    }

    let stop = Arc::new(Mutex::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..3 {
        let client = e.client(leader).await;
        tasks.push(tokio::spawn(writer(
            client,
            format!("w{w}"),
            Arc::clone(&acked),
            Arc::clone(&stop),
        )));
    }
    // Changes and deletes of nodes spread over the whole tree, so that slices meet
    // nodes changed or removed since their snapshot began.
    let changer = {
        let (client, stop) = (e.client(leader).await, Arc::clone(&stop));
        tokio::spawn(async move {
            let mut n = 0u64;
            while !*stop.lock().unwrap() {
                let path = format!("/big/k{:05}", (n * 7_919) % 12_800);
                let _ = if n.is_multiple_of(3) {
                    client.delete(&path, -1).await
                } else {
                    client.set(&path, format!("v{n}"), -1).await.map(drop)
                };
                n += 1;
            }
        })
    };

    // Until the victim has saved a snapshot that took several slices with changes
    // recorded between them.
    let victim_process = e.process(victim);
    let seen = wait_until_async(Instant::now() + DEADLINE, || async {
        snapshots_saved(&victim_process.log())
            .iter()
            .any(|(_, slices, recorded)| *slices > 1 && *recorded > 0)
    })
    .await;
    assert!(seen, "no snapshot written across writes:\n{}", victim_process.log());
    e.kill(victim);
    let log = e.process(victim).log();
    let (zxid, slices, recorded) = snapshots_saved(&log).pop().expect("a snapshot");
    e.start_member(victim);
    e.wait_stable().await;
    *stop.lock().unwrap() = true;
    for task in tasks {
        task.await.unwrap();
    }
    changer.await.unwrap();
    e.wait_converged().await;
    let restarted = e.process(victim).log();
    let recovered = restarted
        .lines()
        .filter(|line| line.contains("recovered"))
        .any(|line| line.contains(&format!("snapshot_zxid={zxid}")));
    assert!(
        recovered,
        "member {victim} did not recover from its last snapshot {zxid} ({slices} slices, \
         {recorded} recorded):\n{restarted}"
    );
    let client = e.client(victim).await;
    let acked = acked.lock().unwrap().clone();
    for path in &acked {
        assert!(client.exists(path).await.unwrap().is_some(), "{path} acknowledged, then lost");
    }
}
