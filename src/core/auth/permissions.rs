//! Publish and subscribe permissions of one user, as nats-server has them,
//! and their per-connection check with a cache of decisions.

use rustc_hash::FxHashMap;
use std::time::Instant;

use crate::subject::{has_wildcard_token, is_subset, pattern_matches};

/// A subscribe rule: a subject pattern, optionally restricted to a queue
/// group (`"foo.* q1"`; the queue may itself be a pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRule {
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
}

/// `allow` / `deny` for one direction. `allow: None` means no allow list
/// (everything not denied is allowed); `Some(empty)` denies everything
/// for publish, and is ignored for subscribe (nats-server's asymmetry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules<R> {
    pub allow: Option<Vec<R>>,
    pub deny: Vec<R>,
}

/// `permissions { publish, subscribe, allow_responses }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Option<Rules<Box<[u8]>>>,
    pub subscribe: Option<Rules<SubscribeRule>>,
    /// `allow_responses`: how many replies and for how long a client may
    /// publish to a reply subject it received (`None`: not enabled).
    pub allow_responses: Option<ResponsePermission>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePermission {
    /// Replies per received request; `None`: unlimited.
    pub max: Option<u32>,
    /// `None`: never expires.
    pub expires: Option<std::time::Duration>,
}

impl Default for ResponsePermission {
    /// nats-server's defaults: one reply within two minutes.
    fn default() -> Self {
        ResponsePermission {
            max: Some(1),
            expires: Some(std::time::Duration::from_secs(120)),
        }
    }
}

/// Decisions cached per connection; past this many subjects the cache is
/// cleared (a client publishing to ever-new subjects costs a match each).
const CACHE_MAX: usize = 1024;

/// The last subject decided and the decision, checked before the cache: a
/// publisher (and a subscriber's deliveries) mostly repeat a subject, and
/// comparing it is cheaper than hashing it (the buffer keeps its capacity).
#[derive(Debug, Default)]
struct LastDecision {
    subject: Vec<u8>,
    allowed: Option<bool>,
}

impl LastDecision {
    fn get(&self, subject: &[u8]) -> Option<bool> {
        self.allowed.filter(|_| self.subject == subject)
    }

    fn set(&mut self, subject: &[u8], allowed: bool) {
        self.subject.clear();
        self.subject.extend_from_slice(subject);
        self.allowed = Some(allowed);
    }
}

/// One connection's view of its permissions, with the publish decisions it
/// already made. Touched only by the connection's shard.
#[derive(Debug)]
pub struct PermissionCheck {
    permissions: std::sync::Arc<Permissions>,
    publish_cache: FxHashMap<Box<[u8]>, bool>,
    last_publish: LastDecision,
    /// Delivery decisions under the subscribe deny rules, per subject (for
    /// rules without a queue; queue-scoped ones are matched each time).
    deliver_cache: FxHashMap<Box<[u8]>, bool>,
    last_delivery: LastDecision,
    /// Deliveries are checked against the subscribe deny rules: armed by
    /// the first wildcard subscription that covers one of them (see
    /// [`PermissionCheck::subscribed`]), then for every delivery.
    filter_deliveries: bool,
    /// `allow_responses`: reply subjects of messages this client received,
    /// with when it received them and how often it answered.
    replies: FxHashMap<Box<[u8]>, (Instant, u32)>,
}

/// Past this many tracked replies, expired ones are dropped (nats-server
/// prunes its map at the same size).
const REPLIES_PRUNE_AT: usize = 4096;

impl PermissionCheck {
    pub fn new(permissions: std::sync::Arc<Permissions>) -> PermissionCheck {
        PermissionCheck {
            permissions,
            publish_cache: FxHashMap::default(),
            last_publish: LastDecision::default(),
            deliver_cache: FxHashMap::default(),
            last_delivery: LastDecision::default(),
            filter_deliveries: false,
            replies: FxHashMap::default(),
        }
    }

    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// May the client publish to `subject`? A cache hit costs one hash
    /// lookup and no allocation.
    pub fn can_publish(&mut self, subject: &[u8]) -> bool {
        let Some(rules) = &self.permissions.publish else {
            return true;
        };
        if let Some(allowed) = self.last_publish.get(subject) {
            return allowed;
        }
        let allowed = match self.publish_cache.get(subject) {
            Some(&allowed) => allowed,
            None => {
                let allowed = publish_allowed(rules, subject);
                if self.publish_cache.len() >= CACHE_MAX {
                    self.publish_cache.clear();
                }
                self.publish_cache.insert(subject.into(), allowed);
                allowed
            }
        };
        self.last_publish.set(subject, allowed);
        allowed
    }

