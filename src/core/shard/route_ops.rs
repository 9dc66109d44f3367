//! What a cluster route's ops do, on the cluster shard: the input loop
//! and `PING`/`PONG`; interest (`RS+`/`RS-` become the route connection's
//! subscriptions, in the named account, with queue weights); messages
//! (`RMSG`/`HMSG`, published with the one-hop rule). The handshake, the
//! route table and gossip are in [`super::route_handshake`].
//!
//! Concurrency contract: only the cluster shard (shard 0) has route
//! connections; its tasks reach them through the state machine like
//! everything else, one synchronous step at a time.

use std::time::Instant;

use crate::connection::{AuthState, CloseReason};
use crate::ids::{AccountId, ConnKey};
use crate::io::ShardIo;
use crate::outbound::PONG;
use crate::payload_trace::traced_payload;
use crate::protocol::{Publish, RouteOp, RouteParseError, RouteParser, RoutedMsg};

use super::publish::Origin;
use super::{InputOutcome, Next, ShardBroker};

impl<I: ShardIo> ShardBroker<I> {
    /// Whether this shard runs the cluster's routes.
    pub fn is_cluster_shard(&self) -> bool {
        self.cluster.is_some()
    }

    /// Parses and handles as many complete route ops from `buf` as possible.
    pub fn process_route_input(
        &mut self,
        key: ConnKey,
        parser: &mut RouteParser,
        buf: &[u8],
        now: Instant,
    ) -> InputOutcome {
        self.set_now(now);
        self.note_ingress(now);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.last_activity = now;
            conn.liveness.heard_from();
        }
        let mut consumed = 0;
        loop {
            if self.is_closing(key) {
                return InputOutcome {
                    consumed,
                    next: Next::Close,
                };
            }
            match parser.next(&buf[consumed..]) {
                Ok(None) => {
                    return InputOutcome {
                        consumed,
                        next: Next::NeedMore,
                    }
                }
                Ok(Some((op, used))) => {
                    consumed += used;
                    if self.handle_route_op(key, op) == Next::Close {
                        return InputOutcome {
                            consumed,
                            next: Next::Close,
                        };
                    }
                }
                Err(error) => {
                    let conn = &self.conns[key];
                    crate::error!(
                        "{}:{} - rid:{} - Route Error {:?}",
                        conn.ip,
                        conn.port,
                        conn.client_id,
                        error
                    );
                    let text = match error {
                        RouteParseError::UnknownOperation => Some("Unknown Protocol Operation"),
                        _ => None,
                    };
                    let next = self.close_with_error(key, text, CloseReason::ParseError);
                    return InputOutcome { consumed, next };
                }
            }
        }
    }

    fn handle_route_op(&mut self, key: ConnKey, op: RouteOp<'_>) -> Next {
        if crate::log::trace_enabled() {
            let conn = &self.conns[key];
            crate::trace!(
                "{}:{} - rid:{} - <<- [{}]",
                conn.ip,
                conn.port,
                conn.client_id,
                route_op_text(&op)
            );
            if let RouteOp::Msg(m) = &op {
                crate::trace!(
                    "{}:{} - rid:{} - <<- MSG_PAYLOAD: {}",
                    conn.ip,
                    conn.port,
                    conn.client_id,
                    traced_payload(m.payload, crate::log::max_traced_msg_len())
                );
            }
        }
        let pending_auth = matches!(self.conns[key].auth, AuthState::Pending { .. });
        if pending_auth && !matches!(op, RouteOp::Connect(_)) {
            return self.close_with_error(
                key,
                Some("Authorization Violation"),
                CloseReason::AuthenticationFailure,
            );
        }
        match op {
            RouteOp::Connect(json) => self.route_connect(key, json),
            RouteOp::Info(json) => self.route_info(key, json),
            RouteOp::Ping => {
                self.queue_bytes(key, PONG);
                Next::NeedMore
            }
            RouteOp::Pong => {
                let now = self.now;
                self.conns[key].liveness.pong(now);
                Next::NeedMore
            }
            RouteOp::Ok => Next::NeedMore,
            RouteOp::Err(text) => {
                let conn = &self.conns[key];
                crate::error!(
                    "{}:{} - rid:{} - Route Error {}",
                    conn.ip,
                    conn.port,
                    conn.client_id,
                    String::from_utf8_lossy(text)
                );
                self.begin_close(key, CloseReason::ParseError);
                Next::Close
            }
            RouteOp::Sub {
                account,
                subject,
                queue,
            } => {
                self.route_sub(key, account, subject, queue);
                Next::NeedMore
            }
            RouteOp::Unsub {
                account,
                subject,
                queue,
            } => {
                self.route_unsub(key, account, subject, queue);
                Next::NeedMore
            }
            RouteOp::Msg(msg) => {
                self.route_msg(key, msg);
                Next::NeedMore
            }
        }
    }

    /// The subscription key of a route's interest: nats-server's
    /// `<account> <subject>[ <queue>]`.
    fn route_sid(account: &[u8], subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
        let mut sid = Vec::with_capacity(account.len() + subject.len() + 16);
        sid.extend_from_slice(account);
        sid.push(b' ');
        sid.extend_from_slice(subject);
        if let Some(queue) = queue {
            sid.push(b' ');
            sid.extend_from_slice(queue);
        }
        sid
    }

    fn route_account(&self, key: ConnKey, account: &[u8], subject: &[u8]) -> Option<AccountId> {
        let name = std::str::from_utf8(account).ok()?;
        let id = self.limits.accounts.lookup(name);
        if id.is_none() {
            // nats-server (static accounts) logs this and ignores the line;
            // `$SYS` traffic from 2.9 peers lands here when no system
            // account is configured.
            let conn = &self.conns[key];
            crate::debug!(
                "{}:{} - rid:{} - Unknown account \"{}\" for remote subject \"{}\"",
                conn.ip,
                conn.port,
                conn.client_id,
                name,
                String::from_utf8_lossy(subject)
            );
        }
        id
    }

    fn route_sub(
        &mut self,
        key: ConnKey,
        account_name: &[u8],
        subject: &[u8],
        queue: Option<(&[u8], u32)>,
    ) {
        let Some(account) = self.route_account(key, account_name, subject) else {
            return;
        };
        if !self.route_may_export(key, subject) {
            return;
        }
        let sid = Self::route_sid(account_name, subject, queue.map(|(q, _)| q));
        if let Some(sk) = self.conns[key].subs.get(&sid[..], &self.subs) {
            // Known interest: a queue's new weight.
            let Some((queue, weight)) = queue else {
                return;
            };
            let Some(sub) = self.subs.get_mut(sk.index()) else {
                return;
            };
            let delta = i64::from(weight) - i64::from(sub.weight);
            if delta != 0 {
                sub.weight = weight;
                self.broadcast_interest(Some(key), account, subject, Some(queue), delta as i32);
            }
            return;
        }
        let (queue, weight) = match queue {
            Some((q, w)) => (Some(q), w),
            None => (None, 1),
        };
        if self
            .subscribe_in(key, account, subject, queue, &sid, weight)
            .is_err()
        {
            let conn = &self.conns[key];
            crate::error!(
                "{}:{} - rid:{} - Could not insert subscription \"{}\"",
                conn.ip,
                conn.port,
                conn.client_id,
                String::from_utf8_lossy(subject)
            );
        }
    }

    fn route_unsub(
        &mut self,
        key: ConnKey,
        account_name: &[u8],
        subject: &[u8],
        queue: Option<&[u8]>,
    ) {
        let sid = Self::route_sid(account_name, subject, queue);
        if let Some(sk) = self.conns[key].subs.get(&sid[..], &self.subs) {
            self.remove_subscription(sk);
        }
    }

    fn route_msg(&mut self, key: ConnKey, msg: RoutedMsg<'_>) {
        let conn = &mut self.conns[key];
        conn.traffic.in_msgs += 1;
        conn.traffic.in_bytes += msg.payload.len() as u64;
        self.stats.in_msgs += 1;
        self.stats.in_bytes += msg.payload.len() as u64;
        let Some(account) = self.route_account(key, msg.account, msg.subject) else {
            return;
        };
        let message = Publish {
            subject: msg.subject,
            reply: msg.reply,
            header_len: msg.header_len,
            payload: msg.payload,
        };
        self.publish(
            account,
            Origin::Route {
                route: key,
                queues: msg.queues,
            },
            &message,
        );
    }
}

