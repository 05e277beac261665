//! Session-level requests: authentication, whoAmI, SASL and reconfig.

use bytes::Bytes;

use crate::record::record;

record! {
    /// auth, sent with xid [`crate::xid::AUTH`]. `auth_type` is unused by ZooKeeper
    /// (clients send 0).
    pub struct AuthPacket {
        pub auth_type: i32,
        pub scheme: String,
        pub auth: Bytes,
    }

    /// One identity the session has authenticated as.
    pub struct ClientInfo {
        pub auth_scheme: String,
        pub user: String,
    }

    pub struct WhoAmIResponse {
        pub client_info: Vec<ClientInfo>,
    }

    /// One SASL round's token (ZooKeeper's GetSASLRequest).
    pub struct SaslRequest {
        pub token: Bytes,
    }

    /// The server's SASL token (ZooKeeper's SetSASLResponse).
    pub struct SaslResponse {
        pub token: Bytes,
    }

    /// reconfig: decoded so the server can refuse it with a proper error. The server
    /// lists are null when not given.
    pub struct ReconfigRequest {
        pub joining_servers: Option<String>,
        pub leaving_servers: Option<String>,
        pub new_members: Option<String>,
        pub cur_config_id: i64,
    }
}
