//! The system account across a cluster, as nats-server 2.9 has it: every
//! server's services are its interest in the system account, so a
//! `$SYS.REQ.SERVER.PING` from a client on any node gets one answer per
//! server, `$SYS.REQ.SERVER.<id>.<endpoint>` reaches the server it names
//! wherever the requester is, and `$SYS.ACCOUNT.<account>.CONNECT` events
//! reach system subscribers on other nodes. Two percore nodes with two
//! shards each, and (where `/usr/sbin/nats-server` exists; the test says
//! SKIPPED otherwise) a mixed mesh percore + nats-server + percore, where
//! an extra answer would show a request forwarded a second hop.
//!
//! Synchronisation: interest probes (see `support::cluster`); a request's
//! answers are collected until the expected count, then for a bounded quiet
//! time to prove there is no extra one.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{
    nats_server_installed, nats_server_with_config, route_port, wait_interest, ClusterClient, WAIT,
};
use support::system_accounts::{APP, CONFIG, SYS};
use support::Broker;

/// How long a request's answers are awaited after the expected count
/// arrived: an extra answer (a second hop, a second shard) would come
/// within it.
const QUIET: Duration = Duration::from_millis(400);

/// A percore node of cluster "demo" with the accounts of [`CONFIG`], a
/// route listener on a free port, dialling `routes`.
fn percore_node(name: &str, routes: &[u16]) -> (Broker, u16) {
    let seeds: Vec<String> = routes
        .iter()
        .map(|p| format!("nats-route://127.0.0.1:{p}"))
        .collect();
    let seeds = seeds.join(",");
    let mut args = vec![
        "--cluster",
        "nats://127.0.0.1:-1",
        "--cluster_name",
        "demo",
        "-n",
        name,
    ];
    if !routes.is_empty() {
        args.extend_from_slice(&["--routes", &seeds]);
    }
    let broker = Broker::start_with(&args, Some(CONFIG));
    let port = route_port(&broker);
    (broker, port)
}

/// The id of the server `conn` is connected to.
fn server_id(conn: &ClusterClient) -> String {
    let info: Value =
        serde_json::from_str(conn.info.trim_start_matches("INFO ").trim()).expect("INFO JSON");
    info["server_id"].as_str().expect("server_id").to_string()
}

/// Publishes `subject` with a reply subject of its own from `requester`
/// and returns every answer: `expected` of them (the test fails if fewer
/// come within [`WAIT`]), plus any that arrive within [`QUIET`] after.
fn answers(
    requester: &mut ClusterClient,
    subject: &str,
    payload: &str,
    expected: usize,
) -> Vec<Value> {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let inbox = format!("_INBOX.sysreq.{n}");
    let sid = 1000 + n;
    requester.send(
        format!(
            "SUB {inbox} {sid}\r\nPUB {subject} {inbox} {}\r\n{payload}\r\n",
            payload.len()
        )
        .as_bytes(),
    );
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((to, _, body)) = requester.msg(left) else {
            panic!("{subject}: {} of {expected} answers: {got:?}", got.len());
        };
        assert_eq!(to, inbox);
        got.push(serde_json::from_slice(&body).expect("JSON answer"));
    }
    while let Some((to, _, body)) = requester.msg(QUIET) {
        assert_eq!(to, inbox);
        got.push(serde_json::from_slice(&body).expect("JSON answer"));
    }
    requester.send(format!("UNSUB {sid}\r\n").as_bytes());
    requester.ping();
    got
}

