//! The one seeded generator of the tests and tools: SplitMix64 (a counter stepped by
//! the golden ratio, then mixed by xor-shifts and multiplies). Every seed is good,
//! zero included, and the nemesis' recorded seeds (docs/reliability.md) keep replaying
//! the choices they made, since the nemesis used this generator before the kit had it.

use std::time::{SystemTime, UNIX_EPOCH};

/// The variable that replays a test's time-seeded choices ([`Rng::from_env_or_time`]).
pub const SEED_VARIABLE: &str = "BATON_TEST_SEED";

/// A small deterministic generator: a run's choices follow from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from `BATON_TEST_SEED` if set, else from the clock; the seed
    /// is printed (to stderr, with `what`) so that a failure can be replayed.
    pub fn from_env_or_time(what: &str) -> Rng {
        let from_env = std::env::var(SEED_VARIABLE).ok().and_then(|s| s.parse().ok());
        let seed = from_env.unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        eprintln!("{what}: seed {seed} (replay with {SEED_VARIABLE}={seed})");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is negligible for the small `n` used).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        self.next_u64() % n
    }

    /// True with probability `per_mille`/1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A generator for a sub-task, independent of later draws from this one.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_splitmix64() {
        // The reference outputs of SplitMix64 for seed 1234567.
        let mut rng = Rng::new(1_234_567);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]
        );
    }

    #[test]
    fn draws_stay_in_range_and_forks_differ() {
        let mut rng = Rng::new(0);
        assert!((0..1000).all(|_| rng.below(7) < 7));
        assert!((0..1000).all(|_| !rng.chance(0)));
        assert!((0..1000).all(|_| rng.chance(1000)));
        assert_eq!(rng.bytes(5).len(), 5);
        let (mut a, mut b) = (rng.fork(), rng.fork());
        assert_ne!(a.next_u64(), b.next_u64());
        let items = [1, 2, 3];
        assert!(items.contains(rng.pick(&items)));
    }
}
