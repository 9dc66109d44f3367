//! Authentication and authorization, decided on the shard, as nats-server
//! 2.9 does it (`tests/reference/security.md`).
//!
//! [`policy`] is what the operator configured; [`AuthPolicy::decide`] turns
//! the credentials of one CONNECT into a [`Decision`]. Checks that cost
//! more than a few microseconds (bcrypt, Ed25519) are not made here: the
//! decision names them ([`SlowCheck`]) and the runtime runs them off the
//! shard, then reports back ([`crate::shard::ShardBroker::verification_done`]),
//! so no handshake stalls the other connections of a core. [`permissions`]
//! checks publishes and subscriptions per connection.

pub mod certificate;
pub mod jwt_permissions;
pub mod operator;
pub mod permissions;
pub mod policy;
pub mod reported_user;

use std::sync::Arc;

use crate::ids::AccountId;

pub use certificate::CertificateIdentity;
pub use operator::{JwtAccount, JwtInfo, JwtLogin, JwtRequest, OperatorMode, UserLimits};
pub use permissions::{PermissionCheck, Permissions, ResponsePermission, Rules, SubscribeRule};
pub use policy::{AuthPolicy, NkeyUser, PasswordUser, Secret, DEFAULT_AUTH_TIMEOUT};

/// The credentials a CONNECT carried.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
    pub nkey: Option<String>,
    pub sig: Option<String>,
    /// A user JWT (operator mode).
    pub jwt: Option<String>,
    /// Not from CONNECT: the client's address, for a JWT's `src` CIDRs.
    pub ip: Option<std::net::IpAddr>,
    /// Not from CONNECT: the client certificate's names, given to
    /// `verify_and_map` (see [`AuthPolicy::tls_map`]).
    pub certificate: Option<Arc<CertificateIdentity>>,
}

impl Credentials {
    /// No user, password or token (an empty string counts as none):
    /// `no_auth_user` may log such a client in.
    fn names_nobody(&self) -> bool {
        [&self.user, &self.pass, &self.auth_token]
            .iter()
            .all(|field| field.as_deref().is_none_or(str::is_empty))
    }

    /// Nothing to keep: no user, password, token, nkey, signature or JWT.
    pub fn is_blank(&self) -> bool {
        [
            &self.user,
            &self.pass,
            &self.auth_token,
            &self.nkey,
            &self.sig,
            &self.jwt,
        ]
        .iter()
        .all(|field| field.is_none())
    }

    /// The credentials of a later CONNECT: nats-server decodes each CONNECT
    /// over the options the connection holds, so a key the new one lacks
    /// keeps its earlier value.
    pub fn over(self, earlier: &Credentials) -> Credentials {
        Credentials {
            user: self.user.or_else(|| earlier.user.clone()),
            pass: self.pass.or_else(|| earlier.pass.clone()),
            auth_token: self.auth_token.or_else(|| earlier.auth_token.clone()),
            nkey: self.nkey.or_else(|| earlier.nkey.clone()),
            sig: self.sig.or_else(|| earlier.sig.clone()),
            jwt: self.jwt.or_else(|| earlier.jwt.clone()),
            ip: self.ip,
            certificate: self.certificate,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("nkey", &self.nkey)
            .finish_non_exhaustive()
    }
}

/// How a connection authenticated, so a reload can tell whether it still
/// may (see [`AuthPolicy::reauthorize`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication was configured.
    #[default]
    Open,
    Token,
    /// The single `user`/`password`.
    SingleUser(String),
    /// An entry of `users` by name.
    User(String),
    Nkey(String),
    /// Logged in as `no_auth_user` without credentials.
    NoAuthUser(String),
    /// A user JWT (operator mode): the user's public key.
    Jwt(String),
}

impl AuthMethod {
    /// `/connz` `authorized_user`: the user name or nkey, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            AuthMethod::Open | AuthMethod::Token => None,
            AuthMethod::SingleUser(name)
            | AuthMethod::User(name)
            | AuthMethod::NoAuthUser(name)
            | AuthMethod::Nkey(name)
            | AuthMethod::Jwt(name) => Some(name),
        }
    }
}

/// Who a connection authenticated as.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub method: AuthMethod,
    pub permissions: Option<Arc<Permissions>>,
    pub account: AccountId,
}

/// A check too slow for the shard, run by the runtime on another thread.
#[derive(Clone, PartialEq)]
pub enum SlowCheck {
    /// bcrypt-verify `password` against `hash`.
    Bcrypt { hash: String, password: String },
    /// Verify the Ed25519 signature `sig` (base64url, or standard base64)
    /// by the user key `public_key` over the nonce's ASCII bytes.
    Ed25519 {
        public_key: String,
        nonce: String,
        sig: String,
    },
    /// A JWT login ([`OperatorMode::login`]) against the operator mode in
    /// force when the CONNECT came.
    UserJwt {
        request: Box<JwtRequest>,
        mode: Arc<OperatorMode>,
    },
}

