//! The script: one sequence of ZooKeeper requests, the same for every system, in
//! parts by subject. Everything happens under `/diff`, on member 1, except the
//! sessions that move to another member. Where a session watches another one's
//! changes, the line that shows the event is a read that reflects the change (or a
//! sync): ZooKeeper promises the event comes first.

use baton_testkit::jute::{Acl, AddWatchRequest, Create2Response, CreateResponse};
use baton_testkit::jute::{
    AddWatchMode, AuthPacket, CheckVersionRequest, CheckWatchesRequest, CreateMode,
    CreateTtlRequest, DeleteRequest, ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest,
    GetChildren2Request, GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, MultiOp,
    MultiRequest, OpCode, ReconfigRequest, RemoveWatchesRequest, SetAclRequest, SetDataRequest,
    SetWatches, SetWatches2, SyncRequest, WatcherType, perms, xid,
};
use bytes::Bytes;

use super::run::{Run, acl, create_request, mode_name, open_acl};

const PERSISTENT: i32 = CreateMode::Persistent.code();
const EPHEMERAL: i32 = CreateMode::Ephemeral.code();
const SEQUENTIAL: i32 = CreateMode::PersistentSequential.code();

/// Runs the whole script against `addrs` (member 1 first, at least 3 members).
pub async fn transcript(addrs: Vec<std::net::SocketAddr>) -> Vec<String> {
    let mut run = Run::new(addrs);
    run.connect("A", 1).await;
    reserved(&mut run).await;
    data(&mut run).await;
    bad_paths(&mut run).await;
    children(&mut run).await;
    ephemerals(&mut run).await;
    modes(&mut run).await;
    acls(&mut run).await;
    auth(&mut run).await;
    single_ops(&mut run).await;
    multi(&mut run).await;
    persistent_watches(&mut run).await;
    removing_watches(&mut run).await;
    events_before_reads(&mut run).await;
    set_watches(&mut run).await;
    set_watches2(&mut run).await;
    refused(&mut run).await;
    run.call("A", "Close", OpCode::CloseSession, &()).await;
    run.closed("A", "after Close").await;
    check_last(&mut run).await;
    run.lines
}

/// The standalone check that succeeds comes last: ZooKeeper 3.8 proposes it as a txn
/// its followers cannot decode, and the ensemble stops serving.
async fn check_last(run: &mut Run) {
    run.connect("K", 1).await;
    let check = CheckVersionRequest { path: "/diff".to_owned(), version: 0 };
    run.call("K", "Check /diff v0", OpCode::Check, &check).await;
}

fn bytes(data: Option<&str>) -> Option<Bytes> {
    data.map(|d| Bytes::copy_from_slice(d.as_bytes()))
}

fn watch_suffix(watch: bool) -> &'static str {
    if watch { " watch" } else { "" }
}

/// Returns the path created.
async fn create(
    run: &mut Run,
    who: &'static str,
    path: &str,
    data: Option<&str>,
    flags: i32,
) -> Option<String> {
    let what = format!("Create {path:?} {data:?} {}", mode_name(flags));
    let reply = run.call(who, &what, OpCode::Create, &create_request(path, data, flags)).await?;
    Some(reply.decode::<CreateResponse>().ok()?.path)
}

/// Returns the path created.
async fn create2(
    run: &mut Run,
    who: &'static str,
    path: &str,
    data: Option<&str>,
    flags: i32,
) -> Option<String> {
    let what = format!("Create2 {path:?} {data:?} {}", mode_name(flags));
    let reply = run.call(who, &what, OpCode::Create2, &create_request(path, data, flags)).await?;
    Some(reply.decode::<Create2Response>().ok()?.path)
}

async fn create_acl(run: &mut Run, who: &'static str, path: &str, acl: Vec<Acl>) {
    let what = format!("Create {path} acl {:?}", acl_text(&acl));
    let request = baton_testkit::jute::CreateRequest { acl, ..create_request(path, Some(""), 0) };
    run.call(who, &what, OpCode::Create, &request).await;
}

