//! The session's task: it owns the stream to the current server, the outstanding
//! requests and the watch manager, and moves the session between servers.
//!
//! One loop per stream ([`Task::serve`]) waits for whichever comes first: shutdown, a
//! message from the server (events are dispatched at once, replies complete the oldest
//! request), a request from a handle, the time to ping, the silence deadline. Because one task
//! reads the stream in order and dispatches an event before it completes the reply
//! after it, a caller always sees a watch event before any reply that reflects it.
//!
//! When the stream breaks, every outstanding request fails with ConnectionLoss (a write
//! may or may not have happened), the state becomes Disconnected and the task resumes
//! the session on the next server, round robin, with a growing pause after each round
//! that failed. It keeps trying until a server says the session is over, or the user
//! closes it.

use std::{sync::Arc, time::Duration};

use baton_api::{auth::Credential, pb, session::watch_event_from_pb, session::watch_spec_to_pb};
use baton_znode::watch::SpecKind;
use bytes::Bytes;
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{Instant, sleep, sleep_until},
};

use super::{
    SessionOptions,
    fifo::Fifo,
    handshake::{self, Live, Refusal},
    request::{ReplyTx, Submitted, WatchIntent},
    shared::Shared,
    state::Input,
    watches::WatchManager,
};
use crate::{ClientError, ServerAddr};

/// The pause after the first round of reconnect attempts that all failed; it doubles
/// after every further failed round, up to [`RECONNECT_BACKOFF_MAX`].
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(20);
/// The longest pause between two rounds of reconnect attempts.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Room in the outgoing queue beyond `pending_requests_max`, for pings and the close
/// sent when the last handle is dropped (neither is counted against the limit).
const OUTBOUND_SLACK: usize = 8;

/// How a stream ended.
#[derive(Debug)]
enum End {
    /// Try another server; the error says why this one was left.
    Lost(ClientError),
    /// The server ended the session (SESSION_EXPIRED, AUTH_FAILED).
    Expired(ClientError),
    /// The session's close was answered.
    Closed,
    /// `close` stopped waiting, or every handle was dropped while disconnected.
    Shutdown,
}

/// An outstanding request.
#[derive(Debug)]
struct Entry {
    /// `None` for the task's own requests (pings, the close on drop).
    reply: Option<ReplyTx>,
    watch: WatchIntent,
    close: bool,
}

pub(crate) struct Task {
    servers: Vec<ServerAddr>,
    options: SessionOptions,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Submitted>,
    shutdown: watch::Receiver<bool>,
    fifo: Fifo<Entry>,
    watches: WatchManager,
    next_xid: u64,
    password: Bytes,
    /// Index of the server to try next.
    next_server: usize,
    /// Every handle is gone; the session is closing.
    orphaned: bool,
}

impl Task {
    pub(crate) fn new(
        servers: Vec<ServerAddr>,
        options: SessionOptions,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Submitted>,
    ) -> Task {
        assert!(!servers.is_empty(), "parse_endpoints never returns an empty list");
        let shutdown = shared.shutdown_requests();
        Task {
            servers,
            options,
            shared,
            commands,
            shutdown,
            fifo: Fifo::default(),
            watches: WatchManager::default(),
            next_xid: 1,
            password: Bytes::new(),
            next_server: 0,
            orphaned: false,
        }
    }

    /// Runs the session to its end. `first` learns whether the first round of
    /// connection attempts found a server; if not, the task ends there.
    pub(crate) async fn run(mut self, first: oneshot::Sender<Result<(), ClientError>>) {
        let live = match self.first_connect().await {
            Ok(live) => live,
            Err(error) => {
                self.finish(Input::Closed, error.clone());
                let _ = first.send(Err(error));
                return;
            }
        };
        let _ = first.send(Ok(()));
        let mut end = self.serve(live).await;
        loop {
            end = match end {
                End::Lost(reason) => {
                    self.lost(&reason);
                    match self.reconnect().await {
                        Ok(live) => self.serve(live).await,
                        Err(end) => end,
                    }
                }
                End::Expired(error) => return self.finish(Input::Expired, error),
                End::Closed | End::Shutdown => {
                    return self.finish(Input::Closed, ClientError::Closed);
                }
            };
        }
    }

    /// One attempt on each server, in order. Fails with the last reason (a
    /// ConnectionLoss names every server tried).
    async fn first_connect(&mut self) -> Result<Live, ClientError> {
        let mut last = None;
        for _ in 0..self.servers.len() {
            match self.open_next().await {
                Ok(live) => return Ok(live),
                Err(Refusal::Ended(error)) => return Err(error),
                Err(Refusal::Lost(error)) => last = Some(error),
            }
        }
        let tried: Vec<&str> = self.servers.iter().map(|s| s.authority.as_str()).collect();
        Err(match last {
            Some(ClientError::ConnectionLoss { reason, .. }) => {
                ClientError::ConnectionLoss { endpoint: tried.join(","), reason }
            }
            Some(other) => other,
            None => ClientError::ConnectionLoss {
                endpoint: tried.join(","),
                reason: "no server tried".to_owned(),
            },
        })
    }

