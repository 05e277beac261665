//! One ZooKeeper-protocol connection, carried by a Baton session stream.
//!
//! The first four bytes tell a four-letter word (answered, then the connection
//! closes, as ZooKeeper does) from the length of a ConnectRequest. After the
//! handshake two tasks run: the reader decodes each request, translates it and hands
//! it to the session stream (requests sent before the handshake's answer wait there,
//! in order); this task writes what the session answers — the handshake, replies in
//! request order shaped by the queue of pendings, and watch notifications — and
//! flushes once nothing more is ready. A malformed frame, a refused handshake or a
//! session that ends closes the connection; the session itself lives on until it
//! resumes elsewhere, closes or expires, as with gRPC.

use std::{net::SocketAddr, pin::Pin, sync::Arc, task::Poll, time::Duration};

use baton_api::{
    pb::{self, session_response::Kind},
    status::error_from_status,
};
use baton_jute::{self as jute, ConnectRequest, ConnectResponse, ErrorCode, FrameDecoder, Record};
use bytes::{Bytes, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter},
    sync::mpsc,
};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::Status;

use super::translate::{self, Context, Local, MultiReadParts, Pending, Shape};
use crate::{
    fourlw::{self, Refusal, Words},
    metrics::Metrics,
    session::{Incoming, SESSION_INFLIGHT_MAX, service::SessionsService},
    shared::Shared,
};

/// How long a new connection may take to send its ConnectRequest (ZooKeeper's
/// sessionless-connection timeout).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// ZooKeeper's password is 16 bytes; Baton's is the first 8, the rest zeros.
const PASSWORD_BYTES: usize = 16;

/// What every connection of the port shares.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sessions: SessionsService,
    pub(crate) words: Words,
    /// The context before the driver published the configuration in force.
    pub(crate) context: Context,
    pub(crate) frame_bytes_max: usize,
}

impl Port {
    /// What the translation needs now: the configuration in force changes with
    /// every membership change.
    fn context(&self) -> Context {
        let text = self.shared.membership().config_text;
        if text.is_empty() { self.context.clone() } else { Context { config: text } }
    }
}

/// Serves one connection until it closes.
pub(crate) async fn serve<S>(
    mut io: S,
    remote: Option<SocketAddr>,
    subject: Option<String>,
    port: Arc<Port>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut first = [0u8; 4];
    match tokio::time::timeout(CONNECT_TIMEOUT, io.read_exact(&mut first)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return,
        Err(_) => {
            tracing::debug!(?remote, "no ConnectRequest within the timeout; closed");
            return;
        }
    }
    if first.iter().all(u8::is_ascii_lowercase) {
        four_letter_word(io, &first, &port).await;
        return;
    }
    let connect = match read_connect(&mut io, first, port.frame_bytes_max).await {
        Ok(connect) => connect,
        Err(why) => {
            tracing::debug!(?remote, why, "bad ZooKeeper handshake; closed");
            return;
        }
    };
    let (reader, writer) = tokio::io::split(io);
    let (requests, incoming) = mpsc::channel(SESSION_INFLIGHT_MAX);
    let (pendings, pending) = mpsc::channel(4 * SESSION_INFLIGHT_MAX);
    let first = pb::SessionRequest {
        kind: Some(pb::session_request::Kind::Connect(connect_to_pb(&connect))),
    };
    // The channel is new and empty.
    let _ = requests.try_send(Ok(first));
    let reading = tokio::spawn(read_requests(reader, requests, pendings, Arc::clone(&port)));
    let incoming: Incoming = Box::pin(ReceiverStream::new(incoming));
    let written = match port.sessions.open(remote, subject, incoming).await {
        Ok(outbound) => {
            Metrics::add(&port.shared.metrics.zk_connections_total, 1);
            port.shared.metrics.zk_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let written = write_answers(writer, outbound, pending, connect.read_only).await;
            port.shared.metrics.zk_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            written
        }
        Err(status) => refuse(writer, &status, connect.read_only).await,
    };
    reading.abort();
    if let Err(why) = written {
        tracing::debug!(?remote, why, "ZooKeeper connection closed");
    }
}

