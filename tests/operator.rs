//! Operator mode as clients see it: an operator, accounts and users
//! minted here with `nkeys` (what `nsc` would write), a server trusting the
//! operator (`resolver: MEMORY` with `resolver_preload`, or the `full`
//! directory resolver), async-nats logging in with `.creds` on both
//! shards, and raw sockets for nats-server's exact texts.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::client::RequestErrorKind;
use async_nats::ConnectOptions;
use data_encoding::BASE64URL_NOPAD;
use futures::StreamExt;
use nkeys::KeyPair;
use percore_core::jwt::mint::{mint_issued_at, mint_v1_issued_at, unlimited};
use serde_json::{json, Value};
use support::interest::ShardProbes;
use support::{check_config, one_client_per_shard, Broker, RawClient};

const SHARDS: u64 = 2;
const WAIT: Duration = Duration::from_secs(10);

/// The servers' authentication timeout. Under a loaded machine a debug
/// build's Ed25519 checks (a user JWT, the nonce's signature, an account
/// JWT) can take longer than the default 2 s, which cut such logins with
/// 'Authentication Timeout' and failed tests that are not about it. In
/// operator mode nats-server 2.9 takes an `authorization` block that holds
/// only a timeout.
const LOGIN_TIMEOUT: &str = "authorization { timeout: 10 }\n";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A v2 token of `kind` about `subject`, signed by `issuer`, issued a few
/// seconds ago (the running server checks it against the real clock).
fn mint(kind: &str, subject: &str, issuer: &KeyPair, top: Value, nats: Value) -> String {
    mint_issued_at(kind, subject, issuer, now() - 5, top, nats)
}

fn user_limits(extra: Value) -> Value {
    let mut nats = json!({"subs": -1, "data": -1, "payload": -1});
    if let (Some(n), Value::Object(extra)) = (nats.as_object_mut(), extra) {
        n.extend(extra);
    }
    nats
}

struct Operator {
    key: KeyPair,
    jwt: String,
}

fn operator() -> Operator {
    let key = KeyPair::new_operator();
    let jwt = mint(
        "operator",
        &key.public_key(),
        &key,
        json!({"name": "O"}),
        json!({}),
    );
    Operator { key, jwt }
}

struct AccountKeys {
    key: KeyPair,
    jwt: String,
}

fn account(op: &Operator, nats: Value) -> AccountKeys {
    let key = KeyPair::new_account();
    let jwt = mint(
        "account",
        &key.public_key(),
        &op.key,
        json!({"name": "A"}),
        nats,
    );
    AccountKeys { key, jwt }
}

struct User {
    key: KeyPair,
    jwt: String,
}

fn user(account: &AccountKeys, top: Value, nats: Value) -> User {
    let key = KeyPair::new_user();
    let jwt = mint("user", &key.public_key(), &account.key, top, nats);
    User { key, jwt }
}

fn creds(user: &User) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.jwt,
        user.key.seed().expect("seed")
    )
}

fn memory_config(op: &Operator, accounts: &[&AccountKeys]) -> String {
    let preload: Vec<String> = accounts
        .iter()
        .map(|a| format!("  {}: \"{}\"", a.key.public_key(), a.jwt))
        .collect();
    format!(
        "operator: \"{}\"\nresolver: MEMORY\nresolver_preload: {{\n{}\n}}\n{LOGIN_TIMEOUT}",
        op.jwt,
        preload.join("\n")
    )
}

/// CONNECT for `user` answering the INFO nonce of `client`.
fn connect_line(client: &RawClient, user: &User) -> Vec<u8> {
    let nonce = client.info_json()["nonce"]
        .as_str()
        .expect("nonce")
        .to_string();
    let sig = BASE64URL_NOPAD.encode(&user.key.sign(nonce.as_bytes()).expect("sign"));
    format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\"jwt\":\"{}\",\"sig\":\"{}\"}}\r\n",
        user.jwt, sig
    )
    .into_bytes()
}

fn raw_login(broker: &Broker, user: &User) -> RawClient {
    let mut client = broker.raw();
    let line = connect_line(&client, user);
    client.send(&line);
    client.send(b"PING\r\n");
    client.expect(b"PONG\r\n");
    client
}

async fn creds_clients(broker: &Broker, user: &User) -> Vec<async_nats::Client> {
    one_client_per_shard(broker, || {
        ConnectOptions::with_credentials(&creds(user)).expect("creds")
    })
    .await
}

/// A request from `from` answered by a subscriber on `to` (retried while
/// the subscription is not yet known on the requester's shard).
async fn round_trip(from: &async_nats::Client, to: &async_nats::Client, subject: &str) {
    let mut sub = to.subscribe(subject.to_string()).await.expect("subscribe");
    let responder = to.clone();
    let answering = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                responder.publish(reply, msg.payload).await.expect("reply");
                responder.flush().await.expect("flush");
            }
        }
    });
    let subject = subject.to_string();
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            match from.request(subject.clone(), "hello".into()).await {
                Ok(answer) => break answer,
                Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                    tokio::task::yield_now().await
                }
                Err(e) => panic!("request failed: {e}"),
            }
        }
    })
    .await
    .expect("answered in time");
    assert_eq!(&answer.payload[..], b"hello");
    answering.abort();
}

fn expect_auth_violation(client: &mut RawClient) {
    client.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
}

