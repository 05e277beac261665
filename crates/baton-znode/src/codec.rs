//! Binary encoding of txns, for the commit log and the peer protocol.
//!
//! Layout (integers are LEB128 varints, signed ones zigzag; strings and bytes are
//! length-prefixed):
//!
//! ```text
//! txn    = version:u8(=2) zxid time_ms:i64 session auth op
//! auth   = count (scheme:str id:str)*
//! op     = 1 create | 2 delete | 3 set | 4 count multi_op* | 5 session timeout_ms password
//!        | 6 session | 7 count path* | 8 path acl version:i32 (set ACL)
//!        | 9 path limit limit limit limit (set quota: count, bytes soft; count, bytes hard)
//!        | 10 path (remove quota)
//! multi_op = 1 check | 2 create | 3 set | 4 delete
//! create = path data mode:u8 ttl_ms:i64 acl   delete = path version:i32
//! set    = path data version:i32              check  = path version:i32
//! acl    = count (perms:u8 scheme:str id:str)*
//! limit  = 0 | 1 value                        (none, or a limit)
//! ```
//!
//! Version 1 (before ACLs) had no `auth` and no `acl` in create, and no ops 8-10: it
//! still decodes, as a txn with no identities creating nodes with the open ACL, which
//! is what those txns did.
//!
//! Decoding is strict (unknown tags, out-of-range values, invalid UTF-8 and
//! trailing bytes are errors) so that every txn has exactly one encoding.

pub(crate) mod wire;

use bytes::Bytes;

use crate::acl::{Acl, AclEntry, Auth, Id, Perms, open_acl};
use crate::{
    CheckOp, ConfigChange, ConfigMember, CreateMode, CreateOp, DecodeError, DeleteOp, MultiOp,
    QuotaLimits, ReconfigOp, SetAclOp, SetDataOp, Txn, TxnOp,
};
use wire::{Reader, Writer};

const TXN_VERSION: u8 = 2;
/// Before ACLs: no identities, no ACLs.
const TXN_VERSION_1: u8 = 1;

const OP_CREATE: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_SET_DATA: u8 = 3;
const OP_MULTI: u8 = 4;
const OP_CREATE_SESSION: u8 = 5;
const OP_CLOSE_SESSION: u8 = 6;
const OP_REAP: u8 = 7;
const OP_SET_ACL: u8 = 8;
const OP_SET_QUOTA: u8 = 9;
const OP_REMOVE_QUOTA: u8 = 10;
const OP_RECONFIG: u8 = 11;
const OP_SET_CONFIG: u8 = 12;
const OP_CONFIG_REFUSED: u8 = 13;

const CHANGE_ADD: u8 = 1;
const CHANGE_REMOVE: u8 = 2;
const CHANGE_SET_ROLE: u8 = 3;
const CHANGE_MEMBERS: u8 = 4;
/// A member is at least its id, an empty address and its role.
const MEMBER_BYTES_MIN: usize = 3;

const MULTI_CHECK: u8 = 1;
const MULTI_CREATE: u8 = 2;
const MULTI_SET_DATA: u8 = 3;
const MULTI_DELETE: u8 = 4;

/// Smallest encodings, which bound how many items a count may announce:
/// a multi op is at least tag + empty path + version; a path at least its length.
const MULTI_OP_BYTES_MIN: usize = 3;
const PATH_BYTES_MIN: usize = 1;
/// An identity is at least two empty strings; an ACL entry adds its perms byte.
const ID_BYTES_MIN: usize = 2;
const ACL_ENTRY_BYTES_MIN: usize = 3;

