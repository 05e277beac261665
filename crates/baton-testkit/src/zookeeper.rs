//! A real Apache ZooKeeper ensemble on 127.0.0.1, for tests that hold Baton's
//! ZooKeeper listener against the original: N members (1 runs standalone) on fixed
//! free ports in a directory of the caller's, small heaps, warnings only in a log per
//! member, every four-letter word allowed, the admin server off, TTL nodes on.
//!
//! It runs the jars of Debian's `zookeeper` package; [`zookeeper_available`] says
//! whether they (and java) are there. Members are [`Process`]es: killed (SIGKILL, by
//! their pid) when the ensemble is dropped.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{Error, Process, ProcessSpec, fixed_free_port, wait::POLL_INTERVAL};

/// The jars ZooKeeper's server runs from (Debian's layout): the server, whose manifest
/// names the rest of its class path, and the logging binding it logs through.
pub const ZOOKEEPER_JARS: [&str; 3] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

/// How long a ZooKeeper ensemble may take to serve: three JVMs starting at once on a
/// small shared machine, then an election.
pub const ZOOKEEPER_STARTUP_TIMEOUT: Duration = Duration::from_secs(40);

/// A test ensemble needs little memory; ZooKeeper's own script gives 1000m.
const HEAP: &str = "-Xmx256m";

/// How long one four-letter-word exchange may take.
const FOURLW_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a ZooKeeper ensemble can be started here; if not, why and what to install.
pub fn zookeeper_available() -> Result<(), String> {
    for jar in ZOOKEEPER_JARS {
        if !Path::new(jar).exists() {
            return Err(format!(
                "{jar} not found (apt-get install zookeeper, or run `cargo xtask deps`)"
            ));
        }
    }
    java().map(|_| ())
}

fn java() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("java"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| "java not found on PATH (run `cargo xtask deps`)".to_owned())
}

/// One member: how it starts (kept, so a killed member restarts the same way) and its
/// process while it runs.
#[derive(Debug)]
struct Member {
    client_addr: SocketAddr,
    spec: ProcessSpec,
    process: Option<Process>,
}

/// Running ZooKeeper members, by id (1..=N).
#[derive(Debug)]
pub struct ZkEnsemble {
    members: Vec<Member>,
}

