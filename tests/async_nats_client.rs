//! Tests that drive percore with a real client library (async-nats 0.38).
//!
//! Every test starts its own two-shard broker and places clients on chosen
//! shards (connection k lands on shard (k - 1) % 2), asserting the placement
//! from the client's own view of INFO.
//!
//! Synchronisation rules:
//! * async-nats 0.38's `Client::flush` only writes the client's buffer to the
//!   socket; it sends no PING. It is used to push messages out, never as a
//!   barrier.
//! * "this subscription is known on the publisher's shard" is established by
//!   `support::interest::interest_ready`: the subscriber adds a probe
//!   subscription after the real ones and the publisher requests on it until
//!   it gets an answer. Interest changes travel between two shards in one
//!   FIFO, so once the probe is known there, every earlier SUB/UNSUB of that
//!   connection is too.
//! * "everything before has been delivered" is established by a sentinel
//!   message published last by the same publisher (per-publisher order).
//! * Every await that depends on the server is bounded by [`within`].

mod support;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::client::{PublishErrorKind, RequestErrorKind};
use async_nats::{Client, ConnectOptions, HeaderMap, Message, Subscriber};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use support::interest::interest_ready;
use support::{Broker, RawClient};

const WAIT: Duration = Duration::from_secs(10);
const SHARDS: u64 = 2;
const MAX_PAYLOAD: usize = 1_048_576;

/// Awaits `fut`, failing the test if the server keeps it waiting too long.
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

fn shard_of(client: &Client) -> usize {
    let id = client.server_info().client_id;
    assert!(id >= 1, "client_id {id}");
    ((id - 1) % SHARDS) as usize
}

async fn connect_with(broker: &Broker, options: ConnectOptions) -> Client {
    within(
        "connect",
        options.connect(format!("nats://{}", broker.addr)),
    )
    .await
    .expect("connect to percore")
}

/// Connects with `options()` until a connection lands on `shard`; others
/// are dropped (they close, which is harmless).
async fn client_on_with(
    broker: &Broker,
    shard: usize,
    options: impl Fn() -> ConnectOptions,
) -> Client {
    for _ in 0..2 * SHARDS {
        let client = connect_with(broker, options()).await;
        if shard_of(&client) == shard {
            return client;
        }
    }
    panic!("no connection landed on shard {shard}");
}

async fn client_on(broker: &Broker, shard: usize) -> Client {
    client_on_with(broker, shard, ConnectOptions::new).await
}

async fn subscribe(client: &Client, subject: &str) -> Subscriber {
    within("subscribe", client.subscribe(subject.to_string()))
        .await
        .expect("subscribe")
}

async fn publish(client: &Client, subject: &str, payload: impl Into<Bytes>) {
    within(
        "publish",
        client.publish(subject.to_string(), payload.into()),
    )
    .await
    .expect("publish");
}

async fn flush(client: &Client) {
    within("flush", client.flush()).await.expect("flush");
}

/// The next message, or a test failure if none comes or the stream ended.
async fn next(sub: &mut Subscriber, what: &str) -> Message {
    within(what, sub.next())
        .await
        .unwrap_or_else(|| panic!("subscription ended while waiting for {what}"))
}

fn text(msg: &Message) -> String {
    String::from_utf8(msg.payload.to_vec()).expect("utf-8 payload")
}