#[tokio::test]
async fn creds_users_log_in_on_both_shards_and_talk() {
    let op = operator();
    let acc = account(&op, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let alice = user(&acc, json!({"name": "alice"}), user_limits(json!({})));
    let info = broker.raw().info_json();
    assert_eq!(info["auth_required"], json!(true));
    assert_eq!(info["nonce"].as_str().map(str::len), Some(15));
    let clients = creds_clients(&broker, &alice).await;
    round_trip(&clients[0], &clients[1], "op.echo").await;
    round_trip(&clients[1], &clients[0], "op.echo2").await;
}

/// Version 1 tokens (the type at the top level, signed over the payload
/// alone), as nats.py's test suite still ships them in its
/// `resolver_preload.conf` and `.creds`: nats-server 2.9 reads them, so a
/// v1 operator, account and user must load and log in, the user without
/// limits. percore refused the preload ('invalid account JWT') before.
#[tokio::test]
async fn version_1_operator_account_and_user_tokens_log_in() {
    let iat = now() - 5;
    let op_key = KeyPair::new_operator();
    let op = Operator {
        jwt: mint_v1_issued_at("operator", &op_key.public_key(), &op_key, iat, json!(null)),
        key: op_key,
    };
    let acc_key = KeyPair::new_account();
    let acc = AccountKeys {
        jwt: mint_v1_issued_at(
            "account",
            &acc_key.public_key(),
            &op.key,
            iat,
            json!({"limits": {"subs": -1, "conn": -1, "imports": -1, "exports": -1,
                              "data": -1, "payload": -1, "wildcards": true}}),
        ),
        key: acc_key,
    };
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let user_key = KeyPair::new_user();
    let carol = User {
        jwt: mint_v1_issued_at(
            "user",
            &user_key.public_key(),
            &acc.key,
            iat,
            json!({"pub": {}, "sub": {}}),
        ),
        key: user_key,
    };
    let clients = creds_clients(&broker, &carol).await;
    round_trip(&clients[0], &clients[1], "v1.echo").await;
    round_trip(&clients[1], &clients[0], "v1.echo2").await;
    // A v1 user signed by another account's key is still refused.
    let stranger = KeyPair::new_account();
    let forged = User {
        jwt: mint_v1_issued_at("user", &carol.key.public_key(), &stranger, iat, json!({})),
        key: KeyPair::from_seed(&carol.key.seed().expect("seed")).expect("seed"),
    };
    let mut client = broker.raw();
    let line = connect_line(&client, &forged);
    client.send(&line);
    expect_auth_violation(&mut client);
}

#[tokio::test]
async fn with_jwt_callback_and_reconnect_keep_working() {
    let op = operator();
    let acc = account(&op, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let bob = user(&acc, json!({}), user_limits(json!({})));
    let seed = bob.key.seed().expect("seed");
    let key = std::sync::Arc::new(KeyPair::from_seed(&seed).expect("seed"));
    let options = ConnectOptions::with_jwt(bob.jwt.clone(), move |nonce| {
        let key = key.clone();
        async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
    });
    let a = tokio::time::timeout(WAIT, options.connect(format!("nats://{}", broker.addr)))
        .await
        .expect("in time")
        .expect("accepted");
    let b = creds_clients(&broker, &bob).await;
    round_trip(&a, &b[0], "cb.echo").await;
}

#[test]
fn missing_jwt_bad_signature_and_unknown_accounts_are_violations() {
    let op = operator();
    let acc = account(&op, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    // No JWT at all.
    let mut client = broker.raw();
    client.send(b"CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"b\"}\r\nPING\r\n");
    expect_auth_violation(&mut client);
    // The nonce signed by another key.
    let carol = user(&acc, json!({}), user_limits(json!({})));
    let impostor = User {
        key: KeyPair::new_user(),
        jwt: carol.jwt.clone(),
    };
    let mut client = broker.raw();
    let line = connect_line(&client, &impostor);
    client.send(&line);
    expect_auth_violation(&mut client);
    // A user of an account the server does not know.
    let other = account(&op, json!({"limits": unlimited()}));
    let stranger = user(&other, json!({}), user_limits(json!({})));
    let mut client = broker.raw();
    let line = connect_line(&client, &stranger);
    client.send(&line);
    expect_auth_violation(&mut client);
    // An account signed by an operator the server does not trust.
    let rogue = operator();
    let rogue_acc = account(&rogue, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&format!(
        "operator: \"{}\"\nresolver: MEMORY\nresolver_preload: {{ {}: \"{}\" }}\n{LOGIN_TIMEOUT}",
        op.jwt,
        rogue_acc.key.public_key(),
        rogue_acc.jwt
    ));
    let rogue_user = user(&rogue_acc, json!({}), user_limits(json!({})));
    let mut client = broker.raw();
    let line = connect_line(&client, &rogue_user);
    client.send(&line);
    expect_auth_violation(&mut client);
}

#[test]
fn bearer_tokens_need_no_signature() {
    let op = operator();
    let acc = account(&op, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let bearer = user(&acc, json!({}), user_limits(json!({"bearer_token": true})));
    let mut client = broker.raw();
    client.send(
        format!(
            "CONNECT {{\"verbose\":false,\"jwt\":\"{}\"}}\r\nPING\r\n",
            bearer.jwt
        )
        .as_bytes(),
    );
    client.expect(b"PONG\r\n");
    let plain = user(&acc, json!({}), user_limits(json!({})));
    let mut client = broker.raw();
    client.send(
        format!(
            "CONNECT {{\"verbose\":false,\"jwt\":\"{}\"}}\r\nPING\r\n",
            plain.jwt
        )
        .as_bytes(),
    );
    expect_auth_violation(&mut client);
}

#[test]
fn user_permissions_from_the_jwt() {
    let op = operator();
    let acc = account(&op, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let limited = user(
        &acc,
        json!({}),
        user_limits(json!({
            "pub": {"allow": ["orders.>"], "deny": ["orders.secret"]},
            "sub": {"deny": ["private.>"]}
        })),
    );
    for _ in 0..SHARDS {
        let mut client = raw_login(&broker, &limited);
        client.send(b"PUB orders.new 1\r\nx\r\nPUB orders.secret 1\r\nx\r\nPUB other 1\r\nx\r\nSUB private.x 1\r\nSUB public.x 2\r\nPING\r\n");
        let got = String::from_utf8(client.read_until_pong()).expect("utf8");
        assert_eq!(
            got,
            "-ERR 'Permissions Violation for Publish to \"orders.secret\"'\r\n\
             -ERR 'Permissions Violation for Publish to \"other\"'\r\n\
             -ERR 'Permissions Violation for Subscription to \"private.x\"'\r\n"
        );
    }
}

#[test]
fn the_account_jwts_mappings_rename_what_its_clients_publish() {
    let op = operator();
    let acc = account(
        &op,
        json!({"limits": unlimited(), "mappings": {
            "foo": [{"subject": "bar"}],
            "a.*.*": [{"subject": "b.$2.$1", "weight": 100}],
            "z": [{"subject": "z1", "weight": 0}]
        }}),
    );
    // nats-server refuses such an account (a wildcard destination): its
    // users cannot log in.
    let bad = account(
        &op,
        json!({"limits": unlimited(), "mappings": {"x": [{"subject": "y.>"}]}}),
    );
    let broker = Broker::with_config(&memory_config(&op, &[&acc, &bad]));
    let member = user(&acc, json!({}), user_limits(json!({})));
    // Consecutive connections land on both shards.
    let mut watcher = raw_login(&broker, &member);
    watcher.send(b"SUB > 1\r\n");
    assert_eq!(watcher.ping_pong(), b"");
    let mut publisher = raw_login(&broker, &member);
    publisher.send(b"PUB foo 0\r\n\r\nPUB a.x.y 0\r\n\r\nPUB z 0\r\n\r\n");
    assert_eq!(publisher.ping_pong(), b"");
    assert_eq!(
        watcher.ping_pong(),
        b"MSG bar 1 0\r\n\r\nMSG b.y.x 1 0\r\n\r\nMSG z1 1 0\r\n\r\n",
        "a weight of 0 in a JWT is 100%"
    );
    let mut refused = broker.raw();
    let line = connect_line(&refused, &user(&bad, json!({}), user_limits(json!({}))));
    refused.send(&line);
    expect_auth_violation(&mut refused);
    // Top-level mappings configure an account: refused in operator mode.
    let (code, stderr) = check_config(
        "op",
        &format!("{}mappings {{ foo: bar }}\n", memory_config(&op, &[&acc])),
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("operators do not allow Accounts to be configured directly"),
        "{stderr}"
    );
}

#[test]
fn account_connection_limit_across_shards() {
    let op = operator();
    let mut limits = unlimited();
    limits["conn"] = json!(1);
    let acc = account(&op, json!({ "limits": limits }));
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let dave = user(&acc, json!({}), user_limits(json!({})));
    let first = raw_login(&broker, &dave);
    let mut second = broker.raw();
    assert_ne!(
        first.shard(2),
        second.shard(2),
        "the two are on different shards"
    );
    let line = connect_line(&second, &dave);
    second.send(&line);
    second.expect_closed_after(b"-ERR 'maximum account active connections exceeded'\r\n");
}

#[test]
fn user_payload_and_subscription_limits() {
    let op = operator();
    let acc = account(&op, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let small = user(
        &acc,
        json!({}),
        json!({"subs": 1, "data": -1, "payload": 4}),
    );
    let mut client = raw_login(&broker, &small);
    // After its first PONG a protocol-1 client is told its own limit, as
    // nats-server sends an INFO whose max_payload is the user's (c.mpay).
    let info = client.read_line();
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.contains("\"max_payload\":4,"), "{info}");
    client.send(b"SUB a 1\r\nSUB b 2\r\nPING\r\n");
    let got = String::from_utf8(client.read_until_pong()).expect("utf8");
    assert_eq!(got, "-ERR 'maximum subscriptions exceeded'\r\n");
    client.send(b"PUB a 5\r\nhello\r\n");
    client.expect_closed_after(b"-ERR 'Maximum Payload Violation'\r\n");
}

#[test]
fn a_user_whose_jwt_expires_while_connected_is_cut() {
    let op = operator();
    let acc = account(&op, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let expired = user(&acc, json!({"exp": now() - 1}), user_limits(json!({})));
    let mut client = broker.raw();
    let line = connect_line(&client, &expired);
    client.send(&line);
    expect_auth_violation(&mut client);
    let brief = user(&acc, json!({"exp": now() + 2}), user_limits(json!({})));
    let mut client = raw_login(&broker, &brief);
    let started = Instant::now();
    // Reads block until the server speaks: no sleep.
    let line = client.read_line();
    assert_eq!(line, "-ERR 'User Authentication Expired'\r\n");
    client.expect_closed_after(b"");
    assert!(started.elapsed() < WAIT);
}

#[test]
fn revoked_users_and_src_restrictions_are_refused() {
    let op = operator();
    let revoked_user = KeyPair::new_user();
    let acc = account(
        &op,
        json!({"limits": unlimited(), "revocations": {revoked_user.public_key(): now()}}),
    );
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let jwt = mint(
        "user",
        &revoked_user.public_key(),
        &acc.key,
        json!({}),
        user_limits(json!({})),
    );
    let revoked = User {
        key: revoked_user,
        jwt,
    };
    let mut client = broker.raw();
    let line = connect_line(&client, &revoked);
    client.send(&line);
    expect_auth_violation(&mut client);
    let elsewhere = user(&acc, json!({}), user_limits(json!({"src": ["10.0.0.0/8"]})));
    let mut client = broker.raw();
    let line = connect_line(&client, &elsewhere);
    client.send(&line);
    expect_auth_violation(&mut client);
    assert!(broker.wait_log("Bad src Ip 127.0.0.1", WAIT).is_some());
    let local = user(&acc, json!({}), user_limits(json!({"src": "127.0.0.0/8"})));
    raw_login(&broker, &local);
}

#[test]
fn scoped_signing_keys_give_their_template() {
    let op = operator();
    let scoped = KeyPair::new_account();
    let acc = account(
        &op,
        json!({"limits": unlimited(), "signing_keys": [{
            "kind": "user_scope", "key": scoped.public_key(), "role": "r",
            "template": {"pub": {"allow": ["{{name()}}.>"]}, "subs": -1, "payload": -1}
        }]}),
    );
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let key = KeyPair::new_user();
    let jwt = mint(
        "user",
        &key.public_key(),
        &scoped,
        json!({"name": "erin"}),
        json!({"issuer_account": acc.key.public_key()}),
    );
    let erin = User { key, jwt };
    let mut client = raw_login(&broker, &erin);
    client.send(b"PUB erin.x 1\r\nx\r\nPUB frank.x 1\r\nx\r\nPING\r\n");
    let got = String::from_utf8(client.read_until_pong()).expect("utf8");
    assert_eq!(
        got,
        "-ERR 'Permissions Violation for Publish to \"frank.x\"'\r\n"
    );
}

#[tokio::test]
async fn private_service_export_with_an_activation_token() {
    let op = operator();
    let exporter_key = KeyPair::new_account();
    let importer_key = KeyPair::new_account();
    let exporter = AccountKeys {
        jwt: mint(
            "account",
            &exporter_key.public_key(),
            &op.key,
            json!({}),
            json!({"limits": unlimited(), "exports": [
                {"subject": "svc.>", "type": "service", "token_req": true}]}),
        ),
        key: exporter_key,
    };
    let token = mint(
        "activation",
        &importer_key.public_key(),
        &exporter.key,
        json!({}),
        json!({"subject": "svc.>", "kind": "service"}),
    );
    let importer = AccountKeys {
        jwt: mint(
            "account",
            &importer_key.public_key(),
            &op.key,
            json!({}),
            json!({"limits": unlimited(), "imports": [{
                "subject": "svc.time", "account": exporter.key.public_key(),
                "type": "service", "token": token}]}),
        ),
        key: importer_key,
    };
    let broker = Broker::with_config(&memory_config(&op, &[&exporter, &importer]));
    let server = user(&exporter, json!({}), user_limits(json!({})));
    let client = user(&importer, json!({}), user_limits(json!({})));
    let servers = creds_clients(&broker, &server).await;
    let clients = creds_clients(&broker, &client).await;
    round_trip(&clients[0], &servers[1], "svc.time").await;
}

#[test]
fn the_full_resolver_reads_account_files() {
    let op = operator();
    let acc = account(&op, json!({"limits": unlimited()}));
    let sys = account(&op, json!({"limits": unlimited()}));
    let dir = std::env::temp_dir().join(format!("percore-jwt-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).expect("dir");
    for a in [&acc, &sys] {
        std::fs::write(dir.join(format!("{}.jwt", a.key.public_key())), &a.jwt).expect("write");
    }
    let broker = Broker::with_config(&format!(
        "operator: \"{}\"\nsystem_account: {}\nresolver: {{ type: full, dir: \"{}\" }}\n{LOGIN_TIMEOUT}",
        op.jwt,
        sys.key.public_key(),
        dir.display()
    ));
    let gina = user(&acc, json!({}), user_limits(json!({})));
    raw_login(&broker, &gina);
    raw_login(&broker, &gina);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_errors_are_nats_servers() {
    let op = operator();
    let cases: Vec<(String, &str)> = vec![
        (
            "operator: [\"eyJx\", \"eyJy\"]\n".into(),
            "error parsing operators: unsupported type []interface {}",
        ),
        (
            "operator: \"eyJx\"\n".into(),
            "error parsing operator JWT: expected 3 chunks",
        ),
        (
            "operator: \"/nonexistent.jwt\"\n".into(),
            "error parsing operator JWT: open /nonexistent.jwt: no such file or directory",
        ),
        (
            "trusted_keys: [\"OBAD\"]\n".into(),
            "trust key \"OBAD\" required to be a valid public operator nkey",
        ),
        (
            "resolver: BOGUS\n".into(),
            "error parsing account resolver, should be MEM or  URL(\"url\") or a map containing dir and type state=[FULL|CACHE])",
        ),
        (
            "resolver: {type: full}\n".into(),
            "dir has no value and needs to point to a directory",
        ),
        (
            "resolver: {type: cache, dir: \"/tmp\", allow_delete: true}\n".into(),
            "CACHE does not accept allow_delete",
        ),
        (
            "resolver: {type: cache, dir: \"/tmp\", ttl: \"1h\"}\n".into(),
            "resolver type CACHE is not supported by percore",
        ),
        (
            "resolver: MEMORY\nresolver_preload: { ABC: \"xx\" }\n".into(),
            "invalid account JWT",
        ),
        (
            format!("operator: \"{}\"\n", op.jwt),
            "operators require an account resolver to be configured",
        ),
        (
            format!("operator: \"{}\"\nresolver: MEMORY\naccounts: {{ A: {{}} }}\n", op.jwt),
            "operators do not allow Accounts to be configured directly",
        ),
        (
            format!(
                "operator: \"{}\"\nresolver: {{type: full, dir: \"/tmp\"}}\n",
                op.jwt
            ),
            "using nats based account resolver - the system account needs to be specified in configuration or the operator jwt",
        ),
        (
            format!(
                "operator: \"{}\"\nresolver: MEMORY\nno_auth_user: a\n",
                op.jwt
            ),
            "no_auth_user not compatible with Trusted Operator",
        ),
    ];
    for (config, expected) in cases {
        let (code, stderr) = check_config("op", &config);
        assert_eq!(code, Some(1), "{config}: {stderr}");
        assert!(stderr.contains(expected), "{config}: {stderr}");
    }
    let (code, stderr) = check_config("op", &memory_config(&op, &[]));
    assert_eq!(code, Some(0), "{stderr}");
}

/// A broker with a `full` resolver in `dir` holding `accounts`, with `sys`
/// as the system account.
fn full_resolver(
    op: &Operator,
    sys: &AccountKeys,
    accounts: &[&AccountKeys],
) -> (Broker, std::path::PathBuf) {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("percore-jwt-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    for a in accounts.iter().chain([&sys]) {
        std::fs::write(dir.join(format!("{}.jwt", a.key.public_key())), &a.jwt).expect("write");
    }
    let broker = Broker::with_config(&format!(
        "operator: \"{}\"\nsystem_account: {}\nresolver: {{ type: full, dir: \"{}\" }}\n{LOGIN_TIMEOUT}",
        op.jwt,
        sys.key.public_key(),
        dir.display()
    ));
    (broker, dir)
}

/// Pushes `jwt` on `subject` as `nsc push` does; the server's answer.
fn push(system: &mut RawClient, subject: &str, jwt: &str) -> Value {
    system.send(b"SUB _INBOX.push 99\r\n");
    system.send(format!("PUB {subject} _INBOX.push {}\r\n{jwt}\r\n", jwt.len()).as_bytes());
    let header = system.read_line();
    assert!(header.starts_with("MSG _INBOX.push 99 "), "{header}");
    let body = system.read_line();
    system.send(b"UNSUB 99\r\n");
    serde_json::from_str(body.trim_end()).expect("json answer")
}

#[test]
fn claims_updates_apply_at_once_and_cut_revoked_users() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let acc = account(&op, json!({"limits": unlimited()}));
    let (broker, dir) = full_resolver(&op, &sys, &[&acc]);
    let admin = user(&sys, json!({}), user_limits(json!({})));
    let mut system = raw_login(&broker, &admin);
    let victim = user(&acc, json!({}), user_limits(json!({})));
    let bystander = user(&acc, json!({}), user_limits(json!({})));
    let mut victims: Vec<RawClient> = (0..SHARDS).map(|_| raw_login(&broker, &victim)).collect();
    let mut others: Vec<RawClient> = (0..SHARDS)
        .map(|_| raw_login(&broker, &bystander))
        .collect();

    // The victim's key revoked, and a small payload limit, in one update.
    let mut limits = unlimited();
    limits["payload"] = json!(8);
    let updated = mint(
        "account",
        &acc.key.public_key(),
        &op.key,
        json!({"name": "A", "iat": now()}),
        json!({"limits": limits, "revocations": {victim.key.public_key(): now()}}),
    );
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", acc.key.public_key());
    let answer = push(&mut system, &subject, &updated);
    assert_eq!(answer["data"]["code"], json!(200), "{answer}");
    assert_eq!(answer["data"]["message"], json!("jwt updated"));
    assert_eq!(answer["data"]["account"], json!(acc.key.public_key()));
    for client in &mut victims {
        let line = client.read_line();
        assert_eq!(line, "-ERR 'User Authentication Revoked'\r\n");
        client.expect_closed_after(b"");
    }
    // The others stay, under the new limit (applied on both shards).
    for client in &mut others {
        client.send(b"PUB x 4\r\nokay\r\nPING\r\n");
        assert!(client.read_until_pong().is_empty());
        client.send(b"PUB x 9\r\ntoo large\r\n");
        client.expect_closed_after(b"-ERR 'Maximum Payload Violation'\r\n");
    }
    // The new JWT is on disk.
    let stored =
        std::fs::read_to_string(dir.join(format!("{}.jwt", acc.key.public_key()))).expect("stored");
    assert_eq!(stored, updated);
    // A revoked user cannot come back.
    let mut again = broker.raw();
    let line = connect_line(&again, &victim);
    again.send(&line);
    expect_auth_violation(&mut again);

    // A new account pushed on the older subject: its users may log in.
    let fresh = account(&op, json!({"limits": unlimited()}));
    let answer = push(&mut system, "$SYS.REQ.CLAIMS.UPDATE", &fresh.jwt);
    assert_eq!(answer["data"]["code"], json!(200), "{answer}");
    let newcomer = user(&fresh, json!({}), user_limits(json!({})));
    // The accounts reach the shards at their next housekeeping tick:
    // poll with a deadline.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut client = broker.raw();
        let line = connect_line(&client, &newcomer);
        client.send(&line);
        client.send(b"PING\r\n");
        if client.read_line() == "PONG\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "new account never usable");
    }

    // Errors: a subject naming another account, and garbage.
    let answer = push(&mut system, &subject, &fresh.jwt);
    assert_eq!(answer["error"]["code"], json!(500), "{answer}");
    assert_eq!(
        answer["error"]["description"],
        json!("jwt update resulted in error - subject does not match jwt content")
    );
    let answer = push(&mut system, "$SYS.REQ.CLAIMS.UPDATE", "not a jwt");
    assert_eq!(answer["error"]["account"], json!("n/a"), "{answer}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One monitoring GET; the body as JSON.
fn monitor_json(broker: &Broker, path: &str) -> Value {
    use std::io::{Read, Write};
    let addr = broker.monitor.expect("monitoring port");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to monitor");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("response");
    let body = raw.split_once("\r\n\r\n").expect("body").1;
    serde_json::from_str(body).expect("json")
}

#[test]
fn connz_auth_shows_the_jwt_user() {
    let op = operator();
    let signer = KeyPair::new_account();
    let acc = account(
        &op,
        json!({"limits": unlimited(), "signing_keys": [signer.public_key()]}),
    );
    let broker = Broker::start_with(&["-m", "-1"], Some(&memory_config(&op, &[&acc])));
    let key = KeyPair::new_user();
    let jwt = mint(
        "user",
        &key.public_key(),
        &signer,
        json!({"name": "hank"}),
        user_limits(json!({"issuer_account": acc.key.public_key(), "tags": ["team:a"]})),
    );
    let hank = User { key, jwt };
    let client = raw_login(&broker, &hank);
    let connz = monitor_json(&broker, "/connz?auth=1");
    let cid = client.client_id();
    let conn = connz["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .find(|c| c["cid"].as_u64() == Some(cid))
        .expect("listed");
    assert_eq!(conn["authorized_user"], json!(hank.key.public_key()));
    assert_eq!(conn["account"], json!(acc.key.public_key()));
    assert_eq!(conn["jwt"], json!(hank.jwt));
    assert_eq!(conn["issuer_key"], json!(signer.public_key()));
    assert_eq!(conn["name_tag"], json!("hank"));
    assert_eq!(conn["tags"], json!(["team:a"]));
    let plain = monitor_json(&broker, "/connz");
    assert!(plain["connections"][0].get("jwt").is_none());
}

/// A request on the system account; the raw answer.
fn system_request(system: &mut RawClient, subject: &str, payload: &str) -> String {
    system.send(b"SUB _INBOX.req 98\r\n");
    system.send(
        format!(
            "PUB {subject} _INBOX.req {}\r\n{payload}\r\n",
            payload.len()
        )
        .as_bytes(),
    );
    let header = system.read_line();
    assert!(header.starts_with("MSG _INBOX.req 98 "), "{header}");
    let body = system.read_line();
    system.send(b"UNSUB 98\r\n");
    body.trim_end().to_string()
}

#[test]
fn lookup_list_and_delete_of_account_jwts() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let acc = account(&op, json!({"limits": unlimited()}));
    let dir = std::env::temp_dir().join(format!("percore-jwt-del-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    for a in [&acc, &sys] {
        std::fs::write(dir.join(format!("{}.jwt", a.key.public_key())), &a.jwt).expect("write");
    }
    let broker = Broker::with_config(&format!(
        "operator: \"{}\"\nsystem_account: {}\nresolver: {{ type: full, dir: \"{}\", allow_delete: true }}\n{LOGIN_TIMEOUT}",
        op.jwt,
        sys.key.public_key(),
        dir.display()
    ));
    let admin = user(&sys, json!({}), user_limits(json!({})));
    let mut system = raw_login(&broker, &admin);
    let lookup = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", acc.key.public_key());
    assert_eq!(system_request(&mut system, &lookup, ""), acc.jwt);
    let listed: Value =
        serde_json::from_str(&system_request(&mut system, "$SYS.REQ.CLAIMS.LIST", ""))
            .expect("json");
    let mut ids: Vec<String> = serde_json::from_value(listed["data"].clone()).expect("ids");
    ids.sort();
    let mut expected = vec![acc.key.public_key(), sys.key.public_key()];
    expected.sort();
    assert_eq!(ids, expected);

    let member = user(&acc, json!({}), user_limits(json!({})));
    let mut members: Vec<RawClient> = (0..SHARDS).map(|_| raw_login(&broker, &member)).collect();
    // Deleting the system account is refused; an account signed request
    // (not self-signed by the operator) too.
    let request = |accounts: Vec<String>, signer: &KeyPair, subject: &str| {
        mint(
            "generic",
            subject,
            signer,
            json!({}),
            json!({ "accounts": accounts }),
        )
    };
    let answer: Value = serde_json::from_str(&system_request(
        &mut system,
        "$SYS.REQ.CLAIMS.DELETE",
        &request(vec![sys.key.public_key()], &op.key, &op.key.public_key()),
    ))
    .expect("json");
    assert_eq!(
        answer["error"]["description"],
        json!(format!(
            "delete accounts request by {} failed - not allowed to delete system account",
            op.key.public_key()
        ))
    );
    let answer: Value = serde_json::from_str(&system_request(
        &mut system,
        "$SYS.REQ.CLAIMS.DELETE",
        &request(vec![acc.key.public_key()], &acc.key, &op.key.public_key()),
    ))
    .expect("json");
    assert!(answer["error"]["description"]
        .as_str()
        .is_some_and(|d| d.ends_with("not self signed")));
    let answer: Value = serde_json::from_str(&system_request(
        &mut system,
        "$SYS.REQ.CLAIMS.DELETE",
        &request(vec![acc.key.public_key()], &op.key, &op.key.public_key()),
    ))
    .expect("json");
    assert_eq!(
        answer["data"]["message"],
        json!("deleted 1 accounts"),
        "{answer}"
    );
    // Its users go as with an expired account, on both shards.
    for client in &mut members {
        assert_eq!(
            client.read_line(),
            "-ERR 'Account Authentication Expired'\r\n"
        );
        client.expect_closed_after(b"");
    }
    assert!(dir
        .join(format!("{}.jwt.deleted", acc.key.public_key()))
        .exists());
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn users_of_an_account_that_expires_are_cut() {
    let op = operator();
    let key = KeyPair::new_account();
    let acc = AccountKeys {
        jwt: mint(
            "account",
            &key.public_key(),
            &op.key,
            json!({"exp": now() + 2}),
            json!({"limits": unlimited()}),
        ),
        key,
    };
    let broker = Broker::with_config(&memory_config(&op, &[&acc]));
    let ivy = user(&acc, json!({}), user_limits(json!({})));
    let mut client = raw_login(&broker, &ivy);
    assert_eq!(
        client.read_line(),
        "-ERR 'Account Authentication Expired'\r\n"
    );
    client.expect_closed_after(b"");
}

#[test]
fn updates_cut_bearers_dropped_signers_and_connections_over_a_lowered_limit() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let signer = KeyPair::new_account();
    let acc = account(
        &op,
        json!({"limits": unlimited(), "signing_keys": [signer.public_key()]}),
    );
    let (broker, dir) = full_resolver(&op, &sys, &[&acc]);
    let admin = user(&sys, json!({}), user_limits(json!({})));
    let mut system = raw_login(&broker, &admin);
    let bearer = user(&acc, json!({}), user_limits(json!({"bearer_token": true})));
    let mut bearers: Vec<RawClient> = (0..SHARDS)
        .map(|_| {
            let mut client = broker.raw();
            client.send(
                format!(
                    "CONNECT {{\"verbose\":false,\"jwt\":\"{}\"}}\r\nPING\r\n",
                    bearer.jwt
                )
                .as_bytes(),
            );
            client.expect(b"PONG\r\n");
            client
        })
        .collect();
    let key = KeyPair::new_user();
    let jwt = mint(
        "user",
        &key.public_key(),
        &signer,
        json!({}),
        user_limits(json!({"issuer_account": acc.key.public_key()})),
    );
    let signed = User { key, jwt };
    let mut signed_clients: Vec<RawClient> =
        (0..SHARDS).map(|_| raw_login(&broker, &signed)).collect();
    let plain = user(&acc, json!({}), user_limits(json!({})));
    let mut plain_clients: Vec<RawClient> = (0..4).map(|_| raw_login(&broker, &plain)).collect();

    // Bearer tokens disallowed and the signing key dropped: the bearer
    // and signed users go.
    let mut limits = unlimited();
    limits["disallow_bearer"] = json!(true);
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", acc.key.public_key());
    let update = |limits: &Value| {
        mint(
            "account",
            &acc.key.public_key(),
            &op.key,
            json!({"iat": now()}),
            json!({ "limits": limits }),
        )
    };
    assert_eq!(
        push(&mut system, &subject, &update(&limits))["data"]["code"],
        json!(200)
    );
    for client in &mut bearers {
        client.expect_closed_after(b"-ERR 'Authorization Violation'\r\n");
    }
    for client in &mut signed_clients {
        client.expect_closed_after(b"");
    }
    // At most 2 connections: plain users are cut, oldest first, until two
    // remain.
    limits["conn"] = json!(2);
    assert_eq!(
        push(&mut system, &subject, &update(&limits))["data"]["code"],
        json!(200)
    );
    // The shards take the update at their next housekeeping tick: ping
    // each plain user until two are cut (or the deadline passes).
    let deadline = Instant::now() + WAIT;
    let mut open: Vec<bool> = vec![true; plain_clients.len()];
    while open.iter().filter(|&&o| o).count() > 2 && Instant::now() < deadline {
        for (client, open) in plain_clients.iter_mut().zip(open.iter_mut()) {
            if !*open {
                continue;
            }
            client.send(b"PING\r\n");
            let line = client.read_line();
            if line != "PONG\r\n" {
                assert_eq!(
                    line,
                    "-ERR 'maximum account active connections exceeded'\r\n"
                );
                client.expect_closed_after(b"");
                *open = false;
            }
        }
    }
    let stayed = open.iter().filter(|&&o| o).count();
    let cut = open.len() - stayed;
    assert_eq!((stayed, cut), (2, 2));
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_update_that_sets_an_expiry_cuts_users_then() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let acc = account(&op, json!({"limits": unlimited()}));
    let (broker, dir) = full_resolver(&op, &sys, &[&acc]);
    let admin = user(&sys, json!({}), user_limits(json!({})));
    let mut system = raw_login(&broker, &admin);
    let jack = user(&acc, json!({}), user_limits(json!({})));
    let mut clients: Vec<RawClient> = (0..SHARDS).map(|_| raw_login(&broker, &jack)).collect();
    let updated = mint(
        "account",
        &acc.key.public_key(),
        &op.key,
        json!({"iat": now(), "exp": now() + 2}),
        json!({"limits": unlimited()}),
    );
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", acc.key.public_key());
    assert_eq!(
        push(&mut system, &subject, &updated)["data"]["code"],
        json!(200)
    );
    for client in &mut clients {
        assert_eq!(
            client.read_line(),
            "-ERR 'Account Authentication Expired'\r\n"
        );
        client.expect_closed_after(b"");
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn accounts_that_break_the_operators_limits_are_not_loaded() {
    let op = operator();
    let exporter = account(
        &op,
        json!({"limits": unlimited(), "exports": [{"subject": "s", "type": "stream"}]}),
    );
    let mut limits = unlimited();
    limits["imports"] = json!(0);
    let acc = account(
        &op,
        json!({"limits": limits, "imports": [{"subject": "s", "type": "stream",
                                               "account": exporter.key.public_key()}]}),
    );
    let broker = Broker::with_config(&memory_config(&op, &[&exporter, &acc]));
    let kim = user(&acc, json!({}), user_limits(json!({})));
    let mut client = broker.raw();
    let line = connect_line(&client, &kim);
    client.send(&line);
    expect_auth_violation(&mut client);
    assert!(
        broker
            .startup_log
            .iter()
            .chain(std::iter::once(&String::new()))
            .any(|l| l.contains("more imports than allowed"))
            || broker.wait_log("more imports than allowed", WAIT).is_some()
    );
}

#[test]
fn only_users_of_pinned_accounts_log_in() {
    let op = operator();
    let pinned = account(&op, json!({"limits": unlimited()}));
    let other = account(&op, json!({"limits": unlimited()}));
    let broker = Broker::with_config(&format!(
        "{}resolver_pinned_accounts: [{}]\n",
        memory_config(&op, &[&pinned, &other]),
        pinned.key.public_key()
    ));
    raw_login(&broker, &user(&pinned, json!({}), user_limits(json!({}))));
    let outsider = user(&other, json!({}), user_limits(json!({})));
    let mut client = broker.raw();
    let line = connect_line(&client, &outsider);
    client.send(&line);
    expect_auth_violation(&mut client);
    let (code, stderr) = check_config(
        "op",
        &format!(
            "{}resolver_pinned_accounts: [\"ABAD\"]\n",
            memory_config(&op, &[])
        ),
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("pinned account key \"ABAD\" is not a valid public account nkey"),
        "{stderr}"
    );
}

/// A tiny account server for `resolver: URL(...)`: `GET /jwt/v1/accounts/`
/// answers 200 (nats-server's start-up probe), `GET
/// /jwt/v1/accounts/<key>` the JWT it holds for `key`, 404 for others;
/// keys in `hang` get a connection that is accepted and never answered.
/// Every request path is recorded.
struct AccountServer {
    url: String,
    jwts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    hang: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

const ACCOUNTS_PATH: &str = "/jwt/v1/accounts/";

impl AccountServer {
    fn start(accounts: &[&AccountKeys]) -> AccountServer {
        AccountServer::start_with(accounts, None)
    }

    /// Over TLS with `tls` (an `https` URL) when given.
    fn start_with(
        accounts: &[&AccountKeys],
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> AccountServer {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "{}://{}{ACCOUNTS_PATH}",
            if tls.is_some() { "https" } else { "http" },
            listener.local_addr().expect("addr")
        );
        let server = AccountServer {
            url,
            jwts: Default::default(),
            hang: Default::default(),
            requests: Default::default(),
        };
        for a in accounts {
            server.add(a);
        }
        let (jwts, hang, requests) = (
            server.jwts.clone(),
            server.hang.clone(),
            server.requests.clone(),
        );
        std::thread::spawn(move || {
            // Connections kept open, never answered.
            let mut hung: Vec<Box<dyn Duplex>> = Vec::new();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let _ = conn.set_read_timeout(Some(WAIT));
                let mut stream: Box<dyn Duplex> = match &tls {
                    Some(config) => Box::new(rustls::StreamOwned::new(
                        rustls::ServerConnection::new(config.clone()).expect("tls session"),
                        conn,
                    )),
                    None => Box::new(conn),
                };
                let Some(path) = read_request_path(&mut *stream) else {
                    continue;
                };
                requests.lock().expect("lock").push(path.clone());
                let key = path.strip_prefix(ACCOUNTS_PATH).unwrap_or("?");
                if hang.lock().expect("lock").contains(key) {
                    hung.push(stream);
                    continue;
                }
                let body = if key.is_empty() {
                    Some(String::new())
                } else {
                    jwts.lock().expect("lock").get(key).cloned()
                };
                let answer = match body {
                    Some(body) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    }
                };
                let _ = stream.write_all(answer.as_bytes());
                let _ = stream.flush();
            }
        });
        server
    }

    fn add(&self, account: &AccountKeys) {
        self.jwts
            .lock()
            .expect("lock")
            .insert(account.key.public_key(), account.jwt.clone());
    }

    fn hang(&self, key: &str) {
        self.hang.lock().expect("lock").insert(key.to_string());
    }

    /// How many times `key`'s JWT was asked for (`""`: the probe).
    fn requests_for(&self, key: &str) -> usize {
        let path = format!("{ACCOUNTS_PATH}{key}");
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|p| **p == path)
            .count()
    }

    fn config(&self, op: &Operator, sys: &AccountKeys) -> String {
        format!(
            "operator: \"{}\"\nsystem_account: {}\nresolver: URL(\"{}\")\n{LOGIN_TIMEOUT}",
            op.jwt,
            sys.key.public_key(),
            self.url
        )
    }
}

/// A connection the account server answers on, plain or TLS.
trait Duplex: std::io::Read + std::io::Write + Send {}

impl<T: std::io::Read + std::io::Write + Send> Duplex for T {}

/// The path of an HTTP request's first line, once its head is read.
fn read_request_path(stream: &mut dyn Duplex) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    head.split(' ').nth(1).map(str::to_string)
}

/// An operator, its system account and one account `acc`, both served by
/// an [`AccountServer`], and a broker that resolves accounts from it.
struct UrlResolved {
    broker: Broker,
    server: AccountServer,
    op: Operator,
    sys: AccountKeys,
    acc: AccountKeys,
}

impl UrlResolved {
    fn start() -> UrlResolved {
        let op = operator();
        let sys = account(&op, json!({"limits": unlimited()}));
        let acc = account(&op, json!({"limits": unlimited()}));
        let server = AccountServer::start(&[&sys, &acc]);
        let broker = Broker::with_config(&server.config(&op, &sys));
        UrlResolved {
            broker,
            server,
            op,
            sys,
            acc,
        }
    }
}

#[tokio::test]
async fn the_url_resolver_fetches_an_account_once_for_both_shards() {
    let UrlResolved {
        sys,
        acc,
        server,
        broker,
        ..
    } = UrlResolved::start();
    // Start-up: the probe of the base URL and the system account.
    assert_eq!(server.requests_for(""), 1);
    assert_eq!(server.requests_for(&sys.key.public_key()), 1);
    assert_eq!(server.requests_for(&acc.key.public_key()), 0);
    let hana = user(&acc, json!({}), user_limits(json!({})));
    let clients = creds_clients(&broker, &hana).await;
    round_trip(&clients[0], &clients[1], "url.echo").await;
    // Later logins on either shard use what was fetched.
    let again = creds_clients(&broker, &hana).await;
    round_trip(&again[1], &again[0], "url.echo2").await;
    assert_eq!(server.requests_for(&acc.key.public_key()), 1);
}

#[test]
fn the_url_resolver_refuses_unknown_accounts_with_nats_servers_texts() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let server = AccountServer::start(&[&sys]);
    let broker = Broker::with_config(&server.config(&op, &sys));
    let other = account(&op, json!({"limits": unlimited()}));
    let stranger = user(&other, json!({}), user_limits(json!({})));
    for _ in 0..2 {
        let mut client = broker.raw();
        let line = connect_line(&client, &stranger);
        client.send(&line);
        expect_auth_violation(&mut client);
        let expected = format!(
            "[WRN] Account fetch failed: could not fetch <\"{}{}\">: 404 Not Found",
            server.url,
            other.key.public_key()
        );
        assert!(broker.wait_log(&expected, WAIT).is_some(), "{expected}");
    }
    // Nothing is cached for a refused account: each login asks again.
    assert_eq!(server.requests_for(&other.key.public_key()), 2);
    // An account JWT the operator did not sign is not used.
    let rogue = operator();
    let forged = account(&rogue, json!({"limits": unlimited()}));
    server.add(&forged);
    let mut client = broker.raw();
    let line = connect_line(&client, &user(&forged, json!({}), user_limits(json!({}))));
    client.send(&line);
    expect_auth_violation(&mut client);
}

/// Whether nothing at all has arrived on `client`'s socket yet.
fn nothing_received_yet(client: &RawClient) -> bool {
    let mut byte = [0u8; 1];
    client.stream.set_nonblocking(true).expect("nonblocking");
    let peeked = client.stream.peek(&mut byte);
    client.stream.set_nonblocking(false).expect("blocking");
    matches!(peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[test]
fn a_hanging_url_resolver_fails_the_login_after_the_timeout_without_stalling_the_shard() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let acc = account(&op, json!({"limits": unlimited()}));
    let slow = account(&op, json!({"limits": unlimited()}));
    let server = AccountServer::start(&[&sys, &acc]);
    server.hang(&slow.key.public_key());
    // The fetch gives up after 1.9 s, as nats-server's, just before the
    // default 2 s authentication timeout; a debug build's Ed25519 checks
    // (~100 ms a login here) can push the refusal past it, so the
    // config's longer timeout (LOGIN_TIMEOUT) lets the test see the
    // refusal the fetch causes.
    let broker = Broker::with_config(&server.config(&op, &sys));
    let mut steady = raw_login(&broker, &user(&acc, json!({}), user_limits(json!({}))));
    let shard = steady.shard(broker.shards);
    let mut waiting = (0..broker.shards * 2)
        .map(|_| broker.raw())
        .find(|c| c.shard(broker.shards) == shard)
        .expect("a client on the steady client's shard");
    let slow_user = user(&slow, json!({}), user_limits(json!({})));
    let line = connect_line(&waiting, &slow_user);
    let started = Instant::now();
    waiting.send(&line);
    waiting.send(b"PING\r\n");
    // While the fetch hangs, another login on that shard goes through at
    // once (the fetch does not hold the shard's blocking thread)...
    let mut other = (0..broker.shards * 2)
        .map(|_| broker.raw())
        .find(|c| c.shard(broker.shards) == shard)
        .expect("another client on that shard");
    let line = connect_line(&other, &user(&acc, json!({}), user_limits(json!({}))));
    other.send(&line);
    other.send(b"PING\r\n");
    assert_eq!(other.read_line(), "PONG\r\n");
    // Order, not time, shows it (a loaded machine slows everything): the
    // other login finished while the hanging one still had no answer.
    assert!(
        nothing_received_yet(&waiting),
        "a login waited for the hanging fetch"
    );
    // ...and the shard answers its other client at once, all the while.
    let mut round_trips = 0;
    while nothing_received_yet(&waiting) {
        let before = Instant::now();
        steady.send(b"PING\r\n");
        assert_eq!(steady.read_line(), "PONG\r\n");
        assert!(before.elapsed() < Duration::from_secs(1), "shard stalled");
        round_trips += 1;
    }
    assert!(round_trips > 3, "{round_trips} PONGs");
    let refusal = waiting.read_line();
    assert_eq!(refusal, "-ERR 'Authorization Violation'\r\n");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let expected = format!(
        "[WRN] Account fetch failed: could not fetch <\"{url}{key}\">: Get \"{url}{key}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
        url = server.url,
        key = slow.key.public_key()
    );
    assert!(broker.wait_log(&expected, WAIT).is_some(), "{expected}");
    steady.send(b"PING\r\n");
    assert_eq!(steady.read_line(), "PONG\r\n");
}

#[tokio::test]
async fn the_url_resolver_fetches_the_exporter_of_an_import() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let exporter = account(
        &op,
        json!({"limits": unlimited(),
               "exports": [{"subject": "prices.>", "type": "stream"}]}),
    );
    let importer = account(
        &op,
        json!({"limits": unlimited(),
               "imports": [{"subject": "prices.>", "type": "stream",
                            "account": exporter.key.public_key()}]}),
    );
    let server = AccountServer::start(&[&sys, &exporter, &importer]);
    let broker = Broker::with_config(&server.config(&op, &sys));
    let reader = creds_clients(&broker, &user(&importer, json!({}), user_limits(json!({})))).await;
    assert_eq!(server.requests_for(&exporter.key.public_key()), 1);
    let writer = creds_clients(&broker, &user(&exporter, json!({}), user_limits(json!({})))).await;
    assert_eq!(server.requests_for(&exporter.key.public_key()), 1);
    let mut sub = reader[0].subscribe("prices.>").await.expect("subscribe");
    reader[0].flush().await.expect("flush");
    let got = tokio::time::timeout(WAIT, async {
        loop {
            writer[1]
                .publish("prices.eur", "1.08".into())
                .await
                .expect("publish");
            writer[1].flush().await.expect("flush");
            if let Ok(Some(msg)) =
                tokio::time::timeout(Duration::from_millis(100), sub.next()).await
            {
                break msg;
            }
        }
    })
    .await
    .expect("imported message in time");
    assert_eq!(&got.payload[..], b"1.08");
}

#[test]
fn the_url_resolver_must_answer_at_start_and_takes_no_preloads_nor_ftp() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let server = AccountServer::start(&[&sys]);
    // A base URL that answers 404: no start, nats-server's text.
    let wrong = format!("{}nope/", server.url);
    let config = format!(
        "operator: \"{}\"\nsystem_account: {}\nresolver: URL(\"{wrong}\")\n",
        op.jwt,
        sys.key.public_key()
    );
    let path = std::env::temp_dir().join(format!("percore-url-{}.conf", std::process::id()));
    std::fs::write(&path, config).expect("config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
        .arg(&path)
        .output()
        .expect("run percore");
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("could not fetch <\"{wrong}\">: 404 Not Found")),
        "{stderr}"
    );
    let (code, stderr) = check_config(
        "op",
        &format!(
            "operator: \"{}\"\nresolver: URL(\"{}\")\nresolver_preload: {{ {}: \"{}\" }}\n",
            op.jwt,
            server.url,
            sys.key.public_key(),
            sys.jwt
        ),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "resolver preloads only available for writeable resolver types MEM/DIR/CACHE_DIR"
        ),
        "{stderr}"
    );
    let (code, stderr) = check_config(
        "op",
        &format!(
            "operator: \"{}\"\nresolver: URL(\"ftp://127.0.0.1:1/jwt/v1/accounts/\")\n",
            op.jwt
        ),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("is not supported (http or https)"),
        "{stderr}"
    );
}

/// nats-server 2.9.10 started with `config` (`None` when it is not
/// installed): its client address and its log lines, for side-by-side
/// runs of one client sequence.
struct NatsServer {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    log: std::sync::mpsc::Receiver<String>,
    config: std::path::PathBuf,
}

const NATS_SERVER: &str = "/usr/sbin/nats-server";

impl NatsServer {
    fn start(config: &str) -> Option<NatsServer> {
        use std::io::BufRead;
        if !std::path::Path::new(NATS_SERVER).exists() {
            eprintln!("SKIPPED: {NATS_SERVER} is not installed");
            return None;
        }
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("nats-url-{}-{n}.conf", std::process::id()));
        std::fs::write(&path, config).expect("config");
        let mut child = std::process::Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn nats-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let addr = loop {
            let line = log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("nats-server started");
            if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                break rest.trim().parse().expect("address");
            }
        };
        Some(NatsServer {
            child,
            addr,
            log,
            config: path,
        })
    }

    fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        while let Ok(line) = self
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(needle) {
                return true;
            }
        }
        false
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// One client sequence against a server using `accounts` (an account
/// server of its own): a known account's user logs in twice, a stranger
/// is refused; what the account server was asked and whether the refusal
/// was logged as nats-server logs it.
fn url_resolver_sequence(
    addr: std::net::SocketAddr,
    accounts: &AccountServer,
    known: &AccountKeys,
    stranger: &AccountKeys,
    wait_log: &dyn Fn(&str) -> bool,
) -> (Vec<usize>, bool) {
    let member = user(known, json!({}), user_limits(json!({})));
    for _ in 0..2 {
        let mut client = RawClient::connect(addr);
        let line = connect_line(&client, &member);
        client.send(&line);
        client.send(b"PING\r\n");
        client.expect(b"PONG\r\n");
    }
    let mut client = RawClient::connect(addr);
    let line = connect_line(&client, &user(stranger, json!({}), user_limits(json!({}))));
    client.send(&line);
    expect_auth_violation(&mut client);
    let logged = wait_log(&format!(
        "[WRN] Account fetch failed: could not fetch <\"{}{}\">: 404 Not Found",
        accounts.url,
        stranger.key.public_key()
    ));
    let counts = vec![
        accounts.requests_for(""),
        accounts.requests_for(&known.key.public_key()),
        accounts.requests_for(&stranger.key.public_key()),
    ];
    (counts, logged)
}

#[test]
fn the_url_resolver_side_by_side_with_nats_server() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let acc = account(&op, json!({"limits": unlimited()}));
    let other = account(&op, json!({"limits": unlimited()}));
    let ours = AccountServer::start(&[&sys, &acc]);
    let broker = Broker::with_config(&ours.config(&op, &sys));
    let percore = url_resolver_sequence(broker.addr, &ours, &acc, &other, &|needle| {
        broker.wait_log(needle, WAIT).is_some()
    });
    assert_eq!(percore, (vec![1, 1, 1], true));
    let theirs = AccountServer::start(&[&sys, &acc]);
    let Some(nats) = NatsServer::start(&theirs.config(&op, &sys)) else {
        return;
    };
    let reference = url_resolver_sequence(nats.addr, &theirs, &acc, &other, &|needle| {
        nats.wait_log(needle)
    });
    assert_eq!(percore, reference);
}

#[test]
fn a_hanging_url_resolver_side_by_side_with_nats_server() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let slow = account(&op, json!({"limits": unlimited()}));
    let sequence = |addr: std::net::SocketAddr,
                    accounts: &AccountServer,
                    wait_log: &dyn Fn(&str) -> bool| {
        let mut client = RawClient::connect(addr);
        let line = connect_line(&client, &user(&slow, json!({}), user_limits(json!({}))));
        client.send(&line);
        let refusal = client.read_line();
        let url = format!("{}{}", accounts.url, slow.key.public_key());
        let logged = wait_log(&format!(
            "[WRN] Account fetch failed: could not fetch <\"{url}\">: Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ));
        (refusal, logged)
    };
    let start = || {
        let accounts = AccountServer::start(&[&sys]);
        accounts.hang(&slow.key.public_key());
        // Its LOGIN_TIMEOUT: see the hanging test above.
        let config = accounts.config(&op, &sys);
        (accounts, config)
    };
    let (ours, config) = start();
    let broker = Broker::with_config(&config);
    let percore = sequence(broker.addr, &ours, &|needle| {
        broker.wait_log(needle, WAIT).is_some()
    });
    assert_eq!(
        percore,
        ("-ERR 'Authorization Violation'\r\n".to_string(), true)
    );
    let (theirs, config) = start();
    let Some(nats) = NatsServer::start(&config) else {
        return;
    };
    let reference = sequence(nats.addr, &theirs, &|needle| nats.wait_log(needle));
    assert_eq!(percore, reference);
}

#[test]
fn an_operators_account_server_url_is_its_resolver() {
    let key = KeyPair::new_operator();
    let server = AccountServer::start(&[]);
    // `http://127.0.0.1:<port>/jwt/v1`, as `nsc` writes it.
    let base = server.url.trim_end_matches("/accounts/").to_string();
    let jwt = mint(
        "operator",
        &key.public_key(),
        &key,
        json!({"name": "O"}),
        json!({"account_server_url": base}),
    );
    let op = Operator { key, jwt };
    let acc = account(&op, json!({"limits": unlimited()}));
    server.add(&acc);
    // No `resolver`: nats-server uses `<account_server_url>/accounts`.
    let broker = Broker::with_config(&format!("operator: \"{}\"\n{LOGIN_TIMEOUT}", op.jwt));
    raw_login(&broker, &user(&acc, json!({}), user_limits(json!({}))));
    assert_eq!(server.requests_for(&acc.key.public_key()), 1);
}

#[test]
fn the_url_resolver_follows_update_notices_of_loaded_accounts() {
    let UrlResolved {
        op,
        sys,
        acc,
        server,
        broker,
    } = UrlResolved::start();
    let mut system = raw_login(&broker, &user(&sys, json!({}), user_limits(json!({}))));
    let victim = user(&acc, json!({}), user_limits(json!({})));
    let mut victims: Vec<RawClient> = (0..SHARDS).map(|_| raw_login(&broker, &victim)).collect();
    let bystander = raw_login(&broker, &user(&acc, json!({}), user_limits(json!({}))));
    // What an account server publishes when it takes a new JWT.
    let updated = mint(
        "account",
        &acc.key.public_key(),
        &op.key,
        json!({"name": "A", "iat": now()}),
        json!({"limits": unlimited(), "revocations": {victim.key.public_key(): now()}}),
    );
    let subject = format!("$SYS.ACCOUNT.{}.CLAIMS.UPDATE", acc.key.public_key());
    let answer = push(&mut system, &subject, &updated);
    assert_eq!(answer["data"]["message"], json!("jwt updated"), "{answer}");
    for client in &mut victims {
        let line = client.read_line();
        assert_eq!(line, "-ERR 'User Authentication Revoked'\r\n");
        client.expect_closed_after(b"");
    }
    drop(bystander);
    // An account this server never loaded is skipped, not fetched.
    let other = account(&op, json!({"limits": unlimited()}));
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", other.key.public_key());
    let answer = push(&mut system, &subject, &other.jwt);
    assert_eq!(
        answer["data"]["message"],
        json!("jwt update skipped"),
        "{answer}"
    );
    assert_eq!(answer["data"]["code"], json!(200));
    let answer = push(&mut system, &subject, &acc.jwt);
    assert_eq!(
        answer["error"]["description"],
        json!("jwt update resulted in error - subject does not match jwt content"),
        "{answer}"
    );
    assert_eq!(server.requests_for(&acc.key.public_key()), 1);
    assert_eq!(server.requests_for(&other.key.public_key()), 0);
}

#[test]
fn a_reload_keeps_the_accounts_the_url_resolver_fetched() {
    let UrlResolved {
        acc,
        server,
        broker,
        ..
    } = UrlResolved::start();
    let member = user(&acc, json!({}), user_limits(json!({})));
    let mut members: Vec<RawClient> = (0..SHARDS).map(|_| raw_login(&broker, &member)).collect();
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", WAIT)
        .expect("reload logged");
    // Shards take the reload at their next housekeeping tick (100 ms):
    // the members stay connected past several.
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        for client in &mut members {
            assert_eq!(client.ping_pong(), b"");
        }
    }
    raw_login(&broker, &member);
    assert_eq!(server.requests_for(&acc.key.public_key()), 1);
}

/// A CA (its PEM file at the path returned) and a TLS server
/// configuration for 127.0.0.1 that it signed.
fn account_server_tls(name: &str) -> (std::path::PathBuf, std::sync::Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer};
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca = params.self_signed(&ca_key).expect("ca");
    let path =
        std::env::temp_dir().join(format!("percore-url-ca-{}-{name}.pem", std::process::id()));
    std::fs::write(&path, ca.pem()).expect("ca file");
    let issuer = Issuer::new(params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("cert");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
        )
        .expect("server config");
    (path, std::sync::Arc::new(config))
}

#[test]
fn an_https_url_resolver_with_resolver_tls() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let acc = account(&op, json!({"limits": unlimited()}));
    let (ca, tls) = account_server_tls("ok");
    let server = AccountServer::start_with(&[&sys, &acc], Some(tls));
    let config = format!(
        "{}resolver_tls {{ ca_file: \"{}\" }}\n",
        server.config(&op, &sys),
        ca.display()
    );
    let broker = Broker::with_config(&config);
    raw_login(&broker, &user(&acc, json!({}), user_limits(json!({}))));
    assert_eq!(server.requests_for(&acc.key.public_key()), 1);
    // Without the CA the server's certificate is not trusted: no start.
    let path = std::env::temp_dir().join(format!("percore-url-tls-{}.conf", std::process::id()));
    std::fs::write(&path, server.config(&op, &sys)).expect("config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
        .arg(&path)
        .output()
        .expect("run percore");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&ca);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("could not fetch <\"{}\">: Get", server.url)),
        "{stderr}"
    );
}

