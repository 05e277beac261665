//! Leader election, in the manner of ZooKeeper's fast leader election.
//!
//! Every looking server proposes a vote and sends it to all; on hearing a better
//! vote it adopts and resends it. Votes compare by (epoch, last zxid, server id):
//! the server with the most recent history wins, ties go to the higher id. Once a
//! quorum of the current round agrees on one vote, the election is decided. A
//! server that is already following or leading answers with its vote marked
//! "not looking", so a server that restarts into an established ensemble follows
//! its leader instead of forcing a new election.
//!
//! Deciding here only nominates: the nominee becomes leader only if a quorum then
//! agrees to its new epoch in discovery, which is what keeps one leader per epoch.
//!
//! An observer and a damaged member (its disk lost entries it had acknowledged) are
//! no candidates: they never propose or adopt a vote, their looking votes are marked
//! (`damaged` on the wire) and count for nobody, and they follow only a leader that
//! itself and a quorum of voters name. A damaged member that voted could elect a
//! member whose history lacks what it acknowledged, so that a quorum it was part of
//! no longer held a committed entry; an observer never had a vote.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    Zxid,
    zab::{Envelope, Message, ServerId},
};

/// A vote: who should lead, and the history that makes it the best candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Vote {
    pub(crate) leader: ServerId,
    pub(crate) zxid: Zxid,
    pub(crate) epoch: u32,
}

impl Vote {
    fn key(self) -> (u32, Zxid, ServerId) {
        (self.epoch, self.zxid, self.leader)
    }

    fn beats(self, other: Vote) -> bool {
        self.key() > other.key()
    }
}

/// What the election decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Undecided,
    Lead,
    Follow(ServerId),
}

#[derive(Debug, Clone)]
pub(crate) struct Election {
    id: ServerId,
    /// The voters of each configuration in this member's view: a quorum is a
    /// majority of each (two while a membership change is in flight).
    voters: Vec<Vec<ServerId>>,
    /// Every voter of any of them: whose votes count here.
    everyone: Vec<ServerId>,
    /// Members outside this view that sent a looking vote this election: they get
    /// this member's votes too. Views differ while a change spreads: a member that
    /// missed one votes for the best history it hears, and whoever counts it as a
    /// voter counts its vote (Raft's voters grant votes whatever their own
    /// configuration says).
    others: BTreeSet<ServerId>,
    /// This server's own candidacy (its history), the floor of any vote it adopts.
    own: Vote,
    round: u64,
    vote: Vote,
    /// Votes of looking members in `round` (this server's included).
    looking: BTreeMap<ServerId, Vote>,
    /// Votes of members that follow or lead already.
    settled: BTreeMap<ServerId, Vote>,
    resend_ticks: u32,
    ticks_to_resend: u32,
    /// May be elected: a voter in its own view, not damaged.
    candidate: bool,
    /// Votes (adopts and relays the best candidacy it hears) without being a
    /// candidate: a healthy member that its view says does not vote, because the
    /// configuration that makes it a voter may not have reached it yet (members
    /// whose view does name it a voter count its vote; no other does). False for a
    /// damaged member: it votes for nobody and follows only an established leader.
    votes: bool,
    /// A quorum agrees but not every member has voted: ticks left to wait for a
    /// better vote before deciding (ZooKeeper's finalize wait).
    finalize_in: Option<u32>,
}

impl Election {
    /// Starts round `round` with this server's own candidacy (none if it is not a
    /// `candidate`: a damaged member); returns the votes to send.
    pub(crate) fn start(
        id: ServerId,
        voters: Vec<Vec<ServerId>>,
        round: u64,
        own: Vote,
        resend_ticks: u32,
        candidate: bool,
        votes: bool,
    ) -> (Election, Vec<Envelope>) {
        // A member that is no candidate starts with no vote (it adopts the first
        // candidacy it hears).
        let own = if candidate || !votes { own } else { Vote::default() };
        let mut everyone: Vec<ServerId> = voters.iter().flatten().copied().collect();
        everyone.sort_unstable();
        everyone.dedup();
        let election = Election {
            id,
            voters,
            everyone,
            others: BTreeSet::new(),
            own,
            round,
            vote: own,
            looking: BTreeMap::from([(id, own)]),
            settled: BTreeMap::new(),
            resend_ticks: resend_ticks.max(1),
            ticks_to_resend: resend_ticks.max(1),
            candidate,
            votes: votes || candidate,
            finalize_in: None,
        };
        let out = election.broadcast();
        (election, out)
    }

