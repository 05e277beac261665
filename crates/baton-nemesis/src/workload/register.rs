//! Per-key registers: clients write unique values to a few keys and read them back,
//! some reads after a `sync` or linearizable ones (ReadIndex: no sync, no log write;
//! both must be linearizable), some plain (which must be sequentially consistent).
//!
//! The check uses the zxid every answer carries: an acknowledged write returns the
//! zxid it was committed at, a read the `mzxid` of the value it saw. Ordered by zxid
//! (a read just after the write it saw), the history must respect real time — an op
//! that completed before another began comes first — and every value read must be the
//! one its zxid's write wrote. That order is then a linearization; if it breaks real
//! time, none exists with the zxids the servers reported. Plain reads must return
//! written values, never go back per client and key, and see the client's own writes.
//!
//! [`Register`] is shared with [`super::zk_register`], whose clients make the same
//! calls through ZooKeeper's protocol.

use std::{collections::BTreeMap, sync::Arc};

use anyhow::Result;
use bytes::Bytes;
use tokio::task::JoinHandle;

use super::{Ctx, create_all, finish_history, session_on, settle};
use baton_testkit::Rng;

use crate::history::{Event, History, Outcome, Verdict};

pub const KEYS: usize = 5;
const DIR: &str = "/nemesis/register";
/// The value every key starts with.
const INITIAL: &str = "initial";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Write { key: usize, value: String },
    Read { key: usize, synced: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// The zxid of the write.
    Written(u64),
    /// The value read and its mzxid.
    Read(String, u64),
}

/// Key `key`'s znode under `dir`.
pub fn path(dir: &str, key: usize) -> String {
    format!("{dir}/k{key}")
}

/// The registers of one workload: clients of one protocol on keys under one
/// directory (the register workload's through baton-client, zk-register's through
/// ZooKeeper's protocol), one history, one check.
#[derive(Debug)]
pub struct Register {
    dir: &'static str,
    history: Arc<History<Call, Ret>>,
    workers: Vec<JoinHandle<()>>,
}

impl Register {
    /// The register workload: baton-client sessions.
    pub async fn start(ctx: &Arc<Ctx>, clients: usize, rng: &mut Rng) -> Result<Register> {
        Register::start_with(ctx, DIR, clients, rng, |ctx, history, worker, rng| {
            tokio::spawn(client(ctx, history, worker, rng))
        })
        .await
    }

    /// Creates the keys under `dir`, then `spawn`s each client (its context, the
    /// shared history, its number and its random source).
    pub async fn start_with<F>(
        ctx: &Arc<Ctx>,
        dir: &'static str,
        clients: usize,
        rng: &mut Rng,
        spawn: F,
    ) -> Result<Register>
    where
        F: Fn(Arc<Ctx>, Arc<History<Call, Ret>>, usize, Rng) -> JoinHandle<()>,
    {
        let history = Arc::new(History::new(ctx.clock));
        let mut nodes = vec![(dir.to_owned(), &b""[..])];
        nodes.extend((0..KEYS).map(|key| (path(dir, key), INITIAL.as_bytes())));
        create_all(ctx, &nodes).await?;
        let workers =
            (0..clients).map(|worker| spawn(ctx.clone(), history.clone(), worker, rng.fork()));
        let workers = workers.collect();
        Ok(Register { dir, history, workers })
    }

    /// Waits for the clients, reads every key from every member (through
    /// baton-client, whichever protocol the clients spoke: the zxids must agree), and
    /// checks.
    pub async fn finish(self, ctx: &Ctx) -> Result<Verdict> {
        let events = finish_history(ctx, self.workers, &self.history).await?;
        let mut finals: Vec<BTreeMap<usize, (String, u64)>> = Vec::new();
        for endpoint in &ctx.endpoints {
            let session = session_on(endpoint, &ctx.session).await?;
            let mut values = BTreeMap::new();
            for key in 0..KEYS {
                let p = path(self.dir, key);
                let (data, stat) = settle(&format!("final read of {p} on {endpoint}"), || async {
                    session.sync(&p).await?;
                    session.get(&p).await
                })
                .await?;
                values.insert(key, (String::from_utf8_lossy(&data).into_owned(), stat.mzxid));
            }
            let _ = session.close().await;
            finals.push(values);
        }
        let mut verdict = check(&events, &finals[0]);
        for (i, other) in finals.iter().enumerate().skip(1) {
            if other != &finals[0] {
                verdict.anomaly(format!(
                    "final values differ between {} and {}: {:?} vs {:?}",
                    ctx.endpoints[0], ctx.endpoints[i], finals[0], other
                ));
            }
        }
        Ok(verdict)
    }
}

