//! One `baton-server` process: started from a [`Launch`], found through the address
//! line it prints, restarted on the same data directory and ports.

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use baton_api::admin::Status;
use serde::Deserialize;

use crate::{
    AdminTls, Error, Process, ProcessSpec, bin::baton_variables, fetch_status_with,
    fixed_free_port, process::read_log, server_bin, wait_until,
};

/// How long a server may take to recover, bind and print its address line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server whose stdout closed before its address line may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// How to start a server. [`ServerProcess::restart`] starts it the same way again, on
/// the ports it got the first time.
#[derive(Debug, Clone)]
pub struct Launch {
    /// What the process is called in errors and logs.
    pub name: String,
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    /// Port 0 lets the OS choose.
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// ZooKeeper's client protocol; None turns it off (`--zk-addr off`).
    pub zk_addr: Option<SocketAddr>,
    /// More flags (`--id`, `--peers`, limits, ...).
    pub args: Vec<String>,
    /// Where stderr goes (appended across restarts).
    pub log: PathBuf,
    /// `RUST_LOG` for the server.
    pub rust_log: String,
    /// A command the server's command line is appended to, e.g. a shell that prepares
    /// a file system and `exec`s the server (so the pid stays the server's).
    pub wrapper: Vec<String>,
    /// HTTPS to the admin port (when it has TLS): how `/status` is asked.
    pub admin_tls: Option<AdminTls>,
}

impl Launch {
    /// A server on `data_dir` with ports chosen by the OS, the binary of
    /// [`server_bin`], its log beside the data directory (`<data_dir>.log`) and
    /// `RUST_LOG` as this process has it (else `info`).
    pub fn new(data_dir: &Path) -> Launch {
        Launch::with_bin(data_dir, server_bin())
    }

    pub(crate) fn with_bin(data_dir: &Path, bin: PathBuf) -> Launch {
        let mut log = data_dir.as_os_str().to_owned();
        log.push(".log");
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Launch {
            name: "baton-server".to_owned(),
            bin,
            data_dir: data_dir.to_path_buf(),
            client_addr: any,
            admin_addr: any,
            zk_addr: Some(any),
            args: Vec::new(),
            log: PathBuf::from(log),
            rust_log: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            wrapper: Vec::new(),
            admin_tls: None,
        }
    }

    pub fn args(mut self, args: &[&str]) -> Launch {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Client and admin ports fixed now ([`fixed_free_port`]) rather than by the OS at
    /// each start.
    pub fn on_fixed_ports(mut self) -> Result<Launch, Error> {
        self.client_addr = SocketAddr::from(([127, 0, 0, 1], fixed_free_port()?));
        self.admin_addr = SocketAddr::from(([127, 0, 0, 1], fixed_free_port()?));
        self.zk_addr = Some(SocketAddr::from(([127, 0, 0, 1], fixed_free_port()?)));
        Ok(self)
    }

    fn spec(&self) -> ProcessSpec {
        let (program, mut args) = match self.wrapper.split_first() {
            None => (self.bin.clone(), Vec::new()),
            Some((program, rest)) => {
                let mut args: Vec<std::ffi::OsString> = rest.iter().map(Into::into).collect();
                args.push(self.bin.clone().into());
                (PathBuf::from(program), args)
            }
        };
        args.push("--data-dir".into());
        args.push(self.data_dir.clone().into());
        args.extend(["--client-addr".into(), self.client_addr.to_string().into()]);
        args.extend(["--admin-addr".into(), self.admin_addr.to_string().into()]);
        let zk = self.zk_addr.map_or_else(|| "off".to_owned(), |addr| addr.to_string());
        args.extend(["--zk-addr".into(), zk.into()]);
        args.extend(self.args.iter().map(Into::into));
        let mut spec = ProcessSpec::new(self.name.clone(), program, self.log.clone())
            .args(args)
            .env("RUST_LOG", &self.rust_log);
        spec.env_remove = baton_variables();
        spec
    }
}

/// The line a server prints on stdout once it serves.
#[derive(Debug, Deserialize)]
struct Addresses {
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    peer_addr: Option<SocketAddr>,
    zk_addr: Option<SocketAddr>,
}

/// A `baton-server` the kit started, killed (SIGKILL) on drop; its log is printed if a
/// test panics meanwhile.
#[derive(Debug)]
pub struct ServerProcess {
    launch: Launch,
    process: Option<Process>,
    peer_addr: Option<SocketAddr>,
}

impl ServerProcess {
    /// Starts a server on `data_dir` with ports chosen by the OS and `args`; panics
    /// (with the server's log) if it does not announce its addresses within
    /// [`STARTUP_TIMEOUT`]. For tests.
    pub fn start(data_dir: &Path, args: &[&str]) -> ServerProcess {
        match ServerProcess::launch(Launch::new(data_dir).args(args)) {
            Ok(server) => server,
            Err(Error::Startup { what, reason, log }) => {
                let text = read_log(&log);
                panic!(
                    "{what} did not start: {reason}\n---- {} ----\n{text}---- end ----",
                    log.display()
                )
            }
            Err(error) => panic!("{error}"),
        }
    }

