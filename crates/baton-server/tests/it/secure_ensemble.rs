//! Access control across an ensemble with TLS on all three ports and mutual TLS
//! between members: nodes protected by one user (by digest and by client
//! certificate) stay protected on every member and across a leader failover (the
//! ACLs and the identities travel in the txns; a session re-adds its identities on
//! the member it moves to), and a quota set through one member is enforced by all.

use baton_client::{
    AclEntry, Client, ClientError, ClientTls, ConnectOptions, CreateMode, CreateOptions,
    Credential, ErrorCode, Id, Perms, QuotaLimits, Session, SessionOptions, acl::digest_id,
};
use baton_testkit::wait_until_async;

use crate::{
    support::{DEADLINE, code_of},
    tls::TlsEnsemble,
};

const PASSWORD: &str = "ens-alice-pw";

/// A client of member `id` presenting `tls`'s certificate, with `credentials`.
async fn client(e: &TlsEnsemble, id: u32, tls: &ClientTls, credentials: Vec<Credential>) -> Client {
    let endpoints = [e.members.member(id).endpoint()];
    let options = ConnectOptions { tls: Some(tls.clone()) };
    let client = Client::connect_with(&endpoints, options).await.expect("a TLS client");
    client.set_credentials(credentials);
    client
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
    let mut e = TlsEnsemble::start(3, &[]);
    let leader = e.members.wait_settled(DEADLINE).await.expect("a leader over mutual TLS");
    let endpoints = e.members.endpoints();
    // Every client presents a certificate (the ports require one): alice's, or bob's.
    let alice_tls = e.client.clone();
    let bob_cert = e.pki.ca.client("bob", "bob").expect("bob's certificate");
    let bob_tls = e.pki.client(Some(&bob_cert));

    // alice protects a subtree through a session, by digest; and a node by her
    // certificate's subject.
    let options = SessionOptions {
        credentials: vec![alice()],
        tls: Some(alice_tls.clone()),
        ..SessionOptions::default()
    };
    let session = Session::connect(&endpoints, options).await.unwrap();
    let mine = vec![
        AclEntry { perms: Perms::ALL, id: Id::new("digest", digest_id("alice", PASSWORD)) },
        AclEntry::new(Perms::READ, "world", "anyone"),
    ];
    let protected = CreateOptions { acl: mine.clone(), ..CreateOptions::default() };
    session.create_with("/vault", "v0", protected.clone()).await.unwrap();
    session.create_with("/vault/a", "", protected.clone()).await.unwrap();
    let ids = session.who_am_i().await.unwrap();
    let subject = ids.iter().find(|id| id.scheme == "x509").expect("an x509 identity").clone();
    let by_cert = vec![AclEntry { perms: Perms::ALL, id: subject }];
    let cert_only = CreateOptions { acl: by_cert, ..CreateOptions::default() };
    session.create_with("/by-cert", "c0", cert_only).await.unwrap();
    let quota = QuotaLimits { count_hard: Some(4), ..QuotaLimits::default() };
    client(&e, 1, &alice_tls, vec![alice()]).await.set_quota("/vault", &quota).await.unwrap();

    // On every member: anyone reads, bob's and anonymous writes are refused, alice's
    // go through; the certificate ACL admits alice's certificate and not bob's.
    for id in e.members.ids() {
        let anonymous = client(&e, id, &bob_tls, vec![]).await;
        let bob = client(&e, id, &bob_tls, vec![Credential::digest("bob", "pw")]).await;
        let alice = client(&e, id, &alice_tls, vec![alice()]).await;
        anonymous.sync("/vault").await.unwrap();
        assert_eq!(&anonymous.get("/vault").await.unwrap().0[..], b"v0");
        assert_eq!(code_of(anonymous.set("/vault", "x", -1).await), ErrorCode::NoAuth);
        let refused = bob.create("/vault/bob", "", CreateMode::Persistent).await;
        assert_eq!(code_of(refused), ErrorCode::NoAuth);
        alice.set("/vault/a", format!("from {id}"), -1).await.unwrap();
        assert_eq!(code_of(bob.get("/by-cert").await), ErrorCode::NoAuth);
        let cert_alone = client(&e, id, &alice_tls, vec![]).await;
        cert_alone.set("/by-cert", format!("cert via {id}"), -1).await.unwrap();
    }
    // The quota refuses the fifth node whichever member takes it.
    let alice1 = client(&e, 1, &alice_tls, vec![alice()]).await;
    alice1.create_with("/vault/b", "", protected.clone()).await.unwrap();
    alice1.create_with("/vault/c", "", protected.clone()).await.unwrap();
    for id in e.members.ids() {
        let alice = client(&e, id, &alice_tls, vec![alice()]).await;
        let refused = alice.create_with(&format!("/vault/d{id}"), "", protected.clone()).await;
        assert_eq!(code_of(refused), ErrorCode::QuotaExceeded, "member {id}");
    }

    // The leader dies; the session moves and keeps alice's identities.
    e.members.kill(leader);
    let new_leader = e.members.wait_settled(DEADLINE).await.expect("a new leader");
    assert_ne!(new_leader, leader);
    eventually(async || session.set("/vault", "after failover", -1).await)
        .await
        .unwrap_or_else(|e| panic!("alice's write after the failover: {e:?}"));
    let ids = session.who_am_i().await.unwrap();
    assert!(ids.contains(&Id::new("digest", "alice")), "{ids:?}");
    for id in e.members.ids().into_iter().filter(|id| *id != leader) {
        let bob = client(&e, id, &bob_tls, vec![Credential::digest("bob", "pw")]).await;
        assert_eq!(code_of(bob.set("/vault", "bob", -1).await), ErrorCode::NoAuth);
        let anonymous = client(&e, id, &bob_tls, vec![]).await;
        let converged = wait_until_async(std::time::Instant::now() + DEADLINE, || async {
            anonymous.get("/vault").await.is_ok_and(|(data, _)| &data[..] == b"after failover")
        })
        .await;
        assert!(converged, "member {id} has alice's write");
    }
    session.close().await.unwrap();
}
