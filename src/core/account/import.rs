//! What an account takes from others. Both kinds are resolved against the
//! exporter's exports when the table is built (an import without a
//! matching export is a configuration error), so the shards only route.

use std::time::Duration;

use super::export::ResponseType;
use super::transform::SubjectTransform;
use crate::ids::AccountId;

/// `imports: [{stream: {account, subject}, prefix | to}]`: messages the
/// exporter's clients publish on `subject` are delivered in the importing
/// account, renamed by `transform` if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamImport {
    pub exporter: AccountId,
    /// The exporter's subject (wildcards allowed).
    pub subject: String,
    pub transform: Option<SubjectTransform>,
}

/// `imports: [{service: {account, subject}, to}]`: a request the importing
/// account's clients publish on `local` is delivered in the exporter's
/// account on `subject` (renamed by `transform`), with a reply subject of
/// the exporter's that routes responses back to the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImport {
    pub exporter: AccountId,
    /// The exporter's subject.
    pub subject: String,
    /// The subject the importer's clients publish to (`to`, else `subject`).
    pub local: String,
    /// `local` → `subject`, when they differ.
    pub transform: Option<SubjectTransform>,
    /// Taken from the matching export.
    pub response: ResponseType,
    pub threshold: Duration,
    /// `share`: the requests' `Nats-Request-Info` then carries the
    /// requester's connection details too (start, host, id, user, name,
    /// lang, ver, server, cluster, jwt, kind, client_type), as
    /// [`super::request_info`] writes them.
    pub share: bool,
}
