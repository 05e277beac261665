//! ZooKeeper's requests as Baton session requests, and Baton's replies and events as
//! ZooKeeper's frames. Pure: no I/O, no server state.
//!
//! Each ZooKeeper request becomes one or more [`pb::Request`]s on the session's stream
//! and a [`Pending`] that remembers how to shape the answer (the reply body ZooKeeper
//! sends for that opcode). Replies come back in request order, so the pendings are a
//! queue. A request answered here (an unknown opcode, reconfig, a malformed op) still
//! goes to the session as a ping, so that its answer keeps its place in the order and
//! the session is touched, as ZooKeeper touches it for every request.
//!
//! ZooKeeper reserves `/zookeeper` (its config and quota nodes); Baton reserves
//! `/baton`. On this protocol `/zookeeper` names Baton's `/baton` ([`to_baton`],
//! [`to_zookeeper`]), so the root lists `zookeeper` as ZooKeeper's does, and
//! `/zookeeper/config` is the ensemble's membership in ZooKeeper's dynamic-config form.

use baton_api::pb::{self, request::Op};
use baton_jute::{self as jute, CreateMode, ErrorCode, EventType, KeeperState, MultiOp, OpCode};
use bytes::Bytes;

/// ZooKeeper's reserved subtree, as its clients name it.
pub(crate) const ZOOKEEPER_ROOT: &str = "/zookeeper";
/// ZooKeeper's dynamic configuration node.
pub(crate) const CONFIG_NODE: &str = "/zookeeper/config";
/// ZooKeeper's quota node.
pub(crate) const QUOTA_NODE: &str = "/zookeeper/quota";
const CONFIG_NAME: &str = "config";
const QUOTA_NAME: &str = "quota";

/// What to do with the session's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// create (1): the path only; create2, createContainer, createTTL: path and stat.
    Create {
        stat: bool,
    },
    Delete,
    Exists,
    GetData,
    SetData,
    GetAcl,
    SetAcl,
    /// getChildren (8) or getChildren2 (12, with the stat).
    Children {
        stat: bool,
        listing: Listing,
    },
    Sync,
    /// A standalone check (opcode 13): a one-op multi for the session.
    Check,
    /// Per op, whether it is a plain create (answered with the path only).
    Multi {
        plain_creates: Vec<bool>,
    },
    /// Part `index` of a multiRead of `count` reads, each its own request.
    MultiRead {
        index: usize,
        count: usize,
    },
    /// A reply with no body (ping, auth, setWatches, addWatch, removeWatches,
    /// checkWatches).
    Empty,
    /// auth: no body; a refusal closes the connection, as ZooKeeper does.
    Auth,
    /// addWatch: ZooKeeper answers with an ErrorResponse body of 0.
    AddWatch,
    /// closeSession: the connection ends after the reply.
    Close,
    GetEphemerals,
    AllChildrenNumber,
    WhoAmI,
    /// Answered here; the session saw a ping.
    Local(Local),
    /// A read of `/zookeeper/quota`, which ZooKeeper always has and Baton creates
    /// with the first quota: while missing, it reads as an empty node.
    QuotaRoot(Box<Shape>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Local {
    Error(ErrorCode),
    /// An error, then the connection closes (ZooKeeper's answer to an unknown opcode).
    Closing(ErrorCode),
    /// A body with err 0.
    Body(Bytes),
}

/// Which listing a getChildren is, where the names differ from Baton's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    Plain,
    /// `/`: Baton's reserved node is shown as `zookeeper`.
    Root,
    /// `/zookeeper`: `config` is added.
    Reserved,
}

/// A request of the connection waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) xid: i32,
    pub(crate) shape: Shape,
}

/// What a decoded request becomes: requests for the session (several for a
/// multiRead), each with its pending.
pub(crate) type Translated = Vec<(pb::Request, Pending)>;

/// Facts the translation needs from the server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// `/zookeeper/config`'s data.
    pub(crate) config: Bytes,
}

/// A ZooKeeper path as Baton names it: `/zookeeper…` is `/baton…`.
pub(crate) fn to_baton(path: String) -> String {
    match path.strip_prefix(ZOOKEEPER_ROOT) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", baton_znode::RESERVED_PREFIX)
        }
        _ => path,
    }
}

