//! Authentication and permissions as a client sees them on one shard, over
//! the fake runtime of `tests.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{
    AuthPolicy, NkeyUser, PasswordUser, Permissions, Rules, Secret, SlowCheck, SubscribeRule,
};
use crate::connection::CloseReason;
use crate::ids::AccountId;
use crate::limits::ShardLimits;

use super::tests::{Client, Node};
use super::Next;

fn node(policy: AuthPolicy) -> Node {
    Node::single(ShardLimits {
        auth: Arc::new(policy),
        ..ShardLimits::default()
    })
}

fn users(list: &[(&str, Secret, Option<Permissions>)]) -> HashMap<String, PasswordUser> {
    list.iter()
        .map(|(name, password, permissions)| {
            (
                name.to_string(),
                PasswordUser {
                    account: AccountId::GLOBAL,
                    name: name.to_string(),
                    password: password.clone(),
                    permissions: permissions.clone().map(Arc::new),
                },
            )
        })
        .collect()
}

fn closed_reason(node: &mut Node, client: &Client) -> Option<String> {
    assert!(node.broker.is_closing(client.key), "connection still open");
    node.remove(client);
    node.snapshot()
        .closed
        .last()
        .and_then(|closed| closed.reason.clone())
}

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

#[test]
fn a_token_is_checked_and_a_wrong_one_closes_with_the_violation() {
    let mut node = node(AuthPolicy {
        token: Some(Secret::Plain("s3cret".into())),
        ..AuthPolicy::default()
    });
    let mut good = node.connect(1);
    node.input(
        &mut good,
        "CONNECT {\"verbose\":false,\"auth_token\":\"s3cret\"}\r\nPING\r\n",
    );
    assert_eq!(good.read(), "PONG\r\n");

    let mut bad = node.connect(2);
    let outcome = node.process(
        &mut bad,
        b"CONNECT {\"verbose\":false,\"auth_token\":\"s3cre\"}\r\nPING\r\n",
    );
    assert_eq!(outcome.next, Next::Close);
    node.end_of_work();
    assert_eq!(bad.read(), VIOLATION);
    assert_eq!(
        closed_reason(&mut node, &bad).as_deref(),
        Some("Authentication Failure")
    );
}

#[test]
fn nothing_but_connect_is_accepted_before_authentication() {
    let mut node = node(AuthPolicy {
        token: Some(Secret::Plain("t".into())),
        ..AuthPolicy::default()
    });
    let mut client = node.connect(1);
    let outcome = node.process(&mut client, b"PING\r\n");
    assert_eq!(outcome.next, Next::Close);
    node.end_of_work();
    assert_eq!(client.read(), VIOLATION);
}

#[test]
fn no_auth_user_logs_in_a_client_without_credentials_or_connect() {
    let mut node = node(AuthPolicy {
        users: users(&[("alice", Secret::Plain("pw".into()), None)]),
        no_auth_user: Some("alice".into()),
        ..AuthPolicy::default()
    });
    let mut telnet = node.connect(1);
    node.input(&mut telnet, "SUB foo 1\r\n");
    assert_eq!(telnet.read(), "+OK\r\n");
    let mut plain = node.connect(2);
    node.input(&mut plain, "CONNECT {\"verbose\":false}\r\nPING\r\n");
    assert_eq!(plain.read(), "PONG\r\n");
    let mut wrong = node.connect(3);
    node.process(
        &mut wrong,
        b"CONNECT {\"user\":\"alice\",\"pass\":\"no\"}\r\n",
    );
    node.end_of_work();
    assert_eq!(wrong.read(), VIOLATION);
    let users: Vec<_> = node.snapshot().connections.iter().map(|c| c.cid).collect();
    assert_eq!(users, [1, 2]);
}

#[test]
fn a_client_that_does_not_authenticate_in_time_is_cut_off() {
    let mut node = node(AuthPolicy {
        token: Some(Secret::Plain("t".into())),
        timeout: Duration::from_millis(500),
        ..AuthPolicy::default()
    });
    let client = node.connect(1);
    node.now += Duration::from_millis(400);
    node.tick();
    assert_eq!(client.read(), "");
    node.now += Duration::from_millis(100);
    node.tick();
    assert_eq!(client.read(), "-ERR 'Authentication Timeout'\r\n");
    assert_eq!(
        closed_reason(&mut node, &client).as_deref(),
        Some(CloseReason::AuthenticationTimeout.as_str())
    );
}

#[test]
fn a_bcrypt_password_is_checked_off_the_shard_before_anything_else_runs() {
    let hash = "$2b$04$abcdefghijklmnopqrstuu5Fs7rT1Ap7Pj8v3Jm0Bq2nQm1Wz0P2";
    let mut node = node(AuthPolicy {
        users: users(&[("bob", Secret::from_config(hash), None)]),
        ..AuthPolicy::default()
    });
    for (passed, expected) in [(true, "PONG\r\n"), (false, VIOLATION)] {
        let mut client = node.connect(if passed { 1 } else { 2 });
        let input = b"CONNECT {\"verbose\":false,\"user\":\"bob\",\"pass\":\"pw\"}\r\nPING\r\n";
        let outcome = node.process(&mut client, input);
        assert_eq!(outcome.next, Next::Verify);
        // The PING waits behind the check.
        assert!(outcome.consumed < input.len());
        assert_eq!(
            node.broker.take_slow_check(client.key),
            Some(SlowCheck::Bcrypt {
                hash: hash.into(),
                password: "pw".into()
            })
        );
        let next = node.broker.verification_done(client.key, passed, node.now);
        if passed {
            assert_eq!(next, Next::NeedMore);
            let rest = &input[outcome.consumed..];
            assert_eq!(node.process(&mut client, rest).next, Next::NeedMore);
        } else {
            assert_eq!(next, Next::Close);
        }
        node.end_of_work();
        assert_eq!(client.read(), expected);
    }
}

