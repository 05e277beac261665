//! Replies as transcript text two systems can share: zxid and time values become
//! placeholders (their relations stay: `m=c` when a stat's mzxid equals its czxid),
//! session ids become the name of the client that owns them, and lists whose order
//! ZooKeeper does not define (children, ephemerals) are sorted.

use std::time::{SystemTime, UNIX_EPOCH};

use baton_testkit::ZkFrame;
use baton_testkit::jute::{
    Acl, ConnectResponse, Create2Response, CreateResponse, ErrorCode, EventType, ExistsResponse,
    GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse,
    GetDataResponse, GetEphemeralsResponse, KeeperState, MultiResponse, MultiResult, OpCode,
    Record, SetAclResponse, SetDataResponse, Stat, SyncResponse, WatcherEvent, WhoAmIResponse,
    perms,
};
use bytes::Bytes;

/// Session ids by the name of the client that holds them.
#[derive(Debug, Default)]
pub struct Sessions {
    names: Vec<(i64, &'static str)>,
}

impl Sessions {
    pub fn name(&mut self, id: i64, who: &'static str) {
        if !self.names.iter().any(|(known, _)| *known == id) {
            self.names.push((id, who));
        }
    }

    fn owner(&self, id: i64) -> String {
        if id == 0 {
            return "0".to_owned();
        }
        match self.names.iter().find(|(known, _)| *known == id) {
            Some((_, who)) => format!("s{who}"),
            None => format!("{id:#x}"),
        }
    }
}

pub fn error_name(code: i32) -> String {
    ErrorCode::from_code(code).map_or_else(|| format!("err({code})"), |code| format!("{code:?}"))
}

pub fn event(event: &WatcherEvent) -> String {
    let kind = EventType::from_code(event.event_type)
        .map_or_else(|| format!("type({})", event.event_type), |t| format!("{t:?}"));
    let state = KeeperState::from_code(event.state)
        .map_or_else(|| format!("state({})", event.state), |s| format!("{s:?}"));
    format!("event {kind} {state} {}", event.path)
}

pub fn connected(response: &ConnectResponse, sessions: &Sessions) -> String {
    format!(
        "proto={} timeout={} session={} passwd={}B ro={:?}",
        response.protocol_version,
        response.timeout_ms,
        sessions.owner(response.session_id),
        response.passwd.len(),
        response.read_only
    )
}

/// A reply: its error, then its body decoded as `op`'s response.
pub fn reply(op: i32, frame: &ZkFrame, sessions: &Sessions) -> String {
    let err = error_name(frame.header.err);
    if frame.header.err != 0 {
        return match frame.body.len() {
            0 => err,
            n => format!("{err} +{n} body bytes"),
        };
    }
    match body(op, frame, sessions) {
        Ok(text) if text.is_empty() => err,
        Ok(text) => format!("{err} {text}"),
        Err(why) => format!("{err} undecodable ({} bytes): {why}", frame.body.len()),
    }
}

fn decode<R: Record>(frame: &ZkFrame) -> Result<R, String> {
    R::from_bytes(frame.body.clone()).map_err(|error| error.to_string())
}

fn body(op: i32, frame: &ZkFrame, sessions: &Sessions) -> Result<String, String> {
    let Some(op) = OpCode::from_code(op) else { return empty(frame) };
    Ok(match op {
        OpCode::Create => decode::<CreateResponse>(frame)?.path,
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            let created: Create2Response = decode(frame)?;
            format!("{} {}", created.path, stat(&created.stat, sessions))
        }
        OpCode::Exists => stat(&decode::<ExistsResponse>(frame)?.stat, sessions),
        OpCode::GetData => {
            let got: GetDataResponse = decode(frame)?;
            format!("{} {}", data(&got.data), stat(&got.stat, sessions))
        }
        OpCode::SetData => stat(&decode::<SetDataResponse>(frame)?.stat, sessions),
        OpCode::SetAcl => stat(&decode::<SetAclResponse>(frame)?.stat, sessions),
        OpCode::GetAcl => {
            let got: GetAclResponse = decode(frame)?;
            format!("{} {}", acls(&got.acl), stat(&got.stat, sessions))
        }
        OpCode::GetChildren => sorted(decode::<GetChildrenResponse>(frame)?.children),
        OpCode::GetChildren2 => {
            let got: GetChildren2Response = decode(frame)?;
            format!("{} {}", sorted(got.children), stat(&got.stat, sessions))
        }
        OpCode::Sync => decode::<SyncResponse>(frame)?.path,
        OpCode::GetEphemerals => sorted(decode::<GetEphemeralsResponse>(frame)?.ephemerals),
        OpCode::GetAllChildrenNumber => {
            decode::<GetAllChildrenNumberResponse>(frame)?.total_number.to_string()
        }
        OpCode::WhoAmI => {
            let got: WhoAmIResponse = decode(frame)?;
            let ids: Vec<String> =
                got.client_info.iter().map(|c| format!("{}:{}", c.auth_scheme, c.user)).collect();
            format!("[{}]", ids.join(", "))
        }
        OpCode::Multi | OpCode::MultiRead => multi(&decode(frame)?, sessions),
        OpCode::Reconfig => {
            let got: GetDataResponse = decode(frame)?;
            format!("{} {}", data(&got.data), stat(&got.stat, sessions))
        }
        _ => return empty(frame),
    })
}