/// A Baton path as ZooKeeper's clients name it: `/baton…` is `/zookeeper…`.
pub(crate) fn to_zookeeper(path: String) -> String {
    if baton_znode::is_reserved(&path) {
        format!("{ZOOKEEPER_ROOT}{}", &path[baton_znode::RESERVED_PREFIX.len()..])
    } else {
        path
    }
}

fn request(xid: u64, watch: bool, op: Op) -> pb::Request {
    pb::Request { xid, watch, op: Some(op) }
}

fn ping() -> Op {
    Op::Ping(pb::PingRequest {})
}

/// Translates one request. `next_xid` numbers the session requests (the session's
/// xids are the connection's own; the client's xid is kept in the pending).
pub(crate) fn translate(
    header: &jute::RequestHeader,
    body: jute::Request,
    context: &Context,
    next_xid: &mut u64,
) -> Translated {
    let xid = header.xid;
    let mut one = |op: Op, watch: bool, shape: Shape| {
        *next_xid += 1;
        vec![(request(*next_xid, watch, op), Pending { xid, shape })]
    };
    let local = |code: ErrorCode| Shape::Local(Local::Error(code));
    use jute::Request as R;
    match body {
        R::Create(create) => create_request(create, None, OpCode::Create, &mut one),
        R::Create2(create) => create_request(create, None, OpCode::Create2, &mut one),
        R::CreateContainer(create) => {
            create_request(create, None, OpCode::CreateContainer, &mut one)
        }
        R::CreateTtl(create) => {
            let (create, ttl) = without_ttl(create);
            create_request(create, Some(ttl), OpCode::CreateTtl, &mut one)
        }
        R::Delete(delete) => {
            let op = pb::DeleteRequest { path: to_baton(delete.path), version: delete.version };
            one(Op::Delete(op), false, Shape::Delete)
        }
        R::Exists(exists) => {
            if exists.path == CONFIG_NODE {
                let body = jute::ExistsResponse { stat: config_stat(context) };
                return one(ping(), false, Shape::Local(Local::Body(record(&body))));
            }
            let shape = quota_root(&exists.path, Shape::Exists);
            let op = pb::ExistsRequest { path: to_baton(exists.path), linearizable: false };
            one(Op::Exists(op), exists.watch, shape)
        }
        R::GetData(get) => {
            if get.path == CONFIG_NODE {
                let data = Some(context.config.clone());
                let body = jute::GetDataResponse { data, stat: config_stat(context) };
                return one(ping(), false, Shape::Local(Local::Body(record(&body))));
            }
            let shape = quota_root(&get.path, Shape::GetData);
            let op = pb::GetRequest { path: to_baton(get.path), linearizable: false };
            one(Op::Get(op), get.watch, shape)
        }
        R::SetData(set) => {
            let op = pb::SetRequest {
                path: to_baton(set.path),
                data: set.data.unwrap_or_default(),
                version: set.version,
            };
            one(Op::Set(op), false, Shape::SetData)
        }
        R::GetAcl(get) => {
            one(Op::GetAcl(pb::GetAclRequest { path: to_baton(get.path) }), false, Shape::GetAcl)
        }
        R::SetAcl(set) => {
            if set.acl.is_empty() {
                return one(ping(), false, local(ErrorCode::InvalidAcl));
            }
            let op = pb::SetAclRequest {
                path: to_baton(set.path),
                acl: acl_to_pb(set.acl),
                version: set.version,
            };
            one(Op::SetAcl(op), false, Shape::SetAcl)
        }
        R::GetChildren(get) => children(get.path, get.watch, false, &mut one),
        R::GetChildren2(get) => children(get.path, get.watch, true, &mut one),
        R::Sync(sync) => {
            one(Op::Sync(pb::SyncRequest { path: to_baton(sync.path) }), false, Shape::Sync)
        }
        R::Ping => one(ping(), false, Shape::Empty),
        R::Check(check) => {
            let op = pb::Op {
                op: Some(pb::op::Op::Check(pb::CheckOp {
                    path: to_baton(check.path),
                    version: check.version,
                })),
            };
            one(Op::Multi(pb::MultiRequest { ops: vec![op] }), false, Shape::Check)
        }
        R::Multi(multi) => {
            if multi.ops.is_empty() {
                let body = record(&jute::MultiResponse::default());
                return one(ping(), false, Shape::Local(Local::Body(body)));
            }
            match multi_ops(multi.ops) {
                Ok((ops, plain_creates)) => {
                    one(Op::Multi(pb::MultiRequest { ops }), false, Shape::Multi { plain_creates })
                }
                Err(code) => one(ping(), false, local(code)),
            }
        }
        R::MultiRead(multi) => multi_read(xid, multi.ops, next_xid),
        // Reconfiguration is not enabled (ZooKeeper's reconfigEnabled=false answer).
        R::Reconfig(_) => one(ping(), false, local(ErrorCode::ReconfigDisabled)),
        R::CheckWatches(check) => remove_watch(check.path, check.watcher_type, true, &mut one),
        R::RemoveWatches(remove) => remove_watch(remove.path, remove.watcher_type, false, &mut one),
        R::Auth(auth) => {
            let op = pb::AddAuthRequest { scheme: auth.scheme, auth: auth.auth };
            one(Op::AddAuth(op), false, Shape::Auth)
        }
        R::SetWatches(set) => {
            let watches = [
                (set.data_watches, pb::WatchKind::Data),
                (set.exist_watches, pb::WatchKind::Exists),
                (set.child_watches, pb::WatchKind::Child),
            ];
            set_watches(set.relative_zxid, watches, &mut one)
        }
        R::SetWatches2(set) => {
            let watches = [
                (set.data_watches, pb::WatchKind::Data),
                (set.exist_watches, pb::WatchKind::Exists),
                (set.child_watches, pb::WatchKind::Child),
                (set.persistent_watches, pb::WatchKind::Persistent),
                (set.persistent_recursive_watches, pb::WatchKind::PersistentRecursive),
            ];
            set_watches(set.relative_zxid, watches, &mut one)
        }
        // SASL is not offered: ZooKeeper without a SASL provider refuses it the same way.
        R::Sasl(_) => one(ping(), false, local(ErrorCode::AuthFailed)),
        R::GetEphemerals(get) => {
            let op = pb::GetEphemeralsRequest { prefix: to_baton(get.prefix_path) };
            one(Op::GetEphemerals(op), false, Shape::GetEphemerals)
        }
        R::GetAllChildrenNumber(get) => {
            let op = pb::CountDescendantsRequest { path: to_baton(get.path) };
            one(Op::CountDescendants(op), false, Shape::AllChildrenNumber)
        }
        R::AddWatch(add) => {
            let kind = match jute::AddWatchMode::from_code(add.mode) {
                Some(jute::AddWatchMode::Persistent) => pb::WatchKind::Persistent,
                Some(jute::AddWatchMode::PersistentRecursive) => pb::WatchKind::PersistentRecursive,
                None => return one(ping(), false, local(ErrorCode::MarshallingError)),
            };
            let op = pb::AddWatchRequest { path: to_baton(add.path), kind: kind as i32 };
            one(Op::AddWatch(op), false, Shape::AddWatch)
        }
        R::WhoAmI => one(Op::WhoAmI(pb::WhoAmIRequest {}), false, Shape::WhoAmI),
        R::CloseSession => one(Op::Close(pb::CloseRequest {}), false, Shape::Close),
        R::Unknown(_) => one(ping(), false, Shape::Local(Local::Closing(ErrorCode::Unimplemented))),
    }
}

