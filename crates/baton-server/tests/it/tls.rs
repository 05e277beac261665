//! TLS on real servers: the client and admin ports (client certificates required,
//! optional, refused), certificates rotated on disk and by SIGHUP without a restart,
//! an ensemble with TLS on every port and mutual TLS between members (election,
//! replication, failover), rogue peers refused, and a member whose certificate cannot
//! serve refused by the others.

use std::{path::Path, time::Instant};

use baton_client::{
    Client, ClientError, ClientTls, ConnectOptions, CreateMode, Session, SessionOptions,
};
use baton_testkit::{
    AdminTls, CertFiles, EnsembleSpec, Launch, ServerProcess, Status, TestPki, client_config,
    http_get, http_get_with, served_certificate, tls_connect, wait_until_async,
};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::DEADLINE;

/// The test PKI: the CA every server trusts and a stranger CA nobody trusts, with
/// the certificates the tests present.
pub struct Pki {
    pub ca: TestPki,
    pub stranger: TestPki,
    /// Servers and members (both usages, SANs 127.0.0.1 and localhost).
    pub server: CertFiles,
    /// A client, `CN=alice,O=Baton tests`.
    pub alice: CertFiles,
    pub expired: CertFiles,
    pub client_only: CertFiles,
    /// Issued by the stranger CA: a client's and a member's.
    pub stranger_client: CertFiles,
    pub stranger_member: CertFiles,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let ca = TestPki::new(dir, "baton").expect("a CA");
        let stranger = TestPki::new(dir, "stranger").expect("another CA");
        Pki {
            server: ca.server("server", "baton-server").expect("a server certificate"),
            alice: ca.client("alice", "alice").expect("a client certificate"),
            expired: ca.expired("expired", "old").expect("an expired certificate"),
            client_only: ca.client_only_member("client-only").expect("a client-only certificate"),
            stranger_client: stranger.client("mallory", "mallory").expect("a stranger's client"),
            stranger_member: stranger.server("rogue", "rogue").expect("a stranger's member"),
            ca,
            stranger,
        }
    }

    /// The client options of a client presenting `cert` (or none), trusting our CA.
    pub fn client(&self, cert: Option<&CertFiles>) -> ClientTls {
        ClientTls {
            ca: Some(self.ca.ca().to_path_buf()),
            cert: cert.map(|c| c.cert.clone()),
            key: cert.map(|c| c.key.clone()),
        }
    }

    pub fn admin(&self) -> AdminTls {
        self.ca.admin_client(&self.alice)
    }
}

async fn connect_tls(endpoints: &[String], tls: ClientTls) -> Result<Client, ClientError> {
    Client::connect_with(endpoints, ConnectOptions { tls: Some(tls) }).await
}

/// Connects and reads: with TLS 1.3 a client's handshake completes before the server
/// has checked the client's certificate, so a refusal may show on the first call.
async fn connect_and_read(endpoint: &str, tls: ClientTls) -> Result<(), ClientError> {
    let client = connect_tls(&[endpoint.to_owned()], tls).await?;
    client.exists("/").await.map(|_| ())
}

fn metric_in(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
}

async fn tls_metric(process: &ServerProcess, admin: &AdminTls, name: &str) -> u64 {
    let (code, body) = http_get_with(process.admin_addr(), "/metrics", Some(admin))
        .await
        .expect("GET /metrics over HTTPS");
    assert_eq!(code, 200, "{body}");
    metric_in(&body, name)
}

fn flags(pairs: &[(&str, &Path)]) -> Vec<String> {
    pairs.iter().flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()]).collect()
}

