//! Storage faults with real processes: a member whose disk lost entries it had
//! acknowledged must not vote with what is left, and repairs from its peers.
//!
//! The scenario that loses data in ZooKeeper and etcd (and in Baton before the
//! promise file): with one member down (`stale`), the other two acknowledge writes;
//! both are killed and one of them (`victim`) finds an acknowledged record of its
//! log corrupt. The victim and the stale member come back: together they are a
//! quorum by count, and with the old recovery the victim, its log cut at the damage,
//! would lead and the writes after the cut would be gone once the third member
//! rejoined and was truncated to that history. Now the victim knows it is damaged
//! (its log ends before its durable promise), does not vote, and nothing is served
//! until the third member is back; then the victim repairs from the leader. (The
//! store's journal holds a copy of the recent records and would write a damaged one
//! back on its own: the victim's journal copy is damaged too, so the repair must come
//! from the peers.) Done
//! with the victim as the leader, then as a follower, under a write load that runs
//! throughout; every acknowledged write is on every member at the end.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use baton_client::{Client, CreateMode};
use baton_testkit::wait_until_async;

use crate::support::{DEADLINE, metric, status};

struct Ensemble {
    members: baton_testkit::Ensemble,
    _dir: tempfile::TempDir,
}

/// Opens the sled database of a stopped member directly (sled releases its lock a
/// moment after the process is gone).
fn raw_sled(dir: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(error) if Instant::now() < deadline => {
                assert!(error.to_string().contains("could not acquire lock"), "raw open: {error}");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("raw sled open: {error}"),
        }
    }
}

/// Flips a byte in the log record `back` records before the end (each record is a
/// batch of entries this member flushed, so acknowledged); returns its first zxid.
fn corrupt_log_record(dir: &Path, back: usize) -> u64 {
    let db = raw_sled(dir);
    let log = db.open_tree(baton_log::LOG_TREE).expect("log tree");
    let keys: Vec<sled::IVec> = log.iter().keys().map(|k| k.expect("key")).collect();
    assert!(keys.len() > back, "only {} log records", keys.len());
    let key = keys[keys.len() - 1 - back].clone();
    let mut value = log.get(&key).expect("get").expect("the record").to_vec();
    let middle = value.len() / 2;
    value[middle] ^= 0x5a;
    log.insert(&key, value).expect("raw insert");
    db.flush().expect("raw flush");
    u64::from_be_bytes(key.as_ref().try_into().expect("an 8-byte key"))
}

/// Damages the journal's copy of entry `zxid` too (the store would otherwise write
/// the record back from it on open): a byte of its data, in every journal record
/// that holds it. The records flushed after it stay valid, so the store sees damage
/// in the middle of its journal, not a torn last write. If a checkpoint has emptied
/// the journal since, its base says how far the log reached and nothing is needed.
fn corrupt_journal_copy(dir: &Path, zxid: u64) {
    for name in baton_log::JOURNAL_FILES {
        let path = dir.join(name);
        let Ok(mut bytes) = std::fs::read(&path) else { continue };
        let needle = zxid.to_be_bytes();
        let hits: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect();
        for at in hits {
            // An entry is its zxid, its length (4 bytes), then its data.
            if let Some(byte) = bytes.get_mut(at + 12) {
                *byte ^= 0x5a;
            }
        }
        std::fs::write(&path, &bytes).expect("write the journal back");
    }
}

