//! User claims (`nats` of a `"type":"user"` token) and the permission and
//! limit types accounts share with them (default permissions, scoped
//! signing key templates), with the Go jwt v2 JSON names.

use serde::{Deserialize, Deserializer};

use super::claims::{null_as_default, GenericFields};

/// `-1`: no limit, in every numeric limit of the claims.
pub const NO_LIMIT: i64 = -1;

/// `allow` / `deny` subject lists of one direction. Subscribe entries may be
/// `"subject queue"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Permission {
    #[serde(deserialize_with = "null_as_default")]
    pub allow: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub deny: Vec<String>,
}

impl Permission {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// `resp`: a user may answer requests it received (`max` replies within
/// `ttl` nanoseconds; Go's `time.Duration`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ResponsePermission {
    pub max: i64,
    pub ttl: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Permissions {
    #[serde(rename = "pub", deserialize_with = "null_as_default")]
    pub publish: Permission,
    #[serde(rename = "sub", deserialize_with = "null_as_default")]
    pub subscribe: Permission,
    pub resp: Option<ResponsePermission>,
}

/// A daily window `"HH:MM:SS"`..`"HH:MM:SS"` (an end before the start runs
/// past midnight).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TimeRange {
    pub start: String,
    pub end: String,
}

/// `UserLimits` and `NatsLimits` of the Go library, flattened as there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// CIDRs the client must connect from (a JSON list, or one
    /// comma-separated string).
    #[serde(deserialize_with = "cidr_list")]
    pub src: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub times: Vec<TimeRange>,
    /// IANA zone of `times`; empty: the server's local time.
    #[serde(rename = "times_location")]
    pub locale: String,
    pub subs: i64,
    pub data: i64,
    pub payload: i64,
}

/// What a user may do: the part of a user claim a scoped signing key's
/// template replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UserPermissionLimits {
    #[serde(flatten)]
    pub permissions: Permissions,
    #[serde(flatten)]
    pub limits: Limits,
    pub bearer_token: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub allowed_connection_types: Vec<String>,
}

impl UserPermissionLimits {
    /// Nothing set at all (Go: deep-equal to the zero value), as a user
    /// signed by a scoped key must be.
    pub fn is_empty(&self) -> bool {
        *self == UserPermissionLimits::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(flatten)]
    pub grants: UserPermissionLimits,
    /// The account, when a signing key of it issued the token.
    pub issuer_account: String,
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// Go's `CIDRList` takes a list, or a comma-separated string (lower-cased,
/// trimmed, empty entries dropped).
fn cidr_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Form>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(Form::List(list)) => list,
        Some(Form::Text(text)) => {
            let mut list: Vec<String> = Vec::new();
            for entry in text.to_ascii_lowercase().split(',') {
                let entry = entry.trim().to_string();
                if !entry.is_empty() && !list.contains(&entry) {
                    list.push(entry);
                }
            }
            list
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_field_names() {
        let json = r#"{
            "pub": {"allow": ["a.>"], "deny": ["a.b"]},
            "sub": {"allow": ["c q"]},
            "resp": {"max": 2, "ttl": 1000000000},
            "src": "10.0.0.0/8, 127.0.0.1/32",
            "times": [{"start": "08:00:00", "end": "17:00:00"}],
            "times_location": "UTC",
            "subs": -1, "data": -1, "payload": 1024,
            "bearer_token": true,
            "allowed_connection_types": ["STANDARD"],
            "issuer_account": "AXYZ",
            "type": "user", "version": 2, "tags": null
        }"#;
        let user: User = serde_json::from_str(json).expect("parses");
        assert_eq!(user.grants.permissions.publish.allow, vec!["a.>"]);
        assert_eq!(user.grants.permissions.subscribe.allow, vec!["c q"]);
        assert_eq!(
            user.grants.permissions.resp,
            Some(ResponsePermission {
                max: 2,
                ttl: 1_000_000_000
            })
        );
        assert_eq!(user.grants.limits.src, vec!["10.0.0.0/8", "127.0.0.1/32"]);
        assert_eq!(user.grants.limits.payload, 1024);
        assert!(user.grants.bearer_token);
        assert_eq!(user.issuer_account, "AXYZ");
        assert_eq!(user.generic.kind, "user");
        assert!(!user.grants.is_empty());
        let empty: User = serde_json::from_str(r#"{"type":"user","version":2}"#).expect("parses");
        assert!(empty.grants.is_empty());
    }
}
