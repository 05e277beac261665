//! A controllable TCP proxy on every directed peer link.
//!
//! Member `i` reaches member `j` through its own listener (`link(i, j)`), which
//! forwards to `j`'s real peer port. A link can be cut (its connections are closed and
//! new ones are closed at once), delayed (every chunk is held back a fixed time, order
//! kept) or made lossy (each chunk may reset the connection, losing what is in flight:
//! bytes cannot be dropped from the middle of a TCP stream without corrupting it).
//! Nothing here needs privileges, so partitions work on any machine.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};
use baton_testkit::Rng;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

/// Bytes read from one side before they are passed on.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks held back on one delayed connection direction.
const DELAYED_CHUNKS_MAX: usize = 1024;

/// What a link does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkMode {
    /// No traffic: connections are closed.
    pub cut: bool,
    /// Every chunk waits this long.
    pub delay: Duration,
    /// Per mille: the chance that a chunk resets its connection instead.
    pub reset_per_mille: u32,
}

/// One directed link `from → to`.
#[derive(Debug)]
struct Link {
    port: u16,
    mode: watch::Sender<LinkMode>,
    task: JoinHandle<()>,
}

/// Every directed link between the members of an ensemble.
#[derive(Debug)]
pub struct Proxy {
    links: BTreeMap<(u32, u32), Link>,
    /// Resets are drawn from this (deterministic per seed).
    seed: Arc<Mutex<Rng>>,
}

impl Proxy {
    /// Listens for every ordered pair of `members` (id, real peer address) on
    /// 127.0.0.1 port 0.
    pub async fn start(members: &[(u32, SocketAddr)], seed: u64) -> Result<Proxy> {
        let seed = Arc::new(Mutex::new(Rng::new(seed)));
        let mut links = BTreeMap::new();
        for &(from, _) in members {
            for &(to, target) in members {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .context("binding a peer-link proxy on 127.0.0.1")?;
                let port = listener.local_addr()?.port();
                let (mode, modes) = watch::channel(LinkMode::default());
                let task = tokio::spawn(serve(listener, target, modes, seed.clone()));
                links.insert((from, to), Link { port, mode, task });
            }
        }
        Ok(Proxy { links, seed })
    }

    /// The port member `from` dials to reach member `to`.
    pub fn port(&self, from: u32, to: u32) -> u16 {
        self.links[&(from, to)].port
    }

    /// Sets the mode of the link `from → to`.
    pub fn set(&self, from: u32, to: u32, mode: LinkMode) {
        self.links[&(from, to)].mode.send_replace(mode);
    }

    /// Cuts both directions between every member of `a` and every member of `b`.
    pub fn cut_between(&self, a: &[u32], b: &[u32]) {
        let cut = LinkMode { cut: true, ..LinkMode::default() };
        for &x in a {
            for &y in b {
                if x != y {
                    self.set(x, y, cut);
                    self.set(y, x, cut);
                }
            }
        }
    }

    /// Applies `mode` to every link.
    pub fn set_all(&self, mode: LinkMode) {
        for link in self.links.values() {
            link.mode.send_replace(mode);
        }
    }

    /// Every link back to normal.
    pub fn heal(&self) {
        self.set_all(LinkMode::default());
    }

    /// The links that are cut now, as `from→to`.
    pub fn describe_cuts(&self) -> Vec<String> {
        self.links
            .iter()
            .filter(|(_, link)| link.mode.borrow().cut)
            .map(|((from, to), _)| format!("{from}→{to}"))
            .collect()
    }

    /// Re-seeds the reset draws.
    pub fn reseed(&self, seed: u64) {
        *self.seed.lock().expect("proxy seed lock") = Rng::new(seed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for link in self.links.values() {
            link.task.abort();
        }
    }
}

async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    modes: watch::Receiver<LinkMode>,
    seed: Arc<Mutex<Rng>>,
) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        connections.retain(|c| !c.is_finished());
        if modes.borrow().cut {
            drop(inbound);
            continue;
        }
        let modes = modes.clone();
        let seed = seed.clone();
        connections.push(tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            relay(inbound, outbound, modes, seed).await;
        }));
    }
}

/// Copies both ways until either side closes or the link is cut.
async fn relay(
    inbound: TcpStream,
    outbound: TcpStream,
    mut modes: watch::Receiver<LinkMode>,
    seed: Arc<Mutex<Rng>>,
) {
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let forward = pump(in_read, out_write, modes.clone(), seed.clone());
    let backward = pump(out_read, in_write, modes.clone(), seed);
    let cut = async move {
        let _ = modes.wait_for(|mode| mode.cut).await;
    };
    tokio::select! {
        () = forward => {}
        () = backward => {}
        () = cut => {}
    }
}

/// One direction: read chunks, maybe reset, hold each back by the link's delay.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    modes: watch::Receiver<LinkMode>,
    seed: Arc<Mutex<Rng>>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(DELAYED_CHUNKS_MAX);
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut buf = vec![0; CHUNK_BYTES];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mode = *modes.borrow();
            if mode.reset_per_mille > 0 && draw(&seed) % 1000 < u64::from(mode.reset_per_mille) {
                return;
            }
            if tx.send((Instant::now() + mode.delay, buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
}

fn draw(seed: &Mutex<Rng>) -> u64 {
    seed.lock().expect("proxy seed lock").next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0; 1024];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(port: u16) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"ping").await?;
        let mut buf = [0; 4];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn a_link_passes_is_cut_is_delayed_and_heals() {
        let target = echo_server().await;
        let proxy = Proxy::start(&[(1, target), (2, target)], 7).await.unwrap();
        let port = proxy.port(1, 2);
        assert_eq!(round_trip(port).await.unwrap(), b"ping");

        // A connection open across a cut is closed.
        let mut open = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        open.write_all(b"x").await.unwrap();
        let mut one = [0; 1];
        open.read_exact(&mut one).await.unwrap();
        proxy.cut_between(&[1], &[2]);
        assert_eq!(proxy.describe_cuts(), ["1→2", "2→1"]);
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the open connection ends");
        assert!(round_trip(port).await.is_err(), "new connections are closed");

        proxy.heal();
        assert_eq!(round_trip(port).await.unwrap(), b"ping");

        proxy.set(1, 2, LinkMode { delay: Duration::from_millis(200), ..LinkMode::default() });
        let started = std::time::Instant::now();
        assert_eq!(round_trip(port).await.unwrap(), b"ping");
        assert!(started.elapsed() >= Duration::from_millis(200), "both directions wait");
    }
}
