//! Cluster routes on the state machine, over the fake runtime of
//! `tests.rs`: a cluster shard (0) with fake route sockets and a second
//! shard with clients. What a route's peer reads is checked byte for byte.

use std::sync::Arc;

use crate::account::{Account, AccountTable, SYSTEM_ACCOUNT};
use crate::ids::{AccountId, ClientId, ConnKey};
use crate::limits::ShardLimits;
use crate::protocol::RouteParser;
use crate::route::ClusterSettings;

use super::tests::{carry, two_shards, Client, Node, Socket};
use super::{Accepted, Next};

fn clustered() -> ShardLimits {
    ShardLimits {
        cluster: Some(Arc::new(ClusterSettings {
            name: "demo".into(),
            host: "127.0.0.1".into(),
            port: 6222,
            client_urls: vec!["127.0.0.1:4222".into()],
            ..ClusterSettings::default()
        })),
        ..ShardLimits::default()
    }
}

struct Route {
    key: ConnKey,
    socket: Socket,
    parser: RouteParser,
}

/// A peer that dialled the cluster shard and sent its CONNECT and INFO.
fn peer(node: &mut Node, rid: u64, server_id: &str) -> Route {
    peer_greeted(node, rid, server_id).0
}

/// [`peer`], and what it read: the server's INFO and its interest.
fn peer_greeted(node: &mut Node, rid: u64, server_id: &str) -> (Route, String) {
    let socket = Socket::default();
    let key = node
        .broker
        .register_route(
            Accepted {
                client_id: ClientId(rid),
                endpoint: socket.clone(),
                ip: "10.0.0.9".into(),
                port: 50_000,
                nonce: None,
            },
            None,
            node.now,
        )
        .expect("the cluster shard takes routes");
    let mut route = Route {
        key,
        socket,
        parser: RouteParser::new(),
    };
    send(
        node,
        &mut route,
        &format!(
            "CONNECT {{\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"{server_id}\",\"cluster\":\"demo\"}}\r\nINFO {{\"server_id\":\"{server_id}\",\"server_name\":\"{server_id}\",\"proto\":2,\"host\":\"10.0.0.9\",\"port\":6222,\"headers\":true,\"cluster\":\"demo\"}}\r\n"
        ),
    );
    let greeting = route.socket.read();
    assert!(greeting.starts_with("INFO {\"server_id\":"), "{greeting}");
    assert!(greeting.contains("\"proto\":2"), "{greeting}");
    (route, greeting)
}

/// A client of a clustered server: its INFO names the cluster, and has no
/// `connect_urls` until a peer sent its own (as nats-server 2.9.10).
fn clustered_client(node: &mut Node, cid: u64) -> Client {
    let (client, greeting) = node.accept(cid, None);
    assert!(
        greeting.ends_with(",\"cluster\":\"demo\"} \r\n"),
        "{greeting}"
    );
    client
}

fn send(node: &mut Node, route: &mut Route, bytes: &str) -> Next {
    let outcome =
        node.broker
            .process_route_input(route.key, &mut route.parser, bytes.as_bytes(), node.now);
    node.end_of_work();
    assert_eq!(outcome.consumed, bytes.len(), "after {bytes:?}");
    outcome.next
}

fn settle(n0: &mut Node, n1: &mut Node) {
    for _ in 0..8 {
        carry(n0, n1);
        carry(n1, n0);
    }
}

