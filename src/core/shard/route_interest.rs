//! Server-wide interest → `RS+`/`RS-` to the routes, on the cluster shard.
//!
//! The cluster shard keeps, per (account, subject, queue), the number of
//! subscriptions of this server's clients on every shard: its own, counted
//! as they come and go, and the other shards', from the interest deltas
//! they send it over the rings (the same deltas that feed its subscription
//! index replica). A route's own interest is never counted: interest, like
//! messages, travels one hop.
//!
//! As nats-server: a plain subject is announced (`RS+ <account> <subject>`)
//! when its count goes from 0 to 1 and withdrawn (`RS-`) when it returns to
//! 0; a queue group is announced with its member count as weight on every
//! change (`RS+ <account> <subject> <queue> <weight>`) and withdrawn with
//! `RS- <account> <subject> <queue>`. A newly registered route gets the
//! whole table at once.
//!
//! With `cluster.permissions.import`, interest outside it is counted but
//! never announced (see [`crate::route_permissions`]).
//!
//! Counts are the cluster shard's view: a change on another shard reaches
//! it one ring batch later, which only delays the announcement.

use std::collections::HashMap;

use crate::ids::{AccountId, ConnKey};
use crate::io::ShardIo;

use super::ShardBroker;

/// (account, subject, queue) of some client interest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InterestKey {
    pub account: AccountId,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
}

/// The server-wide client interest counts.
#[derive(Debug, Default)]
pub struct ServerInterest {
    counts: HashMap<InterestKey, u32>,
}

impl ServerInterest {
    /// Applies `delta`; returns the new count if routes must hear of it.
    fn apply(&mut self, key: InterestKey, delta: i32) -> Option<u32> {
        let queue = key.queue.is_some();
        let old = self.counts.get(&key).copied().unwrap_or(0);
        let new = (i64::from(old) + i64::from(delta)).clamp(0, i64::from(u32::MAX)) as u32;
        if new == old {
            return None;
        }
        if new == 0 {
            self.counts.remove(&key);
        } else {
            self.counts.insert(key, new);
        }
        let announce = queue || old == 0 || new == 0;
        announce.then_some(new)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&InterestKey, u32)> {
        self.counts.iter().map(|(k, &n)| (k, n))
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// Appends `RS+`/`RS-` for `key` at `count` (0: withdrawn).
pub fn encode_interest(out: &mut Vec<u8>, account: &str, key: &InterestKey, count: u32) {
    out.extend_from_slice(if count > 0 { b"RS+ " } else { b"RS- " });
    out.extend_from_slice(account.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&key.subject);
    if let Some(queue) = &key.queue {
        out.push(b' ');
        out.extend_from_slice(queue);
        if count > 0 {
            out.push(b' ');
            out.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

impl<I: ShardIo> ShardBroker<I> {
    /// Client interest of this server changed (on this shard, or on another
    /// one as its delta arrives). A no-op except on the cluster shard.
    pub(super) fn cluster_interest_changed(
        &mut self,
        account: AccountId,
        subject: &[u8],
        queue: Option<&[u8]>,
        delta: i32,
    ) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let key = InterestKey {
            account,
            subject: subject.into(),
            queue: queue.map(Into::into),
        };
        let Some(count) = cluster.interest.apply(key.clone(), delta) else {
            return;
        };
        // Outside `import`: the routes never hear of it (nor of its end).
        if !cluster.import.as_mut().is_none_or(|i| i.announces(subject)) {
            return;
        }
        let routes: Vec<ConnKey> = cluster.registered_routes().collect();
        if routes.is_empty() {
            return;
        }
        let mut line = Vec::with_capacity(subject.len() + 48);
        encode_interest(&mut line, self.limits.accounts.name(account), &key, count);
        for route in routes {
            if !self.is_closing(route) {
                self.queue_bytes(route, &line);
            }
        }
    }

    /// A route just registered: it gets all current client interest.
    pub(super) fn send_all_interest(&mut self, route: ConnKey) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let mut burst = Vec::new();
        for (key, count) in cluster.interest.iter() {
            if !cluster
                .import
                .as_mut()
                .is_none_or(|i| i.announces(&key.subject))
            {
                continue;
            }
            encode_interest(
                &mut burst,
                self.limits.accounts.name(key.account),
                key,
                count,
            );
        }
        if !burst.is_empty() {
            self.queue_bytes(route, &burst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(subject: &str, queue: Option<&str>) -> InterestKey {
        InterestKey {
            account: AccountId::GLOBAL,
            subject: subject.as_bytes().into(),
            queue: queue.map(|q| q.as_bytes().into()),
        }
    }

    #[test]
    fn plain_on_edges_queues_on_every_change() {
        let mut interest = ServerInterest::default();
        assert_eq!(interest.apply(key("foo", None), 1), Some(1));
        assert_eq!(interest.apply(key("foo", None), 1), None);
        assert_eq!(interest.apply(key("foo", None), -1), None);
        assert_eq!(interest.apply(key("foo", None), -1), Some(0));
        assert_eq!(interest.apply(key("bar", Some("g")), 1), Some(1));
        assert_eq!(interest.apply(key("bar", Some("g")), 1), Some(2));
        assert_eq!(interest.apply(key("bar", Some("g")), -2), Some(0));
        assert!(interest.is_empty());
        let mut out = Vec::new();
        encode_interest(&mut out, "$G", &key("bar", Some("grp")), 1);
        encode_interest(&mut out, "$G", &key("foo", None), 1);
        encode_interest(&mut out, "$G", &key("foo", None), 0);
        encode_interest(&mut out, "$G", &key("bar", Some("grp")), 0);
        assert_eq!(
            out,
            b"RS+ $G bar grp 1\r\nRS+ $G foo\r\nRS- $G foo\r\nRS- $G bar grp\r\n"
        );
    }
}
