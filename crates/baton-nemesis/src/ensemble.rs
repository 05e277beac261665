//! The ensemble under test: real `baton-server` processes on 127.0.0.1, each with
//! fixed client, admin and peer ports (so a restarted member is found where it was)
//! and a data directory of its own, wired to each other through the [`Proxy`].

use std::{
    fs,
    io::{Read, Seek, SeekFrom, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use baton_server::testing::{fixed_free_port, http_get};
use serde_json::Value;
use tokio::time::Instant;

use crate::{proxy::Proxy, rng::Rng};

/// What `/status` says that the nemesis uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub role: String,
    pub broadcasting: bool,
    pub epoch: u64,
    pub last_zxid: u64,
    pub digest: String,
}

#[derive(Debug)]
pub struct Member {
    pub id: u32,
    pub dir: PathBuf,
    pub client: u16,
    pub admin: u16,
    pub peer: u16,
    child: Option<Child>,
    paused: bool,
    log: PathBuf,
}

impl Member {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client)
    }

    fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.admin))
    }
}

#[derive(Debug)]
pub struct Ensemble {
    pub members: Vec<Member>,
    pub proxy: Proxy,
    bin: PathBuf,
    args: Vec<String>,
}

fn free_port() -> Result<u16> {
    fixed_free_port().context("picking a port")
}

impl Ensemble {
    /// Starts `n` members under `root` (`member-N/` data, `member-N.log` stderr) with
    /// the server flags `args`, and waits until one leader serves them all.
    pub async fn start(
        root: &Path,
        bin: PathBuf,
        n: u32,
        args: Vec<String>,
        seed: u64,
    ) -> Result<Ensemble> {
        let mut members = Vec::new();
        for id in 1..=n {
            members.push(Member {
                id,
                dir: root.join(format!("member-{id}")),
                client: free_port()?,
                admin: free_port()?,
                peer: free_port()?,
                child: None,
                paused: false,
                log: root.join(format!("member-{id}.log")),
            });
        }
        let real: Vec<(u32, SocketAddr)> =
            members.iter().map(|m| (m.id, SocketAddr::from(([127, 0, 0, 1], m.peer)))).collect();
        let proxy = Proxy::start(&real, seed).await?;
        let mut ensemble = Ensemble { members, proxy, bin, args };
        for id in 1..=n {
            ensemble.spawn(id)?;
        }
        ensemble.wait_settled(Duration::from_secs(60)).await?;
        Ok(ensemble)
    }

