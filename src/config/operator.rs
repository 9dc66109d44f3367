//! Operator mode's top-level keys: `operator` (a JWT file or an inline
//! JWT), `trusted_keys`, `resolver` (`MEMORY`, `URL("http://...")`, or
//! `{type: full, dir}`) and `resolver_preload`, with nats-server 2.9.10's
//! forms and error texts (opts.go and `validateTrustedOperators` in
//! jwt.go). Once every key is read, [`apply`] checks them together and
//! builds the accounts ([`super::operator_accounts`]).
//!
//! Not supported (refused at load, saying why): the `cache` resolver.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percore_core::account::SYSTEM_ACCOUNT;
use percore_core::jwt::nkey::{is_public_key, KeyKind};
use percore_core::jwt::operator::Operator;
use percore_core::jwt::{decode, decode_operator, ClaimType, Claims, TrustedKeys};

use super::accounts::{self, AccountKeys};
use super::conf::{Entry, Value};
use super::duration::parse_go_duration;
use super::error::{go_type, io_error_text, ConfigError};
use super::operator_accounts;
use super::options::Options;
use crate::auth_checks::NkeyVerifier;
use crate::resolver::url::UrlResolver;

/// What a JWT file starts with (base64 of `{"`).
const JWT_PREFIX: &str = "eyJ";

/// The account resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverConfig {
    /// `MEM`/`MEMORY`: the accounts of `resolver_preload` only.
    Memory,
    /// `{type: full, dir}`: account JWTs in `dir`, one file per account
    /// (`<account public key>.jwt`), updated over the system account.
    Full {
        dir: PathBuf,
        allow_delete: bool,
        /// `interval`, `limit` and `timeout` are read and checked; percore
        /// has no peers to sync with, so they change nothing yet.
        interval: Option<Duration>,
        limit: i64,
        timeout: Option<Duration>,
    },
    /// `URL("http://host/path/")`: unknown accounts are fetched over HTTP
    /// ([`crate::resolver::url`]).
    Url(UrlResolver),
}

/// Operator mode as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorOptions {
    pub resolver: Option<ResolverConfig>,
    /// The operator JWTs, as read.
    pub operator_jwts: Vec<String>,
    pub trusted: TrustedKeys,
    pub strict: bool,
    /// `resolver_preload`: account public key → JWT.
    pub preload: BTreeMap<String, String>,
    /// The system account's public key, if any.
    pub system_account: Option<String>,
    /// The operators' own keys (a strict operator's accounts must be
    /// issued by its signing keys).
    pub operator_keys: Vec<String>,
    /// Account tokens that could not be used, and why: logged at start
    /// and after each update (their users cannot log in).
    pub skipped: Vec<String>,
    /// `resolver_pinned_accounts`: only users of these accounts may log in
    /// (the system account is always added).
    pub pinned: Option<std::collections::BTreeSet<String>>,
}

/// The operator keys met in the file, applied by [`apply`].
#[derive(Default)]
pub struct OperatorKeys<'a> {
    pub operator: Option<&'a Entry>,
    pub trusted: Option<&'a Entry>,
    pub resolver: Option<&'a Entry>,
    pub preload: Option<&'a Entry>,
    pub pinned: Option<&'a Entry>,
    /// `resolver_tls`: the TLS client of an `https` URL resolver.
    pub tls: Option<&'a Entry>,
}

impl OperatorKeys<'_> {
    fn any(&self) -> bool {
        self.operator.is_some() || self.trusted.is_some()
    }
}

