//! What an account offers others: a stream (messages published on its
//! subjects are copied into the importers) or a service (requests from the
//! importers come in, responses go back to the requester).

use std::time::Duration;

use crate::ids::AccountId;
use crate::subject::is_subset;

/// How long a service keeps its response route open when the export does
/// not say (nats-server's `DEFAULT_SERVICE_EXPORT_RESPONSE_THRESHOLD`).
pub const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(2 * 60);

/// How many responses a service request may get (`response_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    /// One response, then the route closes (`single`, the default).
    #[default]
    Singleton,
    /// Any number until the threshold passes (`stream`).
    Stream,
    /// Any number of chunks until the threshold passes (`chunked`).
    Chunked,
}

impl ResponseType {
    /// As `/accountz` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ResponseType::Singleton => "Singleton",
            ResponseType::Stream => "Streamed",
            ResponseType::Chunked => "Chunked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportKind {
    Stream,
    Service {
        response: ResponseType,
        /// How long a response route stays open.
        threshold: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// A subject, wildcards allowed.
    pub subject: String,
    pub kind: ExportKind,
    /// Who may import it; `None` is public.
    pub accounts: Option<Vec<AccountId>>,
}

impl Export {
    pub fn is_service(&self) -> bool {
        matches!(self.kind, ExportKind::Service { .. })
    }

    /// `importer` may import `subject` through this export.
    pub fn authorizes(&self, subject: &[u8], importer: AccountId) -> bool {
        let listed = match &self.accounts {
            None => true,
            Some(list) => list.contains(&importer),
        };
        listed && is_subset(subject, self.subject.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_exports() {
        let public = Export {
            subject: "foo.>".into(),
            kind: ExportKind::Stream,
            accounts: None,
        };
        assert!(public.authorizes(b"foo.bar", AccountId(3)));
        assert!(public.authorizes(b"foo.*", AccountId(3)));
        assert!(!public.authorizes(b"foo", AccountId(3)));
        assert!(!public.authorizes(b">", AccountId(3)));
        let private = Export {
            accounts: Some(vec![AccountId(2)]),
            ..public
        };
        assert!(private.authorizes(b"foo.x", AccountId(2)));
        assert!(!private.authorizes(b"foo.x", AccountId(3)));
    }
}
