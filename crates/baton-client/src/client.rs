//! [`Client`]: one connection to one server of the ensemble at a time, and the calls.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use baton_api::{
    auth::{AUTH_METADATA, Credential},
    convert, pb,
    pb::baton_client::BatonClient,
    status::ErrorCode,
};
use baton_znode::{
    Acl, ConfigChange, ConfigMember, CreateMode, Id, MultiOp, OpResult, QuotaLimits, QuotaUsage,
    Stat,
};
use bytes::Bytes;
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::{
    ClientError, ConnectOptions,
    endpoint::{ServerAddr, parse_endpoints_with},
    error::with_sources,
};

/// How long dialling one server (TCP and HTTP/2 handshake) may take before the next
/// endpoint is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one call may take before it fails with `OPERATION_TIMEOUT`. Generous: a write
/// waits for a quorum's fsync, and `sync` for the local server to catch up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of [`Client::create_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    pub mode: CreateMode,
    /// Milliseconds; > 0 for the TTL modes, 0 otherwise.
    pub ttl_ms: i64,
    /// The new node's ACL; empty = `world:anyone:cdrwa` (ZooKeeper's
    /// OPEN_ACL_UNSAFE). `auth::<perms>` entries stand for the caller's identities.
    pub acl: Acl,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions { mode: CreateMode::Persistent, ttl_ms: 0, acl: Acl::new() }
    }
}

impl CreateOptions {
    pub fn mode(mode: CreateMode) -> CreateOptions {
        CreateOptions { mode, ..CreateOptions::default() }
    }
}

/// An async Baton client. Cheap to clone; clones share the connection.
///
/// Every call goes to the server the client is connected to. When a call fails because
/// the connection is lost, the client moves to the next endpoint of its list (wrapping
/// around), then repeats the call there once if the call is a read. A write is not
/// repeated: it may have been applied before the connection broke, so the caller gets
/// [`ClientError::ConnectionLoss`] and decides (as with ZooKeeper's ConnectionLoss).
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    servers: Vec<ServerAddr>,
    // A tokio mutex: reconnecting awaits while holding it, so that concurrent callers that
    // saw the same broken connection reconnect once, not once each.
    conn: Mutex<Connection>,
    /// Credentials sent with every call (`set_credentials`).
    credentials: std::sync::RwLock<Vec<Credential>>,
    /// The highest zxid seen in any response. A later session will present it on reconnect
    /// so that no server behind it is accepted (DESIGN: a client never goes back in time).
    last_zxid: AtomicU64,
}

#[derive(Debug, Clone)]
struct Connection {
    /// Index into `servers` of the server this connection is to.
    index: usize,
    /// Bumped on every reconnect: tells a caller whether the connection it saw fail has
    /// already been replaced by someone else.
    generation: u64,
    rpc: BatonClient<Channel>,
}

/// Whether a call may be sent again after a lost connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Reads: sending again cannot change anything.
    Safe,
    /// Writes: the first attempt may have been applied.
    Unsafe,
}

/// Responses that carry a `ResponseHeader`, so the client can track the zxid.
trait HasHeader {
    fn header(&self) -> Option<&pb::ResponseHeader>;
}

macro_rules! has_header {
    ($($response:ty),* $(,)?) => {
        $(impl HasHeader for $response {
            fn header(&self) -> Option<&pb::ResponseHeader> {
                self.header.as_ref()
            }
        })*
    };
}

has_header!(
    pb::CreateResponse,
    pb::DeleteResponse,
    pb::ExistsResponse,
    pb::GetResponse,
    pb::SetResponse,
    pb::ChildrenResponse,
    pb::MultiResponse,
    pb::SyncResponse,
    pb::GetAclResponse,
    pb::SetAclResponse,
    pb::WhoAmIResponse,
    pb::SetQuotaResponse,
    pb::GetQuotaResponse,
    pb::RemoveQuotaResponse,
    pb::GetConfigResponse,
    pb::ReconfigResponse,
    pb::TransferLeadershipResponse,
);

impl Client {
    /// Connects to the first of `endpoints` (`host:port`, or `http://host:port`) that
    /// answers within [`CONNECT_TIMEOUT`], trying them in order. The whole list is kept for
    /// reconnecting later.
    pub async fn connect(endpoints: &[String]) -> Result<Client, ClientError> {
        Client::connect_with(endpoints, ConnectOptions::default()).await
    }

