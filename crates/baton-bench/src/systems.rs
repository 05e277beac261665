//! The three systems as 3-member ensembles on 127.0.0.1: their configuration (each
//! with its own documented defaults for timing, fsync on), how they are started, and how
//! to ask which member leads.
//!
//! - Baton: `baton-server` with `--id`, `--peers` and its defaults (tick 2 s, fsync on).
//! - ZooKeeper (Debian's 3.8 package): `QuorumPeerMain` on a `zoo.cfg` per member with
//!   ZooKeeper's sample timing (tickTime 2000, initLimit 10, syncLimit 5), the admin
//!   server off, no per-address connection cap (every client is on 127.0.0.1), and the
//!   heap ZooKeeper's own start script gives (`-Xmx1000m`).
//! - etcd (Debian's 3.4 package): its default timing (heartbeat 100 ms, election
//!   1000 ms) and a static `--initial-cluster`.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use baton_server::testing::{fixed_free_port, http_get};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

use crate::{driver::etcd_status, procs::Proc};

/// The jars ZooKeeper's server runs from (Debian's layout): the server, whose manifest
/// names the rest of its class path, and the logging binding it logs through.
pub const ZOOKEEPER_JARS: [&str; 3] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Baton,
    ZooKeeper,
    Etcd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Baton => "baton",
            Kind::ZooKeeper => "zookeeper",
            Kind::Etcd => "etcd",
        }
    }

    pub fn parse(name: &str) -> Result<Kind> {
        match name {
            "baton" => Ok(Kind::Baton),
            "zookeeper" | "zk" => Ok(Kind::ZooKeeper),
            "etcd" => Ok(Kind::Etcd),
            other => bail!("unknown system {other:?} (baton, zookeeper, etcd)"),
        }
    }
}

/// Whether `kind` can be started here; if not, why (what to install).
pub fn available(kind: Kind) -> Result<(), String> {
    match kind {
        Kind::Baton => Ok(()),
        Kind::ZooKeeper => {
            for jar in ZOOKEEPER_JARS {
                if !Path::new(jar).exists() {
                    return Err(format!("{jar} not found (apt-get install zookeeper)"));
                }
            }
            which("java").map(|_| ()).ok_or_else(|| "java not found on PATH".to_owned())
        }
        Kind::Etcd => which("etcd")
            .map(|_| ())
            .ok_or_else(|| "etcd not found on PATH (apt-get install etcd-server)".to_owned()),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// One member: its process and the port clients reach it on.
#[derive(Debug)]
pub struct Member {
    pub id: u32,
    pub client_port: u16,
    /// Baton's admin HTTP port (where `/status` says the member's role).
    admin_port: Option<u16>,
    pub proc: Proc,
}

impl Member {
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }
}

/// A running ensemble of one kind.
#[derive(Debug)]
pub struct Ensemble {
    pub kind: Kind,
    pub members: Vec<Member>,
}

impl Ensemble {
    /// Configures and starts `n` members under `dir`.
    pub fn start(kind: Kind, n: u32, dir: &Path, options: &crate::Options) -> Result<Ensemble> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut members = match kind {
            Kind::Baton => baton_members(n, dir, &options.baton_bin, &options.baton_args)?,
            Kind::ZooKeeper => zookeeper_members(n, dir)?,
            Kind::Etcd => etcd_members(n, dir)?,
        };
        for member in &mut members {
            member.proc.start()?;
        }
        Ok(Ensemble { kind, members })
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// Fails if a member that should run has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for member in &mut self.members {
            if let Some(exit) = member.proc.exited() {
                bail!("{exit}");
            }
        }
        Ok(())
    }

    /// Sum of the running members' resident set sizes, and the largest.
    pub fn rss(&self) -> (u64, u64) {
        let sizes: Vec<u64> = self.members.iter().filter_map(|m| m.proc.rss_bytes()).collect();
        (sizes.iter().sum(), sizes.iter().copied().max().unwrap_or(0))
    }

    /// CPU seconds used so far by the running members together.
    pub fn cpu_secs(&self) -> f64 {
        self.members.iter().filter_map(|m| m.proc.cpu_secs()).sum()
    }

    /// The index (in `members`) of the member that says it leads.
    pub async fn leader(&self) -> Result<usize> {
        for (index, member) in self.members.iter().enumerate() {
            if !member.proc.running() {
                continue;
            }
            let leads = match self.kind {
                Kind::Baton => baton_leads(member).await,
                Kind::ZooKeeper => zookeeper_leads(member).await,
                Kind::Etcd => etcd_status(&member.endpoint())
                    .await
                    .map(|(me, leader)| me == leader && leader != 0)
                    .unwrap_or(false),
            };
            if leads {
                return Ok(index);
            }
        }
        bail!("no member of the {} ensemble says it leads", self.kind.name())
    }
}

