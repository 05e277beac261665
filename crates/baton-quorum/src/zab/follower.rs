//! The follower: discovery (agree to the leader's new epoch), synchronization
//! (TRUNC / DIFF / SNAP, then NEWLEADER), broadcast (log and ACK each proposal,
//! apply on COMMIT), and giving up on a silent leader.

use crate::{
    Zxid,
    zab::{Entry, LogView, Message, ServerId, election::Vote, node::Node, node::State},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// FollowerInfo sent; waiting for the leader's new epoch.
    Discovery,
    /// Epoch accepted; receiving the leader's history.
    Sync { epoch: u32 },
    /// NewLeader acknowledged: the history is the leader's; proposals may come.
    Synced { epoch: u32 },
    /// UpToDate received: serving.
    Broadcast { epoch: u32 },
}

#[derive(Debug)]
pub(crate) struct Follower {
    pub(crate) leader: ServerId,
    phase: Phase,
    /// Ticks since the leader was last heard from.
    silent_ticks: u32,
    /// Ticks spent following without reaching broadcast (discovery and sync must
    /// end within initLimit, however alive the leader is: a lost UPTODATE or
    /// NEWLEADER ACK would otherwise leave this member synced but never serving).
    unsynced_ticks: u32,
    /// Ticks until FollowerInfo is sent again (discovery only).
    resend_in: u32,
}

impl Follower {
    pub(crate) fn broadcasting(&self) -> bool {
        matches!(self.phase, Phase::Broadcast { .. })
    }
}

impl Node {
    pub(crate) fn become_follower(&mut self, leader: ServerId) {
        let resend_in = self.config.election_resend_ticks.max(1);
        self.state = State::Following(Follower {
            leader,
            phase: Phase::Discovery,
            silent_ticks: 0,
            unsynced_ticks: 0,
            resend_in,
        });
        self.send_follower_info(leader);
    }

    fn send_follower_info(&mut self, leader: ServerId) {
        let info = Message::FollowerInfo {
            accepted_epoch: self.epochs.accepted_epoch,
            last_zxid: self.last_appended,
        };
        self.send(leader, info);
    }

    fn follower(&mut self) -> &mut Follower {
        match &mut self.state {
            State::Following(follower) => follower,
            _ => unreachable!("called in the follower role only"),
        }
    }

    pub(crate) fn follower_tick(&mut self) {
        let (sync_limit, init_limit) = (self.config.sync_limit_ticks, self.config.init_limit_ticks);
        let resend = self.config.election_resend_ticks.max(1);
        let follower = self.follower();
        follower.silent_ticks += 1;
        if !follower.broadcasting() {
            follower.unsynced_ticks += 1;
        }
        let limit = if follower.broadcasting() { sync_limit } else { init_limit };
        if follower.silent_ticks > limit || follower.unsynced_ticks > init_limit {
            self.become_looking();
            return;
        }
        if follower.phase == Phase::Discovery {
            follower.resend_in = follower.resend_in.saturating_sub(1);
            if follower.resend_in == 0 {
                follower.resend_in = resend;
                let leader = follower.leader;
                self.send_follower_info(leader);
            }
        }
    }

    pub(crate) fn follower_step(&mut self, from: ServerId, message: Message, view: &dyn LogView) {
        let follower = self.follower();
        if from != follower.leader {
            self.drop_message();
            return;
        }
        let phase = follower.phase;
        let dropped_before = self.status().dropped_messages;
        self.follower_dispatch(from, phase, message, view);
        // Only a message that fits counts as hearing from the leader: pings alone
        // must not keep a stuck sync alive.
        if self.status().dropped_messages == dropped_before
            && let State::Following(follower) = &mut self.state
        {
            follower.silent_ticks = 0;
        }
    }

