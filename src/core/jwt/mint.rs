//! Test-side token minting: what `nsc` would write, signed with `nkeys`.

use nkeys::KeyPair;
use serde_json::{json, Value};

use super::encoding::encode;
use super::SignatureVerifier;

/// Verifies with the `nkeys` crate, as the binary does.
pub struct NkeyVerifier;

impl SignatureVerifier for NkeyVerifier {
    fn verify(&self, public_key: &str, message: &[u8], signature: &[u8]) -> bool {
        KeyPair::from_public_key(public_key)
            .and_then(|k| k.verify(message, signature))
            .is_ok()
    }
}

pub const NOW: i64 = 1_800_000_000;

/// A v2 token of `kind` about `subject`, issued and signed by `issuer`.
/// `top` adds registered claims (`exp`, `name`, `iat`...); `nats` is the
/// kind's payload.
pub fn mint(kind: &str, subject: &str, issuer: &KeyPair, top: Value, nats: Value) -> String {
    mint_issued_at(kind, subject, issuer, NOW - 10, top, nats)
}

/// [`mint`] issued at `iat` (seconds since the epoch), for tokens that a
/// running server checks against the real clock.
pub fn mint_issued_at(
    kind: &str,
    subject: &str,
    issuer: &KeyPair,
    iat: i64,
    top: Value,
    nats: Value,
) -> String {
    let mut payload = json!({
        "jti": format!("T{iat}{subject}"),
        "iat": iat,
        "iss": issuer.public_key(),
        "sub": subject,
    });
    if let (Some(p), Value::Object(top)) = (payload.as_object_mut(), top) {
        p.extend(top);
    }
    let mut nats = nats;
    if let Some(n) = nats.as_object_mut() {
        n.insert("type".into(), json!(kind));
        n.insert("version".into(), json!(2));
    }
    payload["nats"] = nats;
    let header = encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = encode(payload.to_string().as_bytes());
    let signing_input = format!("{header}.{body}");
    let signature = issuer.sign(signing_input.as_bytes()).expect("sign");
    format!("{signing_input}.{}", encode(&signature))
}

/// A version 1 token, as `nsc` before 2.0 wrote them: the type at the
/// top level (`nats` holds only the kind's payload), the `"ed25519"`
/// header, and the signature over the payload part alone.
pub fn mint_v1_issued_at(
    kind: &str,
    subject: &str,
    issuer: &KeyPair,
    iat: i64,
    nats: Value,
) -> String {
    let payload = json!({
        "jti": format!("V1{iat}{subject}"),
        "iat": iat,
        "iss": issuer.public_key(),
        "sub": subject,
        "type": kind,
        "nats": nats,
    });
    let header = encode(br#"{"typ":"jwt","alg":"ed25519"}"#);
    let body = encode(payload.to_string().as_bytes());
    let signature = issuer.sign(body.as_bytes()).expect("sign");
    format!("{header}.{body}.{}", encode(&signature))
}

/// Unlimited account limits, as `nsc` writes them.
pub fn unlimited() -> Value {
    json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
           "wildcards": true, "conn": -1, "leaf": -1})
}
