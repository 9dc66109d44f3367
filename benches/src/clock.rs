//! Same-host monotonic time in nanoseconds, shared by publisher and subscriber
//! threads (the send timestamp travels in the payload), and the pacing used by
//! fixed-rate (open loop) publishers.

use std::time::Duration;

/// CLOCK_MONOTONIC in ns. Comparable across threads and processes on one host.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass and nothing else.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Lowers this thread's timer slack to 1 ns so that sleeps of tens of µs end
/// close to when asked (the default slack is 50 µs, as large as the latencies
/// being measured).
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and affects only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Waits until `deadline_ns`. Sleeps rather than spins: on a 2-core box a
/// spinning load generator steals the CPU the server under test needs. The
/// last few µs are spun only when the wait is already that short.
pub fn wait_until(deadline_ns: u64) {
    loop {
        let now = now_ns();
        if now >= deadline_ns {
            return;
        }
        let left = deadline_ns - now;
        if left > 5_000 {
            std::thread::sleep(Duration::from_nanos(left - 2_000));
        } else {
            std::hint::spin_loop();
        }
    }
}
