//! Shared helpers: a server in a temporary directory, a client, the admin port.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use baton_client::{Client, ClientError, ErrorCode};
use baton_server::testing::{ServerProcess, http_get};

/// Generous bound for a condition a healthy server meets quickly.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A server with its own temporary directory (the data directory is `<tmp>/data`,
/// logs go beside it).
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

    /// Kills the process (as `kill9` or `terminate` left it) and starts a new one on
    /// the same data directory.
    pub async fn restart(&mut self, args: &[&str]) {
        self.process.kill9();
        self.process = ServerProcess::start(&self.data_dir(), args);
        self.client = connect(&self.process).await;
    }

    pub async fn status(&self) -> serde_json::Value {
        status(&self.process).await
    }

    pub async fn digest(&self) -> String {
        self.status().await["digest"].as_str().expect("digest in /status").to_owned()
    }

    pub async fn metric(&self, name: &str) -> u64 {
        metric(&self.process, name).await
    }

    /// The process is alive and answers a read.
    pub async fn assert_serving(&mut self) {
        assert!(self.process.wait_exit(Instant::now()).is_none(), "the server exited");
        self.client.exists("/").await.expect("the server still answers");
    }
}

pub async fn connect(process: &ServerProcess) -> Client {
    Client::connect(&[process.endpoint()]).await.expect("connect to the server")
}

pub async fn status(process: &ServerProcess) -> serde_json::Value {
    let (code, body) = http_get(process.admin_addr(), "/status").await.expect("GET /status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("/status is JSON")
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

/// A small deterministic generator (no extra dependency); the seed is printed so
/// a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn from_time(what: &str) -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("{what}: seed {seed}");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The `recovered` log line's `replayed=N`.
pub fn replayed_in(log: &str) -> Option<u64> {
    let line = log.lines().rev().find(|line| line.contains("recovered"))?;
    let rest = line.split("replayed=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}
