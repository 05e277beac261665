//! [`Run`]: named clients on one ensemble's client ports, and the transcript of what
//! they sent and received. A step's line is `[client] request -> reply`; each frame
//! that arrived before the reply (a watch event) gets a `[client] request :: event`
//! line before it, so the order of events and replies is part of the transcript. A
//! failure (a closed connection, a timeout) is a line too, and later calls on that
//! client say it has no connection: the script always runs to its end, so the diff
//! shows every difference at once.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use baton_testkit::{
    Error, POLL_INTERVAL, ZkClient, ZkFrame,
    jute::{Acl, ConnectResponse, CreateMode, CreateRequest, Id, OpCode, Record, perms},
};
use bytes::Bytes;

use super::render::{self, Sessions};

/// The session timeout every client asks for: inside both systems' bounds for the
/// default 2 s tick, and long enough that no session expires during the script.
const SESSION_TIMEOUT_MS: i32 = 30_000;

/// How long one reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a server has to close a connection it refuses to go on with.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a resumed session may be refused while its new member catches up with the
/// zxid the client has seen.
const RESUME_TIMEOUT: Duration = Duration::from_secs(10);

/// A client's connection, and what it keeps after the connection is gone.
struct Named {
    who: &'static str,
    client: Option<ZkClient>,
    session: ConnectResponse,
    last_zxid_seen: i64,
}

pub struct Run {
    addrs: Vec<SocketAddr>,
    clients: Vec<Named>,
    sessions: Sessions,
    pub lines: Vec<String>,
}

/// What went wrong, without addresses or ports (which differ between runs).
fn failure(error: &Error) -> String {
    match error {
        Error::Timeout { .. } => "!! timeout".to_owned(),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            "!! closed".to_owned()
        }
        Error::Io { source, .. } => format!("!! {:?}", source.kind()),
        other => format!("!! {other}"),
    }
}

/// `world:anyone` may do anything: ZooKeeper's OPEN_ACL_UNSAFE.
pub fn open_acl() -> Vec<Acl> {
    vec![acl("world", "anyone", perms::ALL)]
}

pub fn acl(scheme: &str, id: &str, perms: i32) -> Acl {
    Acl { perms, id: Id { scheme: scheme.to_owned(), id: id.to_owned() } }
}

pub fn create_request(path: &str, data: Option<&str>, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.to_owned(),
        data: data.map(|d| Bytes::copy_from_slice(d.as_bytes())),
        acl: open_acl(),
        flags,
    }
}

/// The mode's name, or its number when it has none.
pub fn mode_name(flags: i32) -> String {
    CreateMode::from_code(flags).map_or_else(|| format!("mode({flags})"), |m| format!("{m:?}"))
}

impl Run {
    /// `addrs` are the members' client ports, member 1 first.
    pub fn new(addrs: Vec<SocketAddr>) -> Run {
        Run { addrs, clients: Vec::new(), sessions: Sessions::default(), lines: Vec::new() }
    }

    fn named(&mut self, who: &'static str) -> &mut Named {
        if let Some(index) = self.clients.iter().position(|named| named.who == who) {
            return &mut self.clients[index];
        }
        self.clients.push(Named {
            who,
            client: None,
            session: ConnectResponse::default(),
            last_zxid_seen: 0,
        });
        self.clients.last_mut().expect("just pushed")
    }

    /// A line the script writes itself (what it checked, what it did).
    pub fn note(&mut self, who: &str, what: &str, outcome: &str) {
        self.lines.push(format!("[{who}] {what} -> {outcome}"));
    }

    /// A new session for `who` on member `member` (1-based).
    pub async fn connect(&mut self, who: &'static str, member: usize) {
        let what = format!("connect member {member}");
        let outcome = match ZkClient::connect(self.addrs[member - 1], SESSION_TIMEOUT_MS).await {
            Ok(client) => self.adopt(who, client),
            Err(error) => failure(&error),
        };
        self.note(who, &what, &outcome);
    }

    fn adopt(&mut self, who: &'static str, mut client: ZkClient) -> String {
        client.timeout = REPLY_TIMEOUT;
        let session = client.session().clone();
        self.sessions.name(session.session_id, who);
        let outcome = render::connected(&session, &self.sessions);
        let named = self.named(who);
        named.session = session;
        named.client = Some(client);
        outcome
    }

    /// Drops `who`'s connection without closing its session (a client that lost its
    /// network).
    pub fn disconnect(&mut self, who: &'static str) {
        self.disconnect_quietly(who);
        self.note(who, "drop the connection", "ok");
    }

