//! Group-commit throughput of the sled store: one `append` of a batch followed by
//! one `flush`, reported per entry. With fsync on (what servers run) every flush
//! ends in an fdatasync of sled's data file; with it off only sled's own
//! `sync_file_range` remains, which shows what the real barrier costs.
//! `promise/1` is one entry per flush followed by the promise write a server makes
//! before it acknowledges (a 64-byte slot and its own fdatasync): the cost of
//! knowing, after a disk fault, what this member acknowledged.

use std::time::Duration;

use baton_log::{LogEntry, LogStore, Promise, PromiseFile, SledOptions, SledStore};
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ENTRY_BYTES: usize = 128;
const BATCH_LENS: [usize; 3] = [1, 16, 256];

fn append_flush(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_flush");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);

    for fsync in [true, false] {
        let label = if fsync { "fdatasync" } else { "no_fsync" };
        for batch_len in BATCH_LENS {
            let tmp = tempfile::tempdir().expect("temp dir");
            let mut store =
                SledStore::open_with(tmp.path(), SledOptions { fsync, ..SledOptions::default() })
                    .expect("open the sled store");
            let data = Bytes::from(vec![0xB7; ENTRY_BYTES]);
            let mut next_zxid = 1u64;

            group.throughput(Throughput::Elements(batch_len as u64));
            group.bench_function(BenchmarkId::new(label, batch_len), |b| {
                b.iter(|| {
                    let batch: Vec<LogEntry> = (next_zxid..next_zxid + batch_len as u64)
                        .map(|zxid| LogEntry { zxid, data: data.clone() })
                        .collect();
                    next_zxid += batch_len as u64;
                    store.append(&batch).expect("append");
                    store.flush().expect("flush");
                });
            });
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut store = SledStore::open(tmp.path()).expect("open the sled store");
    let (mut promise, _) = PromiseFile::open(tmp.path(), true).expect("open the promise");
    let data = Bytes::from(vec![0xB7; ENTRY_BYTES]);
    let mut next_zxid = 1u64;
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("promise", 1), |b| {
        b.iter(|| {
            store.append(&[LogEntry { zxid: next_zxid, data: data.clone() }]).expect("append");
            store.flush().expect("flush");
            promise.write(Promise { zxid: next_zxid, ..Promise::default() }).expect("promise");
            next_zxid += 1;
        });
    });
    group.finish();
}

/// A whole purge of `PURGE_ENTRIES` logged entries behind a snapshot of
/// `SNAPSHOT_BYTES` (one older snapshot deleted), in the server's 256-entry steps:
/// which snapshots are kept is decided from their checksums once per purge, not at
/// every step.
fn purge(c: &mut Criterion) {
    const PURGE_ENTRIES: u64 = 20_000;
    const SNAPSHOT_BYTES: usize = 16 << 20;
    let mut group = c.benchmark_group("purge");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(PURGE_ENTRIES));
    let data = Bytes::from(vec![0xB7; ENTRY_BYTES]);
    let snapshot = Bytes::from(vec![0x5A; SNAPSHOT_BYTES]);
    group.bench_function(BenchmarkId::new("steps_of_256", PURGE_ENTRIES), |b| {
        b.iter_batched(
            || {
                let tmp = tempfile::tempdir().expect("temp dir");
                let options = SledOptions { fsync: false, ..SledOptions::default() };
                let mut store = SledStore::open_with(tmp.path(), options).expect("open");
                for first in (1..=PURGE_ENTRIES).step_by(100) {
                    let batch: Vec<LogEntry> = (first..first + 100)
                        .map(|zxid| LogEntry { zxid, data: data.clone() })
                        .collect();
                    store.append(&batch).expect("append");
                    store.flush().expect("flush");
                }
                for zxid in [1, PURGE_ENTRIES] {
                    let snapshot = baton_log::Snapshot { zxid, data: snapshot.clone() };
                    store.save_snapshot(snapshot).expect("snapshot");
                }
                (tmp, store)
            },
            |(_tmp, mut store)| {
                let mut deleted = 0;
                loop {
                    let step = store.purge_step(1, 256).expect("purge step");
                    deleted += step.deleted;
                    if step.done {
                        break;
                    }
                }
                assert_eq!(deleted as u64, PURGE_ENTRIES);
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, append_flush, purge);
criterion_main!(benches);