    pub fn ids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.id).collect()
    }

    pub fn member(&self, id: u32) -> &Member {
        &self.members[(id - 1) as usize]
    }

    fn member_mut(&mut self, id: u32) -> &mut Member {
        &mut self.members[(id - 1) as usize]
    }

    /// Every member's client endpoint, starting with member `first`'s (a client tries
    /// them in order, so clients spread over the members).
    pub fn endpoints_from(&self, first: usize) -> Vec<String> {
        let n = self.members.len();
        (0..n).map(|i| self.members[(first + i) % n].endpoint()).collect()
    }

    fn spawn(&mut self, id: u32) -> Result<()> {
        let peers: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let port = if m.id == id { m.peer } else { self.proxy.port(id, m.id) };
                format!("{}=127.0.0.1:{port}", m.id)
            })
            .collect();
        let member = self.member(id);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .with_context(|| format!("opening {}", member.log.display()))?;
        let child = Command::new(&self.bin)
            .args(["--id", &id.to_string()])
            .arg("--data-dir")
            .arg(&member.dir)
            .args(["--client-addr", &format!("127.0.0.1:{}", member.client)])
            .args(["--admin-addr", &format!("127.0.0.1:{}", member.admin)])
            .args(["--peer-addr", &format!("127.0.0.1:{}", member.peer)])
            .args(["--peers", &peers.join(",")])
            .args(&self.args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let member = self.member_mut(id);
        member.child = Some(child);
        member.paused = false;
        Ok(())
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self, id: u32) {
        let member = self.member_mut(id);
        if let Some(mut child) = member.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        member.paused = false;
    }

    /// SIGTERM (a graceful stop: a leader answers what it has in flight first), then
    /// waits up to `within` for the process to exit (then SIGKILL). Returns how long
    /// it took and its exit status.
    pub fn stop(&mut self, id: u32, within: Duration) -> Result<(Duration, String)> {
        self.signal(id, "-TERM")?;
        let started = std::time::Instant::now();
        let member = self.member_mut(id);
        let Some(mut child) = member.child.take() else { bail!("member {id} is not running") };
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok((started.elapsed(), status.to_string()));
            }
            if started.elapsed() > within {
                let _ = child.kill();
                let status = child.wait()?;
                bail!("member {id} did not stop within {within:?} of SIGTERM ({status})");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts a stopped member again on its data directory and ports.
    pub fn restart(&mut self, id: u32) -> Result<()> {
        if !self.member(id).running() {
            self.spawn(id)?;
        }
        Ok(())
    }

    fn signal(&self, id: u32, signal: &str) -> Result<()> {
        let Some(child) = &self.member(id).child else {
            bail!("member {id} is not running");
        };
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status()?;
        if !status.success() {
            bail!("kill {signal} {} (member {id}) failed", child.id());
        }
        Ok(())
    }

    /// SIGSTOP: the process holds its sockets and state but does nothing.
    pub fn pause(&mut self, id: u32) -> Result<()> {
        self.signal(id, "-STOP")?;
        self.member_mut(id).paused = true;
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: u32) -> Result<()> {
        if self.member(id).paused {
            self.signal(id, "-CONT")?;
            self.member_mut(id).paused = false;
        }
        Ok(())
    }

    /// Damages the tail of a stopped member's commit log: cuts 1 B … 16 KiB off its
    /// end, or flips one byte in its last 4 KiB. Returns what was done.
    pub fn damage_log(&self, id: u32, rng: &mut Rng) -> Result<String> {
        let member = self.member(id);
        if member.running() {
            bail!("member {id} must be stopped before its log is damaged");
        }
        let path = member.dir.join("db");
        let len = fs::metadata(&path).with_context(|| format!("{}", path.display()))?.len();
        if len < 8192 {
            return Ok(format!("{} too short to damage ({len} B)", path.display()));
        }
        let mut file = fs::OpenOptions::new().read(true).write(true).open(&path)?;
        if rng.chance(500) {
            let cut = 1 + rng.below(16 * 1024);
            file.set_len(len - cut)?;
            Ok(format!("cut {cut} B off the end of member {id}'s log ({len} B)"))
        } else {
            let offset = len - 1 - rng.below(4096);
            let mut byte = [0u8];
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(&mut byte)?;
            byte[0] ^= 1 << rng.below(8);
            file.seek(SeekFrom::Start(offset))?;
            file.write_all(&byte)?;
            Ok(format!("flipped a bit at byte {offset} of member {id}'s log ({len} B)"))
        }
    }

    /// The member's `/status`, if it answers within a second.
    pub async fn status(&self, id: u32) -> Option<MemberStatus> {
        let member = self.member(id);
        if !member.running() || member.paused {
            return None;
        }
        let got =
            tokio::time::timeout(Duration::from_secs(1), http_get(member.admin_addr(), "/status"));
        let Ok(Ok((200, body))) = got.await else {
            return None;
        };
        let json: Value = serde_json::from_str(&body).ok()?;
        let ensemble = json.get("ensemble")?;
        Some(MemberStatus {
            role: json.get("role")?.as_str()?.to_owned(),
            broadcasting: ensemble.get("broadcasting")?.as_bool()?,
            epoch: json.get("epoch")?.as_u64()?,
            last_zxid: json.get("last_zxid")?.as_u64()?,
            digest: json.get("digest")?.as_str()?.to_owned(),
        })
    }

    /// The member that leads and broadcasts now, if one does.
    pub async fn leader(&self) -> Option<u32> {
        for id in self.ids() {
            if let Some(status) = self.status(id).await
                && status.role == "leading"
                && status.broadcasting
            {
                return Some(id);
            }
        }
        None
    }

    /// Waits until every running, unpaused member broadcasts under one leader.
    pub async fn wait_settled(&self, within: Duration) -> Result<u32> {
        let deadline = Instant::now() + within;
        loop {
            let mut leaders = Vec::new();
            let mut all = true;
            for m in self.members.iter().filter(|m| m.running() && !m.paused) {
                match self.status(m.id).await {
                    Some(s) if s.broadcasting => {
                        if s.role == "leading" {
                            leaders.push(m.id);
                        }
                    }
                    _ => all = false,
                }
            }
            if let ([leader], true) = (&leaders[..], all) {
                return Ok(*leader);
            }
            if Instant::now() > deadline {
                bail!("no single leader served every running member within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every member runs, broadcasts, and all have applied the same last
    /// zxid with the same digest; returns the statuses.
    pub async fn wait_converged(&self, within: Duration) -> Result<Vec<MemberStatus>> {
        let deadline = Instant::now() + within;
        loop {
            let mut statuses = Vec::new();
            for id in self.ids() {
                statuses.push(self.status(id).await);
            }
            let statuses: Vec<MemberStatus> = statuses.into_iter().flatten().collect();
            let same = statuses.len() == self.members.len()
                && statuses.iter().all(|s| {
                    s.broadcasting
                        && s.last_zxid == statuses[0].last_zxid
                        && s.digest == statuses[0].digest
                });
            if same {
                return Ok(statuses);
            }
            if Instant::now() > deadline {
                bail!("members did not converge within {within:?}: {statuses:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of a member's log (for a failure report).
    pub fn log_tail(&self, id: u32, lines: usize) -> String {
        let text = fs::read_to_string(&self.member(id).log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether a member's log shows a panic.
    pub fn panicked(&self, id: u32) -> bool {
        fs::read_to_string(&self.member(id).log).is_ok_and(|text| text.contains("panicked at"))
    }

    /// Reaps members that exited on their own; returns their ids and exit statuses.
    pub fn exited(&mut self) -> Vec<(u32, String)> {
        let mut gone = Vec::new();
        for member in &mut self.members {
            if let Some(child) = &mut member.child
                && let Ok(Some(status)) = child.try_wait()
            {
                gone.push((member.id, status.to_string()));
                member.child = None;
            }
        }
        gone
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.resume(id);
            self.kill(id);
        }
    }
}
