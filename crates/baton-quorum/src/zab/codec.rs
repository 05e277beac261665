//! The binary encoding of peer messages.
//!
//! ```text
//! envelope = version:u8 from:varint to:varint tag:u8 fields…
//! ```
//! Integers are LEB128 varints, byte strings are length-prefixed. Decoding comes off
//! the network, so it never panics, never trusts a length to size an allocation
//! beyond what the input still holds, and rejects unknown versions and tags,
//! non-canonical varints and trailing bytes.

use bytes::Bytes;

use crate::{
    QuorumError, Zxid,
    zab::{
        Entry, Envelope, Membership, Message,
        membership::{decode_config_entry, encode_config_entry},
    },
};

const VERSION: u8 = 1;

/// The largest envelope a peer may send (a DIFF of many entries or a SNAP of a big
/// tree); the transport refuses bigger frames before decoding.
pub const ENVELOPE_BYTES_MAX: usize = 256 * 1024 * 1024;

// Tags: fixed forever (peers of different versions must agree).
const VOTE: u8 = 1;
const FOLLOWER_INFO: u8 = 2;
const LEADER_INFO: u8 = 3;
const ACK_EPOCH: u8 = 4;
const TRUNC: u8 = 5;
const DIFF: u8 = 6;
const SNAP: u8 = 7;
const NEW_LEADER: u8 = 8;
const ACK_NEW_LEADER: u8 = 9;
const UP_TO_DATE: u8 = 10;
const PROPOSE: u8 = 11;
const ACK: u8 = 12;
const COMMIT: u8 = 13;
const PING: u8 = 14;
const PING_ACK: u8 = 15;
/// An AckEpoch from a damaged member (a tag of its own, so that a peer of an older
/// version drops it instead of counting it).
const ACK_EPOCH_DAMAGED: u8 = 16;
/// A SNAP with the leader's configuration.
const SNAP_CONFIG: u8 = 17;
const TAKE_OVER: u8 = 18;
const READ_INDEX: u8 = 19;
const READ_INDEX_REPLY: u8 = 20;
const READ_PROBE: u8 = 21;
const READ_PROBE_ACK: u8 = 22;

/// A Vote's `looking` byte: settled, looking, or looking from a damaged member (a
/// value an older peer's decoder refuses, so it never counts such a vote).
const SETTLED: u8 = 0;
const LOOKING: u8 = 1;
const LOOKING_DAMAGED: u8 = 2;

/// Smallest encoding of one entry (zxid varint + empty length): bounds a count.
const ENTRY_BYTES_MIN: usize = 2;

