//! Account claims (`nats` of a `"type":"account"` token): limits set by the
//! operator, exports, imports, signing keys, user revocations, default
//! permissions and subject mappings, with the Go jwt v2 JSON names.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::claims::{null_as_default, GenericFields};
use super::signing_keys::SigningKeys;
use super::user::Permissions;

/// `nats.limits` (`OperatorLimits`: NATS, account and JetStream limits
/// flattened; JetStream's are not read). Absent numbers are 0, as Go
/// decodes them; `-1` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OperatorLimits {
    pub subs: i64,
    pub data: i64,
    pub payload: i64,
    pub imports: i64,
    pub exports: i64,
    #[serde(rename = "wildcards")]
    pub wildcard_exports: bool,
    pub disallow_bearer: bool,
    pub conn: i64,
    #[serde(rename = "leaf")]
    pub leaf_node_conn: i64,
}

/// `"stream"` or `"service"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportType {
    #[default]
    Stream,
    Service,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Export {
    pub name: String,
    pub subject: String,
    #[serde(rename = "type")]
    pub kind: ExportType,
    /// Private: an importer needs an activation token.
    pub token_req: bool,
    /// Activation tokens revoked: subject (importing account) → time.
    #[serde(deserialize_with = "null_as_default")]
    pub revocations: BTreeMap<String, i64>,
    /// `"Singleton"` (or empty), `"Stream"`, `"Chunked"`.
    pub response_type: String,
    /// Nanoseconds (Go's `time.Duration`).
    pub response_threshold: i64,
    pub account_token_position: u64,
    pub advertise: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Import {
    pub name: String,
    pub subject: String,
    pub account: String,
    /// An activation token (a JWT) for a private export.
    pub token: String,
    /// Deprecated rename (`local_subject` replaces it).
    pub to: String,
    pub local_subject: String,
    #[serde(rename = "type")]
    pub kind: ExportType,
    pub share: bool,
}

/// One destination of a subject mapping (`WeightedMapping`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WeightedMapping {
    pub subject: String,
    /// Percent; 0 (absent) means 100, as the Go library's `GetWeight`.
    pub weight: u8,
    pub cluster: String,
}

impl WeightedMapping {
    pub fn weight(&self) -> u8 {
        if self.weight == 0 {
            100
        } else {
            self.weight
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Account {
    #[serde(deserialize_with = "null_as_default")]
    pub imports: Vec<Import>,
    #[serde(deserialize_with = "null_as_default")]
    pub exports: Vec<Export>,
    pub limits: OperatorLimits,
    pub signing_keys: SigningKeys,
    /// Users revoked: user public key (or `"*"`) → time; tokens issued at
    /// or before it are refused.
    #[serde(deserialize_with = "null_as_default")]
    pub revocations: BTreeMap<String, i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub default_permissions: Permissions,
    /// Source subject → its destinations.
    #[serde(deserialize_with = "null_as_default")]
    pub mappings: BTreeMap<String, Vec<WeightedMapping>>,
    #[serde(flatten)]
    pub generic: GenericFields,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_field_names() {
        let json = r#"{
            "imports": [{"name":"i","subject":"s.>","account":"AEXP","token":"t",
                         "local_subject":"l.>","type":"service","share":true}],
            "exports": [{"subject":"x.>","type":"service","token_req":true,
                         "revocations":{"AIMP":5},"response_type":"Stream",
                         "response_threshold":2000000000,"account_token_position":2}],
            "limits": {"subs":-1,"payload":512,"conn":3,"imports":-1,"exports":-1,
                       "wildcards":true,"disallow_bearer":true,"leaf":-1,"data":-1},
            "signing_keys": ["ASK"],
            "revocations": {"UREV": 10, "*": 3},
            "default_permissions": {"pub":{"deny":[">"]}},
            "mappings": {"a.*": [{"subject":"b.$1","weight":40},{"subject":"c.$1","cluster":"e"}]},
            "type":"account","version":2
        }"#;
        let account: Account = serde_json::from_str(json).expect("parses");
        assert_eq!(account.imports[0].kind, ExportType::Service);
        assert_eq!(account.imports[0].local_subject, "l.>");
        assert!(account.exports[0].token_req);
        assert_eq!(account.exports[0].revocations.get("AIMP"), Some(&5));
        assert_eq!(account.exports[0].account_token_position, 2);
        assert_eq!(account.limits.conn, 3);
        assert_eq!(account.limits.payload, 512);
        assert!(account.limits.disallow_bearer);
        assert!(account.signing_keys.contains("ASK"));
        assert_eq!(account.revocations.get("*"), Some(&3));
        assert_eq!(account.default_permissions.publish.deny, vec![">"]);
        let mapping = &account.mappings["a.*"];
        assert_eq!(
            (mapping[0].subject.as_str(), mapping[0].weight()),
            ("b.$1", 40)
        );
        assert_eq!(
            (mapping[1].cluster.as_str(), mapping[1].weight()),
            ("e", 100)
        );
        let bare: Account = serde_json::from_str("{}").expect("parses");
        assert_eq!(bare.limits.conn, 0, "Go's zero value");
    }
}
