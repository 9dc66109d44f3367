//! The cross-shard guarantees, each with a test that fails without it:
//! (1) per-publisher order across shards, (2) SUB + PING/PONG makes the
//! subscription visible to every publisher on every shard, and a SUB that
//! reached the server before another client's PUB is in effect for it,
//! (3) UNSUB + PING/PONG means nothing more arrives; plus request/reply,
//! auto-unsubscribe and queue groups with clients on different shards.

mod support;

use support::{client_on_shard, Broker, RawClient};

fn msg(subject: &str, sid: &str, payload: &str) -> Vec<u8> {
    format!("MSG {subject} {sid} {}\r\n{payload}\r\n", payload.len()).into_bytes()
}

#[test]
fn publisher_order_is_kept_across_shards() {
    let broker = Broker::start();
    let mut sub = client_on_shard(&broker, 1);
    let mut publisher = client_on_shard(&broker, 0);
    assert_ne!(sub.shard(2), publisher.shard(2));
    sub.send(b"SUB seq 1\r\n");
    assert!(sub.ping_pong().is_empty());

    let count = 20_000;
    let mut batch = Vec::new();
    for i in 0..count {
        batch.extend_from_slice(format!("PUB seq {}\r\n{}\r\n", i.to_string().len(), i).as_bytes());
    }
    publisher.send(&batch);
    assert!(publisher.ping_pong().is_empty());

    for i in 0..count {
        let line = sub.read_line();
        assert_eq!(
            line,
            format!("MSG seq 1 {}\r\n", i.to_string().len()),
            "message {i}"
        );
        let payload = sub.read_line();
        assert_eq!(payload, format!("{i}\r\n"), "out of order at {i}");
    }
    assert!(sub.ping_pong().is_empty());
}

#[test]
fn each_publisher_keeps_its_order_when_several_publish_at_once() {
    let broker = Broker::start();
    let mut sub = client_on_shard(&broker, 1);
    sub.send(b"SUB multi.* 9\r\n");
    sub.ping_pong();
    let per_publisher = 3_000;
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let mut client = RawClient::connect_quiet(broker.addr);
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                for i in 0..per_publisher {
                    let payload = format!("{p}:{i}");
                    batch.extend_from_slice(
                        format!("PUB multi.{p} {}\r\n{payload}\r\n", payload.len()).as_bytes(),
                    );
                }
                client.send(&batch);
                client.ping_pong();
            })
        })
        .collect();
    for handle in publishers {
        handle.join().expect("publisher");
    }
    let mut next = [0usize; 4];
    for _ in 0..4 * per_publisher {
        let header = sub.read_line();
        assert!(header.starts_with("MSG multi."), "{header}");
        let payload = sub.read_line();
        let (p, i) = payload.trim_end().split_once(':').expect("payload");
        let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[p], "publisher {p} out of order");
        next[p] += 1;
    }
    assert_eq!(next, [per_publisher; 4]);
}

/// Guarantee (2): after SUB + PING/PONG on shard 1, a publish on shard 0 that
/// follows is delivered. Repeated with fresh subjects to catch the race the
/// PONG barrier closes.
#[test]
fn sub_then_pong_is_visible_to_publishers_on_other_shards() {
    let broker = Broker::start();
    let mut publisher = client_on_shard(&broker, 0);
    let mut sub = client_on_shard(&broker, 1);
    for i in 0..300 {
        sub.send(format!("SUB visible.{i} {i}\r\n").as_bytes());
        assert!(sub.ping_pong().is_empty());
        publisher.send(format!("PUB visible.{i} 2\r\nhi\r\nPING\r\n").as_bytes());
        assert!(publisher.read_until_pong().is_empty());
        let got = sub.ping_pong();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&msg(&format!("visible.{i}"), &i.to_string(), "hi")),
            "round {i}"
        );
    }
}

/// Guarantee (2b): a SUB that reached the server before another client's
/// PUB is in effect for it, even when the subscriber's PONG does not cover
/// the SUB. nats.py puts its flush PING in front of a SUB it has not written
/// yet ("PING\r\nSUB ..."), then publishes from another connection as soon
/// as the PONG arrives; nats-server, with one subscription list, delivers.
#[test]
fn sub_behind_a_ping_is_visible_to_a_publish_after_the_pong() {
    let broker = Broker::start();
    let mut publisher = client_on_shard(&broker, 0);
    let mut sub = client_on_shard(&broker, 1);
    for i in 0..300 {
        sub.send(format!("PING\r\nSUB ahead.{i} {i}\r\n").as_bytes());
        assert!(sub.read_until_pong().is_empty());
        publisher.send(format!("PUB ahead.{i} 2\r\nhi\r\nPING\r\n").as_bytes());
        assert!(publisher.read_until_pong().is_empty());
        let got = sub.ping_pong();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&msg(&format!("ahead.{i}"), &i.to_string(), "hi")),
            "round {i}"
        );
    }
}

