//! The lost-wake stress on glommio's older sleep path (a timeout SQE and a
//! separate link submission; what kernels before 5.11 get), forced with
//! `GLOMMIO_LEGACY_SLEEP`. Every test of this binary sets it before its
//! shards start, so all reactors of this process take that path.

#[path = "wake_stress/scenarios.rs"]
mod scenarios;

fn legacy_sleep() {
    std::env::set_var("GLOMMIO_LEGACY_SLEEP", "1");
}

#[test]
fn ring_round_trips_survive_bursts_and_gaps() {
    legacy_sleep();
    scenarios::ring_round_trips_survive_bursts_and_gaps();
}

#[test]
fn wakes_from_a_foreign_thread_all_arrive() {
    legacy_sleep();
    scenarios::wakes_from_a_foreign_thread_all_arrive();
}

#[test]
fn blocking_jobs_wake_their_shard() {
    legacy_sleep();
    scenarios::blocking_jobs_wake_their_shard();
}

#[test]
fn timers_fire_on_an_otherwise_idle_shard() {
    legacy_sleep();
    scenarios::timers_fire_on_an_otherwise_idle_shard();
}