pub fn encode_envelope(envelope: &Envelope) -> Vec<u8> {
    let mut out = Out(Vec::with_capacity(32));
    out.0.push(VERSION);
    out.varint(envelope.from);
    out.varint(envelope.to);
    match &envelope.message {
        Message::Vote { round, leader, leader_zxid, leader_epoch, looking, damaged } => {
            out.0.push(VOTE);
            out.varint(*round);
            out.varint(*leader);
            out.zxid(*leader_zxid);
            out.varint(u64::from(*leader_epoch));
            out.0.push(match (*looking, *damaged) {
                (false, _) => SETTLED,
                (true, false) => LOOKING,
                (true, true) => LOOKING_DAMAGED,
            });
        }
        Message::FollowerInfo { accepted_epoch, last_zxid } => {
            out.0.push(FOLLOWER_INFO);
            out.varint(u64::from(*accepted_epoch));
            out.zxid(*last_zxid);
        }
        Message::LeaderInfo { epoch } => {
            out.0.push(LEADER_INFO);
            out.varint(u64::from(*epoch));
        }
        Message::AckEpoch { current_epoch, last_zxid, damaged } => {
            out.0.push(if *damaged { ACK_EPOCH_DAMAGED } else { ACK_EPOCH });
            out.varint(u64::from(*current_epoch));
            out.zxid(*last_zxid);
        }
        Message::Trunc { epoch, zxid } => {
            out.0.push(TRUNC);
            out.varint(u64::from(*epoch));
            out.zxid(*zxid);
        }
        Message::Diff { epoch, prev, entries } => {
            out.0.push(DIFF);
            out.varint(u64::from(*epoch));
            out.zxid(*prev);
            out.varint(entries.len() as u64);
            for entry in entries {
                out.entry(entry);
            }
        }
        Message::Snap { epoch, zxid, data, config } => {
            out.0.push(if config.is_some() { SNAP_CONFIG } else { SNAP });
            out.varint(u64::from(*epoch));
            out.zxid(*zxid);
            out.bytes(data);
            if let Some(config) = config {
                out.zxid(config.version);
                out.bytes(&encode_config_entry(&config.members));
            }
        }
        Message::NewLeader { epoch, last_zxid } => {
            out.0.push(NEW_LEADER);
            out.varint(u64::from(*epoch));
            out.zxid(*last_zxid);
        }
        Message::AckNewLeader { epoch, last_zxid } => {
            out.0.push(ACK_NEW_LEADER);
            out.varint(u64::from(*epoch));
            out.zxid(*last_zxid);
        }
        Message::UpToDate { epoch, committed } => {
            out.0.push(UP_TO_DATE);
            out.varint(u64::from(*epoch));
            out.zxid(*committed);
        }
        Message::Propose { entry } => {
            out.0.push(PROPOSE);
            out.entry(entry);
        }
        Message::Ack { zxid } => {
            out.0.push(ACK);
            out.zxid(*zxid);
        }
        Message::Commit { epoch, zxid } => {
            out.0.push(COMMIT);
            out.varint(u64::from(*epoch));
            out.zxid(*zxid);
        }
        Message::Ping { epoch, committed } => {
            out.0.push(PING);
            out.varint(u64::from(*epoch));
            out.zxid(*committed);
        }
        Message::ReadIndex { ctx } => {
            out.0.push(READ_INDEX);
            out.varint(*ctx);
        }
        Message::ReadIndexReply { ctx, index } => {
            out.0.push(READ_INDEX_REPLY);
            out.varint(*ctx);
            out.zxid(*index);
        }
        Message::ReadProbe { epoch, round } => {
            out.0.push(READ_PROBE);
            out.varint(u64::from(*epoch));
            out.varint(*round);
        }
        Message::ReadProbeAck { epoch, round } => {
            out.0.push(READ_PROBE_ACK);
            out.varint(u64::from(*epoch));
            out.varint(*round);
        }
        Message::TakeOver { epoch, leader, zxid } => {
            out.0.push(TAKE_OVER);
            out.varint(u64::from(*epoch));
            out.varint(*leader);
            out.zxid(*zxid);
        }
        Message::PingAck { epoch, last_zxid } => {
            out.0.push(PING_ACK);
            out.varint(u64::from(*epoch));
            out.zxid(*last_zxid);
        }
    }
    out.0
}

pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, QuorumError> {
    let mut input = In { bytes, pos: 0 };
    let version = input.u8()?;
    if version != VERSION {
        return Err(input.invalid(0, format!("unknown version {version}")));
    }
    let from = input.varint()?;
    let to = input.varint()?;
    let at = input.pos;
    let message = match input.u8()? {
        VOTE => {
            let (round, leader, leader_zxid, leader_epoch) =
                (input.varint()?, input.varint()?, input.zxid()?, input.u32()?);
            let state_at = input.pos;
            let (looking, damaged) = match input.u8()? {
                SETTLED => (false, false),
                LOOKING => (true, false),
                LOOKING_DAMAGED => (true, true),
                other => return Err(input.invalid(state_at, format!("bad vote state {other}"))),
            };
            Message::Vote { round, leader, leader_zxid, leader_epoch, looking, damaged }
        }
        FOLLOWER_INFO => {
            Message::FollowerInfo { accepted_epoch: input.u32()?, last_zxid: input.zxid()? }
        }
        LEADER_INFO => Message::LeaderInfo { epoch: input.u32()? },
        tag @ (ACK_EPOCH | ACK_EPOCH_DAMAGED) => Message::AckEpoch {
            current_epoch: input.u32()?,
            last_zxid: input.zxid()?,
            damaged: tag == ACK_EPOCH_DAMAGED,
        },
        TRUNC => Message::Trunc { epoch: input.u32()?, zxid: input.zxid()? },
        DIFF => {
            let epoch = input.u32()?;
            let prev = input.zxid()?;
            let count = input.count(ENTRY_BYTES_MIN)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(input.entry()?);
            }
            Message::Diff { epoch, prev, entries }
        }
        SNAP => Message::Snap {
            epoch: input.u32()?,
            zxid: input.zxid()?,
            data: input.bytes()?,
            config: None,
        },
        SNAP_CONFIG => {
            let (epoch, zxid, data) = (input.u32()?, input.zxid()?, input.bytes()?);
            let version = input.zxid()?;
            let at = input.pos;
            let members = decode_config_entry(&input.bytes()?)
                .ok_or_else(|| input.invalid(at, "not a valid configuration".into()))?;
            Message::Snap { epoch, zxid, data, config: Some(Membership { version, members }) }
        }
        READ_INDEX => Message::ReadIndex { ctx: input.varint()? },
        READ_INDEX_REPLY => Message::ReadIndexReply { ctx: input.varint()?, index: input.zxid()? },
        READ_PROBE => Message::ReadProbe { epoch: input.u32()?, round: input.varint()? },
        READ_PROBE_ACK => Message::ReadProbeAck { epoch: input.u32()?, round: input.varint()? },
        TAKE_OVER => {
            Message::TakeOver { epoch: input.u32()?, leader: input.varint()?, zxid: input.zxid()? }
        }
        NEW_LEADER => Message::NewLeader { epoch: input.u32()?, last_zxid: input.zxid()? },
        ACK_NEW_LEADER => Message::AckNewLeader { epoch: input.u32()?, last_zxid: input.zxid()? },
        UP_TO_DATE => Message::UpToDate { epoch: input.u32()?, committed: input.zxid()? },
        PROPOSE => Message::Propose { entry: input.entry()? },
        ACK => Message::Ack { zxid: input.zxid()? },
        COMMIT => Message::Commit { epoch: input.u32()?, zxid: input.zxid()? },
        PING => Message::Ping { epoch: input.u32()?, committed: input.zxid()? },
        PING_ACK => Message::PingAck { epoch: input.u32()?, last_zxid: input.zxid()? },
        tag => return Err(input.invalid(at, format!("unknown message tag {tag}"))),
    };
    if input.pos != bytes.len() {
        return Err(input.invalid(input.pos, format!("{} trailing bytes", bytes.len() - input.pos)));
    }
    Ok(Envelope { from, to, message })
}

