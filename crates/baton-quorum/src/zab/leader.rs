//! The leader: discovery (a new epoch agreed by a quorum), synchronization of each
//! follower to its history, establishment (a quorum acked NEWLEADER: its whole
//! history is committed), broadcast (pipelined proposals, commit on a quorum of
//! ACKs), pings, and stepping down when it cannot hear a quorum.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::{
    QuorumError, Zxid,
    zab::{
        Entry, LogView, Member, Membership, Message, ServerId, ViewError,
        election::{Vote, vote_message},
        membership::encode_config_entry,
        node::{Node, State},
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Gathering FollowerInfo from a quorum to pick the new epoch.
    Discovery,
    /// The epoch is chosen; followers are acknowledging it and being synced.
    Sync,
    /// A quorum acked NewLeader: proposing.
    Broadcast,
}

#[derive(Debug)]
pub(crate) struct Leader {
    phase: Phase,
    /// The new epoch, once chosen.
    epoch: u32,
    /// FollowerInfo (accepted epoch) of each member heard in discovery, self included.
    infos: BTreeMap<ServerId, u32>,
    /// AckEpochs (with the follower's last zxid) held until a quorum acked the
    /// epoch: only a quorum's acks, each checked not to be ahead of this leader,
    /// prove this leader's history is the one to sync everyone to. Syncing earlier
    /// would let a follower adopt an epoch whose leader then steps down (and vote
    /// with it, over members holding newer committed entries).
    epoch_acks: BTreeMap<ServerId, Zxid>,
    /// AckEpochs of damaged members (their logs lost entries they acknowledged):
    /// they prove nothing about this leader's history and never count toward the
    /// quorum; they are synced once a quorum of others acked.
    damaged_acks: BTreeMap<ServerId, Zxid>,
    /// A quorum acked the epoch: later AckEpochs are synced at once.
    epoch_quorum: bool,
    /// Followers whose AckEpoch came and who were sent the history: they get every
    /// proposal, commit and ping from then on (after their sync, in order).
    syncing: BTreeSet<ServerId>,
    /// The history end each syncing follower was sent in NewLeader.
    history_sent: BTreeMap<ServerId, Zxid>,
    /// Followers that acked NewLeader: they get proposals and commits.
    synced: BTreeSet<ServerId>,
    /// Highest zxid each synced follower has durably logged (cumulative acks).
    acked: BTreeMap<ServerId, Zxid>,
    /// Followers to sync by SNAP whose snapshot the view is still preparing, with
    /// the zxid their log ends at: tried again every tick.
    awaiting_snapshot: BTreeMap<ServerId, Zxid>,
    /// Tick at which each follower was last heard from.
    heard: BTreeMap<ServerId, u64>,
    ticks: u64,
    /// Handing leadership over to this member, since this tick: nothing new is
    /// proposed; once it has logged everything, the followers are told to elect it.
    transfer: Option<(ServerId, u64)>,
    /// Linearizable reads (ReadIndex): the last probe round sent, the highest round
    /// each follower answered, and the reads waiting for a quorum to answer their
    /// round: (asker, or None for this member; its number; the commit point when
    /// the read arrived; its round).
    read_round: u64,
    read_acks: BTreeMap<ServerId, u64>,
    reads: Vec<(Option<ServerId>, u64, Zxid, u64)>,
}

impl Leader {
    pub(crate) fn broadcasting(&self) -> bool {
        self.phase == Phase::Broadcast
    }
}

impl Node {
    pub(crate) fn become_leader(&mut self) {
        let infos = BTreeMap::from([(self.config.id, self.epochs.accepted_epoch)]);
        self.state = State::Leading(Leader {
            phase: Phase::Discovery,
            epoch: 0,
            infos,
            epoch_acks: BTreeMap::new(),
            damaged_acks: BTreeMap::new(),
            epoch_quorum: false,
            syncing: BTreeSet::new(),
            history_sent: BTreeMap::new(),
            synced: BTreeSet::new(),
            acked: BTreeMap::new(),
            awaiting_snapshot: BTreeMap::new(),
            heard: BTreeMap::new(),
            ticks: 0,
            transfer: None,
            read_round: 0,
            read_acks: BTreeMap::new(),
            reads: Vec::new(),
        });
        self.maybe_choose_epoch();
    }