/// The ids of the servers that answered.
fn answering(answers: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = answers
        .iter()
        .map(|a| a["server"]["id"].as_str().expect("server id").to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

/// The next `count` messages of `watcher` as (subject, event), then none
/// for [`QUIET`].
fn events(watcher: &mut ClusterClient, count: usize) -> Vec<(String, Value)> {
    let mut got = Vec::new();
    while got.len() < count {
        let Some((subject, _, body)) = watcher.msg(WAIT) else {
            panic!("{} of {count} events: {got:?}", got.len());
        };
        got.push((subject, serde_json::from_slice(&body).expect("JSON event")));
    }
    if let Some((subject, _, body)) = watcher.msg(QUIET) {
        panic!(
            "an extra event {subject}: {} after {got:?}",
            String::from_utf8_lossy(&body)
        );
    }
    got
}

#[test]
fn two_percore_nodes_answer_each_request_once_per_server() {
    let (a, a_route) = percore_node("sys-a", &[]);
    let (b, _) = percore_node("sys-b", &[a_route]);
    let mut a0 = ClusterClient::on_shard_as(a.addr, 0, SYS);
    let mut a1 = ClusterClient::on_shard_as(a.addr, 1, SYS);
    let mut b1 = ClusterClient::on_shard_as(b.addr, 1, SYS);
    let (a_id, b_id) = (server_id(&a0), server_id(&b1));
    assert_ne!(a_id, b_id);
    // A server's services are announced when its route registers, before
    // any later interest of its clients: once a probe of a client on the
    // other node gets through, the services are known there too (on every
    // shard the probe was published from).
    wait_interest(&mut b1, &mut a0, "probe.b.a0");
    wait_interest(&mut b1, &mut a1, "probe.b.a1");
    wait_interest(&mut a0, &mut b1, "probe.a.b1");
    let both = sorted(&[&a_id, &b_id]);

    // From the cluster shard, the other shard and the other node: one
    // statsz per server.
    for (name, requester) in [("a0", &mut a0), ("a1", &mut a1), ("b1", &mut b1)] {
        let got = answers(requester, "$SYS.REQ.SERVER.PING", "", 2);
        assert_eq!(answering(&got), both, "PING from {name}: {got:?}");
        for answer in &got {
            assert!(answer["statsz"].is_object(), "{answer}");
        }
    }
    let got = answers(&mut a1, "$SYS.REQ.SERVER.PING.VARZ", "", 2);
    assert_eq!(answering(&got), both, "{got:?}");
    for answer in &got {
        assert_eq!(answer["data"]["server_id"], answer["server"]["id"]);
    }

    // A request naming a server reaches it from the other node, and only
    // it answers.
    let got = answers(&mut a1, &format!("$SYS.REQ.SERVER.{b_id}.VARZ"), "", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["server"]["id"], b_id.as_str(), "{}", got[0]);
    assert_eq!(got[0]["data"]["server_id"], b_id.as_str(), "{}", got[0]);
    let got = answers(&mut b1, &format!("$SYS.REQ.SERVER.{a_id}.HEALTHZ"), "", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["server"]["id"], a_id.as_str(), "{}", got[0]);
    assert_eq!(got[0]["data"]["status"], "ok", "{}", got[0]);
}

#[test]
fn connect_events_on_one_node_reach_system_subscribers_on_another() {
    let (a, a_route) = percore_node("ev-a", &[]);
    let (b, _) = percore_node("ev-b", &[a_route]);
    // The watcher is on A's shard that has no routes.
    let mut watcher = ClusterClient::on_shard_as(a.addr, 1, SYS);
    watcher.send(b"SUB $SYS.ACCOUNT.APP.* 1\r\n");
    let mut b0 = ClusterClient::on_shard_as(b.addr, 0, SYS);
    let mut b1 = ClusterClient::on_shard_as(b.addr, 1, SYS);
    let b_id = server_id(&b0);
    wait_interest(&mut watcher, &mut b0, "probe.ev.b0");
    wait_interest(&mut watcher, &mut b1, "probe.ev.b1");

    let first = ClusterClient::connect_as(b.addr, APP);
    let second = ClusterClient::connect_as(b.addr, APP);
    let cids: BTreeSet<u64> = [first.client_id(), second.client_id()].into();
    let shards: BTreeSet<u64> = cids.iter().map(|cid| (cid - 1) % 2).collect();
    assert_eq!(shards.len(), 2, "one client on each shard of B: {cids:?}");
    let seen = events(&mut watcher, 2);
    for (subject, event) in &seen {
        assert_eq!(subject, "$SYS.ACCOUNT.APP.CONNECT", "{event}");
        assert_eq!(event["server"]["id"], b_id.as_str(), "{event}");
        assert_eq!(event["client"]["acc"], "APP", "{event}");
    }
    let seen_cids: BTreeSet<u64> = seen
        .iter()
        .filter_map(|(_, e)| e["client"]["id"].as_u64())
        .collect();
    assert_eq!(seen_cids, cids);
    drop(first);
    drop(second);
    let seen = events(&mut watcher, 2);
    for (subject, event) in &seen {
        assert_eq!(subject, "$SYS.ACCOUNT.APP.DISCONNECT", "{event}");
        assert_eq!(event["server"]["id"], b_id.as_str(), "{event}");
    }
}

#[test]
fn mixed_mesh_with_nats_server_answers_once_per_server() {
    if !nats_server_installed() {
        return;
    }
    let (a, a_route) = percore_node("mix-a", &[]);
    let n = nats_server_with_config("mix-n", &[a_route], CONFIG).expect("nats-server");
    let (b, _) = percore_node("mix-b", &[a_route]);
    let mut a1 = ClusterClient::on_shard_as(a.addr, 1, SYS);
    let mut b1 = ClusterClient::on_shard_as(b.addr, 1, SYS);
    let mut n_sys = ClusterClient::connect_as(n.addr, SYS);
    let (a_id, b_id, n_id) = (server_id(&a1), server_id(&b1), server_id(&n_sys));
    // Every node knows the other two's services (each probe crosses one
    // direct route: B finds nats-server by gossip).
    wait_interest(&mut a1, &mut n_sys, "probe.a.n");
    wait_interest(&mut b1, &mut n_sys, "probe.b.n");
    wait_interest(&mut n_sys, &mut a1, "probe.n.a");
    wait_interest(&mut b1, &mut a1, "probe.b.a");
    wait_interest(&mut n_sys, &mut b1, "probe.n.b");
    wait_interest(&mut a1, &mut b1, "probe.a.b");
    let all = sorted(&[&a_id, &b_id, &n_id]);

    // Three answers wherever the requester is: a server that passed a
    // request on to a third would make that one answer twice.
    for (name, requester) in [
        ("nats-server", &mut n_sys),
        ("a1", &mut a1),
        ("b1", &mut b1),
    ] {
        let got = answers(requester, "$SYS.REQ.SERVER.PING", "", 3);
        assert_eq!(answering(&got), all, "PING from {name}: {got:?}");
        let got = answers(requester, "$SYS.REQ.SERVER.PING.HEALTHZ", "", 3);
        assert_eq!(answering(&got), all, "PING.HEALTHZ from {name}: {got:?}");
    }
    let got = answers(&mut n_sys, &format!("$SYS.REQ.SERVER.{b_id}.VARZ"), "", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["data"]["server_id"], b_id.as_str(), "{}", got[0]);
    let got = answers(&mut a1, &format!("$SYS.REQ.SERVER.{n_id}.VARZ"), "", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["data"]["server_id"], n_id.as_str(), "{}", got[0]);

    // Events both ways: a percore client's CONNECT seen on nats-server, a
    // nats-server client's seen on percore.
    n_sys.send(b"SUB $SYS.ACCOUNT.APP.CONNECT 7\r\n");
    a1.send(b"SUB $SYS.ACCOUNT.APP.CONNECT 7\r\n");
    wait_interest(&mut n_sys, &mut b1, "probe.ev.n.b");
    wait_interest(&mut a1, &mut b1, "probe.ev.a.b");
    wait_interest(&mut a1, &mut n_sys, "probe.ev.a.n");
    let on_b = ClusterClient::connect_as(b.addr, APP);
    let seen = events(&mut n_sys, 1);
    assert_eq!(seen[0].1["server"]["id"], b_id.as_str(), "{:?}", seen);
    assert_eq!(seen[0].1["client"]["id"], on_b.client_id(), "{:?}", seen);
    let seen = events(&mut a1, 1);
    assert_eq!(seen[0].1["server"]["id"], b_id.as_str(), "{:?}", seen);
    let _on_n = ClusterClient::connect_as(n.addr, APP);
    for watcher in [&mut n_sys, &mut a1] {
        let seen = events(watcher, 1);
        assert_eq!(seen[0].0, "$SYS.ACCOUNT.APP.CONNECT");
        assert_eq!(seen[0].1["server"]["id"], n_id.as_str(), "{:?}", seen);
    }
}