    /// Starts a server as `launch` says and waits for its address line. A server that
    /// exits or says nothing is an [`Error::Startup`] naming its log.
    pub fn launch(launch: Launch) -> Result<ServerProcess, Error> {
        let mut server = ServerProcess::unstarted(launch);
        server.start_again()?;
        Ok(server)
    }

    /// A server described but not started: [`ServerProcess::restart`] starts it.
    pub fn unstarted(launch: Launch) -> ServerProcess {
        ServerProcess { launch, process: None, peer_addr: None }
    }

    /// Starts the process and reads its address line; on success the launch keeps the
    /// ports it got, so that a restart asks for the same ones.
    fn start_again(&mut self) -> Result<(), Error> {
        let starting = self.begin_start()?;
        self.finish_start(starting, Instant::now() + STARTUP_TIMEOUT)
    }

    /// Spawns the process; its address line is read in the background. Several servers
    /// (an ensemble's members) start at once this way, each recovering meanwhile.
    pub(crate) fn begin_start(&mut self) -> Result<Starting, Error> {
        let (process, stdout) = Process::spawn_piped(&self.launch.spec())?;
        Ok(Starting { process, line: first_line(stdout) })
    }

    /// Waits (until `deadline`) for the address line of a server [`begin_start`] spawned.
    ///
    /// [`begin_start`]: ServerProcess::begin_start
    pub(crate) fn finish_start(
        &mut self,
        starting: Starting,
        deadline: Instant,
    ) -> Result<(), Error> {
        let Starting { mut process, line } = starting;
        let startup = |reason: String| Error::Startup {
            what: self.launch.name.clone(),
            reason,
            log: self.launch.log.clone(),
        };
        let timeout = deadline.saturating_duration_since(Instant::now());
        let line = match line.recv_timeout(timeout) {
            Ok(Ok(line)) if !line.is_empty() => line.trim_end().to_owned(),
            answer => {
                let reason = match answer {
                    Ok(Ok(_)) => "it exited before printing its addresses".to_owned(),
                    Ok(Err(error)) => format!("reading its stdout: {error}"),
                    Err(_) => format!("no address line within {timeout:?}"),
                };
                // One that exited by itself (a refused start) is kept, so that `exited`
                // reports it; one that said nothing in time is killed.
                let gone = wait_until(Instant::now() + EXIT_GRACE, || !process.running());
                if gone {
                    self.process = Some(process);
                } else {
                    process.kill();
                }
                return Err(startup(reason));
            }
        };
        let Ok(addresses) = serde_json::from_str::<Addresses>(&line) else {
            process.kill();
            return Err(startup(format!("address line {line:?} is not the expected JSON")));
        };
        self.launch.client_addr = addresses.client_addr;
        self.launch.admin_addr = addresses.admin_addr;
        if self.launch.zk_addr.is_some() {
            self.launch.zk_addr = addresses.zk_addr;
        }
        self.peer_addr = addresses.peer_addr;
        self.process = Some(process);
        Ok(())
    }

    /// Kills the server if it runs, then starts it again on the same data directory,
    /// ports and flags.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill();
        self.start_again()
    }

    /// How this server is started.
    pub fn launch_spec(&self) -> &Launch {
        &self.launch
    }

    /// Changes the flags of the next start.
    pub fn set_args(&mut self, args: Vec<String>) {
        self.launch.args = args;
    }

    pub fn client_addr(&self) -> SocketAddr {
        self.launch.client_addr
    }

    /// `host:port` of the client port, as `baton_client::Client::connect` takes it.
    pub fn endpoint(&self) -> String {
        self.launch.client_addr.to_string()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.launch.admin_addr
    }

    /// Where it speaks ZooKeeper's client protocol (unless turned off).
    pub fn zk_addr(&self) -> Option<SocketAddr> {
        self.launch.zk_addr
    }

    /// `host:port` of the ZooKeeper-protocol port, as ZooKeeper clients take it; panics
    /// if the server was started without one.
    pub fn zk_endpoint(&self) -> String {
        self.zk_addr().expect("the server was started with --zk-addr off").to_string()
    }

