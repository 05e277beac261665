//! In-process ensembles of `Node`s over a FIFO network, each member driven in the
//! documented order (persist → send → apply → advance). The deterministic
//! simulation with faults lives in `tests/sim`; these are the protocol's basic
//! paths, step by step.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::{
    Epochs, Zxid,
    zab::{Entry, Envelope, LogView, Node, Role, ServerId, ViewError, ZabConfig},
};

/// One member's disk and applied state.
#[derive(Debug, Default, Clone)]
struct Disk {
    epochs: Epochs,
    log: Vec<Entry>,
    /// Entries at or below this were purged (they are in `snapshot`).
    purged_to: Zxid,
    snapshot: Option<(Zxid, Bytes)>,
}

#[derive(Debug, Default)]
struct Applied {
    zxid: Zxid,
    /// Every applied entry's data, in order (the "tree").
    values: Vec<Bytes>,
}

/// The values of a snapshot made by `View::snapshot`.
fn split(data: &Bytes) -> Vec<Bytes> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|b| *b == b'\n').map(Bytes::copy_from_slice).collect()
}

struct View<'a> {
    disk: &'a Disk,
    applied: &'a Applied,
}

impl LogView for View<'_> {
    fn last_logged(&self) -> Zxid {
        self.disk.log.last().map_or(self.disk.purged_to, |e| e.zxid)
    }

    fn entries_after(&self, after: Zxid, max: usize) -> Result<Vec<Entry>, ViewError> {
        if after < self.disk.purged_to {
            return Err(ViewError::Purged { after });
        }
        Ok(self.disk.log.iter().filter(|e| e.zxid > after).take(max).cloned().collect())
    }

    fn last_at_or_before(&self, zxid: Zxid) -> Result<Zxid, ViewError> {
        match self.disk.log.iter().rev().find(|e| e.zxid <= zxid) {
            Some(entry) => Ok(entry.zxid),
            None if zxid >= self.disk.purged_to => Ok(self.disk.purged_to),
            None => Err(ViewError::Purged { after: zxid }),
        }
    }

    fn snapshot(&self) -> Result<(Zxid, Bytes), ViewError> {
        let values: Vec<&[u8]> = self.applied.values.iter().map(|v| v.as_ref()).collect();
        Ok((self.applied.zxid, values.join(&b'\n').into()))
    }
}

struct Member {
    node: Option<Node>,
    disk: Disk,
    applied: Applied,
}

struct Ensemble {
    members: BTreeMap<ServerId, Member>,
    wire: VecDeque<Envelope>,
    config: ZabConfig,
}

fn config(id: ServerId, n: u64) -> ZabConfig {
    ZabConfig {
        id,
        members: (1..=n).collect(),
        sync_limit_ticks: 5,
        init_limit_ticks: 10,
        heartbeat_ticks: 1,
        election_resend_ticks: 2,
        inflight_proposals_max: 100,
        diff_entries_max: 50,
    }
}

impl Ensemble {
    fn new(n: u64) -> Ensemble {
        let mut ensemble =
            Ensemble { members: BTreeMap::new(), wire: VecDeque::new(), config: config(1, n) };
        for id in 1..=n {
            ensemble.members.insert(
                id,
                Member { node: None, disk: Disk::default(), applied: Applied::default() },
            );
            ensemble.start(id);
        }
        ensemble
    }

    fn start(&mut self, id: ServerId) {
        let mut cfg = self.config.clone();
        cfg.id = id;
        let member = self.members.get_mut(&id).unwrap();
        // Restart: the tree is rebuilt from the snapshot only; the log beyond it is
        // applied when the leader says it is committed.
        let snap = member.disk.snapshot.clone();
        member.applied = Applied::default();
        if let Some((zxid, data)) = snap {
            member.applied = Applied { zxid, values: split(&data) };
        }
        let view = View { disk: &member.disk, applied: &member.applied };
        let node = Node::new(cfg, member.disk.epochs, &view, member.applied.zxid);
        member.node = Some(node);
        self.drive(id);
    }

    fn crash(&mut self, id: ServerId) {
        self.members.get_mut(&id).unwrap().node = None;
        self.wire.retain(|e| e.to != id && e.from != id);
    }

