//! An ensemble of real members on 127.0.0.1: fixed client, admin and peer ports (a
//! restarted member is found where it was), a data directory and a log each, and the
//! two conditions tests and tools wait for, settled and converged.

use std::{
    fmt::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitStatus,
    time::{Duration, Instant},
};

use baton_api::admin::Status;

use crate::{
    AdminTls, Error, Launch, STARTUP_TIMEOUT, ServerProcess, converged, fixed_free_port,
    server_bin, settled, wait::POLL_INTERVAL,
};

/// One member as it is started.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// 1..=N.
    pub id: u32,
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// ZooKeeper's client protocol.
    pub zk_addr: SocketAddr,
    /// Where it listens for its peers.
    pub peer_addr: SocketAddr,
    /// Its `--peers`: every member's id and the address this member reaches it at (the
    /// members' own peer addresses, unless a caller routes them elsewhere, through a
    /// proxy say).
    pub peers: String,
}

/// How to start an ensemble; [`EnsembleSpec::start`] starts it.
#[derive(Debug, Clone)]
pub struct EnsembleSpec {
    /// `member-N/` (data) and `member-N.log` (stderr) go here.
    pub dir: PathBuf,
    pub bin: PathBuf,
    /// Flags every member gets.
    pub args: Vec<String>,
    /// `RUST_LOG` for the members.
    pub rust_log: String,
    pub members: Vec<MemberSpec>,
    /// HTTPS to the members' admin ports (when they have TLS).
    pub admin_tls: Option<AdminTls>,
}

/// `1=127.0.0.1:p1,2=127.0.0.1:p2,…`, the form `--peers` takes.
pub fn peer_list(peers: impl IntoIterator<Item = (u32, SocketAddr)>) -> String {
    let peers: Vec<String> = peers.into_iter().map(|(id, addr)| format!("{id}={addr}")).collect();
    peers.join(",")
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl EnsembleSpec {
    /// `size` members under `dir`, each on fixed free ports, reaching each other
    /// directly, run by [`server_bin`] with `RUST_LOG` as this process has it.
    pub fn new(dir: &Path, size: u32) -> Result<EnsembleSpec, Error> {
        let mut members = Vec::new();
        for id in 1..=size {
            members.push(MemberSpec {
                id,
                client_addr: loopback(fixed_free_port()?),
                admin_addr: loopback(fixed_free_port()?),
                zk_addr: loopback(fixed_free_port()?),
                peer_addr: loopback(fixed_free_port()?),
                peers: String::new(),
            });
        }
        let direct = peer_list(members.iter().map(|m| (m.id, m.peer_addr)));
        for member in &mut members {
            member.peers.clone_from(&direct);
        }
        Ok(EnsembleSpec::with_members(dir, members))
    }

    /// Members whose ports (and `--peers`) were chosen before: a tool that restarts
    /// one member of an ensemble it started earlier (ids need not be 1..=N after
    /// membership changes; `Ensemble` handles want them so).
    pub fn with_members(dir: &Path, members: Vec<MemberSpec>) -> EnsembleSpec {
        let mut ids: Vec<u32> = members.iter().map(|m| m.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), members.len(), "member ids are unique");
        EnsembleSpec {
            dir: dir.to_path_buf(),
            bin: server_bin(),
            args: Vec::new(),
            rust_log: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            members,
            admin_tls: None,
        }
    }

    /// Adds flags for every member.
    pub fn args(mut self, args: &[&str]) -> EnsembleSpec {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Every member's id and the address it listens on for its peers.
    pub fn peer_addrs(&self) -> Vec<(u32, SocketAddr)> {
        self.members.iter().map(|m| (m.id, m.peer_addr)).collect()
    }

    /// The member with id `id`, wherever it is in the list.
    pub fn member_mut_by_id(&mut self, id: u32) -> &mut MemberSpec {
        self.members.iter_mut().find(|m| m.id == id).expect("a member with that id")
    }

    /// Member `id` (1..=N).
    pub fn member_mut(&mut self, id: u32) -> &mut MemberSpec {
        &mut self.members[index(id)]
    }

    /// How member `id` is started (for a tool that starts one member by itself).
    pub fn launch(&self, id: u32) -> Launch {
        let member = self.members.iter().find(|m| m.id == id).expect("a member with that id");
        let data_dir = self.dir.join(format!("member-{id}"));
        let mut args = vec![
            "--id".to_owned(),
            id.to_string(),
            "--peer-addr".to_owned(),
            member.peer_addr.to_string(),
            "--peers".to_owned(),
            member.peers.clone(),
        ];
        args.extend(self.args.iter().cloned());
        Launch {
            name: format!("member {id}"),
            bin: self.bin.clone(),
            client_addr: member.client_addr,
            admin_addr: member.admin_addr,
            zk_addr: Some(member.zk_addr),
            args,
            log: self.dir.join(format!("member-{id}.log")),
            rust_log: self.rust_log.clone(),
            admin_tls: self.admin_tls.clone(),
            ..Launch::with_bin(&data_dir, self.bin.clone())
        }
    }

    /// Starts every member (each has printed its addresses when this returns; none is
    /// waited for to elect: see [`Ensemble::wait_settled`]).
    pub fn start(self) -> Result<Ensemble, Error> {
        let ids: Vec<u32> = self.members.iter().map(|m| m.id).collect();
        self.start_some(&ids)
    }

    /// Starts the members `ids` only; the others can be started later with
    /// [`Ensemble::start_member`] (members a membership change adds).
    pub fn start_some(self, ids: &[u32]) -> Result<Ensemble, Error> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            what: format!("creating {}", self.dir.display()),
            source,
        })?;
        let members = self.members.iter().map(|m| ServerProcess::unstarted(self.launch(m.id)));
        let mut ensemble = Ensemble { members: members.collect() };
        ensemble.start_members(ids)?;
        Ok(ensemble)
    }
}