fn acl_text(acl: &[Acl]) -> Vec<String> {
    acl.iter().map(|a| format!("{}:{}={}", a.id.scheme, a.id.id, a.perms)).collect()
}

async fn exists(run: &mut Run, who: &'static str, path: &str, watch: bool) {
    let what = format!("Exists {path:?}{}", watch_suffix(watch));
    run.call(who, &what, OpCode::Exists, &ExistsRequest { path: path.to_owned(), watch }).await;
}

async fn get(run: &mut Run, who: &'static str, path: &str, watch: bool) {
    let what = format!("GetData {path:?}{}", watch_suffix(watch));
    run.call(who, &what, OpCode::GetData, &GetDataRequest { path: path.to_owned(), watch }).await;
}

async fn set(run: &mut Run, who: &'static str, path: &str, data: Option<&str>, version: i32) {
    let what = format!("SetData {path:?} {data:?} v{version}");
    let request = SetDataRequest { path: path.to_owned(), data: bytes(data), version };
    run.call(who, &what, OpCode::SetData, &request).await;
}

async fn delete(run: &mut Run, who: &'static str, path: &str, version: i32) {
    let what = format!("Delete {path:?} v{version}");
    run.call(who, &what, OpCode::Delete, &DeleteRequest { path: path.to_owned(), version }).await;
}

async fn get_children(run: &mut Run, who: &'static str, path: &str, watch: bool) {
    let what = format!("GetChildren {path:?}{}", watch_suffix(watch));
    let request = GetChildrenRequest { path: path.to_owned(), watch };
    run.call(who, &what, OpCode::GetChildren, &request).await;
}

async fn get_children2(run: &mut Run, who: &'static str, path: &str, watch: bool) {
    let what = format!("GetChildren2 {path:?}{}", watch_suffix(watch));
    let request = GetChildren2Request { path: path.to_owned(), watch };
    run.call(who, &what, OpCode::GetChildren2, &request).await;
}

async fn sync(run: &mut Run, who: &'static str, path: &str) {
    run.call(who, &format!("Sync {path:?}"), OpCode::Sync, &SyncRequest { path: path.to_owned() })
        .await;
}

async fn add_watch(run: &mut Run, who: &'static str, path: &str, mode: AddWatchMode) {
    let what = format!("AddWatch {path:?} {mode:?}");
    let request = AddWatchRequest { path: path.to_owned(), mode: mode.code() };
    run.call(who, &what, OpCode::AddWatch, &request).await;
}

async fn check_watches(run: &mut Run, who: &'static str, path: &str, kind: WatcherType) {
    let what = format!("CheckWatches {path:?} {kind:?}");
    let request = CheckWatchesRequest { path: path.to_owned(), watcher_type: kind.code() };
    run.call(who, &what, OpCode::CheckWatches, &request).await;
}

async fn remove_watches(run: &mut Run, who: &'static str, path: &str, kind: WatcherType) {
    let what = format!("RemoveWatches {path:?} {kind:?}");
    let request = RemoveWatchesRequest { path: path.to_owned(), watcher_type: kind.code() };
    run.call(who, &what, OpCode::RemoveWatches, &request).await;
}

async fn get_ephemerals(run: &mut Run, who: &'static str, prefix: &str) {
    let what = format!("GetEphemerals {prefix:?}");
    let request = GetEphemeralsRequest { prefix_path: prefix.to_owned() };
    run.call(who, &what, OpCode::GetEphemerals, &request).await;
}

async fn count_all(run: &mut Run, who: &'static str, path: &str) {
    let what = format!("GetAllChildrenNumber {path:?}");
    let request = GetAllChildrenNumberRequest { path: path.to_owned() };
    run.call(who, &what, OpCode::GetAllChildrenNumber, &request).await;
}

