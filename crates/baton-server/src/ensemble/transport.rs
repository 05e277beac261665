//! The peer transport: the `baton.peer.v1.Peer` gRPC service (consensus frames in,
//! forwarded writes and session touches from followers) and the per-peer senders.
//!
//! Frames to one peer leave in the order they were queued, batched per call. A
//! peer that is down or slow loses frames (its queue is bounded and a failed call
//! drops its batch): the protocol tolerates loss, and a blocked driver would be
//! worse. Nothing from a peer is trusted: frames are decoded strictly and the
//! node drops what does not fit.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use baton_api::admin::Role;
use baton_api::peer::{
    Delivered, ForwardError, ForwardReply, ForwardRequest, Frames, forward_request::Kind,
    peer_client::PeerClient, peer_server::Peer,
};
use baton_quorum::zab::{ENVELOPE_BYTES_MAX, Envelope, decode_envelope, encode_envelope};
use baton_znode::decode_txn;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming, transport::Channel};

use crate::{
    shared::Shared,
    shutdown::ShutdownListener,
    tls::PeerDialer,
    write_queue::{WriteError, WriteQueue},
};

/// Frames queued for one peer; beyond this they are dropped.
pub(crate) const OUTBOUND_FRAMES_MAX: usize = 4_096;
/// Bytes of frames sent in one call (a larger frame goes alone).
pub(crate) const BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest peer message accepted or sent: one envelope (a snapshot) plus framing.
pub(crate) const PEER_MESSAGE_BYTES_MAX: usize = ENVELOPE_BYTES_MAX + 64 * 1024;
/// Messages from peers waiting for the driver; beyond this they are dropped.
pub(crate) const INBOUND_MESSAGES_MAX: usize = 16_384;
/// Replies in flight on one forward stream.
pub(crate) const FORWARD_REPLIES_MAX: usize = 1_024;
/// Reports of unreachable peers waiting for the driver; more are dropped (one per
/// peer is all it needs).
pub(crate) const LOST_REPORTS_MAX: usize = 64;

/// What every link to a peer is given: how to dial (plain text, or mutual TLS with
/// this member's current certificate) and where to report a peer it could not reach
/// (connection refused or broken, a refused handshake), for the driver to tell its node.
#[derive(Debug, Clone)]
pub(crate) struct PeerLinks {
    lost: mpsc::Sender<u64>,
    dialer: PeerDialer,
}

impl PeerLinks {
    pub(crate) fn new(lost: mpsc::Sender<u64>, dialer: PeerDialer) -> PeerLinks {
        PeerLinks { lost, dialer }
    }

    /// Reports `peer` lost; a full queue drops the report (one per peer is all it needs).
    pub(crate) fn try_send(&self, peer: u64) -> Result<(), mpsc::error::TrySendError<u64>> {
        self.lost.try_send(peer)
    }

    fn client(&self, addr: &str) -> Result<PeerClient<Channel>, tonic::transport::Error> {
        Ok(PeerClient::new(self.dialer.channel(addr)?)
            .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX))
    }
}

/// A failed call's message and the errors under it: a refused TLS handshake says
/// why only there (an unknown CA, a certificate without the serverAuth usage, ...).
fn with_sources(status: &Status) -> String {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        text.push_str(": ");
        text.push_str(&error.to_string());
        source = error.source();
    }
    text
}

