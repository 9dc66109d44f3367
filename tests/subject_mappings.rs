//! Subject mappings as clients see them, with two shards and a client on
//! each: a message published on a mapped subject is delivered on its
//! destination only (plain, wildcards reordered, transform functions,
//! weighted, cluster-scoped), per account, with publish permissions judged
//! on the destination and the reply subject untouched; a service import's
//! request takes the exporter's mappings; a reload changes
//! them; `/accountz` lists them; bad ones stop the server with
//! nats-server's words. Expected subjects were checked against
//! nats-server 2.9.10 with the same configuration.
//!
//! Synchronisation: the watcher's `>` is known on a publisher's shard once
//! a `sync` message of that publisher arrives (polled with a deadline);
//! `interest_ready` proves a plain subscription; a last message on `end`
//! from the same publisher marks that everything before it has been
//! delivered (per-publisher order).

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use support::interest::interest_ready;
use support::{check_config, Broker, RawClient};

const WAIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// A subscription to everything, once `publishers` all see it: each
/// publishes `sync.<i>` until it arrives. (`interest_ready`'s probe would
/// be swallowed by this `>`: a request that reaches it is not answered.)
async fn watch_all(subscriber: &Client, publishers: &[&Client]) -> Subscriber {
    let mut sub = within("subscribe", subscriber.subscribe(">"))
        .await
        .expect("subscribe");
    let deadline = Instant::now() + WAIT;
    for (i, publisher) in publishers.iter().enumerate() {
        let sync = format!("sync.{i}");
        'poll: loop {
            assert!(Instant::now() < deadline, "{sync} never arrived");
            publisher
                .publish(sync.clone(), Bytes::new())
                .await
                .expect("publish");
            publisher.flush().await.expect("flush");
            while let Ok(Some(msg)) =
                tokio::time::timeout(Duration::from_millis(50), sub.next()).await
            {
                if msg.subject.as_str() == sync {
                    break 'poll;
                }
            }
        }
    }
    sub
}

