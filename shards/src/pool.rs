//! The shard pool: one glommio executor per shard, each on its own thread.
//!
//! We build executors ourselves (one `LocalExecutorBuilder::make` per thread)
//! rather than with glommio's pool builder because that one reports a failed
//! executor only at join time and gives its closure no shard index. Here each
//! thread reports "ready" or its error before the broker goes on.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

/// glommio registers `io_memory` on each of its three rings, charged against
/// RLIMIT_MEMLOCK. It only serves DMA file I/O, which a broker does not do,
/// so we take the floor.
pub const SHARD_IO_MEMORY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub shard_count: usize,
    /// Pin shard i to the i-th online CPU.
    pub pin: bool,
    /// Busy-poll this long before parking (pinned shards only: glommio drops
    /// it for unbound executors).
    pub spin_before_park: Option<Duration>,
    /// How long a task may run before `yield_if_needed` yields.
    pub preempt_timer: Duration,
}

#[derive(Debug)]
pub struct ShardStartError(pub String);

impl std::fmt::Display for ShardStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShardStartError {}

/// Running shards. Dropping this does not stop them; the shard bodies decide
/// when they end, and [`ShardPool::join`] waits for that.
pub struct ShardPool {
    threads: Vec<JoinHandle<()>>,
}

impl ShardPool {
    /// Starts `config.shard_count` executors and runs `body(shard_id)` on
    /// each. Returns once every executor is running, or the first start-up
    /// error. `body` runs on the shard's thread, so its future need not be `Send`.
    pub fn start<F, Fut>(config: &PoolConfig, body: F) -> Result<ShardPool, ShardStartError>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        crate::preflight::check_host().map_err(ShardStartError)?;
        let cpus: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        // Blocking work (password hashing, signature checks) runs on one
        // unpinned thread per shard at the lowest priority, so the shard
        // keeps serving its connections meanwhile. One, not one per CPU:
        // measured on a 2-vCPU box with one shard (auth-stall.sh, 10 bcrypt
        // logins/s, BENCHMARKS.md), one thread kept the other clients'
        // fixed-rate p99 at 1.2 ms (nats-server 3.7-4.4 ms); two doubled the
        // bcrypt login rate (33/s, nats-server's) but took that p99 to
        // 3.1 ms. Steady latency wins over login throughput.
        let blocking_threads = 1;
        let body = Arc::new(body);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<usize, String>>();
        let mut threads = Vec::with_capacity(config.shard_count);
        for shard in 0..config.shard_count {
            let placement = match (config.pin, cpus.is_empty()) {
                (true, false) => Placement::Fixed(cpus[shard % cpus.len()]),
                _ => Placement::Unbound,
            };
            let mut builder = LocalExecutorBuilder::new(placement)
                .name(&format!("shard-{shard}"))
                .io_memory(SHARD_IO_MEMORY)
                .preempt_timer(config.preempt_timer)
                .blocking_thread_pool_placement(glommio::PoolPlacement::Unbound(blocking_threads));
            if let (true, Some(spin)) = (config.pin, config.spin_before_park) {
                builder = builder.spin_before_park(spin);
            }
            let body = body.clone();
            let ready_tx = ready_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("shard-{shard}"))
                .spawn(move || match builder.make() {
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!(
                            "shard {shard} could not start its io_uring executor: {e}"
                        )));
                    }
                    Ok(executor) => {
                        let _ = ready_tx.send(Ok(shard));
                        executor.run(body(shard));
                    }
                })
                .map_err(|e| ShardStartError(format!("cannot start shard thread {shard}: {e}")))?;
            threads.push(thread);
        }
        drop(ready_tx);
        for _ in 0..config.shard_count {
            match ready_rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(message)) => return Err(ShardStartError(message)),
                Err(_) => return Err(ShardStartError("a shard thread died while starting".into())),
            }
        }
        Ok(ShardPool { threads })
    }

    /// Waits for every shard body to finish.
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }

    /// True once every shard thread has ended.
    pub fn all_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }
}
