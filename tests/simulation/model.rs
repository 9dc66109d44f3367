//! A simple model of NATS semantics and the guarantees percore documents,
//! fed by what the simulated clients write and read, checked as they read
//! and once more when the run has gone quiet.
//!
//! Time here is the simulation's step counter: it orders every client
//! action, so "the PONG was read before the PUB was written" is exact.

use std::collections::{HashMap, HashSet};

use percore_core::subject::{has_wildcard_token, is_subset, pattern_matches};

pub type Step = u64;
pub type ClientNo = usize;

#[derive(Debug)]
pub struct SubRecord {
    pub client: ClientNo,
    pub sid: u32,
    pub subject: String,
    pub queue: Option<String>,
    pub written_at: Step,
    /// A PONG for a PING written after the SUB was read at this step.
    pub acked_at: Option<Step>,
    pub unsub_written_at: Option<Step>,
    /// When the first plain UNSUB (no max) was written.
    pub plain_unsub_at: Option<Step>,
    /// A PONG for a PING written after the UNSUB was read at this step.
    pub unsub_acked_at: Option<Step>,
    pub max: Option<u64>,
    /// When the (only) UNSUB with a max was written.
    max_unsub_at: Option<Step>,
    /// Once that UNSUB is acknowledged: the most this subscription may
    /// ever receive. The server removes it on the max-th delivery, or at
    /// once if it had delivered that many already, which the client cannot
    /// know beyond what it has read: max(max, read by the PONG).
    max_bound: Option<u64>,
    /// The server may have refused it (`max_subscriptions`): never owed.
    pub uncertain: bool,
    /// Its permissions refuse it: it must never receive anything.
    pub refused: bool,
    pub delivered: u64,
    /// Per publisher, the last sequence number received.
    last_seq: HashMap<ClientNo, u64>,
}

#[derive(Debug)]
pub struct PubRecord {
    pub subject: String,
    pub written_at: Step,
}

#[derive(Default)]
pub struct Model {
    pub subs: Vec<SubRecord>,
    by_sid: HashMap<(ClientNo, u32), usize>,
    pubs: HashMap<(ClientNo, u64), PubRecord>,
    /// (publisher, seq) -> subscriptions that received it.
    received: HashMap<(ClientNo, u64), HashSet<usize>>,
    /// (publisher, seq, queue name) -> deliveries to that group.
    queue_received: HashMap<(ClientNo, u64, String), u32>,
    pub echo: Vec<bool>,
    /// Per client, its account (0: A or the only one, 1: B).
    pub account: Vec<u8>,
    /// B imports A's `a.>` as `c.a.>` (runs with accounts).
    pub import: bool,
    /// Every client's permissions (one user, `no_auth_user`): publishes to
    /// these are refused, and nothing on them is delivered...
    pub publish_deny: Vec<String>,
    /// ...and subscriptions these cover are refused. Deliveries on a
    /// subject they match are filtered only once a wildcard subscription
    /// of the client covers one of them (nats-server's lazily loaded
    /// filter); before that they may arrive, and are never owed.
    pub subscribe_deny: Vec<String>,
    /// Closed by the server or by itself: nothing is owed to it.
    pub unhealthy: HashSet<ClientNo>,
    pub checked_deliveries: u64,
    pub required_checked: u64,
}

impl Model {
    pub fn sub_written(
        &mut self,
        client: ClientNo,
        sid: u32,
        subject: &str,
        queue: Option<&str>,
        uncertain: bool,
        at: Step,
    ) {
        let refused = self
            .subscribe_deny
            .iter()
            .any(|deny| pattern_matches(deny.as_bytes(), subject.as_bytes()));
        let uncertain = uncertain || refused;
        self.by_sid.insert((client, sid), self.subs.len());
        self.subs.push(SubRecord {
            client,
            sid,
            subject: subject.to_string(),
            queue: queue.map(str::to_string),
            written_at: at,
            acked_at: None,
            unsub_written_at: None,
            plain_unsub_at: None,
            unsub_acked_at: None,
            max: None,
            max_unsub_at: None,
            max_bound: None,
            uncertain,
            refused,
            delivered: 0,
            last_seq: HashMap::new(),
        });
    }

    pub fn unsub_written(&mut self, client: ClientNo, sid: u32, max: Option<u64>, at: Step) {
        let index = self.by_sid[&(client, sid)];
        let sub = &mut self.subs[index];
        match max {
            Some(max) => {
                assert!(sub.max.is_none(), "clients send one max UNSUB per sid");
                sub.max = Some(max);
                sub.max_unsub_at = Some(at);
            }
            None => {
                sub.plain_unsub_at.get_or_insert(at);
            }
        }
        // Any UNSUB, with a max or not, may end the subscription.
        sub.unsub_written_at.get_or_insert(at);
    }