/// A request whose body could not be decoded: ZooKeeper answers MARSHALLINGERROR and
/// reads on.
pub(crate) fn malformed(xid: i32, next_xid: &mut u64) -> Translated {
    answered_here(xid, Local::Error(ErrorCode::MarshallingError), next_xid)
}

/// A request answered on the port: the session sees a ping, for the order.
fn answered_here(xid: i32, local: Local, next_xid: &mut u64) -> Translated {
    *next_xid += 1;
    vec![(request(*next_xid, false, ping()), Pending { xid, shape: Shape::Local(local) })]
}

fn children(
    path: String,
    watch: bool,
    stat: bool,
    one: &mut impl FnMut(Op, bool, Shape) -> Translated,
) -> Translated {
    let listing = match path.as_str() {
        "/" => Listing::Root,
        ZOOKEEPER_ROOT => Listing::Reserved,
        _ => Listing::Plain,
    };
    let shape = quota_root(&path, Shape::Children { stat, listing });
    let op = pb::ChildrenRequest { path: to_baton(path), linearizable: false };
    one(Op::Children(op), watch, shape)
}

fn quota_root(path: &str, shape: Shape) -> Shape {
    if path == QUOTA_NODE { Shape::QuotaRoot(Box::new(shape)) } else { shape }
}

