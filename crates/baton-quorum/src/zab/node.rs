//! [`Node`]: one member's ZAB state machine, and what every role shares: the log
//! tail it has appended, what is committed, and what it has handed out to apply.
//!
//! The roles live beside it: `election` (looking), `leader` and `follower`.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::{
    Epochs, QuorumError, Zxid,
    zab::{
        Entry, Envelope, LogView, Membership, Message, Ready, ServerId, ZabConfig,
        election::{Decision, Election, Vote, vote_message},
        follower::Follower,
        leader::Leader,
        membership::{Configs, decode_config_entry},
    },
};

/// Entries read from the log at once when committed entries must be handed out
/// and are not in memory (after a restart).
const LOAD_ENTRIES_MAX: usize = 1_024;

/// What a member is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Electing a leader.
    Looking,
    /// Following `leader` (in discovery, sync or broadcast: see `NodeStatus`).
    Following { leader: ServerId },
    /// Leading (in discovery, sync or broadcast).
    Leading,
}

/// A snapshot of a node's state, for `/status`, metrics, logs and the simulation's
/// invariant checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: ServerId,
    pub role: Role,
    /// True once the node is in the broadcast phase (a leader: a quorum acked
    /// NEWLEADER; a follower: UPTODATE received). Only then are clients served.
    pub broadcasting: bool,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// Last durable entry (as reported through `advance`).
    pub last_logged: Zxid,
    /// Highest zxid known committed.
    pub committed: Zxid,
    /// Highest zxid handed out in `Ready::committed` (to be applied).
    pub applied: Zxid,
    /// Peer messages dropped because they did not fit (stale, foreign, garbled).
    pub dropped_messages: u64,
    /// The member's disk lost entries it had acknowledged, and it has not yet
    /// taken a leader's history in their place: it is no candidate, its votes and
    /// epoch acknowledgements count for nobody.
    pub damaged: bool,
    /// This member observes: it follows and applies, but never votes or leads.
    pub observer: bool,
    /// The version of the configuration in force (the zxid of its config entry).
    pub config_version: Zxid,
    /// The version of a configuration in flight (in the log, not known committed).
    pub config_pending: Option<Zxid>,
    /// The configuration in force does not name this member: it was removed, and
    /// takes part in nothing until a configuration names it again.
    pub removed: bool,
}

#[derive(Debug)]
pub(crate) enum State {
    Looking(Election),
    Following(Follower),
    Leading(Leader),
}

/// One member's state machine. See the driver's order in [`crate::zab`].
#[derive(Debug)]
pub struct Node {
    pub(crate) config: ZabConfig,
    pub(crate) epochs: Epochs,
    /// Last entry known durable (`advance`).
    pub(crate) last_logged: Zxid,
    /// Last entry handed to `Ready::entries` (durable or about to be).
    pub(crate) last_appended: Zxid,
    pub(crate) committed: Zxid,
    pub(crate) applied: Zxid,
    /// Appended entries not yet handed out to apply, by zxid.
    pub(crate) pending: BTreeMap<Zxid, Bytes>,
    /// Log entries in (applied, unloaded_upto] may be missing from `pending` (they
    /// were logged before a restart): they are read from the log before any later
    /// entry is handed out.
    pub(crate) unloaded_upto: Zxid,
    pub(crate) ready: Ready,
    pub(crate) state: State,
    /// See [`NodeStatus::damaged`]. Cleared once a leader's NEWLEADER is taken: the
    /// log then holds that leader's history, which holds every committed entry.
    pub(crate) damaged: bool,
    /// The configurations of the log: see [`crate::zab::Membership`].
    pub(crate) configs: Configs,
    round: u64,
    dropped: u64,
}

impl Node {
    /// A node starting (or restarting) `Looking`, over its durable state: the
    /// persisted `epochs`, the log seen through `view`, and `applied`, the zxid its
    /// tree is at (everything up to it is committed).
    pub fn new(config: ZabConfig, epochs: Epochs, view: &dyn LogView, applied: Zxid) -> Node {
        Node::recovering(config, epochs, view, applied, false)
    }