/// `publisher` publishes `subjects`, then `end`; returns the subjects
/// `sub` received up to `end` (late `sync` messages left out).
async fn published_as(publisher: &Client, sub: &mut Subscriber, subjects: &[&str]) -> Vec<String> {
    for subject in subjects.iter().chain(&["end"]) {
        publisher
            .publish(subject.to_string(), Bytes::from_static(b"x"))
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("flush");
    let mut seen = Vec::new();
    loop {
        let msg = within("the end marker", sub.next())
            .await
            .expect("subscription open");
        let subject = msg.subject.to_string();
        if subject == "end" {
            return seen;
        }
        if !subject.starts_with("sync.") {
            seen.push(subject);
        }
    }
}

async fn clients(broker: &Broker, options: impl Fn() -> ConnectOptions) -> Vec<Client> {
    support::one_client_per_shard(broker, options).await
}

#[tokio::test]
async fn a_mapped_subject_is_delivered_on_its_destination_only_from_both_shards() {
    let broker = Broker::with_config(
        r#"
mappings {
  foo: bar
  "a.*.*": "b.$2.$1"
  "t.*.>": "t2.{{wildcard(1)}}.>"
  "sl.*": "sl.{{splitFromLeft(1,3)}}"
  "cr.*": "cr.{{sliceFromRight(1,2)}}"
  "sp.*": "sp.{{split(1,-)}}"
  lit: "x.$1"
}
"#,
    );
    let clients = clients(&broker, ConnectOptions::new).await;
    let mut sub = watch_all(&clients[0], &[&clients[0], &clients[1]]).await;
    for publisher in &clients {
        let seen = published_as(
            publisher,
            &mut sub,
            &[
                "foo",
                "a.x.y",
                "t.one.two.three",
                "sl.abcdef",
                "cr.abcdefg",
                "sp.-a--b-",
                "lit",
                "unmapped",
            ],
        )
        .await;
        assert_eq!(
            seen,
            [
                "bar",
                "b.y.x",
                "t2.one.two.three",
                "sl.abc.def",
                "cr.a.bc.de.fg",
                "sp.a.b",
                "x.$1",
                "unmapped"
            ],
            "mapped once, never on the original subject"
        );
    }
}

#[tokio::test]
async fn a_request_on_a_mapped_subject_keeps_its_reply_subject() {
    let broker = Broker::with_config("mappings { time: clock }\n");
    let clients = clients(&broker, ConnectOptions::new).await;
    let (responder, requester) = (&clients[0], &clients[1]);
    let mut service = within("subscribe", responder.subscribe("clock"))
        .await
        .expect("subscribe");
    interest_ready(responder, requester).await;
    let answering = responder.clone();
    tokio::spawn(async move {
        while let Some(msg) = service.next().await {
            if let Some(reply) = msg.reply {
                let subject = Bytes::from(msg.subject.to_string());
                answering.publish(reply, subject).await.expect("reply");
                answering.flush().await.expect("flush");
            }
        }
    });
    let answer = within("the answer", requester.request("time", Bytes::new()))
        .await
        .expect("answered");
    assert_eq!(&answer.payload[..], b"clock");
}

/// FNV-1a of `key` modulo `n`: nats-server's partition.
fn partition(key: &str, n: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % n
}

#[tokio::test]
async fn partitions_are_stable_across_shards_and_match_nats_server() {
    let broker = Broker::with_config("mappings { \"p.*\": \"p.{{partition(4,1)}}.$1\" }\n");
    let clients = clients(&broker, ConnectOptions::new).await;
    let mut sub = watch_all(&clients[1], &[&clients[0], &clients[1]]).await;
    let keys = ["k1", "k2", "alpha", "beta", "gamma", "12345"];
    let subjects: Vec<String> = keys.iter().map(|k| format!("p.{k}")).collect();
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    // What nats-server 2.9.10 published them on.
    let expected = [
        "p.1.k1",
        "p.0.k2",
        "p.3.alpha",
        "p.3.beta",
        "p.2.gamma",
        "p.0.12345",
    ];
    for (key, subject) in keys.iter().zip(expected) {
        assert_eq!(subject, format!("p.{}.{key}", partition(key, 4)));
    }
    for publisher in &clients {
        for _ in 0..2 {
            assert_eq!(published_as(publisher, &mut sub, &subjects).await, expected);
        }
    }
}

#[tokio::test]
async fn weighted_destinations_take_each_message_once_in_proportion() {
    let broker = Broker::with_config(
        r#"
mappings {
  "w.*": [ {destination: "w1.$1", weight: 30}, {destination: "w2.$1", weight: 70%} ]
  z: [ {destination: z1, weight: 0}, {destination: z2, weight: "100%"} ]
  r: [ {destination: r1, weight: 50} ]
  gone: [ {destination: gone, weight: 0} ]
}
"#,
    );
    let clients = clients(&broker, ConnectOptions::new).await;
    let mut sub = watch_all(&clients[0], &[&clients[0], &clients[1]]).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    const EACH: usize = 200;
    for publisher in &clients {
        let mut subjects = vec!["w.k"; EACH];
        subjects.extend(vec!["z"; 20]);
        subjects.extend(vec!["r"; EACH]);
        // The source listed with 0%: every message is lost.
        subjects.extend(vec!["gone"; 20]);
        for subject in published_as(publisher, &mut sub, &subjects).await {
            *counts.entry(subject).or_default() += 1;
        }
    }
    let count = |s: &str| counts.get(s).copied().unwrap_or(0);
    assert_eq!(count("w1.k") + count("w2.k"), 2 * EACH, "{counts:?}");
    assert_eq!(count("z2"), 40, "{counts:?}");
    assert_eq!(count("r") + count("r1"), 2 * EACH, "{counts:?}");
    assert_eq!(counts.len(), 5, "nothing else arrives: {counts:?}");
    // 30% of 400 is 120 (σ ≈ 9); 50% of 400 is 200 (σ = 10).
    assert!((60..=180).contains(&count("w1.k")), "{counts:?}");
    assert!((140..=260).contains(&count("r1")), "{counts:?}");
}

#[tokio::test]
async fn each_account_has_its_own_mappings() {
    let broker = Broker::with_config(
        r#"
accounts {
  A: { users: [{user: a, password: pa}], mappings: { foo: bar } }
  B: { users: [{user: b, password: pb}], maps: { foo: baz } }
  C: { users: [{user: c, password: pc}] }
}
"#,
    );
    let login = |user: &'static str, password: &'static str| {
        move || ConnectOptions::with_user_and_password(user.into(), password.into())
    };
    for (user, password, expected) in [("a", "pa", "bar"), ("b", "pb", "baz"), ("c", "pc", "foo")] {
        let clients = clients(&broker, login(user, password)).await;
        let mut sub = watch_all(&clients[1], &[&clients[0]]).await;
        assert_eq!(
            published_as(&clients[0], &mut sub, &["foo"]).await,
            [expected],
            "account of {user}"
        );
    }
}

#[tokio::test]
async fn cluster_scoped_destinations_apply_in_the_servers_cluster() {
    let broker = Broker::with_config(
        r#"
cluster { name: east, listen: "127.0.0.1:-1" }
mappings {
  c: [ {destination: c.east, weight: 100, cluster: east} ]
  d: [ {destination: d.west, weight: 100, cluster: west} ]
}
"#,
    );
    let clients = clients(&broker, ConnectOptions::new).await;
    let mut sub = watch_all(&clients[0], &[&clients[1]]).await;
    assert_eq!(
        published_as(&clients[1], &mut sub, &["c", "d"]).await,
        ["c.east", "d"]
    );
}

/// A raw client on `shard` logged in as `user` (password `p`).
fn raw_login(broker: &Broker, shard: usize, user: &str) -> RawClient {
    for _ in 0..broker.shards * 2 {
        let mut client = RawClient::connect(broker.addr);
        if client.shard(broker.shards) != shard {
            continue;
        }
        client.send(
            format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"p\"}}\r\nPING\r\n")
                .as_bytes(),
        );
        client.expect(b"PONG\r\n");
        return client;
    }
    panic!("no client landed on shard {shard}");
}

