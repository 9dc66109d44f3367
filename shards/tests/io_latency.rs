//! glommio patch 15 (shards/glommio/PATCHES.md): the reactor stamps a
//! source's queue, submit and completion times only for a source that
//! records its latency. On an executor built with `record_io_latencies`,
//! buffered file reads still feed the latency sketches, one sample per read
//! in each, and with the option off nothing is recorded.

use glommio::io::OpenOptions;
use glommio::LocalExecutorBuilder;

/// Reads a 4 KiB file `reads` times and returns how many samples each of
/// the three latency sketches of the executor's rings holds.
fn latency_samples(record: bool, reads: usize) -> [usize; 3] {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("io-latency-{}-{record}", std::process::id()));
    let executor = LocalExecutorBuilder::default()
        .record_io_latencies(record)
        .make()
        .expect("executor");
    let samples = executor.run(async move {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(&path)
            .await
            .expect("create");
        file.write_at(vec![7u8; 4096], 0).await.expect("write");
        for _ in 0..reads {
            let read = file.read_at(0, 4096).await.expect("read");
            assert_eq!(read.len(), 4096);
            assert!(read.iter().all(|&b| b == 7));
        }
        file.close().await.expect("close");
        let stats = glommio::executor().io_stats().all_rings();
        [
            stats.pre_reactor_io_scheduler_latency_us().count(),
            stats.io_latency_us().count(),
            stats.post_reactor_io_scheduler_latency_us().count(),
        ]
    });
    let _ = std::fs::remove_file(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("io-latency-{}-{record}", std::process::id())),
    );
    samples
}

#[test]
fn buffered_reads_feed_the_latency_sketches_when_asked_to() {
    assert_eq!(latency_samples(true, 5), [5, 5, 5]);
}

#[test]
fn nothing_is_recorded_without_the_option() {
    assert_eq!(latency_samples(false, 5), [0, 0, 0]);
}