    /// As [`Node::new`], for a member that knows whether its disk is `damaged`: it
    /// acknowledged entries its log no longer holds (the log ends before its
    /// durable promise, or a record or snapshot below it failed its check). A
    /// damaged member is no candidate and its votes and epoch acknowledgements
    /// count for nobody until it has taken an established leader's history.
    ///
    /// # Panics
    /// If a damaged member is alone: an ensemble of one has nobody to repair from,
    /// and the driver must decide (refuse to start, or accept the loss) first.
    pub fn recovering(
        config: ZabConfig,
        epochs: Epochs,
        view: &dyn LogView,
        applied: Zxid,
        damaged: bool,
    ) -> Node {
        let mut configs = Configs::new(config.membership.clone());
        // Config entries logged after what the tree holds: the last may be in flight.
        let mut after = applied;
        while let Ok(entries) = view.entries_after(after, LOAD_ENTRIES_MAX) {
            let Some(last) = entries.last() else { break };
            after = last.zxid;
            for entry in &entries {
                if let Some(members) = decode_config_entry(&entry.data) {
                    configs.appended(entry.zxid, members);
                }
            }
        }
        let last_logged = view.last_logged().max(applied);
        let mut node = Node {
            config,
            epochs,
            last_logged,
            last_appended: last_logged,
            committed: applied,
            applied,
            pending: BTreeMap::new(),
            unloaded_upto: last_logged,
            ready: Ready::default(),
            state: State::Looking(
                Election::start(0, Vec::new(), 0, Vote::default(), 1, false, false).0,
            ),
            damaged,
            configs,
            round: 0,
            dropped: 0,
        };
        assert!(
            !(damaged
                && node.is_voter(node.config.id)
                && node.is_quorum(&|id| id == node.config.id)),
            "an ensemble of one cannot be repaired"
        );
        node.become_looking();
        node.emit(Some(view));
        node
    }

    /// One tick of time passed.
    pub fn tick(&mut self, view: &dyn LogView) {
        match &mut self.state {
            State::Looking(election) => {
                let (out, decision) = election.tick();
                self.ready.persisted_messages.extend(out);
                self.decide(decision);
            }
            State::Following(_) => self.follower_tick(),
            State::Leading(_) => self.leader_tick(view),
        }
        self.emit(Some(view));
    }

    /// The leader this member follows, if it follows one.
    fn following(&self) -> Option<ServerId> {
        match &self.state {
            State::Following(follower) => Some(follower.leader),
            _ => None,
        }
    }

    /// The transport could not reach `peer` (its connection was refused or broke: a
    /// process that died, as a rule). A follower of `peer` starts an election at
    /// once instead of waiting `sync_limit_ticks` of silence, as a ZooKeeper follower
    /// does when its leader's socket closes. Only a hint: anything else ignores it,
    /// and a wrong one costs an election, never safety.
    pub fn peer_unreachable(&mut self, peer: ServerId, view: &dyn LogView) {
        if let State::Following(follower) = &self.state
            && follower.leader == peer
        {
            self.become_looking();
            self.emit(Some(view));
        }
    }

    /// A message from a peer (untrusted: anything that does not fit is dropped).
    pub fn step(&mut self, envelope: Envelope, view: &dyn LogView) {
        let Envelope { from, to, message } = envelope;
        // Votes are taken from anyone (see `Election`: views differ while a
        // change spreads), and everything from the leader this member follows: a
        // member whose view is stale learns the configuration from it.
        let vote = matches!(message, Message::Vote { .. });
        let known = self.is_member(from) || vote || self.following() == Some(from);
        if to != self.config.id || from == self.config.id || !known {
            self.drop_message();
            return;
        }
        match message {
            Message::Vote { round, leader, leader_zxid, leader_epoch, looking, damaged } => {
                let vote = Vote { leader, zxid: leader_zxid, epoch: leader_epoch };
                self.on_vote(from, round, vote, looking, damaged);
            }
            Message::FollowerInfo { .. } if self.following().is_some() => {
                // A member that chose this one as leader while it follows another:
                // tell it whom this one follows, so it looks again at once instead
                // of waiting out init_limit_ticks for an answer that never comes.
                let leader = self.following().unwrap_or_default();
                let mine =
                    Vote { leader, zxid: self.last_appended, epoch: self.epochs.current_epoch };
                self.send(from, vote_message(self.round, mine, false, false));
            }
            message => match self.state {
                State::Looking(_) => self.drop_message(),
                State::Following(_) => self.follower_step(from, message, view),
                State::Leading(_) => self.leader_step(from, message, view),
            },
        }
        self.emit(Some(view));
    }

