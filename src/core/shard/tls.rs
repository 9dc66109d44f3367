//! What the runtime tells the state machine about a connection's TLS
//! handshake, which runs below the parser (`src/tls/` in the binary): the
//! auth timer waits for it, and once done its facts are kept for `/connz`
//! and `verify_and_map`.

use std::time::Instant;

use crate::connection::{AuthState, CloseReason, TlsState};
use crate::ids::ConnKey;
use crate::io::ShardIo;

use super::ShardBroker;

impl<I: ShardIo> ShardBroker<I> {
    /// Moves the connection's auth deadline to the auth timeout counted from
    /// `from`. The runtime calls it at registration with the handshake's own
    /// deadline (so the auth timer cannot fire during the handshake, which
    /// has its own timeout), and again with the time the handshake ended:
    /// as in nats-server, the auth timer starts after the handshake.
    pub fn start_auth_timer_at(&mut self, key: ConnKey, from: Instant) {
        let timeout = self.limits.auth.timeout;
        if let Some(conn) = self.conns.get_mut(key) {
            if let AuthState::Pending { deadline } = &mut conn.auth {
                *deadline = from + timeout;
            }
        }
    }

    /// The handshake is done: remember what it agreed, start the auth timer.
    pub fn tls_established(&mut self, key: ConnKey, tls: TlsState, now: Instant) {
        self.set_now(now);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.tls = Some(Box::new(tls));
        }
        self.start_auth_timer_at(key, now);
    }

    /// A route's handshake (`cluster { tls {} }`) is done: remember what it
    /// agreed; the route's authorization timer starts now.
    pub fn route_tls_established(&mut self, key: ConnKey, tls: TlsState, now: Instant) {
        self.set_now(now);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.tls = Some(Box::new(tls));
        }
        self.start_route_auth_timer_at(key, now);
    }

    /// Moves an inbound route's authorization deadline to the cluster's
    /// auth timeout counted from `from` (at registration: from the end of
    /// the TLS handshake's own deadline, so it cannot fire first).
    pub fn start_route_auth_timer_at(&mut self, key: ConnKey, from: Instant) {
        let timeout = self
            .cluster
            .as_ref()
            .map(|c| c.settings.auth_timeout)
            .unwrap_or(self.limits.auth.timeout);
        if let Some(conn) = self.conns.get_mut(key) {
            if let AuthState::Pending { deadline } = &mut conn.auth {
                *deadline = from + timeout;
            }
        }
    }

    /// `tls { connection_rate_limit }` refused the connection before its
    /// handshake: nats-server's `-ERR` (in plaintext), then the close.
    pub fn refuse_throttled(&mut self, key: ConnKey) {
        let _ = self.close_with_error(
            key,
            Some("Connection throttling is active. Please try again later."),
            CloseReason::MaxConnectionsExceeded,
        );
    }

    /// Bytes queued for the connection and not yet taken by its socket
    /// (the runtime waits for INFO to leave in plaintext before it starts
    /// the handshake).
    pub fn output_pending(&self, key: ConnKey) -> usize {
        self.conns.get(key).map_or(0, |c| c.output.pending_bytes())
    }
}