fn set_watches<const N: usize>(
    relative_zxid: i64,
    lists: [(Vec<String>, pb::WatchKind); N],
    one: &mut impl FnMut(Op, bool, Shape) -> Translated,
) -> Translated {
    let watches = lists
        .into_iter()
        .flat_map(|(paths, kind)| {
            paths
                .into_iter()
                .map(move |path| pb::WatchSpec { path: to_baton(path), kind: kind as i32 })
        })
        .collect();
    // A negative zxid (a client that never saw one) is "before everything".
    let relative_zxid = u64::try_from(relative_zxid).unwrap_or(0);
    // ZooKeeper sets persistent watches again without events for what they missed.
    let op = pb::SetWatchesRequest { relative_zxid, watches, quiet_persistent: true };
    one(Op::SetWatches(op), false, Shape::Empty)
}

fn multi_read(xid: i32, ops: Vec<MultiOp>, next_xid: &mut u64) -> Translated {
    let count = ops.len();
    if count == 0 {
        let body = record(&jute::MultiResponse::default());
        return answered_here(xid, Local::Body(body), next_xid);
    }
    let mut requests = Vec::with_capacity(count);
    for (index, op) in ops.into_iter().enumerate() {
        let op = match op {
            MultiOp::GetData(get) => {
                Op::Get(pb::GetRequest { path: to_baton(get.path), linearizable: false })
            }
            MultiOp::GetChildren(get) => {
                Op::Children(pb::ChildrenRequest { path: to_baton(get.path), linearizable: false })
            }
            // Only reads: ZooKeeper cannot take it apart, and says so.
            _ => return answered_here(xid, Local::Error(ErrorCode::MarshallingError), next_xid),
        };
        *next_xid += 1;
        let shape = Shape::MultiRead { index, count };
        requests.push((request(*next_xid, false, op), Pending { xid, shape }));
    }
    requests
}

/// A ZooKeeper create as Baton's. The opcode decides which modes are allowed, as
/// ZooKeeper's server checks them: createContainer always makes a container, createTTL
/// takes only the TTL modes with a TTL, the others no TTL mode; an ACL must not be
/// empty.
fn create_op(
    create: jute::CreateRequest,
    ttl: Option<i64>,
    op: OpCode,
) -> Result<pb::CreateRequest, ErrorCode> {
    // createContainer makes a container whatever the flags say, as ZooKeeper does.
    let flags =
        if op == OpCode::CreateContainer { CreateMode::Container.code() } else { create.flags };
    let mode = CreateMode::from_code(flags).ok_or(ErrorCode::BadArguments)?;
    let ttl_mode =
        matches!(mode, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl);
    let allowed = match op {
        OpCode::CreateTtl => ttl_mode,
        _ => !ttl_mode,
    };
    if !allowed {
        return Err(ErrorCode::BadArguments);
    }
    if create.acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let ttl_ms = match ttl {
        Some(ttl) if ttl > 0 => ttl,
        Some(_) => return Err(ErrorCode::BadArguments),
        None => 0,
    };
    Ok(pb::CreateRequest {
        path: to_baton(create.path),
        data: create.data.unwrap_or_default(),
        mode: mode.code(),
        ttl_ms,
        session_id: 0,
        acl: acl_to_pb(create.acl),
    })
}

/// A create of any opcode: only create (1) is answered with the path alone.
fn create_request(
    create: jute::CreateRequest,
    ttl: Option<i64>,
    op: OpCode,
    one: &mut impl FnMut(Op, bool, Shape) -> Translated,
) -> Translated {
    match create_op(create, ttl, op) {
        Ok(request) => {
            let shape = Shape::Create { stat: op != OpCode::Create };
            one(Op::Create(request), false, shape)
        }
        Err(code) => one(ping(), false, Shape::Local(Local::Error(code))),
    }
}

/// A createTTL's create and its TTL.
fn without_ttl(create: jute::CreateTtlRequest) -> (jute::CreateRequest, i64) {
    let jute::CreateTtlRequest { path, data, acl, flags, ttl } = create;
    (jute::CreateRequest { path, data, acl, flags }, ttl)
}

