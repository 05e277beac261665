//! Fuzz target, run as property tests: record decoding over arbitrary and mutated
//! bytes never panics, never returns a payload that was not written, and never
//! trusts a length field to size anything.

use baton_log::record;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = record::decode("log", 1, &bytes);
    }

    #[test]
    fn a_record_round_trips(payload in prop::collection::vec(any::<u8>(), 0..256)) {
        let stored = record::encode(&payload);
        prop_assert_eq!(record::decode("log", 1, &stored).unwrap(), &payload[..]);
    }

    #[test]
    fn any_single_change_is_detected(
        payload in prop::collection::vec(any::<u8>(), 0..128),
        at in any::<prop::sample::Index>(),
        flip in 1u8..,
        how in 0u8..3,
    ) {
        let mut stored = record::encode(&payload);
        let i = at.index(stored.len());
        match how {
            0 => stored[i] ^= flip,
            1 => stored.truncate(i),
            _ => stored.insert(i, flip),
        }
        // A one-byte change, a cut or an insertion: crc32 and the length field catch
        // every one of them.
        prop_assert!(record::decode("log", 1, &stored).is_err());
    }

    #[test]
    fn a_huge_declared_length_is_an_error_not_an_allocation(len in (1u32 << 20).., tail in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut stored = vec![record::VERSION];
        stored.extend_from_slice(&len.to_be_bytes());
        stored.extend_from_slice(&[0; 4]);
        stored.extend_from_slice(&tail);
        prop_assert!(record::decode("log", 1, &stored).is_err());
    }
}