    /// The zxid `who` had seen when its connection went (the relative zxid of
    /// setWatches); only ever sent back, never written down.
    pub fn last_zxid_seen(&mut self, who: &'static str) -> i64 {
        let named = self.named(who);
        named.client.as_ref().map_or(named.last_zxid_seen, ZkClient::last_zxid_seen)
    }

    /// Resumes `who`'s session on member `member`, retrying while that member refuses
    /// it (it has not yet seen the zxid the client has).
    pub async fn resume(&mut self, who: &'static str, member: usize) {
        let what = format!("resume on member {member}");
        let named = self.named(who);
        let (session, last_zxid) = (named.session.clone(), named.last_zxid_seen);
        let addr = self.addrs[member - 1];
        let deadline = Instant::now() + RESUME_TIMEOUT;
        let outcome = loop {
            match ZkClient::resume(addr, &session, last_zxid).await {
                Ok(client) => break self.adopt(who, client),
                Err(error) if Instant::now() >= deadline => break failure(&error),
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        };
        self.note(who, &what, &outcome);
    }

    /// Sends `body` under `op` as `who` and writes down what came back.
    pub async fn call(
        &mut self,
        who: &'static str,
        what: &str,
        op: OpCode,
        body: &impl Record,
    ) -> Option<ZkFrame> {
        self.call_as(who, what, None, op.code(), body).await
    }

    /// [`Run::call`] with a chosen xid (or the next one) and any opcode.
    pub async fn call_as(
        &mut self,
        who: &'static str,
        what: &str,
        xid: Option<i32>,
        op: i32,
        body: &impl Record,
    ) -> Option<ZkFrame> {
        let key = format!("[{who}] {what}");
        let Some(client) = self.named(who).client.as_mut() else {
            self.lines.push(format!("{key} -> !! no connection"));
            return None;
        };
        let result = match xid {
            Some(xid) => client.call_with_xid(xid, op, body).await,
            None => client.call(op, body).await,
        };
        let frames = client.take_received();
        let reply = result.as_ref().ok().cloned();
        for (index, frame) in frames.iter().enumerate() {
            let last = index + 1 == frames.len();
            let line = match frame.event() {
                Some(event) => format!("{key} :: {}", render::event(&event)),
                None if last && reply.is_some() => {
                    format!("{key} -> {}", render::reply(op, frame, &self.sessions))
                }
                None => format!("{key} :: unexpected xid {}", frame.header.xid),
            };
            self.lines.push(line);
        }
        if let Err(error) = result {
            self.lines.push(format!("{key} -> {}", failure(&error)));
            self.disconnect_quietly(who);
        }
        reply
    }

    /// Sends a request as `who` and writes nothing down (the caller does).
    pub async fn call_quiet(
        &mut self,
        who: &'static str,
        op: OpCode,
        body: &impl Record,
    ) -> Option<ZkFrame> {
        let client = self.named(who).client.as_mut()?;
        let reply = client.call(op.code(), body).await.ok();
        client.take_received();
        reply
    }

    /// Writes bytes as they are on `who`'s connection, then writes down whether the
    /// server closed it.
    pub async fn send_raw(&mut self, who: &'static str, what: &str, bytes: &[u8]) {
        let outcome = match self.named(who).client.as_mut() {
            None => "!! no connection".to_owned(),
            Some(client) => match client.send_raw(bytes).await {
                Ok(()) => return self.closed(who, what).await,
                Err(error) => failure(&error),
            },
        };
        self.note(who, what, &outcome);
    }

    /// Whether the server closes `who`'s connection (within a short wait): after a
    /// close, a refused auth, a request it cannot parse.
    pub async fn closed(&mut self, who: &'static str, what: &str) {
        let outcome = match self.named(who).client.as_mut() {
            None => "!! no connection".to_owned(),
            Some(client) => {
                client.timeout = CLOSE_TIMEOUT;
                let closed = client.closed_by_server().await;
                client.timeout = REPLY_TIMEOUT;
                let frames = client.take_received();
                let mut outcome = if closed { "closed".to_owned() } else { "open".to_owned() };
                for frame in frames {
                    let text = match frame.event() {
                        Some(event) => render::event(&event),
                        None => format!(
                            "xid {} {}",
                            frame.header.xid,
                            render::error_name(frame.header.err)
                        ),
                    };
                    outcome.push_str(&format!(" after {text}"));
                }
                if closed {
                    self.disconnect_quietly(who);
                }
                outcome
            }
        };
        self.note(who, what, &outcome);
    }

    fn disconnect_quietly(&mut self, who: &'static str) {
        let named = self.named(who);
        if let Some(client) = named.client.take() {
            named.last_zxid_seen = client.last_zxid_seen();
        }
    }
}
