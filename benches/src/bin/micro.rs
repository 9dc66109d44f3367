//! Micro-benchmarks of percore's per-message internals, harness-less: each
//! prints one line, `name  ns/op  ops/s`. Run release builds only:
//!
//!     cargo run --release -p percore-benches --bin micro
//!
//! What it measures, each on this thread with warm caches:
//! - `parse_pub16`: the client parser over a buffer of 16-byte PUBs;
//! - `match_hit`: a subscription-index lookup that hits the match cache;
//! - `match_miss_wildcards`: a lookup after the cache was invalidated;
//! - `encode_msg128`: writing one MSG header + 128-byte payload to an outbound buffer;
//! - `shard_pub16_subsN`: one shard's state machine end to end: a read of
//!   500 16-byte PUBs through `process_input`, delivery to N subscribers and
//!   the end-of-work flush, over Unix socket pairs (real `sendmsg`s, drained
//!   by this thread), per message. The shard's `ShardIo` here is plain std
//!   sockets, so this runs without glommio.
//! - `shard_pub16_subs1_secured`: the same with one subscriber, the clients
//!   logged in (`no_auth_user`) as a user with 10 allow and 2 deny patterns
//!   each way in an account whose `bench.>` another account imports as a
//!   stream (benches/configs/permissions-and-stream-import.conf's shape).

use std::hint::black_box;
use std::io::{IoSlice, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use percore_core::account::{
    Account, AccountTable, Export, ExportKind, ResponseType, ServiceImport, StreamImport,
    SubjectTransform, DEFAULT_RESPONSE_THRESHOLD,
};
use percore_core::auth::{AuthPolicy, PasswordUser, Permissions, Rules, Secret, SubscribeRule};
use percore_core::ids::{AccountId, ClientId, ShardId, SubKey};
use percore_core::info::ServerIdentity;
use percore_core::io::{ShardIo, Wake};
use percore_core::limits::ShardLimits;
use percore_core::outbound::encode_msg;
use percore_core::protocol::{ClientOp, Parser};
use percore_core::shard::{Accepted, ShardBroker, ShardSetup};
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

/// Runs and prints one case, unless `MICRO_ONLY` names others (a substring
/// of the case names to run, e.g. for a profile of one case).
fn report(name: &str, run: impl FnOnce() -> f64) {
    if std::env::var("MICRO_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    let ns = run();
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
    report("parse_pub16", || {
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
        })
    });

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
    report("match_hit", || {
        measure(budget, || {
            for s in &subjects {
                black_box(index.matches(s));
            }
            subjects.len() as u64
        })
    });
    report("match_miss_wildcards", || {
        measure(budget, || {
            // A wildcard change invalidates every cached subject it matches.
            index.insert_local(b"orders.>", None, SubKey::new(6000));
            index.remove_local(b"orders.>", None, SubKey::new(6000));
            for s in &subjects {
                black_box(index.matches(s));
            }
            subjects.len() as u64
        })
    });

    let payload = [b'x'; 128];
    let mut out = Vec::with_capacity(1 << 20);
    report("encode_msg128", || {
        measure(budget, || {
            out.clear();
            for _ in 0..1024 {
                encode_msg(&mut out, b"bench.subj", b"1", None, None, &payload, true);
            }
            black_box(&out);
            1024
        })
    });

    for subscribers in [0, 1, 5] {
        report(&format!("shard_pub16_subs{subscribers}"), || {
            shard_pub16(budget, subscribers, ShardLimits::default())
        });
    }
    report("shard_pub16_subs1_secured", || {
        shard_pub16(budget, 1, secured_limits())
    });
}

