//! One simulated ensemble: members (a `Node`, a disk, an applied state), a network
//! that loses, duplicates, reorders and partitions, and clients that record what
//! they saw. Everything is driven by one seeded random generator, so a seed replays
//! exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use baton_quorum::{
    Epochs, QuorumError, Zxid,
    zab::{
        Entry, Envelope, LogView, Member as ConfigMember, Membership, Node, NodeStatus, Role,
        ServerId, ViewError, ZabConfig, decode_config_entry,
    },
};
use bytes::Bytes;

use crate::history::{Kind, LocalRead, Op};

/// Driver bugs the simulation can be run with, to show it catches them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bugs {
    /// Send messages (ACKs) before the entries they acknowledge are durable.
    pub ack_before_fsync: bool,
    /// The old recovery: a member whose disk lost acknowledged entries takes what
    /// is left as its history and votes with it (no promise is kept).
    pub trust_damaged_log: bool,
    /// A member starts with the newest configuration in its log, committed or
    /// not, as the one in force (a new configuration applied before it commits).
    pub config_from_log: bool,
    /// A linearizable read is served from the member's own state, without asking a
    /// quorum (a read index that never confirms leadership).
    pub unconfirmed_reads: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Voting members (ids 1..=members).
    pub members: u64,
    /// Observers (the ids after the voters').
    pub observers: u64,
    /// Members that start outside the configuration (the ids after the
    /// observers'), for membership changes to add.
    pub spares: u64,
    /// The leader is asked for random membership changes.
    pub reconfig: bool,
    pub steps: usize,
    pub clients: usize,
    pub bugs: Bugs,
}

/// A small seeded PRNG (xorshift64*).
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// A member's disk: what survives a crash.
#[derive(Debug, Default, Clone)]
struct Disk {
    epochs: Epochs,
    log: Vec<Entry>,
    /// Entries at or below this were purged (they are in `snapshot`).
    purged_to: Zxid,
    snapshot: Option<(Zxid, Bytes)>,
    /// The durable promise, kept apart from the log (the server's promise file):
    /// every entry up to it was acknowledged, so the log must hold it. Written
    /// after each flush, before anything that relies on the flush leaves; while
    /// the member is damaged it never goes down.
    promise: Zxid,
}

impl Disk {
    /// Where the durable history ends: the last entry, else the snapshot.
    fn end(&self) -> Zxid {
        self.log.last().map_or(self.purged_to, |e| e.zxid)
    }

    /// The log lost entries the member had acknowledged.
    fn damaged(&self) -> bool {
        self.promise > self.end()
    }
}

/// A member's applied state (its "tree"): every applied entry, in zxid order.
#[derive(Debug, Default, Clone)]
struct Applied {
    zxid: Zxid,
    entries: Vec<(Zxid, Bytes)>,
    /// How many of `entries` the last prefix check saw, unchanged since: applying only
    /// appends, and a state rebuilt from a snapshot starts again at 0.
    checked_len: usize,
}

impl Applied {
    fn encode(&self) -> Bytes {
        let lines: Vec<String> =
            self.entries.iter().map(|(z, d)| format!("{:x} {}", z.as_u64(), hex(d))).collect();
        lines.join("\n").into()
    }

    fn decode(zxid: Zxid, data: &[u8]) -> Applied {
        let text = String::from_utf8_lossy(data);
        let entries = text
            .lines()
            .map(|line| {
                let (z, d) = line.split_once(' ').expect("snapshot line");
                let z = u64::from_str_radix(z, 16).expect("snapshot zxid");
                (Zxid::from_u64(z), unhex(d))
            })
            .collect();
        Applied { zxid, entries, checked_len: 0 }
    }

    /// The value of `key` in this state.
    fn get(&self, key: &str) -> Option<String> {
        value_of(&self.entries, key)
    }

    /// The value of `key` once the entries up to `zxid` were applied.
    fn get_at(&self, key: &str, zxid: Zxid) -> Option<String> {
        let upto = self.entries.partition_point(|(z, _)| *z <= zxid);
        value_of(&self.entries[..upto], key)
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Bytes {
    let byte = |i| u8::from_str_radix(&text[i..i + 2], 16).expect("snapshot hex");
    (0..text.len()).step_by(2).map(byte).collect::<Vec<u8>>().into()
}

/// The last configuration in `entries` (`None`: the first one is in force).
fn config_in(entries: impl DoubleEndedIterator<Item = (Zxid, Bytes)>) -> Option<Membership> {
    entries.rev().find_map(|(zxid, data)| {
        decode_config_entry(&data).map(|members| Membership { version: zxid, members })
    })
}

/// The value the last write to `key` in `entries` left.
fn value_of(entries: &[(Zxid, Bytes)], key: &str) -> Option<String> {
    entries.iter().rev().find_map(|(_, data)| match parse(data) {
        Some(Txn::Write { key: k, value }) if k == key => Some(value.to_owned()),
        _ => None,
    })
}

/// What an entry says: `w <key> <value>` or `r <key> <client>`.
enum Txn<'a> {
    Write { key: &'a str, value: &'a str },
    Read,
}

fn parse(data: &[u8]) -> Option<Txn<'_>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut parts = text.split(' ');
    match (parts.next()?, parts.next()?, parts.next()?) {
        ("w", key, value) => Some(Txn::Write { key, value }),
        ("r", _, _) => Some(Txn::Read),
        _ => None,
    }
}

