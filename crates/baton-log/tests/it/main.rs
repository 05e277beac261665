//! The baton-log integration tests: one binary (see STYLE.md), one module per
//! concern.

mod conformance;
mod corruption;
mod fuzz_records;
mod sled_files;
mod sled_store;
