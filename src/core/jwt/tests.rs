//! The issuer chain and a user's login end to end, with tokens minted here.

use std::net::IpAddr;

use nkeys::KeyPair;
use serde_json::{json, Value};

use super::mint::{mint, unlimited, NkeyVerifier, NOW};
use super::*;
use account::Account;

struct Setup {
    operator: KeyPair,
    trusted: TrustedKeys,
    account_key: KeyPair,
    account: Claims<Account>,
    user: KeyPair,
}

fn setup_with(account_nats: Value) -> Setup {
    let operator = KeyPair::new_operator();
    let op_token = mint(
        "operator",
        &operator.public_key(),
        &operator,
        json!({}),
        json!({}),
    );
    let op = decode_operator(&op_token, &NkeyVerifier).expect("operator");
    let trusted = TrustedKeys::from_operators(&[op]);
    let account_key = KeyPair::new_account();
    let token = mint(
        "account",
        &account_key.public_key(),
        &operator,
        json!({"name": "acme"}),
        account_nats,
    );
    let account = decode_account(&token, &trusted, &NkeyVerifier).expect("account");
    Setup {
        operator,
        trusted,
        account_key,
        account,
        user: KeyPair::new_user(),
    }
}

fn setup() -> Setup {
    setup_with(json!({"limits": unlimited()}))
}

fn user_token(s: &Setup, signer: &KeyPair, top: Value, nats: Value) -> String {
    mint("user", &s.user.public_key(), signer, top, nats)
}

const NONCE: &str = "abcdefghijklmno";

fn try_login(s: &Setup, jwt: &str, sig: Option<String>, ip: &str) -> Result<Grant, Refusal> {
    let clock = |_: &str| Some(12 * 3_600_000);
    let input = LoginInput {
        jwt,
        nonce: Some(NONCE),
        sig: sig.as_deref(),
        ip: ip.parse::<IpAddr>().ok(),
        connection_type: "STANDARD",
        now: NOW,
        time_of_day: &clock,
    };
    let key = s.account.data.subject.clone();
    let lookup = |k: &str| (k == key).then_some(&s.account);
    let trust = LoginTrust {
        trusted: &s.trusted,
        strict: false,
        account: &lookup,
        pinned: None,
    };
    login(&input, &trust, &NkeyVerifier)
}

fn sign_nonce(user: &KeyPair) -> Option<String> {
    Some(encoding::encode(
        &user.sign(NONCE.as_bytes()).expect("sign"),
    ))
}

fn refusal(result: Result<Grant, Refusal>) -> String {
    result.expect_err("refused").text
}

#[test]
fn a_user_of_a_trusted_account_logs_in_with_the_nonce_signature() {
    let s = setup();
    let jwt = user_token(
        &s,
        &s.account_key,
        json!({"name": "alice"}),
        json!({"pub": {"allow": ["a.>"]}, "subs": -1, "data": -1, "payload": -1}),
    );
    let grant = try_login(&s, &jwt, sign_nonce(&s.user), "127.0.0.1").expect("accepted");
    assert_eq!(grant.user, s.user.public_key());
    assert_eq!(grant.account, s.account_key.public_key());
    assert_eq!(grant.grants.permissions.publish.allow, vec!["a.>"]);
    assert_eq!(grant.expires, None);
    // Standard base64 is accepted too.
    let std_sig = data_encoding::BASE64.encode(&s.user.sign(NONCE.as_bytes()).expect("sign"));
    assert!(try_login(&s, &jwt, Some(std_sig), "127.0.0.1").is_ok());
}

#[test]
fn signature_problems() {
    let s = setup();
    let jwt = user_token(&s, &s.account_key, json!({}), json!({}));
    assert_eq!(refusal(try_login(&s, &jwt, None, "")), "Signature missing");
    assert_eq!(
        refusal(try_login(&s, &jwt, Some("!!".into()), "")),
        "Signature not valid base64"
    );
    let other = KeyPair::new_user();
    assert_eq!(
        refusal(try_login(&s, &jwt, sign_nonce(&other), "")),
        "Signature not verified"
    );
    // A token whose body was changed after signing.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    let forged = user_token(&s, &s.account_key, json!({"name": "x"}), json!({}));
    parts[1] = forged.split('.').nth(1).expect("body").to_string();
    let text = refusal(try_login(&s, &parts.join("."), sign_nonce(&s.user), ""));
    assert_eq!(
        text,
        "User JWT not valid: claim failed V2 signature verification"
    );
    assert_eq!(
        refusal(try_login(&s, "", None, "")),
        "Authentication requires a user JWT"
    );
}