/// Applies the accounts keys, in operator mode or not.
pub fn apply(
    keys: OperatorKeys<'_>,
    account_keys: AccountKeys<'_>,
    opts: &mut Options,
) -> Result<(), ConfigError> {
    let resolver = keys.resolver.map(resolver).transpose()?;
    let preload = keys.preload.map(preload).transpose()?.unwrap_or_default();
    let mut pinned = keys.pinned.map(pinned_accounts).transpose()?;
    let resolver_tls = keys.tls.map(super::tls::apply_tls).transpose()?;
    if !keys.any() {
        return accounts::apply(account_keys, opts);
    }
    if matches!(resolver, Some(ResolverConfig::Url(_))) && !preload.is_empty() {
        // nats-server: only writeable resolvers take preloads.
        return Err(ConfigError::new(
            "resolver preloads only available for writeable resolver types MEM/DIR/CACHE_DIR",
        ));
    }
    let operators = match keys.operator {
        Some(entry) => operators(entry)?,
        None => Vec::new(),
    };
    let configured_keys = keys.trusted.map(trusted_keys).transpose()?;
    let system_entry = account_keys.system_account.or(account_keys.system);
    let configured_system = match system_entry {
        Some(entry) => match &entry.node.value {
            Value::String(name) => Some(name.clone()),
            _ => {
                return Err(ConfigError::at(
                    &entry.key_pos,
                    "system account name must be a string",
                ))
            }
        },
        None => None,
    };
    let claims: Vec<Claims<Operator>> = operators.iter().map(|(_, c)| c.clone()).collect();
    // nats-server: one operator with an `account_server_url` and no
    // `resolver` uses that server (`<url>/accounts`, where `nsc push`
    // sends accounts). (Without the URL nats-server also sets one, which
    // then fails at start; percore says why at load, below.)
    let resolver = match resolver {
        None if claims.len() == 1 && !claims[0].nats.account_server_url.is_empty() => {
            let url = format!("{}/accounts", claims[0].nats.account_server_url);
            Some(ResolverConfig::Url(
                UrlResolver::new(&url).map_err(ConfigError::new)?,
            ))
        }
        resolver => resolver,
    };
    let resolver = match resolver {
        Some(ResolverConfig::Url(url)) => Some(ResolverConfig::Url(
            url.with_tls(resolver_tls.as_ref())
                .map_err(|e| match keys.tls {
                    Some(entry) => ConfigError::at(&entry.key_pos, e),
                    None => ConfigError::new(e),
                })?,
        )),
        resolver => resolver,
    };
    // validateTrustedOperators, in its order.
    let mut system = configured_system.clone();
    if !claims.is_empty() {
        if resolver.is_none() {
            return Err(ConfigError::new(
                "operators require an account resolver to be configured",
            ));
        }
        // Top-level `mappings` configure the global account (nats-server
        // adds it to its accounts), so they are refused here too.
        if account_keys.accounts.is_some() || account_keys.mappings.is_some() {
            return Err(ConfigError::new(
                "operators do not allow Accounts to be configured directly",
            ));
        }
        if !opts.auth.users.is_empty() || !opts.auth.nkeys.is_empty() {
            return Err(ConfigError::new(
                "operators do not allow users to be configured directly",
            ));
        }
        if configured_keys.is_some() {
            return Err(ConfigError::new(
                "conflicting options for 'TrustedKeys' and 'TrustedOperators'",
            ));
        }
        if let Some(name) = &configured_system {
            let non_empty = claims.iter().any(|c| !c.nats.system_account.is_empty());
            let found = claims.iter().any(|c| &c.nats.system_account == name);
            if non_empty && !found {
                return Err(ConfigError::new(
                    "system_account in config and operator JWT must be identical",
                ));
            }
        } else if claims[0].nats.system_account.is_empty() {
            if matches!(resolver, Some(ResolverConfig::Full { .. })) {
                return Err(ConfigError::new(
                    "using nats based account resolver - the system account needs to be specified in configuration or the operator jwt",
                ));
            }
        } else if claims.len() == 1 {
            system = Some(claims[0].nats.system_account.clone());
        }
        for c in &claims {
            check_server_version(c)?;
        }
    }
    if let Some(pinned) = &mut pinned {
        if !claims.is_empty() {
            if let Some(key) = pinned.iter().find(|k| !is_public_key(k, KeyKind::Account)) {
                return Err(ConfigError::new(format!(
                    "pinned account key \"{key}\" is not a valid public account nkey"
                )));
            }
        }
    }
    let trusted = match configured_keys {
        Some(keys) => TrustedKeys(keys),
        None => TrustedKeys::from_operators(&claims),
    };
    if let Some(key) = trusted.first_invalid() {
        return Err(ConfigError::new(format!(
            "trusted Keys \"{key}\" are required to be a valid public operator nkey"
        )));
    }
    if opts.auth.no_auth_user.is_some() && !claims.is_empty() {
        return Err(ConfigError::new(
            "no_auth_user not compatible with Trusted Operator",
        ));
    }
    let system = match system {
        Some(name) => Some(name),
        None if account_keys.no_system_account => None,
        None => Some(SYSTEM_ACCOUNT.to_string()),
    };
    let strict = claims.iter().any(|c| c.nats.strict_signing_key_usage);
    let operator_keys = claims.iter().map(|c| c.data.subject.clone()).collect();
    let operator = OperatorOptions {
        operator_keys,
        resolver,
        operator_jwts: operators.into_iter().map(|(jwt, _)| jwt).collect(),
        trusted,
        strict,
        preload,
        skipped: Vec::new(),
        pinned: pinned.map(|mut set| {
            // The operator's own system account can always connect.
            if !claims.is_empty() {
                set.extend(system.clone());
            }
            set
        }),
        system_account: system,
    };
    install(opts, operator)?;
    Ok(())
}

