//! ZooKeeper's numbers: opcodes, special xids, error codes, watch event types and
//! session states, create modes, watch modes and permissions. Records carry the raw
//! `i32`, since a number unknown here must reach the server's logic (to be answered
//! with an error), not fail decoding.

/// Declares a closed set of ZooKeeper's numbers as an enum with `code` and `from_code`.
macro_rules! codes {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident = $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            pub const fn code(self) -> i32 {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            pub const fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// ZooKeeper's `ZooDefs.OpCode`: the `type` of a request header.
    pub enum OpCode {
        Notification = 0,
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetAcl = 6,
        SetAcl = 7,
        GetChildren = 8,
        Sync = 9,
        Ping = 11,
        GetChildren2 = 12,
        Check = 13,
        Multi = 14,
        Create2 = 15,
        Reconfig = 16,
        CheckWatches = 17,
        RemoveWatches = 18,
        CreateContainer = 19,
        DeleteContainer = 20,
        CreateTtl = 21,
        MultiRead = 22,
        Auth = 100,
        SetWatches = 101,
        Sasl = 102,
        GetEphemerals = 103,
        GetAllChildrenNumber = 104,
        SetWatches2 = 105,
        AddWatch = 106,
        WhoAmI = 107,
        CreateSession = -10,
        CloseSession = -11,
        Error = -1,
    }
}

/// The xids with a fixed meaning (ZooKeeper's `ClientCnxn`): replies to these are not
/// matched against the client's queue of pending requests.
pub mod xid {
    /// A watch notification from the server.
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

codes! {
    /// ZooKeeper's `KeeperException.Code`: a reply header's `err`.
    pub enum ErrorCode {
        Ok = 0,
        SystemError = -1,
        RuntimeInconsistency = -2,
        DataInconsistency = -3,
        ConnectionLoss = -4,
        MarshallingError = -5,
        Unimplemented = -6,
        OperationTimeout = -7,
        BadArguments = -8,
        UnknownSession = -12,
        NewConfigNoQuorum = -13,
        ReconfigInProgress = -14,
        ApiError = -100,
        NoNode = -101,
        NoAuth = -102,
        BadVersion = -103,
        NoChildrenForEphemerals = -108,
        NodeExists = -110,
        NotEmpty = -111,
        SessionExpired = -112,
        InvalidCallback = -113,
        InvalidAcl = -114,
        AuthFailed = -115,
        SessionMoved = -118,
        NotReadOnly = -119,
        EphemeralOnLocalSession = -120,
        NoWatcher = -121,
        RequestTimeout = -122,
        ReconfigDisabled = -123,
        SessionClosedRequireSaslAuth = -124,
        QuotaExceeded = -125,
        ThrottledOp = -127,
    }
}

codes! {
    /// ZooKeeper's `Watcher.Event.EventType`: a [`crate::WatcherEvent`]'s `event_type`.
    pub enum EventType {
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

codes! {
    /// ZooKeeper's `Watcher.Event.KeeperState`: a [`crate::WatcherEvent`]'s `state`.
    /// `Unknown` and `NoSyncConnected` are deprecated in ZooKeeper and never sent.
    pub enum KeeperState {
        Unknown = -1,
        Disconnected = 0,
        NoSyncConnected = 1,
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Closed = 7,
        Expired = -112,
    }
}

codes! {
    /// ZooKeeper's `CreateMode`: a create request's `flags`.
    pub enum CreateMode {
        Persistent = 0,
        Ephemeral = 1,
        PersistentSequential = 2,
        EphemeralSequential = 3,
        Container = 4,
        PersistentWithTtl = 5,
        PersistentSequentialWithTtl = 6,
    }
}

codes! {
    /// ZooKeeper's `AddWatchMode`: an [`crate::AddWatchRequest`]'s `mode`.
    pub enum AddWatchMode {
        Persistent = 0,
        PersistentRecursive = 1,
    }
}

codes! {
    /// ZooKeeper's `Watcher.WatcherType`: which watches removeWatches and checkWatches
    /// act on (the persistent kinds since ZooKeeper 3.6).
    pub enum WatcherType {
        Children = 1,
        Data = 2,
        Any = 3,
        Persistent = 4,
        PersistentRecursive = 5,
    }
}

/// ZooKeeper's `ZooDefs.Perms`: the bits of an [`crate::Acl`]'s `perms`.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 1 << 1;
    pub const CREATE: i32 = 1 << 2;
    pub const DELETE: i32 = 1 << 3;
    pub const ADMIN: i32 = 1 << 4;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}
