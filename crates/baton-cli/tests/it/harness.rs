//! Test harness: a real `baton-server` process on 127.0.0.1 port 0 with a temporary data
//! directory, and a runner for the real `baton` binary.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{OnceLock, mpsc},
    thread,
    time::{Duration, Instant},
};

/// How long a server may take to bind its listeners and print its address line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a started server may take before it answers a first request.
const SERVING_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause between two checks of a condition that is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A running `baton-server`, killed (SIGKILL) on drop. If the test panicked, the server's
/// log is printed so the failure can be understood.
pub struct Server {
    child: Child,
    pub client_addr: String,
    pub admin_addr: String,
    log: PathBuf,
    _data: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
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
        let line = first_line(child.stdout.take().expect("piped stdout"), STARTUP_TIMEOUT);
        let mut server = Server {
            child,
            client_addr: String::new(),
            admin_addr: String::new(),
            log,
            _data: data,
        };
        let line = line.unwrap_or_else(|e| panic!("baton-server did not start: {e}"));
        let addrs: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("address line {line:?} is not JSON: {e}"));
        server.client_addr = addrs["client_addr"]
            .as_str()
            .unwrap_or_else(|| panic!("no client_addr in {line:?}"))
            .to_owned();
        server.admin_addr = addrs["admin_addr"]
            .as_str()
            .unwrap_or_else(|| panic!("no admin_addr in {line:?}"))
            .to_owned();
        server.wait_until_serving();
        server
    }

    /// Bound is not necessarily serving (recovery may still run): wait until a read works.
    fn wait_until_serving(&self) {
        let deadline = Instant::now() + SERVING_TIMEOUT;
        loop {
            let run = baton(&self.client_addr, &["exists", "/"]);
            if run.code == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "server never answered: {}", run.stderr);
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Runs `baton --endpoints <this server> args...`.
    pub fn baton(&self, args: &[&str]) -> Run {
        baton(&self.client_addr, args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- baton-server log ----\n{log}---- end of log ----");
        }
    }
}

/// Reads the first line of `stdout` within `timeout`. The rest is drained in the
/// background so the server never writes into a closed pipe.
fn first_line(stdout: impl Read + Send + 'static, timeout: Duration) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let result = reader.read_line(&mut line).map(|_| line);
        let _ = tx.send(result);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(line)) if !line.is_empty() => Ok(line.trim_end().to_owned()),
        Ok(Ok(_)) => Err("stdout closed before the address line".to_owned()),
        Ok(Err(e)) => Err(format!("reading stdout: {e}")),
        Err(_) => Err(format!("no address line within {timeout:?}")),
    }
}

/// The `baton-server` binary, built once per test process.
///
/// Cargo builds only this package's binaries for its integration tests, so the server is
/// built here with the cargo that runs the tests (a no-op when it is fresh), and found next
/// to `baton`. `BATON_SERVER_BIN` overrides both.
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
        let path = Path::new(env!("CARGO_BIN_EXE_baton")).with_file_name("baton-server");
        assert!(path.exists(), "{} does not exist; cargo build -p baton-server", path.display());
        path
    })
}

/// How long a long-running `baton` (create -e, watch, lock, session open) may take to
/// print a line or to exit once it should.
const RUNNING_TIMEOUT: Duration = Duration::from_secs(30);

/// A `baton` process that keeps running (create -e, watch, session open): its stdout is
/// read line by line as it comes.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Option<thread::JoinHandle<()>>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Server {
    /// Starts `baton --endpoints <this server> args...` without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["--endpoints", &self.client_addr])
            .args(args)
            .env_remove("BATON_ENDPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn baton");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        let stdout = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Running { child, lines, stdout: Some(stdout), stderr: Some(stderr) }
    }
}

impl Running {
    /// The next line on stdout; panics if none comes in time.
    #[track_caller]
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(RUNNING_TIMEOUT) {
            Ok(line) => line,
            Err(e) => panic!("no line from baton within {RUNNING_TIMEOUT:?} ({e})"),
        }
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends SIGTERM (`kill -TERM`: std only sends SIGKILL).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the exit (within a deadline) and returns what it printed since the lines
    /// already read.
    pub fn wait(mut self) -> Run {
        let deadline = Instant::now() + RUNNING_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for baton") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("baton did not exit within {RUNNING_TIMEOUT:?}");
            }
            thread::sleep(POLL_INTERVAL);
        };
        // Both pipes close at the exit: the readers finish with everything printed.
        if let Some(reader) = self.stdout.take() {
            let _ = reader.join();
        }
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        let stdout: Vec<String> = self.lines.try_iter().collect();
        let mut stdout = stdout.join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        Run { code: status.code().expect("baton exited by a signal"), stdout, stderr }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one run of `baton` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn baton(endpoints: &str, args: &[&str]) -> Run {
    baton_with_stdin(endpoints, args, None)
}

pub fn baton_with_stdin(endpoints: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["--endpoints", endpoints])
        .args(args)
        .env_remove("BATON_ENDPOINTS")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn baton");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input).expect("write baton's stdin");
    }
    let output = child.wait_with_output().expect("wait for baton");
    Run {
        code: output.status.code().expect("baton exited by a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "baton failed: {self:?}");
        &self.stdout
    }

    /// Asserts the exit code and that stderr is exactly one `baton: ...` line; returns it
    /// without the newline.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        assert!(self.stdout.is_empty(), "output on failure: {self:?}");
        let line = self.stderr.strip_suffix('\n').expect("stderr ends with a newline");
        assert!(!line.contains('\n'), "more than one line on stderr: {self:?}");
        assert!(line.starts_with("baton: "), "{self:?}");
        line
    }
}