#[test]
fn publish_permissions_apply_to_the_mapped_subject() {
    let broker = Broker::with_config(
        r#"
mappings { foo: bar }
authorization { users: [
  {user: to_bar, password: p, permissions: {publish: ["bar"]}}
  {user: to_foo, password: p, permissions: {publish: ["foo"]}}
] }
"#,
    );
    let mut watcher = raw_login(&broker, 0, "to_bar");
    watcher.send(b"SUB > 1\r\n");
    assert_eq!(watcher.ping_pong(), b"");
    let mut allowed = raw_login(&broker, 1, "to_bar");
    allowed.send(b"PUB foo 2\r\nok\r\n");
    assert_eq!(allowed.ping_pong(), b"");
    assert_eq!(watcher.ping_pong(), b"MSG bar 1 2\r\nok\r\n");
    let mut denied = raw_login(&broker, 1, "to_foo");
    denied.send(b"PUB foo 2\r\nno\r\n");
    assert_eq!(
        denied.ping_pong(),
        b"-ERR 'Permissions Violation for Publish to \"bar\"'\r\n"
    );
    assert_eq!(watcher.ping_pong(), b"");
}

#[test]
fn a_service_import_request_takes_the_exporters_mapping() {
    let broker = Broker::with_config(
        r#"
accounts {
  A: { users: [{user: a, password: p}], exports: [{service: "svc.>"}], mappings: { "svc.in": "svc.out" } }
  B: { users: [{user: b, password: p}], imports: [{service: {account: A, subject: "svc.>"}, to: "ask.>"}] }
}
"#,
    );
    let mut responder = raw_login(&broker, 0, "a");
    responder.send(b"SUB svc.> 1\r\n");
    assert_eq!(responder.ping_pong(), b"");
    let mut requester = raw_login(&broker, 1, "b");
    requester.send(b"PUB ask.in r.1 1\r\nx\r\nPUB ask.other r.2 1\r\ny\r\n");
    assert_eq!(requester.ping_pong(), b"");
    let (first, _) = responder.read_msg();
    let (second, _) = responder.read_msg();
    assert_eq!(
        (first[1].as_str(), second[1].as_str()),
        ("svc.out", "svc.other")
    );
}

