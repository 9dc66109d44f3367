//! Lost-wake stress on the sleep path this kernel allows (with Linux 5.11+,
//! patched glommio's single sleeping `io_uring_enter`). Scenarios and the
//! watchdog: `wake_stress/scenarios.rs`.

#[path = "wake_stress/scenarios.rs"]
mod scenarios;

#[test]
fn ring_round_trips_survive_bursts_and_gaps() {
    scenarios::ring_round_trips_survive_bursts_and_gaps();
}

#[test]
fn wakes_from_a_foreign_thread_all_arrive() {
    scenarios::wakes_from_a_foreign_thread_all_arrive();
}

#[test]
fn blocking_jobs_wake_their_shard() {
    scenarios::blocking_jobs_wake_their_shard();
}

#[test]
fn timers_fire_on_an_otherwise_idle_shard() {
    scenarios::timers_fire_on_an_otherwise_idle_shard();
}
