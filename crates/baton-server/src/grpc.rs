//! The client gRPC service `baton.v1.Baton`, with gRPC health and reflection.
//!
//! Writes are validated here, statelessly (`baton_znode::validate_op`), before they
//! are queued: a request that cannot be valid never becomes a txn. Reads are
//! answered from the local tree. Every error becomes a status through baton-api.

use std::sync::Arc;

use baton_api::{
    convert,
    pb::{
        self,
        baton_server::{Baton, BatonServer},
        sessions_server::SessionsServer,
    },
    status::{ErrorCode, error_status, txn_error_status, znode_error_status},
};
use baton_znode::{Auth, DataTree, MultiOp, OpResult, QuotaLimits, TxnOp, ZnodeError, validate_op};
use tonic::{Request, Response, Status, transport::server::Connected};
use tonic_health::ServingStatus;

use crate::{
    ServerError, access,
    metrics::Metrics,
    session::service::SessionsService,
    shared::Shared,
    shutdown::ShutdownListener,
    write_queue::{TxnReply, WriteQueue},
};

/// The gRPC service name health is reported for (besides "", the whole server).
pub const SERVICE_NAME: &str = "baton.v1.Baton";
/// The session service, also reported healthy.
pub const SESSIONS_SERVICE_NAME: &str = "baton.v1.Sessions";
/// Readiness, for Kubernetes' gRPC readiness probe: SERVING while this server
/// serves clients and has applied what it knows committed (a member out of
/// broadcast, electing or syncing, is NOT_SERVING). "" (the whole server) is liveness:
/// SERVING while the process answers.
pub const READY_SERVICE_NAME: &str = "baton.v1.Ready";
/// How often readiness is re-evaluated.
const READY_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Serves `Baton`, health and reflection on the connections of `incoming` (TCP, or
/// TLS: see `server::run`) until `shutdown`; requests larger than `request_bytes_max`
/// are refused by tonic before they are decoded.
pub(crate) async fn serve<I, IO, IE>(
    incoming: I,
    service: BatonService,
    sessions: SessionsService,
    request_bytes_max: usize,
    mut shutdown: ShutdownListener,
) -> Result<(), ServerError>
where
    I: tokio_stream::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Connected + Unpin + Send + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let failed = |message: String| ServerError::Serve { what: "client gRPC", message };
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in ["", SERVICE_NAME, SESSIONS_SERVICE_NAME] {
        health.set_service_status(name, ServingStatus::Serving).await;
    }
    health.set_service_status(READY_SERVICE_NAME, ServingStatus::NotServing).await;
    let readiness = tokio::spawn(report_readiness(Arc::clone(&service.shared), health.clone()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| failed(format!("reflection: {error}")))?;
    let baton = BatonServer::new(service).max_decoding_message_size(request_bytes_max);
    let sessions = SessionsServer::new(sessions).max_decoding_message_size(request_bytes_max);
    let stopped = async move {
        shutdown.recv().await;
        readiness.abort();
        for name in ["", SERVICE_NAME, SESSIONS_SERVICE_NAME, READY_SERVICE_NAME] {
            health.set_service_status(name, ServingStatus::NotServing).await;
        }
    };
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(baton)
        .add_service(sessions)
        .serve_with_incoming_shutdown(incoming, stopped)
        .await
        .map_err(|error| failed(error.to_string()))
}

/// Keeps [`READY_SERVICE_NAME`]'s status equal to [`Shared::ready`].
async fn report_readiness(shared: Arc<Shared>, health: tonic_health::server::HealthReporter) {
    let mut was = false;
    let mut poll = tokio::time::interval(READY_POLL);
    loop {
        poll.tick().await;
        let ready = shared.ready();
        if ready != was {
            let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
            health.set_service_status(READY_SERVICE_NAME, status).await;
            tracing::info!(ready, "readiness changed");
            was = ready;
        }
    }
}

/// The `Baton` service.
#[derive(Debug, Clone)]
pub(crate) struct BatonService {
    shared: Arc<Shared>,
    writes: WriteQueue,
}

fn header(zxid: u64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader { zxid })
}

/// A result of the wrong kind for its op: a bug, reported rather than panicking.
fn unexpected(result: &OpResult) -> Status {
    error_status(ErrorCode::SystemError, format!("internal error: unexpected {result:?}"), "", None)
}

