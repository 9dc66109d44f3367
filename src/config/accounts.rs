//! The `accounts` block and the top-level keys that go with it
//! (`system_account`/`system`, `no_system_account`), into the core's
//! [`AccountTable`]; the users an account lists join the [`AuthPolicy`]
//! with that account's id. Keys, aliases and error texts are nats-server
//! 2.9.10's (opts.go `parseAccounts` and the functions it calls).
//!
//! The keys are collected while the file is applied ([`AccountKeys`]) and
//! resolved once it is all read ([`apply`]): nats-server walks the
//! top-level keys in Go's random map order, so its checks across keys
//! (account users against the `authorization` block, a system account that
//! must exist) are done here after every key, which gives the same result
//! whatever the order.
//!
//! Where nats-server silently accepts something percore cannot honour
//! (`jetstream`, `latency`, `account_token_position`), the
//! file is refused with a clear message instead: ignoring it would change
//! what clients may see.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use percore_core::account::{
    Account, AccountLimits, AccountTable, Export, ExportKind, Mappings, ResponseType,
    ServiceImport, StreamImport, SubjectTransform, DEFAULT_RESPONSE_THRESHOLD, GLOBAL_ACCOUNT,
    SYSTEM_ACCOUNT,
};
use percore_core::auth::{AuthPolicy, Permissions};
use percore_core::ids::AccountId;
use percore_core::subject::{has_wildcard_token, is_valid_subscribe_subject};

use super::auth::{insert_users, parse_users, Users};
use super::conf::{Entry, Node, Pos, Value};
use super::credentials::is_valid_public_account_key;
use super::duration::parse_go_duration;
use super::entry::{boolean, integer, string, unknown_field, wrong_type};
use super::error::{go_quote, go_type, go_value, ConfigError};
use super::mappings::parse_mappings;
use super::options::Options;
use super::permissions::parse_permissions;

/// The top-level keys this module reads, as [`super::load::apply_config`]
/// meets them.
#[derive(Default)]
pub struct AccountKeys<'a> {
    pub accounts: Option<&'a Entry>,
    /// The top-level `mappings` (or `maps`): the global account's.
    pub mappings: Option<&'a Entry>,
    /// `system_account`; it wins over its alias `system`, as in nats-server.
    pub system_account: Option<&'a Entry>,
    pub system: Option<&'a Entry>,
    /// `no_system_account` (or `no_system`, `no_sys_acc`).
    pub no_system_account: bool,
}

/// One account of the block, as written (names not yet resolved).
struct Configured {
    name: String,
    users: Users,
    /// Where `users` was written: the account-wide user errors point there.
    users_pos: Option<Pos>,
    default_permissions: Option<Arc<Permissions>>,
    exports: Vec<ExportEntry>,
    imports: Vec<ImportEntry>,
    limits: AccountLimits,
    mappings: Mappings,
}

impl Configured {
    fn named(name: &str) -> Configured {
        Configured {
            name: name.to_string(),
            users: Users::default(),
            users_pos: None,
            default_permissions: None,
            exports: Vec::new(),
            imports: Vec::new(),
            limits: AccountLimits::default(),
            mappings: Mappings::default(),
        }
    }
}

/// One `exports` entry, with the names of the accounts it lists.
struct ExportEntry {
    subject: String,
    kind: ExportKind,
    accounts: Option<Vec<String>>,
    pos: Pos,
}

/// One `imports` entry, naming the exporter.
struct ImportEntry {
    account: String,
    subject: String,
    kind: ImportKind,
    pos: Pos,
}

enum ImportKind {
    Stream {
        prefix: Option<String>,
        to: Option<String>,
    },
    Service {
        /// The local subject: `to`, else the exporter's subject.
        local: String,
        /// `share`: the responder learns more about the requester.
        share: bool,
    },
}

/// Builds `opts.accounts` from the collected keys and adds the accounts'
/// users to `opts.auth` (after the `authorization` block, whichever came
/// first in the file).
pub fn apply(keys: AccountKeys<'_>, opts: &mut Options) -> Result<(), ConfigError> {
    let configured = match keys.accounts {
        Some(entry) => parse_accounts(entry)?,
        None => Vec::new(),
    };
    let system = system_account(&keys, &configured)?;
    let mut accounts = resolve(&configured, system.as_deref())?;
    if let Some(entry) = keys.mappings {
        let mut global = Account::new(AccountId::GLOBAL, GLOBAL_ACCOUNT);
        global.mappings = parse_mappings(entry)?;
        accounts.push(global);
    }
    let table = AccountTable::build(accounts, system.as_deref());
    add_account_users(configured, &table, &mut opts.auth)?;
    opts.accounts = table;
    Ok(())
}

/// After a reload: `opts` (freshly loaded) renumbered so that every account
/// the running server knows keeps its id, users included. Connections and
/// subscriptions hold account ids, so a reload must not move them.
pub fn keep_account_ids(opts: &mut Options, running: &AccountTable) {
    let fresh = opts.accounts.clone();
    let kept = fresh.clone().keeping_ids_of(running);
    let remap = |id: AccountId| kept.lookup(fresh.name(id)).unwrap_or(id);
    for user in opts.auth.users.values_mut() {
        user.account = remap(user.account);
    }
    for nkey in opts.auth.nkeys.values_mut() {
        nkey.account = remap(nkey.account);
    }
    if let Some(user) = &mut opts.auth.single_user {
        user.account = remap(user.account);
    }
    if let Some(mode) = &mut opts.auth.operator {
        let mode = std::sync::Arc::make_mut(mode);
        for account in mode.accounts.values_mut() {
            std::sync::Arc::make_mut(account).id = remap(account.id);
        }
    }
    opts.accounts = kept;
}

// ---- the block -------------------------------------------------------------

/// `accounts: [A, B]` or `accounts: { A: {...}, B: {...} }`.
fn parse_accounts(entry: &Entry) -> Result<Vec<Configured>, ConfigError> {
    match &entry.node.value {
        Value::Array(items) => account_names(items),
        Value::Map(map) => map.entries().iter().map(account_block).collect(),
        _ => Err(wrong_type(
            entry,
            "a list of account names or a map of accounts",
        )),
    }
}

fn reserved(pos: &Pos, name: &str) -> ConfigError {
    ConfigError::at(pos, format!("{} is a Reserved Account", go_quote(name)))
}

