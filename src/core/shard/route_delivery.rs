//! Messages to cluster routes: one `RMSG` (or `HMSG`) per route per
//! message, however many of the route's subscriptions match, naming the
//! queue groups this server picked that route's server for (the `+`/`|`
//! forms nats-server 2.9 sends).
//!
//! While a publish is routed, deliveries to route subscriptions only note
//! the route (and the group, for a queue pick) in a per-route target; the
//! publish then encodes each target once. Routes live on the cluster shard,
//! so the other shards forward such messages to it like any other interest
//! and this happens there.

use bytes::Bytes;

use crate::connection::{CloseReason, SubOwner};
use crate::ids::{AccountId, ConnKey, SubKey};
use crate::io::ShardIo;
use crate::protocol::Publish;

use super::ShardBroker;

/// What one message owes one route.
#[derive(Debug)]
pub struct RouteTarget {
    route: ConnKey,
    /// Queue groups picked for the route's server.
    queues: Vec<Bytes>,
}

impl<I: ShardIo> ShardBroker<I> {
    /// Notes that the message being routed goes to `route` (for `queue`, if
    /// a queue pick chose it).
    pub(super) fn route_target(&mut self, route: ConnKey, queue: Option<&Bytes>) {
        let target = match self.route_targets.iter().position(|t| t.route == route) {
            Some(pos) => &mut self.route_targets[pos],
            None => {
                self.route_targets.push(RouteTarget {
                    route,
                    queues: Vec::new(),
                });
                let last = self.route_targets.len() - 1;
                &mut self.route_targets[last]
            }
        };
        if let Some(queue) = queue {
            if !target.queues.contains(queue) {
                target.queues.push(queue.clone());
            }
        }
    }

    /// Delivers to queue member `sk` of group `name`: a client receives it
    /// at once, a route gets the group named in its `RMSG`.
    pub(super) fn deliver_queue_member(
        &mut self,
        sk: SubKey,
        publisher: Option<ConnKey>,
        message: &Publish<'_>,
        name: &Bytes,
    ) -> bool {
        if !self.is_route_sub(sk) {
            return self.deliver_local(sk, publisher, message);
        }
        if self.one_hop {
            return false;
        }
        let Some(SubOwner::Conn(route)) = self.subs.get(sk.index()).map(|s| s.owner) else {
            return false;
        };
        if self.is_closing(route) {
            return false;
        }
        self.route_target(route, Some(name));
        true
    }

    /// Encodes the message being routed once for each route it owes,
    /// published in `account`. Returns whether any route took it.
    pub(super) fn flush_route_targets(
        &mut self,
        account: AccountId,
        message: &Publish<'_>,
    ) -> bool {
        if self.route_targets.is_empty() {
            return false;
        }
        let mut targets = std::mem::take(&mut self.route_targets);
        // Borrowed, not cloned: the account table's Arc is shared by every
        // shard, and a refcount per message would bounce its cache line.
        let account_name = self.limits.accounts.name(account).as_bytes();
        let mut sent = false;
        let mut slow = Vec::new();
        for target in targets.drain(..) {
            let Some(conn) = self.conns.get_mut(target.route) else {
                continue;
            };
            if conn.closing.is_some() {
                continue;
            }
            // Only a route whose wildcard interest covers an export deny
            // rule has a check (see `super::route_permissions`): the one
            // per-message permission test on the way to a route.
            if let Some(check) = &mut conn.permissions {
                if !check.may_receive(message.subject) {
                    continue;
                }
            }
            let headers = conn.options.headers;
            let bound = account_name.len()
                + message.subject.len()
                + message.reply.map_or(0, <[u8]>::len)
                + target.queues.iter().map(|q| q.len() + 1).sum::<usize>()
                + message.payload.len()
                + 64;
            conn.output.append(&mut self.pool, bound, |out| {
                encode_rmsg(out, account_name, message, &target.queues, headers)
            });
            conn.traffic.out_msgs += 1;
            conn.traffic.out_bytes += message.payload.len() as u64;
            self.stats.out_msgs += 1;
            self.stats.out_bytes += message.payload.len() as u64;
            sent = true;
            let over_limit = conn.output.pending_bytes() > self.limits.max_pending;
            // A route that falls behind holds back its publishers like a
            // slow client does (bounded by its stall budget).
            let over_stall = conn.output.wants_stall(self.now, self.stall_threshold);
            if over_limit {
                slow.push(target.route);
            } else {
                if conn.output.mark_dirty() {
                    self.dirty.push(target.route);
                }
                if over_stall && !self.stalled.contains(&target.route) {
                    self.stalled.push(target.route);
                }
            }
        }
        self.route_targets = targets;
        for route in slow {
            self.begin_close(route, CloseReason::SlowConsumerPendingBytes);
        }
        sent
    }
}

/// `RMSG <account> <subject> [<reply> | + <reply> <q>... | \| <q>...]
/// <size>`, or `HMSG` with the header size before the total when the
/// message has headers and the peer takes them (else the headers are
/// dropped, as nats-server does).
pub fn encode_rmsg(
    out: &mut Vec<u8>,
    account: &[u8],
    message: &Publish<'_>,
    queues: &[Bytes],
    peer_headers: bool,
) {
    let mut itoa_buf = itoa::Buffer::new();
    let (verb, header_len, body) = match message.header_len {
        Some(h) if peer_headers => (&b"HMSG "[..], Some(h), message.payload),
        Some(h) => (
            &b"RMSG "[..],
            None,
            message.payload.get(h..).unwrap_or_default(),
        ),
        None => (&b"RMSG "[..], None, message.payload),
    };
    out.extend_from_slice(verb);
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(message.subject);
    out.push(b' ');
    if !queues.is_empty() {
        match message.reply {
            Some(reply) => {
                out.extend_from_slice(b"+ ");
                out.extend_from_slice(reply);
                out.push(b' ');
            }
            None => out.extend_from_slice(b"| "),
        }
        for q in queues {
            out.extend_from_slice(q);
            out.push(b' ');
        }
    } else if let Some(reply) = message.reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
    if let Some(h) = header_len {
        out.extend_from_slice(itoa_buf.format(h).as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(itoa_buf.format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rmsg(
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        queues: &[&[u8]],
        headers: bool,
    ) -> String {
        let message = Publish {
            subject: b"qq",
            reply,
            header_len,
            payload: if header_len.is_some() {
                b"NATS/1.0\r\n\r\nq"
            } else {
                b"q"
            },
        };
        let queues: Vec<Bytes> = queues.iter().map(|q| Bytes::copy_from_slice(q)).collect();
        let mut out = Vec::new();
        encode_rmsg(&mut out, b"$G", &message, &queues, headers);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_forms_nats_server_sends() {
        assert_eq!(rmsg(None, None, &[], true), "RMSG $G qq 1\r\nq\r\n");
        assert_eq!(
            rmsg(Some(b"r.1"), None, &[], true),
            "RMSG $G qq r.1 1\r\nq\r\n"
        );
        assert_eq!(
            rmsg(None, None, &[b"workers"], true),
            "RMSG $G qq | workers 1\r\nq\r\n"
        );
        assert_eq!(
            rmsg(Some(b"_INBOX.r"), None, &[b"w1", b"w2"], true),
            "RMSG $G qq + _INBOX.r w1 w2 1\r\nq\r\n"
        );
        assert_eq!(
            rmsg(None, Some(12), &[], true),
            "HMSG $G qq 12 13\r\nNATS/1.0\r\n\r\nq\r\n"
        );
        assert_eq!(rmsg(None, Some(12), &[], false), "RMSG $G qq 1\r\nq\r\n");
    }
}
