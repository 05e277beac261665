//! Both stores pass the same conformance suite.

use std::path::PathBuf;

use baton_log::conformance::{self, StoreHarness};
use baton_log::{MemStore, SledOptions, SledStore};
use tempfile::TempDir;

/// A restart of a [`MemStore`] is a crash: only the durable state comes back.
struct MemHarness;

impl StoreHarness for MemHarness {
    type Store = MemStore;

    fn open(&mut self) -> MemStore {
        MemStore::new()
    }

    fn reopen(&mut self, store: MemStore) -> MemStore {
        store.crash()
    }
}

/// Every `open` gets a fresh directory; `reopen` opens the last one again.
struct SledHarness {
    root: TempDir,
    opened: usize,
    current: PathBuf,
    options: SledOptions,
}

impl SledHarness {
    fn new(options: SledOptions) -> SledHarness {
        let root = tempfile::tempdir().expect("temp dir");
        let current = root.path().to_path_buf();
        SledHarness { root, opened: 0, current, options }
    }
}

impl StoreHarness for SledHarness {
    type Store = SledStore;

    fn open(&mut self) -> SledStore {
        self.opened += 1;
        self.current = self.root.path().join(format!("store-{}", self.opened));
        SledStore::open_with(&self.current, self.options.clone()).expect("open a new sled store")
    }

    fn reopen(&mut self, store: SledStore) -> SledStore {
        drop(store);
        SledStore::open_with(&self.current, self.options.clone()).expect("reopen the sled store")
    }
}

#[test]
fn mem_store_conforms() {
    conformance::run_all(&mut MemHarness);
}

#[test]
fn sled_store_conforms() {
    conformance::run_all(&mut SledHarness::new(SledOptions::default()));
}

/// Turning our syncs off must not change behaviour within one machine's life.
#[test]
fn sled_store_without_fsync_conforms() {
    conformance::run_all(&mut SledHarness::new(SledOptions {
        fsync: false,
        ..SledOptions::default()
    }));
}
