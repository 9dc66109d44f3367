//! `/metrics`: the Prometheus text exposition (format 0.0.4) of what
//! monitoring knows, for a scraper without an exporter in between.
//!
//! - Every numeric `/varz` field as `gnatsd_varz_<field>` (nested objects
//!   joined with `_`), labelled `server_id`: the names
//!   prometheus-nats-exporter gives them, so its dashboards carry over. They
//!   are taken from the `/varz` body itself, so the two never disagree.
//! - What nats-server cannot give, per shard (`percore_shard_*`, label
//!   `shard`): messages and bytes in and out, slow consumers, ring batches
//!   sent and received, ring stalls, parks and wake-ups of the shard's
//!   executor, connections and subscriptions; and per account
//!   (`percore_account_*`, label `account`): connections and
//!   subscriptions.
//! - The delivery latency, ingress to socket write, as Prometheus
//!   histograms: per shard (`percore_shard_delivery_latency_seconds`) and
//!   summed over the shards (`percore_delivery_latency_seconds`). One
//!   sample per unit of work that delivered, not per message; the exact
//!   definition is in [`percore_core::delivery_latency`].
//!
//! The shards keep plain per-shard counters (no shared atomics on the
//! message path); sums are made here, on request.

use std::collections::BTreeMap;
use std::fmt::Write;

use percore_core::delivery_latency::LatencyHistogram;
use serde_json::Value;

use super::snapshot::MonitorSnapshot;
use super::varz;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn render(snapshot: &MonitorSnapshot, http_req_stats: &BTreeMap<String, u64>) -> String {
    let mut out = String::new();
    let server_id = escape(&snapshot.server.server_id);
    if let Ok(Value::Object(fields)) =
        serde_json::from_str::<Value>(&varz::render(snapshot, http_req_stats))
    {
        let mut gauges = Vec::new();
        flatten("gnatsd_varz", &Value::Object(fields), &mut gauges);
        for (name, value) in gauges {
            let field = name.trim_start_matches("gnatsd_varz_");
            let _ = writeln!(out, "# HELP {name} /varz {field}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name}{{server_id=\"{server_id}\"}} {value}");
        }
    }
    type ShardRead = fn(&super::snapshot::ShardSnapshot) -> u64;
    let shard_counters: [(&str, &str, &str, ShardRead); 12] = [
        (
            "percore_shard_in_msgs_total",
            "counter",
            "Messages published on the shard",
            |s| s.in_msgs,
        ),
        (
            "percore_shard_in_bytes_total",
            "counter",
            "Payload bytes published on the shard",
            |s| s.in_bytes,
        ),
        (
            "percore_shard_out_msgs_total",
            "counter",
            "Messages the shard delivered",
            |s| s.out_msgs,
        ),
        (
            "percore_shard_out_bytes_total",
            "counter",
            "Payload bytes the shard delivered",
            |s| s.out_bytes,
        ),
        (
            "percore_shard_slow_consumers_total",
            "counter",
            "Connections the shard cut as slow consumers",
            |s| s.slow_consumers,
        ),
        (
            "percore_shard_ring_stalls_total",
            "counter",
            "Batches that waited for a full ring to a peer shard",
            |s| s.ring_stalls,
        ),
        (
            "percore_shard_ring_batches_sent_total",
            "counter",
            "Batches the shard placed into its rings to peer shards",
            |s| s.ring_batches_sent,
        ),
        (
            "percore_shard_ring_batches_received_total",
            "counter",
            "Batches the shard took from peer shards' rings",
            |s| s.ring_batches_received,
        ),
        (
            "percore_shard_parks_total",
            "counter",
            "Times the shard's executor went to sleep waiting for work",
            |s| s.parks,
        ),
        (
            "percore_shard_wakeups_total",
            "counter",
            "Times another thread (a peer shard, the blocking thread) woke the shard's executor",
            |s| s.wakeups,
        ),
        (
            "percore_shard_connections",
            "gauge",
            "Open client connections on the shard",
            |s| s.open_connections,
        ),
        (
            "percore_shard_subscriptions",
            "gauge",
            "Subscriptions on the shard",
            |s| s.index.num_subscriptions,
        ),
    ];
    for (name, kind, help, read) in shard_counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for shard in &snapshot.shards {
            let _ = writeln!(
                out,
                "{name}{{server_id=\"{server_id}\",shard=\"{}\"}} {}",
                shard.shard,
                read(shard)
            );
        }
    }
    render_latency(&mut out, snapshot, &server_id);
    if let Some(first) = snapshot.shards.first() {
        let table = &first.accounts;
        for (name, help, read) in [
            (
                "percore_account_connections",
                "Client connections of the account",
                account_connections as AccountRead,
            ),
            (
                "percore_account_subscriptions",
                "Subscriptions of the account",
                account_subscriptions,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for account in table.iter() {
                let slot = account.id.0 as usize;
                let value: u64 = snapshot
                    .shards
                    .iter()
                    .filter_map(|shard| shard.account_stats.get(slot))
                    .map(read)
                    .sum();
                let _ = writeln!(
                    out,
                    "{name}{{server_id=\"{server_id}\",account=\"{}\"}} {value}",
                    escape(&account.name)
                );
            }
        }
    }
    out
}

