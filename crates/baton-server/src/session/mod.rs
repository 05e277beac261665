//! Sessions on this server: liveness (the tracker), watches (the registry) and the
//! streams of connected sessions (where watch events go).
//!
//! The driver calls [`SessionHub::applied`] for every applied txn while it holds the
//! tree's write lock. That is what makes the ordering guarantee hold: a change's
//! watch events are queued on a session's stream before anyone can read the changed
//! tree, so before any reply that reflects the change.
//!
//! Lock order, everywhere: tree → tracker → watches → conns. Never the other way.
//!
//! # Layout
//! - `tracker`: [`tracker::SessionTracker`], expiry by tick buckets (pure).
//! - `ids`: new session ids and passwords.
//! - `outbound`: a session's outgoing stream, bounded and killable.
//! - `service`: the `baton.v1.Sessions` gRPC service: connect / resume.
//! - `conn`: one connected stream: requests in, replies in order out.
//! - `expiry`: the task that logs the close of expired sessions.

mod conn;
pub(crate) mod expiry;
mod ids;
mod outbound;
pub(crate) mod service;
pub(crate) mod tracker;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use baton_api::{
    pb,
    session::watch_event_to_pb,
    status::{ErrorCode, error_status},
};
use baton_znode::{
    Applied, Auth, Change, ChangeKind, DataTree, Perms, TxnError, TxnOp,
    watch::{WatchLimits, WatchRegistry},
};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use self::{ids::SessionIds, tracker::SessionTracker};

/// Messages queued for one session's stream. Beyond this the client is not reading
/// its stream: it is disconnected (its session lives on until it expires) rather
/// than letting the server's memory grow or other sessions stall.
pub(crate) const SESSION_OUTBOUND_MAX: usize = 4_096;

/// Requests of one session received and not yet answered. Beyond this the server
/// stops reading the session's stream (HTTP/2 flow control pushes back).
pub(crate) const SESSION_INFLIGHT_MAX: usize = 1_024;

/// Sessions whose close one expiry round submits.
pub(crate) const EXPIRED_PER_ROUND_MAX: usize = 1_000;

/// Open sessions the server allows (connected or not). New sessions beyond it are
/// refused; resuming ones are not.
pub(crate) const SESSIONS_MAX: usize = 100_000;

/// A message queued for a session's stream, boxed: a tokio queue allocates its first
/// block of 32 slots when it is made, and a `SessionResponse` is 144 bytes, so every
/// session held two such blocks (this and its request slots) of ~4.6 KiB each.
pub(crate) type Outgoing = Box<pb::SessionResponse>;

/// A session stream's requests: a gRPC stream, or the translation of a ZooKeeper
/// protocol connection.
pub(crate) type Incoming = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<pb::SessionRequest, Status>> + Send + 'static>,
>;

/// A connected stream of a session.
#[derive(Debug)]
struct Conn {
    /// Tells this stream from a later one of the same session.
    conn_id: u64,
    out: mpsc::Sender<Outgoing>,
    kill: Option<oneshot::Sender<Status>>,
    /// The client asked to close: its close reply, not a kill, ends the stream.
    closing: bool,
    /// The stream's identities (they grow with AddAuth): what its
    /// persistent-recursive watches may report.
    auth: Auth,
}

impl Conn {
    fn kill(mut self, status: Status) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(status);
        }
    }
}

#[derive(Debug)]
pub(crate) struct SessionHub {
    started: Instant,
    tracker: Mutex<SessionTracker>,
    watches: Mutex<WatchRegistry>,
    conns: Mutex<HashMap<u64, Conn>>,
    ids: SessionIds,
    next_conn_id: AtomicU64,
    /// Sessions heard from since the ensemble driver last took them (a follower
    /// reports them to its leader, which alone expires sessions). At most one
    /// entry per session.
    touched: Mutex<BTreeSet<u64>>,
}

