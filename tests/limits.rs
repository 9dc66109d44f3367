//! Limits, byte-exact against nats-server 2.9.10 (tests/reference/protocol.md
//! §2, §10, §12, §13; "row N" is a row of its §15 table): max_payload,
//! max_control_line, max_connections, max_subscriptions, stale connections
//! and slow consumers.
//!
//! Raw sockets against the real broker with two shards. Synchronisation is
//! by PING/PONG round trips or by a sentinel message published after the
//! real ones (one publisher's messages arrive in order); the stale-connection
//! test is the only one that waits on the server's clock, and it is bounded.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use support::{assert_alive, client_on_shard, session, Broker, RawClient};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A quiet client on shard 0 and one on shard 1.
fn pair(broker: &Broker) -> (RawClient, RawClient) {
    let a = client_on_shard(broker, 0);
    let b = client_on_shard(broker, 1);
    assert_ne!(a.shard(broker.shards), b.shard(broker.shards));
    (a, b)
}

fn pub_frame(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

fn msg_frame(subject: &str, sid: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("MSG {subject} {sid} {}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

// ---------------------------------------------------------------- max_payload

#[test]
fn max_sub_tokens_refuses_longer_subjects_and_keeps_the_client() {
    // Bytes as nats-server 2.9.10 sends them (`max_sub_tokens: 3`).
    let broker = Broker::start_with(&[], Some("max_sub_tokens: 3\n"));
    for shard in 0..broker.shards {
        let mut client = client_on_shard(&broker, shard);
        session(
            &mut client,
            b"SUB a.b.c 1\r\nSUB a.b.c.d 2\r\nSUB a.*.c.> q 3\r\n",
            b"-ERR 'Permissions Violation for Subscription to \"a.b.c.d\", too many tokens'\r\n\
              -ERR 'Permissions Violation for Subscription to \"a.*.c.>\", too many tokens'\r\n",
        );
        // The three-token subscription works; the refused ones do not exist.
        session(
            &mut client,
            b"PUB a.b.c 1\r\nx\r\nPUB a.b.c.d 1\r\ny\r\n",
            b"MSG a.b.c 1 1\r\nx\r\n",
        );
    }
    assert!(broker
        .wait_log(
            "Subscription Violation Too Many Tokens - User \"N/A\", Subject \"a.b.c.d\", SID 2",
            Duration::from_secs(5)
        )
        .is_some());
}

#[test]
fn a_reloaded_max_payload_applies_to_open_clients() {
    // nats-server's reload sets every client's limit, not only new ones'.
    let broker = Broker::start_with(&[], Some("max_payload: 4096\n"));
    let mut open: Vec<_> = (0..broker.shards)
        .map(|shard| client_on_shard(&broker, shard))
        .collect();
    for client in open.iter_mut() {
        session(client, &pub_frame("fits", &[b'x'; 3000]), b"");
    }
    std::fs::write(
        broker.config_path().expect("config file"),
        "max_payload: 1024\n",
    )
    .expect("rewrite config");
    broker.signal(libc::SIGHUP);
    // Each shard takes the reload at its next housekeeping tick: a new
    // client's INFO on that shard shows when it has.
    for shard in 0..broker.shards {
        let deadline = Instant::now() + Duration::from_secs(10);
        while client_on_shard(&broker, shard).info_json()["max_payload"] != 1024 {
            assert!(Instant::now() < deadline, "shard {shard} never reloaded");
        }
    }
    for client in open.iter_mut() {
        client.send(b"PUB fits 3000\r\n");
        client.expect_closed_after(b"-ERR 'Maximum Payload Violation'\r\n");
    }
}

#[test]
fn max_payload_default() {
    // Row 19; exactly max_payload is accepted (and crosses shards intact).
    let broker = Broker::start();
    let (mut publisher, mut sub) = pair(&broker);
    assert_eq!(publisher.info_json()["max_payload"], 1048576);
    session(&mut sub, b"SUB big 1\r\n", b"");
    let payload = vec![b'p'; 1048576];
    publisher.send(&pub_frame("big", &payload));
    session(&mut publisher, b"", b"");
    sub.expect(&msg_frame("big", "1", &payload));
    session(&mut sub, b"", b"");

    // Over the limit: -ERR and close, decided on the control line alone.
    publisher.send(b"PUB big 1048577\r\n");
    publisher.expect_closed_after(b"-ERR 'Maximum Payload Violation'\r\n");
    assert_alive(&mut sub);

    // HPUB is checked on its total size.
    let mut hpub = client_on_shard(&broker, 0);
    hpub.send(b"HPUB big 12 1048577\r\n");
    hpub.expect_closed_after(b"-ERR 'Maximum Payload Violation'\r\n");
    assert_alive(&mut sub);

    // Nothing of the refused messages was delivered.
    session(&mut sub, b"", b"");
}

#[test]
fn max_payload_from_config() {
    let broker = Broker::with_config("max_payload: 2MB\n");
    let (mut publisher, mut sub) = pair(&broker);
    assert_eq!(publisher.info_json()["max_payload"], 2097152);
    assert_eq!(sub.info_json()["max_payload"], 2097152);
    session(&mut sub, b"SUB big 1\r\n", b"");
    let payload: Vec<u8> = (0..1_500_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    publisher.send(&pub_frame("big", &payload));
    let exact = vec![b'z'; 2097152];
    publisher.send(&pub_frame("big", &exact));
    session(&mut publisher, b"", b"");
    sub.expect(&msg_frame("big", "1", &payload));
    sub.expect(&msg_frame("big", "1", &exact));
    session(&mut sub, b"", b"");
    publisher.send(b"PUB big 2097153\r\n");
    publisher.expect_closed_after(b"-ERR 'Maximum Payload Violation'\r\n");
    assert_alive(&mut sub);
}

// ---------------------------------------------------------------- max_control_line

#[test]
fn max_control_line_default() {
    let broker = Broker::start();
    let (mut publisher, mut sub) = pair(&broker);
    // Argument of 4096 bytes: accepted, for SUB and for PUB.
    let subject = "a".repeat(4094);
    session(&mut sub, format!("SUB {subject} 1\r\n").as_bytes(), b"");
    session(
        &mut publisher,
        format!("PUB {subject} 1\r\nx\r\n").as_bytes(),
        b"",
    );
    sub.expect(&msg_frame(&subject, "1", b"x"));
    session(&mut sub, b"", b"");

    // One byte more: refused and closed.
    let longer = "a".repeat(4095);
    publisher.send(format!("PUB {longer} 1\r\n").as_bytes());
    publisher.expect_closed_after(b"-ERR 'maximum control line exceeded'\r\n");
    assert_alive(&mut sub);

    // Row 20.
    let mut bad = client_on_shard(&broker, 0);
    bad.send(format!("SUB {} 1\r\n", "s".repeat(4100)).as_bytes());
    bad.expect_closed_after(b"-ERR 'maximum control line exceeded'\r\n");
    assert_alive(&mut sub);

    // A line that never ends is cut off once it passes the limit.
    let mut endless = client_on_shard(&broker, 0);
    endless.send(format!("PUB {}", "e".repeat(6000)).as_bytes());
    endless.expect_closed_after(b"-ERR 'maximum control line exceeded'\r\n");
    assert_alive(&mut sub);
}

#[test]
fn max_control_line_from_config() {
    let broker = Broker::with_config("max_control_line: 100\n");
    let (mut publisher, mut sub) = pair(&broker);
    let subject = "b".repeat(98);
    session(&mut sub, format!("SUB {subject} 1\r\n").as_bytes(), b"");
    session(
        &mut publisher,
        format!("PUB {subject} 1\r\nx\r\n").as_bytes(),
        b"",
    );
    sub.expect(&msg_frame(&subject, "1", b"x"));
    publisher.send(format!("PUB {} 1\r\n", "b".repeat(99)).as_bytes());
    publisher.expect_closed_after(b"-ERR 'maximum control line exceeded'\r\n");
    assert_alive(&mut sub);
}

// ---------------------------------------------------------------- max_connections

/// What a fresh connection sees after INFO within `patience`, without
/// panicking on a reset: `Ok(bytes)` if the server closed it, `Err(bytes)` if
/// it is still open (the PONG to our PING arrived).
fn probe_connection(broker: &Broker) -> Result<Vec<u8>, Vec<u8>> {
    let mut stream = std::net::TcpStream::connect(broker.addr).expect("connect");
    stream
        .set_read_timeout(Some(support::IO_TIMEOUT))
        .expect("timeout");
    let _ = stream.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let after_info = |got: &[u8]| -> Vec<u8> {
        assert!(got.starts_with(b"INFO {"), "{:?}", text(got));
        let end = support::find(got, b"} \r\n").expect("whole INFO line") + 4;
        got[end..].to_vec()
    };
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(after_info(&got)),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.ends_with(b"PONG\r\n") {
                    return Err(after_info(&got));
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(after_info(&got)),
            Err(e) => panic!("probe read: {e} after {:?}", text(&got)),
        }
    }
}

#[test]
fn max_connections_from_config() {
    // Row 29.
    let broker = Broker::with_config("max_connections: 2\n");
    let (mut a, mut b) = pair(&broker);
    // The third gets INFO (read by `raw`), then the -ERR, then the close.
    let mut third = broker.raw();
    third.expect_closed_after(b"-ERR 'maximum connections exceeded'\r\n");
    let mut fourth = broker.raw();
    fourth.expect_closed_after(b"-ERR 'maximum connections exceeded'\r\n");
    assert_alive(&mut a);
    assert_alive(&mut b);

    // Once one of the two leaves, a new connection is admitted. The server
    // notices the close asynchronously: every refused attempt in between
    // must still look exactly like a refusal.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match probe_connection(&broker) {
            Err(open) => {
                assert_eq!(text(&open), "PONG\r\n");
                break;
            }
            Ok(closed) => assert_eq!(text(&closed), "-ERR 'maximum connections exceeded'\r\n"),
        }
        assert!(
            Instant::now() < deadline,
            "no connection admitted after one closed"
        );
    }
    assert_alive(&mut b);
}

// ---------------------------------------------------------------- max_subscriptions

#[test]
fn max_subscriptions_from_config() {
    let broker = Broker::with_config("max_subscriptions: 3\n");
    let (mut publisher, mut sub) = pair(&broker);
    session(&mut sub, b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n", b"");
    session(
        &mut sub,
        b"SUB d 4\r\n",
        b"-ERR 'maximum subscriptions exceeded'\r\n",
    );
    session(
        &mut sub,
        b"SUB e q 5\r\n",
        b"-ERR 'maximum subscriptions exceeded'\r\n",
    );
    // Still open; the refused subscriptions do not exist.
    session(
        &mut publisher,
        b"PUB d 1\r\nd\r\nPUB e 1\r\ne\r\nPUB a 1\r\na\r\nPUB c 1\r\nc\r\n",
        b"",
    );
    sub.expect(b"MSG a 1 1\r\na\r\nMSG c 3 1\r\nc\r\n");
    // Room again after an UNSUB.
    session(&mut sub, b"UNSUB 2\r\nSUB d 4\r\n", b"");
    session(&mut publisher, b"PUB b 1\r\nb\r\nPUB d 1\r\nd\r\n", b"");
    sub.expect(b"MSG d 4 1\r\nd\r\n");
    session(&mut sub, b"", b"");

    // Verbose: no +OK for the refused one.
    let mut verbose = broker.raw();
    session(
        &mut verbose,
        b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\n",
        b"+OK\r\n+OK\r\n+OK\r\n-ERR 'maximum subscriptions exceeded'\r\n",
    );
}

// ---------------------------------------------------------------- ping_interval / ping_max

#[test]
fn stale_connection_is_closed_and_live_one_stays() {
    // Row 28.
    let broker = Broker::with_config("ping_interval: \"1s\"\nping_max: 2\n");
    let (mut stale, mut live) = pair(&broker);
    stale.keep_server_pings();
    live.keep_server_pings();
    let start = Instant::now();

    // The live client answers every PING on its own thread.
    let live_thread = std::thread::spawn(move || {
        for _ in 0..3 {
            assert_eq!(live.read_line(), "PING\r\n");
            live.send(b"PONG\r\n");
        }
        live
    });

    stale.expect(b"PING\r\n");
    let first = start.elapsed();
    stale.expect(b"PING\r\n");
    stale.expect_closed_after(b"-ERR 'Stale Connection'\r\n");
    let closed = start.elapsed();
    assert!(
        first >= Duration::from_millis(500) && first <= Duration::from_secs(4),
        "first PING after {first:?}"
    );
    assert!(
        closed >= Duration::from_secs(2) && closed <= Duration::from_secs(8),
        "closed after {closed:?}"
    );

    let mut live = live_thread.join().expect("live client");
    assert!(
        start.elapsed() >= closed,
        "the live client outlived the stale one"
    );
    live.answer_server_pings();
    live.send(b"SUB alive 1\r\nPUB alive 2\r\nok\r\nPING\r\n");
    assert_eq!(live.read_line(), "MSG alive 1 2\r\n");
    assert_eq!(live.read_line(), "ok\r\n");
    assert_eq!(live.read_line(), "PONG\r\n");
}

// ---------------------------------------------------------------- slow consumer

const SLOW_MSG_SIZE: usize = 8192;
const SLOW_MSG_COUNT: usize = 3840; // 30 MiB

fn slow_payload(i: usize) -> Vec<u8> {
    let mut payload = format!("{i:08}").into_bytes();
    payload.resize(SLOW_MSG_SIZE, b'0' + (i % 10) as u8);
    payload
}

/// Starts a broker with max_pending 1MB and a publisher on shard 0, a slow
/// subscriber (on `flood.>`, never reads after its PONG) on shard 1, and a
/// third client on shard 1 subscribed as `healthy_subs` says.
fn slow_consumer_setup(healthy_subs: &[u8]) -> (Broker, RawClient, RawClient, RawClient) {
    let broker = Broker::with_config("max_pending: 1MB\n");
    let publisher = client_on_shard(&broker, 0);
    let mut slow = client_on_shard(&broker, 1);
    let mut healthy = client_on_shard(&broker, 1);
    assert_ne!(publisher.shard(broker.shards), slow.shard(broker.shards));
    session(&mut slow, b"SUB flood.> 1\r\n", b"");
    session(&mut healthy, healthy_subs, b"");
    (broker, publisher, slow, healthy)
}

/// The publisher's ~30 MiB burst: message i goes to `flood.tick` when i is a
/// multiple of 64, else to `flood.bulk`; then `PUB done 0`.
fn flood(publisher: &mut RawClient) -> usize {
    // A publisher that the server stalls forever would fail here instead of hanging.
    publisher
        .stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .expect("write timeout");
    let mut burst = Vec::with_capacity(SLOW_MSG_COUNT * (SLOW_MSG_SIZE + 32));
    for i in 0..SLOW_MSG_COUNT {
        burst.extend_from_slice(&pub_frame(flood_subject(i), &slow_payload(i)));
    }
    burst.extend_from_slice(b"PUB done 0\r\n\r\n");
    publisher.send(&burst);
    // The publisher is not disconnected and gets its PONG.
    session(publisher, b"", b"");
    burst.len()
}

fn flood_subject(i: usize) -> &'static str {
    if i % 64 == 0 {
        "flood.tick"
    } else {
        "flood.bulk"
    }
}

/// Reads the slow subscriber's socket until EOF or reset (bounded) and
/// asserts it was cut off well before the whole flood.
fn assert_cut_off(slow: &mut RawClient, published: usize) {
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(
            Instant::now() < deadline,
            "slow consumer still open after {received} bytes"
        );
        match slow.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("slow consumer read: {e} after {received} bytes"),
        }
        assert!(
            received < published,
            "slow consumer got the whole flood ({received} bytes)"
        );
    }
    assert!(
        received < published / 2,
        "slow consumer got {received} of {published} bytes"
    );
}

