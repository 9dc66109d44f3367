//! The ring mesh between two real shards: items arrive in push order even
//! when the ring is far smaller than the burst (the rest waits in the FIFO
//! staging queue), and the staged count drains back to zero.

use std::rc::Rc;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use shards::mesh::RingMesh;
use shards::sync::WaitList;
use shards::{PoolConfig, ShardPool};

const ITEMS: u64 = 10_000;

#[test]
fn burst_larger_than_the_ring_arrives_in_order() {
    // A ring of 4 items for a burst of 10 000 forces staging on nearly every push.
    let ports = Mutex::new(
        RingMesh::build::<u64>(2, 4)
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>(),
    );
    let (report_tx, report_rx) = mpsc::channel::<Result<String, String>>();
    let report_tx = Mutex::new(report_tx);
    let config = PoolConfig {
        shard_count: 2,
        pin: false,
        spin_before_park: None,
        preempt_timer: Duration::from_millis(100),
    };
    let pool = ShardPool::start(&config, move |shard| {
        let ports = ports.lock().unwrap()[shard].take().expect("ports");
        let report = report_tx.lock().unwrap().clone();
        async move {
            let pressure = Rc::new(WaitList::new());
            let mesh = ports.connect(pressure.clone()).await;
            if shard == 0 {
                let outbox = mesh.outboxes[1].as_ref().expect("outbox to shard 1");
                let mut peak_staged = 0;
                for i in 0..ITEMS {
                    outbox.push(i);
                    peak_staged = peak_staged.max(outbox.staged());
                }
                pressure.wait_until(|| outbox.staged() == 0).await;
                let _ = report.send(Ok(format!(
                    "sent peak_staged={peak_staged} stalls={}",
                    outbox.stalls()
                )));
            } else {
                let inbound = mesh.inbound[0].as_ref().expect("ring from shard 0");
                for expected in 0..ITEMS {
                    match inbound.recv().await {
                        Some(got) if got == expected => {}
                        other => {
                            let _ = report.send(Err(format!("expected {expected}, got {other:?}")));
                            return;
                        }
                    }
                }
                let _ = report.send(Ok("received all in order".into()));
            }
        }
    })
    .expect("shards start");
    let mut reports = Vec::new();
    for _ in 0..2 {
        let report = report_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("shard report");
        reports.push(report.expect("shard failed"));
    }
    pool.join();
    let sent = reports
        .iter()
        .find(|r| r.starts_with("sent"))
        .expect("sender report");
    assert!(
        !sent.contains("peak_staged=0 "),
        "the burst never had to stage: {sent}"
    );
    assert!(
        reports.iter().any(|r| r == "received all in order"),
        "{reports:?}"
    );
}
