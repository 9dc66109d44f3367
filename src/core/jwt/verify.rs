//! Decoding a token of a known kind and checking its signature. The
//! Ed25519 check itself is the caller's ([`SignatureVerifier`]): the
//! runtime-free core holds no crypto, and the binary runs the check off
//! the shards (it costs ~50 µs).

use serde::de::DeserializeOwned;

use super::claims::{claim_type, ClaimType, Claims};
use super::encoding::split;
use super::nkey::{is_public_key, KeyKind};
use super::v1;
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
/// its issuer (`iss`) signed it. A version 1 token is read in its v2 form
/// ([`v1::to_v2`]) and its signature checked over the payload alone, as
/// the Go library does. Times are not checked here.
pub fn decode<T: DeserializeOwned + Default>(
    token: &str,
    kind: ClaimType,
    verifier: &dyn SignatureVerifier,
) -> Result<Claims<T>, JwtError> {
    let compact = split(token)?;
    let (found, version) = claim_type(&compact.payload)?;
    if found != kind {
        return Err(JwtError::Malformed(format!("not {} claim", kind.name())));
    }
    let malformed = |e: serde_json::Error| JwtError::Malformed(e.to_string());
    let (claims, signed): (Claims<T>, &str) = if version == 1 {
        let v2 = v1::to_v2(kind, &compact.payload)?;
        let claims = serde_json::from_value(v2).map_err(malformed)?;
        (claims, compact.payload_text)
    } else {
        let claims = serde_json::from_slice(&compact.payload).map_err(malformed)?;
        (claims, compact.signing_input)
    };
    if !verifier.verify(&claims.data.issuer, signed.as_bytes(), &compact.signature) {
        return Err(JwtError::Signature { version });
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
