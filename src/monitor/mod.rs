//! HTTP monitoring (`-m <port>`): nats-server's `/varz`, `/connz`, `/subsz`,
//! `/routez`, `/accountz`, `/accstatz` and `/healthz` (plus the empty `/gatewayz`,
//! `/leafz` and the `/` index), served from plain threads off the shards.
//!
//! Layout:
//! - [`snapshot`]: the data the shards hand over;
//! - [`shard_source`]: how it is asked of the shards (admin channels);
//! - `server`: listener, accept thread, one thread per connection;
//! - `http`: request parsing with limits, query decoding, response writing;
//! - `routes`: base path, endpoint table, `http_req_stats`, JSONP;
//! - `varz`, `connz`, `subsz`, `accountz`, `accstatz`, `unclustered`: one
//!   module per body;
//! - `metrics`: `/metrics`, the Prometheus text exposition;
//! - [`system_api`]: the same endpoints as the system account's services;
//! - `params`: query parameters with nats-server's 400 texts;
//! - `format`: Go's time, duration and float forms;
//! - `process`: RSS and CPU of this process from `/proc`.

mod accountz;
mod accstatz;
mod connz;
pub mod format;
/// Public for the fuzz targets (`tests/fuzz`).
pub mod http;
mod metrics;
mod params;
mod process;
mod routes;
mod routez;
mod server;
pub mod shard_source;
pub mod statsz;
pub mod system_api;
pub use percore_core::snapshot;
mod subsz;
mod unclustered;
mod varz;

pub use server::{MonitorServer, TlsSource};

use snapshot::{MonitorSnapshot, SnapshotRequest};

/// Where the monitor gets its data; implemented by the server glue, which
/// asks every shard.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Asks every shard for its part; None if the shards did not answer in time.
    fn snapshot(&self, request: SnapshotRequest) -> Option<MonitorSnapshot>;
}

/// Pretty JSON with two-space indentation, as nats-server's
/// `json.MarshalIndent(v, "", "  ")`, with its escapes (`<`, `>`, `&`
/// as `\u003c`, ...: `crate::go_json`).
fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Our bodies are plain structs of strings and numbers with string map
    // keys: serialising them cannot fail, but an empty object is a safer
    // answer than a panic if that ever changes.
    let json = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_string());
    crate::go_json::go_json_string(json)
}

#[cfg(test)]
mod test_support {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::snapshot::*;

    fn at(secs: u64) -> SystemTime {
        // 2026-11-23T00:33:11Z plus `secs`.
        UNIX_EPOCH + Duration::from_secs(1_795_393_991 + secs)
    }

    fn sub(
        subject: &str,
        queue: Option<&str>,
        sid: &str,
        max: Option<u64>,
        cid: u64,
    ) -> SubscriptionSnapshot {
        SubscriptionSnapshot {
            subject: subject.to_string(),
            queue: queue.map(str::to_string),
            sid: sid.to_string(),
            msgs: 1,
            max,
            cid,
        }
    }

    fn connection(
        cid: u64,
        start: u64,
        last: u64,
        out_msgs: u64,
        in_msgs: u64,
    ) -> ConnectionSnapshot {
        ConnectionSnapshot {
            cid,
            ip: "127.0.0.1".to_string(),
            port: 40_000 + cid as u16,
            start: at(start),
            last_activity: at(last),
            rtt: None,
            pending_bytes: 0,
            in_msgs,
            in_bytes: in_msgs * 10,
            out_msgs,
            out_bytes: out_msgs * 10,
            subscriptions: 0,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            authorized_user: None,
            account: "$G".to_string(),
            jwt: None,
            tls_version: None,
            tls_cipher_suite: None,
            tls_peer_certs: Vec::new(),
            subscription_list: Vec::new(),
            stop: None,
            reason: None,
        }
    }

