//! `cluster { permissions { import, export } }`: which interest this server
//! exchanges with its routes, as nats-server 2.9 has it (route.go
//! `canImport`/`canExport`, opts.go `setClusterPermissions`).
//!
//! The same rules hold for every route of this server (they are this
//! server's `cluster` options, not the peer's), and both directions act on
//! interest, not on messages:
//!
//! - `import` (a publish rule set): the subjects this server wants from
//!   the cluster. Local interest outside it is never announced (`RS+`/`RS-`
//!   are not sent), so the peers never forward those messages here. A
//!   local wildcard subscription is judged as a subject whose wildcards
//!   are literal tokens, as a client's publish would be. An `RMSG` that
//!   arrives anyway is delivered: nats-server checks nothing per message
//!   on the way in.
//! - `export` (a subscribe rule set): the subjects this server sends to the
//!   cluster. A peer's `RS+` outside it is ignored (no subscription, so no
//!   message for it ever leaves). Only when an accepted wildcard `RS+`
//!   covers a deny rule (`RS+ $G foo.*` with `deny: foo.secret`) must
//!   messages be checked one by one; from then on that route's deliveries
//!   go through its [`PermissionCheck`] (nats-server's `mperms`), and only
//!   that route's.
//!
//! Both are announced in the route INFO (`import`/`export`, each
//! `{"allow":[..],"deny":[..]}`), which nats-server reads on a peer's
//! config reload only.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::auth::{PermissionCheck, Permissions, Rules, SubscribeRule};
use crate::subject::is_subset;

/// A rule set as the route INFO carries it (nats-server's
/// `SubjectPermission`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectPermissionWire {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// This server's route permissions: import as the publish rules, export as
/// the subscribe rules of a [`Permissions`] (nats-server's own mapping), so
/// the client permission checks judge them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePermissions {
    rules: Arc<Permissions>,
}

impl RoutePermissions {
    /// `permissions.publish` is the import, `permissions.subscribe` the
    /// export (as parsed from `import`/`export` or their client aliases).
    pub fn new(permissions: Permissions) -> RoutePermissions {
        RoutePermissions {
            rules: Arc::new(Permissions {
                allow_responses: None,
                ..permissions
            }),
        }
    }

    /// The INFO's `import` field.
    pub fn import_wire(&self) -> Option<SubjectPermissionWire> {
        self.rules
            .publish
            .as_ref()
            .map(|rules| wire(rules, |s| String::from_utf8_lossy(s).into_owned()))
    }

    /// The INFO's `export` field.
    pub fn export_wire(&self) -> Option<SubjectPermissionWire> {
        self.rules.subscribe.as_ref().map(|rules| {
            wire(rules, |rule| {
                let subject = String::from_utf8_lossy(&rule.subject);
                match &rule.queue {
                    Some(queue) => format!("{subject} {}", String::from_utf8_lossy(queue)),
                    None => subject.into_owned(),
                }
            })
        })
    }

    /// The import check for the cluster shard's announcements (its cache is
    /// per subject, kept for the server's life).
    pub fn import_check(&self) -> ImportCheck {
        ImportCheck {
            check: PermissionCheck::new(self.rules.clone()),
        }
    }

    /// May a peer's interest in `subject` be accepted (nats-server's
    /// `canExport`)? Queue groups are not looked at, as in 2.9.
    pub fn exports(&self, subject: &[u8]) -> bool {
        PermissionCheck::new(self.rules.clone()).can_subscribe(subject, None)
    }

    /// An accepted interest in `subject` needs its messages checked one by
    /// one: a wildcard that covers an export deny rule.
    pub fn needs_message_check(&self, subject: &[u8]) -> bool {
        let Some(rules) = &self.rules.subscribe else {
            return false;
        };
        let wildcard = subject
            .split(|&b| b == b'.')
            .any(|token| token == b"*" || token == b">");
        wildcard
            && rules
                .deny
                .iter()
                .any(|rule| is_subset(&rule.subject, subject))
    }

    /// The per-message export check for one route, once
    /// [`RoutePermissions::needs_message_check`] said so.
    pub fn message_check(&self) -> PermissionCheck {
        PermissionCheck::new(Arc::new(Permissions {
            publish: None,
            subscribe: self.rules.subscribe.clone(),
            allow_responses: None,
        }))
    }
}

/// Whether local interest is announced to the routes (nats-server's
/// `canImport`), with a cache of decisions. Owned by the cluster shard.
#[derive(Debug)]
pub struct ImportCheck {
    check: PermissionCheck,
}