    /// A client write, on the leader in broadcast: its zxid (the entry is in the
    /// next `Ready`). Errors: not the leader, not broadcasting, too many in flight,
    /// counter exhausted (the leader then steps down so a new epoch is elected).
    pub fn propose(&mut self, data: Bytes) -> Result<Zxid, QuorumError> {
        self.propose_with(|_| data)
    }

    /// As [`Node::propose`], for data that holds its own zxid: `data` is called with
    /// the zxid the entry gets (only when the proposal is taken).
    pub fn propose_with(&mut self, data: impl FnOnce(Zxid) -> Bytes) -> Result<Zxid, QuorumError> {
        match &self.state {
            State::Leading(_) => self.leader_propose(data),
            State::Following(follower) => {
                Err(QuorumError::NotLeader { leader: Some(follower.leader) })
            }
            State::Looking(_) => Err(QuorumError::NotLeader { leader: None }),
        }
    }

    /// What the driver must do now (and the node forgets it: the driver must do it).
    pub fn ready(&mut self) -> Ready {
        std::mem::take(&mut self.ready)
    }

    /// Everything up to `persisted` is durable (step 5 of the driver's order).
    pub fn advance(&mut self, persisted: Zxid) {
        self.last_logged = self.last_logged.max(persisted).min(self.last_appended);
        if let State::Leading(_) = self.state {
            self.leader_maybe_commit();
        }
        self.emit(None);
    }

    pub fn status(&self) -> NodeStatus {
        let (role, broadcasting) = match &self.state {
            State::Looking(_) => (Role::Looking, false),
            State::Following(f) => (Role::Following { leader: f.leader }, f.broadcasting()),
            State::Leading(l) => (Role::Leading, l.broadcasting()),
        };
        NodeStatus {
            id: self.config.id,
            role,
            broadcasting,
            accepted_epoch: self.epochs.accepted_epoch,
            current_epoch: self.epochs.current_epoch,
            last_logged: self.last_logged,
            committed: self.committed,
            applied: self.applied,
            dropped_messages: self.dropped,
            damaged: self.damaged,
            observer: !self.is_voter(self.config.id),
            config_version: self.configs.active(self.committed).version,
            config_pending: self.configs.pending(self.committed).map(|c| c.version),
            removed: !self.is_member(self.config.id),
        }
    }

    /// The configuration in force, and the one in flight if any.
    pub fn membership(&self) -> (&Membership, Option<&Membership>) {
        (self.configs.active(self.committed), self.configs.pending(self.committed))
    }