impl BatonService {
    pub(crate) fn new(shared: Arc<Shared>, writes: WriteQueue) -> BatonService {
        BatonService { shared, writes }
    }

    /// Who the call is (address, certificate, `baton-auth` credentials).
    fn auth<T>(&self, request: &Request<T>) -> Result<Auth, Status> {
        self.shared.auth.call_auth(request).inspect_err(|_| {
            Metrics::add(&self.shared.metrics.auth_failures_total, 1);
        })
    }

    /// Makes its ACLs concrete, validates, queues, and waits for the applied result.
    async fn write(&self, auth: Auth, op: TxnOp) -> Result<(OpResult, u64), Status> {
        let op = baton_znode::acl::fixup_op(op, &auth).map_err(|e| txn_error_status(&e))?;
        validate_op(&op, &self.shared.limits).map_err(|e| txn_error_status(&e))?;
        let TxnReply { applied_zxid, result, .. } =
            self.writes.submit_as(0, auth, op).await.map_err(|e| e.status())?;
        let result = result.map_err(|e| txn_error_status(&e))?;
        Ok((result, applied_zxid))
    }

    /// For a linearizable read: waits until this member has applied what was
    /// committed when the read arrived, as confirmed by a quorum (ReadIndex).
    async fn confirm(&self, linearizable: bool) -> Result<(), Status> {
        if linearizable {
            self.writes.read_index().await.map_err(|e| e.status())?;
        }
        Ok(())
    }

    /// Runs `read` on the tree; returns its value and the zxid it saw.
    fn read<T>(
        &self,
        read: impl FnOnce(&DataTree) -> Result<T, ZnodeError>,
    ) -> Result<(T, u64), Status> {
        Metrics::add(&self.shared.metrics.reads_total, 1);
        if !self.shared.serves_reads() {
            // A member out of broadcast may be arbitrarily stale: send the client
            // elsewhere rather than answer from it.
            let message = "not serving: this member is not in broadcast; try another";
            return Err(error_status(ErrorCode::ConnectionLoss, message, "", None));
        }
        let tree = self.shared.read_tree().map_err(|_| {
            error_status(ErrorCode::SystemError, "the server is failing; try another", "", None)
        })?;
        let value = read(&tree).map_err(|e| znode_error_status(&e))?;
        Ok((value, tree.last_zxid()))
    }
}