    pub(crate) fn round(&self) -> u64 {
        self.round
    }

    #[cfg(test)]
    pub(crate) fn vote(&self) -> Vote {
        self.vote
    }

    /// Resends the vote every `resend_ticks` (votes may be lost), and decides once
    /// the finalize wait is over.
    pub(crate) fn tick(&mut self) -> (Vec<Envelope>, Decision) {
        if self.candidate && self.is_quorum(&|id| id == self.id) {
            // An ensemble of one: its own vote is a quorum.
            return (Vec::new(), self.quorum_decision());
        }
        let mut decision = Decision::Undecided;
        if let Some(left) = self.finalize_in {
            if left <= 1 {
                self.finalize_in = None;
                decision = self.quorum_decision();
            } else {
                self.finalize_in = Some(left - 1);
            }
        }
        self.ticks_to_resend = self.ticks_to_resend.saturating_sub(1);
        if self.ticks_to_resend > 0 {
            return (Vec::new(), decision);
        }
        self.ticks_to_resend = self.resend_ticks;
        (self.broadcast(), decision)
    }

    /// A vote from a peer (`damaged`: from a damaged member, which counts for
    /// nothing). Returns the messages to send and the decision so far.
    pub(crate) fn on_vote(
        &mut self,
        from: ServerId,
        round: u64,
        vote: Vote,
        looking: bool,
        damaged: bool,
    ) -> (Vec<Envelope>, Decision) {
        let mut out = Vec::new();
        if from == self.id {
            return (out, Decision::Undecided);
        }
        if !looking {
            // From anyone: a leader outside this member's (stale) view is how a
            // member that missed membership changes finds the ensemble again.
            self.settled.insert(from, vote);
            return (out, self.settled_decision());
        }
        if !self.everyone.contains(&from) && self.others.insert(from) {
            out.push(self.envelope(from));
        }
        if damaged || !self.votes {
            // Neither side of this vote may elect anyone.
            return (out, self.settled_decision());
        }
        if round < self.round {
            // A straggler: tell it where the election is.
            out.push(self.envelope(from));
            return (out, Decision::Undecided);
        }
        if round > self.round {
            self.round = round;
            self.finalize_in = None;
            self.looking.clear();
            self.vote = if vote.beats(self.own) { vote } else { self.own };
            self.looking.insert(self.id, self.vote);
            out.extend(self.broadcast());
        } else if vote.beats(self.vote) {
            self.vote = vote;
            self.looking.insert(self.id, vote);
            self.finalize_in = None;
            out.extend(self.broadcast());
        }
        self.looking.insert(from, vote);
        (out, self.decision())
    }

    /// Decides at once when every member agrees; with only a quorum, after the
    /// finalize wait (a better vote may still be on its way).
    fn decision(&mut self) -> Decision {
        let agreeing = self.looking.values().filter(|v| **v == self.vote).count();
        // (Not when members outside this view vote too: they may know a better
        // candidacy this view does not count.)
        if agreeing == self.everyone.len() && self.others.is_empty() {
            return self.quorum_decision();
        }
        if self.agreeing_quorum() {
            if self.finalize_in.is_none() {
                self.finalize_in = Some(self.resend_ticks);
            }
            return Decision::Undecided;
        }
        self.settled_decision()
    }

    /// A majority of every configuration's voters is a quorum.
    fn is_quorum(&self, has: &dyn Fn(ServerId) -> bool) -> bool {
        self.voters
            .iter()
            .all(|voters| voters.iter().filter(|id| has(**id)).count() > voters.len() / 2)
    }

    /// A quorum of looking members agrees with this member's vote.
    fn agreeing_quorum(&self) -> bool {
        self.is_quorum(&|id| self.looking.get(&id) == Some(&self.vote))
    }

    fn quorum_decision(&self) -> Decision {
        if self.vote.leader == 0 || !self.agreeing_quorum() {
            // (Agreeing on nobody: members that heard no candidacy yet.)
            return self.settled_decision();
        }
        if self.vote.leader == self.id {
            if !self.candidate {
                return Decision::Undecided;
            }
            Decision::Lead
        } else {
            Decision::Follow(self.vote.leader)
        }
    }

