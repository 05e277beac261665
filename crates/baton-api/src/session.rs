//! Conversions of the `Sessions` stream's own messages: watch kinds, watch specs (the
//! watches a reconnecting client sets again) and watch events, both ways.
//!
//! As in [`crate::convert`], only what cannot exist in the domain is rejected here (an
//! unknown or unspecified enum value, a kind that the message does not allow); the
//! watch semantics themselves belong to `baton_znode::watch`.

use baton_znode::{
    ChangeKind,
    watch::{RemoveKind, SpecKind, WatchEvent, WatchKind, WatchSpec},
};
use tonic::Status;

use crate::{
    pb,
    status::{ErrorCode, error_status},
};

pub fn change_kind_to_pb(kind: ChangeKind) -> pb::EventType {
    match kind {
        ChangeKind::NodeCreated => pb::EventType::NodeCreated,
        ChangeKind::NodeDeleted => pb::EventType::NodeDeleted,
        ChangeKind::NodeDataChanged => pb::EventType::NodeDataChanged,
        ChangeKind::NodeChildrenChanged => pb::EventType::NodeChildrenChanged,
    }
}

/// The domain kind of an event type; unspecified or unknown is `BAD_ARGUMENTS`.
pub fn change_kind_from_pb(value: i32) -> Result<ChangeKind, Status> {
    match pb::EventType::try_from(value) {
        Ok(pb::EventType::NodeCreated) => Ok(ChangeKind::NodeCreated),
        Ok(pb::EventType::NodeDeleted) => Ok(ChangeKind::NodeDeleted),
        Ok(pb::EventType::NodeDataChanged) => Ok(ChangeKind::NodeDataChanged),
        Ok(pb::EventType::NodeChildrenChanged) => Ok(ChangeKind::NodeChildrenChanged),
        Ok(pb::EventType::Unspecified) | Err(_) => Err(bad(format!("unknown event type {value}"))),
    }
}

pub fn watch_event_to_pb(event: &WatchEvent) -> pb::WatchEvent {
    pb::WatchEvent {
        r#type: change_kind_to_pb(event.kind) as i32,
        path: event.path.clone(),
        zxid: event.zxid,
    }
}

