//! `cluster.permissions` on the cluster shard: a peer's interest outside
//! `export` is ignored when its `RS+` arrives, and a route whose accepted
//! wildcard interest covers an export deny rule has its messages checked
//! one by one from then on (the rules are in [`crate::route_permissions`];
//! `import` acts where interest is announced, in [`super::route_interest`]),
//! and a peer whose INFO widens its own `export` hears again of the
//! interest it ignored. A reload that changes our own permissions is
//! applied as nats-server 2.9's `reloadClusterPermissions` does it.

use std::sync::Arc;

use super::route_handshake::our_route_info;
use crate::ids::{ConnKey, SubKey};
use crate::io::ShardIo;
use crate::route_permissions::{PeerExport, RoutePermissions, SubjectPermissionWire};

use super::route_interest::encode_interest;
use super::ShardBroker;

impl<I: ShardIo> ShardBroker<I> {
    /// May route `key`'s `RS+` for `subject` become a subscription? When it
    /// may and it needs a per-message check, the route gets one (its
    /// connection's [`crate::auth::PermissionCheck`], which routes
    /// otherwise leave empty, so the message path pays nothing without it).
    pub(super) fn route_may_export(&mut self, key: ConnKey, subject: &[u8]) -> bool {
        let Some(permissions) = self
            .cluster
            .as_ref()
            .and_then(|c| c.settings.permissions.as_ref())
        else {
            return true;
        };
        if !permissions.exports(subject) {
            let conn = &self.conns[key];
            crate::debug!(
                "{}:{} - rid:{} - Can not export \"{}\", ignoring remote subscription request",
                conn.ip,
                conn.port,
                conn.client_id,
                String::from_utf8_lossy(subject)
            );
            return false;
        }
        if permissions.needs_message_check(subject) && self.conns[key].permissions.is_none() {
            let check = permissions.message_check();
            self.conns[key].permissions = Some(Box::new(check));
        }
        true
    }
}

impl<I: ShardIo> ShardBroker<I> {
    /// Route `key`'s peer sent an updated INFO with `export`: the interest
    /// its old export refused and its new one accepts is announced again
    /// (what we do not import excepted), as nats-server does; it ignored
    /// those `RS+` the first time.
    pub(super) fn peer_export_changed(
        &mut self,
        key: ConnKey,
        export: Option<SubjectPermissionWire>,
    ) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let Some(link) = cluster.links.get_mut(&key) else {
            return;
        };
        if link.remote_export == export {
            return;
        }
        let old = PeerExport::new(link.remote_export.as_ref());
        let new = PeerExport::new(export.as_ref());
        link.remote_export = export;
        let mut burst = Vec::new();
        for (interest, count) in cluster.interest.iter() {
            let subject = &interest.subject;
            if new.exports(subject)
                && !old.exports(subject)
                && cluster.import.as_mut().is_none_or(|i| i.announces(subject))
            {
                let account = self.limits.accounts.name(interest.account);
                encode_interest(&mut burst, account, interest, count);
            }
        }
        if !burst.is_empty() && !self.is_closing(key) {
            self.queue_bytes(key, &burst);
        }
    }
}

impl<I: ShardIo> ShardBroker<I> {
    /// A reload brought `new` as our `cluster.permissions` (the cluster
    /// shard acts; the others have no routes). As nats-server 2.9: each
    /// registered route gets our INFO with the new `import`/`export` (a
    /// peer re-announces the interest our new export accepts), then `RS+`
    /// for the interest the new import announces and the old did not, then
    /// `RS-` for the reverse; the route's subscriptions the new export
    /// refuses are dropped (without a word to the peer), and its
    /// per-message check follows the new rules.
    pub(super) fn reload_route_permissions(&mut self, new: Option<RoutePermissions>) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if cluster.settings.permissions == new {
            return;
        }
        let mut settings = (*cluster.settings).clone();
        settings.permissions = new;
        cluster.settings = Arc::new(settings);
        let mut old_import = cluster.import.take();
        cluster.import = cluster
            .settings
            .permissions
            .as_ref()
            .map(RoutePermissions::import_check);
        let (mut announce, mut withdraw) = (Vec::new(), Vec::new());
        for (interest, count) in cluster.interest.iter() {
            let subject = &interest.subject;
            let then = old_import.as_mut().is_none_or(|i| i.announces(subject));
            let now = cluster.import.as_mut().is_none_or(|i| i.announces(subject));
            let account = self.limits.accounts.name(interest.account);
            if now && !then {
                encode_interest(&mut announce, account, interest, count);
            } else if then && !now {
                encode_interest(&mut withdraw, account, interest, 0);
            }
        }
        let info = our_route_info(
            &self.identity,
            &self.limits,
            &cluster.settings,
            None,
            self.lame_duck,
        );
        let routes: Vec<ConnKey> = cluster.registered_routes().collect();
        for route in routes {
            if self.is_closing(route) {
                continue;
            }
            self.recheck_route_exports(route);
            self.queue_bytes(route, &info);
            if !announce.is_empty() {
                self.queue_bytes(route, &announce);
            }
            if !withdraw.is_empty() {
                self.queue_bytes(route, &withdraw);
            }
        }
    }

    /// Route `key`'s subscriptions against our (new) export: those it
    /// refuses are removed; the per-message check is rebuilt from the new
    /// rules, for the remaining ones that need it.
    fn recheck_route_exports(&mut self, key: ConnKey) {
        let permissions = self
            .cluster
            .as_ref()
            .and_then(|c| c.settings.permissions.clone());
        self.conns[key].permissions = None;
        let Some(permissions) = permissions else {
            return;
        };
        let keys: Vec<SubKey> = self.conns[key].subs.keys().collect();
        let mut needs_check = false;
        for sk in keys {
            let Some(sub) = self.subs.get(sk.index()) else {
                continue;
            };
            if permissions.exports(sub.subject()) {
                needs_check |= permissions.needs_message_check(sub.subject());
            } else {
                self.remove_subscription(sk);
            }
        }
        if needs_check {
            self.conns[key].permissions = Some(Box::new(permissions.message_check()));
        }
    }
}
