//! Throughput statistics per client and per group of clients (publishers or
//! subscribers), computed the way `nats bench` users read them: the group rate
//! is all messages over the group's whole span (earliest start to latest end),
//! plus min/avg/max/stddev of the per-client rates.

use serde::{Deserialize, Serialize};

/// One connection's measured traffic.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ClientStats {
    pub msgs: u64,
    /// Payload bytes only (what MB/s refers to).
    pub bytes: u64,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl ClientStats {
    pub fn seconds(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }
    pub fn msgs_per_s(&self) -> f64 {
        rate(self.msgs as f64, self.seconds())
    }
    pub fn mib_per_s(&self) -> f64 {
        rate(self.bytes as f64, self.seconds()) / (1024.0 * 1024.0)
    }
}

fn rate(n: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        n / secs
    } else {
        0.0
    }
}

/// Aggregate over a set of clients.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupStats {
    pub clients: usize,
    pub msgs: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub mib_per_s: f64,
    pub min_msgs_per_s: f64,
    pub avg_msgs_per_s: f64,
    pub max_msgs_per_s: f64,
    pub stddev_msgs_per_s: f64,
}

impl GroupStats {
    pub fn of(clients: &[ClientStats]) -> GroupStats {
        let active: Vec<&ClientStats> = clients.iter().filter(|c| c.msgs > 0).collect();
        if active.is_empty() {
            return GroupStats {
                clients: clients.len(),
                ..Default::default()
            };
        }
        let start = active.iter().map(|c| c.start_ns).min().unwrap_or(0);
        let end = active.iter().map(|c| c.end_ns).max().unwrap_or(0);
        let msgs: u64 = clients.iter().map(|c| c.msgs).sum();
        let bytes: u64 = clients.iter().map(|c| c.bytes).sum();
        let seconds = end.saturating_sub(start) as f64 / 1e9;
        let rates: Vec<f64> = clients.iter().map(|c| c.msgs_per_s()).collect();
        let n = rates.len() as f64;
        let avg = rates.iter().sum::<f64>() / n;
        let var = rates.iter().map(|r| (r - avg) * (r - avg)).sum::<f64>() / n;
        GroupStats {
            clients: clients.len(),
            msgs,
            bytes,
            seconds,
            msgs_per_s: rate(msgs as f64, seconds),
            mib_per_s: rate(bytes as f64, seconds) / (1024.0 * 1024.0),
            min_msgs_per_s: rates.iter().cloned().fold(f64::INFINITY, f64::min),
            avg_msgs_per_s: avg,
            max_msgs_per_s: rates.iter().cloned().fold(0.0, f64::max),
            stddev_msgs_per_s: var.sqrt(),
        }
    }
}

/// 1234567.8 -> "1,234,568".
pub fn commas(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_rate_uses_whole_span() {
        let a = ClientStats {
            msgs: 100,
            bytes: 1000,
            start_ns: 0,
            end_ns: 1_000_000_000,
        };
        let b = ClientStats {
            msgs: 100,
            bytes: 1000,
            start_ns: 1_000_000_000,
            end_ns: 2_000_000_000,
        };
        let g = GroupStats::of(&[a, b]);
        assert_eq!(g.msgs, 200);
        assert!((g.msgs_per_s - 100.0).abs() < 1e-9);
        assert!((g.avg_msgs_per_s - 100.0).abs() < 1e-9);
        assert_eq!(g.stddev_msgs_per_s, 0.0);
        assert_eq!(commas(1234567.4), "1,234,567");
        assert_eq!(commas(12.0), "12");
    }
}
