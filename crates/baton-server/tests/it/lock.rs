//! A second server on a data directory in use fails fast, naming the directory.

use std::time::{Duration, Instant};

use baton_testkit::run_server;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_directory_fails_fast() {
    let mut first = TestServer::start(&[]).await;
    let dir = first.data_dir();
    let started = Instant::now();
    let args = [
        "--data-dir".as_ref(),
        dir.as_os_str(),
        "--client-addr".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--admin-addr".as_ref(),
        "127.0.0.1:0".as_ref(),
    ];
    let output: std::process::Output =
        run_server(args, &[("RUST_LOG", "off")]).expect("run a second baton-server");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no address line: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("baton-server: another baton-server is using {}\n", dir.display());
    assert_eq!(stderr, expected);
    first.assert_serving().await;
}
