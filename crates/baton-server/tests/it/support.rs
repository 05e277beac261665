//! Shared helpers: a server in a temporary directory, a client, the admin port.

use std::{path::PathBuf, time::Duration};

use baton_client::{Client, ClientError, ErrorCode};
use baton_testkit::{ServerProcess, Status, http_get};

/// Generous bound for a condition a healthy server meets quickly.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A server with its own temporary directory (the data directory is `<tmp>/data`,
/// its log `<tmp>/data.log`).
pub struct TestServer {
    pub process: ServerProcess,
    pub client: Client,
    // Dropped last: the process must be gone before its directory.
    dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(args: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let process = ServerProcess::start(&dir.path().join("data"), args);
        let client = connect(&process).await;
        TestServer { process, client, dir }
    }

    /// A server on `dir/data` as it is (a directory prepared by the test).
    pub async fn start_in(dir: tempfile::TempDir, args: &[&str]) -> TestServer {
        let process = ServerProcess::start(&dir.path().join("data"), args);
        let client = connect(&process).await;
        TestServer { process, client, dir }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Kills the process (as `kill` or `terminate` left it) and starts a new one on the
    /// same data directory (on ports the OS chooses again).
    pub async fn restart(&mut self, args: &[&str]) {
        self.process.kill();
        self.process = ServerProcess::start(&self.data_dir(), args);
        self.client = connect(&self.process).await;
    }

    pub async fn status(&self) -> Status {
        status(&self.process).await
    }

    pub async fn digest(&self) -> String {
        self.status().await.digest
    }

    pub async fn metric(&self, name: &str) -> u64 {
        metric(&self.process, name).await
    }

    /// The process is alive and answers a read.
    pub async fn assert_serving(&mut self) {
        assert!(self.process.running(), "the server exited");
        self.client.exists("/").await.expect("the server still answers");
    }
}

pub async fn connect(process: &ServerProcess) -> Client {
    Client::connect(&[process.endpoint()]).await.expect("connect to the server")
}

pub async fn status(process: &ServerProcess) -> Status {
    process.status().await.expect("GET /status")
}

pub async fn metric(process: &ServerProcess, name: &str) -> u64 {
    let (code, body) = http_get(process.admin_addr(), "/metrics").await.expect("GET /metrics");
    assert_eq!(code, 200, "{body}");
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
}

/// The Baton error code of a failed call.
#[track_caller]
pub fn code_of<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.code(),
    }
}

/// The `recovered` log line's `replayed=N`.
pub fn replayed_in(log: &str) -> Option<u64> {
    let line = log.lines().rev().find(|line| line.contains("recovered"))?;
    let rest = line.split("replayed=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}
