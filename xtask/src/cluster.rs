//! `cargo xtask cluster up|down|kill|restart|status`: a local ensemble of real
//! baton-server processes on 127.0.0.1 (started by baton-testkit), for trying things out.
//!
//! Everything lives under `target/cluster/`: `member-N/` (data dir), `member-N.log`
//! (stderr), and `state` (one line per member: id, pid, client, admin, peer and
//! ZooKeeper-protocol ports). The members outlive the command that started them; they are stopped by the
//! pids recorded there, never by name.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use baton_testkit::{
    EnsembleSpec, MemberSpec, ServerProcess, Signal, Status, alive, fetch_status, peer_list,
    settled, signal, wait_until,
};

/// How long `up` and `restart` wait for members to answer and elect a leader.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `down` and `restart` give a member to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Member {
    id: u32,
    pid: u32,
    client: u16,
    admin: u16,
    peer: u16,
    zk: u16,
}

impl Member {
    fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.admin))
    }
}

fn dir(root: &Path) -> PathBuf {
    root.join("target").join("cluster")
}

fn read_state(root: &Path) -> Result<Vec<Member>> {
    let path = dir(root).join("state");
    let text = fs::read_to_string(&path).with_context(|| {
        format!("no cluster state in {}: run `cargo xtask cluster up`", path.display())
    })?;
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [id, pid, client, admin, peer, zk] = f[..] else {
                bail!("bad line in {}: {line:?}", path.display());
            };
            Ok(Member {
                id: id.parse()?,
                pid: pid.parse()?,
                client: client.parse()?,
                admin: admin.parse()?,
                peer: peer.parse()?,
                zk: zk.parse()?,
            })
        })
        .collect()
}

fn write_state(root: &Path, members: &[Member]) -> Result<()> {
    let text: String = members
        .iter()
        .map(|m| format!("{} {} {} {} {} {}\n", m.id, m.pid, m.client, m.admin, m.peer, m.zk))
        .collect();
    fs::write(dir(root).join("state"), text).context("writing the cluster state")
}

/// How the members are started: the release build with `--tick-ms`.
fn configure(mut spec: EnsembleSpec, root: &Path, tick_ms: u64) -> EnsembleSpec {
    spec.bin = root.join("target/release/baton-server");
    spec.args = vec!["--tick-ms".to_owned(), tick_ms.to_string()];
    spec
}

/// The ensemble the state describes (its members' ports).
fn recorded(root: &Path, tick_ms: u64, members: &[Member]) -> EnsembleSpec {
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let peers = peer_list(members.iter().map(|m| (m.id, loopback(m.peer))));
    let members = members
        .iter()
        .map(|m| MemberSpec {
            id: m.id,
            client_addr: loopback(m.client),
            admin_addr: loopback(m.admin),
            peer_addr: loopback(m.peer),
            zk_addr: loopback(m.zk),
            peers: peers.clone(),
        })
        .collect();
    configure(EnsembleSpec::with_members(&dir(root), members), root, tick_ms)
}

/// The `/status` of every member that answers (None for the others), by id.
fn statuses(members: &[Member]) -> Result<Vec<(u32, Option<Status>)>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(async {
        let mut all = Vec::new();
        for m in members {
            all.push((m.id, fetch_status(m.admin_addr()).await.ok()));
        }
        all
    }))
}