fn baton_members(n: u32, dir: &Path, bin: &Path, extra: &[String]) -> Result<Vec<Member>> {
    let ports: Vec<(u16, u16, u16)> =
        (0..n).map(|_| Ok((port()?, port()?, port()?))).collect::<Result<_>>()?;
    let peers: Vec<String> =
        ports.iter().zip(1..).map(|((_, _, peer), id)| format!("{id}=127.0.0.1:{peer}")).collect();
    let peers = peers.join(",");
    let mut members = Vec::new();
    for ((client, admin, peer), id) in ports.into_iter().zip(1..) {
        let mut args: Vec<String> = vec![
            "--id".into(),
            id.to_string(),
            "--data-dir".into(),
            dir.join(format!("member-{id}")).display().to_string(),
            "--client-addr".into(),
            format!("127.0.0.1:{client}"),
            "--admin-addr".into(),
            format!("127.0.0.1:{admin}"),
            "--peer-addr".into(),
            format!("127.0.0.1:{peer}"),
            "--peers".into(),
            peers.clone(),
        ];
        args.extend(extra.iter().cloned());
        let log = dir.join(format!("member-{id}.log"));
        let proc = Proc::new(format!("baton member {id}"), bin.to_path_buf(), args, log)
            .env("RUST_LOG", &std::env::var("BENCH_BATON_LOG").unwrap_or_else(|_| "warn".into()));
        members.push(Member { id, client_port: client, admin_port: Some(admin), proc });
    }
    Ok(members)
}

fn zookeeper_members(n: u32, dir: &Path) -> Result<Vec<Member>> {
    let ports: Vec<(u16, u16, u16)> =
        (0..n).map(|_| Ok((port()?, port()?, port()?))).collect::<Result<_>>()?;
    let servers: Vec<String> = ports
        .iter()
        .zip(1..)
        .map(|((_, quorum, election), id)| format!("server.{id}=127.0.0.1:{quorum}:{election}"))
        .collect();
    let mut members = Vec::new();
    for ((client, _, _), id) in ports.into_iter().zip(1..) {
        let conf = dir.join(format!("member-{id}/conf"));
        let data = dir.join(format!("member-{id}/data"));
        fs::create_dir_all(&conf)?;
        fs::create_dir_all(&data)?;
        fs::write(data.join("myid"), format!("{id}\n"))?;
        let cfg = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n\
             4lw.commands.whitelist=srvr\n{}\n",
            data.display(),
            servers.join("\n"),
        );
        fs::write(conf.join("zoo.cfg"), cfg)?;
        // Warnings and errors to the member's log; ZooKeeper's INFO lines per session
        // and request would cost it time the others do not spend.
        fs::write(
            conf.join("log4j.properties"),
            "log4j.rootLogger=WARN, CONSOLE\n\
             log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p %c{1} - %m%n\n",
        )?;
        let class_path = std::iter::once(conf.display().to_string())
            .chain(ZOOKEEPER_JARS.iter().map(|jar| (*jar).to_owned()))
            .collect::<Vec<_>>()
            .join(":");
        let args = vec![
            "-Xmx1000m".to_owned(),
            "-cp".to_owned(),
            class_path,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain".to_owned(),
            conf.join("zoo.cfg").display().to_string(),
        ];
        let log = dir.join(format!("member-{id}.log"));
        let java = which("java").context("java not found")?;
        let proc = Proc::new(format!("zookeeper member {id}"), java, args, log);
        members.push(Member { id, client_port: client, admin_port: None, proc });
    }
    Ok(members)
}

fn etcd_members(n: u32, dir: &Path) -> Result<Vec<Member>> {
    let ports: Vec<(u16, u16)> = (0..n).map(|_| Ok((port()?, port()?))).collect::<Result<_>>()?;
    let cluster: Vec<String> = ports
        .iter()
        .zip(1..)
        .map(|((_, peer), id)| format!("m{id}=http://127.0.0.1:{peer}"))
        .collect();
    let cluster = cluster.join(",");
    let etcd = which("etcd").context("etcd not found")?;
    let mut members = Vec::new();
    for ((client, peer), id) in ports.into_iter().zip(1..) {
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let args: Vec<String> = vec![
            "--name".into(),
            format!("m{id}"),
            "--data-dir".into(),
            dir.join(format!("member-{id}")).display().to_string(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url,
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url,
            "--initial-cluster".into(),
            cluster.clone(),
            "--initial-cluster-state".into(),
            "new".into(),
            "--initial-cluster-token".into(),
            "bench".into(),
            "--logger".into(),
            "zap".into(),
            "--log-level".into(),
            "warn".into(),
        ];
        let log = dir.join(format!("member-{id}.log"));
        let proc = Proc::new(format!("etcd member {id}"), etcd.clone(), args, log);
        members.push(Member { id, client_port: client, admin_port: None, proc });
    }
    Ok(members)
}

fn port() -> Result<u16> {
    fixed_free_port().context("picking a port")
}

async fn baton_leads(member: &Member) -> bool {
    let Some(admin) = member.admin_port else { return false };
    let addr = SocketAddr::from(([127, 0, 0, 1], admin));
    match timeout(Duration::from_secs(2), http_get(addr, "/status")).await {
        Ok(Ok((200, body))) => serde_json::from_str::<serde_json::Value>(&body)
            .map(|status| status["role"] == "leading")
            .unwrap_or(false),
        _ => false,
    }
}

/// ZooKeeper's `srvr` four-letter command: its answer has a `Mode: leader` line.
async fn zookeeper_leads(member: &Member) -> bool {
    let ask = async {
        let mut stream = TcpStream::connect(("127.0.0.1", member.client_port)).await?;
        stream.write_all(b"srvr").await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match timeout(Duration::from_secs(2), ask).await {
        Ok(Ok(answer)) => answer.lines().any(|line| line.trim() == "Mode: leader"),
        _ => false,
    }
}
