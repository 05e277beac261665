//! Shared by the tests that speak ZooKeeper's client protocol: an ensemble with its
//! ZooKeeper ports, the outside tools they drive (a python with kazoo, zkCli.sh), and
//! a script run to its end with a deadline.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use baton_testkit::{Process, ProcessSpec};

use crate::support::DEADLINE;

/// What a test prints when the python side cannot run.
pub const NO_KAZOO: &str = "skipped: kazoo not installed; run `cargo xtask deps`";

/// Baton members in a temporary directory, each with a ZooKeeper port (not to be
/// confused with `baton_testkit::ZkEnsemble`, a real ZooKeeper).
pub struct BatonEnsemble {
    pub members: baton_testkit::Ensemble,
    // Dropped last: the members must be gone before their directories.
    dir: tempfile::TempDir,
}

impl BatonEnsemble {
    /// `n` members on 200 ms ticks (sessions of 0.4 to 4 s), settled under a leader.
    pub async fn start(n: u32) -> BatonEnsemble {
        let dir = tempfile::tempdir().expect("temporary directory");
        let members = baton_testkit::Ensemble::start(dir.path(), n, &["--tick-ms", "200"])
            .expect("the members start");
        members.wait_settled(DEADLINE).await.expect("a leader every member follows");
        BatonEnsemble { members, dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every member's ZooKeeper `host:port`, member `first` first, comma-separated: the
    /// connect string ZooKeeper clients take.
    pub fn zk_hosts(&self, first: u32) -> String {
        let ids = self.members.ids();
        let start = ids.iter().position(|id| *id == first).expect("a member id");
        let hosts: Vec<String> = (0..ids.len())
            .map(|i| self.members.member(ids[(start + i) % ids.len()]).zk_endpoint())
            .collect();
        hosts.join(",")
    }

    /// The member whose ZooKeeper port is `endpoint` (`host:port`).
    pub fn member_at(&self, endpoint: &str) -> Option<u32> {
        self.members.ids().into_iter().find(|id| self.members.member(*id).zk_endpoint() == endpoint)
    }
}

/// The first python that can import kazoo (the one on PATH may be a different
/// interpreter from the system's, which is where the Debian package puts kazoo).
pub fn python_with_kazoo() -> Option<PathBuf> {
    ["python3", "/usr/bin/python3", "python"].into_iter().map(PathBuf::from).find(|python| {
        Command::new(python)
            .args(["-c", "import kazoo"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// A file of `tests/zk/`.
pub fn zk_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zk").join(name)
}

/// A child process whose stdout and stderr go to `dir/<log>`; killed when dropped.
pub struct Script {
    pub process: Process,
}

impl Script {
    pub fn spawn(name: &str, program: &Path, args: &[&str], log: PathBuf) -> Script {
        let spec = ProcessSpec::new(name, program, log)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        Script { process: Process::spawn(&spec).expect("the script starts") }
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.process.log()
    }

    /// Waits for the exit; panics (printing the output) if it still runs after `within`.
    pub fn wait(&mut self, within: Duration) -> (ExitStatus, String) {
        let status = self.process.wait_exit(Instant::now() + within);
        let output = self.output();
        let status = status.unwrap_or_else(|| {
            panic!("{} still runs after {within:?}:\n{output}", self.process.name())
        });
        (status, output)
    }
}
