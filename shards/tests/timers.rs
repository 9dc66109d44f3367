//! Timers (glommio patch 12, shards/glommio/PATCHES.md: due timers are taken
//! off the front of the reactor's map instead of splitting it on every
//! reactor turn): beside a timer that never comes due in the test, as a
//! shard always has one (percore's housekeeping tick), timers of many
//! deadlines each fire once, never early, in deadline order, whether they
//! come due alone or several in one turn.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shards::{PoolConfig, ShardPool};

#[test]
fn timers_fire_once_never_early_and_in_deadline_order() {
    let config = PoolConfig {
        shard_count: 1,
        pin: false,
        spin_before_park: None,
        preempt_timer: Duration::from_millis(100),
    };
    let (report_tx, report_rx) = mpsc::channel::<Result<usize, String>>();
    let report_tx = std::sync::Mutex::new(report_tx);
    let pool = ShardPool::start(&config, move |_| {
        let report = report_tx.lock().expect("sender").clone();
        async move {
            // Pending for the whole test: every reactor turn sees it.
            let far = shards::task::spawn(shards::timer::sleep(Duration::from_secs(3600)));
            let start = Instant::now();
            // Deadlines in a scrambled order; several share a millisecond,
            // so some turns find more than one due.
            let delays_ms: Vec<u64> = (0..60u64).map(|i| (i * 37) % 30 + 1).collect();
            // (delay, when the sleep began, when it ended), since `start`.
            let fired: Rc<RefCell<Vec<(u64, Duration, Duration)>>> = Rc::default();
            let tasks: Vec<_> = delays_ms
                .iter()
                .map(|&ms| {
                    let fired = fired.clone();
                    shards::task::spawn(async move {
                        let began = start.elapsed();
                        shards::timer::sleep(Duration::from_millis(ms)).await;
                        fired.borrow_mut().push((ms, began, start.elapsed()));
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
            drop(far);
            let fired = fired.borrow();
            let check = || -> Result<usize, String> {
                if fired.len() != delays_ms.len() {
                    return Err(format!("{} of {} fired", fired.len(), delays_ms.len()));
                }
                for (ms, began, ended) in fired.iter() {
                    if *ended < *began + Duration::from_millis(*ms) {
                        return Err(format!(
                            "the {ms} ms timer begun at {began:?} fired at {ended:?}"
                        ));
                    }
                }
                // Deadlines as this task saw them; the reactor's own are a
                // few hundred nanoseconds later, so only an inversion wider
                // than that is a wrong order.
                let deadlines: Vec<Duration> = fired
                    .iter()
                    .map(|(ms, began, _)| *began + Duration::from_millis(*ms))
                    .collect();
                if deadlines
                    .windows(2)
                    .any(|w| w[0] > w[1] + Duration::from_micros(200))
                {
                    return Err(format!("out of deadline order: {deadlines:?}"));
                }
                Ok(fired.len())
            };
            let _ = report.send(check());
        }
    })
    .expect("pool starts");
    let outcome = report_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the shard reports");
    pool.join();
    assert_eq!(outcome, Ok(60));
}