async fn auth(run: &mut Run) {
    run.connect("D", 1).await;
    let digest = AuthPacket {
        auth_type: 0,
        scheme: "digest".to_owned(),
        auth: Bytes::from_static(b"user:pass"),
    };
    run.call_as("D", "Auth digest user:pass", Some(xid::AUTH), OpCode::Auth.code(), &digest).await;
    create_acl(run, "D", "/diff/authed", vec![acl("auth", "", perms::ALL)]).await;
    run.call("D", "GetAcl /diff/authed", OpCode::GetAcl, &get_acl("/diff/authed")).await;
    get(run, "D", "/diff/authed", false).await;
    run.call("D", "WhoAmI", OpCode::WhoAmI, &()).await;
    run.call_as("D", "Auth digest user:pass again", Some(xid::AUTH), OpCode::Auth.code(), &digest)
        .await;
    run.call("D", "WhoAmI again", OpCode::WhoAmI, &()).await;
    // Another identity's ACL: the session holds user, not other.
    create_acl(run, "D", "/diff/other", vec![acl("auth", "", perms::READ)]).await;
    get(run, "A", "/diff/authed", false).await;
    set(run, "A", "/diff/authed", Some("no"), -1).await;
    run.call("A", "GetAcl /diff/authed", OpCode::GetAcl, &get_acl("/diff/authed")).await;
    run.call("A", "WhoAmI", OpCode::WhoAmI, &()).await;
    run.call("D", "Close", OpCode::CloseSession, &()).await;

    run.connect("E", 1).await;
    let unknown =
        AuthPacket { auth_type: 0, scheme: "nosuch".to_owned(), auth: Bytes::from_static(b"x") };
    run.call_as("E", "Auth nosuch", Some(xid::AUTH), OpCode::Auth.code(), &unknown).await;
    run.closed("E", "after a refused auth").await;
}

fn get_acl(path: &str) -> GetAclRequest {
    GetAclRequest { path: path.to_owned() }
}

/// ZooKeeper's own nodes, by existence only: Baton's root holds a reserved node of its
/// own, which is why the rest of the script stays under `/diff`.
async fn reserved(run: &mut Run) {
    for path in ["/zookeeper", "/zookeeper/config", "/zookeeper/quota"] {
        let request = ExistsRequest { path: path.to_owned(), watch: false };
        let reply = run.call_quiet("A", OpCode::Exists, &request).await;
        let outcome = reply
            .map_or_else(|| "!! failed".to_owned(), |f| super::render::error_name(f.header.err));
        run.note("A", &format!("Exists {path:?}"), &outcome);
    }
}

async fn data(run: &mut Run) {
    create(run, "A", "/diff", Some("root"), PERSISTENT).await;
    create(run, "A", "/diff", Some("again"), PERSISTENT).await;
    create2(run, "A", "/diff/a", Some("a"), PERSISTENT).await;
    create(run, "A", "/diff/x/y", Some(""), PERSISTENT).await;
    exists(run, "A", "/diff/a", true).await;
    get(run, "A", "/diff/a", true).await;
    // Two data watches of one session on one node fire once.
    set(run, "A", "/diff/a", Some("a2"), 0).await;
    set(run, "A", "/diff/a", Some("stale"), 0).await;
    set(run, "A", "/diff/a", Some("a3"), -1).await;
    get(run, "A", "/diff/a", false).await;
    delete(run, "A", "/diff/a", 5).await;
    set(run, "A", "/diff/nosuch", Some("x"), -1).await;
    delete(run, "A", "/diff/nosuch", -1).await;
    exists(run, "A", "/diff/nosuch", false).await;
    get(run, "A", "/diff/nosuch", false).await;
    create(run, "A", "/diff/null", None, PERSISTENT).await;
    get(run, "A", "/diff/null", false).await;
    create(run, "A", "/diff/empty", Some(""), PERSISTENT).await;
    get(run, "A", "/diff/empty", false).await;
    // An exists watch on a missing node fires when it is created.
    exists(run, "A", "/diff/born", true).await;
    create(run, "A", "/diff/born", Some("b"), PERSISTENT).await;
    delete(run, "A", "/diff/born", 0).await;
}

