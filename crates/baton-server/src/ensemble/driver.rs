//! The driver: the one task that runs this member's ZAB [`Node`] (every server
//! runs one; a server without peers is an ensemble of one).
//!
//! # Each round (the order is baton-quorum's contract, written down once here)
//! 1. Wait for something: a tick, peer messages, client writes (local, or
//!    forwarded to this leader), replies to writes this follower forwarded, a
//!    snapshot prepared for a SNAP. Then take whatever else is already queued, so
//!    one round carries many writes (group commit).
//! 2. Feed it all to the node (`tick`, `step`, `propose_with`) — `route`.
//! 3. Take the node's `Ready` and carry it out in its order — `ready`: send its
//!    `messages` (the node put there only what may leave before the flush: a
//!    leader's proposals, commits and pings, so followers log in parallel with
//!    it); persist epochs, truncation, snapshot and entries through the storage
//!    thread with one flush; only then send `persisted_messages` (ACKs and the
//!    rest). The driver never looks inside a message to decide when it may leave.
//! 4. Queue the committed entries for applying, and apply what one slice of time
//!    allows ([`apply::APPLY_SLICE`]) under the tree's write lock, queueing their
//!    watch events; answer the writes waiting for them — `apply`. Nothing is
//!    applied beyond what is durable here (asserted). The rest is applied in
//!    later slices, between rounds: a member with a long backlog (after a restart,
//!    or a sync) still logs and acknowledges proposals meanwhile.
//! 5. Tell the node what is durable (`advance`), and repeat 3–5 until it has
//!    nothing more to say.
//!
//! A leader in broadcast proposes client writes; a follower in broadcast forwards
//! them, in order, to its leader and answers each once it has applied the write's
//! zxid itself (so a client reads its own writes from the member it talks to). A
//! member not in broadcast refuses writes (CONNECTION_LOSS: the client reconnects,
//! perhaps elsewhere). A member serves clients once it is in broadcast and has
//! applied the backlog it entered broadcast with. A storage error stops the server
//! (fail-stop): what waited for it fails with a storage error, never acknowledged.
//!
//! Nothing here blocks the async runtime: the store lives on the storage thread,
//! and encoding a snapshot for a SNAP and decoding a received one run on blocking
//! threads.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use baton_api::admin::Role as MemberRole;
use baton_log::Damage;
use baton_quorum::{
    Zxid,
    zab::{Entry, Envelope, Node, Role},
};
use baton_znode::{OpResult, TxnError};
use bytes::Bytes;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{
    apply::fail_waiting,
    cache::LogCache,
    transport::{Forwarded, Forwarder, Outbound, PeerLinks, Pending},
};
use crate::{
    ServerError,
    metrics::{Metrics, Stage},
    shared::{Membership, Shared},
    shutdown::ShutdownListener,
    snapshotter::SnapshotTrigger,
    storage::Storage,
    write_queue::{Write, WriteError},
};

/// Peer messages taken per round.
const INBOUND_PER_ROUND_MAX: usize = 4_096;
/// How long a stopping member keeps running to answer the writes it has in flight
/// (a leader: until its proposals commit); then it stops whatever remains.
pub(crate) const DRAIN_MAX: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Driver {
    pub(crate) node: Node,
    pub(crate) cache: LogCache,
    pub(crate) storage: Storage,
    pub(crate) shared: Arc<Shared>,
    pub(crate) writes: mpsc::Receiver<Write>,
    pub(crate) inbound: mpsc::Receiver<Envelope>,
    pub(crate) outbound: Outbound,
    /// Peers the transport could not reach (see [`Node::peer_unreachable`]).
    pub(crate) lost: mpsc::Receiver<u64>,
    pub(crate) lost_sender: PeerLinks,
    /// Every member (this one included): id and peer address.
    pub(crate) peers: Arc<[(u64, String)]>,
    pub(crate) tick: Duration,
    pub(crate) batch_txns_max: usize,
    pub(crate) forward_queue_max: usize,
    pub(crate) snapshots: SnapshotTrigger,
    pub(crate) shutdown: ShutdownListener,
    /// Applied entries the log cache keeps for DIFFs (`--diff-entries-max`).
    pub(crate) cache_keep: usize,
    /// Told once this member first serves clients.
    pub(crate) on_serving: Option<oneshot::Sender<()>>,
    /// Damage the scrubber found, to repair.
    pub(crate) damage: mpsc::Receiver<Damage>,
    /// sled blob files already repaired around (they linger until sled collects them).
    pub(crate) repaired_blobs: std::collections::BTreeSet<u64>,
}

