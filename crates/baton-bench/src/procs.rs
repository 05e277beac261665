//! One member process: how to start it (kept, so a killed member restarts the same
//! way), its log file, and what /proc says about its memory and CPU time.

use std::{
    fs,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use anyhow::{Context, Result, bail};

/// A member process of an ensemble under test. Killed when dropped.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    pub fn new(name: String, program: PathBuf, args: Vec<String>, log: PathBuf) -> Proc {
        Proc { name, program, args, env: Vec::new(), log, child: None }
    }

    pub fn env(mut self, name: &str, value: &str) -> Proc {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the process; its stdout and stderr go to its log file (appended).
    pub fn start(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("{} is already running", self.name);
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process exited on its own (it should not have); with its status.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                Some(format!("{} exited: {status} (log: {})", self.name, self.log.display()))
            }
            _ => None,
        }
    }

    /// Resident set size in bytes (VmRSS).
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// User plus system CPU time so far, in seconds (threads included).
    pub fn cpu_secs(&self) -> Option<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: count
        // fields from the last ')'. utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        Some((utime + stime) as f64 / ticks)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
