//! Disk full: the server runs on a small tmpfs of its own (a mount namespace made with
//! `unshare -Urm`, which needs no privileges where user namespaces are allowed) whose
//! space a ballast file takes. Writes fill the rest; once less than the reserve is
//! free they are refused with a clear error and nothing changes; reads go on; when the
//! ballast goes, writes are taken again, and every acknowledged write is there.

use std::time::{Duration, Instant};

use baton_client::{Client, CreateMode, ErrorCode};
use baton_testkit::{Launch, ServerProcess, wait_until_async};

use crate::support::{DEADLINE, connect};

/// Mounts a 48 MiB tmpfs on $0, fills 24 MiB of it with a ballast file, and runs the
/// server there.
const ON_A_SMALL_DISK: &str = "mount -t tmpfs -o size=48m baton-test \"$0\" \
     && head -c 25165824 /dev/zero > \"$0/ballast\" && exec \"$@\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_they_resume_when_space_returns() {
    let outer = tempfile::tempdir().expect("a temporary directory");
    let mount = outer.path().join("small-disk");
    std::fs::create_dir(&mount).expect("the mount point");
    let mount_text = mount.to_string_lossy().into_owned();
    let reserve = (8u64 << 20).to_string();
    let wrapper = ["unshare", "-Urm", "sh", "-c", ON_A_SMALL_DISK, &mount_text];
    let launch = Launch {
        wrapper: wrapper.map(str::to_owned).to_vec(),
        ..Launch::new(&mount.join("data")).args(&["--disk-reserve-bytes", &reserve])
    };
    let server = ServerProcess::launch(launch).expect("a server on a small disk");
    let client = connect(&server).await;
    let data = vec![7u8; 256 << 10];

    // Fill the disk until a write is refused.
    let mut acknowledged = Vec::new();
    let refusal = loop {
        assert!(acknowledged.len() < 400, "400 × 256 KiB written to a 24 MiB disk: no refusal");
        let path = format!("/fill-{}", acknowledged.len());
        match client.create(&path, data.clone(), CreateMode::Persistent).await {
            Ok(_) => acknowledged.push(path),
            Err(error) => break error,
        }
    };
    assert!(!acknowledged.is_empty(), "the first write was refused: {refusal}");
    eprintln!("{} acknowledged before: {refusal}", acknowledged.len());
    assert_eq!(refusal.code(), ErrorCode::SystemError, "{refusal}");
    let message = refusal.to_string();
    assert!(message.contains("disk full") && message.contains("small-disk"), "{message}");
    assert!(message.contains("--disk-reserve-bytes"), "{message}");

    // Refused writes change nothing; reads and the server go on.
    let before = client.children("/").await.expect("a read on a full disk").0.len();
    let again = client.create("/one-more", "x", CreateMode::Persistent).await;
    assert!(again.is_err(), "a write was taken below the reserve");
    assert!(client.exists("/one-more").await.unwrap().is_none());
    assert_eq!(client.children("/").await.unwrap().0.len(), before);

    // Space returns: writes are taken again.
    let pid = server.pid().expect("running");
    let ballast = format!("/proc/{pid}/root{}/ballast", mount.display());
    std::fs::remove_file(&ballast).unwrap_or_else(|e| panic!("removing {ballast}: {e}"));
    let resumed = wait_until_async(Instant::now() + DEADLINE, || async {
        client.create("/after", "x", CreateMode::Persistent).await.is_ok()
    })
    .await;
    assert!(resumed, "writes still refused after space was freed:\n{}", server.log());

    // Nothing acknowledged was lost.
    for path in &acknowledged {
        let (got, _) = client.get(path).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(got.len(), data.len(), "{path}");
    }
    assert!(server.log().contains("disk space is back"), "{}", server.log());
    let _ = settle(&client).await;
}

/// One more round trip, so the server has logged what it did before it is killed.
async fn settle(client: &Client) -> Result<u64, baton_client::ClientError> {
    tokio::time::timeout(Duration::from_secs(5), client.sync("/")).await.unwrap_or(Ok(0))
}