    /// Two shards, three open connections: cid 1 and 2 on shard 0, cid 3 on
    /// shard 1, and cid 4 closed on shard 1. Started at 1 s, 3 s, 2 s; last active at 10 s, 30 s, 20 s;
    /// out_msgs 5, 9, 5; in_msgs 9, 1, 3; subscriptions 2, 0, 2.
    pub fn sample_snapshot() -> MonitorSnapshot {
        let mut first = connection(1, 1, 10, 5, 9);
        first.rtt = Some(Duration::from_nanos(2_576_779));
        first.name = "alpha".to_string();
        first.lang = "python".to_string();
        first.version = "1.2.3".to_string();
        first.subscriptions = 2;
        first.subscription_list = vec![
            sub("foo", None, "1", None, 1),
            sub("bar", Some("grp"), "2", Some(5), 1),
        ];
        let second = connection(2, 3, 30, 9, 1);
        let mut third = connection(3, 2, 20, 5, 3);
        third.subscriptions = 2;
        third.subscription_list = vec![
            sub("baz.*", None, "1", None, 3),
            sub("qux", None, "2", Some(0), 3),
        ];
        // Closed at 50 s after 40 s up, idle for its last 5 s.
        let mut gone = connection(4, 10, 45, 1, 2);
        gone.stop = Some(at(50));
        gone.reason = Some("Slow Consumer (Pending Bytes)".to_string());
        gone.subscriptions = 1;
        gone.subscription_list = vec![sub("gone.>", None, "9", None, 4)];
        MonitorSnapshot {
            now: at(100),
            server: ServerFacts {
                server_id: "NTESTSERVERID".to_string(),
                server_name: "test".to_string(),
                host: "127.0.0.1".to_string(),
                port: 4222,
                http_host: "127.0.0.1".to_string(),
                http_port: 8222,
                https_port: 0,
                http_base_path: String::new(),
                max_connections: 65_536,
                max_subscriptions: 0,
                ping_interval: Duration::from_secs(120),
                ping_max: 2,
                max_control_line: 4096,
                max_payload: 1_048_576,
                max_pending: 67_108_864,
                auth_required: false,
                auth_timeout: Duration::from_secs(2),
                tls_required: false,
                tls_verify: false,
                tls_timeout: Duration::from_secs(2),
                write_deadline: Duration::from_secs(10),
                start: at(0),
                config_load_time: at(0),
                tags: Vec::new(),
                cores: 2,
                shards: 2,
                total_connections: 5,
                mem: 0,
                cpu: 0.0,
                cluster: None,
            },
            shards: vec![
                ShardSnapshot {
                    shard: 0,
                    in_msgs: 11,
                    in_bytes: 110,
                    out_msgs: 14,
                    out_bytes: 140,
                    slow_consumers: 1,
                    ring_stalls: 0,
                    ring_dropped: 0,
                    index: IndexStats {
                        num_subscriptions: 3,
                        num_cache: 2,
                        num_inserts: 5,
                        num_removes: 2,
                        num_matches: 6,
                        cache_hits: 2,
                    },
                    open_connections: 2,
                    connections: vec![first, second],
                    closed: Vec::new(),
                    ..ShardSnapshot::default()
                },
                ShardSnapshot {
                    shard: 1,
                    in_msgs: 22,
                    in_bytes: 220,
                    out_msgs: 5,
                    out_bytes: 50,
                    slow_consumers: 0,
                    ring_stalls: 7,
                    ring_dropped: 1,
                    index: IndexStats {
                        num_subscriptions: 1,
                        num_cache: 1,
                        num_inserts: 1,
                        num_removes: 0,
                        num_matches: 2,
                        cache_hits: 0,
                    },
                    open_connections: 1,
                    connections: vec![third],
                    closed: vec![gone],
                    ring_batches_sent: 4,
                    ring_batches_received: 3,
                    parks: 9,
                    wakeups: 8,
                    delivery_latency: {
                        let mut latency =
                            percore_core::delivery_latency::LatencyHistogram::default();
                        latency.record(std::time::Duration::from_micros(30));
                        latency.record(std::time::Duration::from_millis(3));
                        latency
                    },
                    ..ShardSnapshot::default()
                },
            ],
        }
    }
}
