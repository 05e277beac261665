//! Round trips of every record: encode, then decode, gives the value back, and the
//! encoding is exactly as long as decoding consumes.

use proptest::prelude::*;

use crate::arb::Arb;
use crate::*;

fn round_trip<T: Record + Arb + PartialEq>(value: &T) -> Result<(), TestCaseError> {
    let bytes = value.to_bytes();
    prop_assert!(bytes.len() >= T::BYTES_MIN);
    prop_assert_eq!(&T::from_bytes(bytes)?, value);
    Ok(())
}

macro_rules! round_trips {
    ($($name:ident: $type:ty,)*) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $name(value in <$type as Arb>::arb()) {
                    round_trip(&value)?;
                }
            )*
        }
    };
}

round_trips! {
    connect_request: ConnectRequest,
    connect_response: ConnectResponse,
    request_header: RequestHeader,
    reply_header: ReplyHeader,
    error_response: ErrorResponse,
    stat: Stat,
    id: Id,
    acl: Acl,
    create_request: CreateRequest,
    create_ttl_request: CreateTtlRequest,
    create_response: CreateResponse,
    create2_response: Create2Response,
    delete_request: DeleteRequest,
    exists_request: ExistsRequest,
    exists_response: ExistsResponse,
    get_data_request: GetDataRequest,
    get_data_response: GetDataResponse,
    set_data_request: SetDataRequest,
    set_data_response: SetDataResponse,
    get_acl_request: GetAclRequest,
    get_acl_response: GetAclResponse,
    set_acl_request: SetAclRequest,
    set_acl_response: SetAclResponse,
    get_children_request: GetChildrenRequest,
    get_children_response: GetChildrenResponse,
    get_children2_request: GetChildren2Request,
    get_children2_response: GetChildren2Response,
    sync_request: SyncRequest,
    sync_response: SyncResponse,
    check_version_request: CheckVersionRequest,
    multi_header: MultiHeader,
    multi_request: MultiRequest,
    multi_response: MultiResponse,
    auth_packet: AuthPacket,
    set_watches: SetWatches,
    set_watches2: SetWatches2,
    add_watch_request: AddWatchRequest,
    remove_watches_request: RemoveWatchesRequest,
    check_watches_request: CheckWatchesRequest,
    get_ephemerals_request: GetEphemeralsRequest,
    get_ephemerals_response: GetEphemeralsResponse,
    get_all_children_number_request: GetAllChildrenNumberRequest,
    get_all_children_number_response: GetAllChildrenNumberResponse,
    who_am_i_response: WhoAmIResponse,
    sasl_request: SaslRequest,
    sasl_response: SaslResponse,
    reconfig_request: ReconfigRequest,
    watcher_event: WatcherEvent,
}

fn any_request() -> BoxedStrategy<Request> {
    prop_oneof![
        CreateRequest::arb().prop_map(Request::Create),
        CreateRequest::arb().prop_map(Request::Create2),
        CreateRequest::arb().prop_map(Request::CreateContainer),
        CreateTtlRequest::arb().prop_map(Request::CreateTtl),
        DeleteRequest::arb().prop_map(Request::Delete),
        ExistsRequest::arb().prop_map(Request::Exists),
        GetDataRequest::arb().prop_map(Request::GetData),
        SetDataRequest::arb().prop_map(Request::SetData),
        GetAclRequest::arb().prop_map(Request::GetAcl),
        SetAclRequest::arb().prop_map(Request::SetAcl),
        GetChildrenRequest::arb().prop_map(Request::GetChildren),
        GetChildren2Request::arb().prop_map(Request::GetChildren2),
        SyncRequest::arb().prop_map(Request::Sync),
        Just(Request::Ping),
        CheckVersionRequest::arb().prop_map(Request::Check),
        MultiRequest::arb().prop_map(Request::Multi),
        MultiRequest::arb().prop_map(Request::MultiRead),
        ReconfigRequest::arb().prop_map(Request::Reconfig),
        CheckWatchesRequest::arb().prop_map(Request::CheckWatches),
        RemoveWatchesRequest::arb().prop_map(Request::RemoveWatches),
        AuthPacket::arb().prop_map(Request::Auth),
        SetWatches::arb().prop_map(Request::SetWatches),
        SaslRequest::arb().prop_map(Request::Sasl),
        GetEphemeralsRequest::arb().prop_map(Request::GetEphemerals),
        GetAllChildrenNumberRequest::arb().prop_map(Request::GetAllChildrenNumber),
        SetWatches2::arb().prop_map(Request::SetWatches2),
        AddWatchRequest::arb().prop_map(Request::AddWatch),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
        (200..300i32).prop_map(Request::Unknown),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A request framed as a client frames it decodes to the same header and request.
    #[test]
    fn request_frame_round_trip(xid in any::<i32>(), request in any_request()) {
        let frame = encode_frame(|writer| {
            RequestHeader { xid, op: request.op() }.encode(writer);
            request.encode_body(writer);
        });
        let mut buffer = bytes::BytesMut::from(&frame[..]);
        let payload = FrameDecoder::default().decode(&mut buffer).unwrap().unwrap();
        prop_assert!(buffer.is_empty());
        let (header, decoded) = decode_request(payload)?;
        prop_assert_eq!(header, RequestHeader { xid, op: request.op() });
        prop_assert_eq!(decoded, request);
    }
}

#[test]
fn every_code_maps_back() {
    for op in OpCode::ALL {
        assert_eq!(OpCode::from_code(op.code()), Some(*op));
    }
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_code(code.code()), Some(*code));
    }
    assert_eq!(OpCode::from_code(10), None);
    assert_eq!(perms::ALL, 31);
}