    /// Rounds over the servers until one resumes the session, the session is over, or
    /// the task is told to stop.
    async fn reconnect(&mut self) -> Result<Live, End> {
        let mut backoff = RECONNECT_BACKOFF_MIN;
        loop {
            for _ in 0..self.servers.len() {
                if self.stopping() {
                    return Err(End::Shutdown);
                }
                match self.open_next().await {
                    Ok(live) => return Ok(live),
                    Err(Refusal::Ended(error)) => return Err(End::Expired(error)),
                    Err(Refusal::Lost(error)) => tracing::debug!(%error, "cannot resume here"),
                }
            }
            tokio::select! {
                _ = sleep(backoff) => {}
                _ = self.shutdown.changed() => {}
            }
            backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow() || self.commands.is_closed()
    }

    /// Opens a stream to the next server and checks its answer.
    async fn open_next(&mut self) -> Result<Live, Refusal> {
        let index = self.next_server;
        self.next_server = (index + 1) % self.servers.len();
        let session_id = self.shared.session_id();
        let last_zxid = self.shared.last_zxid();
        let connect = pb::Connect {
            session_id,
            password: self.password.clone(),
            timeout_ms: self.options.timeout_ms,
            last_zxid_seen: last_zxid,
            watches: self.watches.specs().iter().map(watch_spec_to_pb).collect(),
            auth: self.shared.credentials().iter().map(Credential::to_pb).collect(),
        };
        let outbound_max = self.options.pending_requests_max + OUTBOUND_SLACK;
        let (live, connected) =
            handshake::open(&self.servers[index], connect, outbound_max).await?;
        if session_id != 0 && connected.session_id != session_id {
            return Err(Refusal::Ended(ClientError::SessionExpired {
                session_id,
                message: format!(
                    "{} answered with session 0x{:016x} instead",
                    live.endpoint, connected.session_id
                ),
            }));
        }
        if connected.timeout_ms == 0 {
            // ZooKeeper's client reads a zero timeout as "the session is gone".
            return Err(Refusal::Ended(ClientError::SessionExpired {
                session_id,
                message: format!("{} negotiated a zero timeout", live.endpoint),
            }));
        }
        if connected.zxid < last_zxid {
            // The server should have refused: accepting would take the client back in time.
            return Err(Refusal::Lost(ClientError::ConnectionLoss {
                endpoint: live.endpoint,
                reason: format!(
                    "server is at zxid {:#x}, behind the {last_zxid:#x} this client has seen",
                    connected.zxid
                ),
            }));
        }
        self.password = connected.password;
        self.shared.see_zxid(connected.zxid);
        self.shared.adopt(connected.session_id, connected.timeout_ms, &live.endpoint);
        self.shared.apply(Input::Connected);
        tracing::debug!(session = connected.session_id, server = %live.endpoint, "connected");
        Ok(live)
    }

    /// Carries the session on one stream until it ends.
    async fn serve(&mut self, mut live: Live) -> End {
        let timeout = Duration::from_millis(u64::from(self.shared.timeout_ms()));
        // As ZooKeeper's client: ping when nothing was sent for a third of the timeout,
        // give the server up when nothing was heard for two thirds.
        let (ping_every, silence_max) = (timeout / 3, timeout * 2 / 3);
        let (mut last_sent, mut last_heard) = (Instant::now(), Instant::now());
        let mut closing = false;
        loop {
            if *self.shutdown.borrow() {
                return End::Shutdown;
            }
            tokio::select! {
                _ = self.shutdown.changed() => {}
                message = live.inbound.message() => {
                    last_heard = Instant::now();
                    let end = match message {
                        Ok(Some(message)) => self.on_message(message, &live.endpoint),
                        Ok(None) => Some(End::Lost(ClientError::ConnectionLoss {
                            endpoint: live.endpoint.clone(),
                            reason: "the server ended the stream".to_owned(),
                        })),
                        Err(status) => Some(match handshake::refusal(&status, &live.endpoint) {
                            Refusal::Lost(error) => End::Lost(error),
                            Refusal::Ended(error) => End::Expired(
                                handshake::with_session(error, self.shared.session_id()),
                            ),
                        }),
                    };
                    if let Some(end) = end {
                        return end;
                    }
                }
                submitted = self.commands.recv(), if !self.orphaned => {
                    let sent = match submitted {
                        Some(submitted) => self.submit(&live, submitted),
                        None => {
                            // Every handle is gone: close the session rather than leave
                            // its ephemerals to the timeout.
                            self.orphaned = true;
                            closing = true;
                            self.push(&live, pb::request::Op::Close(pb::CloseRequest {}), Entry {
                                reply: None,
                                watch: WatchIntent::None,
                                close: true,
                            })
                        }
                    };
                    if let Err(end) = sent {
                        return end;
                    }
                    last_sent = Instant::now();
                }
                _ = sleep_until(last_sent + ping_every), if !closing => {
                    let ping = Entry { reply: None, watch: WatchIntent::None, close: false };
                    if let Err(end) = self.push(&live, pb::request::Op::Ping(pb::PingRequest {}), ping) {
                        return end;
                    }
                    last_sent = Instant::now();
                }
                _ = sleep_until(last_heard + silence_max) => {
                    if closing {
                        return End::Shutdown;
                    }
                    return End::Lost(ClientError::ConnectionLoss {
                        endpoint: live.endpoint.clone(),
                        reason: format!("nothing heard for {} ms", silence_max.as_millis()),
                    });
                }
            }
        }
    }

    /// Handles one message; `Some` when it ends the stream.
    fn on_message(&mut self, message: pb::SessionResponse, endpoint: &str) -> Option<End> {
        use pb::session_response::Kind;
        let protocol_error = |reason: String| {
            End::Lost(ClientError::ConnectionLoss {
                endpoint: endpoint.to_owned(),
                reason: format!("protocol error: {reason}"),
            })
        };
        match message.kind {
            Some(Kind::Event(event)) => {
                self.shared.see_zxid(event.zxid);
                match watch_event_from_pb(event) {
                    Ok(event) => {
                        self.watches.dispatch(&event);
                    }
                    // An event type from a newer server: no watch of ours can want it.
                    Err(status) => tracing::warn!(%status, "ignoring an unknown event"),
                }
                None
            }
            Some(Kind::Reply(reply)) => {
                self.shared.see_zxid(reply.zxid);
                let entry = match self.fifo.complete(reply.xid) {
                    Ok(entry) => entry,
                    Err(mismatch) => return Some(protocol_error(mismatch.to_string())),
                };
                let succeeded = !matches!(reply.result, Some(pb::reply::Result::Error(_)) | None);
                self.register(entry.watch, &reply, succeeded);
                if let Some(tx) = entry.reply {
                    let _ = tx.send(Ok(reply));
                }
                entry.close.then_some(End::Closed)
            }
            Some(Kind::Connected(_)) => Some(protocol_error("Connected in mid-stream".into())),
            None => Some(protocol_error("empty message".into())),
        }
    }

    /// Applies a reply's watch intent (before the caller sees the reply).
    fn register(&mut self, intent: WatchIntent, reply: &pb::Reply, succeeded: bool) {
        match intent {
            WatchIntent::None => {}
            WatchIntent::OneShot { path, kind, tx } if succeeded => {
                let kind = match (&kind, &reply.result) {
                    (SpecKind::Exists, Some(pb::reply::Result::Exists(found)))
                        if found.stat.is_some() =>
                    {
                        SpecKind::Data
                    }
                    _ => kind,
                };
                self.watches.add_one_shot(&path, kind, tx);
            }
            WatchIntent::Persistent { path, recursive, sink } if succeeded => {
                self.watches.add_persistent(&path, recursive, sink);
            }
            // A failed call sets no watch: its caller gets the error, not a Watch.
            WatchIntent::OneShot { .. } | WatchIntent::Persistent { .. } => {}
            WatchIntent::Remove { path, which } => {
                self.watches.remove(&path, which);
            }
        }
    }

    /// Sends a handle's request, unless its caller stopped waiting or too many are
    /// outstanding.
    fn submit(&mut self, live: &Live, submitted: Submitted) -> Result<(), End> {
        if submitted.is_abandoned() {
            return Ok(());
        }
        let max = self.options.pending_requests_max;
        if self.fifo.len() >= max {
            submitted.answer(Err(ClientError::TooManyRequests { max }));
            return Ok(());
        }
        let close = submitted.is_close();
        let Submitted { op, watch, reply } = submitted;
        self.push(live, op, Entry { reply: Some(reply), watch, close })
    }

    fn push(&mut self, live: &Live, op: pb::request::Op, entry: Entry) -> Result<(), End> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let watch = entry.watch.sets_one_shot();
        let request = pb::Request { xid, watch, op: Some(op) };
        self.fifo.push(xid, entry);
        let message =
            pb::SessionRequest { kind: Some(pb::session_request::Kind::Request(request)) };
        live.outbound.try_send(message).map_err(|_| {
            End::Lost(ClientError::ConnectionLoss {
                endpoint: live.endpoint.clone(),
                reason: "the stream to the server is closed".to_owned(),
            })
        })
    }

    /// The stream broke: Disconnected, and every outstanding request fails.
    fn lost(&mut self, reason: &ClientError) {
        tracing::debug!(%reason, "connection lost");
        self.shared.apply(Input::Lost);
        let loss = handshake::as_connection_loss(reason, &self.shared.endpoint());
        for entry in self.fifo.drain() {
            if let Some(tx) = entry.reply {
                let _ = tx.send(Err(loss.clone()));
            }
        }
    }

    /// The session is over: record why, fail everything outstanding or queued, end
    /// every watch.
    fn finish(&mut self, input: Input, error: ClientError) {
        self.shared.end(input, &error);
        for entry in self.fifo.drain() {
            if let Some(tx) = entry.reply {
                let _ = tx.send(Err(error.clone()));
            }
        }
        self.watches.end_all(&error);
        self.commands.close();
        while let Ok(submitted) = self.commands.try_recv() {
            submitted.answer(Err(error.clone()));
        }
    }
}
