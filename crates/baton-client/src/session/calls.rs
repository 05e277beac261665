//! The tree operations of a [`Session`], with the results of [`crate::Client`]'s, and
//! the variants that also set a watch.

use baton_api::auth::Credential;
use baton_api::{
    convert,
    pb::{self, reply::Result as Outcome, request::Op},
    session::{persistent_kind_to_pb, remove_kind_to_pb},
    status::ErrorCode,
};
use baton_znode::{
    Acl, CreateMode, CreateOp, DeleteOp, Id, MultiOp, OpResult, SetDataOp, Stat,
    watch::{RemoveKind, SpecKind},
};
use bytes::Bytes;

use super::{PersistentWatch, Session, Watch, handshake::with_session, request::WatchIntent};
use crate::{ClientError, CreateOptions};

impl Session {
    /// Creates a znode and returns the path created (with the sequence suffix for the
    /// sequential modes). Ephemeral nodes belong to this session.
    pub async fn create(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        mode: CreateMode,
    ) -> Result<String, ClientError> {
        Ok(self.create_with(path, data, CreateOptions::mode(mode)).await?.0)
    }

    /// Creates a znode with the given mode and TTL; returns the path created and its Stat.
    pub async fn create_with(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        options: CreateOptions,
    ) -> Result<(String, Stat), ClientError> {
        let op = CreateOp {
            acl: options.acl,
            path: path.to_owned(),
            data: data.into(),
            mode: options.mode,
            ttl_ms: options.ttl_ms,
        };
        let request = convert::create_op_to_pb(op, self.session_id());
        match self.outcome(Op::Create(request), WatchIntent::None).await? {
            Outcome::Create(created) => {
                let stat = required_stat(created.stat.as_ref(), &created.path)?;
                Ok((created.path, stat))
            }
            other => Err(unexpected("create", &other)),
        }
    }

    /// A node's ACL and Stat (READ or ADMIN needed; digests masked without ADMIN).
    pub async fn get_acl(&self, path: &str) -> Result<(Acl, Stat), ClientError> {
        let request = pb::GetAclRequest { path: path.to_owned() };
        match self.outcome(Op::GetAcl(request), WatchIntent::None).await? {
            Outcome::GetAcl(got) => {
                let acl = convert::acl_from_pb(got.acl, path)
                    .map_err(|s| ClientError::from_status(&s, ""))?;
                Ok((acl, required_stat(got.stat.as_ref(), path)?))
            }
            other => Err(unexpected("get_acl", &other)),
        }
    }

    /// Replaces a node's ACL if its ACL version is `version` (-1 = any); needs ADMIN.
    pub async fn set_acl(&self, path: &str, acl: &Acl, version: i32) -> Result<Stat, ClientError> {
        let request =
            pb::SetAclRequest { path: path.to_owned(), acl: convert::acl_to_pb(acl), version };
        match self.outcome(Op::SetAcl(request), WatchIntent::None).await? {
            Outcome::SetAcl(set) => required_stat(set.stat.as_ref(), path),
            other => Err(unexpected("set_acl", &other)),
        }
    }

    /// Adds what `credential` proves to the session's identities (ZooKeeper's
    /// addAuthInfo); kept for reconnects. Wrong credentials fail with `AUTH_FAILED`
    /// and the session gains nothing.
    pub async fn add_auth(&self, credential: Credential) -> Result<(), ClientError> {
        match self.outcome(Op::AddAuth(credential.to_pb()), WatchIntent::None).await? {
            Outcome::Empty(_) => {
                self.inner.shared.add_credential(credential);
                Ok(())
            }
            other => Err(unexpected("add_auth", &other)),
        }
    }

    /// The identities the session's requests run with (a digest shows its user only).
    pub async fn who_am_i(&self) -> Result<Vec<Id>, ClientError> {
        match self.outcome(Op::WhoAmI(pb::WhoAmIRequest {}), WatchIntent::None).await? {
            Outcome::WhoAmI(who) => {
                Ok(who.identities.into_iter().map(|i| Id { scheme: i.scheme, id: i.id }).collect())
            }
            other => Err(unexpected("who_am_i", &other)),
        }
    }

    /// Deletes a znode without children if its version is `version` (-1 = any).
    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ClientError> {
        let request = convert::delete_op_to_pb(DeleteOp { path: path.to_owned(), version });
        match self.outcome(Op::Delete(request), WatchIntent::None).await? {
            Outcome::Delete(_) | Outcome::Empty(_) => Ok(()),
            other => Err(unexpected("delete", &other)),
        }
    }

