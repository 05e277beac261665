//! One connected session stream: requests in, replies out in request order.
//!
//! Two tasks. The reader takes each request off the stream, touches the session,
//! and turns it into a slot: a write is validated and queued to the driver at once
//! (so a session's writes pipeline), a read is kept as it is. The responder takes
//! the slots in order: it waits for a write's outcome, and runs a read only then —
//! after every earlier request of the session is answered, so a session reads its
//! own writes. Replies therefore leave in request order, and always after the
//! watch events of the changes they reflect (those were queued when the change was
//! applied).
//!
//! The stream's identities (its address, certificate and the credentials of its
//! Connect) grow with each AddAuth, in request order: the reader stamps every
//! write and read with the identities it had when it was read.

use std::{sync::Arc, time::Instant};

use baton_api::{
    convert,
    pb::{self, request::Op, session_response::Kind},
    session::{
        persistent_kind_from_pb, remove_kind_from_pb, watch_event_to_pb, watch_spec_from_pb,
    },
    status::{ErrorCode, error_status, txn_error_status, znode_error_status},
};
use baton_znode::{
    Auth, DataTree, OpResult, TxnOp, ZnodeError, validate_op, validate_path, watch::WatchKind,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tonic::Status;

use super::{Incoming, Outgoing, SESSION_INFLIGHT_MAX, SESSION_OUTBOUND_MAX};
use crate::{
    access,
    grpc::identities_to_pb,
    metrics::Metrics,
    shared::Shared,
    write_queue::{TxnReply, WriteError, WriteQueue},
};

pub(super) struct Conn {
    pub(super) shared: Arc<Shared>,
    pub(super) writes: WriteQueue,
    pub(super) session: u64,
    pub(super) conn_id: u64,
    /// Who the stream is when it starts.
    pub(super) auth: Auth,
    pub(super) incoming: Incoming,
    pub(super) out: mpsc::Sender<Outgoing>,
}

type WriteOutcome = oneshot::Receiver<Result<TxnReply, WriteError>>;

/// A request waiting for its turn to be answered.
enum Slot {
    /// Queued to the driver; `op` tells how to shape the reply.
    Write { xid: u64, kind: WriteKind, outcome: WriteOutcome, received: Instant },
    Sync {
        xid: u64,
        path: String,
        outcome: oneshot::Receiver<Result<u64, WriteError>>,
        received: Instant,
    },
    /// Answered when its turn comes, with the identities it was sent with.
    Read { xid: u64, watch: bool, op: Op, auth: Auth },
    /// Already answered (a request refused before it was queued).
    Ready(pb::Reply),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Create,
    Delete,
    Set,
    Multi,
    Close,
    SetAcl,
}

impl WriteKind {
    /// Its name in the request metrics.
    fn name(self) -> &'static str {
        match self {
            WriteKind::Create => "create",
            WriteKind::Delete => "delete",
            WriteKind::Set => "set",
            WriteKind::Multi => "multi",
            WriteKind::Close => "close",
            WriteKind::SetAcl => "set_acl",
        }
    }
}

/// A read's name in the request metrics.
fn read_name(op: &Op) -> &'static str {
    match op {
        Op::Get(_) => "get",
        Op::Exists(_) => "exists",
        Op::Children(_) => "children",
        Op::AddWatch(_) => "add_watch",
        Op::RemoveWatch(_) => "remove_watch",
        Op::GetAcl(_) => "get_acl",
        Op::GetEphemerals(_) => "get_ephemerals",
        Op::CountDescendants(_) => "count_descendants",
        _ => "ping",
    }
}

pub(super) fn spawn(conn: Conn) {
    // Boxed slots, as the outgoing messages are (`Outgoing`): the queue's first block
    // is allocated with it.
    let (slots, queued) = mpsc::channel::<Box<Slot>>(SESSION_INFLIGHT_MAX);
    let Conn { shared, writes, session, conn_id, auth, incoming, out } = conn;
    let reader = Reader { shared: Arc::clone(&shared), writes, session, conn_id, auth };
    tokio::spawn(read_requests(reader, conn_id, incoming, slots));
    tokio::spawn(respond(shared, session, conn_id, queued, out));
}

