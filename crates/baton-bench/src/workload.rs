//! The workloads, run the same way against every system:
//!
//! - write, read and 90/10 read/write, each with 1 client and 1 request in flight,
//!   8 clients × 4 in flight (32) and 32 clients × 8 in flight (256), closed loop for
//!   the workload time; writes alternate between creating a new key and replacing the
//!   value of an existing one, 100-byte values;
//! - a watch fan-out: one writer changes a key that every watcher (a client of its
//!   own, spread over the members) watches persistently; latency is from the write's
//!   start to each watcher's event;
//! - failover: the leader is SIGKILLed under a 32-in-flight write load; the time is
//!   from the kill to the first write sent after it that succeeds;
//! - bulk load of many keys (atomic batches of 100), the members' memory after it, and
//!   the time from restarting every member (after SIGKILL) until a read of the last
//!   loaded key and a write both succeed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};
use baton_client::ClientTls;
use baton_testkit::Rng;
use bytes::Bytes;
use tokio::{
    sync::mpsc,
    task::JoinSet,
    time::{Instant, sleep, timeout},
};

use crate::{
    Options,
    driver::Conn,
    report::Row,
    stats::Latencies,
    systems::{Ensemble, Kind},
};

/// How long one operation may take before it counts as failed.
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ensemble may take to serve after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// The pause a load task takes after a failed operation before the next.
const RETRY_PAUSE: Duration = Duration::from_millis(10);
/// Keys per batch in the bulk load.
pub const LOAD_BATCH: usize = 100;
/// Value size of every write.
pub const VALUE_BYTES: usize = 100;

const WATCHED: &str = "/bench/watched";

/// The operation mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    Write,
    Read,
    ReadMostly,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Write => "write",
            Mix::Read => "read",
            Mix::ReadMostly => "90/10 read/write",
        }
    }
}

/// Clients × requests in flight per client.
pub const SHAPES: [(usize, usize); 3] = [(1, 1), (8, 4), (32, 8)];

fn key(index: usize) -> String {
    format!("/bench/k{index:07}")
}

/// A key of `0..keys`, drawn from `rng`.
fn any_key(rng: &mut Rng, keys: usize) -> String {
    key(rng.below(keys as u64) as usize)
}

/// Names of created keys, unique across workloads and tasks.
static CREATED: AtomicU64 = AtomicU64::new(0);

