//! A fresh executor that reads a small file many times: main-ring
//! completions on demand, for the tests of glommio patches 15 and 16.

use glommio::io::OpenOptions;
use glommio::LocalExecutorBuilder;

/// On an executor made by `builder`, writes a 4 KiB file, reads it back
/// `reads` times (checking every byte), closes it, and returns what
/// `report` says from inside the executor.
pub fn after_file_reads<T>(
    builder: LocalExecutorBuilder,
    name: &str,
    reads: usize,
    report: impl FnOnce() -> T,
) -> T {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let file_path = path.clone();
    let executor = builder.make().expect("executor");
    let reported = executor.run(async move {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(&file_path)
            .await
            .expect("open");
        file.write_at(vec![7u8; 4096], 0).await.expect("write");
        for _ in 0..reads {
            let read = file.read_at(0, 4096).await.expect("read");
            assert_eq!(read.len(), 4096);
            assert!(read.iter().all(|&b| b == 7));
        }
        file.close().await.expect("close");
        report()
    });
    let _ = std::fs::remove_file(path);
    reported
}
