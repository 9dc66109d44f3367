//! Where a subscription's bytes go: heap bytes per subscription, measured
//! with a counting allocator (not guessed), for M subscriptions on
//! distinct subjects `bench.<i>.x` from one connection (issue 16's memory
//! figure at scale; `benches/rss.sh` gives the RSS side by side).
//!
//!     cargo run --release -p percore-benches --bin sub-memory -- [M ...]
//!
//! For each M it prints, per subscription:
//! - `index`: the subscription index (trie nodes, their child maps, token
//!   keys, interest vectors) built alone with `insert_local`;
//! - `replica`: the same subjects as another shard's interest (what each
//!   other shard of a server holds per subscription: a count per pattern,
//!   `apply_remote`);
//! - `shard`: one shard's state machine after one connection sent M `SUB`s
//!   (index + subscription records + the connection's sid map + whatever
//!   else a SUB leaves behind); `shard - index` is the per-subscription
//!   records' share;
//! - `requested` bytes (what the program asked for) and `chunks`, the same
//!   allocations as glibc malloc lays them out (8-byte header, 16-byte
//!   granules, 32 bytes at least), which is what RSS sees;
//! - `allocs`: live allocations per subscription.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{IoSlice, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use percore_core::ids::{ClientId, ShardId, SubKey};
use percore_core::info::ServerIdentity;
use percore_core::io::{ShardIo, Wake};
use percore_core::limits::ShardLimits;
use percore_core::protocol::Parser;
use percore_core::shard::{Accepted, ShardBroker, ShardSetup};
use percore_core::sublist::SubscriptionIndex;

/// Counts live heap use: requested bytes, glibc chunk bytes, allocations.
struct Counting;

static REQUESTED: AtomicI64 = AtomicI64::new(0);
static CHUNKS: AtomicI64 = AtomicI64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

/// The chunk glibc malloc uses for a request of `size` bytes (x86_64).
fn chunk(size: usize) -> i64 {
    (((size + 8 + 15) & !15).max(32)) as i64
}

fn count(size: usize, sign: i64) {
    REQUESTED.fetch_add(sign * size as i64, Relaxed);
    CHUNKS.fetch_add(sign * chunk(size), Relaxed);
    LIVE.fetch_add(sign, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone, Copy)]
struct Snapshot {
    requested: i64,
    chunks: i64,
    live: i64,
}

fn snapshot() -> Snapshot {
    Snapshot {
        requested: REQUESTED.load(Relaxed),
        chunks: CHUNKS.load(Relaxed),
        live: LIVE.load(Relaxed),
    }
}

fn report(label: &str, m: usize, before: Snapshot, after: Snapshot) {
    let per = |a: i64, b: i64| (b - a) as f64 / m as f64;
    println!(
        "{m:>9} {label:<8} requested {:>7.1} B  chunks {:>7.1} B  allocs {:>5.2}",
        per(before.requested, after.requested),
        per(before.chunks, after.chunks),
        per(before.live, after.live)
    );
}

fn subject(i: usize) -> String {
    format!("bench.{i}.x")
}

fn index_alone(m: usize) {
    let before = snapshot();
    let mut index = SubscriptionIndex::new();
    for i in 0..m {
        index.insert_local(subject(i).as_bytes(), None, SubKey::new(i));
    }
    report("index", m, before, snapshot());
    drop(index);
}

fn replica_alone(m: usize) {
    let before = snapshot();
    let mut index = SubscriptionIndex::new();
    for i in 0..m {
        index.apply_remote(ShardId::new(1), subject(i).as_bytes(), None, 1);
    }
    report("replica", m, before, snapshot());
    drop(index);
}

/// A shard's sockets as std Unix streams (nothing is sent here but INFO).
struct StdSocketIo;

impl ShardIo for StdSocketIo {
    type Endpoint = UnixStream;
    type Handoff = ();

    fn send(&self, socket: &UnixStream, bytes: &[u8]) -> std::io::Result<usize> {
        (&*socket).write(bytes)
    }

    fn send_vectored(&self, socket: &UnixStream, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
        (&*socket).write_vectored(slices)
    }

    fn shutdown(&self, socket: &UnixStream) {
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }

    fn wake_writer(&self, _socket: &UnixStream) {}

    fn wake(&self, _event: Wake) {}
}

fn whole_shard(m: usize) {
    let identity = Arc::new(ServerIdentity {
        server_id: "NMEMORY".into(),
        server_name: "memory".into(),
        host: "127.0.0.1".into(),
        port: 4222,
        headers: true,
        auth_required: false,
        max_payload: 1024 * 1024,
        tls: Default::default(),
    });
    let setup = ShardSetup {
        id: ShardId::new(0),
        shard_count: 1,
        identity,
        limits: ShardLimits::default(),
        seed: 7,
        io: StdSocketIo,
    };
    let mut shard = ShardBroker::new(setup, Instant::now());
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("non-blocking");
    let key = shard.register_connection(
        Accepted {
            client_id: ClientId(1),
            endpoint: ours,
            ip: "127.0.0.1".into(),
            port: 1,
            nonce: None,
        },
        Instant::now(),
    );
    let mut parser = Parser::new(4096, 1024 * 1024);
    shard.process_input(
        key,
        &mut parser,
        b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n",
        Instant::now(),
    );
    let mut input = Vec::with_capacity(64 * 1024);
    let before = snapshot();
    let mut i = 0;
    while i < m {
        input.clear();
        while i < m && input.len() < 60 * 1024 {
            input.extend_from_slice(format!("SUB {} {}\r\n", subject(i), i + 1).as_bytes());
            i += 1;
        }
        let outcome = shard.process_input(key, &mut parser, &input, Instant::now());
        assert_eq!(outcome.consumed, input.len(), "a SUB was not taken whole");
    }
    report("shard", m, before, snapshot());
    drop(shard);
    drop(theirs);
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a subscription count"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 1_000_000]
    } else {
        sizes
    };
    for m in sizes {
        index_alone(m);
        replica_alone(m);
        whole_shard(m);
    }
}
