//! Time and randomness for the pool.
//!
//! All time is read from [`tokio::time::Instant`], so every timer, deadline
//! and the CoDel detector follow tokio's clock: tests run under paused time
//! (`#[tokio::test(start_paused = true)]`) and advance it deterministically.
//! The state machines (waitlist, CoDel, backoff) never read the clock
//! themselves: they take `now` as an argument, which is what makes them
//! testable without a runtime and modelable with loom.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use tokio::time::Instant;

/// The current time on tokio's clock (paused and advanced in tests).
#[inline]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// A small, fast, non-cryptographic generator (SplitMix64) for jitter.
///
/// Jitter only has to decorrelate pools, connections and clients; it needs
/// no quality beyond that, so the crate carries these ten lines instead of a
/// dependency. The pool draws its jitter from one (seeded by
/// [`Config::jitter_seed`](crate::Config::jitter_seed)), and so do the
/// `stormpool-retry` crate's backoff and retry policy, which take one so
/// that a caller can seed a reproducible schedule.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator with a fixed seed: the same seed yields the same sequence.
    pub fn with_seed(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// A generator seeded differently on every call in this process.
    pub fn new() -> Self {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        // Relaxed: the counter only has to hand out distinct values.
        let n = SEQUENCE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng {
            state: n ^ t.rotate_left(17),
        }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform duration in `[0, max]` ("full jitter").
    pub fn jitter(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        let nanos = max.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(self.next_u64() % nanos.saturating_add(1))
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let mut rng = Rng::with_seed(7);
        let max = Duration::from_millis(3);
        for _ in 0..10_000 {
            assert!(rng.jitter(max) <= max);
        }
        assert_eq!(rng.jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn floats_are_in_unit_interval() {
        let mut rng = Rng::with_seed(1);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        let mean = sum / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    }
}