    /// The driver's order for one member.
    fn drive(&mut self, id: ServerId) {
        let member = self.members.get_mut(&id).unwrap();
        let Some(node) = member.node.as_mut() else { return };
        let ready = node.ready();
        if std::env::var("ZAB_TRACE").is_ok_and(|v| v == id.to_string()) && !ready.is_empty() {
            eprintln!(
                "[{id}] {:?} trunc {:?} snap {:?} entries {:?} committed {:?} msgs {:?}",
                node.status().role,
                ready.truncate_after,
                ready.snapshot.as_ref().map(|s| s.0),
                ready.entries.iter().map(|e| e.zxid).collect::<Vec<_>>(),
                ready.committed.iter().map(|e| e.zxid).collect::<Vec<_>>(),
                ready
                    .messages
                    .iter()
                    .map(|m| (
                        m.to,
                        format!("{:?}", m.message).chars().take(60).collect::<String>()
                    ))
                    .collect::<Vec<_>>()
            );
        }
        if let Some(epochs) = ready.epochs {
            member.disk.epochs = epochs;
        }
        if let Some(t) = ready.truncate_after {
            member.disk.log.retain(|e| e.zxid <= t);
        }
        if let Some((zxid, data)) = ready.snapshot {
            member.disk.log.clear();
            member.disk.purged_to = zxid;
            member.disk.snapshot = Some((zxid, data.clone()));
            member.applied = Applied { zxid, values: split(&data) };
        }
        for entry in ready.entries {
            if let Some(last) = member.disk.log.last() {
                assert!(entry.zxid > last.zxid, "log order");
            }
            member.disk.log.push(entry);
        }
        let durable = member.disk.log.last().map_or(member.disk.purged_to, |e| e.zxid);
        self.wire.extend(ready.messages);
        for entry in ready.committed {
            assert!(entry.zxid > member.applied.zxid, "applied zxids only grow");
            assert!(member.disk.log.iter().any(|e| e.zxid == entry.zxid), "apply only logged");
            member.applied.zxid = entry.zxid;
            member.applied.values.push(entry.data);
        }
        node.advance(durable);
        // `advance` may commit and hand out more.
        let more = node.ready();
        if !more.is_empty() {
            node.ready = more;
            self.drive(id);
        }
    }

    /// Delivers every message in flight (FIFO), until quiet or `max` messages.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let Some(envelope) = self.wire.pop_front() else { return };
            let to = envelope.to;
            let member = self.members.get_mut(&to).unwrap();
            let Some(node) = member.node.as_mut() else { continue };
            if std::env::var("ZAB_TRACE").is_ok_and(|v| v == to.to_string()) {
                let text = format!("{:?}", envelope.message);
                eprintln!(
                    "[{to}] <- {} {}",
                    envelope.from,
                    text.chars().take(90).collect::<String>()
                );
            }
            let view = View { disk: &member.disk, applied: &member.applied };
            node.step(envelope, &view);
            self.drive(to);
        }
        let sample: Vec<String> = self
            .wire
            .iter()
            .take(6)
            .map(|e| format!("{}->{} {:?}", e.from, e.to, e.message))
            .collect();
        panic!("the ensemble does not settle: {sample:#?}");
    }

    fn tick_all(&mut self, ticks: u32) {
        for _ in 0..ticks {
            let ids: Vec<ServerId> = self.members.keys().copied().collect();
            for id in ids {
                let member = self.members.get_mut(&id).unwrap();
                let Some(node) = member.node.as_mut() else { continue };
                let view = View { disk: &member.disk, applied: &member.applied };
                node.tick(&view);
                self.drive(id);
            }
            self.settle();
        }
    }

    fn leader(&self) -> Option<ServerId> {
        self.members.iter().find_map(|(id, m)| {
            let status = m.node.as_ref()?.status();
            (status.role == Role::Leading && status.broadcasting).then_some(*id)
        })
    }

    fn propose(&mut self, value: &str) -> Zxid {
        let leader = self.leader().expect("a leader");
        let node = self.members.get_mut(&leader).unwrap().node.as_mut().unwrap();
        let zxid = node.propose(Bytes::copy_from_slice(value.as_bytes())).unwrap();
        self.drive(leader);
        self.settle();
        zxid
    }

    fn applied(&self, id: ServerId) -> Vec<String> {
        self.members[&id]
            .applied
            .values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }
}

#[test]
fn three_members_elect_the_highest_id_and_commit_in_order_everywhere() {
    let mut e = Ensemble::new(3);
    e.settle();
    e.tick_all(3);
    assert_eq!(e.leader(), Some(3));
    for i in 0..10 {
        e.propose(&format!("v{i}"));
    }
    e.tick_all(2);
    let expected: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    for id in 1..=3 {
        assert_eq!(e.applied(id), expected, "member {id}");
        let status = e.members[&id].node.as_ref().unwrap().status();
        assert_eq!(status.current_epoch, 1);
    }
}

