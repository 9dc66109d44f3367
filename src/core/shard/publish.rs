//! Publishing, for every kind of publisher: one entry point,
//! [`ShardBroker::publish`], routes a message to the matching local
//! subscriptions (whatever their connection kind, see [`super::delivery`])
//! and forwards it once to each other shard with interest.
//!
//! Where a message came from decides where it may go: a client's message
//! goes to local subscribers, queue groups are picked here across all
//! shards, and other shards get one copy each; a message another shard
//! forwarded goes to local subscribers only, and to the queue groups that
//! shard picked us for (one hop inside the server). A message from a
//! cluster route goes to local clients only (never to a route: the one-hop
//! rule), to the other shards with that rule attached, and to one client
//! member of each queue group the sending server listed.
//!
//! Routes receive at most one `RMSG` per message: deliveries to a route's
//! subscriptions are gathered per route while a publish is routed (plain
//! interest, and the queue groups picked for it) and encoded once at its
//! end ([`super::route_delivery`]).

use bytes::Bytes;

use crate::connection::{ConnKind, SubOwner};
use crate::ids::{AccountId, ConnKey, ShardId, SubKey};
use crate::io::ShardIo;
use crate::mesh::QueueNames;
use crate::outbound::{encode_no_responders, no_responders_len_bound};
use crate::protocol::{Publish, RouteQueues};
use crate::subject::pattern_matches;
use crate::sublist::QueueMatch;

use super::ShardBroker;

/// Who published a message.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A connection on this shard (echo applies to it).
    Client(ConnKey),
    /// Another shard of this server forwarded it; `queues` are the groups
    /// it chose this shard to deliver to.
    Shard {
        from: ShardId,
        queues: QueueNames<'a>,
        /// It came from a route: local clients only.
        one_hop: bool,
    },
    /// The cluster route `route` (a connection of this shard) sent it;
    /// `queues` are the groups the sending server picked this server for.
    Route {
        route: ConnKey,
        queues: RouteQueues<'a>,
    },
}

/// Whether a publish reached anyone (no-responders needs to know).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No subscriber anywhere took it.
    None,
    /// A local subscriber took it, or another shard will.
    Some,
}

impl Reach {
    pub fn is_none(self) -> bool {
        self == Reach::None
    }
}

/// Scratch per destination shard for one publish.
#[derive(Default)]
pub(super) struct RemoteTarget {
    plain: bool,
    queues: Vec<Bytes>,
}

enum QueuePick {
    None,
    DeliveredLocally,
    Remote(ShardId),
}

impl<I: ShardIo> ShardBroker<I> {
    /// This message was published in `account`: deliver and forward it as
    /// its origin allows.
    pub fn publish(
        &mut self,
        account: AccountId,
        origin: Origin<'_>,
        message: &Publish<'_>,
    ) -> Reach {
        match origin {
            Origin::Client(publisher) => {
                self.originator = Some(publisher);
                let reach = self.publish_local(account, Some(publisher), message, 0);
                self.originator = None;
                reach
            }
            Origin::Shard {
                from: _,
                queues,
                one_hop,
            } => {
                self.one_hop = one_hop;
                self.publish_from_shard(account, queues, message);
                self.one_hop = false;
                Reach::Some
            }
            Origin::Route { route, queues } => {
                self.one_hop = true;
                self.route_publish = true;
                self.publish_from_route(account, route, queues, message);
                self.route_publish = false;
                self.one_hop = false;
                Reach::Some
            }
        }
    }

    /// One `Deliver` per shard in `targets` that takes `message` (its plain
    /// subscribers, or the queue groups picked there), into this unit of
    /// work's batch for that shard; leaves `targets` empty for the next
    /// message. `one_hop`: the message came from a route, so the receiving
    /// shard delivers it to local clients only.
    #[inline]
    fn push_to_shards(
        &mut self,
        targets: &mut [RemoteTarget],
        account: AccountId,
        message: &Publish<'_>,
        one_hop: bool,
    ) {
        for (shard, target) in targets.iter_mut().enumerate() {
            if target.plain || !target.queues.is_empty() {
                self.outgoing[shard].push_deliver_hop(
                    account,
                    message.subject,
                    message.reply,
                    message.header_len,
                    message.payload,
                    &target.queues,
                    one_hop,
                );
                target.queues.clear();
                target.plain = false;
            }
        }
    }

