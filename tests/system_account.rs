//! The system account's services and events as clients see them: a user of
//! the system account asks `$SYS.REQ.SERVER.PING`, `$SYS.REQ.SERVER.<id>.VARZ`
//! and `$SYS.REQ.SERVER.PING.CONNZ` (answered from every shard's data), and
//! listens to `$SYS.ACCOUNT.<account>.CONNECT/DISCONNECT` for clients on
//! both shards; a user of another account sees none of it. Where
//! `/usr/sbin/nats-server` exists, the answers' keys are compared with its.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_nats::client::RequestErrorKind;
use async_nats::ConnectOptions;
use futures::StreamExt;
use serde_json::Value;
use support::cluster::nats_server_with_config;
use support::interest::ShardProbes;
use support::system_accounts::CONFIG;
use support::{one_client_per_shard, Broker, RawClient};

const WAIT: Duration = Duration::from_secs(10);

fn as_user(user: &str) -> ConnectOptions {
    ConnectOptions::new().user_and_password(user.into(), user.into())
}

async fn connect(addr: SocketAddr, user: &str) -> async_nats::Client {
    tokio::time::timeout(WAIT, as_user(user).connect(format!("nats://{addr}")))
        .await
        .expect("connect in time")
        .expect("connected")
}

async fn request(client: &async_nats::Client, subject: &str, payload: &str) -> Value {
    let answer = tokio::time::timeout(
        WAIT,
        client.request(subject.to_string(), payload.to_string().into()),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    serde_json::from_slice(&answer.payload).expect("JSON answer")
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// A raw client logged in as `user`, named `name`.
fn raw_login(broker: &Broker, user: &str, name: &str) -> RawClient {
    raw_login_at(broker.addr, user, name)
}

fn raw_login_at(addr: SocketAddr, user: &str, name: &str) -> RawClient {
    let mut client = RawClient::connect(addr);
    client.send(
        format!(
            "CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{user}\",\"name\":\"{name}\",\"lang\":\"raw\",\"version\":\"1.0\"}}\r\nPING\r\n"
        )
        .as_bytes(),
    );
    client.expect(b"PONG\r\n");
    client
}

/// `count` system users logged in at `addr`, to publish the probes that
/// prove a subscription is in effect on every shard (see
/// `support::interest`): async-nats' `flush` only writes its socket, so a
/// client logging in on the other shard a moment later could raise no
/// CONNECT event yet (seen under load, 1 run in 3). They log in before the
/// subscription exists, so that their own CONNECT events reach no one.
fn sys_probes(addr: SocketAddr, count: usize) -> Vec<RawClient> {
    (0..count)
        .map(|i| raw_login_at(addr, "sys", &format!("probe{i}")))
        .collect()
}

/// The subject probe `i` publishes: an APP account event subject nothing
/// in the server serves.
fn probe_subject(i: usize) -> String {
    format!("$SYS.ACCOUNT.APP.PROBE{i}")
}

/// The next message of `sub`, as JSON.
async fn next_json(sub: &mut async_nats::Subscriber) -> (String, Value) {
    let message = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message in time")
        .expect("subscription open");
    (
        message.subject.to_string(),
        serde_json::from_slice(&message.payload).expect("JSON event"),
    )
}

#[tokio::test]
async fn server_ping_is_answered_once_with_the_server_id() {
    let broker = Broker::with_config(CONFIG);
    let sys = connect(broker.addr, "sys").await;
    let id = sys.server_info().server_id.clone();
    let inbox = sys.new_inbox();
    let mut answers = sys.subscribe(inbox.clone()).await.expect("subscribe");
    sys.publish_with_reply("$SYS.REQ.SERVER.PING", inbox.clone(), "".into())
        .await
        .expect("publish");
    let (_, first) = next_json(&mut answers).await;
    assert_eq!(first["server"]["id"], id, "{first}");
    assert!(
        first["statsz"]["connections"].as_u64() >= Some(1),
        "{first}"
    );
    assert!(first["server"]["seq"].as_u64() >= Some(1), "{first}");
    // A second answer to the ping would arrive before the answer to this
    // later request on the same inbox.
    sys.publish_with_reply("$SYS.REQ.SERVER.PING.HEALTHZ", inbox, "".into())
        .await
        .expect("publish");
    let (_, second) = next_json(&mut answers).await;
    assert_eq!(second["data"]["status"], "ok", "{second}");
    assert!(
        second.get("statsz").is_none(),
        "two answers to one ping: {second}"
    );
}

#[tokio::test]
async fn varz_by_server_id_and_unknown_ids_get_no_responders() {
    let broker = Broker::with_config(CONFIG);
    let sys = connect(broker.addr, "sys").await;
    let id = sys.server_info().server_id.clone();
    let varz = request(&sys, &format!("$SYS.REQ.SERVER.{id}.VARZ"), "").await;
    assert_eq!(varz["data"]["server_id"], id, "{varz}");
    assert_eq!(varz["server"]["id"], id, "{varz}");
    let error = sys
        .request("$SYS.REQ.SERVER.NOTTHISSERVER.VARZ", "".into())
        .await
        .expect_err("nobody answers another server's id");
    assert_eq!(error.kind(), RequestErrorKind::NoResponders);
}

#[tokio::test]
async fn ping_connz_lists_the_clients_of_both_shards() {
    let broker = Broker::with_config(CONFIG);
    let apps = one_client_per_shard(&broker, || as_user("app")).await;
    let mut cids = Vec::new();
    let mut subs = Vec::new();
    for app in &apps {
        let mut sub = app.subscribe("orders.>").await.expect("subscribe");
        // CONNZ reads each shard's own view: the SUB must have been
        // processed there (async-nats' `flush` only writes the socket). A
        // message of the connection's own comes back only after its SUB.
        app.publish("orders.ready", "".into())
            .await
            .expect("publish");
        tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("own message in time")
            .expect("subscription open");
        subs.push(sub);
        cids.push(app.server_info().client_id);
    }
    let sys = connect(broker.addr, "sys").await;
    let connz = request(
        &sys,
        "$SYS.REQ.SERVER.PING.CONNZ",
        r#"{"subscriptions":true,"auth":true}"#,
    )
    .await;
    let connections = connz["data"]["connections"]
        .as_array()
        .expect("connections");
    for cid in &cids {
        let conn = connections
            .iter()
            .find(|c| c["cid"] == *cid)
            .unwrap_or_else(|| panic!("cid {cid} missing: {connz}"));
        assert_eq!(conn["account"], "APP", "{conn}");
        assert_eq!(conn["authorized_user"], "app", "{conn}");
        assert_eq!(conn["subscriptions_list"][0], "orders.>", "{conn}");
    }
    // The account's own CONNZ lists only its clients.
    let account = request(&sys, "$SYS.REQ.ACCOUNT.APP.CONNZ", "").await;
    let listed: BTreeSet<u64> = account["data"]["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter_map(|c| c["cid"].as_u64())
        .collect();
    assert_eq!(listed, cids.iter().copied().collect(), "{account}");
    let conns = request(&sys, "$SYS.REQ.ACCOUNT.APP.CONNS", "").await;
    assert_eq!(conns["acc"], "APP", "{conns}");
    assert_eq!(conns["conns"], 2, "{conns}");
    // Options of the wrong type: nats-server's 400.
    let bad = request(
        &sys,
        "$SYS.REQ.SERVER.PING.CONNZ",
        r#"{"subscriptions":"yes"}"#,
    )
    .await;
    assert_eq!(bad["error"]["code"], 400, "{bad}");
    assert!(bad.get("data").is_none(), "{bad}");
}

#[tokio::test]
async fn connect_and_disconnect_events_for_clients_on_both_shards() {
    let broker = Broker::with_config(CONFIG);
    let sys = connect(broker.addr, "sys").await;
    let id = sys.server_info().server_id.clone();
    let mut probes = ShardProbes::on_every_shard(&broker, sys_probes(broker.addr, broker.shards));
    let mut events = sys.subscribe("$SYS.ACCOUNT.*.*").await.expect("subscribe");
    probes.await_interest(&mut events, probe_subject).await;
    let first = raw_login(&broker, "app", "first");
    let second = raw_login(&broker, "app", "second");
    let shards: BTreeSet<usize> = [first.shard(broker.shards), second.shard(broker.shards)].into();
    assert_eq!(shards.len(), 2, "one client on each shard");
    let cids: BTreeSet<u64> = [first.client_id(), second.client_id()].into();
    let mut seen = BTreeSet::new();
    for _ in 0..2 {
        let (subject, event) = next_json(&mut events).await;
        assert_eq!(subject, "$SYS.ACCOUNT.APP.CONNECT", "{event}");
        assert_eq!(event["type"], "io.nats.server.advisory.v1.client_connect");
        assert_eq!(event["server"]["id"], id, "{event}");
        assert_eq!(event["client"]["acc"], "APP", "{event}");
        assert_eq!(event["client"]["user"], "app", "{event}");
        assert_eq!(event["client"]["lang"], "raw", "{event}");
        assert!(
            event["id"].as_str().is_some_and(|i| i.len() == 22),
            "{event}"
        );
        seen.insert(event["client"]["id"].as_u64().expect("cid"));
    }
    assert_eq!(seen, cids);
    drop(first);
    drop(second);
    let mut seen = BTreeSet::new();
    for _ in 0..2 {
        let (subject, event) = next_json(&mut events).await;
        assert_eq!(subject, "$SYS.ACCOUNT.APP.DISCONNECT", "{event}");
        assert_eq!(
            event["type"],
            "io.nats.server.advisory.v1.client_disconnect"
        );
        assert_eq!(event["reason"], "Client Closed", "{event}");
        assert_eq!(event["client"]["acc"], "APP", "{event}");
        assert!(event["client"]["stop"].is_string(), "{event}");
        // The CONNECT and PING lines are not messages.
        assert_eq!(event["sent"]["msgs"], 0, "{event}");
        seen.insert(event["client"]["id"].as_u64().expect("cid"));
    }
    assert_eq!(seen, cids);
}

#[tokio::test]
async fn another_account_sees_no_system_traffic() {
    let broker = Broker::with_config(CONFIG);
    let app = connect(broker.addr, "app").await;
    // In its own account `$SYS.` is an ordinary subject, and nobody serves
    // it.
    let error = app
        .request("$SYS.REQ.SERVER.PING", "".into())
        .await
        .expect_err("no server service in another account");
    assert_eq!(error.kind(), RequestErrorKind::NoResponders);
    let mut snoop = app.subscribe("$SYS.>").await.expect("subscribe");
    // The SUB must be in effect on the app's shard before the CONNECT
    // event below is raised there, or a leak would go unseen; async-nats'
    // `flush` only writes the socket. The server answers a request nobody
    // serves itself, after the SUB sent before it.
    let error = app
        .request("nobody.serves.this", "".into())
        .await
        .expect_err("no responders");
    assert_eq!(error.kind(), RequestErrorKind::NoResponders);
    let sys = connect(broker.addr, "sys").await;
    let mut probes = ShardProbes::on_every_shard(&broker, sys_probes(broker.addr, broker.shards));
    let mut events = sys.subscribe("$SYS.ACCOUNT.>").await.expect("subscribe");
    probes.await_interest(&mut events, probe_subject).await;
    // System traffic the app's subscription would match. The app (cid 1)
    // and this client (cid 5, after sys and the probes) share a shard, where the CONNECT event is
    // published: a leak would reach the app before its own marker below.
    let other = raw_login(&broker, "app", "other");
    assert_eq!(
        other.shard(broker.shards),
        ((app.server_info().client_id - 1) % broker.shards as u64) as usize
    );
    let (subject, _) = next_json(&mut events).await;
    assert_eq!(subject, "$SYS.ACCOUNT.APP.CONNECT");
    request(&sys, "$SYS.REQ.SERVER.PING.VARZ", "").await;
    drop(other);
    let (subject, _) = next_json(&mut events).await;
    assert_eq!(subject, "$SYS.ACCOUNT.APP.DISCONNECT");
    app.publish("$SYS.MARKER", "mine".into())
        .await
        .expect("publish");
    let first = tokio::time::timeout(WAIT, snoop.next())
        .await
        .expect("marker in time")
        .expect("open");
    assert_eq!(
        first.subject.as_str(),
        "$SYS.MARKER",
        "system traffic leaked: {first:?}"
    );
}

async fn connect_when_up(addr: SocketAddr, user: &str) -> async_nats::Client {
    let deadline = Instant::now() + WAIT;
    loop {
        match as_user(user).connect(format!("nats://{addr}")).await {
            Ok(client) => return client,
            Err(e) if Instant::now() > deadline => panic!("nats-server not up: {e}"),
            Err(_) => tokio::task::yield_now().await,
        }
    }
}

#[tokio::test]
async fn answers_have_nats_server_keys() {
    // A reference nats-server with the same accounts (in a cluster of its
    // own, which the keys compared below do not show).
    let Some(reference) = nats_server_with_config("sysacc", &[], CONFIG) else {
        return;
    };
    let broker = Broker::with_config(CONFIG);
    let ours = connect(broker.addr, "sys").await;
    let theirs = connect_when_up(reference.addr, "sys").await;
    // Keys nats-server leaves out when empty, or that percore adds.
    let optional: BTreeSet<String> = [
        "routes",
        "gateways",
        "active_servers",
        "jetstream",
        "cluster",
        "domain",
        "tags",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    for (subject, payload) in [
        ("$SYS.REQ.SERVER.PING", ""),
        ("$SYS.REQ.SERVER.PING.VARZ", ""),
        ("$SYS.REQ.SERVER.PING.CONNZ", r#"{"subscriptions":true}"#),
        ("$SYS.REQ.SERVER.PING.HEALTHZ", ""),
        ("$SYS.REQ.SERVER.PING.CONNZ", r#"{"subscriptions":"yes"}"#),
    ] {
        let a = request(&ours, subject, payload).await;
        let b = request(&theirs, subject, payload).await;
        assert_eq!(keys(&a), keys(&b), "{subject} {payload}: {a} vs {b}");
        let without =
            |v: &Value| -> BTreeSet<String> { keys(v).difference(&optional).cloned().collect() };
        assert_eq!(
            without(&a["server"]),
            without(&b["server"]),
            "{subject}: server"
        );
        if let Some(stats) = b.get("statsz") {
            assert_eq!(without(&a["statsz"]), without(stats), "{subject}: statsz");
        }
        if subject.ends_with("CONNZ") && b.get("data").is_some() {
            assert_eq!(keys(&a["data"]), keys(&b["data"]), "{subject}: data");
        }
    }
    // The events: the same keys, the client's too (a raw client with
    // name, lang and version, and a user).
    let mut ours_probes =
        ShardProbes::on_every_shard(&broker, sys_probes(broker.addr, broker.shards));
    let mut theirs_probes = ShardProbes::new(sys_probes(reference.addr, 1));
    let mut ours_events = ours
        .subscribe("$SYS.ACCOUNT.APP.*")
        .await
        .expect("subscribe");
    let mut theirs_events = theirs
        .subscribe("$SYS.ACCOUNT.APP.*")
        .await
        .expect("subscribe");
    ours_probes
        .await_interest(&mut ours_events, probe_subject)
        .await;
    theirs_probes
        .await_interest(&mut theirs_events, probe_subject)
        .await;
    let clients = [
        raw_login_at(broker.addr, "app", "diff"),
        raw_login_at(reference.addr, "app", "diff"),
    ];
    let (_, a) = next_json(&mut ours_events).await;
    let (_, b) = next_json(&mut theirs_events).await;
    assert_eq!(keys(&a), keys(&b), "connect: {a} vs {b}");
    assert_eq!(
        keys(&a["client"]),
        keys(&b["client"]),
        "connect client: {a} vs {b}"
    );
    drop(clients);
    let (_, a) = next_json(&mut ours_events).await;
    let (_, b) = next_json(&mut theirs_events).await;
    assert_eq!(keys(&a), keys(&b), "disconnect: {a} vs {b}");
    let rtt: BTreeSet<String> = ["rtt".to_string()].into();
    let client_keys =
        |v: &Value| -> BTreeSet<String> { keys(&v["client"]).difference(&rtt).cloned().collect() };
    assert_eq!(
        client_keys(&a),
        client_keys(&b),
        "disconnect client: {a} vs {b}"
    );
    assert_eq!(a["reason"], b["reason"], "disconnect: {a} vs {b}");
}
