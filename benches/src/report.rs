//! Turning an [`Outcome`] into what people and scripts read: the `nats bench`
//! style text report and the JSON summary (`--json-out`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::extra_conns::{IdleReport, SlowSubReport};
use crate::hostinfo::HostInfo;
use crate::latency::Percentiles;
use crate::scenario::{Config, Mode, Outcome};
use crate::stats::{commas, ClientStats, GroupStats};

/// The JSON summary. `histcmp` reads `latency_us` from it; `compare-report`
/// reads the throughput fields. Latency fields are microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub tool: String,
    pub scenario: String,
    pub config: serde_json::Value,
    pub started_unix_s: f64,
    pub server: ServerFacts,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub slow_consumers: u64,
    pub disconnects: u64,
    pub timed_out: bool,
    pub ok: bool,
    /// Publishing rate actually achieved (msgs/s), to compare with --rate.
    pub achieved_rate: f64,
    #[serde(rename = "pub")]
    pub pub_stats: GroupStats,
    pub sub: GroupStats,
    /// All messages sent and received over the whole span, as nats bench's
    /// "Pub/Sub stats" line.
    pub aggregate_msgs_per_s: f64,
    pub aggregate_mib_per_s: f64,
    /// Latency from the intended send time (coordinated omission corrected);
    /// for reqrep the round-trip time.
    pub latency_us: Option<Percentiles>,
    /// Latency from the actual send time (raw service time).
    pub service_time_us: Option<Percentiles>,
    /// `--idle-conns`: how many were held, which the server dropped (absent
    /// when none were asked for). Drops do not make `ok` false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_conns: Option<IdleReport>,
    /// `--slow-subs`: per slow subscriber, messages received and whether the
    /// server cut it off. Not in sent/expected/received/lost; never makes `ok` false.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slow_subs: Vec<SlowSubReport>,
    pub host: HostInfo,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerFacts {
    pub url: String,
    pub version: String,
    pub server_id: String,
    pub server_name: String,
}

pub fn summarize(cfg: &Config, o: &Outcome) -> Summary {
    let all: Vec<ClientStats> = o.pub_stats.iter().chain(&o.sub_stats).copied().collect();
    let agg = GroupStats::of(&all);
    let (lat, svc) = match &o.latency {
        Some(c) if !c.corrected.is_empty() => (
            Some(Percentiles::from_hist(&c.corrected)),
            Some(Percentiles::from_hist(&c.service)),
        ),
        _ => (None, None),
    };
    Summary {
        tool: format!("percore-bench {}", env!("CARGO_PKG_VERSION")),
        scenario: mode_name(cfg.mode).to_string(),
        config: serde_json::to_value(cfg).unwrap_or(serde_json::Value::Null),
        started_unix_s: o
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        server: ServerFacts {
            url: cfg.server.clone(),
            version: o.server.version.clone(),
            server_id: o.server.server_id.clone(),
            server_name: o.server.server_name.clone(),
        },
        sent: o.sent,
        expected: o.expected,
        received: o.received,
        lost: o.lost(),
        errors: o.errors.len() as u64,
        error_samples: o.errors.iter().take(20).cloned().collect(),
        slow_consumers: o.slow_consumers,
        disconnects: o.disconnects,
        timed_out: o.timed_out,
        ok: !o.failed(),
        achieved_rate: o.achieved_rate,
        pub_stats: GroupStats::of(&o.pub_stats),
        sub: GroupStats::of(&o.sub_stats),
        aggregate_msgs_per_s: agg.msgs_per_s,
        aggregate_mib_per_s: agg.mib_per_s,
        latency_us: lat,
        service_time_us: svc,
        idle_conns: o.idle.clone(),
        slow_subs: o.slow_subs.clone(),
        host: HostInfo::gather(),
    }
}

pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Pub => "pub",
        Mode::Sub => "sub",
        Mode::Pubsub => "pubsub",
        Mode::Fanout => "fanout",
        Mode::Queue => "queue",
        Mode::Reqrep => "reqrep",
        Mode::Latency => "latency",
        Mode::Soak => "soak",
    }
}

fn group_block(out: &mut String, title: &str, clients: &[ClientStats]) {
    let g = GroupStats::of(clients);
    let _ = writeln!(
        out,
        " {title} stats: {} msgs/sec ~ {:.2} MiB/sec",
        commas(g.msgs_per_s),
        g.mib_per_s
    );
    for (i, c) in clients.iter().enumerate() {
        let _ = writeln!(
            out,
            "  [{}] {} msgs/sec ~ {:.2} MiB/sec ({} msgs)",
            i + 1,
            commas(c.msgs_per_s()),
            c.mib_per_s(),
            commas(c.msgs as f64)
        );
    }
    if clients.len() > 1 {
        let _ = writeln!(
            out,
            "  min {} | avg {} | max {} | stddev {} msgs",
            commas(g.min_msgs_per_s),
            commas(g.avg_msgs_per_s),
            commas(g.max_msgs_per_s),
            commas(g.stddev_msgs_per_s)
        );
    }
}