#[test]
fn interest_goes_out_as_rs_and_messages_come_back_once_per_route() {
    let (mut n0, mut n1) = two_shards(clustered());
    let mut r1 = peer(&mut n0, 1, "NPEER1");
    let mut sub = clustered_client(&mut n1, 2);
    n1.input(
        &mut sub,
        "CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nSUB foo 2\r\nSUB q grp 3\r\n",
    );
    settle(&mut n0, &mut n1);
    // Two subscriptions on foo are one announcement; the group has weight 1.
    assert_eq!(r1.socket.read(), "RS+ $G foo\r\nRS+ $G q grp 1\r\n");

    // The peer's interest, with a wildcard matching twice: one RMSG.
    assert_eq!(
        send(&mut n0, &mut r1, "RS+ $G bar\r\nRS+ $G >\r\n"),
        Next::NeedMore
    );
    settle(&mut n0, &mut n1);
    n1.input(&mut sub, "PUB bar r.1 2\r\nhi\r\n");
    settle(&mut n0, &mut n1);
    assert_eq!(r1.socket.read(), "RMSG $G bar r.1 2\r\nhi\r\n");

    // From the route: clients get it, a second route does not (one hop).
    let mut r2 = peer(&mut n0, 2, "NPEER2");
    assert_eq!(r2.socket.read(), "");
    // The first route hears of the second (gossip), with the address to
    // dial it at.
    let gossip = r1.socket.read();
    assert!(gossip.starts_with("INFO {"), "{gossip}");
    assert!(gossip.contains("\"server_id\":\"NPEER2\""), "{gossip}");
    assert!(
        gossip.contains("\"ip\":\"nats-route://10.0.0.9:6222/\""),
        "{gossip}"
    );
    send(&mut n0, &mut r2, "RS+ $G foo\r\n");
    send(
        &mut n0,
        &mut r1,
        "RMSG $G foo 1\r\nx\r\nRMSG $G q | grp 1\r\ny\r\nRMSG $G q 1\r\nz\r\n",
    );
    settle(&mut n0, &mut n1);
    assert_eq!(
        sub.read(),
        "MSG foo 1 1\r\nx\r\nMSG foo 2 1\r\nx\r\nMSG q 3 1\r\ny\r\n"
    );
    assert_eq!(
        r2.socket.read(),
        "",
        "nothing goes from one route to another"
    );

    // Unknown accounts are ignored; the route stays.
    assert_eq!(
        send(&mut n0, &mut r1, "RS+ NOPE x\r\nRMSG NOPE x 0\r\n\r\n"),
        Next::NeedMore
    );
    // A route that goes takes its interest with it.
    send(&mut n0, &mut r1, "RS- $G bar\r\n");
    settle(&mut n0, &mut n1);
    n1.input(&mut sub, "PUB bar 1\r\n!\r\n");
    settle(&mut n0, &mut n1);
    assert_eq!(
        r1.socket.read(),
        "RMSG $G bar 1\r\n!\r\n",
        "still matched by >"
    );
    n1.input(&mut sub, "UNSUB 1\r\nUNSUB 2\r\nUNSUB 3\r\n");
    settle(&mut n0, &mut n1);
    assert_eq!(r1.socket.read(), "RS- $G foo\r\nRS- $G q grp\r\n");
}

#[test]
fn queue_weights_spread_picks_over_the_cluster() {
    let (mut n0, mut n1) = two_shards(clustered());
    let mut r1 = peer(&mut n0, 1, "NPEER1");
    // Three members behind the route, one client here.
    send(&mut n0, &mut r1, "RS+ $G w grp 3\r\n");
    let mut member = clustered_client(&mut n0, 2);
    n0.input(
        &mut member,
        "CONNECT {\"verbose\":false}\r\nSUB w grp 1\r\n",
    );
    let mut publisher = clustered_client(&mut n1, 3);
    n1.input(&mut publisher, "CONNECT {\"verbose\":false}\r\n");
    settle(&mut n0, &mut n1);
    let _ = r1.socket.read();
    for _ in 0..400 {
        n1.input(&mut publisher, "PUB w 1\r\nm\r\n");
    }
    settle(&mut n0, &mut n1);
    let routed = r1.socket.read().matches("RMSG $G w | grp 1\r\n").count();
    let local = member.read().matches("MSG w 1 1\r\n").count();
    assert_eq!(routed + local, 400, "each message once");
    assert!(
        (250..350).contains(&routed),
        "3 of 4 members are remote: {routed}"
    );
    // A lower weight moves the picks.
    send(&mut n0, &mut r1, "RS+ $G w grp 1\r\n");
    settle(&mut n0, &mut n1);
    for _ in 0..400 {
        n1.input(&mut publisher, "PUB w 1\r\nm\r\n");
    }
    settle(&mut n0, &mut n1);
    let routed = r1.socket.read().matches("RMSG").count();
    assert!(
        (150..250).contains(&routed),
        "1 of 2 members is remote: {routed}"
    );
}

