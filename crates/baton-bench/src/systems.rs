//! The systems as 3-member ensembles on 127.0.0.1: their configuration (each with its
//! own documented defaults for timing, fsync on), how they are started, and how to ask
//! which member leads.
//!
//! - Baton: baton-testkit's ensemble (`baton-server` with `--id`, `--peers` and its
//!   defaults: tick 2 s, fsync on); the leader is the one whose `/status` says so.
//! - baton-zk: the same Baton ensemble, started the same way, whose clients are the
//!   ZooKeeper driver on the members' ZooKeeper-protocol ports (`--zk-addr`): the same
//!   client library and workload code as ZooKeeper's, only the server differs.
//! - ZooKeeper (Debian's 3.8 package): `QuorumPeerMain` on a `zoo.cfg` per member with
//!   ZooKeeper's sample timing (tickTime 2000, initLimit 10, syncLimit 5), the admin
//!   server off, no per-address connection cap (every client is on 127.0.0.1), and the
//!   heap ZooKeeper's own start script gives (`-Xmx1000m`).
//! - etcd (Debian's 3.4 package): its default timing (heartbeat 100 ms, election
//!   1000 ms) and a static `--initial-cluster`.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use baton_client::ClientTls;
use baton_testkit::{EnsembleSpec, Process, ProcessSpec, TestPki, fixed_free_port};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

use crate::{driver::etcd_status, procs};

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
    /// Baton's server, its clients speaking ZooKeeper's protocol.
    BatonZk,
    ZooKeeper,
    Etcd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Baton => "baton",
            Kind::BatonZk => "baton-zk",
            Kind::ZooKeeper => "zookeeper",
            Kind::Etcd => "etcd",
        }
    }

    pub fn parse(name: &str) -> Result<Kind> {
        match name {
            "baton" => Ok(Kind::Baton),
            "baton-zk" => Ok(Kind::BatonZk),
            "zookeeper" | "zk" => Ok(Kind::ZooKeeper),
            "etcd" => Ok(Kind::Etcd),
            other => bail!("unknown system {other:?} (baton, baton-zk, zookeeper, etcd)"),
        }
    }

    /// Whether the members are `baton-server` processes.
    pub fn is_baton(self) -> bool {
        matches!(self, Kind::Baton | Kind::BatonZk)
    }
}

