//! The ZooKeeper-protocol port, byte by byte: the handshake (new, resumed, expired,
//! the optional read-only byte), bad input, four-letter words, and sessions shared
//! with the gRPC API. (The differential test against a real ZooKeeper, and the tests
//! with ZooKeeper's own clients, are beside this one.)

use std::{net::SocketAddr, time::Duration};

use baton_client::{CreateMode, Session, SessionOptions};
use baton_jute::{
    self as jute, ConnectRequest, ConnectResponse, ErrorCode, FrameDecoder, OpCode, Record,
    ReplyHeader, RequestHeader,
};
use bytes::{Bytes, BytesMut};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{DEADLINE, TestServer};

/// A raw connection: frames out, frames in.
struct Raw {
    stream: TcpStream,
    buffer: BytesMut,
    xid: i32,
    /// Notifications received while waiting for replies: (header, event).
    events: Vec<(ReplyHeader, jute::WatcherEvent)>,
}

impl Raw {
    async fn open(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect to the ZooKeeper port");
        Raw { stream, buffer: BytesMut::new(), xid: 0, events: Vec::new() }
    }

    /// Opens a connection and does the handshake.
    async fn connect(addr: SocketAddr, request: &ConnectRequest) -> (Raw, ConnectResponse, usize) {
        let mut raw = Raw::open(addr).await;
        raw.send(&jute::encode_record_frame(request)).await;
        let frame = raw.frame().await.expect("a ConnectResponse");
        let len = frame.len();
        (raw, ConnectResponse::from_bytes(frame).expect("a ConnectResponse decodes"), len)
    }

    async fn new_session(addr: SocketAddr) -> (Raw, ConnectResponse) {
        let request = ConnectRequest {
            timeout_ms: 10_000,
            passwd: Bytes::from(vec![0; 16]),
            ..ConnectRequest::default()
        };
        let (raw, response, _) = Raw::connect(addr, &request).await;
        assert!(response.session_id != 0 && response.timeout_ms > 0, "{response:?}");
        (raw, response)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to the ZooKeeper port");
    }

    /// The next frame, or None once the server closed the connection.
    async fn frame(&mut self) -> Option<Bytes> {
        let decoder = FrameDecoder::new(jute::FRAME_BYTES_MAX_DEFAULT);
        tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(frame) = decoder.decode(&mut self.buffer).expect("a well-formed frame")
                {
                    return Some(frame);
                }
                match self.stream.read_buf(&mut self.buffer).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("an answer within the deadline")
    }

    /// Sends a request and returns its reply's header and body; notifications that
    /// arrive first are kept in `events`.
    async fn call(&mut self, op: OpCode, body: &impl Record) -> (ReplyHeader, Bytes) {
        self.xid += 1;
        let xid = self.xid;
        self.call_as(xid, op.code(), body).await
    }

    async fn call_as(&mut self, xid: i32, op: i32, body: &impl Record) -> (ReplyHeader, Bytes) {
        let frame = jute::encode_frame(|w| {
            RequestHeader { xid, op }.encode(w);
            body.encode(w);
        });
        self.send(&frame).await;
        loop {
            let frame = self.frame().await.expect("a reply before the connection closed");
            let mut reader = jute::Reader::new(frame);
            let header = ReplyHeader::decode(&mut reader).expect("a reply header");
            let rest = reader.rest();
            if header.xid == jute::xid::NOTIFICATION {
                let event = jute::WatcherEvent::from_bytes(rest).expect("a WatcherEvent");
                self.events.push((header, event));
                continue;
            }
            assert_eq!(header.xid, xid, "replies come in request order");
            return (header, rest);
        }
    }

    /// Whether the server closed the connection (within the deadline).
    async fn closed(&mut self) -> bool {
        self.frame().await.is_none()
    }
}

fn acl_open() -> Vec<jute::Acl> {
    vec![jute::Acl { perms: 31, id: jute::Id { scheme: "world".into(), id: "anyone".into() } }]
}

fn create(path: &str, data: &[u8], flags: i32) -> jute::CreateRequest {
    jute::CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: acl_open(),
        flags,
    }
}

