//! The ensemble driver: the one task that runs this member's ZAB [`Node`].
//!
//! # Each round (the order is baton-quorum's contract, written down once here)
//! 1. Wait for something: a tick, peer messages, client writes (local, or
//!    forwarded to this leader), replies to writes this follower forwarded. Then
//!    take whatever else is already queued, so one round carries many writes.
//! 2. Feed it all to the node (`tick`, `step`, `propose_with`).
//! 3. Take the node's `Ready` and persist it through the storage thread: epochs,
//!    truncation, snapshot, entries, then one flush: the group commit.
//! 4. Only then send its messages (an ACK never leaves before what it
//!    acknowledges is durable). One exception: a leader in broadcast sends its
//!    proposals, commits and pings before its own flush, so that the followers
//!    write in parallel with it (its own vote still counts only once `advance`
//!    says the entries are durable, so a commit still means a durable quorum).
//! 5. Queue the committed entries for applying, and apply what one slice of time
//!    allows ([`APPLY_SLICE`]) under the tree's write lock, queueing their watch
//!    events; answer the writes waiting for them. The rest is applied in later
//!    slices, between rounds: a member with a long backlog (after a restart, or a
//!    sync) still logs and acknowledges proposals, and its reads are not held up
//!    behind one long lock.
//! 6. Tell the node what is durable (`advance`), and repeat 3–6 until it has
//!    nothing more to say.
//!
//! A leader in broadcast proposes client writes; a follower in broadcast forwards
//! them, in order, to its leader and answers each once it has applied the write's
//! zxid itself (so a client reads its own writes from the member it talks to). A
//! member not in broadcast refuses writes (CONNECTION_LOSS: the client reconnects,
//! perhaps elsewhere). A member serves clients once it is in broadcast and has
//! applied the backlog it entered broadcast with. A storage error stops the server
//! (fail-stop).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use baton_api::admin::Role as AdminRole;
use baton_api::peer::{Sessions, forward_request::Kind};
use baton_log::{LogEntry, Snapshot};
use baton_quorum::{
    QuorumError, Zxid,
    zab::{Entry, Envelope, LogView, Message, Node, Ready, Role},
};
use baton_znode::{DataTree, OpResult, Txn, TxnError, TxnOp, decode_txn, encode_txn};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{
    cache::{LOG_CACHE_BYTES_MAX, LogCache},
    transport::{Forwarded, Forwarder, LostPeers, Outbound, Pending},
};
use crate::{
    ServerError, clock,
    driver::{SnapshotTrigger, meta_of},
    metrics::Metrics,
    shared::{Membership, Shared},
    shutdown::ShutdownListener,
    storage::Storage,
    write_queue::{TxnReply, Write, WriteError},
};

/// Results of recently applied txns, for forwarded writes whose reply from the
/// leader arrives after the commit did (a window of milliseconds as a rule; a reply
/// later than 4,096 txns gets "committed, result no longer known"). A multi's result
/// holds a path and Stat per op: 65,536 of them held ~90 MB per member after a bulk
/// load of 1M znodes in multis of 100.
const RECENT_RESULTS_MAX: usize = 4_096;
/// Peer messages taken per round.
const INBOUND_PER_ROUND_MAX: usize = 4_096;
/// How long a stopping member keeps running to answer the writes it has in flight
/// (a leader: until its proposals commit); then it stops whatever remains.
pub(crate) const DRAIN_MAX: Duration = Duration::from_secs(2);
/// How long applying committed entries may hold the tree's write lock in one go
/// before the driver looks at its other work (at least one entry is applied).
const APPLY_SLICE: Duration = Duration::from_millis(10);

#[derive(Debug)]
pub(crate) struct EnsembleDriver {
    pub(crate) node: Node,
    pub(crate) cache: LogCache,
    pub(crate) storage: Storage,
    pub(crate) shared: Arc<Shared>,
    pub(crate) writes: mpsc::Receiver<Write>,
    pub(crate) inbound: mpsc::Receiver<Envelope>,
    pub(crate) outbound: Outbound,
    /// Peers the transport could not reach (see [`Node::peer_unreachable`]).
    pub(crate) lost: mpsc::Receiver<u64>,
    pub(crate) lost_sender: LostPeers,
    pub(crate) peers: Arc<[(u64, String)]>,
    pub(crate) tick: Duration,
    pub(crate) batch_txns_max: usize,
    pub(crate) forward_queue_max: usize,
    pub(crate) snapshots: SnapshotTrigger,
    pub(crate) shutdown: ShutdownListener,
    /// Applied entries the log cache keeps for DIFFs (`--diff-entries-max`).
    pub(crate) cache_keep: usize,
}

