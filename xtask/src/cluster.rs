//! `cargo xtask cluster up|down|kill|restart|status`: a local ensemble of real
//! baton-server processes on 127.0.0.1, for trying things out and for tests.
//!
//! Everything lives under `target/cluster/`: `member-N/` (data dir), `member-N.log`
//! (stderr), and `state` (one line per member: id, pid, client, admin and peer
//! ports). Processes are stopped by the pids recorded there, never by name.

use std::{
    fs,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// How long `up` and `restart` wait for members to answer and elect a leader.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Member {
    id: u32,
    pid: u32,
    client: u16,
    admin: u16,
    peer: u16,
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
            let [id, pid, client, admin, peer] = f[..] else {
                bail!("bad line in {}: {line:?}", path.display());
            };
            Ok(Member {
                id: id.parse()?,
                pid: pid.parse()?,
                client: client.parse()?,
                admin: admin.parse()?,
                peer: peer.parse()?,
            })
        })
        .collect()
}

fn write_state(root: &Path, members: &[Member]) -> Result<()> {
    let text: String = members
        .iter()
        .map(|m| format!("{} {} {} {} {}\n", m.id, m.pid, m.client, m.admin, m.peer))
        .collect();
    fs::write(dir(root).join("state"), text).context("writing the cluster state")
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn alive(pid: u32) -> bool {
    pid != 0
        && Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status()?;
    if !status.success() {
        bail!("kill {signal} {pid} failed");
    }
    Ok(())
}

/// `/status` of a member, if it answers.
fn status(admin: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", admin)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = "GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

fn field<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

fn spawn(root: &Path, member: &Member, members: &[Member], tick_ms: u64) -> Result<u32> {
    let bin = root.join("target/release/baton-server");
    let peers: Vec<String> =
        members.iter().map(|m| format!("{}=127.0.0.1:{}", m.id, m.peer)).collect();
    let log = fs::File::create(dir(root).join(format!("member-{}.log", member.id)))?;
    let child = Command::new(&bin)
        .args(["--id", &member.id.to_string()])
        .arg("--data-dir")
        .arg(dir(root).join(format!("member-{}", member.id)))
        .args(["--client-addr", &format!("127.0.0.1:{}", member.client)])
        .args(["--admin-addr", &format!("127.0.0.1:{}", member.admin)])
        .args(["--peer-addr", &format!("127.0.0.1:{}", member.peer)])
        .args(["--peers", &peers.join(",")])
        .args(["--tick-ms", &tick_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    // The child outlives this command: it is stopped by pid (`down`, `kill`).
    Ok(child.id())
}

/// Waits until every running member is in broadcast under one leader.
fn wait_ready(members: &[Member]) -> Result<u32> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let running: Vec<&Member> = members.iter().filter(|m| alive(m.pid)).collect();
        let statuses: Vec<Option<String>> = running.iter().map(|m| status(m.admin)).collect();
        let leaders: Vec<u32> = running
            .iter()
            .zip(&statuses)
            .filter(|(_, s)| s.as_deref().and_then(|s| field(s, "role")) == Some("leading"))
            .map(|(m, _)| m.id)
            .collect();
        let all = statuses
            .iter()
            .all(|s| s.as_deref().and_then(|s| field(s, "broadcasting")) == Some("true"));
        if let ([leader], true) = (&leaders[..], all) {
            return Ok(*leader);
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
    println!("{:<4} {:<8} {:<17} {:<17} {:<17} data dir", "id", "pid", "client", "admin", "peer");
    for m in members {
        let pid = if alive(m.pid) { m.pid.to_string() } else { "down".into() };
        let mark = if Some(m.id) == leader { " (leader)" } else { "" };
        println!(
            "{:<4} {:<8} 127.0.0.1:{:<7} 127.0.0.1:{:<7} 127.0.0.1:{:<7} target/cluster/member-{}{mark}",
            m.id, pid, m.client, m.admin, m.peer, m.id
        );
    }
    let endpoints: Vec<String> =
        members.iter().map(|m| format!("127.0.0.1:{}", m.client)).collect();
    let admins: Vec<String> = members.iter().map(|m| format!("127.0.0.1:{}", m.admin)).collect();
    println!("\n  baton --endpoints {} ls /", endpoints.join(","));
    println!("  baton status --admin {}", admins.join(","));
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
    fs::create_dir_all(dir(root))?;
    let mut members = Vec::new();
    for id in 1..=nodes {
        members.push(Member {
            id,
            pid: 0,
            client: free_port()?,
            admin: free_port()?,
            peer: free_port()?,
        });
    }
    for i in 0..members.len() {
        members[i].pid = spawn(root, &members[i], &members, tick_ms)?;
    }
    write_state(root, &members)?;
    let leader = wait_ready(&members)?;
    print(&members, Some(leader));
    Ok(())
}

pub fn down(root: &Path, wipe: bool) -> Result<()> {
    let members = read_state(root)?;
    for m in members.iter().filter(|m| alive(m.pid)) {
        signal(m.pid, "-TERM")?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while members.iter().any(|m| alive(m.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for m in members.iter().filter(|m| alive(m.pid)) {
        signal(m.pid, "-KILL")?;
    }
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
    signal(m.pid, "-KILL")?;
    println!("member {id} (pid {}) killed with SIGKILL", m.pid);
    Ok(())
}

pub fn restart(root: &Path, id: u32, tick_ms: u64) -> Result<()> {
    let mut members = read_state(root)?;
    let index =
        members.iter().position(|m| m.id == id).with_context(|| format!("no member {id}"))?;
    if alive(members[index].pid) {
        signal(members[index].pid, "-TERM")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(members[index].pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    members[index].pid = spawn(root, &members[index], &members, tick_ms)?;
    write_state(root, &members)?;
    let leader = wait_ready(&members)?;
    print(&members, Some(leader));
    Ok(())
}

pub fn show(root: &Path) -> Result<()> {
    let members = read_state(root)?;
    for m in &members {
        let line = status(m.admin).map_or_else(
            || "down".to_owned(),
            |s| {
                let get = |f| field(&s, f).unwrap_or("?").to_owned();
                format!(
                    "{} epoch={} broadcasting={} last_zxid={} digest={}",
                    get("role"),
                    get("epoch"),
                    get("broadcasting"),
                    get("last_zxid_hex"),
                    get("digest")
                )
            },
        );
        println!("member {}: {line}", m.id);
    }
    Ok(())
}
