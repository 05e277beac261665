//! multi and multiRead: ZooKeeper frames their ops and results not as a jute vector but
//! as a run of ([`MultiHeader`], record) pairs closed by a header with `done` set.

use crate::record::record;
use crate::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DecodeError, DeleteRequest, ErrorResponse, GetChildrenRequest, GetChildrenResponse,
    GetDataRequest, GetDataResponse, OpCode, Reader, Record, SetDataRequest, SetDataResponse,
    Writer,
};

record! {
    /// Precedes each op or result of a multi. In a request `err` is -1; in a reply it is
    /// 0, or the error code when `op` is [`OpCode::Error`].
    pub struct MultiHeader {
        pub op: i32,
        pub done: bool,
        pub err: i32,
    }
}

/// The header that ends a multi's ops or results.
const END: MultiHeader = MultiHeader { op: -1, done: true, err: -1 };

/// One op of a multi (writes and check) or a multiRead (getChildren and getData): the
/// ops ZooKeeper's MultiOperationRecord accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

impl MultiOp {
    pub fn op(&self) -> OpCode {
        match self {
            Self::Create(_) => OpCode::Create,
            Self::Create2(_) => OpCode::Create2,
            Self::CreateContainer(_) => OpCode::CreateContainer,
            Self::CreateTtl(_) => OpCode::CreateTtl,
            Self::Delete(_) => OpCode::Delete,
            Self::SetData(_) => OpCode::SetData,
            Self::Check(_) => OpCode::Check,
            Self::GetChildren(_) => OpCode::GetChildren,
            Self::GetData(_) => OpCode::GetData,
        }
    }

    fn encode_body(&self, writer: &mut Writer) {
        match self {
            Self::Create(body) | Self::Create2(body) | Self::CreateContainer(body) => {
                body.encode(writer)
            }
            Self::CreateTtl(body) => body.encode(writer),
            Self::Delete(body) => body.encode(writer),
            Self::SetData(body) => body.encode(writer),
            Self::Check(body) => body.encode(writer),
            Self::GetChildren(body) => body.encode(writer),
            Self::GetData(body) => body.encode(writer),
        }
    }

    fn decode_body(op: i32, reader: &mut Reader) -> Result<Self, DecodeError> {
        let decoded = match OpCode::from_code(op) {
            Some(OpCode::Create) => Self::Create(Record::decode(reader)?),
            Some(OpCode::Create2) => Self::Create2(Record::decode(reader)?),
            Some(OpCode::CreateContainer) => Self::CreateContainer(Record::decode(reader)?),
            Some(OpCode::CreateTtl) => Self::CreateTtl(Record::decode(reader)?),
            Some(OpCode::Delete) => Self::Delete(Record::decode(reader)?),
            Some(OpCode::SetData) => Self::SetData(Record::decode(reader)?),
            Some(OpCode::Check) => Self::Check(Record::decode(reader)?),
            Some(OpCode::GetChildren) => Self::GetChildren(Record::decode(reader)?),
            Some(OpCode::GetData) => Self::GetData(Record::decode(reader)?),
            _ => return Err(DecodeError::InvalidMultiOp { op }),
        };
        Ok(decoded)
    }
}

/// The body of a multi (opcode 14) or multiRead (opcode 22) request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

impl Record for MultiRequest {
    const BYTES_MIN: usize = MultiHeader::BYTES_MIN;

    fn encode(&self, writer: &mut Writer) {
        for op in &self.ops {
            MultiHeader { op: op.op().code(), done: false, err: -1 }.encode(writer);
            op.encode_body(writer);
        }
        END.encode(writer);
    }

    /// Like ZooKeeper, any header with `done` set ends the ops. Each op takes at least a
    /// header's bytes, so the input bounds how many are read.
    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let header = MultiHeader::decode(reader)?;
            if header.done {
                return Ok(Self { ops });
            }
            ops.push(MultiOp::decode_body(header.op, reader)?);
        }
    }
}

/// One result of a multi or multiRead. ZooKeeper answers create with
/// [`MultiResult::Create`] and the other creates with [`MultiResult::Create2`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(CreateResponse),
    Create2(Create2Response),
    Delete,
    SetData(SetDataResponse),
    Check,
    GetChildren(GetChildrenResponse),
    GetData(GetDataResponse),
    /// The op failed, or was not applied because another op failed.
    Error(ErrorResponse),
}