    fn follower_dispatch(
        &mut self,
        from: ServerId,
        phase: Phase,
        message: Message,
        view: &dyn LogView,
    ) {
        match (phase, message) {
            (Phase::Discovery, Message::LeaderInfo { epoch }) => self.on_leader_info(epoch),
            (Phase::Sync { epoch }, Message::Trunc { epoch: e, zxid }) if e == epoch => {
                if zxid < self.applied {
                    // A leader may never take back what this member applied.
                    self.drop_message();
                    self.become_looking();
                } else {
                    self.truncate(zxid, view);
                }
            }
            (Phase::Sync { epoch }, Message::Diff { epoch: e, prev, entries }) if e == epoch => {
                if prev != self.last_appended {
                    // Not a continuation of this log (a message of the sync was
                    // lost): take nothing; NewLeader will not match and we resync.
                    self.drop_message();
                    return;
                }
                for entry in entries {
                    if entry.zxid > self.last_appended {
                        self.append(entry);
                    }
                }
            }
            (Phase::Sync { epoch }, Message::Snap { epoch: e, zxid, data, config })
                if e == epoch =>
            {
                self.install(zxid, data);
                if let Some(config) = config {
                    self.configs.installed(config);
                }
            }
            (Phase::Sync { epoch }, Message::NewLeader { epoch: e, last_zxid }) if e == epoch => {
                if last_zxid != self.last_appended {
                    // Something of the sync went missing: start over.
                    self.drop_message();
                    self.become_looking();
                    return;
                }
                self.epochs.current_epoch = epoch;
                self.persist_epochs();
                // The log is now the leader's history (durable with this Ready, before
                // the ack leaves), and that holds every committed entry: whatever a
                // damaged disk lost is back or was never committed.
                self.damaged = false;
                self.follower().phase = Phase::Synced { epoch };
                self.send(from, Message::AckNewLeader { epoch, last_zxid });
            }
            (Phase::Synced { epoch } | Phase::Broadcast { epoch }, message) => {
                self.follower_broadcast(from, epoch, message);
            }
            _ => self.drop_message(),
        }
    }

    fn on_leader_info(&mut self, epoch: u32) {
        if epoch < self.epochs.accepted_epoch {
            // A leader of an epoch this member already moved past.
            self.drop_message();
            self.become_looking();
            return;
        }
        if epoch > self.epochs.accepted_epoch {
            self.epochs.accepted_epoch = epoch;
            self.persist_epochs();
        }
        self.follower().phase = Phase::Sync { epoch };
        let leader = self.follower().leader;
        let ack = Message::AckEpoch {
            current_epoch: self.epochs.current_epoch,
            last_zxid: self.last_appended,
            damaged: self.damaged,
        };
        self.send(leader, ack);
    }

    /// Replaces the whole state by the leader's snapshot.
    fn install(&mut self, zxid: Zxid, data: bytes::Bytes) {
        if zxid < self.applied {
            self.drop_message();
            return;
        }
        self.ready.truncate_after = None;
        self.ready.entries.clear();
        self.ready.committed.clear();
        self.ready.snapshot = Some((zxid, data));
        self.pending.clear();
        self.unloaded_upto = zxid;
        self.last_appended = zxid;
        self.last_logged = zxid;
        self.applied = zxid;
        self.committed = self.committed.max(zxid);
    }

    fn follower_broadcast(&mut self, from: ServerId, epoch: u32, message: Message) {
        match message {
            Message::UpToDate { epoch: e, committed } if e == epoch => {
                self.follower().phase = Phase::Broadcast { epoch };
                self.commit(committed);
            }
            Message::Propose { entry } => self.on_propose(from, epoch, entry),
            Message::Commit { epoch: e, zxid } if e == epoch => self.commit(zxid),
            Message::ReadProbe { epoch: e, round } if e == epoch => {
                self.send_now(from, Message::ReadProbeAck { epoch, round });
            }
            Message::ReadIndexReply { ctx, index } => self.ready.reads.push((ctx, index)),
            Message::TakeOver { epoch: e, leader, zxid } if e == epoch => {
                // The leader hands over: elect its successor, unless this member's
                // own history is newer (then the usual election decides).
                let nominee = if self.last_appended <= zxid {
                    Vote { leader, zxid, epoch: self.epochs.current_epoch }
                } else {
                    Vote {
                        leader: self.config.id,
                        zxid: self.last_appended,
                        epoch: self.epochs.current_epoch,
                    }
                };
                self.look_for(nominee);
            }
            Message::Ping { epoch: e, committed } if e == epoch => {
                self.commit(committed);
                self.send(from, Message::PingAck { epoch, last_zxid: self.last_logged });
            }
            _ => self.drop_message(),
        }
    }

    fn on_propose(&mut self, from: ServerId, epoch: u32, entry: Entry) {
        let zxid = entry.zxid;
        if zxid.epoch() != epoch {
            self.drop_message();
            return;
        }
        if zxid <= self.last_appended {
            // A duplicate: acknowledge again (acks are cumulative).
            self.send(from, Message::Ack { zxid: self.last_appended.min(zxid) });
            return;
        }
        let expected = if self.last_appended.epoch() == epoch {
            self.last_appended.next()
        } else {
            Some(Zxid::new(epoch, 1))
        };
        if expected != Some(zxid) {
            // A proposal went missing: this log would have a hole. Resync.
            self.drop_message();
            self.become_looking();
            return;
        }
        self.append(entry);
        // `send`: it leaves only once the entry is durable (the driver's order).
        self.send(from, Message::Ack { zxid });
    }
}