async fn four_letter_word<S: AsyncWrite + Unpin>(mut io: S, word: &[u8; 4], port: &Port) {
    let name = String::from_utf8_lossy(word).into_owned();
    let text = match fourlw::answer(&name, &port.shared, &port.words) {
        Ok(text) => text,
        Err(Refusal::NotWhitelisted(sentence)) => sentence,
        // ZooKeeper closes on a word it does not know.
        Err(Refusal::Unknown) => return,
    };
    let _ = io.write_all(text.as_bytes()).await;
    let _ = io.shutdown().await;
}

async fn read_connect<S: AsyncRead + Unpin>(
    io: &mut S,
    first: [u8; 4],
    frame_bytes_max: usize,
) -> Result<ConnectRequest, String> {
    let length = i32::from_be_bytes(first);
    let length = usize::try_from(length)
        .ok()
        .filter(|length| *length <= frame_bytes_max)
        .ok_or_else(|| format!("a ConnectRequest of {length} bytes"))?;
    let mut body = vec![0u8; length];
    tokio::time::timeout(CONNECT_TIMEOUT, io.read_exact(&mut body))
        .await
        .map_err(|_| "the ConnectRequest did not arrive in time".to_owned())?
        .map_err(|error| error.to_string())?;
    ConnectRequest::from_bytes(Bytes::from(body)).map_err(|error| error.to_string())
}

fn connect_to_pb(connect: &ConnectRequest) -> pb::Connect {
    let password = match connect.passwd.len() {
        PASSWORD_BYTES if connect.passwd[8..].iter().all(|b| *b == 0) => connect.passwd.slice(..8),
        _ => connect.passwd.clone(),
    };
    pb::Connect {
        // The bits are the id, as in ZooKeeper.
        session_id: connect.session_id as u64,
        password,
        timeout_ms: u32::try_from(connect.timeout_ms).unwrap_or(0),
        last_zxid_seen: u64::try_from(connect.last_zxid_seen).unwrap_or(0),
        watches: Vec::new(),
        auth: Vec::new(),
    }
}

/// Frames in, session requests out, until the connection ends, a frame is bad, or the
/// client closes its session.
async fn read_requests<R: AsyncRead + Unpin>(
    mut reader: R,
    requests: mpsc::Sender<Result<pb::SessionRequest, Status>>,
    pendings: mpsc::Sender<Pending>,
    port: Arc<Port>,
) {
    let decoder = FrameDecoder::new(port.frame_bytes_max);
    let mut buffer = BytesMut::with_capacity(8 * 1024);
    let mut next_xid = 0u64;
    loop {
        let frame = match decoder.decode(&mut buffer) {
            Ok(Some(frame)) => frame,
            Ok(None) => match reader.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            Err(error) => {
                tracing::debug!(%error, "bad frame on the ZooKeeper port; closing");
                return;
            }
        };
        let mut reader = jute::Reader::new(frame);
        let header = match jute::RequestHeader::decode(&mut reader) {
            Ok(header) => header,
            Err(error) => {
                tracing::debug!(%error, "a request without a header on the ZooKeeper port; closing");
                return;
            }
        };
        // A body that does not decode is answered, and the connection goes on (as
        // ZooKeeper answers it).
        let (parts, closing) = match jute::Request::decode(header.op, reader.rest()) {
            Ok(body) => {
                let closing = matches!(body, jute::Request::CloseSession);
                let context = port.context();
                (translate::translate(&header, body, &context, &mut next_xid), closing)
            }
            Err(error) => {
                tracing::debug!(%error, op = header.op, "an undecodable request body");
                (translate::malformed(header.xid, &mut next_xid), false)
            }
        };
        for (request, pending) in parts {
            let request =
                pb::SessionRequest { kind: Some(pb::session_request::Kind::Request(request)) };
            if pendings.send(pending).await.is_err() || requests.send(Ok(request)).await.is_err() {
                return;
            }
        }
        if closing {
            // Nothing after a close is read; the writer ends the connection.
            std::future::pending::<()>().await;
        }
    }
}

