//! A real `baton-server` process (started by baton-testkit) for the tests that need the
//! real server's semantics.

use std::time::{Duration, Instant};

use baton_client::Client;
use baton_testkit::{ServerProcess, wait_until_async};

/// How long a started server may take before it answers a first request.
const SERVING_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `baton-server` in a temporary directory, killed on drop (its log is
/// printed if the test panicked).
pub struct RealServer {
    process: ServerProcess,
    // Dropped last: the process must be gone before its directory.
    _dir: tempfile::TempDir,
}

impl RealServer {
    /// Starts a server and waits until it answers.
    pub async fn start() -> RealServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        let process = tokio::task::spawn_blocking(move || ServerProcess::start(&data, &[]))
            .await
            .expect("start the server");
        let endpoints = vec![process.endpoint()];
        let answers = wait_until_async(Instant::now() + SERVING_TIMEOUT, || async {
            match Client::connect(&endpoints).await {
                Ok(client) => client.exists("/").await.is_ok(),
                Err(_) => false,
            }
        })
        .await;
        assert!(answers, "the server never answered");
        RealServer { process, _dir: dir }
    }

    pub fn endpoints(&self) -> Vec<String> {
        vec![self.process.endpoint()]
    }
}
