//! Accounts as clients see them across two shards, over the fake runtime of
//! `tests.rs`: subjects isolated per account, stream imports renamed into
//! the importer, service requests and their responses routed back across
//! shards.

use std::collections::HashMap;
use std::sync::Arc;

use crate::account::{
    Account, AccountTable, Export, ExportKind, ResponseType, ServiceImport, StreamImport,
    SubjectTransform, DEFAULT_RESPONSE_THRESHOLD,
};
use crate::auth::{AuthPolicy, PasswordUser, Secret};
use crate::ids::AccountId;
use crate::limits::ShardLimits;

use super::tests::{carry, two_shards, Client, Node};

/// Accounts A (users a1, a2) and B (users b1, b2), as `configure` shapes
/// them; ids as the table assigns them ($G 0, A 1, B 2).
fn limits(configure: impl FnOnce(&mut Account, &mut Account)) -> ShardLimits {
    let (a, b) = (AccountId(1), AccountId(2));
    let mut account_a = Account::new(a, "A");
    let mut account_b = Account::new(b, "B");
    configure(&mut account_a, &mut account_b);
    let accounts = AccountTable::build(vec![account_a, account_b], Some("$SYS"));
    assert_eq!(
        (accounts.lookup("A"), accounts.lookup("B")),
        (Some(a), Some(b))
    );
    let users: HashMap<String, PasswordUser> = [("a1", a), ("a2", a), ("b1", b), ("b2", b)]
        .into_iter()
        .map(|(name, account)| {
            let user = PasswordUser {
                name: name.into(),
                password: Secret::Plain("pw".into()),
                permissions: None,
                account,
            };
            (name.to_string(), user)
        })
        .collect();
    ShardLimits {
        auth: Arc::new(AuthPolicy {
            users,
            ..AuthPolicy::default()
        }),
        accounts: Arc::new(accounts),
        ..ShardLimits::default()
    }
}

/// A client logged in as `user` (non-verbose).
fn login(node: &mut Node, cid: u64, user: &str) -> Client {
    let mut client = node.connect(cid);
    node.input(
        &mut client,
        &format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"pw\"}}\r\n"),
    );
    assert_eq!(client.read(), "");
    client
}

/// Both directions, until neither shard has a batch left.
fn settle(n0: &mut Node, n1: &mut Node) {
    for _ in 0..8 {
        carry(n0, n1);
        carry(n1, n0);
    }
}

#[test]
fn subjects_are_isolated_between_accounts_on_both_shards() {
    let (mut n0, mut n1) = two_shards(limits(|_, _| {}));
    let mut a_sub = login(&mut n0, 1, "a1");
    let mut b_sub_here = login(&mut n1, 2, "b1");
    let mut b_sub_there = login(&mut n0, 3, "b2");
    let mut a_pub = login(&mut n1, 4, "a2");
    n0.input(&mut a_sub, "SUB foo 1\r\n");
    n1.input(&mut b_sub_here, "SUB foo 1\r\n");
    n0.input(&mut b_sub_there, "SUB foo 1\r\n");
    settle(&mut n0, &mut n1);

    n1.input(&mut a_pub, "PUB foo 2\r\nhi\r\n");
    settle(&mut n0, &mut n1);
    assert_eq!(a_sub.read(), "MSG foo 1 2\r\nhi\r\n");
    assert_eq!(b_sub_here.read(), "", "B shares a shard with the publisher");
    assert_eq!(
        b_sub_there.read(),
        "",
        "B shares a shard with A's subscriber"
    );
    let snapshot = n0.snapshot();
    let accounts: Vec<&str> = snapshot
        .connections
        .iter()
        .map(|c| c.account.as_str())
        .collect();
    assert_eq!(accounts, ["A", "B"]);
}

