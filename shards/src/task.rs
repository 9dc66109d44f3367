//! Spawning and cooperative scheduling on the current shard.

use std::future::Future;

/// A handle to a task on this shard. Dropping it cancels the task; call
/// [`Task::detach`] to let it run on its own.
pub use glommio::task::JoinHandle;
pub use glommio::Task;

/// Spawns a task on the current shard's executor.
pub fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    glommio::spawn_local(future)
}

/// Yields to other tasks if this one has run past the shard's preemption
/// budget. Call it after each unit of work (one read buffer, one ring batch)
/// so that one busy connection cannot stall the shard.
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await
}

/// Lets every other ready task of this shard run before continuing.
pub async fn yield_now() {
    futures_lite::future::yield_now().await
}

/// How often the current shard's executor parked and how often another
/// thread woke it, since it started (glommio patch 8, PATCHES.md). Plain
/// per-executor counters: reading them is cheap and resets nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParkStats {
    /// Times the executor went to sleep in `io_uring_enter` (spinning and
    /// non-blocking polls are not parks).
    pub parks: u64,
    /// Times another thread (a peer shard's ring item or waker, the blocking
    /// thread) woke it through its eventfd; several notifications before it
    /// ran count once.
    pub wakeups: u64,
}

/// The current shard's [`ParkStats`]. Call it from a task on the shard.
pub fn park_stats() -> ParkStats {
    let stats = glommio::executor().park_stats();
    ParkStats {
        parks: stats.parks(),
        wakeups: stats.foreign_wakes(),
    }
}

/// Runs `work` on the shard's blocking thread and completes with its
/// result; the shard goes on serving other tasks meanwhile. For anything
/// that costs more than a few microseconds of CPU (bcrypt, Ed25519).
///
/// The blocking thread runs at the lowest priority (nice 19): on a box
/// where it shares a CPU with a shard, the scheduler then lets the shard
/// preempt it at once. At normal priority, 10 bcrypt logins a second
/// (cost 10) raised the fixed-rate p99 of other clients 16x on a 2-vCPU VM
/// (BENCHMARKS.md, "bcrypt logins").
pub async fn spawn_blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor()
        .spawn_blocking(move || {
            lower_this_thread_priority_once();
            work()
        })
        .await
}

thread_local! {
    static PRIORITY_LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn lower_this_thread_priority_once() {
    PRIORITY_LOWERED.with(|lowered| {
        if !lowered.replace(true) {
            // On Linux, PRIO_PROCESS with id 0 names the calling thread. A
            // failure leaves the thread at normal priority, which is only
            // slower for the others, so it is not an error.
            // SAFETY: plain syscall on the calling thread, no pointers.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            }
        }
    });
}