/// Ops whose reply has no body: any bytes are worth seeing.
fn empty(frame: &ZkFrame) -> Result<String, String> {
    Ok(if frame.body.is_empty() { String::new() } else { format!("+{}B", frame.body.len()) })
}

fn multi(response: &MultiResponse, sessions: &Sessions) -> String {
    let results: Vec<String> = response
        .results
        .iter()
        .map(|result| match result {
            MultiResult::Create(created) => format!("Create {}", created.path),
            MultiResult::Create2(created) => {
                format!("Create2 {} {}", created.path, stat(&created.stat, sessions))
            }
            MultiResult::Delete => "Delete".to_owned(),
            MultiResult::SetData(set) => format!("SetData {}", stat(&set.stat, sessions)),
            MultiResult::Check => "Check".to_owned(),
            MultiResult::GetChildren(got) => {
                format!("GetChildren {}", sorted(got.children.clone()))
            }
            MultiResult::GetData(got) => {
                format!("GetData {} {}", data(&got.data), stat(&got.stat, sessions))
            }
            MultiResult::Error(error) => format!("Error {}", error_name(error.err)),
        })
        .collect();
    format!("[{}]", results.join("; "))
}

fn sorted(mut names: Vec<String>) -> String {
    names.sort();
    format!("[{}]", names.join(", "))
}

fn data(data: &Option<Bytes>) -> String {
    match data {
        None => "null".to_owned(),
        Some(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
    }
}

fn acls(acls: &[Acl]) -> String {
    let acls: Vec<String> = acls
        .iter()
        .map(|acl| format!("{}:{}={}", acl.id.scheme, acl.id.id, perm_letters(acl.perms)))
        .collect();
    format!("[{}]", acls.join(", "))
}

fn perm_letters(bits: i32) -> String {
    let letters = [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ];
    let mut text: String =
        letters.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, letter)| *letter).collect();
    if bits & !perms::ALL != 0 {
        text.push_str(&format!("+{:#x}", bits & !perms::ALL));
    }
    text
}

/// A stat with its versions and counts as they are, zxids as relations to czxid, and
/// times as `now` when they are within a day of this machine's clock.
pub fn stat(stat: &Stat, sessions: &Sessions) -> String {
    let relation = |zxid: i64| match zxid.cmp(&stat.czxid) {
        std::cmp::Ordering::Equal => "=c",
        std::cmp::Ordering::Greater => ">c",
        std::cmp::Ordering::Less => "<c",
    };
    // A new node's mtime is its ctime; after a change it may still be in the same ms.
    let mtime = match (stat.version, stat.mtime.cmp(&stat.ctime)) {
        (0, std::cmp::Ordering::Equal)
        | (1.., std::cmp::Ordering::Equal | std::cmp::Ordering::Greater) => "",
        _ => " mtime-odd",
    };
    format!(
        "{{c{} m{} p{} ctime={}{mtime} v{} cv{} av{} owner={} len={} kids={}}}",
        if stat.czxid > 0 { ">0" } else { "=0" },
        relation(stat.mzxid),
        relation(stat.pzxid),
        time(stat.ctime),
        stat.version,
        stat.cversion,
        stat.aversion,
        sessions.owner(stat.ephemeral_owner),
        stat.data_length,
        stat.num_children,
    )
}

fn time(ms: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    const DAY_MS: i64 = 24 * 3600 * 1000;
    if (now - ms).abs() < DAY_MS { "now".to_owned() } else { ms.to_string() }
}