    /// A message published on this shard (by `publisher`, or by an import
    /// when `None`, after `hops` imports): local subscribers, queue groups
    /// picked across all shards, one copy to each other shard with
    /// interest, then the imports it matched.
    pub(super) fn publish_local(
        &mut self,
        account: AccountId,
        publisher: Option<ConnKey>,
        message: &Publish<'_>,
        hops: u8,
    ) -> Reach {
        let result = self.accounts.get_mut(account).matches(message.subject);
        let mut delivered = false;
        for &sk in &result.local_plain {
            delivered |= self.deliver_local(sk, publisher, message);
        }
        let mut targets = std::mem::take(&mut self.targets);
        let mut remote = false;
        for &shard in &result.remote_plain {
            targets[shard.index()].plain = true;
            remote = true;
        }
        for group in &result.queues {
            match self.pick_queue_member(group, publisher, message) {
                QueuePick::None => {}
                QueuePick::DeliveredLocally => delivered = true,
                QueuePick::Remote(shard) => {
                    targets[shard.index()].queues.push(group.name.clone());
                    remote = true;
                }
            }
        }
        if remote {
            // The client whose publish this is (through imports too): its
            // next PONG waits for the other shards.
            if let Some(conn) = self.originator.and_then(|p| self.conns.get_mut(p)) {
                conn.forwarded = true;
            }
            self.push_to_shards(&mut targets, account, message, self.one_hop);
        }
        self.targets = targets;
        // This message's routes get their one RMSG now, before the imports
        // publish theirs.
        if self.flush_route_targets(account, message) {
            remote = true;
        }
        if !self.fired.is_empty() && !self.fire_pending(message, hops, false).is_none() {
            delivered = true;
        }
        if delivered || remote {
            Reach::Some
        } else {
            Reach::None
        }
    }

    /// Fires the import subscriptions [`ShardBroker::deliver_local`] set
    /// aside for this message. The list is taken while they fire: the
    /// publishes they make collect their own.
    fn fire_pending(&mut self, message: &Publish<'_>, hops: u8, from_shard: bool) -> Reach {
        let mut fired = std::mem::take(&mut self.fired);
        let reach = self.fire_imports(&fired, message, hops, from_shard);
        fired.clear();
        self.fired = fired;
        reach
    }

    /// Chooses one member of a queue group uniformly over all members on all
    /// shards (remote shards weighted by their member counts).
    fn pick_queue_member(
        &mut self,
        group: &QueueMatch,
        publisher: Option<ConnKey>,
        message: &Publish<'_>,
    ) -> QueuePick {
        let local = self.local_weight(&group.local);
        let remote: u64 = group.remote.iter().map(|&(_, w)| u64::from(w)).sum();
        if local + remote == 0 {
            return QueuePick::None;
        }
        let mut draw = self.rng.below(local + remote);
        if draw < local {
            // Start at the drawn member; skip those that cannot take it
            // (the publisher itself with echo off, closing connections).
            let start = self.member_at(&group.local, draw);
            for i in 0..group.local.len() {
                let sk = group.local[(start + i) % group.local.len()];
                if self.deliver_queue_member(sk, publisher, message, &group.name) {
                    return QueuePick::DeliveredLocally;
                }
            }
            if remote == 0 {
                return QueuePick::None;
            }
            draw = local + self.rng.below(remote);
        }
        let mut offset = draw - local;
        for &(shard, weight) in &group.remote {
            if offset < u64::from(weight) {
                return QueuePick::Remote(shard);
            }
            offset -= u64::from(weight);
        }
        QueuePick::None
    }

