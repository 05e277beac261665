//! Property tests: determinism across snapshots, incremental digest, codec round
//! trips, and decoders that never panic on damaged input.

use baton_znode::{DataTree, decode_txn, encode_txn};
use proptest::prelude::*;

use crate::strategies::{History, any_txn, mutate, mutations, steps};

/// Applies `steps` to a new tree, checking the digest after each; returns the
/// tree and the concrete txns.
fn build(steps: &[crate::strategies::Step]) -> DataTree {
    let mut tree = DataTree::new();
    let mut history = History::default();
    for step in steps {
        let txn = history.txn(step, &tree);
        let _ = tree.apply(&txn);
        assert_eq!(tree.digest(), tree.recompute_digest());
    }
    tree
}

/// Replaces a snapshot's trailing CRC with the right one, so a mutated body gets
/// past the checksum and exercises the structural checks.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= 4 {
        let body = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A replica restored from a snapshot at any point and fed the rest of the log
    /// ends equal to one that applied everything: same results, contents, digest.
    #[test]
    fn snapshot_then_replay_matches(steps in steps(80), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(steps.len() + 1);
        let mut a = DataTree::new();
        let mut history = History::default();
        let mut b = None;
        for (i, step) in steps.iter().enumerate() {
            if i == cut {
                b = Some(DataTree::decode_snapshot(&a.encode_snapshot()).unwrap());
            }
            let txn = history.txn(step, &a);
            let before = a.digest();
            let result = a.apply(&txn);
            // (d) the incremental digest is always the recomputed one.
            prop_assert_eq!(a.digest(), a.recompute_digest());
            if result.is_err() {
                prop_assert_eq!(a.digest(), before);
            }
            if let Some(b) = b.as_mut() {
                prop_assert_eq!(&b.apply(&txn), &result);
            }
        }
        let b = b.unwrap_or_else(|| DataTree::decode_snapshot(&a.encode_snapshot()).unwrap());
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(b.digest(), b.recompute_digest());
        prop_assert_eq!(a.last_zxid(), b.last_zxid());
        prop_assert!(a == b);
        prop_assert_eq!(a.encode_snapshot(), b.encode_snapshot());
    }

    /// A snapshot written in slices, with txns applied between the slices (creates,
    /// deletes, data, ACLs, sessions, failed multis rolled back), is byte for byte
    /// the snapshot the tree had when it began, and the tree goes on unchanged by it.
    #[test]
    fn snapshot_in_slices_is_the_tree_at_its_start(
        steps in steps(120),
        start in any::<prop::sample::Index>(),
        budgets in prop::collection::vec(1usize..6, 1..64),
    ) {
        let start = start.index(steps.len() + 1);
        let mut tree = DataTree::new();
        let mut history = History::default();
        let mut at_start = None;
        let mut encoder = None;
        let mut slices = budgets.iter().cycle();
        for (i, step) in steps.iter().enumerate() {
            if i == start {
                at_start = Some(tree.clone());
                encoder = Some(tree.begin_snapshot());
            }
            let txn = history.txn(step, &tree);
            let _ = tree.apply(&txn);
            prop_assert_eq!(tree.digest(), tree.recompute_digest());
            if let Some(encoder) = encoder.as_mut() {
                tree.continue_snapshot(encoder, *slices.next().unwrap()).unwrap();
            }
        }
        let (at_start, mut encoder) = match (at_start, encoder) {
            (Some(tree_then), Some(encoder)) => (tree_then, encoder),
            _ => (tree.clone(), tree.begin_snapshot()),
        };
        while !tree.continue_snapshot(&mut encoder, *slices.next().unwrap()).unwrap() {}
        prop_assert_eq!(encoder.zxid(), at_start.last_zxid());
        let bytes = tree.finish_snapshot(encoder).unwrap();
        prop_assert_eq!(&bytes, &at_start.encode_snapshot());
        prop_assert_eq!(tree.snapshot_recorded(), 0, "the capture ends with the snapshot");
        let decoded = DataTree::decode_snapshot(&bytes).unwrap();
        prop_assert!(decoded == at_start);
    }

    #[test]
    fn txn_round_trips(txn in any_txn()) {
        let bytes = encode_txn(&txn);
        prop_assert_eq!(decode_txn(&bytes), Ok(txn));
    }

    #[test]
    fn decode_txn_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_txn(&bytes);
    }

    #[test]
    fn decode_txn_never_panics_on_mutated_encodings(txn in any_txn(), mutations in mutations()) {
        let mut bytes = encode_txn(&txn);
        mutate(&mut bytes, &mutations);
        if let Ok(decoded) = decode_txn(&bytes) {
            if bytes.first() == Some(&1) {
                // A version-1 txn (before ACLs) is written again as version 2, the
                // only version written: it must keep its meaning.
                prop_assert_eq!(decode_txn(&encode_txn(&decoded)), Ok(decoded));
            } else {
                // Whatever decodes re-encodes to the same bytes: one txn, one encoding.
                prop_assert_eq!(encode_txn(&decoded), bytes);
            }
        }
    }

    #[test]
    fn decode_snapshot_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..128),
        sealed in any::<bool>(),
        version in 1u8..=3,
    ) {
        let mut bytes = bytes;
        if sealed {
            let mut framed = b"BATNSNAP".to_vec();
            framed.push(version);
            framed.extend_from_slice(&bytes);
            framed.extend_from_slice(&[0; 4]);
            reseal(&mut framed);
            bytes = framed;
        }
        let _ = DataTree::decode_snapshot(&bytes);
    }

    #[test]
    fn decode_snapshot_never_panics_on_mutated_encodings(
        steps in steps(25),
        mutations in mutations(),
        sealed in any::<bool>(),
    ) {
        let tree = build(&steps);
        let mut bytes = tree.encode_snapshot();
        mutate(&mut bytes, &mutations);
        if sealed {
            reseal(&mut bytes);
        }
        if let Ok(decoded) = DataTree::decode_snapshot(&bytes) {
            // Whatever passes the checks is a consistent tree.
            prop_assert_eq!(decoded.digest(), decoded.recompute_digest());
            if bytes[8] == 3 {
                prop_assert_eq!(decoded.encode_snapshot(), bytes);
            } else {
                // An older snapshot (the version byte was mutated) is re-encoded as
                // version 3, which must give back the same tree.
                let again = DataTree::decode_snapshot(&decoded.encode_snapshot());
                prop_assert_eq!(again.map(|t| t.digest()), Ok(decoded.digest()));
            }
        }
    }
}

