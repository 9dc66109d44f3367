//! One soak interval as a row: what the bench prints and writes to
//! `latency.csv`, and what `soak-report` reads back. The CSV is the contract
//! between the two, so the header and the parser live beside each other.

/// The CSV header, in column order.
pub const CSV_HEADER: &str = "interval,t_start_s,t_end_s,sent,received,lost,p50_us,p90_us,p99_us,p99_9_us,max_us,churn_ok,churn_failed";

/// One interval of the healthy pair and the churn clients.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// 0 for the first interval.
    pub index: u64,
    /// Seconds since the soak started.
    pub t_start_s: f64,
    pub t_end_s: f64,
    /// Messages the pair's publisher sent in this interval.
    pub sent: u64,
    /// Messages its subscriber received in this interval.
    pub received: u64,
    /// Gaps in the sequence seen in this interval (the last row also
    /// counts the messages still missing after the final fence).
    pub lost: u64,
    /// End-to-end latency from the intended send time, µs.
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p99_9_us: f64,
    pub max_us: f64,
    /// Churn clients that completed their cycle / failed it, in this interval.
    pub churn_ok: u64,
    pub churn_failed: u64,
}

impl Row {
    pub fn to_csv(&self) -> String {
        format!(
            "{},{:.3},{:.3},{},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{},{}",
            self.index,
            self.t_start_s,
            self.t_end_s,
            self.sent,
            self.received,
            self.lost,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p99_9_us,
            self.max_us,
            self.churn_ok,
            self.churn_failed
        )
    }

    pub fn from_csv(line: &str) -> Result<Row, String> {
        let f: Vec<&str> = line.trim().split(',').collect();
        if f.len() != 13 {
            return Err(format!("expected 13 columns, got {}: {line}", f.len()));
        }
        let u = |i: usize| {
            f[i].parse::<u64>()
                .map_err(|_| format!("column {i} is not a count: {line}"))
        };
        let x = |i: usize| {
            f[i].parse::<f64>()
                .map_err(|_| format!("column {i} is not a number: {line}"))
        };
        Ok(Row {
            index: u(0)?,
            t_start_s: x(1)?,
            t_end_s: x(2)?,
            sent: u(3)?,
            received: u(4)?,
            lost: u(5)?,
            p50_us: x(6)?,
            p90_us: x(7)?,
            p99_us: x(8)?,
            p99_9_us: x(9)?,
            max_us: x(10)?,
            churn_ok: u(11)?,
            churn_failed: u(12)?,
        })
    }

    /// The human line printed as the soak goes.
    pub fn text(&self) -> String {
        format!(
            "{:>4} {:>7.0}s  sent {:>10}  recv {:>10}  lost {:>4}  p50 {:>8.1}  p90 {:>8.1}  p99 {:>8.1}  p99.9 {:>8.1}  max {:>9.1} µs  churn {:>5} ok {:>3} failed",
            self.index,
            self.t_end_s,
            self.sent,
            self.received,
            self.lost,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p99_9_us,
            self.max_us,
            self.churn_ok,
            self.churn_failed
        )
    }
}

/// Parses a whole `latency.csv` (header first).
pub fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(h) if h.trim() == CSV_HEADER => {}
        Some(h) => return Err(format!("unexpected latency.csv header: {h}")),
        None => return Err("latency.csv is empty".into()),
    }
    lines.map(Row::from_csv).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip() {
        let r = Row {
            index: 3,
            t_start_s: 60.0,
            t_end_s: 80.0,
            sent: 400_000,
            received: 399_998,
            lost: 2,
            p50_us: 41.5,
            p90_us: 60.0,
            p99_us: 120.2,
            p99_9_us: 300.0,
            max_us: 1500.0,
            churn_ok: 200,
            churn_failed: 1,
        };
        let text = format!("{CSV_HEADER}\n{}\n", r.to_csv());
        assert_eq!(parse_csv(&text), Ok(vec![r]));
        assert!(parse_csv("nope\n1,2").is_err());
        assert!(parse_csv(&format!("{CSV_HEADER}\n1,2,3")).is_err());
    }
}