/// The list form: names only.
fn account_names(items: &[Node]) -> Result<Vec<Configured>, ConfigError> {
    let mut accounts: Vec<Configured> = Vec::new();
    for item in items {
        let Value::String(name) = &item.value else {
            return Err(ConfigError::at(
                &item.pos,
                format!("Expected an account name, got {}", go_type(&item.value)),
            ));
        };
        if name == GLOBAL_ACCOUNT {
            return Err(reserved(&item.pos, name));
        }
        if accounts.iter().any(|a| &a.name == name) {
            return Err(ConfigError::at(
                &item.pos,
                format!("Duplicate Account Entry: {name}"),
            ));
        }
        accounts.push(Configured::named(name));
    }
    Ok(accounts)
}

/// The map form: `name: { users, nkey, default_permissions, imports,
/// exports, limits }`. (A name written twice cannot be reported: the
/// parser keeps the last one, as nats-server's does.)
fn account_block(entry: &Entry) -> Result<Configured, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            "Expected map entries for accounts",
        ));
    };
    if entry.key == GLOBAL_ACCOUNT {
        return Err(reserved(&entry.key_pos, &entry.key));
    }
    let mut account = Configured::named(&entry.key);
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "nkey" => account_nkey(e)?,
            "users" => {
                account.users = parse_users(e)?;
                account.users_pos = Some(e.key_pos.clone());
            }
            "default_permissions" => {
                account.default_permissions = Some(Arc::new(parse_permissions(e)?));
            }
            "exports" => account.exports = exports(e)?,
            "imports" => account.imports = imports(e)?,
            "limits" => account.limits = limits(e)?,
            "jetstream" => jetstream(e)?,
            "mappings" | "maps" => account.mappings = parse_mappings(e)?,
            _ if e.used_as_variable => {}
            _ => return Err(unknown_field(e)),
        }
    }
    Ok(account)
}

fn not_supported(entry: &Entry, why: &str) -> ConfigError {
    ConfigError::at(
        &entry.key_pos,
        format!("\"{}\" is not supported yet by percore{why}", entry.key),
    )
}

/// The account's public key is checked as nats-server checks it, then not
/// kept: outside operator mode nothing routes or authenticates by it
/// (operator mode is refused as a whole).
fn account_nkey(entry: &Entry) -> Result<(), ConfigError> {
    match &entry.node.value {
        Value::String(key) if is_valid_public_account_key(key) => Ok(()),
        other => Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "Not a valid public nkey for an account: {}",
                go_quote(go_value(other))
            ),
        )),
    }
}

/// JetStream for the account: refused, except a value that turns it off
/// (`false`, `disabled`), which asks for what percore does anyway.
fn jetstream(entry: &Entry) -> Result<(), ConfigError> {
    if super::jetstream::scalar_turns_off(&entry.node.value) {
        Ok(())
    } else {
        Err(not_supported(entry, " (JetStream)"))
    }
}

/// `limits { max_connections, max_subscriptions, max_payload,
/// max_leafnodes }`; a negative value is no limit (nats-server's -1).
fn limits(entry: &Entry) -> Result<AccountLimits, ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "Expected account limits to be a map/struct, got {}",
                go_value(&entry.node.value)
            ),
        ));
    };
    let mut limits = AccountLimits::default();
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "max_connections" | "max_conn" => limits.max_connections = limit(e)?,
            "max_subscriptions" | "max_subs" => limits.max_subscriptions = limit(e)?,
            "max_payload" | "max_pay" => limits.max_payload = limit(e)?,
            // percore has no leaf nodes (the `leafnodes` block is refused),
            // so there is nothing for this limit to count.
            "max_leafnodes" | "max_leafs" => {
                limit(e)?;
            }
            _ if e.used_as_variable => {}
            _ => {
                return Err(ConfigError::at(
                    &e.key_pos,
                    format!("Unknown field {} parsing account limits", go_quote(&e.key)),
                ))
            }
        }
    }
    Ok(limits)
}

/// nats-server keeps these in an int32; a bigger value would wrap there,
/// so it is refused.
fn limit(entry: &Entry) -> Result<Option<u64>, ConfigError> {
    let n = integer(entry)?;
    if n > i64::from(i32::MAX) {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!("{} value is too big", entry.key),
        ));
    }
    Ok(u64::try_from(n).ok())
}

// ---- exports ---------------------------------------------------------------

fn exports(entry: &Entry) -> Result<Vec<ExportEntry>, ConfigError> {
    let Value::Array(items) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "Exports should be an array, got {}",
                go_type(&entry.node.value)
            ),
        ));
    };
    items.iter().map(export_entry).collect()
}

/// `{stream: subject}` or `{service: subject, response_type, threshold}`,
/// each with an optional `accounts` list (a private export).
fn export_entry(item: &Node) -> Result<ExportEntry, ConfigError> {
    let Value::Map(map) = &item.value else {
        return Err(ConfigError::at(
            &item.pos,
            format!(
                "Export Items should be a map with type entry, got {}",
                go_type(&item.value)
            ),
        ));
    };
    // (is it a service, its subject)
    let mut subject: Option<(bool, String)> = None;
    let mut response: Option<(ResponseType, Pos)> = None;
    let mut threshold: Option<(Duration, Pos)> = None;
    let mut accounts = None;
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            kind @ ("stream" | "service") => {
                let service = kind == "service";
                if let Some((was_service, _)) = &subject {
                    let other = if *was_service { "service" } else { "stream" };
                    return Err(ConfigError::at(
                        &e.key_pos,
                        format!(
                            "Detected {kind} {} but already saw a {other}",
                            go_quote(go_value(&e.node.value))
                        ),
                    ));
                }
                let Value::String(text) = &e.node.value else {
                    return Err(ConfigError::at(
                        &e.key_pos,
                        format!(
                            "Expected {kind} name to be string, got {}",
                            go_type(&e.node.value)
                        ),
                    ));
                };
                subject = Some((service, text.clone()));
            }
            "response" | "response_type" => {
                if response.is_some() {
                    return Err(ConfigError::at(
                        &e.key_pos,
                        "Duplicate response type definition",
                    ));
                }
                response = Some((response_type(e)?, e.key_pos.clone()));
            }
            "threshold" | "response_threshold" | "response_max_time" | "response_time" => {
                if threshold.is_some() {
                    return Err(ConfigError::at(
                        &e.key_pos,
                        "Duplicate response threshold detected",
                    ));
                }
                threshold = Some((response_threshold(e)?, e.key_pos.clone()));
            }
            "accounts" => accounts = Some(listed_accounts(e)?),
            "latency" => return Err(not_supported(e, " (service latency tracking)")),
            // nats-server then requires a token of the imported subject to
            // be the importer's name; ignoring it would authorize imports
            // nats-server refuses.
            "account_token_position" => return Err(not_supported(e, "")),
            _ if e.used_as_variable => {}
            _ => return Err(unknown_field(e)),
        }
    }
    // nats-server drops an entry without a subject silently; it cannot be
    // what was meant.
    let Some((service, subject)) = subject else {
        return Err(ConfigError::at(
            &item.pos,
            "export entry needs a \"stream\" or a \"service\" subject",
        ));
    };
    let kind = if service {
        ExportKind::Service {
            response: response.map(|(r, _)| r).unwrap_or_default(),
            threshold: threshold
                .map(|(t, _)| t)
                .unwrap_or(DEFAULT_RESPONSE_THRESHOLD),
        }
    } else {
        let directive = response
            .map(|(_, pos)| pos)
            .or(threshold.map(|(_, pos)| pos));
        if let Some(pos) = directive {
            return Err(ConfigError::at(
                &pos,
                "Detected response directive on non-service",
            ));
        }
        ExportKind::Stream
    };
    Ok(ExportEntry {
        subject,
        kind,
        accounts,
        pos: item.pos.clone(),
    })
}

