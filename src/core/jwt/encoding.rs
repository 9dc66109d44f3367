//! The compact form of a NATS JWT: `header.payload.signature`, each part
//! base64url without padding (Go's `RawURLEncoding`, which refuses
//! padding). The header must say `"typ":"JWT"` (any case) and
//! `"alg":"ed25519-nkey"` or the older `"ed25519"` of version 1 tokens
//! (either is accepted whatever the payload's version, as the Go library
//! does: the payload alone says which version a token is).

use data_encoding::BASE64URL_NOPAD;
use serde::Deserialize;

use super::JwtError;

/// The algorithm of v2 tokens.
pub const ALGORITHM: &str = "ed25519-nkey";
/// The algorithm of v1 tokens.
pub const ALGORITHM_V1: &str = "ed25519";

/// A token split into its parts, the payload and signature decoded. The
/// signature of a v2 token covers `signing_input` (header and payload as
/// sent, with the dot between them), that of a v1 token `payload_text`
/// (the payload as sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compact<'a> {
    pub signing_input: &'a str,
    pub payload_text: &'a str,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    typ: String,
    #[serde(default)]
    alg: String,
}

/// Splits and decodes `token`, checking its header.
pub fn split(token: &str) -> Result<Compact<'_>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected 3 chunks".into()));
    };
    check_header(&decode(header)?)?;
    let payload_bytes = decode(payload)?;
    let signature = decode(signature)?;
    Ok(Compact {
        signing_input: &token[..header.len() + 1 + payload.len()],
        payload_text: payload,
        payload: payload_bytes,
        signature,
    })
}

/// base64url without padding, as Go's `RawURLEncoding` decodes it.
pub fn decode(part: &str) -> Result<Vec<u8>, JwtError> {
    BASE64URL_NOPAD
        .decode(part.as_bytes())
        .map_err(|e| JwtError::Malformed(format!("illegal base64 data: {e}")))
}

/// The encoding of a token part (tests build tokens with it).
pub fn encode(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

fn check_header(bytes: &[u8]) -> Result<(), JwtError> {
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| JwtError::Malformed(e.to_string()))?;
    if !header.typ.eq_ignore_ascii_case("JWT") {
        return Err(JwtError::Malformed(format!(
            "not supported type {:?}",
            header.typ
        )));
    }
    let alg = header.alg.to_ascii_lowercase();
    if alg != ALGORITHM && alg != ALGORITHM_V1 {
        return Err(JwtError::Malformed(format!(
            "unexpected {:?} algorithm",
            header.alg
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            encode(header.as_bytes()),
            encode(payload.as_bytes()),
            encode(sig)
        )
    }

    #[test]
    fn splits_a_v2_token() {
        let t = token(r#"{"typ":"jwt","alg":"ED25519-NKEY"}"#, "{}", b"sig");
        let compact = split(&t).expect("valid");
        assert_eq!(compact.payload, b"{}");
        assert_eq!(compact.signature, b"sig");
        assert_eq!(
            compact.signing_input,
            &t[..t.rfind('.').expect("dot")],
            "header.payload as sent"
        );
    }

    #[test]
    fn accepts_the_v1_header_and_refuses_bad_headers_and_bad_shapes() {
        let v1 = token(r#"{"typ":"jwt","alg":"ed25519"}"#, "{}", b"s");
        let compact = split(&v1).expect("v1 header");
        assert_eq!(compact.payload_text, encode(b"{}"));
        let other = token(r#"{"typ":"JWT","alg":"HS256"}"#, "{}", b"s");
        assert!(matches!(split(&other), Err(JwtError::Malformed(m)) if m.contains("HS256")));
        let typ = token(r#"{"typ":"JWS","alg":"ed25519-nkey"}"#, "{}", b"s");
        assert!(split(&typ).is_err());
        let longer = token(r#"{"typ":"JWT","alg":"ed25519-nkey2"}"#, "{}", b"s");
        assert!(split(&longer).is_err());
        assert!(split("a.b").is_err());
        assert!(split("a.b.c.d").is_err());
        let padded = format!(
            "{}=",
            token(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#, "{}", b"s")
        );
        assert!(split(&padded).is_err(), "padding is refused");
        assert!(split("e30.e30.!!").is_err());
    }
}
