//! Operator mode (`operator`/`trusted_keys` with a resolver): clients log
//! in with a user JWT of an account the operator signed. [`OperatorMode`]
//! is what the configuration resolved (trusted keys, the account tokens
//! and the accounts' ids); [`OperatorMode::login`] checks one CONNECT and
//! gives the identity. It is pure but costs two Ed25519 verifications, so
//! the runtime runs it off the shard ([`super::SlowCheck::UserJwt`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::jwt_permissions::from_jwt;
use super::permissions::Permissions;
use super::{AuthMethod, Identity};
use crate::ids::AccountId;
use crate::jwt::account::Account as AccountClaims;
use crate::jwt::login::{login, LoginInput, LoginTrust, Refusal};
use crate::jwt::user::NO_LIMIT;
use crate::jwt::{Claims, SignatureVerifier, TrustedKeys};

/// One account known from its JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtAccount {
    pub id: AccountId,
    pub token: String,
    pub claims: Claims<AccountClaims>,
    /// `default_permissions` of the claims, for users without their own.
    pub default_permissions: Option<Arc<Permissions>>,
    /// When the account's JWT expires (its `exp`, on the runtime's clock
    /// when the account was loaded): connected users go then.
    pub expires_at: Option<std::time::Instant>,
}

/// The accounts and trust of operator mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorMode {
    pub trusted: TrustedKeys,
    /// An operator with `strict_signing_key_usage`: accounts' own keys
    /// do not sign users.
    pub strict: bool,
    /// By account public key.
    pub accounts: HashMap<String, Arc<JwtAccount>>,
    /// A `full` resolver: account JWTs may be updated over the system
    /// account ([`crate::shard::SystemRequest`]).
    pub accepts_updates: bool,
    /// A URL resolver: notices of updated account JWTs
    /// (`$SYS.ACCOUNT.<id>.CLAIMS.UPDATE`, as an account server sends
    /// them) apply to the accounts already loaded.
    pub update_notices: bool,
    /// `resolver_pinned_accounts`: only these accounts' users may log in.
    pub pinned: Option<std::collections::BTreeSet<String>>,
}

/// What a CONNECT brought for a JWT login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRequest {
    pub jwt: String,
    /// The nonce sent in INFO.
    pub nonce: Option<String>,
    pub sig: Option<String>,
    pub ip: Option<IpAddr>,
}

/// Per-user limits of a JWT user (`nats.subs`, `nats.payload`; `None` is
/// no limit), on top of its account's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    pub max_subscriptions: Option<u64>,
    pub max_payload: Option<u64>,
}

/// What `/connz?auth=1` shows of a JWT user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtInfo {
    pub jwt: String,
    pub issuer_key: String,
    /// The user token's `name`.
    pub name_tag: String,
    pub tags: Vec<String>,
    /// A bearer token (an account update may disallow them).
    pub bearer: bool,
    /// Signed by a signing key of the account (not the account's own
    /// key): an update that drops or changes that key cuts the user.
    pub signing_key: Option<String>,
}

/// A successful JWT login.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtLogin {
    pub identity: Identity,
    pub limits: UserLimits,
    /// The user must go after this long (`exp`, or the end of its time
    /// window, whichever is first).
    pub valid_for: Option<Duration>,
    /// The token's `iat`, for revocations that come later.
    pub issued_at: i64,
    pub info: Arc<JwtInfo>,
    /// The account's JWT expires in this long: its users then go with
    /// `-ERR 'Account Authentication Expired'`.
    pub account_valid_for: Option<Duration>,
}

/// A claim limit: `-1` (or any negative) is none.
pub fn claim_limit(value: i64) -> Option<u64> {
    u64::try_from(value).ok().filter(|_| value != NO_LIMIT)
}

impl OperatorMode {
    /// Checks `request` at `now` (Unix seconds) with the caller's clock
    /// (`time_of_day`, see [`LoginInput`]) and signature checker.
    pub fn login(
        &self,
        request: &JwtRequest,
        now: i64,
        time_of_day: &dyn Fn(&str) -> Option<u64>,
        verifier: &dyn SignatureVerifier,
    ) -> Result<JwtLogin, Refusal> {
        let input = LoginInput {
            jwt: &request.jwt,
            nonce: request.nonce.as_deref(),
            sig: request.sig.as_deref(),
            ip: request.ip,
            connection_type: "STANDARD",
            now,
            time_of_day,
        };
        let lookup = |key: &str| self.accounts.get(key).map(|a| &a.claims);
        let trust = LoginTrust {
            trusted: &self.trusted,
            strict: self.strict,
            account: &lookup,
            pinned: self.pinned.as_ref(),
        };
        let grant = login(&input, &trust, verifier)?;
        let Some(account) = self.accounts.get(&grant.account) else {
            return Err(Refusal {
                error_level: false,
                text: "Account JWT lookup error".into(),
            });
        };
        let permissions = from_jwt(&grant.grants.permissions)
            .map(Arc::new)
            .or_else(|| account.default_permissions.clone());
        let by_expiry = grant
            .expires
            .map(|exp| Duration::from_secs(u64::try_from(exp - now).unwrap_or(0)));
        let by_window = grant.window_closes_in_ms.map(Duration::from_millis);
        let valid_for = match (by_expiry, by_window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(JwtLogin {
            identity: Identity {
                method: AuthMethod::Jwt(grant.user.clone()),
                permissions,
                account: account.id,
            },
            limits: UserLimits {
                max_subscriptions: claim_limit(grant.grants.limits.subs),
                max_payload: claim_limit(grant.grants.limits.payload),
            },
            valid_for,
            issued_at: grant.issued_at,
            info: Arc::new(JwtInfo {
                jwt: request.jwt.clone(),
                signing_key: (grant.issuer_key != grant.account).then(|| grant.issuer_key.clone()),
                issuer_key: grant.issuer_key,
                name_tag: grant.name,
                tags: grant.tags,
                bearer: grant.grants.bearer_token,
            }),
            account_valid_for: (account.claims.data.expires > 0).then(|| {
                Duration::from_secs(u64::try_from(account.claims.data.expires - now).unwrap_or(0))
            }),
        })
    }
}