/// Encodes a txn for the commit log and the peer protocol.
pub fn encode_txn(txn: &Txn) -> Vec<u8> {
    let mut w = Writer::with_capacity(32 + payload_len(&txn.op));
    w.u8(TXN_VERSION);
    w.varint(txn.zxid);
    w.i64(txn.time_ms);
    w.varint(txn.session);
    w.len(txn.auth.ids().len());
    for id in txn.auth.ids() {
        write_id(&mut w, id);
    }
    match &txn.op {
        TxnOp::Create(op) => {
            w.u8(OP_CREATE);
            write_create(&mut w, op);
        }
        TxnOp::Delete(op) => {
            w.u8(OP_DELETE);
            write_path_version(&mut w, &op.path, op.version);
        }
        TxnOp::SetData(op) => {
            w.u8(OP_SET_DATA);
            write_set(&mut w, op);
        }
        TxnOp::Multi(ops) => {
            w.u8(OP_MULTI);
            w.len(ops.len());
            for op in ops {
                write_multi_op(&mut w, op);
            }
        }
        TxnOp::CreateSession { session, timeout_ms, password } => {
            w.u8(OP_CREATE_SESSION);
            w.varint(*session);
            w.varint(u64::from(*timeout_ms));
            w.varint(*password);
        }
        TxnOp::CloseSession { session } => {
            w.u8(OP_CLOSE_SESSION);
            w.varint(*session);
        }
        TxnOp::Reap { paths } => {
            w.u8(OP_REAP);
            w.len(paths.len());
            for path in paths {
                w.str(path);
            }
        }
        TxnOp::SetAcl(op) => {
            w.u8(OP_SET_ACL);
            w.str(&op.path);
            write_acl(&mut w, &op.acl);
            w.i32(op.version);
        }
        TxnOp::SetQuota { path, limits } => {
            w.u8(OP_SET_QUOTA);
            w.str(path);
            for limit in
                [limits.count_soft, limits.bytes_soft, limits.count_hard, limits.bytes_hard]
            {
                match limit {
                    None => w.u8(0),
                    Some(v) => {
                        w.u8(1);
                        w.varint(v);
                    }
                }
            }
        }
        TxnOp::RemoveQuota { path } => {
            w.u8(OP_REMOVE_QUOTA);
            w.str(path);
        }
        TxnOp::Reconfig(op) => {
            w.u8(OP_RECONFIG);
            w.i64(op.from_version);
            match &op.change {
                ConfigChange::Add(member) => {
                    w.u8(CHANGE_ADD);
                    write_member(&mut w, member);
                }
                ConfigChange::Remove { id } => {
                    w.u8(CHANGE_REMOVE);
                    w.varint(*id);
                }
                ConfigChange::SetRole { id, voter } => {
                    w.u8(CHANGE_SET_ROLE);
                    w.varint(*id);
                    w.u8(u8::from(*voter));
                }
                ConfigChange::Members(members) => {
                    w.u8(CHANGE_MEMBERS);
                    w.len(members.len());
                    for member in members {
                        write_member(&mut w, member);
                    }
                }
            }
        }
        TxnOp::SetConfig { data } => {
            w.u8(OP_SET_CONFIG);
            w.bytes(data);
        }
        TxnOp::ConfigRefused { reason } => {
            w.u8(OP_CONFIG_REFUSED);
            w.str(reason);
        }
    }
    w.into_vec()
}

/// Decodes bytes from `encode_txn`. Never panics and never allocates more than the
/// input could hold, whatever the bytes.
pub fn decode_txn(bytes: &[u8]) -> Result<Txn, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != TXN_VERSION && version != TXN_VERSION_1 {
        return Err(DecodeError::BadHeader(format!("unknown txn version {version}")));
    }
    let v1 = version == TXN_VERSION_1;
    let zxid = r.varint()?;
    let time_ms = r.i64()?;
    let session = r.varint()?;
    let auth = if v1 {
        Auth::none()
    } else {
        let n = r.count(ID_BYTES_MIN)?;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(read_id(&mut r)?);
        }
        Auth::new(ids)
    };
    let op = read_op(&mut r, v1)?;
    r.finish()?;
    Ok(Txn { zxid, time_ms, session, auth, op })
}