/// Creates `/load/<name>-<n>` until `stop`, through any member; records what was
/// acknowledged.
async fn writer(
    endpoints: Vec<String>,
    name: String,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<Mutex<bool>>,
) {
    let mut n = 0u64;
    let mut client: Option<Client> = None;
    while !*stop.lock().unwrap() {
        let Some(c) = &client else {
            client = Client::connect(&endpoints).await.ok();
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        };
        let path = format!("/load/{name}-{n}");
        n += 1;
        if c.create(&path, path.clone(), CreateMode::Persistent).await.is_ok() {
            acked.lock().unwrap().push(path);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Ensemble {
    async fn settled(&self) -> u32 {
        self.members.wait_settled(DEADLINE).await.expect("a stable leader")
    }

    async fn wait_acked(&self, acked: &Arc<Mutex<Vec<String>>>, more: usize) {
        let target = acked.lock().unwrap().len() + more;
        let grew = wait_until_async(Instant::now() + DEADLINE, || async {
            acked.lock().unwrap().len() >= target
        })
        .await;
        assert!(grew, "the load made no progress: {} acknowledged", acked.lock().unwrap().len());
    }

    /// One round: `victim` and `partner` acknowledge writes while `stale` is down,
    /// then the victim's disk loses an acknowledged record.
    async fn round(&mut self, acked: &Arc<Mutex<Vec<String>>>, victim: u32, partner: u32) {
        let stale = 6 - victim - partner;
        self.members.kill(stale);
        // With `stale` down, every write needs the victim's acknowledgement.
        self.wait_acked(acked, 150).await;
        self.members.kill(victim);
        self.members.kill(partner);
        let dir = self.members.member(victim).data_dir().to_path_buf();
        let zxid = corrupt_log_record(&dir, 3);
        corrupt_journal_copy(&dir, zxid);
        eprintln!(
            "member {victim}: corrupted its log record at {zxid:#x} (acknowledged) and the journal's copy"
        );

        // The victim and the stale member: a quorum by count, but the victim does not
        // vote, so nothing is elected and nothing acknowledged can be lost.
        self.members.start_members(&[victim, stale]).expect("the members start");
        let victim_process = self.members.member(victim);
        let damaged = wait_until_async(Instant::now() + DEADLINE, || async {
            victim_process.status().await.is_ok_and(|s| s.ensemble.damaged)
        })
        .await;
        assert!(damaged, "member {victim} does not know its disk lost acknowledged entries");
        let elected = wait_until_async(Instant::now() + Duration::from_secs(3), || async {
            self.members.leader().await.is_some()
        })
        .await;
        assert!(!elected, "a damaged member and a stale one elected a leader");

        // The partner is back: it leads or follows; the victim repairs from the leader.
        self.members.start_member(partner).expect("the partner starts");
        self.settled().await;
        let victim_process = self.members.member(victim);
        let repaired = wait_until_async(Instant::now() + DEADLINE, || async {
            victim_process.status().await.is_ok_and(|s| !s.ensemble.damaged)
        })
        .await;
        assert!(repaired, "member {victim} did not repair from its peers");
        assert!(metric(victim_process, "baton_storage_repairs_total").await >= 1);
        self.wait_acked(acked, 50).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acknowledged_entry_corrupted_on_the_leader_then_on_a_follower_loses_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let members = baton_testkit::Ensemble::start(dir.path(), 3, &["--tick-ms", "100"])
        .expect("the members start");
    let mut e = Ensemble { members, _dir: dir };
    let leader = e.settled().await;
    let endpoints = e.members.endpoints();
    Client::connect(&endpoints)
        .await
        .expect("connect")
        .create("/load", "", CreateMode::Persistent)
        .await
        .expect("create /load");

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(Mutex::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            tokio::spawn(writer(
                endpoints.clone(),
                format!("w{w}"),
                Arc::clone(&acked),
                Arc::clone(&stop),
            ))
        })
        .collect();
    e.wait_acked(&acked, 100).await;

    // The leader's disk, then a follower's.
    let partner = if leader == 1 { 2 } else { 1 };
    e.round(&acked, leader, partner).await;
    let leader = e.settled().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    e.round(&acked, follower, leader).await;

    // A damaged member alone does not stop the ensemble: the others serve while it
    // repairs.
    let leader = e.settled().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    e.members.kill(follower);
    let dir = e.members.member(follower).data_dir().to_path_buf();
    corrupt_log_record(&dir, 1);
    e.members.start_member(follower).expect("the follower starts");
    e.wait_acked(&acked, 100).await;

    *stop.lock().unwrap() = true;
    for writer in writers {
        writer.await.expect("writer");
    }
    e.settled().await;
    e.members.wait_converged(DEADLINE).await.expect("converged members");
    let acked = acked.lock().unwrap().clone();
    eprintln!("{} writes acknowledged across two damaged disks", acked.len());
    for id in 1..=3 {
        let process = e.members.member(id);
        assert!(!status(process).await.ensemble.damaged, "member {id} still damaged");
        let client = crate::support::connect(process).await;
        client.sync("/").await.expect("sync");
        let (children, _) = client.children("/load").await.expect("list /load");
        let present: std::collections::BTreeSet<String> =
            children.into_iter().map(|name| format!("/load/{name}")).collect();
        let lost: Vec<&String> = acked.iter().filter(|p| !present.contains(*p)).collect();
        assert!(lost.is_empty(), "member {id} lost {} acknowledged writes: {lost:?}", lost.len());
    }
}

/// A running member's scrubber reads sled's blob files from the disk (a snapshot
/// over ~128 KiB is one): a flipped byte in one is found, logged, counted and
/// repaired from memory (a new snapshot, the damaged one purged), and the member
/// restarts with everything.
#[tokio::test]
async fn scrubbing_finds_a_damaged_snapshot_on_disk_and_repairs_it_from_memory() {
    let args = ["--snapshot-every-txns", "4", "--scrub-bytes-per-sec", "50000000"];
    let mut server = crate::support::TestServer::start(&args).await;
    let big = "s".repeat(100 * 1024);
    for n in 0..4 {
        let path = format!("/big{n}");
        server.client.create(&path, big.clone(), CreateMode::Persistent).await.expect("create");
    }
    let digest = server.digest().await;
    let blobs = server.data_dir().join("blobs");
    let snapshot_blob = wait_until_async(Instant::now() + DEADLINE, || async {
        std::fs::read_dir(&blobs).is_ok_and(|mut files| files.next().is_some())
    })
    .await;
    assert!(snapshot_blob, "no snapshot in a blob file");
    // Only files old enough to be settled are verified: age them.
    let mut damaged = 0;
    for entry in std::fs::read_dir(&blobs).expect("blobs") {
        let path = entry.expect("entry").path();
        let mut bytes = std::fs::read(&path).expect("read blob");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&path, bytes).expect("damage blob");
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
        damaged += 1;
    }
    let repaired = wait_until_async(Instant::now() + DEADLINE, || async {
        server.metric("baton_storage_damage_found_total").await >= damaged
            && server.metric("baton_storage_repairs_total").await >= 1
    })
    .await;
    assert!(repaired, "the scrubber did not find and repair {damaged} damaged blob files");
    assert!(server.process.log().contains("scrub: damaged sled blob file found"));

    server.restart(&args).await;
    assert_eq!(server.digest().await, digest, "the member restarts with everything");
    assert!(!server.status().await.ensemble.damaged);
}

/// Damages sled's configuration file of a stopped server: sled refuses to open the
/// store at all (`Corruption`).
fn break_sled(dir: &Path) {
    std::fs::write(dir.join("conf"), b"segment_size: banana\n").expect("damage conf");
}

/// An ensemble of one whose store cannot be read has nobody to repair from: it
/// refuses to start and says why; `--accept-data-loss` starts it on what is left
/// (nothing), keeping the broken files aside.
#[tokio::test]
async fn a_lone_member_with_an_unreadable_store_refuses_to_start_unless_told() {
    let mut server = crate::support::TestServer::start(&[]).await;
    for n in 0..20 {
        server.client.create(&format!("/n{n}"), "x", CreateMode::Persistent).await.expect("create");
    }
    server.process.kill();
    let dir = server.data_dir();
    break_sled(&dir);
    let data_dir = dir.to_str().expect("utf-8 path");
    let run = |extra: &[&str]| {
        let mut args = vec!["--data-dir", data_dir, "--client-addr", "127.0.0.1:0"];
        args.extend(["--admin-addr", "127.0.0.1:0", "--zk-addr", "off"]);
        args.extend_from_slice(extra);
        baton_testkit::run_server(args, &[]).expect("run the server")
    };
    let refused = run(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("lost acknowledged writes"), "{stderr}");
    assert!(stderr.contains("cannot be read"), "{stderr}");
    assert!(stderr.contains(data_dir), "{stderr}");
    assert!(stderr.contains("--accept-data-loss"), "{stderr}");
    assert!(dir.join("db").exists(), "nothing moved before the operator decides");

    server.restart(&["--accept-data-loss"]).await;
    assert!(!server.status().await.ensemble.damaged);
    server.client.create("/after", "x", CreateMode::Persistent).await.expect("serving");
    let aside = std::fs::read_dir(&dir)
        .expect("data dir")
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("damaged-"));
    assert!(aside, "the broken files are kept aside");
}

/// A member of an ensemble whose store cannot be read at all starts from an empty
/// store as damaged, and takes everything from its peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_with_an_unreadable_store_repairs_all_of_it_from_its_peers() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let members = baton_testkit::Ensemble::start(dir.path(), 3, &["--tick-ms", "100"])
        .expect("the members start");
    let mut e = Ensemble { members, _dir: dir };
    let leader = e.settled().await;
    let client = crate::support::connect(e.members.member(leader)).await;
    for n in 0..50 {
        client.create(&format!("/n{n}"), "x", CreateMode::Persistent).await.expect("create");
    }
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    e.members.kill(follower);
    break_sled(e.members.member(follower).data_dir());
    e.members.start_member(follower).expect("the member starts");
    e.settled().await;
    let statuses = e.members.wait_converged(DEADLINE).await.expect("converged members");
    assert!(statuses.iter().all(|s| !s.ensemble.damaged));
    let process = e.members.member(follower);
    assert!(metric(process, "baton_storage_repairs_total").await >= 1);
    assert!(process.log().contains("moved aside"), "the broken files are kept aside");
}
