//! Ops a client sends without having negotiated them, and a second CONNECT:
//! the bytes, the moment of the close and the `/connz?state=closed` reason
//! are nats-server 2.9.10's (checked against /usr/sbin/nats-server with raw
//! sockets; client.go's readLoop closes every client parse error as
//! "Protocol Violation", processErr closes a client's `-ERR` as "Parse
//! Error", processHeaderPub refuses HPUB unless CONNECT turned headers on).

mod support;

use support::{client_on_shard, Broker, RawClient};

fn monitored() -> Broker {
    Broker::start_with(&["-m", "-1"], None)
}

/// A quiet client on `shard` without headers. (`client_on_shard` said
/// `"headers":true`; a later CONNECT changes only what it mentions.)
fn headerless(broker: &Broker, shard: usize) -> RawClient {
    let mut client = client_on_shard(broker, shard);
    client.send(b"CONNECT {\"headers\":false,\"no_responders\":false}\r\n");
    client.ping_pong();
    client
}

/// A subscriber to `>` on `shard` that must never see anything.
fn watcher(broker: &Broker, shard: usize) -> RawClient {
    let mut watcher = client_on_shard(broker, shard);
    watcher.send(b"SUB > 1\r\n");
    watcher.ping_pong();
    watcher
}

/// `HPUB foo 12 14` from a client without headers: closed as soon as the
/// line ends (no `-ERR`, no wait for the payload), "Protocol Violation",
/// nothing delivered. Before the fix percore waited for the 14 bytes.
#[test]
fn hpub_without_headers_is_closed_at_the_end_of_its_line() {
    let broker = monitored();
    let mut watcher = watcher(&broker, 1);
    let mut client = headerless(&broker, 0);
    let cid = client.client_id();
    // The server sees the client's local address; its log lines name the
    // client by it, port included, as nats-server's do.
    let peer = client.stream.local_addr().expect("local address");
    client.send(b"HPUB foo 12 14\r\n");
    client.expect_closed_after(b"");
    assert_eq!(broker.closed_reason(cid), "Protocol Violation");
    assert_eq!(watcher.ping_pong(), b"");
    broker
        .wait_log(
            &format!("{peer} - cid:{cid} - message headers not supported"),
            support::IO_TIMEOUT,
        )
        .expect("the ERR line nats-server logs");
}

/// The same for every form of HPUB line and every way of not having
/// headers: `"headers":false`, no CONNECT at all; the line's fields, the
/// payload limit and the payload are not looked at.
#[test]
fn hpub_without_headers_is_refused_before_its_fields_are_checked() {
    let broker = monitored();
    let mut watcher = watcher(&broker, 1);
    let cases: [(&[u8], &[u8]); 6] = [
        (
            b"CONNECT {\"verbose\":false,\"headers\":false}\r\n",
            b"HPUB foo 12 14\r\n",
        ),
        (b"", b"HPUB foo 12 14\r\n"),
        (b"CONNECT {\"verbose\":false}\r\n", b"HPUB foo\r\n"),
        (b"CONNECT {\"verbose\":false}\r\n", b"HPUB foo 20 14\r\n"),
        (
            b"CONNECT {\"verbose\":false}\r\n",
            b"HPUB foo 12 2000000\r\n",
        ),
        (
            b"CONNECT {\"verbose\":false}\r\n",
            b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n",
        ),
    ];
    for (connect, hpub) in cases {
        let mut client = RawClient::connect(broker.addr);
        let cid = client.client_id();
        client.send(connect);
        client.send(hpub);
        client.expect_closed_after(b"");
        assert_eq!(
            broker.closed_reason(cid),
            "Protocol Violation",
            "{}",
            hpub.escape_ascii()
        );
    }
    assert_eq!(watcher.ping_pong(), b"");
}