/// What a [`SlowCheck`] came to.
#[derive(Debug, Clone, PartialEq)]
pub enum SlowOutcome {
    /// bcrypt or Ed25519: the check passed or not.
    Checked(bool),
    /// A JWT login: the identity, or nats-server's log line for the refusal.
    Jwt(Result<JwtLogin, crate::jwt::Refusal>),
}

impl std::fmt::Debug for SlowCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlowCheck::Bcrypt { .. } => f.write_str("SlowCheck::Bcrypt(<redacted>)"),
            SlowCheck::Ed25519 { public_key, .. } => {
                write!(f, "SlowCheck::Ed25519({public_key})")
            }
            SlowCheck::UserJwt { .. } => f.write_str("SlowCheck::UserJwt(<redacted>)"),
        }
    }
}

/// What a CONNECT's credentials come to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Accept(Identity),
    /// `-ERR 'Authorization Violation'`; `log` is nats-server's ERR line.
    Reject {
        log: String,
    },
    /// Accept as `identity` if `check` passes, else reject with `log`.
    Verify {
        check: SlowCheck,
        identity: Identity,
        log: String,
    },
}

impl AuthPolicy {
    /// nats-server's order: nkey, then the users map, then the token, then
    /// the single user and password. `nonce` is the one sent in INFO.
    pub fn decide(&self, credentials: &Credentials, nonce: Option<&str>) -> Decision {
        if !self.enabled() {
            return Decision::Accept(Identity::default());
        }
        if let Some(mode) = &self.operator {
            // Only a JWT logs in; the whole check runs off the shard.
            return Decision::Verify {
                check: SlowCheck::UserJwt {
                    request: Box::new(JwtRequest {
                        jwt: credentials.jwt.clone().unwrap_or_default(),
                        nonce: nonce.map(str::to_string),
                        sig: credentials.sig.clone(),
                        ip: credentials.ip,
                    }),
                    mode: mode.clone(),
                },
                identity: Identity::default(),
                log: "authentication error".to_string(),
            };
        }
        // An nkey decides only where nkeys are configured; elsewhere it is
        // ignored, and the client may still be the `no_auth_user`.
        let nkey = credentials
            .nkey
            .as_ref()
            .filter(|key| !key.is_empty() && !self.nkeys.is_empty());
        if nkey.is_none() && credentials.names_nobody() && !self.tls_map {
            if let Some(identity) = self.no_auth_identity() {
                return Decision::Accept(identity);
            }
        }
        let reject_log = self.reject_log(credentials);
        if let Some(key) = nkey {
            let Some(user) = self.nkeys.get(key) else {
                return Decision::Reject { log: reject_log };
            };
            let (Some(sig), Some(nonce)) = (&credentials.sig, nonce) else {
                return Decision::Reject { log: reject_log };
            };
            return Decision::Verify {
                check: SlowCheck::Ed25519 {
                    public_key: key.clone(),
                    nonce: nonce.to_string(),
                    sig: sig.clone(),
                },
                identity: self.identity(
                    AuthMethod::Nkey(key.clone()),
                    user.permissions.as_ref(),
                    user.account,
                ),
                log: reject_log,
            };
        }
        if self.tls_map && !self.users.is_empty() {
            // verify_and_map: the certificate names the user. A password in
            // CONNECT is still held against the user's (usually none), as
            // nats-server 2.9.10 does: a client that sends one is refused,
            // and the log names the mapped user.
            let user = credentials
                .certificate
                .as_ref()
                .and_then(|c| c.find_user(&self.users));
            return match user {
                Some(entry) => self.check_secret(
                    &entry.password,
                    credentials.pass.as_deref(),
                    self.identity(
                        AuthMethod::User(entry.name.clone()),
                        entry.permissions.as_ref(),
                        entry.account,
                    ),
                    format!("authentication error - User \"{}\"", entry.name),
                ),
                None => Decision::Reject { log: reject_log },
            };
        }
        // Like nkeys, the users map is consulted only for a client that
        // names a user; one that does not falls through to the token and
        // the single user (nats-server's order).
        if let Some(user) = credentials
            .user
            .as_deref()
            .filter(|u| !u.is_empty() && !self.users.is_empty())
        {
            let Some(entry) = self.users.get(user) else {
                return Decision::Reject { log: reject_log };
            };
            let identity = self.identity(
                AuthMethod::User(entry.name.clone()),
                entry.permissions.as_ref(),
                entry.account,
            );
            return self.check_secret(
                &entry.password,
                credentials.pass.as_deref(),
                identity,
                reject_log,
            );
        }
        if let Some(token) = &self.token {
            let identity = self.identity(AuthMethod::Token, None, AccountId::GLOBAL);
            return self.check_secret(
                token,
                credentials.auth_token.as_deref(),
                identity,
                reject_log,
            );
        }
        if let Some(single) = &self.single_user {
            if credentials.user.as_deref() != Some(single.name.as_str()) {
                return Decision::Reject { log: reject_log };
            }
            let identity = self.identity(
                AuthMethod::SingleUser(single.name.clone()),
                single.permissions.as_ref(),
                single.account,
            );
            return self.check_secret(
                &single.password,
                credentials.pass.as_deref(),
                identity,
                reject_log,
            );
        }
        Decision::Reject { log: reject_log }
    }