/// Reads the account tokens and puts the accounts and operator mode into
/// `opts`.
pub fn install(opts: &mut Options, operator: OperatorOptions) -> Result<(), ConfigError> {
    // A directory file newer than its preload wins: it is what an update
    // over the system account wrote (nats-server stores preloads in the
    // resolver at start, then updates replace them).
    let mut tokens = operator.preload.clone();
    let full = matches!(operator.resolver, Some(ResolverConfig::Full { .. }));
    if let Some(ResolverConfig::Url(url)) = &operator.resolver {
        tokens.extend(url.fetched.all());
    }
    if let Some(ResolverConfig::Full { dir, .. }) = &operator.resolver {
        for (key, token) in read_dir(dir)? {
            let newer = tokens
                .get(&key)
                .is_none_or(|preloaded| issued_at(&token) >= issued_at(preloaded));
            if newer {
                tokens.insert(key, token);
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let built = operator_accounts::build(
        &operator.trusted,
        operator.strict,
        &tokens,
        operator.system_account.as_deref(),
        now,
        full,
    );
    let mut operator = operator;
    operator.skipped = built
        .skipped
        .iter()
        .map(|s| format!("Account [{}] not loaded: {}", s.account, s.reason))
        .collect();
    opts.accounts = built.table;
    let mut mode = built.mode;
    mode.pinned = operator.pinned.clone();
    mode.update_notices = matches!(operator.resolver, Some(ResolverConfig::Url(_)));
    opts.auth.operator = Some(std::sync::Arc::new(mode));
    opts.operator = Some(operator);
    Ok(())
}

/// At start, the `full` resolver's directory takes the preloads that are
/// newer than what it holds (nats-server stores them in the resolver), so
/// lookups, the list and later updates see them.
pub fn store_preloads(operator: &OperatorOptions) -> Result<(), String> {
    let Some(ResolverConfig::Full { dir, .. }) = &operator.resolver else {
        return Ok(());
    };
    for (key, token) in &operator.preload {
        let path = dir.join(format!("{key}.jwt"));
        let newer = match std::fs::read_to_string(&path) {
            Ok(stored) => issued_at(token) > issued_at(stored.trim()),
            Err(_) => true,
        };
        if newer {
            std::fs::write(&path, token)
                .map_err(|e| io_error_text("open", &path.display().to_string(), &e))?;
        }
    }
    Ok(())
}

/// A token's `iat`, 0 when it has none or does not decode.
fn issued_at(token: &str) -> i64 {
    percore_core::jwt::encoding::split(token)
        .ok()
        .and_then(|c| serde_json::from_slice::<percore_core::jwt::ClaimsData>(&c.payload).ok())
        .map_or(0, |d| d.issued_at)
}

/// The account JWTs of a `full` resolver's directory: every
/// `<key>.jwt` file.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut tokens = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // nats-server creates the directory.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| {
                ConfigError::new(io_error_text("mkdir", &dir.display().to_string(), &e))
            })?;
            return Ok(tokens);
        }
        Err(e) => {
            return Err(ConfigError::new(io_error_text(
                "open",
                &dir.display().to_string(),
                &e,
            )))
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(key) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jwt"))
        else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(&path) {
            tokens.insert(key.to_string(), text.trim().to_string());
        }
    }
    Ok(tokens)
}