/// What one client does next: write (4 in 10), synced read (3 in 10) or plain read.
pub fn next_call(rng: &mut Rng, worker: usize, writes: &mut u64) -> Call {
    let key = rng.below(KEYS as u64) as usize;
    let roll = rng.below(10);
    if roll < 4 {
        *writes += 1;
        Call::Write { key, value: format!("w{worker}-{writes}") }
    } else {
        Call::Read { key, synced: roll < 7 }
    }
}

async fn client(ctx: Arc<Ctx>, history: Arc<History<Call, Ret>>, worker: usize, mut rng: Rng) {
    let mut writes = 0u64;
    // Half the synced reads are linearizable reads (ReadIndex: no sync, no log
    // write), through a unary client on the same members; the checker holds them to
    // the same rule.
    let options = baton_client::ConnectOptions { tls: ctx.session.tls.clone() };
    let unary = loop {
        if ctx.stopped() {
            return;
        }
        match baton_client::Client::connect_with(&ctx.endpoints_for(worker), options.clone()).await
        {
            Ok(client) => {
                client.set_credentials(ctx.session.credentials.clone());
                break client;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    };
    let unary_process = crate::history::next_process();
    'sessions: while let Some((session, process)) = ctx.session(worker).await {
        while !ctx.stopped() {
            let call = next_call(&mut rng, worker, &mut writes);
            let invoke = history.now();
            // A linearizable read goes through the unary client, not the session: it
            // is recorded as a process of its own (what the session saw says nothing
            // of it, nor it of the session's next plain read).
            let mut recorded_as = process;
            let outcome = match &call {
                Call::Write { key, value } => {
                    let result =
                        session.set(&path(DIR, *key), Bytes::from(value.clone()), -1).await;
                    Outcome::of(result, |stat| Ret::Written(stat.mzxid))
                }
                Call::Read { key, synced } => {
                    let p = path(DIR, *key);
                    let linearizable = *synced && rng.below(2) == 0;
                    if linearizable {
                        recorded_as = unary_process;
                    }
                    let result = async {
                        if linearizable {
                            return unary.get_linearizable(&p).await;
                        }
                        if *synced {
                            session.sync(&p).await?;
                        }
                        session.get(&p).await
                    }
                    .await;
                    Outcome::of(result, |(data, stat)| {
                        Ret::Read(String::from_utf8_lossy(&data).into_owned(), stat.mzxid)
                    })
                }
            };
            let ended = matches!(&outcome, Outcome::Fail(_)) && session.end_error().is_some();
            history.record(recorded_as, invoke, call, outcome);
            if ended {
                continue 'sessions;
            }
            ctx.pause().await;
        }
        let _ = session.close().await;
        break;
    }
}

/// Where an op sits in the zxid order: a write at (zxid, 0), a read of it at (zxid, 1).
type Place = (u64, u8);

/// Checks a register history against the final values (key → value, mzxid).
pub fn check(events: &[Event<Call, Ret>], finals: &BTreeMap<usize, (String, u64)>) -> Verdict {
    let mut verdict = Verdict::default();
    verdict.count(events);
    for key in 0..KEYS {
        let of_key: Vec<&Event<Call, Ret>> = events
            .iter()
            .filter(|e| matches!(e.call, Call::Write { key: k, .. } | Call::Read { key: k, .. } if k == key))
            .collect();
        check_key(key, &of_key, finals.get(&key), &mut verdict);
    }
    verdict
}

fn check_key(
    key: usize,
    events: &[&Event<Call, Ret>],
    last: Option<&(String, u64)>,
    verdict: &mut Verdict,
) {
    // Which zxid wrote which value: acknowledged writes say so; a write whose outcome is
    // unknown is placed where a read saw its value.
    let mut zxid_of: BTreeMap<&str, u64> = BTreeMap::new();
    let mut value_at: BTreeMap<u64, &str> = BTreeMap::new();
    let mut attempted: BTreeMap<&str, &Event<Call, Ret>> = BTreeMap::new();
    for e in events {
        if let Call::Write { value, .. } = &e.call {
            attempted.insert(value, e);
            if let Outcome::Ok(Ret::Written(zxid)) = e.outcome {
                zxid_of.insert(value, zxid);
                if let Some(other) = value_at.insert(zxid, value) {
                    verdict.anomaly(format!(
                        "k{key}: writes {other:?} and {value:?} both at zxid {zxid:#x}"
                    ));
                }
            }
        }
    }
    let reads = events.iter().filter_map(|e| match (&e.call, &e.outcome) {
        (Call::Read { synced, .. }, Outcome::Ok(Ret::Read(value, zxid))) => {
            Some((*e, *synced, value.as_str(), *zxid))
        }
        _ => None,
    });
    let reads: Vec<(&Event<Call, Ret>, bool, &str, u64)> = reads.collect();
    let finals = last.map(|(value, zxid)| (value.as_str(), *zxid));
    let mut initial_zxid = None;
    for (value, zxid) in reads.iter().map(|&(_, _, v, z)| (v, z)).chain(finals) {
        if value == INITIAL {
            if initial_zxid.is_some_and(|z| z != zxid) {
                verdict.anomaly(format!(
                    "k{key}: the initial value read at zxids {:#x} and {zxid:#x}",
                    initial_zxid.unwrap_or(0)
                ));
            }
            initial_zxid = Some(zxid);
            continue;
        }
        match (attempted.get(value), zxid_of.get(value)) {
            (None, _) => verdict.anomaly(format!("k{key}: read {value:?}, which nobody wrote")),
            (Some(_), Some(&known)) if known != zxid => verdict.anomaly(format!(
                "k{key}: read {value:?} with mzxid {zxid:#x}, but its write was acknowledged at {known:#x}"
            )),
            (Some(_), Some(_)) => {}
            (Some(_), None) => {
                // An unknown-outcome write that did happen: place it.
                zxid_of.insert(value, zxid);
                if let Some(other) = value_at.insert(zxid, value)
                    && other != value
                {
                    verdict.anomaly(format!("k{key}: {other:?} and {value:?} both at zxid {zxid:#x}"));
                }
            }
        }
    }

    // Real time against the zxid order, over acknowledged writes, placed
    // unknown-outcome writes (which may complete at any time) and synced reads.
    const NEVER: u64 = u64::MAX;
    let mut timed: Vec<(u64, u64, Place, String)> = Vec::new();
    for e in events {
        if let Call::Write { value, .. } = &e.call
            && let Some(&zxid) = zxid_of.get(value.as_str())
        {
            let complete = if e.outcome.is_info() { NEVER } else { e.complete };
            timed.push((e.invoke, complete, (zxid, 0), format!("write {value:?} at {zxid:#x}")));
        }
    }
    for &(e, synced, value, zxid) in &reads {
        if synced {
            timed.push((
                e.invoke,
                e.complete,
                (zxid, 1),
                format!("synced read of {value:?} at {zxid:#x}"),
            ));
        }
    }
    let mut by_complete: Vec<usize> = (0..timed.len()).collect();
    by_complete.sort_by_key(|&i| timed[i].1);
    let mut by_invoke: Vec<usize> = (0..timed.len()).collect();
    by_invoke.sort_by_key(|&i| timed[i].0);
    let mut done = 0;
    let mut latest: Option<usize> = None;
    for &b in &by_invoke {
        while done < by_complete.len() && timed[by_complete[done]].1 < timed[b].0 {
            let a = by_complete[done];
            if latest.is_none_or(|l| timed[a].2 > timed[l].2) {
                latest = Some(a);
            }
            done += 1;
        }
        if let Some(a) = latest
            && timed[a].2 > timed[b].2
        {
            verdict.anomaly(format!(
                "k{key}: {} (invoked at {} µs) comes after {} (completed at {} µs) in real time but before it in zxid order",
                timed[b].3, timed[b].0, timed[a].3, timed[a].1
            ));
        }
    }
    // A value read cannot come from a write invoked after the read completed.
    for &(e, _, value, zxid) in &reads {
        if let Some(write) = attempted.get(value)
            && write.invoke > e.complete
        {
            verdict.anomaly(format!("k{key}: read {value:?} at {zxid:#x} before it was written"));
        }
    }

    // Plain reads: per client, never older than what it saw or wrote before.
    let mut floor: BTreeMap<u64, u64> = BTreeMap::new();
    let mut ordered: Vec<&&Event<Call, Ret>> = events.iter().collect();
    ordered.sort_by_key(|e| e.invoke);
    for e in ordered {
        let at = floor.entry(e.process).or_insert(0);
        match (&e.call, &e.outcome) {
            (Call::Write { .. }, Outcome::Ok(Ret::Written(zxid))) => *at = (*at).max(*zxid),
            (Call::Read { .. }, Outcome::Ok(Ret::Read(value, zxid))) => {
                if *zxid < *at {
                    verdict.anomaly(format!(
                        "k{key}: process {} read {value:?} at {zxid:#x} after it had seen or written {:#x}",
                        e.process, *at
                    ));
                }
                *at = (*at).max(*zxid);
            }
            _ => {}
        }
    }

    // Nothing acknowledged is lost: the final value is at or after every acknowledged write.
    if let Some((value, zxid)) = finals {
        for e in events {
            if let (Call::Write { value: written, .. }, Outcome::Ok(Ret::Written(at))) =
                (&e.call, &e.outcome)
                && *at > zxid
            {
                verdict.lost += 1;
                verdict.anomaly(format!(
                    "k{key}: acknowledged write {written:?} at {at:#x} is lost: the final value is {value:?} at {zxid:#x}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        process: u64,
        invoke: u64,
        complete: u64,
        call: Call,
        outcome: Outcome<Ret>,
    ) -> Event<Call, Ret> {
        Event { process, invoke, complete, call, outcome }
    }

    fn write(p: u64, i: u64, c: u64, value: &str, zxid: u64) -> Event<Call, Ret> {
        event(p, i, c, Call::Write { key: 0, value: value.into() }, Outcome::Ok(Ret::Written(zxid)))
    }

    fn read(p: u64, i: u64, c: u64, synced: bool, value: &str, zxid: u64) -> Event<Call, Ret> {
        event(p, i, c, Call::Read { key: 0, synced }, Outcome::Ok(Ret::Read(value.into(), zxid)))
    }

    fn finals(value: &str, zxid: u64) -> BTreeMap<usize, (String, u64)> {
        let mut map = BTreeMap::from([(0, (value.to_owned(), zxid))]);
        for key in 1..KEYS {
            map.insert(key, (INITIAL.to_owned(), 1));
        }
        map
    }

    #[test]
    fn a_linearizable_history_passes() {
        let events = [
            write(1, 0, 10, "a", 5),
            read(2, 5, 15, true, "a", 5),
            write(2, 20, 30, "b", 7),
            read(1, 25, 28, true, "a", 5), // concurrent with b: may see a
            read(1, 31, 40, true, "b", 7),
            read(3, 41, 45, false, "a", 5), // a plain read may lag
            event(
                3,
                50,
                60,
                Call::Write { key: 0, value: "c".into() },
                Outcome::Info("lost".into()),
            ),
        ];
        let verdict = check(&events, &finals("c", 9));
        assert_eq!(verdict.anomalies, Vec::<String>::new());
        assert_eq!(verdict.ops, 7);
        assert_eq!(verdict.lost, 0);
    }

    #[test]
    fn a_stale_synced_read_is_caught() {
        let events =
            [write(1, 0, 10, "a", 5), write(1, 11, 20, "b", 7), read(2, 21, 30, true, "a", 5)];
        let verdict = check(&events, &finals("b", 7));
        assert_eq!(verdict.anomaly_count, 1, "{:?}", verdict.anomalies);
    }

    #[test]
    fn writes_ordered_against_real_time_are_caught() {
        let events = [write(1, 0, 10, "a", 9), write(2, 11, 20, "b", 7)];
        let verdict = check(&events, &finals("a", 9));
        assert_eq!(verdict.anomaly_count, 1, "{:?}", verdict.anomalies);
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let events = [write(1, 0, 10, "a", 5), write(1, 11, 20, "b", 7)];
        let verdict = check(&events, &finals("a", 5));
        assert_eq!(verdict.lost, 1);
    }

    #[test]
    fn reading_an_unwritten_value_or_a_wrong_zxid_is_caught() {
        let events = [
            write(1, 0, 10, "a", 5),
            read(2, 11, 20, false, "zz", 6),
            read(2, 21, 30, false, "a", 6),
        ];
        let verdict = check(&events, &finals("a", 5));
        assert_eq!(verdict.anomaly_count, 2, "{:?}", verdict.anomalies);
    }

    #[test]
    fn a_plain_read_going_back_or_missing_its_own_write_is_caught() {
        let events = [
            write(1, 0, 10, "a", 5),
            write(2, 11, 20, "b", 7),
            read(2, 21, 30, false, "a", 5), // misses its own write b
            read(3, 31, 40, false, "b", 7),
            read(3, 41, 50, false, "a", 5), // goes back
        ];
        let verdict = check(&events, &finals("b", 7));
        assert_eq!(verdict.anomaly_count, 2, "{:?}", verdict.anomalies);
    }

    #[test]
    fn an_unknown_write_seen_by_a_read_is_placed() {
        let events = [
            event(
                1,
                0,
                10,
                Call::Write { key: 0, value: "a".into() },
                Outcome::Info("timeout".into()),
            ),
            read(2, 20, 30, true, "a", 5),
            write(3, 31, 40, "b", 7),
            read(2, 41, 50, true, "a", 5), // stale: b completed before
        ];
        let verdict = check(&events, &finals("b", 7));
        assert_eq!(verdict.anomaly_count, 1, "{:?}", verdict.anomalies);
    }
}
