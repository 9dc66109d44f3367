//! Accounts as clients see them, with two shards and clients on both: the
//! same subject in two accounts are two subjects; a stream import brings
//! an exporter's messages in under the importer's prefix; a service import
//! carries a request into the exporter's account and the response back
//! (async-nats's request/reply); `/connz` and `/accountz` name accounts.

mod support;

use std::time::Duration;

use async_nats::client::RequestErrorKind;
use support::{Broker, RawClient};

const SHARDS: usize = 2;

const CONFIG: &str = r#"
accounts {
  A: {
    users: [{user: a, password: pa}]
    exports: [
      {stream: "events.>"}
      {service: "svc.time", accounts: [B]}
    ]
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

/// A raw client logged in as `user` on `shard`, its handshake done.
fn login_on_shard(broker: &Broker, shard: usize, user: &str, password: &str) -> RawClient {
    login_on_shard_with(broker, shard, user, password, false)
}

/// [`login_on_shard`], saying in its CONNECT whether it takes headers.
fn login_on_shard_with(
    broker: &Broker,
    shard: usize,
    user: &str,
    password: &str,
    headers: bool,
) -> RawClient {
    connect_on_shard(
        broker,
        shard,
        &format!(
            "{{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{password}\",\"headers\":{headers}}}"
        ),
    )
}

/// A client on `shard` that sent `CONNECT <json>` and got its PONG.
fn connect_on_shard(broker: &Broker, shard: usize, json: &str) -> RawClient {
    for _ in 0..SHARDS * 2 {
        let mut client = RawClient::connect(broker.addr);
        if client.shard(SHARDS) != shard {
            continue;
        }
        client.send(format!("CONNECT {json}\r\nPING\r\n").as_bytes());
        client.expect(b"PONG\r\n");
        return client;
    }
    panic!("no client landed on shard {shard}");
}

fn broker() -> Broker {
    Broker::start_with(&[], Some(CONFIG))
}

#[test]
fn the_same_subject_in_two_accounts_is_two_subjects_on_both_shards() {
    let broker = broker();
    let mut a_sub = login_on_shard(&broker, 0, "a", "pa");
    let mut b_sub = login_on_shard(&broker, 1, "b", "pb");
    let mut a_pub = login_on_shard(&broker, 1, "a", "pa");
    let mut b_pub = login_on_shard(&broker, 0, "b", "pb");
    for client in [&mut a_sub, &mut b_sub] {
        client.send(b"SUB foo 1\r\n");
        assert_eq!(client.ping_pong(), b"");
    }
    // Each publisher's PONG comes once the other shard applied its publish.
    b_pub.send(b"PUB foo 6\r\nfrom-b\r\n");
    assert_eq!(b_pub.ping_pong(), b"");
    a_pub.send(b"PUB foo 6\r\nfrom-a\r\n");
    assert_eq!(a_pub.ping_pong(), b"");
    assert_eq!(a_sub.ping_pong(), b"MSG foo 1 6\r\nfrom-a\r\n");
    assert_eq!(b_sub.ping_pong(), b"MSG foo 1 6\r\nfrom-b\r\n");
}

#[test]
fn a_stream_import_arrives_under_the_importers_prefix() {
    let broker = broker();
    let mut b_sub = login_on_shard(&broker, 1, "b", "pb");
    let mut a_pub = login_on_shard(&broker, 0, "a", "pa");
    b_sub.send(b"SUB imp.events.* 7\r\nSUB events.* 8\r\n");
    assert_eq!(b_sub.ping_pong(), b"");
    a_pub.send(b"PUB events.login r.1 2\r\nhi\r\n");
    assert_eq!(a_pub.ping_pong(), b"");
    assert_eq!(
        b_sub.ping_pong(),
        b"MSG imp.events.login 7 r.1 2\r\nhi\r\n",
        "once, renamed; B's own events.* is another subject"
    );
}

#[tokio::test]
async fn a_service_import_answers_requests_across_accounts_and_shards() {
    let broker = broker();
    let mut responder = login_on_shard(&broker, 0, "a", "pa");
    responder.send(b"SUB svc.time 1\r\n");
    assert_eq!(responder.ping_pong(), b"");
    // The requester is the next connection: shard 1.
    let requester = async_nats::ConnectOptions::with_user_and_password("b".into(), "pb".into())
        .connect(format!("nats://{}", broker.addr))
        .await
        .expect("b logs in");
    assert_eq!((requester.server_info().client_id - 1) % SHARDS as u64, 1);
    let answering = std::thread::spawn(move || {
        let line = responder.read_line();
        let fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        assert_eq!(fields.len(), 5, "{line:?}");
        assert_eq!(&fields[..3], ["MSG", "svc.time", "1"]);
        let reply = &fields[3];
        assert!(
            reply.starts_with("_R_."),
            "A sees its own reply subject: {reply}"
        );
        assert_eq!(responder.read_line(), "now?\r\n");
        responder.send(format!("PUB {reply} 5\r\nnoon!\r\n").as_bytes());
        assert_eq!(responder.ping_pong(), b"");
    });
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        requester.request("time", "now?".into()),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    assert_eq!(&answer.payload[..], b"noon!");
    answering.join().expect("responder");

    // Outside the import, A's subject is not B's: nobody answers there.
    let outside = requester.request("svc.time", "x".into()).await;
    match outside {
        Err(e) => assert_eq!(e.kind(), RequestErrorKind::NoResponders),
        Ok(message) => panic!("answered from another account: {message:?}"),
    }
}

#[test]
fn a_reload_moves_users_between_accounts_and_adds_imports() {
    let before = "accounts {\n  A: { users: [{user: a, password: pa}], exports: [{stream: \"news\"}] }\n  B: { users: [{user: b, password: pb}, {user: mover, password: pm}] }\n}\n";
    let broker = Broker::with_config(before);
    // All on shard 0: the cut of the mover tells when that shard has
    // applied the reload (each shard applies it on its own).
    let mut mover = login_on_shard(&broker, 0, "mover", "pm");
    let mut a_pub = login_on_shard(&broker, 0, "a", "pa");
    let mut b_sub = login_on_shard(&broker, 0, "b", "pb");
    b_sub.send(b"SUB news 1\r\n");
    assert_eq!(b_sub.ping_pong(), b"");

    let after = "accounts {\n  A: { users: [{user: a, password: pa}, {user: mover, password: pm}], exports: [{stream: \"news\"}] }\n  B: { users: [{user: b, password: pb}], imports: [{stream: {account: A, subject: news}}] }\n}\n";
    let path = broker.config_path().expect("config file").to_path_buf();
    std::fs::write(&path, after).expect("rewrite config");
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", Duration::from_secs(10))
        .expect("reload logged");
    // A user whose account changed logs in again; the others stay.
    mover.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
    assert_eq!(a_pub.ping_pong(), b"");
    a_pub.send(b"PUB news 5\r\nextra\r\n");
    assert_eq!(a_pub.ping_pong(), b"");
    assert_eq!(
        b_sub.ping_pong(),
        b"MSG news 1 5\r\nextra\r\n",
        "the import added by the reload delivers"
    );
}

#[test]
fn a_protocol_1_client_hears_its_accounts_max_payload_after_its_first_pong() {
    // nats-server 2.9.10 answers the first PING of a client that takes
    // asynchronous INFO with PONG, then an INFO whose max_payload is the
    // connection's own (c.mpay) when that is not the server's.
    let broker = Broker::with_config(
        "accounts {\n  L: { users: [{user: l, password: pl}], limits: {max_payload: 4} }\n  F: { users: [{user: f, password: pf}] }\n}\n",
    );
    for shard in 0..SHARDS {
        let mut limited = RawClient::connect(broker.addr);
        while limited.shard(SHARDS) != shard {
            limited = RawClient::connect(broker.addr);
        }
        limited.send(b"CONNECT {\"verbose\":false,\"protocol\":1,\"user\":\"l\",\"pass\":\"pl\"}\r\nPING\r\n");
        assert_eq!(limited.read_line(), "PONG\r\n");
        let info: serde_json::Value = serde_json::from_str(
            limited
                .read_line()
                .strip_prefix("INFO ")
                .expect("an INFO after the PONG"),
        )
        .expect("INFO json");
        assert_eq!(info["max_payload"], 4, "{info}");
        assert_eq!(info["client_id"], limited.client_id(), "{info}");
        // Only the first PONG: the next PING is answered alone.
        assert_eq!(limited.ping_pong(), b"");
    }
    // An account without a limit of its own: no second INFO.
    let mut free = RawClient::connect(broker.addr);
    free.send(
        b"CONNECT {\"verbose\":false,\"protocol\":1,\"user\":\"f\",\"pass\":\"pf\"}\r\nPING\r\n",
    );
    assert_eq!(free.read_line(), "PONG\r\n");
    assert_eq!(free.ping_pong(), b"");
}

#[test]
fn account_limits_bound_connections_subscriptions_and_payloads() {
    let broker = Broker::with_config(
        "accounts {\n  L: { users: [{user: l, password: pl}], limits: {max_conn: 1, max_subs: 1, max_payload: 4} }\n  F: { users: [{user: f, password: pf}] }\n}\n",
    );
    let mut first = login_on_shard(&broker, 0, "l", "pl");
    // The account's one connection is taken, on whichever shard.
    let mut second = RawClient::connect(broker.addr);
    second.send(b"CONNECT {\"verbose\":false,\"user\":\"l\",\"pass\":\"pl\"}\r\nPING\r\n");
    second.expect_closed_after(b"-ERR 'maximum account active connections exceeded'\r\n");
    // Another account is not limited by it.
    let _free = login_on_shard(&broker, 1, "f", "pf");

    first.send(b"SUB a 1\r\nSUB b 2\r\n");
    assert_eq!(
        first.ping_pong(),
        b"-ERR 'maximum subscriptions exceeded'\r\n"
    );
    first.send(b"PUB a 4\r\nfour\r\n");
    assert_eq!(first.ping_pong(), b"MSG a 1 4\r\nfour\r\n");
    first.send(b"PUB a 5\r\nfive!\r\n");
    first.expect_closed_after(b"-ERR 'Maximum Payload Violation'\r\n");

    // Its place is free again once it is gone.
    let _again = login_on_shard(&broker, 0, "l", "pl");
}

/// The requester's RTT in a `Nats-Request-Info` header block that is
/// otherwise exactly `NATS/1.0\r\n{own}Nats-Request-Info:
/// {<who>,"rtt":N}\r\n\r\n`, as nats-server 2.9.10 writes it (the
/// requester's own headers first, the set header last).
fn request_info_rtt(header: &[u8], own: &str, who: &str) -> u64 {
    let text = String::from_utf8_lossy(header);
    let rtt: String = text
        .split("\"rtt\":")
        .nth(1)
        .unwrap_or_else(|| panic!("an rtt in {text:?}"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(
        text,
        format!("NATS/1.0\r\n{own}Nats-Request-Info: {{{who},\"rtt\":{rtt}}}\r\n\r\n")
    );
    rtt.parse().expect("rtt digits")
}

/// One request of B's as the responder that takes headers sees it: its
/// reply subject (if any), and the RTT its `Nats-Request-Info` carries.
fn read_request(responder: &mut RawClient, own: &str, body: &[u8]) -> (Option<String>, u64) {
    read_request_of(responder, own, body, "\"acc\":\"B\"")
}

/// [`read_request`] of the requester `who` (`"acc":"C","svc":"B"`).
fn read_request_of(
    responder: &mut RawClient,
    own: &str,
    body: &[u8],
    who: &str,
) -> (Option<String>, u64) {
    let (fields, payload) = responder.read_msg();
    assert_eq!(&fields[..3], ["HMSG", "svc.time", "1"], "{fields:?}");
    let reply = match fields.len() {
        6 => Some(fields[3].clone()),
        5 => None,
        _ => panic!("{fields:?}"),
    };
    let header_len: usize = fields[fields.len() - 2].parse().expect("header size");
    assert_eq!(&payload[header_len..], body);
    (reply, request_info_rtt(&payload[..header_len], own, who))
}

/// A Go duration as `/connz` shows an RTT (`850ns`, `143.704µs`,
/// `1.2ms`), in nanoseconds.
fn go_duration_nanos(text: &str) -> u64 {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic() || c == 'µ') {
        Some(at) => text.split_at(at),
        None => panic!("a unit in {text:?}"),
    };
    let scale = match unit {
        "ns" => 1.0,
        "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => panic!("unit of {text:?}"),
    };
    let value: f64 = number.parse().expect("duration number");
    (value * scale).round() as u64
}

fn connz_rtt(broker: &Broker, cid: u64) -> u64 {
    let connz = broker.monitor_json(&format!("/connz?cid={cid}"));
    let rtt = connz["connections"][0]["rtt"]
        .as_str()
        .unwrap_or_else(|| panic!("rtt of {cid} in {connz}"));
    go_duration_nanos(rtt)
}

#[test]
fn a_request_across_a_service_import_tells_the_responder_who_asked() {
    // nats-server 2.9.10 sets `Nats-Request-Info: {"acc":<requester's
    // account>,"rtt":<its RTT in ns>}` on every request crossing a service
    // import: an HMSG for a PUB, the requester's own headers kept (a
    // forged Nats-Request-Info replaced), requests without a reply too. A
    // responder that did not ask for headers gets the plain MSG; the
    // response goes back without the header.
    let broker = Broker::start_with(&["-m", "-1"], Some(CONFIG));
    let mut responder = login_on_shard_with(&broker, 0, "a", "pa", true);
    let mut plain = login_on_shard(&broker, 1, "a", "pa");
    for client in [&mut responder, &mut plain] {
        client.send(b"SUB svc.time 1\r\n");
        assert_eq!(client.ping_pong(), b"");
    }
    // The requester on the other shard than the responder, then the same.
    for shard in [1, 0] {
        let mut requester = login_on_shard_with(&broker, shard, "b", "pb", true);
        requester.send(b"SUB _INBOX.> 9\r\n");
        assert_eq!(requester.ping_pong(), b"");
        let cid = requester.client_id();
        let rtt_before = connz_rtt(&broker, cid);

        requester.send(b"PUB time _INBOX.1 4\r\nnow?\r\n");
        assert_eq!(requester.ping_pong(), b"");
        let (reply, rtt) = read_request(&mut responder, "", b"now?");
        let reply = reply.expect("a reply subject");
        assert!(reply.starts_with("_R_."), "{reply}");
        // The requester's RTT, as /connz shows it (at µs precision, which
        // nats-server's /connz keeps), measured before or after.
        let rtt_after = connz_rtt(&broker, cid);
        assert!(rtt > 0);
        assert!(
            [rtt_before, rtt_after]
                .iter()
                .any(|connz| connz / 1_000 == rtt / 1_000),
            "header {rtt} ns, /connz {rtt_before} then {rtt_after} ns"
        );
        let line = plain.read_line();
        assert!(line.starts_with("MSG svc.time 1 _R_."), "{line:?}");
        assert!(line.ends_with(" 4\r\n"), "{line:?}");
        plain.expect(b"now?\r\n");

        responder.send(format!("PUB {reply} 5\r\nnoon!\r\n").as_bytes());
        assert_eq!(responder.ping_pong(), b"");
        assert_eq!(requester.ping_pong(), b"MSG _INBOX.1 9 5\r\nnoon!\r\n");

        let own = "NATS/1.0\r\nFoo: bar\r\nNats-Request-Info: {\"acc\":\"X\"}\r\n\r\n";
        requester.send(
            format!(
                "HPUB time _INBOX.2 {} {}\r\n{own}now?\r\n",
                own.len(),
                own.len() + 4
            )
            .as_bytes(),
        );
        requester.send(b"PUB time 4\r\nnow?\r\n");
        assert_eq!(requester.ping_pong(), b"");
        let (reply, _) = read_request(&mut responder, "Foo: bar\r\n", b"now?");
        assert!(reply.is_some());
        let (reply, _) = read_request(&mut responder, "", b"now?");
        assert_eq!(reply, None, "a request without a reply has it too");
        for reply in [true, false] {
            let line = plain.read_line();
            assert!(line.starts_with("MSG svc.time 1 "), "{line:?}");
            assert_eq!(line.starts_with("MSG svc.time 1 _R_."), reply, "{line:?}");
            plain.expect(b"now?\r\n");
        }
        assert_eq!(responder.ping_pong(), b"");
        assert_eq!(plain.ping_pong(), b"");
    }
}

#[test]
fn a_request_across_a_chain_of_service_imports_names_its_requester_and_the_last_importer() {
    // C imports B's service, which B imports from A: nats-server 2.9.10
    // keeps the requester's account and RTT and adds `svc`, the account the
    // request crossed the last import from, replacing the first header.
    let broker = Broker::with_config(
        r#"
accounts {
  A: { users: [{user: a, password: pa}], exports: [{service: "svc.time"}] }
  B: {
    users: [{user: b, password: pb}]
    imports: [{service: {account: A, subject: "svc.time"}}]
    exports: [{service: "svc.time"}]
  }
  C: { users: [{user: c, password: pc}], imports: [{service: {account: B, subject: "svc.time"}}] }
}
"#,
    );
    let mut responder = login_on_shard_with(&broker, 0, "a", "pa", true);
    responder.send(b"SUB svc.time 1\r\n");
    assert_eq!(responder.ping_pong(), b"");
    for shard in [1, 0] {
        let mut requester = login_on_shard_with(&broker, shard, "c", "pc", true);
        requester.send(b"SUB _INBOX.> 9\r\n");
        let own = "NATS/1.0\r\nFoo: bar\r\n\r\n";
        requester.send(
            format!(
                "HPUB svc.time _INBOX.1 {} {}\r\n{own}now?\r\n",
                own.len(),
                own.len() + 4
            )
            .as_bytes(),
        );
        assert_eq!(requester.ping_pong(), b"");
        let (reply, rtt) = read_request_of(
            &mut responder,
            "Foo: bar\r\n",
            b"now?",
            "\"acc\":\"C\",\"svc\":\"B\"",
        );
        assert!(rtt > 0);
        let reply = reply.expect("a reply subject");
        responder.send(format!("PUB {reply} 5\r\nnoon!\r\n").as_bytes());
        assert_eq!(responder.ping_pong(), b"");
        assert_eq!(requester.ping_pong(), b"MSG _INBOX.1 9 5\r\nnoon!\r\n");
    }
}

/// With `share: true` on the import, nats-server 2.9.10 tells the
/// exporter the requester's connection details too (its `ClientInfo` in
/// full, checked by hand against 2.9.10 with the same config):
/// `{"start":…,"host":…,"id":…,"acc":"B","user":"b","name":"req",
/// "lang":"python","ver":"9.9","rtt":…,"server":"n1","kind":"Client",
/// "client_type":"nats"}`.
#[test]
fn a_shared_service_import_passes_on_the_requester_s_details() {
    let broker = Broker::with_config(
        r#"
server_name: n1
accounts {
  A: { users: [{user: a, password: pa}], exports: [{service: "svc.time"}] }
  B: { users: [{user: b, password: pb}], imports: [{service: {account: A, subject: "svc.time"}, share: true}] }
}
"#,
    );
    let mut responder = login_on_shard_with(&broker, 0, "a", "pa", true);
    responder.send(b"SUB svc.time 1\r\n");
    assert_eq!(responder.ping_pong(), b"");
    for shard in [1, 0] {
        let mut requester = connect_on_shard(
            &broker,
            shard,
            r#"{"verbose":false,"headers":true,"protocol":1,"user":"b","pass":"pb","name":"req","lang":"python","version":"9.9"}"#,
        );
        requester.send(b"PUB svc.time _INBOX.1 4\r\nnow?\r\n");
        assert_eq!(requester.ping_pong(), b"");
        let (fields, payload) = responder.read_msg();
        assert_eq!(&fields[..2], ["HMSG", "svc.time"], "{fields:?}");
        let header_len: usize = fields[fields.len() - 2].parse().expect("header size");
        assert_eq!(&payload[header_len..], b"now?");
        let header = String::from_utf8_lossy(&payload[..header_len]).into_owned();
        let json = header
            .strip_prefix("NATS/1.0\r\nNats-Request-Info: ")
            .and_then(|rest| rest.strip_suffix("\r\n\r\n"))
            .unwrap_or_else(|| panic!("one Nats-Request-Info line in {header:?}"));
        let info: serde_json::Value = serde_json::from_str(json).expect("json");
        let start = info["start"].as_str().expect("start");
        assert!(
            start.len() >= 20 && start.starts_with("20") && start.ends_with('Z'),
            "{start}"
        );
        let rtt = info["rtt"].as_u64().expect("rtt");
        let cid = requester.client_id();
        assert_eq!(
            json,
            format!(
                "{{\"start\":\"{start}\",\"host\":\"127.0.0.1\",\"id\":{cid},\"acc\":\"B\",\"user\":\"b\",\"name\":\"req\",\"lang\":\"python\",\"ver\":\"9.9\",\"rtt\":{rtt},\"server\":\"n1\",\"kind\":\"Client\",\"client_type\":\"nats\"}}"
            )
        );
    }
}