/// removeWatches, or checkWatches (`check_only`): the session's RemoveWatch.
fn remove_watch(
    path: String,
    watcher_type: i32,
    check_only: bool,
    one: &mut impl FnMut(Op, bool, Shape) -> Translated,
) -> Translated {
    match watcher_kind(watcher_type) {
        Some(kind) => {
            let op = pb::RemoveWatchRequest { path: to_baton(path), kind: kind as i32, check_only };
            one(Op::RemoveWatch(op), false, Shape::Empty)
        }
        None => one(ping(), false, Shape::Local(Local::Error(ErrorCode::BadArguments))),
    }
}

fn multi_ops(ops: Vec<MultiOp>) -> Result<(Vec<pb::Op>, Vec<bool>), ErrorCode> {
    use pb::op::Op as O;
    let mut converted = Vec::with_capacity(ops.len());
    let mut plain = Vec::with_capacity(ops.len());
    for op in ops {
        let (op, plain_create) = match op {
            MultiOp::Create(create) => (O::Create(create_op(create, None, OpCode::Create)?), true),
            // ZooKeeper answers every create of a multi with the path only.
            MultiOp::Create2(create) => {
                (O::Create(create_op(create, None, OpCode::Create2)?), true)
            }
            MultiOp::CreateContainer(create) => {
                (O::Create(create_op(create, None, OpCode::CreateContainer)?), true)
            }
            MultiOp::CreateTtl(create) => {
                let (create, ttl) = without_ttl(create);
                (O::Create(create_op(create, Some(ttl), OpCode::CreateTtl)?), true)
            }
            MultiOp::Delete(delete) => (
                O::Delete(pb::DeleteRequest {
                    path: to_baton(delete.path),
                    version: delete.version,
                }),
                false,
            ),
            MultiOp::SetData(set) => (
                O::Set(pb::SetRequest {
                    path: to_baton(set.path),
                    data: set.data.unwrap_or_default(),
                    version: set.version,
                }),
                false,
            ),
            MultiOp::Check(check) => (
                O::Check(pb::CheckOp { path: to_baton(check.path), version: check.version }),
                false,
            ),
            // Reads in a write multi: ZooKeeper cannot take it apart.
            MultiOp::GetData(_) | MultiOp::GetChildren(_) => {
                return Err(ErrorCode::MarshallingError);
            }
        };
        converted.push(pb::Op { op: Some(op) });
        plain.push(plain_create);
    }
    Ok((converted, plain))
}

fn acl_to_pb(acl: Vec<jute::Acl>) -> Vec<pb::AclEntry> {
    acl.into_iter()
        .map(|entry| pb::AclEntry {
            // Negative bits are not permissions: Baton refuses them as an invalid ACL.
            perms: u32::try_from(entry.perms).unwrap_or(u32::MAX),
            scheme: entry.id.scheme,
            id: entry.id.id,
        })
        .collect()
}

fn acl_from_pb(acl: Vec<pb::AclEntry>) -> Vec<jute::Acl> {
    acl.into_iter()
        .map(|entry| jute::Acl {
            perms: i32::try_from(entry.perms).unwrap_or(i32::MAX),
            id: jute::Id { scheme: entry.scheme, id: entry.id },
        })
        .collect()
}

/// ZooKeeper's watcher type as the kind Baton removes or checks.
fn watcher_kind(code: i32) -> Option<pb::WatchKind> {
    Some(match jute::WatcherType::from_code(code)? {
        jute::WatcherType::Children => pb::WatchKind::Child,
        jute::WatcherType::Data => pb::WatchKind::Data,
        jute::WatcherType::Any => pb::WatchKind::Any,
        jute::WatcherType::Persistent => pb::WatchKind::Persistent,
        jute::WatcherType::PersistentRecursive => pb::WatchKind::PersistentRecursive,
    })
}

fn record(body: &impl jute::Record) -> Bytes {
    body.to_bytes()
}

/// `/zookeeper/config`'s stat: a node with the config as data, never changed.
fn config_stat(context: &Context) -> jute::Stat {
    jute::Stat {
        data_length: i32::try_from(context.config.len()).unwrap_or(i32::MAX),
        ..jute::Stat::default()
    }
}