    /// An established leader: it says so itself, and with this server a quorum
    /// names it (a damaged member does not count itself: a quorum of others must).
    /// A leader this view does not count as a voter (a change this member missed
    /// made it one) may never hear from this member: a quorum of others naming it
    /// is enough then. The leader decides whether to take this member, and syncing
    /// brings the configuration.
    fn settled_decision(&self) -> Decision {
        let leaders: BTreeSet<ServerId> = self.settled.values().map(|v| v.leader).collect();
        for leader in leaders {
            if leader == 0 {
                continue;
            }
            if leader == self.id {
                // Members already following this one, waiting for it (they decided
                // before it did), with it a quorum: it leads (ZooKeeper's
                // checkLeader). Only if none of them has a newer history (each says
                // how far its own log reaches): it would refuse this one's.
                let own = (self.own.epoch, self.own.zxid);
                let following = |id| {
                    id == self.id
                        || self
                            .settled
                            .get(&id)
                            .is_some_and(|v| v.leader == leader && (v.epoch, v.zxid) <= own)
                };
                if self.candidate && self.is_quorum(&following) {
                    return Decision::Lead;
                }
                continue;
            }
            let own_word = self.settled.get(&leader).is_some_and(|v| v.leader == leader);
            let outside = !self.everyone.contains(&leader);
            let named = |id| self.settled.get(&id).is_some_and(|v| v.leader == leader);
            let with_me = |id| (id == self.id && self.votes) || named(id);
            // This member's own vote for it counts too (ZooKeeper counts the
            // notifications of members out of the election with its own).
            let voting_for =
                |id| (id == self.id && self.votes && self.vote.leader == leader) || named(id);
            if (own_word && self.is_quorum(&with_me))
                || (outside && self.is_quorum(&named))
                || (outside && self.is_quorum(&voting_for))
            {
                return Decision::Follow(leader);
            }
        }
        Decision::Undecided
    }

    fn broadcast(&self) -> Vec<Envelope> {
        let all = self.everyone.iter().chain(&self.others);
        all.filter(|m| **m != self.id).map(|to| self.envelope(*to)).collect()
    }

    fn envelope(&self, to: ServerId) -> Envelope {
        let message = vote_message(self.round, self.vote, true, !self.votes);
        Envelope { from: self.id, to, message }
    }
}