fn response_type(entry: &Entry) -> Result<ResponseType, ConfigError> {
    let Value::String(text) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "Expected response type to be string, got {}",
                go_type(&entry.node.value)
            ),
        ));
    };
    match text.to_ascii_lowercase().as_str() {
        "single" | "singleton" => Ok(ResponseType::Singleton),
        "stream" => Ok(ResponseType::Stream),
        "chunk" | "chunked" => Ok(ResponseType::Chunked),
        _ => Err(ConfigError::at(
            &entry.key_pos,
            format!("Unknown response type: {}", go_quote(text)),
        )),
    }
}

/// A duration string; zero keeps the default (as in nats-server), and a
/// negative one, which would close every response route at once, is
/// refused.
fn response_threshold(entry: &Entry) -> Result<Duration, ConfigError> {
    let expected = "Expected response threshold to be a parseable time duration";
    let Value::String(text) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!("{expected}, got {}", go_type(&entry.node.value)),
        ));
    };
    let nanos = parse_go_duration(text).map_err(|_| {
        ConfigError::at(
            &entry.key_pos,
            format!("{expected}, got {}", go_quote(text)),
        )
    })?;
    match u64::try_from(nanos) {
        Ok(0) => Ok(DEFAULT_RESPONSE_THRESHOLD),
        Ok(n) => Ok(Duration::from_nanos(n)),
        Err(_) => Err(ConfigError::at(
            &entry.key_pos,
            format!("{} can not be negative", entry.key),
        )),
    }
}

/// An export's `accounts: [names]`.
fn listed_accounts(entry: &Entry) -> Result<Vec<String>, ConfigError> {
    let Value::Array(items) = &entry.node.value else {
        return Err(wrong_type(entry, "an array of account names"));
    };
    items
        .iter()
        .map(|item| match &item.value {
            Value::String(name) => Ok(name.clone()),
            other => Err(ConfigError::at(
                &item.pos,
                format!("Expected an account name, got {}", go_type(other)),
            )),
        })
        .collect()
}

// ---- imports ---------------------------------------------------------------

/// One account's `imports`; a local service subject may be imported once.
fn imports(entry: &Entry) -> Result<Vec<ImportEntry>, ConfigError> {
    let Value::Array(items) = &entry.node.value else {
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "Imports should be an array, got {}",
                go_type(&entry.node.value)
            ),
        ));
    };
    let mut imports: Vec<ImportEntry> = Vec::new();
    for item in items {
        let import = import_entry(item)?;
        if let ImportKind::Service { local, .. } = &import.kind {
            let earlier = imports
                .iter()
                .find(|i| matches!(&i.kind, ImportKind::Service { local: l, .. } if l == local));
            if let Some(earlier) = earlier {
                return Err(ConfigError::at(
                    &item.pos,
                    format!(
                        "Duplicate service import subject {}, previously used in import for account {}, subject {}",
                        go_quote(local),
                        go_quote(&earlier.account),
                        go_quote(&earlier.subject)
                    ),
                ));
            }
        }
        imports.push(import);
    }
    Ok(imports)
}

/// `{stream: {account, subject}, prefix | to}` or
/// `{service: {account, subject}, to, share}`.
fn import_entry(item: &Node) -> Result<ImportEntry, ConfigError> {
    let Value::Map(map) = &item.value else {
        return Err(ConfigError::at(
            &item.pos,
            format!(
                "Import Items should be a map with type entry, got {}",
                go_type(&item.value)
            ),
        ));
    };
    // (is it a service, exporter, subject)
    let mut source: Option<(bool, String, String)> = None;
    let mut prefix: Option<&Entry> = None;
    let mut to: Option<&Entry> = None;
    let mut share = false;
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            kind @ ("stream" | "service") => {
                if let Some((was_service, _, _)) = &source {
                    let other = if *was_service { "service" } else { "stream" };
                    return Err(ConfigError::at(
                        &e.key_pos,
                        format!("Detected {kind} but already saw a {other}"),
                    ));
                }
                let (account, subject) = exporter_and_subject(e, kind)?;
                source = Some((kind == "service", account, subject));
            }
            "prefix" => prefix = non_empty_string(e)?,
            "to" => to = non_empty_string(e)?,
            // `share`: in nats-server the responder's `Nats-Request-Info`
            // then carries the requester's details (connection, user,
            // server); kept on the import for that.
            "share" => share = boolean(e)?,
            _ if e.used_as_variable => {}
            _ => return Err(unknown_field(e)),
        }
    }
    let Some((service, account, subject)) = source else {
        return Err(ConfigError::at(
            &item.pos,
            "import entry needs a \"stream\" or a \"service\"",
        ));
    };
    let text = |e: &Entry| string(e).map(str::to_string);
    let kind = if service {
        // nats-server ignores a `prefix` here; it surely meant something.
        if let Some(e) = prefix {
            return Err(ConfigError::at(
                &e.key_pos,
                "a service import takes 'to', not 'prefix'",
            ));
        }
        let local = match to {
            Some(e) => text(e)?,
            None => subject.clone(),
        };
        ImportKind::Service { local, share }
    } else {
        if let (Some(_), Some(e)) = (prefix, to) {
            return Err(ConfigError::at(
                &e.key_pos,
                "Stream import can not have a 'prefix' and a 'to' property",
            ));
        }
        ImportKind::Stream {
            prefix: prefix.map(text).transpose()?,
            to: to.map(text).transpose()?,
        }
    };
    Ok(ImportEntry {
        account,
        subject,
        kind,
        pos: item.pos.clone(),
    })
}

