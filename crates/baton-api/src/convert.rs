//! Conversions between `baton.v1` messages and baton-znode domain types, both ways.
//!
//! Requests → domain ops are for the server; domain ops → requests are for the client;
//! results go both ways. Only what cannot exist in the domain is rejected here (an unknown
//! enum value, an `Op` or `OpResult` with nothing set, a response missing its Stat); every
//! other check belongs to baton-znode's validation.

use baton_znode::{
    Acl, AclEntry, CheckOp, CreateMode, CreateOp, DeleteOp, Id, MultiOp, OpResult, Perms,
    QuotaLimits, QuotaUsage, SetAclOp, SetDataOp, Stat, TxnError, ZnodeError, acl::open_acl,
};
use tonic::Status;

use crate::{
    pb,
    status::{ErrorCode, error_status, txn_error_status, znode_error_status},
};

pub fn stat_to_pb(stat: &Stat) -> pb::Stat {
    pb::Stat {
        czxid: stat.czxid,
        mzxid: stat.mzxid,
        pzxid: stat.pzxid,
        ctime: stat.ctime,
        mtime: stat.mtime,
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        ephemeral_owner: stat.ephemeral_owner,
        data_length: stat.data_length,
        num_children: stat.num_children,
    }
}

pub fn stat_from_pb(stat: &pb::Stat) -> Stat {
    Stat {
        czxid: stat.czxid,
        mzxid: stat.mzxid,
        pzxid: stat.pzxid,
        ctime: stat.ctime,
        mtime: stat.mtime,
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        ephemeral_owner: stat.ephemeral_owner,
        data_length: stat.data_length,
        num_children: stat.num_children,
    }
}

/// The Stat of a response in which the proto marks it as always present (Get, Set,
/// Children, Create). A server that leaves it out is broken; the caller gets a
/// `SYSTEM_ERROR` rather than a made-up Stat of zeros.
pub fn required_stat_from_pb(stat: Option<&pb::Stat>, path: &str) -> Result<Stat, Status> {
    stat.map(stat_from_pb).ok_or_else(|| malformed_response(path, "response without a Stat"))
}

pub fn create_mode_to_pb(mode: CreateMode) -> pb::CreateMode {
    match mode {
        CreateMode::Persistent => pb::CreateMode::Persistent,
        CreateMode::Ephemeral => pb::CreateMode::Ephemeral,
        CreateMode::PersistentSequential => pb::CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential => pb::CreateMode::EphemeralSequential,
        CreateMode::Container => pb::CreateMode::Container,
        CreateMode::PersistentWithTtl => pb::CreateMode::PersistentWithTtl,
        CreateMode::PersistentSequentialWithTtl => pb::CreateMode::PersistentSequentialWithTtl,
    }
}

/// The domain mode of a wire value; a value this build does not know is `BAD_ARGUMENTS`.
pub fn create_mode_from_pb(mode: i32) -> Result<CreateMode, Status> {
    // No path to name here, so not through `ZnodeError::BadArguments` (whose message
    // would read "bad arguments for : ...").
    create_mode_at(mode, "").map_err(|_| {
        error_status(ErrorCode::BadArguments, format!("unknown create mode {mode}"), "", None)
    })
}

fn create_mode_at(mode: i32, path: &str) -> Result<CreateMode, ZnodeError> {
    let mode = pb::CreateMode::try_from(mode).map_err(|_| ZnodeError::BadArguments {
        path: path.to_owned(),
        reason: format!("unknown create mode {mode}"),
    })?;
    Ok(match mode {
        pb::CreateMode::Persistent => CreateMode::Persistent,
        pb::CreateMode::Ephemeral => CreateMode::Ephemeral,
        pb::CreateMode::PersistentSequential => CreateMode::PersistentSequential,
        pb::CreateMode::EphemeralSequential => CreateMode::EphemeralSequential,
        pb::CreateMode::Container => CreateMode::Container,
        pb::CreateMode::PersistentWithTtl => CreateMode::PersistentWithTtl,
        pb::CreateMode::PersistentSequentialWithTtl => CreateMode::PersistentSequentialWithTtl,
    })
}

/// A create request as a domain op. `session_id` is not part of the op (the txn carries the
/// session); the server reads it from the request before converting.
pub fn create_op_from_pb(request: pb::CreateRequest) -> Result<CreateOp, Status> {
    create_op(request).map_err(|e| znode_error_status(&e))
}

fn create_op(request: pb::CreateRequest) -> Result<CreateOp, ZnodeError> {
    let mode = create_mode_at(request.mode, &request.path)?;
    let acl = if request.acl.is_empty() { open_acl() } else { acl_at(request.acl, &request.path)? };
    Ok(CreateOp { acl, path: request.path, data: request.data, mode, ttl_ms: request.ttl_ms })
}