/// What the reader task keeps: the stream's identities change with AddAuth.
struct Reader {
    shared: Arc<Shared>,
    writes: WriteQueue,
    session: u64,
    conn_id: u64,
    auth: Auth,
}

async fn read_requests(
    mut reader: Reader,
    conn_id: u64,
    mut incoming: Incoming,
    slots: mpsc::Sender<Box<Slot>>,
) {
    let (shared, session) = (Arc::clone(&reader.shared), reader.session);
    loop {
        let request = match incoming.next().await.transpose() {
            Ok(Some(pb::SessionRequest { kind: Some(pb::session_request::Kind::Request(r)) })) => r,
            Ok(Some(_)) => {
                let error = bad("a session stream takes one Connect, then only Requests");
                let _ = slots.send(Box::new(Slot::Ready(error_reply(0, &error)))).await;
                break;
            }
            // The client went away or closed its side: the session lives on until it
            // resumes elsewhere, closes, or expires.
            Ok(None) | Err(_) => break,
        };
        if !shared.sessions.touch(session) {
            // Expired or closing: the close txn in flight ends the stream.
            let expired = error_status(
                ErrorCode::SessionExpired,
                format!("session 0x{session:016x} expired"),
                "",
                None,
            );
            let _ = slots.send(Box::new(Slot::Ready(error_reply(request.xid, &expired)))).await;
            break;
        }
        let closing = matches!(request.op, Some(Op::Close(_)));
        if closing {
            shared.sessions.set_closing(session, conn_id);
        }
        let slot = reader.slot_for(request);
        if slots.send(Box::new(slot)).await.is_err() || closing {
            break;
        }
    }
}

impl Reader {
    fn slot_for(&mut self, request: pb::Request) -> Slot {
        let xid = request.xid;
        let (shared, writes, session) = (&self.shared, &self.writes, self.session);
        let auth = self.auth.clone();
        let queue = |kind: WriteKind, op: Result<TxnOp, Status>| -> Slot {
            let op = match op {
                Ok(op) => op,
                Err(status) => return Slot::Ready(error_reply(xid, &status)),
            };
            let checked = baton_znode::acl::fixup_op(op, &auth)
                .and_then(|op| validate_op(&op, &shared.limits).map(|()| op));
            let op = match checked {
                Ok(op) => op,
                Err(error) => return Slot::Ready(error_reply(xid, &txn_error_status(&error))),
            };
            match writes.queue(session, auth.clone(), op) {
                Ok(outcome) => Slot::Write { xid, kind, outcome, received: Instant::now() },
                Err(error) => Slot::Ready(error_reply(xid, &error.status())),
            }
        };
        match request.op {
            Some(Op::Create(create)) => {
                queue(WriteKind::Create, convert::create_op_from_pb(create).map(TxnOp::Create))
            }
            Some(Op::Delete(delete)) => {
                queue(WriteKind::Delete, Ok(TxnOp::Delete(convert::delete_op_from_pb(delete))))
            }
            Some(Op::Set(set)) => {
                queue(WriteKind::Set, Ok(TxnOp::SetData(convert::set_op_from_pb(set))))
            }
            Some(Op::Multi(multi)) => {
                queue(WriteKind::Multi, convert::multi_ops_from_pb(multi).map(TxnOp::Multi))
            }
            Some(Op::SetAcl(set)) => {
                queue(WriteKind::SetAcl, convert::set_acl_op_from_pb(set).map(TxnOp::SetAcl))
            }
            Some(Op::Close(_)) => queue(WriteKind::Close, Ok(TxnOp::CloseSession { session })),
            Some(Op::Sync(sync)) => match writes.queue_sync() {
                Ok(outcome) => {
                    Slot::Sync { xid, path: sync.path, outcome, received: Instant::now() }
                }
                Err(error) => Slot::Ready(error_reply(xid, &error.status())),
            },
            Some(Op::AddAuth(add)) => Slot::Ready(self.add_auth(xid, &add)),
            Some(Op::WhoAmI(_)) => {
                let zxid = shared.read_tree().map(|tree| tree.last_zxid()).unwrap_or(0);
                let identities = identities_to_pb(&self.auth);
                let body = pb::WhoAmIResponse { header: header(zxid), identities };
                Slot::Ready(reply(xid, zxid, pb::reply::Result::WhoAmI(body)))
            }
            Some(op) => Slot::Read { xid, watch: request.watch, op, auth },
            None => Slot::Ready(error_reply(xid, &bad("a Request must carry an op"))),
        }
    }