async fn bad_paths(run: &mut Run) {
    for path in ["", "diff", "/diff/", "/diff//a", "/diff/./a", "/diff/../a", "/diff/a\0b"] {
        create(run, "A", path, Some(""), PERSISTENT).await;
    }
    for path in ["", "diff", "/diff/"] {
        get(run, "A", path, false).await;
        exists(run, "A", path, false).await;
    }
    delete(run, "A", "/", -1).await;
}

async fn children(run: &mut Run) {
    get_children(run, "A", "/diff", true).await;
    create(run, "A", "/diff/b", Some(""), PERSISTENT).await;
    get_children2(run, "A", "/diff", false).await;
    delete(run, "A", "/diff/b", -1).await;
    get_children2(run, "A", "/diff", false).await;
    // Sequence numbers come from the parent's cversion, which deletes raise too.
    create(run, "A", "/diff/seq-", Some(""), SEQUENTIAL).await;
    let last = create(run, "A", "/diff/seq-", Some(""), SEQUENTIAL).await;
    get_children2(run, "A", "/diff", false).await;
    delete(run, "A", &last.unwrap_or_default(), -1).await;
    create(run, "A", "/diff/seq-", Some(""), SEQUENTIAL).await;
    create(run, "A", "/diff/s", Some(""), PERSISTENT).await;
    create(run, "A", "/diff/s/", Some(""), SEQUENTIAL).await;
    create(run, "A", "/diff/s/", Some(""), PERSISTENT).await;
    get_children2(run, "A", "/diff/s", false).await;
    delete(run, "A", "/diff", -1).await;
    count_all(run, "A", "/diff").await;
    count_all(run, "A", "/diff/s").await;
    count_all(run, "A", "/diff/nosuch").await;
}

async fn ephemerals(run: &mut Run) {
    run.connect("C", 1).await;
    create(run, "C", "/diff/eph", Some("e"), EPHEMERAL).await;
    create(run, "C", "/diff/eph/kid", Some(""), PERSISTENT).await;
    let eseq = create2(run, "C", "/diff/eseq-", Some(""), CreateMode::EphemeralSequential.code());
    let eseq = eseq.await;
    get_ephemerals(run, "C", "/").await;
    get_ephemerals(run, "C", "/diff/eph").await;
    get_ephemerals(run, "C", "/nosuch").await;
    get_ephemerals(run, "A", "/").await;
    delete(run, "C", &eseq.unwrap_or_default(), -1).await;
    exists(run, "A", "/diff/eph", true).await;
    get_children(run, "A", "/diff", true).await;
    run.call("C", "Close", OpCode::CloseSession, &()).await;
    run.closed("C", "after Close").await;
    // The close removed the ephemeral: the events (the node's watch first, then its
    // parent's) come before this read's reply.
    exists(run, "A", "/diff/eph", false).await;
    get_children(run, "A", "/diff", false).await;
}

