//! A fake `Sessions` service: several servers (each on 127.0.0.1:0) sharing one
//! [`Cluster`] (the fakes' tree, sessions), speaking the session protocol as the proto
//! describes it: Connect → Connected (or a refusal), replies in request order, events
//! before the reply that follows them, missed events on resume. The tree and its
//! watches are the real ones (`fake_tree`); what is scripted is around them: knobs
//! make a server refuse, lag behind, or stop answering; the cluster can break streams
//! and expire sessions.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use baton_api::{
    pb::{
        self,
        sessions_server::{Sessions, SessionsServer},
    },
    session::watch_event_to_pb,
    status::{ErrorCode, error_status},
};
use bytes::Bytes;
use tokio::{
    net::TcpListener,
    sync::{Notify, mpsc, oneshot},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::fake_tree::{FakeTree, Fired};

type Outbound = mpsc::Sender<Result<pb::SessionResponse, Status>>;

/// A Connect a server received, and whether it granted the session.
#[derive(Debug, Clone)]
pub struct ConnectRecord {
    pub server: usize,
    pub connect: pb::Connect,
    pub accepted: bool,
}

struct StreamCtl {
    tx: Outbound,
    kill: Arc<Notify>,
    server: usize,
}

struct SessionRec {
    password: Bytes,
    stream: Option<StreamCtl>,
}

struct State {
    tree: FakeTree,
    sessions: HashMap<u64, SessionRec>,
    next_session: u64,
    connects: Vec<ConnectRecord>,
    requests: usize,
    pings: usize,
    servers: usize,
}

/// Per-server behaviour, changeable while it runs.
#[derive(Default)]
pub struct Knobs {
    /// Refuse every Connect with this code (sent as the stream's ending status).
    pub refuse: Mutex<Option<ErrorCode>>,
    /// This server's tree is this many zxids behind the cluster's.
    pub lag: AtomicU64,
    /// Count requests but never answer them.
    pub stall: AtomicBool,
    /// Once: apply the next create of a sequential node, then break the stream before
    /// its reply (the write happened, its answer is lost).
    pub lose_sequential_create: AtomicBool,
}

impl Knobs {
    pub fn refuse(&self, code: Option<ErrorCode>) {
        *self.refuse.lock().unwrap() = code;
    }
}

#[derive(Clone)]
pub struct Cluster {
    state: Arc<Mutex<State>>,
}

pub struct Server {
    pub addr: String,
    pub index: usize,
    pub knobs: Arc<Knobs>,
    _stop: oneshot::Sender<()>,
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster {
            state: Arc::new(Mutex::new(State {
                tree: FakeTree::new(),
                sessions: HashMap::new(),
                next_session: 0x1000,
                connects: Vec::new(),
                requests: 0,
                pings: 0,
                servers: 0,
            })),
        }
    }

    /// Starts one more server of the cluster.
    pub async fn server(&self) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let index = {
            let mut state = self.state.lock().unwrap();
            state.servers += 1;
            state.servers - 1
        };
        let knobs = Arc::new(Knobs::default());
        let service = Service { state: self.state.clone(), index, knobs: knobs.clone() };
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(SessionsServer::new(service))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Server { addr, index, knobs, _stop: stop }
    }

    pub fn connects(&self) -> Vec<ConnectRecord> {
        self.state.lock().unwrap().connects.clone()
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    pub fn pings(&self) -> usize {
        self.state.lock().unwrap().pings
    }

    pub fn zxid(&self) -> u64 {
        self.state.lock().unwrap().tree.zxid()
    }

    /// Every path of the tree (the reserved `/baton` included), sorted.
    pub fn paths(&self) -> Vec<String> {
        self.state.lock().unwrap().tree.paths()
    }

    /// The server a session's current stream is on.
    pub fn server_of(&self, session: u64) -> Option<usize> {
        let state = self.state.lock().unwrap();
        state.sessions.get(&session)?.stream.as_ref().map(|s| s.server)
    }

    /// Ends one session's stream, with `status` if given, else cleanly.
    pub fn kill_stream(&self, session: u64, status: Option<Status>) {
        let mut state = self.state.lock().unwrap();
        if let Some(ctl) = state.sessions.get_mut(&session).and_then(|r| r.stream.take()) {
            if let Some(status) = status {
                let _ = ctl.tx.try_send(Err(status));
            }
            ctl.kill.notify_one();
        }
    }

    /// Expires a session: its ephemerals go, its stream ends with SESSION_EXPIRED.
    pub fn expire(&self, session: u64) {
        let mut state = self.state.lock().unwrap();
        let fired = state.tree.close_session(session);
        send_events(&state, fired);
        if let Some(rec) = state.sessions.remove(&session)
            && let Some(ctl) = rec.stream
        {
            let status = error_status(ErrorCode::SessionExpired, "session expired", "", None);
            let _ = ctl.tx.try_send(Err(status));
            ctl.kill.notify_one();
        }
    }

    /// Changes a session's password, so that its next resume fails AUTH_FAILED.
    pub fn change_password(&self, session: u64) {
        if let Some(rec) = self.state.lock().unwrap().sessions.get_mut(&session) {
            rec.password = Bytes::from_static(b"changed");
        }
    }

    /// Sends an event to a session's current stream, as if a change had fired it.
    pub fn inject_event(&self, session: u64, event: pb::WatchEvent) {
        let state = self.state.lock().unwrap();
        send_pb_events(&state, vec![(session, event)]);
    }
}

