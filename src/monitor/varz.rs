//! `/varz`: server facts and totals, keys in nats-server 2.9.10's order
//! and with its JSON types (`nats-top` decodes into the Go struct; the
//! Prometheus exporter turns every numeric key present at start-up into a
//! gauge), then percore's per-shard figures at the end.

use std::collections::BTreeMap;

use serde::Serialize;

use super::format::{self, GoFloat};
use super::snapshot::{ClusterFacts, MonitorSnapshot, ShardSnapshot};
use crate::info::{ADVERTISED_VERSION, PROTOCOL_VERSION};

/// What INFO's `go` says; kept identical so tools see one server string.
pub const GO_FIELD: &str = concat!("percore-", env!("CARGO_PKG_VERSION"));

/// Rendered as `{}`: what nats-server prints for cluster, gateway, leaf,
/// mqtt, websocket and jetstream when they are not configured.
#[derive(Serialize)]
struct NotConfigured {}

/// nats-server's `ClusterOptsVarz`: `{}` when not clustered.
#[derive(Serialize, Default)]
struct ClusterVarz<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(rename = "addr", skip_serializing_if = "str::is_empty")]
    host: &'a str,
    #[serde(skip_serializing_if = "is_zero_port")]
    cluster_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_timeout: Option<GoFloat>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    urls: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_timeout: Option<GoFloat>,
    /// nats-server: required and verified alike when the block is there.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_verify: bool,
}

fn is_zero_port(port: &u16) -> bool {
    *port == 0
}