async fn modes(run: &mut Run) {
    let container = create_request("/diff/cont", Some(""), CreateMode::Container.code());
    run.call("A", "CreateContainer /diff/cont", OpCode::CreateContainer, &container).await;
    let not_container = create_request("/diff/cont2", Some(""), PERSISTENT);
    run.call(
        "A",
        "CreateContainer /diff/cont2 Persistent",
        OpCode::CreateContainer,
        &not_container,
    )
    .await;
    create(run, "A", "/diff/cont3", Some(""), CreateMode::Container.code()).await;
    exists(run, "A", "/diff/cont3", false).await;
    let ttl = |path: &str, flags: i32, ttl: i64| CreateTtlRequest {
        path: path.to_owned(),
        data: bytes(Some("")),
        acl: open_acl(),
        flags,
        ttl,
    };
    let with_ttl = CreateMode::PersistentWithTtl.code();
    let seq_ttl = CreateMode::PersistentSequentialWithTtl.code();
    for (path, flags, millis) in [
        ("/diff/ttl", with_ttl, 60_000),
        ("/diff/ttlseq-", seq_ttl, 60_000),
        ("/diff/ttl0", with_ttl, 0),
        ("/diff/ttlneg", with_ttl, -5),
        ("/diff/ttlp", PERSISTENT, 1000),
    ] {
        let what = format!("CreateTtl {path} {} ttl={millis}", mode_name(flags));
        run.call("A", &what, OpCode::CreateTtl, &ttl(path, flags, millis)).await;
    }
    create(run, "A", "/diff/ttlc", Some(""), with_ttl).await;
    create(run, "A", "/diff/badmode", Some(""), 7).await;
}

async fn acls(run: &mut Run) {
    run.call("A", "GetAcl /diff", OpCode::GetAcl, &get_acl("/diff")).await;
    run.call("A", "GetAcl /diff/nosuch", OpCode::GetAcl, &get_acl("/diff/nosuch")).await;
    let set_acl = |path: &str, acl: Vec<Acl>, version: i32| SetAclRequest {
        path: path.to_owned(),
        acl,
        version,
    };
    let read_only = vec![acl("world", "anyone", perms::READ)];
    let request = set_acl("/diff/empty", read_only.clone(), 0);
    run.call("A", "SetAcl /diff/empty world:anyone=r v0", OpCode::SetAcl, &request).await;
    run.call("A", "SetAcl /diff/empty world:anyone=r v0 again", OpCode::SetAcl, &request).await;
    run.call("A", "GetAcl /diff/empty", OpCode::GetAcl, &get_acl("/diff/empty")).await;
    set(run, "A", "/diff/empty", Some("x"), -1).await;
    get(run, "A", "/diff/empty", false).await;
    create(run, "A", "/diff/empty/kid", Some(""), PERSISTENT).await;
    let request = set_acl("/diff/null", Vec::new(), -1);
    run.call("A", "SetAcl /diff/null []", OpCode::SetAcl, &request).await;
    let request = set_acl("/diff/null", vec![acl("auth", "", perms::ALL)], -1);
    run.call("A", "SetAcl /diff/null auth: without auth", OpCode::SetAcl, &request).await;
    create_acl(run, "A", "/diff/acl1", vec![acl("digest", "nocolon", perms::ALL)]).await;
    create_acl(run, "A", "/diff/acl2", vec![acl("world", "somebody", perms::ALL)]).await;
    create_acl(run, "A", "/diff/acl3", vec![acl("ip", "127.0.0.1", perms::ALL)]).await;
    get(run, "A", "/diff/acl3", false).await;
    create_acl(run, "A", "/diff/acl4", vec![acl("ip", "not-an-ip", perms::ALL)]).await;
    create_acl(run, "A", "/diff/acl5", vec![acl("nosuch", "x", perms::ALL)]).await;
    create_acl(run, "A", "/diff/acl6", vec![acl("world", "anyone", 0)]).await;
    create_acl(run, "A", "/diff/acl7", vec![acl("world", "anyone", 0x40)]).await;
    create_acl(run, "A", "/diff/acl8", Vec::new()).await;
}