    fn leading(&self) -> &Leader {
        match &self.state {
            State::Leading(leader) => leader,
            _ => unreachable!("called in the leader role only"),
        }
    }

    fn leader(&mut self) -> &mut Leader {
        match &mut self.state {
            State::Leading(leader) => leader,
            _ => unreachable!("called in the leader role only"),
        }
    }

    pub(crate) fn leader_tick(&mut self, view: &dyn LogView) {
        let awaiting = std::mem::take(&mut self.leader().awaiting_snapshot);
        for (follower, theirs) in awaiting {
            if self.leader().syncing.contains(&follower) {
                self.sync_follower(follower, theirs, view);
            }
        }
        let (init_limit, sync_limit) =
            (u64::from(self.config.init_limit_ticks), u64::from(self.config.sync_limit_ticks));
        let heartbeat = u64::from(self.config.heartbeat_ticks.max(1));
        let leader = self.leader();
        leader.ticks += 1;
        let now = leader.ticks;
        if leader.phase != Phase::Broadcast {
            if now > init_limit {
                self.become_looking();
            }
            return;
        }
        if let Some((_, since)) = self.leading().transfer
            && now - since > init_limit
        {
            // The successor never caught up: keep leading.
            self.leader().transfer = None;
        }
        let (me, leader) = (self.config.id, self.leading());
        let alive =
            |id| id == me || leader.heard.get(&id).is_some_and(|at| now - *at <= sync_limit);
        let epoch = leader.epoch;
        if !self.is_quorum(&alive) {
            // Cannot hear a quorum: another leader may be elected; stop at once.
            self.become_looking();
            return;
        }
        self.leader_config_committed();
        if !matches!(self.state, State::Leading(_)) {
            return;
        }
        let resend = u64::from(self.config.election_resend_ticks.max(1));
        if now.is_multiple_of(resend * 4) {
            // Members of the configuration not heard from lately (down, or their
            // view too stale to find this leader): tell them who leads.
            let me = self.config.id;
            let heard = &self.leading().heard;
            let silent = |id: &ServerId| heard.get(id).is_none_or(|at| now - *at > resend * 4);
            let absent: Vec<ServerId> = self
                .configs
                .view(self.committed)
                .flat_map(|c| c.members.iter().map(|m| m.id))
                .filter(|id| *id != me && silent(id))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mine =
                Vote { leader: me, zxid: self.last_appended, epoch: self.epochs.current_epoch };
            for id in absent {
                self.send_now(id, vote_message(0, mine, false, false));
            }
        }
        if now.is_multiple_of(heartbeat) {
            let committed = self.committed;
            let followers: Vec<ServerId> = self.leader().syncing.iter().copied().collect();
            for follower in followers {
                self.send_now(follower, Message::Ping { epoch, committed });
            }
        }
    }