/// Everything measured of one system.
pub async fn run_system(kind: Kind, options: &Options) -> Result<Vec<Row>> {
    let dir = options.dir.join(kind.name());
    let mut ensemble = Ensemble::start(kind, options.members, &dir, options)?;
    let endpoints = ensemble.endpoints();
    wait_ready(&mut ensemble, None).await?;
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);

    let tls = ensemble.client_tls.clone();
    let setup = Conn::connect(kind, &endpoints, 0, tls.as_ref()).await?;
    for parent in ["/bench", "/bench/w", "/bench/m"] {
        setup
            .create_if_absent(parent, &Bytes::new())
            .await
            .with_context(|| format!("creating {parent}"))?;
    }
    setup.create_if_absent(WATCHED, &value).await?;
    let keys: Vec<String> = (0..options.keys).map(key).collect();
    for chunk in keys.chunks(LOAD_BATCH) {
        setup.create_batch(chunk, &value).await.context("creating the keys")?;
    }

    let most = SHAPES.iter().map(|s| s.0).max().unwrap_or(1);
    let conns = connect_many(kind, &endpoints, most, tls.as_ref()).await?;
    let mut rows = Vec::new();
    for mix in [Mix::Write, Mix::Read, Mix::ReadMostly] {
        for (clients, in_flight) in SHAPES {
            if !options.wants(&shape_name(mix, clients, in_flight)) {
                continue;
            }
            let row =
                closed_loop(&ensemble, &conns[..clients], in_flight, mix, options, &value).await?;
            progress(&row);
            rows.push(row);
            ensemble.check_alive()?;
        }
    }
    // Sequential writes at the leader and at a follower, apart: a follower forwards
    // each write to the leader, which is a different path (and the plain 1 × 1 row
    // talks to whichever member its client reached first).
    for (place, at_leader) in [("at the leader", true), ("at a follower", false)] {
        let name = format!("{}, {place}", shape_name(Mix::Write, 1, 1));
        if !options.wants(&name) {
            continue;
        }
        let leader = ensemble.leader().await?;
        let index = if at_leader { leader } else { (leader + 1) % endpoints.len() };
        let one = [endpoints[index].clone()];
        let conn = Conn::connect(kind, &one, 0, tls.as_ref()).await?;
        let mut row = closed_loop(&ensemble, &[conn], 1, Mix::Write, options, &value).await?;
        row.workload = name;
        progress(&row);
        rows.push(row);
        ensemble.check_alive()?;
    }
    if options.wants("watch fan-out") {
        let row = watch_fanout(&ensemble, &conns[0], options, &value).await?;
        progress(&row);
        rows.push(row);
        ensemble.check_alive()?;
    }
    if !options.skip_failover && options.wants("failover") {
        let row = failover(&mut ensemble, &conns[..8], options, &value).await?;
        progress(&row);
        rows.push(row);
    }
    drop(conns);
    if options.sessions > 0 && kind != Kind::Etcd && !options.server_measured_by_other(kind) {
        let row = session_memory(&ensemble, options.sessions).await?;
        progress(&row);
        rows.push(row);
        ensemble.check_alive()?;
    }
    let (clients, in_flight) = SHAPES[SHAPES.len() - 1];
    let observers_row = format!("{}, {OBSERVERS_ROW}", shape_name(Mix::Read, clients, in_flight));
    if kind == Kind::Baton && options.wants(&observers_row) {
        let row = observer_reads(options, &value).await?;
        progress(&row);
        rows.push(row);
    }
    if options.server_measured_by_other(kind) {
        // The load goes through this system's client path; what the server holds
        // after it and how it restarts are measured once, for the other system.
        if options.wants("load") {
            let (load, _) = bulk_load(&ensemble, options, &value).await?;
            progress(&load);
            rows.push(load);
        }
    } else if options.wants("load") || options.wants("memory") || options.wants("restart") {
        let (load, memory) = bulk_load(&ensemble, options, &value).await?;
        progress(&load);
        progress(&memory);
        let restart = restart(&mut ensemble, options, &value).await?;
        progress(&restart);
        rows.extend([load, memory, restart]);
    }
    Ok(rows)
}

/// Waits until every running member (or only `only`) takes a write.
async fn wait_ready(ensemble: &mut Ensemble, only: Option<usize>) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let endpoints = ensemble.endpoints();
    for index in 0..endpoints.len() {
        if only.is_some_and(|only| only != index) || !ensemble.running(index) {
            continue;
        }
        loop {
            ensemble.check_alive()?;
            let attempt = async {
                let tls = ensemble.client_tls.as_ref();
                let conn = Conn::connect(ensemble.kind, &endpoints[index..=index], 0, tls).await?;
                conn.create_if_absent("/bench", &Bytes::new()).await?;
                Ok::<_, anyhow::Error>(())
            };
            match timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(())) => break,
                Ok(Err(error)) if Instant::now() > deadline => {
                    return Err(error.context(format!("{} never served", endpoints[index])));
                }
                Err(_) if Instant::now() > deadline => bail!("{} never served", endpoints[index]),
                _ => sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

/// `n` connections, spread evenly over the members.
async fn connect_many(
    kind: Kind,
    endpoints: &[String],
    n: usize,
    tls: Option<&ClientTls>,
) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    // A few at a time: a thousand handshakes at once would time some of them out.
    for start in (0..n).step_by(50) {
        let mut set = JoinSet::new();
        for i in start..(start + 50).min(n) {
            let (endpoints, tls) = (endpoints.to_vec(), tls.cloned());
            set.spawn(async move {
                let first = i % endpoints.len();
                (i, Conn::connect(kind, &endpoints, first, tls.as_ref()).await)
            });
        }
        let mut batch: Vec<(usize, Conn)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (i, conn) = joined?;
            batch.push((i, conn?));
        }
        batch.sort_by_key(|(i, _)| *i);
        conns.extend(batch.into_iter().map(|(_, c)| c));
    }
    Ok(conns)
}

