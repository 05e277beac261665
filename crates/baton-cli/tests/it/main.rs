//! End to end: the real `baton` binary against a real `baton-server` process, through the
//! README's walkthrough, plus JSON output and connection loss; `sessions`: the commands
//! that open a session (create -e, watch, lock, session open). `cli` runs the binary
//! under test; `server` is the server it talks to (started by baton-testkit).

mod cli;
mod server;
mod sessions;
mod tls;

use cli::{baton, baton_with_stdin};
use server::Server;

/// Exit codes as `baton --help` documents them.
const NOT_FOUND: i32 = 1;
const SERVER_ERROR: i32 = 3;
const CONNECTION_LOSS: i32 = 4;

/// The 10-digit sequence suffix of a sequential node created under `prefix`.
#[track_caller]
fn sequence_suffix(created: &str, prefix: &str) -> u64 {
    let suffix = created.trim_end().strip_prefix(prefix).unwrap_or_else(|| panic!("{created:?}"));
    assert_eq!(suffix.len(), 10, "{created:?}");
    assert!(suffix.bytes().all(|b| b.is_ascii_digit()), "{created:?}");
    suffix.parse().unwrap()
}

#[test]
fn readme_walkthrough() {
    let server = Server::start();

    assert_eq!(server.baton(&["create", "/app"]).ok(), "/app\n");
    assert_eq!(server.baton(&["create", "/app/config", "color=blue"]).ok(), "/app/config\n");
    assert_eq!(server.baton(&["get", "/app/config"]).ok(), "color=blue\n");

    let with_stat = server.baton(&["get", "/app/config", "--stat"]);
    let lines: Vec<&str> = with_stat.ok().lines().collect();
    assert_eq!(lines[0], "color=blue");
    for expected in
        ["dataVersion = 0", "dataLength = 10", "numChildren = 0", "ephemeralOwner = 0x0"]
    {
        assert!(lines.contains(&expected), "{expected:?} missing in {lines:?}");
    }
    assert!(lines.iter().any(|l| l.starts_with("cZxid = 0x")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("mtime = ")), "{lines:?}");

    // Conditional set: the right version wins, the stale one is refused.
    assert_eq!(server.baton(&["set", "/app/config", "color=green", "--version", "0"]).ok(), "");
    let stale = server.baton(&["set", "/app/config", "color=red", "--version", "0"]);
    let message = stale.fails(SERVER_ERROR);
    assert!(message.contains("version") && message.contains("/app/config"), "{message}");
    assert_eq!(server.baton(&["get", "/app/config"]).ok(), "color=green\n");

    // Data from stdin.
    let piped = baton_with_stdin(
        &server.client_addr,
        &["set", "/app/config", "-", "--version", "1"],
        Some(b"color=teal"),
    );
    piped.ok();
    assert_eq!(server.baton(&["get", "/app/config"]).ok(), "color=teal\n");

    // Sequential nodes get increasing 10-digit suffixes.
    let first = server.baton(&["create", "-s", "/app/job-", "a"]);
    let second = server.baton(&["create", "-s", "/app/job-", "b"]);
    let (n1, n2) =
        (sequence_suffix(first.ok(), "/app/job-"), sequence_suffix(second.ok(), "/app/job-"));
    assert!(n2 > n1, "{n1} then {n2}");
    let job1 = first.stdout.trim_end().to_owned();
    let job2 = second.stdout.trim_end().to_owned();
    let (name1, name2) = (&job1["/app/".len()..], &job2["/app/".len()..]);

    assert_eq!(server.baton(&["ls", "/app"]).ok(), format!("config\n{name1}\n{name2}\n"));
    assert_eq!(
        server.baton(&["ls", "-R", "/app"]).ok(),
        format!("/app\n/app/config\n{job1}\n{job2}\n")
    );
    let stat = server.baton(&["stat", "/app"]);
    assert!(stat.ok().lines().any(|l| l == "numChildren = 3"), "{stat:?}");

    assert_eq!(server.baton(&["exists", "/app"]).ok(), "true\n");
    let missing = server.baton(&["exists", "/app/nope"]);
    assert_eq!((missing.code, missing.stdout.as_str()), (NOT_FOUND, "false\n"), "{missing:?}");

    // A node with children cannot be deleted; -r deletes the subtree.
    let refused = server.baton(&["delete", "/app"]);
    assert_eq!(refused.fails(SERVER_ERROR), "baton: node has children: /app");
    let wrong_version = server.baton(&["delete", &job1, "--version", "7"]);
    assert!(wrong_version.fails(SERVER_ERROR).contains("version"), "{wrong_version:?}");
    assert_eq!(server.baton(&["delete", "-r", "/app"]).ok(), "");
    assert_eq!(server.baton(&["exists", "/app"]).code, NOT_FOUND);
    assert_eq!(server.baton(&["ls", "/"]).ok().lines().filter(|l| *l == "app").count(), 0);

    let gone = server.baton(&["get", "/app"]);
    assert_eq!(gone.fails(SERVER_ERROR), "baton: node does not exist: /app");
    let never = server.baton(&["get", "/missing"]);
    assert_eq!(never.stderr, "baton: node does not exist: /missing\n");
    assert_eq!(never.code, SERVER_ERROR);

    // sync answers with the zxid the server reached, in hex.
    assert!(server.baton(&["sync", "/"]).ok().starts_with("0x"));
}

