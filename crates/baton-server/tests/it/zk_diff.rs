//! ZooKeeper and Baton side by side: one script of ZooKeeper-protocol requests (every
//! opcode, the errors, sequential and ephemeral nodes, watches and their order, a
//! session moving between members) runs against a real 3-member Apache ZooKeeper and
//! a 3-member Baton, each as a normalized transcript; the two must match line by line
//! but for the deliberate differences listed in [`EXPECTED_DIFFERENCES`].
//!
//! Skipped (it passes, saying so) where ZooKeeper is not installed.

mod render;
mod run;
mod script;

use std::time::Duration;

use baton_testkit::{EnsembleSpec, ZOOKEEPER_STARTUP_TIMEOUT, ZkEnsemble, zookeeper_available};

/// Where Baton answers differently from ZooKeeper on purpose: the request part of a
/// transcript line (before ` -> ` or ` :: `), and why. Every entry is a way a
/// ZooKeeper client can tell the two apart, so the list stays as short as it can.
const EXPECTED_DIFFERENCES: &[(&str, &str)] = &[
    ("[A] GetData \"/diff/null\"", "Baton stores bytes, never null: null data reads back as empty"),
    ("[A] Create \"/diff//a\" Some(\"\") Persistent", MALFORMED_PATHS),
    ("[A] Create \"/diff/./a\" Some(\"\") Persistent", MALFORMED_PATHS),
    ("[A] Create \"/diff/../a\" Some(\"\") Persistent", MALFORMED_PATHS),
    ("[A] GetData \"\"", MALFORMED_PATHS),
    ("[A] Exists \"\"", MALFORMED_PATHS),
    ("[A] GetData \"diff\"", MALFORMED_PATHS),
    ("[A] Exists \"diff\"", MALFORMED_PATHS),
    ("[A] GetData \"/diff/\"", MALFORMED_PATHS),
    ("[A] Exists \"/diff/\"", MALFORMED_PATHS),
    (
        "[A] Create /diff/acl7 acl [\"world:anyone=64\"]",
        "Baton checks an ACL whole before storing it: unknown permission bits are INVALIDACL",
    ),
    (
        "[K] Check /diff v0",
        "ZooKeeper 3.8.0 proposes a standalone check as a txn its followers cannot decode \
         (they drop out and the ensemble stops serving); Baton answers it as a version check",
    ),
    (
        "[W2] RemoveWatches \"/diff/pr\" PersistentRecursive",
        "watcher types 4 and 5 (persistent, persistent recursive) are ZooKeeper 3.9's, \
         which Baton speaks; 3.8 refuses them",
    ),
];

const MALFORMED_PATHS: &str = "Baton answers BADARGUMENTS to every malformed path; ZooKeeper's \
     server checks a create's parent first (NONODE) and a read's path not at all (ZooKeeper's \
     clients refuse these paths before sending them)";

/// Baton's members elect on 2 s ticks (the default, as ZooKeeper's tickTime here).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_answers_the_zookeeper_script_as_zookeeper_does() {
    if let Err(why) = zookeeper_available() {
        eprintln!("skipped: ZooKeeper is not installed here: {why}; run `cargo xtask deps`");
        return;
    }
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut zookeeper =
        ZkEnsemble::start(&dir.path().join("zookeeper"), 3).expect("the ZooKeeper members start");
    let baton = EnsembleSpec::new(&dir.path().join("baton"), 3)
        .and_then(EnsembleSpec::start)
        .expect("the Baton members start");
    zookeeper.wait_serving(ZOOKEEPER_STARTUP_TIMEOUT).await.expect("ZooKeeper serves");
    eprintln!("ZooKeeper serves after {:?}", started.elapsed());
    baton.wait_settled(SETTLE_TIMEOUT).await.expect("Baton settles");
    eprintln!("Baton settled after {:?}", started.elapsed());

    let zk_addrs = zookeeper.ids().into_iter().map(|id| zookeeper.client_addr(id)).collect();
    let baton_addrs = baton
        .ids()
        .into_iter()
        .map(|id| baton.member(id).zk_addr().expect("members serve ZooKeeper's protocol"))
        .collect();
    let (expected, actual) =
        tokio::join!(script::transcript(zk_addrs), script::transcript(baton_addrs));
    eprintln!("{} transcript lines after {:?}", expected.len(), started.elapsed());
    // Sequence numbers are compared apart: see `without_sequence_numbers`.
    let (expected, actual) =
        (without_sequence_numbers(&expected), without_sequence_numbers(&actual));

    let changes = diff(&expected, &actual);
    let (allowed, unexpected): (Vec<&Change>, Vec<&Change>) =
        changes.iter().partition(|change| reason(&change.line).is_some());
    for change in &allowed {
        let why = reason(&change.line).unwrap_or_default();
        eprintln!("expected difference ({why}):\n  {}", change.render());
    }
    assert!(
        unexpected.is_empty(),
        "Baton's transcript differs from ZooKeeper's in {} lines (- ZooKeeper, + Baton):\n{}",
        unexpected.len(),
        render_changes(&changes, &expected),
    );
}

