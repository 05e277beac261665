//! A small 64-bit hash that is the same on every platform, process and Rust version.
//!
//! The tree digest is compared between replicas (and between a tree and its
//! snapshot), so the hash must never depend on `std`'s `DefaultHasher` (whose
//! algorithm may change between Rust releases) or on a random seed. Every input is
//! fed as explicit little-endian bytes; the mixing is word-at-a-time multiply-rotate
//! with a final avalanche (MurmurHash3's `fmix64`). It is not cryptographic: the
//! digest detects divergence, it does not resist an adversary.

/// Odd 64-bit constant (2^64 / golden ratio), a common multiplicative mixer.
const K: u64 = 0x9E37_79B9_7F4A_7C15;
/// FNV-1a's 64-bit offset basis, used only as a fixed, non-zero seed.
const SEED: u64 = 0xCBF2_9CE4_8422_2325;

/// An incremental stable hasher.
#[derive(Debug, Clone)]
pub(crate) struct StableHasher {
    state: u64,
}

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher { state: SEED }
    }
}

impl StableHasher {
    fn mix(&mut self, word: u64) {
        self.state = (self.state.rotate_left(23) ^ word).wrapping_mul(K);
    }

    pub(crate) fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    pub(crate) fn write_i64(&mut self, value: i64) {
        self.mix(value as u64);
    }

    /// Length-prefixed, so that ("ab", "c") and ("a", "bc") hash differently.
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        self.mix(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word));
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        fmix64(self.state)
    }
}

/// MurmurHash3's finaliser: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^= h >> 33;
    h
}

/// The hash of a byte string on its own (a node's data hash is cached).
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = StableHasher::default();
    hasher.write_bytes(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_pinned() {
        // These values are part of the digest's definition: if they change, replicas
        // running different builds would disagree. Change them only on purpose.
        assert_eq!(hash_bytes(b""), 0xc39b_a6ce_0c13_aa3f);
        assert_eq!(hash_bytes(b"baton digest, 27 bytes long"), 0x1264_d22b_c813_1b40);
    }

    #[test]
    fn length_prefix_separates_fields() {
        let mut a = StableHasher::default();
        a.write_bytes(b"ab");
        a.write_bytes(b"c");
        let mut b = StableHasher::default();
        b.write_bytes(b"a");
        b.write_bytes(b"bc");
        assert_ne!(a.finish(), b.finish());
        assert_ne!(hash_bytes(b"\0"), hash_bytes(b""));
        assert_ne!(hash_bytes(b"12345678"), hash_bytes(b"123456789"));
    }
}