/// With headers negotiated the same HPUB is delivered (the check is about
/// negotiation, not about HPUB).
#[test]
fn hpub_with_headers_is_delivered() {
    let broker = Broker::start();
    let mut watcher = watcher(&broker, 1);
    watcher.send(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n");
    watcher.ping_pong();
    let mut client = client_on_shard(&broker, 0);
    client.send(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert_eq!(client.ping_pong(), b"");
    assert_eq!(
        String::from_utf8_lossy(&watcher.ping_pong()),
        "HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    );
}

/// Ops of other connection kinds (routes, leaf nodes, the server side of
/// the client protocol): `-ERR 'Unknown Protocol Operation'`, "Protocol
/// Violation", nothing delivered.
#[test]
fn ops_of_other_connection_kinds_are_unknown_operations() {
    let broker = monitored();
    let mut watcher = watcher(&broker, 1);
    let ops: [&[u8]; 10] = [
        b"MSG foo 1 2\r\nhi\r\n",
        b"HMSG foo 1 12 14\r\n",
        b"RS+ $G foo\r\n",
        b"RS- $G foo\r\n",
        b"RMSG $G foo 2\r\nhi\r\n",
        b"LS+ foo\r\n",
        b"LS- foo\r\n",
        b"LMSG foo 2\r\nhi\r\n",
        b"A+ foo\r\n",
        b"A- foo\r\n",
    ];
    for op in ops {
        let mut client = headerless(&broker, 0);
        let cid = client.client_id();
        client.send(op);
        client.expect_closed_after(b"-ERR 'Unknown Protocol Operation'\r\n");
        assert_eq!(
            broker.closed_reason(cid),
            "Protocol Violation",
            "{}",
            op.escape_ascii()
        );
    }
    assert_eq!(watcher.ping_pong(), b"");
}

/// Arguments nats-server cannot parse (PUB fields, CONNECT JSON, INFO JSON)
/// close without `-ERR` as "Protocol Violation" (percore said "Parse
/// Error").
#[test]
fn malformed_arguments_are_protocol_violations() {
    let broker = monitored();
    let cases: [&[u8]; 6] = [
        b"CONNECT {\"verbose\":false}\r\nPUB foo\r\n",
        b"CONNECT {\"verbose\":false}\r\nPUB foo x\r\n",
        b"CONNECT {\"verbose\":false,\"headers\":true}\r\nHPUB foo 20 14\r\n",
        b"CONNECT {x\r\n",
        b"CONNECT {\"headers\":\"yes\"}\r\n",
        b"CONNECT {\"verbose\":false}\r\nINFO {x\r\n",
    ];
    for input in cases {
        let mut client = RawClient::connect(broker.addr);
        let cid = client.client_id();
        client.send(input);
        client.expect_closed_after(b"");
        assert_eq!(
            broker.closed_reason(cid),
            "Protocol Violation",
            "{}",
            input.escape_ascii()
        );
    }
}

/// A client's `-ERR` closes it as "Parse Error", logged as nats-server
/// logs it (percore said "Client Closed").
#[test]
fn a_clients_err_is_a_parse_error() {
    let broker = monitored();
    let mut client = headerless(&broker, 0);
    let cid = client.client_id();
    client.send(b"-ERR 'boom'\r\n");
    client.expect_closed_after(b"");
    assert_eq!(broker.closed_reason(cid), "Parse Error");
    broker
        .wait_log(
            &format!("cid:{cid} - Client Error 'boom'"),
            support::IO_TIMEOUT,
        )
        .expect("logged");
}

/// A second CONNECT changes only what it mentions: verbose stays off,
/// headers stay on, echo stays off (percore reset them to the defaults).
#[test]
fn a_second_connect_keeps_what_it_does_not_mention() {
    let broker = Broker::start();
    let mut client = RawClient::connect(broker.addr);
    client.send(b"CONNECT {\"verbose\":false,\"headers\":true,\"echo\":false}\r\nCONNECT {}\r\n");
    client.send(b"SUB foo 1\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB foo 1\r\nx\r\n");
    // No +OK (verbose off), not closed (headers on), no MSG (echo off).
    assert_eq!(client.ping_pong(), b"");
}