    /// [`Client::connect`] with options: with [`ConnectOptions::tls`], every endpoint
    /// (`host:port` or `https://host:port`) is dialled with TLS.
    pub async fn connect_with(
        endpoints: &[String],
        options: ConnectOptions,
    ) -> Result<Client, ClientError> {
        let servers = parse_endpoints_with(endpoints, options.tls.as_ref())?;
        let (index, rpc) = dial_from(&servers, 0).await?;
        let conn = Connection { index, generation: 0, rpc };
        Ok(Client {
            shared: Arc::new(Shared {
                servers,
                conn: Mutex::new(conn),
                last_zxid: AtomicU64::new(0),
                credentials: std::sync::RwLock::new(Vec::new()),
            }),
        })
    }

    /// The `host:port` of the server the client is connected to now.
    pub async fn endpoint(&self) -> String {
        let conn = self.shared.conn.lock().await;
        self.shared.servers[conn.index].authority.clone()
    }

    /// The highest zxid seen in any response so far (0 before the first).
    pub fn last_zxid(&self) -> u64 {
        self.shared.last_zxid.load(Ordering::Acquire)
    }

    /// Creates a znode and returns the path created (with the sequence suffix for the
    /// sequential modes).
    pub async fn create(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        mode: CreateMode,
    ) -> Result<String, ClientError> {
        Ok(self.create_with(path, data, CreateOptions::mode(mode)).await?.0)
    }

    /// Creates a znode with the given mode and TTL; returns the path created and its Stat.
    pub async fn create_with(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        options: CreateOptions,
    ) -> Result<(String, Stat), ClientError> {
        let op = baton_znode::CreateOp {
            acl: options.acl,
            path: path.to_owned(),
            data: data.into(),
            mode: options.mode,
            ttl_ms: options.ttl_ms,
        };
        // Session 0 = no session; ephemeral creates are refused by the server until
        // sessions exist.
        let request = convert::create_op_to_pb(op, 0);
        let response = self
            .call(Replay::Unsafe, path, request, |mut rpc, r| async move { rpc.create(r).await })
            .await?;
        let stat = required_stat(response.stat.as_ref(), &response.path)?;
        Ok((response.path, stat))
    }

    /// The data and Stat of a znode, as the server answering has applied it.
    pub async fn get(&self, path: &str) -> Result<(Bytes, Stat), ClientError> {
        self.get_with(path, false).await
    }

    /// As [`Client::get`], linearizable: the server confirms with a quorum that its
    /// leader still leads and answers once it has applied what was committed then
    /// (no log write; cheaper than `sync` + `get`).
    pub async fn get_linearizable(&self, path: &str) -> Result<(Bytes, Stat), ClientError> {
        self.get_with(path, true).await
    }

    async fn get_with(&self, path: &str, linearizable: bool) -> Result<(Bytes, Stat), ClientError> {
        let request = pb::GetRequest { path: path.to_owned(), linearizable };
        let response = self
            .call(Replay::Safe, path, request, |mut rpc, r| async move { rpc.get(r).await })
            .await?;
        let stat = required_stat(response.stat.as_ref(), path)?;
        Ok((response.data, stat))
    }

    /// Replaces the data of a znode if its version is `version` (-1 = any); returns the
    /// new Stat.
    pub async fn set(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: i32,
    ) -> Result<Stat, ClientError> {
        let op = baton_znode::SetDataOp { path: path.to_owned(), data: data.into(), version };
        let request = convert::set_op_to_pb(op);
        let response = self
            .call(Replay::Unsafe, path, request, |mut rpc, r| async move { rpc.set(r).await })
            .await?;
        required_stat(response.stat.as_ref(), path)
    }

    /// Deletes a znode without children if its version is `version` (-1 = any).
    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ClientError> {
        let request =
            convert::delete_op_to_pb(baton_znode::DeleteOp { path: path.to_owned(), version });
        self.call(Replay::Unsafe, path, request, |mut rpc, r| async move { rpc.delete(r).await })
            .await?;
        Ok(())
    }

