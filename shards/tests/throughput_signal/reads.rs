//! The executor behind both throughput-signal test binaries: one executor
//! that reads a file many times, so that its main ring completes far more
//! than `ring_depth` requests, and reports its park statistics.

use glommio::io::OpenOptions;
use glommio::{LocalExecutorBuilder, ParkStats};

/// Main-ring completions to make: enough for the throughput preemption
/// timer (one per `ring_depth` = 128 completions) to fire a dozen times.
pub const READS: usize = 2_000;

/// Reads a small file `READS` times on a fresh executor and returns its
/// park statistics.
pub fn park_stats_after_many_reads(name: &str) -> ParkStats {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let file_path = path.clone();
    let executor = LocalExecutorBuilder::default().make().expect("executor");
    let stats = executor.run(async move {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(&file_path)
            .await
            .expect("open");
        file.write_at(vec![3u8; 64], 0).await.expect("write");
        for _ in 0..READS {
            let read = file.read_at(0, 64).await.expect("read");
            assert_eq!(&read[..], &[3u8; 64][..]);
        }
        file.close().await.expect("close");
        glommio::executor().park_stats()
    });
    let _ = std::fs::remove_file(path);
    stats
}