/// `operator: <file or JWT>`. nats-server 2.9.10 takes one string only:
/// a list is refused with its message.
fn operators(entry: &Entry) -> Result<Vec<(String, Claims<Operator>)>, ConfigError> {
    let name = match &entry.node.value {
        Value::String(name) => name,
        Value::Array(_) => {
            return Err(ConfigError::at(
                &entry.key_pos,
                "error parsing operators: unsupported type []interface {}",
            ))
        }
        other => {
            return Err(ConfigError::at(
                &entry.key_pos,
                format!(
                    "error parsing operators: unsupported type {}",
                    go_type(other)
                ),
            ))
        }
    };
    let fail = |text: String| {
        ConfigError::at(
            &entry.key_pos,
            format!("error parsing operator JWT: {text}"),
        )
    };
    let contents = match std::fs::read_to_string(name) {
        Ok(contents) => contents,
        Err(_) if name.starts_with(JWT_PREFIX) => name.clone(),
        Err(e) => return Err(fail(io_error_text("open", name, &e))),
    };
    let token = parse_decorated(&contents);
    let claims = decode_operator(&token, &NkeyVerifier).map_err(|e| fail(e.to_string()))?;
    Ok(vec![(token, claims)])
}

/// The JWT of a decorated file (`-----BEGIN NATS OPERATOR JWT-----`
/// lines around it), else the trimmed contents (the Go library's
/// `ParseDecoratedJWT`).
pub fn parse_decorated(contents: &str) -> String {
    let lines: Vec<&str> = contents.lines().collect();
    for window in lines.windows(3) {
        let fence = |l: &str| {
            let t = l.trim();
            t.starts_with("---") && t.ends_with("---") && t.len() >= 6
        };
        if fence(window[0]) && fence(window[2]) && !window[1].trim().is_empty() {
            return window[1].trim().to_string();
        }
    }
    contents.trim().to_string()
}

/// `resolver_pinned_accounts`: an account key or a list of them.
fn pinned_accounts(entry: &Entry) -> Result<std::collections::BTreeSet<String>, ConfigError> {
    match &entry.node.value {
        Value::String(key) => Ok([key.clone()].into()),
        Value::Array(items) => {
            let mut keys = std::collections::BTreeSet::new();
            for item in items {
                match &item.value {
                    Value::String(key) => {
                        keys.insert(key.clone());
                    }
                    other => {
                        return Err(ConfigError::at(
                            &item.pos,
                            format!(
                            "error parsing resolver_pinned_accounts: unsupported type in array {}",
                            go_type(other)
                        ),
                        ))
                    }
                }
            }
            Ok(keys)
        }
        other => Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "error parsing resolver_pinned_accounts: unsupported type {}",
                go_type(other)
            ),
        )),
    }
}

/// `trusted_keys`: a key or a list of keys, each a public operator key.
fn trusted_keys(entry: &Entry) -> Result<Vec<String>, ConfigError> {
    let keys = match &entry.node.value {
        Value::String(key) => vec![key.clone()],
        Value::Array(items) => {
            let mut keys = Vec::with_capacity(items.len());
            for item in items {
                match &item.value {
                    Value::String(key) => keys.push(key.clone()),
                    other => {
                        return Err(ConfigError::at(
                            &item.pos,
                            format!(
                                "error parsing trusted: unsupported type in array {}",
                                go_type(other)
                            ),
                        ))
                    }
                }
            }
            keys
        }
        other => {
            return Err(ConfigError::at(
                &entry.key_pos,
                format!("error parsing trusted: unsupported type {}", go_type(other)),
            ))
        }
    };
    for key in &keys {
        if !is_public_key(key, KeyKind::Operator) {
            return Err(ConfigError::at(
                &entry.node.pos,
                format!("trust key \"{key}\" required to be a valid public operator nkey"),
            ));
        }
    }
    Ok(keys)
}

const RESOLVER_ERROR: &str = "error parsing account resolver, should be MEM or  URL(\"url\") or a map containing dir and type state=[FULL|CACHE])";

const CACHE_REFUSED: &str = "resolver type CACHE is not supported by percore: it looks up accounts it does not hold from other servers ($SYS.REQ.ACCOUNT.<id>.CLAIMS.LOOKUP), which percore does not send; use type: full";

