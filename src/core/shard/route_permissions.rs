//! `cluster.permissions` on the cluster shard: a peer's interest outside
//! `export` is ignored when its `RS+` arrives, and a route whose accepted
//! wildcard interest covers an export deny rule has its messages checked
//! one by one from then on (the rules are in [`crate::route_permissions`];
//! `import` acts where interest is announced, in [`super::route_interest`]),
//! and a peer whose INFO widens its own `export` hears again of the
//! interest it ignored.

use crate::ids::ConnKey;
use crate::io::ShardIo;
use crate::route_permissions::{PeerExport, SubjectPermissionWire};

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