pub fn watch_event_from_pb(event: pb::WatchEvent) -> Result<WatchEvent, Status> {
    Ok(WatchEvent { kind: change_kind_from_pb(event.r#type)?, path: event.path, zxid: event.zxid })
}

pub fn spec_kind_to_pb(kind: SpecKind) -> pb::WatchKind {
    match kind {
        SpecKind::Data => pb::WatchKind::Data,
        SpecKind::Exists => pb::WatchKind::Exists,
        SpecKind::Child => pb::WatchKind::Child,
        SpecKind::Persistent => pb::WatchKind::Persistent,
        SpecKind::PersistentRecursive => pb::WatchKind::PersistentRecursive,
    }
}

/// The kind of a watch to set again; `ANY` (only meaningful in a removal) or an unknown
/// value is `BAD_ARGUMENTS`.
pub fn spec_kind_from_pb(value: i32) -> Result<SpecKind, Status> {
    match pb::WatchKind::try_from(value) {
        Ok(pb::WatchKind::Data) => Ok(SpecKind::Data),
        Ok(pb::WatchKind::Exists) => Ok(SpecKind::Exists),
        Ok(pb::WatchKind::Child) => Ok(SpecKind::Child),
        Ok(pb::WatchKind::Persistent) => Ok(SpecKind::Persistent),
        Ok(pb::WatchKind::PersistentRecursive) => Ok(SpecKind::PersistentRecursive),
        Ok(pb::WatchKind::Any) | Err(_) => {
            Err(bad(format!("watch kind {value} cannot be set on a resume")))
        }
    }
}

pub fn watch_spec_to_pb(spec: &WatchSpec) -> pb::WatchSpec {
    pb::WatchSpec { path: spec.path.clone(), kind: spec_kind_to_pb(spec.kind) as i32 }
}

pub fn watch_spec_from_pb(spec: pb::WatchSpec) -> Result<WatchSpec, Status> {
    Ok(WatchSpec { kind: spec_kind_from_pb(spec.kind)?, path: spec.path })
}

/// The kind of an `AddWatchRequest`: only the two persistent kinds are allowed.
pub fn persistent_kind_from_pb(value: i32) -> Result<WatchKind, Status> {
    match pb::WatchKind::try_from(value) {
        Ok(pb::WatchKind::Persistent) => Ok(WatchKind::Persistent),
        Ok(pb::WatchKind::PersistentRecursive) => Ok(WatchKind::PersistentRecursive),
        _ => Err(bad(format!("watch kind {value} is not a persistent watch kind"))),
    }
}

/// The kind of an `AddWatchRequest` for a persistent watch, recursive or not.
pub fn persistent_kind_to_pb(recursive: bool) -> pb::WatchKind {
    if recursive { pb::WatchKind::PersistentRecursive } else { pb::WatchKind::Persistent }
}

pub fn remove_kind_to_pb(kind: RemoveKind) -> pb::WatchKind {
    match kind {
        RemoveKind::Data => pb::WatchKind::Data,
        RemoveKind::Child => pb::WatchKind::Child,
        RemoveKind::Persistent => pb::WatchKind::Persistent,
        RemoveKind::PersistentRecursive => pb::WatchKind::PersistentRecursive,
        RemoveKind::Any => pb::WatchKind::Any,
    }
}

/// The kind of a `RemoveWatchRequest`. `EXISTS` removes data watches: the server keeps
/// one kind for both (ZooKeeper's WatcherType.Data).
pub fn remove_kind_from_pb(value: i32) -> Result<RemoveKind, Status> {
    match pb::WatchKind::try_from(value) {
        Ok(pb::WatchKind::Data | pb::WatchKind::Exists) => Ok(RemoveKind::Data),
        Ok(pb::WatchKind::Child) => Ok(RemoveKind::Child),
        Ok(pb::WatchKind::Persistent) => Ok(RemoveKind::Persistent),
        Ok(pb::WatchKind::PersistentRecursive) => Ok(RemoveKind::PersistentRecursive),
        Ok(pb::WatchKind::Any) => Ok(RemoveKind::Any),
        Err(_) => Err(bad(format!("unknown watch kind {value}"))),
    }
}

fn bad(message: String) -> Status {
    error_status(ErrorCode::BadArguments, message, "", None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::error_from_status;

    const CHANGES: [ChangeKind; 4] = [
        ChangeKind::NodeCreated,
        ChangeKind::NodeDeleted,
        ChangeKind::NodeDataChanged,
        ChangeKind::NodeChildrenChanged,
    ];
    const SPECS: [SpecKind; 5] = [
        SpecKind::Data,
        SpecKind::Exists,
        SpecKind::Child,
        SpecKind::Persistent,
        SpecKind::PersistentRecursive,
    ];

    fn is_bad_arguments(status: &Status) -> bool {
        error_from_status(status).code == ErrorCode::BadArguments as i32
    }

    #[test]
    fn events_round_trip() {
        for kind in CHANGES {
            let event = WatchEvent { kind, path: "/a/b".into(), zxid: 0x1_0000_0007 };
            assert_eq!(watch_event_from_pb(watch_event_to_pb(&event)).unwrap(), event);
        }
    }

    #[test]
    fn unspecified_and_unknown_event_types_are_rejected() {
        for value in [0, 5, -1] {
            let event = pb::WatchEvent { r#type: value, path: "/a".into(), zxid: 1 };
            assert!(is_bad_arguments(&watch_event_from_pb(event).unwrap_err()), "{value}");
        }
    }

    #[test]
    fn specs_round_trip_and_any_is_not_a_spec() {
        for kind in SPECS {
            let spec = WatchSpec { path: "/p".into(), kind };
            assert_eq!(watch_spec_from_pb(watch_spec_to_pb(&spec)).unwrap(), spec);
        }
        assert!(is_bad_arguments(&spec_kind_from_pb(pb::WatchKind::Any as i32).unwrap_err()));
        assert!(is_bad_arguments(&spec_kind_from_pb(42).unwrap_err()));
    }

    #[test]
    fn add_watch_takes_only_persistent_kinds() {
        for recursive in [false, true] {
            let kind = persistent_kind_from_pb(persistent_kind_to_pb(recursive) as i32).unwrap();
            let expected =
                if recursive { WatchKind::PersistentRecursive } else { WatchKind::Persistent };
            assert_eq!(kind, expected);
        }
        for kind in [pb::WatchKind::Data, pb::WatchKind::Child, pb::WatchKind::Any] {
            assert!(is_bad_arguments(&persistent_kind_from_pb(kind as i32).unwrap_err()));
        }
    }

    #[test]
    fn remove_kinds_round_trip_and_exists_means_data() {
        for kind in [
            RemoveKind::Data,
            RemoveKind::Child,
            RemoveKind::Persistent,
            RemoveKind::PersistentRecursive,
            RemoveKind::Any,
        ] {
            assert_eq!(remove_kind_from_pb(remove_kind_to_pb(kind) as i32).unwrap(), kind);
        }
        assert_eq!(remove_kind_from_pb(pb::WatchKind::Exists as i32).unwrap(), RemoveKind::Data);
        assert!(is_bad_arguments(&remove_kind_from_pb(17).unwrap_err()));
    }
}