/// One operation of `mix`.
async fn one_op(conn: &Conn, mix: Mix, rng: &mut Rng, keys: usize, value: &Bytes) -> Result<()> {
    let write = match mix {
        Mix::Write => true,
        Mix::Read => false,
        Mix::ReadMostly => rng.below(10) == 0,
    };
    if !write {
        conn.get(&any_key(rng, keys)).await?;
    } else if mix == Mix::Write && rng.below(2) == 0 {
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        conn.create(&format!("/bench/w/{n:010}"), value).await?;
    } else {
        conn.set(&any_key(rng, keys), value).await?;
    }
    Ok(())
}

async fn closed_loop(
    ensemble: &Ensemble,
    conns: &[Conn],
    in_flight: usize,
    mix: Mix,
    options: &Options,
    value: &Bytes,
) -> Result<Row> {
    let stages_before = if mix == Mix::Read { Vec::new() } else { ensemble.write_stages().await };
    let cpu_before = ensemble.cpu_secs();
    let start = Instant::now();
    let deadline = start + options.workload_time;
    let mut tasks = JoinSet::new();
    for (c, conn) in conns.iter().enumerate() {
        for j in 0..in_flight {
            let conn = conn.clone();
            let value = value.clone();
            let keys = options.keys;
            let mut rng = Rng::new((c * 1000 + j) as u64);
            tasks.spawn(async move {
                let mut latencies = Latencies::default();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    match timeout(OP_TIMEOUT, one_op(&conn, mix, &mut rng, keys, &value)).await {
                        Ok(Ok(())) => latencies.record(began.elapsed()),
                        _ => {
                            errors += 1;
                            sleep(RETRY_PAUSE).await;
                        }
                    }
                }
                (latencies, errors)
            });
        }
    }
    let mut latencies = Latencies::default();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (l, e) = joined?;
        latencies.merge(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ops = latencies.len() as u64;
    let cpu = ensemble.cpu_secs() - cpu_before;
    let stages = stage_deltas(stages_before, ensemble.write_stages().await);
    Ok(Row {
        system: ensemble.kind,
        workload: shape_name(mix, conns.len(), in_flight),
        ops,
        throughput: Some(ops as f64 / elapsed),
        latency_ms: Some(percentiles(&mut latencies)),
        errors,
        cpu_per_kop: (ops > 0).then(|| cpu / (ops as f64 / 1000.0)),
        rss: ensemble.rss(),
        secs: None,
        stages,
        cdf: latencies.cdf(),
    })
}

/// Each member's write stages over a workload: the histograms' growth from `before`
/// to `after` (members absent from `before` count from zero), as means in µs.
fn stage_deltas(
    before: Vec<crate::systems::StageSample>,
    after: Vec<crate::systems::StageSample>,
) -> Vec<crate::report::MemberStages> {
    if before.is_empty() {
        return Vec::new();
    }
    after
        .into_iter()
        .map(|sample| {
            let (id, leads) = (sample.id, sample.leads);
            let earlier = before.iter().find(|b| b.id == id).map(|b| &b.totals);
            let stages = sample
                .totals
                .into_iter()
                .map(|(name, sum, count)| {
                    let (sum0, count0) = earlier
                        .and_then(|s| s.iter().find(|(n, _, _)| *n == name))
                        .map_or((0.0, 0), |(_, s, c)| (*s, *c));
                    let count = count.saturating_sub(count0);
                    let mean_us = if count == 0 { 0.0 } else { (sum - sum0) * 1e6 / count as f64 };
                    (name, mean_us, count)
                })
                .collect();
            crate::report::MemberStages { id, leads, stages }
        })
        .collect()
}

