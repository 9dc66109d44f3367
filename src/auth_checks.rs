//! The slow half of authentication, run off the shards: bcrypt and Ed25519
//! checks that percore-core's auth policy asks for ([`SlowCheck`]), and the
//! per-connection nonce. These cost 50 µs (Ed25519) to 300 ms (bcrypt at
//! cost 12) of CPU, so `server.rs` runs [`passes`] on the shard's blocking
//! thread while the shard serves its other connections.

use data_encoding::{BASE64, BASE64URL_NOPAD, BASE64_NOPAD};
use percore_core::auth::{SlowCheck, SlowOutcome};
use percore_core::jwt::SignatureVerifier;

/// Ed25519 checks of JWT signatures and nonce signatures, with `nkeys`.
pub struct NkeyVerifier;

impl SignatureVerifier for NkeyVerifier {
    fn verify(&self, public_key: &str, message: &[u8], signature: &[u8]) -> bool {
        nkeys::KeyPair::from_public_key(public_key)
            .and_then(|key| key.verify(message, signature))
            .is_ok()
    }
}

/// Runs the check: bcrypt and Ed25519 pass or fail; a JWT login runs the
/// whole operator-mode check with the wall clock.
pub fn run(check: &SlowCheck) -> SlowOutcome {
    match check {
        SlowCheck::UserJwt { request, mode } => {
            let now = unix_now();
            SlowOutcome::Jwt(mode.login(
                request,
                now,
                &|zone| time_of_day(zone, now),
                &NkeyVerifier,
            ))
        }
        other => SlowOutcome::Checked(passes(other)),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Milliseconds since midnight in `zone` for a JWT's time windows: `""`
/// is the server's local time (as Go's `time.Local`), `UTC` is UTC.
/// Other IANA zones are not known here (no zone database is read), so a
/// user restricted to one cannot log in (nats-server refuses when it
/// cannot load the zone, too).
fn time_of_day(zone: &str, now: i64) -> Option<u64> {
    let seconds = match zone {
        "" | "Local" => local_seconds_of_day(now)?,
        "UTC" | "Etc/UTC" => now.rem_euclid(86_400),
        _ => return None,
    };
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_millis()));
    Some(seconds as u64 * 1000 + millis)
}

fn local_seconds_of_day(now: i64) -> Option<i64> {
    let t: libc::time_t = now;
    // SAFETY: `localtime_r` writes only into `tm`, which lives on this
    // stack frame; `t` is a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::localtime_r(&t, &mut tm) };
    if result.is_null() {
        return None;
    }
    Some(i64::from(tm.tm_hour) * 3600 + i64::from(tm.tm_min) * 60 + i64::from(tm.tm_sec))
}

/// Whether the check passes. Malformed input (a bad hash, key or
/// signature) fails it.
pub fn passes(check: &SlowCheck) -> bool {
    match check {
        SlowCheck::UserJwt { .. } => matches!(run(check), SlowOutcome::Jwt(Ok(_))),
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
