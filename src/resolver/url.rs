//! The URL account resolver (`resolver: URL("http://host/jwt/v1/accounts/")`,
//! nats-server's `URLAccResolver`): an account JWT that the server does
//! not know yet is fetched with `GET <url><account public key>`, validated
//! as a preloaded one is, and kept for the life of the process. Fetches
//! happen when a login names an unknown account (see
//! `server/account_lookup.rs`), for the exporters of a fetched account's
//! imports, and for the system account at start.
//!
//! Everything here blocks (HTTP with nats-server's 1.9 s timeout): it runs
//! on a blocking thread or on the main thread at start, never on a shard.
//! The fetched tokens live in [`FetchedAccounts`], shared by every copy of
//! the options (the main thread rebuilds the accounts from them, as it
//! does for the `full` resolver's directory).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use percore_core::go_duration::go_duration;
use percore_core::jwt::account::Account;
use percore_core::jwt::account_validation::account_issue;
use percore_core::jwt::nkey::{is_public_key, KeyKind};
use percore_core::jwt::validity::check_times;
use percore_core::jwt::{decode, ClaimType, Claims, TrustedKeys};

use crate::auth_checks::NkeyVerifier;
use crate::config::operator::{install, OperatorOptions, ResolverConfig};
use crate::config::tls::TlsOptions;
use crate::config::Options;
use crate::resolver::http_get::{get, HttpUrl};

/// nats-server's `DEFAULT_ACCOUNT_FETCH_TIMEOUT`: the whole HTTP exchange.
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(1900);
/// nats-server warns about a fetch slower than this.
const SLOW_FETCH: Duration = Duration::from_secs(1);
/// At most this many exporters are fetched for one account's imports
/// (transitively), so a chain of imports cannot keep a login waiting for
/// long.
const MAX_IMPORT_FETCHES: usize = 16;

/// The account tokens fetched so far, by account public key.
///
/// A cache, not configuration: two options with the same URL compare equal
/// whatever has been fetched, and clones share one cache (`Arc`), so the
/// main thread that rebuilds the accounts sees what a login fetched.
/// Locked only to copy a token in or out, never across a fetch.
#[derive(Clone, Default)]
pub struct FetchedAccounts(Arc<Mutex<BTreeMap<String, String>>>);

impl FetchedAccounts {
    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().get(key).cloned()
    }

    pub fn insert(&self, key: &str, token: &str) {
        self.lock().insert(key.to_string(), token.to_string());
    }

    /// Every token, for rebuilding the accounts.
    pub fn all(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PartialEq for FetchedAccounts {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for FetchedAccounts {}

impl std::fmt::Debug for FetchedAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FetchedAccounts({} tokens)", self.lock().len())
    }
}

/// A configured URL resolver: the base URL (ending in `/`, as nats-server
/// makes it), its TLS client for `https`, and what it fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlResolver {
    pub base: HttpUrl,
    pub tls: Option<ResolverTls>,
    pub fetched: FetchedAccounts,
}

/// The TLS client configuration of an `https` resolver (`resolver_tls`).
#[derive(Debug, Clone)]
pub struct ResolverTls(pub Arc<rustls::ClientConfig>);

impl PartialEq for ResolverTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ResolverTls {}

impl UrlResolver {
    /// `url` as configured; nats-server appends a `/` when it lacks one.
    pub fn new(url: &str) -> Result<UrlResolver, String> {
        let mut text = url.trim().to_string();
        if !text.ends_with('/') {
            text.push('/');
        }
        Ok(UrlResolver {
            base: HttpUrl::parse(&text)?,
            tls: None,
            fetched: FetchedAccounts::default(),
        })
    }

    /// An `https` resolver's TLS client: `resolver_tls` when configured,
    /// else the system roots. A plain `http` resolver ignores it, as
    /// nats-server's transport does.
    pub fn with_tls(mut self, opts: Option<&TlsOptions>) -> Result<UrlResolver, String> {
        if self.base.secure {
            self.tls = Some(ResolverTls(crate::tls::resolver_client::build(opts)?));
        }
        Ok(self)
    }

    /// nats-server's `URLAccResolver.Fetch`: the body of a 200 answer to
    /// `GET <base><name>`, else `could not fetch <"url">: <why>`.
    pub fn fetch_raw(&self, name: &str) -> Result<String, String> {
        let url = self.base.join(name);
        let failed = |why: &str| format!("could not fetch <{:?}>: {why}", url.redacted());
        let tls = self.tls.as_ref().map(|t| &t.0);
        let response = get(&url, FETCH_TIMEOUT, tls).map_err(|e| failed(&e))?;
        if response.code != 200 {
            return Err(failed(&response.status));
        }
        Ok(String::from_utf8_lossy(&response.body).into_owned())
    }