#[test]
fn bearer_tokens_need_no_signature_unless_the_account_forbids_them() {
    let s = setup();
    let jwt = user_token(&s, &s.account_key, json!({}), json!({"bearer_token": true}));
    assert!(try_login(&s, &jwt, None, "").is_ok());
    let mut limits = unlimited();
    limits["disallow_bearer"] = json!(true);
    let strict = setup_with(json!({ "limits": limits }));
    let jwt = mint(
        "user",
        &strict.user.public_key(),
        &strict.account_key,
        json!({}),
        json!({"bearer_token": true}),
    );
    assert_eq!(
        refusal(try_login(&strict, &jwt, None, "")),
        "Account does not allow bearer token"
    );
}

#[test]
fn unknown_issuers_and_untrusted_accounts() {
    let s = setup();
    let stranger = KeyPair::new_account();
    let jwt = user_token(&s, &stranger, json!({}), json!({}));
    let refused = try_login(&s, &jwt, sign_nonce(&s.user), "").expect_err("refused");
    assert!(refused.text.starts_with("Account JWT lookup error"));
    // What a URL resolver fetches before checking again.
    assert_eq!(
        crate::jwt::login::missing_account(&refused),
        Some(stranger.public_key().as_str())
    );
    // Claims to belong to the account, signed by a key it does not list.
    let jwt = user_token(
        &s,
        &stranger,
        json!({}),
        json!({"issuer_account": s.account_key.public_key()}),
    );
    assert_eq!(
        refusal(try_login(&s, &jwt, sign_nonce(&s.user), "")),
        "User JWT issuer is not known"
    );
    // An account signed by another operator is refused when loaded.
    let rogue = KeyPair::new_operator();
    let token = mint(
        "account",
        &stranger.public_key(),
        &rogue,
        json!({}),
        json!({"limits": unlimited()}),
    );
    assert_eq!(
        decode_account(&token, &s.trusted, &NkeyVerifier),
        Err(JwtError::Untrusted)
    );
    let _ = &s.operator;
}

#[test]
fn signing_keys_plain_and_scoped() {
    let signer = KeyPair::new_account();
    let scoped = KeyPair::new_account();
    let s = setup_with(json!({
        "limits": unlimited(),
        "signing_keys": [signer.public_key(), {
            "kind": "user_scope", "key": scoped.public_key(), "role": "r",
            "template": {"pub": {"allow": ["{{name()}}.>"]}, "subs": 5}
        }]
    }));
    let issuer_account = json!({"issuer_account": s.account_key.public_key()});
    let jwt = user_token(&s, &signer, json!({}), issuer_account.clone());
    assert!(try_login(&s, &jwt, sign_nonce(&s.user), "").is_ok());
    let jwt = user_token(&s, &scoped, json!({"name": "bob"}), issuer_account);
    let grant = try_login(&s, &jwt, sign_nonce(&s.user), "").expect("scoped");
    assert_eq!(grant.grants.permissions.publish.allow, vec!["bob.>"]);
    assert_eq!(grant.grants.limits.subs, 5);
    // A scoped user may not carry permissions of its own.
    let jwt = user_token(
        &s,
        &scoped,
        json!({}),
        json!({"issuer_account": s.account_key.public_key(), "pub": {"allow": ["x"]}}),
    );
    assert_eq!(
        refusal(try_login(&s, &jwt, sign_nonce(&s.user), "")),
        "User JWT is not valid: scoped users require no permissions or limits set"
    );
}

