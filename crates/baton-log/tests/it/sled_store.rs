//! Behaviour of the sled store beyond the shared contract: its directory, its
//! lock, its options.

use baton_log::conformance::entries;
use baton_log::{LogError, LogStore, MARKER_FILE, SledOptions, SledStore};

#[test]
fn creates_nested_directories_and_its_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a").join("b");
    let store = SledStore::open(&dir).expect("open in a directory that does not exist yet");
    assert!(dir.join(MARKER_FILE).is_file(), "no marker file after initialisation");
    assert!(dir.join("db").is_file(), "sled's data file is where the sync code expects it");
    drop(store);
}

#[test]
fn a_second_open_of_a_live_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = SledStore::open(tmp.path()).unwrap();
    store.append(&entries(1..=3)).unwrap();

    let impatient = SledOptions { lock_wait_ms: 0, ..SledOptions::default() };
    match SledStore::open_with(tmp.path(), impatient) {
        Err(LogError::Locked { path }) => assert_eq!(path, tmp.path()),
        other => panic!("a second open while the first is live returned {other:?}"),
    }
    // The live store is unaffected.
    store.flush().unwrap();
    assert_eq!(store.read(0, 10).unwrap(), entries(1..=3));
}

#[test]
fn a_file_in_place_of_the_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("not-a-dir");
    std::fs::write(&path, b"hello").unwrap();
    assert!(SledStore::open(&path).is_err(), "opened a store in a regular file");
}