#[tonic::async_trait]
impl Baton for BatonService {
    async fn get_config(
        &self,
        _request: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::GetConfigResponse>, Status> {
        Ok(Response::new(crate::membership::get_config(&self.shared)))
    }

    async fn reconfig(
        &self,
        request: Request<pb::ReconfigRequest>,
    ) -> Result<Response<pb::ReconfigResponse>, Status> {
        let _timer = self.shared.metrics.time("reconfig");
        let auth = self.auth(&request)?;
        crate::membership::may_change(&self.shared, &auth)?;
        let reply =
            crate::membership::reconfig(&self.shared, &self.writes, request.into_inner()).await?;
        Ok(Response::new(reply))
    }

    async fn transfer_leadership(
        &self,
        request: Request<pb::TransferLeadershipRequest>,
    ) -> Result<Response<pb::TransferLeadershipResponse>, Status> {
        let auth = self.auth(&request)?;
        crate::membership::may_change(&self.shared, &auth)?;
        let to = request.into_inner().to;
        let leader = crate::membership::transfer(&self.shared, &self.writes, to).await?;
        let zxid = self.shared.membership().committed_zxid;
        Ok(Response::new(pb::TransferLeadershipResponse { header: header(zxid), leader }))
    }

    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let _timer = self.shared.metrics.time("create");
        let auth = self.auth(&request)?;
        let op = convert::create_op_from_pb(request.into_inner())?;
        if op.mode.is_ephemeral() {
            // Only a session's own stream may create its ephemerals (as in ZooKeeper,
            // where the connection is the session): a unary call proves no session.
            let message =
                format!("ephemeral nodes need a session: create {} on a Sessions stream", op.path);
            return Err(error_status(ErrorCode::BadArguments, message, op.path.as_str(), None));
        }
        match self.write(auth, TxnOp::Create(op)).await? {
            (OpResult::Created { path, stat }, zxid) => Ok(Response::new(pb::CreateResponse {
                header: header(zxid),
                path,
                stat: Some(convert::stat_to_pb(&stat)),
            })),
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let _timer = self.shared.metrics.time("delete");
        let auth = self.auth(&request)?;
        let op = convert::delete_op_from_pb(request.into_inner());
        match self.write(auth, TxnOp::Delete(op)).await? {
            (OpResult::Deleted, zxid) => {
                Ok(Response::new(pb::DeleteResponse { header: header(zxid) }))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn exists(
        &self,
        request: Request<pb::ExistsRequest>,
    ) -> Result<Response<pb::ExistsResponse>, Status> {
        let _timer = self.shared.metrics.time("exists");
        let auth = self.auth(&request)?;
        let request = request.into_inner();
        self.confirm(request.linearizable).await?;
        let path = request.path;
        let (stat, zxid) = self.read(|tree| access::stat_checked(tree, &path, &auth))?;
        let stat = stat.as_ref().map(convert::stat_to_pb);
        Ok(Response::new(pb::ExistsResponse { header: header(zxid), stat }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let _timer = self.shared.metrics.time("get");
        let auth = self.auth(&request)?;
        let request = request.into_inner();
        self.confirm(request.linearizable).await?;
        let path = request.path;
        let ((data, stat), zxid) = self.read(|tree| {
            access::may_read(tree, &path, &auth)?;
            tree.get(&path)
        })?;
        let stat = Some(convert::stat_to_pb(&stat));
        Ok(Response::new(pb::GetResponse { header: header(zxid), data, stat }))
    }

    async fn set(
        &self,
        request: Request<pb::SetRequest>,
    ) -> Result<Response<pb::SetResponse>, Status> {
        let _timer = self.shared.metrics.time("set");
        let auth = self.auth(&request)?;
        let op = convert::set_op_from_pb(request.into_inner());
        match self.write(auth, TxnOp::SetData(op)).await? {
            (OpResult::SetData { stat }, zxid) => Ok(Response::new(pb::SetResponse {
                header: header(zxid),
                stat: Some(convert::stat_to_pb(&stat)),
            })),
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn children(
        &self,
        request: Request<pb::ChildrenRequest>,
    ) -> Result<Response<pb::ChildrenResponse>, Status> {
        let _timer = self.shared.metrics.time("children");
        let auth = self.auth(&request)?;
        let request = request.into_inner();
        self.confirm(request.linearizable).await?;
        let path = request.path;
        let ((children, stat), zxid) = self.read(|tree| {
            access::may_read(tree, &path, &auth)?;
            tree.children(&path)
        })?;
        listing_fits(&path, &children)?;
        let stat = Some(convert::stat_to_pb(&stat));
        Ok(Response::new(pb::ChildrenResponse { header: header(zxid), children, stat }))
    }

    async fn multi(
        &self,
        request: Request<pb::MultiRequest>,
    ) -> Result<Response<pb::MultiResponse>, Status> {
        let _timer = self.shared.metrics.time("multi");
        let auth = self.auth(&request)?;
        let ops = convert::multi_ops_from_pb(request.into_inner())?;
        // As for Create: only a session's own stream may create its ephemerals.
        if let Some((index, path)) = ops.iter().enumerate().find_map(|(i, op)| match op {
            MultiOp::Create(create) if create.mode.is_ephemeral() => Some((i, &create.path)),
            _ => None,
        }) {
            let message = format!(
                "multi op {index}: ephemeral nodes need a session: create {path} on a Sessions \
                 stream"
            );
            let op_index = u32::try_from(index).ok();
            return Err(error_status(ErrorCode::BadArguments, message, path.as_str(), op_index));
        }
        match self.write(auth, TxnOp::Multi(ops)).await? {
            (OpResult::Multi(results), zxid) => Ok(Response::new(pb::MultiResponse {
                header: header(zxid),
                results: results.iter().map(convert::op_result_to_pb).collect(),
            })),
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn sync(
        &self,
        request: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        let _timer = self.shared.metrics.time("sync");
        let path = request.into_inner().path;
        let zxid = self.writes.sync().await.map_err(|e| e.status())?;
        Ok(Response::new(pb::SyncResponse { header: header(zxid), path }))
    }

    async fn get_acl(
        &self,
        request: Request<pb::GetAclRequest>,
    ) -> Result<Response<pb::GetAclResponse>, Status> {
        let _timer = self.shared.metrics.time("get_acl");
        let auth = self.auth(&request)?;
        let path = request.into_inner().path;
        let ((acl, stat), zxid) = self.read(|tree| access::acl_checked(tree, &path, &auth))?;
        Ok(Response::new(pb::GetAclResponse {
            header: header(zxid),
            acl: convert::acl_to_pb(&acl),
            stat: Some(convert::stat_to_pb(&stat)),
        }))
    }

    async fn set_acl(
        &self,
        request: Request<pb::SetAclRequest>,
    ) -> Result<Response<pb::SetAclResponse>, Status> {
        let _timer = self.shared.metrics.time("set_acl");
        let auth = self.auth(&request)?;
        let op = convert::set_acl_op_from_pb(request.into_inner())?;
        match self.write(auth, TxnOp::SetAcl(op)).await? {
            (OpResult::AclSet { stat }, zxid) => Ok(Response::new(pb::SetAclResponse {
                header: header(zxid),
                stat: Some(convert::stat_to_pb(&stat)),
            })),
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let auth = self.auth(&request)?;
        let zxid = self.shared.read_tree().map(|tree| tree.last_zxid()).unwrap_or(0);
        Ok(Response::new(pb::WhoAmIResponse {
            header: header(zxid),
            identities: identities_to_pb(&auth),
        }))
    }

    async fn set_quota(
        &self,
        request: Request<pb::SetQuotaRequest>,
    ) -> Result<Response<pb::SetQuotaResponse>, Status> {
        let _timer = self.shared.metrics.time("set_quota");
        let auth = self.auth(&request)?;
        let request = request.into_inner();
        let limits = convert::quota_limits_from_pb(request.limits.as_ref());
        let op = TxnOp::SetQuota { path: request.path, limits };
        match self.write(auth, op).await? {
            (OpResult::QuotaSet, zxid) => {
                Ok(Response::new(pb::SetQuotaResponse { header: header(zxid) }))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn get_quota(
        &self,
        request: Request<pb::GetQuotaRequest>,
    ) -> Result<Response<pb::GetQuotaResponse>, Status> {
        let auth = self.auth(&request)?;
        let path = request.into_inner().path;
        let ((limits, usage), zxid) = self.read(|tree| {
            access::may_read(tree, &path, &auth)?;
            tree.quota(&path)
                .ok_or_else(|| ZnodeError::NoNode { path: QuotaLimits::node_of(&path) })
        })?;
        Ok(Response::new(pb::GetQuotaResponse {
            header: header(zxid),
            limits: Some(convert::quota_limits_to_pb(&limits)),
            usage: Some(convert::quota_usage_to_pb(&usage)),
        }))
    }

    async fn remove_quota(
        &self,
        request: Request<pb::RemoveQuotaRequest>,
    ) -> Result<Response<pb::RemoveQuotaResponse>, Status> {
        let _timer = self.shared.metrics.time("remove_quota");
        let auth = self.auth(&request)?;
        let op = TxnOp::RemoveQuota { path: request.into_inner().path };
        match self.write(auth, op).await? {
            (OpResult::QuotaRemoved, zxid) => {
                Ok(Response::new(pb::RemoveQuotaResponse { header: header(zxid) }))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }
}

/// The identities as a caller may see them: a digest's user, never its hash.
pub(crate) fn identities_to_pb(auth: &Auth) -> Vec<pb::Identity> {
    auth.ids()
        .iter()
        .map(|id| {
            let shown = id.redacted();
            let (scheme, rest) = shown.split_once(':').unwrap_or((shown.as_str(), ""));
            pb::Identity { scheme: scheme.to_owned(), id: rest.to_owned() }
        })
        .collect()
}

/// The most bytes of child names one listing may carry: what a gRPC client takes in
/// one message by default (4 MiB), less room for the rest of the reply.
pub(crate) const LISTING_BYTES_MAX: usize = (4 << 20) - (64 << 10);

/// Refuses a listing too large for one reply, naming the node and the sizes, rather
/// than sending a message the client would drop.
pub(crate) fn listing_fits(path: &str, names: &[String]) -> Result<(), Status> {
    // Each name costs its bytes plus a tag and a length on the wire.
    let bytes: usize = names.iter().map(|name| name.len() + 3).sum();
    if bytes <= LISTING_BYTES_MAX {
        return Ok(());
    }
    let message = format!(
        "the children of {path} ({} names, {bytes} bytes) exceed the {LISTING_BYTES_MAX} bytes \
         one reply may carry; spread them under more parents",
        names.len()
    );
    Err(error_status(ErrorCode::BadArguments, message, path, None))
}
