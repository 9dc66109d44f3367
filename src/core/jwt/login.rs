//! A client's login with a user JWT (nats-server's
//! `processClientOrLeafAuthentication`, operator branch): the user token,
//! its account, the issuer chain, the nonce signature, revocation, `src`
//! and time windows, in nats-server's order and with its log texts. Pure:
//! the caller gives the clock, the peer and the signature checker, and the
//! binary runs it off the shards.

use std::net::IpAddr;

use data_encoding::{BASE64, BASE64URL_NOPAD};

use super::account::Account;
use super::claims::{ClaimType, Claims};
use super::nkey::{is_public_key, KeyKind};
use super::template::{expand, TemplateValues};
use super::trust::{account_signer, TrustedKeys};
use super::user::{User, UserPermissionLimits};
use super::validity::{check_times, is_revoked, src_allows, time_window, Cidr};
use super::verify::{decode, SignatureVerifier};

/// The connection types a user claim may name; others are ignored (and
/// if only unknown ones are named, the user cannot connect).
pub const CONNECTION_TYPES: &[&str] = &[
    "STANDARD",
    "WEBSOCKET",
    "LEAFNODE",
    "LEAFNODE_WS",
    "MQTT",
    "MQTT_WS",
];

/// Everything about the client and the moment that the checks need.
pub struct LoginInput<'a> {
    /// CONNECT `jwt`.
    pub jwt: &'a str,
    /// The nonce sent in INFO and CONNECT `sig`.
    pub nonce: Option<&'a str>,
    pub sig: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// `"STANDARD"` for a plain client.
    pub connection_type: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// Milliseconds since midnight in an IANA zone (`""`: the server's
    /// local time); `None` for a zone the caller does not know.
    pub time_of_day: &'a dyn Fn(&str) -> Option<u64>,
}

/// How the server finds accounts and whom it trusts.
pub struct LoginTrust<'a> {
    pub trusted: &'a TrustedKeys,
    /// Operators with `strict_signing_key_usage`: their accounts' own keys
    /// do not sign users.
    pub strict: bool,
    pub account: &'a dyn Fn(&str) -> Option<&'a Claims<Account>>,
    /// `resolver_pinned_accounts`, when configured.
    pub pinned: Option<&'a std::collections::BTreeSet<String>>,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The user's public key.
    pub user: String,
    /// The account's public key.
    pub account: String,
    pub name: String,
    /// What the user may do: its own claims, or the scope's template.
    pub grants: UserPermissionLimits,
    /// The token's `exp` (Unix seconds), if any.
    pub expires: Option<i64>,
    /// The time window closes in this many milliseconds.
    pub window_closes_in_ms: Option<u64>,
    /// The token's `iat`.
    pub issued_at: i64,
    /// The key that signed the user: the signing key when the token names
    /// an `issuer_account`, else the account (`/connz` `issuer_key`).
    pub issuer_key: String,
    pub tags: Vec<String>,
}

/// A refused login: nats-server's log line for it (the client gets the
/// Authorization Violation either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// nats-server logs most at DEBUG, `src` and time refusals at ERROR.
    pub error_level: bool,
    pub text: String,
}

/// The account a refusal says is not known (the lookup before a URL
/// resolver fetches it), if that is why the login was refused.
pub fn missing_account(refusal: &Refusal) -> Option<&str> {
    refusal
        .text
        .strip_prefix(LOOKUP_ERROR)?
        .strip_prefix("account ")?
        .strip_suffix(" not found")
}

/// nats-server's debug line for an account it could not look up.
pub const LOOKUP_ERROR: &str = "Account JWT lookup error: ";

fn debug(text: impl Into<String>) -> Refusal {
    Refusal {
        error_level: false,
        text: text.into(),
    }
}

/// The Go library's `Validate` of a user claim, blocking issues only: the
/// first one, or `None`.
fn validation_issue(user: &Claims<User>, now: i64) -> Option<String> {
    if let Err(e) = check_times(&user.data, now) {
        return Some(e.to_string());
    }
    let grants = &user.nats.grants;
    let subject_issue = |subject: &str, queue_ok: bool| -> Option<String> {
        let parts: Vec<&str> = subject.split(' ').collect();
        if parts.len() > 2 {
            return Some(format!(
                "Permission Subject \"{subject}\" contains too many spaces"
            ));
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Some("subject cannot be empty".into());
        }
        if parts.len() == 2 && !queue_ok {
            return Some(format!(
                "Permission Subject \"{subject}\" is not allowed to contain queue"
            ));
        }
        None
    };
    let p = &grants.permissions;
    for s in p.subscribe.allow.iter().chain(&p.subscribe.deny) {
        if let Some(issue) = subject_issue(s, true) {
            return Some(issue);
        }
    }
    for s in p.publish.allow.iter().chain(&p.publish.deny) {
        if let Some(issue) = subject_issue(s, false) {
            return Some(issue);
        }
    }
    for cidr in &grants.limits.src {
        if Cidr::parse(cidr).is_none() {
            return Some(format!("invalid cidr {cidr:?} in user src limits"));
        }
    }
    for range in &grants.limits.times {
        if super::validity::parse_time_of_day(&range.start).is_none() {
            return Some(format!("start in time range is invalid {:?}", range.start));
        }
        if super::validity::parse_time_of_day(&range.end).is_none() {
            return Some(format!("end in time range is invalid {:?}", range.end));
        }
    }
    let issuer_account = &user.nats.issuer_account;
    if !issuer_account.is_empty() && !is_public_key(issuer_account, KeyKind::Account) {
        return Some("account_id is not an account public key".into());
    }
    None
}