/// What the driver keeps between rounds besides its parts.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Writes waiting for their zxid (a barrier: any zxid at or past it) to be applied here.
    pub(super) waiting: BTreeMap<u64, Vec<Pending>>,
    pub(super) recent: VecDeque<(u64, Result<OpResult, TxnError>)>,
    pub(super) forwarder: Option<Forwarder>,
    /// (role, broadcasting) after the last round.
    was: Option<(Role, bool)>,
    pub(super) last_time_ms: i64,
    /// A proposal of this round, not yet sent: a sync that arrived before it is sent
    /// is answered once it commits (see `route`).
    pub(super) barrier: Option<u64>,
    /// The last zxid this member proposed as leader.
    pub(super) last_proposed: u64,
    /// Committed entries handed out by the node, not yet applied, in zxid order.
    pub(super) backlog: VecDeque<Entry>,
    /// The last zxid applied to the tree (the node's `applied` counts the backlog).
    pub(super) applied: u64,
    /// What the node knew committed when the role last changed.
    catch_up_to: u64,
    /// The tree has reached `catch_up_to`: until then a member in broadcast does not
    /// serve clients (its tree is behind what it knew committed on joining).
    caught_up: bool,
    /// A snapshot being encoded for a SNAP (see `LogCache::snapshot`).
    pub(super) encoding: Option<JoinHandle<Result<(Zxid, Bytes), ServerError>>>,
    /// The node started damaged and has not reported it repaired yet.
    pub(super) damaged: bool,
    /// The configuration in force, as last published, and as text.
    pub(super) config: Arc<baton_quorum::zab::Membership>,
    pub(super) config_text: Bytes,
    /// Versions of the configuration in force and in flight, as last seen.
    config_versions: Option<(Zxid, Option<Zxid>)>,
    /// Linearizable reads asked of the node, not yet confirmed: by number, with
    /// when they were asked (given up after `READ_CONFIRM_MAX`).
    pub(super) reads: BTreeMap<u64, (oneshot::Sender<Result<u64, WriteError>>, std::time::Instant)>,
    pub(super) next_read: u64,
    /// For the write-stage metrics, in zxid order: when this leader proposed each
    /// entry not yet committed; when each batch handed out to apply was committed
    /// (by its last zxid); when the leader answered each forwarded write not yet
    /// applied here. Cleared on a change of role; each bounded by what is in flight.
    pub(super) proposed: VecDeque<(u64, std::time::Instant)>,
    pub(super) committed_at: VecDeque<(u64, std::time::Instant)>,
    pub(super) answered_at: VecDeque<(u64, std::time::Instant)>,
    /// Flushes of the log in flight, oldest first (see `ready`).
    pub(super) flushes: VecDeque<super::ready::Flush>,
}

/// The answer of the oldest flush in flight (there is one: guarded by the caller).
/// A function of the one field, so that the driver's select borrows only it.
pub(super) async fn oldest_flush(
    flushes: &mut VecDeque<super::ready::Flush>,
) -> Result<Result<(), baton_log::LogError>, oneshot::error::RecvError> {
    (&mut flushes.front_mut().expect("a flush in flight").answer).await
}

/// The snapshot being encoded for a SNAP, once done (there is one: guarded).
async fn encoding_done(
    encoding: &mut Option<JoinHandle<Result<(Zxid, Bytes), ServerError>>>,
) -> Result<Result<(Zxid, Bytes), ServerError>, tokio::task::JoinError> {
    encoding.as_mut().expect("an encoding under way").await
}

/// How long a linearizable read waits for its leader to confirm it before the
/// client is told to retry (a lost message, a leader deposed without knowing).
const READ_CONFIRM_MAX: Duration = Duration::from_secs(5);

impl Book {
    pub(super) fn note_applied(&mut self, zxid: u64) {
        self.applied = zxid;
        if !self.caught_up && zxid >= self.catch_up_to {
            self.caught_up = true;
            tracing::info!(applied = %Zxid::from_u64(zxid), "caught up with what was committed on joining");
        }
    }
}

