//! [`ZkClient`]: a raw ZooKeeper-protocol client for tests, on baton-jute's records.
//!
//! It hides nothing: a test sends any request record under any opcode and xid, and
//! gets back the reply header and the body's bytes, to decode with the record it
//! expects. Everything the server sends (replies and watch notifications) is kept in
//! one list in the order it arrived ([`ZkClient::received`]), so a test can check that
//! an event came before the reply of a read that reflects its change. There is no
//! background task: frames are read only while a call waits, which keeps that order
//! exact. Every wait has a deadline ([`ZkClient::timeout`]).

use std::{net::SocketAddr, time::Duration};

use baton_jute::{
    ConnectRequest, ConnectResponse, FrameDecoder, OpCode, Record, ReplyHeader, RequestHeader,
    WatcherEvent, encode_frame, encode_record_frame, xid,
};
use bytes::{Bytes, BytesMut};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::Error;

/// How long a call waits for its reply (or a connect for its handshake) by default.
pub const ZK_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One frame from the server after the handshake: a reply, or a watch notification
/// (`header.xid` is [`xid::NOTIFICATION`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkFrame {
    pub header: ReplyHeader,
    /// The bytes after the header: the body for the request's op, empty when the
    /// header reports an error.
    pub body: Bytes,
}

impl ZkFrame {
    pub fn is_event(&self) -> bool {
        self.header.xid == xid::NOTIFICATION
    }

    /// The body as `R`, which must fill it exactly.
    pub fn decode<R: Record>(&self) -> Result<R, Error> {
        R::from_bytes(self.body.clone()).map_err(|error| invalid(format!("reply body: {error}")))
    }

    /// The notification, if this frame is one.
    pub fn event(&self) -> Option<WatcherEvent> {
        if self.is_event() { self.decode().ok() } else { None }
    }
}

/// A connection to one server, after its handshake.
#[derive(Debug)]
pub struct ZkClient {
    addr: SocketAddr,
    stream: TcpStream,
    buffer: BytesMut,
    decoder: FrameDecoder,
    next_xid: i32,
    session: ConnectResponse,
    received: Vec<ZkFrame>,
    last_zxid_seen: i64,
    /// How long each wait may take.
    pub timeout: Duration,
}

fn invalid(reason: String) -> Error {
    Error::Io {
        what: "a zookeeper frame".to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
    }
}

impl ZkClient {
    /// A new session asking for `timeout_ms`, as a current client asks (protocol
    /// version 0, the read-only flag sent as false).
    pub async fn connect(addr: SocketAddr, timeout_ms: i32) -> Result<ZkClient, Error> {
        let request = ConnectRequest {
            timeout_ms,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
            ..ConnectRequest::default()
        };
        ZkClient::connect_with(addr, &request).await
    }

    /// Resumes `session` (its id and password) on `addr`, having seen `last_zxid_seen`.
    pub async fn resume(
        addr: SocketAddr,
        session: &ConnectResponse,
        last_zxid_seen: i64,
    ) -> Result<ZkClient, Error> {
        let request = ConnectRequest {
            last_zxid_seen,
            timeout_ms: session.timeout_ms,
            session_id: session.session_id,
            passwd: session.passwd.clone(),
            read_only: Some(false),
            ..ConnectRequest::default()
        };
        ZkClient::connect_with(addr, &request).await
    }

