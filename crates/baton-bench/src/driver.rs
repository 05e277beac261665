//! One client connection to any of the systems, with the operations the workloads use.
//! Baton through `baton-client`'s [`Session`] (the ZooKeeper-style session: one
//! ordered stream, requests pipelined on it), ZooKeeper and baton-zk (Baton's
//! ZooKeeper-protocol port) through the `zookeeper-client` crate, etcd through tonic stubs generated from
//! `proto/etcd_subset.proto` (the KV, Watch and Maintenance calls of etcd's v3 API).
//!
//! A connection prefers the member it is given and fails over to the others where the
//! client library does (Baton and ZooKeeper sessions move; an etcd connection stays on
//! its member, as a single-endpoint etcd client does).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use baton_client::{ClientTls, CreateMode, CreateOp, ErrorCode, MultiOp, Session, SessionOptions};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::systems::Kind;

/// The generated etcd v3 stubs.
#[allow(clippy::all, missing_debug_implementations, rust_2018_idioms)]
pub mod etcdpb {
    tonic::include_proto!("etcdserverpb");
}

use etcdpb::{
    Compare, PutRequest, RangeRequest, RequestOp, StatusRequest, TxnRequest, WatchCreateRequest,
    WatchRequest, kv_client::KvClient, maintenance_client::MaintenanceClient, request_op,
    watch_client::WatchClient, watch_request,
};

/// How long a connection may take to be established.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The session timeout asked of Baton and ZooKeeper.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// One client connection.
#[derive(Debug, Clone)]
pub enum Conn {
    Baton(Session),
    ZooKeeper(zookeeper_client::Client),
    Etcd(Box<EtcdConn>),
}

/// An etcd connection: the KV and Watch stubs on one channel.
#[derive(Debug, Clone)]
pub struct EtcdConn {
    kv: KvClient<Channel>,
    watch: WatchClient<Channel>,
}

/// A persistent watch on one key: every change of it is an event.
#[derive(Debug)]
pub enum Watcher {
    Baton(baton_client::PersistentWatch),
    ZooKeeper(zookeeper_client::PersistentWatcher),
    Etcd {
        responses: tonic::Streaming<etcdpb::WatchResponse>,
        // Dropping the request side would end the watch stream.
        _requests: mpsc::Sender<WatchRequest>,
    },
}

