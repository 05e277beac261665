//! Watches: re-registering them after a reconnect, adding persistent ones, removing or
//! checking them, and the notification itself.

use crate::record::record;

record! {
    /// Sent after a reconnect: the watches the client still holds, to be fired at once
    /// for any change after `relative_zxid`.
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }

    /// [`SetWatches`] with the persistent watches (ZooKeeper 3.6+).
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }

    /// addWatch. `mode` is an [`crate::AddWatchMode`] number.
    pub struct AddWatchRequest {
        pub path: String,
        pub mode: i32,
    }

    /// removeWatches. `watcher_type` is a [`crate::WatcherType`] number.
    pub struct RemoveWatchesRequest {
        pub path: String,
        pub watcher_type: i32,
    }

    /// checkWatches: like removeWatches, but only asks whether such a watch exists.
    pub struct CheckWatchesRequest {
        pub path: String,
        pub watcher_type: i32,
    }

    /// A notification, sent with xid [`crate::xid::NOTIFICATION`]. `event_type` is an
    /// [`crate::EventType`] number, `state` a [`crate::KeeperState`] number. Only events
    /// about the session itself lack a path, and the server never sends those.
    pub struct WatcherEvent {
        pub event_type: i32,
        pub state: i32,
        pub path: String,
    }
}