    /// The `no_auth_user`'s identity, if one is configured.
    pub fn no_auth_identity(&self) -> Option<Identity> {
        let name = self.no_auth_user.as_ref()?;
        let entry = self.users.get(name)?;
        Some(self.identity(
            AuthMethod::NoAuthUser(entry.name.clone()),
            entry.permissions.as_ref(),
            entry.account,
        ))
    }

    /// An identity with the user's own permissions, else the defaults.
    fn identity(
        &self,
        method: AuthMethod,
        own: Option<&Arc<Permissions>>,
        account: AccountId,
    ) -> Identity {
        Identity {
            method,
            permissions: own.cloned().or_else(|| self.default_permissions.clone()),
            account,
        }
    }

    /// After a reload: the identity a connection that authenticated under
    /// `old` with `method` has now, or `None` if it no longer may stay
    /// (its user, nkey or secret is gone or changed). Secrets are not kept
    /// per connection, so "changed" is judged on the configured values.
    pub fn reauthorize(&self, old: &AuthPolicy, method: &AuthMethod) -> Option<Identity> {
        match method {
            AuthMethod::Open => (!self.enabled()).then(Identity::default),
            AuthMethod::Token => {
                let same = self.token.is_some() && self.token == old.token;
                same.then(|| self.identity(AuthMethod::Token, None, AccountId::GLOBAL))
            }
            AuthMethod::SingleUser(name) => {
                let now = self.single_user.as_ref().filter(|u| &u.name == name)?;
                let before = old.single_user.as_ref()?;
                (now.password == before.password).then_some(())?;
                Some(self.identity(method.clone(), now.permissions.as_ref(), now.account))
            }
            AuthMethod::User(name) => {
                let now = self.users.get(name)?;
                let before = old.users.get(name)?;
                (now.password == before.password).then_some(())?;
                Some(self.identity(method.clone(), now.permissions.as_ref(), now.account))
            }
            AuthMethod::Nkey(key) => {
                let now = self.nkeys.get(key)?;
                Some(self.identity(method.clone(), now.permissions.as_ref(), now.account))
            }
            // Kept by the reload itself while operator mode stays (see
            // `shard/reload.rs`); without it, a JWT user may not stay.
            AuthMethod::Jwt(_) => None,
            AuthMethod::NoAuthUser(name) => {
                (self.no_auth_user.as_ref() == Some(name)).then_some(())?;
                let now = self.users.get(name)?;
                Some(self.identity(method.clone(), now.permissions.as_ref(), now.account))
            }
        }
    }

    fn check_secret(
        &self,
        configured: &Secret,
        offered: Option<&str>,
        identity: Identity,
        log: String,
    ) -> Decision {
        let offered = offered.unwrap_or("");
        match configured {
            Secret::Plain(expected) => {
                if constant_time_eq(expected.as_bytes(), offered.as_bytes()) {
                    Decision::Accept(identity)
                } else {
                    Decision::Reject { log }
                }
            }
            Secret::Bcrypt(hash) => Decision::Verify {
                check: SlowCheck::Bcrypt {
                    hash: hash.clone(),
                    password: offered.to_string(),
                },
                identity,
                log,
            },
        }
    }

    /// nats-server's ERR log line for a failed authentication.
    fn reject_log(&self, credentials: &Credentials) -> String {
        if !self.nkeys.is_empty() {
            format!(
                "authentication error - Nkey \"{}\"",
                credentials.nkey.as_deref().unwrap_or("")
            )
        } else if !self.users.is_empty() {
            format!(
                "authentication error - User \"{}\"",
                credentials.user.as_deref().unwrap_or("")
            )
        } else {
            "authentication error".to_string()
        }
    }
}

/// Equal bytes, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