#[test]
fn slow_consumer_is_cut_off_others_unaffected() {
    // The third client takes only every 64th message (~480 KiB in all, below
    // max_pending even unread), so it cannot become slow itself.
    let (_broker, mut publisher, mut slow, mut healthy) =
        slow_consumer_setup(b"SUB flood.tick 1\r\nSUB done 2\r\n");
    let published = flood(&mut publisher);
    for i in (0..SLOW_MSG_COUNT).step_by(64) {
        healthy.expect(&msg_frame("flood.tick", "1", &slow_payload(i)));
    }
    healthy.expect(b"MSG done 2 0\r\n\r\n");
    session(&mut healthy, b"", b"");
    assert_cut_off(&mut slow, published);
    assert_alive(&mut publisher);
    assert_alive(&mut healthy);
}

#[test]
fn slow_consumer_full_speed_reader_receives_everything() {
    let (_broker, mut publisher, mut slow, mut healthy) =
        slow_consumer_setup(b"SUB flood.> 1\r\nSUB done 2\r\n");
    // The healthy subscriber drains its socket as fast as it can and checks afterwards.
    let mut expected = Vec::with_capacity(SLOW_MSG_COUNT * (SLOW_MSG_SIZE + 32));
    for i in 0..SLOW_MSG_COUNT {
        expected.extend_from_slice(&msg_frame(flood_subject(i), "1", &slow_payload(i)));
    }
    expected.extend_from_slice(b"MSG done 2 0\r\n\r\n");
    let healthy_thread = std::thread::spawn(move || {
        let got = healthy.read_exact(expected.len());
        if let Some(at) = got.iter().zip(&expected).position(|(a, b)| a != b) {
            panic!(
                "healthy subscriber stream differs at byte {at}: {:?}",
                text(&got[at..(at + 64).min(got.len())])
            );
        }
        healthy
    });
    let published = flood(&mut publisher);
    let mut healthy = healthy_thread.join().expect("healthy subscriber");
    session(&mut healthy, b"", b"");
    assert_cut_off(&mut slow, published);
    assert_alive(&mut publisher);
}

