//! Micro-benchmarks of percore's per-message internals, harness-less: each
//! prints one line, `name  ns/op  ops/s`. Run release builds only:
//!
//!     cargo run --release -p percore-benches --bin micro
//!
//! What it measures, each on this thread with warm caches:
//! - `parse_pub16`: the client parser over a buffer of 16-byte PUBs;
//! - `match_hit`: a subscription-index lookup that hits the match cache;
//! - `match_miss_wildcards`: a lookup after the cache was invalidated;
//! - `encode_msg128`: writing one MSG header + 128-byte payload to an outbound buffer.

use std::hint::black_box;
use std::time::{Duration, Instant};

use percore_core::ids::SubKey;
use percore_core::outbound::encode_msg;
use percore_core::protocol::{ClientOp, Parser};
use percore_core::sublist::SubscriptionIndex;

/// Runs `op` in batches until `budget` has passed; returns ns per op.
fn measure(budget: Duration, mut op: impl FnMut() -> u64) -> f64 {
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget {
        ops += op();
    }
    start.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

fn report(name: &str, ns: f64) {
    println!("{name:<24} {ns:>8.1} ns/op {:>14.0} ops/s", 1e9 / ns);
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("MICRO_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    );

    // 16-byte payload PUBs, as `nats bench` sends them.
    let one = b"PUB bench.subj 16\r\n0123456789abcdef\r\n";
    let stream: Vec<u8> = one.repeat(4096);
    let mut parser = Parser::new(4096, 1024 * 1024);
    report(
        "parse_pub16",
        measure(budget, || {
            let mut at = 0;
            let mut n = 0;
            while let Ok(Some((op, used))) = parser.next(&stream[at..]) {
                if let ClientOp::Pub(p) = op {
                    black_box(p.payload);
                }
                at += used;
                n += 1;
            }
            n
        }),
    );

    let mut index = SubscriptionIndex::new();
    for i in 0..1000usize {
        index.insert_local(
            format!("orders.region{}.item{}", i % 10, i).as_bytes(),
            None,
            SubKey::new(i),
        );
    }
    index.insert_local(b"orders.*.item7", None, SubKey::new(5000));
    index.insert_local(b"orders.>", None, SubKey::new(5001));
    let subjects: Vec<Vec<u8>> = (0..64)
        .map(|i| format!("orders.region{}.item{}", i % 10, i).into_bytes())
        .collect();
    report(
        "match_hit",
        measure(budget, || {
            for s in &subjects {
                black_box(index.matches(s));
            }
            subjects.len() as u64
        }),
    );
    report(
        "match_miss_wildcards",
        measure(budget, || {
            // A wildcard change invalidates every cached subject it matches.
            index.insert_local(b"orders.>", None, SubKey::new(6000));
            index.remove_local(b"orders.>", None, SubKey::new(6000));
            for s in &subjects {
                black_box(index.matches(s));
            }
            subjects.len() as u64
        }),
    );

    let payload = [b'x'; 128];
    let mut out = Vec::with_capacity(1 << 20);
    report(
        "encode_msg128",
        measure(budget, || {
            out.clear();
            for _ in 0..1024 {
                encode_msg(&mut out, b"bench.subj", b"1", None, None, &payload, true);
            }
            black_box(&out);
            1024
        }),
    );
}
