//! The fake session server's tree and watches: just enough of the real semantics
//! (parents, versions, sequential names, ephemerals, one-shot and persistent watches,
//! the events a resume missed) to test the client's session against.

use std::collections::{BTreeMap, BTreeSet};

use baton_api::{
    convert::stat_to_pb,
    pb::{self, reply::Result as Outcome, request::Op},
    status::{error_from_status, znode_error_status},
};
use baton_znode::{Stat, ZnodeError};
use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Data,
    Child,
    Persistent,
    Recursive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created = 1,
    Deleted = 2,
    DataChanged = 3,
    ChildrenChanged = 4,
}

#[derive(Debug, Clone, Default)]
struct Node {
    data: Bytes,
    stat: Stat,
}

/// Events to send: (session, event).
pub type Fired = Vec<(u64, pb::WatchEvent)>;

#[derive(Debug)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    pub zxid: u64,
    watches: BTreeSet<(u64, String, Kind)>,
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

fn fail(error: ZnodeError) -> Outcome {
    Outcome::Error(error_from_status(&znode_error_status(&error)))
}

fn header(zxid: u64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader { zxid })
}

impl Tree {
    pub fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_owned(), Node::default());
        Tree { nodes, zxid: 0, watches: BTreeSet::new() }
    }

    pub fn paths(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    fn children(&self, path: &str) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|p| parent(p) == Some(path))
            .map(|p| p.rsplit('/').next().unwrap_or_default().to_owned())
            .collect()
    }

    fn stat(&self, path: &str) -> Option<pb::Stat> {
        let node = self.nodes.get(path)?;
        let mut stat = node.stat;
        stat.num_children = self.children(path).len() as u32;
        stat.data_length = node.data.len() as u32;
        Some(stat_to_pb(&stat))
    }

    pub fn watch(&mut self, session: u64, path: &str, kind: Kind) {
        self.watches.insert((session, path.to_owned(), kind));
    }

    /// Runs one request of `session`; returns the events it fired and the outcome.
    pub fn apply(&mut self, session: u64, op: Op, watch: bool) -> (Fired, Outcome) {
        let mut fired = Vec::new();
        let outcome = match op {
            Op::Create(r) => self.create(session, r, &mut fired),
            Op::Delete(r) => self.delete(&r.path, r.version, &mut fired),
            Op::Set(r) => self.set(r, &mut fired),
            Op::Exists(r) => {
                if watch {
                    self.watch(session, &r.path, Kind::Data);
                }
                let stat = self.stat(&r.path);
                Outcome::Exists(pb::ExistsResponse { header: header(self.zxid), stat })
            }
            Op::Get(r) => match self.stat(&r.path) {
                None => fail(ZnodeError::NoNode { path: r.path }),
                Some(stat) => {
                    if watch {
                        self.watch(session, &r.path, Kind::Data);
                    }
                    let data = self.nodes[&r.path].data.clone();
                    Outcome::Get(pb::GetResponse {
                        header: header(self.zxid),
                        data,
                        stat: Some(stat),
                    })
                }
            },
            Op::Children(r) => match self.stat(&r.path) {
                None => fail(ZnodeError::NoNode { path: r.path }),
                Some(stat) => {
                    if watch {
                        self.watch(session, &r.path, Kind::Child);
                    }
                    let children = self.children(&r.path);
                    Outcome::Children(pb::ChildrenResponse {
                        header: header(self.zxid),
                        children,
                        stat: Some(stat),
                    })
                }
            },
            Op::Sync(r) => {
                Outcome::Sync(pb::SyncResponse { header: header(self.zxid), path: r.path })
            }
            Op::AddWatch(r) => {
                let kind = if r.kind == pb::WatchKind::PersistentRecursive as i32 {
                    Kind::Recursive
                } else {
                    Kind::Persistent
                };
                self.watch(session, &r.path, kind);
                Outcome::Empty(pb::EmptyResponse { header: header(self.zxid) })
            }
            Op::RemoveWatch(r) => {
                self.watches.retain(|(s, p, _)| !(*s == session && *p == r.path));
                Outcome::Empty(pb::EmptyResponse { header: header(self.zxid) })
            }
            Op::Ping(_) => Outcome::Empty(pb::EmptyResponse { header: header(self.zxid) }),
            Op::Close(_) => {
                fired = self.end_session(session);
                Outcome::Empty(pb::EmptyResponse { header: header(self.zxid) })
            }
            Op::Multi(_) => fail(ZnodeError::BadArguments {
                path: String::new(),
                reason: "the fake has no multi".into(),
            }),
        };
        (fired, outcome)
    }

    fn create(&mut self, session: u64, r: pb::CreateRequest, fired: &mut Fired) -> Outcome {
        let Some(parent_path) = parent(&r.path).map(str::to_owned) else {
            return fail(ZnodeError::NodeExists { path: r.path });
        };
        let Some(parent_node) = self.nodes.get(&parent_path) else {
            return fail(ZnodeError::NoNode { path: parent_path });
        };
        let mode = pb::CreateMode::try_from(r.mode).unwrap_or(pb::CreateMode::Persistent);
        let sequential = matches!(
            mode,
            pb::CreateMode::PersistentSequential | pb::CreateMode::EphemeralSequential
        );
        let ephemeral =
            matches!(mode, pb::CreateMode::Ephemeral | pb::CreateMode::EphemeralSequential);
        let path = if sequential {
            format!("{}{:010}", r.path, parent_node.stat.cversion)
        } else {
            r.path.clone()
        };
        if self.nodes.contains_key(&path) {
            return fail(ZnodeError::NodeExists { path });
        }
        self.zxid += 1;
        let zxid = self.zxid;
        if let Some(parent_node) = self.nodes.get_mut(&parent_path) {
            parent_node.stat.cversion += 1;
            parent_node.stat.pzxid = zxid;
        }
        let owner = if ephemeral { session } else { 0 };
        let stat = Stat {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ephemeral_owner: owner,
            ..Stat::default()
        };
        self.nodes.insert(path.clone(), Node { data: r.data, stat });
        fired.extend(self.fire(&path, Change::Created));
        fired.extend(self.fire(&parent_path, Change::ChildrenChanged));
        let stat = self.stat(&path);
        Outcome::Create(pb::CreateResponse { header: header(zxid), path, stat })
    }

    fn delete(&mut self, path: &str, version: i32, fired: &mut Fired) -> Outcome {
        let Some(node) = self.nodes.get(path) else {
            return fail(ZnodeError::NoNode { path: path.to_owned() });
        };
        if version != -1 && version != node.stat.version {
            let actual = node.stat.version;
            return fail(ZnodeError::BadVersion {
                path: path.to_owned(),
                expected: version,
                actual,
            });
        }
        if !self.children(path).is_empty() {
            return fail(ZnodeError::NotEmpty { path: path.to_owned() });
        }
        self.nodes.remove(path);
        self.zxid += 1;
        let zxid = self.zxid;
        let parent_path = parent(path).unwrap_or("/").to_owned();
        if let Some(parent_node) = self.nodes.get_mut(&parent_path) {
            parent_node.stat.cversion += 1;
            parent_node.stat.pzxid = zxid;
        }
        fired.extend(self.fire(path, Change::Deleted));
        fired.extend(self.fire(&parent_path, Change::ChildrenChanged));
        Outcome::Delete(pb::DeleteResponse { header: header(zxid) })
    }

    fn set(&mut self, r: pb::SetRequest, fired: &mut Fired) -> Outcome {
        let Some(node) = self.nodes.get_mut(&r.path) else {
            return fail(ZnodeError::NoNode { path: r.path });
        };
        if r.version != -1 && r.version != node.stat.version {
            let actual = node.stat.version;
            return fail(ZnodeError::BadVersion { path: r.path, expected: r.version, actual });
        }
        self.zxid += 1;
        node.stat.version += 1;
        node.stat.mzxid = self.zxid;
        node.data = r.data;
        fired.extend(self.fire(&r.path, Change::DataChanged));
        let stat = self.stat(&r.path);
        Outcome::Set(pb::SetResponse { header: header(self.zxid), stat })
    }

    /// Deletes a session's ephemerals and forgets its watches; returns the events.
    pub fn end_session(&mut self, session: u64) -> Fired {
        self.watches.retain(|(s, _, _)| *s != session);
        let owned: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.stat.ephemeral_owner == session)
            .map(|(p, _)| p.clone())
            .collect();
        let mut fired = Vec::new();
        for path in owned {
            self.delete(&path, -1, &mut fired);
        }
        fired
    }

    /// One event per watching session for a change, removing fired one-shot watches.
    fn fire(&mut self, path: &str, change: Change) -> Fired {
        let one_shot: &[Kind] = match change {
            Change::Created | Change::DataChanged => &[Kind::Data],
            Change::Deleted => &[Kind::Data, Kind::Child],
            Change::ChildrenChanged => &[Kind::Child],
        };
        let mut sessions = BTreeSet::new();
        self.watches.retain(|(s, p, k)| {
            let fires = p == path && one_shot.contains(k);
            if fires {
                sessions.insert(*s);
            }
            !fires
        });
        for (s, p, k) in &self.watches {
            let below = p == "/" || path == p || path.starts_with(&format!("{p}/"));
            let fires = match k {
                Kind::Persistent => p == path,
                Kind::Recursive => below && change != Change::ChildrenChanged,
                Kind::Data | Kind::Child => false,
            };
            if fires {
                sessions.insert(*s);
            }
        }
        let event =
            pb::WatchEvent { r#type: change as i32, path: path.to_owned(), zxid: self.zxid };
        sessions.into_iter().map(|s| (s, event.clone())).collect()
    }

    /// Sets a resuming session's watches again and returns the events it missed since
    /// `last_zxid` (the rules of `baton_znode::watch::WatchRegistry::reregister`).
    pub fn resume(
        &mut self,
        session: u64,
        last_zxid: u64,
        specs: &[pb::WatchSpec],
    ) -> Vec<pb::WatchEvent> {
        let mut missed = Vec::new();
        for spec in specs {
            let stat = self.nodes.get(&spec.path).map(|n| n.stat);
            let after = |z: u64| z > last_zxid;
            let kind = pb::WatchKind::try_from(spec.kind).unwrap_or(pb::WatchKind::Data);
            let change = match (kind, stat) {
                (pb::WatchKind::Data, None) | (pb::WatchKind::Child, None) => Some(Change::Deleted),
                (pb::WatchKind::Data, Some(s)) if after(s.mzxid) => Some(Change::DataChanged),
                (pb::WatchKind::Exists, Some(_)) => Some(Change::Created),
                (pb::WatchKind::Child, Some(s)) if after(s.pzxid) => Some(Change::ChildrenChanged),
                _ => None,
            };
            if let Some(change) = change {
                missed.push(pb::WatchEvent {
                    r#type: change as i32,
                    path: spec.path.clone(),
                    zxid: self.zxid,
                });
            }
            let persistent =
                matches!(kind, pb::WatchKind::Persistent | pb::WatchKind::PersistentRecursive);
            let registered = match kind {
                pb::WatchKind::Child => Kind::Child,
                pb::WatchKind::Persistent => Kind::Persistent,
                pb::WatchKind::PersistentRecursive => Kind::Recursive,
                _ => Kind::Data,
            };
            if change.is_none() || persistent {
                self.watch(session, &spec.path, registered);
            }
        }
        missed
    }
}