    /// Any handshake. A refused session (timeout 0) is returned as it came: the
    /// server closes the connection after it.
    pub async fn connect_with(
        addr: SocketAddr,
        request: &ConnectRequest,
    ) -> Result<ZkClient, Error> {
        let stream = tokio::time::timeout(ZK_REPLY_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout {
                what: format!("connect to {addr}"),
                within: ZK_REPLY_TIMEOUT,
            })?
            .map_err(|source| Error::Io { what: format!("connect to {addr}"), source })?;
        let mut client = ZkClient {
            addr,
            stream,
            buffer: BytesMut::new(),
            decoder: FrameDecoder::default(),
            next_xid: 1,
            session: ConnectResponse::default(),
            received: Vec::new(),
            last_zxid_seen: 0,
            timeout: ZK_REPLY_TIMEOUT,
        };
        client.send_raw(&encode_record_frame(request)).await?;
        let frame = client.read_frame().await?;
        client.session = ConnectResponse::from_bytes(frame)
            .map_err(|error| invalid(format!("connect response: {error}")))?;
        Ok(client)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's handshake answer: session id, password, granted timeout.
    pub fn session(&self) -> &ConnectResponse {
        &self.session
    }

    /// Everything received since the handshake (or the last [`ZkClient::take_received`]),
    /// in arrival order.
    pub fn received(&self) -> &[ZkFrame] {
        &self.received
    }

    pub fn take_received(&mut self) -> Vec<ZkFrame> {
        std::mem::take(&mut self.received)
    }

    /// The highest zxid a reply header carried (what a client reports as
    /// `lastZxidSeen` when it reconnects), taken or not.
    pub fn last_zxid_seen(&self) -> i64 {
        self.last_zxid_seen
    }

    /// Sends `body` under `op` with the next xid and waits for its reply; frames that
    /// come first (notifications) are kept in [`ZkClient::received`].
    pub async fn call(&mut self, op: i32, body: &impl Record) -> Result<ZkFrame, Error> {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.call_with_xid(xid, op, body).await
    }

    /// [`ZkClient::call`] with a chosen xid (auth is -4, setWatches -8, ping -2).
    pub async fn call_with_xid(
        &mut self,
        xid: i32,
        op: i32,
        body: &impl Record,
    ) -> Result<ZkFrame, Error> {
        self.send(xid, op, body).await?;
        self.wait_reply(xid).await
    }

    /// Sends a request without waiting for its reply.
    pub async fn send(&mut self, xid: i32, op: i32, body: &impl Record) -> Result<(), Error> {
        let frame = encode_frame(|writer| {
            RequestHeader { xid, op }.encode(writer);
            body.encode(writer);
        });
        self.send_raw(&frame).await
    }

    /// Writes bytes as they are: garbage, a bad length, half a frame.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let write = self.stream.write_all(bytes);
        match tokio::time::timeout(self.timeout, write).await {
            Ok(result) => result.map_err(|source| self.io_error("write", source)),
            Err(_) => Err(self.timeout_error("a write")),
        }
    }

    /// Reads frames until the reply with `xid`, and returns it.
    pub async fn wait_reply(&mut self, xid: i32) -> Result<ZkFrame, Error> {
        loop {
            let frame = self.recv().await?;
            if frame.header.xid == xid {
                return Ok(frame);
            }
        }
    }

    /// Reads frames until a notification, and returns it.
    pub async fn wait_event(&mut self) -> Result<WatcherEvent, Error> {
        loop {
            if let Some(event) = self.recv().await?.event() {
                return Ok(event);
            }
        }
    }

    /// The next frame, whatever it is.
    pub async fn recv(&mut self) -> Result<ZkFrame, Error> {
        let payload = self.read_frame().await?;
        if payload.len() < ReplyHeader::BYTES_MIN {
            return Err(invalid(format!("a reply of {} bytes has no header", payload.len())));
        }
        let body = payload.slice(ReplyHeader::BYTES_MIN..);
        let header = ReplyHeader::from_bytes(payload.slice(..ReplyHeader::BYTES_MIN))
            .map_err(|error| invalid(format!("reply header: {error}")))?;
        let frame = ZkFrame { header, body };
        if !frame.is_event() {
            self.last_zxid_seen = self.last_zxid_seen.max(frame.header.zxid);
        }
        self.received.push(frame.clone());
        Ok(frame)
    }

    /// A ping (xid -2); returns its reply.
    pub async fn ping(&mut self) -> Result<ZkFrame, Error> {
        self.call_with_xid(xid::PING, OpCode::Ping.code(), &()).await
    }

    /// closeSession; returns its reply. The server closes the connection after it.
    pub async fn close(&mut self) -> Result<ZkFrame, Error> {
        self.call(OpCode::CloseSession.code(), &()).await
    }