#[test]
fn json_output_is_one_object_per_command() {
    let server = Server::start();
    let json = |args: &[&str]| -> serde_json::Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let run = server.baton(&full);
        let out = run.ok();
        assert_eq!(out.lines().count(), 1, "not one line: {out:?}");
        serde_json::from_str(out).unwrap_or_else(|e| panic!("{out:?} is not JSON: {e}"))
    };

    let created = json(&["create", "/j", "hello"]);
    assert_eq!(created["path"], "/j");
    assert_eq!(created["stat"]["version"], 0);
    assert_eq!(created["stat"]["data_length"], 5);

    let got = json(&["get", "/j"]);
    assert_eq!(got["data"], "hello");
    assert!(got["stat"]["czxid"].as_u64().unwrap() > 0);

    let root = json(&["get", "/"]);
    assert_eq!(root["path"], "/");
    assert!(root["stat"].is_object());

    assert_eq!(json(&["ls", "/j"])["children"], serde_json::json!([]));
    assert_eq!(json(&["ls", "-R", "/j"])["paths"], serde_json::json!(["/j"]));
    assert_eq!(json(&["set", "/j", "x"])["stat"]["version"], 1);
    assert_eq!(json(&["stat", "/j"])["stat"]["num_children"], 0);
    assert_eq!(json(&["exists", "/j"])["exists"], true);
    assert!(json(&["sync", "/"])["zxid"].as_u64().is_some());

    // A missing node: still one object, and exit code 1.
    let missing = server.baton(&["--json", "exists", "/nope"]);
    assert_eq!(missing.code, NOT_FOUND);
    let value: serde_json::Value = serde_json::from_str(&missing.stdout).unwrap();
    assert_eq!(value, serde_json::json!({ "path": "/nope", "exists": false, "stat": null }));

    assert_eq!(json(&["delete", "/j"])["deleted"], 1);
}

#[test]
fn server_errors_are_printed_as_one_line() {
    let server = Server::start();
    server.baton(&["create", "/dup"]).ok();
    let dup = server.baton(&["create", "/dup"]);
    assert_eq!(dup.fails(SERVER_ERROR), "baton: node already exists: /dup");
    let orphan = server.baton(&["create", "/no/parent"]);
    assert!(orphan.fails(SERVER_ERROR).contains("/no"), "{orphan:?}");
    let bad_path = server.baton(&["create", "relative"]);
    bad_path.fails(SERVER_ERROR);
    // An ephemeral create that fails does not hold anything: one error line, exit 3.
    server.baton(&["create", "-e", "/no/parent"]).fails(SERVER_ERROR);
}

#[test]
fn a_closed_port_is_connection_loss() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let run = baton(&closed, &["get", "/"]);
    let line = run.fails(CONNECTION_LOSS);
    assert!(line.starts_with("baton: connection loss"), "{line}");
    assert!(line.contains(&closed), "{line}");
}

