//! The nemesis proper: one fault at a time, held a while, healed, and the ensemble
//! given time to recover before the next.

use std::{
    fmt, fs,
    io::{Read, Seek, SeekFrom, Write},
    str::FromStr,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use baton_testkit::Rng;
use tokio::time::Instant;

use crate::{proxy::LinkMode, testbed::Testbed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL a member (the leader half the time), restart it after the hold.
    Kill,
    /// SIGSTOP a member (the leader half the time), SIGCONT after the hold.
    Pause,
    /// Cut peer links: isolate the leader, isolate one, split majority/minority, or a
    /// bridge (two sides that only one member connects).
    Partition,
    /// Delay every peer link by 20–300 ms.
    Delay,
    /// Reset peer connections at random (losing what is in flight).
    Drop,
    /// SIGKILL a member, damage what it acknowledged (its log's end, a log record, its
    /// newest snapshot), restart it: it must repair from its peers. One damaged member
    /// at a time; the next fault does not wait for the repair.
    Disk,
}

pub const ALL: [Fault; 6] =
    [Fault::Kill, Fault::Pause, Fault::Partition, Fault::Delay, Fault::Drop, Fault::Disk];

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        ALL.into_iter().find(|f| f.to_string() == s).ok_or_else(|| {
            format!("unknown fault {s:?}: expected kill, pause, partition, delay, drop or disk")
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::Delay => "delay",
            Fault::Drop => "drop",
            Fault::Disk => "disk",
        })
    }
}

/// What a nemesis run did.
#[derive(Debug, Default)]
pub struct Log {
    /// One line per fault: when, what.
    pub lines: Vec<String>,
    pub injected: std::collections::BTreeMap<String, usize>,
    /// Members that exited on their own (with a panic or not), and refusals to start.
    pub crashes: Vec<String>,
    /// Times the ensemble did not recover within the recovery bound.
    pub stuck: Vec<String>,
}

/// How long after a heal the ensemble has to serve again.
const RECOVERY: Duration = Duration::from_secs(30);

/// Injects faults from `faults` until `until`, then heals everything and restarts
/// whatever is down. `tick` scales the hold times. `round_robin` takes the faults in
/// turn instead of at random, and does not stop before each was injected once.
pub async fn run(
    bed: &mut Testbed,
    faults: &[Fault],
    round_robin: bool,
    rng: &mut Rng,
    until: Instant,
    tick: Duration,
    started: std::time::Instant,
) -> Result<Log> {
    let mut log = Log::default();
    let note = |log: &mut Log, line: String| {
        let line = format!("{:>7.2}s {line}", started.elapsed().as_secs_f64());
        tracing::info!("{line}");
        log.lines.push(line);
    };
    let mut count = 0;
    while Instant::now() + tick * 20 < until || (round_robin && count < faults.len()) {
        // A quiet spell, then one fault.
        tokio::time::sleep(tick * (5 + rng.below(10) as u32)).await;
        let fault = if round_robin { faults[count % faults.len()] } else { *rng.pick(faults) };
        count += 1;
        let hold = tick * (10 + rng.below(30) as u32);
        let leader = bed.ensemble.leader().await;
        let ids = bed.ensemble.ids();
        let target = match leader {
            Some(leader) if rng.chance(500) => leader,
            _ => *rng.pick(&ids),
        };
        *log.injected.entry(fault.to_string()).or_default() += 1;
        match fault {
            Fault::Kill => {
                note(&mut log, format!("kill -9 member {target} (leader {leader:?}) for {hold:?}"));
                bed.ensemble.kill(target);
                tokio::time::sleep(hold).await;
                bed.restart(target)?;
            }
            Fault::Pause => {
                note(&mut log, format!("SIGSTOP member {target} (leader {leader:?}) for {hold:?}"));
                bed.ensemble.pause(target)?;
                tokio::time::sleep(hold).await;
                bed.ensemble.resume(target)?;
            }
            Fault::Partition => {
                let (a, b, shape) = partition(&ids, leader, rng);
                bed.proxy.cut_between(&a, &b);
                note(&mut log, format!("partition ({shape}) {a:?} | {b:?} for {hold:?}"));
                tokio::time::sleep(hold).await;
                bed.proxy.heal();
            }
            Fault::Delay => {
                let delay = Duration::from_millis(20 + rng.below(280));
                note(&mut log, format!("delay every peer link by {delay:?} for {hold:?}"));
                bed.proxy.set_all(LinkMode { delay, ..LinkMode::default() });
                tokio::time::sleep(hold).await;
                bed.proxy.heal();
            }
            Fault::Drop => {
                let per_mille = 5 + rng.below(45) as u32;
                note(
                    &mut log,
                    format!("reset peer connections ({per_mille}‰ per chunk) for {hold:?}"),
                );
                bed.proxy.reseed(rng.next_u64());
                bed.proxy.set_all(LinkMode { reset_per_mille: per_mille, ..LinkMode::default() });
                tokio::time::sleep(hold).await;
                bed.proxy.heal();
            }
            Fault::Disk => {
                // One damaged member at a time (a majority stays healthy): a member
                // still repairing is the only one that may be damaged again.
                let damaged = damaged_members(bed).await;
                let target = match damaged.first() {
                    Some(repairing) => *repairing,
                    None => target,
                };
                bed.ensemble.kill(target);
                let what = damage_log(bed, target, rng)?;
                note(
                    &mut log,
                    format!("kill -9 member {target} (leader {leader:?}), {what}, restart"),
                );
                bed.restart(target)?;
            }
        }
        recover(bed, &mut log, fault, target, &note, started).await?;
    }
    heal_all(bed)?;
    Ok(log)
}

