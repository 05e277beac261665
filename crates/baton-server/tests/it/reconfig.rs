//! Membership that changes while serving, with real processes: 3 → 5 → 3 under a
//! write load (each new member joins as an observer, catches up and is promoted;
//! removing the leader hands leadership over first), the bad inputs each refused
//! with its reason and nothing changed, a change asked of a follower forwarded,
//! leadership transfer, and a member restarted with a `--peers` that disagrees
//! with the committed configuration following the committed one.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use baton_client::{Client, ConfigChange, ConfigMember, CreateMode, ErrorCode};
use baton_testkit::{EnsembleSpec, peer_list, wait_until_async};

use crate::support::{DEADLINE, connect, status};

/// Generous: a promotion waits for the new member's sync.
const CHANGE_DEADLINE: Duration = Duration::from_secs(60);

fn member(spec: &EnsembleSpec, id: u32, voter: bool) -> ConfigMember {
    let addr = spec.peer_addrs()[(id - 1) as usize].1.to_string();
    ConfigMember { id: u64::from(id), addr, voter }
}

fn voters(config: &baton_client::Config) -> Vec<u64> {
    config.members.iter().filter(|m| m.voter).map(|m| m.id).collect()
}

/// A client of the running members `ids`.
async fn client_of(ensemble: &baton_testkit::Ensemble, ids: &[u32]) -> Client {
    let endpoints: Vec<String> = ids.iter().map(|id| ensemble.member(*id).endpoint()).collect();
    Client::connect(&endpoints).await.expect("connect")
}

/// A change, retried after CONNECTION_LOSS (an election after a leader handed
/// over, say) as a client would: reading the configuration first tells whether
/// the lost attempt happened.
async fn change(
    client: &Client,
    change: ConfigChange,
    done: impl Fn(&baton_client::Config) -> bool,
) -> baton_client::Config {
    let deadline = Instant::now() + CHANGE_DEADLINE;
    loop {
        match client.reconfig(change.clone(), None).await {
            Ok(config) => return config,
            Err(e) if e.code() == ErrorCode::ConnectionLoss && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Ok(config) = client.get_config().await
                    && done(&config)
                {
                    return config;
                }
            }
            Err(e) => panic!("{change:?}: {e}"),
        }
    }
}

/// Waits until the write load acknowledged more than `since` writes: it goes on
/// after a change. Returns the count then.
async fn progressed(acked: &AtomicU64, since: u64, after: &str) -> u64 {
    let went_on = wait_until_async(Instant::now() + DEADLINE, || async {
        acked.load(Ordering::Relaxed) > since
    })
    .await;
    assert!(went_on, "no write acknowledged after {after} (still {since})");
    acked.load(Ordering::Relaxed)
}

/// The error a refused change gets: its code and message.
async fn refused(client: &Client, change: ConfigChange, from: Option<u64>) -> String {
    let error = client.reconfig(change, from).await.expect_err("the change is refused");
    assert_eq!(error.code(), ErrorCode::BadArguments, "{error}");
    error.to_string()
}

