//! Znode data and metadata: create, delete, exists, get and set data, check, sync.

use bytes::Bytes;

use crate::record::record;

record! {
    /// A znode's metadata, as the client sees it.
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }

    /// create, create2 and createContainer. `flags` is a [`crate::CreateMode`] number.
    /// `data` is `None` when the client passed null, which ZooKeeper stores as such.
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<crate::Acl>,
        pub flags: i32,
    }

    /// createTTL: a create with a time to live in milliseconds.
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<crate::Acl>,
        pub flags: i32,
        pub ttl: i64,
    }

    /// The reply to create: the path created (with its sequence suffix, if any).
    pub struct CreateResponse {
        pub path: String,
    }

    /// The reply to create2, createContainer and createTTL.
    pub struct Create2Response {
        pub path: String,
        pub stat: Stat,
    }

    pub struct DeleteRequest {
        pub path: String,
        pub version: i32,
    }

    pub struct ExistsRequest {
        pub path: String,
        pub watch: bool,
    }

    pub struct ExistsResponse {
        pub stat: Stat,
    }

    pub struct GetDataRequest {
        pub path: String,
        pub watch: bool,
    }

    pub struct GetDataResponse {
        pub data: Option<Bytes>,
        pub stat: Stat,
    }

    pub struct SetDataRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub version: i32,
    }

    pub struct SetDataResponse {
        pub stat: Stat,
    }

    /// check: a multi op (opcode 13) that fails unless the version matches.
    pub struct CheckVersionRequest {
        pub path: String,
        pub version: i32,
    }

    pub struct SyncRequest {
        pub path: String,
    }

    pub struct SyncResponse {
        pub path: String,
    }
}
