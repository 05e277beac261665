//! A fake Baton server: the unary `Baton` service over the fakes' tree (a real
//! `DataTree`, see `fake_tree`), served by tonic on 127.0.0.1:0, which a test can stop
//! at will (the client's failover is what is under test).

use std::sync::{Arc, Mutex, MutexGuard};

use baton_api::{
    convert,
    pb::{self, baton_server::Baton},
    status::{ErrorCode, error_status, txn_error_status, znode_error_status},
};
use baton_znode::{OpResult, TxnOp};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Request, Response, Status};

use crate::fake_tree::{FakeTree, header, no_acl};

/// An address on which nothing listens: bound, then released.
pub async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

pub struct FakeServer {
    pub addr: String,
    tree: Arc<Mutex<FakeTree>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let tree = Arc::new(Mutex::new(FakeTree::new()));
        let service = pb::baton_server::BatonServer::new(Service(tree.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        FakeServer { addr, tree, stop: Some(stop), task: Some(task) }
    }

    /// Stops listening and closes every connection; returns once the server is gone.
    pub async fn stop(mut self) {
        self.stop.take().map(|s| s.send(()));
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Every path of its tree (the reserved `/baton` included), sorted.
    pub fn paths(&self) -> Vec<String> {
        self.tree.lock().unwrap().paths()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.take().map(|s| s.send(()));
    }
}

struct Service(Arc<Mutex<FakeTree>>);

/// A result of the wrong kind for its op: a bug in the fake.
fn unexpected(result: &OpResult) -> Status {
    error_status(ErrorCode::SystemError, format!("unexpected {result:?}"), "", None)
}

impl Service {
    fn tree(&self) -> MutexGuard<'_, FakeTree> {
        self.0.lock().unwrap()
    }

    /// A write as the server does it (no session: unary calls have none).
    fn write(&self, op: TxnOp) -> Result<(OpResult, u64), Status> {
        let (result, _) = self.tree().write(0, op);
        result.map_err(|e| txn_error_status(&e))
    }
}

#[tonic::async_trait]
impl Baton for Service {
    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let op = convert::create_op_from_pb(request.into_inner())?;
        match self.write(TxnOp::Create(op))? {
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
        let op = convert::delete_op_from_pb(request.into_inner());
        match self.write(TxnOp::Delete(op))? {
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
        let path = request.into_inner().path;
        let tree = self.tree();
        let stat = tree.tree().stat(&path).map_err(|e| znode_error_status(&e))?;
        let stat = stat.as_ref().map(convert::stat_to_pb);
        Ok(Response::new(pb::ExistsResponse { header: header(tree.zxid()), stat }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let path = request.into_inner().path;
        let tree = self.tree();
        let (data, stat) = tree.tree().get(&path).map_err(|e| znode_error_status(&e))?;
        let stat = Some(convert::stat_to_pb(&stat));
        Ok(Response::new(pb::GetResponse { header: header(tree.zxid()), data, stat }))
    }

    async fn set(
        &self,
        request: Request<pb::SetRequest>,
    ) -> Result<Response<pb::SetResponse>, Status> {
        let op = convert::set_op_from_pb(request.into_inner());
        match self.write(TxnOp::SetData(op))? {
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
        let path = request.into_inner().path;
        let tree = self.tree();
        let (children, stat) = tree.tree().children(&path).map_err(|e| znode_error_status(&e))?;
        let stat = Some(convert::stat_to_pb(&stat));
        Ok(Response::new(pb::ChildrenResponse { header: header(tree.zxid()), children, stat }))
    }

    async fn multi(
        &self,
        request: Request<pb::MultiRequest>,
    ) -> Result<Response<pb::MultiResponse>, Status> {
        let ops = convert::multi_ops_from_pb(request.into_inner())?;
        match self.write(TxnOp::Multi(ops))? {
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
        let path = request.into_inner().path;
        Ok(Response::new(pb::SyncResponse { header: header(self.tree().zxid()), path }))
    }

    // Access control is tested against the real server.
    async fn get_acl(
        &self,
        _: Request<pb::GetAclRequest>,
    ) -> Result<Response<pb::GetAclResponse>, Status> {
        Err(no_acl())
    }

    async fn set_acl(
        &self,
        _: Request<pb::SetAclRequest>,
    ) -> Result<Response<pb::SetAclResponse>, Status> {
        Err(no_acl())
    }

    async fn who_am_i(
        &self,
        _: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        Err(no_acl())
    }

    async fn set_quota(
        &self,
        _: Request<pb::SetQuotaRequest>,
    ) -> Result<Response<pb::SetQuotaResponse>, Status> {
        Err(no_acl())
    }

    async fn get_quota(
        &self,
        _: Request<pb::GetQuotaRequest>,
    ) -> Result<Response<pb::GetQuotaResponse>, Status> {
        Err(no_acl())
    }

    async fn remove_quota(
        &self,
        _: Request<pb::RemoveQuotaRequest>,
    ) -> Result<Response<pb::RemoveQuotaResponse>, Status> {
        Err(no_acl())
    }

    async fn get_config(
        &self,
        _: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::GetConfigResponse>, Status> {
        Err(no_acl())
    }

    async fn reconfig(
        &self,
        _: Request<pb::ReconfigRequest>,
    ) -> Result<Response<pb::ReconfigResponse>, Status> {
        Err(no_acl())
    }

    async fn transfer_leadership(
        &self,
        _: Request<pb::TransferLeadershipRequest>,
    ) -> Result<Response<pb::TransferLeadershipResponse>, Status> {
        Err(no_acl())
    }
}