/// An ACL as the domain has it; `auth` entries are left for the server to expand
/// (`acl::fixup`). Only permission bits that do not exist are refused here.
pub fn acl_from_pb(acl: Vec<pb::AclEntry>, path: &str) -> Result<Acl, Status> {
    acl_at(acl, path).map_err(|e| znode_error_status(&e))
}

fn acl_at(acl: Vec<pb::AclEntry>, path: &str) -> Result<Acl, ZnodeError> {
    acl.into_iter()
        .map(|entry| {
            let perms = Perms::from_bits(entry.perms).ok_or_else(|| ZnodeError::InvalidAcl {
                path: path.to_owned(),
                reason: format!("unknown permission bits {:#x}", entry.perms),
            })?;
            Ok(AclEntry { perms, id: Id { scheme: entry.scheme, id: entry.id } })
        })
        .collect()
}

pub fn acl_to_pb(acl: &[AclEntry]) -> Vec<pb::AclEntry> {
    acl.iter()
        .map(|entry| pb::AclEntry {
            perms: entry.perms.bits(),
            scheme: entry.id.scheme.clone(),
            id: entry.id.id.clone(),
        })
        .collect()
}

pub fn set_acl_op_from_pb(request: pb::SetAclRequest) -> Result<SetAclOp, Status> {
    let acl = acl_from_pb(request.acl, &request.path)?;
    Ok(SetAclOp { path: request.path, acl, version: request.version })
}

pub fn quota_limits_to_pb(limits: &QuotaLimits) -> pb::QuotaLimits {
    pb::QuotaLimits {
        count_soft: limits.count_soft,
        bytes_soft: limits.bytes_soft,
        count_hard: limits.count_hard,
        bytes_hard: limits.bytes_hard,
    }
}

pub fn quota_limits_from_pb(limits: Option<&pb::QuotaLimits>) -> QuotaLimits {
    limits.map_or_else(QuotaLimits::default, |l| QuotaLimits {
        count_soft: l.count_soft,
        bytes_soft: l.bytes_soft,
        count_hard: l.count_hard,
        bytes_hard: l.bytes_hard,
    })
}

pub fn quota_usage_to_pb(usage: &QuotaUsage) -> pb::QuotaUsage {
    pb::QuotaUsage { count: usage.count, bytes: usage.bytes }
}

pub fn quota_usage_from_pb(usage: Option<&pb::QuotaUsage>) -> QuotaUsage {
    usage.map_or_else(QuotaUsage::default, |u| QuotaUsage { count: u.count, bytes: u.bytes })
}

pub fn delete_op_from_pb(request: pb::DeleteRequest) -> DeleteOp {
    DeleteOp { path: request.path, version: request.version }
}

pub fn set_op_from_pb(request: pb::SetRequest) -> SetDataOp {
    SetDataOp { path: request.path, data: request.data, version: request.version }
}

/// The ops of a multi, in order. An op with nothing set, or with an unknown create mode,
/// is `BAD_ARGUMENTS` carrying that op's index.
pub fn multi_ops_from_pb(request: pb::MultiRequest) -> Result<Vec<MultiOp>, Status> {
    request.ops.into_iter().enumerate().map(|(index, op)| multi_op(op, index)).collect()
}

fn multi_op(op: pb::Op, index: usize) -> Result<MultiOp, Status> {
    use pb::op::Op;
    let at_index = |error| txn_error_status(&TxnError { op_index: Some(index), error });
    match op.op {
        Some(Op::Check(check)) => {
            Ok(MultiOp::Check(CheckOp { path: check.path, version: check.version }))
        }
        Some(Op::Create(create)) => create_op(create).map(MultiOp::Create).map_err(at_index),
        Some(Op::Set(set)) => Ok(MultiOp::SetData(set_op_from_pb(set))),
        Some(Op::Delete(delete)) => Ok(MultiOp::Delete(delete_op_from_pb(delete))),
        None => Err(error_status(
            ErrorCode::BadArguments,
            format!("multi op {index}: no operation set"),
            "",
            u32::try_from(index).ok(),
        )),
    }
}

/// A create request for `op`, owned by `session_id` (0 = no session).
pub fn create_op_to_pb(op: CreateOp, session_id: u64) -> pb::CreateRequest {
    pb::CreateRequest {
        path: op.path,
        data: op.data,
        mode: create_mode_to_pb(op.mode) as i32,
        ttl_ms: op.ttl_ms,
        session_id,
        acl: acl_to_pb(&op.acl),
    }
}

pub fn delete_op_to_pb(op: DeleteOp) -> pb::DeleteRequest {
    pb::DeleteRequest { path: op.path, version: op.version }
}

pub fn set_op_to_pb(op: SetDataOp) -> pb::SetRequest {
    pb::SetRequest { path: op.path, data: op.data, version: op.version }
}