/// Writes the handshake's answer, then replies and notifications, until the session
/// stream ends. Err says why the connection ended early.
async fn write_answers<W, O>(
    writer: W,
    mut outbound: O,
    mut pending: mpsc::Receiver<Pending>,
    read_only: Option<bool>,
) -> Result<(), &'static str>
where
    W: AsyncWrite + Unpin,
    O: Stream<Item = Result<pb::SessionResponse, Status>> + Unpin,
{
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let mut parts = MultiReadParts::default();
    let mut next = outbound.next().await;
    while let Some(item) = next {
        let message = item.map_err(|_| "the session stream ended")?;
        let mut close_after = false;
        let frame = match message.kind {
            Some(Kind::Connected(connected)) => Some(connect_response(&connected, read_only)),
            Some(Kind::Event(event)) => Some(translate::encode_event(&event)),
            Some(Kind::Reply(reply)) => {
                let pending = pending.recv().await.ok_or("a reply with no request")?;
                // ZooKeeper never sends CONNECTIONLOSS: a member that cannot serve (it
                // lost its leader, say) drops the connection, and the client resumes
                // its session elsewhere.
                if matches!(
                    &reply.result,
                    Some(pb::reply::Result::Error(error))
                        if error.code == pb::ErrorCode::ConnectionLoss as i32
                ) {
                    let _ = writer.flush().await;
                    let _ = writer.shutdown().await;
                    return Err("this member cannot serve now");
                }
                let auth_failed = pending.shape == Shape::Auth
                    && matches!(reply.result, Some(pb::reply::Result::Error(_)));
                let refused = matches!(pending.shape, Shape::Local(Local::Closing(_)));
                close_after = pending.shape == Shape::Close || auth_failed || refused;
                translate::encode_reply(&pending, reply, &mut parts)
            }
            None => None,
        };
        if let Some(frame) = frame {
            writer.write_all(&frame).await.map_err(|_| "writing failed")?;
        }
        if close_after {
            let _ = writer.flush().await;
            let _ = writer.shutdown().await;
            return Ok(());
        }
        next = match ready(&mut outbound) {
            Some(item) => item,
            None => {
                writer.flush().await.map_err(|_| "writing failed")?;
                outbound.next().await
            }
        };
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
    Ok(())
}

/// The next item if one is ready now.
fn ready<O>(outbound: &mut O) -> Option<Option<O::Item>>
where
    O: Stream + Unpin,
{
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match Pin::new(outbound).poll_next(&mut cx) {
        Poll::Ready(item) => Some(item),
        Poll::Pending => None,
    }
}

fn connect_response(connected: &pb::Connected, read_only: Option<bool>) -> Bytes {
    let mut passwd = connected.password.to_vec();
    passwd.resize(PASSWORD_BYTES.max(passwd.len()), 0);
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: i32::try_from(connected.timeout_ms).unwrap_or(i32::MAX),
        // The bits are the id.
        session_id: connected.session_id as i64,
        passwd: Bytes::from(passwd),
        read_only: read_only.map(|_| false),
    };
    jute::encode_record_frame(&response)
}

/// A handshake the session refused. An unknown, expired or wrongly-authenticated
/// session is answered as ZooKeeper answers an expired one (timeout 0, session 0),
/// which clients raise as SessionExpired; any other refusal (this member is behind
/// the client, or not serving) just closes, and the client tries another member.
async fn refuse<W: AsyncWrite + Unpin>(
    mut writer: W,
    status: &Status,
    read_only: Option<bool>,
) -> Result<(), &'static str> {
    let code = translate::error_code(error_from_status(status).code);
    if matches!(code, ErrorCode::SessionExpired | ErrorCode::AuthFailed) {
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: Bytes::from(vec![0u8; PASSWORD_BYTES]),
            read_only: read_only.map(|_| false),
        };
        let _ = writer.write_all(&jute::encode_record_frame(&response)).await;
        let _ = writer.shutdown().await;
        return Ok(());
    }
    let _ = writer.shutdown().await;
    Err("the session was refused")
}
