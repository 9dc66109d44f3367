//! `/accountz`: the accounts, and with `acc=<name>` one account's details
//! (connections, subscriptions, mappings, exports, imports, index
//! statistics) in
//! nats-server 2.9's shape. Counts are summed over the shards; the account
//! table is the one the shards work with.

use std::collections::BTreeMap;

use serde::Serialize;

use super::format;
use super::snapshot::MonitorSnapshot;
use super::subsz::{sum_stats, Stats};
use percore_core::account::{Account, AccountTable, ExportKind, SubjectTransform};

#[derive(Serialize)]
struct Accountz<'a> {
    server_id: &'a str,
    now: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accounts: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_detail: Option<AccountDetail<'a>>,
}

#[derive(Serialize)]
struct AccountDetail<'a> {
    account_name: &'a str,
    update_time: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_system: bool,
    expired: bool,
    complete: bool,
    jetstream_enabled: bool,
    leafnode_connections: u64,
    client_connections: u64,
    subscriptions: u64,
    /// By source (a JSON object, keys sorted as Go prints a map).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    mappings: BTreeMap<&'a str, Vec<MappingInfo<'a>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<ExportInfo<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<ImportInfo<'a>>,
    sublist_stats: Stats,
}

/// nats-server's `MapDest`, with the weights as the mapping uses them
/// (running totals, the remainder's destination included).
#[derive(Serialize)]
struct MappingInfo<'a> {
    subject: &'a str,
    weight: u8,
    #[serde(skip_serializing_if = "str::is_empty")]
    cluster: &'a str,
}

#[derive(Serialize)]
struct ExportInfo<'a> {
    subject: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    approved_accounts: Vec<&'a str>,
}

#[derive(Serialize)]
struct ImportInfo<'a> {
    subject: &'a str,
    account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_subject: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    invalid: bool,
    share: bool,
    tracking: bool,
}

/// The body, or nats-server's 400 text for an unknown account.
pub fn render(snapshot: &MonitorSnapshot, acc: Option<&str>) -> Result<String, String> {
    let table = snapshot
        .shards
        .first()
        .map(|shard| shard.accounts.clone())
        .unwrap_or_default();
    let system = table.system().map(|id| table.name(id));
    let mut body = Accountz {
        server_id: &snapshot.server.server_id,
        now: format::rfc3339_nano(snapshot.now),
        system_account: system,
        accounts: None,
        account_detail: None,
    };
    match acc.filter(|name| !name.is_empty()) {
        None => body.accounts = Some(table.iter().map(|a| a.name.as_str()).collect()),
        Some(name) => {
            let Some(account) = table.lookup(name).and_then(|id| table.get(id)) else {
                return Err(format!("Account {name} does not exist"));
            };
            body.account_detail = Some(detail(snapshot, &table, account));
        }
    }
    Ok(super::to_json(&body))
}

fn detail<'a>(
    snapshot: &MonitorSnapshot,
    table: &'a AccountTable,
    account: &'a Account,
) -> AccountDetail<'a> {
    let slot = account.id.0 as usize;
    let per_shard = snapshot
        .shards
        .iter()
        .filter_map(|shard| shard.account_stats.get(slot));
    let (connections, subscriptions) = per_shard.clone().fold((0, 0), |(c, s), stats| {
        (c + stats.connections, s + stats.subscriptions)
    });
    AccountDetail {
        account_name: &account.name,
        update_time: format::rfc3339_nano(snapshot.server.config_load_time),
        is_system: table.system() == Some(account.id),
        expired: false,
        complete: true,
        jetstream_enabled: false,
        leafnode_connections: 0,
        client_connections: connections,
        subscriptions,
        mappings: mappings(account),
        exports: account
            .exports
            .iter()
            .map(|export| ExportInfo {
                subject: &export.subject,
                kind: if export.is_service() {
                    "service"
                } else {
                    "stream"
                },
                response_type: match export.kind {
                    ExportKind::Service { response, .. } => Some(response.name()),
                    ExportKind::Stream => None,
                },
                approved_accounts: export
                    .accounts
                    .iter()
                    .flatten()
                    .map(|&id| table.name(id))
                    .collect(),
            })
            .collect(),
        imports: imports(table, account),
        sublist_stats: sum_stats(per_shard.map(|stats| &stats.index)),
    }
}

