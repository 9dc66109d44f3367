//! `shards::task::Lane::Newcomers` (and glommio patches 9 and 10, PATCHES.md): while
//! the newcomers' queue has work, the shard looks at its sockets and timers
//! at least every `NEWCOMER_TURN`, even if a long preemption timer was
//! armed before that queue woke up. Otherwise a flood of connections in
//! that queue would hold the established connections' wake-ups until the
//! long timer fired.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shards::sync::WaitList;
use shards::task::{self, Lane};
use shards::{PoolConfig, ShardPool};

/// Far longer than the test may take: only the lane's short turns can let
/// the sleeper below finish in time.
const LONG_PREEMPT: Duration = Duration::from_secs(20);
const SLEEPS: u32 = 50;

#[test]
fn a_busy_newcomer_lane_lets_the_established_lane_wake_every_turn() {
    assert_sleeps_end_in_time(false);
}

/// The newcomer also wakes a task of the established lane on each turn (as
/// a closing connection wakes its writer): glommio then re-reads the
/// queues' latency needs while the newcomers' queue is the one running.
#[test]
fn the_newcomers_short_turns_survive_waking_an_established_task() {
    assert_sleeps_end_in_time(true);
}

fn assert_sleeps_end_in_time(wake_established: bool) {
    let config = PoolConfig {
        shard_count: 1,
        pin: false,
        spin_before_park: None,
        preempt_timer: LONG_PREEMPT,
    };
    let (done_tx, done_rx) = mpsc::channel::<Duration>();
    let done_tx = std::sync::Mutex::new(Some(done_tx));
    let pool = ShardPool::start(&config, move |_| {
        let done = done_tx.lock().unwrap().take().expect("one shard");
        async move {
            task::open_newcomer_lane();
            let finished = Rc::new(Cell::new(false));
            let woken = Rc::new(Cell::new(0u64));
            let wake = Rc::new(WaitList::new());
            let listener = {
                let (finished, woken, wake) = (finished.clone(), woken.clone(), wake.clone());
                task::spawn_in(Lane::Established, async move {
                    let mut seen = 0;
                    while !finished.get() {
                        wake.wait_until(|| woken.get() > seen || finished.get())
                            .await;
                        seen = woken.get();
                    }
                })
            };
            // The newcomer: wakes once the sleeper below has armed the long
            // timer (it is runnable between its sleeps), then stays busy,
            // giving way only when the shard's preemption timer says so.
            let busy = {
                let (finished, woken, wake) = (finished.clone(), woken.clone(), wake.clone());
                task::spawn_in(Lane::Newcomers, async move {
                    shards::timer::sleep(Duration::from_millis(5)).await;
                    while !finished.get() {
                        spin(Duration::from_micros(50));
                        if wake_established {
                            woken.set(woken.get() + 1);
                            wake.notify_all();
                        }
                        task::yield_if_needed().await;
                    }
                })
            };
            // The established connection: short sleeps, each of which ends
            // only when the shard next polls its timers.
            let started = Instant::now();
            task::spawn_in(Lane::Established, async move {
                for _ in 0..SLEEPS {
                    spin(Duration::from_micros(100));
                    shards::timer::sleep(Duration::from_micros(200)).await;
                }
            })
            .await;
            let took = started.elapsed();
            finished.set(true);
            wake.notify_all();
            busy.await;
            listener.await;
            let _ = done.send(took);
        }
    })
    .expect("pool starts");
    let took = done_rx
        .recv_timeout(LONG_PREEMPT + Duration::from_secs(30))
        .expect("the shard reports");
    pool.join();
    // 50 sleeps of 200 µs and 1 ms turns take tens of milliseconds; waiting
    // once for the long timer takes 20 s. 5 s separates them on any box.
    assert!(
        took < Duration::from_secs(5),
        "{SLEEPS} short sleeps beside a busy newcomer took {took:?}"
    );
}

fn spin(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}
