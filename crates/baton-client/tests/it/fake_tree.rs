//! The fakes' tree: a real `baton_znode::DataTree` and `WatchRegistry`, changed only by
//! txns as the server changes its own (validated, numbered, applied in zxid order,
//! watches triggered by what the txn changed). The fakes add only what they script
//! (refusals, lag, stalls, lost answers); the znode and watch rules are the real ones.
//!
//! What the fakes need on top: the answer to one request of a session's stream
//! ([`FakeTree::session_request`]), as the server's session connection gives it.

use std::time::{SystemTime, UNIX_EPOCH};

use baton_api::{
    convert,
    pb::{self, reply::Result as Outcome, request::Op},
    session::{persistent_kind_from_pb, remove_kind_from_pb, watch_spec_from_pb},
    status::{ErrorCode, error_from_status, error_status, txn_error_status, znode_error_status},
};
use baton_znode::{
    DataTree, Limits, OpResult, Txn, TxnError, TxnOp, ZnodeError, validate_op, validate_path,
    watch::{WatchEvent, WatchKind, WatchLimits, WatchRegistry, WatchSpec},
};
use tonic::Status;

/// Events to send: (session, event).
pub type Fired = Vec<(u64, WatchEvent)>;

#[derive(Debug)]
pub struct FakeTree {
    tree: DataTree,
    watches: WatchRegistry,
}

impl FakeTree {
    pub fn new() -> FakeTree {
        FakeTree { tree: DataTree::new(), watches: WatchRegistry::new(WatchLimits::default()) }
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The zxid of the last txn applied.
    pub fn zxid(&self) -> u64 {
        self.tree.last_zxid()
    }

    /// Every path in the tree (the reserved `/baton` included), sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        let mut stack = vec!["/".to_owned()];
        while let Some(path) = stack.pop() {
            if let Ok((children, _)) = self.tree.children(&path) {
                let base = if path == "/" { String::new() } else { path.clone() };
                stack.extend(children.iter().map(|name| format!("{base}/{name}")));
            }
            paths.push(path);
        }
        paths.sort();
        paths
    }

    /// Runs `op` for `session` as the next txn, as the server's write path does:
    /// validated first (an invalid op never becomes a txn), then numbered, stamped with
    /// the time and applied; the watches it fires are returned with the result.
    pub fn write(&mut self, session: u64, op: TxnOp) -> (Result<(OpResult, u64), TxnError>, Fired) {
        if let Err(error) = validate_op(&op, &Limits::default()) {
            return (Err(error), Vec::new());
        }
        let zxid = self.tree.last_zxid() + 1;
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let txn = Txn {
            auth: baton_znode::acl::Auth::none(),
            zxid,
            time_ms: time_ms as i64,
            session,
            op,
        };
        if let TxnOp::CloseSession { session } = &txn.op {
            // As the server: a closed session's watches go before its ephemerals'
            // deletions fire anything.
            self.watches.remove_watcher(*session);
        }
        match self.tree.apply(&txn) {
            Ok(applied) => {
                let fired = self.watches.trigger(&applied.changes, zxid);
                (Ok((applied.result, zxid)), fired)
            }
            Err(error) => (Err(error), Vec::new()),
        }
    }

    /// Opens a session in the tree (its ephemerals need it).
    pub fn open_session(&mut self, session: u64, timeout_ms: u32) {
        let op = TxnOp::CreateSession { session, timeout_ms, password: session };
        let (result, _) = self.write(session, op);
        result.expect("a new session opens");
    }

    /// Closes a session: its watches go, its ephemerals are deleted; the events.
    pub fn close_session(&mut self, session: u64) -> Fired {
        let (_, fired) = self.write(session, TxnOp::CloseSession { session });
        fired
    }

    /// Sets a resuming session's watches again; the events it missed since
    /// `last_zxid` (the registry's `reregister`).
    pub fn resume(
        &mut self,
        session: u64,
        last_zxid: u64,
        specs: &[pb::WatchSpec],
    ) -> Result<Vec<WatchEvent>, Status> {
        let specs =
            specs.iter().cloned().map(watch_spec_from_pb).collect::<Result<Vec<WatchSpec>, _>>()?;
        self.watches
            .reregister(&self.tree, session, last_zxid, &specs)
            .map_err(|e| error_status(ErrorCode::BadArguments, e.to_string(), "", None))
    }

    /// Answers one request of `session`'s stream (`watch`: set the read's watch), as the
    /// server's session connection does; returns the events it fired and the outcome.
    pub fn session_request(&mut self, session: u64, op: Op, watch: bool) -> (Fired, Outcome) {
        match op {
            Op::Create(create) => match convert::create_op_from_pb(create) {
                Ok(op) => self.write_outcome(session, TxnOp::Create(op)),
                Err(status) => (Vec::new(), fail(&status)),
            },
            Op::Delete(delete) => {
                self.write_outcome(session, TxnOp::Delete(convert::delete_op_from_pb(delete)))
            }
            Op::Set(set) => {
                self.write_outcome(session, TxnOp::SetData(convert::set_op_from_pb(set)))
            }
            Op::Multi(multi) => match convert::multi_ops_from_pb(multi) {
                Ok(ops) => self.write_outcome(session, TxnOp::Multi(ops)),
                Err(status) => (Vec::new(), fail(&status)),
            },
            Op::Close(_) => self.write_outcome(session, TxnOp::CloseSession { session }),
            Op::Sync(sync) => {
                let zxid = self.zxid();
                (
                    Vec::new(),
                    Outcome::Sync(pb::SyncResponse { header: header(zxid), path: sync.path }),
                )
            }
            read => {
                let outcome =
                    self.read(session, read, watch).unwrap_or_else(|status| fail(&status));
                (Vec::new(), outcome)
            }
        }
    }

