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

criterion_group!(benches, append_flush);
criterion_main!(benches);