    pub(crate) fn leader_step(&mut self, from: ServerId, message: Message, view: &dyn LogView) {
        let leader = self.leader();
        let now = leader.ticks;
        leader.heard.insert(from, now);
        let (phase, epoch) = (leader.phase, leader.epoch);
        match message {
            Message::FollowerInfo { accepted_epoch, .. }
                if phase != Phase::Discovery && accepted_epoch > epoch =>
            {
                // A newer epoch was proposed since this one: this leader may have
                // lost its quorum to it. Step down and let the election decide.
                self.become_looking();
            }
            Message::FollowerInfo { accepted_epoch, .. } => {
                // A (re)joining follower starts over.
                let leader = self.leader();
                leader.epoch_acks.remove(&from);
                leader.damaged_acks.remove(&from);
                leader.awaiting_snapshot.remove(&from);
                leader.syncing.remove(&from);
                leader.history_sent.remove(&from);
                leader.synced.remove(&from);
                leader.acked.remove(&from);
                if phase == Phase::Discovery {
                    leader.infos.insert(from, accepted_epoch);
                    self.maybe_choose_epoch();
                } else {
                    self.send(from, Message::LeaderInfo { epoch });
                }
            }
            Message::AckEpoch { current_epoch, last_zxid, damaged }
                if phase != Phase::Discovery =>
            {
                // An observer's history proves nothing either: it can never lead. A
                // voter a change in flight demotes or removes counts like any voter,
                // unless its history is newer than this leader's: it cannot lead in
                // the new configuration, so it is left out of the quorum (which the
                // others' checked histories then make, and any majority of them
                // meets every commit quorum) instead of stopping every leader.
                let newer =
                    (current_epoch, last_zxid) > (self.epochs.current_epoch, self.last_appended);
                let leaving = !self.configs.last().is_voter(from);
                let damaged = damaged || !self.is_voter(from) || (leaving && newer);
                if !damaged
                    && (current_epoch, last_zxid) > (self.epochs.current_epoch, self.last_appended)
                {
                    // A follower has a newer history: this server must not lead.
                    // Nominate that follower (members still following this one in
                    // discovery then look again and elect it, instead of following
                    // this one back until their initLimit).
                    if self.configs.last().is_voter(from) {
                        self.look_for(Vote { leader: from, zxid: last_zxid, epoch: current_epoch });
                    } else {
                        // (Not one a change in flight keeps as a voter.)
                        self.become_looking();
                    }
                    return;
                }
                let leader = self.leader();
                if leader.syncing.contains(&from) {
                    return;
                }
                if damaged {
                    // What a damaged log ends at is only what survived: it may be
                    // "newer" than this leader yet lack committed entries. Sync it
                    // to this history once others proved it the one to keep.
                    leader.damaged_acks.insert(from, last_zxid);
                } else {
                    leader.epoch_acks.insert(from, last_zxid);
                }
                let me = self.config.id;
                let leading = self.leading();
                let acked = |id| id == me || leading.epoch_acks.contains_key(&id);
                if !leading.epoch_quorum && !self.is_quorum(&acked) {
                    return;
                }
                let leader = self.leader();
                leader.epoch_quorum = true;
                let mut acks = std::mem::take(&mut leader.epoch_acks);
                acks.append(&mut leader.damaged_acks);
                for (follower, last_zxid) in acks {
                    self.leader().syncing.insert(follower);
                    self.sync_follower(follower, last_zxid, view);
                }
                self.maybe_set_current_epoch();
            }
            Message::AckNewLeader { epoch: e, last_zxid }
                if e == epoch && phase != Phase::Discovery =>
            {
                let sent = self.leader().history_sent.get(&from).copied();
                if let Some(sent) = sent
                    && last_zxid == sent
                    && self.leader().synced.insert(from)
                {
                    // The follower holds (durably) exactly what it was sent.
                    self.leader().acked.insert(from, sent);
                    if phase == Phase::Broadcast {
                        let committed = self.committed;
                        self.send(from, Message::UpToDate { epoch, committed });
                    } else {
                        self.maybe_establish();
                    }
                }
            }
            Message::Ack { zxid } if self.leader().synced.contains(&from) => {
                let acked = self.leader().acked.entry(from).or_default();
                *acked = (*acked).max(zxid);
                self.leader_maybe_commit();
                self.leader_maybe_hand_over();
            }
            Message::ReadIndex { ctx } if phase == Phase::Broadcast => {
                if self.leader().syncing.contains(&from) {
                    self.leader_read(Some(from), ctx);
                } else {
                    self.drop_message();
                }
            }
            Message::ReadProbeAck { epoch: e, round } if e == epoch => {
                let acked = self.leader().read_acks.entry(from).or_default();
                *acked = (*acked).max(round);
                self.leader_confirm_reads();
            }
            Message::PingAck { epoch: e, last_zxid } if e == epoch => {
                if self.leader().synced.contains(&from) {
                    let acked = self.leader().acked.entry(from).or_default();
                    *acked = (*acked).max(last_zxid);
                    self.leader_maybe_commit();
                    self.leader_maybe_hand_over();
                }
            }
            _ => self.drop_message(),
        }
    }