/// One op of a multi; a create in it is owned by `session_id` (0 = no session).
pub fn multi_op_to_pb(op: MultiOp, session_id: u64) -> pb::Op {
    use pb::op::Op;
    let op = match op {
        MultiOp::Check(check) => {
            Op::Check(pb::CheckOp { path: check.path, version: check.version })
        }
        MultiOp::Create(create) => Op::Create(create_op_to_pb(create, session_id)),
        MultiOp::SetData(set) => Op::Set(set_op_to_pb(set)),
        MultiOp::Delete(delete) => Op::Delete(delete_op_to_pb(delete)),
    };
    pb::Op { op: Some(op) }
}

/// The wire form of one multi result.
///
/// Only the per-op results (`Created`, `SetData`, `Deleted`, `Checked`) have a wire form.
/// A multi never yields the others as items; should one be passed anyway, the result is
/// left empty, which [`op_result_from_pb`] rejects, so the mistake surfaces as an error at
/// the client instead of a crashed server.
pub fn op_result_to_pb(result: &OpResult) -> pb::OpResult {
    use pb::op_result::{Check, Create, Delete, Result, Set};
    let result = match result {
        OpResult::Created { path, stat } => {
            Some(Result::Create(Create { path: path.clone(), stat: Some(stat_to_pb(stat)) }))
        }
        OpResult::SetData { stat } => Some(Result::Set(Set { stat: Some(stat_to_pb(stat)) })),
        OpResult::Deleted => Some(Result::Delete(Delete {})),
        OpResult::Checked => Some(Result::Check(Check {})),
        OpResult::Multi(_)
        | OpResult::SessionCreated
        | OpResult::SessionClosed
        | OpResult::Reaped { .. }
        | OpResult::AclSet { .. }
        | OpResult::QuotaSet
        | OpResult::QuotaRemoved
        | OpResult::ConfigSet { .. } => None,
    };
    pb::OpResult { result }
}

/// The domain form of one multi result. An empty result, or a create/set result without
/// its Stat, is a malformed response (`SYSTEM_ERROR`).
pub fn op_result_from_pb(result: pb::OpResult) -> Result<OpResult, Status> {
    use pb::op_result::Result;
    match result.result {
        Some(Result::Create(create)) => {
            let stat = required_stat_from_pb(create.stat.as_ref(), &create.path)?;
            Ok(OpResult::Created { path: create.path, stat })
        }
        Some(Result::Set(set)) => {
            Ok(OpResult::SetData { stat: required_stat_from_pb(set.stat.as_ref(), "")? })
        }
        Some(Result::Delete(_)) => Ok(OpResult::Deleted),
        Some(Result::Check(_)) => Ok(OpResult::Checked),
        None => Err(malformed_response("", "multi result with nothing set")),
    }
}

