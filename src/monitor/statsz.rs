//! The system account's statistics bodies, from the monitor's snapshot:
//! nats-server's `ServerStats` (the `"statsz"` of `$SYS.REQ.SERVER.PING`)
//! and `AccountStat` (the answer to `$SYS.REQ.ACCOUNT.<account>.CONNS`).
//! Compact JSON, keys in nats-server 2.9.10's order.

use std::collections::BTreeSet;

use serde::Serialize;

use super::format::{self, GoFloat};
use super::snapshot::MonitorSnapshot;

#[derive(Serialize)]
struct ServerStats {
    start: String,
    mem: u64,
    cores: u64,
    cpu: GoFloat,
    connections: u64,
    total_connections: u64,
    active_accounts: usize,
    subscriptions: u64,
    sent: DataStats,
    received: DataStats,
    slow_consumers: u64,
}

/// `ServerStats` of `snapshot` (`mem` and `cpu` filled in by the caller).
/// `active_accounts` counts the accounts with an open connection.
pub fn server_stats(snapshot: &MonitorSnapshot) -> String {
    let shards = &snapshot.shards;
    let sum = |f: fn(&super::snapshot::ShardSnapshot) -> u64| shards.iter().map(f).sum::<u64>();
    let accounts: BTreeSet<&str> = shards
        .iter()
        .flat_map(|s| s.connections.iter())
        .map(|c| c.account.as_str())
        .collect();
    let facts = &snapshot.server;
    let stats = ServerStats {
        start: format::rfc3339_nano(facts.start),
        mem: facts.mem,
        cores: facts.cores,
        cpu: GoFloat(facts.cpu),
        connections: sum(|s| s.open_connections),
        total_connections: facts.total_connections,
        active_accounts: accounts.len(),
        subscriptions: sum(|s| s.index.num_subscriptions),
        sent: DataStats {
            msgs: sum(|s| s.out_msgs),
            bytes: sum(|s| s.out_bytes),
        },
        received: DataStats {
            msgs: sum(|s| s.in_msgs),
            bytes: sum(|s| s.in_bytes),
        },
        slow_consumers: sum(|s| s.slow_consumers),
    };
    serde_json::to_string(&stats).unwrap_or_else(|_| "{}".to_string())
}

/// One account's open connections and their traffic, as nats-server's
/// `AccountStat` counts them (received: what its clients published).
#[derive(Serialize, Clone, PartialEq, Eq, Debug)]
pub struct AccountStat {
    pub acc: String,
    pub conns: u64,
    pub leafnodes: u64,
    pub total_conns: u64,
    pub sent: DataStats,
    pub received: DataStats,
    pub slow_consumers: u64,
}

/// nats-server's `DataStats`.
#[derive(Serialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct DataStats {
    pub msgs: u64,
    pub bytes: u64,
}

impl AccountStat {
    /// An account with no connection and no traffic here.
    pub fn idle(account: &str) -> AccountStat {
        AccountStat {
            acc: account.to_string(),
            conns: 0,
            leafnodes: 0,
            total_conns: 0,
            sent: DataStats::default(),
            received: DataStats::default(),
            slow_consumers: 0,
        }
    }
}

/// `account`'s statistics on this server; None when it has no open
/// connection here (nats-server does not answer then).
pub fn account_stat(snapshot: &MonitorSnapshot, account: &str) -> Option<AccountStat> {
    let mut stat = AccountStat::idle(account);
    for conn in snapshot
        .shards
        .iter()
        .flat_map(|s| s.connections.iter())
        .filter(|c| c.account == account)
    {
        stat.conns += 1;
        stat.received.msgs += conn.in_msgs;
        stat.received.bytes += conn.in_bytes;
        stat.sent.msgs += conn.out_msgs;
        stat.sent.bytes += conn.out_bytes;
    }
    stat.total_conns = stat.conns;
    (stat.conns > 0).then_some(stat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::test_support::sample_snapshot;

    #[test]
    fn server_stats_keys_in_nats_server_order() {
        let body = server_stats(&sample_snapshot());
        let keys: Vec<&str> = [
            "start",
            "mem",
            "cores",
            "cpu",
            "connections",
            "total_connections",
            "active_accounts",
            "subscriptions",
            "sent",
            "received",
            "slow_consumers",
        ]
        .to_vec();
        let mut at = 0;
        for key in keys {
            let found = body[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing or out of order in {body}"));
            at += found;
        }
        assert!(body.contains("\"connections\":3,"), "{body}");
        assert!(
            body.contains("\"received\":{\"msgs\":33,\"bytes\":330}"),
            "{body}"
        );
    }

    #[test]
    fn account_stat_counts_open_connections() {
        let snapshot = sample_snapshot();
        let stat = account_stat(&snapshot, "$G").unwrap();
        assert_eq!(stat.conns, 3);
        assert_eq!(stat.received.msgs, 13);
        assert_eq!(account_stat(&snapshot, "OTHER"), None);
    }
}