    /// The Stat of a znode, or `None` when it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, ClientError> {
        self.exists_inner(path, WatchIntent::None).await
    }

    /// As [`Session::exists`], and sets a one-shot watch that fires when the node is
    /// created (if missing), or changed or deleted (if present).
    pub async fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, Watch), ClientError> {
        let (tx, watch) = Watch::new(path);
        let intent = WatchIntent::OneShot { path: path.to_owned(), kind: SpecKind::Exists, tx };
        Ok((self.exists_inner(path, intent).await?, watch))
    }

    async fn exists_inner(
        &self,
        path: &str,
        intent: WatchIntent,
    ) -> Result<Option<Stat>, ClientError> {
        let request = pb::ExistsRequest { path: path.to_owned(), linearizable: false };
        match self.outcome(Op::Exists(request), intent).await? {
            Outcome::Exists(found) => Ok(found.stat.as_ref().map(convert::stat_from_pb)),
            other => Err(unexpected("exists", &other)),
        }
    }

    /// The data and Stat of a znode.
    pub async fn get(&self, path: &str) -> Result<(Bytes, Stat), ClientError> {
        self.get_inner(path, WatchIntent::None).await
    }

    /// As [`Session::get`], and sets a one-shot watch that fires when the node's data
    /// changes or the node is deleted. A missing node is `NO_NODE` and sets no watch
    /// (use [`Session::exists_watch`] to wait for a creation).
    pub async fn get_watch(&self, path: &str) -> Result<(Bytes, Stat, Watch), ClientError> {
        let (tx, watch) = Watch::new(path);
        let intent = WatchIntent::OneShot { path: path.to_owned(), kind: SpecKind::Data, tx };
        let (data, stat) = self.get_inner(path, intent).await?;
        Ok((data, stat, watch))
    }

    async fn get_inner(
        &self,
        path: &str,
        intent: WatchIntent,
    ) -> Result<(Bytes, Stat), ClientError> {
        let request = pb::GetRequest { path: path.to_owned(), linearizable: false };
        match self.outcome(Op::Get(request), intent).await? {
            Outcome::Get(got) => Ok((got.data, required_stat(got.stat.as_ref(), path)?)),
            other => Err(unexpected("get", &other)),
        }
    }

    /// Replaces the data of a znode if its version is `version` (-1 = any); returns the
    /// new Stat.
    pub async fn set(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: i32,
    ) -> Result<Stat, ClientError> {
        let request =
            convert::set_op_to_pb(SetDataOp { path: path.to_owned(), data: data.into(), version });
        match self.outcome(Op::Set(request), WatchIntent::None).await? {
            Outcome::Set(set) => required_stat(set.stat.as_ref(), path),
            other => Err(unexpected("set", &other)),
        }
    }

    /// The names (not paths) of a znode's children, sorted, and its Stat.
    pub async fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ClientError> {
        self.children_inner(path, WatchIntent::None).await
    }

    /// As [`Session::children`], and sets a one-shot watch that fires when a child is
    /// added or removed, or the node is deleted.
    pub async fn children_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, Stat, Watch), ClientError> {
        let (tx, watch) = Watch::new(path);
        let intent = WatchIntent::OneShot { path: path.to_owned(), kind: SpecKind::Child, tx };
        let (children, stat) = self.children_inner(path, intent).await?;
        Ok((children, stat, watch))
    }

    async fn children_inner(
        &self,
        path: &str,
        intent: WatchIntent,
    ) -> Result<(Vec<String>, Stat), ClientError> {
        let request = pb::ChildrenRequest { path: path.to_owned(), linearizable: false };
        match self.outcome(Op::Children(request), intent).await? {
            Outcome::Children(listed) => {
                Ok((listed.children, required_stat(listed.stat.as_ref(), path)?))
            }
            other => Err(unexpected("children", &other)),
        }
    }

    /// Applies `ops` atomically; one result per op, in order. On failure nothing changed
    /// and the error's `op_index` names the op that failed. Creates in it belong to this
    /// session.
    pub async fn multi(&self, ops: Vec<MultiOp>) -> Result<Vec<OpResult>, ClientError> {
        let session_id = self.session_id();
        let ops = ops.into_iter().map(|op| convert::multi_op_to_pb(op, session_id)).collect();
        match self.outcome(Op::Multi(pb::MultiRequest { ops }), WatchIntent::None).await? {
            Outcome::Multi(done) => done
                .results
                .into_iter()
                .map(|result| {
                    convert::op_result_from_pb(result).map_err(|s| ClientError::from_status(&s, ""))
                })
                .collect(),
            other => Err(unexpected("multi", &other)),
        }
    }

    /// Waits until the server has applied every change committed before the call; returns
    /// the zxid the server had applied then.
    pub async fn sync(&self, path: &str) -> Result<u64, ClientError> {
        let request = pb::SyncRequest { path: path.to_owned() };
        let zxid_before = self.last_zxid();
        match self.outcome(Op::Sync(request), WatchIntent::None).await? {
            Outcome::Sync(synced) => Ok(synced.header.map_or(zxid_before, |h| h.zxid)),
            other => Err(unexpected("sync", &other)),
        }
    }

    /// Sets a persistent watch on `path` (ZooKeeper's addWatch): with `recursive`, the
    /// created, deleted and data-changed events of `path` and every path below it;
    /// without, every event of `path` itself (children changed included). It stays until
    /// removed, and is set again on every resume.
    pub async fn add_watch(
        &self,
        path: &str,
        recursive: bool,
    ) -> Result<PersistentWatch, ClientError> {
        let (sink, watch) =
            PersistentWatch::new(path, recursive, self.inner.options.watch_events_max);
        let request = pb::AddWatchRequest {
            path: path.to_owned(),
            kind: persistent_kind_to_pb(recursive) as i32,
        };
        let intent = WatchIntent::Persistent { path: path.to_owned(), recursive, sink };
        match self.outcome(Op::AddWatch(request), intent).await? {
            Outcome::Empty(_) => Ok(watch),
            other => Err(unexpected("add_watch", &other)),
        }
    }

    /// Removes this session's watches of kind `which` on `path`, here and on the server.
    /// One-shot watches removed end with [`ClientError::WatchRemoved`]; persistent ones
    /// end their stream. The server's answer (e.g. that there was no such watch) is
    /// returned; the watches are removed here either way.
    pub async fn remove_watch(&self, path: &str, which: RemoveKind) -> Result<(), ClientError> {
        let request = pb::RemoveWatchRequest {
            path: path.to_owned(),
            kind: remove_kind_to_pb(which) as i32,
            check_only: false,
        };
        let intent = WatchIntent::Remove { path: path.to_owned(), which };
        match self.outcome(Op::RemoveWatch(request), intent).await? {
            Outcome::Empty(_) => Ok(()),
            other => Err(unexpected("remove_watch", &other)),
        }
    }

    /// Sends a request and returns what its reply holds; a failed reply is its error.
    pub(super) async fn outcome(
        &self,
        op: Op,
        intent: WatchIntent,
    ) -> Result<Outcome, ClientError> {
        let reply = self.call(op, intent).await?;
        match reply.result {
            Some(Outcome::Error(error)) => Err(self.reply_error(error)),
            Some(outcome) => Ok(outcome),
            None => Err(malformed("a reply with no result")),
        }
    }

    /// The error of a failed reply; a session-ending code names this session.
    fn reply_error(&self, error: pb::Error) -> ClientError {
        let code = ErrorCode::try_from(error.code).unwrap_or(ErrorCode::SystemError);
        let error = match code {
            ErrorCode::SessionExpired => {
                ClientError::SessionExpired { session_id: 0, message: error.message }
            }
            ErrorCode::AuthFailed => {
                ClientError::AuthFailed { session_id: 0, message: error.message }
            }
            _ => ClientError::from_pb(error, &self.endpoint()),
        };
        with_session(error, self.session_id())
    }
}

