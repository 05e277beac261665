//! Runs of the real `baton` binary, the program under test: to the end ([`baton`]) or
//! kept running while its output is read line by line ([`spawn`]).

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use baton_testkit::{Signal, signal, wait_until};

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

/// Starts `baton --endpoints <endpoints> args...` without waiting for it.
pub fn spawn(endpoints: &str, args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["--endpoints", endpoints])
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

    /// Sends SIGTERM (std only sends SIGKILL).
    pub fn terminate(&self) {
        signal(self.child.id(), Signal::Term).expect("SIGTERM to baton");
    }

    /// Waits for the exit (within a deadline) and returns what it printed since the lines
    /// already read.
    pub fn wait(mut self) -> Run {
        let mut status = None;
        let exited = wait_until(Instant::now() + RUNNING_TIMEOUT, || {
            status = self.child.try_wait().expect("wait for baton");
            status.is_some()
        });
        let Some(status) = status.filter(|_| exited) else {
            let _ = self.child.kill();
            panic!("baton did not exit within {RUNNING_TIMEOUT:?}");
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