struct View<'a> {
    disk: &'a Disk,
    snapshots: &'a Prepared,
}

/// A snapshot for a SNAP is prepared off the driver's thread, as the server does:
/// the first ask is answered "unavailable" and the driver prepares one after the
/// step; the leader asks again at its next tick.
#[derive(Debug, Default)]
struct Prepared {
    ready: std::cell::RefCell<Option<(Zxid, Bytes)>>,
    wanted: std::cell::Cell<bool>,
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
        match self.snapshots.ready.take() {
            // The entries after it must still be in the log.
            Some((zxid, data)) if zxid >= self.disk.purged_to => Ok((zxid, data)),
            _ => {
                self.snapshots.wanted.set(true);
                Err(ViewError::Unavailable("a snapshot is being prepared"))
            }
        }
    }
}

#[derive(Debug)]
struct Member {
    node: Option<Node>,
    disk: Disk,
    applied: Applied,
    snapshots: Prepared,
}

/// An operation a client waits for: its entry was proposed by `leader` in `epoch`.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    op: usize,
    leader: ServerId,
    epoch: u32,
    zxid: Zxid,
}

/// A linearizable read (ReadIndex) a client waits for on `member`.
#[derive(Debug, Clone, Copy)]
struct Reading {
    op: usize,
    member: ServerId,
    ctx: u64,
    /// The step it was asked at: a read whose leader was deposed before it
    /// confirmed it never comes out; the client gives up after `READ_STEPS_MAX`.
    step: u64,
}

/// Steps a client waits for a linearizable read before giving up on it.
const READ_STEPS_MAX: u64 = 300;

#[derive(Debug, Default)]
struct Client {
    waiting: Option<Waiting>,
    reading: Option<Reading>,
    /// The member its local reads go to (its "session").
    member: ServerId,
    /// Highest zxid this client observed.
    seen: u64,
    written: u64,
}

pub const KEYS: [&str; 2] = ["x", "y"];

/// A whole simulated ensemble and its clients.
#[derive(Debug)]
pub struct World {
    pub seed: u64,
    options: Options,
    rng: Rng,
    config: ZabConfig,
    members: BTreeMap<ServerId, Member>,
    /// Messages in flight, oldest first.
    wire: VecDeque<Envelope>,
    /// Directed links that drop everything (a partition).
    cut: BTreeSet<(ServerId, ServerId)>,
    clients: Vec<Client>,
    pub ops: Vec<Op>,
    pub local_reads: Vec<LocalRead>,
    /// Values whose write was acknowledged to a client.
    pub acknowledged: Vec<String>,
    leaders_by_epoch: BTreeMap<u32, ServerId>,
    clock: u64,
    /// Faults injected, by kind (for the run's summary).
    pub faults: BTreeMap<&'static str, u64>,
    /// Set once healing began (or for scripts): no more random faults.
    healed: bool,
    /// `SIM_TRACE=ID`: print every message member ID receives.
    trace: Option<ServerId>,
    /// What each leader had committed at the last check (commit quorums are
    /// checked as commits happen).
    leader_committed: BTreeMap<ServerId, Zxid>,
    /// The configuration in force once healed.
    final_config: Option<Membership>,
    /// Linearizable reads confirmed by a member: its number → (member, index).
    confirmed_reads: BTreeMap<u64, (ServerId, Zxid)>,
    next_read: u64,
    /// Linearizable reads answered (for the run's summary).
    pub read_index_reads: usize,
    /// Steps taken.
    steps: u64,
    /// The fewest voters of any configuration proposed so far.
    fewest_voters: u64,
}

fn config(id: ServerId, n: u64, observers: u64) -> ZabConfig {
    let voters: Vec<ServerId> = (1..=n).collect();
    let observers: Vec<ServerId> = (n + 1..=n + observers).collect();
    ZabConfig {
        id,
        membership: ZabConfig::initial(&voters, &observers),
        sync_limit_ticks: 5,
        init_limit_ticks: 10,
        heartbeat_ticks: 1,
        election_resend_ticks: 2,
        inflight_proposals_max: 100,
        diff_entries_max: 20,
    }
}

impl World {
    pub fn new(seed: u64, options: Options) -> World {
        let n = options.members + options.observers + options.spares;
        let mut world = World {
            seed,
            options,
            rng: Rng::new(seed),
            config: config(1, options.members, options.observers),
            members: BTreeMap::new(),
            wire: VecDeque::new(),
            cut: BTreeSet::new(),
            clients: Vec::new(),
            ops: Vec::new(),
            local_reads: Vec::new(),
            acknowledged: Vec::new(),
            leaders_by_epoch: BTreeMap::new(),
            clock: 0,
            faults: BTreeMap::new(),
            healed: false,
            trace: std::env::var("SIM_TRACE").ok().and_then(|id| id.parse().ok()),
            leader_committed: BTreeMap::new(),
            final_config: None,
            fewest_voters: options.members,
            confirmed_reads: BTreeMap::new(),
            next_read: 0,
            read_index_reads: 0,
            steps: 0,
        };
        for id in 1..=n {
            let member = Member {
                node: None,
                disk: Disk::default(),
                applied: Applied::default(),
                snapshots: Prepared::default(),
            };
            world.members.insert(id, member);
            world.start(id);
        }
        for c in 0..options.clients {
            world.clients.push(Client { member: 1 + (c as u64 % n), ..Client::default() });
        }
        world
    }