impl Driver {
    /// The node's configurations changed (a config entry appended, committed or
    /// cut, or a leader's snapshot): every member they name becomes reachable, and
    /// the one in force is published.
    fn follow_config(&mut self, book: &mut Book) {
        let (active, pending) = self.node.membership();
        let versions = (active.version, pending.map(|p| p.version));
        if book.config_versions == Some(versions) {
            return;
        }
        let me = self.node.status().id;
        let named: Vec<(u64, String)> = std::iter::once(active)
            .chain(pending)
            .flat_map(|c| c.members.iter())
            .filter(|m| m.id != me && !m.addr.is_empty())
            .map(|m| (m.id, m.addr.clone()))
            .collect();
        let mut peers: BTreeMap<u64, String> = self.peers.iter().cloned().collect();
        for (id, addr) in named {
            if peers.get(&id) != Some(&addr) {
                tracing::info!(peer = id, %addr, "a configuration names a member: reaching it");
                self.outbound.add(me, id, &addr, &self.lost_sender);
                peers.insert(id, addr);
            }
        }
        self.peers = peers.into_iter().collect::<Vec<_>>().into();
        if book.config_versions.map(|(a, _)| a) != Some(active.version) {
            let voters: Vec<u64> = active.voters().collect();
            let observers: Vec<u64> = active.observers().collect();
            tracing::info!(
                version = %active.version,
                ?voters,
                ?observers,
                member = active.is_member(me),
                "configuration in force"
            );
        }
        if let Some(pending) = pending
            && book.config_versions.and_then(|(_, p)| p) != Some(pending.version)
        {
            let voters: Vec<u64> = pending.voters().collect();
            tracing::info!(version = %pending.version, ?voters, "configuration change in flight");
        }
        book.config = Arc::new(active.clone());
        book.config_text = Bytes::from(crate::membership::text(active));
        book.config_versions = Some(versions);
        Metrics::set(&self.shared.metrics.config_version, active.version.as_u64());
    }

    /// The leader answered a write this follower forwarded: it is answered here once
    /// applied here too.
    fn forward_done(&mut self, book: &mut Book, done: Forwarded) {
        let now = std::time::Instant::now();
        self.shared.metrics.stage(Stage::Forward, now.duration_since(done.sent));
        if done.zxid > book.applied {
            book.answered_at.push_back((done.zxid, now));
        } else {
            self.shared.metrics.stage(Stage::Reply, std::time::Duration::ZERO);
        }
        self.wait_for(book, done.zxid, done.pending);
    }

    /// True for an ensemble of one: nobody can depose this member's leadership.
    pub(super) fn alone(&self) -> bool {
        self.peers.len() == 1
    }

    pub(crate) async fn run(mut self) -> Result<(), ServerError> {
        let (forwarded_tx, mut forwarded) = mpsc::channel::<Forwarded>(self.forward_queue_max);
        let mut book = Book {
            applied: self.shared.read_tree().map_or(0, |tree| tree.last_zxid()),
            damaged: self.node.status().damaged,
            ..Book::default()
        };
        let result = self.rounds(&mut book, &forwarded_tx, &mut forwarded).await;
        self.writes.close();
        let error = match &result {
            Ok(()) => WriteError::ShuttingDown,
            Err(error) => {
                tracing::error!(%error, "the driver failed; stopping the server");
                WriteError::Storage(error.to_string())
            }
        };
        while let Ok(write) = self.writes.try_recv() {
            write.fail(error.clone());
        }
        fail_waiting(&mut book, &error);
        tracing::debug!("driver done");
        result
    }

    async fn rounds(
        &mut self,
        book: &mut Book,
        forwarded_tx: &mpsc::Sender<Forwarded>,
        forwarded: &mut mpsc::Receiver<Forwarded>,
    ) -> Result<(), ServerError> {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(self.batch_txns_max);
        let mut messages = Vec::with_capacity(INBOUND_PER_ROUND_MAX);
        self.process(book, forwarded_tx).await?;
        // Set when shutdown begins: new writes are refused, those in flight are
        // answered (a leader's proposals commit) until this deadline.
        let mut draining: Option<tokio::time::Instant> = None;
        // A leader stopping hands leadership over first (so its followers elect the
        // successor at once instead of waiting out an election timeout).
        let mut handing_over = false;
        // An ensemble of one has no peer service: its inbound channel is closed
        // from the start, which means "no peer messages", not "stop".
        let mut peers_gone = false;
        loop {
            let handed_over = !handing_over || self.node.status().role != Role::Leading;
            if let Some(deadline) = draining
                && ((book.waiting.is_empty() && handed_over)
                    || tokio::time::Instant::now() >= deadline)
            {
                return Ok(());
            }
            tokio::select! {
                _ = ticker.tick() => {
                    let now = std::time::Instant::now();
                    let stale: Vec<u64> = book
                        .reads
                        .iter()
                        .filter(|(_, (_, asked))| now.duration_since(*asked) > READ_CONFIRM_MAX)
                        .map(|(ctx, _)| *ctx)
                        .collect();
                    for ctx in stale {
                        if let Some((reply, _)) = book.reads.remove(&ctx) {
                            let why = "the leader did not confirm the linearizable read in time";
                            let _ = reply.send(Err(WriteError::NotServing(why.into())));
                        }
                    }
                    self.cache.expire_prepared_snapshot(std::time::Instant::now());
                    self.node.tick(&self.cache);
                    self.renew_forwarder(book, forwarded_tx);
                    self.report_touches(book);
                }
                received = self.inbound.recv_many(&mut messages, INBOUND_PER_ROUND_MAX), if !peers_gone => {
                    peers_gone = received == 0;
                    for envelope in messages.drain(..) {
                        self.node.step(envelope, &self.cache);
                    }
                }
                received = self.writes.recv_many(&mut batch, self.batch_txns_max), if draining.is_none() => {
                    if received == 0 {
                        return Ok(());
                    }
                    Metrics::sub(&self.shared.metrics.write_queue_depth, received as u64);
                    for write in batch.drain(..) {
                        self.take_write(book, write);
                    }
                }
                answer = oldest_flush(&mut book.flushes), if !book.flushes.is_empty() => {
                    self.flush_done(book, answer)?;
                }
                Some(damage) = self.damage.recv() => {
                    self.drain_flushes(book).await?;
                    self.repair(damage).await?;
                }
                Some(peer) = self.lost.recv() => {
                    tracing::info!(peer, "the link to a peer failed");
                    self.node.peer_unreachable(peer, &self.cache);
                }
                Some(done) = forwarded.recv() => {
                    self.forward_done(book, done);
                    while let Ok(done) = forwarded.try_recv() {
                        self.forward_done(book, done);
                    }
                }
                encoded = encoding_done(&mut book.encoding), if book.encoding.is_some() => {
                    book.encoding = None;
                    self.snapshot_encoded(encoded);
                }
                () = std::future::ready(()), if !book.backlog.is_empty() => {
                    self.apply_slice(book)?;
                }
                () = self.shutdown.recv(), if draining.is_none() => {
                    let status = self.node.status();
                    tracing::info!(role = ?status.role, in_flight = book.waiting.len(), "stopping: answering the writes in flight first");
                    draining = Some(tokio::time::Instant::now() + DRAIN_MAX);
                    if status.role == Role::Leading && status.broadcasting && !self.alone() {
                        handing_over = self.transfer(0).is_ok();
                    }
                }
            }
            self.process(book, forwarded_tx).await?;
        }
    }