pub(crate) fn stat(stat: Option<&pb::Stat>) -> jute::Stat {
    let Some(stat) = stat else { return jute::Stat::default() };
    let signed = |z: u64| i64::try_from(z).unwrap_or(i64::MAX);
    jute::Stat {
        czxid: signed(stat.czxid),
        mzxid: signed(stat.mzxid),
        ctime: stat.ctime,
        mtime: stat.mtime,
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        // Session ids use all 64 bits, as ZooKeeper's do: the bits are the id.
        ephemeral_owner: stat.ephemeral_owner as i64,
        data_length: i32::try_from(stat.data_length).unwrap_or(i32::MAX),
        num_children: i32::try_from(stat.num_children).unwrap_or(i32::MAX),
        pzxid: signed(stat.pzxid),
    }
}

/// Baton's error code as ZooKeeper's.
pub(crate) fn error_code(code: i32) -> ErrorCode {
    use pb::ErrorCode as B;
    match B::try_from(code).unwrap_or(B::Unspecified) {
        B::NoNode => ErrorCode::NoNode,
        B::NodeExists => ErrorCode::NodeExists,
        B::BadVersion => ErrorCode::BadVersion,
        B::NotEmpty => ErrorCode::NotEmpty,
        B::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
        // ZooKeeper's server answers a bad path or oversized data as bad arguments.
        B::InvalidPath | B::DataTooLarge | B::BadArguments => ErrorCode::BadArguments,
        B::SessionExpired => ErrorCode::SessionExpired,
        B::SessionMoved => ErrorCode::SessionMoved,
        B::NoAuth => ErrorCode::NoAuth,
        B::InvalidAcl => ErrorCode::InvalidAcl,
        B::ConnectionLoss => ErrorCode::ConnectionLoss,
        B::OperationTimeout => ErrorCode::OperationTimeout,
        B::NotReadOnly => ErrorCode::NotReadOnly,
        B::Unimplemented => ErrorCode::Unimplemented,
        B::AuthFailed => ErrorCode::AuthFailed,
        B::NoWatcher => ErrorCode::NoWatcher,
        B::QuotaExceeded => ErrorCode::QuotaExceeded,
        B::SystemError | B::Unspecified => ErrorCode::SystemError,
    }
}

/// A watch event as ZooKeeper's notification frame (its zxid in the header, as
/// ZooKeeper 3.9 sends it).
pub(crate) fn encode_event(event: &pb::WatchEvent) -> Bytes {
    let kind = match pb::EventType::try_from(event.r#type) {
        Ok(pb::EventType::NodeCreated) => EventType::NodeCreated,
        Ok(pb::EventType::NodeDeleted) => EventType::NodeDeleted,
        Ok(pb::EventType::NodeDataChanged) => EventType::NodeDataChanged,
        Ok(pb::EventType::NodeChildrenChanged) => EventType::NodeChildrenChanged,
        _ => EventType::None,
    };
    let header = jute::ReplyHeader {
        xid: jute::xid::NOTIFICATION,
        zxid: i64::try_from(event.zxid).unwrap_or(i64::MAX),
        err: 0,
    };
    let body = jute::WatcherEvent {
        event_type: kind.code(),
        state: KeeperState::SyncConnected.code(),
        path: to_zookeeper(event.path.clone()),
    };
    jute::encode_reply(&header, &body)
}

/// What a reply becomes: a frame to send, or nothing yet (a multiRead part that is
/// not the last).
#[derive(Debug, Default)]
pub(crate) struct MultiReadParts {
    results: Vec<jute::MultiResult>,
}