/// Waits until every running member is in broadcast under one leader.
fn wait_ready(members: &[Member]) -> Result<u32> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let running: Vec<Member> = members.iter().filter(|m| alive(m.pid)).cloned().collect();
        let answers: Option<Vec<Status>> =
            statuses(&running)?.into_iter().map(|(_, status)| status).collect();
        if let Some(leader) = answers.as_deref().and_then(settled) {
            return Ok(leader as u32);
        }
        if Instant::now() > deadline {
            bail!(
                "no leader all members follow within {READY_TIMEOUT:?}; see target/cluster/member-*.log"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print(members: &[Member], leader: Option<u32>) {
    println!(
        "{:<4} {:<8} {:<17} {:<17} {:<17} {:<17} data dir",
        "id", "pid", "client", "admin", "peer", "zookeeper"
    );
    for m in members {
        let pid = if alive(m.pid) { m.pid.to_string() } else { "down".into() };
        let mark = if Some(m.id) == leader { " (leader)" } else { "" };
        println!(
            "{:<4} {:<8} 127.0.0.1:{:<7} 127.0.0.1:{:<7} 127.0.0.1:{:<7} 127.0.0.1:{:<7} \
             target/cluster/member-{}{mark}",
            m.id, pid, m.client, m.admin, m.peer, m.zk, m.id
        );
    }
    let endpoints: Vec<String> =
        members.iter().map(|m| format!("127.0.0.1:{}", m.client)).collect();
    let admins: Vec<String> = members.iter().map(|m| format!("127.0.0.1:{}", m.admin)).collect();
    println!("\n  baton --endpoints {} ls /", endpoints.join(","));
    println!("  baton status --admin {}", admins.join(","));
    let zk: Vec<String> = members.iter().map(|m| format!("127.0.0.1:{}", m.zk)).collect();
    println!("  zkCli.sh -server {} ls /", zk.join(","));
}

/// SIGTERM, then SIGKILL whatever still runs after [`STOP_TIMEOUT`].
fn stop(pids: &[u32]) -> Result<()> {
    for &pid in pids.iter().filter(|pid| alive(**pid)) {
        signal(pid, Signal::Term)?;
    }
    // Not our children (an earlier command started them): they are gone when their
    // pid is.
    wait_until(Instant::now() + STOP_TIMEOUT, || pids.iter().all(|pid| !alive(*pid)));
    for &pid in pids.iter().filter(|pid| alive(**pid)) {
        signal(pid, Signal::Kill)?;
    }
    Ok(())
}

pub fn up(
    root: &Path,
    nodes: u32,
    tick_ms: u64,
    cargo: impl Fn(&[&str]) -> Result<()>,
) -> Result<()> {
    if let Ok(members) = read_state(root)
        && members.iter().any(|m| alive(m.pid))
    {
        bail!("a cluster is already up (cargo xtask cluster down first)");
    }
    if !(1..=9).contains(&nodes) {
        bail!("--nodes must be 1 to 9");
    }
    cargo(&["build", "--release", "-p", "baton-server", "-p", "baton-cli"])?;
    let spec = configure(EnsembleSpec::new(&dir(root), nodes)?, root, tick_ms);
    let ports: Vec<MemberSpec> = spec.members.clone();
    // The members outlive this command: it keeps their pids, not the processes.
    let pids = spec.start()?.detach();
    let members: Vec<Member> = ports
        .iter()
        .zip(pids)
        .map(|(m, (_, pid))| Member {
            id: m.id,
            pid: pid.unwrap_or(0),
            client: m.client_addr.port(),
            admin: m.admin_addr.port(),
            peer: m.peer_addr.port(),
            zk: m.zk_addr.port(),
        })
        .collect();
    write_state(root, &members)?;
    let leader = wait_ready(&members)?;
    print(&members, Some(leader));
    Ok(())
}

pub fn down(root: &Path, wipe: bool) -> Result<()> {
    let members = read_state(root)?;
    stop(&members.iter().map(|m| m.pid).collect::<Vec<_>>())?;
    fs::remove_file(dir(root).join("state"))?;
    if wipe {
        for m in &members {
            let _ = fs::remove_dir_all(dir(root).join(format!("member-{}", m.id)));
        }
    }
    println!(
        "stopped {} members{}",
        members.len(),
        if wipe { " and removed their data" } else { "" }
    );
    Ok(())
}

pub fn kill(root: &Path, id: u32) -> Result<()> {
    let members = read_state(root)?;
    let m = members.iter().find(|m| m.id == id).with_context(|| format!("no member {id}"))?;
    if !alive(m.pid) {
        bail!("member {id} is not running");
    }
    signal(m.pid, Signal::Kill)?;
    println!("member {id} (pid {}) killed with SIGKILL", m.pid);
    Ok(())
}

pub fn restart(root: &Path, id: u32, tick_ms: u64) -> Result<()> {
    let mut members = read_state(root)?;
    let index =
        members.iter().position(|m| m.id == id).with_context(|| format!("no member {id}"))?;
    stop(&[members[index].pid])?;
    let launch = recorded(root, tick_ms, &members).launch(id);
    let started = ServerProcess::launch(launch)?;
    members[index].pid = started.detach().unwrap_or(0);
    write_state(root, &members)?;
    let leader = wait_ready(&members)?;
    print(&members, Some(leader));
    Ok(())
}

pub fn show(root: &Path) -> Result<()> {
    let members = read_state(root)?;
    for (id, status) in statuses(&members)? {
        let line = status.map_or_else(
            || "down".to_owned(),
            |s| {
                format!(
                    "{} epoch={} broadcasting={} last_zxid={} digest={}",
                    s.role, s.epoch, s.ensemble.broadcasting, s.last_zxid_hex, s.digest
                )
            },
        );
        println!("member {id}: {line}");
    }
    Ok(())
}

/// The members' client endpoints.
fn endpoints(members: &[Member]) -> Vec<String> {
    members.iter().filter(|m| alive(m.pid)).map(|m| format!("127.0.0.1:{}", m.client)).collect()
}

/// A membership change through any running member, retried after CONNECTION_LOSS
/// (an election after the leader handed over) until `done` says it happened.
async fn change(
    members: &[Member],
    change: baton_client::ConfigChange,
    done: impl Fn(&baton_client::Config) -> bool,
) -> Result<baton_client::Config> {
    let client = baton_client::Client::connect(&endpoints(members)).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match client.reconfig(change.clone(), None).await {
            Ok(config) => return Ok(config),
            Err(e)
                if e.code() == baton_client::ErrorCode::ConnectionLoss
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(config) = client.get_config().await
                    && done(&config)
                {
                    return Ok(config);
                }
            }
            Err(e) => bail!("{change:?}: {e}"),
        }
    }
}