/// Whether a failed call means the link itself is gone, not that the peer refused
/// what was sent.
fn link_lost(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// The senders to every other member.
#[derive(Debug)]
pub(crate) struct Outbound {
    senders: BTreeMap<u64, mpsc::Sender<Bytes>>,
    dropped: u64,
}

impl Outbound {
    /// Starts a sender task per peer (they end when `Outbound` is dropped). A peer
    /// whose link fails is reported to `lost` (once per failure, not per frame).
    pub(crate) fn start(me: u64, peers: &[(u64, String)], lost: &PeerLinks) -> Outbound {
        let mut senders = BTreeMap::new();
        for (id, addr) in peers.iter().filter(|(id, _)| *id != me) {
            let (sender, receiver) = mpsc::channel(OUTBOUND_FRAMES_MAX);
            let addr = addr.clone();
            let peer = *id;
            let lost = lost.clone();
            tokio::spawn(async move { send_loop(me, peer, addr, receiver, lost).await });
            senders.insert(*id, sender);
        }
        Outbound { senders, dropped: 0 }
    }

    /// A member a configuration names, at `addr`: a sender for it (replacing one
    /// to an older address).
    pub(crate) fn add(&mut self, me: u64, peer: u64, addr: &str, lost: &PeerLinks) {
        let (sender, receiver) = mpsc::channel(OUTBOUND_FRAMES_MAX);
        let (addr, lost) = (addr.to_owned(), lost.clone());
        tokio::spawn(async move { send_loop(me, peer, addr, receiver, lost).await });
        self.senders.insert(peer, sender);
    }

    pub(crate) fn send(&mut self, envelope: &Envelope) {
        let Some(sender) = self.senders.get(&envelope.to) else {
            self.dropped += 1;
            return;
        };
        let frame = Bytes::from(encode_envelope(envelope));
        if sender.try_send(frame).is_err() {
            self.dropped += 1;
        }
    }
}

/// Batches of frames one stream to a peer holds before the sender waits.
const STREAM_BATCHES_MAX: usize = 64;
/// How long a stream to a peer that was failing must stay open to count as working.
const STREAM_PROVEN: Duration = Duration::from_secs(1);

async fn send_loop(
    me: u64,
    peer: u64,
    addr: String,
    mut frames: mpsc::Receiver<Bytes>,
    lost: PeerLinks,
) {
    let client = match lost.client(&addr) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(peer, %addr, %error, "bad peer address; nothing will be sent to it");
            return;
        }
    };
    let mut failing = false;
    // A peer without the Stream call (an older release) is sent unary Delivers.
    let mut unary = false;
    loop {
        // One long-lived stream per peer: no new HTTP/2 stream and no task on the
        // receiver per batch. It is opened when there is something to send.
        let Some(first) = frames.recv().await else { return };
        let outcome = if unary {
            client
                .clone()
                .deliver(Frames { from: me, frames: take_batch(first, &mut frames) })
                .await
        } else {
            let (batches, stream) = mpsc::channel::<Frames>(STREAM_BATCHES_MAX);
            let _ = batches.try_send(Frames { from: me, frames: take_batch(first, &mut frames) });
            let mut caller = client.clone();
            let mut call = Box::pin(caller.stream(ReceiverStream::new(stream)));
            // A stream call says nothing until it ends: one that has lived a while is
            // taken as a link that works again.
            let opened = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    ended = &mut call => break ended,
                    frame = frames.recv() => {
                        let Some(frame) = frame else { return };
                        let batch = Frames { from: me, frames: take_batch(frame, &mut frames) };
                        if failing && opened.elapsed() >= STREAM_PROVEN {
                            tracing::info!(peer, %addr, "peer reachable again");
                            failing = false;
                        }
                        if batches.send(batch).await.is_err() {
                            break (&mut call).await;
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(_) if unary => {
                if failing {
                    tracing::info!(peer, %addr, "peer reachable again");
                }
                failing = false;
            }
            // The receiver ended the stream (it is stopping): open a new one.
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::Unimplemented && !unary => {
                tracing::info!(peer, %addr, "peer lacks the frame stream; sending one call per batch");
                unary = true;
            }
            Err(status) => {
                if !failing {
                    let error = with_sources(&status);
                    tracing::warn!(peer, %addr, %error, "cannot reach peer; dropping frames until it is back");
                    if link_lost(&status) {
                        let _ = lost.try_send(peer);
                    }
                }
                failing = true;
                // Do not spin on a dead peer: the protocol resends what matters.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// `first` and whatever else is queued, up to [`BATCH_BYTES_MAX`].
fn take_batch(first: Bytes, frames: &mut mpsc::Receiver<Bytes>) -> Vec<Bytes> {
    let mut bytes = first.len();
    let mut batch = vec![first];
    while bytes < BATCH_BYTES_MAX {
        match frames.try_recv() {
            Ok(frame) => {
                bytes += frame.len();
                batch.push(frame);
            }
            Err(_) => break,
        }
    }
    batch
}

/// The server side of the peer protocol.
#[derive(Debug, Clone)]
pub(crate) struct PeerService {
    pub(crate) inbound: mpsc::Sender<Envelope>,
    pub(crate) writes: WriteQueue,
    pub(crate) shared: Arc<Shared>,
    /// Fires when this member stops: forward streams then end, so that followers
    /// elect at once rather than when the connection times out.
    pub(crate) stopping: ShutdownListener,
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn deliver(&self, request: Request<Frames>) -> Result<Response<Delivered>, Status> {
        self.delivered(request.into_inner());
        Ok(Response::new(Delivered {}))
    }

    async fn stream(
        &self,
        request: Request<Streaming<Frames>>,
    ) -> Result<Response<Delivered>, Status> {
        let mut batches = request.into_inner();
        let mut stopping = self.stopping.clone();
        loop {
            tokio::select! {
                batch = batches.next() => match batch {
                    Some(Ok(frames)) => self.delivered(frames),
                    // The sender went away or broke the stream: it opens another.
                    _ => break,
                },
                () = stopping.recv() => break,
            }
        }
        Ok(Response::new(Delivered {}))
    }

    type ForwardStream = ReceiverStream<Result<ForwardReply, Status>>;

    async fn forward(
        &self,
        request: Request<Streaming<ForwardRequest>>,
    ) -> Result<Response<Self::ForwardStream>, Status> {
        let mut requests = request.into_inner();
        let (replies, stream) = mpsc::channel(FORWARD_REPLIES_MAX);
        let service = self.clone();
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            // The reply stream ends once this task and every pending answer are done.
            loop {
                tokio::select! {
                    request = requests.next() => match request {
                        Some(Ok(request)) => service.forwarded(request, &replies),
                        _ => break,
                    },
                    () = stopping.recv() => break,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}

impl PeerService {
    /// Hands a batch of frames to the driver.
    fn delivered(&self, frames: Frames) {
        for frame in frames.frames {
            match decode_envelope(&frame) {
                Ok(envelope) if envelope.from == frames.from => {
                    // A full queue drops: the driver is behind, the protocol resends.
                    let _ = self.inbound.try_send(envelope);
                }
                Ok(envelope) => tracing::debug!(
                    from = frames.from,
                    claimed = envelope.from,
                    "dropping a frame whose sender does not match its call"
                ),
                Err(error) => {
                    tracing::debug!(from = frames.from, %error, "dropping an undecodable peer frame");
                }
            }
        }
    }

    /// Queues one forwarded request in arrival order (queueing is synchronous, so a
    /// follower's order is kept); its reply is sent when it is applied.
    fn forwarded(
        &self,
        request: ForwardRequest,
        replies: &mpsc::Sender<Result<ForwardReply, Status>>,
    ) {
        let id = request.id;
        let replies = replies.clone();
        let reply = move |zxid: u64, error: ForwardError| {
            let replies = replies.clone();
            async move {
                let _ = replies.send(Ok(ForwardReply { id, zxid, error: error as i32 })).await;
            }
        };
        let leading = self.shared.membership();
        let leading = leading.role == Role::Leading && leading.broadcasting;
        match request.kind {
            Some(Kind::Touch(sessions)) => {
                if leading {
                    for session in sessions.sessions {
                        self.shared.sessions.touch(session);
                    }
                }
            }
            _ if !leading => {
                tokio::spawn(reply(0, ForwardError::NotLeader));
            }
            Some(Kind::Txn(bytes)) => match decode_txn(&bytes) {
                Err(error) => {
                    tracing::debug!(%error, "a forwarded txn does not decode");
                    tokio::spawn(reply(0, ForwardError::BadRequest));
                }
                Ok(txn) => {
                    let queued = self.writes.queue(txn.session, txn.auth, txn.op);
                    tokio::spawn(answer_when_done(queued, |done| done.zxid, reply));
                }
            },
            Some(Kind::Sync(_)) => {
                tokio::spawn(answer_when_done(self.writes.queue_sync(), |zxid| zxid, reply));
            }
            None => {
                tokio::spawn(reply(0, ForwardError::BadRequest));
            }
        }
    }
}

/// Sends the reply of a queued forwarded request once it is done (its zxid), or
/// its error if it could not be queued or done.
async fn answer_when_done<T, F>(
    queued: Result<oneshot::Receiver<Result<T, WriteError>>, WriteError>,
    zxid_of: impl FnOnce(T) -> u64,
    reply: impl FnOnce(u64, ForwardError) -> F,
) where
    F: std::future::Future<Output = ()>,
{
    let (zxid, error) = match queued {
        Err(error) => (0, forward_error(&error)),
        Ok(outcome) => match outcome.await {
            Ok(Ok(done)) => (zxid_of(done), ForwardError::None),
            Ok(Err(error)) => (0, forward_error(&error)),
            Err(_) => (0, ForwardError::Unknown),
        },
    };
    reply(zxid, error).await;
}

fn forward_error(error: &WriteError) -> ForwardError {
    match error {
        WriteError::QueueFull(_) => ForwardError::QueueFull,
        WriteError::NotServing(_) => ForwardError::NotLeader,
        WriteError::DiskFull(_) => ForwardError::DiskFull,
        WriteError::ShuttingDown | WriteError::Storage(_) | WriteError::Unknown(_) => {
            ForwardError::Unknown
        }
        // (Only a leader's own requests are refused this way; none is forwarded.)
        WriteError::Refused(_) => ForwardError::BadRequest,
    }
}

/// What a follower's forwarded request waits for.
#[derive(Debug)]
pub(crate) enum Pending {
    Txn(oneshot::Sender<Result<crate::write_queue::TxnReply, WriteError>>),
    Sync(oneshot::Sender<Result<u64, WriteError>>),
}

impl Pending {
    pub(crate) fn fail(self, error: WriteError) {
        match self {
            Pending::Txn(reply) => {
                let _ = reply.send(Err(error));
            }
            Pending::Sync(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// A forwarded request the leader took: the follower answers it once it has
/// applied `zxid` itself.
#[derive(Debug)]
pub(crate) struct Forwarded {
    pub(crate) zxid: u64,
    pub(crate) pending: Pending,
    /// When it was sent to the leader (the forward stage of the write's metrics).
    pub(crate) sent: std::time::Instant,
}

/// A follower's ordered stream of requests to its leader.
#[derive(Debug)]
pub(crate) struct Forwarder {
    pub(crate) leader: u64,
    requests: mpsc::Sender<(ForwardRequest, Option<Pending>)>,
}

impl Forwarder {
    /// Opens the stream to `leader` at `addr`; replies the leader took go to `done`.
    /// A stream that breaks is reported to `lost`.
    pub(crate) fn start(
        leader: u64,
        addr: &str,
        done: mpsc::Sender<Forwarded>,
        queue_max: usize,
        lost: PeerLinks,
    ) -> Forwarder {
        let (requests, receiver) = mpsc::channel(queue_max);
        let addr = addr.to_owned();
        tokio::spawn(async move { forward_loop(leader, addr, receiver, done, lost).await });
        Forwarder { leader, requests }
    }

    /// True once the stream to the leader is gone (it could not be opened, or broke):
    /// the driver then starts a new forwarder.
    pub(crate) fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }

    /// Sends a request; on a full or closed stream the pending request fails at once.
    pub(crate) fn send(&self, kind: Kind, pending: Option<Pending>) {
        let request = ForwardRequest { id: 0, kind: Some(kind) };
        if let Err(error) = self.requests.try_send((request, pending)) {
            let why = match &error {
                mpsc::error::TrySendError::Full(_) => "the link to the leader is saturated",
                mpsc::error::TrySendError::Closed(_) => "the link to the leader is being reopened",
            };
            let (_, pending) = error.into_inner();
            if let Some(pending) = pending {
                pending.fail(WriteError::NotServing(why.into()));
            }
        }
    }
}

async fn forward_loop(
    leader: u64,
    addr: String,
    mut requests: mpsc::Receiver<(ForwardRequest, Option<Pending>)>,
    done: mpsc::Sender<Forwarded>,
    lost_link: PeerLinks,
) {
    let lost = |why: String| WriteError::Unknown(format!("leader {leader} at {addr}: {why}"));
    let mut pending: BTreeMap<u64, (Pending, std::time::Instant)> = BTreeMap::new();
    let client = match lost_link.client(&addr) {
        Ok(client) => client,
        Err(error) => {
            // Touches have no waiter; every write and barrier behind them gets its answer.
            while let Some((_, pending)) = requests.recv().await {
                if let Some(p) = pending {
                    p.fail(lost(error.to_string()));
                }
            }
            return;
        }
    };
    let (stream_in, stream_out) = mpsc::channel::<ForwardRequest>(FORWARD_REPLIES_MAX);
    // The leader answers the call at once (its replies follow on the stream).
    let mut replies = match client.clone().forward(ReceiverStream::new(stream_out)).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            tracing::debug!(leader, %addr, error = %status.message(), "cannot open the forward stream");
            while let Ok((_, waiting)) = requests.try_recv() {
                if let Some(waiting) = waiting {
                    waiting.fail(WriteError::NotServing(format!("cannot reach leader {leader}")));
                }
            }
            // Dropping the receiver marks this forwarder closed: the driver starts a
            // new one on its next tick.
            return;
        }
    };
    let mut next_id = 1u64;
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some((mut request, waiting)) = request else { break };
                request.id = next_id;
                next_id += 1;
                if let Some(waiting) = waiting {
                    pending.insert(request.id, (waiting, std::time::Instant::now()));
                }
                if stream_in.send(request).await.is_err() {
                    break;
                }
            }
            reply = replies.message() => {
                let reply = match reply {
                    Ok(Some(reply)) => reply,
                    Ok(None) => {
                        // The leader ended the stream: it is going away.
                        let _ = lost_link.try_send(leader);
                        break;
                    }
                    Err(status) => {
                        if link_lost(&status) {
                            let _ = lost_link.try_send(leader);
                        }
                        break;
                    }
                };
                let Some((waiting, sent)) = pending.remove(&reply.id) else { continue };
                let error = ForwardError::try_from(reply.error).unwrap_or(ForwardError::Unknown);
                match error {
                    ForwardError::None => {
                        let _ = done.send(Forwarded { zxid: reply.zxid, pending: waiting, sent }).await;
                    }
                    ForwardError::NotLeader => waiting.fail(WriteError::NotServing(format!(
                        "member {leader} is not the leader in broadcast"
                    ))),
                    ForwardError::QueueFull => waiting.fail(WriteError::QueueFull(0)),
                    ForwardError::DiskFull => waiting.fail(WriteError::DiskFull(format!(
                        "disk full on the leader (member {leader}): the write was not taken"
                    ))),
                    ForwardError::BadRequest => {
                        waiting.fail(lost("the leader could not decode the write".into()));
                    }
                    ForwardError::Unknown => waiting.fail(lost("the leader could not say".into())),
                }
            }
        }
    }
    for (_, (waiting, _)) in pending {
        waiting.fail(lost("the stream to the leader ended".into()));
    }
    // As above: a touch (no waiter) must not end the draining early.
    while let Ok((_, waiting)) = requests.try_recv() {
        if let Some(waiting) = waiting {
            waiting.fail(lost("the stream to the leader ended".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forwarder that cannot reach its leader answers every write and barrier
    /// queued behind a touch (which has no waiter), not only those before it.
    #[tokio::test]
    async fn an_unreachable_leader_fails_what_waits_behind_a_touch() {
        let (lost, _lost_reports) = mpsc::channel(LOST_REPORTS_MAX);
        let (done, _done) = mpsc::channel(8);
        let links = PeerLinks::new(lost, PeerDialer::default());
        // Not a host:port a URI can hold: the channel cannot even be made.
        let forwarder = Forwarder::start(2, "bad address", done, 8, links);
        forwarder.send(Kind::Touch(baton_api::peer::Sessions { sessions: vec![7] }), None);
        let (reply, outcome) = oneshot::channel();
        forwarder.send(Kind::Sync(true), Some(Pending::Sync(reply)));
        let outcome = tokio::time::timeout(Duration::from_secs(10), outcome)
            .await
            .expect("answered in time")
            .expect("answered, not dropped");
        assert!(matches!(outcome, Err(WriteError::Unknown(_))), "{outcome:?}");
    }
}
