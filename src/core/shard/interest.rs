//! Interest: subscriptions enter and leave the shard's index here, whoever
//! holds them, and every change is replicated to the other shards as a
//! count in their index replicas (applied in [`super::peers`]).

use std::num::NonZeroU64;

use bytes::Bytes;

use crate::account::limits::tighter;
use crate::connection::{ConnKind, Sid, SubOwner, Subscription};
use crate::ids::{AccountId, ConnKey, SubKey};
use crate::io::ShardIo;
use crate::mesh::MeshItem;
use crate::subject::is_valid_subscribe_subject;

use super::ShardBroker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    InvalidSubject,
    /// The connection already has a subscription with this sid (the first
    /// one stays).
    DuplicateSid,
    /// `max_subscriptions` for this connection reached.
    TooMany,
}

impl<I: ShardIo> ShardBroker<I> {
    /// This interest exists: connection `key` (of any kind) subscribes.
    pub fn subscribe(
        &mut self,
        key: ConnKey,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Result<SubKey, SubscribeError> {
        let account = self.conns[key].account;
        self.subscribe_in(key, account, subject, queue, sid, 1)
    }

    /// [`ShardBroker::subscribe`] in a given account, standing for `weight`
    /// queue members (a route's interest names its account and weight).
    pub(super) fn subscribe_in(
        &mut self,
        key: ConnKey,
        account: AccountId,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
        weight: u32,
    ) -> Result<SubKey, SubscribeError> {
        if !is_valid_subscribe_subject(subject) {
            return Err(SubscribeError::InvalidSubject);
        }
        let conn = &self.conns[key];
        if conn.subs.contains(sid, &self.subs) {
            return Err(SubscribeError::DuplicateSid);
        }
        // Routes are not clients: nats-server puts no limit on their
        // subscriptions. A client has the tighter of the server's and its
        // account's.
        let max_subs = match conn.kind {
            ConnKind::Client => {
                let account_max = self
                    .limits
                    .accounts
                    .get(conn.account)
                    .and_then(|account| account.limits.max_subscriptions);
                let own = conn.user_limits.max_subscriptions;
                let account_max = match (account_max, own) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                tighter(self.limits.max_subscriptions, account_max)
            }
            ConnKind::Route => None,
        };
        if max_subs.is_some_and(|max| conn.subs.len() as u64 >= max) {
            return Err(SubscribeError::TooMany);
        }
        let sk = SubKey::new(self.subs.insert(Subscription::new(
            SubOwner::Conn(key),
            account,
            Sid::new(sid),
            subject,
            queue,
            weight,
        )));
        self.conns[key].subs.insert(sk, &self.subs);
        self.accounts
            .get_mut(account)
            .insert_local(subject, queue, sk);
        self.broadcast_interest(Some(key), account, subject, queue, weight as i32);
        Ok(sk)
    }

    /// `UNSUB`: at once, or after `max` deliveries in all.
    pub fn unsubscribe(&mut self, sk: SubKey, max: Option<u64>) {
        let Some(sub) = self.subs.get_mut(sk.index()) else {
            return;
        };
        match max {
            Some(max) if max > sub.delivered => sub.max = NonZeroU64::new(max),
            _ => self.remove_subscription(sk),
        }
    }

    pub(super) fn remove_subscription(&mut self, sk: SubKey) {
        let Some(sub) = self.subs.try_remove(sk.index()) else {
            return;
        };
        self.accounts
            .get_mut(sub.account)
            .remove_local(sub.subject(), sub.queue(), sk);
        let key = match sub.owner {
            SubOwner::Conn(key) => key,
            // Imports are the shard's own (never replicated) and leave only
            // with a new account table; see `super::accounts`.
            _ => return,
        };
        if let Some(conn) = self.conns.get_mut(key) {
            conn.subs.remove(&sub.sid, sk);
        }
        self.broadcast_interest(
            Some(key),
            sub.account,
            sub.subject(),
            sub.queue(),
            -(sub.weight as i32),
        );
    }

    /// Tells every other shard that connection `key` (or this shard, for
    /// its response subscriptions) changed its interest in `account`. The
    /// subject and queue are copied once here, only when there are other
    /// shards, and shared by every peer's batch.
    pub(super) fn broadcast_interest(
        &mut self,
        key: Option<ConnKey>,
        account: AccountId,
        subject: &[u8],
        queue: Option<&[u8]>,
        delta: i32,
    ) {
        // The routes hear of client interest only, never of a route's own.
        let from_route = key
            .and_then(|key| self.conns.get(key))
            .is_some_and(|c| c.kind == ConnKind::Route);
        if !from_route {
            self.cluster_interest_changed(account, subject, queue, delta);
        }
        if self.shard_count == 1 {
            return;
        }
        let subject = Bytes::copy_from_slice(subject);
        let queue = queue.map(Bytes::copy_from_slice);
        if let Some(conn) = key.and_then(|key| self.conns.get_mut(key)) {
            conn.forwarded = true;
        }
        for dst in self.peers() {
            self.outgoing[dst.index()].push(MeshItem::Interest {
                account,
                subject: subject.clone(),
                queue: queue.clone(),
                delta,
            });
        }
    }
}