async fn single_ops(run: &mut Run) {
    sync(run, "A", "/diff").await;
    sync(run, "A", "/diff/nosuch").await;
    let check = |path: &str, version: i32| CheckVersionRequest { path: path.to_owned(), version };
    run.call("A", "Check /diff v7", OpCode::Check, &check("/diff", 7)).await;
    run.call("A", "Check /diff/nosuch v0", OpCode::Check, &check("/diff/nosuch", 0)).await;
    run.call_as("A", "Ping", Some(xid::PING), OpCode::Ping.code(), &()).await;
    let reconfig = ReconfigRequest {
        joining_servers: None,
        leaving_servers: Some("3".to_owned()),
        new_members: None,
        cur_config_id: -1,
    };
    run.call("A", "Reconfig leaving 3", OpCode::Reconfig, &reconfig).await;
    run.connect("U", 1).await;
    run.call_as("U", "op 999", None, 999, &()).await;
    run.closed("U", "after op 999").await;
}

async fn multi(run: &mut Run) {
    let create = |path: &str, flags: i32| MultiOp::Create(create_request(path, Some("m"), flags));
    let set = |path: &str, version: i32| {
        MultiOp::SetData(SetDataRequest { path: path.to_owned(), data: bytes(Some("m2")), version })
    };
    let check = |path: &str, version: i32| {
        MultiOp::Check(CheckVersionRequest { path: path.to_owned(), version })
    };
    let delete = |path: &str| MultiOp::Delete(DeleteRequest { path: path.to_owned(), version: -1 });
    let get = |path: &str| MultiOp::GetData(GetDataRequest { path: path.to_owned(), watch: false });
    let children = |path: &str| {
        MultiOp::GetChildren(GetChildrenRequest { path: path.to_owned(), watch: false })
    };
    let cases = [
        (
            "Multi create, set, check, create2, seq, delete",
            OpCode::Multi,
            vec![
                create("/diff/m1", PERSISTENT),
                set("/diff/m1", 0),
                check("/diff/m1", 1),
                MultiOp::Create2(create_request("/diff/m2", Some(""), PERSISTENT)),
                create("/diff/m-", SEQUENTIAL),
                delete("/diff/m1"),
            ],
        ),
        (
            "Multi create, bad check, set",
            OpCode::Multi,
            vec![create("/diff/m3", PERSISTENT), check("/diff/m2", 9), set("/diff/m2", -1)],
        ),
        ("Multi delete missing", OpCode::Multi, vec![delete("/diff/nosuch")]),
        ("Multi create existing", OpCode::Multi, vec![create("/diff/m2", PERSISTENT)]),
        ("Multi empty", OpCode::Multi, Vec::new()),
        (
            "MultiRead",
            OpCode::MultiRead,
            vec![get("/diff/m2"), children("/diff/s"), get("/diff/nosuch"), get("/diff/authed")],
        ),
    ];
    for (what, op, ops) in cases {
        run.call("A", what, op, &MultiRequest { ops }).await;
    }
    // Requests a server may refuse by closing the connection get sessions of their own.
    let mixed = [
        (
            "M1",
            "Multi with a read",
            OpCode::Multi,
            vec![create("/diff/m4", PERSISTENT), get("/diff/m2")],
        ),
        (
            "M2",
            "MultiRead with a write",
            OpCode::MultiRead,
            vec![get("/diff/m2"), delete("/diff/m2")],
        ),
    ];
    for (who, what, op, ops) in mixed {
        run.connect(who, 1).await;
        run.call(who, what, op, &MultiRequest { ops }).await;
    }
    exists(run, "A", "/diff/m3", false).await;
    exists(run, "A", "/diff/m4", false).await;
}

