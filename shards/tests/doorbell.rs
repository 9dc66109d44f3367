//! `shards::doorbell`: a ring from a thread outside the shards wakes the
//! shard's waiting task at once (not at some timer), rings that arrive
//! while nobody waits are not lost, and a dropped ringer ends the wait.

use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use shards::doorbell::doorbell;
use shards::{PoolConfig, ShardPool};

#[test]
fn a_ring_from_another_thread_wakes_the_waiting_shard_task() {
    let config = PoolConfig {
        shard_count: 1,
        pin: false,
        spin_before_park: None,
        preempt_timer: Duration::from_millis(100),
    };
    let (ringer, bell) = doorbell().expect("socket pair");
    let bell = Mutex::new(Some(bell));
    let (woke_tx, woke_rx) = mpsc::channel::<bool>();
    let woke_tx = Mutex::new(woke_tx);
    let pool = ShardPool::start(&config, move |_shard| {
        let bell = bell.lock().unwrap().take().expect("bell");
        let woke = woke_tx.lock().unwrap().clone();
        async move {
            let mut bell = bell.into_shard();
            loop {
                let rung = bell.rung().await;
                let _ = woke.send(rung);
                if !rung {
                    return;
                }
            }
        }
    })
    .expect("shard starts");
    // Three rings before the shard may even wait: at least one wake-up,
    // and no ring is lost (each round below gets its own).
    ringer.ring();
    ringer.ring();
    ringer.ring();
    assert_eq!(woke_rx.recv_timeout(Duration::from_secs(10)), Ok(true));
    // The shard's only task waits on the bell, so it has parked with no
    // timer of its own: a wake-up within the bound comes from the ring.
    for _ in 0..5 {
        while woke_rx.try_recv().is_ok() {}
        let rang = Instant::now();
        ringer.ring();
        assert_eq!(woke_rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        assert!(
            rang.elapsed() < Duration::from_secs(5),
            "woken by the ring, not a timeout"
        );
    }
    drop(ringer);
    // Rings still queued may wake it first; then the closed end says no more.
    let ended = (0..10).any(|_| woke_rx.recv_timeout(Duration::from_secs(10)) == Ok(false));
    assert!(ended, "a dropped ringer ends the wait");
    pool.join();
}