/// The random histories reach what the properties are meant to cover: refusals
/// for want of a permission, set and exceeded quotas, soft-limit warnings and
/// changed ACLs (a strategy that never got there would pass every property).
#[test]
fn histories_reach_acls_and_quotas() {
    use baton_znode::{OpResult, ZnodeError};
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut no_auth, mut exceeded, mut quotas_set, mut warned, mut acls_set) = (0, 0, 0, 0, 0);
    for _ in 0..60 {
        let steps = steps(80).new_tree(&mut runner).unwrap().current();
        let mut tree = DataTree::new();
        let mut history = History::default();
        for step in &steps {
            match tree.apply(&history.txn(step, &tree)) {
                Ok(applied) => {
                    warned += applied.quota_warnings.len();
                    match applied.result {
                        OpResult::QuotaSet => quotas_set += 1,
                        OpResult::AclSet { .. } => acls_set += 1,
                        _ => {}
                    }
                }
                Err(e) if matches!(e.error, ZnodeError::NoAuth { .. }) => no_auth += 1,
                Err(e) if matches!(e.error, ZnodeError::QuotaExceeded { .. }) => exceeded += 1,
                Err(_) => {}
            }
        }
    }
    let counts = [no_auth, exceeded, quotas_set, warned, acls_set];
    assert!(
        counts.iter().all(|&n| n > 0),
        "NoAuth, QuotaExceeded, QuotaSet, warnings, AclSet: {counts:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Fuzz target for path parsing: any string is either a valid path whose parent
    /// and basename put it back together, or an InvalidPath error naming it.
    #[test]
    fn path_parsing_never_panics_and_is_consistent(path in prop_oneof![
        ".{0,24}".boxed(),
        "(/[a-z.\\x00\\x7f\u{e000}-\u{10ffff}]{0,3}){0,4}/?".boxed(),
    ]) {
        match baton_znode::validate_path(&path) {
            Ok(()) => {
                let base = baton_znode::basename(&path);
                match baton_znode::parent(&path) {
                    None => prop_assert_eq!(path.as_str(), "/"),
                    Some("/") => prop_assert_eq!(format!("/{base}"), path.clone()),
                    Some(parent) => {
                        prop_assert!(baton_znode::validate_path(parent).is_ok());
                        prop_assert_eq!(format!("{parent}/{base}"), path.clone());
                    }
                }
            }
            Err(baton_znode::ZnodeError::InvalidPath { path: named, .. }) => {
                prop_assert_eq!(named, path.clone());
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
