//! glommio patch 16, the path kernels older than 5.18 take, forced with
//! `GLOMMIO_NO_MSG_RING`: the throughput preemption timer writes the
//! reactor's eventfd, and its read on the latency ring completes (counted
//! as a foreign wake-up, as upstream's signal always was).

#[path = "common/file_reads.rs"]
mod file_reads;
#[path = "common/throughput_reads.rs"]
mod throughput_reads;

use throughput_reads::park_stats_after_many_reads;

#[test]
fn without_msg_ring_the_throughput_timer_signals_through_the_eventfd() {
    // The only test of this binary, so no other thread reads the
    // environment while it is set; the reactor reads it at creation.
    std::env::set_var("GLOMMIO_NO_MSG_RING", "1");
    let stats = park_stats_after_many_reads("throughput-signal-legacy");
    assert_eq!(stats.throughput_signals(), 0, "{stats:?}");
    assert!(stats.foreign_wakes() >= 1, "{stats:?}");
}
