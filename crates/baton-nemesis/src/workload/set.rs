//! A set of sequential nodes: clients create persistent-sequential children, each
//! with a unique value, and now and then list them after a `sync`.
//!
//! Checked: every acknowledged create is in the final set, under the name it was
//! given, exactly once; every final element was attempted; a synced listing holds
//! every create acknowledged before it began and nothing absent from the final set
//! (nodes here are never deleted).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use anyhow::Result;
use baton_client::CreateMode;
use bytes::Bytes;
use tokio::task::JoinHandle;

use super::{Ctx, create_all, finish_history, session_on, settle};
use baton_testkit::Rng;

use crate::history::{Event, History, Outcome, Verdict};

const DIR: &str = "/nemesis/set";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Add(String),
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// The name the create was given.
    Added(String),
    Listed(BTreeSet<String>),
}

#[derive(Debug)]
pub struct Set {
    history: Arc<History<Call, Ret>>,
    workers: Vec<JoinHandle<()>>,
}

impl Set {
    pub async fn start(ctx: &Arc<Ctx>, clients: usize, rng: &mut Rng) -> Result<Set> {
        let history = Arc::new(History::new(ctx.clock));
        create_all(ctx, &[(DIR.to_owned(), b"")]).await?;
        let workers = (0..clients)
            .map(|worker| tokio::spawn(client(ctx.clone(), history.clone(), worker, rng.fork())))
            .collect();
        Ok(Set { history, workers })
    }

    /// Waits for the clients, reads the whole set (names and values) from every
    /// member, and checks.
    pub async fn finish(self, ctx: &Ctx) -> Result<Verdict> {
        let events = finish_history(ctx, self.workers, &self.history).await?;
        let mut finals: Vec<BTreeMap<String, String>> = Vec::new();
        for endpoint in &ctx.endpoints {
            let session = session_on(endpoint, &ctx.session).await?;
            let what = format!("final listing of {DIR} on {endpoint}");
            let (names, _) = settle(&what, || async {
                session.sync(DIR).await?;
                session.children(DIR).await
            })
            .await?;
            let mut elements = BTreeMap::new();
            for name in names {
                let p = format!("{DIR}/{name}");
                let (data, _) = settle(&format!("final read of {p}"), || session.get(&p)).await?;
                elements.insert(name, String::from_utf8_lossy(&data).into_owned());
            }
            let _ = session.close().await;
            finals.push(elements);
        }
        let mut verdict = check(&events, &finals[0]);
        for (i, other) in finals.iter().enumerate().skip(1) {
            if other != &finals[0] {
                verdict.anomaly(format!(
                    "the final sets of {} and {} differ ({} and {} elements)",
                    ctx.endpoints[0],
                    ctx.endpoints[i],
                    finals[0].len(),
                    other.len()
                ));
            }
        }
        Ok(verdict)
    }
}

async fn client(ctx: Arc<Ctx>, history: Arc<History<Call, Ret>>, worker: usize, mut rng: Rng) {
    let mut adds = 0u64;
    'sessions: while let Some((session, process)) = ctx.session(worker).await {
        while !ctx.stopped() {
            let invoke = history.now();
            let (call, outcome) = if rng.chance(900) {
                adds += 1;
                let value = format!("w{worker}-{adds}");
                let prefix = format!("{DIR}/e-");
                let data = Bytes::from(value.clone());
                let result = session.create(&prefix, data, CreateMode::PersistentSequential).await;
                let outcome = Outcome::of(result, |path: String| {
                    Ret::Added(path.rsplit('/').next().unwrap_or_default().to_owned())
                });
                (Call::Add(value), outcome)
            } else {
                let result = async {
                    session.sync(DIR).await?;
                    session.children(DIR).await
                }
                .await;
                let outcome =
                    Outcome::of(result, |(names, _)| Ret::Listed(names.into_iter().collect()));
                (Call::List, outcome)
            };
            let ended = matches!(&outcome, Outcome::Fail(_)) && session.end_error().is_some();
            history.record(process, invoke, call, outcome);
            if ended {
                continue 'sessions;
            }
            ctx.pause().await;
        }
        let _ = session.close().await;
        break;
    }
}

