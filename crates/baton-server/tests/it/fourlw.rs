//! ZooKeeper's four-letter words on the admin port: `/commands/<name>`.

use baton_client::CreateMode;
use baton_testkit::http_get;

use crate::support::TestServer;

async fn word(server: &TestServer, name: &str) -> (u16, String) {
    http_get(server.process.admin_addr(), &format!("/commands/{name}"))
        .await
        .unwrap_or_else(|error| panic!("GET /commands/{name}: {error}"))
}

/// The value of `key` in lines of `key<sep>value`.
fn field<'a>(text: &'a str, key: &str, sep: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(sep))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_word_when_all_are_whitelisted() {
    let server = TestServer::start(&["--4lw-whitelist", "*"]).await;
    server.client.create("/a", "hello", CreateMode::Persistent).await.unwrap();
    server.client.get("/a").await.unwrap();
    let status = server.status().await;

    assert_eq!(word(&server, "ruok").await, (200, "imok".to_owned()));
    assert_eq!(word(&server, "isro").await, (200, "rw".to_owned()));

    let (code, srvr) = word(&server, "srvr").await;
    assert_eq!(code, 200, "{srvr}");
    assert!(srvr.starts_with("Zookeeper version: 3.9.0-baton-"), "{srvr}");
    assert_eq!(field(&srvr, "Mode", ": "), "standalone");
    assert_eq!(field(&srvr, "Node count", ": "), status.node_count.to_string());
    assert_eq!(field(&srvr, "Zxid", ": "), status.last_zxid_hex);
    let received: u64 = field(&srvr, "Received", ": ").parse().unwrap();
    assert!(received >= 2, "{srvr}");

    let (code, stat) = word(&server, "stat").await;
    assert_eq!(code, 200, "{stat}");
    assert_eq!(stat.lines().nth(1), Some("Clients:"), "{stat}");
    assert_eq!(field(&stat, "Node count", ": "), status.node_count.to_string());

    let (code, mntr) = word(&server, "mntr").await;
    assert_eq!(code, 200, "{mntr}");
    for line in mntr.lines() {
        let (key, value) = line.split_once('\t').unwrap_or_else(|| panic!("{line}"));
        assert!(key.starts_with("zk_") && !value.is_empty(), "{line}");
    }
    assert_eq!(field(&mntr, "zk_znode_count", "\t"), status.node_count.to_string());
    assert_eq!(field(&mntr, "zk_server_state", "\t"), "standalone");
    let data: u64 = field(&mntr, "zk_approximate_data_size", "\t").parse().unwrap();
    assert!(data >= 5, "{mntr}");
    let open: u64 = field(&mntr, "zk_open_file_descriptor_count", "\t").parse().unwrap();
    assert!(open > 0, "{mntr}");

    let (code, conf) = word(&server, "conf").await;
    assert_eq!(code, 200, "{conf}");
    let port = server.process.client_addr().port().to_string();
    assert_eq!(field(&conf, "clientPort", "="), port);
    assert_eq!(field(&conf, "dataDir", "="), status.data_dir);
    assert_eq!(field(&conf, "serverId", "="), "1");

    let (code, wchs) = word(&server, "wchs").await;
    assert_eq!(code, 200, "{wchs}");
    assert_eq!(wchs, "0 connections watching 0 paths\nTotal watches:0\n");

    let (code, dirs) = word(&server, "dirs").await;
    assert_eq!(code, 200, "{dirs}");
    let size: u64 = field(&dirs, "datadir_size", ": ").parse().unwrap();
    assert!(size > 0, "{dirs}");
    assert_eq!(field(&dirs, "logdir_size", ": "), size.to_string());

    let (code, envi) = word(&server, "envi").await;
    assert_eq!(code, 200, "{envi}");
    assert!(envi.starts_with("Environment:\nzookeeper.version=3.9.0-baton-"), "{envi}");

    assert_eq!(word(&server, "dump").await.0, 404);
    assert_eq!(word(&server, "nope").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_whitelist_is_srvr_only() {
    let server = TestServer::start(&[]).await;
    let (code, srvr) = word(&server, "srvr").await;
    assert_eq!(code, 200, "{srvr}");
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    assert_eq!(
        word(&server, "mntr").await,
        (403, "mntr is not executed because it is not in the whitelist.\n".to_owned())
    );
    assert_eq!(word(&server, "ruok").await.0, 403);
    assert_eq!(word(&server, "dump").await.0, 404);
}