/// What `sessions` open sessions cost the members: their resident memory with the
/// sessions open, less before, per session (all members together, in the row's
/// name), and the time it took to open them.
async fn session_memory(ensemble: &Ensemble, sessions: usize) -> Result<Row> {
    let tls = ensemble.client_tls.clone();
    let before = ensemble.rss();
    let started = Instant::now();
    let conns = connect_many(ensemble.kind, &ensemble.endpoints(), sessions, tls.as_ref()).await?;
    let opened = started.elapsed();
    // Let the members settle (sessions are replicated; buffers drain).
    sleep(Duration::from_secs(2)).await;
    let after = ensemble.rss();
    let per_session = after.0.saturating_sub(before.0) / sessions as u64;
    drop(conns);
    Ok(Row {
        system: ensemble.kind,
        workload: format!(
            "{sessions} sessions open: {per_session} bytes each (all members); ops/s = opened/s"
        ),
        ops: sessions as u64,
        throughput: Some(sessions as f64 / opened.as_secs_f64().max(1e-9)),
        latency_ms: None,
        errors: 0,
        cpu_per_kop: None,
        rss: after,
        secs: Some(opened.as_secs_f64()),
        stages: Vec::new(),
        cdf: Vec::new(),
    })
}

/// The observer row's topology, after its shape.
const OBSERVERS_ROW: &str = "3 voters + 2 observers";

/// Reads scale with observers: the read workload of the largest shape on 3 voters
/// and 2 observers, clients spread over all five (compare with the same shape's row
/// on 3 voters). On one machine every member shares the same cores: what observers
/// add there is members to serve reads, not CPU.
async fn observer_reads(options: &Options, value: &Bytes) -> Result<Row> {
    let dir = options.dir.join("baton-observers");
    let mut ensemble = Ensemble::start_with_observers(Kind::Baton, 3, 2, &dir, options)?;
    wait_ready(&mut ensemble, None).await?;
    let endpoints = ensemble.endpoints();
    let tls = ensemble.client_tls.clone();
    let setup = Conn::connect(Kind::Baton, &endpoints, 0, tls.as_ref()).await?;
    setup.create_if_absent("/bench", &Bytes::new()).await?;
    let keys: Vec<String> = (0..options.keys).map(key).collect();
    for chunk in keys.chunks(LOAD_BATCH) {
        setup.create_batch(chunk, value).await.context("creating the keys")?;
    }
    // Every member has applied the keys before the reads start.
    let last = key(options.keys - 1);
    for index in 0..endpoints.len() {
        let one = &endpoints[index..=index];
        let conn = Conn::connect(Kind::Baton, one, 0, tls.as_ref()).await?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while conn.get(&last).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "{} never applied the keys", one[0]);
            sleep(Duration::from_millis(50)).await;
        }
    }
    let (clients, in_flight) = SHAPES[SHAPES.len() - 1];
    let conns = connect_many(Kind::Baton, &endpoints, clients, tls.as_ref()).await?;
    let mut row = closed_loop(&ensemble, &conns, in_flight, Mix::Read, options, value).await?;
    row.workload = format!("{}, {OBSERVERS_ROW}", row.workload);
    ensemble.check_alive()?;
    Ok(row)
}

fn shape_name(mix: Mix, clients: usize, in_flight: usize) -> String {
    format!("{}, {clients} × {in_flight} in flight", mix.name())
}

fn percentiles(latencies: &mut Latencies) -> [f64; 3] {
    [latencies.quantile_ms(0.5), latencies.quantile_ms(0.99), latencies.quantile_ms(0.999)]
}

fn progress(row: &Row) {
    let what = match (row.throughput, row.secs) {
        (_, Some(secs)) => format!("{secs:.2} s"),
        (Some(ops), None) => format!("{ops:.0} ops/s"),
        (None, None) => format!("{:.0} MiB", row.rss.0 as f64 / 1048576.0),
    };
    eprintln!("bench: {} {}: {what}", row.system.name(), row.workload);
}