fn read_op(r: &mut Reader<'_>, v1: bool) -> Result<TxnOp, DecodeError> {
    let at = r.offset();
    let op = match r.u8()? {
        OP_CREATE => TxnOp::Create(read_create(r, v1)?),
        OP_DELETE => TxnOp::Delete(read_delete(r)?),
        OP_SET_DATA => TxnOp::SetData(read_set(r)?),
        OP_MULTI => {
            let n = r.count(MULTI_OP_BYTES_MIN)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(read_multi_op(r, v1)?);
            }
            TxnOp::Multi(ops)
        }
        OP_CREATE_SESSION => TxnOp::CreateSession {
            session: r.varint()?,
            timeout_ms: r.u32()?,
            password: r.varint()?,
        },
        OP_CLOSE_SESSION => TxnOp::CloseSession { session: r.varint()? },
        OP_REAP => {
            let n = r.count(PATH_BYTES_MIN)?;
            let mut paths = Vec::with_capacity(n);
            for _ in 0..n {
                paths.push(r.str()?.to_owned());
            }
            TxnOp::Reap { paths }
        }
        OP_SET_ACL if !v1 => {
            let path = r.str()?.to_owned();
            let acl = read_acl(r)?;
            TxnOp::SetAcl(SetAclOp { path, acl, version: r.i32()? })
        }
        OP_SET_QUOTA if !v1 => {
            let path = r.str()?.to_owned();
            let mut limit = || -> Result<Option<u64>, DecodeError> {
                let at = r.offset();
                match r.u8()? {
                    0 => Ok(None),
                    1 => Ok(Some(r.varint()?)),
                    tag => Err(r.invalid(at, format!("unknown limit tag {tag}"))),
                }
            };
            let limits = QuotaLimits {
                count_soft: limit()?,
                bytes_soft: limit()?,
                count_hard: limit()?,
                bytes_hard: limit()?,
            };
            TxnOp::SetQuota { path, limits }
        }
        OP_REMOVE_QUOTA if !v1 => TxnOp::RemoveQuota { path: r.str()?.to_owned() },
        OP_RECONFIG if !v1 => {
            let from_version = r.i64()?;
            let change_at = r.offset();
            let change = match r.u8()? {
                CHANGE_ADD => ConfigChange::Add(read_member(r)?),
                CHANGE_REMOVE => ConfigChange::Remove { id: r.varint()? },
                CHANGE_SET_ROLE => ConfigChange::SetRole { id: r.varint()?, voter: read_bool(r)? },
                CHANGE_MEMBERS => {
                    let count = r.count(MEMBER_BYTES_MIN)?;
                    let mut members = Vec::with_capacity(count);
                    for _ in 0..count {
                        members.push(read_member(r)?);
                    }
                    ConfigChange::Members(members)
                }
                tag => return Err(r.invalid(change_at, format!("unknown change tag {tag}"))),
            };
            TxnOp::Reconfig(ReconfigOp { from_version, change })
        }
        OP_SET_CONFIG if !v1 => TxnOp::SetConfig { data: Bytes::copy_from_slice(r.bytes()?) },
        OP_CONFIG_REFUSED if !v1 => TxnOp::ConfigRefused { reason: r.str()?.to_owned() },
        tag => return Err(r.invalid(at, format!("unknown op tag {tag}"))),
    };
    Ok(op)
}

fn write_member(w: &mut Writer, member: &ConfigMember) {
    w.varint(member.id);
    w.str(&member.addr);
    w.u8(u8::from(member.voter));
}

fn read_member(r: &mut Reader<'_>) -> Result<ConfigMember, DecodeError> {
    Ok(ConfigMember { id: r.varint()?, addr: r.str()?.to_owned(), voter: read_bool(r)? })
}

fn read_bool(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
    let at = r.offset();
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(r.invalid(at, format!("bad flag {other}"))),
    }
}

fn read_multi_op(r: &mut Reader<'_>, v1: bool) -> Result<MultiOp, DecodeError> {
    let at = r.offset();
    let op = match r.u8()? {
        MULTI_CHECK => {
            let (path, version) = read_path_version(r)?;
            MultiOp::Check(CheckOp { path, version })
        }
        MULTI_CREATE => MultiOp::Create(read_create(r, v1)?),
        MULTI_SET_DATA => MultiOp::SetData(read_set(r)?),
        MULTI_DELETE => MultiOp::Delete(read_delete(r)?),
        tag => return Err(r.invalid(at, format!("unknown multi op tag {tag}"))),
    };
    Ok(op)
}

fn write_multi_op(w: &mut Writer, op: &MultiOp) {
    match op {
        MultiOp::Check(op) => {
            w.u8(MULTI_CHECK);
            write_path_version(w, &op.path, op.version);
        }
        MultiOp::Create(op) => {
            w.u8(MULTI_CREATE);
            write_create(w, op);
        }
        MultiOp::SetData(op) => {
            w.u8(MULTI_SET_DATA);
            write_set(w, op);
        }
        MultiOp::Delete(op) => {
            w.u8(MULTI_DELETE);
            write_path_version(w, &op.path, op.version);
        }
    }
}

fn write_create(w: &mut Writer, op: &CreateOp) {
    w.str(&op.path);
    w.bytes(&op.data);
    w.u8(mode_tag(op.mode));
    w.i64(op.ttl_ms);
    write_acl(w, &op.acl);
}

fn write_id(w: &mut Writer, id: &Id) {
    w.str(&id.scheme);
    w.str(&id.id);
}

fn read_id(r: &mut Reader<'_>) -> Result<Id, DecodeError> {
    Ok(Id { scheme: r.str()?.to_owned(), id: r.str()?.to_owned() })
}

/// Shared with snapshots.
pub(crate) fn write_acl(w: &mut Writer, acl: &[AclEntry]) {
    w.len(acl.len());
    for entry in acl {
        w.u8(entry.perms.bits() as u8);
        write_id(w, &entry.id);
    }
}

