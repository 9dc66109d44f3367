//! `cluster.permissions` on the cluster shard: a peer's interest outside
//! `export` is ignored when its `RS+` arrives, and a route whose accepted
//! wildcard interest covers an export deny rule has its messages checked
//! one by one from then on (the rules are in [`crate::route_permissions`];
//! `import` acts where interest is announced, in [`super::route_interest`]).

use crate::ids::ConnKey;
use crate::io::ShardIo;

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
            self.conns[key].permissions = Some(check);
        }
        true
    }
}