/// The Stat a reply must carry; its absence is a broken server, reported as such.
fn required_stat(stat: Option<&pb::Stat>, path: &str) -> Result<Stat, ClientError> {
    convert::required_stat_from_pb(stat, path).map_err(|s| ClientError::from_status(&s, ""))
}

fn unexpected(call: &str, outcome: &Outcome) -> ClientError {
    let kind = match outcome {
        Outcome::Error(_) => "error",
        Outcome::Create(_) => "create",
        Outcome::Delete(_) => "delete",
        Outcome::Exists(_) => "exists",
        Outcome::Get(_) => "get",
        Outcome::Set(_) => "set",
        Outcome::Children(_) => "children",
        Outcome::Multi(_) => "multi",
        Outcome::Sync(_) => "sync",
        Outcome::Empty(_) => "empty",
        Outcome::GetAcl(_) => "get_acl",
        Outcome::SetAcl(_) => "set_acl",
        Outcome::WhoAmI(_) => "who_am_i",
        Outcome::GetEphemerals(_) => "get_ephemerals",
        Outcome::CountDescendants(_) => "count_descendants",
    };
    malformed(&format!("a {kind} result answering {call}"))
}

fn malformed(what: &str) -> ClientError {
    ClientError::Api {
        code: ErrorCode::SystemError,
        message: format!("malformed reply: {what}"),
        path: String::new(),
        op_index: None,
    }
}