    /// A world for scripted scenarios: no random faults, messages move only when
    /// the script says so.
    pub fn scripted(members: u64) -> World {
        let options = Options {
            members,
            observers: 0,
            spares: 0,
            reconfig: false,
            steps: 0,
            clients: 0,
            bugs: Bugs::default(),
        };
        let mut world = World::new(0, options);
        world.healed = true;
        world
    }

    pub fn member_count(&self) -> u64 {
        self.total()
    }

    /// Voters, observers and spares.
    fn total(&self) -> u64 {
        self.options.members + self.options.observers + self.options.spares
    }

    /// Messages in flight.
    pub fn wire(&mut self) -> &mut VecDeque<Envelope> {
        &mut self.wire
    }

    pub fn status(&self, id: ServerId) -> Option<NodeStatus> {
        self.members[&id].node.as_ref().map(Node::status)
    }

    /// Member `id`'s applied values and its log (values), for scripts.
    pub fn contents(&self, id: ServerId) -> (Vec<String>, Vec<(Zxid, String)>) {
        let member = &self.members[&id];
        let text = |d: &Bytes| String::from_utf8_lossy(d).into_owned();
        let applied = member.applied.entries.iter().map(|(_, d)| text(d)).collect();
        let log = member.disk.log.iter().map(|e| (e.zxid, text(&e.data))).collect();
        (applied, log)
    }

    pub fn has_snapshot(&self, id: ServerId) -> bool {
        self.members[&id].disk.snapshot.is_some()
    }

    /// Member `id`'s disk loses its last `count` logged entries although they were
    /// flushed ("fsync lied", or the tail from a corrupt record on, which opening
    /// truncates). For scripts and random faults; the member should be down.
    pub fn lose_logged(&mut self, id: ServerId, count: usize) {
        let log = &mut self.members.get_mut(&id).expect("member").disk.log;
        log.truncate(log.len().saturating_sub(count));
    }

    /// Members whose disk lost acknowledged entries and that have not repaired yet.
    fn damaged_members(&self) -> usize {
        self.members
            .values()
            .filter(|m| match &m.node {
                Some(node) => node.status().damaged,
                None => m.disk.damaged(),
            })
            .count()
    }

    /// A damaged member can be repaired: no configuration of fewer than three
    /// voters was ever proposed, so a quorum of healthy ones remains (two voters,
    /// one of them damaged, stay unavailable until an operator acts, as an
    /// ensemble of one does).
    fn repairable(&self) -> bool {
        self.fewest_voters >= 3
    }

    /// A storage fault on the disk of `id` (down): lose a flushed suffix, a corrupt
    /// entry (opening cuts the log there), or a damaged snapshot (no older one is
    /// kept, so the log after it no longer connects to anything and goes too).
    fn damage_disk(&mut self, id: ServerId) {
        let kind = self.rng.below(3);
        let len = self.members[&id].disk.log.len();
        match kind {
            0 if len > 0 => {
                let count = 1 + self.rng.below(len.min(8) as u64) as usize;
                self.lose_logged(id, count);
                self.fault("disk: flushed suffix lost");
            }
            1 if len > 0 => {
                let at = self.rng.below(len as u64) as usize;
                self.lose_logged(id, len - at);
                self.fault("disk: corrupt entry");
            }
            2 => {
                let disk = &mut self.members.get_mut(&id).expect("member").disk;
                if disk.snapshot.take().is_none() {
                    return;
                }
                disk.log.clear();
                disk.purged_to = Zxid::ZERO;
                self.fault("disk: snapshot damaged");
            }
            _ => return,
        }
        if self.members[&id].disk.damaged() {
            self.fault("disk: acknowledged entries lost");
        }
    }

    /// Proposes on member `id` (which must lead) and runs its driver; messages stay
    /// in flight.
    pub fn propose_on(&mut self, id: ServerId, value: &str) -> Result<Zxid, String> {
        let member = self.members.get_mut(&id).expect("member");
        let node = member.node.as_mut().ok_or("down")?;
        let zxid =
            node.propose(Bytes::copy_from_slice(value.as_bytes())).map_err(|e| e.to_string())?;
        self.drive(id);
        Ok(zxid)
    }

    /// Cuts (or heals) both directions between `a` and every other member.
    pub fn isolate(&mut self, a: ServerId, cut: bool) {
        for b in 1..=self.total() {
            if a != b {
                for link in [(a, b), (b, a)] {
                    if cut {
                        self.cut.insert(link);
                    } else {
                        self.cut.remove(&link);
                    }
                }
            }
        }
    }

    fn fault(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
    }

