//! The scenarios of the lost-wake stress (wake_stress.rs runs them on the
//! sleep path this kernel allows, wake_stress_legacy.rs on the path older
//! kernels take). Lost-wake stress for the shards' park/wake path (our patched glommio,
//! shards/glommio/PATCHES.md). Every way a parked shard is woken gets
//! thousands of tries in bursts and after gaps long enough for the peer to
//! park: a ring item from the other shard, a waker fired by a foreign thread,
//! a blocking-pool job finishing, and its own timer with nothing else to do.
//!
//! Nothing here has a timer that could rescue a lost wake-up by accident: the
//! waiting side waits on exactly one source. A lost wake-up therefore hangs,
//! and the watchdog (a generous deadline on the whole scenario, far above its
//! normal run time) turns the hang into a failure that names the step.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use shards::mesh::RingMesh;
use shards::sync::WaitList;
use shards::{PoolConfig, ShardPool};

/// Far above any normal run (a few seconds in a debug build on 2 vCPUs); a
/// lost wake-up never finishes. `WAKE_STRESS_WATCHDOG_S` shortens it when
/// the test is run in a loop.
fn watchdog() -> Duration {
    let seconds = std::env::var("WAKE_STRESS_WATCHDOG_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

fn two_shards() -> PoolConfig {
    PoolConfig {
        shard_count: 2,
        pin: false,
        spin_before_park: None,
        preempt_timer: Duration::from_millis(100),
    }
}

/// The gap before step `i`: mostly none (bursts), sometimes a short timer
/// sleep, sometimes a blocking sleep of the whole thread so the peer parks for
/// sure. A fixed pattern, so a failure repeats.
fn gap(i: u64) -> Gap {
    match i % 97 {
        0 => Gap::BlockThread(Duration::from_micros(300 + (i % 7) * 100)),
        13 | 41 => Gap::Timer(Duration::from_micros(50 + (i % 5) * 200)),
        _ => Gap::None,
    }
}

enum Gap {
    None,
    Timer(Duration),
    BlockThread(Duration),
}

async fn take(gap: Gap) {
    match gap {
        Gap::None => {}
        Gap::Timer(d) => shards::timer::sleep(d).await,
        Gap::BlockThread(d) => std::thread::sleep(d),
    }
}

/// Waits for a scenario's report, failing with the step it got stuck at.
fn watch(
    name: &str,
    pool: ShardPool,
    reports: mpsc::Receiver<Result<(), String>>,
    expected_reports: usize,
    progress: &[AtomicU64; 2],
) {
    let deadline = Instant::now() + watchdog();
    for _ in 0..expected_reports {
        let left = deadline.saturating_duration_since(Instant::now());
        match reports.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{name}: {e}"),
            Err(_) => panic!(
                "{name}: not done within {:?}, last steps done: shard 0 {}, shard 1 {} (a lost wake-up)",
                watchdog(),
                progress[0].load(Ordering::Relaxed),
                progress[1].load(Ordering::Relaxed)
            ),
        }
    }
    pool.join();
}

/// Ring ping-pong between the shards, both directions, with bursts and gaps:
/// shard 0 sends a burst of 1..=8 items, shard 1 echoes each, shard 0 waits
/// for every echo before the next burst.
pub fn ring_round_trips_survive_bursts_and_gaps() {
    const BURSTS: u64 = 6_000;
    let ports = Mutex::new(
        RingMesh::build::<u64>(2, 4)
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>(),
    );
    let progress = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let (report_tx, report_rx) = mpsc::channel();
    let report_tx = Mutex::new(report_tx);
    let shard_progress = progress.clone();
    let pool = ShardPool::start(&two_shards(), move |shard| {
        let ports = ports.lock().unwrap()[shard].take().expect("ports");
        let report = report_tx.lock().unwrap().clone();
        let progress = shard_progress.clone();
        async move {
            let pressure = Rc::new(WaitList::new());
            let mesh = ports.connect(pressure.clone()).await;
            let peer = 1 - shard;
            let outbox = mesh.outboxes[peer].as_ref().expect("outbox");
            let inbound = mesh.inbound[peer].as_ref().expect("inbound");
            let mut next = 0u64;
            for burst in 0..BURSTS {
                let size = 1 + burst % 8;
                if shard == 0 {
                    take(gap(burst)).await;
                    for k in 0..size {
                        outbox.push(next + k);
                    }
                    for k in 0..size {
                        if inbound.recv().await != Some(next + k) {
                            let _ = report.send(Err(format!("echo {} wrong", next + k)));
                            return;
                        }
                    }
                } else {
                    for k in 0..size {
                        match inbound.recv().await {
                            Some(v) if v == next + k => {}
                            other => {
                                let _ = report.send(Err(format!("got {other:?} for {}", next + k)));
                                return;
                            }
                        }
                        // Echo some right away, some after a gap of our own.
                        if k == size - 1 {
                            take(gap(burst + 50)).await;
                        }
                        outbox.push(next + k);
                    }
                }
                next += size;
                progress[shard].store(burst, Ordering::Relaxed);
            }
            // Items still staged behind a full ring are pushed by a task of
            // this shard: it must not end before they are in the ring.
            pressure.wait_until(|| outbox.staged() == 0).await;
            let _ = report.send(Ok(()));
        }
    })
    .expect("shards start");
    watch("ring round trips", pool, report_rx, 2, &progress);
}

/// A future woken only by a foreign (non-glommio) thread.
struct ForeignSignal {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Future for ForeignSignal {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap();
        if state.0 {
            Poll::Ready(())
        } else {
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Both shards wait on signals that a plain std thread fires, sometimes at
/// once, sometimes after the shard has surely parked.
pub fn wakes_from_a_foreign_thread_all_arrive() {
    const SIGNALS: u64 = 4_000;
    type Slot = Arc<Mutex<(bool, Option<Waker>)>>;
    let (slot_tx, slot_rx) = mpsc::channel::<(usize, Slot)>();
    let slot_tx = Mutex::new(slot_tx);
    let progress = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let (report_tx, report_rx) = mpsc::channel();
    let report_tx = Mutex::new(report_tx);
    let shard_progress = progress.clone();
    let pool = ShardPool::start(&two_shards(), move |shard| {
        let slots = slot_tx.lock().unwrap().clone();
        let report = report_tx.lock().unwrap().clone();
        let progress = shard_progress.clone();
        async move {
            for i in 0..SIGNALS {
                let state: Slot = Arc::new(Mutex::new((false, None)));
                if slots.send((shard, state.clone())).is_err() {
                    let _ = report.send(Err("signaller gone".to_string()));
                    return;
                }
                ForeignSignal { state }.await;
                progress[shard].store(i, Ordering::Relaxed);
            }
            let _ = report.send(Ok(()));
        }
    })
    .expect("shards start");
    let signaller = std::thread::spawn(move || {
        let mut i = 0u64;
        while let Ok((_shard, slot)) = slot_rx.recv_timeout(watchdog()) {
            // Let the shard reach its park first on some signals.
            if let Gap::BlockThread(d) | Gap::Timer(d) = gap(i) {
                std::thread::sleep(d);
            }
            let waker = {
                let mut state = slot.lock().unwrap();
                state.0 = true;
                state.1.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
            i += 1;
        }
    });
    watch("foreign wakes", pool, report_rx, 2, &progress);
    let _ = signaller.join();
}

/// Blocking-pool jobs (what percore's password and signature checks use):
/// the shard parks while the job runs and must wake when it finishes.
pub fn blocking_jobs_wake_their_shard() {
    const JOBS: u64 = 2_000;
    let progress = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let (report_tx, report_rx) = mpsc::channel();
    let report_tx = Mutex::new(report_tx);
    let shard_progress = progress.clone();
    let pool = ShardPool::start(&two_shards(), move |shard| {
        let report = report_tx.lock().unwrap().clone();
        let progress = shard_progress.clone();
        async move {
            for i in 0..JOBS {
                let pause = match gap(i) {
                    Gap::BlockThread(d) | Gap::Timer(d) => d,
                    Gap::None => Duration::ZERO,
                };
                let got = shards::task::spawn_blocking(move || {
                    std::thread::sleep(pause);
                    i * 2
                })
                .await;
                if got != i * 2 {
                    let _ = report.send(Err(format!("job {i} returned {got}")));
                    return;
                }
                progress[shard].store(i, Ordering::Relaxed);
            }
            let _ = report.send(Ok(()));
        }
    })
    .expect("shards start");
    watch("blocking jobs", pool, report_rx, 2, &progress);
}

/// A shard with nothing to do but its own timers: each sleep must end on
/// time-out alone (the timer is the sleeping call's only way out).
pub fn timers_fire_on_an_otherwise_idle_shard() {
    const SLEEPS: u64 = 1_000;
    let progress = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let (report_tx, report_rx) = mpsc::channel();
    let report_tx = Mutex::new(report_tx);
    let shard_progress = progress.clone();
    let pool = ShardPool::start(&two_shards(), move |shard| {
        let report = report_tx.lock().unwrap().clone();
        let progress = shard_progress.clone();
        async move {
            for i in 0..SLEEPS {
                let wanted = Duration::from_micros(100 + (i % 10) * 50);
                let start = Instant::now();
                shards::timer::sleep(wanted).await;
                if start.elapsed() < wanted {
                    let _ = report.send(Err(format!("sleep {i} ended early")));
                    return;
                }
                progress[shard].store(i, Ordering::Relaxed);
            }
            let _ = report.send(Ok(()));
        }
    })
    .expect("shards start");
    watch("idle timers", pool, report_rx, 2, &progress);
}
