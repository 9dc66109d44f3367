//! Authentication and permissions as clients see them: async-nats logging
//! in with a token, a user and a (bcrypt) password, and an NKey seed, on
//! both shards; raw sockets for nats-server's exact texts, the nonce and
//! the timeout (tests/reference/security.md).

mod support;

use std::time::Duration;

use async_nats::client::RequestErrorKind;
use async_nats::ConnectOptions;
use futures::StreamExt;
use support::{one_client_per_shard, Broker, RawClient};

const WAIT: Duration = Duration::from_secs(10);

/// The authentication timeout (seconds) of the servers whose logins check
/// a bcrypt hash or an Ed25519 signature: in a debug build on a loaded
/// machine these can take longer than the default 2 s, which cut the
/// login with 'Authentication Timeout' in tests that are not about it.
const LOGIN_TIMEOUT: u32 = 10;

/// A request from one shard is answered by a subscriber on the other.
/// (async-nats's `flush` sends no PING, so the request is retried while
/// the server answers "no responders": the subscription is then known on
/// the requester's shard.)
async fn round_trip(clients: &[async_nats::Client]) {
    let mut sub = clients[1].subscribe("auth.echo").await.expect("subscribe");
    let responder = clients[1].clone();
    let answering = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                responder.publish(reply, msg.payload).await.expect("reply");
                responder.flush().await.expect("flush");
            }
        }
    });
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            match clients[0].request("auth.echo", "hello".into()).await {
                Ok(answer) => break answer,
                Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                    tokio::task::yield_now().await
                }
                Err(e) => panic!("request failed: {e}"),
            }
        }
    })
    .await
    .expect("an answer in time");
    assert_eq!(&answer.payload[..], b"hello");
    answering.abort();
}

async fn refused(broker: &Broker, options: ConnectOptions) {
    let result = tokio::time::timeout(WAIT, options.connect(format!("nats://{}", broker.addr)))
        .await
        .expect("answer in time");
    assert!(result.is_err(), "login should have been refused");
}

fn refused_raw(broker: &Broker, connect: &str) {
    let mut client = RawClient::connect(broker.addr);
    client.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes());
    client.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
}