impl Conn {
    /// Connects to `endpoints[first]` (the others, in order after it, are where a
    /// session may move).
    /// `tls`: how to reach Baton's members when they use TLS.
    pub async fn connect(
        kind: Kind,
        endpoints: &[String],
        first: usize,
        tls: Option<&ClientTls>,
    ) -> Result<Conn> {
        let n = endpoints.len();
        let ordered: Vec<String> = (0..n).map(|i| endpoints[(first + i) % n].clone()).collect();
        let connect = async {
            match kind {
                Kind::Baton => {
                    let options = SessionOptions {
                        timeout_ms: SESSION_TIMEOUT.as_millis() as u32,
                        tls: tls.cloned(),
                        ..SessionOptions::default()
                    };
                    Ok(Conn::Baton(Session::connect(&ordered, options).await?))
                }
                Kind::ZooKeeper | Kind::BatonZk => {
                    let client = zookeeper_client::Client::connector()
                        .with_session_timeout(SESSION_TIMEOUT)
                        .with_connection_timeout(CONNECT_TIMEOUT)
                        .connect(&ordered.join(","))
                        .await?;
                    Ok(Conn::ZooKeeper(client))
                }
                Kind::Etcd => {
                    let channel = etcd_channel(&ordered[0]).await?;
                    Ok::<_, anyhow::Error>(Conn::Etcd(Box::new(EtcdConn {
                        kv: KvClient::new(channel.clone()),
                        watch: WatchClient::new(channel),
                    })))
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| anyhow!("connecting to {} timed out", ordered[0]))?
            .with_context(|| format!("connecting to {} ({})", ordered[0], kind.name()))
    }

    /// Creates `key` with `value`; fails if it exists.
    pub async fn create(&self, key: &str, value: &Bytes) -> Result<()> {
        if !self.create_if_absent(key, value).await? {
            bail!("{key} exists");
        }
        Ok(())
    }

    /// Creates `key` with `value` unless it exists; says whether it created it.
    pub async fn create_if_absent(&self, key: &str, value: &Bytes) -> Result<bool> {
        match self {
            Conn::Baton(session) => {
                match session.create(key, value.clone(), CreateMode::Persistent).await {
                    Ok(_) => Ok(true),
                    Err(error) if error.code() == ErrorCode::NodeExists => Ok(false),
                    Err(error) => Err(error.into()),
                }
            }
            Conn::ZooKeeper(client) => {
                let options = zk_persistent();
                match client.create(key, value, &options).await {
                    Ok(_) => Ok(true),
                    Err(zookeeper_client::Error::NodeExists) => Ok(false),
                    Err(error) => Err(error.into()),
                }
            }
            Conn::Etcd(etcd) => {
                // Put if the key has never been created: etcd's create.
                let request = TxnRequest {
                    compare: vec![Compare {
                        result: 0,
                        target: 1,
                        key: key.as_bytes().to_vec(),
                        create_revision: 0,
                    }],
                    success: vec![etcd_put(key, value)],
                    failure: Vec::new(),
                };
                Ok(etcd.kv.clone().txn(request).await?.into_inner().succeeded)
            }
        }
    }

    /// Replaces the value of `key` (which exists), whatever its version.
    pub async fn set(&self, key: &str, value: &Bytes) -> Result<()> {
        match self {
            Conn::Baton(session) => {
                session.set(key, value.clone(), -1).await?;
            }
            Conn::ZooKeeper(client) => {
                client.set_data(key, value, None).await?;
            }
            Conn::Etcd(etcd) => {
                let request = PutRequest { key: key.as_bytes().to_vec(), value: value.to_vec() };
                etcd.kv.clone().put(request).await?;
            }
        }
        Ok(())
    }

    /// Reads `key`; returns the length of its value (fails if it does not exist).
    pub async fn get(&self, key: &str) -> Result<usize> {
        match self {
            Conn::Baton(session) => Ok(session.get(key).await?.0.len()),
            Conn::ZooKeeper(client) => Ok(client.get_data(key).await?.0.len()),
            Conn::Etcd(etcd) => {
                let request = RangeRequest {
                    key: key.as_bytes().to_vec(),
                    serializable: true,
                    ..Default::default()
                };
                let response = etcd.kv.clone().range(request).await?.into_inner();
                let kv = response.kvs.first().ok_or_else(|| anyhow!("{key} does not exist"))?;
                Ok(kv.value.len())
            }
        }
    }

    /// Creates every key in `keys` with `value`, atomically (multi / txn).
    pub async fn create_batch(&self, keys: &[String], value: &Bytes) -> Result<()> {
        match self {
            Conn::Baton(session) => {
                let ops = keys
                    .iter()
                    .map(|key| {
                        MultiOp::Create(CreateOp {
                            acl: baton_client::acl::open_acl(),
                            path: key.clone(),
                            data: value.clone(),
                            mode: CreateMode::Persistent,
                            ttl_ms: 0,
                        })
                    })
                    .collect();
                session.multi(ops).await?;
            }
            Conn::ZooKeeper(client) => {
                let options = zk_persistent();
                let mut writer = client.new_multi_writer();
                for key in keys {
                    writer.add_create(key, value, &options)?;
                }
                writer.commit().await.map_err(|error| anyhow!("multi: {error:?}"))?;
            }
            Conn::Etcd(etcd) => {
                let request = TxnRequest {
                    compare: Vec::new(),
                    success: keys.iter().map(|key| etcd_put(key, value)).collect(),
                    failure: Vec::new(),
                };
                etcd.kv.clone().txn(request).await?;
            }
        }
        Ok(())
    }

    /// Sets a persistent watch on `key`.
    pub async fn watch(&self, key: &str) -> Result<Watcher> {
        match self {
            Conn::Baton(session) => Ok(Watcher::Baton(session.add_watch(key, false).await?)),
            Conn::ZooKeeper(client) => {
                let watcher = client.watch(key, zookeeper_client::AddWatchMode::Persistent).await?;
                Ok(Watcher::ZooKeeper(watcher))
            }
            Conn::Etcd(etcd) => {
                let (requests, rx) = mpsc::channel(4);
                let create = WatchRequest {
                    request_union: Some(watch_request::RequestUnion::CreateRequest(
                        WatchCreateRequest { key: key.as_bytes().to_vec(), range_end: Vec::new() },
                    )),
                };
                requests.send(create).await.map_err(|_| anyhow!("watch stream closed"))?;
                let mut responses =
                    etcd.watch.clone().watch(ReceiverStream::new(rx)).await?.into_inner();
                let first = responses
                    .message()
                    .await?
                    .ok_or_else(|| anyhow!("watch stream ended before it was created"))?;
                if !first.created || first.canceled {
                    bail!("etcd refused the watch on {key}: {}", first.cancel_reason);
                }
                Ok(Watcher::Etcd { responses, _requests: requests })
            }
        }
    }
}

impl Watcher {
    /// Waits for the next change of the watched key.
    pub async fn changed(&mut self) -> Result<()> {
        match self {
            Watcher::Baton(watch) => match watch.recv().await {
                Some(Ok(_)) => Ok(()),
                Some(Err(error)) => Err(error.into()),
                None => bail!("the watch ended"),
            },
            Watcher::ZooKeeper(watcher) => {
                let event = watcher.changed().await;
                match event.event_type {
                    zookeeper_client::EventType::Session => {
                        bail!("session event: {:?}", event.session_state)
                    }
                    _ => Ok(()),
                }
            }
            Watcher::Etcd { responses, .. } => loop {
                let response =
                    responses.message().await?.ok_or_else(|| anyhow!("the watch ended"))?;
                if response.canceled {
                    bail!("etcd canceled the watch: {}", response.cancel_reason);
                }
                if !response.events.is_empty() {
                    return Ok(());
                }
            },
        }
    }
}

fn zk_persistent() -> zookeeper_client::CreateOptions<'static> {
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())
}

fn etcd_put(key: &str, value: &Bytes) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
        })),
    }
}

async fn etcd_channel(endpoint: &str) -> Result<Channel> {
    Ok(Channel::from_shared(format!("http://{endpoint}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await?)
}

/// An etcd member's id and the id of the leader it knows (0 = none).
pub async fn etcd_status(endpoint: &str) -> Result<(u64, u64)> {
    let ask = async {
        let channel = etcd_channel(endpoint).await?;
        let status = MaintenanceClient::new(channel).status(StatusRequest {}).await?.into_inner();
        let me = status.header.map_or(0, |h| h.member_id);
        Ok::<_, anyhow::Error>((me, status.leader))
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .map_err(|_| anyhow!("etcd status of {endpoint} timed out"))?
}
