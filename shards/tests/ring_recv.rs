//! `shards::net::Connection::read` reads with an io_uring `recv` whose
//! completion carries the bytes (glommio patch 11, shards/glommio/PATCHES.md).
//! The request may be in the kernel when a read future is dropped, and the
//! broker also reads the socket directly (`try_recv`) on streaming
//! connections: whatever the mix, every byte arrives once and in order.

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use futures_lite::future;
use shards::net::{BoundListener, Connection};
use shards::{PoolConfig, ShardPool};

/// What the client thread sends after the dropped-read phase: chunks of
/// varying sizes whose bytes count up, so a lost, repeated or reordered
/// byte shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Chunk sizes of the streamed phase (a fixed pseudo-random walk).
fn chunk_sizes() -> Vec<usize> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..300)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            1 + (state % 3000) as usize
        })
        .collect()
}

/// One read of at most `limit` bytes, by `try_recv` first when asked.
async fn read_some(conn: &Connection, limit: usize, direct_first: bool) -> Vec<u8> {
    let mut buf = vec![0u8; limit];
    if direct_first {
        if let Some(n) = conn.try_recv(&mut buf).expect("try_recv") {
            buf.truncate(n);
            return buf;
        }
    }
    let n = conn.read(&mut buf).await.expect("read");
    buf.truncate(n);
    buf
}

#[test]
fn every_byte_arrives_once_and_in_order_across_dropped_reads_and_direct_reads() {
    let listener = BoundListener::bind("127.0.0.1", 0, 16).expect("bind");
    let addr = listener.local_addr();
    let listener = Mutex::new(Some(listener));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_tx = Mutex::new(Some(go_tx));
    let go_rx = Mutex::new(go_rx);
    // The client tells the shard its bytes are sent (the shard blocks on
    // this: its ring has the dropped read's request, which the kernel
    // completes meanwhile, before glommio sees the completion).
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let sent_rx = Mutex::new(Some(sent_rx));
    let (result_tx, result_rx) = mpsc::channel::<Result<(), String>>();
    let result_tx = Mutex::new(result_tx);
    let config = PoolConfig {
        shard_count: 1,
        pin: false,
        spin_before_park: None,
        preempt_timer: Duration::from_millis(100),
    };
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        // Phase 1 waits until the shard has started and dropped a read.
        go_rx.lock().unwrap().recv().expect("go");
        stream.write_all(b"first").expect("send");
        sent_tx.send(()).expect("sent");
        go_rx.lock().unwrap().recv().expect("go");
        stream.write_all(b"second").expect("send");
        sent_tx.send(()).expect("sent");
        go_rx.lock().unwrap().recv().expect("go");
        let sent = pattern(chunk_sizes().iter().sum());
        let mut at = 0;
        for (i, size) in chunk_sizes().into_iter().enumerate() {
            stream.write_all(&sent[at..at + size]).expect("send");
            at += size;
            if i % 7 == 0 {
                // Gaps let the shard run dry and wait in the ring.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Closing ends phase 3: the shard must then read 0.
    });
    let pool = ShardPool::start(&config, move |_shard| {
        let listener = listener.lock().unwrap().take().expect("listener");
        let result = result_tx.lock().unwrap().clone();
        let go_tx = go_tx.lock().unwrap().take().expect("one shard");
        let sent_rx = sent_rx.lock().unwrap().take().expect("one shard");
        async move {
            let listener = listener.into_shard_listener();
            let conn = listener
                .accept()
                .await
                .expect("accept")
                .adopt()
                .expect("adopt");
            let mut buf = [0u8; 64];
            // Phase 1: a read that waits in the kernel is dropped; the
            // bytes that arrive later are not lost, and no direct read
            // may overtake the request.
            let dropped = future::or(async { Some(conn.read(&mut buf).await) }, async {
                shards::timer::sleep(Duration::from_millis(30)).await;
                None
            })
            .await;
            if dropped.is_some() {
                let _ = result.send(Err("the read completed with nothing sent".into()));
                return;
            }
            go_tx.send(()).expect("go");
            sent_rx.recv().expect("sent");
            // The kernel has had time to complete the request with "first"
            // (the blocking wait above returned through the kernel, which
            // runs the ring's pending work); now "second" follows it.
            std::thread::sleep(Duration::from_millis(20));
            go_tx.send(()).expect("go");
            sent_rx.recv().expect("sent");
            let mut got = read_some(&conn, 1, true).await;
            if got != b"f" {
                let _ = result.send(Err(format!("first read {got:?}")));
                return;
            }
            // Four bytes wait in the request's buffer: a direct read must
            // not be tried before them.
            if conn.try_recv(&mut buf).expect("try_recv").is_some() {
                let _ = result.send(Err("a direct read overtook held bytes".into()));
                return;
            }
            got = read_some(&conn, 64, false).await;
            if got != b"irst" {
                let _ = result.send(Err(format!("rest {got:?}")));
                return;
            }
            got = read_some(&conn, 64, true).await;
            if got != b"second" {
                let _ = result.send(Err(format!("then {got:?}")));
                return;
            }
            // Phase 2: the stream, read by a mix of direct and ring reads
            // with buffers from 1 byte to 4 KiB.
            go_tx.send(()).expect("go");
            let expected = pattern(chunk_sizes().iter().sum());
            let mut received = Vec::with_capacity(expected.len());
            let mut turn = 0usize;
            while received.len() < expected.len() {
                let limit = [1, 7, 512, 4096, 3][turn % 5];
                let chunk = read_some(&conn, limit, turn % 2 == 0).await;
                if chunk.is_empty() {
                    break;
                }
                received.extend_from_slice(&chunk);
                turn += 1;
            }
            if received != expected {
                let first_bad = received
                    .iter()
                    .zip(&expected)
                    .position(|(a, b)| a != b)
                    .unwrap_or(received.len().min(expected.len()));
                let _ = result.send(Err(format!(
                    "{} of {} bytes, first difference at {first_bad}",
                    received.len(),
                    expected.len()
                )));
                return;
            }
            // Phase 3: the client closed.
            let end = read_some(&conn, 64, false).await;
            let _ = result.send(if end.is_empty() {
                Ok(())
            } else {
                Err(format!("bytes after the stream: {end:?}"))
            });
        }
    })
    .expect("pool");
    let outcome = result_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the shard reports");
    client.join().expect("client");
    pool.join();
    outcome.expect("byte stream intact");
}