    /// Whether the server closes the connection within the timeout (frames that come
    /// before the end are kept). False if it stays open.
    pub async fn closed_by_server(&mut self) -> bool {
        loop {
            match self.recv().await {
                Ok(_) => continue,
                Err(Error::Timeout { .. }) => return false,
                Err(_) => return true,
            }
        }
    }

    async fn read_frame(&mut self) -> Result<Bytes, Error> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let decoded = self.decoder.decode(&mut self.buffer);
            if let Some(frame) = decoded.map_err(|error| invalid(error.to_string()))? {
                return Ok(frame);
            }
            let read = self.stream.read_buf(&mut self.buffer);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(0)) => {
                    let source = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                    return Err(self.io_error("the server closed the connection", source));
                }
                Ok(Ok(_)) => {}
                Ok(Err(source)) => return Err(self.io_error("read", source)),
                Err(_) => return Err(self.timeout_error("a frame")),
            }
        }
    }

    fn io_error(&self, what: &str, source: std::io::Error) -> Error {
        Error::Io { what: format!("{what} ({})", self.addr), source }
    }

    fn timeout_error(&self, what: &str) -> Error {
        Error::Timeout { what: format!("{what} from {}", self.addr), within: self.timeout }
    }
}

#[cfg(test)]
mod tests {
    use baton_jute::{
        CreateRequest, CreateResponse, ErrorCode, EventType, GetDataRequest, GetDataResponse,
        SetDataRequest,
    };

    use super::*;
    use crate::{ZOOKEEPER_STARTUP_TIMEOUT, ZkEnsemble, zookeeper_available};

    /// The client against a real standalone ZooKeeper: a reply, an event before the
    /// reply of the write that fired it, a ping, a close, and an oversized frame.
    #[tokio::test]
    async fn replies_and_events_in_arrival_order_against_zookeeper() {
        if let Err(why) = zookeeper_available() {
            eprintln!("skipped: {why}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut zk = ZkEnsemble::start(dir.path(), 1).unwrap();
        zk.wait_serving(ZOOKEEPER_STARTUP_TIMEOUT).await.unwrap();
        let mut client = ZkClient::connect(zk.client_addr(1), 10_000).await.unwrap();
        assert_ne!(client.session().session_id, 0);

        let create = CreateRequest {
            path: "/a".to_owned(),
            data: Some(Bytes::from_static(b"x")),
            acl: vec![baton_jute::Acl {
                perms: baton_jute::perms::ALL,
                id: baton_jute::Id { scheme: "world".to_owned(), id: "anyone".to_owned() },
            }],
            flags: 0,
        };
        let reply = client.call(OpCode::Create.code(), &create).await.unwrap();
        assert_eq!(reply.decode::<CreateResponse>().unwrap().path, "/a");
        let again = client.call(OpCode::Create.code(), &create).await.unwrap();
        assert_eq!(again.header.err, ErrorCode::NodeExists.code());

        let get = GetDataRequest { path: "/a".to_owned(), watch: true };
        let got = client.call(OpCode::GetData.code(), &get).await.unwrap();
        assert_eq!(got.decode::<GetDataResponse>().unwrap().data.as_deref(), Some(&b"x"[..]));
        client.take_received();
        let set = SetDataRequest { path: "/a".to_owned(), data: None, version: -1 };
        client.call(OpCode::SetData.code(), &set).await.unwrap();
        let received = client.take_received();
        assert_eq!(received.len(), 2, "{received:?}");
        let event = received[0].event().unwrap();
        assert_eq!(event.event_type, EventType::NodeDataChanged.code());
        assert_eq!(event.path, "/a");

        assert_eq!(client.ping().await.unwrap().header.err, 0);
        assert_eq!(client.close().await.unwrap().header.err, 0);
        assert!(client.closed_by_server().await);

        let mut client = ZkClient::connect(zk.client_addr(1), 10_000).await.unwrap();
        client.send_raw(&i32::MAX.to_be_bytes()).await.unwrap();
        assert!(client.closed_by_server().await);
    }
}
