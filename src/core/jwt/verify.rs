//! Decoding a token of a known kind and checking its signature. The
//! Ed25519 check itself is the caller's ([`SignatureVerifier`]): the
//! runtime-free core holds no crypto, and the binary runs the check off
//! the shards (it costs ~50 µs).

use serde::de::DeserializeOwned;

use super::claims::{claim_type, ClaimType, Claims};
use super::encoding::split;
use super::nkey::{is_public_key, KeyKind};
use super::JwtError;

/// Checks an Ed25519 signature by an NKey public key.
pub trait SignatureVerifier {
    /// `signature` over `message` was made by `public_key`'s seed.
    fn verify(&self, public_key: &str, message: &[u8], signature: &[u8]) -> bool;
}

/// Which kinds of key may issue a token of each kind (the Go library's
/// `ExpectedPrefixes`).
fn issuer_kinds(kind: ClaimType) -> &'static [KeyKind] {
    match kind {
        ClaimType::Operator => &[KeyKind::Operator],
        ClaimType::Account | ClaimType::Activation => &[KeyKind::Account, KeyKind::Operator],
        ClaimType::User => &[KeyKind::Account],
    }
}

/// Decodes `token` as a `kind` token with payload `T` and verifies that
/// its issuer (`iss`) signed it. Times are not checked here.
pub fn decode<T: DeserializeOwned + Default>(
    token: &str,
    kind: ClaimType,
    verifier: &dyn SignatureVerifier,
) -> Result<Claims<T>, JwtError> {
    let compact = split(token)?;
    let found = claim_type(&compact.payload)?;
    if found != kind {
        return Err(JwtError::Malformed(format!("not {} claim", kind.name())));
    }
    let claims: Claims<T> =
        serde_json::from_slice(&compact.payload).map_err(|e| JwtError::Malformed(e.to_string()))?;
    if !verifier.verify(
        &claims.data.issuer,
        compact.signing_input.as_bytes(),
        &compact.signature,
    ) {
        return Err(JwtError::Signature);
    }
    let kinds = issuer_kinds(kind);
    if !kinds.iter().any(|&k| is_public_key(&claims.data.issuer, k)) {
        return Err(JwtError::Malformed(format!(
            "unable to validate expected prefixes - {}",
            kinds
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    Ok(claims)
}