/// write_deadline: a subscriber that stops reading while its backlog is far
/// below max_pending is closed once a write has made no progress for the
/// deadline ("Slow Consumer (Write Deadline)"); the publisher keeps going.
#[test]
fn write_deadline_closes_a_stalled_reader() {
    let broker = Broker::with_config("write_deadline: \"1s\"\n");
    let mut publisher = client_on_shard(&broker, 0);
    let mut stalled = client_on_shard(&broker, 1);
    let mut healthy = client_on_shard(&broker, 0);
    session(&mut stalled, b"SUB wd 1\r\n", b"");
    session(&mut healthy, b"SUB wd.done 2\r\n", b"");
    // 24 MiB the stalled reader never reads: the socket buffers fill and
    // the server's writes block, with a backlog under max_pending (64 MiB).
    // Loopback buffers autotune up to ~10 MB (tcp_rmem + tcp_wmem maxima),
    // so `assert_cut_off`'s "under half" needs a burst well over 20 MB (an
    // 8 MiB one read 4.24 MB before the cut on a loaded machine).
    let payload = vec![b'w'; 8 * 1024];
    let mut burst = Vec::new();
    for _ in 0..3072 {
        burst.extend_from_slice(format!("PUB wd {}\r\n", payload.len()).as_bytes());
        burst.extend_from_slice(&payload);
        burst.extend_from_slice(b"\r\n");
    }
    publisher.send(&burst);
    session(&mut publisher, b"", b"");
    let line = broker.wait_log(
        "Slow Consumer Detected: WriteDeadline of 1s exceeded with ",
        Duration::from_secs(10),
    );
    assert!(line.is_some(), "no write-deadline slow consumer log line");
    // The stalled reader's socket is closed: what is buffered, then EOF.
    assert_cut_off(&mut stalled, burst.len());
    // The publisher and the other subscriber still work.
    session(&mut publisher, b"PUB wd.done 2\r\nok\r\n", b"");
    session(&mut healthy, b"", b"MSG wd.done 2 2\r\nok\r\n");
    assert_alive(&mut publisher);
}

#[test]
fn more_shards_than_a_shard_id_holds_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-a", "127.0.0.1", "-p", "-1", "--shards", "70000"])
        .output()
        .expect("run percore");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("--shards 70000: at most 65536 shards"),
        "stderr: {stderr}"
    );
}
