//! Operator claims (`nats` of a `"type":"operator"` token), with the Go
//! jwt v2 JSON names.

use serde::Deserialize;

use super::claims::{null_as_default, GenericFields};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Operator {
    /// Operator keys that may sign accounts besides the operator's own.
    #[serde(deserialize_with = "null_as_default")]
    pub signing_keys: Vec<String>,
    pub account_server_url: String,
    #[serde(deserialize_with = "null_as_default")]
    pub operator_service_urls: Vec<String>,
    pub system_account: String,
    pub assert_server_version: String,
    /// Only the signing keys may sign accounts, not the operator key.
    pub strict_signing_key_usage: bool,
    #[serde(flatten)]
    pub generic: GenericFields,
}