/// Shared with snapshots. Checks the perms bits only; `apply` validates the ids.
pub(crate) fn read_acl(r: &mut Reader<'_>) -> Result<Acl, DecodeError> {
    let n = r.count(ACL_ENTRY_BYTES_MIN)?;
    let mut acl = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.offset();
        let bits = r.u8()?;
        let perms = Perms::from_bits(u32::from(bits))
            .ok_or_else(|| r.invalid(at, format!("unknown permission bits {bits:#x}")))?;
        acl.push(AclEntry { perms, id: read_id(r)? });
    }
    Ok(acl)
}

fn read_create(r: &mut Reader<'_>, v1: bool) -> Result<CreateOp, DecodeError> {
    let path = r.str()?.to_owned();
    let data = Bytes::copy_from_slice(r.bytes()?);
    let at = r.offset();
    let tag = r.u8()?;
    let mode = mode_from_tag(tag).ok_or_else(|| r.invalid(at, format!("unknown mode {tag}")))?;
    let ttl_ms = r.i64()?;
    let acl = if v1 { open_acl() } else { read_acl(r)? };
    Ok(CreateOp { path, data, mode, ttl_ms, acl })
}

fn write_set(w: &mut Writer, op: &SetDataOp) {
    w.str(&op.path);
    w.bytes(&op.data);
    w.i32(op.version);
}

fn read_set(r: &mut Reader<'_>) -> Result<SetDataOp, DecodeError> {
    let path = r.str()?.to_owned();
    let data = Bytes::copy_from_slice(r.bytes()?);
    let version = r.i32()?;
    Ok(SetDataOp { path, data, version })
}

fn read_delete(r: &mut Reader<'_>) -> Result<DeleteOp, DecodeError> {
    let (path, version) = read_path_version(r)?;
    Ok(DeleteOp { path, version })
}

fn write_path_version(w: &mut Writer, path: &str, version: i32) {
    w.str(path);
    w.i32(version);
}

fn read_path_version(r: &mut Reader<'_>) -> Result<(String, i32), DecodeError> {
    Ok((r.str()?.to_owned(), r.i32()?))
}

/// Mode tags are part of the log format: never renumber them.
pub(crate) fn mode_tag(mode: CreateMode) -> u8 {
    match mode {
        CreateMode::Persistent => 0,
        CreateMode::Ephemeral => 1,
        CreateMode::PersistentSequential => 2,
        CreateMode::EphemeralSequential => 3,
        CreateMode::Container => 4,
        CreateMode::PersistentWithTtl => 5,
        CreateMode::PersistentSequentialWithTtl => 6,
    }
}

fn mode_from_tag(tag: u8) -> Option<CreateMode> {
    Some(match tag {
        0 => CreateMode::Persistent,
        1 => CreateMode::Ephemeral,
        2 => CreateMode::PersistentSequential,
        3 => CreateMode::EphemeralSequential,
        4 => CreateMode::Container,
        5 => CreateMode::PersistentWithTtl,
        6 => CreateMode::PersistentSequentialWithTtl,
        _ => return None,
    })
}

/// Roughly the bytes of the variable-size part, to size the buffer once.
fn payload_len(op: &TxnOp) -> usize {
    let multi_len = |op: &MultiOp| match op {
        MultiOp::Check(op) => op.path.len(),
        MultiOp::Create(op) => op.path.len() + op.data.len(),
        MultiOp::SetData(op) => op.path.len() + op.data.len(),
        MultiOp::Delete(op) => op.path.len(),
    } + 16;
    match op {
        TxnOp::Create(op) => op.path.len() + op.data.len(),
        TxnOp::Delete(op) => op.path.len(),
        TxnOp::SetData(op) => op.path.len() + op.data.len(),
        TxnOp::Multi(ops) => ops.iter().map(multi_len).sum(),
        TxnOp::CreateSession { .. } | TxnOp::CloseSession { .. } => 0,
        TxnOp::Reap { paths } => paths.iter().map(|p| p.len() + 2).sum(),
        TxnOp::SetAcl(op) => op.path.len() + 16 * op.acl.len(),
        TxnOp::SetQuota { path, .. } | TxnOp::RemoveQuota { path } => path.len() + 40,
        TxnOp::Reconfig(op) => match &op.change {
            ConfigChange::Add(m) => m.addr.len() + 24,
            ConfigChange::Remove { .. } | ConfigChange::SetRole { .. } => 24,
            ConfigChange::Members(members) => members.iter().map(|m| m.addr.len() + 16).sum(),
        },
        TxnOp::SetConfig { data } => data.len() + 8,
        TxnOp::ConfigRefused { reason } => reason.len() + 8,
    }
}

#[cfg(test)]
mod tests;