#[test]
fn status_prints_a_line_per_admin_endpoint() {
    let server = Server::start();
    server.baton(&["create", "/s"]).ok();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let admin = format!("{},{closed}", server.admin_addr);
    let run = baton(&server.client_addr, &["status", "--admin", &admin]);
    assert_eq!(run.code, CONNECTION_LOSS, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(lines[0].starts_with(&server.admin_addr), "{run:?}");
    assert!(
        lines[0].contains("id=1 leading leader=1 broadcasting") && lines[0].contains("znodes=3"),
        "{run:?}"
    );
    assert!(lines[0].ends_with(" lag=0"), "the only member answering lags nobody: {run:?}");
    assert!(lines[1].starts_with(&closed) && lines[1].contains("unreachable"), "{run:?}");
    let ok = baton(&server.client_addr, &["status", "--admin", &server.admin_addr]);
    assert_eq!(ok.code, 0, "{ok:?}");
}

/// The access-control commands as a zkCli user would use them: `digest`, `create
/// --acl`, `--auth`, `acl get|set`, `whoami`, `quota set|get|rm`, and the exit code 7
/// of a refusal.
#[test]
fn acls_auth_and_quotas_from_the_command_line() {
    let server = Server::start();
    let digest = server.baton(&["digest", "alice:pw1"]);
    assert_eq!(digest.code, 0, "{digest:?}");
    let alice_id = digest.stdout.trim().to_owned();
    assert!(alice_id.starts_with("alice:") && alice_id.len() == "alice:".len() + 28, "{alice_id}");

    let acl = format!("digest:{alice_id}:cdrwa,world:anyone:r");
    let created = server.baton(&["create", "--acl", &acl, "/guarded", "v"]);
    assert_eq!(created.code, 0, "{created:?}");
    // Anyone reads; a write without alice's credentials is refused with exit code 7.
    assert_eq!(server.baton(&["get", "/guarded"]).stdout, "v\n");
    let refused = server.baton(&["set", "/guarded", "x"]);
    assert_eq!(refused.code, 7, "{refused:?}");
    assert!(refused.stderr.contains("/guarded"), "{refused:?}");
    let set = server.baton(&["--auth", "digest:alice:pw1", "set", "/guarded", "x"]);
    assert_eq!(set.code, 0, "{set:?}");
    let wrong = server.baton(&["--auth", "nope:x", "get", "/guarded"]);
    assert_eq!(wrong.code, 7, "{wrong:?}");

    // acl get: masked without ADMIN, whole with it.
    let masked = server.baton(&["acl", "get", "/guarded"]);
    assert_eq!(masked.stdout, "digest:alice:x:cdrwa\nworld:anyone:r\n", "{masked:?}");
    let whole = server.baton(&["--auth", "digest:alice:pw1", "acl", "get", "/guarded"]);
    assert_eq!(whole.stdout, format!("digest:{alice_id}:cdrwa\nworld:anyone:r\n"));
    let opened = server.baton(&[
        "--auth",
        "digest:alice:pw1",
        "acl",
        "set",
        "/guarded",
        "world:anyone:cdrwa",
    ]);
    assert_eq!(opened.code, 0, "{opened:?}");
    assert_eq!(server.baton(&["set", "/guarded", "y"]).code, 0);
    let bad = server.baton(&["acl", "set", "/guarded", "world:anyone:rz"]);
    assert_eq!(bad.code, 2, "a malformed ACL is a usage error: {bad:?}");

    let who = server.baton(&["--auth", "digest:alice:pw1", "whoami"]);
    assert!(
        who.stdout.contains("digest:alice\n") && who.stdout.contains("ip:127.0.0.1\n"),
        "{who:?}"
    );
    assert!(!who.stdout.contains(&alice_id), "whoami shows no digest: {who:?}");

    // Quotas: hard limits refuse, get shows limits and usage, rm lifts them.
    assert_eq!(server.baton(&["quota", "set", "/guarded", "--count", "2", "--hard"]).code, 0);
    assert_eq!(server.baton(&["create", "/guarded/a"]).code, 0);
    let over = server.baton(&["create", "/guarded/b"]);
    assert_eq!(over.code, 3, "{over:?}");
    assert!(over.stderr.contains("quota"), "{over:?}");
    let shown = server.baton(&["quota", "get", "/guarded"]);
    assert_eq!(
        shown.stdout,
        "Output quota for /guarded count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2\n\
         Output stat for /guarded count=2,bytes=1\n",
        "{shown:?}"
    );
    assert_eq!(server.baton(&["quota", "rm", "/guarded"]).code, 0);
    assert_eq!(server.baton(&["create", "/guarded/b"]).code, 0);
}