#[test]
fn a_duplicate_route_and_a_route_to_ourselves_are_closed() {
    let (mut n0, _n1) = two_shards(clustered());
    let _r1 = peer(&mut n0, 1, "NPEER1");
    let socket = Socket::default();
    let key = n0
        .broker
        .register_route(
            Accepted {
                client_id: ClientId(2),
                endpoint: socket.clone(),
                ip: "10.0.0.9".into(),
                port: 50_001,
                nonce: None,
            },
            None,
            n0.now,
        )
        .unwrap();
    let mut dup = Route {
        key,
        socket,
        parser: RouteParser::new(),
    };
    let next = send(
        &mut n0,
        &mut dup,
        "CONNECT {\"name\":\"NPEER1\",\"cluster\":\"demo\"}\r\nINFO {\"server_id\":\"NPEER1\",\"cluster\":\"demo\"}\r\n",
    );
    assert_eq!(next, Next::Close);
    assert!(n0.broker.is_closing(dup.key));
    assert!(
        n0.broker.route_reconnect(dup.key).is_none(),
        "we did not dial it"
    );

    // We dialled a seed and found ourselves: closed, never dialled again.
    let socket = Socket::default();
    let url = crate::route::RouteUrl::parse("nats-route://127.0.0.1:6222").unwrap();
    let key = n0
        .broker
        .register_route(
            Accepted {
                client_id: ClientId(3),
                endpoint: socket.clone(),
                ip: "127.0.0.1".into(),
                port: 6222,
                nonce: None,
            },
            Some((url, true)),
            n0.now,
        )
        .unwrap();
    n0.end_of_work();
    let opening = socket.read();
    assert!(opening.starts_with("CONNECT {\"echo\":true,"), "{opening}");
    assert!(
        opening.contains("\r\nINFO {"),
        "CONNECT then INFO: {opening}"
    );
    let mut to_self = Route {
        key,
        socket,
        parser: RouteParser::new(),
    };
    let next = send(
        &mut n0,
        &mut to_self,
        "INFO {\"server_id\":\"NTEST\",\"cluster\":\"demo\"}\r\n",
    );
    assert_eq!(next, Next::Close);
    assert!(n0.broker.route_reconnect(to_self.key).is_none());
}

/// `cluster.permissions`: import `in.>`, export `out.>` but not
/// `out.secret`.
fn with_route_permissions() -> ShardLimits {
    use crate::auth::{Permissions, Rules, SubscribeRule};
    use crate::route_permissions::RoutePermissions;
    let rule = |s: &str| SubscribeRule {
        subject: s.as_bytes().into(),
        queue: None,
    };
    let mut limits = clustered();
    let mut settings = (**limits.cluster.as_ref().unwrap()).clone();
    settings.permissions = Some(RoutePermissions::new(Permissions {
        publish: Some(Rules {
            allow: Some(vec![b"in.>".as_slice().into()]),
            deny: Vec::new(),
        }),
        subscribe: Some(Rules {
            allow: Some(vec![rule("out.>")]),
            deny: vec![rule("out.secret")],
        }),
        allow_responses: None,
    }));
    limits.cluster = Some(Arc::new(settings));
    limits
}

#[test]
fn route_permissions_act_on_interest_and_per_message_only_when_needed() {
    let (mut n0, mut n1) = two_shards(with_route_permissions());
    let mut r1 = peer(&mut n0, 1, "NPEER1");
    let mut client = clustered_client(&mut n1, 2);
    // Import: only interest inside `in.>` is announced, and withdrawn.
    n1.input(
        &mut client,
        "CONNECT {\"verbose\":false}\r\nSUB in.a 1\r\nSUB other.x 2\r\nSUB in.* 3\r\nUNSUB 2\r\nUNSUB 1\r\n",
    );
    settle(&mut n0, &mut n1);
    assert_eq!(
        r1.socket.read(),
        "RS+ $G in.a\r\nRS+ $G in.*\r\nRS- $G in.a\r\n"
    );

    // Export: literal interest outside it is ignored; what is accepted
    // needs no per-message check.
    send(
        &mut n0,
        &mut r1,
        "RS+ $G out.a\r\nRS+ $G out.secret\r\nRS+ $G x\r\n",
    );
    settle(&mut n0, &mut n1);
    assert!(n0.broker.conns[r1.key].permissions.is_none());
    n1.input(
        &mut client,
        "PUB out.secret 0\r\n\r\nPUB x 0\r\n\r\nPUB out.a 0\r\n\r\n",
    );
    settle(&mut n0, &mut n1);
    assert_eq!(r1.socket.read(), "RMSG $G out.a 0\r\n\r\n");

    // A wildcard that covers the deny rule: that route's messages are
    // checked from now on.
    send(&mut n0, &mut r1, "RS+ $G out.*\r\n");
    settle(&mut n0, &mut n1);
    assert!(n0.broker.conns[r1.key].permissions.is_some());
    n1.input(&mut client, "PUB out.secret 0\r\n\r\nPUB out.b 0\r\n\r\n");
    settle(&mut n0, &mut n1);
    assert_eq!(r1.socket.read(), "RMSG $G out.b 0\r\n\r\n");

    // A second route without such interest has no check.
    let r2 = peer(&mut n0, 3, "NPEER2");
    assert!(n0.broker.conns[r2.key].permissions.is_none());
}