async fn persistent_watches(run: &mut Run) {
    add_watch(run, "A", "/diff/pw", AddWatchMode::Persistent).await;
    create(run, "A", "/diff/pw", Some("p"), PERSISTENT).await;
    set(run, "A", "/diff/pw", Some("p2"), -1).await;
    create(run, "A", "/diff/pw/kid", Some(""), PERSISTENT).await;
    set(run, "A", "/diff/pw/kid", Some("k"), -1).await;
    set(run, "A", "/diff/pw", Some("p3"), -1).await;
    get(run, "A", "/diff/pw", true).await;
    set(run, "A", "/diff/pw", Some("p4"), -1).await;
    add_watch(run, "A", "/diff/pr", AddWatchMode::PersistentRecursive).await;
    create(run, "A", "/diff/pr", Some(""), PERSISTENT).await;
    create(run, "A", "/diff/pr/a", Some(""), PERSISTENT).await;
    create(run, "A", "/diff/pr/a/b", Some(""), PERSISTENT).await;
    set(run, "A", "/diff/pr/a", Some("x"), -1).await;
    delete(run, "A", "/diff/pr/a/b", -1).await;
    run.connect("W1", 1).await;
    let bad_mode = AddWatchRequest { path: "/diff/pw".to_owned(), mode: 7 };
    run.call("W1", "AddWatch /diff/pw mode 7", OpCode::AddWatch, &bad_mode).await;
}

async fn removing_watches(run: &mut Run) {
    check_watches(run, "A", "/diff/pw", WatcherType::Any).await;
    check_watches(run, "A", "/diff/pw", WatcherType::Data).await;
    check_watches(run, "A", "/diff/nosuch", WatcherType::Any).await;
    remove_watches(run, "A", "/diff/pw", WatcherType::Any).await;
    set(run, "A", "/diff/pw", Some("p5"), -1).await;
    remove_watches(run, "A", "/diff/pw", WatcherType::Any).await;
    get(run, "A", "/diff/m2", true).await;
    remove_watches(run, "A", "/diff/m2", WatcherType::Children).await;
    check_watches(run, "A", "/diff/m2", WatcherType::Data).await;
    remove_watches(run, "A", "/diff/m2", WatcherType::Data).await;
    check_watches(run, "A", "/diff/m2", WatcherType::Data).await;
    set(run, "A", "/diff/m2", Some("quiet"), -1).await;
    // ZooKeeper 3.8 has no watcher type for persistent watches (3.9 added them).
    run.connect("W2", 1).await;
    add_watch(run, "W2", "/diff/pr", AddWatchMode::PersistentRecursive).await;
    remove_watches(run, "W2", "/diff/pr", WatcherType::PersistentRecursive).await;
    remove_watches(run, "A", "/diff/pr", WatcherType::Any).await;
    create(run, "A", "/diff/pr/c", Some(""), PERSISTENT).await;
}

/// A second session's watches: each event comes before the reply of the watcher's
/// next read, which reflects the change.
async fn events_before_reads(run: &mut Run) {
    run.connect("B", 1).await;
    get(run, "B", "/diff/m2", true).await;
    set(run, "A", "/diff/m2", Some("new"), -1).await;
    get(run, "B", "/diff/m2", false).await;
    get_children(run, "B", "/diff/pw", true).await;
    delete(run, "A", "/diff/pw/kid", -1).await;
    get_children2(run, "B", "/diff/pw", false).await;
    exists(run, "B", "/diff/late", true).await;
    create(run, "A", "/diff/late", Some(""), PERSISTENT).await;
    exists(run, "B", "/diff/late", false).await;
    get(run, "B", "/diff/late", true).await;
    get_children(run, "B", "/diff/late", true).await;
    delete(run, "A", "/diff/late", -1).await;
    exists(run, "B", "/diff/late", false).await;
    run.call("B", "Close", OpCode::CloseSession, &()).await;
}

