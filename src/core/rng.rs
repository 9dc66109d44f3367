//! A small per-shard pseudo-random generator for queue-group picks. It needs
//! to be fast and uniform enough, not unpredictable, and it must not be shared
//! between shards (no locks, no atomics on the publish path).

/// xorshift64* (Vigna), seeded per shard.
pub struct FastRng {
    state: u64,
}

impl FastRng {
    /// The same seed gives the same sequence (the simulation replays runs
    /// from it); the server seeds each shard from the clock.
    pub fn seeded(seed: u64) -> FastRng {
        FastRng { state: seed | 1 }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..bound` (`bound` > 0), by multiply-shift (Lemire).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::FastRng;

    #[test]
    fn below_stays_in_range_and_spreads() {
        let mut rng = FastRng::seeded(7);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[rng.below(3) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
