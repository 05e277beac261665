use crate::{DecodeError, Txn};

/// Encodes a txn for the commit log and the peer protocol.
pub fn encode_txn(txn: &Txn) -> Vec<u8> {
    let _ = txn;
    todo!("baton-znode helper")
}

/// Decodes bytes from `encode_txn`. Never panics and never allocates more than the
/// input could hold, whatever the bytes.
pub fn decode_txn(bytes: &[u8]) -> Result<Txn, DecodeError> {
    let _ = bytes;
    todo!("baton-znode helper")
}