/// Members whose `/status` says their disk lost acknowledged entries not yet
/// repaired.
async fn damaged_members(bed: &Testbed) -> Vec<u32> {
    let mut damaged = Vec::new();
    for (id, status) in bed.ensemble.statuses().await {
        if status.is_some_and(|s| s.ensemble.damaged) {
            damaged.push(id);
        }
    }
    damaged
}

/// Waits for the ensemble to serve again after a fault; notes members that died on
/// their own (restarting them) and recoveries that took too long. After a `disk`
/// fault a leader serving a quorum is enough: the damaged member repairs while the
/// run goes on (the next fault may come before it has).
async fn recover(
    bed: &mut Testbed,
    log: &mut Log,
    fault: Fault,
    target: u32,
    note: &impl Fn(&mut Log, String),
    started: std::time::Instant,
) -> Result<()> {
    let deadline = Instant::now() + RECOVERY;
    loop {
        for (id, status) in bed.ensemble.exited() {
            let panicked = bed.panicked(id);
            let line = format!(
                "member {id} exited by itself ({status}) after {fault} on member {target}{}:\n{}",
                if panicked { ", PANICKED" } else { "" },
                bed.ensemble.member(id).log_tail(8)
            );
            note(log, line.clone());
            log.crashes.push(line);
            bed.restart(id)?;
        }
        if fault == Fault::Disk {
            if bed.ensemble.leader().await.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else if bed.ensemble.wait_settled(Duration::from_millis(500)).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let line = format!(
                "{:.2}s: no leader served every member {RECOVERY:?} after {fault} on member {target}",
                started.elapsed().as_secs_f64()
            );
            note(log, line.clone());
            log.stuck.push(line);
            return Ok(());
        }
    }
}

/// Every link healed, every member running and unpaused.
pub fn heal_all(bed: &mut Testbed) -> Result<()> {
    bed.proxy.heal();
    for id in bed.ensemble.ids() {
        bed.ensemble.resume(id)?;
        bed.restart(id)?;
    }
    Ok(())
}