/// What the driver keeps between rounds besides its parts.
#[derive(Debug, Default)]
struct Book {
    /// Writes waiting for their zxid (a barrier: any zxid at or past it) to be applied here.
    waiting: BTreeMap<u64, Vec<Pending>>,
    recent: VecDeque<(u64, Result<OpResult, TxnError>)>,
    forwarder: Option<Forwarder>,
    /// (role, broadcasting) after the last round.
    was: Option<(Role, bool)>,
    last_time_ms: i64,
    /// A proposal of this round, not yet sent: a sync that arrived before it is sent
    /// is answered once it commits (see [`EnsembleDriver::take_write`]).
    barrier: Option<u64>,
    /// Committed entries handed out by the node, not yet applied, in zxid order.
    backlog: VecDeque<Entry>,
    /// The last zxid applied to the tree (the node's `applied` counts the backlog).
    applied: u64,
    /// What the node knew committed when the role last changed.
    catch_up_to: u64,
    /// The tree has reached `catch_up_to`: until then a member in broadcast does not
    /// serve clients (its tree is behind what it knew committed on joining).
    caught_up: bool,
}

impl Book {
    fn note_applied(&mut self, zxid: u64) {
        self.applied = zxid;
        if !self.caught_up && zxid >= self.catch_up_to {
            self.caught_up = true;
            tracing::info!(applied = %Zxid::from_u64(zxid), "caught up with what was committed on joining");
        }
    }
}

impl EnsembleDriver {
    pub(crate) async fn run(mut self) -> Result<(), ServerError> {
        let (forwarded_tx, mut forwarded) = mpsc::channel::<Forwarded>(self.forward_queue_max);
        let mut book = Book {
            applied: self.shared.read_tree().map_or(0, |tree| tree.last_zxid()),
            ..Book::default()
        };
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(self.batch_txns_max);
        let mut messages = Vec::with_capacity(INBOUND_PER_ROUND_MAX);
        self.process(&mut book, &forwarded_tx).await?;
        // Set when shutdown begins: new writes are refused, those in flight are
        // answered (a leader's proposals commit) until this deadline.
        let mut draining: Option<tokio::time::Instant> = None;
        loop {
            if let Some(deadline) = draining
                && (book.waiting.is_empty() || tokio::time::Instant::now() >= deadline)
            {
                break;
            }
            tokio::select! {
                _ = ticker.tick() => {
                    self.node.tick(&self.cache);
                    self.renew_forwarder(&mut book, &forwarded_tx);
                    self.report_touches(&book);
                }
                received = self.inbound.recv_many(&mut messages, INBOUND_PER_ROUND_MAX) => {
                    if received == 0 {
                        break;
                    }
                    for envelope in messages.drain(..) {
                        self.node.step(envelope, &self.cache);
                    }
                }
                received = self.writes.recv_many(&mut batch, self.batch_txns_max), if draining.is_none() => {
                    if received == 0 {
                        break;
                    }
                    Metrics::sub(&self.shared.metrics.write_queue_depth, received as u64);
                    for write in batch.drain(..) {
                        self.take_write(&mut book, write);
                    }
                }
                Some(peer) = self.lost.recv() => {
                    tracing::info!(peer, "the link to a peer failed");
                    self.node.peer_unreachable(peer, &self.cache);
                }
                Some(done) = forwarded.recv() => {
                    self.wait_for(&mut book, done.zxid, done.pending);
                    while let Ok(done) = forwarded.try_recv() {
                        self.wait_for(&mut book, done.zxid, done.pending);
                    }
                }
                () = std::future::ready(()), if !book.backlog.is_empty() => {
                    self.apply_slice(&mut book)?;
                }
                () = self.shutdown.recv(), if draining.is_none() => {
                    let role = self.node.status().role;
                    tracing::info!(?role, in_flight = book.waiting.len(), "stopping: answering the writes in flight first");
                    draining = Some(tokio::time::Instant::now() + DRAIN_MAX);
                }
            }
            self.process(&mut book, &forwarded_tx).await?;
        }
        self.writes.close();
        while let Ok(write) = self.writes.try_recv() {
            write.fail(WriteError::ShuttingDown);
        }
        fail_waiting(&mut book, &WriteError::ShuttingDown);
        tracing::debug!("ensemble driver done");
        Ok(())
    }