/// The lines with every sequential suffix (`-` and ten digits) replaced by `-#`.
/// ZooKeeper 3.8's leader numbers a sequential node from its pending record of the
/// parent, which counts creates but not deletes; Baton numbers from the parent's
/// cversion, which counts both, as ZooKeeper documents it (docs/zookeeper-compat.md).
/// After a delete the numbers differ, and every later name and listing with them;
/// everything else about those nodes must still match. Baton's rule is checked by
/// `sequential_suffixes_follow_the_cversion`.
fn without_sequence_numbers(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            let bytes = line.as_bytes();
            let mut out = String::with_capacity(line.len());
            let mut i = 0;
            while i < line.len() {
                let digits = bytes[i] == b'-'
                    && bytes.len() >= i + 11
                    && bytes[i + 1..i + 11].iter().all(u8::is_ascii_digit)
                    && bytes.get(i + 11).is_none_or(|b| !b.is_ascii_digit());
                if digits {
                    out.push_str("-#");
                    i += 11;
                } else {
                    let c = line[i..].chars().next().expect("a char at a boundary");
                    out.push(c);
                    i += c.len_utf8();
                }
            }
            out
        })
        .collect()
}

/// The documented reason a line may differ, if there is one.
fn reason(line: &str) -> Option<&'static str> {
    let step = line.split(" -> ").next()?.split(" :: ").next()?;
    EXPECTED_DIFFERENCES.iter().find(|(known, _)| *known == step).map(|(_, why)| *why)
}

/// A line only one transcript has: `zookeeper` says which.
#[derive(Debug)]
struct Change {
    zookeeper: bool,
    line: String,
    /// How many of ZooKeeper's lines come before it (where it goes in the diff).
    at: usize,
}

impl Change {
    fn render(&self) -> String {
        format!("{} {}", if self.zookeeper { '-' } else { '+' }, self.line)
    }
}

/// The lines only one side has, by a longest common subsequence: an extra event on
/// one side shows as one line, not as a shift of every line after it.
fn diff(expected: &[String], actual: &[String]) -> Vec<Change> {
    let (n, m) = (expected.len(), actual.len());
    // common[i][j]: the longest common subsequence of expected[i..] and actual[j..].
    let mut common = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut changes) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            (i, j) = (i + 1, j + 1);
        } else if j == m || (i < n && common[i + 1][j] >= common[i][j + 1]) {
            changes.push(Change { zookeeper: true, line: expected[i].clone(), at: i });
            i += 1;
        } else {
            changes.push(Change { zookeeper: false, line: actual[j].clone(), at: i });
            j += 1;
        }
    }
    changes
}

/// The changes with the ZooKeeper line before each run of them as context.
fn render_changes(changes: &[Change], expected: &[String]) -> String {
    let mut out = String::new();
    let mut previous: Option<&Change> = None;
    for change in changes {
        let adjacent =
            previous.is_some_and(|p| p.at == change.at || (p.zookeeper && p.at + 1 == change.at));
        if !adjacent {
            let context = change.at.checked_sub(1).map_or("(start)", |i| expected[i].as_str());
            out.push_str(&format!("  {context}\n"));
        }
        previous = Some(change);
        let allowed =
            reason(&change.line).map_or(String::new(), |why| format!("   [expected: {why}]"));
        out.push_str(&format!("{}{allowed}\n", change.render()));
    }
    out
}

#[test]
fn the_diff_shows_only_the_lines_one_side_has() {
    let lines = |text: &str| text.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let changes = diff(&lines("a b c d"), &lines("a x c d e"));
    let rendered: Vec<String> = changes.iter().map(Change::render).collect();
    assert_eq!(rendered, ["- b", "+ x", "+ e"]);
}
