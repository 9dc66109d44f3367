//! Overload: publishers faster than a subscriber on the other shard, a
//! fan-out to 1 000 subscribers, a queue group with a member that stops
//! reading. A slow consumer is cut with a slow-consumer reason in
//! `/connz?state=closed`; subscribers that keep reading lose nothing.
//!
//! Which slow-consumer reason: with `max_pending: 1MB` and a publisher
//! flooding a reader that never reads, nats-server 2.9.10 stalls the
//! publisher (up to 1 s per message once the reader's backlog passes
//! max_pending) and cuts the reader when its 10 s write deadline passes:
//! "Slow Consumer (Write Deadline)". percore holds publishers back only for
//! a subscriber that is draining (at most 1 s in all, 50 ms at a time; see
//! `connection/output.rs`), never for one that takes nothing, so that
//! reader's backlog passes max_pending first: "Slow Consumer (Pending
//! Bytes)", in well under a second. (`write_deadline` alone gives "Slow
//! Consumer (Write Deadline)" in both; see tests/limits.rs.)

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{client_on_shard, Broker, RawClient, IO_TIMEOUT};

/// One delivered message: subject, sid, payload.
type Msg = (String, String, Vec<u8>);

/// Reads messages until one arrives on `last_subject` (included).
fn read_until(client: &mut RawClient, last_subject: &str) -> Vec<Msg> {
    let mut messages = Vec::new();
    loop {
        let (fields, payload) = client.read_msg();
        let done = fields[1] == last_subject;
        messages.push((fields[1].clone(), fields[2].clone(), payload));
        if done {
            return messages;
        }
    }
}

fn numbered(tag: &str, i: usize, size: usize) -> Vec<u8> {
    let mut payload = format!("{tag}-{i:08}").into_bytes();
    payload.resize(size, b'.');
    payload
}

/// Sends `bytes` (more than the socket buffers hold, so the write waits on
/// the broker reading) and checks the broker answers the PING behind them.
fn send_whole(publisher: &mut RawClient, bytes: &[u8]) {
    publisher
        .stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    publisher.send(bytes);
    assert_eq!(publisher.ping_pong(), b"");
}

fn pub_frame(subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    frame
}

/// A client that never reads after its SUB, on the other shard than the
/// publisher, is cut as a slow consumer and counted in /varz; a subscriber
/// beside it that reads gets every message, in order.
#[test]
fn a_reader_that_stops_on_the_other_shard_is_cut_the_others_lose_nothing() {
    const COUNT: usize = 3000;
    const SIZE: usize = 8192;
    let broker = Broker::start_with(&["-m", "-1"], Some("max_pending: 1MB\n"));
    let mut publisher = client_on_shard(&broker, 0);
    let mut stopped = client_on_shard(&broker, 1);
    let mut healthy = client_on_shard(&broker, 1);
    stopped.send(b"SUB flood 1\r\n");
    stopped.ping_pong();
    healthy.send(b"SUB flood 1\r\nSUB end 2\r\n");
    healthy.ping_pong();
    let stopped_cid = stopped.client_id();
    let reader = std::thread::spawn(move || {
        let got = read_until(&mut healthy, "end");
        (healthy, got)
    });
    let mut burst = Vec::new();
    for i in 0..COUNT {
        burst.extend_from_slice(&pub_frame("flood", &numbered("m", i, SIZE)));
    }
    burst.extend_from_slice(b"PUB end 0\r\n\r\n");
    send_whole(&mut publisher, &burst);
    let (mut healthy, got) = reader.join().expect("healthy reader");
    assert_eq!(got.len(), COUNT + 1);
    for (i, (subject, _, payload)) in got.iter().take(COUNT).enumerate() {
        assert_eq!(subject, "flood");
        assert_eq!(payload, &numbered("m", i, SIZE), "message {i}");
    }
    assert_eq!(
        broker.closed_reason(stopped_cid),
        "Slow Consumer (Pending Bytes)"
    );
    assert_eq!(broker.monitor_json("/varz")["slow_consumers"], 1);
    // nats-server's line, at its level (percore said "[WRN] ... Slow
    // Consumer Detected: Slow Consumer (Pending Bytes)").
    let line = broker
        .wait_log(
            &format!("cid:{stopped_cid} - Slow Consumer Detected: MaxPending of 1048576 Exceeded"),
            IO_TIMEOUT,
        )
        .expect("slow consumer logged");
    assert!(line.contains("[INF]"), "{line}");
    assert_eq!(healthy.ping_pong(), b"");
}