/// nats-server decodes `sig` as raw base64url, then standard base64.
fn decode_signature(sig: &str) -> Option<Vec<u8>> {
    BASE64URL_NOPAD
        .decode(sig.as_bytes())
        .or_else(|_| BASE64.decode(sig.as_bytes()))
        .ok()
}

/// Runs the checks in nats-server's order.
pub fn login(
    input: &LoginInput<'_>,
    trust: &LoginTrust<'_>,
    verifier: &dyn SignatureVerifier,
) -> Result<Grant, Refusal> {
    if input.jwt.is_empty() {
        return Err(debug("Authentication requires a user JWT"));
    }
    let user: Claims<User> = decode(input.jwt, ClaimType::User, verifier)
        .map_err(|e| debug(format!("User JWT not valid: {e}")))?;
    if let Some(issue) = validation_issue(&user, input.now) {
        // Go prints the validation results with `%+v`.
        return Err(debug(format!(
            "User JWT no longer valid: &{{Issues:[{issue}]}}"
        )));
    }
    let types = &user.nats.grants.allowed_connection_types;
    if !types.is_empty() {
        let known: Vec<&String> = types
            .iter()
            .filter(|t| CONNECTION_TYPES.contains(&t.as_str()))
            .collect();
        if known.is_empty() || !known.iter().any(|t| t.as_str() == input.connection_type) {
            return Err(debug("Connection type not allowed"));
        }
    }
    let account_key = if user.nats.issuer_account.is_empty() {
        user.data.issuer.as_str()
    } else {
        user.nats.issuer_account.as_str()
    };
    if trust.pinned.is_some_and(|p| !p.contains(account_key)) {
        return Err(debug(format!(
            "Account {account_key} not listed as operator pinned account"
        )));
    }
    let Some(account) = (trust.account)(account_key) else {
        return Err(debug(format!(
            "{LOOKUP_ERROR}account {account_key} not found"
        )));
    };
    if !trust.trusted.trusts(&account.data.issuer) {
        return Err(debug("Account JWT not signed by trusted operator"));
    }
    let Some(scope) = account_signer(account, &user.data.issuer, trust.strict) else {
        return Err(debug("User JWT issuer is not known"));
    };
    let grants = match scope {
        None => user.nats.grants.clone(),
        Some(scope) => {
            if !user.nats.grants.is_empty() {
                return Err(debug(
                    "User JWT is not valid: scoped users require no permissions or limits set",
                ));
            }
            let values = TemplateValues {
                user_name: &user.data.name,
                user_subject: &user.data.subject,
                user_tags: &user.nats.generic.tags,
                account_subject: &user.nats.issuer_account,
                account_name: &account.data.name,
                account_tags: &account.nats.generic.tags,
            };
            expand(&scope.template, &values)
                .map_err(|_| debug("User JWT generated invalid permissions"))?
        }
    };
    if account.data.expires > 0 && account.data.expires <= input.now {
        return Err(debug("Account JWT has expired"));
    }
    if grants.bearer_token && account.nats.limits.disallow_bearer {
        return Err(debug("Account does not allow bearer token"));
    }
    if !grants.bearer_token {
        let Some(sig) = input.sig.filter(|s| !s.is_empty()) else {
            return Err(debug("Signature missing"));
        };
        let Some(signature) = decode_signature(sig) else {
            return Err(debug("Signature not valid base64"));
        };
        if !is_public_key(&user.data.subject, KeyKind::User) {
            return Err(debug("User nkey not valid: invalid public key"));
        }
        let nonce = input.nonce.unwrap_or("");
        if !verifier.verify(&user.data.subject, nonce.as_bytes(), &signature) {
            return Err(debug("Signature not verified"));
        }
    }
    if is_revoked(
        &account.nats.revocations,
        &user.data.subject,
        user.data.issued_at,
    ) {
        return Err(debug("User authentication revoked"));
    }
    if !src_allows(&grants.limits.src, input.ip) {
        return Err(Refusal {
            error_level: true,
            text: format!(
                "Bad src Ip {}",
                input.ip.map(|ip| ip.to_string()).unwrap_or_default()
            ),
        });
    }
    let outside = || Refusal {
        error_level: true,
        text: "Outside connect times".into(),
    };
    let window_closes_in_ms = if grants.limits.times.is_empty() {
        None
    } else {
        let now = (input.time_of_day)(&grants.limits.locale).ok_or_else(outside)?;
        time_window(&grants.limits.times, now).map_err(|_| outside())?
    };
    Ok(Grant {
        user: user.data.subject.clone(),
        account: account.data.subject.clone(),
        name: user.data.name.clone(),
        grants,
        expires: (user.data.expires > 0).then_some(user.data.expires),
        window_closes_in_ms,
        issued_at: user.data.issued_at,
        issuer_key: if user.nats.issuer_account.is_empty() {
            account.data.subject.clone()
        } else {
            user.data.issuer.clone()
        },
        tags: user.nats.generic.tags.clone(),
    })
}
