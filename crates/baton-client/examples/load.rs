//! A quick write load: `cargo run --release -p baton-client --example load --
//! ENDPOINTS [CLIENTS] [SECONDS]` creates 100-byte znodes from CLIENTS concurrent
//! clients (spread over the comma-separated ENDPOINTS) for SECONDS and prints the
//! acknowledged writes per second and their latency (mean, p50, p99). Each client
//! has one write in flight. A smoke measurement; the benchmarks proper are
//! `cargo xtask bench`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use baton_client::{Client, CreateMode};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let endpoints: Vec<String> = args
        .get(1)
        .ok_or("usage: load ENDPOINTS [CLIENTS] [SECONDS]")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let clients: usize = args.get(2).map_or(Ok(32), |a| a.parse())?;
    let seconds: u64 = args.get(3).map_or(Ok(5), |a| a.parse())?;
    let root = format!("/load-{}", std::process::id());
    Client::connect(&endpoints[..1]).await?.create(&root, "", CreateMode::Persistent).await?;
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let data = vec![b'x'; 100];
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = Client::connect(&[endpoints[c % endpoints.len()].clone()]).await?;
        let (done, failed, stop, data, root) =
            (Arc::clone(&done), Arc::clone(&failed), Arc::clone(&stop), data.clone(), root.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let path = format!("{root}/c{c}-{n}");
                n += 1;
                let started = Instant::now();
                match client.create(&path, data.clone(), CreateMode::Persistent).await {
                    Ok(_) => {
                        latencies.push(started.elapsed());
                        done.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
            latencies
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    latencies.sort_unstable();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let at = |q: f64| {
        ms(latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1))))
    };
    let mean =
        latencies.iter().sum::<Duration>().as_secs_f64() * 1e3 / latencies.len().max(1) as f64;
    let ok = done.load(Ordering::Relaxed);
    println!(
        "{clients} clients over {} endpoint(s), {elapsed:.1} s: {ok} writes acknowledged ({:.0}/s), {} failed; latency mean {mean:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
        endpoints.len(),
        ok as f64 / elapsed,
        failed.load(Ordering::Relaxed),
        at(0.50),
        at(0.99),
    );
    Ok(())
}
