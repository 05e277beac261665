//! The headers in front of every request and reply after the handshake.

use crate::record::record;

record! {
    /// Precedes every request body. `op` is the opcode (jute's `type`); `xid` is the
    /// client's sequence number, or one of the special xids in [`crate::xid`].
    pub struct RequestHeader {
        pub xid: i32,
        pub op: i32,
    }

    /// Precedes every reply and notification. `zxid` is the last zxid the server has
    /// applied; `err` is an [`crate::ErrorCode`], and a reply with a nonzero `err` has
    /// no body.
    pub struct ReplyHeader {
        pub xid: i32,
        pub zxid: i64,
        pub err: i32,
    }

    /// The body of a failed op inside a multi's reply.
    pub struct ErrorResponse {
        pub err: i32,
    }
}
