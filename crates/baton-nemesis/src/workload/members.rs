//! Group membership by ephemeral nodes: each client joins with an ephemeral node of its
//! session, beats (writes to its own node) a few times, and leaves by closing the
//! session; observers list the group after a `sync`.
//!
//! Checked, for every listing: a member whose join was acknowledged before the listing
//! began and whose node was still written to after the listing ended must be in it
//! (its session lived throughout); a member whose session had ended (close
//! acknowledged, or the server said "expired") before the listing began must not be;
//! nobody appears before their join was sent. At the end the group is empty on every
//! member (every session closed or expired).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{Result, bail};
use baton_client::CreateMode;
use bytes::Bytes;
use tokio::task::JoinHandle;

use super::{Ctx, create_all, finish_history, session_on, settle};
use baton_testkit::Rng;

use crate::history::{Event, History, Outcome, Verdict};

const DIR: &str = "/nemesis/members";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Join(String),
    Beat(String),
    Leave(String),
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    Done,
    Listed(Vec<String>),
}

#[derive(Debug)]
pub struct Members {
    history: Arc<History<Call, Ret>>,
    workers: Vec<JoinHandle<()>>,
}

impl Members {
    pub async fn start(ctx: &Arc<Ctx>, clients: usize, rng: &mut Rng) -> Result<Members> {
        let history = Arc::new(History::new(ctx.clock));
        create_all(ctx, &[(DIR.to_owned(), b"")]).await?;
        let observers = clients.div_ceil(3);
        let mut workers = Vec::new();
        for worker in 0..clients {
            let (ctx, history, rng) = (ctx.clone(), history.clone(), rng.fork());
            if worker < observers {
                workers.push(tokio::spawn(observer(ctx, history, worker)));
            } else {
                workers.push(tokio::spawn(member(ctx, history, worker, rng)));
            }
        }
        Ok(Members { history, workers })
    }