    fn now(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Starts (or restarts) a member from its disk: the state is rebuilt from the
    /// snapshot; logged entries after it are applied when known committed.
    pub fn start(&mut self, id: ServerId) {
        let mut cfg = self.config.clone();
        cfg.id = id;
        let member = self.members.get_mut(&id).expect("member");
        member.applied = match &member.disk.snapshot {
            Some((zxid, data)) => Applied::decode(*zxid, data),
            None => Applied::default(),
        };
        // The configuration in force: the last one the state (snapshot) holds, as
        // the server reads it from its tree.
        let applied = member.applied.entries.iter().cloned();
        let committed = if self.options.bugs.config_from_log {
            let logged = member.disk.log.iter().map(|e| (e.zxid, e.data.clone()));
            config_in(applied.chain(logged))
        } else {
            config_in(applied)
        };
        if let Some(membership) = committed {
            cfg.membership = membership;
        }
        let damaged = !self.options.bugs.trust_damaged_log && member.disk.damaged();
        if !damaged {
            // (The old recovery has no promise: what is left is the history.)
            member.disk.promise = member.disk.end();
        }
        let view = View { disk: &member.disk, snapshots: &member.snapshots };
        let (epochs, applied) = (member.disk.epochs, member.applied.zxid);
        member.node = Some(Node::recovering(cfg, epochs, &view, applied, damaged));
        self.drive(id);
    }

    pub fn crash(&mut self, id: ServerId) {
        self.members.get_mut(&id).expect("member").node = None;
    }

    /// The driver's order for one member, as baton-server's: send what the node
    /// allows before the flush, persist, (flush), send the rest, apply, advance. A
    /// crash may strike between the write and the flush of a batch: then only a
    /// prefix of the batch's entries is durable, and only what was sent before the
    /// flush has left (a leader's proposals may be out while its own copy is lost).
    fn drive(&mut self, id: ServerId) {
        loop {
            let member = self.members.get_mut(&id).expect("member");
            if member.snapshots.wanted.replace(false) {
                let prepared = (member.applied.zxid, member.applied.encode());
                member.snapshots.ready.replace(Some(prepared));
                self.fault("snapshot prepared for a SNAP");
            }
            let member = self.members.get_mut(&id).expect("member");
            let Some(node) = member.node.as_mut() else { return };
            let ready = node.ready();
            if ready.is_empty() {
                return;
            }
            self.wire.extend(ready.messages);
            for (ctx, index) in ready.reads {
                self.confirmed_reads.insert(ctx, (id, index));
            }
            let member = self.members.get_mut(&id).expect("member");
            if let Some(epochs) = ready.epochs {
                member.disk.epochs = epochs;
            }
            if let Some(t) = ready.truncate_after {
                member.disk.log.retain(|e| e.zxid <= t);
            }
            if let Some((zxid, data)) = ready.snapshot {
                member.disk.log.clear();
                member.disk.purged_to = zxid;
                member.applied = Applied::decode(zxid, &data);
                member.disk.snapshot = Some((zxid, data));
            }
            let mut sent = false;
            if self.options.bugs.ack_before_fsync {
                self.wire.extend(ready.persisted_messages.iter().cloned());
                sent = true;
            }
            if !self.healed && !ready.entries.is_empty() && self.rng.one_in(100) {
                let kept = self.rng.below(ready.entries.len() as u64) as usize;
                let member = self.members.get_mut(&id).expect("member");
                member.disk.log.extend(ready.entries.into_iter().take(kept));
                member.node = None;
                self.fault("crash before fsync");
                return;
            }
            let member = self.members.get_mut(&id).expect("member");
            for entry in ready.entries {
                if let Some(last) = member.disk.log.last() {
                    assert!(entry.zxid > last.zxid, "seed {}: log order on {id}", self.seed);
                }
                member.disk.log.push(entry);
            }
            let durable = member.disk.end();
            // The promise is durable before anything relying on this flush leaves.
            let repaired = !member.node.as_ref().expect("running").status().damaged;
            member.disk.promise = if repaired { durable } else { member.disk.promise.max(durable) };
            if !sent {
                self.wire.extend(ready.persisted_messages);
            }
            let member = self.members.get_mut(&id).expect("member");
            for entry in ready.committed {
                assert!(
                    entry.zxid > member.applied.zxid,
                    "seed {}: member {id} applies {} after {} (applied zxids only grow)",
                    self.seed,
                    entry.zxid,
                    member.applied.zxid
                );
                assert!(
                    entry.zxid <= durable,
                    "seed {}: member {id} applies {} beyond its durable log ({durable})",
                    self.seed,
                    entry.zxid
                );
                member.applied.zxid = entry.zxid;
                member.applied.entries.push((entry.zxid, entry.data));
            }
            member.node.as_mut().expect("running").advance(durable);
        }
    }

    pub fn deliver(&mut self, envelope: Envelope) {
        if self.cut.contains(&(envelope.from, envelope.to)) {
            return;
        }
        let to = envelope.to;
        let Some(member) = self.members.get_mut(&to) else {
            panic!("seed {}: a message to no member: {envelope:?}", self.seed)
        };
        let Some(node) = member.node.as_mut() else { return };
        if self.trace == Some(to) {
            let role = node.status().role;
            eprintln!("[{to} {role:?}] <- {} {:?}", envelope.from, envelope.message);
        }
        let view = View { disk: &member.disk, snapshots: &member.snapshots };
        node.step(envelope, &view);
        self.drive(to);
    }

    pub fn tick_all(&mut self) {
        let ids: Vec<ServerId> = self.members.keys().copied().collect();
        for id in ids {
            let member = self.members.get_mut(&id).expect("member");
            let Some(node) = member.node.as_mut() else { continue };
            let view = View { disk: &member.disk, snapshots: &member.snapshots };
            node.tick(&view);
            self.drive(id);
        }
    }

    /// The established (broadcasting) leader with the highest epoch, if any.
    pub fn leader(&self) -> Option<ServerId> {
        self.members
            .iter()
            .filter_map(|(id, m)| {
                let status = m.node.as_ref()?.status();
                (status.role == Role::Leading && status.broadcasting)
                    .then_some((status.current_epoch, *id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// One random step: a fault, a client action, time, or message deliveries.
    pub fn step(&mut self) {
        self.steps += 1;
        let n = self.total();
        match self.rng.below(100) {
            0 => {
                let id = 1 + self.rng.below(n);
                if self.members[&id].node.is_some() {
                    self.crash(id);
                    self.fault("crash");
                }
            }
            1..=3 => {
                let id = 1 + self.rng.below(n);
                if self.members[&id].node.is_none() {
                    // Storage faults: one damaged member at a time (repaired from
                    // the others), while others may crash meanwhile.
                    if n > 1
                        && self.rng.one_in(3)
                        && self.damaged_members() == 0
                        && self.repairable()
                    {
                        self.damage_disk(id);
                    }
                    self.start(id);
                    self.fault("restart");
                }
            }
            4 => self.change_partition(),
            5 => self.snapshot_and_purge(),
            6 if self.options.reconfig => self.reconfig_action(),
            6..=30 => self.client_action(),
            31..=45 => self.tick_all(),
            _ => {
                for _ in 0..1 + self.rng.below(10) {
                    if self.wire.is_empty() {
                        break;
                    }
                    // Mostly in order; sometimes one of the next few jumps ahead.
                    let window = self.wire.len().min(4) as u64;
                    let index =
                        if self.rng.one_in(4) { self.rng.below(window) as usize } else { 0 };
                    if index > 0 {
                        self.fault("reorder");
                    }
                    let envelope = self.wire.remove(index).expect("index within the wire");
                    match self.rng.below(40) {
                        0 => {
                            self.fault("loss");
                            continue;
                        }
                        1 => {
                            self.fault("duplicate");
                            self.wire.push_front(envelope.clone());
                        }
                        _ => {}
                    }
                    self.deliver(envelope);
                }
            }
        }
        self.complete_waiting();
        self.check_step();
    }

    fn change_partition(&mut self) {
        let n = self.total();
        self.cut.clear();
        match self.rng.below(3) {
            0 => self.fault("heal"),
            1 => {
                // Isolate one member (often the leader).
                let id = match self.leader() {
                    Some(leader) if self.rng.one_in(2) => leader,
                    _ => 1 + self.rng.below(n),
                };
                for other in 1..=n {
                    if other != id {
                        self.cut.insert((id, other));
                        self.cut.insert((other, id));
                    }
                }
                self.fault("partition: isolate one");
            }
            _ => {
                // Split in two random sides.
                let side: Vec<bool> = (0..n).map(|_| self.rng.one_in(2)).collect();
                for a in 1..=n {
                    for b in 1..=n {
                        if side[(a - 1) as usize] != side[(b - 1) as usize] {
                            self.cut.insert((a, b));
                        }
                    }
                }
                self.fault("partition: split");
            }
        }
    }

    /// A random member snapshots its applied state and purges the log below it (as
    /// the server's snapshotter does), so later syncs may need SNAP.
    fn snapshot_and_purge(&mut self) {
        let id = 1 + self.rng.below(self.total());
        self.snapshot_member(id);
    }

    /// Member `id` snapshots its applied state and purges its log up to it.
    pub fn snapshot_member(&mut self, id: ServerId) {
        let member = self.members.get_mut(&id).expect("member");
        if member.node.is_none() || member.applied.zxid == Zxid::ZERO {
            return;
        }
        let zxid = member.applied.zxid;
        member.disk.snapshot = Some((zxid, member.applied.encode()));
        member.disk.log.retain(|e| e.zxid > zxid);
        member.disk.purged_to = zxid;
        self.fault("snapshot + purge");
    }

    fn client_action(&mut self) {
        let c = self.rng.below(self.clients.len() as u64) as usize;
        if self.clients[c].waiting.is_some() || self.clients[c].reading.is_some() {
            return;
        }
        let key = KEYS[self.rng.below(KEYS.len() as u64) as usize].to_string();
        match self.rng.below(4) {
            0 => self.local_read(c, key),
            3 => self.linearizable_read(c, key),
            kind => {
                let Some(leader) = self.leader() else { return };
                let (data, kind) = if kind == 1 {
                    self.clients[c].written += 1;
                    let value = format!("c{c}.{}", self.clients[c].written);
                    (format!("w {key} {value}"), Kind::Write(value))
                } else {
                    (format!("r {key} c{c}"), Kind::Read(None))
                };
                let member = self.members.get_mut(&leader).expect("leader");
                let node = member.node.as_mut().expect("running");
                let epoch = node.status().current_epoch;
                let Ok(zxid) = node.propose(data.into()) else { return };
                let call = self.now();
                self.ops.push(Op { client: c, key, kind, call, ret: None });
                let op = self.ops.len() - 1;
                self.clients[c].waiting = Some(Waiting { op, leader, epoch, zxid });
                self.drive(leader);
            }
        }
    }

    /// A read served by the client's member, if that member serves (broadcasting)
    /// and is not behind what the client saw (else the client moves on).
    fn local_read(&mut self, c: usize, key: String) {
        let id = self.clients[c].member;
        let member = &self.members[&id];
        let serving = member.node.as_ref().is_some_and(|n| n.status().broadcasting);
        if !serving || member.applied.zxid.as_u64() < self.clients[c].seen {
            self.clients[c].member = 1 + self.rng.below(self.total());
            return;
        }
        let zxid = member.applied.zxid.as_u64();
        let value = member.applied.get(&key);
        self.clients[c].seen = zxid;
        self.local_reads.push(LocalRead { client: c, key, zxid, value });
    }

    /// A linearizable read (ReadIndex) asked of a random member; answered once the
    /// member confirmed it and applied its index (see `complete_waiting`).
    fn linearizable_read(&mut self, c: usize, key: String) {
        let member = 1 + self.rng.below(self.total());
        let ctx = self.next_read;
        let Some(node) = self.members.get_mut(&member).expect("member").node.as_mut() else {
            return;
        };
        if self.options.bugs.unconfirmed_reads {
            if !node.status().broadcasting {
                return;
            }
            let applied = self.members[&member].applied.zxid;
            self.confirmed_reads.insert(ctx, (member, applied));
        } else if node.read_index(ctx).is_err() {
            return;
        }
        self.next_read += 1;
        let call = self.now();
        self.ops.push(Op { client: c, key, kind: Kind::Read(None), call, ret: None });
        let op = self.ops.len() - 1;
        self.clients[c].reading = Some(Reading { op, member, ctx, step: self.steps });
        self.drive(member);
    }

    /// Answers the linearizable reads whose member applied their index, from its
    /// state then; gives up (outcome unknown) on those whose member went down or
    /// out of broadcast.
    fn complete_reads(&mut self) {
        for c in 0..self.clients.len() {
            let Some(reading) = self.clients[c].reading else { continue };
            let member = &self.members[&reading.member];
            let serving = member.node.as_ref().is_some_and(|n| n.status().broadcasting);
            if !serving || self.steps > reading.step + READ_STEPS_MAX {
                self.confirmed_reads.remove(&reading.ctx);
                self.clients[c].reading = None;
                continue;
            }
            let Some(&(_, index)) = self.confirmed_reads.get(&reading.ctx) else { continue };
            if member.applied.zxid < index {
                continue;
            }
            let value = member.applied.get(&self.ops[reading.op].key);
            let ret = self.now();
            let op = &mut self.ops[reading.op];
            op.ret = Some(ret);
            op.kind = Kind::Read(value);
            self.confirmed_reads.remove(&reading.ctx);
            self.clients[c].reading = None;
            self.read_index_reads += 1;
        }
    }

    /// Answers clients whose entry the proposing leader applied; forgets (outcome
    /// unknown) those whose leader went away.
    fn complete_waiting(&mut self) {
        self.complete_reads();
        for c in 0..self.clients.len() {
            let Some(waiting) = self.clients[c].waiting else { continue };
            let member = &self.members[&waiting.leader];
            let same_leader = member.node.as_ref().is_some_and(|n| {
                let s = n.status();
                s.role == Role::Leading && s.current_epoch == waiting.epoch
            });
            if !same_leader {
                // Outcome unknown (`ret` stays `None`).
                self.clients[c].waiting = None;
                continue;
            }
            if member.applied.zxid < waiting.zxid {
                continue;
            }
            let applied = &member.applied;
            let ours = applied.entries.binary_search_by_key(&waiting.zxid, |(z, _)| *z).is_ok();
            assert!(ours, "seed {}: the leader skipped its own proposal", self.seed);
            let read = applied.get_at(&self.ops[waiting.op].key, waiting.zxid);
            let ret = self.now();
            let op = &mut self.ops[waiting.op];
            op.ret = Some(ret);
            match &mut op.kind {
                Kind::Write(value) => self.acknowledged.push(value.clone()),
                Kind::Read(seen) => *seen = read,
            }
            let client = &mut self.clients[c];
            client.seen = client.seen.max(waiting.zxid.as_u64());
            client.waiting = None;
        }
    }

    /// Invariants after every step: one leader per epoch; applied histories agree
    /// (prefix agreement, the same entry for the same zxid).
    pub fn check_step(&mut self) {
        for (id, member) in &self.members {
            let Some(node) = member.node.as_ref() else { continue };
            let status = node.status();
            if status.role == Role::Leading && status.broadcasting {
                let first = *self.leaders_by_epoch.entry(status.current_epoch).or_insert(*id);
                assert_eq!(
                    first, *id,
                    "seed {}: two leaders in epoch {}",
                    self.seed, status.current_epoch
                );
            }
        }
        self.check_prefix_agreement();
        self.check_commit_quorums();
    }

    /// A random membership change asked of the leader: add an observer, promote,
    /// demote, remove, replace a voter, or a whole new membership. The node refuses
    /// what it must (one change at a time, too many voters removed at once).
    fn reconfig_action(&mut self) {
        let Some(leader) = self.leader() else { return };
        let total = self.total();
        let node = self.members[&leader].node.as_ref().expect("running");
        let (active, pending) = node.membership();
        if pending.is_some() {
            return;
        }
        let mut members = active.members.clone();
        let outside: Vec<ServerId> = (1..=total).filter(|id| !active.is_member(*id)).collect();
        let pick = |rng: &mut Rng, ids: &[ServerId]| {
            (!ids.is_empty()).then(|| ids[rng.below(ids.len() as u64) as usize])
        };
        let voters: Vec<ServerId> = active.voters().collect();
        let observers: Vec<ServerId> = active.observers().collect();
        let member = |id: ServerId, voter| ConfigMember { id, voter, addr: format!("sim{id}") };
        let kind = match self.rng.below(6) {
            0 => {
                let Some(id) = pick(&mut self.rng, &outside) else { return };
                members.push(member(id, false));
                "reconfig: add an observer"
            }
            1 => {
                let Some(id) = pick(&mut self.rng, &observers) else { return };
                members.retain(|m| m.id != id);
                members.push(member(id, true));
                "reconfig: promote"
            }
            2 => {
                let Some(id) = pick(&mut self.rng, &voters) else { return };
                members.retain(|m| m.id != id);
                members.push(member(id, false));
                "reconfig: demote"
            }
            3 => {
                let all: Vec<ServerId> = members.iter().map(|m| m.id).collect();
                let Some(id) = pick(&mut self.rng, &all) else { return };
                members.retain(|m| m.id != id);
                "reconfig: remove"
            }
            4 => {
                let (Some(out), Some(inn)) =
                    (pick(&mut self.rng, &voters), pick(&mut self.rng, &observers))
                else {
                    return;
                };
                members.retain(|m| m.id != out && m.id != inn);
                members.push(member(inn, true));
                "reconfig: replace a voter"
            }
            _ => {
                // New ids join as observers; voters come from the members (the
                // node refuses a voter that has not caught up as an observer: some
                // of these are refused).
                members.clear();
                for id in 1..=total {
                    match self.rng.below(4) {
                        0 | 1 if active.is_member(id) => members.push(member(id, true)),
                        0..=2 => members.push(member(id, false)),
                        _ => {}
                    }
                }
                "reconfig: whole membership"
            }
        };
        if self.damaged_members() > 0 && members.iter().filter(|m| m.voter).count() < 3 {
            // See `repairable`.
            return;
        }
        let node = self.members.get_mut(&leader).expect("leader").node.as_mut().expect("running");
        let voters = members.iter().filter(|m| m.voter).count() as u64;
        match node.propose_config(members) {
            Ok(_) => {
                self.fewest_voters = self.fewest_voters.min(voters);
                self.fault(kind);
            }
            Err(_) => self.fault("reconfig refused"),
        }
        self.drive(leader);
    }

    /// Every commit a leader makes is durable on a majority of the configuration in
    /// force, and while a change commits with it, on a majority of the old
    /// configuration too: every quorum of the old and the new configuration
    /// intersects while the change is in flight. Checked against the disks, not
    /// what the leader believes.
    fn check_commit_quorums(&mut self) {
        let leaders: Vec<(ServerId, Zxid)> = self
            .members
            .iter()
            .filter_map(|(id, m)| {
                let status = m.node.as_ref()?.status();
                (status.role == Role::Leading).then_some((*id, status.committed))
            })
            .collect();
        for (leader, committed) in leaders {
            let before = self.leader_committed.insert(leader, committed).unwrap_or(committed);
            if committed > before {
                self.check_commit_quorum(leader, before, committed);
            }
        }
    }

    fn check_commit_quorum(&self, leader: ServerId, before: Zxid, committed: Zxid) {
        let member = &self.members[&leader];
        let mut history: BTreeMap<Zxid, Bytes> = member.applied.entries.iter().cloned().collect();
        history.extend(member.disk.log.iter().map(|e| (e.zxid, e.data.clone())));
        let mut configs = vec![self.config.membership.clone()];
        configs.extend(
            history
                .range(..=committed)
                .filter_map(|(zxid, data)| config_in(std::iter::once((*zxid, data.clone())))),
        );
        let holds = |id: ServerId, zxid: Zxid| {
            let disk = &self.members[&id].disk;
            disk.purged_to >= zxid || disk.damaged() || disk.log.iter().any(|e| e.zxid == zxid)
        };
        let newest = configs.last().expect("the first configuration");
        let mut required = vec![(newest, committed)];
        if newest.version > before && configs.len() > 1 {
            // The change commits now: its entry (and every commit until it
            // committed) needed a majority of the old configuration and of the new.
            required.push((newest, newest.version));
            required.push((&configs[configs.len() - 2], newest.version));
        }
        for (config, zxid) in required {
            if !config.majority(&|id| holds(id, zxid)) {
                self.dump();
                panic!(
                    "seed {}: leader {leader} committed {committed} (from {before}), but {zxid} \
                     is not on a majority of configuration {} ({:?})",
                    self.seed,
                    config.version,
                    config.voters().collect::<Vec<_>>()
                );
            }
        }
    }

    /// The configuration in force at the stable leader (members outside it take
    /// part in nothing).
    fn in_force(&self, leader: ServerId) -> Membership {
        let node = self.members[&leader].node.as_ref().expect("leader running");
        node.membership().0.clone()
    }

    /// Every member's applied history is a prefix of the longest one. Incremental:
    /// after the last check every history was a prefix of one history, and the first
    /// `checked_len` entries of each are unchanged since, so where both a member's and
    /// the longest's unchanged parts reach, they agree already; only the rest is
    /// compared.
    fn check_prefix_agreement(&mut self) {
        let longest = self
            .members
            .values()
            .max_by_key(|m| m.applied.entries.len())
            .map(|m| &m.applied)
            .expect("members");
        let diverged = self.members.iter().find_map(|(id, member)| {
            let mine = &member.applied;
            let agreed = mine.checked_len.min(longest.checked_len);
            let len = mine.entries.len();
            (longest.entries[agreed..len] != mine.entries[agreed..]).then_some(*id)
        });
        if let Some(id) = diverged {
            self.dump();
            panic!("seed {}: member {id}'s applied history diverged", self.seed);
        }
        for member in self.members.values_mut() {
            member.applied.checked_len = member.applied.entries.len();
        }
    }

    fn dump(&self) {
        for (id, m) in &self.members {
            if let Some(node) = &m.node {
                let (active, pending) = node.membership();
                let show = |c: &Membership| {
                    let voters: Vec<_> = c.voters().collect();
                    let observers: Vec<_> = c.observers().collect();
                    format!("{} voters {voters:?} observers {observers:?}", c.version.as_u64())
                };
                eprintln!("{id}: config {} pending {:?}", show(active), pending.map(show));
            }
            eprintln!(
                "{id}: {:?}\n   applied {:?}\n   log {:?}",
                m.node.as_ref().map(Node::status),
                m.applied.entries.iter().map(|(z, d)| (z.as_u64(), d.clone())).collect::<Vec<_>>(),
                m.disk.log.iter().map(|e| (e.zxid.as_u64(), e.data.clone())).collect::<Vec<_>>()
            );
        }
    }

    /// Ends the faults: everyone up, links healed, messages delivered in order, time
    /// passes; then one more write must commit everywhere (proposed again, with a
    /// new value, if the leader it went to turns out deposed).
    pub fn heal(&mut self) {
        self.healed = true;
        self.cut.clear();
        for id in 1..=self.total() {
            if self.members[&id].node.is_none() {
                self.start(id);
            }
        }
        for attempt in 0..10 {
            for _ in 0..60 {
                self.settle_round();
                if self.stable_leader().is_some() {
                    break;
                }
            }
            let Some(leader) = self.stable_leader() else {
                self.dump();
                panic!("seed {}: no leader all members follow after healing", self.seed);
            };
            let value = format!("w final {attempt}");
            let member = self.members.get_mut(&leader).expect("leader");
            let node = member.node.as_mut().expect("running");
            if let Err(error) = node.propose(value.clone().into()) {
                // A leader a change demoted hands over first.
                assert!(
                    matches!(error, QuorumError::Transferring { .. }),
                    "seed {}: the leader refuses a write: {error}",
                    self.seed
                );
                self.settle_round();
                continue;
            }
            self.drive(leader);
            for _ in 0..5 {
                self.settle_round();
            }
            let config = self.in_force(leader);
            let everywhere =
                self.members.iter().filter(|(id, _)| config.is_member(**id)).all(|(_, m)| {
                    m.applied.entries.last().is_some_and(|(_, data)| data[..] == *value.as_bytes())
                });
            if everywhere {
                self.final_config = Some(config);
                return;
            }
        }
        self.dump();
        panic!("seed {}: the final write does not commit everywhere", self.seed);
    }

    /// Time passes, every message is delivered in order.
    pub fn settle_round(&mut self) {
        self.tick_all();
        let mut budget = 100_000;
        while !self.wire.is_empty() {
            let envelope = self.wire.pop_front().expect("not empty");
            self.deliver(envelope);
            budget -= 1;
            if budget == 0 {
                self.dump();
                let sample: Vec<String> =
                    self.wire.iter().take(8).map(|e| format!("{e:?}")).collect();
                panic!("seed {}: the ensemble does not settle: {sample:#?}", self.seed);
            }
        }
        self.complete_waiting();
        self.check_step();
    }

    /// The leader, once every running member is broadcasting and led by it.
    pub fn stable_leader(&self) -> Option<ServerId> {
        let leader = self.leader()?;
        let config = self.in_force(leader);
        self.members
            .iter()
            .filter(|(id, _)| config.is_member(**id))
            .all(|(id, m)| {
                m.node.as_ref().is_none_or(|n| {
                    let s = n.status();
                    s.broadcasting && (*id == leader || s.role == Role::Following { leader })
                })
            })
            .then_some(leader)
    }

    /// After `heal`: every member applied the final write and every acknowledged
    /// one; returns the agreed history of writes `(zxid, key, value)`.
    pub fn check_final(&self) -> Vec<(u64, String, String)> {
        let config = self.final_config.as_ref().expect("healed");
        for (id, member) in self.members.iter().filter(|(id, _)| config.is_member(**id)) {
            // Every member of the final configuration knows it is in force.
            let node = member.node.as_ref().expect("running after healing");
            let (active, _) = node.membership();
            if active.version != config.version {
                self.dump();
                panic!(
                    "seed {}: member {id} has configuration {} in force, not {}",
                    self.seed, active.version, config.version
                );
            }
            let values: Vec<&[u8]> = member.applied.entries.iter().map(|(_, d)| &d[..]).collect();
            if !values.last().is_some_and(|v| v.starts_with(b"w final ")) {
                self.dump();
                panic!("seed {}: member {id} did not apply the final write", self.seed);
            }
            let written: BTreeSet<&str> = member
                .applied
                .entries
                .iter()
                .filter_map(|(_, d)| match parse(d) {
                    Some(Txn::Write { value, .. }) => Some(value),
                    Some(Txn::Read) | None => None,
                })
                .collect();
            for value in &self.acknowledged {
                if !written.contains(value.as_str()) {
                    self.dump();
                    panic!("seed {}: member {id} lost acknowledged write {value}", self.seed);
                }
            }
        }
        let first = config.members.first().expect("a member").id;
        let reference = &self.members[&first].applied.entries;
        reference
            .iter()
            .filter_map(|(z, d)| match parse(d) {
                Some(Txn::Write { key, value }) => {
                    Some((z.as_u64(), key.to_owned(), value.to_owned()))
                }
                Some(Txn::Read) | None => None,
            })
            .collect()
    }
}
