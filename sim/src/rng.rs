//! Seeded randomness, forked per concern.
//!
//! One `u64` seed drives a whole run. Every part of the world that draws random numbers
//! (network latency, workload, faults, ...) gets its own ChaCha20 stream, derived from the
//! seed and the concern's name, so that a new draw in one concern never shifts the numbers
//! another concern sees (see `DESIGN.md`, decision 2).

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// A deterministic random stream for one concern of one run.
pub struct SimRng {
    inner: ChaCha20Rng,
}

impl SimRng {
    /// The stream for `concern` (e.g. `"net"`, `"workload"`) of the run with `seed`.
    /// The same pair always gives the same stream; different concerns give unrelated ones.
    pub fn fork(seed: u64, concern: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"ldk-dst/rng/v1");
        h.update(seed.to_be_bytes());
        h.update(concern.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        SimRng { inner: ChaCha20Rng::from_seed(key) }
    }

    /// A uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform value in `lo..=hi` (inclusive). Panics if `lo > hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        // Rejection sampling keeps the draw unbiased.
        let n = span + 1;
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return lo + v % n;
            }
        }
    }

    /// `true` with probability `p` (clamped to `0.0..=1.0`).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A uniformly chosen index into a slice of `len` items. Panics if `len == 0`.
    pub fn index(&mut self, len: usize) -> usize {
        assert!(len > 0, "cannot choose from nothing");
        self.range(0, len as u64 - 1) as usize
    }

    /// 32 random bytes (key material, entropy handed to LDK).
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.inner.fill_bytes(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forks_are_reproducible_and_independent() {
        let a1: Vec<u64> = (0..4)
            .map({
                let mut r = SimRng::fork(7, "net");
                move |_| r.next_u64()
            })
            .collect();
        let a2: Vec<u64> = (0..4)
            .map({
                let mut r = SimRng::fork(7, "net");
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = SimRng::fork(7, "disk");
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = SimRng::fork(8, "net");
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    #[test]
    fn range_stays_in_bounds_and_covers_it() {
        let mut r = SimRng::fork(1, "t");
        let mut seen = [false; 5];
        for _ in 0..500 {
            let v = r.range(10, 14);
            assert!((10..=14).contains(&v));
            seen[(v - 10) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }
}