/// A standalone server with TLS on its client port (`--client-auth auth`) and its
/// admin port (client certificates required there).
fn tls_server(dir: &Path, pki: &Pki, auth: &str) -> ServerProcess {
    let mut args = flags(&[
        ("--tls-cert", &pki.server.cert),
        ("--tls-key", &pki.server.key),
        ("--tls-ca", pki.ca.ca()),
        ("--admin-tls-cert", &pki.server.cert),
        ("--admin-tls-key", &pki.server.key),
        ("--admin-tls-ca", pki.ca.ca()),
    ]);
    args.extend(["--client-auth".to_owned(), auth.to_owned()]);
    let mut launch = Launch::new(&dir.join("data"));
    launch.args = args;
    launch.admin_tls = Some(pki.admin());
    ServerProcess::launch(launch).expect("a TLS server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_checked_and_refusals_logged_sparingly() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = Pki::new(&dir.path().join("pki"));
    let mut server = tls_server(dir.path(), &pki, "required");
    let endpoint = server.endpoint();

    // A TLS client with a certificate: unary calls and a session (`https://` too).
    let client =
        connect_tls(std::slice::from_ref(&endpoint), pki.client(Some(&pki.alice))).await.unwrap();
    client.create("/tls", "on", CreateMode::Persistent).await.expect("a write over TLS");
    let options = SessionOptions { tls: Some(pki.client(Some(&pki.alice))), ..Default::default() };
    let session = Session::connect(&[format!("https://{endpoint}")], options).await.unwrap();
    assert_eq!(session.get("/tls").await.expect("a session read over TLS").0, "on".as_bytes());

    // Plain text to the TLS port fails as a lost connection naming the endpoint.
    let plain =
        async { Client::connect(std::slice::from_ref(&endpoint)).await?.exists("/").await }.await;
    match plain {
        Err(error @ ClientError::ConnectionLoss { .. }) => {
            assert!(error.to_string().contains(&endpoint), "{error}");
        }
        other => panic!("plain text to a TLS port: {other:?}"),
    }
    // No certificate, one from another CA, an expired one: refused.
    for (what, cert) in [
        ("no certificate", None),
        ("another CA's certificate", Some(&pki.stranger_client)),
        ("an expired certificate", Some(&pki.expired)),
    ] {
        let refused = connect_and_read(&endpoint, pki.client(cert)).await;
        assert!(matches!(refused, Err(ClientError::ConnectionLoss { .. })), "{what}: {refused:?}");
    }
    // A client that does not trust the server's CA says why, naming the endpoint.
    let untrusting = ClientTls { ca: Some(pki.stranger.ca().to_path_buf()), ..pki.client(None) };
    let error = connect_tls(std::slice::from_ref(&endpoint), untrusting).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&endpoint) && text.contains("UnknownIssuer"), "{text}");

    // The admin port: HTTPS with a client certificate only.
    let admin = server.admin_addr();
    assert!(
        http_get(admin, "/health").await.is_err_or_not_ok(),
        "plain HTTP to the TLS admin port"
    );
    let no_cert = AdminTls { ca: pki.ca.ca().to_path_buf(), client: None };
    assert!(http_get_with(admin, "/health", Some(&no_cert)).await.is_err_or_not_ok());
    let ready = http_get_with(admin, "/ready", Some(&pki.admin())).await.expect("GET /ready");
    assert_eq!(ready, (200, "ready\n".to_owned()), "readiness for HTTPS probes");
    let failures = tls_metric(&server, &pki.admin(), "baton_tls_handshake_failures_total").await;
    assert!(failures >= 6, "six refused handshakes, {failures} counted");
    // Refusals from one address are logged once a minute, not once each.
    let log = server.log();
    let logged = log.lines().filter(|l| l.contains("TLS handshake refused")).count();
    assert_eq!(logged, 2, "one line per port for 127.0.0.1:\n{log}");
    assert!(log.contains("remote=127.0.0.1:"), "the remote address is named:\n{log}");

    // The server kept serving throughout.
    assert!(server.running());
    client.exists("/tls").await.expect("still serving");
}

/// What a plain `http_get` to a TLS port gives: an error or a non-200 answer.
trait RefusedAnswer {
    fn is_err_or_not_ok(&self) -> bool;
}

