//! The executor behind both throughput-signal test binaries (glommio patch
//! 16): its main ring completes far more than `ring_depth` requests.

use glommio::{LocalExecutorBuilder, ParkStats};

use super::file_reads::after_file_reads;

/// Main-ring completions to make: enough for the throughput preemption
/// timer (one per `ring_depth` = 128 completions) to fire a dozen times.
pub const READS: usize = 2_000;

/// Reads a small file `READS` times on a fresh executor and returns its
/// park statistics.
pub fn park_stats_after_many_reads(name: &str) -> ParkStats {
    after_file_reads(LocalExecutorBuilder::default(), name, READS, || {
        glommio::executor().park_stats()
    })
}