fn malformed_response(path: &str, what: &str) -> Status {
    error_status(ErrorCode::SystemError, format!("malformed response: {what}"), path, None)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::status::error_from_status;

    const MODES: [CreateMode; 7] = [
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential,
        CreateMode::Container,
        CreateMode::PersistentWithTtl,
        CreateMode::PersistentSequentialWithTtl,
    ];

    fn sample_stat() -> Stat {
        Stat {
            czxid: 0x1_0000_0001,
            mzxid: 0x1_0000_0002,
            pzxid: 0x1_0000_0003,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_500,
            version: 4,
            cversion: 5,
            aversion: 6,
            ephemeral_owner: 0xdead_beef,
            data_length: 7,
            num_children: 8,
        }
    }

    fn code_of(status: &Status) -> ErrorCode {
        ErrorCode::try_from(error_from_status(status).code).unwrap()
    }

    #[test]
    fn stat_round_trips() {
        let stat = sample_stat();
        assert_eq!(stat_from_pb(&stat_to_pb(&stat)), stat);
        assert_eq!(stat_from_pb(&stat_to_pb(&Stat::default())), Stat::default());
    }

    #[test]
    fn required_stat_rejects_absence() {
        let stat = sample_stat();
        assert_eq!(required_stat_from_pb(Some(&stat_to_pb(&stat)), "/a").unwrap(), stat);
        let err = required_stat_from_pb(None, "/a").unwrap_err();
        assert_eq!(code_of(&err), ErrorCode::SystemError);
        assert_eq!(error_from_status(&err).path, "/a");
    }

    #[test]
    fn every_create_mode_round_trips() {
        for mode in MODES {
            assert_eq!(create_mode_from_pb(create_mode_to_pb(mode) as i32).unwrap(), mode);
        }
    }

    #[test]
    fn unknown_create_modes_are_bad_arguments() {
        for value in [-1, 7, 1000] {
            let status = create_mode_from_pb(value).unwrap_err();
            assert_eq!(code_of(&status), ErrorCode::BadArguments);
            assert!(status.message().contains(&format!("unknown create mode {value}")));
        }
        let request = pb::CreateRequest { path: "/x".into(), mode: 99, ..Default::default() };
        let status = create_op_from_pb(request).unwrap_err();
        assert_eq!(code_of(&status), ErrorCode::BadArguments);
        assert_eq!(error_from_status(&status).path, "/x");
    }

    #[test]
    fn create_ops_round_trip() {
        for mode in MODES {
            let op = CreateOp {
                acl: baton_znode::acl::open_acl(),
                path: "/a/b".into(),
                data: Bytes::from_static(b"data"),
                mode,
                ttl_ms: if mode.is_ttl() { 5000 } else { 0 },
            };
            let request = create_op_to_pb(op.clone(), 42);
            assert_eq!(request.session_id, 42);
            assert_eq!(create_op_from_pb(request).unwrap(), op);
        }
    }

    #[test]
    fn delete_and_set_ops_round_trip() {
        let delete = DeleteOp { path: "/d".into(), version: -1 };
        assert_eq!(delete_op_from_pb(delete_op_to_pb(delete.clone())), delete);
        let set = SetDataOp { path: "/s".into(), data: Bytes::from_static(b"\0\x01"), version: 3 };
        assert_eq!(set_op_from_pb(set_op_to_pb(set.clone())), set);
    }

    fn sample_multi() -> Vec<MultiOp> {
        vec![
            MultiOp::Check(CheckOp { path: "/c".into(), version: 2 }),
            MultiOp::Create(CreateOp {
                acl: baton_znode::acl::open_acl(),
                path: "/n".into(),
                data: Bytes::from_static(b"x"),
                mode: CreateMode::PersistentSequential,
                ttl_ms: 0,
            }),
            MultiOp::SetData(SetDataOp { path: "/s".into(), data: Bytes::new(), version: -1 }),
            MultiOp::Delete(DeleteOp { path: "/d".into(), version: 0 }),
        ]
    }

    #[test]
    fn multi_ops_round_trip() {
        let ops = sample_multi();
        let request =
            pb::MultiRequest { ops: ops.iter().cloned().map(|op| multi_op_to_pb(op, 0)).collect() };
        assert_eq!(multi_ops_from_pb(request).unwrap(), ops);
        assert!(multi_ops_from_pb(pb::MultiRequest::default()).unwrap().is_empty());
    }

    #[test]
    fn an_empty_multi_op_is_bad_arguments_with_its_index() {
        let mut ops: Vec<pb::Op> =
            sample_multi().into_iter().map(|op| multi_op_to_pb(op, 0)).collect();
        ops.insert(2, pb::Op { op: None });
        let status = multi_ops_from_pb(pb::MultiRequest { ops }).unwrap_err();
        let error = error_from_status(&status);
        assert_eq!(error.code, ErrorCode::BadArguments as i32);
        assert_eq!(error.op_index, Some(2));
    }

    #[test]
    fn an_unknown_mode_in_a_multi_names_its_index() {
        let mut ops: Vec<pb::Op> =
            sample_multi().into_iter().map(|op| multi_op_to_pb(op, 0)).collect();
        if let Some(pb::op::Op::Create(create)) = &mut ops[1].op {
            create.mode = 77;
        }
        let error = error_from_status(&multi_ops_from_pb(pb::MultiRequest { ops }).unwrap_err());
        assert_eq!(error.code, ErrorCode::BadArguments as i32);
        assert_eq!(error.op_index, Some(1));
        assert_eq!(error.path, "/n");
    }

    #[test]
    fn multi_results_round_trip() {
        let results = [
            OpResult::Created { path: "/n0000000001".into(), stat: sample_stat() },
            OpResult::SetData { stat: sample_stat() },
            OpResult::Deleted,
            OpResult::Checked,
        ];
        for result in results {
            assert_eq!(op_result_from_pb(op_result_to_pb(&result)).unwrap(), result);
        }
    }

    #[test]
    fn non_item_results_have_no_wire_form() {
        for result in [
            OpResult::Multi(vec![]),
            OpResult::SessionCreated,
            OpResult::SessionClosed,
            OpResult::Reaped { paths: vec!["/t".into()] },
        ] {
            let status = op_result_from_pb(op_result_to_pb(&result)).unwrap_err();
            assert_eq!(code_of(&status), ErrorCode::SystemError);
        }
    }

    #[test]
    fn results_missing_their_stat_are_rejected() {
        use pb::op_result::{Create, Result, Set};
        let create =
            pb::OpResult { result: Some(Result::Create(Create { path: "/n".into(), stat: None })) };
        assert!(op_result_from_pb(create).is_err());
        let set = pb::OpResult { result: Some(Result::Set(Set { stat: None })) };
        assert!(op_result_from_pb(set).is_err());
    }
}
