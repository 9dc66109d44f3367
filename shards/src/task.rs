//! Spawning and cooperative scheduling on the current shard.

use std::future::Future;
use std::time::Duration;

/// A handle to a task on this shard. Dropping it cancels the task; call
/// [`Task::detach`] to let it run on its own.
pub use glommio::task::JoinHandle;
pub use glommio::Task;

/// Spawns a task on the current shard's executor.
pub fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    glommio::spawn_local(future)
}

/// Which of its shard's two task queues a task runs in.
///
/// glommio looks at a shard's sockets only when its ready tasks run out or
/// a preemption timer fires, and a task its sockets wake queues behind
/// every task already ready in its queue. A flood of new connections
/// (thousands of connects a second, or ones that send garbage) would then
/// hold the messages of connections already being served for as long as
/// the flood's work takes: 54 ms at p99 for a 2 000 msgs/s pair beside
/// 2 000 connects a second (`benches/hostile.sh`, random mode). So the
/// work of taking a connection in runs in a queue of its own, scheduled
/// against the established connections by glommio's shares and with short
/// turns: while newcomers are queued the shard polls its sockets at least
/// every [`NEWCOMER_TURN`], and established connections get the larger
/// share of the CPU when both want it.
///
/// Concurrency contract: the lane's queue belongs to the shard that
/// opened it ([`open_newcomer_lane`]); a task spawned into a lane runs on
/// the calling shard, as every task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Connections that have finished their handshake, routes, and the
    /// shard's own work: glommio's default queue.
    Established,
    /// The accept loop and connections until their CONNECT is accepted.
    Newcomers,
}

/// How long the newcomers' queue runs before the shard looks at its
/// sockets again, while it has work (glommio's `Latency::Matters`). In
/// the random-bytes flood above, the pair's p99 was 1.4 ms with 250 µs
/// and 1.9–2.7 ms with 1 ms (one run each, busy box); the timer runs only
/// while newcomers are queued, so the idle path does not pay for it.
pub const NEWCOMER_TURN: Duration = Duration::from_micros(250);
/// The newcomers' share of a contended shard against the established
/// lane's 1 000 (glommio's default queue): one fifth of the CPU, so a
/// flood cannot take more, yet connects keep being served while the
/// established connections keep the shard busy.
const NEWCOMER_SHARES: usize = 250;

thread_local! {
    static NEWCOMERS: std::cell::Cell<Option<glommio::TaskQueueHandle>> =
        const { std::cell::Cell::new(None) };
}

/// Creates the current shard's newcomers queue; call once, from the shard,
/// before spawning into [`Lane::Newcomers`]. Until then (and on a thread
/// that is no shard) that lane is the established one.
pub fn open_newcomer_lane() {
    let handle = glommio::executor().create_task_queue(
        glommio::Shares::Static(NEWCOMER_SHARES),
        glommio::Latency::Matters(NEWCOMER_TURN),
        "newcomers",
    );
    NEWCOMERS.with(|lane| lane.set(Some(handle)));
}

/// Spawns a task on the current shard, in `lane`'s queue.
pub fn spawn_in<T: 'static>(lane: Lane, future: impl Future<Output = T> + 'static) -> Task<T> {
    let handle = match lane {
        Lane::Established => None,
        Lane::Newcomers => NEWCOMERS.with(|lane| lane.get()),
    }
    .unwrap_or_default();
    match glommio::spawn_local_into(future, handle) {
        Ok(task) => task,
        // Only a handle of another executor could fail, and the lane's
        // handle is this thread's own.
        Err(e) => unreachable!("spawning into this shard's own task queue: {e}"),
    }
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