    /// Waits for the clients, then for the group to empty on every member (sessions
    /// that could not close expire within their timeout), and checks.
    pub async fn finish(self, ctx: &Ctx) -> Result<Verdict> {
        let events = finish_history(ctx, self.workers, &self.history).await?;
        let mut verdict = check(&events);
        let expiry = Duration::from_millis(u64::from(ctx.session.timeout_ms) * 3);
        for endpoint in &ctx.endpoints {
            let session = session_on(endpoint, &ctx.session).await?;
            let deadline = tokio::time::Instant::now() + expiry;
            loop {
                let (names, _) = settle(&format!("final listing on {endpoint}"), || async {
                    session.sync(DIR).await?;
                    session.children(DIR).await
                })
                .await?;
                if names.is_empty() {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    verdict.anomaly(format!(
                        "{} members of ended sessions still listed on {endpoint} {expiry:?} after the last client stopped: {names:?}",
                        names.len()
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = session.close().await;
        }
        if verdict.ops == 0 {
            bail!("the membership workload recorded nothing");
        }
        Ok(verdict)
    }
}

async fn member(ctx: Arc<Ctx>, history: Arc<History<Call, Ret>>, worker: usize, mut rng: Rng) {
    let mut generation = 0u64;
    while let Some((session, process)) = ctx.session(worker).await {
        generation += 1;
        let name = format!("w{worker}-{generation}");
        let path = format!("{DIR}/{name}");
        let invoke = history.now();
        let joined = session.create(&path, Bytes::new(), CreateMode::Ephemeral).await;
        let outcome = Outcome::of(joined, |_| Ret::Done);
        let ok = matches!(outcome, Outcome::Ok(_));
        history.record(process, invoke, Call::Join(name.clone()), outcome);
        if ok {
            for beat in 0..5 + rng.below(20) {
                if ctx.stopped() {
                    break;
                }
                ctx.pause().await;
                let invoke = history.now();
                let result = session.set(&path, Bytes::from(beat.to_string()), -1).await;
                let outcome = Outcome::of(result, |_| Ret::Done);
                let ended = session.end_error().is_some();
                history.record(process, invoke, Call::Beat(name.clone()), outcome);
                if ended {
                    break;
                }
            }
        }
        let invoke = history.now();
        let left = session.close().await;
        history.record(process, invoke, Call::Leave(name), Outcome::of(left, |()| Ret::Done));
        if ctx.stopped() {
            break;
        }
    }
}

async fn observer(ctx: Arc<Ctx>, history: Arc<History<Call, Ret>>, worker: usize) {
    'sessions: while let Some((session, process)) = ctx.session(worker).await {
        while !ctx.stopped() {
            let invoke = history.now();
            let result = async {
                session.sync(DIR).await?;
                session.children(DIR).await
            }
            .await;
            let ended = result.is_err() && session.end_error().is_some();
            history.record(
                process,
                invoke,
                Call::List,
                Outcome::of(result, |(names, _)| Ret::Listed(names)),
            );
            if ended {
                continue 'sessions;
            }
            ctx.pause().await;
        }
        let _ = session.close().await;
        break;
    }
}

#[derive(Debug, Default)]
struct Life {
    join_invoke: Option<u64>,
    /// When the join was acknowledged.
    joined: Option<u64>,
    /// The latest invoke of an acknowledged beat: the node existed after it.
    alive_after: Option<u64>,
    /// When the session was known to be over (close acknowledged, or an expiry seen).
    ended: Option<u64>,
}

/// Checks a membership history.
pub fn check(events: &[Event<Call, Ret>]) -> Verdict {
    let mut verdict = Verdict::default();
    verdict.count(events);
    let mut lives: BTreeMap<&str, Life> = BTreeMap::new();
    for e in events {
        let (name, expired) = match (&e.call, &e.outcome) {
            (Call::List, _) => continue,
            (Call::Join(n) | Call::Beat(n) | Call::Leave(n), Outcome::Fail(why)) => {
                (n, why.contains("expired"))
            }
            (Call::Join(n) | Call::Beat(n) | Call::Leave(n), _) => (n, false),
        };
        let life = lives.entry(name).or_default();
        match (&e.call, &e.outcome) {
            (Call::Join(_), outcome) => {
                life.join_invoke = Some(e.invoke);
                if let Outcome::Ok(_) = outcome {
                    life.joined = Some(e.complete);
                }
            }
            (Call::Beat(_), Outcome::Ok(_)) => {
                life.alive_after = life.alive_after.max(Some(e.invoke));
            }
            (Call::Leave(_), Outcome::Ok(_)) => life.ended = Some(e.complete),
            _ => {}
        }
        if expired {
            life.ended = Some(life.ended.map_or(e.complete, |t| t.min(e.complete)));
        }
    }
    for e in events {
        let (Call::List, Outcome::Ok(Ret::Listed(names))) = (&e.call, &e.outcome) else {
            continue;
        };
        for (name, life) in &lives {
            let listed = names.iter().any(|n| n == name);
            let alive_throughout = life.joined.is_some_and(|t| t < e.invoke)
                && life.alive_after.is_some_and(|t| t > e.complete);
            if alive_throughout && !listed {
                verdict.anomaly(format!(
                    "{name} is missing from a listing at {}..{} µs though its session lived throughout",
                    e.invoke, e.complete
                ));
            }
            if listed && life.ended.is_some_and(|t| t < e.invoke) {
                verdict.anomaly(format!(
                    "{name} is listed at {} µs after its session ended at {} µs",
                    e.invoke,
                    life.ended.unwrap_or_default()
                ));
            }
            if listed && life.join_invoke.is_none_or(|t| t > e.complete) {
                verdict.anomaly(format!("{name} is listed at {} µs before it joined", e.invoke));
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(invoke: u64, complete: u64, call: Call, outcome: Outcome<Ret>) -> Event<Call, Ret> {
        Event { process: 1, invoke, complete, call, outcome }
    }

    fn list(invoke: u64, complete: u64, names: &[&str]) -> Event<Call, Ret> {
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        ev(invoke, complete, Call::List, Outcome::Ok(Ret::Listed(names)))
    }

    fn history() -> Vec<Event<Call, Ret>> {
        vec![
            ev(0, 10, Call::Join("a".into()), Outcome::Ok(Ret::Done)),
            ev(50, 60, Call::Beat("a".into()), Outcome::Ok(Ret::Done)),
            ev(70, 80, Call::Leave("a".into()), Outcome::Ok(Ret::Done)),
        ]
    }

    #[test]
    fn a_correct_history_passes() {
        let mut events = history();
        events.extend([list(11, 20, &["a"]), list(65, 75, &["a"]), list(81, 90, &[])]);
        assert_eq!(check(&events).anomalies, Vec::<String>::new());
    }

    #[test]
    fn a_missing_live_member_a_lingering_one_and_a_premature_one_are_caught() {
        let mut events = history();
        events.extend([list(11, 20, &[]), list(81, 90, &["a"])]);
        events.push(ev(100, 110, Call::Join("b".into()), Outcome::Info("lost".into())));
        events.push(list(91, 95, &["b"]));
        assert_eq!(check(&events).anomaly_count, 3, "{:?}", check(&events).anomalies);
    }
}
