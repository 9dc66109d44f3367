//! The slow half of authentication, run off the shards: bcrypt and Ed25519
//! checks that percore-core's auth policy asks for ([`SlowCheck`]), and the
//! per-connection nonce. These cost 50 µs (Ed25519) to 300 ms (bcrypt at
//! cost 12) of CPU, so `server.rs` runs [`passes`] on the shard's blocking
//! thread while the shard serves its other connections.

use data_encoding::{BASE64, BASE64URL_NOPAD, BASE64_NOPAD};
use percore_core::auth::SlowCheck;

/// Whether the check passes. Malformed input (a bad hash, key or
/// signature) fails it.
pub fn passes(check: &SlowCheck) -> bool {
    match check {
        SlowCheck::Bcrypt { hash, password } => bcrypt::verify(password, hash).unwrap_or(false),
        SlowCheck::Ed25519 {
            public_key,
            nonce,
            sig,
        } => {
            let Some(signature) = decode_signature(sig) else {
                return false;
            };
            let Ok(user) = nkeys::KeyPair::from_public_key(public_key) else {
                return false;
            };
            user.verify(nonce.as_bytes(), &signature).is_ok()
        }
    }
}

/// nats-server decodes `sig` as raw base64url first, then standard base64.
fn decode_signature(sig: &str) -> Option<Vec<u8>> {
    let bytes = sig.as_bytes();
    BASE64URL_NOPAD
        .decode(bytes)
        .or_else(|_| BASE64.decode(bytes))
        .or_else(|_| BASE64_NOPAD.decode(bytes))
        .ok()
}

/// A fresh nonce for INFO: 11 bytes from the OS CSPRNG, base64url without
/// padding (15 characters), as nats-server sends it. `None` if the OS has
/// no randomness to give, which fails every NKey login on that connection
/// rather than handing out a predictable challenge.
pub fn new_nonce() -> Option<String> {
    let mut bytes = [0u8; 11];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(BASE64URL_NOPAD.encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_shape() {
        let nonce = new_nonce().expect("randomness");
        assert_eq!(nonce.len(), 15);
        assert!(nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(new_nonce(), Some(nonce));
    }

    #[test]
    fn ed25519_over_the_nonce_text() {
        let user = nkeys::KeyPair::new_user();
        let nonce = new_nonce().expect("randomness");
        let signature = user.sign(nonce.as_bytes()).expect("sign");
        let check = |sig: String, key: String, nonce: String| {
            passes(&SlowCheck::Ed25519 {
                public_key: key,
                nonce,
                sig,
            })
        };
        let key = user.public_key();
        assert!(check(
            BASE64URL_NOPAD.encode(&signature),
            key.clone(),
            nonce.clone()
        ));
        assert!(check(BASE64.encode(&signature), key.clone(), nonce.clone()));
        assert!(!check(
            BASE64URL_NOPAD.encode(&signature),
            key.clone(),
            "other".into()
        ));
        assert!(!check("not base64!".into(), key.clone(), nonce.clone()));
        let other = nkeys::KeyPair::new_user().public_key();
        assert!(!check(
            BASE64URL_NOPAD.encode(&signature),
            other,
            nonce.clone()
        ));
        assert!(!check(
            BASE64URL_NOPAD.encode(&signature),
            "UBAD".into(),
            nonce
        ));
    }

    #[test]
    fn bcrypt_hashes() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let check = |password: &str, hash: &str| {
            passes(&SlowCheck::Bcrypt {
                hash: hash.to_string(),
                password: password.to_string(),
            })
        };
        assert!(check("s3cret", &hash));
        assert!(!check("wrong", &hash));
        assert!(!check("s3cret", "$2a$10$notavalidhash"));
    }
}