    /// With a quorum's FollowerInfo: the new epoch is above every accepted one.
    fn maybe_choose_epoch(&mut self) {
        let me = self.config.id;
        let infos = &self.leading().infos;
        let heard = self.is_quorum(&|id| infos.contains_key(&id));
        let leader = self.leader();
        if leader.phase != Phase::Discovery || !heard {
            return;
        }
        let highest = leader.infos.values().copied().max().unwrap_or(0);
        let Some(epoch) = highest.checked_add(1) else {
            self.become_looking();
            return;
        };
        leader.epoch = epoch;
        leader.phase = Phase::Sync;
        let followers: Vec<ServerId> =
            leader.infos.keys().copied().filter(|id| *id != me).collect();
        self.epochs.accepted_epoch = epoch;
        self.persist_epochs();
        for follower in followers {
            self.send(follower, Message::LeaderInfo { epoch });
        }
        // An ensemble of one is its own quorum of acknowledgements.
        self.maybe_set_current_epoch();
    }

    /// With a quorum acking the epoch, the leader adopts it as its current epoch.
    fn maybe_set_current_epoch(&mut self) {
        let (me, epoch) = (self.config.id, self.leading().epoch);
        let syncing = &self.leading().syncing;
        let quorum = self.is_quorum(&|id| id == me || syncing.contains(&id));
        if self.epochs.current_epoch != epoch && quorum {
            self.epochs.current_epoch = epoch;
            self.persist_epochs();
            self.maybe_establish();
        }
    }

    /// A quorum (self included) holds the leader's history: commit all of it, start
    /// broadcast.
    fn maybe_establish(&mut self) {
        let (me, epoch) = (self.config.id, self.leading().epoch);
        let synced = &self.leading().synced;
        let quorum = self.is_quorum(&|id| id == me || synced.contains(&id));
        let leader = self.leader();
        if leader.phase != Phase::Sync || !quorum {
            return;
        }
        if self.epochs.current_epoch != epoch {
            return;
        }
        self.leader().phase = Phase::Broadcast;
        let history = self.last_appended;
        self.commit(history);
        let followers: Vec<ServerId> = self.leader().synced.iter().copied().collect();
        for follower in followers {
            self.send(follower, Message::UpToDate { epoch, committed: history });
        }
    }

    /// Brings a follower whose log ends at `theirs` to this leader's history.
    fn sync_follower(&mut self, to: ServerId, theirs: Zxid, view: &dyn LogView) {
        let ours = self.last_appended;
        let epoch = self.leader().epoch;
        // A snapshot is of this leader's applied state: it helps only a follower
        // behind that (after a restart a leader may have applied less than its
        // followers); one at or past it gets every entry it lacks as a DIFF.
        let diff_max = |prev: Zxid| {
            if self.applied > prev { self.config.diff_entries_max } else { usize::MAX }
        };
        let plan = match contains(view, theirs) {
            Ok(true) if theirs <= ours => {
                diff_after(view, theirs, ours, diff_max(theirs)).map(|entries| (theirs, entries))
            }
            // The follower has entries this leader does not. They are all of its last
            // epoch e (an older leader's uncommitted proposals): both logs hold a
            // prefix of e's one sequence, so this leader's last entry at or before
            // theirs is common to both. Truncate there and send the rest. It is never
            // below what the follower applied: applied entries are committed, and a
            // leader holds every committed entry.
            Ok(_) => view
                .last_at_or_before(theirs.min(ours))
                .and_then(|floor| {
                    diff_after(view, floor, ours, diff_max(floor)).map(|entries| (floor, entries))
                })
                .inspect(|(floor, _)| self.send(to, Message::Trunc { epoch, zxid: *floor })),
            Err(error) => Err(error),
        };
        match plan {
            Ok((prev, entries)) => self.send(to, Message::Diff { epoch, prev, entries }),
            Err(_) => {
                // Too far behind (or purged): the whole state.
                let (zxid, data) = match view.snapshot() {
                    // A snapshot of a state this leader does not know committed (one
                    // prepared before a restart, say): the configuration it would
                    // send along could be older than the snapshot's. Another comes.
                    Ok((zxid, _)) if zxid > self.committed => {
                        self.leader().awaiting_snapshot.insert(to, theirs);
                        return;
                    }
                    Ok(snapshot) => snapshot,
                    Err(ViewError::Unavailable(_)) => {
                        // Being prepared: this follower waits (still syncing),
                        // and the next tick tries again.
                        self.leader().awaiting_snapshot.insert(to, theirs);
                        return;
                    }
                    Err(_) => {
                        self.forget_sync(to);
                        return;
                    }
                };
                let config = Some(self.configs.active(self.committed).clone());
                self.send(to, Message::Snap { epoch, zxid, data, config });
                match diff_after(view, zxid, ours, usize::MAX) {
                    Ok(entries) => self.send(to, Message::Diff { epoch, prev: zxid, entries }),
                    Err(_) => {
                        self.forget_sync(to);
                        return;
                    }
                }
            }
        }
        // Entries appended but not yet durable here are not in the view: send them
        // as the proposals they are.
        let unlogged: Vec<Entry> = self
            .pending
            .range(Zxid::from_u64(self.last_logged.as_u64().saturating_add(1))..)
            .map(|(zxid, data)| Entry { zxid: *zxid, data: data.clone() })
            .collect();
        let logged_end = self.last_logged.min(ours);
        let last_zxid = unlogged.last().map_or(logged_end, |e| e.zxid);
        if !unlogged.is_empty() {
            self.send(to, Message::Diff { epoch, prev: logged_end, entries: unlogged });
        }
        self.leader().history_sent.insert(to, last_zxid);
        self.send(to, Message::NewLeader { epoch, last_zxid });
    }

