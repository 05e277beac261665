//! Routing client writes: a leader in broadcast proposes them, a follower in
//! broadcast forwards them to its leader on one ordered stream, anyone else
//! refuses them. Syncs are barriers; followers report their sessions' liveness.

use baton_api::peer::{Sessions, forward_request::Kind};
use baton_quorum::{QuorumError, zab::Role};
use baton_znode::{Auth, Txn, TxnOp, encode_txn};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{
    driver::{Book, Driver},
    transport::{Forwarded, Forwarder, Pending},
};
use crate::{
    clock,
    metrics::Stage,
    write_queue::{Write, WriteError},
};

impl Driver {
    /// A client write (local, or forwarded to this leader).
    pub(super) fn take_write(&mut self, book: &mut Book, write: Write) {
        let status = self.node.status();
        let write = match write {
            Write::Sync { reply } if cfg!(feature = "bug-stale-reads") => {
                // The deliberate bug: answered from this member's own state.
                self.wait_for(book, book.applied, Pending::Sync(reply));
                return;
            }
            write => write,
        };
        let write = match write {
            Write::Transfer { to, reply } => {
                let _ = reply.send(self.transfer(to));
                return;
            }
            Write::ReadIndex { reply } => {
                let ctx = book.next_read;
                book.next_read += 1;
                match self.node.read_index(ctx) {
                    Ok(()) => {
                        book.reads.insert(ctx, (reply, std::time::Instant::now()));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(WriteError::NotServing(error.to_string())));
                    }
                }
                return;
            }
            write => write,
        };
        if let Write::Txn { queued, .. } = &write {
            self.shared.metrics.stage(Stage::Queue, queued.elapsed());
        }
        match (status.role, status.broadcasting, write) {
            (Role::Leading, true, Write::Txn { session, auth, op, reply, .. }) => {
                match self.propose(book, session, auth, op) {
                    Ok(zxid) => book.waiting.entry(zxid).or_default().push(Pending::Txn(reply)),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            (Role::Leading, true, Write::Sync { reply }) if self.alone() => {
                // An ensemble of one cannot be deposed: what it committed is all
                // there is. The sync waits for everything proposed before it.
                let zxid = book.last_proposed.max(status.committed.as_u64());
                self.wait_for(book, zxid, Pending::Sync(reply));
            }
            (Role::Leading, true, Write::Sync { reply }) => {
                // A leader may have been deposed without knowing it yet (paused, cut
                // off): its own state is then stale. So a sync waits for a proposal
                // sent after it arrived to commit — a quorum of this epoch
                // acknowledging it proves no later leader had committed anything
                // before — sharing one with the round's other writes, or a no-op.
                let barrier = match book.barrier {
                    Some(zxid) => Ok(zxid),
                    None => self.propose(book, 0, Auth::none(), TxnOp::Multi(Vec::new())),
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
                    Write::Txn { session, auth, op, reply, .. } => {
                        let txn = Txn { auth, zxid: 0, time_ms: 0, session, op };
                        forwarder
                            .send(Kind::Txn(encode_txn(&txn).into()), Some(Pending::Txn(reply)));
                    }
                    Write::Sync { reply } => {
                        forwarder.send(Kind::Sync(true), Some(Pending::Sync(reply)))
                    }
                    Write::Transfer { reply, .. } | Write::ReadIndex { reply } => {
                        let _ = reply.send(Err(WriteError::Refused("taken above".into())));
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
    /// A membership change is decided here: the new configuration is proposed as a
    /// config entry, or the refusal is logged as a txn that fails with its reason
    /// (so a forwarded change learns it as any write learns its result).
    fn propose(
        &mut self,
        book: &mut Book,
        session: u64,
        auth: Auth,
        op: TxnOp,
    ) -> Result<u64, WriteError> {
        let op = match op {
            TxnOp::Reconfig(change) => match self.reconfigure(&change) {
                Ok(Some(zxid)) => {
                    book.barrier = Some(zxid);
                    book.last_proposed = zxid;
                    return Ok(zxid);
                }
                Ok(None) => {
                    return Err(WriteError::NotServing("this leader is handing over".into()));
                }
                Err(reason) => {
                    tracing::info!(%reason, ?change, "membership change refused");
                    TxnOp::ConfigRefused { reason }
                }
            },
            op => op,
        };
        let time_ms = now_ms(book);
        let proposed = self.node.propose_with(|zxid| {
            let txn = Txn { auth, zxid: zxid.as_u64(), time_ms, session, op };
            Bytes::from(encode_txn(&txn))
        });
        let zxid = proposed.map_err(|error| quorum_write_error(&error))?.as_u64();
        book.proposed.push_back((zxid, std::time::Instant::now()));
        book.barrier = Some(zxid);
        book.last_proposed = zxid;
        Ok(zxid)
    }

    /// A stream of forwarded writes to `leader`.
    pub(super) fn forwarder_to(
        &self,
        leader: u64,
        forwarded: &mpsc::Sender<Forwarded>,
    ) -> Option<Forwarder> {
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
    pub(super) fn renew_forwarder(&self, book: &mut Book, forwarded: &mpsc::Sender<Forwarded>) {
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
    pub(super) fn report_touches(&self, book: &Book) {
        // Taken every tick, whoever leads: the set must not grow while nobody reads it.
        let touched = self.shared.sessions.take_touched();
        if let Some(forwarder) = &book.forwarder
            && !touched.is_empty()
        {
            forwarder.send(Kind::Touch(Sessions { sessions: touched }), None);
        }
    }
}

impl Driver {
    /// Hands leadership over (see `Node::transfer_leadership`).
    pub(super) fn transfer(&mut self, to: u64) -> Result<u64, WriteError> {
        let to = (to != 0).then_some(to);
        match self.node.transfer_leadership(to) {
            Ok(successor) => {
                tracing::info!(successor, "handing leadership over");
                Ok(successor)
            }
            Err(QuorumError::NotLeader { leader: Some(leader) }) => Err(WriteError::Refused(
                format!("this member does not lead: server {leader} does; ask it"),
            )),
            Err(QuorumError::BadMembership { reason }) => Err(WriteError::Refused(reason)),
            Err(other) => Err(WriteError::NotServing(other.to_string())),
        }
    }

    /// Proposes the configuration a membership change asks for: its zxid, `None`
    /// when this leader cannot propose now (handing over: the client retries), or
    /// why the change is refused.
    fn reconfigure(&mut self, change: &baton_znode::ReconfigOp) -> Result<Option<u64>, String> {
        if self.alone() {
            return Err("this server runs alone (started without --peers): its membership \
                        cannot change"
                .into());
        }
        let (active, _) = self.node.membership();
        let members = crate::membership::apply_change(active, change)?;
        match self.node.propose_config(members) {
            Ok(zxid) => {
                tracing::info!(version = %zxid, ?change, "membership change proposed");
                Ok(Some(zxid.as_u64()))
            }
            Err(QuorumError::ConfigInFlight { pending }) => Err(format!(
                "membership change {:x} is still in flight: one change at a time",
                pending.as_u64()
            )),
            Err(QuorumError::BadMembership { reason }) => Err(reason),
            Err(QuorumError::Transferring { .. }) => Ok(None),
            Err(other) => Err(other.to_string()),
        }
    }
}

/// The time a txn carries: the wall clock, never going back within a run.
fn now_ms(book: &mut Book) -> i64 {
    book.last_time_ms = book.last_time_ms.max(clock::now_ms());
    book.last_time_ms
}

fn quorum_write_error(error: &QuorumError) -> WriteError {
    match error {
        QuorumError::TooManyInflight { max } => WriteError::QueueFull(*max),
        other => WriteError::NotServing(other.to_string()),
    }
}