/// Damages what a stopped member acknowledged, one of four ways (every record it
/// flushed was acknowledged): cuts 1 B up to 40 % off the end of sled's data file
/// (a disk that lost a flushed suffix), flips one bit in its last 4 KiB, flips a byte
/// in one of its last 32 log records, or in its newest snapshot. Returns what was
/// done. The member must find itself damaged on restart and repair from its peers.
pub fn damage_log(bed: &mut Testbed, id: u32, rng: &mut Rng) -> Result<String> {
    if bed.ensemble.member_mut(id).running() {
        bail!("member {id} must be stopped before its log is damaged");
    }
    let dir = bed.data_dir(id).to_path_buf();
    let path = dir.join("db");
    let len = fs::metadata(&path).with_context(|| format!("{}", path.display()))?.len();
    if len < 8192 {
        return Ok(format!("{} too short to damage ({len} B)", path.display()));
    }
    match rng.below(4) {
        0 => {
            let cut = 1 + rng.below(len * 2 / 5);
            fs::OpenOptions::new().write(true).open(&path)?.set_len(len - cut)?;
            Ok(format!("cut {cut} B off the end of member {id}'s log ({len} B)"))
        }
        1 => {
            let mut file = fs::OpenOptions::new().read(true).write(true).open(&path)?;
            let offset = len - 1 - rng.below(4096);
            let mut byte = [0u8];
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(&mut byte)?;
            byte[0] ^= 1 << rng.below(8);
            file.seek(SeekFrom::Start(offset))?;
            file.write_all(&byte)?;
            Ok(format!("flipped a bit at byte {offset} of member {id}'s log ({len} B)"))
        }
        kind => {
            let db = sled::open(&dir).with_context(|| format!("open {}", dir.display()))?;
            // A snapshot when there is one, else a log record.
            let kind = if kind == 3 && db.open_tree(baton_log::SNAPSHOTS_TREE)?.is_empty() {
                2
            } else {
                kind
            };
            let tree = if kind == 2 { baton_log::LOG_TREE } else { baton_log::SNAPSHOTS_TREE };
            let records = db.open_tree(tree)?;
            let keys: Vec<sled::IVec> =
                records.iter().keys().rev().take(32).collect::<Result<_, _>>()?;
            let pick = if kind == 2 { rng.below(keys.len() as u64) as usize } else { 0 };
            let Some(key) = keys.get(pick) else {
                return Ok(format!("member {id} has no {tree} record to damage"));
            };
            let Some(value) = records.get(key)? else {
                return Ok(format!("member {id}'s {tree} record vanished"));
            };
            let mut value = value.to_vec();
            let at = rng.below(value.len() as u64) as usize;
            value[at] ^= 1 << rng.below(8);
            records.insert(key, value)?;
            db.flush()?;
            let zxid = key.as_ref().try_into().map(u64::from_be_bytes).unwrap_or_default();
            let what = if kind == 2 { "log record" } else { "newest snapshot" };
            Ok(format!("flipped a bit in member {id}'s {what} at {zxid:#x}"))
        }
    }
}

/// Two sides to cut apart, and the shape's name.
fn partition(
    ids: &[u32],
    leader: Option<u32>,
    rng: &mut Rng,
) -> (Vec<u32>, Vec<u32>, &'static str) {
    let others = |x: &[u32]| ids.iter().copied().filter(|i| !x.contains(i)).collect::<Vec<u32>>();
    match rng.below(4) {
        0 if leader.is_some() => {
            let l = leader.into_iter().collect::<Vec<_>>();
            let rest = others(&l);
            (l, rest, "isolate the leader")
        }
        1 => {
            let one = vec![*rng.pick(ids)];
            let rest = others(&one);
            (one, rest, "isolate one")
        }
        2 if ids.len() >= 3 => {
            // Two sides, each short of a majority apart from the bridge in between.
            let bridge = leader.unwrap_or_else(|| *rng.pick(ids));
            let rest = others(&[bridge]);
            let (a, b) = rest.split_at(rest.len() / 2);
            (a.to_vec(), b.to_vec(), "bridge")
        }
        _ => {
            let mut shuffled = ids.to_vec();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let minority = shuffled.split_off(ids.len().div_ceil(2));
            (shuffled, minority, "majority | minority")
        }
    }
}

/// Parses `kill,pause,...` (or `all`).
pub fn parse_list(s: &str) -> Result<Vec<Fault>> {
    if s == "all" {
        return Ok(ALL.to_vec());
    }
    let mut faults = Vec::new();
    for name in s.split(',').filter(|n| !n.is_empty()) {
        match name.parse() {
            Ok(fault) => faults.push(fault),
            Err(error) => bail!("{error}"),
        }
    }
    if faults.is_empty() {
        bail!("no faults named");
    }
    Ok(faults)
}
