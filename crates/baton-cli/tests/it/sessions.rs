//! The commands that open a session, end to end against a real server: `create -e`
//! holding its node, `watch` with `--count`, `lock -- COMMAND`, `session open`.

use std::time::{Duration, Instant};

use crate::server::Server;

/// Exit codes as `baton --help` documents them.
const NOT_FOUND: i32 = 1;
/// How long a test keeps making changes for a watcher that has not seen enough yet.
const CHANGES_DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn create_ephemeral_holds_the_node_until_terminated() {
    let server = Server::start();
    let mut holder = server.spawn(&["create", "-e", "/eph", "held"]);
    assert_eq!(holder.line(), "/eph");
    assert_eq!(server.baton(&["get", "/eph"]).ok(), "held\n");
    let stat = server.baton(&["stat", "/eph"]);
    assert!(!stat.ok().lines().any(|l| l == "ephemeralOwner = 0x0"), "{stat:?}");
    holder.terminate();
    let run = holder.wait();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(server.baton(&["exists", "/eph"]).code, NOT_FOUND, "closed with its session");
}

#[test]
fn create_ephemeral_sequential_holds_for_hold_ms() {
    let server = Server::start();
    server.baton(&["create", "/jobs"]).ok();
    let run = server.baton(&["--json", "create", "-e", "-s", "/jobs/job-", "--hold-ms", "200"]);
    let created: serde_json::Value = serde_json::from_str(run.ok()).unwrap();
    let path = created["path"].as_str().unwrap();
    assert!(path.starts_with("/jobs/job-") && path.len() == "/jobs/job-".len() + 10, "{path}");
    assert_ne!(created["stat"]["ephemeral_owner"], 0);
    assert_eq!(server.baton(&["ls", "/jobs"]).ok(), "", "gone once the command ended");
}

/// Runs `change(i)` for i = 0, 1, ... until the watcher exits (it has seen its count).
fn change_until_exit(watcher: &mut crate::cli::Running, mut change: impl FnMut(usize)) {
    let deadline = Instant::now() + CHANGES_DEADLINE;
    let mut i = 0;
    while !watcher.exited() {
        assert!(Instant::now() < deadline, "the watcher never saw enough events");
        change(i);
        i += 1;
    }
}

fn zxid_of(line: &str) -> u64 {
    let hex = line.rsplit("zxid=0x").next().unwrap();
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn watch_prints_one_line_per_event_and_stops_at_count() {
    let server = Server::start();
    server.baton(&["create", "/w", "0"]).ok();
    let mut watcher = server.spawn(&["watch", "/w", "--count", "3"]);
    change_until_exit(&mut watcher, |i| {
        server.baton(&["set", "/w", &i.to_string()]).ok();
    });
    let run = watcher.wait();
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    for line in &lines {
        assert!(line.starts_with("NODE_DATA_CHANGED /w zxid=0x"), "{line:?}");
    }
    let zxids: Vec<u64> = lines.iter().map(|l| zxid_of(l)).collect();
    assert!(zxids.windows(2).all(|w| w[0] < w[1]), "{zxids:?}");
}

#[test]
fn watch_recursive_prints_json_events_of_the_subtree() {
    let server = Server::start();
    server.baton(&["create", "/r"]).ok();
    let mut watcher = server.spawn(&["--json", "watch", "-R", "/r", "--count", "2"]);
    change_until_exit(&mut watcher, |i| {
        server.baton(&["create", &format!("/r/n{i}")]).ok();
    });
    let run = watcher.wait();
    assert_eq!(run.code, 0, "{run:?}");
    let events: Vec<serde_json::Value> =
        run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2, "{run:?}");
    for event in &events {
        assert_eq!(event["type"], "NODE_CREATED");
        assert!(event["path"].as_str().unwrap().starts_with("/r/n"), "{event}");
        assert!(event["zxid"].as_u64().unwrap() > 0);
    }
}

#[test]
fn watch_children_prints_only_child_changes() {
    let server = Server::start();
    server.baton(&["create", "/c"]).ok();
    let mut watcher = server.spawn(&["watch", "/c", "--children", "--count", "1"]);
    change_until_exit(&mut watcher, |i| {
        server.baton(&["set", "/c", &i.to_string()]).ok();
        server.baton(&["create", &format!("/c/k{i}")]).ok();
    });
    let run = watcher.wait();
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert!(lines[0].starts_with("NODE_CHILDREN_CHANGED /c zxid=0x"), "{run:?}");
}

#[test]
fn lock_runs_the_command_and_exits_with_its_code() {
    let server = Server::start();
    assert_eq!(server.baton(&["lock", "/l", "--", "sh", "-c", "exit 7"]).code, 7);
    let run = server.baton(&[
        "lock",
        "/l",
        "--",
        "sh",
        "-c",
        "echo \"$BATON_LOCK_NODE $BATON_LOCK_FENCING_TOKEN\"",
    ]);
    let (node, token) = run.ok().trim_end().split_once(' ').expect("node and token");
    assert!(node.starts_with("/l/lock-"), "{node}");
    assert!(token.parse::<u64>().unwrap() > 0, "{token}");
    assert_eq!(server.baton(&["ls", "/l"]).ok(), "", "released");
    let missing = server.baton(&["lock", "/l", "--", "/nonexistent/command"]);
    assert_eq!(
        missing.fails(5),
        format!("baton: starting /nonexistent/command: No such file or directory (os error 2)")
    );
}

#[test]
fn lock_excludes_concurrent_commands() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("counter");
    std::fs::write(&counter, "0").unwrap();
    // A read-modify-write with a pause inside: without the lock, increments get lost.
    let script = format!("n=$(cat {0}); sleep 0.05; echo $((n + 1)) > {0}", counter.display());
    let runs: Vec<_> =
        (0..4).map(|_| server.spawn(&["lock", "/excl", "--", "sh", "-c", &script])).collect();
    for run in runs {
        let run = run.wait();
        assert_eq!(run.code, 0, "{run:?}");
    }
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "4");
    assert_eq!(server.baton(&["ls", "/excl"]).ok(), "");
}

#[test]
fn session_open_prints_its_id_and_timeout_and_closes_on_sigterm() {
    let server = Server::start();
    let mut session = server.spawn(&["--json", "session", "open", "--timeout-ms", "4000"]);
    let line: serde_json::Value = serde_json::from_str(&session.line()).unwrap();
    assert!(line["session_id"].as_u64().unwrap() > 0, "{line}");
    assert!(line["timeout_ms"].as_u64().unwrap() > 0, "{line}");
    session.terminate();
    let run = session.wait();
    assert_eq!(run.code, 0, "{run:?}");

    let run = server.baton(&["session", "open", "--hold-ms", "100"]);
    let text = run.ok();
    assert!(text.starts_with("session_id=0x") && text.contains(" timeout_ms="), "{text:?}");
}