    /// Whether received reply subjects must be tracked (`allow_responses`).
    pub fn tracks_replies(&self) -> bool {
        self.permissions.allow_responses.is_some()
    }

    /// The client received a message with reply subject `reply`.
    pub fn reply_received(&mut self, reply: &[u8], now: Instant) {
        if self.replies.len() >= REPLIES_PRUNE_AT {
            self.prune_replies(now);
        }
        self.replies.insert(reply.into(), (now, 0));
    }

    /// A publish the rules deny may still answer a request this client
    /// received, within `allow_responses`' count and time.
    pub fn may_respond(&mut self, subject: &[u8], now: Instant) -> bool {
        let Some(limit) = self.permissions.allow_responses else {
            return false;
        };
        let Some((received, answered)) = self.replies.get_mut(subject) else {
            return false;
        };
        let expired = limit
            .expires
            .is_some_and(|ttl| now.saturating_duration_since(*received) > ttl);
        let exhausted = limit.max.is_some_and(|max| *answered >= max);
        if expired || exhausted {
            self.replies.remove(subject);
            return false;
        }
        *answered += 1;
        true
    }

    fn prune_replies(&mut self, now: Instant) {
        let Some(limit) = self.permissions.allow_responses else {
            self.replies.clear();
            return;
        };
        self.replies.retain(|_, (received, answered)| {
            let fresh = limit
                .expires
                .is_none_or(|ttl| now.saturating_duration_since(*received) <= ttl);
            fresh && limit.max.is_none_or(|max| *answered < max)
        });
    }

    /// May the client subscribe to `subject` (in `queue`)? nats-server's
    /// rule (client.go `canSubscribe`): allow first, then deny, each judged
    /// on the rules whose subject matches (the subscription's wildcards
    /// taken as literal tokens). The plain rules decide, except that for a
    /// queue subscription the matching queue rules, if any, decide alone:
    ///
    /// - allow `["foo", "foo v1"]`: `foo`, and queue `v1` only;
    /// - deny `["foo", "foo v1"]`: queue `v2` is allowed (the queue rules
    ///   decide, and they do not name it), `v1` and plain `foo` are not.
    ///
    /// A wildcard subscription that no deny rule matches is allowed, and
    /// what deny covers is filtered at delivery ([`PermissionCheck::
    /// subscribed`], [`PermissionCheck::may_receive`]).
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let Some(rules) = &self.permissions.subscribe else {
            return true;
        };
        let queue = queue.filter(|q| !q.is_empty());
        if let Some(allow) = rules.allow.as_ref().filter(|a| !a.is_empty()) {
            if !rules_decide(allow, subject, queue, true) {
                return false;
            }
        }
        rules.deny.is_empty() || rules_decide(&rules.deny, subject, queue, false)
    }

    /// The client subscribed to `subject` (the subscription was allowed):
    /// a wildcard that covers a deny rule (`foo.*` with deny `foo.bar`)
    /// turns on the delivery filter for all of the connection's
    /// subscriptions, as nats-server loads its deny filter on the first
    /// such subscription (a wildcard that only overlaps a deny rule, `*.bar`
    /// with deny `foo.*`, does not).
    pub fn subscribed(&mut self, subject: &[u8]) {
        if self.filter_deliveries || !has_wildcard_token(subject) {
            return;
        }
        let Some(rules) = &self.permissions.subscribe else {
            return;
        };
        self.filter_deliveries = rules
            .deny
            .iter()
            .any(|rule| is_subset(&rule.subject, subject));
    }

    /// Whether deliveries must go through [`PermissionCheck::may_receive`].
    pub fn filters_deliveries(&self) -> bool {
        self.filter_deliveries
    }

    /// A message on `subject` may reach this client's (wildcard)
    /// subscription: no subscribe deny rule without a queue matches the
    /// subject (nats-server's delivery filter never matches its queue
    /// rules). Cached per subject: a cache hit costs one hash lookup and no
    /// allocation.
    pub fn may_receive(&mut self, subject: &[u8]) -> bool {
        let Some(rules) = &self.permissions.subscribe else {
            return true;
        };
        if let Some(allowed) = self.last_delivery.get(subject) {
            return allowed;
        }
        let allowed = match self.deliver_cache.get(subject) {
            Some(&allowed) => allowed,
            None => {
                let allowed = !rules
                    .deny
                    .iter()
                    .any(|rule| rule.queue.is_none() && pattern_matches(&rule.subject, subject));
                if self.deliver_cache.len() >= CACHE_MAX {
                    self.deliver_cache.clear();
                }
                self.deliver_cache.insert(subject.into(), allowed);
                allowed
            }
        };
        self.last_delivery.set(subject, allowed);
        allowed
    }
}

