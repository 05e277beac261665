//! kazoo, a ZooKeeper client written apart from ZooKeeper, against a three-member
//! ensemble's ZooKeeper ports: its recipes with several clients spread over the
//! members (`tests/zk/kazoo_recipes.py`). The script passes against a real ZooKeeper
//! ensemble; a python without kazoo skips it.

use std::time::Duration;

use crate::zk_support::{NO_KAZOO, Script, ZkEnsemble, python_with_kazoo, zk_script};

/// The recipes take a few seconds against ZooKeeper; this leaves room on a busy machine.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_recipes_with_clients_on_every_member() {
    let Some(python) = python_with_kazoo() else {
        eprintln!("{NO_KAZOO}");
        return;
    };
    let ensemble = ZkEnsemble::start(3).await;
    let script = zk_script("kazoo_recipes.py");
    let hosts = ensemble.zk_hosts(1);
    let log = ensemble.dir().join("kazoo_recipes.log");
    let mut run =
        Script::spawn("kazoo_recipes.py", &python, &[script.to_str().unwrap(), &hosts], log);
    let (status, output) = run.wait(SCRIPT_DEADLINE);
    assert!(status.success(), "kazoo_recipes.py {hosts} exited with {status}:\n{output}");
    assert!(output.contains("all 13 checks passed"), "{output}");
}
