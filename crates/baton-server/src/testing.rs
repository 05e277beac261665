//! Real `baton-server` processes for tests (this crate's and other crates').
//!
//! [`ServerProcess::start`] spawns the binary on 127.0.0.1 port 0 with the given data
//! directory, reads the address line it prints, and kills it on drop. Its stderr
//! goes to a log file beside the data directory, printed if the test panics. Waits
//! are conditions polled against a deadline ([`wait_until`]), never bare sleeps.

use std::{
    fs::File,
    future::Future,
    io::{BufRead, BufReader, Read},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicU16, AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a server may take to recover, bind and print its address line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause between two checks of a polled condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Where [`fixed_free_port`] looks: below Linux's ephemeral range (32768 and up), where
/// port-0 listeners of other processes take theirs, so a port found free stays free
/// until the process it is meant for binds it.
pub const FIXED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port that is free now, for a process that must be found on the same port
/// after a restart (an ensemble member, a peer). Each call in this process returns a
/// different port; processes start at different offsets.
pub fn fixed_free_port() -> std::io::Result<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = FIXED_PORTS.end - FIXED_PORTS.start;
    let offset = (std::process::id() % u32::from(span)) as u16;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        if n >= span {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("no free port left in {FIXED_PORTS:?}"),
            ));
        }
        let port = FIXED_PORTS.start + (offset + n) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
}

/// The `baton-server` binary: `BATON_SERVER_BIN` if set, else `baton-server` in the
/// target directory of the running test (built with `cargo build` once if missing).
///
/// An existing binary is used as it is: cargo builds it fresh for this crate's own
/// integration tests; other crates' tests should depend on it being built (or set
/// `BATON_SERVER_BIN`).
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("BATON_SERVER_BIN") {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("the test executable's path");
        // target/<profile>/deps/<test> → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps")
            .to_path_buf();
        let bin = profile_dir.join("baton-server");
        if !bin.exists() {
            build_server(&profile_dir);
        }
        assert!(bin.exists(), "{} does not exist after building it", bin.display());
        bin
    })
    .clone()
}

fn build_server(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "-p", "baton-server", "--bin", "baton-server"]);
    if profile_dir.file_name().is_some_and(|name| name == "release") {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build -p baton-server");
    assert!(status.success(), "cargo build -p baton-server failed");
}

/// A running `baton-server`, killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts a server on `data_dir` with ports chosen by the OS and `extra_args`.
    /// Panics (printing the server's log) if it does not announce its addresses
    /// within [`STARTUP_TIMEOUT`].
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> ServerProcess {
        match ServerProcess::try_start(data_dir, extra_args) {
            Ok(server) => server,
            Err((error, log)) => panic!("baton-server did not start: {error}\n{}", read_log(&log)),
        }
    }

    /// Like [`ServerProcess::start`], but a server that exits or says nothing is an
    /// error carrying the log's path (for tests of start-up failures).
    pub fn try_start(
        data_dir: &Path,
        extra_args: &[&str],
    ) -> Result<ServerProcess, (String, PathBuf)> {
        ServerProcess::try_start_wrapped(data_dir, extra_args, &[])
    }

    /// Like [`ServerProcess::start`], with the server's command line appended to
    /// `wrapper` (e.g. a shell that prepares a file system and `exec`s it, so the
    /// pid stays the server's).
    pub fn start_wrapped(data_dir: &Path, extra_args: &[&str], wrapper: &[&str]) -> ServerProcess {
        match ServerProcess::try_start_wrapped(data_dir, extra_args, wrapper) {
            Ok(server) => server,
            Err((error, log)) => panic!("baton-server did not start: {error}\n{}", read_log(&log)),
        }
    }

    fn try_start_wrapped(
        data_dir: &Path,
        extra_args: &[&str],
        wrapper: &[&str],
    ) -> Result<ServerProcess, (String, PathBuf)> {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log_dir = data_dir.parent().unwrap_or(data_dir);
        let log = log_dir.join(format!("baton-server-{}-{n}.log", std::process::id()));
        let stderr = File::create(&log).expect("create the server log file");
        let mut command = match wrapper.split_first() {
            None => Command::new(server_bin()),
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(server_bin());
                command
            }
        };
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--client-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
            .args(extra_args)
            .env_remove("BATON_CLIENT_ADDR")
            .env_remove("BATON_ADMIN_ADDR")
            .env_remove("BATON_DATA_DIR")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn baton-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let line = match first_line(stdout, STARTUP_TIMEOUT) {
            Ok(line) => line,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err((error, log));
            }
        };
        let parsed = parse_addresses(&line);
        let Some((client_addr, admin_addr)) = parsed else {
            let _ = child.kill();
            let _ = child.wait();
            return Err((format!("address line {line:?} is not the expected JSON"), log));
        };
        Ok(ServerProcess { child, client_addr, admin_addr, log })
    }

    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// `host:port` of the client port, as `baton_client::Client::connect` takes it.
    pub fn endpoint(&self) -> String {
        self.client_addr.to_string()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// SIGKILL: the crash that loses everything not yet flushed.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: a graceful shutdown.
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits for the process to exit; None if it is still running at `deadline`.
    pub fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(deadline, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!(
                "---- baton-server log ({}) ----\n{}---- end ----",
                self.log.display(),
                self.log()
            );
        }
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read the log: {e})\n"))
}

fn parse_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let addr = |key: &str| value.get(key)?.as_str()?.parse().ok();
    Some((addr("client_addr")?, addr("admin_addr")?))
}

/// Reads the first line of `stdout` within `timeout`; the rest is drained in the
/// background so the server never writes into a closed pipe.
fn first_line(stdout: impl Read + Send + 'static, timeout: Duration) -> Result<String, String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let result = reader.read_line(&mut line).map(|_| line);
        let _ = sender.send(result);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    match receiver.recv_timeout(timeout) {
        Ok(Ok(line)) if !line.is_empty() => Ok(line.trim_end().to_owned()),
        Ok(Ok(_)) => Err("the server exited before printing its addresses".to_owned()),
        Ok(Err(error)) => Err(format!("reading its stdout: {error}")),
        Err(_) => Err(format!("no address line within {timeout:?}")),
    }
}

/// Polls `condition` every [`POLL_INTERVAL`] until it holds (true) or `deadline`
/// passes (false).
pub fn wait_until(deadline: Instant, mut condition: impl FnMut() -> bool) -> bool {
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// [`wait_until`] for async conditions.
pub async fn wait_until_async<F, Fut>(deadline: Instant, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A minimal HTTP/1.1 GET (for the admin port): the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(invalid)?;
    let code =
        head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).ok_or_else(invalid)?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok((code, body))
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        let (Some(chunk), Some(after)) = (rest.get(..size), rest.get(size..)) else { break };
        if size == 0 {
            break;
        }
        out.push_str(chunk);
        body = after.trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lines_parse() {
        let line = r#"{"client_addr":"127.0.0.1:5000","admin_addr":"127.0.0.1:5001"}"#;
        let (client, admin) = parse_addresses(line).unwrap();
        assert_eq!((client.port(), admin.port()), (5000, 5001));
        assert!(parse_addresses("{}").is_none());
        assert!(parse_addresses("not json").is_none());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }

    #[test]
    fn wait_until_gives_up_at_the_deadline() {
        let mut calls = 0;
        assert!(wait_until(Instant::now() + Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
        assert!(!wait_until(Instant::now(), || false));
    }
}
