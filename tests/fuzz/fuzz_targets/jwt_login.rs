//! A client's user JWT and its account's JWT through the whole login (the
//! checks nats-server runs on CONNECT `jwt`), with every signature taken
//! as valid so that the fuzzer reaches what comes after it: claim kinds
//! and versions (v1 tokens included), permissions, scoped signing keys and
//! their templates, revocations, `src` CIDRs, time windows. Any input gives
//! a grant or a refusal, never a panic.
//!
//! Input: one selector byte, then the user part and the account part,
//! separated by the first newline. With the selector's low bit set each
//! part is a token's JSON payload, wrapped here into a token; otherwise it
//! is the token text itself.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use percore_core::jwt::account::Account;
use percore_core::jwt::account_validation::account_issue;
use percore_core::jwt::activation::Activation;
use percore_core::jwt::activation_check::activation_valid;
use percore_core::jwt::encoding::encode;
use percore_core::jwt::{
    decode, decode_account, decode_operator, login, ClaimType, LoginInput, LoginTrust,
    SignatureVerifier, TrustedKeys,
};

/// Takes every signature as valid (the Ed25519 check is ring's, and a
/// fuzzer cannot forge one).
struct AnySignature;

impl SignatureVerifier for AnySignature {
    fn verify(&self, _public_key: &str, _message: &[u8], _signature: &[u8]) -> bool {
        true
    }
}

fn token(part: &[u8], wrap: bool) -> Option<String> {
    if wrap {
        let header = br#"{"typ":"JWT","alg":"ed25519-nkey"}"#;
        Some(format!(
            "{}.{}.{}",
            encode(header),
            encode(part),
            encode(b"signature")
        ))
    } else {
        std::str::from_utf8(part).ok().map(str::to_string)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let wrap = selector & 1 == 1;
    let (user_part, account_part) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let (Some(user_jwt), Some(account_jwt)) = (token(user_part, wrap), token(account_part, wrap))
    else {
        return;
    };
    let verifier = AnySignature;
    let _ = decode_operator(&user_jwt, &verifier);
    let _ = decode::<Activation>(&user_jwt, ClaimType::Activation, &verifier);

    // Trust whoever the account says issued it, so the login goes on.
    let issuer = decode::<Account>(&account_jwt, ClaimType::Account, &verifier)
        .map(|c| c.data.issuer)
        .unwrap_or_default();
    let trusted = TrustedKeys(vec![issuer]);
    let account = decode_account(&account_jwt, &trusted, &verifier).ok();
    if let Some(account) = &account {
        let _ = account_issue(account);
        // Its imports' activation tokens, as if it exported to itself.
        for import in &account.nats.imports {
            let _ = activation_valid(
                import,
                &account.data.subject,
                account,
                &account.nats.revocations,
                1_700_000_000,
                &verifier,
            );
        }
    }
    let lookup = |_: &str| account.as_ref();
    let time_of_day = |zone: &str| (zone.len() % 3 != 0).then_some(u64::from(selector) * 337_000);
    let input = LoginInput {
        jwt: &user_jwt,
        nonce: Some("nonce"),
        sig: Some(if selector & 2 == 0 { "c2ln" } else { "!" }),
        ip: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, selector))),
        connection_type: "STANDARD",
        now: 1_700_000_000 + i64::from(selector),
        time_of_day: &time_of_day,
    };
    let trust = LoginTrust {
        trusted: &trusted,
        strict: selector & 4 != 0,
        account: &lookup,
        pinned: None,
    };
    let _ = login(&input, &trust, &verifier);
});