#[test]
fn a_stream_import_renames_messages_into_the_importer_across_shards() {
    let (mut n0, mut n1) = two_shards(limits(|a, b| {
        a.exports.push(Export {
            subject: "foo.>".into(),
            kind: ExportKind::Stream,
            accounts: None,
        });
        b.stream_imports.push(StreamImport {
            exporter: a.id,
            subject: "foo.>".into(),
            transform: Some(SubjectTransform::prefix("imp")),
        });
    }));
    let mut b_far = login(&mut n1, 1, "b1");
    let mut b_near = login(&mut n0, 2, "b2");
    let mut a_pub = login(&mut n0, 3, "a1");
    n1.input(&mut b_far, "SUB imp.foo.* 7\r\n");
    n0.input(&mut b_near, "SUB foo.x 8\r\n");
    settle(&mut n0, &mut n1);

    n0.input(&mut a_pub, "PUB foo.x r 3\r\none\r\n");
    settle(&mut n0, &mut n1);
    assert_eq!(b_far.read(), "MSG imp.foo.x 7 r 3\r\none\r\n");
    assert_eq!(b_near.read(), "", "B's own foo.x is not A's foo.x");

    // Published in A on the other shard: imported once, not once per shard.
    let mut a_far = login(&mut n1, 4, "a2");
    n1.input(&mut a_far, "PUB foo.y 3\r\ntwo\r\n");
    settle(&mut n0, &mut n1);
    assert_eq!(b_far.read(), "MSG imp.foo.y 7 3\r\ntwo\r\n");
}

#[test]
fn a_service_request_and_its_response_cross_accounts_and_shards() {
    let (mut n0, mut n1) = two_shards(limits(|a, b| {
        b.exports.push(Export {
            subject: "svc.>".into(),
            kind: ExportKind::Service {
                response: ResponseType::Singleton,
                threshold: DEFAULT_RESPONSE_THRESHOLD,
            },
            accounts: Some(vec![a.id]),
        });
        a.service_imports.push(ServiceImport {
            exporter: b.id,
            subject: "svc.>".into(),
            local: "ask.>".into(),
            transform: Some(SubjectTransform::mapping("ask.>", "svc.>").unwrap()),
            response: ResponseType::Singleton,
            threshold: DEFAULT_RESPONSE_THRESHOLD,
            share: false,
        });
    }));
    let mut requester = login(&mut n0, 1, "a1");
    let mut responder = login(&mut n1, 2, "b1");
    n0.input(&mut requester, "SUB inbox.1 9\r\n");
    n1.input(&mut responder, "SUB svc.time 5\r\n");
    settle(&mut n0, &mut n1);

    n0.input(&mut requester, "PUB ask.time inbox.1 2\r\nhi\r\n");
    settle(&mut n0, &mut n1);
    let request = responder.read();
    let header = request.lines().next().unwrap_or_default().to_string();
    let fields: Vec<&str> = header.split(' ').collect();
    assert_eq!(fields.len(), 5, "{request:?}");
    assert_eq!(&fields[..3], ["MSG", "svc.time", "5"]);
    let reply = fields[3];
    assert!(
        reply.starts_with("_R_."),
        "B sees B's reply subject: {reply}"
    );
    assert_eq!(n0.broker.open_response_routes(), 1);

    n1.input(&mut responder, &format!("PUB {reply} 4\r\npong\r\n"));
    settle(&mut n0, &mut n1);
    assert_eq!(requester.read(), "MSG inbox.1 9 4\r\npong\r\n");
    assert_eq!(
        n0.broker.open_response_routes(),
        0,
        "singleton: one response"
    );

    n1.input(&mut responder, &format!("PUB {reply} 4\r\nlate\r\n"));
    settle(&mut n0, &mut n1);
    assert_eq!(requester.read(), "");
}