    fn write_outcome(&mut self, session: u64, op: TxnOp) -> (Fired, Outcome) {
        let (result, fired) = self.write(session, op);
        let outcome = match result {
            Err(error) => fail(&txn_error_status(&error)),
            Ok((OpResult::Created { path, stat }, zxid)) => Outcome::Create(pb::CreateResponse {
                header: header(zxid),
                path,
                stat: Some(convert::stat_to_pb(&stat)),
            }),
            Ok((OpResult::Deleted, zxid)) => {
                Outcome::Delete(pb::DeleteResponse { header: header(zxid) })
            }
            Ok((OpResult::SetData { stat }, zxid)) => Outcome::Set(pb::SetResponse {
                header: header(zxid),
                stat: Some(convert::stat_to_pb(&stat)),
            }),
            Ok((OpResult::Multi(results), zxid)) => Outcome::Multi(pb::MultiResponse {
                header: header(zxid),
                results: results.iter().map(convert::op_result_to_pb).collect(),
            }),
            Ok((_, zxid)) => Outcome::Empty(pb::EmptyResponse { header: header(zxid) }),
        };
        (fired, outcome)
    }

    fn read(&mut self, session: u64, op: Op, watch: bool) -> Result<Outcome, Status> {
        let zxid = self.zxid();
        let znode = |e: ZnodeError| znode_error_status(&e);
        let mut set_watch = |path: &str, kind: WatchKind| -> Result<(), Status> {
            if watch {
                self.watches
                    .add(session, path, kind)
                    .map_err(|e| baton_api::status::watch_error_status(&e))?;
            }
            Ok(())
        };
        Ok(match op {
            Op::Get(get) => {
                let (data, stat) = self.tree.get(&get.path).map_err(znode)?;
                set_watch(&get.path, WatchKind::Data)?;
                let stat = Some(convert::stat_to_pb(&stat));
                Outcome::Get(pb::GetResponse { header: header(zxid), data, stat })
            }
            Op::Exists(exists) => {
                let stat = self.tree.stat(&exists.path).map_err(znode)?;
                set_watch(&exists.path, WatchKind::Data)?;
                let stat = stat.as_ref().map(convert::stat_to_pb);
                Outcome::Exists(pb::ExistsResponse { header: header(zxid), stat })
            }
            Op::Children(children) => {
                let (names, stat) = self.tree.children(&children.path).map_err(znode)?;
                set_watch(&children.path, WatchKind::Child)?;
                let stat = Some(convert::stat_to_pb(&stat));
                Outcome::Children(pb::ChildrenResponse {
                    header: header(zxid),
                    children: names,
                    stat,
                })
            }
            Op::AddWatch(add) => {
                validate_path(&add.path).map_err(znode)?;
                let kind = persistent_kind_from_pb(add.kind)?;
                self.watches
                    .add(session, &add.path, kind)
                    .map_err(|e| baton_api::status::watch_error_status(&e))?;
                Outcome::Empty(pb::EmptyResponse { header: header(zxid) })
            }
            Op::RemoveWatch(remove) => {
                let which = remove_kind_from_pb(remove.kind)?;
                self.watches
                    .remove(session, &remove.path, which)
                    .map_err(|e| baton_api::status::watch_error_status(&e))?;
                Outcome::Empty(pb::EmptyResponse { header: header(zxid) })
            }
            Op::Ping(_) => Outcome::Empty(pb::EmptyResponse { header: header(zxid) }),
            // Access control is tested against the real server.
            Op::GetAcl(_) | Op::SetAcl(_) | Op::AddAuth(_) | Op::WhoAmI(_) => fail(&no_acl()),
            // The client does not send these (ZooKeeper-protocol ops, tested on the server).
            Op::SetWatches(_) | Op::GetEphemerals(_) | Op::CountDescendants(_) => fail(&no_acl()),
            Op::Create(_)
            | Op::Delete(_)
            | Op::Set(_)
            | Op::Multi(_)
            | Op::Sync(_)
            | Op::Close(_) => {
                unreachable!("writes are not reads")
            }
        })
    }
}

/// What the fake answers to access-control calls: it has none.
pub fn no_acl() -> Status {
    baton_api::status::error_status(
        baton_api::status::ErrorCode::Unimplemented,
        "the fake server has no access control",
        "",
        None,
    )
}

pub fn header(zxid: u64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader { zxid })
}

fn fail(status: &Status) -> Outcome {
    Outcome::Error(error_from_status(status))
}