/// A session that loses its connection, misses changes, and resumes on member 2: its
/// ephemeral is still there, and setWatches with the zxid it had seen fires at once
/// for what changed while it was away.
async fn set_watches(run: &mut Run) {
    create(run, "A", "/diff/sw", Some("1"), PERSISTENT).await;
    create(run, "A", "/diff/swc", Some(""), PERSISTENT).await;
    create(run, "A", "/diff/swsame", Some(""), PERSISTENT).await;
    run.connect("F", 1).await;
    create(run, "F", "/diff/feph", Some(""), EPHEMERAL).await;
    get(run, "F", "/diff/sw", true).await;
    exists(run, "F", "/diff/sw2", true).await;
    get_children(run, "F", "/diff/swc", true).await;
    get(run, "F", "/diff/swsame", true).await;
    let seen = run.last_zxid_seen("F");
    run.disconnect("F");
    set(run, "A", "/diff/sw", Some("2"), -1).await;
    create(run, "A", "/diff/sw2", Some(""), PERSISTENT).await;
    create(run, "A", "/diff/swc/kid", Some(""), PERSISTENT).await;
    run.resume("F", 2).await;
    sync(run, "F", "/diff").await;
    let request = SetWatches {
        relative_zxid: seen,
        data_watches: vec!["/diff/sw".to_owned(), "/diff/swsame".to_owned()],
        exist_watches: vec!["/diff/sw2".to_owned(), "/diff/swmissing".to_owned()],
        child_watches: vec!["/diff/swc".to_owned()],
    };
    let what = "SetWatches (seen before the changes)";
    run.call_as("F", what, Some(xid::SET_WATCHES), OpCode::SetWatches.code(), &request).await;
    exists(run, "F", "/diff/feph", false).await;
    get_ephemerals(run, "F", "/diff").await;
    // The watches set again fire on the next change.
    set(run, "A", "/diff/swsame", Some("changed"), -1).await;
    create(run, "A", "/diff/swmissing", Some(""), PERSISTENT).await;
    sync(run, "F", "/diff").await;
    run.call("F", "Close", OpCode::CloseSession, &()).await;
    // A is on another member: it sees F's close once it has synced (in ZooKeeper too,
    // a member may answer a read before it has applied what another member answered).
    sync(run, "A", "/diff").await;
    exists(run, "A", "/diff/feph", false).await;
}

/// setWatches2 after a move to member 3, with a persistent and a persistent
/// recursive watch among the data watches.
async fn set_watches2(run: &mut Run) {
    run.connect("G", 1).await;
    add_watch(run, "G", "/diff/g", AddWatchMode::Persistent).await;
    add_watch(run, "G", "/diff/gr", AddWatchMode::PersistentRecursive).await;
    get(run, "G", "/diff/sw", true).await;
    let seen = run.last_zxid_seen("G");
    run.disconnect("G");
    set(run, "A", "/diff/sw", Some("3"), -1).await;
    create(run, "A", "/diff/g", Some(""), PERSISTENT).await;
    create(run, "A", "/diff/gr", Some(""), PERSISTENT).await;
    run.resume("G", 3).await;
    sync(run, "G", "/diff").await;
    let request = SetWatches2 {
        relative_zxid: seen,
        data_watches: vec!["/diff/sw".to_owned()],
        exist_watches: Vec::new(),
        child_watches: Vec::new(),
        persistent_watches: vec!["/diff/g".to_owned()],
        persistent_recursive_watches: vec!["/diff/gr".to_owned()],
    };
    let what = "SetWatches2 (seen before the changes)";
    run.call_as("G", what, Some(xid::SET_WATCHES), OpCode::SetWatches2.code(), &request).await;
    set(run, "A", "/diff/g", Some("g"), -1).await;
    create(run, "A", "/diff/gr/kid", Some(""), PERSISTENT).await;
    sync(run, "G", "/diff").await;
    check_watches(run, "G", "/diff/g", WatcherType::Any).await;
    run.call("G", "Close", OpCode::CloseSession, &()).await;
}

/// Input a server refuses: a frame longer than it allows, a body cut short.
async fn refused(run: &mut Run) {
    run.connect("X", 1).await;
    run.send_raw("X", "a frame of i32::MAX bytes", &i32::MAX.to_be_bytes()).await;
    run.connect("Y", 1).await;
    // A getData header (xid 1, op 4) with no body.
    let cut = [0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 4];
    run.send_raw("Y", "getData without its body", &cut).await;
}
