//! Operator mode's accounts: account JWTs (from `resolver_preload` or the
//! `full` resolver's directory) decoded, checked against the trusted keys,
//! and mapped onto percore's account machinery: an [`AccountTable`] named
//! by account public keys, with each account's limits (`conn`, `subs`,
//! `payload`), exports and imports (activation tokens checked for private
//! exports) and subject mappings, plus the [`OperatorMode`] that logs
//! users in against them.
//!
//! Signatures are checked here with `nkeys`: this runs at start-up and on
//! a claims update, never on a shard.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use percore_core::account::{
    Account, AccountLimits, AccountTable, Export, ExportKind, MapDestination, Mappings,
    ResponseType, ServiceImport, StreamImport, SubjectTransform, DEFAULT_RESPONSE_THRESHOLD,
};
use percore_core::auth::jwt_permissions::from_jwt;
use percore_core::auth::operator::claim_limit;
use percore_core::auth::{JwtAccount, OperatorMode};
use percore_core::ids::AccountId;
use percore_core::jwt::account::{Account as AccountClaims, ExportType};
use percore_core::jwt::account_validation::account_issue;
use percore_core::jwt::activation_check::activation_valid;
use percore_core::jwt::{decode_account, Claims, TrustedKeys};
use percore_core::subject::is_subset;

use crate::auth_checks::NkeyVerifier;

/// An account token that could not be used, and why (logged, as
/// nats-server logs a failed account lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub account: String,
    pub reason: String,
}

/// The accounts of operator mode and the trust to log users in with.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorAccounts {
    pub table: AccountTable,
    pub mode: OperatorMode,
    pub skipped: Vec<Skipped>,
}