/// 1 000 subscribers of one subject, half on each shard: each gets every
/// message once, in publishing order.
#[test]
fn a_fan_out_to_a_thousand_subscribers_reaches_each_once_in_order() {
    const SUBSCRIBERS: usize = 1000;
    const COUNT: usize = 20;
    let broker = Broker::start();
    let mut subscribers: Vec<RawClient> = (0..SUBSCRIBERS)
        .map(|_| {
            let mut client = RawClient::connect(broker.addr);
            client.send(b"CONNECT {\"verbose\":false}\r\nSUB fan 7\r\n");
            client
        })
        .collect();
    for client in &mut subscribers {
        assert_eq!(client.ping_pong(), b"");
    }
    let shards: BTreeSet<usize> = subscribers.iter().map(|c| c.shard(2)).collect();
    assert_eq!(shards.len(), 2);
    let mut publisher = client_on_shard(&broker, 0);
    let mut burst = Vec::new();
    for i in 0..COUNT {
        burst.extend_from_slice(&pub_frame("fan", &numbered("f", i, 64)));
    }
    publisher.send(&burst);
    assert_eq!(publisher.ping_pong(), b"");
    let mut expected = Vec::new();
    for i in 0..COUNT {
        expected.extend_from_slice(b"MSG fan 7 64\r\n");
        expected.extend_from_slice(&numbered("f", i, 64));
        expected.extend_from_slice(b"\r\n");
    }
    for (n, client) in subscribers.iter_mut().enumerate() {
        let got = client.ping_pong();
        assert!(got == expected, "subscriber {n} got {} bytes", got.len());
    }
}

/// A queue group of three, one of which stops reading: it is cut as a slow
/// consumer; from then on every message goes to one of the two that read,
/// none lost, none twice.
#[test]
fn a_queue_member_that_stops_reading_is_cut_and_the_group_loses_nothing_after() {
    const SIZE: usize = 4096;
    const AFTER: usize = 2000;
    let broker = Broker::start_with(&["-m", "-1"], Some("max_pending: 2MB\n"));
    let mut publisher = client_on_shard(&broker, 0);
    let mut members: Vec<RawClient> = [0, 1, 1]
        .into_iter()
        .map(|shard| {
            let mut member = client_on_shard(&broker, shard);
            member.send(b"SUB work q 1\r\nSUB end 2\r\n");
            member.ping_pong();
            member
        })
        .collect();
    let stopped = members.pop().expect("third member");
    let stopped_cid = stopped.client_id();
    let readers: Vec<_> = members
        .into_iter()
        .map(|mut member| {
            std::thread::spawn(move || {
                let got = read_until(&mut member, "end");
                (member, got)
            })
        })
        .collect();
    publisher
        .stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    // Phase 1: until the member that stopped reading is cut.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut batch = 0;
    loop {
        let mut burst = Vec::new();
        for i in 0..200 {
            burst.extend_from_slice(&pub_frame(
                "work",
                &numbered("before", batch * 200 + i, SIZE),
            ));
        }
        publisher.send(&burst);
        assert_eq!(publisher.ping_pong(), b"");
        batch += 1;
        let closed = broker.monitor_json("/connz?state=closed");
        if let Some(entry) = closed["connections"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["cid"] == stopped_cid))
        {
            assert_eq!(entry["reason"], "Slow Consumer (Pending Bytes)");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stopped member was never cut"
        );
    }
    // Phase 2: numbered messages, each to exactly one reading member.
    let mut burst = Vec::new();
    for i in 0..AFTER {
        burst.extend_from_slice(&pub_frame("work", &numbered("after", i, SIZE)));
    }
    burst.extend_from_slice(b"PUB end 0\r\n\r\n");
    publisher.send(&burst);
    assert_eq!(publisher.ping_pong(), b"");
    let mut after: Vec<Vec<u8>> = Vec::new();
    let mut per_member = Vec::new();
    for reader in readers {
        let (_member, got) = reader.join().expect("member reader");
        let mine: Vec<Vec<u8>> = got
            .into_iter()
            .filter(|(subject, _, payload)| subject == "work" && payload.starts_with(b"after-"))
            .map(|(_, _, payload)| payload)
            .collect();
        per_member.push(mine.len());
        after.extend(mine);
    }
    after.sort();
    let expected: Vec<Vec<u8>> = (0..AFTER).map(|i| numbered("after", i, SIZE)).collect();
    assert!(
        after == expected,
        "after the cut: {} of {AFTER} ({per_member:?})",
        after.len()
    );
    assert!(per_member.iter().all(|&n| n > 0), "{per_member:?}");
    drop(stopped);
}