    /// A client write (local, or forwarded to this leader).
    fn take_write(&mut self, book: &mut Book, write: Write) {
        let status = self.node.status();
        let write = match write {
            Write::Sync { reply } if cfg!(feature = "bug-stale-reads") => {
                // The deliberate bug: answered from this member's own state.
                self.wait_for(book, book.applied, Pending::Sync(reply));
                return;
            }
            write => write,
        };
        match (status.role, status.broadcasting, write) {
            (Role::Leading, true, Write::Txn { session, op, reply }) => {
                match self.propose(book, session, op) {
                    Ok(zxid) => book.waiting.entry(zxid).or_default().push(Pending::Txn(reply)),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            (Role::Leading, true, Write::Sync { reply }) => {
                // A leader may have been deposed without knowing it yet (paused, cut
                // off): its own state is then stale. So a sync waits for a proposal
                // sent after it arrived to commit — a quorum of this epoch
                // acknowledging it proves no later leader had committed anything
                // before — sharing one with the round's other writes, or a no-op.
                let barrier = match book.barrier {
                    Some(zxid) => Ok(zxid),
                    None => self.propose(book, 0, TxnOp::Multi(Vec::new())),
                };
                match barrier {
                    Ok(zxid) => self.wait_for(book, zxid, Pending::Sync(reply)),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            (Role::Following { leader }, true, write) => {
                let Some(forwarder) = book.forwarder.as_ref().filter(|f| f.leader == leader) else {
                    write.fail(WriteError::NotServing("no link to the leader yet".into()));
                    return;
                };
                match write {
                    Write::Txn { session, op, reply } => {
                        let txn = Txn { zxid: 0, time_ms: 0, session, op };
                        forwarder
                            .send(Kind::Txn(encode_txn(&txn).into()), Some(Pending::Txn(reply)));
                    }
                    Write::Sync { reply } => {
                        forwarder.send(Kind::Sync(true), Some(Pending::Sync(reply)))
                    }
                }
            }
            (role, _, write) => {
                let why = match role {
                    Role::Looking => "this member is electing a leader".to_owned(),
                    Role::Following { leader } => {
                        format!("this member is syncing with leader {leader}")
                    }
                    Role::Leading => "this leader is not yet established".to_owned(),
                };
                write.fail(WriteError::NotServing(why));
            }
        }
    }

    /// Proposes a txn (this member leads and broadcasts); it is this round's barrier.
    fn propose(&mut self, book: &mut Book, session: u64, op: TxnOp) -> Result<u64, WriteError> {
        let time_ms = now_ms(book);
        let proposed = self.node.propose_with(|zxid| {
            let txn = Txn { zxid: zxid.as_u64(), time_ms, session, op };
            Bytes::from(encode_txn(&txn))
        });
        let zxid = proposed.map_err(|error| quorum_write_error(&error))?.as_u64();
        book.barrier = Some(zxid);
        Ok(zxid)
    }

    /// Answers `pending` once this member has applied `zxid` (at once if it has).
    fn wait_for(&self, book: &mut Book, zxid: u64, pending: Pending) {
        let applied = book.applied;
        if zxid <= applied {
            answer(book, zxid, pending, applied);
        } else {
            book.waiting.entry(zxid).or_default().push(pending);
        }
    }

    /// A stream of forwarded writes to `leader`.
    fn forwarder_to(&self, leader: u64, forwarded: &mpsc::Sender<Forwarded>) -> Option<Forwarder> {
        let addr = self.peers.iter().find(|(id, _)| *id == leader).map(|(_, a)| a.clone())?;
        Some(Forwarder::start(
            leader,
            &addr,
            forwarded.clone(),
            self.forward_queue_max,
            self.lost_sender.clone(),
        ))
    }

    /// A follower in broadcast whose stream to the leader broke (or never opened)
    /// opens a new one, at most once a tick. Without this it would stay in broadcast
    /// and refuse every write until its role changed.
    fn renew_forwarder(&self, book: &mut Book, forwarded: &mpsc::Sender<Forwarded>) {
        let status = self.node.status();
        if let (Role::Following { leader }, true) = (status.role, status.broadcasting)
            && book.forwarder.as_ref().is_none_or(Forwarder::is_closed)
        {
            tracing::info!(leader, "reopening the stream of forwarded writes to the leader");
            book.forwarder = self.forwarder_to(leader, forwarded);
        }
    }

    /// A follower tells its leader which sessions it heard from (the leader alone
    /// expires sessions).
    fn report_touches(&self, book: &Book) {
        let touched = self.shared.sessions.take_touched();
        if touched.is_empty() {
            return;
        }
        if let Some(forwarder) = &book.forwarder {
            forwarder.send(Kind::Touch(Sessions { sessions: touched }), None);
        }
    }

    /// Steps 3–6, until the node is quiet; then publish the member's state.
    async fn process(
        &mut self,
        book: &mut Book,
        forwarded: &mpsc::Sender<Forwarded>,
    ) -> Result<(), ServerError> {
        loop {
            let ready = self.node.ready();
            if ready.is_empty() {
                break;
            }
            self.handle(book, ready).await?;
            let durable = self.cache.last_logged();
            self.node.advance(durable);
        }
        // The round's proposals are sent: a sync arriving from now on needs a new one.
        book.barrier = None;
        self.on_role(book, forwarded);
        Ok(())
    }

    async fn handle(&mut self, book: &mut Book, ready: Ready) -> Result<(), ServerError> {
        let Ready { epochs, truncate_after, snapshot, entries, messages, committed } = ready;
        let status = self.node.status();
        let early = epochs.is_none()
            && truncate_after.is_none()
            && snapshot.is_none()
            && status.role == Role::Leading
            && status.broadcasting
            && messages.iter().all(|e| {
                matches!(
                    e.message,
                    Message::Propose { .. } | Message::Commit { .. } | Message::Ping { .. }
                )
            });
        if let Some(epochs) = epochs {
            self.storage.set_meta(meta_of(epochs)).await?;
            self.shared.set_epoch(epochs.current_epoch);
        }
        if let Some(after) = truncate_after {
            tracing::info!(after = %after, "truncating the log to the leader's history");
            self.storage.truncate_after(after.as_u64()).await?;
            self.cache.truncate_after(after);
        }
        if let Some((zxid, data)) = snapshot {
            self.install(book, zxid, data).await?;
        }
        if early {
            for envelope in &messages {
                self.outbound.send(envelope);
            }
        }
        if !entries.is_empty() {
            let count = entries.len() as u64;
            let logged: Vec<LogEntry> = entries
                .iter()
                .map(|e| LogEntry { zxid: e.zxid.as_u64(), data: e.data.clone() })
                .collect();
            self.storage.commit(logged).await?;
            self.cache.append(&entries);
            Metrics::add(&self.shared.metrics.fsyncs_total, 1);
            Metrics::add(&self.shared.metrics.batches_total, 1);
            self.snapshots.logged(count, entries.iter().map(|e| e.data.len() as u64).sum());
        }
        if !early {
            for envelope in &messages {
                self.outbound.send(envelope);
            }
        }
        if !committed.is_empty() {
            book.backlog.extend(committed);
            self.apply_slice(book)?;
        }
        Ok(())
    }

    /// A SNAP from the leader: the whole state is replaced.
    async fn install(
        &mut self,
        book: &mut Book,
        zxid: Zxid,
        data: Bytes,
    ) -> Result<(), ServerError> {
        let tree = DataTree::decode_snapshot(&data).map_err(|source| ServerError::BadSnapshot {
            dir: self.shared.data_dir.clone(),
            zxid: zxid.as_u64(),
            source,
        })?;
        tracing::info!(zxid = %zxid, nodes = tree.node_count(), "installing the leader's snapshot");
        self.storage.install(Snapshot { zxid: zxid.as_u64(), data }).await?;
        self.cache.reset(zxid);
        let now = self.shared.sessions.now_ms();
        {
            let mut tracker = self.shared.sessions.tracker();
            for session in tree.sessions() {
                tracker.add(session.session, u64::from(session.timeout_ms), now);
            }
        }
        *self.shared.write_tree() = tree;
        // The node hands out no snapshot below what it handed out to apply.
        assert!(
            book.backlog.back().is_none_or(|e| e.zxid <= zxid),
            "a snapshot at {zxid} below committed entries handed out to apply"
        );
        book.backlog.clear();
        book.note_applied(zxid.as_u64());
        Ok(())
    }

    /// Applies backlog entries, oldest first, for up to [`APPLY_SLICE`] (at least one).
    fn apply_slice(&mut self, book: &mut Book) -> Result<(), ServerError> {
        let (mut applied, mut failed) = (0, 0);
        let started = std::time::Instant::now();
        let mut tree = self.shared.write_tree();
        while let Some(entry) = book.backlog.pop_front() {
            let zxid = entry.zxid.as_u64();
            let txn =
                decode_txn(&entry.data).ok().filter(|txn| txn.zxid == zxid).ok_or_else(|| {
                    ServerError::TaskFailed {
                        task: "ensemble driver",
                        message: format!("committed entry {zxid:#x} does not decode as its txn"),
                    }
                })?;
            let result = tree.apply(&txn);
            self.shared.sessions.applied(&txn.op, zxid, &result);
            let result = result.map(|a| a.result);
            applied += 1;
            failed += u64::from(result.is_err());
            book.recent.push_back((zxid, result));
            if book.recent.len() > RECENT_RESULTS_MAX {
                book.recent.pop_front();
            }
            if started.elapsed() >= APPLY_SLICE {
                break;
            }
        }
        let applied_zxid = tree.last_zxid();
        drop(tree);
        book.note_applied(applied_zxid);
        Metrics::add(&self.shared.metrics.writes_total, applied);
        Metrics::add(&self.shared.metrics.writes_failed_total, failed);
        let rest = book.waiting.split_off(&(applied_zxid + 1));
        let done = std::mem::replace(&mut book.waiting, rest);
        for (zxid, pendings) in done {
            for pending in pendings {
                answer(book, zxid, pending, applied_zxid);
            }
        }
        self.cache.trim(Zxid::from_u64(applied_zxid), self.cache_keep, LOG_CACHE_BYTES_MAX);
        self.snapshots.maybe_request();
        Ok(())
    }

    /// After a round: publish the state; on a change of role, leader or phase,
    /// fail what waited on the old one and set up the new one.
    fn on_role(&mut self, book: &mut Book, forwarded: &mpsc::Sender<Forwarded>) {
        let status = self.node.status();
        let now = (status.role, status.broadcasting);
        let (role, leader) = match status.role {
            Role::Looking => (AdminRole::Looking, None),
            Role::Following { leader } => (AdminRole::Following, Some(leader)),
            Role::Leading => (AdminRole::Leading, Some(status.id)),
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
        });
        if book.was != Some(now) {
            book.catch_up_to = status.committed.as_u64();
            book.caught_up = book.applied >= book.catch_up_to;
        }
        self.shared.set_serving(status.broadcasting && book.caught_up);
        if book.was == Some(now) {
            return;
        }
        tracing::info!(
            %role,
            ?leader,
            broadcasting = status.broadcasting,
            epoch = status.current_epoch,
            "role changed"
        );
        book.was = Some(now);
        if status.role == Role::Looking {
            Metrics::add(&self.shared.metrics.elections_total, 1);
        }
        fail_waiting(book, &WriteError::Unknown(format!("this member is now {role}")));
        book.forwarder = None;
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

fn now_ms(book: &mut Book) -> i64 {
    book.last_time_ms = book.last_time_ms.max(clock::now_ms());
    book.last_time_ms
}

/// Answers a write whose zxid this member has applied (`applied` is its last).
fn answer(book: &Book, zxid: u64, pending: Pending, applied: u64) {
    match pending {
        Pending::Txn(reply) => {
            let result = book.recent.iter().rev().find(|(z, _)| *z == zxid).map(|(_, r)| r.clone());
            let outcome = match result {
                Some(result) => Ok(TxnReply { zxid, applied_zxid: applied, result }),
                None => Err(WriteError::Unknown(format!(
                    "txn {zxid:#x} was committed but its result is no longer known here"
                ))),
            };
            let _ = reply.send(outcome);
        }
        Pending::Sync(reply) => {
            let _ = reply.send(Ok(applied));
        }
    }
}

fn fail_waiting(book: &mut Book, error: &WriteError) {
    for (_, pendings) in std::mem::take(&mut book.waiting) {
        for pending in pendings {
            pending.fail(error.clone());
        }
    }
}

fn quorum_write_error(error: &QuorumError) -> WriteError {
    match error {
        QuorumError::TooManyInflight { max } => WriteError::QueueFull(*max),
        other => WriteError::NotServing(other.to_string()),
    }
}