#[test]
fn an_nkey_login_signs_the_nonce_and_a_missing_signature_fails_at_once() {
    let key = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";
    let mut nkeys = HashMap::new();
    nkeys.insert(
        key.to_string(),
        NkeyUser {
            account: AccountId::GLOBAL,
            public_key: key.into(),
            permissions: None,
        },
    );
    let mut node = node(AuthPolicy {
        nkeys,
        ..AuthPolicy::default()
    });
    let mut signed = node.connect_with_nonce(1, "NONCE123456789a");
    let connect = format!("CONNECT {{\"verbose\":false,\"nkey\":\"{key}\",\"sig\":\"c2ln\"}}\r\n");
    assert_eq!(
        node.process(&mut signed, connect.as_bytes()).next,
        Next::Verify
    );
    assert_eq!(
        node.broker.take_slow_check(signed.key),
        Some(SlowCheck::Ed25519 {
            public_key: key.into(),
            nonce: "NONCE123456789a".into(),
            sig: "c2ln".into()
        })
    );
    let mut unsigned = node.connect_with_nonce(2, "NONCE123456789b");
    let connect = format!("CONNECT {{\"nkey\":\"{key}\"}}\r\n");
    assert_eq!(
        node.process(&mut unsigned, connect.as_bytes()).next,
        Next::Close
    );
    node.end_of_work();
    assert_eq!(unsigned.read(), VIOLATION);
}

fn user_with(permissions: Permissions) -> AuthPolicy {
    AuthPolicy {
        users: users(&[("u", Secret::Plain("p".into()), Some(permissions))]),
        ..AuthPolicy::default()
    }
}

fn login(node: &mut Node, cid: u64) -> Client {
    let mut client = node.connect(cid);
    node.input(
        &mut client,
        "CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}\r\n",
    );
    client
}

#[test]
fn a_denied_publish_answers_the_violation_keeps_the_connection_and_reaches_no_one() {
    let mut node = node(user_with(Permissions {
        publish: Some(Rules {
            allow: None,
            deny: vec![b"secret.>"[..].into()],
        }),
        ..Permissions::default()
    }));
    let mut sub = login(&mut node, 1);
    node.input(&mut sub, "SUB > 1\r\n");
    let mut publisher = login(&mut node, 2);
    node.input(
        &mut publisher,
        "PUB secret.x 2\r\nhi\r\nPUB open 2\r\nok\r\nPING\r\n",
    );
    assert_eq!(
        publisher.read(),
        "-ERR 'Permissions Violation for Publish to \"secret.x\"'\r\nPONG\r\n"
    );
    assert_eq!(sub.read(), "MSG open 1 2\r\nok\r\n");
}

#[test]
fn subscribe_allow_with_queues_and_deny_filtering_at_delivery() {
    let rule = |subject: &str, queue: Option<&str>| SubscribeRule {
        subject: subject.as_bytes().into(),
        queue: queue.map(|q| q.as_bytes().into()),
    };
    let mut node = node(user_with(Permissions {
        subscribe: Some(Rules {
            allow: Some(vec![rule("foo.*", Some("q1")), rule("bar.>", None)]),
            deny: vec![rule("bar.secret", None)],
        }),
        ..Permissions::default()
    }));
    let mut client = login(&mut node, 1);
    node.input(
        &mut client,
        "SUB foo.* q2 1\r\nSUB foo.* 2\r\nSUB foo.* q1 3\r\nSUB bar.secret 4\r\nSUB bar.* 5\r\nPING\r\n",
    );
    assert_eq!(
        client.read(),
        "-ERR 'Permissions Violation for Subscription to \"foo.*\" using queue \"q2\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"foo.*\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"bar.secret\"'\r\nPONG\r\n"
    );
    let mut publisher = node.connect(2);
    node.process(
        &mut publisher,
        b"CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}\r\n",
    );
    node.input(
        &mut publisher,
        "PUB bar.secret 1\r\nx\r\nPUB bar.open 1\r\ny\r\nPUB foo.a 1\r\nz\r\n",
    );
    assert_eq!(
        client.read(),
        "MSG bar.open 5 1\r\ny\r\nMSG foo.a 3 1\r\nz\r\n"
    );
}

/// The runtime serves a connection ahead of newcomers once it is
/// established: CONNECT read and its credentials accepted.
#[test]
fn a_connection_is_established_once_its_connect_is_accepted() {
    let mut open = Node::single(ShardLimits::default());
    let mut client = open.connect(1);
    assert!(!open.broker.is_established(client.key), "before CONNECT");
    open.input(&mut client, "PING\r\n");
    assert!(
        !open.broker.is_established(client.key),
        "a PING is no CONNECT"
    );
    open.input(&mut client, "CONNECT {\"verbose\":false}\r\n");
    assert!(open.broker.is_established(client.key));

    let mut secured = node(AuthPolicy {
        token: Some(Secret::Plain("s3cret".into())),
        ..AuthPolicy::default()
    });
    let mut good = secured.connect(1);
    secured.input(
        &mut good,
        "CONNECT {\"verbose\":false,\"auth_token\":\"s3cret\"}\r\n",
    );
    assert!(secured.broker.is_established(good.key));
    let mut bad = secured.connect(2);
    secured.process(
        &mut bad,
        b"CONNECT {\"verbose\":false,\"auth_token\":\"wrong\"}\r\n",
    );
    assert!(!secured.broker.is_established(bad.key), "rejected");
}