async fn watch_fanout(
    ensemble: &Ensemble,
    writer: &Conn,
    options: &Options,
    value: &Bytes,
) -> Result<Row> {
    let endpoints = ensemble.endpoints();
    let tls = ensemble.client_tls.as_ref();
    let watchers = connect_many(ensemble.kind, &endpoints, options.watchers, tls).await?;
    let (events, mut arrivals) = mpsc::unbounded_channel::<Instant>();
    let mut tasks = JoinSet::new();
    for conn in &watchers {
        let mut watcher = conn.watch(WATCHED).await?;
        let events = events.clone();
        tasks.spawn(async move {
            while watcher.changed().await.is_ok() {
                if events.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
    }
    let cpu_before = ensemble.cpu_secs();
    let mut latencies = Latencies::default();
    let mut missing = 0u64;
    let mut busy = Duration::ZERO;
    for _ in 0..options.watch_rounds {
        let began = Instant::now();
        writer.set(WATCHED, value).await.context("changing the watched key")?;
        let mut last = began;
        for _ in 0..watchers.len() {
            match timeout(OP_TIMEOUT, arrivals.recv()).await {
                Ok(Some(at)) => {
                    latencies.record(at - began);
                    last = last.max(at);
                }
                _ => {
                    missing += 1;
                }
            }
        }
        busy += last - began;
    }
    let cpu = ensemble.cpu_secs() - cpu_before;
    tasks.abort_all();
    let ops = latencies.len() as u64;
    let rss = ensemble.rss();
    drop(watchers);
    Ok(Row {
        system: ensemble.kind,
        workload: format!("watch fan-out, 1 writer → {} watchers", options.watchers),
        ops,
        throughput: Some(ops as f64 / busy.as_secs_f64().max(1e-9)),
        latency_ms: Some(percentiles(&mut latencies)),
        errors: missing,
        cpu_per_kop: (ops > 0).then(|| cpu / (ops as f64 / 1000.0)),
        rss,
        secs: None,
        stages: Vec::new(),
        cdf: Vec::new(),
    })
}

async fn failover(
    ensemble: &mut Ensemble,
    conns: &[Conn],
    options: &Options,
    value: &Bytes,
) -> Result<Row> {
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    let recovered = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for (c, conn) in conns.iter().enumerate() {
        for j in 0..4 {
            let conn = conn.clone();
            let value = value.clone();
            let (stop, killed_at, recovered) = (stop.clone(), killed_at.clone(), recovered.clone());
            let keys = options.keys;
            let mut rng = Rng::new((c * 1000 + j) as u64 + 77);
            tasks.spawn(async move {
                // (sent, done) of every write that succeeded after the kill.
                let mut first_after: Option<Duration> = None;
                let (mut ok, mut failed) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let result =
                        timeout(OP_TIMEOUT, conn.set(&any_key(&mut rng, keys), &value)).await;
                    if matches!(result, Ok(Ok(()))) {
                        ok += 1;
                        if let Some(&kill) = killed_at.get()
                            && sent >= kill
                        {
                            let after = Instant::now() - kill;
                            first_after = Some(first_after.map_or(after, |f| f.min(after)));
                            recovered.store(true, Ordering::Relaxed);
                        }
                    } else {
                        failed += 1;
                        sleep(RETRY_PAUSE).await;
                    }
                }
                (first_after, ok, failed)
            });
        }
    }
    sleep(Duration::from_secs(2)).await;
    let leader = ensemble.leader().await?;
    ensemble.kill(leader);
    killed_at.set(Instant::now()).expect("set once");
    let give_up = Instant::now() + Duration::from_secs(60);
    while !recovered.load(Ordering::Relaxed) && Instant::now() < give_up {
        sleep(Duration::from_millis(5)).await;
    }
    // A little more load, so every task's first success after the kill is in.
    sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut first, mut ok, mut failed) = (None::<Duration>, 0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (f, o, e) = joined?;
        if let Some(f) = f {
            first = Some(first.map_or(f, |x: Duration| x.min(f)));
        }
        ok += o;
        failed += e;
    }
    let Some(first) = first else {
        bail!("no write succeeded within 60 s of killing the {} leader", ensemble.kind.name());
    };
    ensemble.start_member(leader)?;
    wait_ready(ensemble, Some(leader)).await?;
    Ok(Row {
        system: ensemble.kind,
        workload: "failover: leader SIGKILLed under 32-in-flight writes".into(),
        ops: ok,
        throughput: None,
        latency_ms: None,
        errors: failed,
        cpu_per_kop: None,
        rss: ensemble.rss(),
        secs: Some(first.as_secs_f64()),
        stages: Vec::new(),
        cdf: Vec::new(),
    })
}

fn loaded_key(index: usize) -> String {
    format!("/bench/m/{index:08}")
}

/// Loads `options.znodes` keys; returns the load's row and the memory row after it.
async fn bulk_load(ensemble: &Ensemble, options: &Options, value: &Bytes) -> Result<(Row, Row)> {
    let tls = ensemble.client_tls.as_ref();
    let conns = connect_many(ensemble.kind, &ensemble.endpoints(), 8, tls).await?;
    let batches = options.znodes.div_ceil(LOAD_BATCH);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = ensemble.cpu_secs();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for conn in &conns {
        for _ in 0..4 {
            let (conn, next, value, znodes) =
                (conn.clone(), next.clone(), value.clone(), options.znodes);
            tasks.spawn(async move {
                let mut latencies = Latencies::default();
                loop {
                    let batch = next.fetch_add(1, Ordering::Relaxed);
                    if batch >= batches {
                        return Ok::<_, anyhow::Error>(latencies);
                    }
                    let keys: Vec<String> = (batch * LOAD_BATCH
                        ..((batch + 1) * LOAD_BATCH).min(znodes))
                        .map(loaded_key)
                        .collect();
                    let began = Instant::now();
                    timeout(OP_TIMEOUT, conn.create_batch(&keys, &value))
                        .await
                        .context("a load batch timed out")?
                        .with_context(|| format!("loading batch {batch}"))?;
                    latencies.record(began.elapsed());
                }
            });
        }
    }
    let mut latencies = Latencies::default();
    while let Some(joined) = tasks.join_next().await {
        latencies.merge(joined??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = ensemble.cpu_secs() - cpu_before;
    let n = options.znodes as u64;
    let load = Row {
        system: ensemble.kind,
        workload: format!("load {} znodes, batches of {LOAD_BATCH}, 32 in flight", options.znodes),
        ops: n,
        throughput: Some(n as f64 / elapsed),
        latency_ms: Some(percentiles(&mut latencies)),
        errors: 0,
        cpu_per_kop: Some(cpu / (n as f64 / 1000.0)),
        rss: ensemble.rss(),
        secs: Some(elapsed),
        stages: Vec::new(),
        cdf: Vec::new(),
    };
    drop(conns);
    // Whatever the server does right after a burst (a snapshot, a collection) is not
    // what it holds: measure after a short quiet period.
    sleep(Duration::from_secs(2)).await;
    let memory = Row {
        system: ensemble.kind,
        workload: format!("memory with {} znodes", options.znodes),
        ops: n,
        throughput: None,
        latency_ms: None,
        errors: 0,
        cpu_per_kop: None,
        rss: ensemble.rss(),
        secs: None,
        stages: Vec::new(),
        cdf: Vec::new(),
    };
    Ok((load, memory))
}

/// SIGKILLs every member, starts them again, and times until the last loaded key reads
/// back and a write succeeds.
async fn restart(ensemble: &mut Ensemble, options: &Options, value: &Bytes) -> Result<Row> {
    for index in 0..ensemble.len() {
        ensemble.kill(index);
    }
    let start = Instant::now();
    ensemble.start_all()?;
    let last = loaded_key(options.znodes - 1);
    let endpoints = ensemble.endpoints();
    let deadline = start + READY_TIMEOUT;
    loop {
        ensemble.check_alive()?;
        let attempt = async {
            let conn =
                Conn::connect(ensemble.kind, &endpoints, 0, ensemble.client_tls.as_ref()).await?;
            conn.get(&last).await?;
            conn.set(&key(0), value).await?;
            Ok::<_, anyhow::Error>(())
        };
        match timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => break,
            _ if Instant::now() > deadline => {
                bail!(
                    "{} did not serve within {READY_TIMEOUT:?} of a restart",
                    ensemble.kind.name()
                )
            }
            _ => sleep(Duration::from_millis(20)).await,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Row {
        system: ensemble.kind,
        workload: format!("restart to serving with {} znodes", options.znodes),
        ops: options.znodes as u64,
        throughput: None,
        latency_ms: None,
        errors: 0,
        cpu_per_kop: None,
        rss: ensemble.rss(),
        secs: Some(secs),
        stages: Vec::new(),
        cdf: Vec::new(),
    })
}
