//! ZooKeeper's own command-line client, zkCli.sh, against a member of a 3-member
//! ensemble: one session fed a script of commands on stdin, each answer compared with what
//! ZooKeeper 3.8 prints for the same script (zxids, times and the session id left
//! out), then a second session that sees the first one's ephemeral gone.
//!
//! zkCli.sh prints no prompt and no echo when stdin is not a terminal, and writes some
//! answers to stdout, others ("Created …", errors) to stderr. Both go to one file, and
//! after every command the script reads a node that does not exist: the one-line
//! error it prints closes that command's answer, so each answer is checked by itself.
//! Watch events come from zkCli's event thread at any point and are checked apart.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use baton_testkit::wait_until;

use crate::{support::DEADLINE, zk_support::BatonEnsemble};

/// Two JVM starts and some fifty requests; ZooKeeper's answers take about 2 s.
const CLI_DEADLINE: Duration = Duration::from_secs(40);

/// `alice:secret` as ZooKeeper's digest scheme stores it: base64(sha1("alice:secret")).
const ALICE_DIGEST: &str = "aYXlLOpEooaV1cRAvUL1fp9Qt7E=";

/// Each command of the session and ZooKeeper 3.8's answer to it, line by line, after
/// [`normalize`]. `{digest}` stands for [`ALICE_DIGEST`].
const STEPS: &[(&str, &str)] = &[
    ("create /cli", "Created /cli"),
    ("create /cli/plain hello", "Created /cli/plain"),
    ("create -e /cli/eph e", "Created /cli/eph"),
    ("create -s /cli/seq- s", "Created /cli/seq-0000000002"),
    ("create -c /cli/cont", "Created /cli/cont"),
    ("create -t 60000 /cli/ttl t", "Created /cli/ttl"),
    ("create /cli/plain again", "Node already exists: /cli/plain"),
    ("get /cli/plain", "hello"),
    ("get -s /cli/plain", "hello\n{stat 0 0 0 0x0 5 0}"),
    ("set /cli/plain world", ""),
    ("set -s /cli/plain world2", "{stat 0 2 0 0x0 6 0}"),
    ("set -v 7 /cli/plain bad", "version No is not valid : /cli/plain"),
    ("stat /cli/eph", "{stat 0 0 0 <session> 1 0}"),
    ("ls /cli", "[cont, eph, plain, seq-0000000002, ttl]"),
    ("ls -s /cli", "[cont, eph, plain, seq-0000000002, ttl]\n{stat 5 0 0 0x0 0 5}"),
    ("ls -R /cli", "/cli\n/cli/cont\n/cli/eph\n/cli/plain\n/cli/seq-0000000002\n/cli/ttl"),
    ("get /cli/missing", "Node does not exist: /cli/missing"),
    ("create /cli/cont/c x", "Created /cli/cont/c"),
    ("delete /cli", "Node not empty: /cli"),
    ("getEphemerals /cli", "[/cli/eph]"),
    ("getAllChildrenNumber /cli", "6"),
    ("delete /cli/plain", ""),
    ("deleteall /cli/cont", ""),
    ("create /cli/acl a", "Created /cli/acl"),
    ("setAcl /cli/acl digest:alice:{digest}:cdrwa", ""),
    ("getAcl /cli/acl", "Insufficient permission : /cli/acl"),
    ("get /cli/acl", "Insufficient permission : /cli/acl"),
    ("addauth digest alice:secret", ""),
    ("get /cli/acl", "a"),
    ("getAcl /cli/acl", "'digest,'alice:{digest}\n: cdrwa"),
    ("setAcl /cli/acl auth::cdr", ""),
    // ZooKeeper 3.8 shows the id an `auth` ACL took from the session as `alice:x`.
    ("getAcl /cli/acl", "'digest,'alice:x\n: cdr"),
    ("whoami", "Auth scheme: User\ndigest: alice\nip: 127.0.0.1"),
    ("create /cli/world w world:anyone:r", "Created /cli/world"),
    ("getAcl /cli/world", "'world,'anyone\n: r"),
    ("set /cli/world nope", "Insufficient permission : /cli/world"),
    ("addWatch -m PERSISTENT_RECURSIVE /cli", ""),
    ("create /cli/watched w", "Created /cli/watched"),
    ("sync /cli", "Sync is OK"),
    ("version", "ZooKeeper CLI version: <version>"),
    ("ls /zookeeper", "[config, quota]"),
];