fn send_events(state: &State, fired: Fired) {
    let fired = fired.iter().map(|(session, event)| (*session, watch_event_to_pb(event)));
    send_pb_events(state, fired.collect());
}

fn send_pb_events(state: &State, fired: Vec<(u64, pb::WatchEvent)>) {
    for (session, event) in fired {
        if let Some(ctl) = state.sessions.get(&session).and_then(|r| r.stream.as_ref()) {
            let message =
                pb::SessionResponse { kind: Some(pb::session_response::Kind::Event(event)) };
            let _ = ctl.tx.try_send(Ok(message));
        }
    }
}

struct Service {
    state: Arc<Mutex<State>>,
    index: usize,
    knobs: Arc<Knobs>,
}

enum Admission {
    /// Refused by the handler's own status.
    RefuseNow(Status),
    /// Refused by the stream's ending status.
    RefuseInStream(Status),
    Accept {
        session: u64,
        kill: Arc<Notify>,
        first: Vec<pb::SessionResponse>,
    },
}

impl Service {
    fn admit(&self, connect: &pb::Connect, tx: &Outbound) -> Admission {
        let mut state = self.state.lock().unwrap();
        let lag = self.knobs.lag.load(Ordering::SeqCst);
        let server_zxid = state.tree.zxid().saturating_sub(lag);
        let refuse = *self.knobs.refuse.lock().unwrap();
        let verdict = if let Some(code) = refuse {
            Err(Admission::RefuseInStream(error_status(code, "refused (knob)", "", None)))
        } else if connect.last_zxid_seen > server_zxid {
            let message = format!("server at {server_zxid} is behind {}", connect.last_zxid_seen);
            Err(Admission::RefuseNow(error_status(ErrorCode::ConnectionLoss, message, "", None)))
        } else if connect.session_id == 0 {
            let session = state.next_session;
            state.next_session += 1;
            let password = Bytes::from(format!("pw-{session}"));
            state.sessions.insert(session, SessionRec { password, stream: None });
            state.tree.open_session(session, connect.timeout_ms.clamp(100, 60_000));
            Ok(session)
        } else {
            match state.sessions.get(&connect.session_id) {
                None => Err(Admission::RefuseInStream(error_status(
                    ErrorCode::SessionExpired,
                    "unknown session",
                    "",
                    None,
                ))),
                Some(rec) if rec.password != connect.password => Err(Admission::RefuseInStream(
                    error_status(ErrorCode::AuthFailed, "wrong password", "", None),
                )),
                Some(_) => Ok(connect.session_id),
            }
        };
        let accepted = verdict.is_ok();
        state.connects.push(ConnectRecord {
            server: self.index,
            connect: connect.clone(),
            accepted,
        });
        let session = match verdict {
            Ok(session) => session,
            Err(refusal) => return refusal,
        };
        let missed = match state.tree.resume(session, connect.last_zxid_seen, &connect.watches) {
            Ok(missed) => missed,
            Err(status) => return Admission::RefuseNow(status),
        };
        let kill = Arc::new(Notify::new());
        let rec = state.sessions.get_mut(&session).unwrap();
        if let Some(old) = rec.stream.take() {
            old.kill.notify_one();
        }
        rec.stream = Some(StreamCtl { tx: tx.clone(), kill: kill.clone(), server: self.index });
        use pb::session_response::Kind;
        let connected = pb::Connected {
            session_id: session,
            password: rec.password.clone(),
            timeout_ms: connect.timeout_ms.clamp(100, 60_000),
            zxid: state.tree.zxid().saturating_sub(lag),
        };
        let mut first = vec![pb::SessionResponse { kind: Some(Kind::Connected(connected)) }];
        first.extend(
            missed
                .iter()
                .map(|e| pb::SessionResponse { kind: Some(Kind::Event(watch_event_to_pb(e))) }),
        );
        Admission::Accept { session, kill, first }
    }