#[test]
fn nothing_commits_on_a_minority() {
    let mut e = Ensemble::new(3);
    e.settle();
    e.tick_all(3);
    e.propose("a");
    e.tick_all(1);
    e.crash(1);
    e.crash(2);
    let leader = e.leader().unwrap();
    let node = e.members.get_mut(&leader).unwrap().node.as_mut().unwrap();
    node.propose(Bytes::from_static(b"lonely")).unwrap();
    e.drive(leader);
    e.settle();
    assert_eq!(e.applied(leader), ["a"], "no quorum, no commit");
    // And the leader steps down once it cannot hear a quorum.
    e.tick_all(10);
    assert_eq!(e.leader(), None);
}

#[test]
fn a_new_leader_takes_over_and_the_old_one_catches_up() {
    let mut e = Ensemble::new(3);
    e.settle();
    e.tick_all(3);
    for i in 0..5 {
        e.propose(&format!("a{i}"));
    }
    e.crash(3);
    e.tick_all(20);
    let leader = e.leader().expect("a new leader");
    assert_ne!(leader, 3);
    e.propose("b0");
    e.start(3);
    e.settle();
    e.tick_all(10);
    e.propose("b1");
    e.tick_all(2);
    let expected = ["a0", "a1", "a2", "a3", "a4", "b0", "b1"];
    for id in 1..=3 {
        assert_eq!(e.applied(id), expected, "member {id}");
    }
}

#[test]
fn uncommitted_proposals_of_an_old_epoch_are_truncated() {
    let mut e = Ensemble::new(3);
    e.settle();
    e.tick_all(3);
    e.propose("kept");
    e.tick_all(1);
    // The leader (3) logs a proposal that reaches nobody, then dies.
    e.crash(1);
    e.crash(2);
    let node = e.members.get_mut(&3).unwrap().node.as_mut().unwrap();
    node.propose(Bytes::from_static(b"lost")).unwrap();
    e.drive(3);
    e.wire.clear();
    e.crash(3);
    e.start(1);
    e.start(2);
    e.settle();
    e.tick_all(20);
    let leader = e.leader().expect("1 and 2 elect a leader");
    assert_ne!(leader, 3);
    e.propose("new");
    // 3 returns with "lost" in its log: the leader truncates it.
    e.start(3);
    e.settle();
    e.tick_all(20);
    e.propose("after");
    e.tick_all(2);
    for id in 1..=3 {
        assert_eq!(e.applied(id), ["kept", "new", "after"], "member {id}");
        let log: Vec<&[u8]> = e.members[&id].disk.log.iter().map(|x| x.data.as_ref()).collect();
        assert!(!log.contains(&b"lost".as_slice()), "member {id} still logs the lost proposal");
    }
}

#[test]
fn a_member_far_behind_is_sent_a_snapshot() {
    let mut e = Ensemble::new(3);
    e.settle();
    e.tick_all(3);
    e.crash(1);
    for i in 0..60 {
        e.propose(&format!("x{i}"));
    }
    e.tick_all(2);
    e.start(1);
    e.settle();
    e.tick_all(20);
    e.propose("y");
    e.tick_all(2);
    let status = e.members[&1].node.as_ref().unwrap().status();
    assert!(status.broadcasting, "{status:?}");
    assert!(e.members[&1].disk.snapshot.is_some(), "synced by SNAP (60 > diff max 50)");
    assert_eq!(e.members[&1].applied.zxid, e.members[&3].applied.zxid);
}

/// A small seeded PRNG (xorshift64*), so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl Ensemble {
    /// Every member's applied values are a prefix of the longest one's.
    fn check_prefix_agreement(&self, seed: u64) {
        let longest = self.members.values().map(|m| m.applied.values.len()).max().unwrap_or(0);
        let reference = self
            .members
            .values()
            .find(|m| m.applied.values.len() == longest)
            .map(|m| m.applied.values.clone())
            .unwrap_or_default();
        for (id, member) in &self.members {
            let mine = &member.applied.values;
            if reference[..mine.len()] != mine[..] {
                for (i, m) in &self.members {
                    eprintln!(
                        "{i}: {:?}\n   applied {:?}\n   log {:?}",
                        m.node.as_ref().map(|n| n.status()),
                        m.applied.values,
                        m.disk.log.iter().map(|x| (x.zxid, x.data.clone())).collect::<Vec<_>>()
                    );
                }
            }
            assert_eq!(&reference[..mine.len()], &mine[..], "seed {seed}: member {id} diverged");
        }
    }
}

