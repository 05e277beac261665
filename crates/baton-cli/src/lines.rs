//! The line-per-event output of the long-running commands (`watch`, `session open`): one
//! line per event as text, or one JSON object per line with `--json`, flushed at once so
//! that a script reading the pipe sees each event as it happens.

use std::io::{self, Write};

use baton_client::{ChangeKind, SessionState, WatchEvent};
use serde_json::json;

/// The proto's name of an event type (`NODE_CREATED`, ...).
pub fn event_type(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::NodeCreated => "NODE_CREATED",
        ChangeKind::NodeDeleted => "NODE_DELETED",
        ChangeKind::NodeDataChanged => "NODE_DATA_CHANGED",
        ChangeKind::NodeChildrenChanged => "NODE_CHILDREN_CHANGED",
    }
}

/// `NODE_CREATED /a/b zxid=0x100000002`, or `{"type":"NODE_CREATED","path":"/a/b","zxid":N}`.
pub fn event(event: &WatchEvent, json: bool) -> String {
    let kind = event_type(event.kind);
    if json {
        json!({ "type": kind, "path": event.path, "zxid": event.zxid }).to_string()
    } else {
        format!("{kind} {} zxid={:#x}", event.path, event.zxid)
    }
}

/// `session_id=0x… timeout_ms=N`, or `{"session_id":N,"timeout_ms":N}`.
pub fn session(session_id: u64, timeout_ms: u32, json: bool) -> String {
    if json {
        json!({ "session_id": session_id, "timeout_ms": timeout_ms }).to_string()
    } else {
        format!("session_id={session_id:#018x} timeout_ms={timeout_ms}")
    }
}

/// `state=DISCONNECTED`, or `{"state":"DISCONNECTED"}`.
pub fn state(state: SessionState, json: bool) -> String {
    if json { json!({ "state": state.name() }).to_string() } else { format!("state={state}") }
}

/// Writes one line to stdout and flushes it.
pub fn emit(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> WatchEvent {
        WatchEvent { kind: ChangeKind::NodeCreated, path: "/a/b".into(), zxid: 0x1_0000_0002 }
    }

    #[test]
    fn events_as_text_and_json() {
        assert_eq!(event(&created(), false), "NODE_CREATED /a/b zxid=0x100000002");
        let value: serde_json::Value = serde_json::from_str(&event(&created(), true)).unwrap();
        assert_eq!(
            value,
            json!({ "type": "NODE_CREATED", "path": "/a/b", "zxid": 0x1_0000_0002u64 })
        );
    }

    #[test]
    fn every_event_type_has_its_proto_name() {
        let names: Vec<&str> = [
            ChangeKind::NodeCreated,
            ChangeKind::NodeDeleted,
            ChangeKind::NodeDataChanged,
            ChangeKind::NodeChildrenChanged,
        ]
        .into_iter()
        .map(event_type)
        .collect();
        assert_eq!(
            names,
            ["NODE_CREATED", "NODE_DELETED", "NODE_DATA_CHANGED", "NODE_CHILDREN_CHANGED"]
        );
    }

    #[test]
    fn session_and_state_lines() {
        assert_eq!(session(0x1f, 4000, false), "session_id=0x000000000000001f timeout_ms=4000");
        assert_eq!(session(31, 4000, true), r#"{"session_id":31,"timeout_ms":4000}"#);
        assert_eq!(state(SessionState::Disconnected, false), "state=DISCONNECTED");
        assert_eq!(state(SessionState::Expired, true), r#"{"state":"EXPIRED"}"#);
    }
}