/// Checks a set history against the final set (name → value).
pub fn check(events: &[Event<Call, Ret>], finals: &BTreeMap<String, String>) -> Verdict {
    let mut verdict = Verdict::default();
    verdict.count(events);
    let mut attempted: BTreeSet<&str> = BTreeSet::new();
    let mut acknowledged: Vec<(u64, &str, &str)> = Vec::new();
    for e in events {
        if let Call::Add(value) = &e.call {
            attempted.insert(value);
            if let Outcome::Ok(Ret::Added(name)) = &e.outcome {
                acknowledged.push((e.complete, value, name));
            }
        }
    }
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, value) in finals {
        *copies.entry(value).or_default() += 1;
        if !attempted.contains(value.as_str()) {
            verdict.anomaly(format!("{name} holds {value:?}, which nobody added"));
        }
    }
    for (value, n) in &copies {
        if *n > 1 {
            verdict.anomaly(format!("{value:?} is in the set {n} times"));
        }
    }
    for &(_, value, name) in &acknowledged {
        match finals.get(name) {
            Some(found) if found == value => {}
            Some(found) => verdict.anomaly(format!(
                "acknowledged add of {value:?} as {name}, but {name} holds {found:?}"
            )),
            None => {
                verdict.lost += 1;
                verdict.anomaly(format!("acknowledged add of {value:?} as {name} is lost"));
            }
        }
    }
    acknowledged.sort_unstable();
    for e in events {
        let (Call::List, Outcome::Ok(Ret::Listed(names))) = (&e.call, &e.outcome) else {
            continue;
        };
        let before = acknowledged.partition_point(|&(complete, _, _)| complete < e.invoke);
        let missing = acknowledged[..before].iter().filter(|(_, _, n)| !names.contains(*n)).count();
        if missing > 0 {
            verdict.anomaly(format!(
                "a synced listing at {} µs misses {missing} adds acknowledged before it began",
                e.invoke
            ));
        }
        let phantoms = names.iter().filter(|n| !finals.contains_key(*n)).count();
        if phantoms > 0 {
            verdict.anomaly(format!(
                "a listing at {} µs shows {phantoms} elements the final set does not have",
                e.invoke
            ));
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(invoke: u64, complete: u64, value: &str, outcome: Outcome<Ret>) -> Event<Call, Ret> {
        Event { process: 1, invoke, complete, call: Call::Add(value.into()), outcome }
    }

    fn added(name: &str) -> Outcome<Ret> {
        Outcome::Ok(Ret::Added(name.into()))
    }

    fn list(invoke: u64, complete: u64, names: &[&str]) -> Event<Call, Ret> {
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        Event {
            process: 2,
            invoke,
            complete,
            call: Call::List,
            outcome: Outcome::Ok(Ret::Listed(names)),
        }
    }

    fn finals(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_correct_history_passes() {
        let events = [
            add(0, 10, "a", added("e-1")),
            add(5, 15, "b", Outcome::Info("timeout".into())),
            list(16, 20, &["e-1"]),
            add(21, 30, "c", Outcome::Fail("session expired".into())),
        ];
        let verdict = check(&events, &finals(&[("e-1", "a"), ("e-2", "b")]));
        assert_eq!(verdict.anomalies, Vec::<String>::new());
        assert_eq!((verdict.ops, verdict.fail), (3, 1));
    }

    #[test]
    fn loss_duplication_and_stale_listings_are_caught() {
        let events = [
            add(0, 10, "a", added("e-1")),
            add(0, 10, "b", added("e-2")),
            add(0, 10, "c", Outcome::Info("timeout".into())),
            list(11, 20, &["e-1", "e-9"]),
        ];
        let verdict = check(&events, &finals(&[("e-1", "a"), ("e-3", "c"), ("e-4", "c")]));
        // e-2 lost; c twice; the listing misses e-2 and shows e-9.
        assert_eq!(verdict.lost, 1);
        assert_eq!(verdict.anomaly_count, 4, "{:?}", verdict.anomalies);
    }
}