/// Builds the accounts from `tokens` (account public key → JWT). A token
/// that does not decode, whose subject is not its key, or that no trusted
/// key issued is skipped (its users cannot log in, as with nats-server).
pub fn build(
    trusted: &TrustedKeys,
    strict: bool,
    tokens: &BTreeMap<String, String>,
    system: Option<&str>,
    now: i64,
    accepts_updates: bool,
) -> OperatorAccounts {
    let mut skipped = Vec::new();
    let mut decoded: Vec<(String, Claims<AccountClaims>)> = Vec::new();
    for (key, token) in tokens {
        match decode_account(token.trim(), trusted, &NkeyVerifier) {
            Ok(claims) if &claims.data.subject == key => match account_issue(&claims) {
                None => decoded.push((token.clone(), claims)),
                Some(issue) => skipped.push(Skipped {
                    account: key.clone(),
                    reason: format!("account validation failed: {issue}"),
                }),
            },
            Ok(_) => skipped.push(Skipped {
                account: key.clone(),
                reason: "account validation failed".into(),
            }),
            Err(e) => skipped.push(Skipped {
                account: key.clone(),
                reason: e.to_string(),
            }),
        }
    }
    // Ids: the order of the table built from the names alone.
    let names = AccountTable::build(
        decoded
            .iter()
            .map(|(_, c)| Account::new(AccountId::GLOBAL, &c.data.subject))
            .collect(),
        system,
    );
    let id_of = |key: &str| names.lookup(key);
    let by_key: HashMap<&str, &Claims<AccountClaims>> = decoded
        .iter()
        .map(|(_, c)| (c.data.subject.as_str(), c))
        .collect();
    let mut accounts = Vec::with_capacity(decoded.len());
    for (_, claims) in &decoded {
        let id = id_of(&claims.data.subject).unwrap_or(AccountId::GLOBAL);
        let mut account = Account::new(id, &claims.data.subject);
        let limits = &claims.nats.limits;
        account.limits = AccountLimits {
            max_connections: claim_limit(limits.conn),
            max_subscriptions: claim_limit(limits.subs),
            max_payload: claim_limit(limits.payload),
        };
        account.mappings = mappings(&claims.nats);
        accounts.push(account);
    }
    // Exports, then imports checked against them.
    let mut authorized: HashMap<(AccountId, usize), Vec<AccountId>> = HashMap::new();
    for (importer_index, (_, claims)) in decoded.iter().enumerate() {
        let importer = accounts[importer_index].id;
        let importer_key = claims.data.subject.as_str();
        for import in &claims.nats.imports {
            let Some(exporter) = by_key.get(import.account.as_str()) else {
                continue;
            };
            let Some(exporter_id) = id_of(&import.account) else {
                continue;
            };
            let service = import.kind == ExportType::Service;
            // The exporter's subject: a service's `to` when there is no
            // local subject (nats-server's from/to of service imports).
            let exported = if service && import.local_subject.is_empty() && !import.to.is_empty() {
                import.to.as_str()
            } else {
                import.subject.as_str()
            };
            let found = exporter.nats.exports.iter().enumerate().find(|(_, e)| {
                e.kind == import.kind && is_subset(exported.as_bytes(), e.subject.as_bytes())
            });
            let Some((index, export)) = found else {
                continue;
            };
            let allowed = if export.token_req {
                activation_valid(
                    import,
                    importer_key,
                    exporter,
                    &export.revocations,
                    now,
                    &NkeyVerifier,
                )
            } else if export.account_token_position > 0 {
                let position = export.account_token_position as usize;
                exported.split('.').nth(position - 1) == Some(importer_key)
            } else {
                true
            };
            if !allowed {
                continue;
            }
            authorized
                .entry((exporter_id, index))
                .or_default()
                .push(importer);
            let account = &mut accounts[importer_index];
            if service {
                let local = if import.local_subject.is_empty() {
                    import.subject.as_str()
                } else {
                    import.local_subject.as_str()
                };
                let transform = if local == exported {
                    None
                } else {
                    match SubjectTransform::mapping(local, exported) {
                        Ok(t) => Some(t),
                        Err(_) => continue,
                    }
                };
                account.service_imports.push(ServiceImport {
                    exporter: exporter_id,
                    subject: exported.to_string(),
                    local: local.to_string(),
                    transform,
                    response: response_type(&export.response_type),
                    threshold: threshold(export.response_threshold),
                    share: import.share,
                });
            } else {
                let transform = if !import.local_subject.is_empty() {
                    match SubjectTransform::mapping(&import.subject, &import.local_subject) {
                        Ok(t) => Some(t),
                        Err(_) => continue,
                    }
                } else if !import.to.is_empty() {
                    Some(SubjectTransform::prefix(&import.to))
                } else {
                    None
                };
                account.stream_imports.push(StreamImport {
                    exporter: exporter_id,
                    subject: import.subject.clone(),
                    transform,
                });
            }
        }
    }
    for (index, (_, claims)) in decoded.iter().enumerate() {
        let id = accounts[index].id;
        for (export_index, export) in claims.nats.exports.iter().enumerate() {
            let private = export.token_req || export.account_token_position > 0;
            let kind = match export.kind {
                ExportType::Stream => ExportKind::Stream,
                ExportType::Service => ExportKind::Service {
                    response: response_type(&export.response_type),
                    threshold: threshold(export.response_threshold),
                },
            };
            accounts[index].exports.push(Export {
                subject: export.subject.clone(),
                kind,
                accounts: private.then(|| {
                    authorized
                        .get(&(id, export_index))
                        .cloned()
                        .unwrap_or_default()
                }),
            });
        }
    }
    let table = AccountTable::build(accounts, system);
    let mut mode_accounts = HashMap::new();
    for (token, claims) in decoded {
        let Some(id) = table.lookup(&claims.data.subject) else {
            continue;
        };
        let default_permissions = from_jwt(&claims.nats.default_permissions).map(Arc::new);
        let expires_at = (claims.data.expires > 0).then(|| {
            std::time::Instant::now()
                + Duration::from_secs(u64::try_from(claims.data.expires - now).unwrap_or(0))
        });
        mode_accounts.insert(
            claims.data.subject.clone(),
            Arc::new(JwtAccount {
                id,
                token,
                claims,
                default_permissions,
                expires_at,
            }),
        );
    }
    OperatorAccounts {
        table,
        mode: OperatorMode {
            trusted: trusted.clone(),
            strict,
            accounts: mode_accounts,
            accepts_updates,
            update_notices: false,
            pinned: None,
        },
        skipped,
    }
}

/// The account's `mappings`. nats-server adds each and ignores one it
/// cannot add (the claim's validation already refused the worst).
fn mappings(claims: &AccountClaims) -> Mappings {
    let mut mappings = Mappings::default();
    for (source, destinations) in &claims.mappings {
        let destinations: Vec<MapDestination> = destinations
            .iter()
            .map(|d| MapDestination {
                subject: d.subject.clone(),
                weight: d.weight(),
                cluster: (!d.cluster.is_empty()).then(|| d.cluster.clone()),
            })
            .collect();
        let _ = mappings.add(source, &destinations);
    }
    mappings
}

fn response_type(text: &str) -> ResponseType {
    match text {
        "Stream" => ResponseType::Stream,
        "Chunked" => ResponseType::Chunked,
        _ => ResponseType::Singleton,
    }
}

fn threshold(nanos: i64) -> Duration {
    u64::try_from(nanos)
        .ok()
        .filter(|&n| n > 0)
        .map_or(DEFAULT_RESPONSE_THRESHOLD, Duration::from_nanos)
}