fn mappings(account: &Account) -> BTreeMap<&str, Vec<MappingInfo<'_>>> {
    account
        .mappings
        .iter()
        .map(|m| {
            let plain = m.destinations.iter().map(|d| (d, ""));
            let clustered = m
                .by_cluster
                .iter()
                .flat_map(|(name, list)| list.iter().map(move |d| (d, name.as_str())));
            let list = plain
                .chain(clustered)
                .map(|(d, cluster)| MappingInfo {
                    subject: &d.subject,
                    weight: d.weight,
                    cluster,
                })
                .collect();
            (m.source.as_str(), list)
        })
        .collect()
}

/// Streams name the exporter's subject and the local one it becomes;
/// services the local subject and the exporter's it goes `to`.
fn imports<'a>(table: &'a AccountTable, account: &'a Account) -> Vec<ImportInfo<'a>> {
    let streams = account.stream_imports.iter().map(|import| ImportInfo {
        subject: &import.subject,
        account: table.name(import.exporter),
        to: None,
        local_subject: import
            .transform
            .as_ref()
            .map(|t| renamed(t, &import.subject)),
        kind: "stream",
        invalid: false,
        share: false,
        tracking: false,
    });
    let services = account.service_imports.iter().map(|import| ImportInfo {
        subject: &import.local,
        account: table.name(import.exporter),
        to: Some(&import.subject),
        local_subject: None,
        kind: "service",
        invalid: false,
        share: false,
        tracking: false,
    });
    streams.chain(services).collect()
}

/// The pattern a stream import's subjects take in the importer.
fn renamed(transform: &SubjectTransform, subject: &str) -> String {
    let mut out = Vec::new();
    transform.apply(subject.as_bytes(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::test_support::sample_snapshot;
    use percore_core::account::{Export, StreamImport};
    use percore_core::ids::AccountId;
    use percore_core::snapshot::AccountStats;
    use std::sync::Arc;

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn without_accounts_it_lists_the_global_and_system_accounts() {
        let body = json(&render(&sample_snapshot(), None).unwrap());
        assert_eq!(body["accounts"], serde_json::json!(["$G", "$SYS"]));
        assert_eq!(body["system_account"], "$SYS");
        assert!(body.get("account_detail").is_none());
    }

    #[test]
    fn one_account_in_detail_summed_over_shards() {
        let mut a = Account::new(AccountId(0), "A");
        a.exports.push(Export {
            subject: "foo.>".into(),
            kind: ExportKind::Stream,
            accounts: None,
        });
        let mut b = Account::new(AccountId(0), "B");
        b.stream_imports.push(StreamImport {
            exporter: AccountId(1),
            subject: "foo.>".into(),
            transform: Some(SubjectTransform::prefix("imp")),
        });
        let table = Arc::new(AccountTable::build(vec![a, b], Some("$SYS")));
        let mut snapshot = sample_snapshot();
        for shard in &mut snapshot.shards {
            shard.accounts = table.clone();
            shard.account_stats = vec![AccountStats::default(); 4];
            shard.account_stats[2].connections = 1;
            shard.account_stats[2].subscriptions = 2;
        }
        let body = json(&render(&snapshot, Some("B")).unwrap());
        let detail = &body["account_detail"];
        assert_eq!(detail["account_name"], "B");
        assert_eq!(detail["client_connections"], 2);
        assert_eq!(detail["subscriptions"], 4);
        assert_eq!(detail["imports"][0]["subject"], "foo.>");
        assert_eq!(detail["imports"][0]["account"], "A");
        assert_eq!(detail["imports"][0]["local_subject"], "imp.foo.>");
        assert_eq!(detail["imports"][0]["type"], "stream");
        assert!(detail.get("exports").is_none());
        assert!(detail.get("is_system").is_none());
        let a = json(&render(&snapshot, Some("A")).unwrap());
        assert_eq!(a["account_detail"]["exports"][0]["type"], "stream");
        let sys = json(&render(&snapshot, Some("$SYS")).unwrap());
        assert_eq!(sys["account_detail"]["is_system"], true);
        assert_eq!(
            render(&snapshot, Some("Z")),
            Err("Account Z does not exist".to_string())
        );
    }
}