/// `resolver: MEMORY`, `URL("...")` or `{type: full|cache, dir: ...}`.
fn resolver(entry: &Entry) -> Result<ResolverConfig, ConfigError> {
    let at = |text: &str| ConfigError::at(&entry.key_pos, text);
    match &entry.node.value {
        Value::String(text) => {
            let upper = text.to_ascii_uppercase();
            // nats-server's pattern matches MEM anywhere in the value.
            if upper.contains("MEM") {
                return Ok(ResolverConfig::Memory);
            }
            if let Some(url) = url_argument(text) {
                return UrlResolver::new(&url)
                    .map(ResolverConfig::Url)
                    .map_err(|e| at(&e));
            }
            Err(at(RESOLVER_ERROR))
        }
        Value::Map(map) => {
            let text = |key: &str| -> Result<Option<String>, ConfigError> {
                match map.get(key).map(|e| &e.node.value) {
                    None => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(other) => Err(at(&format!(
                        "interface conversion: interface {{}} is {}, not string",
                        go_type(other)
                    ))),
                }
            };
            let duration = |key: &str| -> Result<Option<Duration>, ConfigError> {
                match text(key)? {
                    None => Ok(None),
                    Some(t) => parse_go_duration(&t)
                        .map(|n| Some(Duration::from_nanos(n.max(0) as u64)))
                        .map_err(|e| at(&e)),
                }
            };
            let dir = text("dir")?.unwrap_or_default();
            let kind = text("type")?.unwrap_or_default();
            let allow_delete = match map.get("allow_delete").map(|e| &e.node.value) {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(at(&format!(
                        "interface conversion: interface {{}} is {}, not bool",
                        go_type(other)
                    )))
                }
            };
            let limit = match map.get("limit").map(|e| &e.node.value) {
                None => 0,
                Some(Value::Integer(n)) => *n,
                Some(other) => {
                    return Err(at(&format!(
                        "interface conversion: interface {{}} is {}, not int64",
                        go_type(other)
                    )))
                }
            };
            let ttl = duration("ttl")?;
            let interval = duration("interval")?;
            let timeout = duration("timeout")?;
            if dir.is_empty() {
                return Err(at("dir has no value and needs to point to a directory"));
            }
            if let Ok(meta) = std::fs::metadata(&dir) {
                use std::os::unix::fs::PermissionsExt;
                if !meta.is_dir() || meta.permissions().mode() & 0o200 == 0 {
                    return Err(at("dir needs to point to an accessible directory"));
                }
            }
            match kind.to_ascii_uppercase().as_str() {
                "FULL" => {
                    if ttl.is_some_and(|t| !t.is_zero()) {
                        return Err(at("FULL does not accept ttl"));
                    }
                    Ok(ResolverConfig::Full {
                        dir: PathBuf::from(dir),
                        allow_delete,
                        interval,
                        limit,
                        timeout,
                    })
                }
                "CACHE" => {
                    if interval.is_some_and(|i| !i.is_zero()) {
                        return Err(at("CACHE does not accept sync"));
                    }
                    if allow_delete {
                        return Err(at("CACHE does not accept allow_delete"));
                    }
                    // nats-server 2.9's cache resolver finds an account it
                    // does not hold by asking the other servers over the
                    // system account and waiting for an answer; percore
                    // sends no such requests, so it would only be a
                    // bounded `full` that never finds new accounts.
                    Err(at(CACHE_REFUSED))
                }
                _ => Err(at(RESOLVER_ERROR)),
            }
        }
        other => Err(at(&format!(
            "error parsing operator resolver, wrong type {}",
            go_type(other)
        ))),
    }
}

