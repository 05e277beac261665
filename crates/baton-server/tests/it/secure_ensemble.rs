//! Access control across an ensemble: nodes protected by one user stay protected on
//! every member and across a leader failover (the ACLs and the identities travel in
//! the txns; a session re-adds its identities on the member it moves to), and a
//! quota set through one member is enforced by all.

use baton_client::{
    AclEntry, Client, ClientError, CreateMode, CreateOptions, Credential, ErrorCode, Id, Perms,
    QuotaLimits, Session, SessionOptions, acl::digest_id,
};
use baton_testkit::wait_until_async;

use crate::support::{DEADLINE, code_of};

const PASSWORD: &str = "ens-alice-pw";

struct Members {
    members: baton_testkit::Ensemble,
    _dir: tempfile::TempDir,
}

impl Members {
    fn start(extra: &[&str]) -> Members {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut args = vec!["--tick-ms", "100"];
        args.extend_from_slice(extra);
        let members = baton_testkit::Ensemble::start(dir.path(), 3, &args).expect("members start");
        Members { members, _dir: dir }
    }

    async fn client(&self, id: u32, credentials: Vec<Credential>) -> Client {
        let client = Client::connect(&[self.members.member(id).endpoint()]).await.unwrap();
        client.set_credentials(credentials);
        client
    }
}

fn alice() -> Credential {
    Credential::digest("alice", PASSWORD)
}

/// Retries a write refused only because the ensemble is between leaders.
async fn eventually<T>(
    mut call: impl AsyncFnMut() -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match call().await {
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acls_and_quotas_hold_on_every_member_and_across_failover() {
    let mut ensemble = Members::start(&[]);
    let leader = ensemble.members.wait_settled(DEADLINE).await.expect("a leader");
    let endpoints = ensemble.members.endpoints();

    // alice protects a subtree through a session on the first member.
    let options = SessionOptions { credentials: vec![alice()], ..SessionOptions::default() };
    let session = Session::connect(&endpoints, options).await.unwrap();
    let mine = vec![
        AclEntry { perms: Perms::ALL, id: Id::new("digest", digest_id("alice", PASSWORD)) },
        AclEntry::new(Perms::READ, "world", "anyone"),
    ];
    let protected = CreateOptions { acl: mine.clone(), ..CreateOptions::default() };
    session.create_with("/vault", "v0", protected.clone()).await.unwrap();
    session.create_with("/vault/a", "", protected.clone()).await.unwrap();
    let quota = QuotaLimits { count_hard: Some(4), ..QuotaLimits::default() };
    ensemble.client(1, vec![alice()]).await.set_quota("/vault", &quota).await.unwrap();

    // On every member: anyone reads, bob and anonymous writes are refused, alice's
    // go through, and the quota refuses the fifth node whichever member takes it.
    for id in ensemble.members.ids() {
        let anonymous = ensemble.client(id, vec![]).await;
        let bob = ensemble.client(id, vec![Credential::digest("bob", "pw")]).await;
        let alice = ensemble.client(id, vec![alice()]).await;
        anonymous.sync("/vault").await.unwrap();
        assert_eq!(&anonymous.get("/vault").await.unwrap().0[..], b"v0");
        assert_eq!(code_of(anonymous.set("/vault", "x", -1).await), ErrorCode::NoAuth);
        assert_eq!(
            code_of(bob.create("/vault/bob", "", CreateMode::Persistent).await),
            ErrorCode::NoAuth
        );
        alice.set("/vault/a", format!("from {id}"), -1).await.unwrap();
    }
    let alice1 = ensemble.client(1, vec![alice()]).await;
    alice1.create_with("/vault/b", "", protected.clone()).await.unwrap();
    alice1.create_with("/vault/c", "", protected.clone()).await.unwrap();
    for id in ensemble.members.ids() {
        let alice = ensemble.client(id, vec![alice()]).await;
        let refused = alice.create_with(&format!("/vault/d{id}"), "", protected.clone()).await;
        assert_eq!(code_of(refused), ErrorCode::QuotaExceeded, "member {id}");
    }

    // The leader dies; the session moves and keeps alice's identity.
    ensemble.members.kill(leader);
    let new_leader = ensemble.members.wait_settled(DEADLINE).await.expect("a new leader");
    assert_ne!(new_leader, leader);
    eventually(async || session.set("/vault", "after failover", -1).await).await.unwrap();
    let ids = session.who_am_i().await.unwrap();
    assert!(ids.contains(&Id::new("digest", "alice")), "{ids:?}");
    for id in ensemble.members.ids().into_iter().filter(|id| *id != leader) {
        let bob = ensemble.client(id, vec![Credential::digest("bob", "pw")]).await;
        assert_eq!(code_of(bob.set("/vault", "bob", -1).await), ErrorCode::NoAuth);
        let anonymous = ensemble.client(id, vec![]).await;
        let converged = wait_until_async(std::time::Instant::now() + DEADLINE, || async {
            anonymous.get("/vault").await.is_ok_and(|(data, _)| &data[..] == b"after failover")
        })
        .await;
        assert!(converged, "member {id} has alice's write");
    }
    session.close().await.unwrap();
}