    /// The Stat of a znode, or `None` when it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, ClientError> {
        let request = pb::ExistsRequest { path: path.to_owned(), linearizable: false };
        let response = self
            .call(Replay::Safe, path, request, |mut rpc, r| async move { rpc.exists(r).await })
            .await?;
        Ok(response.stat.as_ref().map(convert::stat_from_pb))
    }

    /// The names (not paths) of a znode's children, sorted, and its Stat.
    pub async fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ClientError> {
        let request = pb::ChildrenRequest { path: path.to_owned(), linearizable: false };
        let response = self
            .call(Replay::Safe, path, request, |mut rpc, r| async move { rpc.children(r).await })
            .await?;
        let stat = required_stat(response.stat.as_ref(), path)?;
        Ok((response.children, stat))
    }

    /// Applies `ops` atomically; one result per op, in order. On failure nothing changed
    /// and the error's `op_index` names the op that failed.
    pub async fn multi(&self, ops: Vec<MultiOp>) -> Result<Vec<OpResult>, ClientError> {
        let request = pb::MultiRequest {
            ops: ops.into_iter().map(|op| convert::multi_op_to_pb(op, 0)).collect(),
        };
        let response = self
            .call(Replay::Unsafe, "", request, |mut rpc, r| async move { rpc.multi(r).await })
            .await?;
        response
            .results
            .into_iter()
            .map(|result| convert::op_result_from_pb(result).map_err(|s| malformed(&s)))
            .collect()
    }

    /// Waits until the server has applied every change committed before the call; returns
    /// the zxid the server had applied then.
    pub async fn sync(&self, path: &str) -> Result<u64, ClientError> {
        let request = pb::SyncRequest { path: path.to_owned() };
        let response = self
            .call(Replay::Safe, path, request, |mut rpc, r| async move { rpc.sync(r).await })
            .await?;
        Ok(response.header.map_or(0, |h| h.zxid))
    }

    /// A node's ACL and Stat. Needs READ or ADMIN on it; without ADMIN, digest ids come
    /// back masked (`user:x`).
    pub async fn get_acl(&self, path: &str) -> Result<(Acl, Stat), ClientError> {
        let request = pb::GetAclRequest { path: path.to_owned() };
        let response = self
            .call(Replay::Safe, path, request, |mut rpc, r| async move { rpc.get_acl(r).await })
            .await?;
        let acl = convert::acl_from_pb(response.acl, path).map_err(|s| malformed(&s))?;
        Ok((acl, required_stat(response.stat.as_ref(), path)?))
    }

    /// Replaces a node's ACL if its ACL version is `version` (-1 = any); needs ADMIN.
    pub async fn set_acl(&self, path: &str, acl: &Acl, version: i32) -> Result<Stat, ClientError> {
        let request =
            pb::SetAclRequest { path: path.to_owned(), acl: convert::acl_to_pb(acl), version };
        let response = self
            .call(Replay::Unsafe, path, request, |mut rpc, r| async move { rpc.set_acl(r).await })
            .await?;
        required_stat(response.stat.as_ref(), path)
    }

    /// The identities this client's calls run with (a digest shows its user only).
    pub async fn who_am_i(&self) -> Result<Vec<Id>, ClientError> {
        let response = self
            .call(Replay::Safe, "", pb::WhoAmIRequest {}, |mut rpc, r| async move {
                rpc.who_am_i(r).await
            })
            .await?;
        Ok(response.identities.into_iter().map(|i| Id { scheme: i.scheme, id: i.id }).collect())
    }

    /// Sets (replaces) the quota on the subtree at `path`; needs ADMIN on it.
    pub async fn set_quota(&self, path: &str, limits: &QuotaLimits) -> Result<(), ClientError> {
        let request = pb::SetQuotaRequest {
            path: path.to_owned(),
            limits: Some(convert::quota_limits_to_pb(limits)),
        };
        self.call(
            Replay::Unsafe,
            path,
            request,
            |mut rpc, r| async move { rpc.set_quota(r).await },
        )
        .await?;
        Ok(())
    }

    /// The quota on the subtree at `path` and what it holds now; `NoNode` when there
    /// is no quota there.
    pub async fn get_quota(&self, path: &str) -> Result<(QuotaLimits, QuotaUsage), ClientError> {
        let request = pb::GetQuotaRequest { path: path.to_owned() };
        let response = self
            .call(Replay::Safe, path, request, |mut rpc, r| async move { rpc.get_quota(r).await })
            .await?;
        Ok((
            convert::quota_limits_from_pb(response.limits.as_ref()),
            convert::quota_usage_from_pb(response.usage.as_ref()),
        ))
    }

    /// Removes the quota on the subtree at `path`; needs ADMIN on it.
    pub async fn remove_quota(&self, path: &str) -> Result<(), ClientError> {
        let request = pb::RemoveQuotaRequest { path: path.to_owned() };
        self.call(
            Replay::Unsafe,
            path,
            request,
            |mut rpc, r| async move { rpc.remove_quota(r).await },
        )
        .await?;
        Ok(())
    }

    /// The configuration in force, as the server answering knows it.
    pub async fn get_config(&self) -> Result<Config, ClientError> {
        let response = self
            .call(Replay::Safe, "/baton/config", pb::GetConfigRequest {}, |mut rpc, r| async move {
                rpc.get_config(r).await
            })
            .await?;
        Ok(Config {
            version: response.version,
            members: response.members.into_iter().map(member_from_pb).collect(),
            leader: (response.leader != 0).then_some(response.leader),
            pending: (response.pending_version != 0).then_some(response.pending_version),
        })
    }

    /// Changes the membership (through the leader); `from_version`: only if the
    /// configuration in force has that version. Returns the new configuration. A
    /// new voter joins as an observer and is promoted once it has caught up.
    /// Not replayed after a lost connection (read the configuration to see whether
    /// it happened).
    pub async fn reconfig(
        &self,
        change: ConfigChange,
        from_version: Option<u64>,
    ) -> Result<Config, ClientError> {
        use pb::reconfig_request::Change;
        let to_pb = |m: ConfigMember| pb::Member { id: m.id, addr: m.addr, voter: m.voter };
        let change = match change {
            ConfigChange::Add(member) => Change::Add(to_pb(member)),
            ConfigChange::Remove { id } => Change::Remove(id),
            ConfigChange::SetRole { id, voter } => Change::SetRole(pb::SetRole { id, voter }),
            ConfigChange::Members(all) => {
                Change::Members(pb::Members { members: all.into_iter().map(to_pb).collect() })
            }
        };
        let from_version = from_version.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        let request = pb::ReconfigRequest { from_version, change: Some(change) };
        let response = self
            .call(Replay::Unsafe, "/baton/config", request, |mut rpc, r| async move {
                rpc.reconfig(r).await
            })
            .await?;
        Ok(Config {
            version: response.version,
            members: response.members.into_iter().map(member_from_pb).collect(),
            leader: None,
            pending: None,
        })
    }

    /// Asks the leader (the server answering must be it) to hand leadership to
    /// `to` (`None`: the voter that has logged the most); returns the new leader
    /// once it serves.
    pub async fn transfer_leadership(&self, to: Option<u64>) -> Result<u64, ClientError> {
        let request = pb::TransferLeadershipRequest { to: to.unwrap_or(0) };
        let response = self
            .call(Replay::Unsafe, "", request, |mut rpc, r| async move {
                rpc.transfer_leadership(r).await
            })
            .await?;
        Ok(response.leader)
    }

    /// Credentials every later call carries (in its `baton-auth` metadata), across
    /// reconnects; replaces those given before. Wrong ones make calls fail with
    /// `AUTH_FAILED`.
    pub fn set_credentials(&self, credentials: Vec<Credential>) {
        *self.shared.credentials.write().unwrap_or_else(|e| e.into_inner()) = credentials;
    }

    /// Sends one call on the current connection; on a lost connection, moves to the next
    /// server and, for a [`Replay::Safe`] call, sends it there once more.
    async fn call<Req, Resp, F, Fut>(
        &self,
        replay: Replay,
        path: &str,
        request: Req,
        send: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        Resp: HasHeader,
        F: Fn(BatonClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let conn = self.shared.conn.lock().await.clone();
        let lost = match self.attempt(&conn, path, request.clone(), &send).await {
            Err(lost @ ClientError::ConnectionLoss { .. }) => lost,
            other => return other,
        };
        let Ok(fresh) = self.reconnect(conn.generation).await else {
            return Err(lost);
        };
        match replay {
            Replay::Safe => self.attempt(&fresh, path, request, &send).await,
            Replay::Unsafe => Err(lost),
        }
    }

    async fn attempt<Req, Resp, F, Fut>(
        &self,
        conn: &Connection,
        path: &str,
        request: Req,
        send: &F,
    ) -> Result<Resp, ClientError>
    where
        Resp: HasHeader,
        F: Fn(BatonClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let endpoint = &self.shared.servers[conn.index].authority;
        let request = self.with_credentials(request, path)?;
        let response =
            match tokio::time::timeout(REQUEST_TIMEOUT, send(conn.rpc.clone(), request)).await {
                Ok(Ok(response)) => response.into_inner(),
                Ok(Err(status)) => return Err(ClientError::from_status(&status, endpoint)),
                Err(_) => {
                    return Err(ClientError::Api {
                        code: ErrorCode::OperationTimeout,
                        message: format!(
                            "no answer from {endpoint} within {} ms",
                            REQUEST_TIMEOUT.as_millis()
                        ),
                        path: path.to_owned(),
                        op_index: None,
                    });
                }
            };
        if let Some(header) = response.header() {
            self.shared.last_zxid.fetch_max(header.zxid, Ordering::AcqRel);
        }
        Ok(response)
    }

    /// The call with this client's credentials in its metadata.
    fn with_credentials<Req>(
        &self,
        request: Req,
        path: &str,
    ) -> Result<tonic::Request<Req>, ClientError> {
        let mut request = tonic::Request::new(request);
        let credentials = self.shared.credentials.read().unwrap_or_else(|e| e.into_inner());
        for credential in credentials.iter() {
            let value = credential.to_metadata().ok_or_else(|| ClientError::Api {
                code: ErrorCode::AuthFailed,
                message: format!(
                    "{} credentials must be ASCII text to travel in a call",
                    credential.scheme
                ),
                path: path.to_owned(),
                op_index: None,
            })?;
            request.metadata_mut().append(AUTH_METADATA, value);
        }
        Ok(request)
    }

    /// Replaces the connection of generation `seen` with one to the next server that
    /// answers. If another caller already replaced it, uses theirs.
    async fn reconnect(&self, seen: u64) -> Result<Connection, ClientError> {
        let mut conn = self.shared.conn.lock().await;
        if conn.generation != seen {
            return Ok(conn.clone());
        }
        let (index, rpc) = dial_from(&self.shared.servers, conn.index + 1).await?;
        tracing::debug!(server = %self.shared.servers[index], "reconnected");
        *conn = Connection { index, generation: seen + 1, rpc };
        Ok(conn.clone())
    }
}