    /// Adds what the credentials prove to the stream's identities, or answers
    /// AUTH_FAILED and adds nothing.
    fn add_auth(&mut self, xid: u64, add: &pb::AddAuthRequest) -> pb::Reply {
        let _timer = self.shared.metrics.time("add_auth");
        match super::authenticated(&self.shared, self.session, &self.auth, add) {
            Ok(auth) => {
                self.auth = auth;
                self.shared.sessions.set_auth(self.session, self.conn_id, self.auth.clone());
                let zxid = self.shared.read_tree().map(|tree| tree.last_zxid()).unwrap_or(0);
                reply(
                    xid,
                    zxid,
                    pb::reply::Result::Empty(pb::EmptyResponse { header: header(zxid) }),
                )
            }
            Err(status) => error_reply(xid, &status),
        }
    }
}

async fn respond(
    shared: Arc<Shared>,
    session: u64,
    conn_id: u64,
    mut slots: mpsc::Receiver<Box<Slot>>,
    out: mpsc::Sender<Outgoing>,
) {
    while let Some(slot) = slots.recv().await {
        let (reply, last) = match *slot {
            Slot::Ready(reply) => (reply, false),
            Slot::Write { xid, kind, outcome, received } => {
                let outcome = outcome.await.unwrap_or(Err(WriteError::ShuttingDown));
                shared.metrics.observe(kind.name(), received.elapsed());
                (write_reply(xid, kind, outcome), kind == WriteKind::Close)
            }
            Slot::Sync { xid, path, outcome, received } => {
                let outcome = outcome.await.unwrap_or(Err(WriteError::ShuttingDown));
                shared.metrics.observe("sync", received.elapsed());
                let reply = match outcome {
                    Ok(zxid) => reply(
                        xid,
                        zxid,
                        pb::reply::Result::Sync(pb::SyncResponse { header: header(zxid), path }),
                    ),
                    Err(error) => error_reply(xid, &error.status()),
                };
                (reply, false)
            }
            Slot::Read { xid, op: Op::SetWatches(set), .. } => {
                let _timer = shared.metrics.time("set_watches");
                match set_watches(&shared, session, set, &out).await {
                    Ok(zxid) => (reply(xid, zxid, empty(zxid)), false),
                    Err(SetWatchesError::Refused(status)) => (error_reply(xid, &status), false),
                    Err(SetWatchesError::Gone) => break,
                }
            }
            Slot::Read { xid, watch, op, auth } => {
                // A read's reply is queued before the read lock is let go: a change
                // applied after the read (and the event it fires on a watch this read
                // set) can only be queued after it. Otherwise the client would see
                // the event before the reply that set the watch.
                let Ok(permit) = out.reserve().await else { break };
                let _timer = shared.metrics.time(read_name(&op));
                read(&shared, session, xid, (watch, &auth), op, permit);
                continue;
            }
        };
        let message = pb::SessionResponse { kind: Some(Kind::Reply(reply)) };
        if out.send(Box::new(message)).await.is_err() || last {
            break;
        }
    }
    shared.sessions.detach(session, conn_id);
}

enum SetWatchesError {
    Refused(Status),
    /// The stream ended.
    Gone,
}