fn zk_addr(server: &TestServer) -> SocketAddr {
    server.process.zk_addr().expect("the server listens for ZooKeeper clients")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_new_resumed_and_expired() {
    let server = TestServer::start(&[]).await;
    let addr = zk_addr(&server);

    // Without the read-only byte the answer has none (36 bytes); with it, it has one.
    let request = ConnectRequest {
        timeout_ms: 1,
        passwd: Bytes::from(vec![0; 16]),
        ..ConnectRequest::default()
    };
    let (mut first, session, len) = Raw::connect(addr, &request).await;
    assert_eq!(len, 36, "{session:?}");
    assert_eq!(session.read_only, None);
    assert_eq!(session.passwd.len(), 16);
    assert!(session.timeout_ms >= 4_000, "clamped to two ticks: {session:?}");
    let with_flag = ConnectRequest { read_only: Some(false), ..request.clone() };
    let (_, other, len) = Raw::connect(addr, &with_flag).await;
    assert_eq!((len, other.read_only), (37, Some(false)));

    let (header, _) = first.call(OpCode::Create, &create("/eph", b"e", 1)).await;
    assert_eq!(header.err, 0);

    // Resumed on a second connection: same session, its ephemeral kept; the first
    // connection is ended (the session moved).
    let resume = ConnectRequest {
        timeout_ms: 10_000,
        session_id: session.session_id,
        passwd: session.passwd.clone(),
        last_zxid_seen: header.zxid,
        ..ConnectRequest::default()
    };
    let (mut second, resumed, _) = Raw::connect(addr, &resume).await;
    assert_eq!(resumed.session_id, session.session_id);
    let exists = jute::ExistsRequest { path: "/eph".into(), watch: false };
    let (header, body) = second.call(OpCode::Exists, &exists).await;
    assert_eq!(header.err, 0);
    let stat = jute::ExistsResponse::from_bytes(body).unwrap().stat;
    assert_eq!(stat.ephemeral_owner, session.session_id);
    assert!(first.closed().await, "the old connection of a moved session ends");

    // A wrong password, or a session that does not exist: ZooKeeper's expired answer.
    let mut wrong = resume.clone();
    wrong.passwd = Bytes::from(vec![7; 16]);
    let (mut refused, answer, _) = Raw::connect(addr, &wrong).await;
    assert_eq!((answer.timeout_ms, answer.session_id), (0, 0), "{answer:?}");
    assert!(refused.closed().await);
    let unknown = ConnectRequest { session_id: 0x0100_0000_dead_beef, ..resume.clone() };
    let (_, answer, _) = Raw::connect(addr, &unknown).await;
    assert_eq!((answer.timeout_ms, answer.session_id), (0, 0), "{answer:?}");

    // A client that has seen more than this server is refused without an answer.
    let ahead = ConnectRequest { last_zxid_seen: i64::MAX, ..resume.clone() };
    let mut raw = Raw::open(addr).await;
    raw.send(&jute::encode_record_frame(&ahead)).await;
    assert!(raw.closed().await);

    // Close: the reply, then the connection ends and the ephemeral is gone.
    let (header, _) = second.call(OpCode::CloseSession, &()).await;
    assert_eq!(header.err, 0);
    assert!(second.closed().await);
    assert!(server.client.exists("/eph").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_the_answer_wait_and_are_served_in_order() {
    let server = TestServer::start(&[]).await;
    let mut raw = Raw::open(zk_addr(&server)).await;
    // The handshake and three requests in one write, before any answer.
    let mut bytes = jute::encode_record_frame(&ConnectRequest {
        timeout_ms: 10_000,
        passwd: Bytes::from(vec![0; 16]),
        ..ConnectRequest::default()
    })
    .to_vec();
    let auth = jute::AuthPacket { auth_type: 0, scheme: "digest".into(), auth: "u:p".into() };
    for (xid, op, body) in [
        (jute::xid::AUTH, OpCode::Auth.code(), auth.to_bytes()),
        (1, OpCode::Create.code(), create("/early", b"1", 0).to_bytes()),
        (
            2,
            OpCode::GetData.code(),
            jute::GetDataRequest { path: "/early".into(), watch: false }.to_bytes(),
        ),
    ] {
        bytes.extend_from_slice(&jute::encode_frame(|w| {
            RequestHeader { xid, op }.encode(w);
            w.write_raw(&body);
        }));
    }
    raw.send(&bytes).await;
    let connected = ConnectResponse::from_bytes(raw.frame().await.unwrap()).unwrap();
    assert!(connected.session_id != 0);
    let mut xids = Vec::new();
    for _ in 0..3 {
        let mut reader = jute::Reader::new(raw.frame().await.unwrap());
        let header = ReplyHeader::decode(&mut reader).unwrap();
        assert_eq!(header.err, 0, "{header:?}");
        xids.push(header.xid);
        if header.xid == 2 {
            let got = jute::GetDataResponse::from_bytes(reader.rest()).unwrap();
            assert_eq!(got.data.as_deref(), Some(&b"1"[..]));
        }
    }
    assert_eq!(xids, [jute::xid::AUTH, 1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_that_connection_only() {
    let server = TestServer::start(&[]).await;
    let addr = zk_addr(&server);
    let (mut healthy, _) = Raw::new_session(addr).await;

    // A length past the limit, and a negative one, before any handshake.
    let over = 2 * jute::FRAME_BYTES_MAX_DEFAULT as i32;
    for length in [i32::MAX, -5, over] {
        let mut raw = Raw::open(addr).await;
        raw.send(&length.to_be_bytes()).await;
        assert!(raw.closed().await, "length {length}");
    }
    // Garbage as a handshake.
    let mut raw = Raw::open(addr).await;
    raw.send(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]).await;
    assert!(raw.closed().await);

    // After a handshake: a truncated record (getData whose path is cut short) and a
    // negative vector length (setACL) are answered MARSHALLINGERROR, as ZooKeeper
    // answers them, and the connection goes on; a length over the limit closes it.
    let truncated = jute::encode_frame(|w| {
        RequestHeader { xid: 1, op: OpCode::GetData.code() }.encode(w);
        w.write_i32(100);
        w.write_raw(b"/short");
    });
    let negative = jute::encode_frame(|w| {
        RequestHeader { xid: 1, op: OpCode::SetAcl.code() }.encode(w);
        w.write_ustring(Some("/"));
        w.write_i32(-7);
        w.write_i32(-1);
    });
    for bad in [&truncated, &negative] {
        let (mut raw, _) = Raw::new_session(addr).await;
        raw.send(bad).await;
        let mut reader = jute::Reader::new(raw.frame().await.expect("an answer"));
        let header = ReplyHeader::decode(&mut reader).unwrap();
        assert_eq!((header.xid, header.err), (1, ErrorCode::MarshallingError.code()));
        let (header, _) = raw.call_as(jute::xid::PING, OpCode::Ping.code(), &()).await;
        assert_eq!(header.err, 0, "the connection goes on");
    }
    let (mut raw, _) = Raw::new_session(addr).await;
    raw.send(&over.to_be_bytes()).await;
    assert!(raw.closed().await);

    // An unknown opcode is answered UNIMPLEMENTED, then the connection closes (as
    // ZooKeeper does).
    let (mut raw, _) = Raw::new_session(addr).await;
    let (header, _) = raw.call_as(1, 999, &()).await;
    assert_eq!(header.err, ErrorCode::Unimplemented.code());
    assert!(raw.closed().await);
    let (mut raw, _) = Raw::new_session(addr).await;
    let (header, _) = raw.call_as(jute::xid::PING, OpCode::Ping.code(), &()).await;
    assert_eq!((header.xid, header.err), (jute::xid::PING, 0));
    // Reconfig is not enabled, as in a ZooKeeper without reconfigEnabled.
    let reconfig = jute::ReconfigRequest {
        joining_servers: None,
        leaving_servers: Some("2".into()),
        new_members: None,
        cur_config_id: -1,
    };
    let (header, _) = raw.call(OpCode::Reconfig, &reconfig).await;
    assert_eq!(header.err, ErrorCode::ReconfigDisabled.code());

    // Everyone else was served all along.
    let (header, _) = healthy.call(OpCode::Create, &create("/still", b"", 0)).await;
    assert_eq!(header.err, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_connect_timeout() {
    let server = TestServer::start(&[]).await;
    let mut raw = Raw::open(zk_addr(&server)).await;
    let started = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        let mut byte = [0u8; 1];
        raw.stream.read(&mut byte).await
    })
    .await
    .expect("closed within 30 s");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    assert!(started.elapsed() >= Duration::from_secs(9), "not before the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_on_the_port() {
    let server = TestServer::start(&[]).await;
    let addr = zk_addr(&server);
    let word = |name: &'static str| async move {
        let mut raw = Raw::open(addr).await;
        raw.send(name.as_bytes()).await;
        let mut text = String::new();
        tokio::time::timeout(DEADLINE, raw.stream.read_to_string(&mut text))
            .await
            .expect("an answer, then the connection closes")
            .expect("text");
        text
    };
    assert!(word("srvr").await.starts_with("Zookeeper version: "));
    assert_eq!(word("ruok").await, "ruok is not executed because it is not in the whitelist.\n");
    assert_eq!(word("abcd").await, "", "an unknown word: closed without an answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_watches_are_shared_with_grpc() {
    let server = TestServer::start(&[]).await;
    let (mut zk, connected) = Raw::new_session(zk_addr(&server)).await;
    let endpoints = vec![server.process.endpoint()];
    let grpc = Session::connect(&endpoints, SessionOptions::default()).await.unwrap();

    // A ZooKeeper client's ephemeral is owned by its session, as gRPC sees it.
    let (header, body) = zk.call(OpCode::Create2, &create("/zk-eph", b"z", 1)).await;
    assert_eq!(header.err, 0);
    let created = jute::Create2Response::from_bytes(body).unwrap();
    let (_, stat) = grpc.get("/zk-eph").await.unwrap();
    assert_eq!(stat.ephemeral_owner, connected.session_id as u64);
    assert_eq!(stat.czxid as i64, created.stat.czxid);

    // A gRPC session's watch fires for a ZooKeeper client's create.
    let (_, watch) = grpc.exists_watch("/from-zk").await.unwrap();
    let (header, _) = zk.call(OpCode::Create, &create("/from-zk", b"", 0)).await;
    assert_eq!(header.err, 0);
    let event = tokio::time::timeout(DEADLINE, watch).await.unwrap().unwrap();
    assert_eq!(event.path, "/from-zk");

    // A ZooKeeper client's watch fires for a gRPC write, with the change's zxid, and
    // before the reply of a read that shows the change.
    grpc.create("/from-grpc", "1", CreateMode::Persistent).await.unwrap();
    let get = jute::GetDataRequest { path: "/from-grpc".into(), watch: true };
    let (header, _) = zk.call(OpCode::GetData, &get).await;
    assert_eq!(header.err, 0);
    let stat = grpc.set("/from-grpc", "2", -1).await.unwrap();
    let get = jute::GetDataRequest { path: "/from-grpc".into(), watch: false };
    let (_, body) = zk.call(OpCode::GetData, &get).await;
    assert_eq!(jute::GetDataResponse::from_bytes(body).unwrap().data.as_deref(), Some(&b"2"[..]));
    let [(header, event)] = &zk.events[..] else { panic!("one event: {:?}", zk.events) };
    assert_eq!(event.event_type, jute::EventType::NodeDataChanged.code());
    assert_eq!(event.path, "/from-grpc");
    assert_eq!(header.zxid, stat.mzxid as i64);

    // The root lists Baton's reserved node as ZooKeeper's.
    let list = jute::GetChildrenRequest { path: "/".into(), watch: false };
    let (_, body) = zk.call(OpCode::GetChildren, &list).await;
    let mut names = jute::GetChildrenResponse::from_bytes(body).unwrap().children;
    names.sort();
    assert_eq!(names, ["from-grpc", "from-zk", "zk-eph", "zookeeper"]);
    let config = jute::GetDataRequest { path: "/zookeeper/config".into(), watch: false };
    let (header, body) = zk.call(OpCode::GetData, &config).await;
    assert_eq!(header.err, 0);
    let text = jute::GetDataResponse::from_bytes(body).unwrap().data.unwrap();
    assert!(String::from_utf8_lossy(&text).ends_with("version=0"), "{text:?}");

    // Counted while open.
    assert_eq!(server.metric("baton_zk_connections").await, 1);
    assert_eq!(server.status().await.zk_connections, 1);
    grpc.close().await.unwrap();
}

/// A sequential node's suffix is its parent's cversion (`%010d`), which counts
/// deletes of children as well as creates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_suffixes_follow_the_cversion() {
    let server = TestServer::start(&[]).await;
    let (mut zk, _) = Raw::new_session(zk_addr(&server)).await;
    assert_eq!(zk.call(OpCode::Create, &create("/q", b"", 0)).await.0.err, 0);
    let mut names: Vec<String> = Vec::new();
    for step in 0..4 {
        if step == 2 {
            let delete = jute::DeleteRequest { path: names[1].clone(), version: -1 };
            assert_eq!(zk.call(OpCode::Delete, &delete).await.0.err, 0);
        }
        let (header, body) = zk.call(OpCode::Create, &create("/q/n-", b"", 2)).await;
        assert_eq!(header.err, 0);
        names.push(jute::CreateResponse::from_bytes(body).unwrap().path);
    }
    assert_eq!(names, ["/q/n-0000000000", "/q/n-0000000001", "/q/n-0000000003", "/q/n-0000000004"]);
}