/// The Stat a response must carry; its absence is a broken server, reported as such.
fn required_stat(stat: Option<&pb::Stat>, path: &str) -> Result<Stat, ClientError> {
    convert::required_stat_from_pb(stat, path).map_err(|s| malformed(&s))
}

/// A response that does not follow the proto; the status says what was wrong (its code is
/// SYSTEM_ERROR, so the endpoint, used only for connection loss, does not matter).
fn malformed(status: &tonic::Status) -> ClientError {
    ClientError::from_status(status, "")
}

/// Dials the servers starting at `start`, wrapping around, and returns the first that
/// answers. Fails with `ConnectionLoss` naming every server tried and the last reason.
async fn dial_from(
    servers: &[ServerAddr],
    start: usize,
) -> Result<(usize, BatonClient<Channel>), ClientError> {
    let mut last_reason = String::new();
    for offset in 0..servers.len() {
        let index = (start + offset) % servers.len();
        match dial(&servers[index]).await {
            Ok(channel) => return Ok((index, BatonClient::new(channel))),
            Err(reason) => {
                tracing::debug!(server = %servers[index], %reason, "cannot connect");
                last_reason = reason;
            }
        }
    }
    let tried: Vec<&str> = servers.iter().map(|s| s.authority.as_str()).collect();
    Err(ClientError::ConnectionLoss { endpoint: tried.join(","), reason: last_reason })
}

pub(crate) async fn dial(server: &ServerAddr) -> Result<Channel, String> {
    let endpoint = Endpoint::from(server.uri.clone()).connect_timeout(CONNECT_TIMEOUT);
    // `connect_timeout` bounds the TCP connect only (the TLS handshake too, when the
    // connector is ours); the outer timeout bounds the HTTP/2 handshake too, so a port
    // that accepts and then says nothing cannot stall us.
    let connect = async {
        match &server.tls {
            None => endpoint.connect().await,
            Some(tls) => endpoint.connect_with_connector(tls.clone()).await,
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(error)) => Err(with_sources(&error.to_string(), &error)),
        Err(_) => Err(format!("no answer within {} ms", CONNECT_TIMEOUT.as_millis())),
    }
}

/// An ensemble's configuration (see [`Client::get_config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The zxid that committed it (0: the one the members started with).
    pub version: u64,
    pub members: Vec<ConfigMember>,
    /// The leader the answering server follows (or is), if it knows one.
    pub leader: Option<u64>,
    /// The version of a change in flight.
    pub pending: Option<u64>,
}

fn member_from_pb(member: pb::Member) -> ConfigMember {
    ConfigMember { id: member.id, addr: member.addr, voter: member.voter }
}