/// The locks are only held for short, panic-free sections; a poisoned one means a
/// bug elsewhere already crashed a task, and the data under it is still consistent
/// enough to keep serving (it holds no invariant across the panic point).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SessionHub {
    /// A hub for a server with `server_id`, knowing the sessions the recovered tree
    /// holds: each gets a full timeout from now (as ZooKeeper does on restart).
    pub(crate) fn new(server_id: u8, tick_ms: u64, tree: &DataTree) -> SessionHub {
        let hub = SessionHub {
            started: Instant::now(),
            tracker: Mutex::new(SessionTracker::new(tick_ms)),
            watches: Mutex::new(WatchRegistry::new(WatchLimits::default())),
            conns: Mutex::new(HashMap::new()),
            ids: SessionIds::new(server_id),
            next_conn_id: AtomicU64::new(1),
            touched: Mutex::new(BTreeSet::new()),
        };
        let now = hub.now_ms();
        let mut tracker = lock(&hub.tracker);
        for session in tree.sessions() {
            tracker.add(session.session, u64::from(session.timeout_ms), now);
        }
        drop(tracker);
        hub
    }

    /// Monotonic milliseconds since the hub started: the tracker's clock.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Called by the driver for each applied txn, under the tree's write lock.
    pub(crate) fn applied(
        &self,
        tree: &DataTree,
        op: &TxnOp,
        zxid: u64,
        result: &Result<Applied, TxnError>,
    ) {
        let Ok(applied) = result else { return };
        if let TxnOp::CreateSession { session, timeout_ms, .. } = op {
            lock(&self.tracker).add(*session, u64::from(*timeout_ms), self.now_ms());
        }
        if !applied.changes.is_empty() {
            self.dispatch(tree, &applied.changes, zxid);
        }
        // After the events: a session closing on its own request is told of the deletes
        // of its ephemerals before its close's reply, as ZooKeeper tells it.
        if let TxnOp::CloseSession { session } = op {
            lock(&self.tracker).remove(*session);
            lock(&self.watches).remove_watcher(*session);
            let conn = lock(&self.conns).remove(session);
            if let Some(conn) = conn.filter(|c| !c.closing) {
                let message = format!("session 0x{session:016x} expired");
                conn.kill(error_status(ErrorCode::SessionExpired, message, "", None));
            }
        }
    }

    /// Queues the watch events of applied changes on the streams of their sessions.
    fn dispatch(&self, tree: &DataTree, changes: &[Change], zxid: u64) {
        let mut watches = lock(&self.watches);
        let mut conns = lock(&self.conns);
        let events = watches.trigger_visible(changes, zxid, |session, change| {
            conns.get(&session).is_some_and(|conn| may_see(tree, &conn.auth, change))
        });
        drop(watches);
        if events.is_empty() {
            return;
        }
        let mut slow = Vec::new();
        for (session, event) in events {
            let Some(conn) = conns.get(&session) else { continue };
            let message = pb::SessionResponse {
                kind: Some(pb::session_response::Kind::Event(watch_event_to_pb(&event))),
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = conn.out.try_send(Box::new(message)) {
                slow.push(session);
            }
        }
        let slow: Vec<(u64, Conn)> =
            slow.into_iter().filter_map(|s| conns.remove(&s).map(|c| (s, c))).collect();
        drop(conns);
        for (session, conn) in slow {
            tracing::warn!(session = %format!("0x{session:016x}"), "slow consumer disconnected");
            lock(&self.watches).remove_watcher(session);
            let message = format!(
                "session 0x{session:016x} did not read its stream: {SESSION_OUTBOUND_MAX} \
                 messages were waiting; disconnected (the session lives until it expires)"
            );
            conn.kill(error_status(ErrorCode::SystemError, message, "", None));
        }
    }

    /// A sign of life; false if the session is unknown here or closing.
    pub(crate) fn touch(&self, session: u64) -> bool {
        let now = self.now_ms();
        let known = lock(&self.tracker).touch(session, now);
        if known {
            lock(&self.touched).insert(session);
        }
        known
    }

    /// The sessions touched since the last call (for the leader).
    pub(crate) fn take_touched(&self) -> Vec<u64> {
        std::mem::take(&mut *lock(&self.touched)).into_iter().collect()
    }

    pub(crate) fn session_count(&self) -> usize {
        lock(&self.tracker).len()
    }

    pub(crate) fn watch_count(&self) -> usize {
        lock(&self.watches).len()
    }

    pub(crate) fn watches(&self) -> MutexGuard<'_, WatchRegistry> {
        lock(&self.watches)
    }

    pub(crate) fn tracker(&self) -> MutexGuard<'_, SessionTracker> {
        lock(&self.tracker)
    }

    pub(crate) fn ids(&self) -> &SessionIds {
        &self.ids
    }

    /// Registers a stream for `session`, replacing (and ending, with SESSION_MOVED)
    /// any earlier stream of it. Returns the new stream's id.
    /// Ends every connected stream with UNAVAILABLE (the client resumes its session
    /// on another server); the sessions themselves live on.
    pub(crate) fn disconnect_all(&self, why: &str) {
        let conns: Vec<Conn> = lock(&self.conns).drain().map(|(_, conn)| conn).collect();
        for conn in conns {
            conn.kill(Status::unavailable(why.to_owned()));
        }
    }

    fn attach(
        &self,
        session: u64,
        auth: Auth,
        out: mpsc::Sender<Outgoing>,
        kill: oneshot::Sender<Status>,
    ) -> u64 {
        let conn_id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let conn = Conn { conn_id, out, kill: Some(kill), closing: false, auth };
        let old = lock(&self.conns).insert(session, conn);
        if let Some(old) = old {
            let message = format!("session 0x{session:016x} moved to another connection");
            old.kill(error_status(ErrorCode::SessionMoved, message, "", None));
        }
        conn_id
    }

    /// The stream's identities grew (AddAuth).
    fn set_auth(&self, session: u64, conn_id: u64, auth: Auth) {
        if let Some(conn) = lock(&self.conns).get_mut(&session).filter(|c| c.conn_id == conn_id) {
            conn.auth = auth;
        }
    }

    /// Forgets a stream that ended (if it is still the session's current one) and
    /// the watches it had set: a resuming client sets them again.
    fn detach(&self, session: u64, conn_id: u64) {
        let mut conns = lock(&self.conns);
        if conns.get(&session).is_some_and(|c| c.conn_id == conn_id) {
            conns.remove(&session);
            drop(conns);
            lock(&self.watches).remove_watcher(session);
        }
    }

    /// Marks the stream as closing on the client's request.
    fn set_closing(&self, session: u64, conn_id: u64) {
        lock(&self.tracker).set_closing(session);
        if let Some(conn) = lock(&self.conns).get_mut(&session).filter(|c| c.conn_id == conn_id) {
            conn.closing = true;
        }
    }
}

