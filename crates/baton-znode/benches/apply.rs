//! Throughput of the data tree: creates, data updates, a 10-op multi, and snapshot
//! encode/decode of a 100k-node tree. `cargo bench -p baton-znode -- --quick` runs
//! them briefly.

use std::hint::black_box;

use baton_znode::{CreateMode, CreateOp, DataTree, DeleteOp, MultiOp, SetDataOp, Txn, TxnOp};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const PARENTS: usize = 4;
const CREATES: usize = 10_000;
const SNAPSHOT_NODES: usize = 100_000;
const VALUE: &[u8; 100] = &[b'v'; 100];

/// Applies txns with increasing zxids.
struct Feeder {
    tree: DataTree,
}

impl Feeder {
    fn apply(&mut self, op: TxnOp) {
        let zxid = self.tree.last_zxid() + 1;
        let txn = Txn {
            auth: baton_znode::acl::Auth::none(),
            zxid,
            time_ms: zxid as i64,
            session: 0,
            op,
        };
        black_box(self.tree.apply(&txn).expect("bench txn failed"));
    }
}

fn create_op(path: String) -> CreateOp {
    CreateOp {
        acl: baton_znode::acl::open_acl(),
        path,
        data: Bytes::from_static(VALUE),
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    }
}

fn create(path: String) -> TxnOp {
    TxnOp::Create(create_op(path))
}

/// A tree with `PARENTS` parents and `per_parent` 100-byte children under each.
fn tree_with(per_parent: usize) -> DataTree {
    let mut feeder = Feeder { tree: DataTree::new() };
    for p in 0..PARENTS {
        feeder.apply(create(format!("/p{p}")));
        for c in 0..per_parent {
            feeder.apply(create(format!("/p{p}/n{c:08}")));
        }
    }
    feeder.tree
}

fn creates(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(CREATES as u64));
    group.bench_function("create_10k_sequential", |b| {
        b.iter_batched(
            || {
                let ops: Vec<TxnOp> = (0..CREATES)
                    .map(|i| {
                        TxnOp::Create(CreateOp {
                            acl: baton_znode::acl::open_acl(),
                            path: format!("/p{}/n-", i % PARENTS),
                            data: Bytes::from_static(VALUE),
                            mode: CreateMode::PersistentSequential,
                            ttl_ms: 0,
                        })
                    })
                    .collect();
                (Feeder { tree: tree_with(0) }, ops)
            },
            |(mut feeder, ops)| {
                for op in ops {
                    feeder.apply(op);
                }
                feeder
            },
            BatchSize::PerIteration,
        );
    });

    let mut feeder = Feeder { tree: tree_with(2_500) };
    group.throughput(Throughput::Elements(1));
    group.bench_function("set_data", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            let path = format!("/p{}/n{:08}", i % PARENTS, i % 2_500);
            let data = Bytes::from_static(VALUE);
            feeder.apply(TxnOp::SetData(SetDataOp { path, data, version: -1 }));
        });
    });

    // Five creates then five deletes of the same nodes: the tree does not grow.
    group.throughput(Throughput::Elements(10));
    group.bench_function("multi_10_ops", |b| {
        b.iter(|| {
            let creates = (0..5).map(|k| MultiOp::Create(create_op(format!("/p0/m{k}"))));
            let deletes = (0..5)
                .map(|k| MultiOp::Delete(DeleteOp { path: format!("/p0/m{k}"), version: -1 }));
            feeder.apply(TxnOp::Multi(creates.chain(deletes).collect()));
        });
    });
    group.finish();
}

fn snapshots(c: &mut Criterion) {
    let mut tree = tree_with(SNAPSHOT_NODES / PARENTS);
    let bytes = tree.encode_snapshot();
    let mut group = c.benchmark_group("snapshot_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(tree.node_count() as u64));
    group.bench_function("encode", |b| b.iter(|| black_box(tree.encode_snapshot())));
    // The same bytes in slices of 4,096 nodes, as the server writes them between
    // writes (here with no write in between: the walk's own cost).
    group.bench_function("encode_in_slices", |b| {
        b.iter(|| {
            let mut encoder = tree.begin_snapshot();
            while !tree.continue_snapshot(&mut encoder, 4096).expect("same tree") {}
            black_box(tree.finish_snapshot(encoder).expect("same tree"))
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| black_box(DataTree::decode_snapshot(&bytes).expect("valid snapshot")))
    });
    group.finish();
}

criterion_group!(benches, creates, snapshots);
criterion_main!(benches);
