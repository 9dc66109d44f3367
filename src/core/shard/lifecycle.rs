//! Connections come and go: registration (with the INFO that greets a
//! client), the start of a close, and the end that frees the slot.

use std::time::Instant;

use crate::auth::AuthMethod;
use crate::connect::ClientOptions;
use crate::connection::{
    AuthState, CloseReason, ConnKind, Connection, Liveness, OutputState, SidMap, Traffic,
};
use crate::go_duration::go_duration;
use crate::ids::{AccountId, ClientId, ConnKey, SubKey};
use crate::io::ShardIo;
use crate::outbound::encode_err;

use super::monitoring::WallClock;
use super::ShardBroker;

/// A connection as the runtime accepted it.
pub struct Accepted<E> {
    pub client_id: ClientId,
    pub endpoint: E,
    pub ip: String,
    pub port: u16,
    /// The NKey challenge for INFO, made by the runtime from a CSPRNG when
    /// the auth policy wants one (`AuthPolicy::wants_nonce`).
    pub nonce: Option<String>,
}

impl<I: ShardIo> ShardBroker<I> {
    /// Registers an accepted client and queues its INFO.
    pub fn register_connection(
        &mut self,
        accepted: Accepted<I::Endpoint>,
        now: Instant,
    ) -> ConnKey {
        self.set_now(now);
        let Accepted {
            client_id,
            endpoint,
            ip,
            port,
            nonce,
        } = accepted;
        let info = self.identity.info_line_in_cluster(
            client_id.0,
            &ip,
            false,
            nonce.as_deref(),
            self.client_cluster.as_deref(),
        );
        let auth = if self.limits.auth.enabled() {
            AuthState::Pending {
                deadline: now + self.limits.auth.timeout,
            }
        } else {
            AuthState::Open
        };
        let mut output = OutputState::default();
        output.extend(&mut self.pool, &info);
        let key = self.conns.insert(Connection {
            kind: ConnKind::Client,
            client_id,
            account: AccountId::GLOBAL,
            counted_in_account: false,
            account_max_payload: None,
            user_limits: Default::default(),
            auth_expires: None,
            jwt_issued_at: 0,
            jwt_info: None,
            account_expires: None,
            endpoint,
            ip,
            port,
            options: ClientOptions::default(),
            auth,
            nonce,
            credentials: None,
            auth_method: AuthMethod::Open,
            permissions: None,
            first_pong_sent: false,
            info_cluster_generation: self.cluster_generation,
            output,
            subs: SidMap::default(),
            liveness: Liveness::new(now, self.limits.ping_interval),
            forwarded: false,
            closing: None,
            started: now,
            last_activity: now,
            traffic: Traffic::default(),
            tls: None,
        });
        self.mark_dirty(key);
        crate::debug!(
            "{} - cid:{} - Client connection created (shard {})",
            self.conns[key].peer(),
            client_id,
            self.id
        );
        key
    }

    /// Sends `INFO` then `-ERR 'maximum connections exceeded'` and shuts the
    /// socket; the connection is never registered.
    pub fn reject_connection(&self, client_id: ClientId, endpoint: &I::Endpoint, ip: &str) {
        let mut bytes = self.identity.info_line(client_id.0, ip, false, None);
        encode_err(&mut bytes, "maximum connections exceeded");
        let _ = self.io.send(endpoint, &bytes);
        self.io.shutdown(endpoint);
    }

    /// Starts closing: tries to hand queued bytes (an `-ERR`) to the socket,
    /// shuts the socket down so the reader sees EOF, and wakes the writer so
    /// it ends. The reader task then calls [`ShardBroker::remove_connection`].
    pub fn begin_close(&mut self, key: ConnKey, reason: CloseReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing.is_some() {
            return;
        }
        conn.closing = Some(reason);
        // Its place in the account is free from now on (a client that sees
        // the close may log in again at once).
        if std::mem::take(&mut conn.counted_in_account) {
            self.limits.active_connections.leave(conn.account);
        }
        if reason.discards_pending() {
            // nats-server's lines (client.go), at its notice level.
            let detail = match reason {
                CloseReason::SlowConsumerWriteDeadline => format!(
                    "WriteDeadline of {} exceeded with {} chunks of {} total bytes.",
                    go_duration(self.limits.write_deadline),
                    conn.output.pending_chunks(),
                    conn.output.pending_bytes()
                ),
                _ => format!("MaxPending of {} Exceeded", self.limits.max_pending),
            };
            crate::info!(
                "{} - cid:{} - Slow Consumer Detected: {detail}",
                conn.peer(),
                conn.client_id
            );
            conn.output.discard(&mut self.pool);
            self.stats.slow_consumers += 1;
        } else {
            conn.output
                .last_words(&self.io, &conn.endpoint, &mut self.pool);
        }
        self.io.shutdown(&conn.endpoint);
        self.io.wake_writer(&conn.endpoint);
        // As nats-server: a route's close is a notice, named like its
        // creation (`ip:port - rid:N`); a client's is a debug line.
        if conn.kind == ConnKind::Route {
            crate::info!(
                "{}:{} - rid:{} - Router connection closed: {}",
                conn.ip,
                conn.port,
                conn.client_id,
                reason.as_str()
            );
        } else {
            crate::debug!(
                "{} - cid:{} - Client connection closed: {}",
                conn.peer(),
                conn.client_id,
                reason.as_str()
            );
        }
    }

    /// Forgets a connection whose reader and writer have ended: removes its
    /// subscriptions (telling the other shards) and frees its slot. Returns
    /// whether it was still registered.
    pub fn remove_connection(&mut self, key: ConnKey, clock: WallClock) -> bool {
        self.set_now(clock.now);
        self.remember_closed(key, &clock);
        self.note_disconnect(key, &clock);
        let Some(conn) = self.conns.get(key) else {
            return false;
        };
        if conn.counted_in_account {
            // Never closed through `begin_close` (not expected; kept exact).
            self.limits.active_connections.leave(conn.account);
        }
        let sub_keys: Vec<SubKey> = conn.subs.keys().collect();
        for sk in sub_keys {
            self.remove_subscription(sk);
        }
        if self.conns[key].kind == ConnKind::Route {
            self.forget_route(key);
        }
        self.conns.remove(key);
        true
    }

    /// Whether the connection is past its admission: its CONNECT read and
    /// its credentials (if any are asked) accepted, and not closing. The
    /// runtime serves such connections ahead of those still arriving.
    pub fn is_established(&self, key: ConnKey) -> bool {
        self.conns.get(key).is_some_and(|c| {
            c.closing.is_none()
                && c.liveness.connect_received()
                && matches!(c.auth, AuthState::Open | AuthState::Done)
        })
    }

    pub fn is_closing(&self, key: ConnKey) -> bool {
        self.conns.get(key).is_none_or(|c| c.closing.is_some())
    }

    /// The connection's endpoint, while it is registered.
    pub fn endpoint(&self, key: ConnKey) -> Option<&I::Endpoint> {
        self.conns.get(key).map(|c| &c.endpoint)
    }
}