    /// After a round: publish the state; on a change of role, leader or phase,
    /// fail what waited on the old one and set up the new one.
    pub(super) fn on_role(&mut self, book: &mut Book, forwarded: &mpsc::Sender<Forwarded>) {
        self.follow_config(book);
        let status = self.node.status();
        let now = (status.role, status.broadcasting);
        let (role, leader) = match status.role {
            Role::Looking => (MemberRole::Looking, None),
            Role::Following { leader } if status.observer => (MemberRole::Observing, Some(leader)),
            Role::Following { leader } => (MemberRole::Following, Some(leader)),
            Role::Leading => (MemberRole::Leading, Some(status.id)),
        };
        self.shared.set_membership(Membership {
            role,
            leader,
            broadcasting: status.broadcasting,
            accepted_epoch: status.accepted_epoch,
            current_epoch: status.current_epoch,
            logged_zxid: status.last_logged.as_u64(),
            committed_zxid: status.committed.as_u64(),
            peers: self.peers.clone(),
            damaged: status.damaged,
            config: Arc::clone(&book.config),
            config_pending: status.config_pending.map(Zxid::as_u64),
            removed: status.removed,
            config_text: book.config_text.clone(),
        });
        if book.was != Some(now) {
            book.catch_up_to = status.committed.as_u64();
            book.caught_up = book.applied >= book.catch_up_to;
        }
        let serving = status.broadcasting && book.caught_up;
        self.shared.set_serving(serving);
        if serving && let Some(tell) = self.on_serving.take() {
            let _ = tell.send(());
        }
        if book.was == Some(now) {
            return;
        }
        tracing::info!(
            role = role.as_str(),
            ?leader,
            broadcasting = status.broadcasting,
            epoch = status.current_epoch,
            "role changed"
        );
        book.was = Some(now);
        if status.role == Role::Looking {
            Metrics::add(&self.shared.metrics.elections_total, 1);
        }
        let why = format!("this member is now {}", role.as_str());
        fail_waiting(book, &WriteError::Unknown(why.clone()));
        for (_, (reply, _)) in std::mem::take(&mut book.reads) {
            let _ = reply.send(Err(WriteError::NotServing(why.clone())));
        }
        book.forwarder = None;
        book.proposed.clear();
        book.committed_at.clear();
        book.answered_at.clear();
        match now {
            (Role::Following { leader }, true) => {
                book.forwarder = self.forwarder_to(leader, forwarded);
            }
            (Role::Leading, true) => {
                // A new leader gives every session a full timeout from now, as
                // ZooKeeper does: it could not know when they were last heard.
                let sessions = match self.shared.read_tree() {
                    Ok(tree) => tree.sessions(),
                    Err(_) => Vec::new(),
                };
                for session in sessions {
                    self.shared.sessions.touch(session.session);
                }
            }
            _ => {}
        }
    }
}
