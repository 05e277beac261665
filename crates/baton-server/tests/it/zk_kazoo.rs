//! kazoo, a ZooKeeper client written apart from ZooKeeper, against a three-member
//! ensemble's ZooKeeper ports: its recipes with several clients spread over the
//! members (`tests/zk/kazoo_recipes.py`), and one session kept across a SIGKILL of the
//! member it is connected to (`tests/zk/kazoo_failover.py`). Both scripts pass against
//! a real ZooKeeper ensemble; a python without kazoo skips them.

use std::time::{Duration, Instant};

use baton_testkit::wait_until;

use crate::zk_support::{BatonEnsemble, NO_KAZOO, Script, python_with_kazoo, zk_script};

/// The recipes take a few seconds against ZooKeeper; this leaves room on a busy machine.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_recipes_with_clients_on_every_member() {
    let Some(python) = python_with_kazoo() else {
        eprintln!("{NO_KAZOO}");
        return;
    };
    let ensemble = BatonEnsemble::start(3).await;
    let script = zk_script("kazoo_recipes.py");
    let hosts = ensemble.zk_hosts(1);
    let log = ensemble.dir().join("kazoo_recipes.log");
    let mut run =
        Script::spawn("kazoo_recipes.py", &python, &[script.to_str().unwrap(), &hosts], log);
    let (status, output) = run.wait(SCRIPT_DEADLINE);
    assert!(status.success(), "kazoo_recipes.py {hosts} exited with {status}:\n{output}");
    assert!(output.contains("all 13 checks passed"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_session_survives_a_kill_of_its_member() {
    let Some(python) = python_with_kazoo() else {
        eprintln!("{NO_KAZOO}");
        return;
    };
    let mut ensemble = BatonEnsemble::start(3).await;
    // The leader first: its loss is the harder one (an election before any member
    // serves again), and kazoo tries the hosts in the order given.
    let leader = ensemble.members.leader().await.expect("a leader");
    let hosts = ensemble.zk_hosts(leader);
    let script = zk_script("kazoo_failover.py");
    let log = ensemble.dir().join("kazoo_failover.log");
    let mut run =
        Script::spawn("kazoo_failover.py", &python, &[script.to_str().unwrap(), &hosts], log);

    let deadline = Instant::now() + SCRIPT_DEADLINE;
    let connected =
        wait_until(deadline, || run.output().contains("connected ") || !run.process.running());
    let output = run.output();
    assert!(connected, "kazoo_failover.py never connected:\n{output}");
    let endpoint = output
        .lines()
        .find_map(|line| line.strip_prefix("connected ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `connected` line:\n{output}"));
    let member = ensemble
        .member_at(endpoint)
        .unwrap_or_else(|| panic!("{endpoint} is no member's ZooKeeper port"));
    assert_eq!(member, leader, "kazoo connects to the first host it is given");
    ensemble.members.kill(member);

    // A follower may take the session back before it notices its leader is gone;
    // once it does, it drops the connection (never a CONNECTIONLOSS reply, as
    // ZooKeeper), and the client resumes the session again elsewhere.

    let (status, output) = run.wait(deadline.saturating_duration_since(Instant::now()));
    assert!(
        status.success(),
        "kazoo_failover.py {hosts} (member {member} killed) exited with {status}:\n{output}"
    );
}