/// The watch events of the session, in order: connected, the persistent recursive
/// watch on /cli seeing a create and (as the session closes) its ephemeral's delete,
/// closed.
const EVENTS: &[&str] = &[
    "WatchedEvent state:SyncConnected type:None path:null",
    "WatchedEvent state:SyncConnected type:NodeCreated path:/cli/watched",
    // The closing session's own watch is told of its ephemeral's delete before the
    // close's reply.
    "WatchedEvent state:SyncConnected type:NodeDeleted path:/cli/eph",
    "WatchedEvent state:Closed type:None path:null",
];

/// What a second session lists once the first one has ended.
const AFTER_THE_SESSION: &str = "[acl, seq-0000000002, ttl, watched, world]";

fn marker(step: usize) -> String {
    format!("Node does not exist: /zkcli-step-{step}")
}

/// zkCli.sh from PATH or from Debian's zookeeper package.
fn zkcli() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("zkCli.sh"));
    let debian = PathBuf::from("/usr/share/zookeeper/bin/zkCli.sh");
    on_path.chain([debian]).find(|path| path.is_file())
}

/// Runs zkCli.sh with `args` and `stdin`; what it printed on stdout and stderr, in one.
fn run_zkcli(zkcli: &Path, dir: &Path, name: &str, args: &[&str], stdin: &str) -> String {
    let input = dir.join(format!("{name}.in"));
    let output = dir.join(format!("{name}.out"));
    std::fs::write(&input, stdin).expect("write zkCli's input");
    let out = File::create(&output).expect("zkCli's output file");
    let err = out.try_clone().expect("zkCli's output file");
    let mut child = Command::new(zkcli)
        .args(args)
        // A client JVM that starts fast: it runs for a second or two.
        .env("CLIENT_JVMFLAGS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss1m")
        .stdin(File::open(&input).expect("zkCli's input"))
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("zkCli.sh starts");
    let exited =
        wait_until(Instant::now() + CLI_DEADLINE, || child.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    let printed = std::fs::read_to_string(&output).expect("zkCli's output");
    assert!(exited, "zkCli.sh {args:?} still runs after {CLI_DEADLINE:?}:\n{printed}");
    printed
}

/// One line as the expectations have it, `None` for noise: logging, the banner, blank
/// lines; stat fields that carry zxids or times dropped, a session id made `<session>`.
fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort_unstable();
    lines
}

fn normalize(line: &str) -> Option<String> {
    const NOISE: &[&str] = &[
        "SLF4J:",
        "log4j:",
        "Connecting to ",
        "Welcome to ZooKeeper!",
        "JLine support",
        "WATCHER::",
    ];
    const UNSTABLE: &[&str] = &["cZxid = ", "ctime = ", "mZxid = ", "mtime = ", "pZxid = "];
    let line = line.trim_end();
    if line.is_empty() || NOISE.iter().chain(UNSTABLE).any(|prefix| line.starts_with(prefix)) {
        return None;
    }
    if let Some(owner) = line.strip_prefix("ephemeralOwner = ") {
        let owner = if owner == "0x0" { owner } else { "<session>" };
        return Some(format!("ephemeralOwner = {owner}"));
    }
    if line.starts_with("ZooKeeper CLI version: ") {
        return Some("ZooKeeper CLI version: <version>".to_owned());
    }
    Some(line.to_owned())
}

/// `{stat CVERSION DATAVERSION ACLVERSION OWNER DATALENGTH NUMCHILDREN}` spelled out as
/// the stat lines [`normalize`] keeps; `{digest}` as [`ALICE_DIGEST`].
fn expand(expected: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for line in expected.lines() {
        let line = line.replace("{digest}", ALICE_DIGEST);
        match line.strip_prefix("{stat ").and_then(|rest| rest.strip_suffix('}')) {
            Some(fields) => {
                let names = [
                    "cversion",
                    "dataVersion",
                    "aclVersion",
                    "ephemeralOwner",
                    "dataLength",
                    "numChildren",
                ];
                let values: Vec<&str> = fields.split_whitespace().collect();
                assert_eq!(values.len(), names.len(), "a {{stat}} has six fields: {line}");
                lines.extend(names.iter().zip(values).map(|(n, v)| format!("{n} = {v}")));
            }
            None => lines.push(line),
        }
    }
    lines
}