#[test]
fn a_reload_changes_and_removes_mappings_on_every_shard() {
    let broker = Broker::with_config("mappings { foo: bar }\n");
    let mut watcher = support::client_on_shard(&broker, 0);
    watcher.send(b"CONNECT {\"verbose\":false}\r\nSUB > 1\r\n");
    assert_eq!(watcher.ping_pong(), b"");
    let mut publishers: Vec<RawClient> = (0..2)
        .map(|shard| {
            let mut c = support::client_on_shard(&broker, shard);
            c.send(b"CONNECT {\"verbose\":false}\r\n");
            c
        })
        .collect();
    // What `foo` arrives as, published from `publisher` (its PONG comes
    // once every shard has applied its publish).
    let mut arrives_as = |publisher: &mut RawClient| {
        publisher.send(b"PUB foo 0\r\n\r\n");
        assert_eq!(publisher.ping_pong(), b"");
        let delivered = watcher.ping_pong();
        String::from_utf8_lossy(&delivered)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    for p in &mut publishers {
        assert_eq!(arrives_as(p), "bar");
    }
    let path = broker.config_path().expect("config file").to_path_buf();
    for (config, expected) in [("mappings { foo: baz }\n", "baz"), ("\n", "foo")] {
        std::fs::write(&path, config).expect("rewrite config");
        broker.signal(libc::SIGHUP);
        // Each shard applies a reload on its own: poll until it has.
        let deadline = Instant::now() + WAIT;
        for p in &mut publishers {
            loop {
                let got = arrives_as(p);
                if got == expected {
                    break;
                }
                assert!(Instant::now() < deadline, "still {got} after the reload");
            }
        }
    }
}

#[test]
fn accountz_lists_the_mappings_as_nats_server_does() {
    let broker = Broker::start_with(
        &["-m", "-1"],
        Some(
            r#"
accounts { A: { users: [{user: a, password: p}], mappings: {
  foo: bar
  "w.*": [ {destination: "w1.$1", weight: 30}, {destination: "w2.$1", weight: 20, cluster: east} ]
} } }
"#,
        ),
    );
    let body = broker.monitor_json("/accountz?acc=A");
    // nats-server 2.9.10's answer for the same account.
    let expected = serde_json::json!({
        "foo": [{"subject": "bar", "weight": 100}],
        "w.*": [
            {"subject": "w1.$1", "weight": 30},
            {"subject": "w.$1", "weight": 100},
            {"subject": "w2.$1", "weight": 20, "cluster": "east"},
            {"subject": "w.$1", "weight": 100, "cluster": "east"}
        ]
    });
    assert_eq!(body["account_detail"]["mappings"], expected, "{body}");
    let global = broker.monitor_json("/accountz?acc=$G");
    assert!(
        global["account_detail"].get("mappings").is_none(),
        "{global}"
    );
}

#[test]
fn bad_mappings_stop_the_server_with_nats_servers_words() {
    // Texts and positions as nats-server 2.9.10 -t prints them.
    let cases = [
        (
            "port: -1\nmappings { \"a.*\": \"b.$2\" }\n",
            ":2:13: Error adding mapping for \"a.*\" to \"b.$2\" : invalid mapping destination: wildcard index out of range in $2: [2]",
        ),
        (
            "port: -1\naccounts { A { mappings { \"a.*\": \"b.{{partition(3)}}\" } } }\n",
            ":2:28: Error adding mapping for \"a.*\" to \"b.{{partition(3)}}\" : invalid mapping destination: not enough arguments passed to the function in {{partition(3)}}",
        ),
        (
            "port: -1\nmappings { a: {dest: b} }\n",
            ":2:12: Missing weight for mapping destination \"b\"",
        ),
        (
            "port: -1\nmappings { a: {dest: b, weight: 200} }\n",
            ":2:25: Invalid weight 200 for mapping destination",
        ),
    ];
    for (config, expected) in cases {
        let (code, stderr) = check_config("mappings", config);
        assert_eq!(code, Some(1), "{config}: {stderr}");
        assert!(stderr.contains(expected), "{config}: {stderr}");
    }
    let (code, stderr) = check_config("mappings", "port: -1\nmappings { foo: bar }\n");
    assert_eq!(code, Some(0), "{stderr}");
}