    /// Answers one request; false once the session is closed.
    fn handle(&self, session: u64, request: pb::Request, tx: &Outbound) -> bool {
        let mut state = self.state.lock().unwrap();
        let Some(op) = request.op else { return false };
        if matches!(op, pb::request::Op::Ping(_)) {
            state.pings += 1;
        } else {
            state.requests += 1;
        }
        if self.knobs.stall.load(Ordering::SeqCst) {
            return true;
        }
        let close = matches!(op, pb::request::Op::Close(_));
        let sequential = matches!(&op, pb::request::Op::Create(c)
            if c.mode == pb::CreateMode::EphemeralSequential as i32
                || c.mode == pb::CreateMode::PersistentSequential as i32);
        let (fired, outcome) = state.tree.session_request(session, op, request.watch);
        send_events(&state, fired);
        if sequential && self.knobs.lose_sequential_create.swap(false, Ordering::SeqCst) {
            if let Some(rec) = state.sessions.get_mut(&session) {
                rec.stream = None;
            }
            return false;
        }
        let reply = pb::Reply { xid: request.xid, zxid: state.tree.zxid(), result: Some(outcome) };
        let _ = tx.try_send(Ok(pb::SessionResponse {
            kind: Some(pb::session_response::Kind::Reply(reply)),
        }));
        if close {
            state.sessions.remove(&session);
        }
        !close
    }
}

#[tonic::async_trait]
impl Sessions for Service {
    type SessionStream = ReceiverStream<Result<pb::SessionResponse, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<pb::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        self.open(request).await
    }
}

impl Service {
    async fn open(
        &self,
        request: Request<Streaming<pb::SessionRequest>>,
    ) -> Result<Response<ReceiverStream<Result<pb::SessionResponse, Status>>>, Status> {
        let mut inbound = request.into_inner();
        let connect = match inbound.message().await? {
            Some(pb::SessionRequest { kind: Some(pb::session_request::Kind::Connect(c)) }) => c,
            _ => return Err(Status::invalid_argument("the first message must be Connect")),
        };
        let (tx, rx) = mpsc::channel(4096);
        let (session, kill, first) = match self.admit(&connect, &tx) {
            Admission::RefuseNow(status) => return Err(status),
            Admission::RefuseInStream(status) => {
                let _ = tx.try_send(Err(status));
                return Ok(Response::new(ReceiverStream::new(rx)));
            }
            Admission::Accept { session, kill, first } => (session, kill, first),
        };
        for message in first {
            let _ = tx.try_send(Ok(message));
        }
        let service =
            Service { state: self.state.clone(), index: self.index, knobs: self.knobs.clone() };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = kill.notified() => break,
                    message = inbound.message() => match message {
                        Ok(Some(pb::SessionRequest {
                            kind: Some(pb::session_request::Kind::Request(request)),
                        })) => {
                            if !service.handle(session, request, &tx) {
                                break;
                            }
                        }
                        _ => break,
                    },
                }
            }
            // Dropping `tx` (and the cluster's copy, taken by whoever killed us) ends the
            // response stream.
            let mut state = service.state.lock().unwrap();
            if let Some(rec) = state.sessions.get_mut(&session)
                && rec.stream.as_ref().is_some_and(|s| Arc::ptr_eq(&s.kill, &kill))
            {
                rec.stream = None;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
