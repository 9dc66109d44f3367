//! User JWT permissions (`pub`, `sub`, `resp`) as the connection checks
//! them: nats-server's `buildPermissionsFromJwt` and
//! `validateResponsePermissions`.

use std::time::Duration;

use super::permissions::{Permissions, ResponsePermission, Rules, SubscribeRule};
use crate::jwt::user::{Permission, Permissions as JwtPermissions, ResponsePermission as JwtResp};

/// `None` when the claims set nothing (the account's default permissions
/// then apply).
pub fn from_jwt(claims: &JwtPermissions) -> Option<Permissions> {
    let mut permissions = Permissions::default();
    let mut any = false;
    if !claims.publish.is_empty() {
        permissions.publish = Some(rules(&claims.publish, |s| s.as_bytes().into()));
        any = true;
    }
    if !claims.subscribe.is_empty() {
        permissions.subscribe = Some(rules(&claims.subscribe, subscribe_rule));
        any = true;
    }
    if let Some(resp) = claims.resp {
        permissions.allow_responses = Some(response_permission(resp));
        // Replies are the exception to a publish allow list: without one,
        // the list becomes empty and only replies pass.
        let publish = permissions.publish.get_or_insert_with(Rules::default);
        publish.allow.get_or_insert_with(Vec::new);
        any = true;
    }
    any.then_some(permissions)
}

/// An empty allow list is no allow list (nats-server builds its allow
/// sublist only from a non-empty list).
fn rules<R>(permission: &Permission, rule: fn(&str) -> R) -> Rules<R> {
    Rules {
        allow: (!permission.allow.is_empty())
            .then(|| permission.allow.iter().map(|s| rule(s)).collect()),
        deny: permission.deny.iter().map(|s| rule(s)).collect(),
    }
}

fn subscribe_rule(text: &str) -> SubscribeRule {
    let mut fields = text.split_whitespace();
    SubscribeRule {
        subject: fields.next().unwrap_or_default().as_bytes().into(),
        queue: fields.next().map(|queue| queue.as_bytes().into()),
    }
}

/// `max` 0 is one reply, negative unlimited; `ttl` (nanoseconds) 0 is two
/// minutes, negative never.
fn response_permission(resp: JwtResp) -> ResponsePermission {
    let default = ResponsePermission::default();
    ResponsePermission {
        max: match resp.max {
            0 => default.max,
            n if n < 0 => None,
            n => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        },
        expires: match resp.ttl {
            0 => default.expires,
            n if n < 0 => None,
            n => Some(Duration::from_nanos(n as u64)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_claims_give_none_and_resp_empties_the_publish_allow_list() {
        assert_eq!(from_jwt(&JwtPermissions::default()), None);
        let mut claims = JwtPermissions::default();
        claims.subscribe.allow = vec!["a.* q".into(), "b".into()];
        claims.publish.deny = vec!["x".into()];
        let p = from_jwt(&claims).expect("some");
        let sub = p.subscribe.expect("sub");
        assert_eq!(sub.allow.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            sub.allow.expect("allow")[0].queue.as_deref(),
            Some(&b"q"[..])
        );
        let publish = p.publish.expect("pub");
        assert_eq!(publish.allow, None);
        claims.resp = Some(JwtResp { max: 0, ttl: -1 });
        let p = from_jwt(&claims).expect("some");
        assert_eq!(p.publish.expect("pub").allow, Some(Vec::new()));
        assert_eq!(
            p.allow_responses,
            Some(ResponsePermission {
                max: Some(1),
                expires: None
            })
        );
    }
}