/// The entry, if its string value is not empty ("" is unset, as in Go).
fn non_empty_string(entry: &Entry) -> Result<Option<&Entry>, ConfigError> {
    Ok((!string(entry)?.is_empty()).then_some(entry))
}

/// An import's `{account, subject}`.
fn exporter_and_subject(entry: &Entry, kind: &str) -> Result<(String, String), ConfigError> {
    let Value::Map(map) = &entry.node.value else {
        let capitalized = if kind == "service" {
            "Service"
        } else {
            "Stream"
        };
        return Err(ConfigError::at(
            &entry.key_pos,
            format!(
                "{capitalized} entry should be an account map, got {}",
                go_type(&entry.node.value)
            ),
        ));
    };
    let (mut account, mut subject) = (String::new(), String::new());
    for e in map.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "account" => account = string(e)?.to_string(),
            "subject" => subject = string(e)?.to_string(),
            _ if e.used_as_variable => {}
            _ => return Err(unknown_field(e)),
        }
    }
    if account.is_empty() || subject.is_empty() {
        return Err(ConfigError::at(
            &entry.key_pos,
            "Expect an account name and a subject",
        ));
    }
    Ok((account, subject))
}

// ---- resolving names -------------------------------------------------------

/// The system account's name: `system_account` (which must name a
/// configured account), else `$SYS` unless `no_system_account` (a
/// configured `$SYS` is the system account even then, as in nats-server).
fn system_account(
    keys: &AccountKeys<'_>,
    configured: &[Configured],
) -> Result<Option<String>, ConfigError> {
    let is_configured = |name: &str| configured.iter().any(|a| a.name == name);
    if let Some(entry) = keys.system_account.or(keys.system) {
        let Value::String(name) = &entry.node.value else {
            return Err(ConfigError::at(
                &entry.key_pos,
                "system account name must be a string",
            ));
        };
        // nats-server finds `$G` too: it always exists.
        if name != GLOBAL_ACCOUNT && !is_configured(name) {
            return Err(ConfigError::at(
                &entry.key_pos,
                "error resolving system account: account missing",
            ));
        }
        return Ok(Some(name.clone()));
    }
    if keys.no_system_account && !is_configured(SYSTEM_ACCOUNT) {
        return Ok(None);
    }
    Ok(Some(SYSTEM_ACCOUNT.to_string()))
}

/// The accounts with their exports and imports resolved to ids, in the
/// order of `configured`. Ids are those of the final table: it is built
/// from the same names in the same order, so a table of the names alone
/// gives them.
fn resolve(configured: &[Configured], system: Option<&str>) -> Result<Vec<Account>, ConfigError> {
    let names = AccountTable::build(
        configured
            .iter()
            .map(|c| Account::new(AccountId::GLOBAL, &c.name))
            .collect(),
        system,
    );
    // Only configured accounts export (nats-server looks names up among
    // them, so `$G` and the default `$SYS` are "not defined" here too).
    let index: HashMap<&str, usize> = configured
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    // Every configured name is in `names`; the fallback is never taken.
    let id_of = |name: &str| names.lookup(name).unwrap_or(AccountId::GLOBAL);
    let mut accounts = Vec::with_capacity(configured.len());
    for c in configured {
        let mut account = Account::new(id_of(&c.name), &c.name);
        account.limits = c.limits.clone();
        account.mappings = c.mappings.clone();
        for export in &c.exports {
            account.exports.push(resolve_export(
                export,
                &|name| index.contains_key(name),
                &id_of,
            )?);
        }
        accounts.push(account);
    }
    // Imports once every export is known: each must be authorized by one.
    let mut resolved = Vec::with_capacity(configured.len());
    for (c, importer) in configured.iter().zip(&accounts) {
        resolved.push(resolve_imports(c, importer.id, &accounts, &index)?);
    }
    for (account, (streams, services)) in accounts.iter_mut().zip(resolved) {
        account.stream_imports = streams;
        account.service_imports = services;
    }
    Ok(accounts)
}

/// One account's imports, checked against the exporters' exports
/// (`accounts`, indexed by name through `index`).
fn resolve_imports(
    c: &Configured,
    importer: AccountId,
    accounts: &[Account],
    index: &HashMap<&str, usize>,
) -> Result<(Vec<StreamImport>, Vec<ServiceImport>), ConfigError> {
    let mut streams: Vec<StreamImport> = Vec::new();
    let mut services = Vec::new();
    for import in &c.imports {
        let kind = match import.kind {
            ImportKind::Stream { .. } => "stream",
            ImportKind::Service { .. } => "service",
        };
        let Some(exporter) = index.get(import.account.as_str()).map(|&i| &accounts[i]) else {
            return Err(ConfigError::at(
                &import.pos,
                format!(
                    "{} account not defined for {kind} import",
                    go_quote(&import.account)
                ),
            ));
        };
        match &import.kind {
            ImportKind::Stream { prefix, to } => {
                let stream = stream_import(import, importer, exporter, prefix, to)?;
                let duplicate = streams
                    .iter()
                    .any(|s| s.exporter == stream.exporter && s.subject == stream.subject);
                if duplicate {
                    return Err(import_error(import, kind, "stream import already exists"));
                }
                streams.push(stream);
            }
            ImportKind::Service { local, share } => {
                services.push(service_import(import, importer, exporter, local, *share)?);
            }
        }
    }
    Ok((streams, services))
}

fn resolve_export(
    export: &ExportEntry,
    is_configured: &dyn Fn(&str) -> bool,
    id_of: &dyn Fn(&str) -> AccountId,
) -> Result<Export, ConfigError> {
    let kind = match export.kind {
        ExportKind::Stream => "stream",
        ExportKind::Service { .. } => "service",
    };
    let accounts = match &export.accounts {
        None => None,
        Some(names) => {
            let mut ids = Vec::with_capacity(names.len());
            for name in names {
                if !is_configured(name) {
                    return Err(ConfigError::at(
                        &export.pos,
                        format!("{} account not defined for {kind} export", go_quote(name)),
                    ));
                }
                ids.push(id_of(name));
            }
            Some(ids)
        }
    };
    // nats-server takes any text here, and then nothing can match it.
    if !is_valid_subscribe_subject(export.subject.as_bytes()) {
        return Err(ConfigError::at(
            &export.pos,
            format!(
                "Error adding {kind} export {}: invalid subject",
                go_quote(&export.subject)
            ),
        ));
    }
    Ok(Export {
        subject: export.subject.clone(),
        kind: export.kind.clone(),
        accounts,
    })
}

