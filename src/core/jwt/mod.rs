//! NATS JWTs (the Go `jwt/v2` library's format and nats-server 2.9's rules
//! for them), free of any runtime: decoding ([`encoding`], [`claims`],
//! version 1 tokens read as the library migrates them: [`v1`]), the
//! claim kinds with their v2 JSON names ([`operator`], [`account`],
//! [`user`], [`activation`], [`signing_keys`]), the signature and issuer
//! checks ([`verify`], [`trust`]), times, revocations, `src` and time
//! windows ([`validity`]), scoped signing key templates ([`template`]),
//! activation tokens ([`activation_check`]) and a user's login
//! ([`login`]).
//!
//! Nothing here reads a clock or checks a signature itself: the caller
//! passes the time and a [`SignatureVerifier`] (the binary's uses the
//! `nkeys` crate, off the shards).

pub mod account;
pub mod account_validation;
pub mod activation;
pub mod activation_check;
pub mod claims;
pub mod encoding;
pub mod login;
pub mod nkey;
pub mod operator;
pub mod signing_keys;
pub mod template;
pub mod trust;
pub mod user;
pub mod v1;
pub mod validity;
pub mod verify;

#[cfg(any(test, feature = "mint"))]
pub mod mint;
#[cfg(test)]
mod tests;

pub use claims::{ClaimType, Claims, ClaimsData};
pub use login::{login, Grant, LoginInput, LoginTrust, Refusal};
pub use trust::{decode_account, decode_operator, TrustedKeys};
pub use verify::{decode, SignatureVerifier};

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not a NATS JWT (shape, base64, header, JSON, kind).
    Malformed(String),
    /// The issuer's signature does not verify (over what the token's
    /// format `version` signs).
    Signature { version: i64 },
    /// Expired or not yet valid (the Go library's time checks).
    Time(&'static str),
    /// The claims break a rule of the Go library's `Validate`.
    Invalid(String),
    /// An account token not issued by a trusted operator key.
    Untrusted,
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Malformed(text) | JwtError::Invalid(text) => f.write_str(text),
            JwtError::Signature { version } => write!(
                f,
                "claim failed V{} signature verification",
                if *version <= 1 { 1 } else { 2 }
            ),
            JwtError::Time(text) => f.write_str(text),
            JwtError::Untrusted => f.write_str("not signed by a trusted operator"),
        }
    }
}

impl std::error::Error for JwtError {}