fn pct_line(out: &mut String, title: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        " {title} (µs, n={}): p50 {:.1} | p90 {:.1} | p99 {:.1} | p99.9 {:.1} | p99.99 {:.1} | max {:.1}",
        commas(p.count as f64),
        p.p50,
        p.p90,
        p.p99,
        p.p99_9,
        p.p99_99,
        p.max
    );
}

fn idle_line(out: &mut String, r: &IdleReport) {
    let dropped = match r.drops.first() {
        None => "none dropped by the server".to_string(),
        Some(d) => format!(
            "{} dropped by the server (first: idle #{} client_id {} at {:.1}s: {})",
            r.dropped,
            d.idx + 1,
            d.client_id,
            d.after_s,
            d.reason
        ),
    };
    let _ = writeln!(
        out,
        " Idle connections: {} held for the run ({} server PINGs answered), {dropped}",
        commas(r.opened as f64),
        commas(r.pings as f64)
    );
}

fn slow_sub_line(out: &mut String, r: &SlowSubReport) {
    let fate = if r.disconnected {
        // The close is read behind what the socket buffers still held: the
        // last message's publish time is the lower bound of the cut-off.
        let mut when = Vec::new();
        if let Some(t) = r.last_msg_published_after_s {
            when.push(format!("last message it got was published at {t:.1}s"));
        }
        if let Some(t) = r.disconnect_seen_after_s {
            when.push(format!("close read at {t:.1}s"));
        }
        if when.is_empty() {
            "CUT OFF by the server".to_string()
        } else {
            format!("CUT OFF by the server ({})", when.join(", "))
        }
    } else if r.drain_incomplete {
        "still connected at the end (backlog not drained within 5s)".to_string()
    } else {
        "still connected at the end".to_string()
    };
    let errs = if r.errors.is_empty() {
        String::new()
    } else {
        format!(" [{}]", r.errors.join("; "))
    };
    let _ = writeln!(
        out,
        " Slow subscriber {} (client_id {}, reading {:.0} KiB/s): {} msgs, {} of them drained at full speed after the run; {}{}",
        r.idx + 1,
        r.client_id,
        r.rate_bytes_per_s as f64 / 1024.0,
        commas(r.msgs as f64),
        commas(r.drained_msgs as f64),
        fate,
        errs
    );
}

/// The human report. Its last line always states whether anything was lost.
pub fn text(cfg: &Config, o: &Outcome, s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\npercore-bench {}: {} pub, {} sub, {} B payload, {}, server {} (version {})",
        s.scenario,
        o.pub_stats.len(),
        o.sub_stats.len(),
        cfg.size,
        if cfg.open_loop() {
            format!("fixed rate {} msgs/s", commas(cfg.rate))
        } else {
            "closed loop".to_string()
        },
        cfg.server,
        if s.server.version.is_empty() {
            "?"
        } else {
            &s.server.version
        }
    );
    if !o.pub_stats.is_empty() && !o.sub_stats.is_empty() && cfg.mode != Mode::Reqrep {
        let _ = writeln!(
            out,
            "\nNATS Pub/Sub stats: {} msgs/sec ~ {:.2} MiB/sec",
            commas(s.aggregate_msgs_per_s),
            s.aggregate_mib_per_s
        );
    } else {
        out.push('\n');
    }
    if cfg.mode == Mode::Reqrep {
        group_block(&mut out, "Requester", &o.pub_stats);
        group_block(&mut out, "Responder", &o.sub_stats);
    } else {
        if !o.pub_stats.is_empty() {
            group_block(&mut out, "Pub", &o.pub_stats);
        }
        if !o.sub_stats.is_empty() {
            group_block(&mut out, "Sub", &o.sub_stats);
        }
    }
    if let Some(p) = &s.latency_us {
        let title = if cfg.mode == Mode::Reqrep {
            "Round trip"
        } else if cfg.open_loop() {
            "Latency from intended send"
        } else {
            "Latency"
        };
        pct_line(&mut out, title, p);
    }
    if let (Some(p), true) = (&s.service_time_us, cfg.open_loop()) {
        pct_line(&mut out, "Service time (from actual send)", p);
    }
    if cfg.open_loop() {
        let _ = writeln!(
            out,
            " Achieved send rate: {} msgs/s (asked {})",
            commas(s.achieved_rate),
            commas(cfg.rate)
        );
    }
    if let Some(idle) = &s.idle_conns {
        idle_line(&mut out, idle);
    }
    for r in &s.slow_subs {
        slow_sub_line(&mut out, r);
    }
    for e in o.errors.iter().take(10) {
        let _ = writeln!(out, " error: {e}");
    }
    if o.errors.len() > 10 {
        let _ = writeln!(out, " ... and {} more errors", o.errors.len() - 10);
    }
    let counts = format!(
        "sent {}, received {} of {} expected, {} lost, {} slow consumer, {} disconnects, {} errors",
        commas(s.sent as f64),
        commas(s.received as f64),
        commas(s.expected as f64),
        commas(s.lost as f64),
        s.slow_consumers,
        s.disconnects,
        s.errors
    );
    if s.ok {
        let _ = writeln!(out, "RESULT: OK: {counts}");
    } else {
        let _ = writeln!(out, "RESULT: FAILED: {counts}");
    }
    out
}
