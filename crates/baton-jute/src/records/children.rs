//! Listing and counting children, and a session's ephemerals.

use crate::Stat;
use crate::record::record;

record! {
    /// getChildren, also an op of multiRead.
    pub struct GetChildrenRequest {
        pub path: String,
        pub watch: bool,
    }

    pub struct GetChildrenResponse {
        pub children: Vec<String>,
    }

    pub struct GetChildren2Request {
        pub path: String,
        pub watch: bool,
    }

    pub struct GetChildren2Response {
        pub children: Vec<String>,
        pub stat: Stat,
    }

    /// The session's ephemeral znodes whose paths start with `prefix_path`.
    pub struct GetEphemeralsRequest {
        pub prefix_path: String,
    }

    pub struct GetEphemeralsResponse {
        pub ephemerals: Vec<String>,
    }

    pub struct GetAllChildrenNumberRequest {
        pub path: String,
    }

    pub struct GetAllChildrenNumberResponse {
        pub total_number: i32,
    }
}
