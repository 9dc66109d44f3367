//! The delivery latency histogram: how long a shard takes from a message's
//! ingress to the socket writes that deliver it.
//!
//! Definition (one sample per unit of work, not per message): a unit of
//! work that delivered at least one message to a connection of this shard
//! (one socket read, or one ring batch from another shard) adds one sample,
//! the time from the unit's *ingress instant* to the end of the shard's
//! flush of the writes that unit caused (`ShardBroker::flush_dirty`, then
//! `ShardBroker::delivery_written`). The ingress instant is the time the
//! shard began processing the socket read that carried the publish (the
//! `now` handed to `process_input` / `process_route_input`, taken right
//! after the read completed). A message that crosses to another shard
//! keeps that instant: the ring batch carries its unit's ingress once
//! ([`crate::mesh::ShardBatch::ingress`]) and the receiving shard records
//! the sample when it flushes that batch's deliveries, so ring queuing,
//! staging and the peer's wake-up are inside the figure. Bytes a full socket
//! did not take are left to the connection's writer task; that wait is not
//! in the sample (slow consumers show in their own counters).
//!
//! Buckets are fixed and log-spaced, 1-2-5 per decade from 1 µs to 1 s
//! ([`BOUNDS_NANOS`]), plus one for anything longer; each shard keeps plain
//! counters (only its thread writes them) and monitoring sums shards on
//! request. Recording costs a few comparisons per unit of work and touches
//! nothing shared.

use std::time::Duration;

/// Upper bounds of the buckets, in nanoseconds (Prometheus `le`, inclusive).
pub const BOUNDS_NANOS: [u64; 19] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
];

/// Per-bucket counts (not cumulative) and the sum of all samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencyHistogram {
    /// `counts[i]`: samples in (`BOUNDS_NANOS[i-1]`, `BOUNDS_NANOS[i]`];
    /// the last slot holds those above the largest bound.
    counts: [u64; BOUNDS_NANOS.len() + 1],
    sum_nanos: u64,
}

impl LatencyHistogram {
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        self.counts[bucket] += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
    }

    /// Adds `other`'s samples (summing shards).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of all samples.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// (upper bound in nanoseconds, samples at or below it), ascending, as
    /// Prometheus's `_bucket{le=...}` series; the `+Inf` bucket is
    /// [`LatencyHistogram::count`].
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        BOUNDS_NANOS
            .iter()
            .zip(&self.counts)
            .scan(0u64, |below, (&bound, &count)| {
                *below += count;
                Some((bound, *below))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(histogram: &LatencyHistogram, bound: u64) -> u64 {
        histogram
            .cumulative()
            .find(|&(b, _)| b == bound)
            .map(|(_, n)| n)
            .expect("a bound")
    }

    #[test]
    fn bounds_are_inclusive_and_log_spaced() {
        assert!(BOUNDS_NANOS.windows(2).all(|w| w[0] < w[1]));
        let mut h = LatencyHistogram::default();
        h.record(Duration::from_nanos(0));
        h.record(Duration::from_nanos(1_000));
        h.record(Duration::from_nanos(1_001));
        h.record(Duration::from_micros(2));
        h.record(Duration::from_micros(3));
        assert_eq!(at(&h, 1_000), 2, "0 and exactly 1 µs are le 1 µs");
        assert_eq!(at(&h, 2_000), 4);
        assert_eq!(at(&h, 5_000), 5);
        assert_eq!(at(&h, 1_000_000_000), 5);
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum(), Duration::from_nanos(1_000 + 1_001 + 2_000 + 3_000));
    }

    #[test]
    fn beyond_the_last_bound_counts_only_in_the_total() {
        let mut h = LatencyHistogram::default();
        h.record(Duration::from_secs(1));
        h.record(Duration::from_millis(1_001));
        h.record(Duration::MAX);
        assert_eq!(at(&h, 1_000_000_000), 1);
        assert_eq!(h.count(), 3);
        assert_eq!(h.sum_nanos, u64::MAX, "the sum saturates");
    }

    #[test]
    fn cumulative_counts_never_decrease_and_end_below_the_total() {
        let mut h = LatencyHistogram::default();
        for micros in [1, 7, 7, 90, 400, 3_000, 80_000, 2_000_000] {
            h.record(Duration::from_micros(micros));
        }
        let series: Vec<(u64, u64)> = h.cumulative().collect();
        assert_eq!(series.len(), BOUNDS_NANOS.len());
        assert!(series.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(at(&h, 10_000), 3);
        assert_eq!(at(&h, 100_000), 4);
        assert_eq!(at(&h, 500_000), 5);
        assert_eq!(at(&h, 5_000_000), 6);
        assert_eq!(at(&h, 100_000_000), 7);
        assert_eq!(series.last().map(|s| s.1), Some(7));
        assert_eq!(h.count(), 8, "2 s is only in +Inf");
    }

    #[test]
    fn merging_shards_adds_buckets_and_sums() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        a.record(Duration::from_micros(3));
        b.record(Duration::from_micros(3));
        b.record(Duration::from_millis(30));
        let mut total = LatencyHistogram::default();
        total.merge(&a);
        total.merge(&b);
        assert_eq!(total.count(), 3);
        assert_eq!(at(&total, 5_000), 2);
        assert_eq!(at(&total, 50_000_000), 3);
        assert_eq!(
            total.sum(),
            Duration::from_nanos(3_000 + 3_000 + 30_000_000)
        );
    }
}