struct Out(Vec<u8>);

impl Out {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn zxid(&mut self, zxid: Zxid) {
        self.varint(zxid.as_u64());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn entry(&mut self, entry: &Entry) {
        self.zxid(entry.zxid);
        self.bytes(&entry.data);
    }
}

struct In<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl In<'_> {
    fn invalid(&self, offset: usize, reason: String) -> QuorumError {
        QuorumError::Decode { offset, reason }
    }

    fn u8(&mut self) -> Result<u8, QuorumError> {
        let byte = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.invalid(self.pos, "unexpected end of input".to_owned()))?;
        self.pos += 1;
        Ok(byte)
    }

    /// A canonical LEB128 u64: at most 10 bytes, no redundant trailing zero byte.
    fn varint(&mut self) -> Result<u64, QuorumError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.u8()?;
            let part = u64::from(byte & 0x7f);
            if shift == 63 && part > 1 {
                return Err(self.invalid(start, "varint overflows u64".to_owned()));
            }
            value |= part << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(self.invalid(start, "non-canonical varint".to_owned()));
                }
                return Ok(value);
            }
        }
        Err(self.invalid(start, "varint longer than 10 bytes".to_owned()))
    }

    fn u32(&mut self) -> Result<u32, QuorumError> {
        let at = self.pos;
        let value = self.varint()?;
        u32::try_from(value).map_err(|_| self.invalid(at, format!("{value} does not fit in u32")))
    }

    fn zxid(&mut self) -> Result<Zxid, QuorumError> {
        Ok(Zxid::from_u64(self.varint()?))
    }

    /// A count of items of at least `item_bytes_min` bytes each: never more than the
    /// remaining input could hold, so it can size an allocation.
    fn count(&mut self, item_bytes_min: usize) -> Result<usize, QuorumError> {
        let at = self.pos;
        let count = self.varint()?;
        let remaining = (self.bytes.len() - self.pos) / item_bytes_min;
        match usize::try_from(count) {
            Ok(count) if count <= remaining => Ok(count),
            _ => Err(self.invalid(at, format!("count {count} exceeds the input"))),
        }
    }

    fn bytes(&mut self) -> Result<Bytes, QuorumError> {
        let len = self.count(1)?;
        let data = Bytes::copy_from_slice(&self.bytes[self.pos..self.pos + len]);
        self.pos += len;
        Ok(data)
    }

    fn entry(&mut self) -> Result<Entry, QuorumError> {
        Ok(Entry { zxid: self.zxid()?, data: self.bytes()? })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn zxid() -> impl Strategy<Value = Zxid> {
        any::<u64>().prop_map(Zxid::from_u64)
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (zxid(), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(zxid, data)| Entry { zxid, data: data.into() })
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u64>(), any::<u64>(), zxid(), any::<u32>(), any::<bool>(), any::<bool>())
                .prop_map(|(round, leader, leader_zxid, leader_epoch, looking, damaged)| {
                    Message::Vote {
                        round,
                        leader,
                        leader_zxid,
                        leader_epoch,
                        looking,
                        // Only a looking vote says whether its sender is damaged.
                        damaged: looking && damaged,
                    }
                }),
            (any::<u32>(), zxid()).prop_map(|(accepted_epoch, last_zxid)| {
                Message::FollowerInfo { accepted_epoch, last_zxid }
            }),
            any::<u32>().prop_map(|epoch| Message::LeaderInfo { epoch }),
            (any::<u32>(), zxid(), any::<bool>()).prop_map(
                |(current_epoch, last_zxid, damaged)| Message::AckEpoch {
                    current_epoch,
                    last_zxid,
                    damaged
                }
            ),
            (any::<u32>(), zxid()).prop_map(|(epoch, zxid)| Message::Trunc { epoch, zxid }),
            (any::<u32>(), zxid(), prop::collection::vec(entry(), 0..4))
                .prop_map(|(epoch, prev, entries)| Message::Diff { epoch, prev, entries }),
            (any::<u32>(), zxid(), prop::collection::vec(any::<u8>(), 0..16)).prop_map(
                |(epoch, zxid, data)| Message::Snap {
                    epoch,
                    zxid,
                    data: data.into(),
                    config: None
                }
            ),
            (any::<u32>(), zxid(), zxid(), 1..5u64).prop_map(|(epoch, zxid, version, n)| {
                let members = (1..=n)
                    .map(|id| crate::zab::Member { id, voter: id != 2, addr: format!("h{id}:1") })
                    .collect();
                Message::Snap {
                    epoch,
                    zxid,
                    data: Bytes::new(),
                    config: Some(Membership { version, members }),
                }
            }),
            (any::<u32>(), any::<u64>(), zxid())
                .prop_map(|(epoch, leader, zxid)| Message::TakeOver { epoch, leader, zxid }),
            any::<u64>().prop_map(|ctx| Message::ReadIndex { ctx }),
            (any::<u64>(), zxid()).prop_map(|(ctx, index)| Message::ReadIndexReply { ctx, index }),
            (any::<u32>(), any::<u64>())
                .prop_map(|(epoch, round)| Message::ReadProbe { epoch, round }),
            (any::<u32>(), any::<u64>())
                .prop_map(|(epoch, round)| Message::ReadProbeAck { epoch, round }),
            (any::<u32>(), zxid())
                .prop_map(|(epoch, last_zxid)| Message::NewLeader { epoch, last_zxid }),
            (any::<u32>(), zxid())
                .prop_map(|(epoch, last_zxid)| Message::AckNewLeader { epoch, last_zxid }),
            (any::<u32>(), zxid())
                .prop_map(|(epoch, committed)| Message::UpToDate { epoch, committed }),
            entry().prop_map(|entry| Message::Propose { entry }),
            zxid().prop_map(|zxid| Message::Ack { zxid }),
            (any::<u32>(), zxid()).prop_map(|(epoch, zxid)| Message::Commit { epoch, zxid }),
            (any::<u32>(), zxid())
                .prop_map(|(epoch, committed)| Message::Ping { epoch, committed }),
            (any::<u32>(), zxid())
                .prop_map(|(epoch, last_zxid)| Message::PingAck { epoch, last_zxid }),
        ]
    }

    fn envelope() -> impl Strategy<Value = Envelope> {
        (any::<u64>(), any::<u64>(), message()).prop_map(|(from, to, message)| Envelope {
            from,
            to,
            message,
        })
    }

    proptest! {
        #[test]
        fn round_trips(envelope in envelope()) {
            let bytes = encode_envelope(&envelope);
            prop_assert_eq!(decode_envelope(&bytes).unwrap(), envelope);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_envelope(&bytes);
        }

        #[test]
        fn mutated_envelopes_never_panic(envelope in envelope(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
            let mut bytes = encode_envelope(&envelope);
            let i = at.index(bytes.len());
            if cut { bytes.truncate(i) } else { bytes[i] ^= byte }
            let _ = decode_envelope(&bytes);
        }
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let mut bytes = vec![VERSION, 1, 2, DIFF, 1, 0];
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        let error = decode_envelope(&bytes).unwrap_err();
        assert!(error.to_string().contains("exceeds the input"), "{error}");
    }

    #[test]
    fn trailing_bytes_and_unknown_tags_are_refused() {
        let ack = Envelope { from: 1, to: 2, message: Message::Ack { zxid: Zxid::new(1, 1) } };
        let mut bytes = encode_envelope(&ack);
        bytes.push(0);
        assert!(decode_envelope(&bytes).is_err());
        assert!(decode_envelope(&[VERSION, 1, 2, 99]).is_err());
        assert!(decode_envelope(&[2, 1, 2, ACK, 0]).is_err());
    }
}