/// Sets the watches of a resuming client again and queues the events of what changed
/// after its relative zxid; returns the zxid of the tree it looked at. Each chunk is
/// done under the tree's read lock with room reserved for all of its events first,
/// so no later change's event can be queued ahead of a missed event of the same watch.
async fn set_watches(
    shared: &Shared,
    session: u64,
    set: pb::SetWatchesRequest,
    out: &mpsc::Sender<Outgoing>,
) -> Result<u64, SetWatchesError> {
    let refused = |status| Err(SetWatchesError::Refused(status));
    if set.watches.len() > super::service::RESUME_WATCHES_MAX {
        let max = super::service::RESUME_WATCHES_MAX;
        return refused(bad(&format!("setWatches may name at most {max} watches at once")));
    }
    let specs = match set.watches.into_iter().map(watch_spec_from_pb).collect::<Result<Vec<_>, _>>()
    {
        Ok(specs) => specs,
        Err(status) => return refused(status),
    };
    let mut zxid = 0;
    // Each spec gives at most one event; a chunk leaves room for the reply.
    for chunk in specs.chunks(SESSION_OUTBOUND_MAX / 2) {
        let Ok(permits) = out.reserve_many(chunk.len()).await else {
            return Err(SetWatchesError::Gone);
        };
        let Ok(tree) = shared.read_tree() else {
            return refused(error_status(
                ErrorCode::SystemError,
                "the server is failing",
                "",
                None,
            ));
        };
        zxid = tree.last_zxid();
        let missed = if set.quiet_persistent {
            let (persistent, one_shot): (Vec<_>, Vec<_>) =
                chunk.iter().cloned().partition(|spec| spec.kind.is_persistent());
            let mut watches = shared.sessions.watches();
            persistent
                .iter()
                .try_for_each(|spec| watches.add(session, &spec.path, spec.kind.registered()))
                .and_then(|()| watches.reregister(&tree, session, set.relative_zxid, &one_shot))
        } else {
            shared.sessions.watches().reregister(&tree, session, set.relative_zxid, chunk)
        };
        let missed = match missed {
            Ok(missed) => missed,
            Err(error) => return refused(baton_api::status::watch_error_status(&error)),
        };
        for (permit, event) in permits.zip(missed.iter()) {
            let event = pb::SessionResponse { kind: Some(Kind::Event(watch_event_to_pb(event))) };
            permit.send(Box::new(event));
        }
        drop(tree);
    }
    if zxid == 0 {
        zxid = shared.read_tree().map(|tree| tree.last_zxid()).unwrap_or(0);
    }
    Ok(zxid)
}

fn empty(zxid: u64) -> pb::reply::Result {
    pb::reply::Result::Empty(pb::EmptyResponse { header: header(zxid) })
}

/// Runs a read, sets its watch and queues its reply, all under the tree's read
/// lock: no change can slip between what the reply shows and the watch being set,
/// nor queue its event ahead of the reply.
fn read(
    shared: &Shared,
    session: u64,
    xid: u64,
    (watch, auth): (bool, &Auth),
    op: Op,
    permit: mpsc::Permit<'_, Outgoing>,
) {
    Metrics::add(&shared.metrics.reads_total, 1);
    let send = |reply: pb::Reply| pb::SessionResponse { kind: Some(Kind::Reply(reply)) };
    if !shared.serves_reads() {
        let message = "not serving: this member is not in broadcast; try another";
        let status = error_status(ErrorCode::ConnectionLoss, message, "", None);
        permit.send(Box::new(send(error_reply(xid, &status))));
        return;
    }
    let Ok(tree) = shared.read_tree() else {
        let status = error_status(ErrorCode::SystemError, "the server is failing", "", None);
        permit.send(Box::new(send(error_reply(xid, &status))));
        return;
    };
    let zxid = tree.last_zxid();
    let reply = match read_op(shared, &tree, session, (watch, auth), op) {
        Ok(result) => reply(xid, zxid, result),
        Err(status) => error_reply(xid, &status),
    };
    permit.send(Box::new(send(reply)));
    drop(tree);
}