/// Guarantee (3): once UNSUB + PING/PONG is done, nothing more arrives, even
/// while a publisher on another shard keeps publishing.
#[test]
fn unsub_then_pong_stops_delivery() {
    let broker = Broker::start();
    let mut sub = client_on_shard(&broker, 1);
    let mut publisher = client_on_shard(&broker, 0);
    sub.send(b"SUB stop 1\r\n");
    sub.ping_pong();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let publishing = std::thread::spawn(move || {
        let mut sent = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            publisher.send(
                b"PUB stop 1\r\nx\r\nPUB stop 1\r\nx\r\nPUB stop 1\r\nx\r\nPUB stop 1\r\nx\r\n",
            );
            publisher.ping_pong();
            sent += 4;
        }
        (publisher, sent)
    });
    // Let some messages flow, then unsubscribe mid-stream.
    for _ in 0..8 {
        assert_eq!(sub.read_line(), "MSG stop 1 1\r\n");
        assert_eq!(sub.read_line(), "x\r\n");
    }
    sub.send(b"UNSUB 1\r\n");
    let before_pong = sub.ping_pong();
    assert_eq!(before_pong.len() % b"MSG stop 1 1\r\nx\r\n".len(), 0);
    // More publishes after the PONG, then a full round trip on both sides.
    let (mut publisher, _) = {
        std::thread::sleep(std::time::Duration::from_millis(1));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        publishing.join().expect("publisher")
    };
    publisher.send(b"PUB stop 1\r\ny\r\n");
    publisher.ping_pong();
    assert!(sub.ping_pong().is_empty(), "delivery after UNSUB + PONG");
}

#[test]
fn request_reply_across_shards() {
    let broker = Broker::start();
    let mut responder = client_on_shard(&broker, 1);
    let mut requester = client_on_shard(&broker, 0);
    responder.send(b"SUB svc.echo 1\r\n");
    responder.ping_pong();
    requester.send(b"SUB _INBOX.req.* 5\r\n");
    requester.ping_pong();
    for i in 0..100 {
        requester.send(format!("PUB svc.echo _INBOX.req.{i} 4\r\nping\r\n").as_bytes());
        assert_eq!(
            responder.read_line(),
            format!("MSG svc.echo 1 _INBOX.req.{i} 4\r\n")
        );
        assert_eq!(responder.read_line(), "ping\r\n");
        responder.send(format!("PUB _INBOX.req.{i} 4\r\npong\r\n").as_bytes());
        assert_eq!(requester.read_line(), format!("MSG _INBOX.req.{i} 5 4\r\n"));
        assert_eq!(requester.read_line(), "pong\r\n");
    }
}

#[test]
fn no_responders_only_when_nobody_on_any_shard_listens() {
    let broker = Broker::start();
    let mut requester = client_on_shard(&broker, 0);
    requester.send(b"SUB _INBOX.nr.* 3\r\n");
    requester.ping_pong();
    requester.send(b"PUB svc.none _INBOX.nr.1 2\r\nhi\r\n");
    assert_eq!(
        requester.ping_pong(),
        b"HMSG _INBOX.nr.1 3 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );

    let mut responder = client_on_shard(&broker, 1);
    responder.send(b"SUB svc.none 1\r\n");
    responder.ping_pong();
    requester.send(b"PUB svc.none _INBOX.nr.2 2\r\nhi\r\n");
    assert!(
        requester.ping_pong().is_empty(),
        "a remote responder exists: no 503"
    );
    assert_eq!(
        responder.ping_pong(),
        b"MSG svc.none 1 _INBOX.nr.2 2\r\nhi\r\n"
    );
}

#[test]
fn auto_unsubscribe_count_is_exact_across_shards() {
    let broker = Broker::start();
    let mut sub = client_on_shard(&broker, 1);
    let mut publisher = client_on_shard(&broker, 0);
    sub.send(b"SUB auto 1\r\nUNSUB 1 5\r\n");
    sub.ping_pong();
    let mut batch = Vec::new();
    for _ in 0..50 {
        batch.extend_from_slice(b"PUB auto 1\r\na\r\n");
    }
    publisher.send(&batch);
    publisher.ping_pong();
    let got = sub.ping_pong();
    assert_eq!(got, b"MSG auto 1 1\r\na\r\n".repeat(5));
    // The interest is gone everywhere: a request now gets 503.
    publisher.send(b"SUB _INBOX.a 2\r\nPUB auto _INBOX.a 1\r\na\r\n");
    assert_eq!(
        publisher.ping_pong(),
        b"HMSG _INBOX.a 2 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
}

#[test]
fn queue_group_spans_shards_and_delivers_exactly_once() {
    let broker = Broker::start();
    let mut members: Vec<RawClient> = (0..4)
        .map(|_| RawClient::connect_quiet(broker.addr))
        .collect();
    let shards: std::collections::BTreeSet<usize> = members.iter().map(|m| m.shard(2)).collect();
    assert_eq!(shards.len(), 2, "members on both shards");
    for (i, member) in members.iter_mut().enumerate() {
        member.send(format!("SUB work workers {i}\r\n").as_bytes());
        member.ping_pong();
    }
    let mut plain = RawClient::connect_quiet(broker.addr);
    plain.send(b"SUB work 99\r\n");
    plain.ping_pong();
    let mut publisher = RawClient::connect_quiet(broker.addr);
    let total = 2_000;
    publisher.send(&b"PUB work 1\r\nw\r\n".repeat(total));
    publisher.ping_pong();

    let one = b"MSG work 99 1\r\nw\r\n".len();
    assert_eq!(
        plain.ping_pong().len(),
        total * one,
        "plain subscriber gets every message"
    );
    let mut counts = Vec::new();
    for member in members.iter_mut() {
        let got = member.ping_pong();
        let n = got.len() / (one - 1); // member sids are one digit: "MSG work workers"? no: "MSG work <i> 1"
        counts.push(n);
    }
    assert_eq!(counts.iter().sum::<usize>(), total, "{counts:?}");
    assert!(
        counts.iter().all(|&c| c > total / 10),
        "uneven spread {counts:?}"
    );
}