/// Whether `kind` can be started here (`tls`: Baton with TLS on); if not, why.
pub fn available(kind: Kind, tls: bool) -> Result<(), String> {
    match kind {
        Kind::Baton => Ok(()),
        // The driver's ZooKeeper client is built without TLS.
        Kind::BatonZk if tls => Err("the ZooKeeper driver does not use TLS".to_owned()),
        Kind::BatonZk => Ok(()),
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

/// A ZooKeeper or etcd member: how it is started (kept, so a killed member restarts
/// the same way), its process while it runs, and the port clients reach it on.
#[derive(Debug)]
pub struct Member {
    pub id: u32,
    pub client_port: u16,
    spec: ProcessSpec,
    process: Option<Process>,
}

/// The members of one ensemble.
#[derive(Debug)]
enum Members {
    Baton(baton_testkit::Ensemble),
    Other(Vec<Member>),
}

/// A running ensemble of one kind; members are known by their index (0..N).
#[derive(Debug)]
pub struct Ensemble {
    pub kind: Kind,
    members: Members,
    /// How clients reach Baton's members when they use TLS.
    pub client_tls: Option<ClientTls>,
}

impl Ensemble {
    /// Configures and starts `n` members under `dir`.
    pub fn start(kind: Kind, n: u32, dir: &Path, options: &crate::Options) -> Result<Ensemble> {
        Ensemble::start_with_observers(kind, n, 0, dir, options)
    }

    /// As [`Ensemble::start`], with `observers` more members that observe (Baton
    /// only: the members after the voters, `:observer` in every `--peers`).
    pub fn start_with_observers(
        kind: Kind,
        n: u32,
        observers: u32,
        dir: &Path,
        options: &crate::Options,
    ) -> Result<Ensemble> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        anyhow::ensure!(
            observers == 0 || matches!(kind, Kind::Baton | Kind::BatonZk),
            "observers are measured for Baton only"
        );
        let (members, client_tls) = match kind {
            Kind::Baton | Kind::BatonZk => {
                let (members, tls) = baton_ensemble(n, observers, dir, options)?;
                (Members::Baton(members), tls)
            }
            Kind::ZooKeeper => (Members::Other(zookeeper_members(n, dir)?), None),
            Kind::Etcd => (Members::Other(etcd_members(n, dir)?), None),
        };
        let mut ensemble = Ensemble { kind, members, client_tls };
        ensemble.start_all()?;
        Ok(ensemble)
    }

    /// Starts every member that does not run, all at once.
    pub fn start_all(&mut self) -> Result<()> {
        match &mut self.members {
            Members::Baton(ensemble) => ensemble.start_members(&ensemble.ids())?,
            Members::Other(_) => {
                for index in 0..self.len() {
                    self.start_member(index)?;
                }
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        match &self.members {
            Members::Baton(ensemble) => ensemble.ids().len(),
            Members::Other(members) => members.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where clients reach the members (baton-zk: their ZooKeeper-protocol ports).
    pub fn endpoints(&self) -> Vec<String> {
        match &self.members {
            Members::Baton(ensemble) if self.kind == Kind::BatonZk => {
                ensemble.ids().into_iter().map(|id| ensemble.member(id).zk_endpoint()).collect()
            }
            Members::Baton(ensemble) => ensemble.endpoints(),
            Members::Other(members) => {
                members.iter().map(|m| format!("127.0.0.1:{}", m.client_port)).collect()
            }
        }
    }

    /// Baton's running members' write-stage histograms as they stand: per member, its
    /// id, whether it leads, and (stage, seconds summed, count) in the server's order.
    /// Empty for other systems, and with TLS (whose admin port wants a client
    /// certificate; the bench reads stages in plain runs).
    pub async fn write_stages(&self) -> Vec<StageSample> {
        let Members::Baton(ensemble) = &self.members else { return Vec::new() };
        if self.client_tls.is_some() {
            return Vec::new();
        }
        let leader = ensemble.leader().await;
        let mut out = Vec::new();
        for id in ensemble.ids() {
            let member = ensemble.member(id);
            if member.pid().is_none() {
                continue;
            }
            let Ok((200, text)) = baton_testkit::http_get(member.admin_addr(), "/metrics").await
            else {
                continue;
            };
            out.push(StageSample { id, leads: leader == Some(id), totals: parse_stages(&text) });
        }
        out
    }

    /// Whether member `index` has been started and not killed.
    pub fn running(&self, index: usize) -> bool {
        self.pid(index).is_some()
    }

    fn pid(&self, index: usize) -> Option<u32> {
        match &self.members {
            Members::Baton(ensemble) => ensemble.member(baton_id(index)).pid(),
            Members::Other(members) => members[index].process.as_ref()?.pid(),
        }
    }

    /// SIGKILL member `index`.
    pub fn kill(&mut self, index: usize) {
        match &mut self.members {
            Members::Baton(ensemble) => ensemble.kill(baton_id(index)),
            Members::Other(members) => {
                if let Some(mut process) = members[index].process.take() {
                    process.kill();
                }
            }
        }
    }

    /// Starts member `index` (again, the same way), unless it runs.
    pub fn start_member(&mut self, index: usize) -> Result<()> {
        match &mut self.members {
            Members::Baton(ensemble) => ensemble.start_member(baton_id(index))?,
            Members::Other(members) => {
                let member = &mut members[index];
                if member.process.is_none() {
                    member.process = Some(Process::spawn(&member.spec)?);
                }
            }
        }
        Ok(())
    }

    /// Fails if a member that should run has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match &mut self.members {
            Members::Baton(ensemble) => {
                if let Some((id, status)) = ensemble.exited().into_iter().next() {
                    let log = ensemble.member(id).log_path().display().to_string();
                    bail!("baton member {id} exited: {status} (log: {log})");
                }
            }
            Members::Other(members) => {
                for member in members.iter_mut() {
                    let Some(process) = &mut member.process else { continue };
                    if let Some(status) = process.exited() {
                        let log = process.log_path().display().to_string();
                        bail!("{} exited: {status} (log: {log})", process.name());
                    }
                }
            }
        }
        Ok(())
    }

    /// Sum of the running members' resident set sizes, and the largest.
    pub fn rss(&self) -> (u64, u64) {
        let sizes: Vec<u64> =
            (0..self.len()).filter_map(|i| procs::rss_bytes(self.pid(i)?)).collect();
        (sizes.iter().sum(), sizes.iter().copied().max().unwrap_or(0))
    }

    /// CPU seconds used so far by the running members together.
    pub fn cpu_secs(&self) -> f64 {
        (0..self.len()).filter_map(|i| procs::cpu_secs(self.pid(i)?)).sum()
    }

    /// The index of the member that says it leads.
    pub async fn leader(&self) -> Result<usize> {
        match &self.members {
            Members::Baton(ensemble) => {
                if let Some(id) = ensemble.leader().await {
                    return Ok(id as usize - 1);
                }
            }
            Members::Other(members) => {
                for (index, member) in members.iter().enumerate() {
                    if member.process.is_none() {
                        continue;
                    }
                    let leads = match self.kind {
                        Kind::ZooKeeper => zookeeper_leads(member).await,
                        _ => etcd_status(&format!("127.0.0.1:{}", member.client_port))
                            .await
                            .map(|(me, leader)| me == leader && leader != 0)
                            .unwrap_or(false),
                    };
                    if leads {
                        return Ok(index);
                    }
                }
            }
        }
        bail!("no member of the {} ensemble says it leads", self.kind.name())
    }
}

/// One Baton member's write-stage histograms at one moment.
#[derive(Debug, Clone)]
pub struct StageSample {
    pub id: u32,
    pub leads: bool,
    /// (stage, seconds summed, count), in the server's order.
    pub totals: Vec<(String, f64, u64)>,
}

/// The `baton_write_stage_duration_seconds` sums and counts of a `/metrics` page,
/// by stage, in the page's order.
fn parse_stages(text: &str) -> Vec<(String, f64, u64)> {
    let mut stages: Vec<(String, f64, u64)> = Vec::new();
    for (stage, is_sum, value) in text.lines().filter_map(stage_line) {
        let index = match stages.iter().position(|(s, _, _)| s == stage) {
            Some(index) => index,
            None => {
                stages.push((stage.to_owned(), 0.0, 0));
                stages.len() - 1
            }
        };
        if is_sum {
            stages[index].1 = value.trim().parse().unwrap_or(0.0);
        } else {
            stages[index].2 = value.trim().parse().unwrap_or(0);
        }
    }
    stages
}

/// One sum or count line of a stage: (stage, whether a sum, value). The storage
/// thread's own time per append and flush (`baton_fsync_duration_seconds`) is the
/// stage `disk`, beside the driver's `log` (which also holds the round trip to it).
fn stage_line(line: &str) -> Option<(&str, bool, &str)> {
    const SUM: &str = "baton_write_stage_duration_seconds_sum{stage=\"";
    const COUNT: &str = "baton_write_stage_duration_seconds_count{stage=\"";
    if let Some(value) = line.strip_prefix("baton_fsync_duration_seconds_sum ") {
        return Some(("disk", true, value));
    }
    if let Some(value) = line.strip_prefix("baton_fsync_duration_seconds_count ") {
        return Some(("disk", false, value));
    }
    let (rest, is_sum) = match (line.strip_prefix(SUM), line.strip_prefix(COUNT)) {
        (Some(rest), _) => (rest, true),
        (_, Some(rest)) => (rest, false),
        _ => return None,
    };
    let (stage, value) = rest.split_once("\"} ")?;
    Some((stage, is_sum, value))
}

/// The kit's id of Baton member `index`.
fn baton_id(index: usize) -> u32 {
    index as u32 + 1
}

/// Baton's members, configured and started; with `options.tls`, TLS on their client
/// and peer ports, and the options of a client they accept.
fn baton_ensemble(
    n: u32,
    observers: u32,
    dir: &Path,
    options: &crate::Options,
) -> Result<(baton_testkit::Ensemble, Option<ClientTls>)> {
    let mut spec = EnsembleSpec::new(dir, n + observers)?;
    if observers > 0 {
        let peers: Vec<String> = spec
            .peer_addrs()
            .into_iter()
            .map(|(id, addr)| {
                let role = if id > n { ":observer" } else { "" };
                format!("{id}={addr}{role}")
            })
            .collect();
        for id in 1..=n + observers {
            spec.member_mut(id).peers = peers.join(",");
        }
    }
    spec.bin = options.baton_bin.clone();
    spec.args = options.baton_args.clone();
    spec.rust_log = std::env::var("BENCH_BATON_LOG").unwrap_or_else(|_| "warn".into());
    let client_tls = if options.tls {
        let pki = TestPki::new(&dir.join("pki"), "bench")?;
        let server = pki.server("member", "member")?;
        let client = pki.client("client", "bench")?;
        let path = |p: &Path| p.display().to_string();
        let (cert, key, ca) = (path(&server.cert), path(&server.key), path(pki.ca()));
        for (flag, value) in [
            ("--tls-cert", &cert),
            ("--tls-key", &key),
            ("--tls-ca", &ca),
            ("--client-auth", &"required".to_owned()),
            ("--peer-tls-cert", &cert),
            ("--peer-tls-key", &key),
            ("--peer-tls-ca", &ca),
        ] {
            spec.args.extend([flag.to_owned(), value.clone()]);
        }
        Some(ClientTls {
            ca: Some(pki.ca().to_path_buf()),
            cert: Some(client.cert),
            key: Some(client.key),
        })
    } else {
        None
    };
    let members = spec.start()?;
    Ok((members, client_tls))
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
        let spec = ProcessSpec::new(format!("zookeeper member {id}"), java, log).args(args);
        members.push(Member { id, client_port: client, spec, process: None });
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
        let spec = ProcessSpec::new(format!("etcd member {id}"), etcd.clone(), log).args(args);
        members.push(Member { id, client_port: client, spec, process: None });
    }
    Ok(members)
}

fn port() -> Result<u16> {
    fixed_free_port().context("picking a port")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_read_from_a_metrics_page() {
        let page = "baton_fsync_duration_seconds_sum 0.5\n\
                    baton_fsync_duration_seconds_count 2\n\
                    baton_write_stage_duration_seconds_bucket{stage=\"queue\",le=\"0.00001\"} 1\n\
                    baton_write_stage_duration_seconds_sum{stage=\"queue\"} 0.25\n\
                    baton_write_stage_duration_seconds_count{stage=\"queue\"} 5\n";
        assert_eq!(
            parse_stages(page),
            [("disk".to_owned(), 0.5, 2), ("queue".to_owned(), 0.25, 5)]
        );
    }

    /// An ensemble of stand-ins for ZooKeeper or etcd members: `program args`.
    fn stand_ins(dir: &Path, program: &str, args: &[&str]) -> Ensemble {
        let members = (1..=2)
            .map(|id| Member {
                id,
                client_port: 1000 + id as u16,
                spec: ProcessSpec::new(
                    format!("stand-in {id}"),
                    program,
                    dir.join(format!("{id}.log")),
                )
                .args(args.iter().copied()),
                process: None,
            })
            .collect();
        Ensemble { kind: Kind::Etcd, members: Members::Other(members), client_tls: None }
    }

    #[test]
    fn other_members_start_die_and_restart_as_processes() {
        let dir = tempfile::tempdir().unwrap();
        let mut ensemble = stand_ins(dir.path(), "sleep", &["30"]);
        ensemble.start_all().unwrap();
        assert_eq!(ensemble.endpoints(), ["127.0.0.1:1001", "127.0.0.1:1002"]);
        assert!(ensemble.running(0) && ensemble.running(1));
        assert!(ensemble.rss().0 > 0);
        ensemble.check_alive().unwrap();
        ensemble.kill(1);
        assert!(!ensemble.running(1));
        ensemble.check_alive().expect("a member killed on purpose is not a failure");
        ensemble.start_all().unwrap();
        assert!(ensemble.running(1));

        let mut failing = stand_ins(dir.path(), "false", &[]);
        failing.start_all().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let failed = baton_testkit::wait_until(deadline, || failing.check_alive().is_err());
        assert!(failed, "a member that exits by itself is reported");
    }
}
