//! The lock recipe guarding a counter, fenced by zxid.
//!
//! A holder reads the counter and writes counter+1 in a multi that first checks its
//! own lock node still exists, with the counter's version as read. A holder whose
//! session ended (so whose lock passed on) is refused by the check; one that raced
//! another is refused by the version. So, ordered by zxid, the acknowledged
//! increments must have distinct, increasing values and never-decreasing fencing
//! tokens (a holder's token is its lock node's creation zxid: later holders have
//! larger ones). The final counter must count exactly the increments that happened.

use std::sync::Arc;

use anyhow::Result;
use baton_client::{CheckOp, MultiOp, OpResult, SetDataOp, recipes::Lock as LockRecipe};
use bytes::Bytes;
use tokio::task::JoinHandle;

use super::{Ctx, create_all, finish_history, session_on, settle};
use baton_testkit::Rng;

use crate::history::{Event, History, Outcome, Verdict};

const DIR: &str = "/nemesis/lock";
const COUNTER: &str = "/nemesis/lock/counter";
const LOCK: &str = "/nemesis/lock/l";
/// How long a client waits for the lock before giving up its place.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Acquire,
    /// Increment from `from` under the lock with fencing `token`.
    Increment {
        token: u64,
        from: u64,
    },
    Release {
        token: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// The fencing token.
    Held(u64),
    /// The zxid of the increment.
    Incremented(u64),
    Released,
}

#[derive(Debug)]
pub struct Lock {
    history: Arc<History<Call, Ret>>,
    workers: Vec<JoinHandle<()>>,
}

impl Lock {
    pub async fn start(ctx: &Arc<Ctx>, clients: usize, rng: &mut Rng) -> Result<Lock> {
        let history = Arc::new(History::new(ctx.clock));
        let nodes = [(DIR, &b""[..]), (LOCK, b""), (COUNTER, b"0")];
        create_all(ctx, &nodes.map(|(path, data)| (path.to_owned(), data))).await?;
        let workers = (0..clients)
            .map(|worker| tokio::spawn(client(ctx.clone(), history.clone(), worker, rng.fork())))
            .collect();
        Ok(Lock { history, workers })
    }

    pub async fn finish(self, ctx: &Ctx) -> Result<Verdict> {
        let events = finish_history(ctx, self.workers, &self.history).await?;
        let mut counters = Vec::new();
        for endpoint in &ctx.endpoints {
            let session = session_on(endpoint, &ctx.session).await?;
            let (data, _) = settle(&format!("final read of {COUNTER} on {endpoint}"), || async {
                session.sync(COUNTER).await?;
                session.get(COUNTER).await
            })
            .await?;
            let _ = session.close().await;
            counters.push(String::from_utf8_lossy(&data).parse::<u64>().unwrap_or(u64::MAX));
        }
        let mut verdict = check(&events, counters[0]);
        if counters.iter().any(|c| *c != counters[0]) {
            verdict.anomaly(format!("members end with different counters: {counters:?}"));
        }
        Ok(verdict)
    }
}