/// Whether a persistent-recursive watch with `auth` may report `change`: READ on the
/// node, or for a deletion on its parent (whoever may list the parent sees the name
/// go). A node a later op of the same txn removed is judged by its nearest ancestor
/// still there.
fn may_see(tree: &DataTree, auth: &Auth, change: &Change) -> bool {
    let mut at = match change.kind {
        ChangeKind::NodeDeleted => baton_znode::parent(&change.path),
        _ => Some(change.path.as_str()),
    };
    while let Some(path) = at {
        match tree.authorize(path, auth, Perms::READ) {
            Ok(()) => return true,
            Err(baton_znode::ZnodeError::NoNode { .. }) => at = baton_znode::parent(path),
            Err(_) => return false,
        }
    }
    false
}

/// `auth` with what one credential of a session proves (a Connect's or an AddAuth's),
/// or AUTH_FAILED, counted and logged by scheme only (never the secret).
fn authenticated(
    shared: &crate::shared::Shared,
    session: u64,
    auth: &Auth,
    add: &pb::AddAuthRequest,
) -> Result<Auth, Status> {
    let proved = baton_api::auth::Credential::from_pb(add)
        .and_then(|credential| shared.auth.authenticate(&credential));
    match proved {
        Ok(ids) => Ok(crate::auth::add_identities(auth, ids)),
        Err(refused) => {
            crate::metrics::Metrics::add(&shared.metrics.auth_failures_total, 1);
            tracing::info!(
                session = %format_args!("0x{session:016x}"),
                scheme = %add.scheme,
                "session authentication refused"
            );
            Err(refused)
        }
    }
}