fn read_op(
    shared: &Shared,
    tree: &DataTree,
    session: u64,
    (watch, auth): (bool, &Auth),
    op: Op,
) -> Result<pb::reply::Result, Status> {
    use pb::reply::Result as R;
    let zxid = tree.last_zxid();
    let set_watch = |path: &str, kind: WatchKind| -> Result<(), Status> {
        if watch {
            shared
                .sessions
                .watches()
                .add(session, path, kind)
                .map_err(|e| baton_api::status::watch_error_status(&e))?;
        }
        Ok(())
    };
    let znode = |e: ZnodeError| znode_error_status(&e);
    let linearizable = match &op {
        Op::Get(get) => get.linearizable.then_some(get.path.as_str()),
        Op::Exists(exists) => exists.linearizable.then_some(exists.path.as_str()),
        Op::Children(children) => children.linearizable.then_some(children.path.as_str()),
        _ => None,
    };
    if let Some(path) = linearizable {
        // A session answers in order from this member's tree: a read that waits for
        // its leader's confirmation would hold up the stream.
        let message = "linearizable reads are unary calls (Baton.Get, Exists, Children); \
                       in a session, sync then read";
        return Err(error_status(ErrorCode::BadArguments, message, path, None));
    }
    match op {
        Op::Get(get) => {
            access::may_read(tree, &get.path, auth).map_err(znode)?;
            let (data, stat) = tree.get(&get.path).map_err(znode)?;
            set_watch(&get.path, WatchKind::Data)?;
            let stat = Some(convert::stat_to_pb(&stat));
            Ok(R::Get(pb::GetResponse { header: header(zxid), data, stat }))
        }
        Op::Exists(exists) => {
            let stat = access::stat_checked(tree, &exists.path, auth).map_err(znode)?;
            // On a missing node too: it fires when the node is created.
            set_watch(&exists.path, WatchKind::Data)?;
            let stat = stat.as_ref().map(convert::stat_to_pb);
            Ok(R::Exists(pb::ExistsResponse { header: header(zxid), stat }))
        }
        Op::Children(children) => {
            access::may_read(tree, &children.path, auth).map_err(znode)?;
            let (names, stat) = tree.children(&children.path).map_err(znode)?;
            crate::grpc::listing_fits(&children.path, &names)?;
            set_watch(&children.path, WatchKind::Child)?;
            let stat = Some(convert::stat_to_pb(&stat));
            Ok(R::Children(pb::ChildrenResponse { header: header(zxid), children: names, stat }))
        }
        Op::AddWatch(add) => {
            validate_path(&add.path).map_err(znode)?;
            let kind = persistent_kind_from_pb(add.kind)?;
            shared
                .sessions
                .watches()
                .add(session, &add.path, kind)
                .map_err(|e| baton_api::status::watch_error_status(&e))?;
            Ok(R::Empty(pb::EmptyResponse { header: header(zxid) }))
        }
        Op::RemoveWatch(remove) => {
            let which = remove_kind_from_pb(remove.kind)?;
            let mut watches = shared.sessions.watches();
            let done = if remove.check_only {
                watches.check(session, &remove.path, which)
            } else {
                watches.remove(session, &remove.path, which)
            };
            done.map_err(|e| baton_api::status::watch_error_status(&e))?;
            Ok(R::Empty(pb::EmptyResponse { header: header(zxid) }))
        }
        Op::GetEphemerals(get) => {
            let mut paths: Vec<String> = tree
                .ephemerals(session)
                .into_iter()
                .filter(|path| path.starts_with(&get.prefix))
                .collect();
            paths.sort_unstable();
            Ok(R::GetEphemerals(pb::GetEphemeralsResponse { header: header(zxid), paths }))
        }
        Op::CountDescendants(count) => {
            access::may_read(tree, &count.path, auth).map_err(znode)?;
            let count = descendants(tree, &count.path).map_err(znode)?;
            Ok(R::CountDescendants(pb::CountDescendantsResponse { header: header(zxid), count }))
        }
        Op::GetAcl(get) => {
            let (acl, stat) = access::acl_checked(tree, &get.path, auth).map_err(znode)?;
            Ok(R::GetAcl(pb::GetAclResponse {
                header: header(zxid),
                acl: convert::acl_to_pb(&acl),
                stat: Some(convert::stat_to_pb(&stat)),
            }))
        }
        Op::Ping(_) => Ok(R::Empty(pb::EmptyResponse { header: header(zxid) })),
        // Writes, auth and whoami never become a Read slot.
        Op::Create(_)
        | Op::Delete(_)
        | Op::Set(_)
        | Op::Multi(_)
        | Op::Sync(_)
        | Op::Close(_)
        | Op::SetAcl(_)
        | Op::AddAuth(_)
        | Op::SetWatches(_)
        | Op::WhoAmI(_) => {
            Err(error_status(ErrorCode::SystemError, "internal error: not a read", "", None))
        }
    }
}