#[test]
fn system_services_are_one_interest_per_server_and_answer_a_route_once() {
    let (mut n0, mut n1) = two_shards(clustered());
    settle(&mut n0, &mut n1);
    // Both shards installed the services; the routes hear of them once.
    let (mut r1, greeting) = peer_greeted(&mut n0, 1, "NPEER1");
    let services: Vec<&str> = greeting
        .split_inclusive("\r\n")
        .filter(|line| line.starts_with("RS+ $SYS "))
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = services.iter().collect();
    assert_eq!(distinct.len(), services.len(), "{greeting}");
    assert!(
        services.contains(&"RS+ $SYS $SYS.REQ.SERVER.PING\r\n"),
        "{greeting}"
    );
    assert!(
        services.contains(&"RS+ $SYS $SYS.REQ.ACCOUNT.*.CONNZ\r\n"),
        "{greeting}"
    );
    settle(&mut n0, &mut n1);
    assert_eq!(r1.socket.read(), "", "shard 1 announces nothing");

    // A second server listens to pings too: a ping from the first is
    // answered here once (by the cluster shard) and goes no further.
    let mut r2 = peer(&mut n0, 2, "NPEER2");
    send(&mut n0, &mut r2, "RS+ $SYS $SYS.REQ.SERVER.PING\r\n");
    send(
        &mut n0,
        &mut r1,
        "RS+ $SYS _INBOX.r1\r\nRMSG $SYS $SYS.REQ.SERVER.PING _INBOX.r1 0\r\n\r\n",
    );
    settle(&mut n0, &mut n1);
    let requests = n0.broker.take_system_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].subject, "$SYS.REQ.SERVER.PING");
    assert_eq!(requests[0].reply.as_deref(), Some("_INBOX.r1"));
    assert!(n1.broker.take_system_requests().is_empty());
    let _ = r1.socket.read();
    assert_eq!(r2.socket.read(), "", "one hop");

    // The answer goes back over the route to the requester's inbox.
    n0.broker.publish_system("_INBOX.r1", b"stats");
    n0.end_of_work();
    assert_eq!(r1.socket.read(), "RMSG $SYS _INBOX.r1 5\r\nstats\r\n");
    assert_eq!(r2.socket.read(), "");

    // A new account table (an account added, as a reload or a pushed JWT
    // brings) keeps the services: the routes hear nothing of it.
    let system = n0.broker.limits.accounts.system().expect("system account");
    let mut limits = clustered();
    limits.accounts = Arc::new(AccountTable::build(
        vec![
            Account::new(system, SYSTEM_ACCOUNT),
            Account::new(AccountId(2), "NEW"),
        ],
        Some(SYSTEM_ACCOUNT),
    ));
    assert_eq!(limits.accounts.system(), Some(system));
    n0.broker.replace_limits(limits.clone());
    n1.broker.replace_limits(limits);
    n0.end_of_work();
    settle(&mut n0, &mut n1);
    assert_eq!(
        r1.socket.read(),
        "",
        "no withdrawal, no second announcement"
    );
}

/// nats-server's `shouldReportConnectErr`: the first failure, then every
/// Nth, N by whether the route was ever reached.
#[test]
fn failed_dials_reported_first_and_every_nth() {
    use super::route_handshake::{DialErrorReports, RouteDial};
    let reports = DialErrorReports {
        connect: 3,
        reconnect: 1,
    };
    let mut dial = RouteDial {
        url: crate::route::RouteUrl {
            host: "127.0.0.1".into(),
            port: 6222,
            user: None,
            pass: None,
        },
        explicit: true,
        delay: std::time::Duration::ZERO,
        reconnect: false,
    };
    let errors = |reports: &DialErrorReports, dial: &RouteDial| -> Vec<u64> {
        (1..=7).filter(|&a| reports.is_error(dial, a)).collect()
    };
    assert_eq!(errors(&reports, &dial), [1, 3, 6]);
    dial.reconnect = true;
    assert_eq!(errors(&reports, &dial), [1, 2, 3, 4, 5, 6, 7]);
    // As Go's `%`: a negative N counts as its magnitude.
    let negative = DialErrorReports {
        connect: -2,
        reconnect: -2,
    };
    assert_eq!(errors(&negative, &dial), [1, 2, 4, 6]);
}
