//! [`Request`]: a client request after the handshake, told apart by its header's
//! opcode.

use bytes::Bytes;

use crate::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, CreateRequest,
    CreateTtlRequest, DecodeError, DeleteRequest, ExistsRequest, GetAclRequest,
    GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest, GetDataRequest,
    GetEphemeralsRequest, MultiRequest, OpCode, Reader, ReconfigRequest, Record,
    RemoveWatchesRequest, RequestHeader, SaslRequest, SetAclRequest, SetDataRequest, SetWatches,
    SetWatches2, SyncRequest, Writer,
};

/// A request body, by opcode. Ops a client never sends (notification, createSession,
/// deleteContainer, error) and opcodes ZooKeeper does not define decode as
/// [`Request::Unknown`], for the server to answer with UNIMPLEMENTED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildren2Request),
    Sync(SyncRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(MultiRequest),
    MultiRead(MultiRequest),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    Sasl(SaslRequest),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    SetWatches2(SetWatches2),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
    /// The opcode, whatever its body: nothing in it is read.
    Unknown(i32),
}

/// Decodes a whole frame after the handshake: its header and its body, which must fill
/// the rest of the frame.
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, Request), DecodeError> {
    let mut reader = Reader::new(frame);
    let header = RequestHeader::decode(&mut reader)?;
    let request = Request::decode_body(header.op, &mut reader)?;
    reader.finish()?;
    Ok((header, request))
}