/// A route op as a trace line shows it (nats-server's `-V` style).
fn route_op_text(op: &RouteOp<'_>) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match op {
        RouteOp::Info(json) => format!("INFO {}", s(json)),
        RouteOp::Connect(json) => format!("CONNECT {}", s(json)),
        RouteOp::Ping => "PING".into(),
        RouteOp::Pong => "PONG".into(),
        RouteOp::Ok => "+OK".into(),
        RouteOp::Err(text) => format!("-ERR {}", s(text)),
        RouteOp::Sub {
            account,
            subject,
            queue,
        } => match queue {
            Some((q, w)) => format!("RS+ {} {} {} {w}", s(account), s(subject), s(q)),
            None => format!("RS+ {} {}", s(account), s(subject)),
        },
        RouteOp::Unsub {
            account,
            subject,
            queue,
        } => match queue {
            Some(q) => format!("RS- {} {} {}", s(account), s(subject), s(q)),
            None => format!("RS- {} {}", s(account), s(subject)),
        },
        RouteOp::Msg(m) => {
            let queues: Vec<String> = m.queues.map(s).collect();
            format!(
                "{} {} {}{}{} {}",
                if m.header_len.is_some() {
                    "HMSG"
                } else {
                    "RMSG"
                },
                s(m.account),
                s(m.subject),
                m.reply.map(|r| format!(" {}", s(r))).unwrap_or_default(),
                if queues.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", queues.join(" "))
                },
                m.payload.len()
            )
        }
    }
}