    pub fn pub_written(&mut self, client: ClientNo, seq: u64, subject: &str, at: Step) {
        self.pubs.insert(
            (client, seq),
            PubRecord {
                subject: subject.to_string(),
                written_at: at,
            },
        );
    }

    /// The client read the PONG to a PING it wrote at `ping_at`.
    pub fn pong_read(&mut self, client: ClientNo, ping_at: Step, now: Step) {
        for sub in self.subs.iter_mut().filter(|s| s.client == client) {
            if sub.written_at < ping_at && sub.acked_at.is_none() {
                sub.acked_at = Some(now);
            }
            if let (Some(max), Some(t)) = (sub.max, sub.max_unsub_at) {
                if t < ping_at && sub.max_bound.is_none() {
                    sub.max_bound = Some(max.max(sub.delivered));
                }
            }
            // Only a plain UNSUB ends deliveries at once.
            if sub.plain_unsub_at.is_some_and(|t| t < ping_at) && sub.unsub_acked_at.is_none() {
                sub.unsub_acked_at = Some(now);
            }
        }
    }

    /// The subject a message `publisher` published on `subject` has for
    /// `receiver`: the same in its own account, renamed through B's
    /// import of A's `a.>`, or none (another account's subject space).
    fn seen_as(&self, publisher: ClientNo, receiver: ClientNo, subject: &str) -> Option<String> {
        let (from, to) = (self.account[publisher], self.account[receiver]);
        if from == to {
            Some(subject.to_string())
        } else if self.import && from == 0 && pattern_matches(b"a.>", subject.as_bytes()) {
            Some(format!("c.{subject}"))
        } else {
            None
        }
    }

    /// A client read `MSG <subject> <sid>` carrying (publisher, seq).
    pub fn delivered(
        &mut self,
        client: ClientNo,
        sid: u32,
        subject: &str,
        publisher: ClientNo,
        seq: u64,
    ) -> Result<(), String> {
        self.checked_deliveries += 1;
        let Some(&index) = self.by_sid.get(&(client, sid)) else {
            return Err(format!("client {client} got MSG for unknown sid {sid}"));
        };
        let Some(publish) = self.pubs.get(&(publisher, seq)) else {
            return Err(format!(
                "client {client} got a message never published: {publisher}:{seq}"
            ));
        };
        if self.denied(&self.publish_deny, &publish.subject) {
            return Err(format!(
                "client {client} got {publisher}:{seq} on {subject}, a publish its permissions refuse"
            ));
        }
        let Some(expected) = self.seen_as(publisher, client, &publish.subject) else {
            return Err(format!(
                "client {client} (account {}) got {publisher}:{seq} of account {} on {subject}",
                self.account[client], self.account[publisher]
            ));
        };
        if self.denied(&self.subscribe_deny, subject)
            && self.delivery_filter_on_before(client, publish.written_at)
        {
            return Err(format!(
                "client {client} sid {sid} got {publisher}:{seq} on {subject}, which its permissions deny"
            ));
        }
        if expected != subject {
            return Err(format!(
                "message {publisher}:{seq} published on {} arrived as {subject}, not {expected}",
                publish.subject
            ));
        }
        let sub = &mut self.subs[index];
        if sub.refused {
            return Err(format!(
                "client {client} sid {sid} ({}) was refused, yet got {publisher}:{seq}",
                sub.subject
            ));
        }
        if !pattern_matches(sub.subject.as_bytes(), subject.as_bytes()) {
            return Err(format!(
                "client {client} sid {sid} ({}) got {subject}",
                sub.subject
            ));
        }
        if sub.unsub_acked_at.is_some() {
            return Err(format!(
                "client {client} sid {sid} got {publisher}:{seq} after its UNSUB was acknowledged"
            ));
        }
        if publisher == client && !self.echo[client] {
            return Err(format!(
                "client {client} has echo off but got its own {seq}"
            ));
        }
        if !self
            .received
            .entry((publisher, seq))
            .or_default()
            .insert(index)
        {
            return Err(format!(
                "client {client} sid {sid} got {publisher}:{seq} twice"
            ));
        }
        let last = sub.last_seq.entry(publisher).or_insert(0);
        if seq <= *last {
            return Err(format!(
                "client {client} sid {sid}: {publisher}:{seq} arrived after {publisher}:{last}"
            ));
        }
        *last = seq;
        sub.delivered += 1;
        if let Some(bound) = sub.max_bound {
            if sub.delivered > bound {
                return Err(format!(
                    "client {client} sid {sid} got {} messages after its UNSUB {sid} {:?} \
                     was acknowledged (at most {bound})",
                    sub.delivered, sub.max
                ));
            }
        }
        if let Some(queue) = &sub.queue {
            let group = format!("{}/{queue}", self.account[client]);
            let count = self
                .queue_received
                .entry((publisher, seq, group))
                .or_default();
            *count += 1;
            if *count > 1 {
                return Err(format!(
                    "queue group {queue} got {publisher}:{seq} {count} times"
                ));
            }
        }
        Ok(())
    }