/// Waits until members `ids` run the configuration `version` and agree on their
/// last zxid and digest.
async fn wait_agree(ensemble: &baton_testkit::Ensemble, ids: &[u32], version: u64) {
    let agreed = wait_until_async(Instant::now() + CHANGE_DEADLINE, || async {
        let mut seen = Vec::new();
        for id in ids {
            let Some(s) = ensemble.status(*id).await else { return false };
            if s.ensemble.config_version != version || !s.ensemble.broadcasting {
                return false;
            }
            seen.push((s.last_zxid, s.digest));
        }
        seen.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    assert!(agreed, "members {ids:?} do not agree on configuration {version:x}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_to_five_to_three_under_load_with_every_bad_input_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut spec = EnsembleSpec::new(dir.path(), 5).expect("ports").args(&["--tick-ms", "100"]);
    // The first three start as the ensemble; 4 and 5 name it and themselves.
    let first = peer_list(spec.peer_addrs().into_iter().take(3));
    for id in 1..=3 {
        spec.member_mut(id).peers.clone_from(&first);
    }
    for id in 4..=5 {
        let addr = spec.peer_addrs()[(id - 1) as usize].1;
        spec.member_mut(id).peers = format!("{first},{id}={addr}:observer");
    }
    let spec_copy = spec.clone();
    let mut ensemble = spec.start_some(&[1, 2, 3]).expect("the first three start");
    ensemble.wait_settled(DEADLINE).await.expect("a leader");
    let admin = client_of(&ensemble, &[1, 2, 3]).await;
    let config = admin.get_config().await.expect("the configuration");
    assert_eq!((config.version, voters(&config)), (0, vec![1, 2, 3]));

    // A write load through the whole run, retried on CONNECTION_LOSS.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let endpoints: Vec<String> = (1..=3).map(|id| ensemble.member(id).endpoint()).collect();
        let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
        tokio::spawn(async move {
            let client = Client::connect(&endpoints).await.expect("connect");
            client.create("/load", "", CreateMode::Persistent).await.expect("/load");
            let mut failed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let n = acked.load(Ordering::Relaxed);
                match client.create(&format!("/load/w{n:08}"), "x", CreateMode::Persistent).await {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    // A retry of a create that did happen.
                    Err(e) if e.code() == ErrorCode::NodeExists => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.code() == ErrorCode::ConnectionLoss => failed += 1,
                    Err(e) => panic!("write failed beyond retries: {e}"),
                }
            }
            failed
        })
    };

    // 3 → 5: each new member joins as an observer and is promoted once caught up.
    let mut seen = progressed(&acked, 0, "the start").await;
    ensemble.start_members(&[4, 5]).expect("4 and 5 start");
    let config = admin
        .reconfig(ConfigChange::Add(member(&spec_copy, 4, true)), Some(0))
        .await
        .expect("add 4");
    assert_eq!(voters(&config), [1, 2, 3, 4]);
    // Asked of a follower: forwarded to the leader.
    let leader = ensemble.leader().await.expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let via_follower = connect(ensemble.member(follower)).await;
    let config = via_follower
        .reconfig(ConfigChange::Add(member(&spec_copy, 5, true)), Some(config.version))
        .await
        .expect("add 5 through a follower");
    assert_eq!(voters(&config), [1, 2, 3, 4, 5]);
    let five = config.version;
    wait_agree(&ensemble, &[1, 2, 3, 4, 5], five).await;
    seen = progressed(&acked, seen, "growing to 5").await;
    // The configuration is a znode clients read, in ZooKeeper's form.
    let (data, stat) = admin.get("/baton/config").await.expect("/baton/config");
    let text = String::from_utf8(data.to_vec()).expect("text");
    assert!(
        text.contains(":participant") && text.ends_with(&format!("version={five:x}")),
        "{text}"
    );
    assert_eq!(stat.mzxid, five);

    // A linearizable read on any member (a new voter here) sees a write just
    // acknowledged through another, without a log write of its own.
    admin.create("/lin", "v1", CreateMode::Persistent).await.expect("/lin");
    for id in [4, 5] {
        let reader = connect(ensemble.member(id)).await;
        let (data, _) = reader.get_linearizable("/lin").await.expect("a linearizable read");
        assert_eq!(&data[..], b"v1", "member {id}");
    }

    // Bad input: each refused with its reason, nothing changed.
    let at = |id| member(&spec_copy, id, true);
    assert!(
        refused(&admin, ConfigChange::Add(at(3)), None)
            .await
            .contains("server 3 is already a member")
    );
    assert!(
        refused(&admin, ConfigChange::Remove { id: 9 }, None)
            .await
            .contains("server 9 is not a member")
    );
    let stale = refused(&admin, ConfigChange::Remove { id: 5 }, Some(0)).await;
    assert!(stale.contains(&format!("version {five:x}, not 0")), "{stale}");
    let majority = ConfigChange::Members(vec![at(1), at(2)]);
    let majority = refused(&admin, majority, None).await;
    assert!(majority.contains("keeps 2 of the 5 voters, fewer than a majority"), "{majority}");
    let unknown = ConfigChange::SetRole { id: 7, voter: true };
    assert!(refused(&admin, unknown, None).await.contains("server 7 is not a member"));
    assert_eq!(admin.get_config().await.expect("config").version, five, "nothing changed");

    // Leadership transfer: to a named voter, without an election timeout.
    let leader = ensemble.leader().await.expect("a leader");
    let target: u32 = if leader == 5 { 4 } else { 5 };
    let at_leader = connect(ensemble.member(leader)).await;
    let moved = at_leader.transfer_leadership(Some(u64::from(target))).await.expect("transfer");
    assert_eq!(moved, u64::from(target));
    let not_leader = connect(ensemble.member(leader)).await;
    let error = not_leader.transfer_leadership(None).await.expect_err("no longer the leader");
    assert!(error.to_string().contains(&format!("server {target} does")), "{error}");

    // 5 → 3: remove 4 and 5, the leader among them (it hands leadership over first).
    let gone = |id| move |c: &baton_client::Config| c.members.iter().all(|m| m.id != id);
    let config = change(&admin, ConfigChange::Remove { id: 5 }, gone(5)).await;
    assert_eq!(voters(&config), [1, 2, 3, 4]);
    seen = progressed(&acked, seen, "removing 5").await;
    let config = change(&admin, ConfigChange::Remove { id: 4 }, gone(4)).await;
    assert_eq!(voters(&config), [1, 2, 3]);
    let three = config.version;
    wait_agree(&ensemble, &[1, 2, 3], three).await;
    let leader = ensemble.leader().await.expect("a leader");
    assert!((1..=3).contains(&leader), "a member of the new configuration leads: {leader}");
    // The leader sends removed members nothing more: they stop serving once its
    // silence times them out.
    for id in [4, 5] {
        let out = wait_until_async(Instant::now() + DEADLINE, || async {
            ensemble
                .status(id)
                .await
                .is_some_and(|s| s.ensemble.removed && !s.ensemble.broadcasting)
        })
        .await;
        assert!(out, "member {id}: {:?}", status(ensemble.member(id)).await.ensemble);
    }

    progressed(&acked, seen, "shrinking to 3").await;
    stop.store(true, Ordering::Relaxed);
    let retried = writer.await.expect("the writer");
    let acked = acked.load(Ordering::Relaxed);
    wait_agree(&ensemble, &[1, 2, 3], three).await;
    for id in 1..=3 {
        let client = connect(ensemble.member(id)).await;
        client.sync("/load").await.expect("sync");
        let (children, _) = client.children("/load").await.expect("children");
        assert!(
            children.len() as u64 >= acked,
            "member {id} lost writes: {} < {acked}",
            children.len()
        );
    }
    eprintln!("3 → 5 → 3: {acked} writes acknowledged, {retried} retried after CONNECTION_LOSS");

    // A member restarted with a --peers that disagrees with the committed
    // configuration (4 was started as 1, 2, 3 and itself an observer) follows the
    // committed one, and says so.
    ensemble.kill(4);
    ensemble.start_member(4).expect("4 restarts");
    let said = wait_until_async(Instant::now() + DEADLINE, || async {
        ensemble.member(4).log().contains("following the committed one")
    })
    .await;
    assert!(said, "no word of the committed configuration:\n{}", ensemble.member(4).log_tail(30));
    let s = status(ensemble.member(4)).await;
    assert!(s.ensemble.config_version >= five, "{:?}", s.ensemble);

    // A leader stopping gracefully hands leadership over first (a rolling restart
    // waits for no election timeout).
    ensemble.kill(4);
    ensemble.kill(5);
    let leader = ensemble.wait_settled(DEADLINE).await.expect("a leader");
    ensemble.stop(leader, Duration::from_secs(10)).expect("a graceful stop");
    let log = ensemble.member(leader).log();
    assert!(log.contains("handing leadership over"), "{}", ensemble.member(leader).log_tail(20));
    let next = ensemble.wait_settled(DEADLINE).await.expect("a new leader");
    assert_ne!(next, leader);
}

/// A member started with `--join` (what a StatefulSet pod beyond the base ensemble
/// does) asks the ensemble to add it and becomes a voter once it has caught up; a
/// restart of it asks nothing more; removed (the pod's preStop hook), it takes part
/// in nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_started_with_join_adds_itself() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut spec = EnsembleSpec::new(dir.path(), 4).expect("ports").args(&["--tick-ms", "100"]);
    let first = peer_list(spec.peer_addrs().into_iter().take(3));
    for id in 1..=3 {
        spec.member_mut(id).peers.clone_from(&first);
    }
    let addr = spec.peer_addrs()[3].1;
    spec.member_mut(4).peers = format!("{first},4={addr}:observer");
    let mut launch = spec.launch(4);
    let ensemble = spec.start_some(&[1, 2, 3]).expect("the first three start");
    ensemble.wait_settled(DEADLINE).await.expect("a leader");
    let endpoints: Vec<String> = (1..=3).map(|id| ensemble.member(id).endpoint()).collect();
    launch.args.extend(["--join".to_owned(), endpoints.join(",")]);
    let mut joining = baton_testkit::ServerProcess::launch(launch).expect("4 starts");
    let admin = client_of(&ensemble, &[1, 2, 3]).await;
    let joined = wait_until_async(Instant::now() + CHANGE_DEADLINE, || async {
        admin.get_config().await.is_ok_and(|c| voters(&c) == [1, 2, 3, 4])
    })
    .await;
    assert!(joined, "4 did not join:\n{}", joining.log_tail(30));
    let version = admin.get_config().await.expect("config").version;
    joining.restart().expect("4 restarts");
    let served = wait_until_async(Instant::now() + CHANGE_DEADLINE, || async {
        joining.status().await.is_ok_and(|s| s.ensemble.broadcasting)
    })
    .await;
    assert!(served, "4 does not serve after its restart");
    assert_eq!(admin.get_config().await.expect("config").version, version, "no change asked");
    let gone = |c: &baton_client::Config| c.members.iter().all(|m| m.id != 4);
    let config = change(&admin, ConfigChange::Remove { id: 4 }, gone).await;
    assert_eq!(voters(&config), [1, 2, 3]);
}