/// How many nodes are below `path` (not counting it). A walk of the subtree, as
/// ZooKeeper's getAllChildrenNumber.
fn descendants(tree: &DataTree, path: &str) -> Result<u64, ZnodeError> {
    let mut count = 0u64;
    let mut pending = vec![path.to_owned()];
    while let Some(at) = pending.pop() {
        let Ok((names, _)) = tree.children(&at) else {
            // Only the root of the walk can be missing (the tree is read-locked).
            if at == path {
                return Err(ZnodeError::NoNode { path: path.to_owned() });
            }
            continue;
        };
        count += names.len() as u64;
        let base = if at == "/" { "" } else { at.as_str() };
        pending.extend(names.into_iter().map(|name| format!("{base}/{name}")));
    }
    Ok(count)
}

fn write_reply(xid: u64, kind: WriteKind, outcome: Result<TxnReply, WriteError>) -> pb::Reply {
    use pb::reply::Result as R;
    let TxnReply { applied_zxid: zxid, result, .. } = match outcome {
        Ok(reply) => reply,
        Err(error) => return error_reply(xid, &error.status()),
    };
    let result = match result {
        Ok(result) => result,
        Err(error) => return error_reply(xid, &txn_error_status(&error)),
    };
    let h = header(zxid);
    let body = match (kind, result) {
        (WriteKind::Create, OpResult::Created { path, stat }) => R::Create(pb::CreateResponse {
            header: h,
            path,
            stat: Some(convert::stat_to_pb(&stat)),
        }),
        (WriteKind::Delete, OpResult::Deleted) => R::Delete(pb::DeleteResponse { header: h }),
        (WriteKind::Set, OpResult::SetData { stat }) => {
            R::Set(pb::SetResponse { header: h, stat: Some(convert::stat_to_pb(&stat)) })
        }
        (WriteKind::Multi, OpResult::Multi(results)) => R::Multi(pb::MultiResponse {
            header: h,
            results: results.iter().map(convert::op_result_to_pb).collect(),
        }),
        (WriteKind::Close, OpResult::SessionClosed) => R::Empty(pb::EmptyResponse { header: h }),
        (WriteKind::SetAcl, OpResult::AclSet { stat }) => {
            R::SetAcl(pb::SetAclResponse { header: h, stat: Some(convert::stat_to_pb(&stat)) })
        }
        (_, other) => {
            let message = format!("internal error: unexpected {other:?}");
            return error_reply(xid, &error_status(ErrorCode::SystemError, message, "", None));
        }
    };
    reply(xid, zxid, body)
}

fn header(zxid: u64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader { zxid })
}

fn reply(xid: u64, zxid: u64, result: pb::reply::Result) -> pb::Reply {
    pb::Reply { xid, zxid, result: Some(result) }
}

fn error_reply(xid: u64, status: &Status) -> pb::Reply {
    let error = baton_api::status::error_from_status(status);
    pb::Reply { xid, zxid: 0, result: Some(pb::reply::Result::Error(error)) }
}

fn bad(message: &str) -> Status {
    error_status(ErrorCode::BadArguments, message, "", None)
}
