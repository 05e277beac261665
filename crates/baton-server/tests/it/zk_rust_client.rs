//! The `zookeeper-client` crate, a ZooKeeper client written apart from ZooKeeper's, against
//! a three-member ensemble's ZooKeeper ports: every create mode (TTL and container
//! included), reads with their stats, one-shot and persistent watches fired by another
//! member's writes, multi and check writes, sync, ACLs with digest auth, and one session
//! kept across a SIGKILL of the member it is connected to.
//!
//! Every expectation is ZooKeeper 3.8's answer to the same calls (checked against a
//! three-member ZooKeeper 3.8 with extended types on); a check Baton answers otherwise
//! says so in a `differs:` comment.

use std::{
    collections::HashSet,
    fs,
    time::{Duration, Instant},
};

use zookeeper_client::{
    Acl, Acls, AddWatchMode, AuthId, CheckWriteError, Client, CreateMode, CreateOptions, Error,
    EventType, MultiReadResult, MultiWriteError, MultiWriteResult, OneshotWatcher, Permission,
    PersistentWatcher, SessionState, WatchedEvent,
};

use crate::{support::DEADLINE, zk_support::BatonEnsemble};

/// Sessions of 4 s, the most 200 ms ticks allow.
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

/// `alice:secret` as the digest scheme stores it: base64(sha1("alice:secret")).
const ALICE_DIGEST: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";

const OPEN: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

fn open(mode: CreateMode) -> CreateOptions<'static> {
    mode.with_acls(Acls::anyone_all())
}

async fn connect(hosts: &str) -> Client {
    let connecting = Client::connector().with_session_timeout(SESSION_TIMEOUT).connect(hosts);
    match tokio::time::timeout(DEADLINE, connecting).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => panic!("no ZooKeeper session with {hosts}: {error}"),
        Err(_) => panic!("no ZooKeeper session with {hosts} within {DEADLINE:?}"),
    }
}

/// The next event of a watch, with a deadline.
async fn next_event(what: &str, event: impl Future<Output = WatchedEvent>) -> WatchedEvent {
    tokio::time::timeout(DEADLINE, event)
        .await
        .unwrap_or_else(|_| panic!("no {what} event within {DEADLINE:?}"))
}

async fn oneshot(what: &str, watcher: OneshotWatcher) -> WatchedEvent {
    next_event(what, watcher.changed()).await
}

async fn persistent(what: &str, watcher: &mut PersistentWatcher) -> (EventType, String) {
    let event = next_event(what, watcher.changed()).await;
    (event.event_type, event.path)
}