/// The delivery latency histograms: one series set per shard, then their
/// sum (see [`percore_core::delivery_latency`] for what a sample is).
fn render_latency(out: &mut String, snapshot: &MonitorSnapshot, server_id: &str) {
    let name = "percore_shard_delivery_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Ingress (the socket read of a publish) to the end of the socket writes delivering it on the shard, one sample per unit of work that delivered"
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut total = LatencyHistogram::default();
    for shard in &snapshot.shards {
        let labels = format!("server_id=\"{server_id}\",shard=\"{}\"", shard.shard);
        write_histogram(out, name, &labels, &shard.delivery_latency);
        total.merge(&shard.delivery_latency);
    }
    let name = "percore_delivery_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} percore_shard_delivery_latency_seconds summed over the shards"
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    write_histogram(out, name, &format!("server_id=\"{server_id}\""), &total);
}

/// One histogram's `_bucket` (cumulative, `+Inf` last), `_sum` and
/// `_count` lines, in seconds.
fn write_histogram(out: &mut String, name: &str, labels: &str, histogram: &LatencyHistogram) {
    for (bound, below) in histogram.cumulative() {
        let le = bound as f64 / 1e9;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {below}");
    }
    let count = histogram.count();
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "{name}_sum{{{labels}}} {}",
        histogram.sum().as_secs_f64()
    );
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

type AccountRead = fn(&percore_core::snapshot::AccountStats) -> u64;

fn account_connections(stats: &percore_core::snapshot::AccountStats) -> u64 {
    stats.connections
}

fn account_subscriptions(stats: &percore_core::snapshot::AccountStats) -> u64 {
    stats.subscriptions
}

/// Numeric leaves of `value` as (name, value), objects joined with `_`,
/// arrays and strings left out (as the exporter does). Booleans are left
/// out too: the exporter skips them.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                flatten(&format!("{prefix}_{}", sanitize(key)), value, out);
            }
        }
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        _ => {}
    }
}

/// A JSON key as a metric name part: `[a-zA-Z0-9_]`, anything else `_`.
fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A label value in the text format: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::test_support::sample_snapshot;

    #[test]
    fn varz_numbers_and_shard_counters_in_the_text_format() {
        let text = render(&sample_snapshot(), &BTreeMap::new());
        assert!(text.contains("# TYPE gnatsd_varz_in_msgs gauge\n"));
        assert!(text.contains("gnatsd_varz_in_msgs{server_id=\"NTESTSERVERID\"} 33\n"));
        assert!(text.contains("percore_shard_in_msgs_total{server_id="));
        assert!(text.contains(",shard=\"1\"} 22\n"));
        assert!(text.contains("percore_account_connections{"));
        assert!(
            text.contains("percore_shard_parks_total{server_id=\"NTESTSERVERID\",shard=\"1\"} 9\n")
        );
        assert!(text
            .contains("percore_shard_wakeups_total{server_id=\"NTESTSERVERID\",shard=\"1\"} 8\n"));
        assert!(text.contains(
            "percore_shard_ring_batches_sent_total{server_id=\"NTESTSERVERID\",shard=\"1\"} 4\n"
        ));
        assert!(text.contains("percore_shard_ring_batches_received_total{server_id=\"NTESTSERVERID\",shard=\"1\"} 3\n"));
        // The histogram: cumulative buckets in seconds, +Inf, sum, count;
        // shard 0 recorded nothing, the total is shard 1's.
        assert!(text.contains("# TYPE percore_shard_delivery_latency_seconds histogram\n"));
        let series =
            "percore_shard_delivery_latency_seconds_bucket{server_id=\"NTESTSERVERID\",shard=\"1\"";
        assert!(text.contains(&format!("{series},le=\"0.00002\"}} 0\n")));
        assert!(text.contains(&format!("{series},le=\"0.00005\"}} 1\n")));
        assert!(text.contains(&format!("{series},le=\"0.002\"}} 1\n")));
        assert!(text.contains(&format!("{series},le=\"0.005\"}} 2\n")));
        assert!(text.contains(&format!("{series},le=\"1\"}} 2\n")));
        assert!(text.contains(&format!("{series},le=\"+Inf\"}} 2\n")));
        assert!(text.contains("percore_shard_delivery_latency_seconds_sum{server_id=\"NTESTSERVERID\",shard=\"1\"} 0.00303\n"));
        assert!(text.contains("percore_shard_delivery_latency_seconds_count{server_id=\"NTESTSERVERID\",shard=\"0\"} 0\n"));
        assert!(text
            .contains("percore_delivery_latency_seconds_count{server_id=\"NTESTSERVERID\"} 2\n"));
        assert!(text.contains("percore_delivery_latency_seconds_bucket{server_id=\"NTESTSERVERID\",le=\"0.000001\"} 0\n"));
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# TYPE ") || line.starts_with("# HELP "),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let name = series.split('{').next().unwrap_or_default();
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{line}"
            );
        }
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
