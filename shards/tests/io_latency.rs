//! glommio patch 15 (shards/glommio/PATCHES.md): the reactor stamps a
//! source's queue, submit and completion times only for a source that
//! records its latency. On an executor built with `record_io_latencies`,
//! buffered file reads still feed the latency sketches, one sample per read
//! in each, and with the option off nothing is recorded.

#[path = "common/file_reads.rs"]
mod file_reads;

use file_reads::after_file_reads;
use glommio::LocalExecutorBuilder;

/// Reads a 4 KiB file `reads` times and returns how many samples each of
/// the three latency sketches of the executor's rings holds.
fn latency_samples(record: bool, reads: usize) -> [usize; 3] {
    after_file_reads(
        LocalExecutorBuilder::default().record_io_latencies(record),
        &format!("io-latency-{record}"),
        reads,
        || {
            let stats = glommio::executor().io_stats().all_rings();
            [
                stats.pre_reactor_io_scheduler_latency_us().count(),
                stats.io_latency_us().count(),
                stats.post_reactor_io_scheduler_latency_us().count(),
            ]
        },
    )
}

#[test]
fn buffered_reads_feed_the_latency_sketches_when_asked_to() {
    assert_eq!(latency_samples(true, 5), [5, 5, 5]);
}

#[test]
fn nothing_is_recorded_without_the_option() {
    assert_eq!(latency_samples(false, 5), [0, 0, 0]);
}
