//! A configuration reload reaching a shard: its new settings, and what
//! they mean for the connections it already has (nats-server's reload):
//! a connection whose user, nkey or secret is gone or changed is closed
//! with the Authorization Violation; the others get their new permissions,
//! and subscriptions these no longer allow are removed with the
//! violation, naming the sid.

use std::sync::Arc;

use crate::connection::{AuthState, CloseReason};
use crate::go_quote::go_quote;
use crate::ids::{ConnKey, SubKey};
use crate::info::ServerIdentity;
use crate::io::ShardIo;
use crate::limits::ShardLimits;

use super::{stall_threshold, ShardBroker};
use crate::account::limits::min_limit;

impl<I: ShardIo> ShardBroker<I> {
    /// A reload's new settings, applied between two units of work.
    pub fn replace_limits(&mut self, limits: ShardLimits) {
        let old_auth = self.limits.auth.clone();
        let old_accounts = self.limits.accounts.clone();
        self.stall_threshold = stall_threshold(&limits);
        self.auth_enabled = limits.auth.enabled();
        self.mappings_configured = limits.accounts.has_mappings();
        let route_permissions = limits.cluster.as_ref().map(|c| c.permissions.clone());
        self.limits = limits;
        if let Some(permissions) = route_permissions {
            self.reload_route_permissions(permissions);
        }
        if *old_accounts != *self.limits.accounts {
            let accounts = self.limits.accounts.clone();
            self.install_imports(&accounts);
            for key in self.conns.keys() {
                let conn = &mut self.conns[key];
                let account_max = accounts
                    .get(conn.account)
                    .and_then(|account| account.limits.max_payload);
                conn.account_max_payload = min_limit(account_max, conn.user_limits.max_payload);
            }
        }
        if *old_auth != *self.limits.auth {
            self.reauthorize_all(&old_auth);
            self.enforce_account_connection_limits();
            self.recheck_jwt_users(&old_auth);
        }
    }

    /// An account update lowered `conn` below the account's connections:
    /// nats-server cuts the oldest with `-ERR 'maximum account active
    /// connections exceeded'`. The count is server-wide, the connections
    /// are per shard: each shard cuts its oldest while the count is over,
    /// giving up each place with one compare-and-swap
    /// ([`crate::account::limits::ActiveConnections::try_leave_over`]), so
    /// shards applying the update at the same moment cut exactly the excess
    /// between them (the ones cut are the oldest of their shards, not
    /// necessarily of the server).
    fn enforce_account_connection_limits(&mut self) {
        if self.limits.auth.operator.is_none() {
            return;
        }
        let accounts = self.limits.accounts.clone();
        let mut keys: Vec<ConnKey> = self
            .conns
            .keys()
            .into_iter()
            .filter(|&k| self.conns[k].counted_in_account && self.conns[k].closing.is_none())
            .collect();
        keys.sort_by_key(|&k| self.conns[k].started);
        for key in keys {
            let account = self.conns[key].account;
            let Some(max) = accounts.get(account).and_then(|a| a.limits.max_connections) else {
                continue;
            };
            if !self.limits.active_connections.try_leave_over(account, max) {
                continue;
            }
            // Its place is given up above; `begin_close` must not again.
            let conn = &mut self.conns[key];
            conn.counted_in_account = false;
            crate::error!(
                "{} - cid:{} - maximum account active connections exceeded",
                conn.peer(),
                conn.client_id
            );
            self.queue_err(key, "maximum account active connections exceeded");
            self.begin_close(key, CloseReason::MaxAccountConnectionsExceeded);
        }
    }

