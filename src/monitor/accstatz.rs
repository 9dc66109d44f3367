//! `/accstatz` (`unused=1`): per account, its connections and traffic on
//! this server, in nats-server 2.9.10's shape (`prometheus-nats-exporter
//! -accstatz` polls it). Without `unused` only the accounts with an open
//! connection are listed, as nats-server does.

use serde::Serialize;

use super::format;
use super::snapshot::MonitorSnapshot;
use super::statsz::{account_stat, AccountStat};

#[derive(Serialize)]
struct AccountStatz<'a> {
    server_id: &'a str,
    now: String,
    account_statz: Vec<AccountStat>,
}

/// The body; `snapshot` must list the open connections.
pub fn render(snapshot: &MonitorSnapshot, unused: bool) -> String {
    let table = snapshot
        .shards
        .first()
        .map(|shard| shard.accounts.clone())
        .unwrap_or_default();
    let account_statz = table
        .iter()
        .filter_map(|account| match account_stat(snapshot, &account.name) {
            Some(stat) => Some(stat),
            None if unused => Some(AccountStat::idle(&account.name)),
            None => None,
        })
        .collect();
    super::to_json(&AccountStatz {
        server_id: &snapshot.server.server_id,
        now: format::rfc3339_nano(snapshot.now),
        account_statz,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::test_support::sample_snapshot;

    #[test]
    fn accounts_with_connections_unless_unused() {
        let snapshot = sample_snapshot();
        let json: serde_json::Value = serde_json::from_str(&render(&snapshot, false)).unwrap();
        let listed = json["account_statz"].as_array().unwrap();
        assert!(
            listed.iter().all(|a| a["conns"].as_u64() > Some(0)),
            "{json}"
        );
        let all: serde_json::Value = serde_json::from_str(&render(&snapshot, true)).unwrap();
        let names: Vec<&str> = all["account_statz"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["acc"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"$SYS"), "{all}");
        // nats-server's AccountStat key order.
        let body = render(&snapshot, true);
        let mut last = 0;
        for key in [
            "acc",
            "conns",
            "leafnodes",
            "total_conns",
            "sent",
            "received",
            "slow_consumers",
        ] {
            let at = body.find(&format!("\"{key}\":")).expect(key);
            assert!(at > last, "{key} out of order in {body}");
            last = at;
        }
    }
}