/// One list of subscribe rules judging a subscription: `allow` says whether
/// the list is an allow list (a match allows) or a deny list (a match
/// denies). The plain rules whose subject matches decide; for a queue
/// subscription, the matching rules that name a queue overrule them when
/// there are any (nats-server's `queueMatches`).
fn rules_decide(
    rules: &[SubscribeRule],
    subject: &[u8],
    queue: Option<&[u8]>,
    allow: bool,
) -> bool {
    let matching = || {
        rules
            .iter()
            .filter(|rule| pattern_matches(&rule.subject, subject))
    };
    let plain = matching().any(|rule| rule.queue.is_none());
    let mut verdict = plain == allow;
    if let Some(queue) = queue {
        let mut queue_rules = matching()
            .filter_map(|rule| rule.queue.as_deref())
            .peekable();
        if queue_rules.peek().is_some() {
            let named = queue_rules.any(|name| queue_matches(queue, name));
            verdict = named == allow;
        }
    }
    verdict
}

/// A queue rule names `queue`: literally, or as a pattern covering it
/// (`v1.*` covers `v1.a`; a queue name may itself contain `*` and `>`).
fn queue_matches(queue: &[u8], name: &[u8]) -> bool {
    queue == name || (has_wildcard_token(name) && is_subset(queue, name))
}

fn publish_allowed(rules: &Rules<Box<[u8]>>, subject: &[u8]) -> bool {
    if let Some(allow) = &rules.allow {
        if !allow
            .iter()
            .any(|pattern| pattern_matches(pattern, subject))
        {
            return false;
        }
    }
    !rules
        .deny
        .iter()
        .any(|pattern| pattern_matches(pattern, subject))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn check(permissions: Permissions) -> PermissionCheck {
        PermissionCheck::new(Arc::new(permissions))
    }

    #[test]
    fn publish_allow_then_deny_and_an_empty_allow_denies_all() {
        let mut c = check(Permissions {
            publish: Some(Rules {
                allow: Some(vec![b"orders.>"[..].into()]),
                deny: vec![b"orders.secret"[..].into()],
            }),
            ..Permissions::default()
        });
        assert!(c.can_publish(b"orders.new"));
        assert!(c.can_publish(b"orders.new"), "cached");
        assert!(!c.can_publish(b"orders.secret"));
        assert!(!c.can_publish(b"other"));
        let mut none = check(Permissions {
            publish: Some(Rules {
                allow: Some(Vec::new()),
                deny: Vec::new(),
            }),
            ..Permissions::default()
        });
        assert!(!none.can_publish(b"anything"));
        assert!(check(Permissions::default()).can_publish(b"anything"));
    }

    #[test]
    fn replies_may_be_answered_within_max_and_expiry() {
        let mut c = check(Permissions {
            publish: Some(Rules {
                allow: Some(Vec::new()),
                deny: Vec::new(),
            }),
            allow_responses: Some(ResponsePermission {
                max: Some(2),
                expires: Some(Duration::from_secs(1)),
            }),
            ..Permissions::default()
        });
        let t0 = Instant::now();
        assert!(!c.may_respond(b"_INBOX.a", t0));
        c.reply_received(b"_INBOX.a", t0);
        c.reply_received(b"_INBOX.b", t0);
        assert!(c.may_respond(b"_INBOX.a", t0));
        assert!(c.may_respond(b"_INBOX.a", t0));
        assert!(!c.may_respond(b"_INBOX.a", t0), "max 2");
        assert!(
            !c.may_respond(b"_INBOX.b", t0 + Duration::from_secs(2)),
            "expired"
        );
    }
}
