//! Identities and ACLs, and the ops that read and replace a znode's ACL.

use crate::Stat;
use crate::record::record;

record! {
    /// An identity: `scheme` (world, auth, digest, ip, ...) and the id within it.
    pub struct Id {
        pub scheme: String,
        pub id: String,
    }

    /// One ACL entry: a bit set of [`crate::perms`] granted to an identity.
    pub struct Acl {
        pub perms: i32,
        pub id: Id,
    }

    pub struct GetAclRequest {
        pub path: String,
    }

    pub struct GetAclResponse {
        pub acl: Vec<Acl>,
        pub stat: Stat,
    }

    pub struct SetAclRequest {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }

    pub struct SetAclResponse {
        pub stat: Stat,
    }
}
