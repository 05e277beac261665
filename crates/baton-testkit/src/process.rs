//! Any child process the kit runs: started from a [`ProcessSpec`], its output in a log
//! file (appended, so a restarted process adds to the same file), signalled by the pid
//! it was spawned with, killed when dropped.

use std::{
    ffi::OsString,
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use rustix::process::{Pid, kill_process, test_kill_process};

use crate::{Error, wait_until};

/// The signals the kit sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A graceful stop.
    Term,
    /// The crash that loses everything not yet flushed.
    Kill,
    /// Frozen: holds its sockets and state but does nothing.
    Stop,
    /// Thawed after [`Signal::Stop`].
    Cont,
    /// SIGHUP: a server reloads its TLS material.
    Hup,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Kill => "SIGKILL",
            Signal::Stop => "SIGSTOP",
            Signal::Cont => "SIGCONT",
            Signal::Hup => "SIGHUP",
        }
    }

    fn raw(self) -> rustix::process::Signal {
        match self {
            Signal::Term => rustix::process::Signal::TERM,
            Signal::Kill => rustix::process::Signal::KILL,
            Signal::Stop => rustix::process::Signal::STOP,
            Signal::Cont => rustix::process::Signal::CONT,
            Signal::Hup => rustix::process::Signal::HUP,
        }
    }
}

fn pid_of(pid: u32) -> std::io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a pid"))
}

/// Sends `signal` to `pid`: for a process a tool started earlier and recorded (a
/// child of this process is signalled through its [`Process`]).
pub fn signal(pid: u32, signal: Signal) -> Result<(), Error> {
    kill_process(pid_of(pid).map_err(|source| signal_error(pid, signal, source))?, signal.raw())
        .map_err(|errno| signal_error(pid, signal, errno.into()))
}

fn signal_error(pid: u32, signal: Signal, source: std::io::Error) -> Error {
    Error::Signal { what: format!("pid {pid}"), pid, signal: signal.name(), source }
}

/// Whether a process with this pid exists (and may be signalled by us).
pub fn alive(pid: u32) -> bool {
    pid_of(pid).is_ok_and(|pid| test_kill_process(pid).is_ok())
}

/// How long [`Process::pause`] waits for the threads to stop.
const STOP_WAIT_MAX: Duration = Duration::from_secs(2);

/// Whether every thread of `pid` is stopped (state `T` in `/proc/<pid>/task/*/stat`).
/// True also when that cannot be read: there is nothing more to wait for then.
fn all_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return true };
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        let state = stat.rfind(')').and_then(|end| stat[end + 1..].trim_start().chars().next());
        matches!(state, Some('T' | 't') | None)
    })
}

/// How to start a process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// What the process is called in errors and logs ("member 2", "etcd member 1").
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Variables set for the child.
    pub env: Vec<(OsString, OsString)>,
    /// Variables removed from what the child inherits.
    pub env_remove: Vec<OsString>,
    /// Where stderr (and stdout, unless the kit reads it) goes, appended.
    pub log: PathBuf,
}

