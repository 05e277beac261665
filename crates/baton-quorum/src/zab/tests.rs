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

    fn snapshot(&self) -> Result<(Zxid, Bytes), ViewError> {
        let joined: Vec<u8> = self.applied.values.iter().flat_map(|v| v.iter().copied()).collect();
        Ok((self.applied.zxid, joined.into()))
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
            member.applied = Applied { zxid, values: vec![data] };
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
            member.applied = Applied { zxid, values: vec![data] };
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
            let view = View { disk: &member.disk, applied: &member.applied };
            node.step(envelope, &view);
            self.drive(to);
        }
        panic!("the ensemble does not settle");
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
