//! `shards::task::park_stats` (glommio patch 8, shards/glommio/PATCHES.md):
//! a shard that waits on its ring with nothing else to do parks, and the
//! peer's item wakes it through its eventfd; both show in its counters.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use shards::mesh::RingMesh;
use shards::sync::WaitList;
use shards::task::{park_stats, ParkStats};
use shards::{PoolConfig, ShardPool};

/// The last item: the receiving shard reports and ends.
const DONE: u64 = u64::MAX;

#[test]
fn a_shard_waiting_on_its_ring_parks_and_is_woken_by_its_peer() {
    let config = PoolConfig {
        shard_count: 2,
        pin: false,
        spin_before_park: None,
        preempt_timer: Duration::from_millis(100),
    };
    let ports = Mutex::new(
        RingMesh::build::<u64>(2, 8)
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>(),
    );
    // Set by shard 1 once its counters show a park and a foreign wake-up.
    let seen = Arc::new(AtomicBool::new(false));
    let (report_tx, report_rx) = mpsc::channel::<(ParkStats, ParkStats)>();
    let report_tx = Mutex::new(report_tx);
    let shard_seen = seen.clone();
    let pool = ShardPool::start(&config, move |shard| {
        let ports = ports.lock().unwrap()[shard].take().expect("ports");
        let report = report_tx.lock().unwrap().clone();
        let seen = shard_seen.clone();
        async move {
            let mesh = ports.connect(Rc::new(WaitList::new())).await;
            if shard == 0 {
                let outbox = mesh.outboxes[1].as_ref().expect("outbox");
                // One item at a time, each after a pause of this whole thread
                // long enough for shard 1 to run out of work and park, until
                // shard 1 has seen both (or a generous deadline passed: the
                // assertion below then says what was missing).
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut item = 0;
                while !seen.load(Ordering::Acquire) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                    outbox.push(item);
                    item += 1;
                }
                outbox.push(DONE);
                // Stay until the item is in the ring (it may be staged).
                while outbox.staged() > 0 {
                    shards::timer::sleep(Duration::from_millis(1)).await;
                }
            } else {
                let inbound = mesh.inbound[0].as_ref().expect("inbound");
                let first = park_stats();
                while let Some(item) = inbound.recv().await {
                    let now = park_stats();
                    if now.parks > first.parks && now.wakeups > first.wakeups {
                        seen.store(true, Ordering::Release);
                    }
                    if item == DONE {
                        let _ = report.send((first, now));
                        break;
                    }
                }
            }
        }
    })
    .expect("pool starts");
    let (first, last) = report_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("shard 1 reports");
    pool.join();
    assert!(
        last.parks > first.parks,
        "no park counted: {first:?} -> {last:?}"
    );
    assert!(
        last.wakeups > first.wakeups,
        "no foreign wake-up counted: {first:?} -> {last:?}"
    );
}
