//! Activation claims (`nats` of a `"type":"activation"` token): the
//! exporter's permission for one account (the token's subject) to import a
//! private export.

use serde::Deserialize;

use super::account::ExportType;
use super::claims::GenericFields;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Activation {
    /// The subject the importer may import (it must contain the import's).
    #[serde(rename = "subject")]
    pub import_subject: String,
    #[serde(rename = "kind")]
    pub import_type: ExportType,
    /// The exporting account, when one of its signing keys issued it.
    pub issuer_account: String,
    #[serde(flatten)]
    pub generic: GenericFields,
}