#[tokio::test]
async fn a_token_from_the_command_line() {
    let broker = Broker::start_with(&["--auth", "s3cret"], None);
    let raw = RawClient::connect(broker.addr);
    assert_eq!(raw.info_json()["auth_required"], true);
    assert!(raw.info_json().get("nonce").is_none());
    let clients =
        one_client_per_shard(&broker, || ConnectOptions::with_token("s3cret".into())).await;
    round_trip(&clients).await;
    refused(&broker, ConnectOptions::with_token("s3cre".into())).await;
    refused_raw(&broker, r#"{"verbose":false,"auth_token":"wrong"}"#);
    refused_raw(&broker, r#"{"verbose":false}"#);
}

#[tokio::test]
async fn users_with_plain_and_bcrypt_passwords_from_a_config_file() {
    let hash = bcrypt::hash("hashed pw", 4).expect("bcrypt");
    let config = format!(
        "authorization {{\n  timeout: {LOGIN_TIMEOUT}\n  users: [\n    {{user: alice, password: \"plain pw\"}}\n    {{user: bob, password: \"{hash}\"}}\n  ]\n}}\n"
    );
    let broker = Broker::with_config(&config);
    let alice = one_client_per_shard(&broker, || {
        ConnectOptions::with_user_and_password("alice".into(), "plain pw".into())
    })
    .await;
    eprintln!("alice logged in");
    round_trip(&alice).await;
    eprintln!("alice round trip");
    let bob = one_client_per_shard(&broker, || {
        ConnectOptions::with_user_and_password("bob".into(), "hashed pw".into())
    })
    .await;
    round_trip(&bob).await;
    refused(
        &broker,
        ConnectOptions::with_user_and_password("bob".into(), "plain pw".into()),
    )
    .await;
    refused_raw(&broker, r#"{"user":"carol","pass":"plain pw"}"#);
    refused_raw(&broker, r#"{"user":"bob","pass":"wrong"}"#);
}

#[tokio::test]
async fn an_nkey_user_signs_a_fresh_nonce() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().expect("seed");
    let config = format!(
        "authorization {{ timeout: {LOGIN_TIMEOUT}, users: [ {{nkey: {}}} ] }}\n",
        user.public_key()
    );
    let broker = Broker::with_config(&config);
    let first = RawClient::connect(broker.addr);
    let second = RawClient::connect(broker.addr);
    let nonce = |c: &RawClient| c.info_json()["nonce"].as_str().expect("nonce").to_string();
    assert_eq!(nonce(&first).len(), 15);
    assert_ne!(nonce(&first), nonce(&second));
    let clients = one_client_per_shard(&broker, || ConnectOptions::with_nkey(seed.clone())).await;
    round_trip(&clients).await;
    let stranger = nkeys::KeyPair::new_user().seed().expect("seed");
    refused(&broker, ConnectOptions::with_nkey(stranger)).await;
    refused_raw(&broker, &format!(r#"{{"nkey":"{}"}}"#, user.public_key()));
}

#[test]
fn nothing_but_connect_before_logging_in_and_a_timeout_for_the_silent() {
    let broker = Broker::with_config("authorization { token: t, timeout: 0.3 }\n");
    let mut early = RawClient::connect(broker.addr);
    early.send(b"SUB foo 1\r\n");
    early.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
    let mut silent = RawClient::connect(broker.addr);
    silent.expect_closed_after(b"-ERR 'Authentication Timeout'\r\n");
}

#[test]
fn permissions_answer_violations_and_keep_the_connection() {
    let broker = Broker::with_config(
        r#"
authorization {
  users: [
    { user: limited, password: pw, permissions: {
        publish: { deny: "secret.>" }
        subscribe: { allow: ["foo.*", "jobs.* workers"] }
    } }
    { user: admin, password: pw }
  ]
}
"#,
    );
    let mut admin = RawClient::connect(broker.addr);
    admin.send(
        b"CONNECT {\"verbose\":false,\"user\":\"admin\",\"pass\":\"pw\"}\r\nSUB > 1\r\nPING\r\n",
    );
    admin.expect(b"PONG\r\n");
    let mut limited = RawClient::connect(broker.addr);
    limited.send(b"CONNECT {\"verbose\":false,\"user\":\"limited\",\"pass\":\"pw\"}\r\n");
    limited.send(b"PUB secret.plans 1\r\nx\r\nSUB bar 1\r\nSUB jobs.a other 2\r\nSUB jobs.a workers 3\r\nPUB foo.ok 1\r\ny\r\nPING\r\n");
    limited.expect(
        b"-ERR 'Permissions Violation for Publish to \"secret.plans\"'\r\n\
          -ERR 'Permissions Violation for Subscription to \"bar\"'\r\n\
          -ERR 'Permissions Violation for Subscription to \"jobs.a\" using queue \"other\"'\r\n\
          PONG\r\n",
    );
    admin.send(b"PING\r\n");
    admin.expect(b"MSG foo.ok 1 1\r\ny\r\nPONG\r\n");
}

#[test]
fn secrets_stay_out_of_the_trace() {
    let broker = Broker::start_with(&["--auth", "tok3n-value", "-DV"], None);
    let mut client = RawClient::connect(broker.addr);
    client.send(
        b"CONNECT {\"verbose\":false,\"auth_token\":\"tok3n-value\",\"pass\":\"pa55\"}\r\nPING\r\n",
    );
    client.expect(b"PONG\r\n");
    let line = broker
        .wait_log("CONNECT {", WAIT)
        .expect("the CONNECT is traced");
    assert!(line.contains("[REDACTED]"), "{line}");
    assert!(
        !line.contains("tok3n-value") && !line.contains("pa55"),
        "{line}"
    );
}

/// SIGHUP re-reads the file: a user whose password changed is cut off with
/// the violation, a user whose permissions shrank keeps its connection but
/// loses the subscription they no longer allow, and new logins use the
/// new file. A file with an error keeps the running configuration.
#[test]
fn a_reload_applies_new_users_and_permissions_to_live_connections() {
    let before = "authorization {\n  users: [\n    {user: kept, password: pw}\n    {user: changed, password: old}\n  ]\n}\n";
    let broker = Broker::with_config(before);
    let login = |user: &str, pass: &str| {
        let mut client = RawClient::connect(broker.addr);
        client.send(
            format!(
                "CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\nPING\r\n"
            )
            .as_bytes(),
        );
        client.expect(b"PONG\r\n");
        client
    };
    // Connections 1 and 3 share shard 0: the cut of the first tells when
    // that shard has applied the reload.
    let mut changed = login("changed", "old");
    let _other_shard = login("kept", "pw");
    let mut kept = login("kept", "pw");
    kept.send(b"SUB secret.x 7\r\nSUB open.x 8\r\nPING\r\n");
    kept.expect(b"PONG\r\n");

    let path = broker.config_path().expect("config file").to_path_buf();
    std::fs::write(&path, "authorization {\n  users: [\n    {user: kept, password: pw, permissions: {subscribe: {deny: \"secret.>\"}}}\n    {user: changed, password: new}\n  ]\n}\n").expect("rewrite config");
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", WAIT)
        .expect("reload logged");
    changed.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
    kept.send(b"PING\r\n");
    kept.expect(
        b"-ERR 'Permissions Violation for Subscription to \"secret.x\" (sid \"7\")'\r\nPONG\r\n",
    );
    let mut publisher = login("changed", "new");
    publisher.send(b"PUB secret.x 1\r\nx\r\nPUB open.x 1\r\ny\r\nPING\r\n");
    publisher.expect(b"PONG\r\n");
    kept.send(b"PING\r\n");
    kept.expect(b"MSG open.x 8 1\r\ny\r\nPONG\r\n");

    let failed = broker.reload_refused(
        "authorization { users: [\n {user: kept, password: pw}\n {user: kept, password: x}\n] }\n",
        WAIT,
    );
    assert!(failed.contains("Duplicate user"), "{failed}");
    // The running configuration stays: the new password still works.
    let _still = login("changed", "new");
}

/// A raw client logged in with `connect` (a CONNECT's JSON, verbose off)
/// on `shard` of the 2-shard `broker`: connections are opened until one
/// lands there.
fn login_on_shard(broker: &Broker, shard: usize, connect: &str) -> RawClient {
    for _ in 0..broker.shards * 2 {
        let mut client = RawClient::connect(broker.addr);
        if client.shard(broker.shards) != shard {
            continue;
        }
        client.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes());
        client.expect(b"PONG\r\n");
        return client;
    }
    panic!("no client landed on shard {shard}");
}

/// nats-server's queue rules: where queue rules match the subject, they
/// alone decide a queue subscription. Allow `["jobs", "jobs workers"]`
/// lets a plain subscription in but only queue `workers`; deny `["tasks",
/// "tasks q1"]` refuses plain and `q1`, yet lets `q2` in. Queue group
/// `_sys_` is refused to everyone, permissions or not.
#[test]
fn queue_rules_decide_queue_subscriptions_as_nats_server_does() {
    let broker = Broker::with_config(
        r#"
authorization {
  users: [
    { user: q, password: pw, permissions: {
        subscribe: { allow: ["jobs", "jobs workers", "tasks"], deny: ["tasks", "tasks q1"] }
    } }
    { user: free, password: pw }
  ]
}
"#,
    );
    let mut q = login_on_shard(&broker, 0, r#"{"verbose":false,"user":"q","pass":"pw"}"#);
    support::session(
        &mut q,
        b"SUB jobs 1\r\nSUB jobs workers 2\r\nSUB jobs others 3\r\n\
          SUB tasks 4\r\nSUB tasks q1 5\r\nSUB tasks q2 6\r\n",
        b"-ERR 'Permissions Violation for Subscription to \"jobs\" using queue \"others\"'\r\n\
          -ERR 'Permissions Violation for Subscription to \"tasks\"'\r\n\
          -ERR 'Permissions Violation for Subscription to \"tasks\" using queue \"q1\"'\r\n",
    );
    // The allowed ones are live: a publisher on the other shard reaches
    // sids 1, 2 and 6.
    let mut free = login_on_shard(&broker, 1, r#"{"verbose":false,"user":"free","pass":"pw"}"#);
    support::session(
        &mut free,
        b"PUB jobs 1\r\nj\r\nPUB tasks 1\r\nt\r\nSUB x _sys_ 9\r\n",
        b"-ERR 'Permissions Violation for Subscription to \"x\" using queue \"_sys_\"'\r\n",
    );
    support::session(
        &mut q,
        b"",
        b"MSG jobs 1 1\r\nj\r\nMSG jobs 2 1\r\nj\r\nMSG tasks 6 1\r\nt\r\n",
    );
}

/// Subscribe deny rules filter deliveries once a wildcard subscription
/// covers one of them (nats-server loads its filter then, for all the
/// connection's subscriptions); a wildcard that only overlaps a rule
/// (`*.bar` against `foo.*`) does not turn it on. A rule with a queue
/// turns it on like any other, but never filters a delivery itself.
#[test]
fn deny_rules_filter_deliveries_once_a_wildcard_covers_them() {
    let broker = Broker::with_config(
        r#"
authorization {
  users: [
    { user: sub, password: pw, permissions: { subscribe: { deny: ["foo.*", "jobs.x q1"] } } }
    { user: pub, password: pw }
  ]
}
"#,
    );
    let mut sub = login_on_shard(&broker, 0, r#"{"verbose":false,"user":"sub","pass":"pw"}"#);
    let mut publisher = login_on_shard(&broker, 1, r#"{"verbose":false,"user":"pub","pass":"pw"}"#);
    support::session(&mut sub, b"SUB *.bar 1\r\n", b"");
    support::session(&mut publisher, b"PUB foo.bar 1\r\na\r\n", b"");
    support::session(&mut sub, b"", b"MSG foo.bar 1 1\r\na\r\n");
    // `jobs.*` covers the rule `jobs.x q1`: the filter is on from now on.
    support::session(&mut sub, b"SUB jobs.* q1 2\r\n", b"");
    support::session(
        &mut publisher,
        b"PUB foo.bar 1\r\nb\r\nPUB jobs.x 1\r\nj\r\nPUB x.bar 1\r\nc\r\n",
        b"",
    );
    support::session(
        &mut sub,
        b"",
        b"MSG jobs.x 2 1\r\nj\r\nMSG x.bar 1 1\r\nc\r\n",
    );
}

/// Every CONNECT is checked, as by nats-server: a later one with a wrong
/// token closes the connection with the violation; one without
/// credentials keeps those of the earlier (it is decoded over them).
#[test]
fn a_later_connect_is_authenticated_again() {
    let broker = Broker::with_config("authorization { token: s3cret }\n");
    let mut client = RawClient::connect(broker.addr);
    client.send(b"CONNECT {\"verbose\":true,\"auth_token\":\"s3cret\"}\r\n");
    client.expect(b"+OK\r\n");
    support::session(&mut client, b"CONNECT {\"verbose\":true}\r\n", b"+OK\r\n");
    client.send(b"CONNECT {\"auth_token\":\"wrong\"}\r\nPING\r\n");
    client.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
}

/// Before CONNECT, nats-server judges an op by its first byte: anything
/// but `C`/`c` (an unknown op, a stray CRLF, the start of a PUB) is an
/// Authorization Violation, not a parse error.
#[test]
fn any_first_byte_but_connect_is_an_authorization_violation() {
    let broker = Broker::with_config("authorization { token: s3cret }\n");
    for early in [&b"XYZ\r\n"[..], b"\r\n", b"PU"] {
        let mut client = RawClient::connect(broker.addr);
        client.send(early);
        client.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
    }
}

/// The publish permissions are checked before the reserved reply prefixes
/// (nats-server's order), so a denied subject is reported as such.
#[test]
fn a_denied_publish_is_reported_before_a_reserved_reply() {
    let broker = Broker::with_config(
        "authorization { users: [ { user: u, password: pw, permissions: { publish: { deny: \"no.>\" } } } ] }\n",
    );
    let mut client = login_on_shard(&broker, 0, r#"{"verbose":false,"user":"u","pass":"pw"}"#);
    support::session(
        &mut client,
        b"PUB no.x _R_.abc 1\r\nx\r\nPUB ok _R_.abc 1\r\nx\r\n",
        b"-ERR 'Permissions Violation for Publish to \"no.x\"'\r\n\
          -ERR 'Permissions Violation for Publish with Reply of \"_R_.abc\"'\r\n",
    );
}

/// `no_auth_user` takes a client that names no user, password or token,
/// even if it sends an nkey where no nkeys are configured (nats-server
/// looks at the nkey only when it has nkey users).
#[test]
fn an_nkey_where_none_are_configured_still_gets_the_no_auth_user() {
    let broker = Broker::with_config(
        "authorization { users: [ { user: guest, password: pw, permissions: { publish: \"open\" } } ] }\nno_auth_user: guest\n",
    );
    let key = nkeys::KeyPair::new_user().public_key();
    let mut client = RawClient::connect(broker.addr);
    support::session(
        &mut client,
        format!("CONNECT {{\"verbose\":false,\"nkey\":\"{key}\"}}\r\nPUB closed 1\r\nx\r\n")
            .as_bytes(),
        b"-ERR 'Permissions Violation for Publish to \"closed\"'\r\n",
    );
}

/// nats-server checks the credentials before anything else a CONNECT
/// says: a bad token or password with `protocol: 2`, `no_responders`
/// without headers, or an `account` key is an Authorization Violation;
/// with good credentials, the CONNECT's own refusal. Both the inline
/// check (a token) and the one finished off the shard (bcrypt) keep that
/// order.
#[test]
fn credentials_are_checked_before_the_rest_of_connect() {
    let hash = bcrypt::hash("pw", 4).expect("bcrypt");
    let broker = Broker::with_config(&format!(
        "authorization {{ timeout: {LOGIN_TIMEOUT}, users: [ {{user: t, password: plain}}, {{user: b, password: \"{hash}\"}} ] }}\n"
    ));
    let refused_with = |connect: &str, err: &[u8]| {
        let mut client = RawClient::connect(broker.addr);
        client.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes());
        client.expect_closed_after(err);
    };
    let protocol = &b"-ERR 'invalid client protocol'\r\n"[..];
    let violation = &b"-ERR 'Authorization Violation'\r\n"[..];
    let no_headers = &b"-ERR 'no responders requires headers support'\r\n"[..];
    refused_with(r#"{"protocol":2,"user":"t","pass":"bad"}"#, violation);
    refused_with(r#"{"protocol":2,"user":"b","pass":"bad"}"#, violation);
    refused_with(
        r#"{"no_responders":true,"user":"b","pass":"bad"}"#,
        violation,
    );
    refused_with(r#"{"protocol":2,"user":"t","pass":"plain"}"#, protocol);
    refused_with(r#"{"protocol":2,"user":"b","pass":"pw"}"#, protocol);
    refused_with(
        r#"{"no_responders":true,"user":"b","pass":"pw"}"#,
        no_headers,
    );
    refused_with(
        r#"{"account":"A","protocol":2,"user":"b","pass":"pw"}"#,
        violation,
    );
    // Without authentication the CONNECT's own refusal comes at once.
    let open = Broker::start_with(&[], None);
    let mut client = RawClient::connect(open.addr);
    client.send(b"CONNECT {\"protocol\":2}\r\nPING\r\n");
    client.expect_closed_after(protocol);
}
