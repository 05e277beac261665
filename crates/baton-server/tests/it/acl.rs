//! Access control end to end: every operation against the permission it needs,
//! authentication of calls and sessions, masking, the super user, quotas, and no
//! secret in the server's log.

use baton_client::{
    Acl, AclEntry, CheckOp, Client, CreateMode, CreateOptions, Credential, ErrorCode, Id, MultiOp,
    Perms, QuotaLimits, Session, SessionOptions,
    acl::{digest_id, parse_acl},
};

use crate::support::{TestServer, code_of, connect};

const ALICE_PASSWORD: &str = "alice-secret-7f3a";

fn alice() -> Credential {
    Credential::digest("alice", ALICE_PASSWORD)
}

fn alice_id() -> Id {
    Id::new("digest", digest_id("alice", ALICE_PASSWORD))
}

/// Everything for alice but `missing`, and nothing for anyone else.
fn all_but(missing: Perms) -> Acl {
    let perms = Perms::from_bits(Perms::ALL.bits() & !missing.bits()).unwrap();
    vec![AclEntry { perms, id: alice_id() }]
}

async fn as_alice(server: &TestServer) -> Client {
    let client = connect(&server.process).await;
    client.set_credentials(vec![alice()]);
    client
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
type Call = for<'a> fn(&'a Client, &'a str) -> BoxFuture<'a, Result<(), baton_client::ClientError>>;

/// Each operation, refused when the one permission it needs is missing (NO_AUTH,
/// nothing changes: the tree digest stays), allowed when it is granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_needs_its_permission() {
    let server = TestServer::start(&[]).await;
    let alice = as_alice(&server).await;
    let cases: Vec<(&str, Perms, Call)> = vec![
        ("create", Perms::CREATE, |c, t| {
            Box::pin(async move {
                c.create(&format!("{t}/new"), "", CreateMode::Persistent).await.map(drop)
            })
        }),
        ("create in multi", Perms::CREATE, |c, t| {
            Box::pin(async move {
                let op = baton_client::CreateOp {
                    path: format!("{t}/new"),
                    data: Default::default(),
                    mode: CreateMode::Persistent,
                    ttl_ms: 0,
                    acl: baton_client::acl::open_acl(),
                };
                c.multi(vec![MultiOp::Create(op)]).await.map(drop)
            })
        }),
        ("delete", Perms::DELETE, |c, t| {
            Box::pin(async move { c.delete(&format!("{t}/child"), -1).await })
        }),
        ("set", Perms::WRITE, |c, t| Box::pin(async move { c.set(t, "x", -1).await.map(drop) })),
        ("get", Perms::READ, |c, t| Box::pin(async move { c.get(t).await.map(drop) })),
        ("exists", Perms::READ, |c, t| Box::pin(async move { c.exists(t).await.map(drop) })),
        ("children", Perms::READ, |c, t| Box::pin(async move { c.children(t).await.map(drop) })),
        ("multi check", Perms::READ, |c, t| {
            Box::pin(async move {
                c.multi(vec![MultiOp::Check(CheckOp { path: t.into(), version: -1 })])
                    .await
                    .map(drop)
            })
        }),
        ("set_acl", Perms::ADMIN, |c, t| {
            Box::pin(async move { c.set_acl(t, &all_but(Perms::NONE), -1).await.map(drop) })
        }),
        ("set_quota", Perms::ADMIN, |c, t| {
            let limits = QuotaLimits { count_hard: Some(100), ..QuotaLimits::default() };
            Box::pin(async move { c.set_quota(t, &limits).await })
        }),
    ];
    for (i, (name, perm, op)) in cases.into_iter().enumerate() {
        // A fresh node with a child, with every permission but `perm` for alice.
        let t = format!("/t{i}");
        server.client.create(&t, "", CreateMode::Persistent).await.unwrap();
        server.client.create(&format!("{t}/child"), "", CreateMode::Persistent).await.unwrap();
        server.client.set_acl(&t, &all_but(perm), -1).await.unwrap();
        let before = server.digest().await;
        assert_eq!(code_of(op(&alice, &t).await), ErrorCode::NoAuth, "{name} without {perm}");
        assert_eq!(code_of(op(&server.client, &t).await), ErrorCode::NoAuth, "{name} anonymous");
        assert_eq!(server.digest().await, before, "{name} refused changed nothing");
        // Only what was missing is granted now: the same call goes through.
        let only = vec![AclEntry { perms: perm, id: alice_id() }];
        if perm == Perms::ADMIN {
            // alice cannot give herself ADMIN; a fresh node whose ACL grants it does.
            let t2 = format!("{t}-admin");
            let options = CreateOptions { acl: only.clone(), ..CreateOptions::default() };
            server.client.create_with(&t2, "", options).await.unwrap();
            op(&alice, &t2).await.unwrap_or_else(|e| panic!("{name} with {perm}: {e}"));
            continue;
        }
        alice.set_acl(&t, &only, -1).await.unwrap();
        op(&alice, &t).await.unwrap_or_else(|e| panic!("{name} with only {perm}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_acls_and_the_super_user() {
    let super_digest = digest_id("root", "root-pw-1");
    let server = TestServer::start(&["--super-digest", &super_digest]).await;
    let anonymous = &server.client;
    let alice = as_alice(&server).await;
    let bob = connect(&server.process).await;
    bob.set_credentials(vec![Credential::digest("bob", "bob-pw")]);

    // `auth::` stands for the caller's identities; world may read.
    let acl = parse_acl("auth::cdrwa,world:anyone:r").unwrap();
    let options = CreateOptions { acl, ..CreateOptions::default() };
    alice.create_with("/secret", "s", options).await.unwrap();
    let (acl, _) = alice.get_acl("/secret").await.unwrap();
    assert_eq!(acl[0], AclEntry { perms: Perms::ALL, id: alice_id() });

    // Reading is open, writing is alice's; bob and anonymous callers are refused.
    assert_eq!(&anonymous.get("/secret").await.unwrap().0[..], b"s");
    assert_eq!(code_of(anonymous.set("/secret", "x", -1).await), ErrorCode::NoAuth);
    assert_eq!(code_of(bob.set("/secret", "x", -1).await), ErrorCode::NoAuth);
    alice.set("/secret", "a", -1).await.unwrap();

    // Without ADMIN, the digest is masked; with it, it is shown.
    let (masked, _) = bob.get_acl("/secret").await.unwrap();
    assert_eq!(masked[0].id, Id::new("digest", "alice:x"));

    // whoami: the address, and a digest by its user only.
    let ids = alice.who_am_i().await.unwrap();
    assert!(ids.contains(&Id::new("ip", "127.0.0.1")), "{ids:?}");
    assert!(ids.contains(&Id::new("digest", "alice")), "{ids:?}");

    // Wrong credentials: AUTH_FAILED, never the password in the message.
    let wrong_super = connect(&server.process).await;
    wrong_super.set_credentials(vec![Credential::digest("root", "guess")]);
    let error = wrong_super.get("/secret").await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuthFailed);
    assert!(!error.to_string().contains("guess"), "{error}");
    let unknown = connect(&server.process).await;
    unknown.set_credentials(vec![Credential { scheme: "kerberos".into(), secret: b"t".to_vec() }]);
    assert_eq!(code_of(unknown.get("/secret").await), ErrorCode::AuthFailed);

    // Malformed ACLs are INVALID_ACL and change nothing.
    for bad in ["foo:bar:r", "digest:nocolon:r", "ip:999.1.1.1:r", "world:someone:r"] {
        let acl = parse_acl(bad).unwrap();
        assert_eq!(
            code_of(alice.set_acl("/secret", &acl, -1).await),
            ErrorCode::InvalidAcl,
            "{bad}"
        );
    }
    let open = baton_client::acl::open_acl();
    assert_eq!(code_of(anonymous.set_acl("/secret", &open, -1).await), ErrorCode::NoAuth);
    // An empty ACL is invalid before any permission is looked at (ZooKeeper's order).
    assert_eq!(code_of(anonymous.set_acl("/secret", &Acl::new(), -1).await), ErrorCode::InvalidAcl);
    // An empty ACL is invalid before any permission is looked at (ZooKeeper's order).
    assert_eq!(code_of(anonymous.set_acl("/secret", &Acl::new(), -1).await), ErrorCode::InvalidAcl);
    let auth_without_identity = parse_acl("auth::r").unwrap();
    let options = CreateOptions { acl: auth_without_identity, ..CreateOptions::default() };
    assert_eq!(code_of(anonymous.create_with("/x", "", options).await), ErrorCode::InvalidAcl);

    // An ACL that locks everyone out is allowed; the super user still gets in.
    let nobody =
        vec![AclEntry { perms: Perms::ALL, id: Id::new("digest", digest_id("ghost", "?")) }];
    alice.set_acl("/secret", &nobody, -1).await.unwrap();
    assert_eq!(code_of(alice.get("/secret").await), ErrorCode::NoAuth);
    let root = connect(&server.process).await;
    root.set_credentials(vec![Credential::digest("root", "root-pw-1")]);
    assert_eq!(&root.get("/secret").await.unwrap().0[..], b"a");
    root.set_acl("/secret", &baton_client::acl::open_acl(), -1).await.unwrap();
    anonymous.set("/secret", "open again", -1).await.unwrap();

    // Conditional setAcl on the ACL version.
    let (_, stat) = anonymous.get_acl("/secret").await.unwrap();
    assert_eq!(
        code_of(anonymous.set_acl("/secret", &nobody, stat.aversion + 1).await),
        ErrorCode::BadVersion
    );
    let after =
        anonymous.set_acl("/secret", &baton_client::acl::open_acl(), stat.aversion).await.unwrap();
    assert_eq!(after.aversion, stat.aversion + 1);

    // No secret reached the log, whatever the outcome of the attempts.
    let log = server.process.log();
    for secret in [ALICE_PASSWORD, "root-pw-1", "guess", "bob-pw", &alice_id().id, &super_digest] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_add_identities_and_keep_them_in_order() {
    let server = TestServer::start(&[]).await;
    let endpoints = [server.process.endpoint()];
    let session = Session::connect(&endpoints, SessionOptions::default()).await.unwrap();
    let acl = vec![AclEntry { perms: Perms::ALL, id: alice_id() }];
    server
        .client
        .create_with("/s", "", CreateOptions { acl, ..CreateOptions::default() })
        .await
        .unwrap();
    assert_eq!(code_of(session.get("/s").await), ErrorCode::NoAuth);

    // Wrong credentials add nothing.
    let error = session.add_auth(Credential { scheme: "nope".into(), secret: b"x".to_vec() }).await;
    assert_eq!(code_of(error), ErrorCode::AuthFailed);
    assert_eq!(code_of(session.get("/s").await), ErrorCode::NoAuth);

    session.add_auth(alice()).await.unwrap();
    session.get("/s").await.unwrap();
    let ids = session.who_am_i().await.unwrap();
    assert!(ids.contains(&Id::new("digest", "alice")), "{ids:?}");
    // Writes and ephemerals under the new identity.
    session.create("/s/e", "", CreateMode::Ephemeral).await.unwrap();
    session.close().await.unwrap();

    // Credentials in the Connect: right ones open, wrong ones refuse the session.
    let options = SessionOptions { credentials: vec![alice()], ..SessionOptions::default() };
    let session = Session::connect(&endpoints, options).await.unwrap();
    session.get("/s").await.unwrap();
    session.close().await.unwrap();
    let wrong = Credential { scheme: "x509".into(), secret: b"CN=me".to_vec() };
    let options = SessionOptions { credentials: vec![wrong], ..SessionOptions::default() };
    assert_eq!(code_of(Session::connect(&endpoints, options).await), ErrorCode::AuthFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_file_admits_only_its_users() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("{}\n", digest_id("alice", ALICE_PASSWORD))).unwrap();
    let server = TestServer::start(&["--digest-users", users.to_str().unwrap()]).await;
    let alice = as_alice(&server).await;
    alice.exists("/").await.unwrap();
    let mallory = connect(&server.process).await;
    mallory.set_credentials(vec![Credential::digest("alice", "not-it")]);
    assert_eq!(code_of(mallory.exists("/").await), ErrorCode::AuthFailed);
    mallory.set_credentials(vec![Credential::digest("mallory", "pw")]);
    assert_eq!(code_of(mallory.exists("/").await), ErrorCode::AuthFailed);
    assert!(server.metric("baton_auth_failures_total").await >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_hard_and_soft() {
    let server = TestServer::start(&[]).await;
    let c = &server.client;
    c.create("/q", "", CreateMode::Persistent).await.unwrap();
    let hard = QuotaLimits { count_hard: Some(3), bytes_hard: Some(10), ..QuotaLimits::default() };
    c.set_quota("/q", &hard).await.unwrap();
    c.create("/q/a", "12345", CreateMode::Persistent).await.unwrap();
    c.create("/q/b", "", CreateMode::Persistent).await.unwrap();
    let before = server.digest().await;
    // A fourth node (/q counts) and more than 10 bytes are refused; nothing changes.
    assert_eq!(
        code_of(c.create("/q/c", "", CreateMode::Persistent).await),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(code_of(c.set("/q/b", "123456", -1).await), ErrorCode::QuotaExceeded);
    assert_eq!(server.digest().await, before);
    let (limits, usage) = c.get_quota("/q").await.unwrap();
    assert_eq!(limits, hard);
    assert_eq!((usage.count, usage.bytes), (3, 5));

    // Soft limits warn (metric) and let the write through.
    let soft = QuotaLimits { count_soft: Some(1), ..QuotaLimits::default() };
    c.set_quota("/q", &soft).await.unwrap();
    c.create("/q/c", "", CreateMode::Persistent).await.unwrap();
    assert!(server.metric("baton_quota_soft_exceeded_total").await >= 1);

    c.remove_quota("/q").await.unwrap();
    assert_eq!(code_of(c.get_quota("/q").await), ErrorCode::NoNode);
    for i in 0..5 {
        c.create(&format!("/q/n{i}"), "0123456789", CreateMode::Persistent).await.unwrap();
    }
}

/// A persistent-recursive watch reports only what its session may read: the creation
/// and changes of a node alice keeps to herself never reach an anonymous watcher, a
/// public sibling's do, and once the watcher authenticates as alice hers do too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_watches_report_only_readable_nodes() {
    let server = TestServer::start(&[]).await;
    let endpoints = [server.process.endpoint()];
    let watcher = Session::connect(&endpoints, SessionOptions::default()).await.unwrap();
    let mut watch = watcher.add_watch("/w", true).await.unwrap();
    let owner = as_alice(&server).await;
    let hers = vec![AclEntry { perms: Perms::ALL, id: alice_id() }];
    let private = CreateOptions { acl: hers, ..CreateOptions::default() };
    owner.create("/w", "", CreateMode::Persistent).await.unwrap();
    owner.create_with("/w/private", "", private.clone()).await.unwrap();
    owner.set("/w/private", "x", -1).await.unwrap();
    owner.create("/w/public", "", CreateMode::Persistent).await.unwrap();
    let mut seen = Vec::new();
    while seen.last().is_none_or(|(_, path): &(_, String)| path != "/w/public") {
        let event = watch.recv().await.expect("the watch is open").unwrap();
        seen.push((event.kind, event.path));
    }
    use baton_client::ChangeKind::NodeCreated;
    assert_eq!(seen, vec![(NodeCreated, "/w".into()), (NodeCreated, "/w/public".into())]);

    watcher.add_auth(alice()).await.unwrap();
    owner.set("/w/private", "y", -1).await.unwrap();
    let event = watch.recv().await.expect("the watch is open").unwrap();
    assert_eq!(event.path, "/w/private");
    watcher.close().await.unwrap();
}