    /// `id` votes in a configuration of this member's view.
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.configs.is_voter(self.committed, id)
    }

    /// `id` is a member (voter or observer) of a configuration of this member's view.
    pub fn is_member(&self, id: ServerId) -> bool {
        self.configs.is_member(self.committed, id)
    }

    /// The ids for which `has` holds are a quorum: a majority of the voters of every
    /// configuration in this member's view.
    pub(crate) fn is_quorum(&self, has: &dyn Fn(ServerId) -> bool) -> bool {
        self.configs.is_quorum(self.committed, has)
    }

    pub(crate) fn drop_message(&mut self) {
        self.dropped += 1;
    }

    /// Queues a message that leaves only once this `Ready` is durable.
    pub(crate) fn send(&mut self, to: ServerId, message: Message) {
        self.ready.persisted_messages.push(Envelope { from: self.config.id, to, message });
    }

    /// Queues a message that may leave before this `Ready` is persisted: it promises
    /// nothing about this member's disk. A peer that already has messages waiting
    /// for the flush gets this one after them (each link stays in order).
    pub(crate) fn send_now(&mut self, to: ServerId, message: Message) {
        let envelope = Envelope { from: self.config.id, to, message };
        if self.ready.persisted_messages.iter().any(|e| e.to == to) {
            self.ready.persisted_messages.push(envelope);
        } else {
            self.ready.messages.push(envelope);
        }
    }

    pub(crate) fn persist_epochs(&mut self) {
        self.ready.epochs = Some(self.epochs);
    }

    /// Appends an entry (it goes to the log with the next `Ready`).
    pub(crate) fn append(&mut self, entry: Entry) {
        assert!(entry.zxid > self.last_appended, "entries are appended in zxid order");
        self.last_appended = entry.zxid;
        if let Some(members) = decode_config_entry(&entry.data) {
            self.configs.appended(entry.zxid, members);
        }
        self.pending.insert(entry.zxid, entry.data.clone());
        self.ready.entries.push(entry);
    }

    /// Drops every entry after `zxid` (a TRUNC); the log then ends at the last
    /// entry at or before it.
    pub(crate) fn truncate(&mut self, zxid: Zxid, view: &dyn LogView) {
        assert!(zxid >= self.applied, "an applied entry cannot be truncated");
        self.ready.entries.retain(|e| e.zxid <= zxid);
        let after = self.pending.split_off(&Zxid::from_u64(zxid.as_u64().saturating_add(1)));
        drop(after);
        let durable = view.last_at_or_before(zxid.min(self.last_logged)).unwrap_or(self.applied);
        let in_memory = self.pending.last_key_value().map_or(Zxid::ZERO, |(z, _)| *z);
        let end = durable.max(in_memory).max(self.applied).min(zxid);
        self.last_appended = self.last_appended.min(end);
        self.last_logged = self.last_logged.min(end);
        self.unloaded_upto = self.unloaded_upto.min(zxid);
        self.committed = self.committed.min(zxid);
        self.configs.truncated(zxid);
        let floor = self.ready.truncate_after.map_or(zxid, |t| t.min(zxid));
        self.ready.truncate_after = Some(floor);
    }

    /// Marks everything up to `zxid` committed.
    pub(crate) fn commit(&mut self, zxid: Zxid) {
        self.committed = self.committed.max(zxid);
        self.configs.committed(self.committed);
    }

    /// Hands out, in order, the committed entries that are durable and not yet
    /// handed out. Reads the log (when `view` is given) for entries not in memory.
    fn emit(&mut self, view: Option<&dyn LogView>) {
        loop {
            let limit = self.committed.min(self.last_logged);
            if self.applied >= limit {
                return;
            }
            let first = self.pending.first_key_value().map(|(zxid, _)| *zxid);
            let loaded_next = first.filter(|zxid| *zxid <= self.unloaded_upto);
            if self.applied < self.unloaded_upto && loaded_next.is_none() {
                let Some(view) = view else { return };
                let Ok(loaded) = view.entries_after(self.applied, LOAD_ENTRIES_MAX) else {
                    return;
                };
                let mut any = false;
                for entry in loaded.into_iter().filter(|e| e.zxid <= self.unloaded_upto) {
                    self.pending.insert(entry.zxid, entry.data);
                    any = true;
                }
                if !any {
                    // The log holds nothing more up to it.
                    self.unloaded_upto = self.applied;
                }
                continue;
            }
            match first {
                Some(zxid) if zxid <= limit => {
                    let data = self.pending.remove(&zxid).unwrap_or_default();
                    assert!(zxid > self.applied, "applied zxids only grow");
                    self.applied = zxid;
                    self.ready.committed.push(Entry { zxid, data });
                }
                _ => return,
            }
        }
    }

    /// Starts a new election round.
    pub(crate) fn become_looking(&mut self) {
        let own = Vote {
            leader: self.config.id,
            zxid: self.last_appended,
            epoch: self.epochs.current_epoch,
        };
        self.look_for(own);
    }

    /// Starts a new election round voting for `nominee` (this member, or the
    /// successor a leader handing over named), and never for anyone whose history
    /// is older.
    pub(crate) fn look_for(&mut self, nominee: Vote) {
        self.round += 1;
        let me = self.config.id;
        // A voter of either side of a change in flight may be elected (it may hold
        // the newest history); one the change removes hands over once it commits.
        let candidate = self.is_voter(me) && !self.damaged;
        let voters: Vec<Vec<ServerId>> =
            self.configs.view(self.committed).map(|c| c.voters().collect()).collect();
        let (election, out) = Election::start(
            me,
            voters,
            self.round,
            nominee,
            self.config.election_resend_ticks,
            candidate,
            !self.damaged,
        );
        self.state = State::Looking(election);
        self.ready.persisted_messages.extend(out);
        if candidate && self.is_quorum(&|id| id == me) {
            // An ensemble of one: nobody to ask, nothing to wait for.
            self.decide(Decision::Lead);
        }
    }

    fn on_vote(&mut self, from: ServerId, round: u64, vote: Vote, looking: bool, damaged: bool) {
        let decision = match &mut self.state {
            State::Looking(election) => {
                let (out, decision) = election.on_vote(from, round, vote, looking, damaged);
                self.round = self.round.max(election.round());
                self.ready.persisted_messages.extend(out);
                decision
            }
            // The member this one chose as leader, in discovery still, says it
            // follows someone else: that choice was wrong; look again.
            State::Following(f)
                if from == f.leader && vote.leader != f.leader && !f.broadcasting() =>
            {
                // Join the election it is in (its round), rather than start one
                // that resets everyone's votes.
                if looking && round >= self.round {
                    self.round = round.saturating_sub(1);
                }
                self.become_looking();
                Decision::Undecided
            }
            // Settled: tell a looking member who leads, so it joins instead of
            // electing on its own.
            State::Following(_) | State::Leading(_) if looking => {
                let leader = match &self.state {
                    State::Following(f) => f.leader,
                    _ => self.config.id,
                };
                let mine =
                    Vote { leader, zxid: self.last_appended, epoch: self.epochs.current_epoch };
                self.send(from, vote_message(round.max(self.round), mine, false, false));
                Decision::Undecided
            }
            State::Following(_) | State::Leading(_) => Decision::Undecided,
        };
        self.decide(decision);
    }

    fn decide(&mut self, decision: Decision) {
        match decision {
            Decision::Undecided => {}
            Decision::Lead => self.become_leader(),
            Decision::Follow(leader) => self.become_follower(leader),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::{ViewError, ZabConfig};

    /// An empty durable log.
    struct Empty;

    impl LogView for Empty {
        fn last_logged(&self) -> Zxid {
            Zxid::ZERO
        }
        fn entries_after(&self, _: Zxid, _: usize) -> Result<Vec<Entry>, ViewError> {
            Ok(Vec::new())
        }
        fn last_at_or_before(&self, _: Zxid) -> Result<Zxid, ViewError> {
            Ok(Zxid::ZERO)
        }
        fn snapshot(&self) -> Result<(Zxid, Bytes), ViewError> {
            Err(ViewError::Storage("no snapshot here".into()))
        }
    }

    fn config(id: ServerId, members: &[ServerId]) -> ZabConfig {
        ZabConfig {
            id,
            membership: ZabConfig::initial(members, &[]),
            sync_limit_ticks: 5,
            init_limit_ticks: 10,
            heartbeat_ticks: 1,
            election_resend_ticks: 1,
            inflight_proposals_max: 10,
            diff_entries_max: 10,
        }
    }

    fn envelope(from: ServerId, to: ServerId, message: Message) -> Envelope {
        Envelope { from, to, message }
    }

    /// Runs members 1 and 2 of three (3 is down) into broadcast, delivering
    /// everything in order; returns (leader, follower).
    fn established() -> (Node, Node) {
        let mut nodes: Vec<Node> = [1, 2]
            .iter()
            .map(|id| Node::new(config(*id, &[1, 2, 3]), Epochs::default(), &Empty, Zxid::ZERO))
            .collect();
        for _ in 0..50 {
            for node in &mut nodes {
                node.tick(&Empty);
            }
            for _ in 0..20 {
                for from in 0..2 {
                    let ready = nodes[from].ready();
                    let outgoing = ready.messages.into_iter().chain(ready.persisted_messages);
                    for envelope in outgoing.filter(|e| e.to != 3) {
                        nodes[1 - from].step(envelope, &Empty);
                    }
                    if let Some(last) = ready.entries.last() {
                        nodes[from].advance(last.zxid);
                    }
                }
            }
            if nodes.iter().all(|n| n.status().broadcasting) {
                let follower = nodes.remove(0);
                let leader = nodes.remove(0);
                return (leader, follower);
            }
        }
        panic!("no leader: {:?}", nodes.iter().map(Node::status).collect::<Vec<_>>());
    }

    #[test]
    fn an_ensemble_of_one_leads_at_once_and_commits_on_its_own_flush() {
        let mut node = Node::new(config(7, &[7]), Epochs::default(), &Empty, Zxid::ZERO);
        let status = node.status();
        assert_eq!((status.role, status.broadcasting), (Role::Leading, true));
        let ready = node.ready();
        assert_eq!(ready.epochs, Some(Epochs { accepted_epoch: 1, current_epoch: 1 }));
        assert!(ready.messages.is_empty() && ready.persisted_messages.is_empty());
        let zxid = node.propose(Bytes::from_static(b"a")).unwrap();
        assert_eq!(zxid, Zxid::new(1, 1));
        let ready = node.ready();
        assert_eq!(ready.entries.len(), 1);
        assert!(ready.committed.is_empty(), "nothing commits before its flush");
        node.advance(zxid);
        let ready = node.ready();
        assert_eq!(ready.committed.iter().map(|e| e.zxid).collect::<Vec<_>>(), [zxid]);
    }

    #[test]
    fn a_leader_sends_proposals_before_its_flush_and_a_follower_acks_after() {
        let (mut leader, mut follower) = established();
        assert_eq!(leader.status().role, Role::Leading, "equal histories: the higher id leads");
        let zxid = leader.propose(Bytes::from_static(b"x")).unwrap();
        let ready = leader.ready();
        assert_eq!(ready.entries.len(), 1);
        assert!(ready.persisted_messages.is_empty(), "{ready:?}");
        let proposal = ready.messages.into_iter().find(|e| e.to == 1).expect("a proposal to 1");
        assert!(matches!(proposal.message, Message::Propose { .. }));
        follower.step(proposal, &Empty);
        let ready = follower.ready();
        assert!(ready.messages.is_empty(), "an ACK never leaves before the flush: {ready:?}");
        assert_eq!(ready.entries.len(), 1);
        assert_eq!(
            ready.persisted_messages,
            [envelope(1, 2, Message::Ack { zxid })],
            "the ACK waits for the flush"
        );
    }

    #[test]
    fn membership_changes_are_refused_with_their_reason_and_change_nothing() {
        use crate::zab::Member;
        let (mut leader, _) = established();
        let member = |id, voter| Member { id, voter, addr: format!("h{id}:1") };
        let now = |node: &Node| node.membership().0.version;
        let before = now(&leader);
        // A majority of the voters removed at once.
        let error = leader.propose_config(vec![member(1, true)]).unwrap_err();
        assert!(error.to_string().contains("keeps 1 of the 3 voters"), "{error}");
        // A new voter that is not an observer following the leader.
        let error = leader
            .propose_config(vec![
                member(1, true),
                member(2, true),
                member(3, true),
                member(4, true),
            ])
            .unwrap_err();
        assert!(error.to_string().contains("server 4 must join as an observer"), "{error}");
        // No voter at all, or an id twice.
        assert!(leader.propose_config(vec![member(1, false)]).is_err());
        assert!(leader.propose_config(vec![member(2, true), member(2, true)]).is_err());
        assert_eq!(now(&leader), before, "nothing changed");
        // One change at a time.
        let observers = vec![member(1, true), member(2, true), member(3, true), member(4, false)];
        let zxid = leader.propose_config(observers.clone()).expect("adding an observer");
        assert_eq!(leader.membership().1.map(|c| c.version), Some(zxid), "in flight");
        let error = leader.propose_config(observers).unwrap_err();
        assert_eq!(error, QuorumError::ConfigInFlight { pending: zxid });
    }

    #[test]
    fn a_link_with_messages_waiting_for_the_flush_keeps_its_order() {
        let mut node = Node::new(config(1, &[1, 2, 3]), Epochs::default(), &Empty, Zxid::ZERO);
        let _ = node.ready();
        node.send(2, Message::LeaderInfo { epoch: 4 });
        node.send_now(2, Message::Ping { epoch: 4, committed: Zxid::ZERO });
        node.send_now(3, Message::Ping { epoch: 4, committed: Zxid::ZERO });
        let ready = node.ready();
        assert_eq!(
            ready.messages,
            [envelope(1, 3, Message::Ping { epoch: 4, committed: Zxid::ZERO })]
        );
        assert_eq!(
            ready.persisted_messages,
            [
                envelope(1, 2, Message::LeaderInfo { epoch: 4 }),
                envelope(1, 2, Message::Ping { epoch: 4, committed: Zxid::ZERO }),
            ]
        );
    }
}