    /// The follower could not be synced now; it will ask again (FollowerInfo).
    fn forget_sync(&mut self, follower: ServerId) {
        self.leader().syncing.remove(&follower);
    }

    pub(crate) fn leader_propose(
        &mut self,
        data: impl FnOnce(Zxid) -> Bytes,
    ) -> Result<Zxid, QuorumError> {
        let max = self.config.inflight_proposals_max;
        let leader = self.leader();
        if leader.phase != Phase::Broadcast {
            return Err(QuorumError::NotBroadcasting);
        }
        if let Some((to, _)) = leader.transfer {
            return Err(QuorumError::Transferring { to });
        }
        let epoch = leader.epoch;
        let inflight = self.pending.range(Zxid::from_u64(self.committed.as_u64() + 1)..).count();
        if inflight >= max {
            return Err(QuorumError::TooManyInflight { max });
        }
        let zxid = if self.last_appended.epoch() == epoch {
            self.last_appended.next()
        } else {
            Some(Zxid::new(epoch, 1))
        };
        let Some(zxid) = zxid else {
            let last = self.last_appended;
            self.become_looking();
            return Err(QuorumError::CounterExhausted { epoch, last });
        };
        let entry = Entry { zxid, data: data(zxid) };
        self.append(entry.clone());
        let followers: Vec<ServerId> = self.leader().syncing.iter().copied().collect();
        for follower in followers {
            self.send_now(follower, Message::Propose { entry: entry.clone() });
        }
        Ok(zxid)
    }

    /// Commits up to the highest zxid of this epoch that a quorum has durably logged.
    pub(crate) fn leader_maybe_commit(&mut self) {
        let (me, own) = (self.config.id, self.last_logged);
        let leader = self.leading();
        if leader.phase != Phase::Broadcast {
            return;
        }
        let epoch = leader.epoch;
        let logged = |id| {
            if id == me {
                own
            } else if leader.synced.contains(&id) {
                leader.acked.get(&id).copied().unwrap_or_default()
            } else {
                Zxid::ZERO
            }
        };
        let quorum_logged = self.configs.quorum_logged(self.committed, &logged);
        if quorum_logged <= self.committed || quorum_logged.epoch() != epoch {
            return;
        }
        self.commit(quorum_logged);
        let followers: Vec<ServerId> = self.leading().syncing.iter().copied().collect();
        for follower in followers {
            self.send_now(follower, Message::Commit { epoch, zxid: quorum_logged });
        }
        self.leader_config_committed();
    }