impl ImportCheck {
    pub fn announces(&mut self, subject: &[u8]) -> bool {
        self.check.can_publish(subject)
    }
}

/// A peer's `export` from its route INFO, to tell which of our interest it
/// accepts: when a config reload widens it, nats-server's peers send it
/// the interest it ignored before (route.go `updateRemoteRoutePerms`).
#[derive(Debug)]
pub struct PeerExport {
    check: Option<PermissionCheck>,
}

impl PeerExport {
    /// `None`: the peer exports everything.
    pub fn new(export: Option<&SubjectPermissionWire>) -> PeerExport {
        let rule = |text: &String| {
            let mut fields = text.split_whitespace();
            SubscribeRule {
                subject: fields.next().unwrap_or_default().as_bytes().into(),
                queue: fields.next().map(|q| q.as_bytes().into()),
            }
        };
        PeerExport {
            check: export.map(|export| {
                PermissionCheck::new(Arc::new(Permissions {
                    publish: None,
                    subscribe: Some(Rules {
                        allow: (!export.allow.is_empty())
                            .then(|| export.allow.iter().map(rule).collect()),
                        deny: export.deny.iter().map(rule).collect(),
                    }),
                    allow_responses: None,
                }))
            }),
        }
    }

    pub fn exports(&self, subject: &[u8]) -> bool {
        self.check
            .as_ref()
            .is_none_or(|check| check.can_subscribe(subject, None))
    }
}

fn wire<R>(rules: &Rules<R>, text: impl Fn(&R) -> String) -> SubjectPermissionWire {
    let strings = |list: &[R]| list.iter().map(&text).collect();
    SubjectPermissionWire {
        allow: rules.allow.as_deref().map(strings).unwrap_or_default(),
        deny: strings(&rules.deny),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(subject: &str) -> SubscribeRule {
        SubscribeRule {
            subject: subject.as_bytes().into(),
            queue: None,
        }
    }

    fn perms() -> RoutePermissions {
        RoutePermissions::new(Permissions {
            publish: Some(Rules {
                allow: Some(vec![b"in.>".as_slice().into()]),
                deny: vec![b"in.secret".as_slice().into()],
            }),
            subscribe: Some(Rules {
                allow: Some(vec![rule("out.>"), rule("both.*")]),
                deny: vec![rule("out.secret")],
            }),
            allow_responses: None,
        })
    }

    #[test]
    fn import_decides_announcements_with_wildcards_as_literals() {
        let mut import = perms().import_check();
        assert!(import.announces(b"in.a"));
        assert!(import.announces(b"in.*"));
        assert!(!import.announces(b"in.secret"));
        assert!(!import.announces(b"out.a"));
        assert!(!import.announces(b">"));
    }

    #[test]
    fn export_decides_peer_interest_and_when_messages_need_a_check() {
        let p = perms();
        assert!(p.exports(b"out.a"));
        assert!(p.exports(b"out.*"));
        assert!(!p.exports(b"out.secret"));
        assert!(!p.exports(b"in.a"));
        assert!(!p.exports(b">"));
        assert!(p.needs_message_check(b"out.*"));
        assert!(p.needs_message_check(b"out.>"));
        assert!(!p.needs_message_check(b"out.a"));
        assert!(!p.needs_message_check(b"both.*"));
        let mut check = p.message_check();
        assert!(check.may_receive(b"out.a"));
        assert!(!check.may_receive(b"out.secret"));
    }

    #[test]
    fn info_fields_as_nats_server_writes_them() {
        let p = perms();
        assert_eq!(
            serde_json::to_string(&p.import_wire()).unwrap(),
            r#"{"allow":["in.>"],"deny":["in.secret"]}"#
        );
        assert_eq!(
            serde_json::to_string(&p.export_wire()).unwrap(),
            r#"{"allow":["out.>","both.*"],"deny":["out.secret"]}"#
        );
        // A peer's, read back.
        let export: SubjectPermissionWire =
            serde_json::from_str(r#"{"allow":["out.\u003e"],"deny":["out.secret"]}"#).unwrap();
        let peer = PeerExport::new(Some(&export));
        assert!(peer.exports(b"out.a") && !peer.exports(b"out.secret") && !peer.exports(b"x"));
        assert!(PeerExport::new(None).exports(b"x"));
        let none = RoutePermissions::new(Permissions::default());
        assert!(none.import_wire().is_none() && none.export_wire().is_none());
    }
}
