//! Whether an import of a private export (`token_req`) carries a valid
//! activation token: nats-server's `Import.Validate` and `checkActivation`.

use super::account::{Account, ExportType, Import};
use super::activation::Activation;
use super::claims::{ClaimType, Claims};
use super::validity::{check_times, is_revoked};
use super::verify::{decode, SignatureVerifier};
use crate::subject::is_subset;

/// `import` of `importer` (an account public key) from `exporter` is
/// authorized by its token at `now` (Unix seconds). `revocations` are the
/// matching export's.
pub fn activation_valid(
    import: &Import,
    importer: &str,
    exporter: &Claims<Account>,
    revocations: &std::collections::BTreeMap<String, i64>,
    now: i64,
    verifier: &dyn SignatureVerifier,
) -> bool {
    if import.token.is_empty() {
        return false;
    }
    let Ok(act) = decode::<Activation>(&import.token, ClaimType::Activation, verifier) else {
        return false;
    };
    if act.data.issuer != import.account && act.nats.issuer_account != import.account {
        return false;
    }
    if act.data.subject != importer || act.nats.import_type != import.kind {
        return false;
    }
    if check_times(&act.data, now).is_err() {
        return false;
    }
    let subject = if import.kind == ExportType::Service && !import.to.is_empty() {
        &import.to
    } else {
        &import.subject
    };
    if !is_subset(subject.as_bytes(), act.nats.import_subject.as_bytes()) {
        return false;
    }
    // Issued by a signing key: it must be one of the exporter's.
    if !act.nats.issuer_account.is_empty()
        && (act.nats.issuer_account != exporter.data.subject
            || !exporter.nats.signing_keys.contains(&act.data.issuer)
                && act.data.issuer != exporter.data.subject)
    {
        return false;
    }
    if act.data.expires != 0 && act.data.expires <= now {
        return false;
    }
    !is_revoked(revocations, &act.data.subject, act.data.issued_at)
}
