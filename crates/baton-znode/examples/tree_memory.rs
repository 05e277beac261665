//! Resident memory of a tree of N znodes with 100-byte values (Linux: VmRSS), and
//! the time to create them one txn each, and to encode and decode its snapshot:
//! `cargo run --release -p baton-znode --example tree_memory -- 1000000`.

use baton_znode::{CreateMode, CreateOp, DataTree, Txn, TxnOp};
use bytes::Bytes;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let before = rss_mib();
    let mut tree = DataTree::new();
    let mut zxid = 1;
    let create = |path: String, zxid: u64| Txn {
        auth: baton_znode::acl::Auth::none(),
        zxid,
        time_ms: 1,
        session: 0,
        op: TxnOp::Create(CreateOp {
            acl: baton_znode::acl::open_acl(),
            path,
            data: Bytes::from(vec![b'v'; 100]),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
        }),
    };
    tree.apply(&create("/bench".into(), zxid)).expect("create /bench");
    let mut applied = std::time::Duration::ZERO;
    for i in 0..n {
        zxid += 1;
        let txn = create(format!("/bench/{i:08}"), zxid);
        let started = std::time::Instant::now();
        tree.apply(&txn).expect("create");
        applied += started.elapsed();
    }
    let after = rss_mib();
    println!(
        "{n} znodes: {:.0} MiB ({:.0} bytes per znode, 100 of them data), created in {applied:.2?}",
        after - before,
        (after - before) * 1048576.0 / n as f64
    );
    let started = std::time::Instant::now();
    let encoded = tree.encode_snapshot();
    let encode = started.elapsed();
    let started = std::time::Instant::now();
    let decoded = DataTree::decode_snapshot(&encoded).expect("decodes");
    let decode = started.elapsed();
    assert_eq!(decoded.digest(), tree.digest());
    println!(
        "snapshot: {} MiB, encoded in {encode:.2?}, decoded in {decode:.2?}",
        encoded.len() >> 20
    );
}