#[test]
fn a_request_no_service_takes_gets_no_responders() {
    let (mut n0, _n1) = two_shards(limits(|a, b| {
        b.exports.push(Export {
            subject: "svc".into(),
            kind: ExportKind::Service {
                response: ResponseType::Singleton,
                threshold: DEFAULT_RESPONSE_THRESHOLD,
            },
            accounts: None,
        });
        a.service_imports.push(ServiceImport {
            exporter: b.id,
            subject: "svc".into(),
            local: "svc".into(),
            transform: None,
            response: ResponseType::Singleton,
            threshold: DEFAULT_RESPONSE_THRESHOLD,
            share: false,
        });
    }));
    let mut requester = n0.connect(1);
    n0.input(
        &mut requester,
        "CONNECT {\"verbose\":false,\"user\":\"a1\",\"pass\":\"pw\",\"headers\":true,\"no_responders\":true}\r\nSUB inbox 1\r\nPUB svc inbox 0\r\n\r\n",
    );
    assert_eq!(
        requester.read(),
        "HMSG inbox 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
}

#[test]
fn a_stream_streamed_response_route_stays_open_until_its_threshold() {
    let threshold = std::time::Duration::from_secs(5);
    let (mut n0, mut n1) = two_shards(limits(|a, b| {
        b.exports.push(Export {
            subject: "feed".into(),
            kind: ExportKind::Service {
                response: ResponseType::Stream,
                threshold,
            },
            accounts: None,
        });
        a.service_imports.push(ServiceImport {
            exporter: b.id,
            subject: "feed".into(),
            local: "feed".into(),
            transform: None,
            response: ResponseType::Stream,
            threshold,
            share: false,
        });
    }));
    let mut requester = login(&mut n0, 1, "a1");
    let mut responder = login(&mut n0, 2, "b1");
    n0.input(&mut requester, "SUB in 1\r\n");
    n0.input(&mut responder, "SUB feed 1\r\n");
    n0.input(&mut requester, "PUB feed in 0\r\n\r\n");
    let request = responder.read();
    let reply = request.split(' ').nth(3).unwrap_or_default().to_string();
    for chunk in ["a", "b"] {
        n0.input(&mut responder, &format!("PUB {reply} 1\r\n{chunk}\r\n"));
    }
    assert_eq!(requester.read(), "MSG in 1 1\r\na\r\nMSG in 1 1\r\nb\r\n");
    n0.now += threshold;
    n0.tick();
    assert_eq!(n0.broker.open_response_routes(), 0);
    n0.input(&mut responder, &format!("PUB {reply} 1\r\nc\r\n"));
    // The tick's first server PING is all the requester gets.
    assert_eq!(requester.read(), "PING\r\n");
    settle(&mut n0, &mut n1);
}

/// [`limits`] plus user `s1` in the system account.
fn with_system_user() -> ShardLimits {
    let mut limits = limits(|_, _| {});
    let system = limits.accounts.system().expect("system account");
    let mut auth = (*limits.auth).clone();
    auth.users.insert(
        "s1".into(),
        PasswordUser {
            name: "s1".into(),
            password: Secret::Plain("pw".into()),
            permissions: None,
            account: system,
        },
    );
    limits.auth = Arc::new(auth);
    limits
}

#[test]
fn connection_events_are_collected_only_for_subjects_someone_listens_to() {
    let (mut n0, mut n1) = two_shards(with_system_user());
    let early = login(&mut n0, 1, "a1");
    let clock = n0.clock();
    assert!(
        n0.broker.take_system_events(&clock).is_empty(),
        "nobody listens yet"
    );
    // A system user on the other shard listens to connects only.
    let mut listener = login(&mut n1, 2, "s1");
    n1.input(&mut listener, "SUB $SYS.ACCOUNT.*.CONNECT 1\r\n");
    settle(&mut n0, &mut n1);
    let late = login(&mut n0, 3, "a2");
    let clock = n0.clock();
    let events = n0.broker.take_system_events(&clock);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, super::SystemEventKind::Connect);
    assert_eq!(events[0].subject, "$SYS.ACCOUNT.A.CONNECT");
    assert_eq!(events[0].connection.cid, 3);
    assert_eq!(events[0].connection.account, "A");
    assert_eq!(events[0].connection.authorized_user.as_deref(), Some("a2"));
    // Nobody listens to disconnects.
    n0.remove(&late);
    n0.remove(&early);
    let clock = n0.clock();
    assert!(n0.broker.take_system_events(&clock).is_empty());
    // Now someone does.
    n1.input(&mut listener, "SUB $SYS.ACCOUNT.A.DISCONNECT 2\r\n");
    settle(&mut n0, &mut n1);
    let gone = login(&mut n0, 5, "b1");
    let gone_a = login(&mut n0, 7, "a1");
    n0.remove(&gone);
    n0.remove(&gone_a);
    let clock = n0.clock();
    let events = n0.broker.take_system_events(&clock);
    let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "$SYS.ACCOUNT.B.CONNECT",
            "$SYS.ACCOUNT.A.CONNECT",
            "$SYS.ACCOUNT.A.DISCONNECT"
        ]
    );
    assert_eq!(
        events[2].connection.reason.as_deref(),
        Some("Client Closed")
    );
}