fn show_config(config: &baton_client::Config) -> String {
    let members: Vec<String> = config
        .members
        .iter()
        .map(|m| format!("{}{}", m.id, if m.voter { "" } else { " (observer)" }))
        .collect();
    format!("version {:x}: {}", config.version, members.join(", "))
}

pub fn add(root: &Path, observer: bool, tick_ms: u64) -> Result<()> {
    let mut members = read_state(root)?;
    let id = members.iter().map(|m| m.id).max().unwrap_or(0) + 1;
    let port = || -> Result<u16> { Ok(baton_testkit::fixed_free_port()?) };
    let new = Member { id, pid: 0, client: port()?, admin: port()?, peer: port()?, zk: port()? };
    members.push(new);
    // Its --peers: everyone recorded, itself as an observer (it follows the
    // configuration the ensemble committed, whatever this says).
    let mut spec = recorded(root, tick_ms, &members);
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let others = peer_list(members[..members.len() - 1].iter().map(|m| (m.id, loopback(m.peer))));
    let new = members.last_mut().expect("just pushed");
    spec.member_mut_by_id(id).peers = format!("{others},{id}={}:observer", loopback(new.peer));
    let started = ServerProcess::launch(spec.launch(id))?;
    new.pid = started.detach().unwrap_or(0);
    write_state(root, &members)?;
    let member = baton_client::ConfigMember {
        id: u64::from(id),
        addr: loopback(members.last().expect("added").peer).to_string(),
        voter: !observer,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let config =
        runtime.block_on(change(&members, baton_client::ConfigChange::Add(member), |c| {
            c.members.iter().any(|m| u64::from(id) == m.id && m.voter != observer)
        }))?;
    println!("member {id} added: {}", show_config(&config));
    let leader = wait_ready(&members)?;
    print(&members, Some(leader));
    Ok(())
}

pub fn remove(root: &Path, id: u32) -> Result<()> {
    let mut members = read_state(root)?;
    let index =
        members.iter().position(|m| m.id == id).with_context(|| format!("no member {id}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let gone = u64::from(id);
    let config = runtime.block_on(change(
        &members,
        baton_client::ConfigChange::Remove { id: gone },
        |c| c.members.iter().all(|m| m.id != gone),
    ))?;
    println!("member {id} removed: {}", show_config(&config));
    stop(&[members[index].pid])?;
    members.remove(index);
    write_state(root, &members)?;
    let leader = wait_ready(&members)?;
    print(&members, Some(leader));
    Ok(())
}

/// See `cluster scale` in `cargo xtask --help`.
pub fn scale(root: &Path, tick_ms: u64, cargo: impl Fn(&[&str]) -> Result<()>) -> Result<()> {
    if let Ok(members) = read_state(root)
        && members.iter().any(|m| alive(m.pid))
    {
        bail!("a cluster is already up (cargo xtask cluster down --wipe first)");
    }
    let _ = fs::remove_dir_all(dir(root));
    up(root, 3, tick_ms, cargo)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let stop_load = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let endpoints = endpoints(&read_state(root)?);
        let stop_load = std::sync::Arc::clone(&stop_load);
        runtime.spawn(async move { write_load(endpoints, stop_load).await })
    };
    let started = Instant::now();
    add(root, false, tick_ms)?;
    add(root, false, tick_ms)?;
    let members = read_state(root)?;
    let leader = wait_ready(&members)?;
    // Remove the two added last, or the leader and one more if it is among the first.
    let mut out: Vec<u32> = vec![leader];
    out.extend(members.iter().rev().map(|m| m.id).filter(|id| *id != leader).take(1));
    out.truncate(2);
    for id in out {
        remove(root, id)?;
    }
    stop_load.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, retried) = runtime.block_on(load)??;
    let members = read_state(root)?;
    wait_ready(&members)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let digests = loop {
        let all: Vec<(u64, String)> = statuses(&members)?
            .into_iter()
            .filter_map(|(_, s)| s.map(|s| (s.last_zxid, s.digest)))
            .collect();
        if all.len() == members.len() && all.windows(2).all(|w| w[0] == w[1]) {
            break all;
        }
        if Instant::now() > deadline {
            bail!("the members do not converge: {all:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "\nscale 3 → 5 → 3 passed in {:.1} s: {acked} writes acknowledged ({retried} retried \
         after CONNECTION_LOSS, none failed); members {:?} at zxid {:#x}, digest {}",
        started.elapsed().as_secs_f64(),
        members.iter().map(|m| m.id).collect::<Vec<_>>(),
        digests[0].0,
        digests[0].1
    );
    Ok(())
}

/// Creates znodes one after another until told to stop; a write that fails other
/// than with CONNECTION_LOSS (retried) fails the run. Returns (acknowledged,
/// retried).
async fn write_load(
    endpoints: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<(u64, u64)> {
    use baton_client::{CreateMode, ErrorCode};
    let client = baton_client::Client::connect(&endpoints).await?;
    match client.create("/scale", "", CreateMode::Persistent).await {
        Ok(_) => {}
        Err(e) if e.code() == ErrorCode::NodeExists => {}
        Err(e) => bail!("creating /scale: {e}"),
    }
    let (mut acked, mut retried) = (0u64, 0u64);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match client.create(&format!("/scale/w{acked:08}"), "x", CreateMode::Persistent).await {
            Ok(_) => acked += 1,
            // A retried create that had happened.
            Err(e) if e.code() == ErrorCode::NodeExists => acked += 1,
            Err(e) if e.code() == ErrorCode::ConnectionLoss => {
                retried += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => bail!("a write failed: {e}"),
        }
    }
    let (children, _) = client.children("/scale").await?;
    if (children.len() as u64) < acked {
        bail!("{acked} writes acknowledged but /scale holds {}", children.len());
    }
    Ok((acked, retried))
}
