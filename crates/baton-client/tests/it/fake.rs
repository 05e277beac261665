//! A fake Baton server: an in-memory tree with just enough semantics (parents, NotEmpty,
//! versions, sequential names) to test the client, served by tonic on 127.0.0.1:0.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use baton_api::{
    convert::stat_to_pb,
    pb::{self, baton_server::Baton},
    status::znode_error_status,
};
use baton_znode::{Stat, ZnodeError};
use bytes::Bytes;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Request, Response, Status};

/// An address on which nothing listens: bound, then released.
pub async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

pub struct FakeServer {
    pub addr: String,
    tree: Arc<Tree>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let tree = Arc::new(Tree::default());
        tree.nodes.lock().unwrap().insert("/".to_owned(), Node::default());
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

    pub fn paths(&self) -> Vec<String> {
        self.tree.nodes.lock().unwrap().keys().cloned().collect()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.take().map(|s| s.send(()));
    }
}

#[derive(Default)]
struct Tree {
    nodes: Mutex<BTreeMap<String, Node>>,
    zxid: AtomicU64,
}

#[derive(Default, Clone)]
struct Node {
    data: Bytes,
    stat: Stat,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "/",
    }
}

fn children(nodes: &BTreeMap<String, Node>, path: &str) -> Vec<String> {
    nodes
        .keys()
        .filter(|p| p.as_str() != "/" && parent(p) == path)
        .map(|p| p.rsplit('/').next().unwrap_or_default().to_owned())
        .collect()
}

fn err(error: ZnodeError) -> Status {
    znode_error_status(&error)
}

impl Tree {
    fn header(&self, write: bool) -> Option<pb::ResponseHeader> {
        let zxid = if write {
            self.zxid.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            self.zxid.load(Ordering::SeqCst)
        };
        Some(pb::ResponseHeader { zxid })
    }

    fn stat_of(&self, nodes: &BTreeMap<String, Node>, path: &str) -> Result<pb::Stat, Status> {
        let node = nodes.get(path).ok_or_else(|| err(ZnodeError::NoNode { path: path.into() }))?;
        let mut stat = node.stat;
        stat.num_children = children(nodes, path).len() as u32;
        Ok(stat_to_pb(&stat))
    }
}

struct Service(Arc<Tree>);

#[tonic::async_trait]
impl Baton for Service {
    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let r = request.into_inner();
        let mut nodes = self.0.nodes.lock().unwrap();
        let parent_path = parent(&r.path).to_owned();
        let parent_node = nodes
            .get_mut(&parent_path)
            .ok_or_else(|| err(ZnodeError::NoNode { path: parent_path.clone() }))?;
        let sequential = r.mode == pb::CreateMode::PersistentSequential as i32;
        let path = if sequential {
            format!("{}{:010}", r.path, parent_node.stat.cversion)
        } else {
            r.path.clone()
        };
        if nodes.contains_key(&path) {
            return Err(err(ZnodeError::NodeExists { path }));
        }
        nodes.get_mut(&parent_path).unwrap().stat.cversion += 1;
        let header = self.0.header(true);
        let zxid = header.as_ref().unwrap().zxid;
        let stat =
            Stat { czxid: zxid, mzxid: zxid, data_length: r.data.len() as u32, ..Stat::default() };
        nodes.insert(path.clone(), Node { data: r.data, stat });
        let stat = Some(self.0.stat_of(&nodes, &path)?);
        Ok(Response::new(pb::CreateResponse { header, path, stat }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let r = request.into_inner();
        let mut nodes = self.0.nodes.lock().unwrap();
        let node =
            nodes.get(&r.path).ok_or_else(|| err(ZnodeError::NoNode { path: r.path.clone() }))?;
        if r.version != -1 && r.version != node.stat.version {
            let actual = node.stat.version;
            return Err(err(ZnodeError::BadVersion { path: r.path, expected: r.version, actual }));
        }
        if !children(&nodes, &r.path).is_empty() {
            return Err(err(ZnodeError::NotEmpty { path: r.path }));
        }
        nodes.remove(&r.path);
        Ok(Response::new(pb::DeleteResponse { header: self.0.header(true) }))
    }

    async fn exists(
        &self,
        request: Request<pb::ExistsRequest>,
    ) -> Result<Response<pb::ExistsResponse>, Status> {
        let r = request.into_inner();
        let nodes = self.0.nodes.lock().unwrap();
        let stat = self.0.stat_of(&nodes, &r.path).ok();
        Ok(Response::new(pb::ExistsResponse { header: self.0.header(false), stat }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let r = request.into_inner();
        let nodes = self.0.nodes.lock().unwrap();
        let stat = Some(self.0.stat_of(&nodes, &r.path)?);
        let data = nodes[&r.path].data.clone();
        Ok(Response::new(pb::GetResponse { header: self.0.header(false), data, stat }))
    }

    async fn set(
        &self,
        request: Request<pb::SetRequest>,
    ) -> Result<Response<pb::SetResponse>, Status> {
        let r = request.into_inner();
        let mut nodes = self.0.nodes.lock().unwrap();
        let node = nodes
            .get_mut(&r.path)
            .ok_or_else(|| err(ZnodeError::NoNode { path: r.path.clone() }))?;
        if r.version != -1 && r.version != node.stat.version {
            let actual = node.stat.version;
            return Err(err(ZnodeError::BadVersion { path: r.path, expected: r.version, actual }));
        }
        let header = self.0.header(true);
        node.stat.version += 1;
        node.stat.mzxid = header.as_ref().unwrap().zxid;
        node.stat.data_length = r.data.len() as u32;
        node.data = r.data;
        let stat = Some(self.0.stat_of(&nodes, &r.path)?);
        Ok(Response::new(pb::SetResponse { header, stat }))
    }

    async fn children(
        &self,
        request: Request<pb::ChildrenRequest>,
    ) -> Result<Response<pb::ChildrenResponse>, Status> {
        let r = request.into_inner();
        let nodes = self.0.nodes.lock().unwrap();
        let stat = Some(self.0.stat_of(&nodes, &r.path)?);
        let mut names = children(&nodes, &r.path);
        names.sort();
        Ok(Response::new(pb::ChildrenResponse {
            header: self.0.header(false),
            children: names,
            stat,
        }))
    }

    async fn multi(
        &self,
        _request: Request<pb::MultiRequest>,
    ) -> Result<Response<pb::MultiResponse>, Status> {
        Err(Status::unimplemented("the fake has no multi"))
    }

    async fn sync(
        &self,
        request: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        let path = request.into_inner().path;
        Ok(Response::new(pb::SyncResponse { header: self.0.header(false), path }))
    }
}
