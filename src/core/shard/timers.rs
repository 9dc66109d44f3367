//! Time-driven work: server PINGs and stale connections, write deadlines,
//! trimming spare buffers; lame duck mode and shutdown.

use std::time::Instant;

use crate::connection::{CloseReason, ConnKind, PingCheck};
use crate::ids::ConnKey;
use crate::info::ClientClusterInfo;
use crate::io::ShardIo;
use crate::outbound::PING;

use super::ShardBroker;

impl<I: ShardIo> ShardBroker<I> {
    /// Periodic work: server PINGs, stale connections, write deadlines.
    pub fn tick(&mut self, now: Instant) {
        self.set_now(now);
        self.pool.trim();
        self.spare_batches.trim();
        self.flush_acks();
        self.expire_response_routes();
        let (interval, ping_max, deadline) = (
            self.limits.ping_interval,
            self.limits.ping_max,
            self.limits.write_deadline,
        );
        let mut to_close = Vec::new();
        let mut to_ping = Vec::new();
        let mut account_expired = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            if conn.closing.is_some() {
                continue;
            }
            if conn.auth.deadline_passed(now) {
                to_close.push((key, CloseReason::AuthenticationTimeout));
                continue;
            }
            if conn.auth_expires.is_some_and(|at| now >= at) {
                to_close.push((key, CloseReason::AuthenticationExpired));
                continue;
            }
            if conn.account_expires.is_some_and(|at| now >= at) {
                account_expired.push(key);
                continue;
            }
            if conn.output.write_deadline_passed(now, deadline) {
                to_close.push((key, CloseReason::SlowConsumerWriteDeadline));
                continue;
            }
            match conn.liveness.check(now, interval, ping_max) {
                PingCheck::Nothing => {}
                PingCheck::Ping => to_ping.push(key),
                PingCheck::Stale => to_close.push((key, CloseReason::StaleConnection)),
            }
        }
        for key in to_ping {
            self.queue_bytes(key, PING);
        }
        for key in account_expired {
            self.account_auth_expired(key);
        }
        for (key, reason) in to_close {
            match reason {
                CloseReason::StaleConnection => self.queue_err(key, "Stale Connection"),
                CloseReason::AuthenticationTimeout => {
                    crate::debug!(
                        "{} - cid:{} - Authentication Timeout",
                        self.conns[key].peer(),
                        self.conns[key].client_id
                    );
                    self.queue_err(key, "Authentication Timeout");
                }
                CloseReason::AuthenticationExpired => {
                    crate::debug!(
                        "{} - cid:{} - User Authentication Expired",
                        self.conns[key].peer(),
                        self.conns[key].client_id
                    );
                    self.queue_err(key, "User Authentication Expired");
                }
                _ => {}
            }
            self.begin_close(key, reason);
        }
    }

    /// nats-server's `accountAuthExpired`: the account's JWT expired (or
    /// the account was deleted) while the client was connected.
    pub(super) fn account_auth_expired(&mut self, key: ConnKey) {
        crate::debug!(
            "{} - cid:{} - Account Authentication Expired",
            self.conns[key].peer(),
            self.conns[key].client_id
        );
        self.queue_err(key, "Account Authentication Expired");
        self.begin_close(key, CloseReason::AuthenticationExpired);
    }

    /// Lame duck: tells proto-1 clients (after their handshake) with an INFO
    /// carrying `"ldm":true`. Returns the connections to close gradually.
    pub fn enter_lame_duck(&mut self) -> Vec<ConnKey> {
        self.lame_duck = true;
        self.tell_routes_lame_duck();
        // Routes stay up: other servers go on reaching our clients until
        // they leave.
        let keys: Vec<ConnKey> = self
            .conns
            .keys()
            .into_iter()
            .filter(|&k| self.conns[k].kind == ConnKind::Client)
            .collect();
        // The clients are sent on to the other nodes only: nats-server's
        // lame-duck INFO leaves its own URLs out of `connect_urls`. What
        // clients are told from now on is also what `/varz` shows.
        if let (Some(current), Some(settings)) = (&self.client_cluster, &self.limits.cluster) {
            let mut elsewhere = ClientClusterInfo::clone(current);
            elsewhere
                .connect_urls
                .retain(|url| !settings.client_urls.contains(url));
            self.client_cluster = Some(std::sync::Arc::new(elsewhere));
        }
        let elsewhere = self.client_cluster.clone();
        for &key in &keys {
            let conn = &self.conns[key];
            if conn.options.protocol >= 1 && conn.first_pong_sent && conn.closing.is_none() {
                let info = self.identity.info_line_in_cluster(
                    conn.client_id.0,
                    &conn.ip,
                    true,
                    None,
                    elsewhere.as_deref(),
                );
                self.queue_bytes(key, &info);
            }
        }
        keys
    }

    pub fn in_lame_duck(&self) -> bool {
        self.lame_duck
    }

    /// Closes every connection, handing queued bytes to the sockets first.
    pub fn close_all(&mut self, reason: CloseReason, now: Instant) {
        if reason == CloseReason::ServerShutdown {
            self.shutting_down = true;
        }
        self.flush_dirty(now);
        for key in self.conns.keys() {
            self.begin_close(key, reason);
        }
    }
}