async fn client(ctx: Arc<Ctx>, history: Arc<History<Call, Ret>>, worker: usize, mut rng: Rng) {
    'sessions: while let Some((session, process)) = ctx.session(worker).await {
        let lock = LockRecipe::new(&session, LOCK);
        while !ctx.stopped() {
            let invoke = history.now();
            let acquired = match tokio::time::timeout(ACQUIRE_TIMEOUT, lock.acquire()).await {
                Ok(result) => result,
                Err(_) => {
                    history.record(
                        process,
                        invoke,
                        Call::Acquire,
                        Outcome::Info("gave up waiting".into()),
                    );
                    continue;
                }
            };
            let guard = match acquired {
                Ok(guard) => guard,
                Err(error) => {
                    let ended = session.end_error().is_some();
                    history.record(
                        process,
                        invoke,
                        Call::Acquire,
                        Outcome::of(Err(error), |()| Ret::Released),
                    );
                    if ended {
                        continue 'sessions;
                    }
                    ctx.pause().await;
                    continue;
                }
            };
            let token = guard.fencing_token();
            history.record(process, invoke, Call::Acquire, Outcome::Ok(Ret::Held(token)));
            // Hold it one or two increments.
            for _ in 0..=rng.below(2) {
                let read = session.get(COUNTER).await;
                let Ok((data, stat)) = read else { break };
                let Ok(from) = String::from_utf8_lossy(&data).parse::<u64>() else { break };
                let invoke = history.now();
                let ops = vec![
                    MultiOp::Check(CheckOp { path: guard.path().to_owned(), version: -1 }),
                    MultiOp::SetData(SetDataOp {
                        path: COUNTER.to_owned(),
                        data: Bytes::from((from + 1).to_string()),
                        version: stat.version,
                    }),
                ];
                let result = session.multi(ops).await;
                let outcome = Outcome::of(result, |results| match results.get(1) {
                    Some(OpResult::SetData { stat }) => Ret::Incremented(stat.mzxid),
                    _ => Ret::Incremented(0),
                });
                let failed = !matches!(outcome, Outcome::Ok(_));
                history.record(process, invoke, Call::Increment { token, from }, outcome);
                if failed {
                    break;
                }
            }
            let invoke = history.now();
            let released = guard.release().await;
            history.record(
                process,
                invoke,
                Call::Release { token },
                Outcome::of(released, |()| Ret::Released),
            );
            if session.end_error().is_some() {
                continue 'sessions;
            }
            ctx.pause().await;
        }
        let _ = session.close().await;
        break;
    }
}

/// Checks a lock history against the final counter.
pub fn check(events: &[Event<Call, Ret>], counter: u64) -> Verdict {
    let mut verdict = Verdict::default();
    verdict.count(events);
    let mut increments: Vec<(u64, u64, u64)> = Vec::new(); // (zxid, from, token)
    let mut possible = 0u64;
    for e in events {
        if let Call::Increment { token, from } = e.call {
            match e.outcome {
                Outcome::Ok(Ret::Incremented(zxid)) => {
                    increments.push((zxid, from, token));
                    possible += 1;
                }
                Outcome::Info(_) => possible += 1,
                _ => {}
            }
        }
    }
    increments.sort_unstable();
    for pair in increments.windows(2) {
        let ((z1, f1, t1), (z2, f2, t2)) = (pair[0], pair[1]);
        if f2 <= f1 {
            verdict.anomaly(format!(
                "increments from {f1} (zxid {z1:#x}, token {t1:#x}) and from {f2} (zxid {z2:#x}, token {t2:#x}): two holders counted from the same or an older value"
            ));
        }
        if t2 < t1 {
            verdict.anomaly(format!(
                "token {t2:#x} incremented at {z2:#x} after token {t1:#x} did at {z1:#x}: a holder whose lock had passed on was not fenced"
            ));
        }
    }
    let acknowledged = increments.len() as u64;
    if counter < acknowledged || counter > possible {
        if counter < acknowledged {
            verdict.lost += (acknowledged - counter) as usize;
        }
        verdict.anomaly(format!(
            "the counter ends at {counter}, but {acknowledged} increments were acknowledged and {possible} may have happened"
        ));
    }
    if let Some(&(zxid, from, _)) = increments.last()
        && counter < from + 1
    {
        verdict.anomaly(format!(
            "the counter ends at {counter}, below the increment to {} at {zxid:#x}",
            from + 1
        ));
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(zxid: u64, from: u64, token: u64) -> Event<Call, Ret> {
        Event {
            process: 1,
            invoke: 0,
            complete: 1,
            call: Call::Increment { token, from },
            outcome: Outcome::Ok(Ret::Incremented(zxid)),
        }
    }

    #[test]
    fn a_correct_history_passes() {
        let events = [inc(10, 0, 5), inc(11, 1, 5), inc(20, 2, 15)];
        let verdict = check(&events, 3);
        assert_eq!(verdict.anomalies, Vec::<String>::new());
    }

    #[test]
    fn double_counting_unfenced_holders_and_lost_increments_are_caught() {
        assert_eq!(
            check(&[inc(10, 0, 5), inc(11, 0, 6)], 1).anomaly_count,
            2,
            "same value twice; counter below acks"
        );
        assert_eq!(check(&[inc(10, 0, 9), inc(11, 1, 5)], 2).anomaly_count, 1, "token went back");
        let verdict = check(&[inc(10, 0, 5), inc(11, 1, 5)], 1);
        assert_eq!(verdict.lost, 1);
    }
}
