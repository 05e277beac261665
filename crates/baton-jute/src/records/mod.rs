//! The jute classes of ZooKeeper's client protocol (`zookeeper.jute`), grouped by
//! concept. Names follow Rust's casing (`Acl` for `ACL`, `CreateTtlRequest` for
//! `CreateTTLRequest`); field order is ZooKeeper's.

mod acl;
mod children;
mod connect;
mod data;
mod header;
mod multi;
mod session;
mod watches;

pub use acl::{Acl, GetAclRequest, GetAclResponse, Id, SetAclRequest, SetAclResponse};
pub use children::{
    GetAllChildrenNumberRequest, GetAllChildrenNumberResponse, GetChildren2Request,
    GetChildren2Response, GetChildrenRequest, GetChildrenResponse, GetEphemeralsRequest,
    GetEphemeralsResponse,
};
pub use connect::{ConnectRequest, ConnectResponse};
pub use data::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ExistsRequest, ExistsResponse, GetDataRequest, GetDataResponse, SetDataRequest,
    SetDataResponse, Stat, SyncRequest, SyncResponse,
};
pub use header::{ErrorResponse, ReplyHeader, RequestHeader};
pub use multi::{MultiHeader, MultiOp, MultiRequest, MultiResponse, MultiResult};
pub use session::{
    AuthPacket, ClientInfo, ReconfigRequest, SaslRequest, SaslResponse, WhoAmIResponse,
};
pub use watches::{
    AddWatchRequest, CheckWatchesRequest, RemoveWatchesRequest, SetWatches, SetWatches2,
    WatcherEvent,
};
