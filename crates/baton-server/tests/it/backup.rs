//! Backup and restore: a snapshot fetched from the admin port's /snapshot, restored
//! with `baton-server --restore-snapshot` into a new data directory, serves the same
//! tree; a non-empty directory and a damaged file are refused.

use baton_client::CreateMode;
use baton_testkit::{ServerProcess, run_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestServer, connect, status};

/// GET `path` from `addr`; the body as bytes (the admin port sends a length, not chunks).
async fn get_bytes(addr: std::net::SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a header end");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    (head, response[end + 4..].to_vec())
}

fn restore(file: &std::path::Path, dir: &std::path::Path) -> std::process::Output {
    let args =
        ["--restore-snapshot".as_ref(), file.as_os_str(), "--data-dir".as_ref(), dir.as_os_str()];
    run_server(args, &[]).expect("run baton-server --restore-snapshot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_a_new_data_directory() {
    let server = TestServer::start(&[]).await;
    server.client.create("/app", b"config".to_vec(), CreateMode::Persistent).await.unwrap();
    for i in 0..50 {
        let path = format!("/app/n{i}");
        server.client.create(&path, vec![i as u8; 100], CreateMode::Persistent).await.unwrap();
    }
    server.client.set("/app/n7", b"seven".to_vec(), -1).await.unwrap();
    let digest = server.digest().await;

    let (head, body) = get_bytes(server.process.admin_addr(), "/snapshot").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("x-baton-zxid: 0x"), "{head}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.snap");
    std::fs::write(&file, &body).unwrap();

    let restored = dir.path().join("restored");
    let run = restore(&file, &restored);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    // Not over existing data, and not from a damaged file.
    let again = restore(&file, &restored);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"), "{again:?}");
    let mut damaged = body.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    let bad_file = dir.path().join("damaged.snap");
    std::fs::write(&bad_file, &damaged).unwrap();
    let bad = restore(&bad_file, &dir.path().join("other"));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid snapshot"), "{bad:?}");

    let process = ServerProcess::start(&restored, &[]);
    let client = connect(&process).await;
    let restored_status = status(&process).await;
    assert_eq!(restored_status.digest, digest, "the same tree");
    assert_eq!(client.get("/app/n7").await.unwrap().0.as_ref(), b"seven");
    assert_eq!(client.children("/app").await.unwrap().0.len(), 50);
    // And it takes writes.
    client.create("/app/after", Vec::new(), CreateMode::Persistent).await.unwrap();
}