/// Random crashes, restarts, lost and duplicated messages and proposals, on 3 and 5
/// members; after every step the applied histories agree and no epoch has two
/// leaders, and after healing every acknowledged write (applied on the member that
/// proposed it) is applied everywhere. Replay a failure:
/// `ZAB_SEED=S cargo test -p baton-quorum random_faults`.
#[test]
fn random_faults_keep_histories_in_agreement_and_acknowledged_writes() {
    // ZAB_SEEDS=N runs seeds 1..=N; ZAB_SEED=S replays seed S alone; ZAB_TRACE=ID
    // prints what member ID receives and does. A failure names its seed.
    let env = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    let seeds = match env("ZAB_SEED") {
        Some(seed) => seed..=seed,
        None => 1..=env("ZAB_SEEDS").unwrap_or(120),
    };
    for seed in seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let n = if seed % 2 == 0 { 3 } else { 5 };
        let mut e = Ensemble::new(n);
        let mut acknowledged: Vec<String> = Vec::new();
        let mut leaders_by_epoch: BTreeMap<u32, ServerId> = BTreeMap::new();
        for step in 0..400 {
            match rng.below(20) {
                0 => {
                    let id = 1 + rng.below(n);
                    let down = e.members.values().filter(|m| m.node.is_none()).count() as u64;
                    if e.members[&id].node.is_some() && down < n / 2 {
                        e.crash(id);
                    }
                }
                1 | 2 => {
                    let id = 1 + rng.below(n);
                    if e.members[&id].node.is_none() {
                        e.start(id);
                    }
                }
                3..=7 => {
                    if let Some(leader) = e.leader() {
                        let value = format!("s{seed}-{step}");
                        let node = e.members.get_mut(&leader).unwrap().node.as_mut().unwrap();
                        if node.propose(Bytes::from(value.clone())).is_ok() {
                            e.drive(leader);
                        }
                    }
                }
                8..=11 => {
                    let ids: Vec<ServerId> = e.members.keys().copied().collect();
                    for id in ids {
                        let member = e.members.get_mut(&id).unwrap();
                        let Some(node) = member.node.as_mut() else { continue };
                        let view = View { disk: &member.disk, applied: &member.applied };
                        node.tick(&view);
                        e.drive(id);
                    }
                }
                _ => {
                    // Deliver a few messages; lose or duplicate some.
                    for _ in 0..1 + rng.below(8) {
                        let Some(envelope) = e.wire.pop_front() else { break };
                        match rng.below(30) {
                            0 => continue,
                            1 => e.wire.push_front(envelope.clone()),
                            _ => {}
                        }
                        let to = envelope.to;
                        let member = e.members.get_mut(&to).unwrap();
                        let Some(node) = member.node.as_mut() else { continue };
                        if std::env::var("ZAB_TRACE").is_ok_and(|v| v == to.to_string()) {
                            eprintln!(
                                "[{to}] <- {} {}",
                                envelope.from,
                                format!("{:?}", envelope.message)
                                    .chars()
                                    .take(90)
                                    .collect::<String>()
                            );
                        }
                        let view = View { disk: &member.disk, applied: &member.applied };
                        node.step(envelope, &view);
                        e.drive(to);
                    }
                }
            }
            e.check_prefix_agreement(seed);
            for (id, member) in &e.members {
                let Some(node) = member.node.as_ref() else { continue };
                let status = node.status();
                if status.role == Role::Leading && status.broadcasting {
                    let first = *leaders_by_epoch.entry(status.current_epoch).or_insert(*id);
                    assert_eq!(
                        first, *id,
                        "seed {seed}: two leaders in epoch {}",
                        status.current_epoch
                    );
                }
            }
            // What a broadcasting leader has applied is acknowledged to its client.
            if let Some(leader) = e.leader() {
                for value in &e.applied(leader) {
                    if !acknowledged.contains(value) {
                        acknowledged.push(value.clone());
                    }
                }
            }
        }
        // Heal: everyone up, every message delivered, time passes.
        for id in 1..=n {
            if e.members[&id].node.is_none() {
                e.start(id);
            }
        }
        e.settle();
        e.tick_all(40);
        let leader = e.leader().unwrap_or_else(|| panic!("seed {seed}: no leader after healing"));
        e.propose("final");
        e.tick_all(5);
        e.check_prefix_agreement(seed);
        for id in 1..=n {
            let applied = e.applied(id);
            if applied.last().map(String::as_str) != Some("final") {
                for (i, m) in &e.members {
                    eprintln!(
                        "{i}: {:?} log {:?}",
                        m.node.as_ref().map(|n| n.status()),
                        m.disk.log.iter().map(|x| x.zxid).collect::<Vec<_>>()
                    );
                }
            }
            assert_eq!(
                applied.last().map(String::as_str),
                Some("final"),
                "seed {seed}: member {id} (leader {leader})"
            );
            for value in &acknowledged {
                assert!(
                    applied.contains(value),
                    "seed {seed}: member {id} lost acknowledged {value}"
                );
            }
        }
    }
}
