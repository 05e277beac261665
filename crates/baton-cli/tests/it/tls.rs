//! `--tls-ca`, `--tls-cert` and `--tls-key` reach the one-shot client and the session
//! commands and `status` (the HTTPS admin port): a server that requires client
//! certificates answers `baton` with them, and refuses it without.

use baton_testkit::{Launch, ServerProcess, TestPki};

use crate::cli::baton;

const CONNECTION_LOSS: i32 = 4;

#[test]
fn tls_flags_reach_the_client_and_the_session_commands() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = TestPki::new(&dir.path().join("pki"), "baton").expect("a CA");
    let server_cert = pki.server("server", "server").expect("a server certificate");
    let alice = pki.client("alice", "alice").expect("a client certificate");
    let path = |p: &std::path::Path| p.display().to_string();
    let (ca, cert, key) = (path(pki.ca()), path(&alice.cert), path(&alice.key));
    let mut launch = Launch::new(&dir.path().join("data"));
    launch.args = vec![
        "--tls-cert".into(),
        path(&server_cert.cert),
        "--tls-key".into(),
        path(&server_cert.key),
        "--tls-ca".into(),
        ca.clone(),
        "--client-auth".into(),
        "required".into(),
        "--admin-tls-cert".into(),
        path(&server_cert.cert),
        "--admin-tls-key".into(),
        path(&server_cert.key),
        "--admin-tls-ca".into(),
        ca.clone(),
    ];
    launch.admin_tls = Some(pki.admin_client(&alice));
    let server = ServerProcess::launch(launch).expect("a TLS server");
    let endpoint = server.endpoint();
    let tls = ["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key];
    let with_tls = |args: &[&str]| {
        let mut all = tls.to_vec();
        all.extend_from_slice(args);
        baton(&endpoint, &all)
    };

    assert_eq!(with_tls(&["create", "/secure", "yes"]).ok(), "/secure\n");
    assert_eq!(with_tls(&["get", "/secure"]).ok(), "yes\n");
    let https = baton(&format!("https://{endpoint}"), &[&tls[..], &["exists", "/secure"]].concat());
    assert_eq!(https.ok(), "true\n");
    // A session command (create -e holds a session for --hold-ms).
    let held = with_tls(&["create", "-e", "/eph", "--hold-ms", "50"]);
    assert_eq!(held.ok(), "/eph\n");

    // status reads the HTTPS admin port with the same flags.
    let admin = server.admin_addr().to_string();
    let status = with_tls(&["status", "--admin", &admin]);
    assert!(status.ok().contains("leading"), "{status:?}");
    let plain = baton(&endpoint, &["status", "--admin", &admin]);
    assert_eq!(plain.code, CONNECTION_LOSS, "{plain:?}");

    // Without a client certificate the server refuses; without TLS too.
    let no_cert = baton(&endpoint, &["--tls-ca", &ca, "exists", "/"]);
    assert!(no_cert.fails(CONNECTION_LOSS).contains(&endpoint), "{no_cert:?}");
    baton(&endpoint, &["exists", "/"]).fails(CONNECTION_LOSS);
    // A certificate needs its key (a usage error from the flags).
    let half = baton(&endpoint, &["--tls-cert", &cert, "exists", "/"]);
    assert_eq!(half.code, 2, "{half:?}");
    // An unreadable CA file is named.
    let missing = dir.path().join("missing.pem");
    let unreadable = baton(&endpoint, &["--tls-ca", &path(&missing), "exists", "/"]);
    assert!(unreadable.stderr.contains(&path(&missing)), "{unreadable:?}");
}
