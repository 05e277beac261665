//! A real `baton-server` (started by baton-testkit) in a temporary directory, for the
//! `baton` runs to talk to.

use std::time::{Duration, Instant};

use baton_testkit::{ServerProcess, wait_until};

use crate::cli::{self, Run, Running};

/// How long a started server may take before it answers a first request.
const SERVING_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `baton-server`, killed (SIGKILL) on drop. If the test panicked, the
/// server's log is printed so the failure can be understood.
pub struct Server {
    pub client_addr: String,
    pub admin_addr: String,
    _process: ServerProcess,
    // Dropped last: the process must be gone before its directory.
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let process = ServerProcess::start(&dir.path().join("data"), &[]);
        let server = Server {
            client_addr: process.endpoint(),
            admin_addr: process.admin_addr().to_string(),
            _process: process,
            _dir: dir,
        };
        server.wait_until_serving();
        server
    }

    /// Bound is not necessarily serving (recovery may still run): wait until a read works.
    fn wait_until_serving(&self) {
        let mut last = None;
        let serving = wait_until(Instant::now() + SERVING_TIMEOUT, || {
            let run = self.baton(&["exists", "/"]);
            let ok = run.code == 0;
            last = Some(run);
            ok
        });
        assert!(serving, "server never answered: {last:?}");
    }

    /// Runs `baton --endpoints <this server> args...`.
    pub fn baton(&self, args: &[&str]) -> Run {
        cli::baton(&self.client_addr, args)
    }

    /// Starts `baton --endpoints <this server> args...` without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Running {
        cli::spawn(&self.client_addr, args)
    }
}
