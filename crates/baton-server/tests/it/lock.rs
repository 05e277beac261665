//! A second server on a data directory in use fails fast, naming the directory.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use baton_server::testing::server_bin;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_directory_fails_fast() {
    let mut first = TestServer::start(&[]).await;
    let dir = first.data_dir();
    let started = Instant::now();
    let output = Command::new(server_bin())
        .arg("--data-dir")
        .arg(&dir)
        .args(["--client-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("run a second baton-server");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no address line: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("baton-server: another baton-server is using {}\n", dir.display());
    assert_eq!(stderr, expected);
    first.assert_serving().await;
}