/// The Vote message for `vote` in `round`.
pub(crate) fn vote_message(round: u64, vote: Vote, looking: bool, damaged: bool) -> Message {
    Message::Vote {
        round,
        leader: vote.leader,
        leader_zxid: vote.zxid,
        leader_epoch: vote.epoch,
        looking,
        damaged,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn own(id: ServerId, epoch: u32, counter: u32) -> Vote {
        Vote { leader: id, zxid: Zxid::new(epoch, counter), epoch }
    }

    /// Runs an election among `candidates` (id, epoch, counter) with every message
    /// delivered in order; returns each member's decision.
    fn elect(candidates: &[(ServerId, u32, u32)]) -> BTreeMap<ServerId, Decision> {
        let members: Vec<ServerId> = candidates.iter().map(|c| c.0).collect();
        let mut elections = BTreeMap::new();
        let mut wire = VecDeque::new();
        for &(id, epoch, counter) in candidates {
            let (election, out) = Election::start(
                id,
                vec![members.clone()],
                1,
                own(id, epoch, counter),
                3,
                true,
                true,
            );
            elections.insert(id, election);
            wire.extend(out);
        }
        let mut decisions: BTreeMap<ServerId, Decision> =
            members.iter().map(|m| (*m, Decision::Undecided)).collect();
        let mut budget = 1_000;
        while let Some(envelope) = wire.pop_front() {
            budget -= 1;
            assert!(budget > 0, "the election does not settle");
            let Message::Vote { round, leader, leader_zxid, leader_epoch, looking, damaged } =
                envelope.message
            else {
                unreachable!("only votes here")
            };
            let vote = Vote { leader, zxid: leader_zxid, epoch: leader_epoch };
            let election = elections.get_mut(&envelope.to).unwrap();
            let (out, decision) = election.on_vote(envelope.from, round, vote, looking, damaged);
            wire.extend(out);
            if decision != Decision::Undecided {
                decisions.insert(envelope.to, decision);
            }
        }
        decisions
    }

    fn everyone_follows(decisions: &BTreeMap<ServerId, Decision>, leader: ServerId) {
        for (id, decision) in decisions {
            let expected = if *id == leader { Decision::Lead } else { Decision::Follow(leader) };
            assert_eq!(*decision, expected, "server {id}");
        }
    }

    #[test]
    fn equal_histories_elect_the_highest_id() {
        everyone_follows(&elect(&[(1, 1, 5), (2, 1, 5), (3, 1, 5)]), 3);
    }

    #[test]
    fn the_most_recent_history_wins() {
        everyone_follows(&elect(&[(1, 1, 9), (2, 1, 5), (3, 1, 7)]), 1);
        // A later epoch beats a longer history of an older epoch.
        everyone_follows(&elect(&[(1, 1, 9), (2, 2, 1), (3, 1, 7), (4, 1, 1), (5, 2, 1)]), 5);
    }

    #[test]
    fn a_latecomer_follows_the_established_leader() {
        let members = [1, 2, 3];
        let (mut late, _) =
            Election::start(3, vec![members.to_vec()], 1, own(3, 1, 99), 3, true, true);
        // Server 2 follows 1; that alone is not proof (1 has not said so itself).
        let (_, decision) = late.on_vote(2, 7, own(1, 2, 5), false, false);
        assert_eq!(decision, Decision::Undecided);
        let (_, decision) = late.on_vote(1, 7, own(1, 2, 5), false, false);
        assert_eq!(decision, Decision::Follow(1));
    }

    #[test]
    fn strangers_count_for_nothing_and_stale_rounds_change_nothing() {
        let members = [1, 2, 3];
        let (mut e, _) = Election::start(1, vec![members.to_vec()], 5, own(1, 1, 1), 3, true, true);
        // A member outside this view (it may count 1 as a voter) gets 1's vote back;
        // its own never counts here.
        let (out, decision) = e.on_vote(9, 5, own(9, 1, 0), true, false);
        assert_eq!(out.len(), 1, "the stranger is told this member's vote");
        assert_eq!(decision, Decision::Undecided);
        let (_, decision) = e.on_vote(9, 5, own(1, 1, 1), true, false);
        assert_eq!(decision, Decision::Undecided, "1 and a stranger are no quorum of 1, 2, 3");
        let (out, _) = e.on_vote(2, 4, own(3, 9, 9), true, false);
        assert_eq!(e.vote(), own(1, 1, 1), "a stale round's vote is not adopted");
        assert_eq!(out.len(), 1, "the straggler is told the current vote");
        let (_, _) = e.on_vote(2, 6, own(2, 1, 0), true, false);
        assert_eq!(e.round(), 6);
        assert_eq!(e.vote(), own(1, 1, 1), "a newer round keeps our better candidacy");
    }

    #[test]
    fn a_damaged_member_elects_nobody_and_is_elected_by_nobody() {
        let members = [1, 2, 3];
        // 2 is damaged: its log ends at 1.9 but it lost what it acknowledged.
        let (mut damaged, sent) =
            Election::start(2, vec![members.to_vec()], 1, own(2, 1, 9), 3, false, false);
        let Message::Vote { damaged: marked, looking: true, .. } = sent[0].message else {
            panic!("a looking vote: {sent:?}")
        };
        assert!(marked, "its votes say it is damaged");
        // 1 (healthy, stale) hears it: neither adopts nor counts it.
        let (mut healthy, _) =
            Election::start(1, vec![members.to_vec()], 1, own(1, 1, 5), 3, true, true);
        let (out, decision) = healthy.on_vote(2, 1, own(2, 1, 9), true, true);
        assert!(out.is_empty());
        assert_eq!(decision, Decision::Undecided);
        assert_eq!(healthy.vote(), own(1, 1, 5), "a damaged candidacy is not adopted");
        for _ in 0..10 {
            assert_eq!(healthy.tick().1, Decision::Undecided, "1 alone is no quorum");
        }
        // Nor does 2 adopt or count 1's vote.
        let (_, decision) = damaged.on_vote(1, 1, own(1, 1, 5), true, false);
        assert_eq!(decision, Decision::Undecided);
        for _ in 0..10 {
            assert_eq!(damaged.tick().1, Decision::Undecided);
        }
        // It follows a leader that itself and a quorum of others name.
        let (_, decision) = damaged.on_vote(3, 4, own(3, 1, 7), false, false);
        assert_eq!(decision, Decision::Undecided, "the leader alone is not a quorum of others");
        let (_, decision) = damaged.on_vote(1, 4, own(3, 1, 7), false, false);
        assert_eq!(decision, Decision::Follow(3));
    }

    #[test]
    fn votes_are_resent_every_few_ticks() {
        let (mut e, sent) = Election::start(1, vec![vec![1, 2, 3]], 1, own(1, 1, 1), 3, true, true);
        assert_eq!(sent.len(), 2);
        assert!(e.tick().0.is_empty());
        assert!(e.tick().0.is_empty());
        assert_eq!(e.tick().0.len(), 2);
    }
}
