//! The short nemesis of every CI run: each workload for a few seconds under every
//! fault kind, on a real 3-member ensemble (fixed seeds). Longer runs:
//! `cargo xtask nemesis --matrix SECS` (see docs/reliability.md).

use std::time::Duration;

use baton_nemesis::{Options, faults, run};

/// Seconds of faults per workload.
const SECONDS: u64 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_workload_survives_every_fault_kind() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut failed = Vec::new();
    for (seed, workload) in ["register", "set", "lock", "members"].into_iter().enumerate() {
        let options = Options {
            nodes: 3,
            time: Duration::from_secs(SECONDS),
            faults: faults::ALL.to_vec(),
            workload: workload.to_owned(),
            seed: 100 + seed as u64,
            clients: 5,
            tick_ms: 100,
            server_bin: baton_server::testing::server_bin(),
            dir: dir.path().join(workload),
            server_args: Vec::new(),
        };
        let report = run(options).await.expect("the nemesis harness ran");
        eprintln!("{}", report.summary());
        for line in &report.faults.lines {
            eprintln!("  {line}");
        }
        for anomaly in &report.verdict.anomalies {
            eprintln!("  ANOMALY: {anomaly}");
        }
        assert!(report.verdict.ops > 100, "{workload}: too few operations to mean anything");
        assert!(!report.faults.injected.is_empty(), "{workload}: no fault was injected");
        if !report.passed() {
            failed.push(report.summary());
        }
    }
    assert!(failed.is_empty(), "nemesis runs found problems:\n{}", failed.join("\n"));
}