    /// Proposes a new configuration of `members` (ZooKeeper's reconfig), on the
    /// leader in broadcast: a config entry, whose zxid is the new version. From now
    /// until it commits every quorum is joint (old and new). Refused, changing
    /// nothing, while another change is in flight, when the configuration is not
    /// valid, or when it keeps fewer than a majority of the current voters (a
    /// majority removed at once could be a whole quorum that never heard of the
    /// change), or when it makes a voter of a member that is not an observer
    /// following this leader (ZooKeeper's and etcd's learners): a new member joins
    /// as an observer, catches up, and is promoted, so every new voter holds the
    /// log and the configurations before it votes.
    pub fn propose_config(&mut self, members: Vec<Member>) -> Result<Zxid, QuorumError> {
        self.broadcasting_leader()?;
        if let Some(pending) = self.configs.pending(self.committed) {
            return Err(QuorumError::ConfigInFlight { pending: pending.version });
        }
        Membership::validate(&members).map_err(|reason| QuorumError::BadMembership { reason })?;
        let next = Membership::new(Zxid::ZERO, members);
        let active = self.configs.active(self.committed);
        if !active.majority(&|id| next.is_voter(id)) {
            let kept = active.voters().filter(|id| next.is_voter(*id)).count();
            return Err(QuorumError::BadMembership {
                reason: format!(
                    "the change keeps {kept} of the {} voters, fewer than a majority: \
                     remove voters a minority at a time",
                    active.voters().count()
                ),
            });
        }
        let me = self.config.id;
        let synced = &self.leading().synced;
        let newcomer = next.voters().find(|id| {
            !active.is_voter(*id) && *id != me && !(active.is_member(*id) && synced.contains(id))
        });
        if let Some(id) = newcomer {
            let reason = if active.is_member(id) {
                format!("server {id} does not follow this leader now: it cannot become a voter")
            } else {
                format!("server {id} must join as an observer and catch up before it votes")
            };
            return Err(QuorumError::BadMembership { reason });
        }
        let data = encode_config_entry(&next.members);
        self.leader_propose(|_| data)
    }

    /// This member's leader state, if it leads in broadcast; else the error a
    /// request only such a leader takes gets.
    fn broadcasting_leader(&self) -> Result<&Leader, QuorumError> {
        match &self.state {
            State::Leading(leader) if leader.phase == Phase::Broadcast => Ok(leader),
            State::Leading(_) => Err(QuorumError::NotBroadcasting),
            State::Following(follower) => {
                Err(QuorumError::NotLeader { leader: Some(follower.leader) })
            }
            State::Looking(_) => Err(QuorumError::NotLeader { leader: None }),
        }
    }