impl MultiResult {
    fn header(&self) -> MultiHeader {
        let (op, err) = match self {
            Self::Create(_) => (OpCode::Create, 0),
            Self::Create2(_) => (OpCode::Create2, 0),
            Self::Delete => (OpCode::Delete, 0),
            Self::SetData(_) => (OpCode::SetData, 0),
            Self::Check => (OpCode::Check, 0),
            Self::GetChildren(_) => (OpCode::GetChildren, 0),
            Self::GetData(_) => (OpCode::GetData, 0),
            Self::Error(body) => (OpCode::Error, body.err),
        };
        MultiHeader { op: op.code(), done: false, err }
    }

    fn encode_body(&self, writer: &mut Writer) {
        match self {
            Self::Create(body) => body.encode(writer),
            Self::Create2(body) => body.encode(writer),
            Self::Delete | Self::Check => {}
            Self::SetData(body) => body.encode(writer),
            Self::GetChildren(body) => body.encode(writer),
            Self::GetData(body) => body.encode(writer),
            Self::Error(body) => body.encode(writer),
        }
    }

    fn decode_body(op: i32, reader: &mut Reader) -> Result<Self, DecodeError> {
        let decoded = match OpCode::from_code(op) {
            Some(OpCode::Create) => Self::Create(Record::decode(reader)?),
            Some(OpCode::Create2) => Self::Create2(Record::decode(reader)?),
            Some(OpCode::Delete) => Self::Delete,
            Some(OpCode::SetData) => Self::SetData(Record::decode(reader)?),
            Some(OpCode::Check) => Self::Check,
            Some(OpCode::GetChildren) => Self::GetChildren(Record::decode(reader)?),
            Some(OpCode::GetData) => Self::GetData(Record::decode(reader)?),
            Some(OpCode::Error) => Self::Error(Record::decode(reader)?),
            _ => return Err(DecodeError::InvalidMultiOp { op }),
        };
        Ok(decoded)
    }
}

/// The body of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<MultiResult>,
}

impl Record for MultiResponse {
    const BYTES_MIN: usize = MultiHeader::BYTES_MIN;

    fn encode(&self, writer: &mut Writer) {
        for result in &self.results {
            result.header().encode(writer);
            result.encode_body(writer);
        }
        END.encode(writer);
    }

    fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let header = MultiHeader::decode(reader)?;
            if header.done {
                return Ok(Self { results });
            }
            results.push(MultiResult::decode_body(header.op, reader)?);
        }
    }
}

#[cfg(test)]
mod arb {
    use proptest::prelude::*;

    use super::*;
    use crate::arb::Arb;

    impl Arb for MultiOp {
        fn arb() -> BoxedStrategy<Self> {
            prop_oneof![
                CreateRequest::arb().prop_map(Self::Create),
                CreateRequest::arb().prop_map(Self::Create2),
                CreateRequest::arb().prop_map(Self::CreateContainer),
                CreateTtlRequest::arb().prop_map(Self::CreateTtl),
                DeleteRequest::arb().prop_map(Self::Delete),
                SetDataRequest::arb().prop_map(Self::SetData),
                CheckVersionRequest::arb().prop_map(Self::Check),
                GetChildrenRequest::arb().prop_map(Self::GetChildren),
                GetDataRequest::arb().prop_map(Self::GetData),
            ]
            .boxed()
        }
    }

    impl Arb for MultiResult {
        fn arb() -> BoxedStrategy<Self> {
            prop_oneof![
                CreateResponse::arb().prop_map(Self::Create),
                Create2Response::arb().prop_map(Self::Create2),
                Just(Self::Delete),
                SetDataResponse::arb().prop_map(Self::SetData),
                Just(Self::Check),
                GetChildrenResponse::arb().prop_map(Self::GetChildren),
                GetDataResponse::arb().prop_map(Self::GetData),
                ErrorResponse::arb().prop_map(Self::Error),
            ]
            .boxed()
        }
    }

    impl Arb for MultiRequest {
        fn arb() -> BoxedStrategy<Self> {
            Vec::<MultiOp>::arb().prop_map(|ops| Self { ops }).boxed()
        }
    }

    impl Arb for MultiResponse {
        fn arb() -> BoxedStrategy<Self> {
            Vec::<MultiResult>::arb().prop_map(|results| Self { results }).boxed()
        }
    }
}