/// The `"url"` of `URL("url")` (nats-server's pattern: `URL` anywhere,
/// case-insensitive, then optionally the parenthesised URL, quotes
/// optional); `Some("")` for a bare `URL`, `None` without `URL`.
fn url_argument(text: &str) -> Option<String> {
    let start = text.to_ascii_uppercase().find("URL")?;
    let Some(rest) = text[start + 3..].strip_prefix('(') else {
        return Some(String::new());
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    let (url, after) = rest.split_at(end);
    let after = after.strip_prefix('"').unwrap_or(after).trim_start();
    // The pattern backtracks: `URL(http://h/)` ends its URL before `)`.
    Some(if after.starts_with(')') {
        url.to_string()
    } else if let Some(url) = url.strip_suffix(')').filter(|_| after.is_empty()) {
        url.to_string()
    } else {
        String::new()
    })
}

/// `resolver_preload: { <account key>: <account JWT> }`; each JWT must
/// decode (and its signature verify), as nats-server checks at load.
fn preload(entry: &Entry) -> Result<BTreeMap<String, String>, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            "preload should be a map of account_public_key:account_jwt",
        ));
    };
    let mut tokens = BTreeMap::new();
    for e in map.entries() {
        let Value::String(token) = &e.node.value else {
            return Err(ConfigError::at(
                &e.node.pos,
                "preload map value should be a string JWT",
            ));
        };
        let decoded =
            decode::<percore_core::jwt::account::Account>(token, ClaimType::Account, &NkeyVerifier);
        if decoded.is_err() {
            return Err(ConfigError::at(&e.node.pos, "invalid account JWT"));
        }
        tokens.insert(e.key.clone(), token.clone());
    }
    Ok(tokens)
}

/// An operator's `assert_server_version` must not be newer than 2.9.10
/// (percore answers as nats-server 2.9.10).
fn check_server_version(operator: &Claims<Operator>) -> Result<(), ConfigError> {
    let wanted = &operator.nats.assert_server_version;
    if wanted.is_empty() {
        return Ok(());
    }
    let subject = &operator.data.subject;
    let parts: Vec<Option<u64>> = wanted.split('.').map(|p| p.parse().ok()).collect();
    let [Some(major), Some(minor), Some(update)] = parts[..] else {
        return Err(ConfigError::new(format!(
            "operator {subject} expects version {wanted} got error instead: invalid version"
        )));
    };
    let server = (2u64, 9u64, 10u64);
    if major > server.0 {
        return Err(ConfigError::new(format!(
            "operator {subject} expected major version {major} > server major version {}",
            server.0
        )));
    }
    if major == server.0 && minor > server.1 {
        return Err(ConfigError::new(format!(
            "operator {subject} expected minor version {minor} > server minor version {}",
            server.1
        )));
    }
    if major == server.0 && minor == server.1 && update > server.2 {
        return Err(ConfigError::new(format!(
            "operator {subject} expected update version {update} > server update version {}",
            server.2
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorated_jwt_files() {
        let file = "-----BEGIN NATS OPERATOR JWT-----\neyJhbGciOi.abc.def\n------END NATS OPERATOR JWT------\n\n\
                    ************************* IMPORTANT *************************\n";
        assert_eq!(parse_decorated(file), "eyJhbGciOi.abc.def");
        assert_eq!(parse_decorated("  eyJx.y.z\n"), "eyJx.y.z");
    }

    #[test]
    fn resolver_url_forms() {
        assert_eq!(
            url_argument("URL(\"http://h:1/jwt/v1/accounts/\")").as_deref(),
            Some("http://h:1/jwt/v1/accounts/")
        );
        assert_eq!(
            url_argument("url( http://h/a )").as_deref(),
            Some("http://h/a")
        );
        assert_eq!(
            url_argument("URL(http://h/a)").as_deref(),
            Some("http://h/a")
        );
        assert_eq!(url_argument("URL").as_deref(), Some(""));
        // The pattern finds `URL` anywhere in the value.
        assert_eq!(url_argument("CURLY").as_deref(), Some(""));
        assert_eq!(url_argument("FULL"), None);
        assert!(UrlResolver::new("http://h:1/jwt/v1/accounts")
            .expect("url")
            .base
            .text
            .ends_with("/accounts/"));
    }

    #[test]
    fn server_version_assertions() {
        let operator = |version: &str| {
            let mut claims = Claims::<Operator>::default();
            claims.data.subject = "OTEST".into();
            claims.nats.assert_server_version = version.into();
            claims
        };
        assert!(check_server_version(&operator("")).is_ok());
        assert!(check_server_version(&operator("2.9.10")).is_ok());
        assert!(check_server_version(&operator("2.8.99")).is_ok());
        let err = check_server_version(&operator("2.10.0")).expect_err("newer");
        assert_eq!(
            err.to_string(),
            "operator OTEST expected minor version 10 > server minor version 9"
        );
        assert!(check_server_version(&operator("3.0.0")).is_err());
        assert!(check_server_version(&operator("x")).is_err());
    }
}
