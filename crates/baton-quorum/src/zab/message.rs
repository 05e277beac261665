//! Peer messages (the peer transport carries them as opaque bytes made by
//! `codec`; this crate owns the format).

use bytes::Bytes;

use crate::{
    Zxid,
    zab::{Membership, ServerId},
};

/// One logged txn: its zxid and its encoded bytes (opaque here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub zxid: Zxid,
    pub data: Bytes,
}

/// A message from one member to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: ServerId,
    pub to: ServerId,
    pub message: Message,
}

/// The ZAB protocol's messages (names as in ZooKeeper's quorum code). Every message
/// of a leader's session carries its epoch, so a message left over from an older
/// session (a network may deliver one late) is told apart and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Election: the sender's current vote. `round` is the sender's election round
    /// (logical clock); `looking` is false once the sender follows or leads, so a
    /// late server learns the established leader. `damaged` (only ever with
    /// `looking`): the sender lost part of what it acknowledged and is no candidate;
    /// its vote counts for nothing, it only asks settled members who leads.
    Vote {
        round: u64,
        leader: ServerId,
        leader_zxid: Zxid,
        leader_epoch: u32,
        looking: bool,
        damaged: bool,
    },
    /// Discovery, follower → prospective leader.
    FollowerInfo { accepted_epoch: u32, last_zxid: Zxid },
    /// Discovery, leader → follower: the new epoch.
    LeaderInfo { epoch: u32 },
    /// Discovery, follower → leader: accepted the new epoch. `damaged`: the
    /// follower's log lost entries it had acknowledged, so its history proves
    /// nothing: the leader syncs it but does not count it toward the quorum that
    /// shows the leader's history is the newest.
    AckEpoch { current_epoch: u32, last_zxid: Zxid, damaged: bool },
    /// Sync: drop every entry after `zxid`.
    Trunc { epoch: u32, zxid: Zxid },
    /// Sync: entries the follower is missing; they follow `prev` in the leader's
    /// log, and the follower takes them only if its log ends exactly at `prev`.
    Diff { epoch: u32, prev: Zxid, entries: Vec<Entry> },
    /// Sync: replace everything with this state. `config`: the configuration in
    /// force at the leader (that of the snapshot, or a newer committed one whose
    /// entry follows in the DIFF); none from a peer of an older version.
    Snap { epoch: u32, zxid: Zxid, data: Bytes, config: Option<Membership> },
    /// Sync done: the leader's history is the follower's history for `epoch`.
    NewLeader { epoch: u32, last_zxid: Zxid },
    /// Follower has persisted the synced history, up to `last_zxid`.
    AckNewLeader { epoch: u32, last_zxid: Zxid },
    /// Broadcast may begin; everything up to `committed` is committed.
    UpToDate { epoch: u32, committed: Zxid },
    /// Broadcast: phase one.
    Propose { entry: Entry },
    /// The follower has persisted every proposal up to `zxid`.
    Ack { zxid: Zxid },
    /// Broadcast: phase two, everything up to `zxid` is committed.
    Commit { epoch: u32, zxid: Zxid },
    /// Leader liveness, with its commit point.
    Ping { epoch: u32, committed: Zxid },
    /// Follower liveness.
    PingAck { epoch: u32, last_zxid: Zxid },
    /// Linearizable read, member → its leader: confirm leadership and say what is
    /// committed (etcd's ReadIndex). `ctx` is the asker's own number.
    ReadIndex { ctx: u64 },
    /// Leader → the asker: once this member has applied `index`, a read is
    /// linearizable.
    ReadIndexReply { ctx: u64, index: Zxid },
    /// Leader → followers: do you still follow me? (round `round` of reads)
    ReadProbe { epoch: u32, round: u64 },
    /// Follower → leader: yes, as of `round`.
    ReadProbeAck { epoch: u32, round: u64 },
    /// Leadership transfer, leader → every follower: the leader steps down; elect
    /// `leader`, whose log reaches `zxid` (everything the old leader had).
    TakeOver { epoch: u32, leader: ServerId, zxid: Zxid },
}
