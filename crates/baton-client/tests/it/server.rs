//! A real `baton-server` process on 127.0.0.1 port 0 with a temporary data directory,
//! for the tests that need the real server's semantics (crates/baton-cli/tests/it/
//! harness.rs does the same for the CLI).

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{OnceLock, mpsc},
    thread,
    time::{Duration, Instant},
};

use baton_client::Client;

/// How long a server may take to bind its listeners and print its address line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a started server may take before it answers a first request.
const SERVING_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A running `baton-server`, killed on drop; its log is printed if the test panicked.
pub struct RealServer {
    child: Child,
    pub addr: String,
    log: PathBuf,
    _data: tempfile::TempDir,
}

impl RealServer {
    /// Starts a server and waits until it answers.
    pub async fn start() -> RealServer {
        let server = tokio::task::spawn_blocking(spawn).await.expect("spawn the server");
        let deadline = Instant::now() + SERVING_TIMEOUT;
        loop {
            let answer = match Client::connect(std::slice::from_ref(&server.addr)).await {
                Ok(client) => client.exists("/").await.map(|_| ()),
                Err(e) => Err(e),
            };
            match answer {
                Ok(()) => return server,
                Err(e) => assert!(Instant::now() < deadline, "server never answered: {e}"),
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    pub fn endpoints(&self) -> Vec<String> {
        vec![self.addr.clone()]
    }
}

fn spawn() -> RealServer {
    let data = tempfile::tempdir().expect("temporary data directory");
    let log = data.path().join("server.log");
    let data_dir = data.path().join("data");
    std::fs::create_dir(&data_dir).expect("create the data directory");
    let mut child = Command::new(server_binary())
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--client-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env_remove("BATON_CLIENT_ADDR")
        .env_remove("BATON_ADMIN_ADDR")
        .env_remove("BATON_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).expect("server log file"))
        .spawn()
        .expect("spawn baton-server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut server = RealServer { child, addr: String::new(), log, _data: data };
    let line = first_line(stdout).unwrap_or_else(|e| panic!("baton-server did not start: {e}"));
    let addrs: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("address line {line:?} is not JSON: {e}"));
    server.addr = addrs["client_addr"]
        .as_str()
        .unwrap_or_else(|| panic!("no client_addr in {line:?}"))
        .to_owned();
    server
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- baton-server log ----\n{log}---- end of log ----");
        }
    }
}

/// The first line of the server's stdout; the rest is drained in the background.
fn first_line(stdout: impl std::io::Read + Send + 'static) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = tx.send(reader.read_line(&mut line).map(|_| line));
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    match rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(Ok(line)) if !line.is_empty() => Ok(line.trim_end().to_owned()),
        Ok(Ok(_)) => Err("stdout closed before the address line".to_owned()),
        Ok(Err(e)) => Err(format!("reading stdout: {e}")),
        Err(_) => Err(format!("no address line within {STARTUP_TIMEOUT:?}")),
    }
}

/// The `baton-server` binary, built once per test process with the cargo running the
/// tests, found in the target directory of this test binary. `BATON_SERVER_BIN`
/// overrides both.
fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("BATON_SERVER_BIN") {
            return PathBuf::from(path);
        }
        if let Some(cargo) = std::env::var_os("CARGO") {
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "baton-server", "--bin", "baton-server"])
                .status()
                .expect("run cargo build -p baton-server");
            assert!(status.success(), "cargo build -p baton-server failed");
        }
        // This binary is target/<profile>/deps/it-<hash>; the server is in target/<profile>.
        let exe = std::env::current_exe().expect("the test binary's path");
        let path = exe
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("baton-server"))
            .expect("target directory");
        assert!(path.exists(), "{} does not exist; cargo build -p baton-server", path.display());
        path
    })
}