/// Waits until `path` is gone, as seen through `client`.
async fn wait_gone(client: &Client, path: &str, why: &str) {
    let deadline = Instant::now() + DEADLINE;
    while client.check_stat(path).await.expect("exists").is_some() {
        assert!(Instant::now() < deadline, "{path} still exists after {DEADLINE:?} ({why})");
        tokio::time::sleep(baton_testkit::POLL_INTERVAL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_client_crate_on_every_member() {
    let ensemble = BatonEnsemble::start(3).await;
    let member = |id: u32| ensemble.members.member(id).zk_endpoint();
    let (a, b, c) =
        (connect(&member(1)).await, connect(&member(2)).await, connect(&member(3)).await);
    create_modes_and_stats(&a, &b).await;
    one_shot_watches(&a, &b).await;
    persistent_watches(&a, &b, &c).await;
    multi_and_check(&a, &b).await;
    acls_and_auth(&a, &b, &c).await;
}

async fn create_modes_and_stats(a: &Client, b: &Client) {
    let (root, _) = a.create("/rc", b"", &OPEN).await.expect("create /rc");
    assert_eq!((root.version, root.cversion, root.num_children), (0, 0, 0));
    assert_eq!((root.czxid, root.pzxid), (root.mzxid, root.mzxid), "a new node's zxids");

    let (stat, _) = a.create("/rc/p", b"data", &OPEN).await.expect("persistent");
    assert_eq!((stat.data_length, stat.ephemeral_owner), (4, 0));
    let (_, seq) = a.create("/rc/s-", b"", &open(CreateMode::PersistentSequential)).await.unwrap();
    assert_eq!(seq.to_string(), "0000000001", "the parent's cversion at the create");
    let (eph, _) = a.create("/rc/e", b"", &open(CreateMode::Ephemeral)).await.unwrap();
    assert_eq!(eph.ephemeral_owner, a.session_id().0, "an ephemeral's owner");
    let (eseq, seq) =
        a.create("/rc/es-", b"", &open(CreateMode::EphemeralSequential)).await.unwrap();
    assert_eq!(
        (seq.to_string(), eseq.ephemeral_owner),
        ("0000000003".to_owned(), a.session_id().0)
    );
    let child = a.create("/rc/e/child", b"", &OPEN).await;
    assert_eq!(child.unwrap_err(), Error::NoChildrenForEphemerals);
    assert_eq!(a.create("/rc/p", b"", &OPEN).await.unwrap_err(), Error::NodeExists);
    assert_eq!(a.create("/rc/no/such", b"", &OPEN).await.unwrap_err(), Error::NoNode);

    // Another member, after a sync, has it all.
    b.sync("/rc").await.expect("sync");
    let (data, stat) = b.get_data("/rc/p").await.expect("get");
    assert_eq!((data.as_slice(), stat.version), (&b"data"[..], 0));
    let (mut children, parent) = b.get_children("/rc").await.expect("children");
    children.sort();
    assert_eq!(children, ["e", "es-0000000003", "p", "s-0000000001"]);
    assert_eq!((parent.num_children, parent.cversion), (4, 4));
    let mut ephemerals = a.list_ephemerals("/rc").await.expect("getEphemerals");
    ephemerals.sort();
    assert_eq!(ephemerals, ["/rc/e", "/rc/es-0000000003"], "the session's own ephemerals");
    assert!(b.list_ephemerals("/").await.expect("getEphemerals").is_empty(), "b owns none");
    assert_eq!(b.count_descendants_number("/rc").await.expect("getAllChildrenNumber"), 4);
    assert_eq!(b.check_stat("/rc/missing").await.expect("exists"), None);

    let set = b.set_data("/rc/p", b"v1", Some(0)).await.expect("set at version 0");
    assert_eq!((set.version, set.data_length, set.czxid), (1, 2, stat.czxid));
    assert!(set.mzxid > stat.mzxid, "a set moves mzxid");
    assert_eq!(b.set_data("/rc/p", b"v2", Some(0)).await.unwrap_err(), Error::BadVersion);
    assert_eq!(b.delete("/rc/p", Some(7)).await.unwrap_err(), Error::BadVersion);
    assert_eq!(b.delete("/rc", None).await.unwrap_err(), Error::NotEmpty);
    b.delete("/rc/p", Some(1)).await.expect("delete at version 1");
    a.sync("/rc").await.expect("sync");
    assert_eq!(a.get_data("/rc/p").await.unwrap_err(), Error::NoNode);

    // A container goes once its last child has; a TTL node once its TTL passed with
    // no change and no child.
    a.create("/rc/box", b"", &open(CreateMode::Container)).await.expect("container");
    a.create("/rc/box/item", b"", &OPEN).await.expect("a container's child");
    a.delete("/rc/box/item", None).await.expect("delete the child");
    wait_gone(b, "/rc/box", "an emptied container").await;
    let ttl = OPEN.clone().with_ttl(Duration::from_millis(300));
    a.create("/rc/ttl", b"", &ttl).await.expect("create with a TTL");
    wait_gone(b, "/rc/ttl", "a TTL node past its TTL").await;
}

async fn one_shot_watches(a: &Client, b: &Client) {
    a.create("/ow", b"0", &OPEN).await.expect("create /ow");
    let (_, _, data) = a.get_and_watch_data("/ow").await.expect("get and watch");
    let (_, exists) = a.check_and_watch_stat("/ow/new").await.expect("exists and watch");
    let (_, children) = a.list_and_watch_children("/ow").await.expect("children and watch");

    let set = b.set_data("/ow", b"1", None).await.expect("set from another member");
    let event = oneshot("data", data).await;
    assert_eq!((event.event_type, event.path.as_str()), (EventType::NodeDataChanged, "/ow"));
    // ZooKeeper 3.8 sends a notification with zxid -1 in its header; Baton sends the
    // change's zxid, as ZooKeeper 3.9 does.
    assert_eq!(event.zxid, set.mzxid, "a notification's zxid is the change's");
    b.create("/ow/new", b"", &OPEN).await.expect("create from another member");
    let event = oneshot("exists", exists).await;
    assert_eq!((event.event_type, event.path.as_str()), (EventType::NodeCreated, "/ow/new"));
    let event = oneshot("children", children).await;
    assert_eq!((event.event_type, event.path.as_str()), (EventType::NodeChildrenChanged, "/ow"));

    let (_, _, deleted) = a.get_and_watch_data("/ow/new").await.expect("get and watch");
    b.delete("/ow/new", None).await.expect("delete from another member");
    let event = oneshot("delete", deleted).await;
    assert_eq!((event.event_type, event.path.as_str()), (EventType::NodeDeleted, "/ow/new"));
}

/// The two kinds on two sessions: ZooKeeper keeps one watch mode per session and path.
async fn persistent_watches(a: &Client, b: &Client, c: &Client) {
    a.create("/pw", b"", &OPEN).await.expect("create /pw");
    let mut node = a.watch("/pw", AddWatchMode::Persistent).await.expect("persistent watch");
    let mut tree = c.watch("/pw", AddWatchMode::PersistentRecursive).await.expect("recursive");

    b.set_data("/pw", b"1", None).await.expect("set");
    b.set_data("/pw", b"2", None).await.expect("set again");
    b.create("/pw/x", b"", &OPEN).await.expect("create a child");
    b.create("/pw/x/y", b"", &OPEN).await.expect("create a grandchild");
    b.set_data("/pw/x/y", b"1", None).await.expect("set the grandchild");
    b.delete("/pw/x/y", None).await.expect("delete the grandchild");

    let changed = (EventType::NodeDataChanged, "/pw".to_owned());
    assert_eq!(persistent("persistent", &mut node).await, changed);
    assert_eq!(persistent("persistent, again", &mut node).await, changed);
    let children = (EventType::NodeChildrenChanged, "/pw".to_owned());
    assert_eq!(persistent("persistent, child", &mut node).await, children);

    // A recursive watch has no child events: creates and deletes below stand for them.
    let expected = [
        (EventType::NodeDataChanged, "/pw"),
        (EventType::NodeDataChanged, "/pw"),
        (EventType::NodeCreated, "/pw/x"),
        (EventType::NodeCreated, "/pw/x/y"),
        (EventType::NodeDataChanged, "/pw/x/y"),
        (EventType::NodeDeleted, "/pw/x/y"),
    ];
    for (kind, path) in expected {
        assert_eq!(persistent("recursive", &mut tree).await, (kind, path.to_owned()));
    }
}

async fn multi_and_check(a: &Client, b: &Client) {
    a.create("/mw", b"", &OPEN).await.expect("create /mw");
    let mut writer = a.new_multi_writer();
    writer.add_check_version("/mw", 0).unwrap();
    writer.add_create("/mw/a", b"a", &OPEN).unwrap();
    writer.add_set_data("/mw/a", b"a1", Some(0)).unwrap();
    writer.add_create("/mw/b", b"b", &OPEN).unwrap();
    writer.add_delete("/mw/b", Some(0)).unwrap();
    let results = writer.commit().await.expect("a multi that holds");
    assert_eq!(results.len(), 5, "{results:?}");
    assert_eq!(results[0], MultiWriteResult::Check);
    assert!(matches!(&results[1], MultiWriteResult::Create { path, .. } if path == "/mw/a"));
    assert!(matches!(&results[2], MultiWriteResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[4], MultiWriteResult::Delete);

    let mut writer = a.new_multi_writer();
    writer.add_create("/mw/c", b"", &OPEN).unwrap();
    writer.add_check_version("/mw/a", 0).unwrap();
    writer.add_delete("/mw/a", None).unwrap();
    let failed = writer.commit().await.unwrap_err();
    assert_eq!(failed, MultiWriteError::OperationFailed { index: 1, source: Error::BadVersion });
    b.sync("/mw").await.expect("sync");
    assert_eq!(b.check_stat("/mw/c").await.unwrap(), None, "a failed multi creates nothing");
    assert!(b.check_stat("/mw/a").await.unwrap().is_some(), "a failed multi deletes nothing");

    let mut check = a.new_check_writer("/mw/a", Some(1)).expect("check writer");
    check.add_set_data("/mw/a", b"a2", None).unwrap();
    let results = check.commit().await.expect("a check that holds");
    assert!(matches!(&results[..], [MultiWriteResult::SetData { stat }] if stat.version == 2));
    let mut check = a.new_check_writer("/mw/a", Some(1)).expect("check writer");
    check.add_set_data("/mw/a", b"a3", None).unwrap();
    let failed = check.commit().await.unwrap_err();
    assert_eq!(failed, CheckWriteError::CheckFailed { source: Error::BadVersion });

    let mut reader = b.new_multi_reader();
    reader.add_get_data("/mw/a").unwrap();
    reader.add_get_children("/mw").unwrap();
    reader.add_get_data("/mw/missing").unwrap();
    let results = reader.commit().await.expect("a multi read");
    match &results[0] {
        MultiReadResult::Data { data, stat } => {
            assert_eq!((data.as_slice(), stat.version), (&b"a2"[..], 2));
        }
        other => panic!("get_data in a multi read: {other:?}"),
    }
    assert!(matches!(&results[1], MultiReadResult::Children { children } if children == &["a"]));
    assert!(matches!(&results[2], MultiReadResult::Error { err: Error::NoNode }), "{results:?}");
}

/// `a` and `c` authenticate as alice, `b` stays anonymous.
async fn acls_and_auth(a: &Client, b: &Client, c: &Client) {
    let creator_all = CreateMode::Persistent.with_acls(Acls::creator_all());
    assert_eq!(a.create("/acl", b"", &creator_all).await.unwrap_err(), Error::InvalidAcl);
    a.auth("digest", b"alice:secret").await.expect("addauth digest");
    c.auth("digest", b"alice:secret").await.expect("addauth digest, another session");
    a.create("/acl", b"secret", &creator_all).await.expect("create as alice");

    let (acls, stat) = a.get_acl("/acl").await.expect("getAcl");
    assert_eq!(acls, [Acl::new(Permission::ALL, AuthId::new("digest", ALICE_DIGEST))]);
    assert_eq!(stat.aversion, 0);
    b.sync("/acl").await.expect("sync");
    assert_eq!(b.get_data("/acl").await.unwrap_err(), Error::NoAuth, "no auth, no read");
    assert_eq!(b.set_data("/acl", b"x", None).await.unwrap_err(), Error::NoAuth);
    c.sync("/acl").await.expect("sync");
    assert_eq!(c.get_data("/acl").await.expect("alice reads").0, b"secret");

    let read_only = [Acl::new(Permission::READ, AuthId::anyone())];
    let refused = a.set_acl("/acl", &Acls::new(&read_only), Some(3)).await;
    assert_eq!(refused.unwrap_err(), Error::BadVersion);
    let stat = a.set_acl("/acl", &Acls::new(&read_only), Some(0)).await.expect("setAcl");
    assert_eq!(stat.aversion, 1);
    b.sync("/acl").await.expect("sync");
    assert_eq!(b.get_data("/acl").await.expect("anyone reads now").0, b"secret");
    assert_eq!(b.set_data("/acl", b"x", None).await.unwrap_err(), Error::NoAuth);

    let users = a.list_auth_users().await.expect("whoami");
    let mut users: Vec<(&str, &str)> = users.iter().map(|u| (u.scheme(), u.user())).collect();
    users.sort();
    assert_eq!(users, [("digest", "alice"), ("ip", "127.0.0.1")], "whoami");
}

/// The members' ZooKeeper ports this process has a TCP connection to, read from
/// /proc: the client says nothing of the server it is connected to.
fn connected_ports(candidates: &[u16]) -> Vec<u16> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir("/proc/self/fd").expect("/proc/self/fd").flatten() {
        let Ok(target) = fs::read_link(entry.path()) else { continue };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
            inodes.insert(inode.to_owned());
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode; st 01 is ESTABLISHED.
            let (Some(remote), Some(state), Some(inode)) =
                (fields.get(2), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let port = remote.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if let Some(port) =
                port.filter(|p| *state == "01" && inodes.contains(*inode) && candidates.contains(p))
            {
                ports.push(port);
            }
        }
    }
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_client_session_survives_a_kill_of_its_member() {
    let mut ensemble = BatonEnsemble::start(3).await;
    let members: Vec<(u32, u16)> = ensemble
        .members
        .ids()
        .into_iter()
        .map(|id| (id, ensemble.members.member(id).zk_addr().expect("a ZooKeeper port").port()))
        .collect();
    let ports: Vec<u16> = members.iter().map(|(_, port)| *port).collect();
    let client = connect(&ensemble.zk_hosts(1)).await;
    let mut states = client.state_watcher();
    let session = client.session_id();

    client.create("/moved", b"0", &OPEN).await.expect("create");
    client.create("/moved/eph", b"", &open(CreateMode::Ephemeral)).await.expect("ephemeral");
    let (_, _, data) = client.get_and_watch_data("/moved").await.expect("get and watch");
    let mut recursive =
        client.watch("/moved", AddWatchMode::PersistentRecursive).await.expect("recursive watch");

    let connected = connected_ports(&ports);
    assert_eq!(connected.len(), 1, "one connection to a member, to {connected:?} of {ports:?}");
    let (member, port) = *members.iter().find(|(_, p)| *p == connected[0]).expect("a member");
    let leader = ensemble.members.leader().await.expect("a leader");
    ensemble.members.kill(member);

    // The state watcher keeps the latest state only: Disconnected may be gone by the
    // time it is read. The persistent watch below gets every transition.
    let mut seen = Vec::new();
    while seen.last().is_none_or(|state: &SessionState| {
        *state != SessionState::SyncConnected && !state.is_terminated()
    }) {
        let state = tokio::time::timeout(DEADLINE, states.changed()).await;
        seen.push(
            state.unwrap_or_else(|_| panic!("no SyncConnected within {DEADLINE:?}: {seen:?}")),
        );
    }
    assert_eq!(seen.last(), Some(&SessionState::SyncConnected), "states after the kill: {seen:?}");
    assert_eq!(client.session_id(), session);
    // The member it reconnected to may drop it once more (see below) before the
    // connection is looked at: wait for it to settle on one other member.
    let elsewhere = || {
        let now = connected_ports(&ports);
        now.len() == 1 && now[0] != port
    };
    let settled = baton_testkit::wait_until(std::time::Instant::now() + DEADLINE, elsewhere);
    let now = connected_ports(&ports);
    assert!(settled, "connected to {now:?} after the kill");

    let killed = format!("member {member} killed, the leader was {leader}");
    // When the member killed was the leader, the member the client reconnected to
    // may drop it once more (it lost its leader): never a CONNECTIONLOSS reply.
    let stat = client.check_stat("/moved/eph").await;
    let stat =
        stat.unwrap_or_else(|error| panic!("exists after the reconnect ({killed}): {error}"));
    let stat = stat.unwrap_or_else(|| panic!("the ephemeral is gone ({killed})"));
    assert_eq!(stat.ephemeral_owner, session.0);
    let other = connect(&ensemble.zk_hosts(if member == 1 { 2 } else { 1 })).await;
    other.set_data("/moved", b"1", None).await.expect("a change after the kill");
    let event = oneshot("data, set before the kill", data).await;
    assert_eq!((event.event_type, event.path.as_str()), (EventType::NodeDataChanged, "/moved"));
    // A persistent watch is told of the session's states too.
    let mut events = Vec::new();
    while events.last().is_none_or(|(kind, _)| *kind == EventType::Session) {
        let event = next_event("recursive, set before the kill", recursive.changed()).await;
        let detail = match event.event_type {
            EventType::Session => format!("{:?}", event.session_state),
            _ => event.path,
        };
        events.push((event.event_type, detail));
    }
    // Disconnected then SyncConnected, once or (dropped once more, see above) twice,
    // then the change.
    let pair = [(EventType::Session, "Disconnected"), (EventType::Session, "SyncConnected")];
    let change = (EventType::NodeDataChanged, "/moved");
    let once: Vec<_> = pair.iter().chain([&change]).copied().collect();
    let twice: Vec<_> = pair.iter().chain(&pair).chain([&change]).copied().collect();
    let seen: Vec<(EventType, &str)> = events.iter().map(|(k, d)| (*k, d.as_str())).collect();
    assert!(seen == once || seen == twice, "events after the kill: {events:?}");
    assert_eq!(states.peek_state(), SessionState::SyncConnected, "no further state change");
}