/// The server's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS")
}

/// 300 connections announce a max_payload message and send none of it:
/// the server's memory grows with the bytes they sent, not with what they
/// announced. (percore sized each read buffer for the announced 1 MiB at
/// once: about +90 MiB here; nats-server about none.)
#[test]
fn an_announced_payload_costs_nothing_until_it_arrives() {
    const CONNS: usize = 300;
    let broker = Broker::start();
    let mut clients: Vec<RawClient> = (0..CONNS)
        .map(|_| {
            let mut client = RawClient::connect(broker.addr);
            client.send(b"CONNECT {\"verbose\":false}\r\n");
            client
        })
        .collect();
    for client in &mut clients {
        assert_eq!(client.ping_pong(), b"");
    }
    let before = rss_kib(broker.pid());
    for client in &mut clients {
        // One write, one read on the server: the PONG says the PUB line
        // behind the PING was parsed too.
        client.send(b"PING\r\nPUB stalled 1048576\r\n");
    }
    for client in &mut clients {
        assert_eq!(client.read_until_pong(), b"");
    }
    let grown = rss_kib(broker.pid()).saturating_sub(before);
    assert!(
        grown < (CONNS as u64) * 16,
        "{grown} KiB more for {CONNS} announced payloads"
    );
}

/// A publisher that turns from large messages to small ones and back (its
/// reads grow past 64 KiB while its messages are large and come back when
/// they are small, `read_buffer.rs`): subscribers on its own shard and on
/// the other get every message, whole and in order.
#[test]
fn a_publisher_switching_between_large_and_small_messages_loses_nothing() {
    // Sizes of the bursts, in turn: 8 KiB, 16 B, 64 KiB, 100 B, 8 KiB.
    const BURSTS: [(usize, usize); 5] = [
        (8192, 400),
        (16, 5000),
        (65536, 60),
        (100, 3000),
        (8192, 400),
    ];
    let broker = Broker::start_with(&["-m", "-1"], None);
    let mut publisher = client_on_shard(&broker, 0);
    let mut readers = Vec::new();
    for shard in [0, 1] {
        let mut subscriber = client_on_shard(&broker, shard);
        subscriber.send(b"SUB mixed 1\r\nSUB end 2\r\n");
        subscriber.ping_pong();
        readers.push(std::thread::spawn(move || {
            let got = read_until(&mut subscriber, "end");
            (subscriber, got)
        }));
    }
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (burst, &(size, count)) in BURSTS.iter().enumerate() {
        for i in 0..count {
            let payload = numbered(&format!("b{burst}"), i, size);
            stream.extend_from_slice(&pub_frame("mixed", &payload));
            expected.push(payload);
        }
    }
    stream.extend_from_slice(b"PUB end 0\r\n\r\n");
    send_whole(&mut publisher, &stream);
    for reader in readers {
        let (mut subscriber, got) = reader.join().expect("subscriber");
        assert_eq!(got.len(), expected.len() + 1);
        for (i, ((subject, _, payload), want)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(subject, "mixed");
            assert!(payload == want, "message {i} differs");
        }
        assert_eq!(subscriber.ping_pong(), b"");
    }
}
