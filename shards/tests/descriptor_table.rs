//! The descriptor table is grown before the shards start, so no accept on a
//! shard waits for the kernel to double it (an RCU grace period in a process
//! with threads: `shards::preflight::pregrow_descriptor_table`).

use shards::preflight::{pregrow_descriptor_table, PREGROWN_DESCRIPTORS};

/// `FDSize` of /proc/self/status: the slots of this process's table.
fn table_slots() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("FDSize:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("FDSize in /proc/self/status")
}

#[test]
fn the_table_holds_the_open_files_limit_before_any_connection() {
    shards::preflight::raise_open_files();
    let soft = shards::rlimit::current(libc::RLIMIT_NOFILE)
        .expect("RLIMIT_NOFILE")
        .soft;
    let wanted = soft.min(PREGROWN_DESCRIPTORS);
    // A fresh test process holds a few dozen descriptors: the table is far
    // smaller than any open-files limit worth testing with.
    assert!(
        table_slots() < wanted,
        "table already {} slots",
        table_slots()
    );
    pregrow_descriptor_table();
    assert!(
        table_slots() >= wanted,
        "{} slots, wanted {wanted}",
        table_slots()
    );
}