fn index(id: u32) -> usize {
    assert!(id >= 1, "member ids start at 1");
    (id - 1) as usize
}

/// Running members of one ensemble, by id (1..=N). Every member is killed when the
/// ensemble is dropped.
#[derive(Debug)]
pub struct Ensemble {
    members: Vec<ServerProcess>,
}

impl Ensemble {
    /// `size` members under `dir` with `args` each (see [`EnsembleSpec::new`]).
    pub fn start(dir: &Path, size: u32, args: &[&str]) -> Result<Ensemble, Error> {
        EnsembleSpec::new(dir, size)?.args(args).start()
    }

    pub fn ids(&self) -> Vec<u32> {
        (1..=self.members.len() as u32).collect()
    }

    pub fn member(&self, id: u32) -> &ServerProcess {
        &self.members[index(id)]
    }

    pub fn member_mut(&mut self, id: u32) -> &mut ServerProcess {
        &mut self.members[index(id)]
    }

    /// Every member's client endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints_from(0)
    }

    /// Every member's client endpoint, starting with the member at index `first` (a
    /// client tries them in order, so clients given different `first` spread out).
    pub fn endpoints_from(&self, first: usize) -> Vec<String> {
        let n = self.members.len();
        (0..n).map(|i| self.members[(first + i) % n].endpoint()).collect()
    }

    /// SIGKILL member `id` (nothing if it is not running).
    pub fn kill(&mut self, id: u32) {
        self.member_mut(id).kill();
    }

    /// Starts member `id` again on its data directory and ports, unless it runs.
    pub fn start_member(&mut self, id: u32) -> Result<(), Error> {
        self.start_members(&[id])
    }

    /// Starts the members `ids` that do not run, all at once (each recovers while the
    /// others do), and waits for each one's address line; the first failure is
    /// returned once every one was waited for.
    pub fn start_members(&mut self, ids: &[u32]) -> Result<(), Error> {
        let mut starting = Vec::new();
        for &id in ids {
            let member = self.member_mut(id);
            if !member.running() {
                member.kill();
                starting.push((id, member.begin_start()?));
            }
        }
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut first_error = None;
        for (id, started) in starting {
            if let Err(error) = self.member_mut(id).finish_start(started, deadline) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Kills member `id` if it runs and starts it again.
    pub fn restart(&mut self, id: u32) -> Result<(), Error> {
        self.member_mut(id).restart()
    }

    /// A graceful stop of member `id` (SIGTERM, up to `within`): how long it took and
    /// the exit status.
    pub fn stop(&mut self, id: u32, within: Duration) -> Result<(Duration, ExitStatus), Error> {
        self.member_mut(id).stop(within)
    }

    /// SIGSTOP member `id`.
    pub fn pause(&mut self, id: u32) -> Result<(), Error> {
        self.member_mut(id).pause()
    }

    /// SIGCONT member `id`, if paused.
    pub fn resume(&mut self, id: u32) -> Result<(), Error> {
        self.member_mut(id).resume()
    }

    /// Members that exited by themselves since the last call, with their exit status.
    pub fn exited(&mut self) -> Vec<(u32, ExitStatus)> {
        let ids = self.ids();
        ids.into_iter()
            .filter_map(|id| self.member_mut(id).exited().map(|status| (id, status)))
            .collect()
    }

    /// Member `id`'s `/status`; `None` if it is not running, is paused, or does not
    /// answer.
    pub async fn status(&self, id: u32) -> Option<Status> {
        let member = self.member(id);
        if member.pid().is_none() || member.paused() {
            return None;
        }
        member.status().await.ok()
    }

    /// Every member's `/status`, as [`Ensemble::status`].
    pub async fn statuses(&self) -> Vec<(u32, Option<Status>)> {
        let mut all = Vec::new();
        for id in self.ids() {
            all.push((id, self.status(id).await));
        }
        all
    }

    /// The member that leads and broadcasts now, if one does.
    pub async fn leader(&self) -> Option<u32> {
        for id in self.ids() {
            if self.status(id).await.is_some_and(|s| s.leads()) {
                return Some(id);
            }
        }
        None
    }

    /// The members meant to answer now: started, not paused.
    fn live(&self) -> Vec<u32> {
        self.ids()
            .into_iter()
            .filter(|id| self.member(*id).pid().is_some() && !self.member(*id).paused())
            .collect()
    }

    /// The leader, if every live member answers and broadcasts under it.
    pub async fn settled(&self) -> Option<u32> {
        let mut statuses = Vec::new();
        for id in self.live() {
            statuses.push(self.status(id).await?);
        }
        settled(&statuses).and_then(|leader| u32::try_from(leader).ok())
    }

    /// Waits until every live member (started, not paused) broadcasts under one
    /// leader; returns the leader's id.
    pub async fn wait_settled(&self, within: Duration) -> Result<u32, Error> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(leader) = self.settled().await {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                let what =
                    format!("no leader every running member follows: {}", self.describe().await);
                return Err(Error::Timeout { what, within });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until every member runs, broadcasts, and has applied the same last zxid
    /// with the same digest; returns their statuses.
    pub async fn wait_converged(&self, within: Duration) -> Result<Vec<Status>, Error> {
        let deadline = Instant::now() + within;
        loop {
            let statuses: Vec<Status> =
                self.statuses().await.into_iter().filter_map(|(_, s)| s).collect();
            if statuses.len() == self.members.len() && converged(&statuses) {
                return Ok(statuses);
            }
            if Instant::now() >= deadline {
                let what = format!("the members did not converge: {}", self.describe().await);
                return Err(Error::Timeout { what, within });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// One line per member, for a failure message.
    async fn describe(&self) -> String {
        let mut out = String::new();
        for (id, status) in self.statuses().await {
            let _ = match status {
                None => write!(out, "\n  member {id}: no answer"),
                Some(s) => write!(
                    out,
                    "\n  member {id}: {}{} leader={:?} epoch={} last_zxid={:#x} digest={}",
                    s.role,
                    if s.ensemble.broadcasting { " broadcasting" } else { "" },
                    s.ensemble.leader,
                    s.ensemble.current_epoch,
                    s.last_zxid,
                    s.digest
                ),
            };
        }
        out
    }

    /// Leaves every member running after this handle is gone (a tool that starts an
    /// ensemble for the user); their ids and pids.
    pub fn detach(self) -> Vec<(u32, Option<u32>)> {
        let ids = self.ids();
        ids.into_iter().zip(self.members.into_iter().map(ServerProcess::detach)).collect()
    }
}