#[test]
fn expiry_revocation_src_and_times() {
    let s = setup();
    let expired = user_token(&s, &s.account_key, json!({"exp": NOW - 1}), json!({}));
    assert_eq!(
        refusal(try_login(&s, &expired, sign_nonce(&s.user), "")),
        "User JWT no longer valid: &{Issues:[claim is expired]}"
    );
    let later = user_token(&s, &s.account_key, json!({"nbf": NOW + 60}), json!({}));
    assert!(try_login(&s, &later, sign_nonce(&s.user), "").is_err());
    let expiring = user_token(&s, &s.account_key, json!({"exp": NOW + 60}), json!({}));
    let grant = try_login(&s, &expiring, sign_nonce(&s.user), "").expect("valid");
    assert_eq!(grant.expires, Some(NOW + 60));

    let revoked = setup_with(json!({"limits": unlimited(), "revocations": {"*": NOW}}));
    let jwt = mint(
        "user",
        &revoked.user.public_key(),
        &revoked.account_key,
        json!({}),
        json!({}),
    );
    assert_eq!(
        refusal(try_login(&revoked, &jwt, sign_nonce(&revoked.user), "")),
        "User authentication revoked"
    );
    let fresh = mint(
        "user",
        &revoked.user.public_key(),
        &revoked.account_key,
        json!({"iat": NOW + 1}),
        json!({}),
    );
    assert!(try_login(&revoked, &fresh, sign_nonce(&revoked.user), "").is_ok());

    let src = user_token(
        &s,
        &s.account_key,
        json!({}),
        json!({"src": ["10.0.0.0/8"]}),
    );
    let r = try_login(&s, &src, sign_nonce(&s.user), "127.0.0.1").expect_err("src");
    assert!(r.error_level);
    assert_eq!(r.text, "Bad src Ip 127.0.0.1");
    assert!(try_login(&s, &src, sign_nonce(&s.user), "10.2.3.4").is_ok());

    let times = |start: &str, end: &str| {
        user_token(
            &s,
            &s.account_key,
            json!({}),
            json!({"times": [{"start": start, "end": end}]}),
        )
    };
    let noon_window = times("11:00:00", "13:00:00");
    let grant = try_login(&s, &noon_window, sign_nonce(&s.user), "").expect("inside");
    assert_eq!(grant.window_closes_in_ms, Some(3_600_000));
    let night = times("20:00:00", "21:00:00");
    assert_eq!(
        refusal(try_login(&s, &night, sign_nonce(&s.user), "")),
        "Outside connect times"
    );
}

#[test]
fn connection_types() {
    let s = setup();
    let only_ws = user_token(
        &s,
        &s.account_key,
        json!({}),
        json!({"allowed_connection_types": ["WEBSOCKET"]}),
    );
    assert_eq!(
        refusal(try_login(&s, &only_ws, sign_nonce(&s.user), "")),
        "Connection type not allowed"
    );
    let unknown_only = user_token(
        &s,
        &s.account_key,
        json!({}),
        json!({"allowed_connection_types": ["CARRIER_PIGEON"]}),
    );
    assert!(try_login(&s, &unknown_only, sign_nonce(&s.user), "").is_err());
    let with_standard = user_token(
        &s,
        &s.account_key,
        json!({}),
        json!({"allowed_connection_types": ["STANDARD", "CARRIER_PIGEON"]}),
    );
    assert!(try_login(&s, &with_standard, sign_nonce(&s.user), "").is_ok());
}

#[test]
fn expired_accounts_refuse_their_users() {
    let s = setup();
    let token = mint(
        "account",
        &s.account_key.public_key(),
        &s.operator,
        json!({"exp": NOW - 5}),
        json!({"limits": unlimited()}),
    );
    let account = decode_account(&token, &s.trusted, &NkeyVerifier).expect("kept");
    let s = Setup { account, ..s };
    let jwt = user_token(&s, &s.account_key, json!({}), json!({}));
    assert_eq!(
        refusal(try_login(&s, &jwt, sign_nonce(&s.user), "")),
        "Account JWT has expired"
    );
}

#[test]
fn strict_operators_trust_only_their_signing_keys() {
    let operator = KeyPair::new_operator();
    let signing = KeyPair::new_operator();
    let token = mint(
        "operator",
        &operator.public_key(),
        &operator,
        json!({}),
        json!({"strict_signing_key_usage": true, "signing_keys": [signing.public_key()]}),
    );
    let op = decode_operator(&token, &NkeyVerifier).expect("operator");
    let trusted = TrustedKeys::from_operators(&[op]);
    assert!(!trusted.trusts(&operator.public_key()));
    assert!(trusted.trusts(&signing.public_key()));
    assert_eq!(trusted.first_invalid(), None);
}

