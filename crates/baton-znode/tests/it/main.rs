//! The crate's one integration-test binary: golden script files and property tests,
//! through the public API only.

mod golden;
mod props;
mod script;
mod strategies;