#[tokio::test]
async fn system_services_and_events_in_operator_mode() {
    let op = operator();
    let sys = account(&op, json!({"limits": unlimited()}));
    let acc = account(&op, json!({"limits": unlimited()}));
    let (broker, dir) = full_resolver(&op, &sys, &[&acc]);
    let admin = user(&sys, json!({}), user_limits(json!({})));
    let system = ConnectOptions::with_credentials(&creds(&admin))
        .expect("creds")
        .connect(format!("nats://{}", broker.addr))
        .await
        .expect("system user connects");
    let id = system.server_info().server_id.clone();
    // System users on each shard prove the subscription below is in effect
    // everywhere before the logins whose events it waits for (async-nats'
    // `flush` only writes its socket); logged in first, so that their own
    // CONNECT events (of the system account anyway) reach no one.
    let probes = (0..SHARDS).map(|_| raw_login(&broker, &admin)).collect();
    let mut probes = ShardProbes::on_every_shard(&broker, probes);
    let mut events = system
        .subscribe(format!("$SYS.ACCOUNT.{}.*", acc.key.public_key()))
        .await
        .expect("subscribe");
    probes
        .await_interest(&mut events, |i| {
            format!("$SYS.ACCOUNT.{}.PROBE{i}", acc.key.public_key())
        })
        .await;
    // A client of the account on each shard: two connects.
    let member = user(&acc, json!({}), user_limits(json!({})));
    let clients: Vec<RawClient> = (0..SHARDS).map(|_| raw_login(&broker, &member)).collect();
    for _ in 0..SHARDS {
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("event in time")
            .expect("open");
        let event: Value = serde_json::from_slice(&event.payload).expect("json");
        assert_eq!(event["type"], "io.nats.server.advisory.v1.client_connect");
        assert_eq!(event["client"]["acc"], acc.key.public_key(), "{event}");
    }
    let ping = system
        .request("$SYS.REQ.SERVER.PING", "".into())
        .await
        .expect("ping answered");
    let ping: Value = serde_json::from_slice(&ping.payload).expect("json");
    assert_eq!(ping["server"]["id"], id, "{ping}");
    let connz = system
        .request(
            format!("$SYS.REQ.ACCOUNT.{}.CONNZ", acc.key.public_key()),
            "".into(),
        )
        .await
        .expect("connz answered");
    let connz: Value = serde_json::from_slice(&connz.payload).expect("json");
    assert_eq!(connz["data"]["num_connections"], SHARDS, "{connz}");
    drop(clients);
    let _ = std::fs::remove_dir_all(&dir);
}