fn in_messages(client: &Client) -> u64 {
    client.statistics().in_messages.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_info_fields_seen_by_client() {
    let broker = Broker::start();
    let client = connect_with(&broker, ConnectOptions::new()).await;
    let info = client.server_info();
    assert_eq!(info.proto, 1);
    assert!(info.headers, "headers must be advertised");
    assert_eq!(info.max_payload, MAX_PAYLOAD);
    assert!(info.version.starts_with("2.9"), "version {}", info.version);
    assert!(info.client_id >= 1);
    assert!(!info.server_id.is_empty());
    assert!(!info.lame_duck_mode);
    assert!(client.is_server_compatible(2, 9, 0));
    // The second connection gets the next client id.
    let second = connect_with(&broker, ConnectOptions::new()).await;
    assert_eq!(second.server_info().client_id, info.client_id + 1);
    assert_ne!(shard_of(&client), shard_of(&second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_1000_in_order_across_shards() {
    let broker = Broker::start();
    let sub_client = client_on(&broker, 0).await;
    let publisher = client_on(&broker, 1).await;
    let mut sub = subscribe(&sub_client, "orders.new").await;
    interest_ready(&sub_client, &publisher).await;

    for i in 0..1000 {
        publish(&publisher, "orders.new", i.to_string()).await;
    }
    publish(&publisher, "orders.new", "end").await;
    flush(&publisher).await;

    for i in 0..1000 {
        let msg = next(&mut sub, "message").await;
        assert_eq!(msg.subject.as_str(), "orders.new");
        assert_eq!(text(&msg), i.to_string(), "message {i} out of order");
        assert!(msg.reply.is_none());
        assert!(msg.headers.is_none());
    }
    assert_eq!(text(&next(&mut sub, "sentinel").await), "end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_subscribers_each_get_everything() {
    let broker = Broker::start();
    let a = client_on(&broker, 0).await;
    let b = client_on(&broker, 1).await;
    let c = client_on(&broker, 0).await;
    let publisher = client_on(&broker, 1).await;
    let mut subs = Vec::new();
    for client in [&a, &b, &c] {
        subs.push(subscribe(client, "fanout").await);
        interest_ready(client, &publisher).await;
    }

    for i in 0..1000 {
        publish(&publisher, "fanout", i.to_string()).await;
    }
    publish(&publisher, "fanout", "end").await;
    flush(&publisher).await;

    for (n, sub) in subs.iter_mut().enumerate() {
        for i in 0..1000 {
            let msg = next(sub, "message").await;
            assert_eq!(text(&msg), i.to_string(), "subscriber {n}, message {i}");
        }
        assert_eq!(text(&next(sub, "sentinel").await), "end", "subscriber {n}");
    }
}

/// Reads until the payload "end" and returns the subjects seen before it.
async fn subjects_until_end(sub: &mut Subscriber) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let msg = next(sub, "wildcard message").await;
        if text(&msg) == "end" {
            return seen;
        }
        seen.push(msg.subject.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_star_and_greater_than() {
    let broker = Broker::start();
    let remote = client_on(&broker, 0).await;
    let local = client_on(&broker, 1).await;
    let publisher = client_on(&broker, 1).await;
    let mut subs = Vec::new();
    for client in [&remote, &local] {
        let star = subscribe(client, "foo.*").await;
        let gt = subscribe(client, "foo.>").await;
        let star_first = subscribe(client, "*.bar").await;
        subs.push((star, gt, star_first));
        interest_ready(client, &publisher).await;
    }

    for subject in [
        "foo.bar",     // foo.*, foo.>, *.bar
        "foo.bar.baz", // foo.>
        "foo",         // nothing: > and * need at least one token
        "x.bar",       // *.bar
        "x.bar.y",     // nothing
        "foo.x",       // foo.*, foo.>
        "foox.bar.z",  // nothing
        "bar",         // nothing
    ] {
        publish(&publisher, subject, "m").await;
    }
    // The sentinel matches all three patterns.
    publish(&publisher, "foo.bar", "end").await;
    flush(&publisher).await;

    for (star, gt, star_first) in subs.iter_mut() {
        assert_eq!(subjects_until_end(star).await, ["foo.bar", "foo.x"]);
        assert_eq!(
            subjects_until_end(gt).await,
            ["foo.bar", "foo.bar.baz", "foo.x"]
        );
        assert_eq!(subjects_until_end(star_first).await, ["foo.bar", "x.bar"]);
    }
}

/// Counts what `work` holds once `done` has delivered its marker: the
/// client hands a connection's messages to subscriptions in arrival order,
/// so everything that came before the marker is already queued in `work`.
async fn collect_before_done(work: &mut Subscriber, done: &mut Subscriber) -> Vec<String> {
    assert_eq!(text(&next(done, "done marker").await), "done");
    let mut got = Vec::new();
    // `unconstrained`: tokio's cooperative budget would otherwise make a
    // ready channel look empty after ~128 receives.
    while let Some(Some(msg)) = tokio::task::unconstrained(work.next()).now_or_never() {
        got.push(text(&msg));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_members_share_plain_sub_gets_all() {
    let broker = Broker::start();
    let m0 = client_on(&broker, 0).await;
    let m1 = client_on(&broker, 1).await;
    let m2 = client_on(&broker, 0).await;
    let plain = client_on(&broker, 1).await;
    let publisher = client_on(&broker, 0).await;

    let mut members = Vec::new();
    for client in [&m0, &m1, &m2] {
        let work = within(
            "queue subscribe",
            client.queue_subscribe("jobs".to_string(), "workers".to_string()),
        )
        .await
        .expect("queue subscribe");
        let done = subscribe(client, "jobs.done").await;
        interest_ready(client, &publisher).await;
        members.push((work, done));
    }
    let mut plain_work = subscribe(&plain, "jobs").await;
    let mut plain_done = subscribe(&plain, "jobs.done").await;
    interest_ready(&plain, &publisher).await;

    for i in 0..300 {
        publish(&publisher, "jobs", i.to_string()).await;
    }
    publish(&publisher, "jobs.done", "done").await;
    flush(&publisher).await;

    let plain_got = collect_before_done(&mut plain_work, &mut plain_done).await;
    let expected: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    assert_eq!(
        plain_got, expected,
        "the plain subscriber gets every message"
    );

    let mut counts = Vec::new();
    let mut union = BTreeSet::new();
    for (work, done) in members.iter_mut() {
        let got = collect_before_done(work, done).await;
        counts.push(got.len());
        for payload in got {
            assert!(union.insert(payload.clone()), "{payload} delivered twice");
        }
    }
    assert_eq!(counts.iter().sum::<usize>(), 300, "counts {counts:?}");
    assert!(counts.iter().all(|&n| n > 0), "counts {counts:?}");
    assert_eq!(union.len(), 300);
}

async fn start_doubler(client: &Client, subject: &str) -> tokio::task::JoinHandle<()> {
    let mut requests = subscribe(client, subject).await;
    let replier = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            let n: u64 = text(&msg).parse().expect("number");
            let reply = msg.reply.expect("request has a reply subject");
            replier
                .publish(reply, (2 * n).to_string().into())
                .await
                .expect("reply");
            replier.flush().await.expect("flush");
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_across_shards() {
    let broker = Broker::start();
    let responder = client_on(&broker, 0).await;
    let requester = client_on(&broker, 1).await;
    let task = start_doubler(&responder, "svc.double").await;
    interest_ready(&responder, &requester).await;

    for i in 0..100u64 {
        let reply = within(
            "sequential reply",
            requester.request("svc.double", i.to_string().into()),
        )
        .await
        .expect("request");
        assert_eq!(text(&reply), (2 * i).to_string());
    }

    let requests = (0..100u64).map(|i| {
        let requester = requester.clone();
        async move {
            let reply = requester
                .request("svc.double", i.to_string().into())
                .await
                .expect("concurrent request");
            (i, text(&reply))
        }
    });
    let replies = within(
        "100 concurrent replies",
        futures::future::join_all(requests),
    )
    .await;
    assert_eq!(replies.len(), 100);
    for (i, reply) in replies {
        assert_eq!(reply, (2 * i).to_string(), "reply to request {i}");
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_responders_fails_fast() {
    let broker = Broker::start();
    // A request timeout longer than `within`: only a 503 status from the
    // server can end the request before the test's own deadline.
    let long_timeout = || ConnectOptions::new().request_timeout(Some(Duration::from_secs(60)));
    let responder = client_on_with(&broker, 0, long_timeout).await;
    let requester = client_on_with(&broker, 1, long_timeout).await;

    let err = within(
        "no-responders status",
        requester.request("nobody.home", "x".into()),
    )
    .await
    .expect_err("nobody listens");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");

    // A responder on the other shard makes the same request succeed ...
    let mut requests = subscribe(&responder, "nobody.home").await;
    interest_ready(&responder, &requester).await;
    let pending = tokio::spawn({
        let requester = requester.clone();
        async move { requester.request("nobody.home", "21".into()).await }
    });
    let request = next(&mut requests, "the request").await;
    let reply = request.reply.expect("reply subject");
    within("reply", responder.publish(reply, "42".into()))
        .await
        .expect("reply");
    flush(&responder).await;
    let answer = within("answer", pending)
        .await
        .expect("request task")
        .expect("answered");
    assert_eq!(text(&answer), "42");

    // ... and once it unsubscribed (applied on the requester's shard), no
    // responders again.
    within("unsubscribe", requests.unsubscribe())
        .await
        .expect("unsubscribe");
    interest_ready(&responder, &requester).await;
    let err = within(
        "no-responders status",
        requester.request("nobody.home", "x".into()),
    )
    .await
    .expect_err("responder gone");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_round_trip_multi_value_and_case() {
    let broker = Broker::start();
    let sub_client = client_on(&broker, 0).await;
    let publisher = client_on(&broker, 1).await;
    let mut sub = subscribe(&sub_client, "hdr.test").await;
    interest_ready(&sub_client, &publisher).await;

    let mut headers = HeaderMap::new();
    headers.insert("X-Single", "one");
    headers.append("X-Multi", "a");
    headers.append("X-Multi", "b");
    headers.append("X-Multi", "c");
    headers.insert("X-Mixed-Case", "MiXeD");
    headers.insert("x-mixed-case", "lower");
    headers.insert("X-Spaces", "a b  c");
    within(
        "publish with headers",
        publisher.publish_with_headers("hdr.test", headers.clone(), "body".into()),
    )
    .await
    .expect("publish");
    // Headers and an empty payload.
    let mut only = HeaderMap::new();
    only.insert("X-Only", "yes");
    within(
        "publish with headers",
        publisher.publish_with_headers("hdr.test", only, Bytes::new()),
    )
    .await
    .expect("publish");
    // No headers at all.
    publish(&publisher, "hdr.test", "plain").await;
    flush(&publisher).await;

    let msg = next(&mut sub, "message with headers").await;
    assert_eq!(text(&msg), "body");
    let got = msg.headers.as_ref().expect("headers delivered");
    let value = |name: &str| got.get(name).map(|v| v.to_string());
    assert_eq!(value("X-Single").as_deref(), Some("one"));
    let multi: Vec<String> = got.get_all("X-Multi").map(|v| v.to_string()).collect();
    assert_eq!(multi, ["a", "b", "c"]);
    assert_eq!(value("X-Mixed-Case").as_deref(), Some("MiXeD"));
    assert_eq!(value("x-mixed-case").as_deref(), Some("lower"));
    assert_eq!(value("X-Spaces").as_deref(), Some("a b  c"));
    assert_eq!(got.len(), headers.len());

    let msg = next(&mut sub, "headers-only message").await;
    assert!(msg.payload.is_empty());
    let got = msg.headers.as_ref().expect("headers delivered");
    assert_eq!(
        got.get("X-Only").map(|v| v.to_string()).as_deref(),
        Some("yes")
    );

    let msg = next(&mut sub, "plain message").await;
    assert_eq!(text(&msg), "plain");
    assert!(msg.headers.is_none(), "no headers were sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_without_header_support_gets_payload_only() {
    let broker = Broker::start();
    // Raw client first: client 1, shard 0.
    let mut raw = RawClient::connect(broker.addr);
    assert_eq!(raw.shard(2), 0);
    raw.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false,\"protocol\":1}\r\nSUB hdr.strip 9\r\nPING\r\n");
    // PONG: the SUB is applied on every shard.
    raw.expect(b"PONG\r\n");
    let publisher = client_on(&broker, 1).await;

    let mut headers = HeaderMap::new();
    headers.insert("X-Secret", "not for you");
    within(
        "publish with headers",
        publisher.publish_with_headers("hdr.strip", headers.clone(), "hello".into()),
    )
    .await
    .expect("publish");
    within(
        "publish with headers",
        publisher.publish_with_headers("hdr.strip", headers, Bytes::new()),
    )
    .await
    .expect("publish");
    flush(&publisher).await;

    let got =
        tokio::task::spawn_blocking(move || (0..4).map(|_| raw.read_line()).collect::<Vec<_>>())
            .await
            .expect("raw reader");
    assert_eq!(
        got,
        [
            "MSG hdr.strip 9 5\r\n",
            "hello\r\n",
            "MSG hdr.strip 9 0\r\n",
            "\r\n"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_unsubscribe_after_two() {
    let broker = Broker::start();
    let sub_client = client_on(&broker, 0).await;
    let publisher = client_on(&broker, 1).await;
    let mut sub = subscribe(&sub_client, "auto").await;
    within("unsub after", sub.unsubscribe_after(2))
        .await
        .expect("unsubscribe_after");
    let mut sentinel = subscribe(&sub_client, "auto.end").await;
    interest_ready(&sub_client, &publisher).await;
    let before = in_messages(&sub_client);

    for i in 0..5 {
        publish(&publisher, "auto", i.to_string()).await;
    }
    publish(&publisher, "auto.end", "end").await;
    flush(&publisher).await;

    assert_eq!(text(&next(&mut sub, "first").await), "0");
    assert_eq!(text(&next(&mut sub, "second").await), "1");
    assert!(
        within("end of stream", sub.next()).await.is_none(),
        "the stream ends after two messages"
    );
    assert_eq!(text(&next(&mut sentinel, "sentinel").await), "end");
    // The server itself stopped after two: the connection saw exactly two
    // messages for "auto" plus the sentinel.
    assert_eq!(in_messages(&sub_client) - before, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let broker = Broker::start();
    let sub_client = client_on(&broker, 0).await;
    let publisher = client_on(&broker, 1).await;
    let mut sub = subscribe(&sub_client, "unsub.me").await;
    let mut sentinel = subscribe(&sub_client, "unsub.end").await;
    interest_ready(&sub_client, &publisher).await;

    publish(&publisher, "unsub.me", "before").await;
    publish(&publisher, "unsub.end", "end").await;
    flush(&publisher).await;
    assert_eq!(text(&next(&mut sentinel, "first sentinel").await), "end");
    assert_eq!(
        text(&next(&mut sub, "message before unsub").await),
        "before"
    );

    within("unsubscribe", sub.unsubscribe())
        .await
        .expect("unsubscribe");
    flush(&sub_client).await;
    // The UNSUB is applied on the publisher's shard.
    interest_ready(&sub_client, &publisher).await;
    let before = in_messages(&sub_client);

    for i in 0..10 {
        publish(&publisher, "unsub.me", i.to_string()).await;
    }
    publish(&publisher, "unsub.end", "end").await;
    flush(&publisher).await;
    assert_eq!(text(&next(&mut sentinel, "second sentinel").await), "end");
    assert_eq!(
        in_messages(&sub_client) - before,
        1,
        "only the sentinel may arrive after UNSUB"
    );
    assert!(within("closed stream", sub.next()).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_subscriber_delivers_pending_then_ends() {
    let broker = Broker::start();
    let sub_client = client_on(&broker, 0).await;
    let publisher = client_on(&broker, 1).await;
    let mut sub = subscribe(&sub_client, "drain.me").await;
    let mut sentinel = subscribe(&sub_client, "drain.end").await;
    interest_ready(&sub_client, &publisher).await;

    for i in 0..50 {
        publish(&publisher, "drain.me", i.to_string()).await;
    }
    publish(&publisher, "drain.end", "end").await;
    flush(&publisher).await;
    // All 50 are queued in the subscription, none consumed yet.
    assert_eq!(text(&next(&mut sentinel, "sentinel").await), "end");

    within("drain", sub.drain()).await.expect("drain");
    // async-nats ends a draining subscription at the start of the next turn
    // of its connection task; two flushes guarantee such a turn instead of
    // waiting for the server's first PING to wake the task.
    flush(&sub_client).await;
    flush(&sub_client).await;
    for i in 0..50 {
        assert_eq!(
            text(&next(&mut sub, "drained message").await),
            i.to_string()
        );
    }
    assert!(
        within("end of drained stream", sub.next()).await.is_none(),
        "a drained subscription ends after its pending messages"
    );

    // The server no longer delivers on the drained subscription.
    interest_ready(&sub_client, &publisher).await;
    let before = in_messages(&sub_client);
    for i in 0..10 {
        publish(&publisher, "drain.me", i.to_string()).await;
    }
    publish(&publisher, "drain.end", "end").await;
    flush(&publisher).await;
    assert_eq!(text(&next(&mut sentinel, "sentinel").await), "end");
    assert_eq!(in_messages(&sub_client) - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_up_to_max_payload_intact() {
    let broker = Broker::start();
    let sub_client = client_on(&broker, 0).await;
    let publisher = client_on(&broker, 1).await;
    let mut sub = subscribe(&sub_client, "big").await;
    interest_ready(&sub_client, &publisher).await;

    let sizes = [MAX_PAYLOAD - 100, MAX_PAYLOAD];
    let payloads: Vec<Bytes> = sizes
        .iter()
        .enumerate()
        .map(|(n, &size)| {
            (0..size)
                .map(|i| ((i * 31 + n * 7 + i / 251) % 256) as u8)
                .collect::<Vec<u8>>()
                .into()
        })
        .collect();
    for payload in &payloads {
        within("publish big", publisher.publish("big", payload.clone()))
            .await
            .expect("a payload of at most max_payload is accepted");
    }
    flush(&publisher).await;
    for payload in &payloads {
        let msg = next(&mut sub, "big message").await;
        assert_eq!(msg.payload.len(), payload.len());
        assert!(
            msg.payload == *payload,
            "payload of {} bytes corrupted",
            payload.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_over_max_payload_fails_client_side() {
    let broker = Broker::start();
    let sub_client = client_on(&broker, 0).await;
    let publisher = client_on(&broker, 1).await;
    let mut sub = subscribe(&sub_client, "too.big").await;
    interest_ready(&sub_client, &publisher).await;

    let err = within(
        "oversized publish",
        publisher.publish("too.big", vec![b'x'; MAX_PAYLOAD + 1].into()),
    )
    .await
    .expect_err("one byte over max_payload");
    assert_eq!(err.kind(), PublishErrorKind::MaxPayloadExceeded, "{err}");

    // Nothing reached the server: the connection is intact and the next
    // message is the first one the subscriber sees.
    publish(&publisher, "too.big", "small").await;
    flush(&publisher).await;
    assert_eq!(text(&next(&mut sub, "small message").await), "small");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_echo_suppresses_own_messages() {
    let broker = Broker::start();
    let quiet = client_on_with(&broker, 0, || ConnectOptions::new().no_echo()).await;
    let other = client_on(&broker, 1).await;
    let mut quiet_sub = subscribe(&quiet, "echo.test").await;
    let mut other_sub = subscribe(&other, "echo.test").await;
    interest_ready(&quiet, &other).await;
    interest_ready(&other, &quiet).await;

    for i in 0..10 {
        publish(&quiet, "echo.test", i.to_string()).await;
    }
    flush(&quiet).await;
    // The other subscriber proves the server processed all ten; had they
    // been echoed, the copies would already be queued for `quiet`.
    for i in 0..10 {
        assert_eq!(
            text(&next(&mut other_sub, "quiet's message").await),
            i.to_string()
        );
    }
    publish(&other, "echo.test", "from-other").await;
    flush(&other).await;
    assert_eq!(
        text(&next(&mut quiet_sub, "other's message").await),
        "from-other",
        "a no_echo connection must not receive its own messages"
    );
    // Echo stays on for the other connection.
    assert_eq!(
        text(&next(&mut other_sub, "own message echoed").await),
        "from-other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_20_publishers_keep_per_publisher_order() {
    const PUBLISHERS: usize = 20;
    const EACH: usize = 500;
    let broker = Broker::start();
    let sub_client = client_on(&broker, 0).await;
    let mut sub = subscribe(&sub_client, "fanin.*").await;
    let mut publishers = Vec::new();
    for _ in 0..PUBLISHERS {
        publishers.push(connect_with(&broker, ConnectOptions::new()).await);
    }
    let on_shard: Vec<usize> = publishers.iter().map(shard_of).collect();
    assert!(
        on_shard.contains(&0) && on_shard.contains(&1),
        "{on_shard:?}"
    );
    for publisher in &publishers {
        interest_ready(&sub_client, publisher).await;
    }

    let tasks: Vec<_> = publishers
        .iter()
        .enumerate()
        .map(|(p, publisher)| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                let subject = format!("fanin.{p}");
                for i in 0..EACH {
                    publisher
                        .publish(subject.clone(), i.to_string().into())
                        .await
                        .expect("publish");
                }
                publisher
                    .publish(subject, "end".into())
                    .await
                    .expect("publish");
                publisher.flush().await.expect("flush");
            })
        })
        .collect();
    for task in tasks {
        within("publisher task", task)
            .await
            .expect("publisher task");
    }

    let mut next_seq: HashMap<String, usize> = HashMap::new();
    let mut ended = 0;
    let mut total = 0;
    while ended < PUBLISHERS {
        let msg = next(&mut sub, "fan-in message").await;
        let subject = msg.subject.to_string();
        let expected = next_seq.entry(subject.clone()).or_insert(0);
        let payload = text(&msg);
        if payload == "end" {
            assert_eq!(*expected, EACH, "{subject} ended early");
            *expected = usize::MAX;
            ended += 1;
        } else {
            assert_eq!(payload, expected.to_string(), "order broken on {subject}");
            *expected += 1;
            total += 1;
        }
    }
    assert_eq!(total, PUBLISHERS * EACH);
    assert_eq!(next_seq.len(), PUBLISHERS);
}

/// A config file or command line shared with nats-server that switches
/// JetStream off explicitly (as the nats.rs suite's and many deployments'
/// files do) starts percore, and a client sees what nats-server 2.9.10 with
/// JetStream off shows it: a JetStream API request has no responders.
/// Asking for JetStream is still refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_switched_off_in_config_or_flags_is_accepted() {
    let configs = [
        "jetstream: disabled\n",
        "jetstream: false\n",
        "jetstream {\n  enabled: false\n  store_dir: /nonexistent/js\n  max_mem_store: 64MiB\n}\n",
    ];
    for config in configs {
        let broker = Broker::start_with(&["-js=false"], Some(config));
        let client = client_on(&broker, 0).await;
        let err = within(
            "no-responders status",
            client.request("$JS.API.INFO", "".into()),
        )
        .await
        .expect_err("no JetStream behind $JS.API");
        assert_eq!(
            err.kind(),
            RequestErrorKind::NoResponders,
            "{config}: {err}"
        );
    }

    let refused = |args: &[&str], config: Option<&str>| {
        let path = std::env::temp_dir().join(format!("percore-js-{}.conf", std::process::id()));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_percore"));
        command.args(["-a", "127.0.0.1", "-p", "-1"]).args(args);
        if let Some(config) = config {
            std::fs::write(&path, config).expect("write config");
            command.arg("-c").arg(&path);
        }
        let output = command.output().expect("run percore");
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
        stderr
    };
    assert!(refused(&["-js"], None).contains("flag -js is not supported yet by percore"));
    assert!(refused(&[], Some("jetstream: enabled\n"))
        .contains(":1:0: \"jetstream\" is not supported yet by percore"));
    assert!(
        refused(&[], Some("jetstream {\n  max_mem_store: 64MiB\n}\n"))
            .contains(":1:0: \"jetstream\" is not supported yet by percore")
    );
}