    /// Start: nats-server asks the base URL once ("is anyone home") and
    /// does not start when that fails.
    pub fn probe(&self) -> Result<(), String> {
        self.fetch_raw("").map(|_| ())
    }

    /// Fetches and validates `key`'s account JWT (nats-server's
    /// `fetchAccountClaims`, with its log lines) and caches it.
    pub fn fetch_account(&self, key: &str, trusted: &TrustedKeys) -> Result<String, String> {
        if !is_public_key(key, KeyKind::Account) {
            return Err("will only fetch valid account keys".into());
        }
        let started = Instant::now();
        let fetched = self.fetch_raw(key);
        let took = started.elapsed();
        if took > SLOW_FETCH {
            crate::warn!("Account [{key}] fetch took {}", go_duration(took));
        } else {
            crate::debug!("Account [{key}] fetch took {}", go_duration(took));
        }
        let token = fetched.inspect_err(|e| crate::warn!("Account fetch failed: {e}"))?;
        let token = token.trim();
        validate(token, key, trusted, unix_now())?;
        self.fetched.insert(key, token);
        Ok(token.to_string())
    }

    /// Makes `key` known: fetched (unless cached), then the exporters of
    /// its imports that `known` does not have, as nats-server fetches an
    /// import's account while it builds the importer. An exporter that
    /// cannot be fetched only costs its import (nats-server logs it).
    /// True when something was fetched now (the accounts must be rebuilt).
    pub fn resolve(
        &self,
        key: &str,
        trusted: &TrustedKeys,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<bool, String> {
        let (token, mut changed) = match self.fetched.get(key) {
            Some(token) => (token, false),
            None => (self.fetch_account(key, trusted)?, true),
        };
        let mut queue = import_accounts(&token);
        let mut fetches = 0;
        while let Some(exporter) = queue.pop() {
            if known(&exporter) || self.fetched.get(&exporter).is_some() {
                continue;
            }
            if fetches == MAX_IMPORT_FETCHES {
                break;
            }
            fetches += 1;
            if let Ok(token) = self.fetch_account(&exporter, trusted) {
                changed = true;
                queue.extend(import_accounts(&token));
            }
        }
        Ok(changed)
    }
}

/// nats-server's `verifyAccountClaims` and subject check: a token that
/// does not decode gives the decoder's error; one not issued by a trusted
/// operator, for another account, expired or with a blocking issue gives
/// `account validation failed`.
pub fn validate(token: &str, key: &str, trusted: &TrustedKeys, now: i64) -> Result<(), String> {
    let claims: Claims<Account> =
        decode(token, ClaimType::Account, &NkeyVerifier).map_err(|e| e.to_string())?;
    let valid = trusted.trusts(&claims.data.issuer)
        && claims.data.subject == key
        && check_times(&claims.data, now).is_ok()
        && account_issue(&claims).is_none();
    if valid {
        Ok(())
    } else {
        Err("account validation failed".into())
    }
}

/// The accounts a token imports from.
fn import_accounts(token: &str) -> Vec<String> {
    decode::<Account>(token, ClaimType::Account, &NkeyVerifier)
        .map(|claims| {
            claims
                .nats
                .imports
                .iter()
                .map(|i| i.account.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The resolver of `options`, if it is a URL resolver.
fn configured(options: &Options) -> Option<(&OperatorOptions, &UrlResolver)> {
    let operator = options.operator.as_ref()?;
    match &operator.resolver {
        Some(ResolverConfig::Url(resolver)) => Some((operator, resolver)),
        _ => None,
    }
}

/// At start, as nats-server's `NewServer`: the base URL must answer (the
/// server does not start otherwise), then the system account is fetched
/// when it is an account key, and the accounts are rebuilt with it.
pub fn start(options: &mut Options) -> Result<(), String> {
    let Some((operator, resolver)) = configured(options) else {
        return Ok(());
    };
    resolver.probe()?;
    let system = operator
        .system_account
        .clone()
        .filter(|s| is_public_key(s, KeyKind::Account));
    let Some(system) = system else {
        return Ok(());
    };
    let operator = operator.clone();
    if resolver.fetch_account(&system, &operator.trusted).is_ok() {
        install(options, operator).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A reload (SIGHUP) keeps what was fetched: the new options take the
/// running cache and their accounts are rebuilt with it. Shards fetch
/// from the URL they started with, so a changed URL needs a restart.
pub fn carry_over(current: &Options, new: &mut Options) -> Result<(), String> {
    let (Some((_, old)), Some((operator, fresh))) = (configured(current), configured(new)) else {
        return Ok(());
    };
    if old.base != fresh.base {
        return Err("config reload not supported for resolver: its URL changed".into());
    }
    let mut operator = operator.clone();
    operator.resolver = Some(ResolverConfig::Url(old.clone()));
    install(new, operator).map_err(|e| e.to_string())
}