impl ProcessSpec {
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>, log: PathBuf) -> ProcessSpec {
        ProcessSpec {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            log,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> ProcessSpec {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> ProcessSpec {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> ProcessSpec {
        self.env.push((name.into(), value.into()));
        self
    }
}

/// A child process, killed (SIGKILL) when dropped; when the drop happens during a
/// panic (a failing test), its log is printed.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    paused: bool,
    /// How it ended by itself, until someone asked ([`Process::exited`]).
    exit: Option<ExitStatus>,
}

impl Process {
    /// Starts a process whose stdout and stderr both go to its log.
    pub fn spawn(spec: &ProcessSpec) -> Result<Process, Error> {
        let log = open_log(&spec.log)?;
        let stdout = log
            .try_clone()
            .map_err(|source| Error::Io { what: format!("{}", spec.log.display()), source })?;
        let (process, _) = Process::spawn_with(spec, Stdio::from(stdout), log)?;
        Ok(process)
    }

    /// Starts a process whose stdout the kit reads (stderr goes to the log).
    pub(crate) fn spawn_piped(spec: &ProcessSpec) -> Result<(Process, ChildStdout), Error> {
        let log = open_log(&spec.log)?;
        let (process, stdout) = Process::spawn_with(spec, Stdio::piped(), log)?;
        let stdout = stdout.ok_or_else(|| Error::Io {
            what: format!("{}'s stdout", spec.name),
            source: std::io::Error::other("not piped"),
        })?;
        Ok((process, stdout))
    }

    fn spawn_with(
        spec: &ProcessSpec,
        stdout: Stdio,
        log: File,
    ) -> Result<(Process, Option<ChildStdout>), Error> {
        let mut command = Command::new(&spec.program);
        command.args(&spec.args);
        for name in &spec.env_remove {
            command.env_remove(name);
        }
        command.envs(spec.env.iter().map(|(k, v)| (k, v)));
        let mut child =
            command.stdin(Stdio::null()).stdout(stdout).stderr(log).spawn().map_err(|source| {
                Error::Spawn { what: format!("{} ({})", spec.name, spec.program.display()), source }
            })?;
        let stdout = child.stdout.take();
        let process = Process {
            name: spec.name.clone(),
            child: Some(child),
            log: spec.log.clone(),
            paused: false,
            exit: None,
        };
        Ok((process, stdout))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid, while the child is ours and not reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the child has not been seen to exit (paused counts as running).
    pub fn running(&mut self) -> bool {
        self.reap();
        self.child.is_some()
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Sends a signal to the child.
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        let Some(child) = &self.child else {
            return Err(Error::NotRunning { what: self.name.clone() });
        };
        let pid = child.id();
        let raw = pid_of(pid).map_err(|source| self.signal_error(pid, signal, source))?;
        kill_process(raw, signal.raw())
            .map_err(|errno| self.signal_error(pid, signal, errno.into()))
    }

    fn signal_error(&self, pid: u32, signal: Signal, source: std::io::Error) -> Error {
        Error::Signal { what: self.name.clone(), pid, signal: signal.name(), source }
    }

    /// SIGKILL, and reap. Nothing happens if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGTERM: asks for a graceful stop and returns at once.
    pub fn terminate(&self) -> Result<(), Error> {
        self.signal(Signal::Term)
    }

    /// SIGSTOP, and waits (briefly) until every thread of the process has stopped:
    /// the signal is delivered asynchronously, and a caller that goes on to check that
    /// the process does nothing must not race it.
    pub fn pause(&mut self) -> Result<(), Error> {
        self.signal(Signal::Stop)?;
        self.paused = true;
        if let Some(pid) = self.pid() {
            wait_until(Instant::now() + STOP_WAIT_MAX, || all_stopped(pid));
        }
        Ok(())
    }

    /// SIGCONT, if paused.
    pub fn resume(&mut self) -> Result<(), Error> {
        if self.paused {
            self.signal(Signal::Cont)?;
            self.paused = false;
        }
        Ok(())
    }

    /// Reaps the child if it has exited, keeping its status for [`Process::exited`].
    fn reap(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        self.paused = false;
        self.exit = Some(status);
        Some(status)
    }

    /// How the process ended by itself, once: a process that exited (not by the kit's
    /// kill) is reported by the first call after it did.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.reap();
        self.exit.take()
    }

    /// Waits for the process to exit (after a SIGTERM, say) and returns its status;
    /// `None` if it still runs at `deadline`, or was not running.
    pub fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        wait_until(deadline, || {
            self.reap();
            self.child.is_none()
        });
        self.exit.take()
    }

    /// A graceful stop: SIGTERM, then waits up to `within` for the exit (then SIGKILL
    /// and an error). Returns how long the stop took and the exit status.
    pub fn stop(&mut self, within: Duration) -> Result<(Duration, ExitStatus), Error> {
        self.resume()?;
        self.terminate()?;
        let started = Instant::now();
        match self.wait_exit(started + within) {
            Some(status) => Ok((started.elapsed(), status)),
            None => {
                self.kill();
                Err(Error::Stop { what: self.name.clone(), within })
            }
        }
    }

    /// Lets the process run on after this handle is gone (a tool that starts servers
    /// for the user); returns its pid, to stop it later with [`signal`].
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|child| child.id())
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "---- {} log ({}) ----\n{}---- end ----",
                self.name,
                self.log.display(),
                self.log()
            );
        }
    }
}

fn open_log(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| Error::Io { what: format!("opening {}", path.display()), source })
}

pub(crate) fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read the log: {e})\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path) -> Process {
        let spec = ProcessSpec::new("sleep", "sleep", dir.join("sleep.log")).arg("30");
        Process::spawn(&spec).unwrap()
    }

    #[test]
    fn signals_reach_the_child_and_exits_are_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = sleeper(dir.path());
        let pid = process.pid().unwrap();
        assert!(alive(pid));
        process.pause().unwrap();
        assert!(process.paused());
        assert!(all_stopped(pid), "pause returns once the process has stopped");
        process.resume().unwrap();
        let (_, status) = process.stop(Duration::from_secs(10)).unwrap();
        assert!(!status.success(), "killed by SIGTERM: {status}");
        assert!(!process.running());
        assert!(process.exited().is_none(), "a stop is not an exit by itself");
        assert!(matches!(process.signal(Signal::Term), Err(Error::NotRunning { .. })));

        let spec = ProcessSpec::new("false", "false", dir.path().join("false.log"));
        let mut gone = Process::spawn(&spec).unwrap();
        let status = gone.wait_exit(Instant::now() + Duration::from_secs(10));
        assert!(status.is_some_and(|s| !s.success()));

        let mut gone = Process::spawn(&spec).unwrap();
        assert!(wait_until(Instant::now() + Duration::from_secs(10), || !gone.running()));
        assert!(gone.exited().is_some_and(|s| !s.success()));
        assert!(gone.exited().is_none(), "reported once");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ProcessSpec::new("nothing", dir.path().join("nope"), dir.path().join("l"));
        assert!(matches!(Process::spawn(&spec), Err(Error::Spawn { .. })));
    }

    #[test]
    fn a_detached_process_runs_on_and_is_stopped_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let pid = sleeper(dir.path()).detach().unwrap();
        assert!(alive(pid));
        signal(pid, Signal::Kill).unwrap();
        // Not our child any more: it is reaped by nobody until this test process
        // exits, so it stays a zombie; the signal was delivered, which is the point.
    }
}