    /// A linearizable read (etcd's ReadIndex), asked of this member: once this
    /// member is sure it leads (a leader) or its leader is (a follower), the read's
    /// index comes out in `Ready::reads` under `ctx`; reading after applying it is
    /// linearizable. Nothing is logged. Reads of a leader deposed meanwhile never
    /// come out: the caller gives up on them when the role changes.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), QuorumError> {
        match &self.state {
            State::Leading(leader) if leader.phase == Phase::Broadcast => {
                self.leader_read(None, ctx);
                Ok(())
            }
            State::Leading(_) => Err(QuorumError::NotBroadcasting),
            State::Following(follower) if follower.broadcasting() => {
                let leader = follower.leader;
                self.send_now(leader, Message::ReadIndex { ctx });
                Ok(())
            }
            State::Following(_) => Err(QuorumError::NotBroadcasting),
            State::Looking(_) => Err(QuorumError::NotLeader { leader: None }),
        }
    }

    /// A read arrived: it needs a quorum to answer a probe sent after it.
    fn leader_read(&mut self, from: Option<ServerId>, ctx: u64) {
        let committed = self.committed;
        let leader = self.leader();
        leader.read_round += 1;
        let (round, epoch) = (leader.read_round, leader.epoch);
        leader.reads.push((from, ctx, committed, round));
        let followers: Vec<ServerId> = leader.synced.iter().copied().collect();
        for follower in followers {
            self.send_now(follower, Message::ReadProbe { epoch, round });
        }
        self.leader_confirm_reads();
    }

    /// Reads whose probe a quorum answered (this leader included) are confirmed:
    /// no other leader can have committed anything before they arrived.
    fn leader_confirm_reads(&mut self) {
        let me = self.config.id;
        let leader = self.leading();
        let answered = |round: u64| {
            self.is_quorum(&|id| id == me || leader.read_acks.get(&id).is_some_and(|r| *r >= round))
        };
        let (done, waiting): (Vec<_>, Vec<_>) =
            leader.reads.iter().copied().partition(|(_, _, _, round)| answered(*round));
        if done.is_empty() {
            return;
        }
        self.leader().reads = waiting;
        for (from, ctx, index, _) in done {
            match from {
                None => self.ready.reads.push((ctx, index)),
                Some(to) => self.send_now(to, Message::ReadIndexReply { ctx, index }),
            }
        }
    }

    /// Hands leadership over to `to` (or to the voter that has logged the most):
    /// the leader stops proposing, waits until the successor has logged all it has,
    /// then tells every follower to elect it (no election timeout). Gives up after
    /// `init_limit_ticks`, leading on. Returns the successor.
    pub fn transfer_leadership(&mut self, to: Option<ServerId>) -> Result<ServerId, QuorumError> {
        let me = self.config.id;
        let leader = self.broadcasting_leader()?;
        let successor = {
            let newest = self.configs.last();
            let eligible =
                |id: &ServerId| *id != me && newest.is_voter(*id) && leader.synced.contains(id);
            match to {
                Some(id) if id == me => return Ok(me),
                Some(id) if !newest.is_voter(id) => {
                    return Err(QuorumError::BadMembership {
                        reason: format!("server {id} is not a voter: it cannot lead"),
                    });
                }
                Some(id) if !eligible(&id) => {
                    return Err(QuorumError::BadMembership {
                        reason: format!("server {id} is not following this leader now"),
                    });
                }
                Some(id) => id,
                None => leader
                    .synced
                    .iter()
                    .filter(|id| eligible(id))
                    .max_by_key(|id| (leader.acked.get(id).copied().unwrap_or_default(), **id))
                    .copied()
                    .ok_or_else(|| QuorumError::BadMembership {
                        reason: "no other voter follows this leader now".into(),
                    })?,
            }
        };
        let leader = self.leader();
        leader.transfer = Some((successor, leader.ticks));
        self.leader_maybe_hand_over();
        Ok(successor)
    }

    /// The successor has logged everything: tell every follower to elect it, and
    /// step down.
    fn leader_maybe_hand_over(&mut self) {
        let State::Leading(leader) = &self.state else { return };
        let Some((to, _)) = leader.transfer else { return };
        let logged = leader.acked.get(&to).copied().unwrap_or_default();
        if logged < self.last_appended || self.last_logged < self.last_appended {
            return;
        }
        let (epoch, zxid) = (leader.epoch, self.last_appended);
        let followers: Vec<ServerId> = leader.syncing.iter().copied().collect();
        for follower in followers {
            self.send_now(follower, Message::TakeOver { epoch, leader: to, zxid });
        }
        let nominee = Vote { leader: to, zxid, epoch: self.epochs.current_epoch };
        self.look_for(nominee);
    }

    /// After a commit: a leader that no longer votes (a configuration without it
    /// committed) hands over.
    fn leader_config_committed(&mut self) {
        // Followers no configuration of the view names any more get nothing more:
        // they time out, and (removed) take part in nothing.
        let gone: Vec<ServerId> =
            self.leading().syncing.iter().copied().filter(|id| !self.is_member(*id)).collect();
        for id in gone {
            let leader = self.leader();
            leader.syncing.remove(&id);
            leader.synced.remove(&id);
            leader.acked.remove(&id);
            leader.history_sent.remove(&id);
            leader.awaiting_snapshot.remove(&id);
        }
        let me = self.config.id;
        let leader = self.leading();
        if self.is_voter(me) || leader.transfer.is_some() || leader.phase != Phase::Broadcast {
            return;
        }
        if self.transfer_leadership(None).is_err() {
            self.become_looking();
        }
    }
}

/// Whether `zxid` is in the leader's log (zxid 0, the empty history, always is).
fn contains(view: &dyn LogView, zxid: Zxid) -> Result<bool, ViewError> {
    if zxid == Zxid::ZERO {
        return Ok(true);
    }
    let before = Zxid::from_u64(zxid.as_u64() - 1);
    Ok(view.entries_after(before, 1)?.first().is_some_and(|e| e.zxid == zxid))
}

/// The durable entries after `after` up to `until`, unless there are more than `max`.
fn diff_after(
    view: &dyn LogView,
    after: Zxid,
    until: Zxid,
    max: usize,
) -> Result<Vec<Entry>, ViewError> {
    let mut entries = view.entries_after(after, max.saturating_add(1))?;
    entries.retain(|e| e.zxid <= until);
    if entries.len() > max {
        return Err(ViewError::Purged { after });
    }
    Ok(entries)
}