    /// A message another shard forwarded: every local plain subscriber,
    /// plus one local member of each queue group it picked us for.
    fn publish_from_shard(
        &mut self,
        account: AccountId,
        queues: QueueNames<'_>,
        message: &Publish<'_>,
    ) {
        let result = self.accounts.get_mut(account).matches(message.subject);
        for &sk in &result.local_plain {
            self.deliver_local(sk, None, message);
        }
        let fired = std::mem::take(&mut self.fired);
        for name in queues {
            let group = result.queues.iter().find(|g| g.name[..] == *name);
            let members: &[SubKey] = group.map(|g| &g.local[..]).unwrap_or_default();
            let mut delivered = false;
            if let Some(group) = group.filter(|_| !members.is_empty()) {
                let name = &group.name;
                let weight = self.local_weight(members);
                let draw = self.rng.below(weight.max(1));
                let start = self.member_at(members, draw);
                for i in 0..members.len() {
                    let sk = members[(start + i) % members.len()];
                    if self.deliver_queue_member(sk, None, message, name) {
                        delivered = true;
                        break;
                    }
                }
            }
            if !delivered {
                self.stats.queue_no_member += 1;
            }
        }
        self.flush_route_targets(account, message);
        self.fired = fired;
        if !self.fired.is_empty() {
            self.fire_pending(message, 0, true);
        }
    }

    /// No one took a request: tell the requester at once (status 503) on its
    /// subscription that matches the reply subject, if it asked for that.
    pub(super) fn send_no_responders(&mut self, publisher: ConnKey, reply: &[u8]) {
        let Some(conn) = self.conns.get(publisher) else {
            return;
        };
        if !(conn.options.no_responders && conn.options.headers) {
            return;
        }
        let target = conn.subs.keys().find(|&sk| {
            self.subs
                .get(sk.index())
                .is_some_and(|sub| sub.queue().is_none() && pattern_matches(sub.subject(), reply))
        });
        let Some(sub) = target.and_then(|sk| self.subs.get(sk.index())) else {
            return;
        };
        let sid = &sub.sid;
        self.conns[publisher].output.append(
            &mut self.pool,
            no_responders_len_bound(reply, sid),
            |out| encode_no_responders(out, reply, sid),
        );
        self.mark_dirty(publisher);
    }
}

impl<I: ShardIo> ShardBroker<I> {
    /// The members a local queue group stands for: one per client, the
    /// advertised member count for a route's queue interest.
    pub(super) fn local_weight(&self, members: &[SubKey]) -> u64 {
        members
            .iter()
            .map(|sk| self.subs.get(sk.index()).map_or(0, |s| u64::from(s.weight)))
            .sum()
    }

    /// The position of the member that draw `draw` (below the group's
    /// [`ShardBroker::local_weight`]) falls on.
    pub(super) fn member_at(&self, members: &[SubKey], mut draw: u64) -> usize {
        for (i, sk) in members.iter().enumerate() {
            let weight = self.subs.get(sk.index()).map_or(0, |s| u64::from(s.weight));
            if draw < weight {
                return i;
            }
            draw -= weight;
        }
        0
    }

    /// A message from route `route`, on this (the cluster) shard: local
    /// client subscribers, the other shards (with the one-hop rule), and one
    /// client member server-wide of each queue group the sender listed.
    ///
    /// Local members are preferred, as nats-server 2.9 does for a message
    /// from a route: the draw is over client members only (route members
    /// do not count), and only when none of them could take it (gone since
    /// the sender's pick, or its deny rules refuse the subject) does the
    /// group's message go on to another route with a member, so that the
    /// group still gets it once. That is the one exception to the one-hop
    /// rule (see [`ShardBroker::route_queue_fallback`]).
    fn publish_from_route(
        &mut self,
        account: AccountId,
        route: ConnKey,
        queues: RouteQueues<'_>,
        message: &Publish<'_>,
    ) {
        let result = self.accounts.get_mut(account).matches(message.subject);
        for &sk in &result.local_plain {
            self.deliver_local(sk, None, message);
        }
        let mut targets = std::mem::take(&mut self.targets);
        for &shard in &result.remote_plain {
            targets[shard.index()].plain = true;
        }
        let mut onward = false;
        for name in queues {
            let Some(group) = result.queues.iter().find(|g| g.name[..] == *name) else {
                self.stats.queue_no_member += 1;
                continue;
            };
            match self.pick_route_queue_member(group, message) {
                QueuePick::DeliveredLocally => {}
                QueuePick::Remote(shard) => {
                    targets[shard.index()].queues.push(group.name.clone());
                }
                QueuePick::None => {
                    if self.route_queue_fallback(group, route) {
                        onward = true;
                    } else {
                        self.stats.queue_no_member += 1;
                    }
                }
            }
        }
        self.push_to_shards(&mut targets, account, message, true);
        self.targets = targets;
        if onward {
            self.flush_route_targets(account, message);
        }
        if !self.fired.is_empty() {
            self.fire_pending(message, 0, false);
        }
    }

