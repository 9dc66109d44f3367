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

/// Runs `work` on the shard's blocking thread and completes with its
/// result; the shard goes on serving other tasks meanwhile. For anything
/// that costs more than a few microseconds of CPU (bcrypt, Ed25519).
pub async fn spawn_blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(work).await
}