    /// After an account JWT update, nats-server's checks of the account's
    /// connected JWT users: a deleted account's users go as expired; a
    /// revoked user (by key or `"*"`, at or after its `iat`) with `-ERR
    /// 'User Authentication Revoked'`; a bearer user of an account that
    /// now disallows bearer tokens with the Authorization Violation; a
    /// user whose signing key was removed or whose scope changed is closed
    /// without a word.
    fn recheck_jwt_users(&mut self, old: &crate::auth::AuthPolicy) {
        let Some(mode) = self.limits.auth.operator.clone() else {
            return;
        };
        let accounts = self.limits.accounts.clone();
        for key in self.conns.keys() {
            let conn = &self.conns[key];
            if conn.closing.is_some() {
                continue;
            }
            if !matches!(conn.auth_method, crate::auth::AuthMethod::Jwt(_)) {
                continue;
            }
            let Some(account) = mode.accounts.get(accounts.name(conn.account)).cloned() else {
                self.account_auth_expired(key);
                continue;
            };
            // The update may move the account's expiry, or lift it.
            self.conns[key].account_expires = account.expires_at;
            let conn = &self.conns[key];
            let crate::auth::AuthMethod::Jwt(user) = &conn.auth_method else {
                continue;
            };
            let nats = &account.claims.nats;
            if crate::jwt::validity::is_revoked(&nats.revocations, user, conn.jwt_issued_at) {
                crate::debug!(
                    "{} - cid:{} - User Authentication Revoked",
                    conn.peer(),
                    conn.client_id
                );
                self.queue_err(key, "User Authentication Revoked");
                self.begin_close(key, CloseReason::Revocation);
                continue;
            }
            let Some(info) = conn.jwt_info.clone() else {
                continue;
            };
            if info.bearer && nats.limits.disallow_bearer {
                crate::debug!(
                    "{} - cid:{} - Bearer User JWT not allowed",
                    conn.peer(),
                    conn.client_id
                );
                self.queue_err(key, "Authorization Violation");
                self.begin_close(key, CloseReason::AuthenticationFailure);
                continue;
            }
            if let Some(signing_key) = &info.signing_key {
                let before = old
                    .operator
                    .as_ref()
                    .and_then(|m| m.accounts.get(&account.claims.data.subject))
                    .and_then(|a| a.claims.nats.signing_keys.get(signing_key));
                let now = nats.signing_keys.get(signing_key);
                if now.is_none() || (before.is_some() && before != now) {
                    self.begin_close(key, CloseReason::AuthenticationFailure);
                }
            }
        }
    }

    /// A reload's new INFO facts (`auth_required`), for connections from
    /// now on.
    pub fn replace_identity(&mut self, identity: Arc<ServerIdentity>) {
        self.identity = identity;
    }

    fn reauthorize_all(&mut self, old: &crate::auth::AuthPolicy) {
        let policy = self.limits.auth.clone();
        for key in self.conns.keys() {
            let conn = &self.conns[key];
            if conn.closing.is_some() {
                continue;
            }
            match conn.auth {
                AuthState::Done | AuthState::Open => {}
                // Not in yet: they authenticate against the new policy.
                AuthState::Pending { .. } | AuthState::Verifying(_) => continue,
            }
            if matches!(conn.auth_method, crate::auth::AuthMethod::Jwt(_))
                && policy.operator.is_some()
            {
                // JWT users answer to their account tokens, not to the
                // file: a reload leaves them as they are.
                continue;
            }
            let account = conn.account;
            // A user moved to another account must log in again: its
            // subscriptions live in the old account's subject space.
            match policy
                .reauthorize(old, &conn.auth_method)
                .filter(|identity| identity.account == account)
            {
                Some(identity) => {
                    self.authenticated(key, identity);
                    self.drop_forbidden_subscriptions(key);
                }
                None => {
                    let conn = &self.conns[key];
                    crate::error!(
                        "{} - cid:{} - authentication error after reload",
                        conn.peer(),
                        conn.client_id
                    );
                    self.queue_err(key, "Authorization Violation");
                    self.begin_close(key, CloseReason::AuthenticationFailure);
                }
            }
        }
    }

    fn drop_forbidden_subscriptions(&mut self, key: ConnKey) {
        let conn = &self.conns[key];
        let Some(check) = &conn.permissions else {
            return;
        };
        let forbidden: Vec<SubKey> = conn
            .subs
            .keys()
            .filter(|&sk| {
                self.subs
                    .get(sk.index())
                    .is_some_and(|sub| !check.can_subscribe(sub.subject(), sub.queue()))
            })
            .collect();
        for sk in forbidden {
            let Some(sub) = self.subs.get(sk.index()) else {
                continue;
            };
            let text = format!(
                "Permissions Violation for Subscription to {} (sid {})",
                go_quote(sub.subject()),
                go_quote(&*sub.sid)
            );
            self.remove_subscription(sk);
            self.queue_err(key, &text);
        }
    }
}
