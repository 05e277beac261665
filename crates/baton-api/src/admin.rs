//! The admin port's `/status` document: what a server says about itself and its place in
//! its ensemble, as JSON.
//!
//! The server serializes these types and every reader (the `baton status` command, the
//! test kit, the tools) deserializes them, so the field names are written once. They
//! are the names deployed tooling already reads: a field may be added, none renamed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A member's role in its ensemble. A server started without peers is an ensemble of
/// one, and leads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Electing: no leader known.
    Looking,
    /// Following the member named in [`Ensemble::leader`].
    Following,
    /// Leading (itself alone, or the others).
    Leading,
    /// An observer following the member named in [`Ensemble::leader`]: it serves
    /// like a follower but never votes, leads or counts toward a quorum.
    Observing,
}

impl Role {
    /// Every role, in the order the metrics list them.
    pub const ALL: [Role; 4] = [Role::Looking, Role::Following, Role::Leading, Role::Observing];

    /// The name `/status` and the `baton_role` metric use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Looking => "looking",
            Role::Following => "following",
            Role::Leading => "leading",
            Role::Observing => "observing",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `ensemble` part of `/status`: the member's view of its ensemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ensemble {
    pub role: Role,
    /// The leader's id, once one is known.
    pub leader: Option<u64>,
    /// In the broadcast phase: serving clients.
    pub broadcasting: bool,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// Last durable log entry.
    pub logged_zxid: u64,
    /// Highest zxid known committed.
    pub committed_zxid: u64,
    /// Every member: id and peer address (empty for an ensemble of one).
    pub peers: Vec<(u64, String)>,
    /// The disk lost entries this member had acknowledged, not yet repaired from a
    /// leader: it neither votes nor counts toward a quorum meanwhile.
    #[serde(default)]
    pub damaged: bool,
    /// The configuration in force: its version (the zxid that committed it; 0
    /// for the one the members started with) and members.
    #[serde(default)]
    pub config_version: u64,
    #[serde(default)]
    pub members: Vec<ConfigMember>,
    /// The version of a configuration change in flight.
    #[serde(default)]
    pub config_pending: Option<u64>,
    /// The configuration in force does not name this member: it was removed.
    #[serde(default)]
    pub removed: bool,
}

/// A member of the configuration, as `/status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigMember {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
}

/// The whole `/status` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The same as `ensemble.role`, at the top for scripts.
    pub role: Role,
    /// This server's id in its ensemble.
    pub id: u8,
    /// The epoch this run of the server started in.
    pub epoch: u32,
    pub ensemble: Ensemble,
    /// zxid of the last applied txn.
    pub last_zxid: u64,
    /// `last_zxid` as hex, as the logs show zxids.
    pub last_zxid_hex: String,
    pub node_count: u64,
    /// The tree digest, 16 hex digits: equal trees have equal digests.
    pub digest: String,
    pub sessions: u64,
    pub watches: u64,
    /// Open ZooKeeper-protocol connections (each carries a session).
    #[serde(default)]
    pub zk_connections: u64,
    pub data_dir: String,
    pub client_addr: String,
}

impl Status {
    /// True when this member leads and serves (broadcasting).
    pub fn leads(&self) -> bool {
        self.role == Role::Leading && self.ensemble.broadcasting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        Status {
            role: Role::Following,
            id: 2,
            epoch: 3,
            ensemble: Ensemble {
                role: Role::Following,
                leader: Some(1),
                broadcasting: true,
                accepted_epoch: 3,
                current_epoch: 3,
                logged_zxid: 0x3_0000_0002,
                committed_zxid: 0x3_0000_0001,
                peers: vec![(1, "127.0.0.1:2001".into()), (2, "127.0.0.1:2002".into())],
                damaged: false,
                config_version: 0x2_0000_0004,
                members: vec![ConfigMember { id: 1, addr: "127.0.0.1:2001".into(), voter: true }],
                config_pending: None,
                removed: false,
            },
            last_zxid: 0x3_0000_0001,
            last_zxid_hex: "0x300000001".into(),
            node_count: 2,
            digest: "00000000000000ff".into(),
            sessions: 0,
            watches: 0,
            zk_connections: 0,
            data_dir: "/data".into(),
            client_addr: "127.0.0.1:2181".into(),
        }
    }

    #[test]
    fn roles_are_lowercase_names() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{role}\""));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert!(serde_json::from_str::<Role>("\"standalone\"").is_err());
    }

    #[test]
    fn the_document_keeps_its_field_names_and_round_trips() {
        let value = serde_json::to_value(status()).unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = [
            "role",
            "id",
            "epoch",
            "ensemble",
            "last_zxid",
            "last_zxid_hex",
            "node_count",
            "digest",
            "sessions",
            "watches",
            "zk_connections",
            "data_dir",
            "client_addr",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["role"], "following");
        assert_eq!(value["ensemble"]["leader"], 1);
        assert_eq!(value["ensemble"]["peers"][0], serde_json::json!([1, "127.0.0.1:2001"]));
        let mut older = value.clone();
        older.as_object_mut().unwrap().remove("zk_connections");
        let older: Status = serde_json::from_value(older).expect("a server without the field");
        assert_eq!(older.zk_connections, 0);
        let back: Status = serde_json::from_value(value).unwrap();
        assert_eq!(back, status());
        assert!(!back.leads());
    }
}
