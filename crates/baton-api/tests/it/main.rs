//! Integration tests of baton-api: what arrives off the wire.

mod fuzz_requests;