    /// A subscription of `client` that turns the delivery filter on (an
    /// accepted wildcard covering a subscribe deny rule) was acknowledged
    /// before `at`.
    fn delivery_filter_on_before(&self, client: ClientNo, at: Step) -> bool {
        self.subs.iter().any(|sub| {
            sub.client == client
                && !sub.refused
                && sub.acked_at.is_some_and(|acked| acked < at)
                && has_wildcard_token(sub.subject.as_bytes())
                && self
                    .subscribe_deny
                    .iter()
                    .any(|deny| is_subset(deny.as_bytes(), sub.subject.as_bytes()))
        })
    }

    fn denied(&self, patterns: &[String], subject: &str) -> bool {
        patterns
            .iter()
            .any(|deny| pattern_matches(deny.as_bytes(), subject.as_bytes()))
    }

    /// After the run went quiet: everything owed was delivered.
    pub fn check_required(&mut self) -> Result<(), String> {
        let mut pubs: Vec<_> = self.pubs.iter().collect();
        pubs.sort_by_key(|(key, _)| **key);
        for (&(publisher, seq), publish) in pubs {
            if self.unhealthy.contains(&publisher)
                || self.denied(&self.publish_deny, &publish.subject)
            {
                continue;
            }
            let got = self.received.get(&(publisher, seq));
            let mut groups: HashMap<String, (String, Vec<usize>)> = HashMap::new();
            for (index, sub) in self.subs.iter().enumerate() {
                let Some(seen) = self.seen_as(publisher, sub.client, &publish.subject) else {
                    continue;
                };
                if self.denied(&self.subscribe_deny, &seen)
                    || !pattern_matches(sub.subject.as_bytes(), seen.as_bytes())
                {
                    continue;
                }
                if let Some(queue) = &sub.queue {
                    let group = format!("{}/{queue}", self.account[sub.client]);
                    groups
                        .entry(group)
                        .or_insert_with(|| (seen, Vec::new()))
                        .1
                        .push(index);
                    continue;
                }
                let owed = !self.unhealthy.contains(&sub.client)
                    && !sub.uncertain
                    && sub.acked_at.is_some_and(|t| t < publish.written_at)
                    && sub.unsub_written_at.is_none()
                    && (sub.client != publisher || self.echo[publisher]);
                if owed {
                    self.required_checked += 1;
                    if !got.is_some_and(|g| g.contains(&index)) {
                        return Err(format!(
                            "client {} sid {} ({}) never got {publisher}:{seq} on {} \
                             (SUB written at #{}, acknowledged at #{:?}; PUB written at #{})",
                            sub.client,
                            sub.sid,
                            sub.subject,
                            seen,
                            sub.written_at,
                            sub.acked_at,
                            publish.written_at
                        ));
                    }
                }
            }
            for (queue, (seen, members)) in groups {
                // Exactly once only when no member can fail the pick: every
                // member stays subscribed and healthy, and one was surely
                // known before the publish.
                let all_stable = members.iter().all(|&i| {
                    let sub = &self.subs[i];
                    !self.unhealthy.contains(&sub.client)
                        && !sub.uncertain
                        && sub.unsub_written_at.is_none()
                        && (sub.client != publisher || self.echo[publisher])
                });
                let known = members.iter().any(|&i| {
                    self.subs[i]
                        .acked_at
                        .is_some_and(|t| t < publish.written_at)
                });
                if all_stable && known {
                    self.required_checked += 1;
                    let count = self
                        .queue_received
                        .get(&(publisher, seq, queue.clone()))
                        .copied()
                        .unwrap_or(0);
                    if count != 1 {
                        return Err(format!(
                            "queue group {queue} got {publisher}:{seq} on {seen} {count} times, not once"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