#[test]
fn activation_tokens_for_private_exports() {
    let exporter = setup_with(json!({
        "limits": unlimited(),
        "exports": [{"subject": "svc.>", "type": "service", "token_req": true,
                     "revocations": {}}]
    }));
    let importer = KeyPair::new_account();
    let activation = |subject: &str, top: Value| {
        mint(
            "activation",
            &importer.public_key(),
            &exporter.account_key,
            top,
            json!({"subject": subject, "kind": "service"}),
        )
    };
    let import = |token: String| account::Import {
        subject: "svc.a".into(),
        account: exporter.account_key.public_key(),
        token,
        kind: account::ExportType::Service,
        ..account::Import::default()
    };
    let check = |import: &account::Import,
                 revocations: &std::collections::BTreeMap<String, i64>| {
        activation_check::activation_valid(
            import,
            &importer.public_key(),
            &exporter.account,
            revocations,
            NOW,
            &NkeyVerifier,
        )
    };
    let none = std::collections::BTreeMap::new();
    assert!(check(&import(activation("svc.>", json!({}))), &none));
    assert!(!check(&import(activation("other.>", json!({}))), &none));
    assert!(!check(
        &import(activation("svc.>", json!({"exp": NOW - 1}))),
        &none
    ));
    assert!(!check(&import(String::new()), &none));
    let mut revoked = std::collections::BTreeMap::new();
    revoked.insert(importer.public_key(), NOW);
    assert!(!check(&import(activation("svc.>", json!({}))), &revoked));
}

#[test]
fn wrong_kinds_are_refused() {
    let s = setup();
    let jwt = user_token(&s, &s.account_key, json!({}), json!({}));
    assert!(decode_account(&jwt, &s.trusted, &NkeyVerifier).is_err());
    // A user token issued by an operator key: wrong issuer kind.
    let jwt = user_token(&s, &s.operator, json!({}), json!({}));
    assert!(try_login(&s, &jwt, sign_nonce(&s.user), "").is_err());
}

/// Version 1 tokens (what nats.py's test suite still ships): an operator,
/// its account and a user all in the v1 layout log in as nats-server 2.9
/// lets them, the user unlimited; a v1 token signed the v2 way is refused
/// with the library's V1 text.
#[test]
fn version_1_tokens_decode_and_log_in() {
    use super::mint::mint_v1_issued_at;
    let operator = KeyPair::new_operator();
    let op_token = mint_v1_issued_at(
        "operator",
        &operator.public_key(),
        &operator,
        NOW - 10,
        json!(null),
    );
    let op = decode_operator(&op_token, &NkeyVerifier).expect("v1 operator");
    assert_eq!(op.nats.generic.version, 1);
    let trusted = TrustedKeys::from_operators(&[op]);
    let account_key = KeyPair::new_account();
    let acc_token = mint_v1_issued_at(
        "account",
        &account_key.public_key(),
        &operator,
        NOW - 10,
        json!({"limits": {"subs": -1, "conn": -1, "imports": -1, "exports": -1,
                          "data": -1, "payload": -1, "wildcards": true}}),
    );
    let account = decode_account(&acc_token, &trusted, &NkeyVerifier).expect("v1 account");
    assert_eq!(account.nats.limits.conn, -1);
    let user = KeyPair::new_user();
    let s = Setup {
        operator,
        trusted,
        account_key,
        account,
        user,
    };
    let jwt = mint_v1_issued_at(
        "user",
        &s.user.public_key(),
        &s.account_key,
        NOW - 10,
        json!({"pub": {}, "sub": {}}),
    );
    let grant = try_login(&s, &jwt, sign_nonce(&s.user), "").expect("v1 user logs in");
    assert_eq!(
        grant.grants.limits.payload, -1,
        "v1 users default to no limit"
    );
    assert_eq!(grant.grants.limits.subs, -1);

    // The same payload signed over header and payload (the v2 way).
    let parts: Vec<&str> = jwt.split('.').collect();
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let v2_signed = format!(
        "{signing_input}.{}",
        encoding::encode(&s.account_key.sign(signing_input.as_bytes()).expect("sign"))
    );
    let refused = decode::<user::User>(&v2_signed, ClaimType::User, &NkeyVerifier);
    assert_eq!(
        refused.map_err(|e| e.to_string()).err().as_deref(),
        Some("claim failed V1 signature verification")
    );
    let v2 = user_token(&s, &s.account_key, json!({}), json!({}));
    let tampered = format!("{}x", &v2[..v2.len() - 1]);
    assert!(decode::<user::User>(&tampered, ClaimType::User, &NkeyVerifier).is_err());
}
