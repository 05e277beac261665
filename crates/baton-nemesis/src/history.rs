//! What clients did and saw: one event per call, with its invoke and completion time
//! and its outcome — ok (it happened, with what it returned), fail (it certainly did
//! not happen) or info (unknown: a lost connection or a timeout; a write may have
//! happened, later or never).

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use baton_client::{ClientError, ErrorCode};

/// Microseconds since the run began.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn now(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<R> {
    Ok(R),
    Fail(String),
    Info(String),
}

impl<R> Outcome<R> {
    /// Ok, fail or info from a client result: refusals that mean "not done" (the
    /// node's state forbade it, or the session is over) are fail; everything else
    /// (lost connection, timeout, a server that could not serve) is info.
    pub fn of<T>(result: Result<T, ClientError>, ok: impl FnOnce(T) -> R) -> Outcome<R> {
        match result {
            Ok(value) => Outcome::Ok(ok(value)),
            Err(error) if definite(&error) => Outcome::Fail(error.to_string()),
            Err(error) => Outcome::Info(error.to_string()),
        }
    }

    pub fn is_info(&self) -> bool {
        matches!(self, Outcome::Info(_))
    }
}

/// True when the error proves the call changed nothing.
pub fn definite(error: &ClientError) -> bool {
    error.is_session_end()
        || matches!(
            error.code(),
            ErrorCode::NoNode
                | ErrorCode::NodeExists
                | ErrorCode::BadVersion
                | ErrorCode::NotEmpty
                | ErrorCode::BadArguments
                | ErrorCode::NoChildrenForEphemerals
        )
}

/// One call.
#[derive(Debug, Clone)]
pub struct Event<C, R> {
    /// The session that made it (a fresh number per session).
    pub process: u64,
    pub invoke: u64,
    pub complete: u64,
    pub call: C,
    pub outcome: Outcome<R>,
}

/// The events of one workload, from every client.
#[derive(Debug)]
pub struct History<C, R> {
    clock: Clock,
    events: Mutex<Vec<Event<C, R>>>,
}

impl<C, R> History<C, R> {
    pub fn new(clock: Clock) -> History<C, R> {
        History { clock, events: Mutex::new(Vec::new()) }
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Records a call invoked at `invoke` that has just completed.
    pub fn record(&self, process: u64, invoke: u64, call: C, outcome: Outcome<R>) {
        let complete = self.clock.now();
        let event = Event { process, invoke, complete, call, outcome };
        self.events.lock().expect("history lock").push(event);
    }

    pub fn take(&self) -> Vec<Event<C, R>> {
        std::mem::take(&mut *self.events.lock().expect("history lock"))
    }
}

/// Writes one line per event (for reading a failed run).
pub fn dump<C: std::fmt::Debug, R: std::fmt::Debug>(
    path: &std::path::Path,
    events: &[Event<C, R>],
) {
    use std::fmt::Write as _;
    let mut text = String::new();
    for e in events {
        let _ = writeln!(
            text,
            "{} {}..{} {:?} {:?}",
            e.process, e.invoke, e.complete, e.call, e.outcome
        );
    }
    if let Err(error) = std::fs::write(path, text) {
        tracing::warn!(path = %path.display(), %error, "cannot write the history");
    }
}

/// A fresh process number for a new session.
pub fn next_process() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What a checker found.
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    /// Calls checked (ok and info; a fail is a refusal and constrains nothing).
    pub ops: usize,
    pub ok: usize,
    pub info: usize,
    pub fail: usize,
    /// Acknowledged writes that the final state does not hold.
    pub lost: usize,
    /// How many things were found that cannot happen in a correct run.
    pub anomaly_count: usize,
    /// The first of them, one line each.
    pub anomalies: Vec<String>,
}

impl Verdict {
    /// Several workloads' verdicts as one (anomalies named by their workload).
    pub fn sum<W: std::fmt::Display>(verdicts: &[(W, Verdict)]) -> Verdict {
        let mut total = Verdict::default();
        for (workload, v) in verdicts {
            total.ops += v.ops;
            total.ok += v.ok;
            total.info += v.info;
            total.fail += v.fail;
            total.lost += v.lost;
            total.anomaly_count += v.anomaly_count;
            total.anomalies.extend(v.anomalies.iter().map(|a| format!("{workload}: {a}")));
        }
        total
    }

    pub fn count<C, R>(&mut self, events: &[Event<C, R>]) {
        for event in events {
            match event.outcome {
                Outcome::Ok(_) => self.ok += 1,
                Outcome::Info(_) => self.info += 1,
                Outcome::Fail(_) => self.fail += 1,
            }
        }
        self.ops = self.ok + self.info;
    }

    /// Counts an anomaly; keeps the first 50 described.
    pub fn anomaly(&mut self, what: String) {
        const KEPT: usize = 50;
        self.anomaly_count += 1;
        if self.anomalies.len() < KEPT {
            self.anomalies.push(what);
        }
    }
}
