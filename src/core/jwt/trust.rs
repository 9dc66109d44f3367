//! The top of the issuer chain: the operators a server trusts, and the
//! account tokens they (or their signing keys) issued.

use super::account::Account;
use super::claims::{ClaimType, Claims};
use super::nkey::{is_public_key, KeyKind};
use super::operator::Operator;
use super::verify::{decode, SignatureVerifier};
use super::JwtError;

/// The keys whose account tokens a server accepts: `trusted_keys`, or each
/// configured operator's key (unless it has `strict_signing_key_usage`)
/// and its signing keys, as nats-server expands them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys(pub Vec<String>);

impl TrustedKeys {
    pub fn from_operators(operators: &[Claims<Operator>]) -> TrustedKeys {
        let mut keys = Vec::new();
        for operator in operators {
            if !operator.nats.strict_signing_key_usage {
                keys.push(operator.data.subject.clone());
            }
            keys.extend(operator.nats.signing_keys.iter().cloned());
        }
        TrustedKeys(keys)
    }

    /// nats-server's `isTrustedIssuer`.
    pub fn trusts(&self, issuer: &str) -> bool {
        self.0.iter().any(|k| k == issuer)
    }

    /// The first key that is not a public operator key, if any.
    pub fn first_invalid(&self) -> Option<&str> {
        self.0
            .iter()
            .map(String::as_str)
            .find(|k| !is_public_key(k, KeyKind::Operator))
    }
}

/// Decodes an operator token (signed by the operator itself).
pub fn decode_operator(
    token: &str,
    verifier: &dyn SignatureVerifier,
) -> Result<Claims<Operator>, JwtError> {
    let claims: Claims<Operator> = decode(token, ClaimType::Operator, verifier)?;
    if !is_public_key(&claims.data.subject, KeyKind::Operator) {
        return Err(JwtError::Invalid(
            "expected subject to be an operator public key".into(),
        ));
    }
    Ok(claims)
}

/// Decodes an account token and checks that a trusted key issued it. An
/// expired account is returned all the same: nats-server keeps it and
/// refuses its users (see [`super::login`]).
pub fn decode_account(
    token: &str,
    trusted: &TrustedKeys,
    verifier: &dyn SignatureVerifier,
) -> Result<Claims<Account>, JwtError> {
    let claims: Claims<Account> = decode(token, ClaimType::Account, verifier)?;
    if !is_public_key(&claims.data.subject, KeyKind::Account) {
        return Err(JwtError::Invalid(
            "expected subject to be account public key".into(),
        ));
    }
    if !trusted.trusts(&claims.data.issuer) {
        return Err(JwtError::Untrusted);
    }
    Ok(claims)
}

/// The account's own key signs users unless the operator is strict; its
/// signing keys always do. `Some(scope)` when `issuer` may sign users.
pub fn account_signer<'a>(
    account: &'a Claims<Account>,
    issuer: &str,
    strict: bool,
) -> Option<Option<&'a super::signing_keys::UserScope>> {
    if let Some(scope) = account.nats.signing_keys.get(issuer) {
        return Some(scope);
    }
    (!strict && issuer == account.data.subject).then_some(None)
}