    /// The peer address it announced (members only).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.launch.data_dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Process::pid)
    }

    /// Started and not seen to exit (a paused server runs).
    pub fn running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Process::running)
    }

    pub fn paused(&self) -> bool {
        self.process.as_ref().is_some_and(Process::paused)
    }

    fn process(&mut self) -> Result<&mut Process, Error> {
        let what = self.launch.name.clone();
        self.process.as_mut().ok_or(Error::NotRunning { what })
    }

    /// SIGKILL: the crash that loses everything not yet flushed.
    pub fn kill(&mut self) {
        if let Some(process) = &mut self.process {
            process.kill();
        }
    }

    /// SIGTERM: asks for a graceful stop and returns at once.
    pub fn terminate(&mut self) -> Result<(), Error> {
        self.process()?.terminate()
    }

    /// SIGTERM and up to `within` for the exit (then SIGKILL and an error); how long it
    /// took and the exit status.
    pub fn stop(&mut self, within: Duration) -> Result<(Duration, ExitStatus), Error> {
        self.process()?.stop(within)
    }

    /// SIGHUP: the server reloads its TLS material.
    pub fn hangup(&mut self) -> Result<(), Error> {
        self.process()?.signal(crate::Signal::Hup)
    }

    /// SIGSTOP.
    pub fn pause(&mut self) -> Result<(), Error> {
        self.process()?.pause()
    }

    /// SIGCONT, if paused.
    pub fn resume(&mut self) -> Result<(), Error> {
        match &mut self.process {
            Some(process) => process.resume(),
            None => Ok(()),
        }
    }

    /// Waits for the exit (after [`ServerProcess::terminate`]); `None` if it still runs
    /// at `deadline`.
    pub fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        self.process.as_mut()?.wait_exit(deadline)
    }

    /// How the server ended by itself (a crash, a refused start), reported once.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process.as_mut()?.exited()
    }

    /// Leaves the server running after this handle is gone; its pid.
    pub fn detach(mut self) -> Option<u32> {
        self.process.take()?.detach()
    }

    /// The server's log so far (every start of it).
    pub fn log(&self) -> String {
        read_log(&self.launch.log)
    }

    pub fn log_path(&self) -> &Path {
        &self.launch.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Its `/status` (over HTTPS when the launch says how).
    pub async fn status(&self) -> Result<Status, Error> {
        fetch_status_with(self.admin_addr(), self.launch.admin_tls.as_ref()).await
    }
}

/// A server spawned and not yet heard from.
#[derive(Debug)]
pub(crate) struct Starting {
    process: Process,
    line: mpsc::Receiver<std::io::Result<String>>,
}

/// The first line of `stdout`, read by a thread that then drains the rest, so that the
/// server never writes into a closed pipe.
fn first_line(stdout: impl Read + Send + 'static) -> mpsc::Receiver<std::io::Result<String>> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let result = reader.read_line(&mut line).map(|_| line);
        let _ = sender.send(result);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lines_parse() {
        let line = r#"{"client_addr":"127.0.0.1:5000","admin_addr":"127.0.0.1:5001"}"#;
        let parsed: Addresses = serde_json::from_str(line).unwrap();
        assert_eq!((parsed.client_addr.port(), parsed.admin_addr.port()), (5000, 5001));
        assert_eq!(parsed.peer_addr, None);
        let member =
            r#"{"client_addr":"127.0.0.1:1","admin_addr":"127.0.0.1:2","peer_addr":"127.0.0.1:3"}"#;
        let parsed: Addresses = serde_json::from_str(member).unwrap();
        assert_eq!(parsed.peer_addr.map(|a| a.port()), Some(3));
        assert!(serde_json::from_str::<Addresses>("{}").is_err());
        assert!(serde_json::from_str::<Addresses>("not json").is_err());
    }

    #[test]
    fn the_command_line_carries_the_launch() {
        let launch = Launch {
            wrapper: vec!["sh".into(), "-c".into()],
            ..Launch::with_bin(Path::new("members/d"), PathBuf::from("/bin/baton-server"))
        }
        .args(&["--id", "2"]);
        let spec = launch.spec();
        assert_eq!(spec.program, PathBuf::from("sh"));
        let args: Vec<String> = spec.args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args,
            [
                "-c",
                "/bin/baton-server",
                "--data-dir",
                "members/d",
                "--client-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
                "--zk-addr",
                "127.0.0.1:0",
                "--id",
                "2"
            ]
        );
        assert_eq!(spec.log, PathBuf::from("members/d.log"));
    }
}