impl Request {
    /// Decodes a body that must fill `body` exactly.
    pub fn decode(op: i32, body: Bytes) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(body);
        let request = Self::decode_body(op, &mut reader)?;
        reader.finish()?;
        Ok(request)
    }

    fn decode_body(op: i32, reader: &mut Reader) -> Result<Self, DecodeError> {
        let Some(known) = OpCode::from_code(op) else {
            return Ok(Self::unknown(op, reader));
        };
        let request = match known {
            OpCode::Create => Self::Create(Record::decode(reader)?),
            OpCode::Create2 => Self::Create2(Record::decode(reader)?),
            OpCode::CreateContainer => Self::CreateContainer(Record::decode(reader)?),
            OpCode::CreateTtl => Self::CreateTtl(Record::decode(reader)?),
            OpCode::Delete => Self::Delete(Record::decode(reader)?),
            OpCode::Exists => Self::Exists(Record::decode(reader)?),
            OpCode::GetData => Self::GetData(Record::decode(reader)?),
            OpCode::SetData => Self::SetData(Record::decode(reader)?),
            OpCode::GetAcl => Self::GetAcl(Record::decode(reader)?),
            OpCode::SetAcl => Self::SetAcl(Record::decode(reader)?),
            OpCode::GetChildren => Self::GetChildren(Record::decode(reader)?),
            OpCode::GetChildren2 => Self::GetChildren2(Record::decode(reader)?),
            OpCode::Sync => Self::Sync(Record::decode(reader)?),
            OpCode::Ping => Self::Ping,
            OpCode::Check => Self::Check(Record::decode(reader)?),
            OpCode::Multi => Self::Multi(Record::decode(reader)?),
            OpCode::MultiRead => Self::MultiRead(Record::decode(reader)?),
            OpCode::Reconfig => Self::Reconfig(Record::decode(reader)?),
            OpCode::CheckWatches => Self::CheckWatches(Record::decode(reader)?),
            OpCode::RemoveWatches => Self::RemoveWatches(Record::decode(reader)?),
            OpCode::Auth => Self::Auth(Record::decode(reader)?),
            OpCode::SetWatches => Self::SetWatches(Record::decode(reader)?),
            OpCode::Sasl => Self::Sasl(Record::decode(reader)?),
            OpCode::GetEphemerals => Self::GetEphemerals(Record::decode(reader)?),
            OpCode::GetAllChildrenNumber => Self::GetAllChildrenNumber(Record::decode(reader)?),
            OpCode::SetWatches2 => Self::SetWatches2(Record::decode(reader)?),
            OpCode::AddWatch => Self::AddWatch(Record::decode(reader)?),
            OpCode::WhoAmI => Self::WhoAmI,
            OpCode::CloseSession => Self::CloseSession,
            OpCode::Notification
            | OpCode::CreateSession
            | OpCode::DeleteContainer
            | OpCode::Error => Self::unknown(op, reader),
        };
        Ok(request)
    }

    /// An unknown op's body is skipped, so the server can still answer it.
    fn unknown(op: i32, reader: &mut Reader) -> Self {
        reader.skip_rest();
        Self::Unknown(op)
    }

    /// The opcode this request is sent with.
    pub fn op(&self) -> i32 {
        let known = match self {
            Self::Create(_) => OpCode::Create,
            Self::Create2(_) => OpCode::Create2,
            Self::CreateContainer(_) => OpCode::CreateContainer,
            Self::CreateTtl(_) => OpCode::CreateTtl,
            Self::Delete(_) => OpCode::Delete,
            Self::Exists(_) => OpCode::Exists,
            Self::GetData(_) => OpCode::GetData,
            Self::SetData(_) => OpCode::SetData,
            Self::GetAcl(_) => OpCode::GetAcl,
            Self::SetAcl(_) => OpCode::SetAcl,
            Self::GetChildren(_) => OpCode::GetChildren,
            Self::GetChildren2(_) => OpCode::GetChildren2,
            Self::Sync(_) => OpCode::Sync,
            Self::Ping => OpCode::Ping,
            Self::Check(_) => OpCode::Check,
            Self::Multi(_) => OpCode::Multi,
            Self::MultiRead(_) => OpCode::MultiRead,
            Self::Reconfig(_) => OpCode::Reconfig,
            Self::CheckWatches(_) => OpCode::CheckWatches,
            Self::RemoveWatches(_) => OpCode::RemoveWatches,
            Self::Auth(_) => OpCode::Auth,
            Self::SetWatches(_) => OpCode::SetWatches,
            Self::Sasl(_) => OpCode::Sasl,
            Self::GetEphemerals(_) => OpCode::GetEphemerals,
            Self::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Self::SetWatches2(_) => OpCode::SetWatches2,
            Self::AddWatch(_) => OpCode::AddWatch,
            Self::WhoAmI => OpCode::WhoAmI,
            Self::CloseSession => OpCode::CloseSession,
            Self::Unknown(op) => return *op,
        };
        known.code()
    }

    /// Writes the body (not the header). An unknown request has no body.
    pub fn encode_body(&self, writer: &mut Writer) {
        match self {
            Self::Create(body) | Self::Create2(body) | Self::CreateContainer(body) => {
                body.encode(writer)
            }
            Self::CreateTtl(body) => body.encode(writer),
            Self::Delete(body) => body.encode(writer),
            Self::Exists(body) => body.encode(writer),
            Self::GetData(body) => body.encode(writer),
            Self::SetData(body) => body.encode(writer),
            Self::GetAcl(body) => body.encode(writer),
            Self::SetAcl(body) => body.encode(writer),
            Self::GetChildren(body) => body.encode(writer),
            Self::GetChildren2(body) => body.encode(writer),
            Self::Sync(body) => body.encode(writer),
            Self::Check(body) => body.encode(writer),
            Self::Multi(body) | Self::MultiRead(body) => body.encode(writer),
            Self::Reconfig(body) => body.encode(writer),
            Self::CheckWatches(body) => body.encode(writer),
            Self::RemoveWatches(body) => body.encode(writer),
            Self::Auth(body) => body.encode(writer),
            Self::SetWatches(body) => body.encode(writer),
            Self::Sasl(body) => body.encode(writer),
            Self::GetEphemerals(body) => body.encode(writer),
            Self::GetAllChildrenNumber(body) => body.encode(writer),
            Self::SetWatches2(body) => body.encode(writer),
            Self::AddWatch(body) => body.encode(writer),
            Self::Ping | Self::WhoAmI | Self::CloseSession | Self::Unknown(_) => {}
        }
    }
}
