//! `cargo xtask deps`: the Debian packages of the peers Baton is tested and measured
//! against — ZooKeeper 3.8 (server, zkCli.sh and jars), its C client, kazoo, and etcd —
//! and Prometheus' promtool for the alert rules.
//! The compatibility tests and the benchmark use them when present and skip, saying
//! so, when not; `cargo xtask ci` runs this first, so CI has them wherever it may
//! install packages.
//!
//! Best effort by design: a machine without apt, or where this user may not install,
//! is told what to install and the run goes on (the tests that need the packages
//! skip).

use std::process::Command;

use anyhow::Result;

/// The packages, with what needs each.
pub const PACKAGES: [(&str, &str); 5] = [
    ("zookeeper", "the differential tests and zkCli.sh tests, the bench's ZooKeeper"),
    ("zookeeper-bin", "ZooKeeper's C client (cli_mt)"),
    ("python3-kazoo", "the kazoo recipe and session tests"),
    ("etcd-server", "the bench's etcd"),
    ("prometheus", "promtool, which checks deploy/monitoring's alert rules"),
];

/// Installs what is missing; Ok unless a command could not even be run.
pub fn install() -> Result<()> {
    let missing: Vec<&str> =
        PACKAGES.iter().map(|(name, _)| *name).filter(|name| !installed(name)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if Command::new("apt-get").arg("--version").output().is_err() {
        eprintln!("deps: no apt-get here; install {list} to run the tests that need them");
        return Ok(());
    }
    let root = uid_is_root();
    let sudo =
        !root && Command::new("sudo").args(["-n", "true"]).status().is_ok_and(|s| s.success());
    if !root && !sudo {
        eprintln!("deps: not root (and no password-less sudo): run `apt-get install {list}`");
        return Ok(());
    }
    eprintln!("deps: installing {list}");
    let apt = |args: &[&str]| {
        let mut command = if sudo {
            let mut command = Command::new("sudo");
            command.args(["-n", "apt-get"]);
            command
        } else {
            Command::new("apt-get")
        };
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args).status()
    };
    // A failed update (no network, say) still lets an install from the lists there are.
    let _ = apt(&["update", "-qq"]);
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    match apt(&args) {
        Ok(status) if status.success() => Ok(()),
        result => {
            eprintln!(
                "deps: installing {list} failed ({result:?}); the tests that need them will skip"
            );
            Ok(())
        }
    }
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
}

fn uid_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