impl<'a> ClusterVarz<'a> {
    fn of(cluster: Option<&'a ClusterFacts>) -> ClusterVarz<'a> {
        match cluster {
            Some(c) => ClusterVarz {
                name: &c.name,
                host: &c.host,
                cluster_port: c.port,
                auth_timeout: Some(GoFloat(c.auth_timeout.as_secs_f64())),
                urls: &c.urls,
                tls_timeout: Some(GoFloat(c.tls_timeout.as_secs_f64())),
                tls_required: c.tls,
                tls_verify: c.tls,
            },
            None => ClusterVarz::default(),
        }
    }
}

#[derive(Serialize)]
struct ShardVarz {
    shard: usize,
    connections: usize,
    subscriptions: u64,
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
    slow_consumers: u64,
    ring_stalls: u64,
    ring_dropped: u64,
    /// Cluster routes this shard runs (all on the cluster shard, 0).
    routes: usize,
}

impl ShardVarz {
    fn of(shard: &ShardSnapshot) -> ShardVarz {
        ShardVarz {
            shard: shard.shard,
            connections: shard.open_connections as usize,
            subscriptions: shard.index.num_subscriptions,
            in_msgs: shard.in_msgs,
            in_bytes: shard.in_bytes,
            out_msgs: shard.out_msgs,
            out_bytes: shard.out_bytes,
            slow_consumers: shard.slow_consumers,
            ring_stalls: shard.ring_stalls,
            ring_dropped: shard.ring_dropped,
            routes: shard.routes.len(),
        }
    }
}

#[derive(Serialize)]
struct Varz<'a> {
    server_id: &'a str,
    server_name: &'a str,
    version: &'static str,
    proto: u8,
    go: &'static str,
    host: &'a str,
    port: u16,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    auth_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_verify: bool,
    /// The cluster's client URLs, as client INFO has them (left out while
    /// there are none, as on a lone clustered node).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    connect_urls: &'a [String],
    max_connections: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max_subscriptions: u64,
    ping_interval: u64,
    ping_max: u32,
    http_host: &'a str,
    http_port: u16,
    http_base_path: &'a str,
    https_port: u16,
    auth_timeout: GoFloat,
    max_control_line: u64,
    max_payload: u64,
    max_pending: u64,
    cluster: ClusterVarz<'a>,
    gateway: NotConfigured,
    leaf: NotConfigured,
    mqtt: NotConfigured,
    websocket: NotConfigured,
    jetstream: NotConfigured,
    tls_timeout: GoFloat,
    write_deadline: u64,
    start: String,
    now: String,
    uptime: String,
    mem: u64,
    cores: u64,
    gomaxprocs: u64,
    cpu: GoFloat,
    connections: u64,
    total_connections: u64,
    routes: u64,
    remotes: u64,
    leafnodes: u64,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    slow_consumers: u64,
    subscriptions: u64,
    http_req_stats: &'a BTreeMap<String, u64>,
    config_load_time: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    /// nats-server 2.9 always has a system account and prints it.
    system_account: &'static str,
    // percore's additions, after every nats-server key.
    ring_stalls: u64,
    ring_dropped: u64,
    shards: Vec<ShardVarz>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The `/varz` body. `mem` and `cpu` are taken from `snapshot.server`,
/// which the caller has filled in.
pub fn render(snapshot: &MonitorSnapshot, http_req_stats: &BTreeMap<String, u64>) -> String {
    let facts = &snapshot.server;
    let shards = &snapshot.shards;
    let sum = |field: fn(&ShardSnapshot) -> u64| shards.iter().map(field).sum::<u64>();
    let varz = Varz {
        server_id: &facts.server_id,
        server_name: &facts.server_name,
        version: ADVERTISED_VERSION,
        proto: PROTOCOL_VERSION,
        go: GO_FIELD,
        host: &facts.host,
        port: facts.port,
        auth_required: facts.auth_required,
        tls_required: facts.tls_required,
        tls_verify: facts.tls_verify,
        // Every shard has the same list; the first is as good as any.
        connect_urls: shards.first().map_or(&[][..], |s| &s.connect_urls[..]),
        max_connections: facts.max_connections,
        max_subscriptions: facts.max_subscriptions,
        ping_interval: format::duration_nanos(facts.ping_interval),
        ping_max: facts.ping_max,
        http_host: &facts.http_host,
        http_port: facts.http_port,
        http_base_path: &facts.http_base_path,
        https_port: facts.https_port,
        auth_timeout: GoFloat(facts.auth_timeout.as_secs_f64()),
        max_control_line: facts.max_control_line,
        max_payload: facts.max_payload,
        max_pending: facts.max_pending,
        cluster: ClusterVarz::of(facts.cluster.as_ref()),
        gateway: NotConfigured {},
        leaf: NotConfigured {},
        mqtt: NotConfigured {},
        websocket: NotConfigured {},
        jetstream: NotConfigured {},
        tls_timeout: GoFloat(facts.tls_timeout.as_secs_f64()),
        write_deadline: format::duration_nanos(facts.write_deadline),
        start: format::rfc3339_nano(facts.start),
        now: format::rfc3339_nano(snapshot.now),
        uptime: format::uptime(format::since(snapshot.now, facts.start)),
        mem: facts.mem,
        cores: facts.cores,
        gomaxprocs: facts.shards,
        cpu: GoFloat(facts.cpu),
        connections: sum(|s| s.open_connections),
        total_connections: facts.total_connections,
        routes: sum(|s| s.routes.len() as u64),
        remotes: sum(|s| s.routes.len() as u64),
        leafnodes: 0,
        in_msgs: sum(|s| s.in_msgs),
        out_msgs: sum(|s| s.out_msgs),
        in_bytes: sum(|s| s.in_bytes),
        out_bytes: sum(|s| s.out_bytes),
        slow_consumers: sum(|s| s.slow_consumers),
        subscriptions: sum(|s| s.index.num_subscriptions),
        http_req_stats,
        config_load_time: format::rfc3339_nano(facts.config_load_time),
        tags: &facts.tags,
        system_account: "$SYS",
        ring_stalls: sum(|s| s.ring_stalls),
        ring_dropped: sum(|s| s.ring_dropped),
        shards: shards.iter().map(ShardVarz::of).collect(),
    };
    super::to_json(&varz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::test_support::sample_snapshot;

    #[test]
    fn keys_in_nats_server_order_then_percore_additions() {
        let mut stats = BTreeMap::new();
        stats.insert("/varz".to_string(), 1);
        let body = render(&sample_snapshot(), &stats);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(value.get("shards").is_some());
        let order = [
            "server_id",
            "server_name",
            "version",
            "proto",
            "go",
            "host",
            "port",
            "max_connections",
            "ping_interval",
            "ping_max",
            "http_host",
            "http_port",
            "http_base_path",
            "https_port",
            "auth_timeout",
            "max_control_line",
            "max_payload",
            "max_pending",
            "cluster",
            "gateway",
            "leaf",
            "mqtt",
            "websocket",
            "jetstream",
            "tls_timeout",
            "write_deadline",
            "start",
            "now",
            "uptime",
            "mem",
            "cores",
            "gomaxprocs",
            "cpu",
            "connections",
            "total_connections",
            "routes",
            "remotes",
            "leafnodes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "slow_consumers",
            "subscriptions",
            "http_req_stats",
            "config_load_time",
            "system_account",
            "ring_stalls",
            "ring_dropped",
            "shards",
        ];
        let mut last = 0;
        for key in order {
            let at = body
                .find(&format!("\n  \"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing"));
            assert!(at > last || last == 0, "{key} out of order");
            last = at;
        }
        // Unlimited subscriptions: the key is left out, and so are the
        // client URLs of a server that is not clustered.
        assert!(!body.contains("max_subscriptions"));
        assert!(!body.contains("connect_urls"));
        assert!(body.contains("\n  \"cluster\": {},\n"));
        assert!(body.contains("\n  \"auth_timeout\": 2,\n"));
        assert_eq!(value["version"], "2.9.10");
        assert_eq!(value["ping_interval"], 120_000_000_000u64);
        assert_eq!(value["write_deadline"], 10_000_000_000u64);
        assert_eq!(value["connections"], 3);
        assert_eq!(value["in_msgs"], 11 + 22);
        assert_eq!(value["subscriptions"], 4);
        assert_eq!(value["ring_stalls"], 7);
        assert_eq!(value["http_req_stats"]["/varz"], 1);
        assert_eq!(value["shards"][1]["connections"], 1);
        assert_eq!(value["shards"][1]["ring_stalls"], 7);
        assert!(value["cpu"].is_number());
        assert!(value["uptime"].is_string());
    }
}