/// Encodes the session's reply to `pending`. Returns None while a multiRead waits for
/// its other parts.
pub(crate) fn encode_reply(
    pending: &Pending,
    reply: pb::Reply,
    parts: &mut MultiReadParts,
) -> Option<Bytes> {
    use pb::reply::Result as P;
    let zxid = i64::try_from(reply.zxid).unwrap_or(i64::MAX);
    let header = |err: ErrorCode| jute::ReplyHeader { xid: pending.xid, zxid, err: err.code() };
    let ok = |body: &dyn Fn(&mut jute::Writer)| {
        Some(jute::encode_frame(|writer| {
            jute::Record::encode(&header(ErrorCode::Ok), writer);
            body(writer);
        }))
    };
    let failed = |code: ErrorCode| Some(jute::encode_reply(&header(code), &()));
    if let Shape::MultiRead { index, count } = pending.shape {
        let result = match reply.result {
            Some(P::Get(get)) => jute::MultiResult::GetData(jute::GetDataResponse {
                data: Some(get.data),
                stat: stat(get.stat.as_ref()),
            }),
            Some(P::Children(children)) => {
                jute::MultiResult::GetChildren(jute::GetChildrenResponse {
                    children: children.children,
                })
            }
            Some(P::Error(error)) => {
                jute::MultiResult::Error(jute::ErrorResponse { err: error_code(error.code).code() })
            }
            _ => {
                jute::MultiResult::Error(jute::ErrorResponse { err: ErrorCode::SystemError.code() })
            }
        };
        parts.results.push(result);
        if index + 1 < count {
            return None;
        }
        let body = jute::MultiResponse { results: std::mem::take(&mut parts.results) };
        return ok(&|w| jute::Record::encode(&body, w));
    }
    if let Shape::QuotaRoot(inner) = &pending.shape {
        let inner = Pending { xid: pending.xid, shape: (**inner).clone() };
        let missing = match &reply.result {
            Some(P::Error(error)) => error.code == pb::ErrorCode::NoNode as i32,
            Some(P::Exists(exists)) => exists.stat.is_none(),
            _ => false,
        };
        if !missing {
            return encode_reply(&inner, reply, parts);
        }
        let empty = match inner.shape {
            Shape::Exists => {
                P::Exists(pb::ExistsResponse { header: None, stat: Some(pb::Stat::default()) })
            }
            Shape::GetData => P::Get(pb::GetResponse {
                header: None,
                data: Bytes::new(),
                stat: Some(pb::Stat::default()),
            }),
            _ => P::Children(pb::ChildrenResponse {
                header: None,
                children: Vec::new(),
                stat: Some(pb::Stat::default()),
            }),
        };
        return encode_reply(&inner, pb::Reply { result: Some(empty), ..reply }, parts);
    }
    if let Shape::Local(local) = &pending.shape {
        return match local {
            Local::Error(code) | Local::Closing(code) => failed(*code),
            Local::Body(body) => ok(&|w| w.write_raw(body)),
        };
    }
    let result = match reply.result {
        Some(P::Error(error)) => {
            return multi_failure(pending, &error, header)
                .or_else(|| failed(error_code(error.code)));
        }
        Some(result) => result,
        None => return failed(ErrorCode::SystemError),
    };
    match (&pending.shape, result) {
        (Shape::Create { stat: false }, P::Create(create)) => {
            let body = jute::CreateResponse { path: to_zookeeper(create.path) };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::Create { stat: true }, P::Create(create)) => {
            let body = jute::Create2Response {
                path: to_zookeeper(create.path),
                stat: stat(create.stat.as_ref()),
            };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::Delete, P::Delete(_))
        | (Shape::Empty | Shape::Auth | Shape::Close, P::Empty(_)) => ok(&|_| {}),
        (Shape::AddWatch, P::Empty(_)) => {
            let body = jute::ErrorResponse { err: 0 };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::Exists, P::Exists(exists)) => match exists.stat {
            Some(found) => {
                let body = jute::ExistsResponse { stat: stat(Some(&found)) };
                ok(&|w| jute::Record::encode(&body, w))
            }
            None => failed(ErrorCode::NoNode),
        },
        (Shape::GetData, P::Get(get)) => {
            let body =
                jute::GetDataResponse { data: Some(get.data), stat: stat(get.stat.as_ref()) };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::SetData, P::Set(set)) => {
            let body = jute::SetDataResponse { stat: stat(set.stat.as_ref()) };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::GetAcl, P::GetAcl(get)) => {
            let body =
                jute::GetAclResponse { acl: acl_from_pb(get.acl), stat: stat(get.stat.as_ref()) };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::SetAcl, P::SetAcl(set)) => {
            let body = jute::SetAclResponse { stat: stat(set.stat.as_ref()) };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::Children { stat: with_stat, listing }, P::Children(children)) => {
            let names = list(children.children, *listing);
            if *with_stat {
                let body = jute::GetChildren2Response {
                    children: names,
                    stat: stat(children.stat.as_ref()),
                };
                ok(&|w| jute::Record::encode(&body, w))
            } else {
                let body = jute::GetChildrenResponse { children: names };
                ok(&|w| jute::Record::encode(&body, w))
            }
        }
        (Shape::Sync, P::Sync(sync)) => {
            let body = jute::SyncResponse { path: to_zookeeper(sync.path) };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::Check, P::Multi(_)) => ok(&|_| {}),
        (Shape::Multi { plain_creates }, P::Multi(multi)) => {
            let results = multi
                .results
                .into_iter()
                .zip(plain_creates.iter().copied().chain(std::iter::repeat(false)))
                .map(|(result, plain)| multi_result(result, plain))
                .collect();
            let body = jute::MultiResponse { results };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::GetEphemerals, P::GetEphemerals(get)) => {
            let ephemerals = get.paths.into_iter().map(to_zookeeper).collect();
            let body = jute::GetEphemeralsResponse { ephemerals };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::AllChildrenNumber, P::CountDescendants(count)) => {
            let body = jute::GetAllChildrenNumberResponse {
                total_number: i32::try_from(count.count).unwrap_or(i32::MAX),
            };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (Shape::WhoAmI, P::WhoAmI(who)) => {
            let client_info = who
                .identities
                .into_iter()
                .map(|id| jute::ClientInfo { auth_scheme: id.scheme, user: id.id })
                .collect();
            let body = jute::WhoAmIResponse { client_info };
            ok(&|w| jute::Record::encode(&body, w))
        }
        (shape, result) => {
            tracing::warn!(?shape, ?result, "a session reply that does not fit its request");
            failed(ErrorCode::SystemError)
        }
    }
}

/// Child names as ZooKeeper lists them.
fn list(mut names: Vec<String>, listing: Listing) -> Vec<String> {
    match listing {
        Listing::Plain => {}
        Listing::Root => {
            let reserved = &baton_znode::RESERVED_PREFIX[1..];
            for name in &mut names {
                if name == reserved {
                    ZOOKEEPER_ROOT[1..].clone_into(name);
                }
            }
        }
        Listing::Reserved => {
            for name in [CONFIG_NAME, QUOTA_NAME] {
                if !names.iter().any(|have| have == name) {
                    names.push(name.to_owned());
                }
            }
            names.sort_unstable();
        }
    }
    names
}

/// A failed multi, as ZooKeeper answers it: err 0 in the header and one error result
/// per op: 0 for the ops before the failed one, its code for it, RUNTIMEINCONSISTENCY
/// after it. None for a reply that is not a multi's (or a multi's error that names no
/// op: the request as a whole failed).
fn multi_failure(
    pending: &Pending,
    error: &pb::Error,
    header: impl Fn(ErrorCode) -> jute::ReplyHeader,
) -> Option<Bytes> {
    let Shape::Multi { plain_creates } = &pending.shape else { return None };
    let failed_at = usize::try_from(error.op_index?).ok()?;
    let code = error_code(error.code).code();
    let results = (0..plain_creates.len())
        .map(|index| {
            let err = match index.cmp(&failed_at) {
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => code,
                std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency.code(),
            };
            jute::MultiResult::Error(jute::ErrorResponse { err })
        })
        .collect();
    let body = jute::MultiResponse { results };
    Some(jute::encode_reply(&header(ErrorCode::Ok), &body))
}

fn multi_result(result: pb::OpResult, plain_create: bool) -> jute::MultiResult {
    use pb::op_result::Result as R;
    match result.result {
        Some(R::Create(create)) if plain_create => {
            jute::MultiResult::Create(jute::CreateResponse { path: to_zookeeper(create.path) })
        }
        Some(R::Create(create)) => jute::MultiResult::Create2(jute::Create2Response {
            path: to_zookeeper(create.path),
            stat: stat(create.stat.as_ref()),
        }),
        Some(R::Set(set)) => {
            jute::MultiResult::SetData(jute::SetDataResponse { stat: stat(set.stat.as_ref()) })
        }
        Some(R::Delete(_)) => jute::MultiResult::Delete,
        Some(R::Check(_)) => jute::MultiResult::Check,
        None => {
            jute::MultiResult::Error(jute::ErrorResponse { err: ErrorCode::SystemError.code() })
        }
    }
}
