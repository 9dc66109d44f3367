//! What the operator configured: who may connect, with which credentials,
//! and with which permissions (nats-server's `authorization` block, its
//! `users`, `no_auth_user` and the `--user/--pass/--auth` flags).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::operator::OperatorMode;
use super::permissions::Permissions;
use crate::ids::AccountId;

/// nats-server's `AUTH_TIMEOUT`: a client must authenticate this soon.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);

/// A configured password or token: plain text, or a bcrypt hash (a value
/// starting `$2a$`, `$2b$`, `$2x$` or `$2y$` and two cost digits, as
/// nats-server recognises them). Never printed: `Debug` says which kind.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Plain(String),
    Bcrypt(String),
}

impl Secret {
    /// Classifies a configured value as nats-server does.
    pub fn from_config(value: &str) -> Secret {
        if is_bcrypt(value) {
            Secret::Bcrypt(value.to_string())
        } else {
            Secret::Plain(value.to_string())
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Secret::Plain(<redacted>)"),
            Secret::Bcrypt(_) => f.write_str("Secret::Bcrypt(<redacted>)"),
        }
    }
}

/// `^\$2[abxy]\$\d{2}\$`.
pub fn is_bcrypt(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() >= 7
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// One entry of `users` with a name and password.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordUser {
    pub name: String,
    pub password: Secret,
    /// Its own `permissions`, else the block's `default_permissions`.
    pub permissions: Option<Arc<Permissions>>,
    /// The account it logs in to (`$G` unless listed in an account).
    pub account: AccountId,
}

/// One entry of `users` with an `nkey` (a public user key, `U...`).
#[derive(Debug, Clone, PartialEq)]
pub struct NkeyUser {
    pub public_key: String,
    pub permissions: Option<Arc<Permissions>>,
    pub account: AccountId,
}

/// Everything the shards need to authenticate clients. Empty (the default)
/// means no authentication: CONNECT credentials are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthPolicy {
    /// `authorization { token }` or `--auth`.
    pub token: Option<Secret>,
    /// `authorization { user, password }` or `--user/--pass`.
    pub single_user: Option<PasswordUser>,
    /// `authorization { users: [{user, password}] }`, by name.
    pub users: HashMap<String, PasswordUser>,
    /// `authorization { users: [{nkey}] }`, by public key.
    pub nkeys: HashMap<String, NkeyUser>,
    /// `no_auth_user`: a name in `users` that a CONNECT without credentials
    /// (or a client that never sends CONNECT) is logged in as.
    pub no_auth_user: Option<String>,
    /// `authorization { timeout }`.
    pub timeout: Duration,
    /// `authorization { default_permissions }`, for users without their own.
    pub default_permissions: Option<Arc<Permissions>>,
    /// `tls { verify_and_map }`: a client's user is the one its certificate
    /// names (`Credentials::certificate`), not the one CONNECT names.
    pub tls_map: bool,
    /// Operator mode: clients log in with user JWTs only.
    pub operator: Option<Arc<OperatorMode>>,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            token: None,
            single_user: None,
            users: HashMap::new(),
            nkeys: HashMap::new(),
            no_auth_user: None,
            timeout: DEFAULT_AUTH_TIMEOUT,
            default_permissions: None,
            tls_map: false,
            operator: None,
        }
    }
}

impl AuthPolicy {
    /// Any credential is configured: clients must authenticate (the auth
    /// timer runs), whatever INFO says.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
            || self.single_user.is_some()
            || !self.users.is_empty()
            || !self.nkeys.is_empty()
            || self.operator.is_some()
    }

    /// INFO `auth_required`: false with a `no_auth_user`.
    pub fn auth_required(&self) -> bool {
        self.enabled() && self.no_auth_user.is_none()
    }

    /// INFO carries a `nonce` when nkey users are configured, and in
    /// operator mode.
    pub fn wants_nonce(&self) -> bool {
        !self.nkeys.is_empty() || self.operator.is_some()
    }
}
