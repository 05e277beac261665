//! Binary encoding of txns, for the commit log and the peer protocol.
//!
//! Layout (integers are LEB128 varints, signed ones zigzag; strings and bytes are
//! length-prefixed):
//!
//! ```text
//! txn    = version:u8(=1) zxid time_ms:i64 session op
//! op     = 1 create | 2 delete | 3 set | 4 count multi_op* | 5 session timeout_ms password
//!        | 6 session | 7 count path*
//! multi_op = 1 check | 2 create | 3 set | 4 delete
//! create = path data mode:u8 ttl_ms:i64      delete = path version:i32
//! set    = path data version:i32              check  = path version:i32
//! ```
//!
//! Decoding is strict (unknown tags, out-of-range values, invalid UTF-8 and
//! trailing bytes are errors) so that every txn has exactly one encoding.

pub(crate) mod wire;

use bytes::Bytes;

use crate::{CheckOp, CreateMode, CreateOp, DecodeError, DeleteOp, MultiOp, SetDataOp, Txn, TxnOp};
use wire::{Reader, Writer};

const TXN_VERSION: u8 = 1;

const OP_CREATE: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_SET_DATA: u8 = 3;
const OP_MULTI: u8 = 4;
const OP_CREATE_SESSION: u8 = 5;
const OP_CLOSE_SESSION: u8 = 6;
const OP_REAP: u8 = 7;

const MULTI_CHECK: u8 = 1;
const MULTI_CREATE: u8 = 2;
const MULTI_SET_DATA: u8 = 3;
const MULTI_DELETE: u8 = 4;

/// Smallest encodings, which bound how many items a count may announce:
/// a multi op is at least tag + empty path + version; a path at least its length.
const MULTI_OP_BYTES_MIN: usize = 3;
const PATH_BYTES_MIN: usize = 1;

/// Encodes a txn for the commit log and the peer protocol.
pub fn encode_txn(txn: &Txn) -> Vec<u8> {
    let mut w = Writer::with_capacity(32 + payload_len(&txn.op));
    w.u8(TXN_VERSION);
    w.varint(txn.zxid);
    w.i64(txn.time_ms);
    w.varint(txn.session);
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
    }
    w.into_vec()
}

/// Decodes bytes from `encode_txn`. Never panics and never allocates more than the
/// input could hold, whatever the bytes.
pub fn decode_txn(bytes: &[u8]) -> Result<Txn, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != TXN_VERSION {
        return Err(DecodeError::BadHeader(format!("unknown txn version {version}")));
    }
    let zxid = r.varint()?;
    let time_ms = r.i64()?;
    let session = r.varint()?;
    let op = read_op(&mut r)?;
    r.finish()?;
    Ok(Txn { zxid, time_ms, session, op })
}

fn read_op(r: &mut Reader<'_>) -> Result<TxnOp, DecodeError> {
    let at = r.offset();
    let op = match r.u8()? {
        OP_CREATE => TxnOp::Create(read_create(r)?),
        OP_DELETE => TxnOp::Delete(read_delete(r)?),
        OP_SET_DATA => TxnOp::SetData(read_set(r)?),
        OP_MULTI => {
            let n = r.count(MULTI_OP_BYTES_MIN)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(read_multi_op(r)?);
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
        tag => return Err(r.invalid(at, format!("unknown op tag {tag}"))),
    };
    Ok(op)
}

fn read_multi_op(r: &mut Reader<'_>) -> Result<MultiOp, DecodeError> {
    let at = r.offset();
    let op = match r.u8()? {
        MULTI_CHECK => {
            let (path, version) = read_path_version(r)?;
            MultiOp::Check(CheckOp { path, version })
        }
        MULTI_CREATE => MultiOp::Create(read_create(r)?),
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
}

fn read_create(r: &mut Reader<'_>) -> Result<CreateOp, DecodeError> {
    let path = r.str()?.to_owned();
    let data = Bytes::copy_from_slice(r.bytes()?);
    let at = r.offset();
    let tag = r.u8()?;
    let mode = mode_from_tag(tag).ok_or_else(|| r.invalid(at, format!("unknown mode {tag}")))?;
    let ttl_ms = r.i64()?;
    Ok(CreateOp { path, data, mode, ttl_ms })
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
    }
}

#[cfg(test)]
mod tests;