/// Each step's lines, the watch events, and anything after the last marker.
struct Transcript {
    steps: Vec<Vec<String>>,
    events: Vec<String>,
    rest: Vec<String>,
}

fn split(printed: &str, steps: usize) -> Transcript {
    let mut transcript = Transcript { steps: Vec::new(), events: Vec::new(), rest: Vec::new() };
    for line in printed.lines().filter_map(normalize) {
        if line.starts_with("WatchedEvent ") {
            transcript.events.push(line);
        } else if transcript.steps.len() < steps && line == marker(transcript.steps.len() + 1) {
            transcript.steps.push(std::mem::take(&mut transcript.rest));
        } else {
            transcript.rest.push(line);
        }
    }
    transcript
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_session_answers_as_zookeeper_does() {
    let Some(zkcli) = zkcli() else {
        eprintln!(
            "skipped: zkCli.sh not found (Debian's zookeeper package); run `cargo xtask deps`"
        );
        return;
    };
    let ensemble = BatonEnsemble::start(3).await;
    // One member, for the session and for the second session that lists what the
    // first left: it answers after applying the first one's close.
    let endpoint = ensemble.members.member(1).zk_endpoint();
    let dir = ensemble.dir().to_path_buf();
    // zkCli waits out a session timeout on every command when it has no session: fail
    // at once instead.
    let probe = zookeeper_client::Client::connector().with_fail_eagerly().connect(&endpoint);
    match tokio::time::timeout(DEADLINE, probe).await {
        Ok(Ok(client)) => drop(client),
        Ok(Err(error)) => panic!("no ZooKeeper session at {endpoint}: {error}"),
        Err(_) => panic!("no ZooKeeper session at {endpoint} within {DEADLINE:?}"),
    }

    let mut script = String::new();
    for (i, (command, _)) in STEPS.iter().enumerate() {
        let command = command.replace("{digest}", ALICE_DIGEST);
        script.push_str(&format!("{command}\nget /zkcli-step-{}\n", i + 1));
    }
    script.push_str("quit\n");
    let printed = run_zkcli(&zkcli, &dir, "session", &["-server", &endpoint], &script);
    let transcript = split(&printed, STEPS.len());

    let mut differences = Vec::new();
    for (i, (command, expected)) in STEPS.iter().enumerate() {
        let got = transcript.steps.get(i).cloned();
        let expected = expand(expected);
        // whoami's identities are compared as a set: ZooKeeper and Baton both send
        // the address first (the differential test checks that order on the wire),
        // yet zkCli.sh printed them in another order against ZooKeeper.
        let same = if *command == "whoami" {
            got.clone().map(sorted) == Some(sorted(expected.clone()))
        } else {
            got.as_ref() == Some(&expected)
        };
        if !same {
            differences.push(format!(
                "step {} `{command}`:\n  ZooKeeper: {expected:?}\n  Baton:     {got:?}",
                i + 1
            ));
        }
    }
    if !transcript.rest.is_empty() {
        differences.push(format!("after the last command: {:?}", transcript.rest));
    }
    if transcript.events != EVENTS {
        differences.push(format!(
            "watch events:\n  ZooKeeper: {EVENTS:?}\n  Baton:     {:?}",
            transcript.events
        ));
    }

    let after = run_zkcli(&zkcli, &dir, "after", &["-server", &endpoint, "ls", "/cli"], "");
    let listed = after.lines().filter_map(normalize).filter(|l| !l.starts_with("WatchedEvent "));
    let listed: Vec<String> = listed.collect();
    if listed != [AFTER_THE_SESSION] {
        differences.push(format!(
            "`ls /cli` from a second session:\n  ZooKeeper: [{AFTER_THE_SESSION:?}]\n  \
             Baton:     {listed:?}"
        ));
    }
    assert!(
        differences.is_empty(),
        "zkCli.sh against {endpoint} differs from ZooKeeper in {} places:\n{}\n\
         ---- zkCli printed ----\n{printed}",
        differences.len(),
        differences.join("\n")
    );
}