/// nats-server's `Error adding <kind> import "<subject>": <reason>`.
fn import_error(import: &ImportEntry, kind: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::at(
        &import.pos,
        format!(
            "Error adding {kind} import {}: {reason}",
            go_quote(&import.subject)
        ),
    )
}

fn stream_import(
    import: &ImportEntry,
    importer: AccountId,
    exporter: &Account,
    prefix: &Option<String>,
    to: &Option<String>,
) -> Result<StreamImport, ConfigError> {
    if !is_valid_subscribe_subject(import.subject.as_bytes()) {
        return Err(import_error(import, "stream", "invalid subject"));
    }
    if exporter
        .export_for(import.subject.as_bytes(), false, importer)
        .is_none()
    {
        return Err(import_error(
            import,
            "stream",
            "stream import not authorized",
        ));
    }
    let transform = match (prefix, to) {
        (Some(prefix), _) => {
            if has_wildcard_token(prefix.as_bytes()) {
                return Err(import_error(
                    import,
                    "stream",
                    "stream import prefix can not contain wildcard tokens",
                ));
            }
            Some(SubjectTransform::prefix(prefix))
        }
        (None, Some(to)) if to != &import.subject => Some(
            SubjectTransform::mapping(&import.subject, to).map_err(|reason| {
                import_error(
                    import,
                    "stream",
                    format!(
                        "failed to create mapping transform for stream import subject {} to {}: {reason}",
                        go_quote(&import.subject),
                        go_quote(to)
                    ),
                )
            })?,
        ),
        _ => None,
    };
    Ok(StreamImport {
        exporter: exporter.id,
        subject: import.subject.clone(),
        transform,
    })
}

fn service_import(
    import: &ImportEntry,
    importer: AccountId,
    exporter: &Account,
    local: &str,
    share: bool,
) -> Result<ServiceImport, ConfigError> {
    let valid = |s: &str| is_valid_subscribe_subject(s.as_bytes());
    if !valid(&import.subject) || !valid(local) {
        return Err(import_error(import, "service", "invalid subject"));
    }
    let Some(export) = exporter.export_for(import.subject.as_bytes(), true, importer) else {
        return Err(import_error(
            import,
            "service",
            "service import not authorized",
        ));
    };
    let (response, threshold) = match export.kind {
        ExportKind::Service {
            response,
            threshold,
        } => (response, threshold),
        // `export_for` was asked for a service.
        ExportKind::Stream => (ResponseType::default(), DEFAULT_RESPONSE_THRESHOLD),
    };
    let transform = if local == import.subject {
        None
    } else {
        Some(
            SubjectTransform::mapping(local, &import.subject)
                .map_err(|reason| import_error(import, "service", reason))?,
        )
    };
    Ok(ServiceImport {
        exporter: exporter.id,
        subject: import.subject.clone(),
        local: local.to_string(),
        transform,
        response,
        threshold,
        share,
    })
}

// ---- users -----------------------------------------------------------------

