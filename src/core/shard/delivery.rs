//! The final step of every delivery: one message to one local subscription,
//! encoded the way its connection's kind receives messages (a client gets
//! `MSG`/`HMSG`; a route gets one `RMSG` per message, gathered here and
//! encoded in [`super::route_delivery`]; an internal subscriber a call),
//! with the per-subscription rules that only the owning shard can apply:
//! echo, auto-unsubscribe counts, max_pending and the stall threshold.

use crate::connection::{CloseReason, ConnKind, SubOwner};
use crate::ids::{ConnKey, SubKey};
use crate::io::ShardIo;
use crate::outbound::{encode_msg, msg_len_bound};
use crate::protocol::Publish;

use super::ShardBroker;

impl<I: ShardIo> ShardBroker<I> {
    /// Queues one delivery to a local subscription. Returns false when the
    /// subscription is gone or may not receive it (echo off, closing).
    pub(super) fn deliver_local(
        &mut self,
        sk: SubKey,
        publisher: Option<ConnKey>,
        message: &Publish<'_>,
    ) -> bool {
        let Some(sub) = self.subs.get_mut(sk.index()) else {
            return false;
        };
        let SubOwner::Conn(key) = sub.owner else {
            // An import: it fires once this message's deliveries are done
            // (see `super::imports`).
            self.fired.push(sk);
            return false;
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.closing.is_some() || (publisher == Some(key) && !conn.options.echo) {
            return false;
        }
        if conn.kind == ConnKind::Route {
            // One RMSG per route per message, encoded when the publish is
            // routed; never for a message that came from a route.
            if self.one_hop {
                return false;
            }
            self.route_target(key, None);
            return true;
        }
        // A wildcard subscription the deny rules did not refuse still may
        // not receive what they cover (nats-server skips those silently);
        // with `allow_responses`, the reply subject becomes publishable.
        if let Some(check) = &mut conn.permissions {
            if check.filters_deliveries() && !check.may_receive(message.subject) {
                return false;
            }
            if let (true, Some(reply)) = (check.tracks_replies(), message.reply) {
                check.reply_received(reply, self.now);
            }
        }
        sub.delivered += 1;
        let Publish {
            subject,
            reply,
            header_len,
            payload,
        } = *message;
        match conn.kind {
            ConnKind::Client => {
                let headers = conn.options.headers;
                conn.output.append(
                    &mut self.pool,
                    msg_len_bound(subject, &sub.sid, reply, payload),
                    |out| encode_msg(out, subject, &sub.sid, reply, header_len, payload, headers),
                );
            }
            // Handled above: routes are gathered, not encoded per sub.
            ConnKind::Route => return false,
        }
        self.stats.out_msgs += 1;
        self.stats.out_bytes += payload.len() as u64;
        conn.traffic.out_msgs += 1;
        conn.traffic.out_bytes += payload.len() as u64;
        let over_limit = conn.output.pending_bytes() > self.limits.max_pending;
        let finished = sub.max.is_some_and(|max| sub.delivered >= max.get());
        let over_stall = conn.output.wants_stall(self.now, self.stall_threshold);
        if over_limit {
            self.begin_close(key, CloseReason::SlowConsumerPendingBytes);
        } else {
            // `mark_dirty` without looking the connection up again.
            if conn.output.mark_dirty() {
                self.dirty.push(key);
            }
            if over_stall && !self.stalled.contains(&key) {
                self.stalled.push(key);
            }
        }
        if finished {
            self.remove_subscription(sk);
        }
        true
    }
}