    /// One client member server-wide of `group` for a message from a route:
    /// uniform over this shard's client members and the other shards'
    /// member counts; route members are not candidates (one hop; other
    /// shards hold no route interest, routes live on this shard only).
    /// `None` when no client member could take it.
    fn pick_route_queue_member(&mut self, group: &QueueMatch, message: &Publish<'_>) -> QueuePick {
        let local = group
            .local
            .iter()
            .filter(|&&sk| !self.is_route_sub(sk))
            .count() as u64;
        let remote: u64 = group.remote.iter().map(|&(_, w)| u64::from(w)).sum();
        if local + remote == 0 {
            return QueuePick::None;
        }
        let draw = self.rng.below(local + remote);
        if draw < local {
            // From the drawn client member on (route members refuse:
            // `one_hop` is set), the first that takes it.
            let members = &group.local;
            let start = members
                .iter()
                .enumerate()
                .filter(|(_, &sk)| !self.is_route_sub(sk))
                .nth(draw as usize)
                .map_or(0, |(i, _)| i);
            for i in 0..members.len() {
                let sk = members[(start + i) % members.len()];
                if self.deliver_local(sk, None, message) {
                    return QueuePick::DeliveredLocally;
                }
            }
        }
        // The drawn shard, or (no member here could take it) the first
        // other shard with members.
        let mut offset = draw.saturating_sub(local);
        let mut chosen = group.remote.first().map(|&(s, _)| s);
        for &(shard, weight) in &group.remote {
            if offset < u64::from(weight) {
                chosen = Some(shard);
                break;
            }
            offset -= u64::from(weight);
        }
        chosen.map_or(QueuePick::None, QueuePick::Remote)
    }

    /// No client member of `group` could take a message from route `from`:
    /// it goes on to a route with a member of the group, as nats-server
    /// hands it to the remote member it held back. That member is one of
    /// the group's route members at random, the sending route included, and
    /// then the message is dropped, as nats-server's echo check drops it:
    /// between servers whose members all refuse a subject, a message then
    /// goes around a few times at most instead of for ever. Returns whether
    /// a route took it.
    ///
    /// Only this shard's refusals are seen here: when the draw picked
    /// another shard and its member refuses there, that shard cannot reach
    /// the routes and the message is counted in `queue_no_member`.
    fn route_queue_fallback(&mut self, group: &QueueMatch, from: ConnKey) -> bool {
        let routes = group
            .local
            .iter()
            .filter(|&&sk| self.is_route_sub(sk))
            .count();
        if routes == 0 {
            return false;
        }
        let pick = self.rng.below(routes as u64) as usize;
        let Some(&sk) = group
            .local
            .iter()
            .filter(|&&sk| self.is_route_sub(sk))
            .nth(pick)
        else {
            return false;
        };
        let Some(SubOwner::Conn(owner)) = self.subs.get(sk.index()).map(|s| s.owner) else {
            return false;
        };
        if owner == from || self.is_closing(owner) {
            return false;
        }
        self.route_target(owner, Some(&group.name));
        true
    }

    /// Whether subscription `sk` belongs to a route connection.
    pub(super) fn is_route_sub(&self, sk: SubKey) -> bool {
        match self.subs.get(sk.index()).map(|s| s.owner) {
            Some(SubOwner::Conn(key)) => self
                .conns
                .get(key)
                .is_some_and(|c| c.kind == ConnKind::Route),
            _ => false,
        }
    }
}