/// Adds each account's users to `auth` with the account's id in `table`
/// and, for users without their own permissions, the account's
/// `default_permissions`.
fn add_account_users(
    configured: Vec<Configured>,
    table: &AccountTable,
    auth: &mut AuthPolicy,
) -> Result<(), ConfigError> {
    for account in configured {
        let Some(pos) = account.users_pos else {
            continue;
        };
        if account.users.is_empty() {
            continue;
        }
        if auth.single_user.is_some() {
            return Err(ConfigError::at(
                &pos,
                "Can not have a single user/pass and accounts",
            ));
        }
        if auth.token.is_some() {
            return Err(ConfigError::at(&pos, "Can not have a token and accounts"));
        }
        let id = table.lookup(&account.name).ok_or_else(|| {
            ConfigError::at(
                &pos,
                format!("account {} is missing", go_quote(&account.name)),
            )
        })?;
        insert_users(
            account.users,
            id,
            account.default_permissions.as_ref(),
            auth,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::conf::parse_str;
    use crate::config::credentials::samples::{ACCOUNT_KEY, USER_KEY};
    use crate::config::load::{apply_config, validate};
    use percore_core::account::transform::Piece;
    use percore_core::auth::Rules;

    /// Loads `source` as the file x.conf and runs the cross-option checks.
    fn load(source: &str) -> Result<Options, String> {
        let map = parse_str(source, "x.conf", &|_| None).map_err(|e| e.to_string())?;
        let mut opts = Options::default();
        apply_config(&map, &mut opts).map_err(|e| e.to_string())?;
        validate(&opts).map_err(|e| e.to_string())?;
        Ok(opts)
    }

    fn ok(source: &str) -> Options {
        load(source).unwrap_or_else(|e| panic!("unexpected error for {source:?}: {e}"))
    }

    fn err(source: &str) -> String {
        match load(source) {
            Ok(opts) => panic!("expected an error for {source:?}, got {:?}", opts.accounts),
            Err(e) => e,
        }
    }

    fn publish_only(subject: &str) -> Arc<Permissions> {
        Arc::new(Permissions {
            publish: Some(Rules {
                allow: Some(vec![subject.as_bytes().into()]),
                deny: vec![],
            }),
            ..Permissions::default()
        })
    }

    const FULL: &str = r#"
authorization { users: [{user: g, password: pg}] }
accounts {
  A: {
    nkey: AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE
    default_permissions: { publish: "a.>" }
    users: [
      {user: a, password: pa}
      {user: a2, password: pa2, permissions: { publish: "x" }}
    ]
    exports: [
      {stream: "a.events.>"}
      {service: "a.req", response_type: stream, threshold: "5s"}
      {stream: "a.private.>", accounts: [B]}
    ]
    limits: { max_conn: 10, max_subs: 100, max_payload: 1KB, max_leafs: 1 }
  }
  B: {
    users: [{user: b, password: pb}, {nkey: UC6NLCN7AS34YOJVCYD4PJ3QB7QGLYG5B5IMBT25VW5K4TNUJODM7BOX}]
    imports: [
      {stream: {account: A, subject: "a.events.>"}, prefix: from_a}
      {service: {account: A, subject: "a.req"}, to: req, share: true}
      {stream: {account: A, subject: "a.private.x"}}
    ]
  }
  SYS: { users: [{user: sys, password: ps}] }
}
system_account: SYS
no_auth_user: b
"#;

    #[test]
    fn full_example() {
        assert_eq!(&FULL[FULL.find("nkey: ").unwrap() + 6..][..56], ACCOUNT_KEY);
        assert!(FULL.contains(USER_KEY));
        let opts = ok(FULL);
        let table = &opts.accounts;
        let (a, b, sys) = (
            table.lookup("A").unwrap(),
            table.lookup("B").unwrap(),
            table.lookup("SYS").unwrap(),
        );
        assert_eq!(table.lookup("$G"), Some(AccountId::GLOBAL));
        assert_eq!(table.system(), Some(sys));
        assert_eq!(table.lookup("$SYS"), None, "system_account replaces $SYS");

        let account_a = table.get(a).unwrap();
        assert_eq!(
            account_a.limits,
            AccountLimits {
                max_connections: Some(10),
                max_subscriptions: Some(100),
                max_payload: Some(1024),
            }
        );
        assert_eq!(account_a.exports.len(), 3);
        assert_eq!(
            account_a.exports[1].kind,
            ExportKind::Service {
                response: ResponseType::Stream,
                threshold: Duration::from_secs(5),
            }
        );
        assert_eq!(account_a.exports[2].accounts, Some(vec![b]));

        let account_b = table.get(b).unwrap();
        assert_eq!(
            account_b.stream_imports,
            vec![
                StreamImport {
                    exporter: a,
                    subject: "a.events.>".into(),
                    transform: Some(SubjectTransform::prefix("from_a")),
                },
                StreamImport {
                    exporter: a,
                    subject: "a.private.x".into(),
                    transform: None,
                },
            ]
        );
        assert_eq!(
            account_b.service_imports,
            vec![ServiceImport {
                exporter: a,
                subject: "a.req".into(),
                local: "req".into(),
                transform: Some(SubjectTransform::Map {
                    source: b"req"[..].into(),
                    destination: vec![
                        Piece::Literal(b"a"[..].into()),
                        Piece::Literal(b"req"[..].into())
                    ],
                }),
                response: ResponseType::Stream,
                threshold: Duration::from_secs(5),
                share: true,
            }]
        );
        assert!(table.has_imports());

        let auth = &opts.auth;
        assert_eq!(auth.users["g"].account, AccountId::GLOBAL);
        assert_eq!(auth.users["a"].account, a);
        assert_eq!(auth.users["a"].permissions, Some(publish_only("a.>")));
        assert_eq!(auth.users["a2"].permissions, Some(publish_only("x")));
        assert_eq!(auth.users["b"].account, b);
        assert_eq!(auth.users["b"].permissions, None);
        assert_eq!(auth.nkeys[USER_KEY].account, b);
        assert_eq!(auth.users["sys"].account, sys);
        assert_eq!(auth.no_auth_user.as_deref(), Some("b"));
    }

    #[test]
    fn order_of_top_level_keys_does_not_matter() {
        let reordered = ok(&format!(
            "{}\nauthorization {{ users: [{{user: g, password: pg}}] }}",
            FULL.replacen("authorization { users: [{user: g, password: pg}] }", "", 1)
        ));
        let opts = ok(FULL);
        assert_eq!(reordered.accounts, opts.accounts);
        assert_eq!(reordered.auth, opts.auth);
    }

    #[test]
    fn list_form_and_system_account_defaults() {
        let opts = ok("accounts: [A, B]");
        let table = &opts.accounts;
        assert_eq!(table.lookup("A"), Some(AccountId(1)));
        assert_eq!(table.lookup("B"), Some(AccountId(2)));
        // `$SYS` is created and is the system account by default.
        let sys = table.lookup("$SYS").unwrap();
        assert_eq!(table.system(), Some(sys));
        // ... unless turned off.
        for key in ["no_system_account", "no_system", "no_sys_acc"] {
            let opts = ok(&format!("accounts: [A]\n{key}: true"));
            assert_eq!(opts.accounts.lookup("$SYS"), None, "{key}");
            assert_eq!(opts.accounts.system(), None, "{key}");
        }
        // A configured `$SYS` stays the system account.
        let opts = ok("accounts { $SYS: {} }\nno_system_account: true");
        assert_eq!(opts.accounts.system(), opts.accounts.lookup("$SYS"));
        // `system` is an alias; `system_account` wins over it.
        let opts = ok("accounts: [A, B]\nsystem: A");
        assert_eq!(opts.accounts.system(), opts.accounts.lookup("A"));
        let opts = ok("accounts: [A, B]\nsystem: A\nsystem_account: B");
        assert_eq!(opts.accounts.system(), opts.accounts.lookup("B"));
        // No accounts block: the default table.
        assert_eq!(ok("port: 4222").accounts, AccountTable::default());
    }

    #[test]
    fn account_names() {
        assert_eq!(
            err("accounts: [A, \"$G\"]"),
            "x.conf:1:14: \"$G\" is a Reserved Account"
        );
        assert_eq!(
            err("accounts: [A, B, A]"),
            "x.conf:1:17: Duplicate Account Entry: A"
        );
        assert_eq!(
            err("accounts {\n  \"$G\": {}\n}"),
            "x.conf:2:4: \"$G\" is a Reserved Account"
        );
        assert_eq!(
            err("accounts { A: 1 }"),
            "x.conf:1:11: Expected map entries for accounts"
        );
        assert_eq!(
            err("accounts: [A, 1]"),
            "x.conf:1:14: Expected an account name, got int64"
        );
    }

    #[test]
    fn system_account_must_exist() {
        assert_eq!(
            err("accounts: [A]\nsystem_account: B"),
            "x.conf:2:1: error resolving system account: account missing"
        );
        assert_eq!(
            err("system_account: \"$SYS\""),
            "x.conf:1:0: error resolving system account: account missing"
        );
        assert_eq!(
            err("accounts: [A]\nsystem_account: 1"),
            "x.conf:2:1: system account name must be a string"
        );
    }

    #[test]
    fn imports_need_a_matching_export() {
        let cases = [
            (
                "accounts {\n A: {}\n B: { imports: [\n {stream: {account: C, subject: x}}] }\n}",
                "x.conf:4:2: \"C\" account not defined for stream import",
            ),
            (
                "accounts {\n A: {}\n B: { imports: [\n {service: {account: C, subject: x}}] }\n}",
                "x.conf:4:2: \"C\" account not defined for service import",
            ),
            (
                "accounts {\n A: {}\n B: { imports: [\n {stream: {account: A, subject: x}}] }\n}",
                "x.conf:4:2: Error adding stream import \"x\": stream import not authorized",
            ),
            (
                // A private export that does not list the importer.
                "accounts {\n A: { exports: [{stream: \"x.>\", accounts: [A]}] }\n B: { imports: [\n {stream: {account: A, subject: x.y}}] }\n}",
                "x.conf:4:2: Error adding stream import \"x.y\": stream import not authorized",
            ),
            (
                // Wider than the export.
                "accounts {\n A: { exports: [{stream: \"x.*\"}] }\n B: { imports: [\n {stream: {account: A, subject: \"x.>\"}}] }\n}",
                "x.conf:4:2: Error adding stream import \"x.>\": stream import not authorized",
            ),
            (
                // A stream export does not authorize a service import.
                "accounts {\n A: { exports: [{stream: x}] }\n B: { imports: [\n {service: {account: A, subject: x}}] }\n}",
                "x.conf:4:2: Error adding service import \"x\": service import not authorized",
            ),
            (
                "accounts {\n A: { exports: [{stream: x, accounts: [C]}] }\n}",
                "x.conf:2:17: \"C\" account not defined for stream export",
            ),
            (
                "accounts {\n A: { exports: [{service: x, accounts: [C]}] }\n}",
                "x.conf:2:17: \"C\" account not defined for service export",
            ),
            (
                "accounts {\n A: { exports: [{stream: \"x.>\"}] }\n B: { imports: [\n {stream: {account: A, subject: x.y}}\n {stream: {account: A, subject: x.y}, prefix: p}] }\n}",
                "x.conf:5:2: Error adding stream import \"x.y\": stream import already exists",
            ),
            (
                "accounts {\n A: { exports: [{stream: \"x.>\"}] }\n B: { imports: [\n {stream: {account: A, subject: x.y}, prefix: \"p.*\"}] }\n}",
                "x.conf:4:2: Error adding stream import \"x.y\": stream import prefix can not contain wildcard tokens",
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(err(source), expected, "{source}");
        }
    }

    #[test]
    fn duplicate_service_import_subject() {
        let source = "accounts {\n A: { exports: [{service: x}, {service: y}] }\n B: { imports: [\n {service: {account: A, subject: x}, to: z}\n {service: {account: A, subject: y}, to: z}] }\n}";
        assert_eq!(
            err(source),
            "x.conf:5:2: Duplicate service import subject \"z\", previously used in import for account \"A\", subject \"x\""
        );
    }

    #[test]
    fn users_across_accounts() {
        assert_eq!(
            err("accounts {\n A: { users: [{user: u}] }\n B: { users: [{user: u}] }\n}"),
            "x.conf:3:16: Duplicate user \"u\" detected"
        );
        // Against the authorization block, whichever comes first.
        let expected = "x.conf:1:25: Duplicate user \"u\" detected";
        assert_eq!(
            err("accounts { A: { users: [{user: u}] } }\nauthorization { users: [{user: u}] }"),
            expected
        );
        assert_eq!(
            err("authorization { users: [{user: u}] }\naccounts { A: { users: [{user: u}] } }")
                .replace("2:26", "1:25"),
            expected
        );
        assert_eq!(
            err(&format!(
                "accounts {{\n A: {{ users: [{{nkey: {USER_KEY}}}] }}\n B: {{ users: [{{nkey: {USER_KEY}}}] }}\n}}"
            )),
            format!("x.conf:3:16: Duplicate nkey \"{USER_KEY}\" detected")
        );
        assert_eq!(
            err("authorization { user: x, password: y }\naccounts { A: { users: [{user: u}] } }"),
            "x.conf:2:17: Can not have a single user/pass and accounts"
        );
        assert_eq!(
            err("accounts { A: { users: [{user: u}] } }\nauthorization { token: t }"),
            "x.conf:1:16: Can not have a token and accounts"
        );
        // Accounts without users go with a token.
        ok("accounts: [A]\nauthorization { token: t }");
    }

    #[test]
    fn no_auth_user_in_an_account() {
        let opts = ok("accounts { A: { users: [{user: u}] } }\nno_auth_user: u");
        assert_eq!(opts.auth.no_auth_user.as_deref(), Some("u"));
        assert_eq!(
            opts.auth.users["u"].account,
            opts.accounts.lookup("A").unwrap()
        );
        assert!(!opts.auth.auth_required());
        assert_eq!(
            err("accounts { A: { users: [{user: u}] } }\nno_auth_user: v"),
            "no_auth_user: \"v\" not present as user in authorization block or account configuration"
        );
        assert_eq!(
            err("accounts: [A]\nno_auth_user: v"),
            "no_auth_user: \"v\" present, but users are not defined"
        );
    }

    #[test]
    fn exports() {
        let opts = ok("accounts { A: { exports: [\n {service: s1, response: single}\n {service: s2, response_type: chunked, response_threshold: \"1m\"}\n {service: s3}\n] } }");
        let kinds: Vec<ExportKind> = opts
            .accounts
            .get(AccountId(1))
            .unwrap()
            .exports
            .iter()
            .map(|e| e.kind.clone())
            .collect();
        assert_eq!(
            kinds,
            vec![
                ExportKind::Service {
                    response: ResponseType::Singleton,
                    threshold: DEFAULT_RESPONSE_THRESHOLD
                },
                ExportKind::Service {
                    response: ResponseType::Chunked,
                    threshold: Duration::from_secs(60)
                },
                ExportKind::Service {
                    response: ResponseType::Singleton,
                    threshold: DEFAULT_RESPONSE_THRESHOLD
                },
            ]
        );
        let cases = [
            ("accounts { A: { exports: [{stream: x, response: stream}] } }", "x.conf:1:38: Detected response directive on non-service"),
            ("accounts { A: { exports: [{stream: x, threshold: \"1s\"}] } }", "x.conf:1:38: Detected response directive on non-service"),
            ("accounts { A: { exports: [{service: x, response: many}] } }", "x.conf:1:39: Unknown response type: \"many\""),
            ("accounts { A: { exports: [{service: x, response: single, response_type: stream}] } }", "x.conf:1:57: Duplicate response type definition"),
            ("accounts { A: { exports: [{service: x, threshold: 5}] } }", "x.conf:1:39: Expected response threshold to be a parseable time duration, got int64"),
            ("accounts { A: { exports: [{service: x, threshold: \"5 s\"}] } }", "x.conf:1:39: Expected response threshold to be a parseable time duration, got \"5 s\""),
            ("accounts { A: { exports: [{service: x, threshold: \"1s\", response_time: \"2s\"}] } }", "x.conf:1:56: Duplicate response threshold detected"),
            ("accounts { A: { exports: [{stream: x, service: y}] } }", "x.conf:1:38: Detected service \"y\" but already saw a stream"),
            ("accounts { A: { exports: [{service: x, latency: lat}] } }", "x.conf:1:39: \"latency\" is not supported yet by percore (service latency tracking)"),
            ("accounts { A: { exports: [{stream: x, account_token_position: 2}] } }", "x.conf:1:38: \"account_token_position\" is not supported yet by percore"),
            ("accounts { A: { exports: [{accounts: [A]}] } }", "x.conf:1:26: export entry needs a \"stream\" or a \"service\" subject"),
            ("accounts { A: { exports: [{stream: \"a..b\"}] } }", "x.conf:1:26: Error adding stream export \"a..b\": invalid subject"),
            ("accounts { A: { exports: [{stream: x, foo: 1}] } }", "x.conf:1:38: unknown field \"foo\""),
            ("accounts { A: { exports: [x] } }", "x.conf:1:26: Export Items should be a map with type entry, got string"),
            ("accounts { A: { exports: {stream: x} } }", "x.conf:1:16: Exports should be an array, got map[string]interface {}"),
        ];
        for (source, expected) in cases {
            assert_eq!(err(source), expected, "{source}");
        }
    }

    #[test]
    fn import_forms() {
        let exporter = "A: { exports: [{stream: \"x.>\"}, {service: \"s.*\"}] },";
        // `to` on a stream: a mapping; equal to the subject: none.
        let opts = ok(&format!("accounts {{ {exporter} B: {{ imports: [{{stream: {{account: A, subject: \"x.*\"}}, to: \"y.$1\"}}] }} }}"));
        let b = opts.accounts.get(AccountId(2)).unwrap();
        assert_eq!(
            b.stream_imports[0].transform,
            Some(SubjectTransform::mapping("x.*", "y.$1").unwrap())
        );
        let opts = ok(&format!("accounts {{ {exporter} B: {{ imports: [{{service: {{account: A, subject: \"s.1\"}}}}] }} }}"));
        let b = opts.accounts.get(AccountId(2)).unwrap();
        assert_eq!(b.service_imports[0].local, "s.1");
        assert_eq!(b.service_imports[0].transform, None);
        let cases = [
            (format!("accounts {{ {exporter} B: {{ imports: [{{stream: {{account: A, subject: x.y}}, prefix: p, to: q}}] }} }}"), "Stream import can not have a 'prefix' and a 'to' property"),
            (format!("accounts {{ {exporter} B: {{ imports: [{{service: {{account: A, subject: s.1}}, prefix: p}}] }} }}"), "a service import takes 'to', not 'prefix'"),
            (format!("accounts {{ {exporter} B: {{ imports: [{{stream: {{account: A}}}}] }} }}"), "Expect an account name and a subject"),
            (format!("accounts {{ {exporter} B: {{ imports: [{{stream: A}}] }} }}"), "Stream entry should be an account map, got string"),
            (format!("accounts {{ {exporter} B: {{ imports: [{{service: {{account: A, subject: s.1}}, stream: {{account: A, subject: x.y}}}}] }} }}"), "Detected stream but already saw a service"),
            (format!("accounts {{ {exporter} B: {{ imports: [{{to: x}}] }} }}"), "import entry needs a \"stream\" or a \"service\""),
            (format!("accounts {{ {exporter} B: {{ imports: [{{stream: {{account: A, subject: x.y, acc: 1}}}}] }} }}"), "unknown field \"acc\""),
            (format!("accounts {{ {exporter} B: {{ imports: [{{stream: {{account: A, subject: \"x.*\"}}, to: \"y.$2\"}}] }} }}"), "Error adding stream import \"x.*\": failed to create mapping transform for stream import subject \"x.*\" to \"y.$2\":"),
        ];
        for (source, expected) in cases {
            let e = err(&source);
            assert!(
                e.starts_with("x.conf:1:") && e.contains(expected),
                "{source}: {e}"
            );
        }
    }

    #[test]
    fn account_block_keys() {
        let cases = [
            (
                "accounts { A: { jetstream: enabled } }",
                "x.conf:1:16: \"jetstream\" is not supported yet by percore (JetStream)",
            ),
            (
                "accounts { A: { mappings: { \"a.*\": \"b.*\" } } }",
                "x.conf:1:29: Error adding mapping for \"a.*\" to \"b.*\" : invalid subject",
            ),
            (
                "accounts { A: { maps: 5 } }",
                "x.conf:1:16: invalid value for \"maps\": expected a map, got an integer",
            ),
            (
                "accounts { A: { nkey: UABC } }",
                "x.conf:1:16: Not a valid public nkey for an account: \"UABC\"",
            ),
            (
                "accounts { A: { limits: { max_foo: 1 } } }",
                "x.conf:1:26: Unknown field \"max_foo\" parsing account limits",
            ),
            (
                "accounts { A: { limits: 1 } }",
                "x.conf:1:16: Expected account limits to be a map/struct, got 1",
            ),
            (
                "accounts { A: { limits: { max_conn: 3000000000 } } }",
                "x.conf:1:26: max_conn value is too big",
            ),
            (
                "accounts { A: { foo: 1 } }",
                "x.conf:1:16: unknown field \"foo\"",
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(err(source), expected, "{source}");
        }
        // JetStream turned off asks for nothing percore lacks.
        ok("accounts { A: { jetstream: disabled }, B: { jetstream: false } }");
        // Negative limits are no limit.
        let opts = ok("accounts { A: { limits: { max_connections: -1, max_subscriptions: 0 } } }");
        let limits = &opts.accounts.get(AccountId(1)).unwrap().limits;
        assert_eq!(
            (limits.max_connections, limits.max_subscriptions),
            (None, Some(0))
        );
    }

    #[test]
    fn reload_keeps_account_ids() {
        let running = ok("accounts { A: { users: [{user: a}] }, B: { users: [{user: b}] } }");
        // A is gone, C is new, B moves up in the file.
        let mut new = ok(
            "accounts { C: { users: [{user: c}] }, B: { users: [{user: b}] } }\nno_auth_user: b",
        );
        keep_account_ids(&mut new, &running.accounts);
        let b = running.accounts.lookup("B").unwrap();
        assert_eq!(new.accounts.lookup("B"), Some(b));
        assert_eq!(new.auth.users["b"].account, b);
        let c = new.accounts.lookup("C").unwrap();
        assert!(c.0 as usize >= running.accounts.id_bound());
        assert_eq!(new.auth.users["c"].account, c);
        assert_eq!(new.accounts.lookup("A"), None);
        assert_eq!(new.accounts.system(), running.accounts.system());
    }
}