impl RefusedAnswer for std::io::Result<(u16, String)> {
    fn is_err_or_not_ok(&self) -> bool {
        !matches!(self, Ok((200, _)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates_let_clients_without_one_in() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = Pki::new(&dir.path().join("pki"));
    let server = tls_server(dir.path(), &pki, "optional");
    let endpoint = server.endpoint();
    connect_and_read(&endpoint, pki.client(None)).await.expect("no certificate is fine");
    connect_and_read(&endpoint, pki.client(Some(&pki.alice))).await.expect("one of ours too");
    let refused = connect_and_read(&endpoint, pki.client(Some(&pki.stranger_client))).await;
    assert!(matches!(refused, Err(ClientError::ConnectionLoss { .. })), "{refused:?}");
}

fn der_of(file: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(file).expect("a PEM certificate").as_ref().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_on_disk_and_on_sighup_without_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = Pki::new(&dir.path().join("pki"));
    // The server's own copies of its certificate and key, rewritten below.
    let mut server = tls_server(dir.path(), &pki, "required");
    let endpoint = server.endpoint();
    let old =
        connect_tls(std::slice::from_ref(&endpoint), pki.client(Some(&pki.alice))).await.unwrap();
    old.create("/before", "", CreateMode::Persistent).await.unwrap();
    let probe = || client_config(pki.ca.ca(), Some(&pki.alice), b"h2").expect("a client config");
    let client_addr = server.client_addr();
    let served = || async { served_certificate(client_addr, probe()).await.ok() };
    assert_eq!(served().await, Some(der_of(&pki.server.cert)));
    let admin = pki.admin();
    let errors_before = tls_metric(&server, &admin, "baton_tls_reload_errors_total").await;

    // 1. A new certificate and key on disk (different key, serial and CN).
    let rotated = pki.ca.server("server", "rotated-1").expect("a new certificate");
    let new_der = der_of(&rotated.cert);
    let deadline = Instant::now() + DEADLINE;
    let seen = wait_until_async(deadline, || async { served().await == Some(new_der.clone()) });
    assert!(seen.await, "the new certificate is served to new connections");
    old.exists("/before").await.expect("an established connection goes on");
    assert!(tls_metric(&server, &admin, "baton_tls_reloads_total").await >= 1);

    // 2. A broken key: the reload fails, the material in use stays, the file is named.
    let errors = tls_metric(&server, &admin, "baton_tls_reload_errors_total").await;
    std::fs::write(&rotated.key, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleQ==\n").unwrap();
    let deadline = Instant::now() + DEADLINE;
    let failed = wait_until_async(deadline, || async {
        tls_metric(&server, &admin, "baton_tls_reload_errors_total").await > errors
    });
    assert!(failed.await, "the failed reload is counted");
    assert!(errors >= errors_before);
    assert_eq!(served().await, Some(new_der.clone()), "the material in use stays");
    let log = server.log();
    assert!(log.contains("TLS reload failed") && log.contains(&rotated.key.display().to_string()));
    assert!(!log.contains("c2VjcmV0IGtleQ"), "the key's bytes are never logged");

    // 3. SIGHUP reloads even when no file changed (here: and fails again, counted).
    let errors = tls_metric(&server, &admin, "baton_tls_reload_errors_total").await;
    server.hangup().expect("SIGHUP");
    let deadline = Instant::now() + DEADLINE;
    let retried = wait_until_async(deadline, || async {
        tls_metric(&server, &admin, "baton_tls_reload_errors_total").await > errors
    });
    assert!(retried.await, "SIGHUP reloads");
    assert!(server.running(), "SIGHUP does not stop the server");

    // 4. A good pair again: served from the next handshake on.
    let again = pki.ca.server("server", "rotated-2").expect("another certificate");
    let again_der = der_of(&again.cert);
    let deadline = Instant::now() + DEADLINE;
    let seen = wait_until_async(deadline, || async { served().await == Some(again_der.clone()) });
    assert!(seen.await, "the second rotation is served");
    old.exists("/before").await.expect("the first connection still goes on");
    connect_and_read(&endpoint, pki.client(Some(&pki.alice))).await.expect("new clients too");
}

/// An ensemble with TLS on every port of every member (client certificates required,
/// mutual TLS between members, HTTPS admin ports), 100 ms ticks; and the options of a
/// client (alice) that it accepts. For tests of TLS and of what builds on it (ACLs).
pub struct TlsEnsemble {
    pub members: baton_testkit::Ensemble,
    pub pki: Pki,
    pub client: ClientTls,
    // Dropped last: the members must be gone before their directories.
    _dir: tempfile::TempDir,
}

impl TlsEnsemble {
    pub fn start(size: u32, extra: &[&str]) -> TlsEnsemble {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pki = Pki::new(&dir.path().join("pki"));
        let mut spec = EnsembleSpec::new(&dir.path().join("members"), size)
            .expect("ports")
            .args(&["--tick-ms", "100"])
            .args(extra);
        let flags = pki.ca.server_flags(&pki.server);
        spec.args.extend(flags);
        spec.admin_tls = Some(pki.admin());
        let members = spec.start().expect("the members start");
        let client = pki.client(Some(&pki.alice));
        TlsEnsemble { members, pki, client, _dir: dir }
    }

    pub async fn client(&self) -> Client {
        connect_tls(&self.members.endpoints(), self.client.clone()).await.expect("a TLS client")
    }

    pub async fn client_of(&self, id: u32) -> Client {
        let endpoint = self.members.member(id).endpoint();
        connect_tls(&[endpoint], self.client.clone()).await.expect("a TLS client of one member")
    }
}

/// Retries a write until it is acknowledged (a lost connection moves the client on).
async fn write_eventually(client: &Client, path: &str, data: &str) -> bool {
    wait_until_async(Instant::now() + DEADLINE, || async {
        client.create(path, data.to_owned(), CreateMode::Persistent).await.is_ok()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_ensemble_elects_replicates_and_fails_over() {
    let mut e = TlsEnsemble::start(3, &[]);
    let leader = e.members.wait_settled(DEADLINE).await.expect("a leader over mutual TLS");
    let client = e.client().await;
    assert!(write_eventually(&client, "/replicated", "everywhere").await);
    e.members.wait_converged(DEADLINE).await.expect("every member has it");
    for id in e.members.ids() {
        let (data, _) = e.client_of(id).await.get("/replicated").await.expect("read back");
        assert_eq!(data, "everywhere".as_bytes(), "member {id}");
    }

    e.members.kill(leader);
    assert!(write_eventually(&client, "/after-failover", "yes").await, "writes go on");
    let new_leader = e.members.wait_settled(DEADLINE).await.expect("a new leader");
    assert_ne!(new_leader, leader);
    let survivor = e.members.ids().into_iter().find(|id| *id != leader).expect("a survivor");
    let (data, _) = e.client_of(survivor).await.get("/after-failover").await.unwrap();
    assert_eq!(data, "yes".as_bytes());
}

/// Sends an HTTP/2 preface on `stream` and reads: what the peer port answered.
async fn speak<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
) -> std::io::Result<Vec<u8>> {
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
    let mut answer = vec![0u8; 64];
    let read = stream.read(&mut answer).await?;
    answer.truncate(read);
    Ok(answer)
}

/// The content type of a TLS alert record.
const TLS_ALERT: u8 = 0x15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_peers_are_refused_and_the_ensemble_keeps_serving() {
    let e = TlsEnsemble::start(3, &[]);
    let leader = e.members.wait_settled(DEADLINE).await.expect("a leader");
    let epoch = e.members.status(leader).await.expect("its status").epoch;
    let target = e.members.member(leader).peer_addr().expect("a peer port");
    let deadline = Instant::now() + DEADLINE;

    // Plain text: a TLS alert (or nothing) comes back, never HTTP/2.
    let tcp = tokio::net::TcpStream::connect(target).await.unwrap();
    let answer = tokio::time::timeout_at(deadline.into(), speak(tcp)).await.expect("in time");
    let refused = match &answer {
        Ok(bytes) => bytes.first().is_none_or(|first| *first == TLS_ALERT),
        Err(_) => true,
    };
    assert!(refused, "plain text got {answer:?}");
    // No certificate, or one from another CA: the member refuses the handshake, so no
    // frame (a vote, a proposal) can be delivered.
    for (what, cert) in [("no certificate", None), ("another CA's", Some(&e.pki.stranger_member))] {
        let config = client_config(e.pki.ca.ca(), cert, b"h2").unwrap();
        let refused = async {
            let stream = tls_connect(target, config).await?;
            speak(stream).await
        };
        let answer = tokio::time::timeout_at(deadline.into(), refused).await.expect("in time");
        let error = answer.expect_err(what).to_string();
        assert!(error.contains("alert"), "{what}: the handshake is refused: {error}");
    }
    // A rogue member verifying our member against its own CA does not get that far.
    let rogue = client_config(e.pki.stranger.ca(), Some(&e.pki.stranger_member), b"h2").unwrap();
    let error = tls_connect(target, rogue).await.expect_err("an unknown issuer").to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");

    // Nothing changed: same leader, same epoch, and writes and reads go on.
    assert_eq!(e.members.settled().await, Some(leader));
    assert_eq!(e.members.status(leader).await.expect("status").epoch, epoch);
    let client = e.client().await;
    assert!(write_eventually(&client, "/after-rogues", "ok").await);
    assert_eq!(client.get("/after-rogues").await.unwrap().0, "ok".as_bytes());
    let log = e.members.member(leader).log();
    assert!(
        log.lines().any(|l| l.contains("TLS handshake refused") && l.contains("peer port")),
        "the refusals are logged:\n{log}"
    );
}

fn broadcasting(status: &Option<Status>) -> bool {
    status.as_ref().is_some_and(|s| s.ensemble.broadcasting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_client_only_certificate_cannot_join() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = Pki::new(&dir.path().join("pki"));
    let mut spec = EnsembleSpec::new(&dir.path().join("members"), 3)
        .expect("ports")
        .args(&["--tick-ms", "100"]);
    spec.admin_tls = Some(pki.admin());
    std::fs::create_dir_all(&spec.dir).expect("the members' directory");
    // Members 1 and 2 as usual; member 3 serves its peer port with a certificate
    // lacking the serverAuth usage.
    // Member 3 first, so that the others' first dial to it reaches it.
    let mut members = Vec::new();
    for id in [3, 1, 2] {
        let peer_cert = if id == 3 { &pki.client_only } else { &pki.server };
        let mut launch = spec.launch(id);
        launch.args.extend(pki.ca.server_flags(&pki.server));
        // Replace the peer certificate and key (each flag is given once).
        let args = &mut launch.args;
        for (flag, value) in
            [("--peer-tls-cert", &peer_cert.cert), ("--peer-tls-key", &peer_cert.key)]
        {
            let at = args.iter().position(|a| a == flag).expect("the flag") + 1;
            args[at] = value.display().to_string();
        }
        members.push(ServerProcess::launch(launch).expect("the member starts"));
    }
    members.rotate_left(1);

    // 1 and 2 elect a leader between them and serve.
    let deadline = Instant::now() + DEADLINE;
    let settled = wait_until_async(deadline, || async {
        let one = members[0].status().await.ok();
        let two = members[1].status().await.ok();
        broadcasting(&one) && broadcasting(&two)
    });
    assert!(settled.await, "members 1 and 2 form a quorum");
    let endpoints = vec![members[0].endpoint(), members[1].endpoint()];
    let client = connect_tls(&endpoints, pki.client(Some(&pki.alice))).await.unwrap();
    assert!(write_eventually(&client, "/without-3", "ok").await);

    // They refuse member 3's certificate when they dial it: it never hears from them.
    let deadline = Instant::now() + DEADLINE;
    let refusal = |line: &str| {
        line.contains("cannot reach peer")
            && line.contains("peer=3")
            && line.contains("certificate")
    };
    let refused = wait_until_async(deadline, || async {
        members[..2].iter().any(|m| m.log().lines().any(refusal))
    });
    assert!(refused.await, "a refusal of member 3's certificate is logged");
    let three = members[2].status().await.expect("member 3 answers its admin port");
    assert!(!three.ensemble.broadcasting, "member 3 joined: {three:?}");
    assert_eq!(client.get("/without-3").await.unwrap().0, "ok".as_bytes());
}