/// A user with 10 allow and 2 deny patterns each way, logged in through
/// `no_auth_user`, in account BENCH whose `bench.>` MIRROR imports.
fn secured_limits() -> ShardLimits {
    let patterns: Vec<Box<[u8]>> = [
        "bench.>",
        "orders.*",
        "orders.*.new",
        "billing.>",
        "audit.*.*",
        "metrics.>",
        "_INBOX.>",
        "events.*",
        "jobs.*.*",
        "cache.>",
    ]
    .iter()
    .map(|p| p.as_bytes().into())
    .collect();
    let deny: Vec<Box<[u8]>> = ["bench.secret.>", "orders.admin"]
        .iter()
        .map(|p| p.as_bytes().into())
        .collect();
    let permissions = Permissions {
        publish: Some(Rules {
            allow: Some(patterns.clone()),
            deny: deny.clone(),
        }),
        subscribe: Some(Rules {
            allow: Some(
                patterns
                    .iter()
                    .map(|p| SubscribeRule {
                        subject: p.clone(),
                        queue: None,
                    })
                    .collect(),
            ),
            deny: deny
                .iter()
                .map(|p| SubscribeRule {
                    subject: p.clone(),
                    queue: None,
                })
                .collect(),
        }),
        allow_responses: None,
    };
    let mut bench = Account::new(AccountId::GLOBAL, "BENCH");
    bench.exports.push(Export {
        subject: "bench.>".into(),
        kind: ExportKind::Stream,
        accounts: None,
    });
    // A service import keeps MIRROR's subject space non-empty, so the
    // stream import is renamed and matched for every message.
    bench.exports.push(Export {
        subject: "svc.unused".into(),
        kind: ExportKind::Service {
            response: ResponseType::Singleton,
            threshold: DEFAULT_RESPONSE_THRESHOLD,
        },
        accounts: None,
    });
    let mut mirror = Account::new(AccountId::GLOBAL, "MIRROR");
    mirror.service_imports.push(ServiceImport {
        exporter: AccountId(1),
        subject: "svc.unused".into(),
        local: "svc.unused".into(),
        transform: None,
        response: ResponseType::Singleton,
        threshold: DEFAULT_RESPONSE_THRESHOLD,
        share: false,
    });
    mirror.stream_imports.push(StreamImport {
        exporter: AccountId(1),
        subject: "bench.>".into(),
        transform: Some(SubjectTransform::prefix("mirror")),
    });
    let accounts = AccountTable::build(vec![bench, mirror], Some("$SYS"));
    let user = PasswordUser {
        name: "bench".into(),
        password: Secret::Plain("bench".into()),
        permissions: Some(Arc::new(permissions)),
        account: AccountId(1),
    };
    ShardLimits {
        auth: Arc::new(AuthPolicy {
            users: [("bench".to_string(), user)].into_iter().collect(),
            no_auth_user: Some("bench".into()),
            ..AuthPolicy::default()
        }),
        accounts: Arc::new(accounts),
        ..ShardLimits::default()
    }
}

/// A shard's sockets as non-blocking std Unix streams.
struct StdSocketIo;

impl ShardIo for StdSocketIo {
    type Endpoint = UnixStream;
    type Handoff = ();

    fn send(&self, socket: &UnixStream, bytes: &[u8]) -> std::io::Result<usize> {
        (&*socket).write(bytes)
    }

    fn send_vectored(&self, socket: &UnixStream, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match (&*socket).write_vectored(slices) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            other => other,
        }
    }

    fn shutdown(&self, socket: &UnixStream) {
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }

    fn wake_writer(&self, _socket: &UnixStream) {}

    fn wake(&self, _event: Wake) {}
}

fn socket_pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("non-blocking");
    b.set_nonblocking(true).expect("non-blocking");
    (a, b)
}

fn drain(socket: &mut UnixStream) {
    let mut buf = [0u8; 64 * 1024];
    while matches!(socket.read(&mut buf), Ok(n) if n > 0) {}
}

/// ns per published message: one read of 500 PUBs, `subscribers` local
/// subscribers on the subject, one flush.
fn shard_pub16(budget: Duration, subscribers: usize, limits: ShardLimits) -> f64 {
    let identity = Arc::new(ServerIdentity {
        server_id: "NMICRO".into(),
        server_name: "micro".into(),
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
        limits,
        seed: 7,
        io: StdSocketIo,
    };
    let mut shard = ShardBroker::new(setup, Instant::now());
    let mut peers = Vec::new();
    let mut connect = |shard: &mut ShardBroker<StdSocketIo>, n: u64, input: &[u8]| {
        let (ours, theirs) = socket_pair();
        let key = shard.register_connection(
            Accepted {
                client_id: ClientId(n),
                endpoint: ours,
                ip: "127.0.0.1".into(),
                port: 1,
                nonce: None,
            },
            Instant::now(),
        );
        let mut parser = Parser::new(4096, 1024 * 1024);
        shard.process_input(key, &mut parser, input, Instant::now());
        peers.push(theirs);
        (key, parser)
    };
    for n in 0..subscribers {
        connect(
            &mut shard,
            n as u64 + 2,
            b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB bench.* 1\r\n",
        );
    }
    let (publisher, mut parser) = connect(
        &mut shard,
        1,
        b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n",
    );
    shard.flush_dirty(Instant::now());
    let batch = b"PUB bench.subj 16\r\n0123456789abcdef\r\n".repeat(500);
    measure(budget, || {
        let outcome = shard.process_input(publisher, &mut parser, &batch, Instant::now());
        assert_eq!(outcome.consumed, batch.len());
        shard.flush_dirty(Instant::now());
        for peer in &mut peers {
            drain(peer);
        }
        500
    })
}