impl ZkEnsemble {
    /// Configures `size` members under `dir` (`member-N/` and `member-N.log`) and
    /// starts them; they serve once [`ZkEnsemble::wait_serving`] returns.
    pub fn start(dir: &Path, size: u32) -> Result<ZkEnsemble, Error> {
        assert!(size >= 1, "an ensemble has members");
        let java = java().map_err(|reason| Error::Spawn {
            what: "zookeeper".to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, reason),
        })?;
        let mut ports = Vec::new();
        for _ in 0..size {
            ports.push((fixed_free_port()?, fixed_free_port()?, fixed_free_port()?));
        }
        let servers: String = if size == 1 {
            String::new()
        } else {
            (1..)
                .zip(&ports)
                .map(|(id, (_, quorum, election))| {
                    format!("server.{id}=127.0.0.1:{quorum}:{election}\n")
                })
                .collect()
        };
        let mut members = Vec::new();
        for (id, (client, _, _)) in (1..).zip(&ports) {
            let spec = configure(dir, id, *client, &servers, &java)?;
            let client_addr = SocketAddr::from(([127, 0, 0, 1], *client));
            members.push(Member { client_addr, spec, process: None });
        }
        let mut ensemble = ZkEnsemble { members };
        for id in ensemble.ids() {
            ensemble.start_member(id)?;
        }
        Ok(ensemble)
    }

    pub fn ids(&self) -> Vec<u32> {
        (1..=self.members.len() as u32).collect()
    }

    /// Where member `id` serves ZooKeeper's client protocol.
    pub fn client_addr(&self, id: u32) -> SocketAddr {
        self.members[index(id)].client_addr
    }

    /// Member `id`'s log file.
    pub fn log_path(&self, id: u32) -> &Path {
        &self.members[index(id)].spec.log
    }

    /// SIGKILL member `id` (nothing if it is not running).
    pub fn kill(&mut self, id: u32) {
        if let Some(mut process) = self.members[index(id)].process.take() {
            process.kill();
        }
    }

    /// Starts member `id` on its ports and data, unless it runs.
    pub fn start_member(&mut self, id: u32) -> Result<(), Error> {
        let member = &mut self.members[index(id)];
        if member.process.as_mut().is_some_and(Process::running) {
            return Ok(());
        }
        member.process = Some(Process::spawn(&member.spec)?);
        Ok(())
    }

    /// Kills member `id` if it runs and starts it again.
    pub fn restart(&mut self, id: u32) -> Result<(), Error> {
        self.kill(id);
        self.start_member(id)
    }

    /// Member `id`'s mode as `srvr` reports it (leader, follower, standalone), if it
    /// runs and serves.
    pub async fn mode(&self, id: u32) -> Option<String> {
        let answer = four_letter_word(self.client_addr(id), "srvr").await.ok()?;
        answer.lines().find_map(|line| Some(line.strip_prefix("Mode: ")?.trim().to_owned()))
    }

    /// Waits until every running member serves (reports a mode); a member that exited
    /// is an error at once, with its log's tail.
    pub async fn wait_serving(&mut self, within: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + within;
        loop {
            let mut serving = true;
            for id in self.ids() {
                let member = &mut self.members[index(id)];
                let Some(process) = member.process.as_mut() else { continue };
                if !process.running() {
                    let reason = format!("exited: {}", process.log_tail(20));
                    let log = member.spec.log.clone();
                    return Err(Error::Startup { what: member.spec.name.clone(), reason, log });
                }
                serving &= self.mode(id).await.is_some();
            }
            if serving {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = "every running zookeeper member serving".to_owned();
                return Err(Error::Timeout { what, within });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

fn index(id: u32) -> usize {
    assert!(id >= 1, "member ids start at 1");
    (id - 1) as usize
}

/// Writes member `id`'s `zoo.cfg`, `myid` and logging configuration; returns how to
/// start it.
fn configure(
    dir: &Path,
    id: u32,
    client_port: u16,
    servers: &str,
    java: &Path,
) -> Result<ProcessSpec, Error> {
    let conf = dir.join(format!("member-{id}/conf"));
    let data = dir.join(format!("member-{id}/data"));
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |source| Error::Io { what, source }
    };
    fs::create_dir_all(&conf).map_err(io(&conf))?;
    fs::create_dir_all(&data).map_err(io(&data))?;
    fs::write(data.join("myid"), format!("{id}\n")).map_err(io(&data))?;
    // ZooKeeper's sample timing; TTL nodes need the extended types; the admin server
    // would take a port of its own.
    let cfg = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
         clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n\
         4lw.commands.whitelist=*\nextendedTypesEnabled=true\n{servers}",
        data.display(),
    );
    let cfg_path = conf.join("zoo.cfg");
    fs::write(&cfg_path, cfg).map_err(io(&cfg_path))?;
    // log4j finds this file on the class path (the conf directory comes first).
    let log4j = conf.join("log4j.properties");
    fs::write(
        &log4j,
        "log4j.rootLogger=WARN, CONSOLE\n\
         log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n\
         log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n\
         log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p %c{1} - %m%n\n",
    )
    .map_err(io(&log4j))?;
    let class_path = std::iter::once(conf.display().to_string())
        .chain(ZOOKEEPER_JARS.iter().map(|jar| (*jar).to_owned()))
        .collect::<Vec<_>>()
        .join(":");
    let log = dir.join(format!("member-{id}.log"));
    // A test member starts often and runs briefly: the quick JIT tier and the serial
    // collector start fastest on a small machine. Members that start before their
    // peers back off between election rounds, doubling up to a minute by default: a
    // second keeps the first election short when the JVMs start slowly.
    Ok(ProcessSpec::new(format!("zookeeper member {id}"), java, log).args([
        HEAP,
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Dzookeeper.fastleader.maxNotificationInterval=1000",
        "-cp",
        class_path.as_str(),
        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        cfg_path.display().to_string().as_str(),
    ]))
}

/// Sends a four-letter word to a ZooKeeper client port and reads the answer to the end.
pub async fn four_letter_word(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(word.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    };
    tokio::time::timeout(FOURLW_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_standalone_member_serves_and_restarts() {
        if let Err(why) = zookeeper_available() {
            eprintln!("skipped: {why}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut zk = ZkEnsemble::start(dir.path(), 1).unwrap();
        zk.wait_serving(ZOOKEEPER_STARTUP_TIMEOUT).await.unwrap();
        assert_eq!(zk.mode(1).await.as_deref(), Some("standalone"));
        zk.kill(1);
        assert_eq!(zk.mode(1).await, None);
        zk.restart(1).unwrap();
        zk.wait_serving(ZOOKEEPER_STARTUP_TIMEOUT).await.unwrap();
        assert_eq!(zk.mode(1).await.as_deref(), Some("standalone"));
    }
}
