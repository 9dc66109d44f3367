//! Barriers for "this subscription is in effect for that publisher" when
//! the subscriber is an async-nats client.
//!
//! async-nats 0.38's `Client::flush` only writes the client's buffer to its
//! socket: it sends no PING and waits for no PONG. After `subscribe` and
//! `flush` the server may not have read the SUB yet, and with two shards
//! its interest may not have reached the other shard's replica of the
//! index, where a publish a moment later finds no interest and is dropped.
//! These helpers prove the interest end to end instead, each with a
//! deadline ([`IO_TIMEOUT`]):
//!
//! * [`interest_ready`]: another async-nats client is the publisher. The
//!   subscriber adds a probe subscription after its real ones and the
//!   publisher requests on it until it is answered. The interest changes of
//!   one connection reach each other shard in order (one FIFO per pair of
//!   shards, and nats-server is one process), so once the probe is known on
//!   the publisher's shard, every earlier SUB and UNSUB of that connection
//!   is too. The test's own subscriptions receive nothing extra.
//! * [`ShardProbes`]: raw clients, one per shard, publish a probe subject
//!   that the test's subscription itself matches until it has received one
//!   from every shard: for interest that must be in effect on every shard
//!   (system events raised where a client logs in, say).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use async_nats::client::RequestErrorKind;
use async_nats::{Client, Subscriber};
use bytes::Bytes;
use futures::StreamExt;

use super::{Broker, RawClient, IO_TIMEOUT};

/// Returns once every SUB and UNSUB `subscriber` sent so far is applied on
/// `publisher`'s shard (see the module comment). The two may be the same
/// client, or on the same shard.
pub async fn interest_ready(subscriber: &Client, publisher: &Client) {
    let subject = format!("ready.{}", subscriber.new_inbox());
    let mut probe = tokio::time::timeout(IO_TIMEOUT, subscriber.subscribe(subject.clone()))
        .await
        .expect("probe subscribe in time")
        .expect("probe subscribe");
    let replier = subscriber.clone();
    let responder = tokio::spawn(async move {
        while let Some(msg) = probe.next().await {
            if let Some(reply) = msg.reply {
                replier.publish(reply, Bytes::new()).await.expect("reply");
                replier.flush().await.expect("flush reply");
            }
        }
    });
    // A request that finds no interest on the publisher's shard is answered
    // "no responders" by the server and reached no one: ask again.
    let answered = tokio::time::timeout(IO_TIMEOUT, async {
        loop {
            match publisher.request(subject.clone(), Bytes::new()).await {
                Ok(_) => break,
                Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                    tokio::task::yield_now().await
                }
                Err(e) => panic!("probe request failed: {e}"),
            }
        }
    })
    .await;
    responder.abort();
    answered.expect("the probe subscription reaches the publisher's shard in time");
}

/// Raw clients, logged in by the test (CONNECT answered with a PONG),
/// that publish probes to prove a subscription is in effect where each of
/// them lives. Log them in before the subscription exists when their own
/// logins would otherwise reach it (system events).
pub struct ShardProbes(Vec<RawClient>);

impl ShardProbes {
    /// `clients`, which must be one on each shard of `broker`.
    pub fn on_every_shard(broker: &Broker, clients: Vec<RawClient>) -> ShardProbes {
        let shards: BTreeSet<usize> = clients.iter().map(|c| c.shard(broker.shards)).collect();
        assert_eq!(
            (clients.len(), shards.len()),
            (broker.shards, broker.shards),
            "one probe on each shard"
        );
        ShardProbes(clients)
    }

    /// Probes wherever `clients` are (one for a nats-server, say).
    pub fn new(clients: Vec<RawClient>) -> ShardProbes {
        ShardProbes(clients)
    }

    /// Waits until `sub` has received the probe `subject(i)` published by
    /// probe `i`, for every probe, publishing again the ones not seen yet (a
    /// publish that came before the interest reached no one). `sub` must
    /// match every `subject(i)`, and receive nothing else meanwhile: any
    /// other message fails the test. On return no probe is left on its way
    /// to `sub`: a probe sent twice may still be travelling when the first
    /// copy arrives, so each probe then publishes a fence, which comes after
    /// all its earlier messages (per-publisher order), and the fences are
    /// read.
    pub async fn await_interest(
        &mut self,
        sub: &mut Subscriber,
        subject: impl Fn(usize) -> String,
    ) {
        let subjects: Vec<String> = (0..self.0.len()).map(subject).collect();
        let deadline = Instant::now() + IO_TIMEOUT;
        let probe_of = |message: &async_nats::Message| {
            subjects
                .iter()
                .position(|s| s == message.subject.as_str())
                .unwrap_or_else(|| panic!("{} before the probes", message.subject))
        };
        let mut seen = BTreeSet::new();
        while seen.len() < subjects.len() {
            assert!(Instant::now() < deadline, "probes seen: {seen:?}");
            for (i, probe) in self.0.iter_mut().enumerate() {
                if !seen.contains(&i) {
                    probe.send(format!("PUB {} 5\r\nprobe\r\nPING\r\n", subjects[i]).as_bytes());
                    probe.expect(b"PONG\r\n");
                }
            }
            while let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_millis(200), sub.next()).await
            {
                seen.insert(probe_of(&message));
                if seen.len() == subjects.len() {
                    break;
                }
            }
        }
        for (probe, subject) in self.0.iter_mut().zip(&subjects) {
            probe.send(format!("PUB {subject} 5\r\nfence\r\nPING\r\n").as_bytes());
            probe.expect(b"PONG\r\n");
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut fenced = BTreeSet::new();
        while fenced.len() < subjects.len() {
            let message = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                sub.next(),
            )
            .await
            .unwrap_or_else(|_| panic!("fences seen: {fenced:?}"))
            .expect("subscription open");
            let i = probe_of(&message);
            if &message.payload[..] == b"fence" {
                fenced.insert(i);
            }
        }
    }
}
