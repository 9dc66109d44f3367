//! glommio patch 16 (shards/glommio/PATCHES.md): the throughput preemption
//! timer signals the latency ring with `MSG_RING` where the kernel has it.
//! An executor that nobody else wakes then counts no foreign wake-up, and
//! the signal still reaches the latency ring once per `ring_depth`
//! completions. (On a kernel older than 5.18 this binary checks the
//! eventfd path, as `throughput_signal_legacy.rs` does.)

#[path = "common/file_reads.rs"]
mod file_reads;
#[path = "common/throughput_reads.rs"]
mod throughput_reads;

use throughput_reads::{park_stats_after_many_reads, READS};

#[test]
fn the_throughput_timer_reaches_the_latency_ring_without_a_foreign_wake_up() {
    let stats = park_stats_after_many_reads("throughput-signal");
    if !kernel_at_least(5, 18) {
        // No MSG_RING on this kernel: the eventfd carries the signal.
        assert!(stats.foreign_wakes() >= 1, "{stats:?}");
        return;
    }
    // 2 000 completions at 128 per signal: 15, give or take the first
    // timer's start and the completions of the file's own setup.
    assert!(
        stats.throughput_signals() >= (READS / 128 - 2) as u64,
        "{stats:?}"
    );
    assert_eq!(stats.foreign_wakes(), 0, "{stats:?}");
}

/// Whether the running kernel is `major.minor` or newer (`uname -r`).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
